"""The write side of the SQL store: ``SqlTransaction`` implements every write role of
``hub.ports`` on one open connection; ``SqlStore.transaction`` commits or rolls it back.

Identity and data keys live in ``identity``, the outbox in ``outbox``; this module holds the
rest: offsets, consents, processing results, the audit log and deliveries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Table, Text, bindparam, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError

from consent.model import ConsentRevision
from hub.adapters.sql import tables
from hub.adapters.sql.identity import SqlIdentity
from hub.adapters.sql.mappers import (
    applied_values,
    audit_from,
    audit_values,
    checkpoint_from,
    checkpoint_values,
    decision_from,
    decision_values,
    delivery_from,
    delivery_values,
    event_values,
    rejection_values,
    revision_from,
    revision_values,
)
from hub.adapters.sql.outbox import SqlOutbox
from hub.adapters.sql.role import chunks
from hub.adapters.sql.tables import (
    audit_checkpoints,
    audit_leaves,
    consent_events,
    consent_revisions,
    consumer_offsets,
    decisions,
    deliveries,
    events,
)
from hub.model import (
    AcceptedEvent,
    AppliedConsentEvent,
    AuditRecord,
    Checkpoint,
    Decision,
    Delivery,
    RejectionRecord,
)

# A PostgreSQL advisory lock (one 64-bit key space per database; the relay's is in ``outbox``),
# held until the transaction ends. On SQLite every transaction begins IMMEDIATE (one writer at a
# time), which holds it.
AUDIT_HEAD_LOCK = 0x7E110_0A0D17  # appends to the audit log queue on it
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock wait ended by lock_timeout


class SqlTransaction(SqlIdentity, SqlOutbox):
    """Implements hub.ports.Transaction on one open connection, sealing personal values with
    ``vault``."""

    def _known_pairs(self, table: Table, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of the (source, event_id) ``keys`` ``table`` holds, one query per chunk."""
        pairs = sorted(set(keys))
        if self._c.dialect.name == "postgresql":
            # A row-value IN list of 200 pairs costs PostgreSQL ~30 ms to plan and run (a
            # 200-way BitmapOr); joining the pairs as two unnested arrays takes ~3 ms.
            wanted = (
                func.unnest(
                    bindparam("sources", [s for s, _ in pairs], type_=ARRAY(Text)),
                    bindparam("event_ids", [e for _, e in pairs], type_=ARRAY(Text)),
                )
                .table_valued("source", "event_id")
                .render_derived(name="wanted")
            )
            rows = self._c.execute(
                select(table.c.source, table.c.event_id).join(
                    wanted,
                    (table.c.source == wanted.c.source) & (table.c.event_id == wanted.c.event_id),
                )
            )
            return {(s, e) for s, e in rows}
        found: set[tuple[str, str]] = set()
        for chunk in chunks(pairs):
            rows = self._c.execute(
                select(table.c.source, table.c.event_id).where(
                    tuple_(table.c.source, table.c.event_id).in_(chunk)
                )
            )
            found.update((s, e) for s, e in rows)
        return found

    # -- offsets -----------------------------------------------------------------------------

    def offsets(self, group: str, topic: str) -> dict[int, int]:
        rows = self._c.execute(
            select(consumer_offsets.c.kafka_partition, consumer_offsets.c.next_offset).where(
                consumer_offsets.c.group_id == group, consumer_offsets.c.topic == topic
            )
        )
        return {int(p): int(o) for p, o in rows}

    def save_offsets(self, group: str, topic: str, next_offsets: dict[int, int]) -> None:
        current = self.offsets(group, topic)
        for partition, next_offset in next_offsets.items():
            if partition in current:
                self._c.execute(
                    update(consumer_offsets)
                    .where(
                        consumer_offsets.c.group_id == group,
                        consumer_offsets.c.topic == topic,
                        consumer_offsets.c.kafka_partition == partition,
                    )
                    .values(next_offset=next_offset)
                )
            else:
                self._c.execute(
                    insert(consumer_offsets).values(
                        group_id=group,
                        topic=topic,
                        kafka_partition=partition,
                        next_offset=next_offset,
                    )
                )

    # -- consent ---------------------------------------------------------------------------

    def consent_history(
        self, person_ids: Iterable[str]
    ) -> dict[tuple[str, str, str], list[ConsentRevision]]:
        found: dict[tuple[str, str, str], list[ConsentRevision]] = {}
        for chunk in chunks(sorted(set(person_ids))):
            rows = self._c.execute(
                select(consent_revisions)
                .where(consent_revisions.c.person_id.in_(chunk))
                .order_by(consent_revisions.c.seq)
            )
            for r in rows:
                revision = revision_from(r)
                key = (revision.person_id, revision.recipient, revision.event_type)
                found.setdefault(key, []).append(revision)
        return found

    def add_consents(self, revisions: Sequence[ConsentRevision]) -> None:
        self._insert_all(consent_revisions, [revision_values(r) for r in revisions])

    def known_consent_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        return self._known_pairs(consent_events, keys)

    def add_consent_events(self, applied: Sequence[AppliedConsentEvent]) -> None:
        self._insert_all(consent_events, [applied_values(a) for a in applied])

    # -- processing results ------------------------------------------------------------------

    def known_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        return self._known_pairs(events, keys)

    # One write per table and batch (``hub.adapters.sql.bulk``: COPY on PostgreSQL, one
    # executemany on SQLite); rows go in in list order, so outbox ``seq`` follows it.

    def add_events(self, events: Sequence[AcceptedEvent]) -> None:
        self._insert_all(tables.events, [event_values(e) for e in events])

    def add_decisions(self, decisions: Sequence[Decision]) -> None:
        self._insert_all(tables.decisions, [decision_values(d) for d in decisions])

    def add_rejections(self, rejections: Sequence[RejectionRecord]) -> None:
        self._insert_all(tables.rejections, [rejection_values(r) for r in rejections])

    def lock_audit_head(self, wait_s: float | None = None) -> bool:
        if self._c.dialect.name != "postgresql":
            return True
        if wait_s is None:
            self._c.execute(select(func.pg_advisory_xact_lock(AUDIT_HEAD_LOCK)))
            return True
        # Most batches find the head free: one statement, not the five of a bounded wait.
        if self._c.execute(select(func.pg_try_advisory_xact_lock(AUDIT_HEAD_LOCK))).scalar():
            return True
        # lock_timeout bounds the wait. In a savepoint: the timeout's error then leaves the
        # transaction usable, and the setting, put back once the lock is held, ends with it.
        timeout = f"{max(1, round(wait_s * 1000))}ms"
        try:
            with self._c.begin_nested():
                prior = self._c.execute(select(func.current_setting("lock_timeout"))).scalar_one()
                self._c.execute(select(func.set_config("lock_timeout", timeout, True)))
                self._c.execute(select(func.pg_advisory_xact_lock(AUDIT_HEAD_LOCK)))
                self._c.execute(select(func.set_config("lock_timeout", prior, True)))
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                return False
            raise
        return True

    def last_audit(self) -> AuditRecord | None:
        self.lock_audit_head()
        query = select(audit_leaves).order_by(audit_leaves.c.leaf_index.desc()).limit(1)
        row = self._c.execute(query).first()
        return audit_from(row) if row else None

    def add_audit(self, records: Sequence[AuditRecord]) -> None:
        self._insert_all(audit_leaves, [audit_values(r) for r in records])

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        rows = self._c.execute(
            select(audit_leaves.c.leaf_hash)
            .where(audit_leaves.c.leaf_index >= start, audit_leaves.c.leaf_index < stop)
            .order_by(audit_leaves.c.leaf_index)
        )
        return [bytes.fromhex(h) for (h,) in rows]

    def last_checkpoint(self) -> Checkpoint | None:
        query = select(audit_checkpoints).order_by(audit_checkpoints.c.seq.desc()).limit(1)
        row = self._c.execute(query).first()
        return checkpoint_from(row) if row else None

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._c.execute(insert(audit_checkpoints).values(checkpoint_values(checkpoint)))

    def decisions_by_notification(self, notification_ids: Iterable[str]) -> dict[str, Decision]:
        found: dict[str, Decision] = {}
        for chunk in chunks(sorted(set(notification_ids))):
            rows = self._c.execute(select(decisions).where(decisions.c.notification_id.in_(chunk)))
            found.update((r.notification_id, decision_from(r)) for r in rows)
        return found

    def deliveries_of(self, notification_ids: Iterable[str]) -> dict[str, Delivery]:
        found: dict[str, Delivery] = {}
        for chunk in chunks(sorted(set(notification_ids))):
            rows = self._c.execute(
                select(deliveries).where(deliveries.c.notification_id.in_(chunk))
            )
            found.update((r.notification_id, delivery_from(r)) for r in rows)
        return found

    def undelivered_notifications(self, person_id: str) -> list[str]:
        settled = select(deliveries.c.notification_id).where(
            deliveries.c.notification_id == decisions.c.notification_id,
            deliveries.c.status != "failed",  # a failed attempt may still be retried
        )
        rows = self._c.execute(
            select(decisions.c.notification_id)
            .join(
                events,
                (events.c.source == decisions.c.source)
                & (events.c.event_id == decisions.c.event_id),
            )
            .where(
                events.c.person_id == person_id,
                decisions.c.notification_id.is_not(None),
                ~settled.exists(),
            )
            .order_by(decisions.c.id)
        )
        return [str(notification) for (notification,) in rows]

    def save_deliveries(self, deliveries: Sequence[Delivery], *, new: bool) -> None:
        if not deliveries:
            return
        table = tables.deliveries
        if new:
            rows = [{"notification_id": d.notification_id} | delivery_values(d) for d in deliveries]
            self._insert_all(table, rows)
        else:  # one executemany; the key is bound under its own name, apart from the SET values
            changed = update(table).where(table.c.notification_id == bindparam("notification"))
            rows = [{"notification": d.notification_id} | delivery_values(d) for d in deliveries]
            self._c.execute(changed, rows)

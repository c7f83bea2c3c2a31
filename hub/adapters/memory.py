"""The Store port in memory: a real adapter for fast tests and demos, not a mock. (The
``ClaimLog`` port of the store fence in memory is ``hub.adapters.memory_claims``; the relay's
side of the outbox is ``hub.adapters.memory_outbox``.)

It keeps the promises of the SQL store (``hub.adapters.sql.store``): a transaction works on a
copy of the data and is applied only when its block exits normally, so an exception leaves
nothing behind; the unique and foreign-key constraints of ``hub.adapters.sql.tables`` are
enforced and a violation raises RecordStoreError and dooms the transaction (as PostgreSQL
does); outbox rows get increasing sequence numbers. Transactions are serialized by one lock
(they are not reentrant: never nest them), so a violation is never a race and is not retriable.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import uuid
from collections.abc import Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from consent.model import ConsentRevision, IdentityLink
from hub.adapters.memory_outbox import MemoryOutbox
from hub.adapters.memory_state import MemoryState
from hub.errors import RecordStoreError, StoreError
from hub.model import (
    AcceptedEvent,
    AppliedConsentEvent,
    AuditRecord,
    Checkpoint,
    Decision,
    Delivery,
    OutboxMessage,
    RejectionRecord,
)
from hub.wire.topics import notify_topic

if TYPE_CHECKING:
    from hub.ports import Store, Transaction
    from hub.privacy.vault import Vault


class MemoryStore:
    """Implements hub.ports.Store in memory. Values stay in plaintext (memory is not at rest);
    with a ``vault``, persons get wrapped data keys, so KEK rotation can be exercised."""

    def __init__(self, vault: Vault | None = None) -> None:
        self._vault = vault
        self._lock = threading.Lock()
        self._state = MemoryState()  # committed data; never changed in place, only replaced
        self._store_id = str(uuid.uuid4())  # made with the store, as migration 0003 does

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        with self._lock:
            tx = MemoryTransaction(self._state.copy(), self._vault)
            try:
                yield tx
                if tx.doomed:  # the block caught a violation and carried on
                    raise RecordStoreError(tx.doomed, cause=tx.doomed_by)
                self._state = tx.state  # reached only when the block exits normally
            finally:
                tx.closed = True

    # -- queries for reports and tests -------------------------------------------------------

    def store_id(self) -> str:
        return self._store_id

    def events(self) -> list[AcceptedEvent]:
        return list(self._state.events)

    def decisions(self) -> list[Decision]:
        return list(self._state.decisions)

    def rejections(self) -> list[RejectionRecord]:
        return list(self._state.rejections)

    def audit_records(self, start: int = 0, stop: int | None = None) -> Iterator[AuditRecord]:
        end = len(self._state.audit) if stop is None else stop
        return iter(self._state.audit[start:end])

    def checkpoints(self) -> list[Checkpoint]:
        return list(self._state.checkpoints)

    def leaf_hashes(self, stop: int | None = None) -> list[bytes]:
        return [bytes.fromhex(r.hash) for r in self._state.audit[:stop]]

    def deliveries(self) -> list[Delivery]:
        return sorted(self._state.deliveries.values(), key=lambda d: d.recorded_at)

    def consents(self) -> list[ConsentRevision]:
        return list(self._state.consents)

    def awaiting_receipt(self, recipient: str) -> int:
        state = self._state
        return sum(
            1
            for m in state.outbox
            if m.topic == notify_topic(recipient)
            and m.message_id in state.published
            and m.message_id not in state.deliveries
        )

    def link_count(self) -> int:
        return len(self._state.links)

    def erasures(self) -> dict[str, datetime]:
        return dict(self._state.erased)

    def outbox_backlog(self) -> int:
        state = self._state
        return sum(1 for m in state.outbox if m.message_id not in state.published)

    def close(self) -> None:
        """Nothing to release; the data lives as long as the store object."""

    def tampered(
        self,
        *,
        audit: list[AuditRecord] | None = None,
        checkpoints: list[Checkpoint] | None = None,
        decisions: list[Decision] | None = None,
        links: list[IdentityLink] | None = None,
    ) -> MemoryStore:
        """A copy of this store with these records replaced behind the ports' back, as someone
        with write access to the database could leave it: for tests of the audit verifier."""
        changed, state = MemoryStore(), self._state
        changed._state = dataclasses.replace(
            state,
            audit=state.audit if audit is None else list(audit),
            checkpoints=state.checkpoints if checkpoints is None else list(checkpoints),
            decisions=state.decisions if decisions is None else list(decisions),
            links=state.links if links is None else list(links),
        )
        return changed


class MemoryTransaction(MemoryOutbox):
    """Implements hub.ports.Transaction on a private copy of the store's data."""

    def __init__(self, state: MemoryState, vault: Vault | None = None) -> None:
        self._state = state
        self._vault = vault
        self.closed = False
        self.doomed = ""  # why the transaction must roll back, once a constraint failed
        self.doomed_by = ""  # the driver error class PostgreSQL would raise for it

    @property
    def state(self) -> MemoryState:
        if self.closed:
            raise StoreError("the transaction has ended; open a new one", retriable=False)
        return self._state

    def _claim(self, constraint: str, key: Hashable) -> None:
        """Take ``key`` under a unique constraint, like an INSERT would."""
        taken = self.state.unique.setdefault(constraint, set())
        if key in taken:
            self._violated(f"unique constraint {constraint}", "UniqueViolation")
        taken.add(key)

    def _require(self, present: bool, constraint: str) -> None:
        if not present:
            self._violated(f"foreign key {constraint}", "ForeignKeyViolation")

    def _violated(self, constraint: str, cause: str = "IntegrityError") -> None:
        """Doom the transaction as PostgreSQL does; ``cause`` names the driver's error class."""
        self.doomed = f"{constraint} violated; the transaction was rolled back"
        self.doomed_by = cause
        raise RecordStoreError(self.doomed, cause=cause)

    # -- offsets -----------------------------------------------------------------------------

    def offsets(self, group: str, topic: str) -> dict[int, int]:
        return {p: o for (g, t, p), o in self.state.offsets.items() if (g, t) == (group, topic)}

    def save_offsets(self, group: str, topic: str, next_offsets: dict[int, int]) -> None:
        for partition, next_offset in next_offsets.items():
            self.state.offsets[(group, topic, partition)] = next_offset

    # -- identity and consent ----------------------------------------------------------------

    def persons_for(self, program: str, local_ids: Iterable[str]) -> dict[str, str]:
        wanted = set(local_ids)
        return {
            link.local_id: link.person_id
            for link in self.state.links
            if link.program == program and link.local_id in wanted
        }

    def links_of(self, person_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        wanted = set(person_ids) - self.state.erased.keys()
        found: dict[str, dict[str, str]] = {}
        for link in self.state.links:
            if link.person_id in wanted:
                found.setdefault(link.person_id, {})[link.program] = link.local_id
        return found

    def link_records(self, person_id: str) -> list[IdentityLink]:
        if person_id in self.state.erased:
            return []
        return [link for link in self.state.links if link.person_id == person_id]

    def person_exists(self, person_id: str) -> bool:
        return person_id in self.state.persons

    def add_person(self, person_id: str, at: datetime) -> None:
        self._claim("pk_persons", person_id)
        self.state.persons[person_id] = at
        if self._vault is not None:
            self.state.data_keys[person_id] = self._vault.new_key(person_id)

    def erased_persons(self, person_ids: Iterable[str]) -> set[str]:
        return set(person_ids) & self.state.erased.keys()

    def erase_person(self, person_id: str, at: datetime) -> None:
        state = self.state
        if person_id in state.erased or person_id not in state.persons:
            return
        state.erased[person_id] = at
        state.data_keys.pop(person_id, None)
        state.outbox = [m for m in state.outbox if m.person_id != person_id]
        if self._vault is not None:
            self._vault.forget(person_id)

    def rewrap_data_keys(self, limit: int) -> int:
        if self._vault is None:
            return 0
        current = self._vault.wrapper.current_kek()
        stale = sorted(p for p, key in self.state.data_keys.items() if key.kek_id != current)
        for person_id in stale[: max(limit, 0)]:
            self.state.data_keys[person_id] = self._vault.rewrap(
                person_id, self.state.data_keys[person_id]
            )
        return min(len(stale), max(limit, 0))

    def data_keys_by_kek(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for key in self.state.data_keys.values():
            counts[key.kek_id] = counts.get(key.kek_id, 0) + 1
        return counts

    def add_link(self, link: IdentityLink) -> None:
        self._require(self.person_exists(link.person_id), "fk_identity_links_person_id_persons")
        self._claim("uq_identity_links_program_local_id_index", (link.program, link.local_id))
        self._claim("uq_identity_links_person_id_program", (link.person_id, link.program))
        self.state.links.append(link)

    def consent_history(
        self, person_ids: Iterable[str]
    ) -> dict[tuple[str, str, str], list[ConsentRevision]]:
        wanted = set(person_ids)
        found: dict[tuple[str, str, str], list[ConsentRevision]] = {}
        for r in sorted(self.state.consents, key=lambda r: r.seq):
            if r.person_id in wanted:
                found.setdefault((r.person_id, r.recipient, r.event_type), []).append(r)
        return found

    def add_consents(self, revisions: Sequence[ConsentRevision]) -> None:
        for r in revisions:
            known = self.person_exists(r.person_id)
            self._require(known, "fk_consent_revisions_person_id_persons")
            self._claim(
                "uq_consent_revisions_person_id_recipient_event_type_seq",
                (r.person_id, r.recipient, r.event_type, r.seq),
            )
            self._claim("uq_consent_revisions_hash", r.hash)
            self.state.consents.append(r)

    def known_consent_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        taken = self.state.unique.get("uq_consent_events_source_event_id", set())
        return {key for key in keys if key in taken}

    def add_consent_events(self, applied: Sequence[AppliedConsentEvent]) -> None:
        for a in applied:
            known = self.person_exists(a.person_id)
            self._require(known, "fk_consent_events_person_id_persons")
            self._claim("uq_consent_events_source_event_id", (a.source, a.event_id))

    # -- processing results ------------------------------------------------------------------

    def known_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        taken = self.state.unique.get("uq_events_source_event_id", set())
        return {key for key in keys if key in taken}

    def add_events(self, events: Sequence[AcceptedEvent]) -> None:
        for event in events:
            self._claim("uq_events_source_event_id", (event.source, event.event_id))
            self.state.events.append(event)

    def add_decisions(self, decisions: Sequence[Decision]) -> None:
        taken = self.state.unique.get("uq_events_source_event_id", set())
        for d in decisions:
            self._require((d.source, d.event_id) in taken, "fk_decisions_source_events")
            key = (d.source, d.event_id, d.recipient)
            self._claim("uq_decisions_source_event_id_recipient", key)
            if d.notification_id is not None:  # NULLs never collide, as in SQL
                self._claim("uq_decisions_notification_id", d.notification_id)
            self.state.decisions.append(d)

    def add_rejections(self, rejections: Sequence[RejectionRecord]) -> None:
        for r in rejections:
            key = (r.topic, r.partition, r.offset)
            self._claim("uq_rejections_kafka_topic_kafka_partition_kafka_offset", key)
            self.state.rejections.append(r)

    def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        state = self.state
        for message in messages:
            self._claim("uq_outbox_message_id", message.message_id)
            state.last_outbox_seq += 1
            state.outbox.append(
                dataclasses.replace(
                    message, headers=list(message.headers), seq=state.last_outbox_seq
                )
            )

    def lock_audit_head(self, wait_s: float | None = None) -> bool:
        """Transactions are serialized: every one holds the head."""
        return True

    def last_audit(self) -> AuditRecord | None:
        return self.state.audit[-1] if self.state.audit else None

    def add_audit(self, records: Sequence[AuditRecord]) -> None:
        for record in records:
            self._claim("pk_audit_leaves", record.index)
            if record.index != len(self.state.audit):
                self._violated("leaf_index sequence of audit_leaves")
            self.state.audit.append(dataclasses.replace(record, data=copy.deepcopy(record.data)))

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        return [bytes.fromhex(r.hash) for r in self.state.audit[start:stop]]

    def last_checkpoint(self) -> Checkpoint | None:
        return self.state.checkpoints[-1] if self.state.checkpoints else None

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._claim("pk_audit_checkpoints", checkpoint.seq)
        self._claim("uq_audit_checkpoints_tree_size", checkpoint.size)
        self.state.checkpoints.append(checkpoint)

    # -- deliveries --------------------------------------------------------------------------

    def decisions_by_notification(self, notification_ids: Iterable[str]) -> dict[str, Decision]:
        wanted = set(notification_ids)
        return {
            d.notification_id: d
            for d in self.state.decisions
            if d.notification_id is not None and d.notification_id in wanted
        }

    def undelivered_notifications(self, person_id: str) -> list[str]:
        about = {(e.source, e.event_id) for e in self.state.events if e.person_id == person_id}
        settled = {nid for nid, d in self.state.deliveries.items() if d.status != "failed"}
        return [
            d.notification_id
            for d in self.state.decisions
            if d.notification_id is not None
            and (d.source, d.event_id) in about
            and d.notification_id not in settled
        ]

    def deliveries_of(self, notification_ids: Iterable[str]) -> dict[str, Delivery]:
        found = self.state.deliveries
        return {n: found[n] for n in notification_ids if n in found}

    def save_deliveries(self, deliveries: Sequence[Delivery], *, new: bool) -> None:
        taken = self.state.unique.get("uq_decisions_notification_id", set())
        for delivery in deliveries:
            notification = delivery.notification_id
            if new:
                self._claim("pk_deliveries", notification)
            self._require(notification in taken, "fk_deliveries_notification_id_decisions")
            self.state.deliveries[notification] = delivery


if TYPE_CHECKING:  # mypy proves the adapter satisfies the ports

    def _is_store(store: MemoryStore) -> Store:
        return store

    def _is_transaction(tx: MemoryTransaction) -> Transaction:
        return tx

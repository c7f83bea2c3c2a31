"""The outbox role of the SQL transaction: messages sealed at rest, given back opened to the
relay, marked published, and purged once no longer needed (``hub.ports.outbox``).

A message about a person is kept sealed under that person's data key (``sealing``); its row
names the person, and each read joins the person's wrapped key in the same query. A row that
does not open (altered, or swapped with another row) must not stop the relay for everyone:
it is left out of what the relay is given and read past, so the batch still fills
(``role``). It stays in the table, unpublished, and ``outbox_backlog`` keeps counting it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select, update

from hub.adapters.sql.mappers import outbox_from, outbox_values
from hub.adapters.sql.role import SqlRole, wrapped_key
from hub.adapters.sql.sealing import opened_message, sealed_message
from hub.adapters.sql.tables import deliveries, outbox, persons
from hub.errors import DecryptionError, RecordStoreError
from hub.model import OutboxMessage
from hub.wire.topics import NOTIFY_PREFIX

RELAY_LOCK = 0x7E110_0E1A7  # PostgreSQL advisory lock: one outbox relay at a time

# An outbox row with the data key of its person (none for a message without one).
_MESSAGES = select(outbox, persons.c.kek_id, persons.c.wrapped_key).outerjoin(
    persons, persons.c.person_id == outbox.c.person_id
)


class SqlOutbox(SqlRole):
    """Implements hub.ports.OutboxRecorder for ``SqlTransaction``."""

    def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        keys = self._data_keys({m.person_id for m in messages if m.person_id is not None})
        rows = []
        for message in messages:
            if message.person_id is not None:
                if message.person_id not in keys:
                    raise RecordStoreError(
                        f"outbox message {message.message_id} names an unknown person; "
                        "the batch was rolled back",
                        cause="ForeignKeyViolation",
                    )
                message = sealed_message(self._vault, keys[message.person_id], message)
            rows.append(outbox_values(message))
        self._insert_all(outbox, rows)

    def claim_relay(self) -> bool:
        if self._c.dialect.name != "postgresql":
            return True  # every SQLite transaction holds the write lock
        return bool(self._c.execute(select(func.pg_try_advisory_xact_lock(RELAY_LOCK))).scalar())

    def pending_outbox(self, limit: int) -> list[OutboxMessage]:
        query = _MESSAGES.where(outbox.c.published_at.is_(None)).order_by(outbox.c.seq)
        return self._opened(query, limit)

    def unreceipted_outbox(
        self, published_before: datetime, limit: int, max_republished: int
    ) -> list[OutboxMessage]:
        answered = select(deliveries.c.notification_id).where(
            deliveries.c.notification_id == outbox.c.message_id
        )
        query = _MESSAGES.where(
            outbox.c.topic.like(f"{NOTIFY_PREFIX}%"),
            outbox.c.published_at.is_not(None),
            outbox.c.published_at < published_before,
            outbox.c.republished < max_republished,
            ~answered.exists(),
        ).order_by(outbox.c.seq)
        return self._opened(query, limit)

    def mark_republished(self, message_ids: Sequence[str], at: datetime) -> None:
        for ids in self._id_sets(outbox.c.message_id, message_ids):
            self._c.execute(
                update(outbox)
                .where(ids)
                .values(published_at=at, republished=outbox.c.republished + 1)
            )

    def mark_published(self, message_ids: Sequence[str], at: datetime) -> None:
        for ids in self._id_sets(outbox.c.message_id, message_ids):
            self._c.execute(update(outbox).where(ids).values(published_at=at))

    def purge_outbox(self, before: datetime, limit: int) -> int:
        if limit <= 0:
            return 0
        done = outbox.alias("done")
        receipted = select(deliveries.c.notification_id).where(
            deliveries.c.notification_id == done.c.message_id, deliveries.c.recorded_at < before
        )
        chosen = (
            select(done.c.seq)
            .where(
                or_(
                    and_(done.c.person_id.is_not(None), receipted.exists()),
                    and_(done.c.person_id.is_(None), done.c.published_at < before),
                )
            )
            .order_by(done.c.seq)
            .limit(limit)
        )
        return int(self._c.execute(delete(outbox).where(outbox.c.seq.in_(chosen))).rowcount)

    def _opened(self, query: Select[Any], limit: int) -> list[OutboxMessage]:
        """Up to ``limit`` messages of ``query`` (ordered by ``seq``), opened; rows that do
        not open are left out and read past."""
        found: list[OutboxMessage] = []
        after: int | None = None
        while (wanted := limit - len(found)) > 0:
            page = query if after is None else query.where(outbox.c.seq > after)
            rows = list(self._c.execute(page.limit(wanted)))
            found.extend(m for m in map(self._open, rows) if m is not None)
            if len(rows) < wanted:
                break
            after = rows[-1].seq
        return found

    def _open(self, r: Any) -> OutboxMessage | None:
        message = outbox_from(r)
        if message.person_id is None:
            return message
        try:
            return opened_message(self._vault, wrapped_key(r.kek_id, r.wrapped_key), message)
        except DecryptionError:
            self._left_out(
                f"outbox:{message.message_id}",
                "outbox message does not open (altered, moved from another row, or its person "
                "erased): not published; restore the row from a backup or delete it",
                message_id=message.message_id,
                seq=message.seq,
                topic=message.topic,
            )
            return None

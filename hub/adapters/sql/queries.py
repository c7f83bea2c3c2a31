"""The read side of the SQL store: what reports, oversight, the verifier and tests read, each
query on its own connection, outside any write transaction (``hub.ports.queries``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, func, select
from sqlalchemy.exc import DBAPIError

from consent.model import ConsentRevision
from hub.adapters.sql.mappers import (
    audit_from,
    checkpoint_from,
    decision_from,
    delivery_from,
    event_from,
    rejection_from,
    revision_from,
)
from hub.adapters.sql.tables import (
    audit_checkpoints,
    audit_leaves,
    consent_revisions,
    decisions,
    deliveries,
    events,
    identity_links,
    outbox,
    persons,
    rejections,
    store_identity,
)
from hub.errors import StoreError
from hub.model import (
    AcceptedEvent,
    AuditRecord,
    Checkpoint,
    Decision,
    Delivery,
    RejectionRecord,
    as_utc,
)
from hub.wire.topics import notify_topic


class SqlQueries:
    """Implements hub.ports.StoreQueries on an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def store_id(self) -> str:
        """The random id made with the schema (migration 0003): which database this is."""
        try:
            rows = self._all(select(store_identity.c.store_id))
        except DBAPIError as exc:
            raise StoreError(
                f"cannot read the store id ({exc.orig.__class__.__name__}); check that the "
                "database is running, and run 'tellonce db upgrade' if its schema is older "
                "than this tellonce"
            ) from exc
        if len(rows) != 1:
            raise StoreError(
                f"the store_identity table holds {len(rows)} rows instead of one; it was "
                "edited by hand: restore it from a backup",
                retriable=False,
            )
        return str(rows[0][0])

    def _all(self, statement: Any) -> list[Row[Any]]:
        with self.engine.connect() as connection:
            return list(connection.execute(statement))

    def events(self) -> list[AcceptedEvent]:
        return [event_from(r) for r in self._all(select(events).order_by(events.c.id))]

    def decisions(self) -> list[Decision]:
        return [decision_from(r) for r in self._all(select(decisions).order_by(decisions.c.id))]

    def rejections(self) -> list[RejectionRecord]:
        return [rejection_from(r) for r in self._all(select(rejections).order_by(rejections.c.id))]

    def audit_records(self, start: int = 0, stop: int | None = None) -> Iterator[AuditRecord]:
        """Leaves ``start`` to ``stop`` (exclusive) in order, streamed."""
        query = select(audit_leaves).where(audit_leaves.c.leaf_index >= start)
        if stop is not None:
            query = query.where(audit_leaves.c.leaf_index < stop)
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=2000).execute(
                query.order_by(audit_leaves.c.leaf_index)
            )
            try:
                for row in result:
                    yield audit_from(row)
            finally:
                # A reader that stops early (a verifier at the first bad leaf) must not leave
                # PostgreSQL's server-side cursor open.
                result.close()

    def checkpoints(self) -> list[Checkpoint]:
        query = select(audit_checkpoints).order_by(audit_checkpoints.c.seq)
        return [checkpoint_from(r) for r in self._all(query)]

    def leaf_hashes(self, stop: int | None = None) -> list[bytes]:
        query = select(audit_leaves.c.leaf_hash).order_by(audit_leaves.c.leaf_index)
        if stop is not None:
            query = query.where(audit_leaves.c.leaf_index < stop)
        return [bytes.fromhex(r[0]) for r in self._all(query)]

    def deliveries(self) -> list[Delivery]:
        query = select(deliveries).order_by(deliveries.c.recorded_at)
        return [delivery_from(r) for r in self._all(query)]

    def consents(self) -> list[ConsentRevision]:
        query = select(consent_revisions).order_by(consent_revisions.c.id)
        return [revision_from(r) for r in self._all(query)]

    def awaiting_receipt(self, recipient: str) -> int:
        """Notifications published to ``recipient`` that no receipt answered yet."""
        answered = select(deliveries.c.notification_id).where(
            deliveries.c.notification_id == outbox.c.message_id
        )
        query = (
            select(func.count())
            .select_from(outbox)
            .where(
                outbox.c.topic == notify_topic(recipient),
                outbox.c.published_at.is_not(None),
                ~answered.exists(),
            )
        )
        return int(self._all(query)[0][0])

    def link_count(self) -> int:
        return int(self._all(select(func.count()).select_from(identity_links))[0][0])

    def erasures(self) -> dict[str, datetime]:
        query = select(persons.c.person_id, persons.c.erased_at).where(
            persons.c.erased_at.is_not(None)
        )
        return {str(r.person_id): as_utc(r.erased_at) for r in self._all(query)}

    def outbox_backlog(self) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        return int(self._all(query)[0][0])

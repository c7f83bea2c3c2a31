"""The outbox role of the in-memory store (``hub.adapters.memory``): the relay's reads and
marks on a transaction's private copy of the data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from hub.model import OutboxMessage
from hub.wire.topics import NOTIFY_PREFIX

if TYPE_CHECKING:
    from hub.adapters.memory_state import MemoryState


class MemoryOutbox:
    """Implements hub.ports.OutboxRecorder (but ``add_outbox``) for ``MemoryTransaction``."""

    @property
    def state(self) -> MemoryState:
        raise NotImplementedError("MemoryTransaction provides the state")

    def claim_relay(self) -> bool:
        return True  # transactions are serialized: the relay's turn is always free

    # -- relay -------------------------------------------------------------------------------

    def pending_outbox(self, limit: int) -> list[OutboxMessage]:
        published = self.state.published
        pending = [m for m in self.state.outbox if m.message_id not in published]
        return pending[: max(limit, 0)]

    def purge_outbox(self, before: datetime, limit: int) -> int:
        state = self.state

        def done(m: OutboxMessage) -> bool:
            if m.person_id is None:
                published = state.published.get(m.message_id)
                return published is not None and published < before
            receipt = state.deliveries.get(m.message_id)
            return receipt is not None and receipt.recorded_at < before

        gone = {m.message_id for m in state.outbox if done(m)}
        gone = set(sorted(gone, key=[m.message_id for m in state.outbox].index)[: max(limit, 0)])
        state.outbox = [m for m in state.outbox if m.message_id not in gone]
        return len(gone)

    def unreceipted_outbox(
        self, published_before: datetime, limit: int, max_republished: int
    ) -> list[OutboxMessage]:
        published, answered = self.state.published, self.state.deliveries
        again = self.state.republished
        stale = [
            m
            for m in self.state.outbox
            if m.topic.startswith(NOTIFY_PREFIX)
            and m.message_id in published
            and published[m.message_id] < published_before
            and m.message_id not in answered
            and again.get(m.message_id, 0) < max_republished
        ]
        return stale[: max(limit, 0)]

    def mark_republished(self, message_ids: Sequence[str], at: datetime) -> None:
        self.mark_published(message_ids, at)
        for message_id in message_ids:
            self.state.republished[message_id] = self.state.republished.get(message_id, 0) + 1

    def mark_published(self, message_ids: Sequence[str], at: datetime) -> None:
        known = self.state.unique.get("uq_outbox_message_id", set())
        for message_id in message_ids:
            if message_id in known:
                self.state.published[message_id] = at

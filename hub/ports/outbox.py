"""The outbox role: messages written in the transaction that decided them, published later by
the relay (DESIGN.md 9), and republished while no receipt answers a notification."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from hub.model import OutboxMessage


class OutboxRecorder(Protocol):
    """Messages to publish, in the order they were added (increasing ``seq``). A message with a
    ``person_id`` is kept sealed under that person's data key (key, value, ``ce_subject``) and
    given back opened; the messages of an erased person are never given back."""

    def add_outbox(self, messages: Sequence[OutboxMessage]) -> None:
        """Queue ``messages`` in one write, each with the next ``seq`` in list order;
        RecordStoreError when an id is taken."""

    def claim_relay(self) -> bool:
        """Take the relay's turn until this transaction ends: True, or False at once when
        another open transaction holds it (one relay publishes at a time, in ``seq`` order)."""

    def pending_outbox(self, limit: int) -> list[OutboxMessage]:
        """Up to ``limit`` messages never published, lowest ``seq`` first."""

    def mark_published(self, message_ids: Sequence[str], at: datetime) -> None:
        """Record these messages as published at ``at``; unknown ids are ignored."""

    def unreceipted_outbox(
        self, published_before: datetime, limit: int, max_republished: int
    ) -> list[OutboxMessage]:
        """Notifications published before then that no receipt answered and that were
        republished fewer than ``max_republished`` times, oldest first."""

    def mark_republished(self, message_ids: Sequence[str], at: datetime) -> None:
        """Record these messages as published again at ``at``, counting one more republish."""

    def purge_outbox(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` messages no longer needed: a notification whose receipt was
        recorded before ``before``, or a message no receipt answers (``person_id`` None, e.g. a
        rejection) published before ``before``; how many it deleted."""


class OutboxStore(Protocol):
    """What the relay needs of a store: transactions over the outbox alone (any ``Store`` is
    one)."""

    def transaction(self) -> AbstractContextManager[OutboxRecorder]:
        """A new transaction: committed when the block exits normally, rolled back otherwise."""

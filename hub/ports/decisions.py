"""The decisions role: the results of processing a life event (the event accepted once, one
decision per recipient) and the rejections of records that could not be processed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from hub.model import AcceptedEvent, Decision, RejectionRecord


class DecisionRecorder(Protocol):
    """Accepted events, their per-recipient decisions, and rejected records."""

    def known_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those of the ``(source, event id)`` keys accepted already."""

    def add_event(self, event: AcceptedEvent) -> None:
        """Record an accepted event; RecordStoreError when its (source, event id) is taken."""

    def add_decision(self, decision: Decision) -> None:
        """Record a decision on an accepted event; RecordStoreError when the event is unknown,
        the (event, recipient) was decided already, or the notification id is taken."""

    def add_rejection(self, rejection: RejectionRecord) -> None:
        """Record a rejected record; RecordStoreError when its (topic, partition, offset) is
        taken."""

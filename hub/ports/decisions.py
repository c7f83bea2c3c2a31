"""The decisions role: the results of processing a life event (the event accepted once, one
decision per recipient) and the rejections of records that could not be processed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from hub.model import AcceptedEvent, Decision, RejectionRecord


class DecisionRecorder(Protocol):
    """Accepted events, their per-recipient decisions, and rejected records."""

    def known_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those of the ``(source, event id)`` keys accepted already."""

    def add_events(self, events: Sequence[AcceptedEvent]) -> None:
        """Record accepted events in one write; RecordStoreError when a (source, event id) is
        taken, by an earlier one or within ``events``."""

    def add_decisions(self, decisions: Sequence[Decision]) -> None:
        """Record decisions on accepted events in one write; RecordStoreError when an event is
        unknown, an (event, recipient) was decided already or a notification id is taken."""

    def add_rejections(self, rejections: Sequence[RejectionRecord]) -> None:
        """Record rejected records in one write; RecordStoreError when a (topic, partition,
        offset) is taken."""

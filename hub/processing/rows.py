"""The rows of one micro-batch, collected per table while its records are processed and
written at the end with one call per table, so no record costs a database round trip of its
own (issue 10). They are written in the batch's transaction, so a row the database refuses
still fails the whole batch and the worker's bisection finds its record."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from consent.model import ConsentRevision
from hub.model import (
    AcceptedEvent,
    AppliedConsentEvent,
    Decision,
    OutboxMessage,
    RejectionRecord,
)
from hub.ports import Transaction


@dataclass(slots=True)
class BatchRows:
    """Rows to write per table, each list in the order its records came in."""

    events: list[AcceptedEvent] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    rejections: list[RejectionRecord] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)
    consents: list[ConsentRevision] = field(default_factory=list)
    consent_events: list[AppliedConsentEvent] = field(default_factory=list)

    def write(self, tx: Transaction) -> None:
        """One write per table that has rows; events before the decisions that name them."""
        if self.events:
            tx.add_events(self.events)
        if self.decisions:
            tx.add_decisions(self.decisions)
        if self.rejections:
            tx.add_rejections(self.rejections)
        if self.outbox:
            tx.add_outbox(self.outbox)
        if self.consents:
            tx.add_consents(self.consents)
        if self.consent_events:
            tx.add_consent_events(self.consent_events)


def save_offsets(tx: Transaction, group: str, next_offsets: dict[tuple[str, int], int]) -> None:
    """Save the next offsets of a batch, (topic, partition) to offset: one call per topic."""
    by_topic: dict[str, dict[int, int]] = defaultdict(dict)
    for (topic, partition), next_offset in next_offsets.items():
        by_topic[topic][partition] = next_offset
    for topic, offsets in by_topic.items():
        tx.save_offsets(group, topic, offsets)

"""Sample records for store tests: one builder per record kind, all at the fixed time ``T0``,
with values every store can hold (ids within their column widths, hashes in hex)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consent.model import ConsentRevision, ConsentState, Evidence
from consent.rules import next_revision
from hub.model import (
    AcceptedEvent,
    AuditRecord,
    Checkpoint,
    Decision,
    DecisionOutcome,
    Delivery,
    InboundMessage,
    OutboxMessage,
    RejectionRecord,
)
from hub.ports import Transaction
from hub.wire.topics import CONSENT_TOPIC, REJECTED_TOPIC

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
EVIDENCE = Evidence("counter", "staff-042", T0)
SOURCE = "bc-service-bc"


def event(event_id: str = "evt-1", offset: int = 0) -> AcceptedEvent:
    return AcceptedEvent(SOURCE, event_id, "AddressChanged", T0, "p-1", "t", 0, offset, T0)


def decision(
    recipient: str = "bc-msp", notification_id: str | None = "n-1", event_id: str = "evt-1"
) -> Decision:
    outcome = DecisionOutcome.DISCLOSED if notification_id else DecisionOutcome.WITHHELD
    fields = ("street",) if notification_id else ()
    return Decision(
        SOURCE, event_id, recipient, outcome, "given", None, notification_id, fields, T0
    )


def outbox(message_id: str, topic: str = REJECTED_TOPIC) -> OutboxMessage:
    return OutboxMessage(message_id, topic, b"k", b"v", [("ce_id", b"\x00\xff")], T0)


def rejection(offset: int) -> RejectionRecord:
    return RejectionRecord("t", 0, offset, "bad_header", "ce_id: missing", None, None, T0)


def consent(person: str = "p-1", history: tuple[ConsentRevision, ...] = ()) -> ConsentRevision:
    state = ConsentState.WITHDRAWN if history else ConsentState.GIVEN
    at = T0 + len(history) * MINUTE
    return next_revision(
        list(history),
        person_id=person,
        recipient="bc-msp",
        event_type="AddressChanged",
        state=state,
        evidence=Evidence("counter", "staff", at),
    )


def leaves(start: int, count: int) -> list[AuditRecord]:
    """Leaves ``start`` onwards, chained by index (the store keeps hashes, it does not check)."""
    return [
        AuditRecord(i, "accepted", {"n": i}, T0, f"{max(i - 1, 0):064x}", f"{i + 1:064x}")
        for i in range(start, start + count)
    ]


def checkpoint(seq: int, size: int) -> Checkpoint:
    return Checkpoint(seq, size, "ab" * 32, T0, "ed25519:0123456789abcdef", "c2ln", ("cd" * 32,))


def delivery(notification_id: str = "n-1", status: str = "delivered", minutes: int = 0) -> Delivery:
    return Delivery(notification_id, "bc-msp", status, "webhook", None, T0 + minutes * MINUTE)


def message(offset: int = 3) -> InboundMessage:
    return InboundMessage(CONSENT_TOPIC, 0, offset, b"k", b"v")


def decided(tx: Transaction, *notification_ids: str | None) -> None:
    """Person p-1, event evt-1, and one decision per notification id (recipients r-0, r-1...)."""
    tx.add_person("p-1", T0)
    tx.add_events([event()])
    tx.add_decisions([decision(f"r-{n}", n_id) for n, n_id in enumerate(notification_ids)])

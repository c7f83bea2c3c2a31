"""Receipts from connectors: one delivery status and one audit leaf per real change, no more."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from hub.adapters.avro import AvroCodec
from hub.adapters.memory import MemoryStore
from hub.audit.oversight import reconcile, verify_store
from hub.errors import StoreError
from hub.model import AcceptedEvent, Decision, DecisionOutcome, Delivery, InboundMessage
from hub.processing.receipts import RECEIPT_SCHEMA, DeliveryIntake, ReceiptSummary
from hub.testing.fakes import FaultyCodec
from hub.wire.topics import RECEIPTS_TOPIC
from tests.unit.conftest import PSEUDONYMS

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
GROUP = "tellonce-hub"
SOURCE, EVENT = "bc-service-bc", "evt-1"
NOTIFIED = {"n-msp": "bc-msp", "n-cra": "cra-individual"}  # notification id -> recipient


@pytest.fixture
def decided(store: MemoryStore) -> MemoryStore:
    """One accepted event, disclosed to two recipients and withheld from a third."""
    with store.transaction() as tx:
        tx.add_events([AcceptedEvent(SOURCE, EVENT, "AddressChanged", T0, None, "t", 0, 0, T0)])
        for notification, recipient in NOTIFIED.items():
            tx.add_decisions(
                [
                    Decision(
                        SOURCE,
                        EVENT,
                        recipient,
                        DecisionOutcome.DISCLOSED,
                        "consent_given",
                        "c",
                        notification,
                        ("new_address",),
                        T0,
                    )
                ]
            )
        tx.add_decisions(
            [
                Decision(
                    SOURCE,
                    EVENT,
                    "esdc-cpp",
                    DecisionOutcome.WITHHELD,
                    "no_consent",
                    None,
                    None,
                    (),
                    T0,
                )
            ]
        )
    return store


@pytest.fixture
def intake(codec: AvroCodec, clock: Callable[[], datetime]) -> DeliveryIntake:
    return DeliveryIntake(codec=codec, clock=clock, group_id=GROUP, pseudonyms=PSEUDONYMS)


class Connector:
    """Builds receipt records the way a connector reports them."""

    def __init__(self, codec: AvroCodec) -> None:
        self.codec = codec
        self.offset = 0

    def receipt(
        self,
        status: str,
        notification: str = "n-msp",
        *,
        recipient: str | None = None,
        minutes: int = 1,
        partition: int = 0,
        detail: str | None = None,
        sink: str = "webhook",
    ) -> InboundMessage:
        record: dict[str, Any] = {
            "notification_id": notification,
            "recipient": recipient or NOTIFIED.get(notification, "bc-msp"),
            "event_id": EVENT,
            "status": status,
            "sink": sink,
            "detail": detail,
            "recorded_at": T0 + timedelta(minutes=minutes),
        }
        return self.raw(self.codec.encode(RECEIPT_SCHEMA, record), partition)

    def raw(self, value: bytes | None, partition: int = 0) -> InboundMessage:
        self.offset += 1
        return InboundMessage(RECEIPTS_TOPIC, partition, self.offset - 1, b"k", value, [])


@pytest.fixture
def connector(codec: AvroCodec) -> Connector:
    return Connector(codec)


def run(store: MemoryStore, intake: DeliveryIntake, *messages: InboundMessage) -> ReceiptSummary:
    with store.transaction() as tx:
        return intake.process(tx, messages)


def leaves(store: MemoryStore) -> list[tuple[str, str]]:
    return [(r.kind, r.data["notification"]) for r in store.audit_records()]


def test_delivered_receipt_records_the_delivery_and_one_leaf(
    decided: MemoryStore, intake: DeliveryIntake, connector: Connector
) -> None:
    """DELIVERED: the notification's status is delivered and one `delivered` leaf says so."""
    summary = run(decided, intake, connector.receipt("DELIVERED", minutes=5))
    assert (summary.recorded, summary.repeated, summary.refused) == (1, 0, 0)
    assert decided.deliveries() == [
        Delivery("n-msp", "bc-msp", "delivered", "webhook", None, T0 + timedelta(minutes=5))
    ]
    [leaf] = decided.audit_records()
    assert leaf.kind == "delivered"
    assert leaf.data == {
        "notification": "n-msp",
        "event": PSEUDONYMS.event(SOURCE, EVENT),
        "recipient": "bc-msp",
        "sink": "webhook",
    }
    assert leaf.recorded_at == T0 + timedelta(minutes=5)


def test_duplicate_after_delivery_adds_nothing(
    decided: MemoryStore, intake: DeliveryIntake, connector: Connector
) -> None:
    """A redelivered notification reported as DUPLICATE, or DELIVERED again, adds no leaf."""
    run(decided, intake, connector.receipt("DELIVERED"))
    summary = run(
        decided,
        intake,
        connector.receipt("DUPLICATE", minutes=9),
        connector.receipt("DELIVERED", minutes=10),
    )
    assert (summary.recorded, summary.repeated) == (0, 2)
    assert leaves(decided) == [("delivered", "n-msp")]
    assert decided.deliveries()[0].recorded_at == T0 + timedelta(minutes=1)


def test_failure_then_delivery_records_both(
    decided: MemoryStore, intake: DeliveryIntake, connector: Connector
) -> None:
    """FAILED then DELIVERED: a delivery_failed leaf, then a delivered one; delivered is final."""
    run(decided, intake, connector.receipt("FAILED", detail="HTTP 503"))
    assert decided.deliveries()[0].status == "failed"
    assert decided.deliveries()[0].detail == "HTTP 503"
    run(decided, intake, connector.receipt("DELIVERED", minutes=2))
    late = run(decided, intake, connector.receipt("FAILED", minutes=3))
    assert late.repeated == 1
    assert leaves(decided) == [("delivery_failed", "n-msp"), ("delivered", "n-msp")]
    [delivery] = decided.deliveries()
    assert (delivery.status, delivery.recorded_at) == ("delivered", T0 + timedelta(minutes=2))


def test_receipts_of_one_batch_are_applied_in_order(
    decided: MemoryStore, intake: DeliveryIntake, connector: Connector
) -> None:
    """In one batch, FAILED, DELIVERED, DUPLICATE give two leaves, as they do in three batches."""
    summary = run(
        decided,
        intake,
        connector.receipt("FAILED"),
        connector.receipt("DELIVERED", minutes=2),
        connector.receipt("DUPLICATE", minutes=3),
        connector.receipt("DELIVERED", "n-cra"),
    )
    assert (summary.recorded, summary.repeated) == (3, 1)
    assert leaves(decided) == [
        ("delivery_failed", "n-msp"),
        ("delivered", "n-msp"),
        ("delivered", "n-cra"),
    ]


@pytest.mark.parametrize(
    ("notification", "recipient"),
    [("n-unknown", "bc-msp"), ("n-msp", "cra-individual")],
    ids=["unknown-notification", "other-recipient"],
)
def test_receipt_for_a_notification_not_issued_is_refused(
    decided: MemoryStore,
    intake: DeliveryIntake,
    connector: Connector,
    notification: str,
    recipient: str,
) -> None:
    """A receipt for no notification of ours, or from another recipient, records no delivery:
    it is refused, with a rejections row and a receipt_refused leaf naming only its position."""
    with capture_logs() as logs:
        summary = run(
            decided, intake, connector.receipt("DELIVERED", notification, recipient=recipient)
        )
    assert (summary.recorded, summary.refused) == (0, 1)
    assert decided.deliveries() == []
    [leaf] = decided.audit_records()
    assert (leaf.kind, leaf.data) == (
        "receipt_refused",
        {"position": f"{RECEIPTS_TOPIC}/0/0", "reason": "unknown_notification"},
    )
    [row] = decided.rejections()
    assert (row.topic, row.offset, row.reason) == (RECEIPTS_TOPIC, 0, "unknown_notification")
    assert [(e["event"], e["reason"]) for e in logs] == [
        ("receipt refused", "unknown_notification")
    ]


def test_garbage_is_refused_and_the_batch_goes_on(
    decided: MemoryStore, intake: DeliveryIntake, connector: Connector, codec: AvroCodec
) -> None:
    """Bytes that are not a receipt are refused (logged, audited); the good receipts still count,
    and the log still verifies and reconciles."""
    life_event = codec.encode(
        "ca.tellonce.lifeevents.NameChanged",
        {
            "subject_id": "SBC-1",
            "effective_date": T0.date(),
            "given_names": "A",
            "family_name": "B",
            "reason": "OTHER",
        },
    )
    with capture_logs() as logs:
        summary = run(
            decided,
            intake,
            connector.raw(b"\x00garbage"),
            connector.receipt("DELIVERED"),
            connector.raw(None),
            connector.raw(life_event),
            connector.receipt("DELIVERED", "n-cra"),
        )
    assert (summary.recorded, summary.refused) == (2, 3)
    kinds = [(r.kind, r.data.get("reason")) for r in decided.audit_records()]
    assert kinds == [
        ("receipt_refused", "unknown_schema"),
        ("delivered", None),
        ("receipt_refused", "empty_value"),
        ("receipt_refused", "unexpected_schema"),
        ("delivered", None),
    ]
    reasons = [e["reason"] for e in logs if e["event"] == "receipt refused"]
    assert reasons == ["unknown_schema", "empty_value", "unexpected_schema"]
    assert verify_store(decided, lambda message, signature: False, None).ok
    assert {t.fact: (t.leaves, t.facts) for t in reconcile(decided, PSEUDONYMS).tallies}[
        "refused receipts"
    ] == (3, 3)


def test_offsets_are_saved_for_every_receipt_read(
    decided: MemoryStore, intake: DeliveryIntake, connector: Connector
) -> None:
    """The next offset of each partition is stored, ignored and repeated receipts included."""
    summary = run(
        decided,
        intake,
        connector.receipt("DELIVERED", partition=0),
        connector.raw(b"junk", partition=1),
        connector.receipt("DUPLICATE", partition=0),
    )
    assert summary.next_offsets == {0: 3, 1: 2}
    with decided.transaction() as tx:
        assert tx.offsets(GROUP, RECEIPTS_TOPIC) == {0: 3, 1: 2}


def test_delivery_leaves_continue_the_log(
    decided: MemoryStore, intake: DeliveryIntake, connector: Connector
) -> None:
    """Leaves of later batches are numbered and linked after the earlier ones: the log verifies."""
    run(decided, intake, connector.receipt("FAILED"))
    run(decided, intake, connector.receipt("DELIVERED", minutes=2))
    run(decided, intake, connector.receipt("DELIVERED", "n-cra"))
    assert [r.index for r in decided.audit_records()] == [0, 1, 2]
    verdict = verify_store(decided, lambda message, signature: False, None)
    assert verdict.ok, verdict.problem


def test_failed_batch_records_no_delivery(
    decided: MemoryStore, intake: DeliveryIntake, connector: Connector
) -> None:
    """If the batch transaction fails, neither the status, its leaf nor the offset survives."""

    def process_then_fail() -> None:
        with decided.transaction() as tx:
            intake.process(tx, [connector.receipt("DELIVERED")])
            raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="went away"):
        process_then_fail()
    assert decided.deliveries() == []
    assert leaves(decided) == []
    with decided.transaction() as tx:
        assert tx.offsets(GROUP, RECEIPTS_TOPIC) == {}


def test_a_receipt_out_of_range_or_raising_is_refused_and_the_next_recorded(
    decided: MemoryStore,
    codec: AvroCodec,
    connector: Connector,
    clock: Callable[[], datetime],
) -> None:
    """A receipt stamped after 2100 is refused as out_of_range, one that makes reading raise
    (KeyError) as unprocessable; the receipt after them is recorded."""
    intake = DeliveryIntake(
        codec=FaultyCodec(codec, KeyError("status")),
        clock=clock,
        group_id=GROUP,
        pseudonyms=PSEUDONYMS,
    )
    late = codec.encode(
        RECEIPT_SCHEMA,
        {
            "notification_id": "n-msp",
            "recipient": "bc-msp",
            "event_id": EVENT,
            "status": "DELIVERED",
            "sink": "webhook",
            "recorded_at": datetime(2150, 1, 1, tzinfo=UTC),
        },
    )
    summary = run(
        decided,
        intake,
        connector.raw(late),
        connector.raw(late + b"poison"),
        connector.receipt("DELIVERED"),
    )
    assert (summary.recorded, summary.refused) == (1, 2)
    assert [r.reason for r in decided.rejections()] == ["out_of_range", "unprocessable"]
    assert [r.kind for r in decided.audit_records()] == [
        "receipt_refused",
        "receipt_refused",
        "delivered",
    ]


def test_a_store_failure_while_reading_receipts_fails_the_batch(
    decided: MemoryStore, codec: AvroCodec, connector: Connector, clock: Callable[[], datetime]
) -> None:
    """A retriable StoreError is not the receipt's fault: the batch fails, nothing is refused."""
    intake = DeliveryIntake(
        codec=FaultyCodec(codec, StoreError("database went away")),
        clock=clock,
        group_id=GROUP,
        pseudonyms=PSEUDONYMS,
    )
    with pytest.raises(StoreError):
        run(decided, intake, connector.receipt("DELIVERED"), connector.raw(b"x" + b"poison"))
    assert decided.rejections() == []
    assert decided.deliveries() == []


def test_a_sink_name_that_does_not_fit_is_refused_and_one_at_the_limit_recorded(
    decided: MemoryStore, intake: DeliveryIntake, connector: Connector
) -> None:
    """A sink of 65 characters (or none) is refused as invalid_receipt naming the field, not
    cut short; 64 characters are recorded as sent, with a long detail."""
    summary = run(
        decided,
        intake,
        connector.receipt("DELIVERED", sink="s" * 65),
        connector.receipt("DELIVERED", sink=""),
        connector.receipt("DELIVERED", sink="s" * 64, detail="d" * 10_000),
    )
    assert (summary.recorded, summary.refused) == (1, 2)
    assert [(r.reason, r.detail[:31]) for r in decided.rejections()] == [
        ("invalid_receipt", "sink: must be 1 to 64 character"),
    ] * 2
    (delivery,) = decided.deliveries()
    assert (delivery.sink, len(delivery.detail or "")) == ("s" * 64, 10_000)

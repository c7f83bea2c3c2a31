"""The delivery middleware that decides: Retries (try again, and when) and DeadLetters (park or
stop), and how a Chain combines decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.contract import DeliveryResult, Notification, Outcome
from hub.delivery import dead_letters
from hub.delivery.middleware import Chain, DeadLetters, Middleware, Retries
from hub.delivery.retries import RetryPolicy
from hub.errors import ConnectorStopped
from hub.model import InboundMessage
from hub.testing.fakes import RecordingProducer
from hub.wire.topics import dlq_topic, notify_topic

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
RECIPIENT = "cra-individual"
NOTICE = Notification(
    notification_id="n-1",
    recipient=RECIPIENT,
    subject_id="CRA-1",
    event_type="AddressChanged",
    event_id="e-1",
    event_source="bc-service-bc",
    event_time=T0,
    consent_revision="r-1",
)
RECORD = InboundMessage(
    notify_topic(RECIPIENT), 2, 41, b"CRA-1", b"avro", [("ce_id", b"n-1"), ("ce_type", b"t")]
)
RETRY = DeliveryResult(Outcome.RETRY, "the back office answered 503", "HTTP503")
FAILED = DeliveryResult(Outcome.FAILED, "no such client", "NoSuchClient")
CAPPED = RetryPolicy(timeout_ms=1_000, delay_initial_ms=100, delay_max_ms=400, jitter=lambda c: c)


def test_retries_waits_the_policy_backoff_for_a_retry_answer() -> None:
    """A RETRY answer within the budget is tried again after the policy's wait."""
    retries = Retries(CAPPED)
    assert retries.retry_delay(NOTICE, RETRY, 1, elapsed_s=0.0) == 0.1
    assert retries.retry_delay(NOTICE, RETRY, 3, elapsed_s=0.0) == 0.4


def test_retries_gives_up_on_failed_and_past_the_budget() -> None:
    """FAILED is never retried; RETRY is given up on once the wait would overrun the budget."""
    retries = Retries(CAPPED)
    assert retries.retry_delay(NOTICE, FAILED, 1, elapsed_s=0.0) is None
    assert retries.retry_delay(NOTICE, RETRY, 3, elapsed_s=0.7) is None


def test_dead_letters_parks_the_record_unchanged_with_error_headers() -> None:
    """errors.tolerance=all: key and value as they came, original headers, then the error ones;
    the DLQ topic is returned for the receipt."""
    producer = RecordingProducer()
    parked = DeadLetters(RECIPIENT, producer, lambda: T0).dead_letter(RECORD, "n-1", FAILED, 1)
    assert parked == dlq_topic(RECIPIENT)
    [sent] = producer.sent
    assert (sent.topic, sent.key, sent.value) == (dlq_topic(RECIPIENT), b"CRA-1", b"avro")
    assert sent.headers[:2] == RECORD.headers
    errors = dict(sent.headers[2:])
    assert errors[dead_letters.CLASS] == b"NoSuchClient"
    assert errors[dead_letters.MESSAGE] == b"no such client"
    assert (errors[dead_letters.PARTITION], errors[dead_letters.OFFSET]) == (b"2", b"41")


def test_dead_letters_with_tolerance_none_stops_and_parks_nothing() -> None:
    """errors.tolerance=none: ConnectorStopped, not retriable, and nothing is sent."""
    producer = RecordingProducer()
    stopping = DeadLetters(RECIPIENT, producer, lambda: T0, tolerate_all=False)
    with pytest.raises(ConnectorStopped, match=r"errors\.tolerance is none") as stopped:
        stopping.dead_letter(RECORD, "n-1", FAILED, 1)
    assert not stopped.value.retriable
    assert producer.sent == []


class Patient(Middleware):
    """Retries anything once more after 5 s, and parks nothing."""

    def retry_delay(
        self, notification: Notification, result: DeliveryResult, attempt: int, elapsed_s: float
    ) -> float | None:
        return 5.0 if attempt == 1 else None


def test_a_chain_takes_the_first_decision_given() -> None:
    """The middleware first in a Chain decides before those after it; no opinion passes on."""
    chain = Chain(Patient(), Retries(CAPPED))
    assert chain.retry_delay(NOTICE, FAILED, 1, elapsed_s=0.0) == 5.0
    assert chain.retry_delay(NOTICE, RETRY, 2, elapsed_s=0.0) == 0.2
    assert chain.retry_delay(NOTICE, FAILED, 2, elapsed_s=0.0) is None


def test_the_base_middleware_has_no_opinion() -> None:
    """Every decision hook of the base class answers None, so it never decides for others."""
    base = Middleware()
    assert base.retry_delay(NOTICE, RETRY, 1, elapsed_s=0.0) is None
    assert base.dead_letter(RECORD, "n-1", FAILED, 1) is None


def test_dlq_list_names_a_dead_letter_by_the_hubs_id_only() -> None:
    """A dead letter whose ce_id is a UUID the hub minted is shown by it; any other ce_id (a
    record written by someone else, which may hold anything) is shown as "-"."""
    minted = "0190d6a4-7c1e-7000-8000-000000000001"
    ours = InboundMessage(
        dlq_topic(RECIPIENT), 0, 1, b"CRA-1", b"avro", [("ce_id", minted.encode())]
    )
    forged = InboundMessage(
        dlq_topic(RECIPIENT), 0, 2, b"CRA-1", b"avro", [("ce_id", b"CRA-1 Jane Doe")]
    )
    unnamed = InboundMessage(dlq_topic(RECIPIENT), 0, 3, b"CRA-1", b"avro", [])
    shown = [dead_letters.DeadLetter.from_record(r).shown_id for r in (ours, forged, unnamed)]
    assert shown == [minted, "-", "-"]

"""The outbox relay: publish once, and again only for notifications no receipt answered; purge
what is past the retention, a bounded batch at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from hub.adapters.memory import MemoryStore
from hub.adapters.memory_outbox import MemoryOutbox
from hub.errors import StoreError
from hub.model import Delivery, OutboxMessage
from hub.processing.relay import Relay
from hub.testing.fakes import ManualClock, RecordingProducer

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOTIFY = "tellonce.notify.bc-msp.v1"


def published(producer: RecordingProducer) -> list[str | None]:
    """The ce_ids of what the relay sent and flushed, in order."""
    return [s.header("ce_id") for s in producer.flushed]


REJECTED = "tellonce.lifeevents.rejected.v1"
WEEK = timedelta(days=7)


def outbox_row(message_id: str, topic: str = NOTIFY, person_id: str | None = None) -> OutboxMessage:
    headers = [("ce_id", message_id.encode())]
    return OutboxMessage(message_id, topic, b"k", b"v", headers, T0, person_id=person_id)


def notice(message_id: str) -> OutboxMessage:
    return outbox_row(message_id, person_id="person-1")


def receipt(store: MemoryStore, message_id: str, at: datetime) -> None:
    """A delivery receipt recorded for ``message_id`` at ``at`` (the relay needs no decision)."""
    with store.transaction() as tx:
        tx.state.deliveries[message_id] = Delivery(
            message_id, "bc-msp", "delivered", "filedrop", None, at
        )


def kept(store: MemoryStore) -> list[str]:
    with store.transaction() as tx:
        return [m.message_id for m in tx.state.outbox]


def relay_over(
    store: MemoryStore, clock: ManualClock[datetime], producer: RecordingProducer
) -> Relay:
    return Relay(store, producer, clock, redeliver_after_s=60, redeliver_max=2)


def test_unreceipted_notifications_go_out_again_then_stop_at_the_cap() -> None:
    """No receipt after redeliver_after_s: published again, at most redeliver_max times."""
    store, clock, producer = MemoryStore(), ManualClock(T0), RecordingProducer()
    with store.transaction() as tx:
        tx.add_outbox([outbox_row("n-1")])
    relay = relay_over(store, clock, producer)
    assert relay.publish_pending() == 1
    assert relay.republish_unreceipted() == 0  # not old enough yet
    for _ in range(4):
        clock.now += timedelta(seconds=61)
        relay.republish_unreceipted()
    # The first publish and two more, no further.
    assert published(producer) == ["n-1", "n-1", "n-1"]
    assert relay.republished == 2


def test_answered_and_non_notification_rows_are_not_republished() -> None:
    """A receipt stops republishing; rejections (not notifications) are never republished."""
    store, clock, producer = MemoryStore(), ManualClock(T0), RecordingProducer()
    with store.transaction() as tx:
        tx.add_outbox([outbox_row("n-1")])
        tx.add_outbox([outbox_row("r-1", topic="tellonce.lifeevents.rejected.v1")])
    relay = relay_over(store, clock, producer)
    relay.publish_pending()
    with store.transaction() as tx:
        # a receipt recorded for n-1 (the decision it belongs to is not needed by the relay)
        tx.state.deliveries["n-1"] = Delivery("n-1", "bc-msp", "delivered", "filedrop", None, T0)
    clock.now += timedelta(seconds=61)
    assert relay.republish_unreceipted() == 0
    assert published(producer) == ["n-1", "r-1"]


def test_the_outbox_keeps_a_notice_for_the_retention_after_its_receipt_only() -> None:
    """A notice leaves the outbox once its receipt is older than the retention, a rejection once
    its publication is; a notice no receipt answered stays; the log says how many, nothing else."""
    store, clock, producer = MemoryStore(), ManualClock(T0), RecordingProducer()
    with store.transaction() as tx:
        tx.add_outbox([notice("n-1"), notice("n-2"), outbox_row("r-1", topic=REJECTED)])
    relay = Relay(store, producer, clock, retention=WEEK)
    assert relay.publish_pending() == 3
    receipt(store, "n-1", T0 + timedelta(hours=1))
    clock.now = T0 + WEEK  # the rejection's week is not over yet (published at T0, not before)
    relay.publish_pending()
    assert kept(store) == ["n-1", "n-2", "r-1"]
    clock.now = T0 + WEEK + timedelta(hours=2)
    with capture_logs() as logs:
        relay.publish_pending()
    assert kept(store) == ["n-2"]
    assert relay.purged == 2
    assert [e for e in logs if e["event"] == "outbox purged"] == [
        {"event": "outbox purged", "count": 2, "log_level": "info"}
    ]


def test_the_purge_runs_once_a_minute_in_bounded_batches_and_catches_up() -> None:
    """At most ``purge_batch`` rows per call; a full batch is followed at the next call, a
    partial one only a minute later."""
    store, clock, producer = MemoryStore(), ManualClock(T0), RecordingProducer()
    ids = [f"n-{i}" for i in range(5)]
    with store.transaction() as tx:
        tx.add_outbox([notice(i) for i in ids])
    relay = Relay(store, producer, clock, retention=timedelta(0), purge_batch=2)
    relay.publish_pending()  # nothing answered yet: nothing to purge
    for i in ids:
        receipt(store, i, T0)
    clock.now = T0 + timedelta(seconds=61)
    gone = [relay.purge_if_due() for _ in range(4)]
    assert gone == [2, 2, 1, 0]  # the last call comes within the minute after a partial batch
    assert kept(store) == []
    with store.transaction() as tx:
        tx.add_outbox([notice("late")])
    receipt(store, "late", T0)
    assert relay.purge_if_due() == 0  # still within that minute
    clock.now += timedelta(seconds=60)
    assert relay.purge_if_due() == 1


def test_a_failing_purge_is_logged_and_publishing_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database failure while purging is a warning; the relay still publishes."""

    def fail(self: MemoryOutbox, before: datetime, limit: int) -> int:
        raise StoreError("database error (OperationalError); rolled back", retriable=True)

    monkeypatch.setattr(MemoryOutbox, "purge_outbox", fail)
    store, clock, producer = MemoryStore(), ManualClock(T0), RecordingProducer()
    with store.transaction() as tx:
        tx.add_outbox([notice("n-1")])
    relay = Relay(store, producer, clock, retention=WEEK)
    with capture_logs() as logs:
        assert relay.publish_pending() == 1
    assert published(producer) == ["n-1"]
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "outbox purge failed; will try again"
    ]

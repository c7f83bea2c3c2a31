"""The outbox relay: publish once, and again only for notifications no receipt answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.adapters.memory import MemoryStore
from hub.model import Delivery, OutboxMessage
from hub.processing.relay import Relay
from hub.testing.fakes import ManualClock, RecordingProducer

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOTIFY = "tellonce.notify.bc-msp.v1"


def published(producer: RecordingProducer) -> list[str | None]:
    """The ce_ids of what the relay sent and flushed, in order."""
    return [s.header("ce_id") for s in producer.flushed]


def outbox_row(message_id: str, topic: str = NOTIFY) -> OutboxMessage:
    return OutboxMessage(message_id, topic, b"k", b"v", [("ce_id", message_id.encode())], T0)


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

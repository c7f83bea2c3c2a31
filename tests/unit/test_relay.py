"""The outbox relay: publish once, and again only for notifications no receipt answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.adapters.memory import MemoryStore
from hub.model import Delivery, Headers, OutboxMessage
from hub.processing.relay import Relay

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOTIFY = "tellonce.notify.bc-msp.v1"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Producer:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self._pending: list[str] = []

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        self._pending.append(dict(headers)["ce_id"].decode())

    def flush(self) -> None:
        self.sent += self._pending
        self._pending = []

    def close(self) -> None:
        """Nothing to release."""


def outbox_row(message_id: str, topic: str = NOTIFY) -> OutboxMessage:
    return OutboxMessage(message_id, topic, b"k", b"v", [("ce_id", message_id.encode())], T0)


def relay_over(store: MemoryStore, clock: Clock, producer: Producer) -> Relay:
    return Relay(store, producer, clock, redeliver_after_s=60, redeliver_max=2)


def test_unreceipted_notifications_go_out_again_then_stop_at_the_cap() -> None:
    """No receipt after redeliver_after_s: published again, at most redeliver_max times."""
    store, clock, producer = MemoryStore(), Clock(), Producer()
    with store.transaction() as tx:
        tx.add_outbox(outbox_row("n-1"))
    relay = relay_over(store, clock, producer)
    assert relay.publish_pending() == 1
    assert relay.republish_unreceipted() == 0  # not old enough yet
    for _ in range(4):
        clock.now += timedelta(seconds=61)
        relay.republish_unreceipted()
    assert producer.sent == ["n-1", "n-1", "n-1"]  # the first publish and two more, no further
    assert relay.republished == 2


def test_answered_and_non_notification_rows_are_not_republished() -> None:
    """A receipt stops republishing; rejections (not notifications) are never republished."""
    store, clock, producer = MemoryStore(), Clock(), Producer()
    with store.transaction() as tx:
        tx.add_outbox(outbox_row("n-1"))
        tx.add_outbox(outbox_row("r-1", topic="tellonce.lifeevents.rejected.v1"))
    relay = relay_over(store, clock, producer)
    relay.publish_pending()
    with store.transaction() as tx:
        # a receipt recorded for n-1 (the decision it belongs to is not needed by the relay)
        tx.state.deliveries["n-1"] = Delivery("n-1", "bc-msp", "delivered", "filedrop", None, T0)
    clock.now += timedelta(seconds=61)
    assert relay.republish_unreceipted() == 0
    assert producer.sent == ["n-1", "r-1"]

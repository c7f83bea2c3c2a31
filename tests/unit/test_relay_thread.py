"""The outbox relay in its own thread: it publishes what the worker committed, reports it to
the worker, retries what the infrastructure refused, and hands the worker any other failure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.adapters.memory import MemoryStore
from hub.errors import BrokerError, ConfigError
from hub.model import OutboxMessage
from hub.processing import pacing
from hub.processing.relay import Relay
from hub.processing.relay_thread import BackgroundRelay
from hub.testing.fakes import ManualClock, RecordingProducer
from tests.watchdog import wait_until

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
NOTIFY = "tellonce.notify.bc-msp.v1"


def add_notices(store: MemoryStore, first: int, count: int) -> None:
    with store.transaction() as tx:
        tx.add_outbox(
            [
                OutboxMessage(f"n-{n}", NOTIFY, b"k", b"v", [], T0)
                for n in range(first, first + count)
            ]
        )


class FailingProducer(RecordingProducer):
    """Refuses the first ``failures`` flushes with ``error``, then works."""

    def __init__(self, error: Exception, failures: int) -> None:
        super().__init__()
        self._error = error
        self._left = failures

    def flush(self) -> None:
        if self._left:
            self._left -= 1
            self.sent.clear()
            raise self._error
        super().flush()


def drained(relay: BackgroundRelay, expected: int) -> bool:
    """Collect what ``relay`` reports until ``expected`` rows were reported and it is quiet."""
    reported = 0

    def done() -> bool:
        nonlocal reported
        reported += relay.publish_pending()
        return reported >= expected and relay.quiet()

    wait_until(done, 10.0, f"{expected} rows reported")
    return reported == expected


def test_rows_published_in_the_background_are_reported_once_each() -> None:
    """Rows committed before and between calls go out in order, each counted exactly once."""
    store, producer = MemoryStore(), RecordingProducer()
    add_notices(store, 0, 3)
    relay = BackgroundRelay(Relay(store, producer, ManualClock(T0), batch=2))
    try:
        assert drained(relay, 3)
        add_notices(store, 3, 4)
        assert drained(relay, 4)
        assert relay.publish_pending() == 0
    finally:
        relay.close()
    assert [s.value for s in producer.flushed] == [b"v"] * 7
    assert store.outbox_backlog() == 0
    assert producer.closed


def test_a_broker_failure_is_retried_in_the_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A round the broker refused is retried after a backoff; the worker sees no error and
    the rows go out once the broker is back."""
    monkeypatch.setattr(pacing, "RETRY_DELAYS", (0.01,))
    store = MemoryStore()
    producer = FailingProducer(BrokerError("broker unreachable", retriable=True), failures=2)
    add_notices(store, 0, 2)
    relay = BackgroundRelay(Relay(store, producer, ManualClock(T0)))
    try:
        assert drained(relay, 2)
    finally:
        relay.close()
    assert len(producer.flushed) == 2
    assert store.outbox_backlog() == 0


def test_a_failure_that_retrying_cannot_mend_reaches_the_worker() -> None:
    """A non-retriable error stops the thread and is raised by the worker's next call, once."""
    store = MemoryStore()
    producer = FailingProducer(ConfigError("topic not allowed"), failures=1)
    add_notices(store, 0, 1)
    relay = BackgroundRelay(Relay(store, producer, ManualClock(T0)))
    raised: list[Exception] = []

    def failed() -> bool:
        try:
            relay.publish_pending()
        except ConfigError as exc:
            raised.append(exc)
            return True
        return False

    try:
        wait_until(failed, 10.0, "the thread failure raised")
        assert relay.publish_pending() == 0  # raised once; the thread has stopped
    finally:
        relay.close()
    assert str(raised[0]) == "topic not allowed"
    assert store.outbox_backlog() == 1  # not marked: republished by the next worker

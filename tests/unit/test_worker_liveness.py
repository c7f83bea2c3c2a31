"""Sharing the work: the relay bounds each call and yields its turn, and the worker stays in
its consumer group while it backs off and fits its batches to a time budget."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from hub.adapters.memory import MemoryStore
from hub.adapters.memory_outbox import MemoryOutbox
from hub.audit.log import CheckpointPolicy, Notary
from hub.model import InboundMessage, OutboxMessage
from hub.processing import pacing
from hub.processing import worker as worker_module
from hub.processing.life_events import BatchProcessor
from hub.processing.relay import Relay
from hub.processing.worker import HubWorker
from hub.testing.fakes import ListSource, ManualClock, RecordingProducer, UnusableSigner
from hub.wire.topics import LIFEEVENTS_TOPIC
from tests.watchdog import wait_until

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOTIFY = "tellonce.notify.bc-msp.v1"


def filled(count: int) -> MemoryStore:
    """A store with ``count`` notifications waiting in the outbox."""
    store = MemoryStore()
    with store.transaction() as tx:
        for n in range(count):
            tx.add_outbox([OutboxMessage(f"n-{n}", NOTIFY, b"k", b"v", [], T0)])
    return store


def test_a_relay_call_stops_after_its_time_budget() -> None:
    """With its budget spent, a call ends after the round under way; the next goes on."""
    store, producer = filled(5), RecordingProducer()
    relay = Relay(store, producer, ManualClock(T0), batch=2, budget_s=0.0)
    assert [relay.publish_pending() for _ in range(4)] == [2, 2, 1, 0]
    assert len(producer.flushed) == 5


def test_a_relay_without_the_turn_publishes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """While another relay holds the turn, a call returns at once and leaves the rows to it."""
    store, producer = filled(3), RecordingProducer()
    monkeypatch.setattr(MemoryOutbox, "claim_relay", lambda self: False)
    relay = Relay(store, producer, ManualClock(T0))
    assert relay.publish_pending() == 0
    assert relay.republish_unreceipted() == 0
    assert producer.flushed == []
    assert store.outbox_backlog() == 3


def test_a_worker_keeps_its_group_membership_while_it_backs_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch refused (the signer is gone) is retried after a backoff that polls with the
    partitions paused instead of sleeping past the consumer's max poll interval."""
    monkeypatch.setattr(pacing, "RETRY_DELAYS", (0.05,))
    monkeypatch.setattr(worker_module, "KEEP_ALIVE_S", 0.0)
    journal: list[str] = []
    store = MemoryStore()
    message = InboundMessage(LIFEEVENTS_TOPIC, 0, 0, b"k", b"v", [])
    worker = HubWorker(
        store=store,
        source=ListSource([message], journal=journal),
        processor=cast(BatchProcessor, None),  # never reached: the signer fails first
        relay=Relay(store, RecordingProducer(), ManualClock(T0)),
        clock=ManualClock(T0),
        notary=Notary(UnusableSigner(), CheckpointPolicy()),
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: "keep alive" in journal, 10.0, "no keep-alive during the backoff")
        # Stopped now, the worker could leave during the backoff, before reading the batch again.
        wait_until(lambda: "rewind" in journal, 10.0, "the batch was not read again")
    finally:
        stop.set()
        thread.join()
    assert "rewind" in journal  # and the batch is read again afterwards


@pytest.mark.parametrize(
    ("took_s", "before", "after"), [(2.0, 200, 100), (2.0, 1, 1), (0.1, 50, 100), (0.1, 200, 200)]
)
def test_batches_fit_the_time_budget(took_s: float, before: int, after: int) -> None:
    """A batch over the budget halves the next poll; one well under it doubles it, up to
    ``batch_size``."""
    worker = HubWorker(
        store=MemoryStore(),
        source=ListSource(),
        processor=cast(Any, None),
        relay=cast(Any, None),
        clock=ManualClock(T0),
        notary=cast(Any, None),
        batch_size=200,
        batch_budget_s=1.0,
    )
    worker._limit = before
    worker._fit_batch(took_s)
    assert worker._limit == after

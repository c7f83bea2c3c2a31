"""Two hub workers in one consumer group on PostgreSQL share the work without a duplicate:
every decision once, every notice once, an audit log that verifies and reconciles, no batch
aborted and no rebalance once both have joined."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import pytest
import structlog
from sqlalchemy import func, select, text

from hub.adapters.sql import SqlStore
from hub.adapters.sql.transaction import AUDIT_HEAD_LOCK
from hub.audit.oversight import reconcile
from hub.bootstrap import App
from hub.model import DecisionOutcome
from hub.processing.worker import HubWorker, Totals
from hub.wire.topics import LIFEEVENTS_TOPIC, notify_topic
from tests.watchdog import wait_until

from .harness import EVENT_TYPE, PUBLISHER, Harness, address_payload, settings_for, signing

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

WORKERS = 2
PEOPLE = 40
EVENTS = 2_000
SINKS = ("cra-individual", "bc-msp")
JOIN_BOUND_S = 60.0
RUN_BOUND_S = 300.0
# Longer than the consumer's max poll interval (5 s): a worker that waits for the audit head this
# long without polling is evicted from the group.
HEAD_HELD_S = 8
# What the worker logs when a batch failed and is retried (aborted, rolled back).
ABORTED = (
    "batch failed; will retry",
    "audit log unavailable; not accepting events until it recovers",
)


@pytest.fixture
def workers(harness: Harness) -> Iterator[list[HubWorker]]:
    """WORKERS hub workers in the hub's group, each with an App (engine, producer) of its own."""
    apps = [
        signing(App.from_settings(settings_for(harness.app.settings.store.url, harness.bootstrap)))
        for _ in range(WORKERS)
    ]
    made = [app.hub_worker(harness.kafka) for app in apps]
    try:
        yield made
    finally:
        for worker in made:
            worker.close()
        for app in apps:
            app.close()


def run_together(
    harness: Harness,
    workers: list[HubWorker],
    payloads: list[dict[str, Any]],
    around_publish: AbstractContextManager[object] | None = None,
) -> tuple[list[str], list[MutableMapping[str, Any]], int]:
    """Run the workers side by side until both joined, publish ``payloads`` (inside
    ``around_publish``), and stop them once every event is consumed and relayed: the event ids,
    the logs, and where the joins ended."""
    stop = threading.Event()

    def running(futures: list[Future[Totals]]) -> None:
        for future in futures:
            if future.done():
                future.result()  # raises what stopped the worker
                raise AssertionError("a hub worker stopped before the end of the run")

    with (
        structlog.testing.capture_logs() as logs,
        ThreadPoolExecutor(max_workers=WORKERS) as pool,
    ):
        futures = [pool.submit(worker.run, stop) for worker in workers]
        try:

            def joined() -> bool:
                running(futures)
                return all(worker.ready for worker in workers)

            wait_until(joined, JOIN_BOUND_S, "the workers did not both join the group")
            steady_from = len(logs)
            with around_publish or nullcontext():
                published = harness.publish(payloads)

            def done() -> bool:
                running(futures)
                consumed = harness.consumed(LIFEEVENTS_TOPIC) >= len(payloads)
                return consumed and harness.app.store.outbox_backlog() == 0

            wait_until(done, RUN_BOUND_S, "the workers did not handle every event", every_s=0.5)
        finally:
            stop.set()
        for future in futures:
            future.result()
    return published, logs, steady_from


def test_two_workers_decide_and_notify_each_event_once(
    harness: Harness, workers: list[HubWorker]
) -> None:
    """2 workers, one group, PostgreSQL: each (event, recipient) decided once, each notice on
    its topic once, audit verify and reconcile pass, no aborted batch, no rebalance once
    joined."""
    app = harness.app
    payloads = harness.address_stream(PEOPLE, EVENTS)

    published, logs, steady_from = run_together(harness, workers, payloads)

    aborted = [e for e in logs if e["event"] in ABORTED]
    assert aborted == [], f"{len(aborted)} batches aborted, the first: {aborted[0]}"
    revoked = [e for e in logs[steady_from:] if e["event"] == "partitions revoked" and e["count"]]
    assert revoked == [], f"{len(revoked)} rebalances after both workers joined"

    assert {e.event_id for e in app.store.events()} == set(published)
    recipients = Counter(p.id for p in app.directory.recipients_of(EVENT_TYPE, origin=PUBLISHER))
    decisions = app.store.decisions()
    by_event: dict[str, Counter[str]] = {}
    for d in decisions:
        by_event.setdefault(d.event_id, Counter())[d.recipient] += 1
    assert set(by_event) == set(published)
    assert all(counts == recipients for counts in by_event.values())

    for recipient in SINKS:
        disclosed = {
            str(d.notification_id)
            for d in decisions
            if d.recipient == recipient and d.outcome is DecisionOutcome.DISCLOSED
        }
        notices = Counter(
            harness.decode(r.value)["notification_id"]
            for r in harness.read(notify_topic(recipient))
        )
        twice = sum(n - 1 for n in notices.values())
        assert twice == 0, f"{twice} notices to {recipient} published more than once"
        assert set(notices) == disclosed

    assert app.verify_audit().ok
    assert reconcile(app.store, app.pseudonyms()).ok


def test_workers_queued_for_the_audit_head_stay_in_the_group(
    harness: Harness, workers: list[HubWorker]
) -> None:
    """A batch that holds the audit head longer than the max poll interval (here another
    writer's transaction) makes the workers queue for it without being evicted: no rebalance
    once joined, no aborted batch, every event decided once."""
    for i in range(PEOPLE):
        harness.client({PUBLISHER: f"SBC-{i}", "cra-individual": f"CRA-{i}"}, consents=SINKS[:1])
    payloads = [address_payload(f"SBC-{n % PEOPLE}") for n in range(200)]
    app = harness.app
    other = SqlStore.open(app.settings.store.url, vault=app.vault())  # another writer's
    engine = other.engine
    # A worker whose batch transaction has been waiting on the head past the max poll interval.
    queued_long = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE a.datname = current_database() AND l.locktype = 'advisory' AND NOT l.granted "
        f"AND clock_timestamp() - a.xact_start > interval '{HEAD_HELD_S} seconds'"
    )

    @contextmanager
    def head_held() -> Iterator[None]:
        """Hold the head while the events are published, until a worker queued past the max
        poll interval."""
        with engine.begin() as holder:
            holder.execute(select(func.pg_advisory_xact_lock(AUDIT_HEAD_LOCK)))
            yield
            wait_until(queued, JOIN_BOUND_S, "no worker queued for the audit head", every_s=0.5)

    def queued() -> bool:
        with engine.connect() as observer:  # a transaction each: pg_stat_activity is a snapshot
            return bool(observer.execute(queued_long).scalar())

    try:
        published, logs, steady_from = run_together(harness, workers, payloads, head_held())
    finally:
        other.close()

    aborted = [e for e in logs if e["event"] in ABORTED]
    assert aborted == [], f"{len(aborted)} batches aborted, the first: {aborted[0]}"
    revoked = [e for e in logs[steady_from:] if e["event"] == "partitions revoked" and e["count"]]
    assert revoked == [], f"{len(revoked)} rebalances after both workers joined"
    decided = Counter((d.event_id, d.recipient) for d in harness.app.store.decisions())
    assert {event_id for event_id, _ in decided} == set(published)
    assert set(decided.values()) == {1}


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """PostgreSQL only: SQLite serializes writers, so two workers never race there."""
    from .conftest import fresh_postgres_database

    with fresh_postgres_database("tellonce_two") as url:
        yield url

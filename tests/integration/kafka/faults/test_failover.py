"""Three Kafka nodes fail under a running tellonce: a life-events partition leader killed
(SIGKILL) and started again, then a notify partition leader, then the whole cluster restarted
on its data, while 5,000 life events are published steadily and ``tellonce hub run`` and three
``tellonce connector run`` processes (staging table on PostgreSQL) keep going by themselves.
Nothing is lost and nothing has two effects; the figures of each failover are printed."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from connectors.sqltable import database_url, staging_table
from hub.model import DecisionOutcome
from hub.wire.topics import LIFEEVENTS_TOPIC, connector_group, notify_topic
from tests.watchdog import wait_until

from ...conftest import fresh_postgres_database
from ...harness import Harness
from ..cluster import KafkaCluster, Node
from . import processes, topology, traffic
from .processes import Tellonce

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.postgres]

PEOPLE = 60
EVENTS = 5_000
PER_S = 75.0  # offered steadily: the run lasts about 67 s plus the faults' stalls
FIRST_KILL_AT = 700  # events acknowledged before each fault
SECOND_KILL_AT = 1_900
RESTART_AT = 3_100
OUTAGE_LIMIT_S = 90.0  # the cluster held down: the publisher's 30 s delivery timeout, and more
ABSORB_LIMIT_S = 90.0  # a fault absorbed: a record written after it consumed downstream
END_LIMIT_S = 300.0  # the last event decided, relayed, delivered and receipted
WATCHED = "cra-individual"  # the connector whose partition leader is killed


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """PostgreSQL, the production store (the staging sink writes to it too)."""
    with fresh_postgres_database("tellonce_faults") as url:
        yield url


def hub_progress(harness: Harness) -> dict[int, int]:
    """The hub's stored position on each life-events partition (next offset to read)."""
    with harness.app.store.transaction() as tx:
        return dict(tx.offsets(harness.app.settings.hub.group_id, LIFEEVENTS_TOPIC))


def connector_progress(kafka: KafkaCluster, recipient: str) -> dict[int, int]:
    """The connector's committed position on each partition of its notify topic."""
    return topology.group_offsets(kafka, connector_group(recipient), notify_topic(recipient))


def seconds_until(condition: Callable[[], bool], since: float, what: str) -> float:
    """Seconds from ``since`` until ``condition`` holds (bounded by ABSORB_LIMIT_S)."""
    wait_until(condition, ABSORB_LIMIT_S, what, every_s=0.2)
    return round(time.monotonic() - since, 1)


def kill_leader(
    kafka: KafkaCluster,
    topic: str,
    partition: int,
    progress: Callable[[], dict[int, int]],
    running: Callable[[], bool],
) -> dict[str, Any]:
    """SIGKILL the leader of ``topic[partition]``, wait until a record written to it after the
    kill was consumed, start the node again and wait until every replica is in sync."""
    node = topology.leader(kafka, topic, partition)
    assert node is not None, f"{topic}[{partition}] has no leader before the fault"
    end = topology.end_offsets(kafka, topic)[partition]
    killed = time.monotonic()
    kafka.stop_node(node, kill=True)

    def successor() -> Node | None:
        now = topology.leader(kafka, topic, partition)
        return now if now is not node else None

    new_leader = wait_until(
        successor, ABSORB_LIMIT_S, f"no new leader for {topic}[{partition}]", every_s=0.2
    )
    assert new_leader is not None
    elected = round(time.monotonic() - killed, 1)
    absorbed = seconds_until(
        lambda: running() and progress().get(partition, 0) > end,
        killed,
        f"nothing written to {topic}[{partition}] after its leader died was consumed",
    )
    kafka.start_node(node)
    kafka.wait_ready()
    in_sync = round(topology.wait_in_sync(kafka), 1)
    return {
        "topic": f"{topic}[{partition}]",
        "killed node": node.node_id,
        "new leader": new_leader.node_id,
        "new leader elected s": elected,
        "absorbed s": absorbed,
        "back in sync s": in_sync,
    }


def restart_cluster(
    kafka: KafkaCluster,
    harness: Harness,
    publisher: traffic.Publisher,
    running: Callable[[], bool],
) -> dict[str, Any]:
    """Stop every node and keep the cluster down until the publisher gave up on a chunk (its
    delivery timeout, 30 s, ran out: it sends the chunk again, same ce_ids); start them all
    again on their data; then wait until the hub has decided, and a connector delivered,
    records written after the restart."""
    events_end = topology.end_offsets(kafka, LIFEEVENTS_TOPIC)
    notices_end = topology.end_offsets(kafka, notify_topic(WATCHED))
    failed = len(publisher.failures)
    began = time.monotonic()
    kafka.stop()
    wait_until(
        lambda: running() and len(publisher.failures) > failed,
        OUTAGE_LIMIT_S,
        "the publisher never gave up on a chunk while the cluster was down",
        every_s=0.2,
    )
    kafka.start()
    ready = time.monotonic()
    hub_back = seconds_until(
        lambda: (
            running() and any(o > events_end.get(p, 0) for p, o in hub_progress(harness).items())
        ),
        ready,
        "the hub decided nothing published after the cluster restart",
    )
    connector_back = seconds_until(
        lambda: (
            running()
            and any(
                o > notices_end.get(p, 0) for p, o in connector_progress(kafka, WATCHED).items()
            )
        ),
        ready,
        f"the {WATCHED} connector delivered nothing published after the cluster restart",
    )
    in_sync = round(topology.wait_in_sync(kafka), 1)
    return {
        "cluster down s": round(ready - began, 1),
        "hub deciding again after ready s": hub_back,
        "connector delivering again after ready s": connector_back,
        "back in sync s": in_sync,
    }


def sink_rows(url: str) -> list[str]:
    """The notification id of every row of the staging table (all recipients)."""
    engine = create_engine(database_url(url))
    try:
        with engine.connect() as connection:
            return list(connection.scalars(select(staging_table().c.notification_id)))
    finally:
        engine.dispose()


def test_leaders_killed_and_cluster_restarted_lose_and_repeat_nothing(
    harness: Harness, kafka: KafkaCluster, staging_url: str, tmp_path: Path
) -> None:
    """5,000 events across a killed life-events leader, a killed notify leader and a cluster
    restart: each event recorded once, one decision per (event, recipient), each disclosed
    notice once in the staging table with a delivered receipt, audit verify and reconcile 0."""
    app = harness.app
    started = time.monotonic()
    traffic.population(harness, PEOPLE)
    planned = traffic.plan(PEOPLE, EVENTS)
    publisher = traffic.Publisher(harness, planned, PER_S)
    sink = ("--sink", "sqltable", "--option", f"url={staging_url}")
    started_processes: list[Tellonce] = []
    figures: dict[str, Any] = {}
    try:
        started_processes.append(processes.start(harness, tmp_path, "hub", "hub", "run"))
        for recipient in traffic.CONNECTED:
            started_processes.append(
                processes.start(harness, tmp_path, recipient, "connector", "run", recipient, *sink)
            )

        def running() -> bool:
            return all(p.check() for p in started_processes)

        publisher.start()
        wait_until(
            lambda: running() and publisher.count >= FIRST_KILL_AT, 120, "publishing stalled"
        )
        figures["life-events leader killed"] = kill_leader(
            kafka, LIFEEVENTS_TOPIC, 0, lambda: hub_progress(harness), running
        )
        wait_until(
            lambda: running() and publisher.count >= SECOND_KILL_AT, 120, "publishing stalled"
        )
        figures["notify leader killed"] = kill_leader(
            kafka, notify_topic(WATCHED), 0, lambda: connector_progress(kafka, WATCHED), running
        )
        wait_until(lambda: running() and publisher.count >= RESTART_AT, 120, "publishing stalled")
        figures["cluster restarted"] = restart_cluster(kafka, harness, publisher, running)
        publisher.finish(END_LIMIT_S)
        published = set(publisher.acknowledged)

        def finished() -> bool:
            running()
            decided = {e.event_id for e in app.store.events()} >= published
            return decided and app.store.outbox_backlog() == 0 and delivered_all()

        def delivered_all() -> bool:
            disclosed = {
                str(d.notification_id)
                for d in app.store.decisions()
                if d.outcome is DecisionOutcome.DISCLOSED
            }
            return (
                set(sink_rows(staging_url)) >= disclosed
                and all(d.status == "delivered" for d in app.store.deliveries())
                and len(app.store.deliveries()) >= len(disclosed)
            )

        wait_until(
            finished,
            END_LIMIT_S,
            "the run did not finish: events, relay or deliveries",
            every_s=1.0,
        )
        totals = {p.name: p.stop() for p in started_processes}
    except BaseException:
        publisher.halt()
        for p in started_processes:
            p.kill()
        for p in started_processes:
            print(f"--- {p.name} ({p.log}):\n{p.tail()}")
        for node in kafka.nodes:
            print(f"--- node {node.node_id} ({node.log}):\n{node.tail()}")
        print(json.dumps(figures, indent=2))
        raise

    # Lost: nothing. Every acknowledged event recorded once.
    events = app.store.events()
    assert len(published) == EVENTS
    assert Counter(e.event_id for e in events).most_common(1)[0][1] == 1
    assert {e.event_id for e in events} == published

    # One decision per (event, recipient), for exactly the recipients the directory names.
    expected = {
        (p.source, p.event_type): Counter(
            r.id for r in app.directory.recipients_of(p.event_type, origin=p.source)
        )
        for p in planned
    }
    kind = {e.event_id: (e.source, e.event_type) for e in events}
    decisions = app.store.decisions()
    by_event: dict[str, Counter[str]] = {}
    for d in decisions:
        by_event.setdefault(d.event_id, Counter())[d.recipient] += 1
    assert set(by_event) == published
    wrong = [e for e, counts in by_event.items() if counts != expected[kind[e]]]
    assert wrong == [], f"{len(wrong)} events decided other than once per recipient"

    # Every disclosed notice delivered once into the sink, with a delivered receipt.
    disclosed = Counter(d.recipient for d in decisions if d.outcome is DecisionOutcome.DISCLOSED)
    assert set(disclosed) == set(traffic.CONNECTED)
    ids = {str(d.notification_id) for d in decisions if d.outcome is DecisionOutcome.DISCLOSED}
    rows = Counter(sink_rows(staging_url))
    assert set(rows.values()) == {1}
    assert set(rows) == ids
    assert len(rows) == sum(disclosed.values())
    deliveries = app.store.deliveries()
    assert {d.notification_id for d in deliveries} == ids
    assert {d.status for d in deliveries} == {"delivered"}

    # Repeats absorbed: each record of an event sent again was decided as a duplicate, each
    # notice delivered again was a duplicate to the sink.
    records = sum(topology.end_offsets(kafka, LIFEEVENTS_TOPIC).values())
    assert publisher.resent > 0, "the publisher sent nothing again: the outage was too short"
    hub = totals["hub"]["hub"]
    assert (hub["accepted"], hub["duplicates"]) == (EVENTS, records - EVENTS)
    for recipient in traffic.CONNECTED:
        assert totals[recipient]["delivered"] == disclosed[recipient]
        assert totals[recipient]["failed"] == 0

    for command in (("audit", "verify"), ("audit", "reconcile")):
        done = processes.run(harness, *command)
        assert done.returncode == 0, f"tellonce {' '.join(command)}: {done.stdout}{done.stderr}"

    notices = {r: sum(topology.end_offsets(kafka, notify_topic(r)).values()) for r in disclosed}
    figures["run"] = {
        "events": EVENTS,
        "decisions": len(decisions),
        "disclosed": dict(disclosed),
        "life-event records on the topic": records,
        "events sent again by the publisher": publisher.resent,
        "failed publisher flushes": len(publisher.failures),
        "notices on the topics": notices,
        "totals": totals,
        "lost": 0,
        "seconds": round(time.monotonic() - started, 1),
    }
    print("fault figures:", json.dumps(figures, indent=2))

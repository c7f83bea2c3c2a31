"""The faults themselves, each injected while tellonce runs and measured until a record
written after it has been consumed downstream: a partition leader SIGKILLed then started
again, and the whole cluster stopped then started on its data. Every wait is bounded; a
``running`` check fails the wait as soon as a tellonce process has exited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hub.wire.topics import LIFEEVENTS_TOPIC, connector_group, notify_topic
from tests.watchdog import wait_until

from ...harness import Harness
from ..cluster import KafkaCluster, Node
from . import topology, traffic

OUTAGE_LIMIT_S = 90.0  # the cluster held down: the publisher's 30 s delivery timeout, and more
ABSORB_LIMIT_S = 90.0  # a fault absorbed: a record written after it consumed downstream


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
    watched: str,
    running: Callable[[], bool],
) -> dict[str, Any]:
    """Stop every node and keep the cluster down until the publisher gave up on a chunk (its
    delivery timeout, 30 s, ran out: it sends the chunk again, same ce_ids; its last chunk,
    held back until the cluster is down, makes sure it has one to send); start them all
    again on their data; then wait until the hub has decided, and the ``watched`` connector
    delivered, records written after the restart. A node that does not come back fails the
    test (``wait_ready``) and the fixture's teardown stops the others."""
    events_end = topology.end_offsets(kafka, LIFEEVENTS_TOPIC)
    notices_end = topology.end_offsets(kafka, notify_topic(watched))
    failed = len(publisher.failures)
    began = time.monotonic()
    kafka.stop()
    publisher.release()

    def gave_up() -> bool:
        if publisher.error is not None:
            raise AssertionError(f"the publisher stopped: {publisher.error!r}")
        return running() and len(publisher.failures) > failed

    wait_until(
        gave_up,
        OUTAGE_LIMIT_S,
        lambda: (
            "the publisher never gave up on a chunk while the cluster was down "
            f"({publisher.count} of {len(publisher.planned)} events acknowledged)"
        ),
        every_s=0.2,
    )
    down = time.monotonic() - began
    restarted = time.monotonic()
    for node in kafka.nodes:
        kafka.start_node(node)
    kafka.wait_ready()
    ready = time.monotonic() - restarted
    hub_back = seconds_until(
        lambda: (
            running() and any(o > events_end.get(p, 0) for p, o in hub_progress(harness).items())
        ),
        restarted,
        "the hub decided nothing published after the cluster restart",
    )
    connector_back = seconds_until(
        lambda: (
            running()
            and any(
                o > notices_end.get(p, 0) for p, o in connector_progress(kafka, watched).items()
            )
        ),
        restarted,
        f"the {watched} connector delivered nothing published after the cluster restart",
    )
    in_sync = round(topology.wait_in_sync(kafka), 1)
    return {
        "cluster down s": round(down, 1),
        # From the nodes' start: to every broker answering, to the first record written after
        # the restart decided by the hub, and delivered by the connector.
        "ready s": round(ready, 1),
        "hub deciding again s": hub_back,
        "connector delivering again s": connector_back,
        "back in sync s": in_sync,
    }

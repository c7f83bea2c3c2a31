"""What the fault tests ask the cluster: who leads a partition, whether every replica is back
in sync, where a topic ends and where a consumer group stands. Each question is bounded and
asked of the nodes that run (a killed one refuses connections at once)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from ..cluster import KafkaCluster, Node

T = TypeVar("T")

ASK_LIMIT_S = 30.0  # one answer while a leader is being elected takes a few seconds
IN_SYNC_LIMIT_S = 90.0  # a restarted node catching up on every partition, on 2 busy cores


def running_bootstrap(cluster: KafkaCluster) -> str:
    """The addresses of the nodes that run (the clients' bootstrap names all three)."""
    return ",".join(n.address for n in cluster.nodes if n.running)


def ask(cluster: KafkaCluster, question: Callable[[KafkaAdminClient], T], what: str) -> T:
    """``question`` asked of an admin client on the running nodes, again until it answers
    (leaders move, a coordinator is elected), for ASK_LIMIT_S at most."""
    deadline = time.monotonic() + ASK_LIMIT_S
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=running_bootstrap(cluster),
                client_id="tellonce-faults",
                request_timeout_ms=5_000,
            )
            try:
                return question(admin)
            finally:
                admin.close()
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"the cluster did not tell {what}: {exc!r}") from exc
            time.sleep(0.5)


def partitions(cluster: KafkaCluster, topics: list[str] | None = None) -> list[dict[str, Any]]:
    """Every partition of ``topics`` (all when None, Kafka's own included), each with its
    topic's name added."""
    described = ask(cluster, lambda admin: admin.describe_topics(topics), "its topics")
    return [{"topic": t["name"], **p} for t in described for p in t["partitions"]]


def leader(cluster: KafkaCluster, topic: str, partition: int) -> Node | None:
    """The node that leads ``topic``'s ``partition`` now; None while none does (an election)."""
    for p in partitions(cluster, [topic]):
        if p["partition_index"] == partition:
            return next((n for n in cluster.nodes if n.node_id == p["leader_id"]), None)
    raise AssertionError(f"{topic} has no partition {partition}")


def wait_in_sync(cluster: KafkaCluster, limit_s: float = IN_SYNC_LIMIT_S) -> float:
    """Wait until every partition of every topic (Kafka's own included) has a leader and all
    its replicas in sync: a node restarted after a kill has caught up. Seconds it took."""
    started = time.monotonic()
    lagging: list[str] = ["not asked yet"]
    while time.monotonic() - started < limit_s:
        lagging = [
            f"{p['topic']}[{p['partition_index']}] isr={sorted(p['isr_nodes'])}"
            for p in partitions(cluster)
            if p["leader_id"] < 0 or len(p["isr_nodes"]) < len(p["replica_nodes"])
        ]
        if not lagging:
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(
        f"replicas not back in sync within {limit_s:.0f} s: {lagging[:5]} "
        f"({len(lagging)} partitions)"
    )


def end_offsets(cluster: KafkaCluster, topic: str) -> dict[int, int]:
    """Where each partition of ``topic`` ends now: records from there on were written later."""
    consumer = KafkaConsumer(
        bootstrap_servers=running_bootstrap(cluster),
        group_id=None,
        client_id="tellonce-faults",
        request_timeout_ms=10_000,
    )
    try:
        ids = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(ids)])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        consumer.close()


def group_offsets(cluster: KafkaCluster, group: str, topic: str) -> dict[int, int]:
    """The offsets ``group`` committed on ``topic``'s partitions (a connector's progress)."""
    found = ask(
        cluster, lambda admin: admin.list_group_offsets({group: None}), f"{group}'s offsets"
    )
    return {
        tp.partition: meta.offset for tp, meta in found.get(group, {}).items() if tp.topic == topic
    }

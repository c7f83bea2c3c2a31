"""Positions on a cluster other runs used before: for ``tellonce demo --bootstrap``.

The demo's store is new on every run, but the topics of an existing cluster still hold what
earlier runs wrote. ``end_offsets`` reads where each partition ends now (without joining a
group), so the demo can start its consumers there; ``commit_start`` commits such positions for
a consumer group that has no member, which Kafka refuses while one is in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from hub.errors import BrokerError

# How long the first contact may take before the cluster counts as not answering.
ANSWER_LIMIT_MS = 10_000

TopicOffsets = dict[str, dict[int, int]]


def _consumer(bootstrap: str, group: str | None = None) -> KafkaConsumer:
    try:
        return KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            client_id="tellonce-demo",
            bootstrap_timeout_ms=ANSWER_LIMIT_MS,
        )
    except KafkaError as exc:
        raise BrokerError(
            f"no Kafka broker answered at {bootstrap} within {ANSWER_LIMIT_MS // 1000} s "
            f"({type(exc).__name__}); check the address and that the cluster is up"
        ) from exc


def probe(bootstrap: str) -> None:
    """Return when a broker at ``bootstrap`` answers; BrokerError after ANSWER_LIMIT_MS."""
    _consumer(bootstrap).close(autocommit=False)


def end_offsets(bootstrap: str, topics: Iterable[str]) -> TopicOffsets:
    """Topic to partition to the offset the next record will get, for topics that exist."""
    consumer = _consumer(bootstrap)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        found: TopicOffsets = {}
        for tp, end in consumer.end_offsets(partitions).items():
            found.setdefault(tp.topic, {})[tp.partition] = end
        return found
    except KafkaError as exc:
        raise BrokerError(f"cannot read the end offsets on {bootstrap}: {exc}") from exc
    finally:
        consumer.close(autocommit=False)


def commit_start(bootstrap: str, group: str, offsets: Mapping[str, Mapping[int, int]]) -> None:
    """Commit ``offsets`` as where ``group`` goes on; refused while the group has a member."""
    consumer = _consumer(bootstrap, group)
    try:
        consumer.commit(
            {
                TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                for topic, by_partition in offsets.items()
                for partition, offset in by_partition.items()
            },
            timeout_ms=ANSWER_LIMIT_MS,
        )
    except KafkaError as exc:
        raise BrokerError(
            f"cannot set where consumer group {group} starts ({type(exc).__name__}); is one of "
            "its members running on this cluster?"
        ) from exc
    finally:
        consumer.close(autocommit=False)

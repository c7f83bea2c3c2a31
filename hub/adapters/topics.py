"""Reading topics and offsets without joining a group: for `dlq list`, `connector status`
and `tellonce demo --bootstrap`.

An assigned consumer (no group) reads a topic from the beginning up to its end offsets at the
moment of the call, so the command finishes even while producers keep writing. Committed
offsets of a connector's group are read without joining it, so status never triggers a
rebalance of a running connector.

The demo on an existing cluster starts where the topics end before it publishes: its store is
new on every run, but the topics still hold what earlier runs wrote. ``end_offsets`` reads those
ends; ``commit_start`` commits them for a consumer group that has no member (Kafka refuses the
commit while one is in it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from hub.adapters.kafka_client import KafkaConnection, broker_error, open_client
from hub.errors import BrokerError
from hub.model import InboundMessage

READ_LIMIT_S = 30.0
ANSWER_LIMIT_S = 10.0  # the demo's first contact: longer, and the cluster counts as down

TopicOffsets = dict[str, dict[int, int]]


def _consumer(kafka: KafkaConnection, group: str | None = None) -> KafkaConsumer:
    return open_client(
        KafkaConsumer,
        kafka,
        "a reader",
        group_id=group,
        enable_auto_commit=False,
        client_id="tellonce-ops",
        isolation_level="read_committed",
    )


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def read_topic(kafka: KafkaConnection, topic: str) -> list[InboundMessage]:
    """Every record of ``topic`` up to its current end, in partition then offset order."""
    consumer = _consumer(kafka)
    try:
        partitions = _partitions(consumer, topic)
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: list[InboundMessage] = []
        deadline = time.monotonic() + READ_LIMIT_S
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise BrokerError(f"reading {topic} took longer than {READ_LIMIT_S:.0f} s")
            for tp, records in consumer.poll(timeout_ms=200).items():
                for r in records:
                    if r.offset < ends[tp]:
                        found.append(
                            InboundMessage(
                                r.topic, r.partition, r.offset, r.key, r.value, list(r.headers)
                            )
                        )
        return sorted(found, key=lambda m: (m.partition, m.offset))
    except KafkaError as exc:
        raise broker_error(exc, kafka, f"cannot read {topic}") from exc
    finally:
        consumer.close(autocommit=False)


def topic_lag(kafka: KafkaConnection, group: str, topic: str) -> tuple[int, int]:
    """(records not yet committed by ``group``, records in the topic), over all partitions."""
    consumer = _consumer(kafka, group)
    try:
        partitions = _partitions(consumer, topic)
        if not partitions:
            return 0, 0
        ends = consumer.end_offsets(partitions)
        starts = consumer.beginning_offsets(partitions)
        lag = 0
        for tp in partitions:
            committed = consumer.committed(tp)
            lag += ends[tp] - (committed if committed is not None else starts[tp])
        return lag, sum(ends[tp] - starts[tp] for tp in partitions)
    except KafkaError as exc:
        raise broker_error(exc, kafka, f"cannot read the offsets of {topic}") from exc
    finally:
        consumer.close(autocommit=False)


def probe(kafka: KafkaConnection) -> None:
    """Return when the cluster answers; BrokerError after ANSWER_LIMIT_S."""
    _consumer(kafka.bounded(ANSWER_LIMIT_S)).close(autocommit=False)


def end_offsets(kafka: KafkaConnection, topics: Iterable[str]) -> TopicOffsets:
    """Topic to partition to the offset the next record will get, for topics that exist."""
    consumer = _consumer(kafka)
    try:
        partitions = [tp for topic in topics for tp in _partitions(consumer, topic)]
        found: TopicOffsets = {}
        for tp, end in consumer.end_offsets(partitions).items():
            found.setdefault(tp.topic, {})[tp.partition] = end
        return found
    except KafkaError as exc:
        raise broker_error(exc, kafka, "cannot read the end offsets") from exc
    finally:
        consumer.close(autocommit=False)


def commit_start(
    kafka: KafkaConnection, group: str, offsets: Mapping[str, Mapping[int, int]]
) -> None:
    """Commit ``offsets`` as where ``group`` goes on; refused while the group has a member."""
    consumer = _consumer(kafka, group)
    try:
        consumer.commit(
            {
                TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                for topic, by_partition in offsets.items()
                for partition, offset in by_partition.items()
            },
            timeout_ms=int(ANSWER_LIMIT_S * 1000),
        )
    except KafkaError as exc:
        raise BrokerError(
            f"cannot set where consumer group {group} starts ({type(exc).__name__}); is one of "
            "its members running on this cluster?"
        ) from exc
    finally:
        consumer.close(autocommit=False)

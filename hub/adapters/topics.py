"""Reading topics without joining a group: for `dlq list` and `connector status`.

An assigned consumer (no group) reads a topic from the beginning up to its end offsets at the
moment of the call, so the command finishes even while producers keep writing. Committed
offsets of a connector's group are read without joining it, so status never triggers a
rebalance of a running connector.
"""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from hub.adapters.kafka_client import KafkaConnection, broker_error, open_client
from hub.errors import BrokerError
from hub.model import InboundMessage

READ_LIMIT_S = 30.0


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

"""A consumer whose group join is lost (kafka-python 3.0.12, under load) is replaced, and the
records waiting for it are read: the connector does not go silent for ever."""

from __future__ import annotations

import time
from typing import Any

from kafka.future import Future
from structlog.testing import capture_logs

from hub.adapters.broker import EmbeddedBroker
from hub.adapters.kafka import ConsumerTuning, KafkaSink, KafkaSource, ensure_topics
from hub.adapters.kafka_client import KafkaConnection

TOPIC = "tellonce.lost-join.v1"
TUNING = ConsumerTuning(max_poll_interval_ms=1_000, session_timeout_ms=3_000)


def lose_every_join(source: KafkaSource) -> None:
    """Make the current consumer's join hang as the lost answer left it: the coordinator known,
    the join task pending for ever."""

    async def never_answered() -> Any:
        await Future()

    coordinator = source._consumer._coordinator  # type: ignore[union-attr]
    coordinator._do_join_and_sync_async = never_answered


def test_a_consumer_stuck_joining_its_group_is_replaced_and_reads_what_waits(
    broker: EmbeddedBroker,
) -> None:
    """With its first consumer's join never answered, the source replaces it once the join
    has taken longer than the limit (15 s here), says so once, and the new member reads the
    record published meanwhile."""
    kafka = KafkaConnection.plaintext(broker.bootstrap)
    ensure_topics(kafka, [TOPIC], partitions=1)
    source = KafkaSource(kafka, [TOPIC], group_id="lost-join", tuning=TUNING)
    lose_every_join(source)
    sink = KafkaSink(kafka)
    sink.send(TOPIC, b"k", b"waiting for a member", [])
    sink.flush()
    sink.close()
    started = time.monotonic()
    read: list[bytes] = []
    with capture_logs() as logs:
        while not read and time.monotonic() - started < 60:
            read = [m.value for m in source.poll(10, 500)]
    waited = time.monotonic() - started
    source.close()
    assert read == [b"waiting for a member"]
    replaced = [e for e in logs if e["event"].startswith("consumer group join never completed")]
    assert len(replaced) == 1
    assert replaced[0]["group"] == "lost-join"
    assert replaced[0]["waited_s"] >= 15
    assert waited > 15  # read by the replacement, not by the consumer whose join was lost

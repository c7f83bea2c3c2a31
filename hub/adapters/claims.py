"""The ``ClaimLog`` port on kafka-python: the hub's store claims on ``tellonce.hub.v1``.

The topic has one partition and ``cleanup.policy=compact``; claims are written to partition 0
explicitly, so their order is the order they were recorded in even if someone created the
topic with more partitions. A record's key is ``<group id>/<store id>`` (UTF-8), its value the
claim as a JSON object (``group_id``, ``store_id``, ``audit_key_id``, ``claimed_at``, ``host``),
and a null value (a tombstone) takes the claim back. Anyone on the broker can write the topic:
a record that is not a claim is skipped and logged by offset, never fatal.

Reading never trusts end offsets alone (Tansu reports the first offset of the last batch + 1
as the high watermark, DESIGN.md section 10): it reads at least that far and then until no
record came for ``quiet_s``; or, after an append, up to the appended claim itself.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime
from typing import Any

import structlog
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from hub.adapters.kafka import TOPIC_READY_MS
from hub.adapters.kafka_client import KafkaConnection, broker_error, open_client
from hub.errors import BrokerError
from hub.model import StoreClaim
from hub.wire.topics import HUB_TOPIC

log = structlog.get_logger(__name__)

PARTITION = TopicPartition(HUB_TOPIC, 0)
QUIET_S = 0.5
READ_LIMIT_S = 30.0
MAX_VALUE_BYTES = 4096
_TEXT_LIMIT = 255


def ensure_claim_topic(kafka: KafkaConnection, replication: int = 1) -> None:
    """Create ``tellonce.hub.v1`` (one partition, compacted) unless it exists."""
    admin = open_client(KafkaAdminClient, kafka, "the topic admin", client_id="tellonce-admin")
    try:
        if HUB_TOPIC not in set(admin.list_topics()):
            topic = NewTopic(
                HUB_TOPIC,
                num_partitions=1,
                replication_factor=replication,
                topic_configs={"cleanup.policy": "compact"},
            )
            with contextlib.suppress(TopicAlreadyExistsError):  # another hub was quicker
                admin.create_topics([topic])
            admin.wait_for_topics([HUB_TOPIC], timeout_ms=TOPIC_READY_MS)  # see ensure_topics
            log.info("topics created", topics=[HUB_TOPIC])
    except KafkaError as exc:
        raise broker_error(exc, kafka, f"cannot create {HUB_TOPIC} on {kafka.bootstrap}") from exc
    finally:
        admin.close()


def encode_claim(claim: StoreClaim) -> bytes:
    return json.dumps(
        {
            "group_id": claim.group_id,
            "store_id": claim.store_id,
            "audit_key_id": claim.audit_key_id,
            "claimed_at": claim.claimed_at.isoformat(),
            "host": claim.host,
        },
        sort_keys=True,
    ).encode("utf-8")


def decode_claim(key: bytes | None, value: bytes) -> StoreClaim | None:
    """The claim in a record, or None when the record is not a well-formed claim."""
    if key is None or len(value) > MAX_VALUE_BYTES:
        return None
    try:
        data = json.loads(value.decode("utf-8"))
        if not isinstance(data, dict):
            return None
        group, store = _text(data, "group_id"), _text(data, "store_id")
        key_id, host = _text(data, "audit_key_id", True), _text(data, "host", True)
        claimed_at = datetime.fromisoformat(str(_text(data, "claimed_at")))
    except (UnicodeDecodeError, ValueError, TypeError, OverflowError):
        return None
    if group is None or store is None or claimed_at.tzinfo is None:
        return None
    claim = StoreClaim(group, store, key_id, claimed_at, host)
    # A key that is not the claim's own would let a tombstone miss the claim it names.
    return claim if key == claim.key.encode("utf-8") else None


def _text(data: dict[str, Any], name: str, optional: bool = False) -> str | None:
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > _TEXT_LIMIT:
        raise ValueError(name)
    return value


class KafkaClaimLog:
    """hub.ports.ClaimLog on ``tellonce.hub.v1`` (see module doc)."""

    def __init__(
        self,
        kafka: KafkaConnection,
        *,
        client_id: str = "tellonce-hub-fence",
        quiet_s: float = QUIET_S,
    ) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._quiet_s = quiet_s
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None

    def read(self, through: int | None = None) -> list[tuple[int, StoreClaim]]:
        try:
            return self._read(through)
        except KafkaError as exc:
            raise broker_error(exc, self._kafka, f"cannot read {HUB_TOPIC}") from exc

    def _read(self, through: int | None) -> list[tuple[int, StoreClaim]]:
        consumer = self._reader()
        consumer.seek_to_beginning(PARTITION)
        # A lower bound of the end on Tansu, the end on Kafka: read at least this far.
        floor = consumer.end_offsets([PARTITION])[PARTITION] if through is None else through + 1
        live: dict[bytes, tuple[int, StoreClaim]] = {}
        started = last_news = time.monotonic()
        while True:
            records = consumer.poll(timeout_ms=100).get(PARTITION, [])
            now = time.monotonic()
            for record in records:
                self._apply(live, record)
            if records:
                last_news = now
            if consumer.position(PARTITION) >= floor and (
                through is not None or now - last_news >= self._quiet_s
            ):
                break
            if now - started > READ_LIMIT_S:
                raise BrokerError(f"reading {HUB_TOPIC} took longer than {READ_LIMIT_S:.0f} s")
        return sorted(live.values(), key=lambda entry: entry[0])

    @staticmethod
    def _apply(live: dict[bytes, tuple[int, StoreClaim]], record: Any) -> None:
        if record.value is None:  # a tombstone: the claim of that key is taken back
            if record.key is not None:
                live.pop(record.key, None)
            return
        claim = decode_claim(record.key, record.value)
        if claim is None:
            log.warning(
                "record is not a store claim; ignored", topic=HUB_TOPIC, offset=record.offset
            )
        elif record.key not in live:  # the same claim twice (two hubs on one store): the first
            live[record.key] = (record.offset, claim)

    def append(self, claim: StoreClaim) -> int:
        return self._send(claim.key, encode_claim(claim))

    def withdraw(self, claim: StoreClaim) -> None:
        self._send(claim.key, None)

    def _send(self, key: str, value: bytes | None) -> int:
        try:
            future = self._writer().send(
                HUB_TOPIC, key=key.encode("utf-8"), value=value, partition=PARTITION.partition
            )
            return int(future.get(timeout=30).offset)
        except KafkaError as exc:
            raise broker_error(exc, self._kafka, f"cannot write to {HUB_TOPIC}") from exc

    def _reader(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = open_client(
                KafkaConsumer,
                self._kafka,
                f"the reader of {HUB_TOPIC}",
                client_id=self._client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
            )
            self._consumer.assign([PARTITION])
        return self._consumer

    def _writer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = open_client(
                KafkaProducer,
                self._kafka,
                f"the writer of {HUB_TOPIC}",
                client_id=self._client_id,
                acks="all",
            )
        return self._producer

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None

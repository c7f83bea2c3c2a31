"""What a principal may do on a secured cluster, tried with raw kafka-python clients.

Each check does one thing a tellonce component does on the wire and answers True when the
broker let it happen (and the effect is there: the record read, the offset committed, the
topic created) or False when the broker refused it with an authorization error. Any other
error is raised: a check never reads a broken cluster as a refusal.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    AuthorizationError,
    ClusterAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from kafka.structs import OffsetAndMetadata

from .cluster import KafkaCluster

# Short bounds: the cluster is on loopback and every answer here comes at once.
TIMEOUTS: dict[str, Any] = {"request_timeout_ms": 5_000, "bootstrap_timeout_ms": 10_000}
READ_WAIT_MS = 5_000
JOIN_LIMIT_S = 15.0  # a join takes a second or two on this cluster (no initial delay)
JOIN_ATTEMPTS = 2

Check = tuple[str, ...]  # ("write", topic), ("read", topic), ("commit", group, topic), ...


class Probe:
    """Checks run as ``principal``, over SASL_SSL or (``mutual_tls``) its certificate."""

    def __init__(self, cluster: KafkaCluster, principal: str, *, mutual_tls: bool = False) -> None:
        security = cluster.security
        assert security is not None, "a probe needs a secured cluster"
        self.principal = principal
        if mutual_tls:
            self._settings = {
                "bootstrap_servers": cluster.mtls_bootstrap,
                **security.tls_client(principal),
            }
        else:
            self._settings = {
                "bootstrap_servers": cluster.sasl_ssl_bootstrap,
                **security.sasl_client(principal),
            }
        self._admin: KafkaAdminClient | None = None

    def admin(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(client_id=self.principal, **self._settings, **TIMEOUTS)
        return self._admin

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def run(self, check: Check) -> bool:
        """Whether the broker allowed ``check`` (False: refused for lack of an ACL)."""
        action, *args = check
        try:
            return bool(getattr(self, action)(*args))
        except AuthorizationError:
            return False

    def visible(self) -> set[str]:
        """The topics the broker lists to this principal (its metadata shows no others)."""
        return {t for t in self.admin().list_topics() if not t.startswith("__")}

    def write(self, topic: str) -> bool:
        """An idempotent, acks=all publish, as every tellonce producer sends."""
        producer = KafkaProducer(
            acks="all", enable_idempotence=True, max_block_ms=5_000, **self._settings, **TIMEOUTS
        )
        try:
            return bool(producer.send(topic, b"probe").get(timeout=10).offset >= 0)
        except AuthorizationError:
            raise
        except KafkaError as exc:
            # A principal that may write no topic at all gets no producer id: kafka-python
            # wraps that refusal in a plain KafkaError naming the broker's error.
            if ClusterAuthorizationFailedError.__name__ in str(exc):
                raise ClusterAuthorizationFailedError(str(exc)) from exc
            raise
        finally:
            producer.close(timeout=5)

    def read(self, topic: str) -> bool:
        """Read the topic's first record without a group (as ``dlq list`` and the fence do)."""
        # A topic this principal may not even describe gives the consumer no leader to fetch
        # from, and kafka-python then just returns nothing: ask its metadata first.
        (found,) = self.admin().describe_topics([topic])
        if found["error_code"] == TopicAuthorizationFailedError.errno:
            raise TopicAuthorizationFailedError(topic)
        consumer = KafkaConsumer(enable_auto_commit=False, **self._settings, **TIMEOUTS)
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            consumer.seek_to_beginning(partition)
            records = consumer.poll(timeout_ms=READ_WAIT_MS).get(partition, [])
            if not records:  # every topic holds a record; none read is no answer
                raise AssertionError(f"{self.principal} read nothing from {topic}")
            return True
        finally:
            consumer.close(autocommit=False)

    def commit(self, group: str, topic: str) -> bool:
        """Commit an offset of ``topic`` as consumer group ``group`` (what a member does;
        the group and the topic both need READ)."""
        consumer = KafkaConsumer(
            group_id=group, enable_auto_commit=False, **self._settings, **TIMEOUTS
        )
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            consumer.commit({partition: OffsetAndMetadata(1, "", -1)})
            return bool(consumer.committed(partition) == 1)
        finally:
            consumer.close(autocommit=False)

    def join(self, group: str, topic: str) -> bool:
        """Join ``group`` subscribed to ``topic`` and get its partition, as the hub and the
        connectors do: the topic's metadata first, and a second member if kafka-python 3.0.12
        lost the first one's join (README, "A lost group join is replaced")."""
        for _ in range(JOIN_ATTEMPTS):
            consumer = KafkaConsumer(
                group_id=group, enable_auto_commit=False, **self._settings, **TIMEOUTS
            )
            try:
                consumer.subscribe([topic])
                consumer.topics()
                deadline = time.monotonic() + JOIN_LIMIT_S
                while time.monotonic() < deadline:
                    if consumer.assignment():
                        return True
                    consumer.poll(timeout_ms=200)
            finally:
                consumer.close(autocommit=False)
        raise AssertionError(f"{self.principal} got no partition of {topic}")

    def lag(self, group: str, topic: str) -> bool:
        """Read ``group``'s committed offset and ``topic``'s end without joining the group,
        as ``connector status`` does."""
        consumer = KafkaConsumer(
            group_id=group, enable_auto_commit=False, **self._settings, **TIMEOUTS
        )
        try:
            partition = TopicPartition(topic, 0)
            consumer.committed(partition)
            return bool(consumer.end_offsets([partition])[partition] >= 1)
        finally:
            consumer.close(autocommit=False)

    def create(self, topic: str) -> bool:
        """Create ``topic`` (as ``ensure_topics`` does)."""
        self.admin().create_topics([NewTopic(topic, 1, 1)])
        return topic in self.visible()

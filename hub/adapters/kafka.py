"""kafka-python adapters: producer, bounded consumer source, topic admin.

Consumers never auto-commit and start from the earliest record; they read committed records
only. Tansu completes a consumer-group join only after the rebalance timeout, which kafka-python
ties to ``max_poll_interval_ms`` (300 s by default: no join in 15 s; 5 s joins in about 3 s),
so the settings pass a short interval and keep batches small enough to fit in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import AuthorizationError, KafkaError, TopicAlreadyExistsError

from hub.adapters.kafka_client import KafkaConnection, broker_error, open_client
from hub.adapters.kafka_headers import tolerate_bad_header_names
from hub.adapters.kafka_join import JoinWatch, join_limit_s, join_state
from hub.errors import BrokerError, BrokerSecurityError
from hub.model import Headers, InboundMessage
from hub.ports import OffsetLookup

log = structlog.get_logger(__name__)

# Longest topic creation waits for the brokers to serve every new partition.
TOPIC_READY_MS = 15_000
# Longest a flush waits for the broker to acknowledge what was sent, retries included.
FLUSH_LIMIT_S = 30
# Longest the close of a consumer whose group join was lost may take.
CLOSE_LIMIT_MS = 5_000


@dataclass(frozen=True, slots=True)
class ConsumerTuning:
    max_poll_interval_ms: int = 5_000
    session_timeout_ms: int = 6_000
    heartbeat_interval_ms: int = 1_000
    request_timeout_ms: int = 15_000


class KafkaSink:
    """hub.ports.Producer on kafka-python: idempotent, acks=all, ordered per key.

    A flush that fails replaces the producer: after a whole-cluster restart (three Apache
    Kafka 4.4 nodes stopped together for longer than the delivery timeout) kafka-python's
    idempotent producer never completed another batch ("Timeout waiting for future" on every
    flush, for minutes). Callers send again what was not acknowledged (relay rows stay
    unpublished, receipts go with the redelivered batch), and a new producer (a new producer
    id, fresh sequence numbers) takes them; until the broker answers, each try fails as a
    retriable BrokerError.
    """

    def __init__(self, kafka: KafkaConnection, *, client_id: str = "tellonce") -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._producer: KafkaProducer | None = self._connect()
        self._futures: list[Any] = []

    def _connect(self) -> KafkaProducer:
        return open_client(
            KafkaProducer,
            self._kafka,
            "a producer",
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            # Retry retriable errors (a leader moving, a partition not yet served just
            # after its topic was created) for as long as flush() waits, not 5 times:
            # Apache Kafka answered NotLeaderForPartition for longer than 5 quick retries.
            delivery_timeout_ms=FLUSH_LIMIT_S * 1000,
            request_timeout_ms=10_000,  # must stay under the delivery timeout
        )

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        if self._producer is None:  # the last flush failed: start again with a new one
            self._producer = self._connect()
        try:
            self._futures.append(self._producer.send(topic, key=key, value=value, headers=headers))
        except KafkaError as exc:
            raise broker_error(exc, self._kafka, f"cannot publish to {topic}") from exc

    def flush(self) -> None:
        futures, self._futures = self._futures, []
        if self._producer is None:
            return
        try:
            self._producer.flush(timeout=FLUSH_LIMIT_S)
            for future in futures:
                future.get(timeout=FLUSH_LIMIT_S)
        except KafkaError as exc:
            self._discard()
            failed = "the broker did not acknowledge a publish"
            raise broker_error(exc, self._kafka, failed) from exc

    def close(self) -> None:
        if self._producer is None:
            return
        try:
            self._producer.close(timeout=5)
        except KafkaError:
            # The broker did not take the last records within the timeout (it is gone).
            # kafka-python then stops half-way, leaving a sender thread and an exit hook that
            # prints a traceback. Callers never count on records not flushed (relay rows and
            # receipts are sent again), so drop them and finish closing.
            log.warning("producer closed with records the broker never acknowledged")
            self._discard()
        self._producer = None

    def _discard(self) -> None:
        """Drop the producer and whatever it still holds, at once."""
        producer, self._producer = self._producer, None
        if producer is not None:
            producer._accumulator.abort_incomplete_batches()
            producer.close(timeout=0)


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource, consumer: KafkaConsumer) -> None:
        self._source = source
        self._consumer = consumer

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("partitions revoked", count=len(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._source.seek_stored(self._consumer, assigned)


class KafkaSource:
    """hub.ports.MessageSource: a consumer-group member that positions itself.

    With ``offset_lookup`` the positions come from the caller (the hub's database); without it
    they come from offsets committed to Kafka (connectors, whose sinks dedupe).
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topics: Iterable[str],
        *,
        group_id: str,
        offset_lookup: OffsetLookup | None = None,
        tuning: ConsumerTuning | None = None,
        client_id: str = "tellonce",
    ) -> None:
        tuning = tuning or ConsumerTuning()
        self._lookup = offset_lookup
        tolerate_bad_header_names()  # one record must not stop the consumer (see the module)
        self._kafka = kafka
        self._topics = list(topics)
        self._options: dict[str, Any] = {
            "client_id": client_id,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            "max_poll_interval_ms": tuning.max_poll_interval_ms,
            "session_timeout_ms": tuning.session_timeout_ms,
            "heartbeat_interval_ms": tuning.heartbeat_interval_ms,
            "request_timeout_ms": tuning.request_timeout_ms,
        }
        self._join = JoinWatch(join_limit_s(tuning.max_poll_interval_ms, tuning.session_timeout_ms))
        self._consumer: KafkaConsumer | None = self._open()

    def _open(self) -> KafkaConsumer:
        consumer = open_client(KafkaConsumer, self._kafka, "a consumer", **self._options)
        try:
            consumer.subscribe(self._topics, listener=_SeekToStored(self, consumer))
            # kafka-python notes the subscribed topics' partitions when a metadata answer comes.
            # A first join that completes before it rejoins at once when it comes, and that
            # quick rejoin is where it can lose a join's answer (see kafka_join): wait for one.
            consumer.topics()
        except KafkaError as exc:
            consumer.close(autocommit=False)
            raise broker_error(exc, self._kafka, "cannot subscribe a consumer") from exc
        self._join.restart()
        return consumer

    def _live(self) -> KafkaConsumer:
        """The consumer, replaced first when its group join is lost (see kafka_join)."""
        if self._consumer is not None and self._join.stuck(join_state(self._consumer)):
            log.warning(
                "consumer group join never completed; replacing the consumer",
                group=self._options["group_id"],
                waited_s=round(self._join.waited_s(), 1),
            )
            stuck, self._consumer = self._consumer, None
            with contextlib.suppress(Exception):  # a lost member: nothing left to save
                stuck.close(autocommit=False, timeout_ms=CLOSE_LIMIT_MS)
        if self._consumer is None:
            # Raises a retriable BrokerError while the broker cannot be reached: the caller
            # waits and asks again, and this opens it then.
            self._consumer = self._open()
        return self._consumer

    def seek_stored(self, consumer: KafkaConsumer, partitions: Iterable[TopicPartition]) -> None:
        if self._lookup is None:
            return
        for tp in partitions:
            stored = self._lookup(tp.topic, tp.partition)
            if stored is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, stored)
            log.info("partition positioned", topic=tp.topic, partition=tp.partition, offset=stored)

    def poll(self, max_records: int, timeout_ms: int) -> list[InboundMessage]:
        try:
            batches = self._live().poll(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise broker_error(exc, self._kafka, "polling failed") from exc
        out = [
            InboundMessage(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                value=r.value,
                headers=[(k, v if v is not None else b"") for k, v in (r.headers or [])],
            )
            for records in batches.values()
            for r in records
        ]
        out.sort(key=lambda m: (m.topic, m.partition, m.offset))
        return out

    @property
    def ready(self) -> bool:
        return self._consumer is not None and bool(self._consumer.assignment())

    def rewind(self) -> None:
        consumer = self._live()
        assignment = consumer.assignment()
        if self._lookup is not None:
            self.seek_stored(consumer, assignment)
            return
        try:
            for tp in assignment:
                committed = consumer.committed(tp)
                if committed is None:
                    consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
        except KafkaError as exc:
            # Asking for the committed offsets fails while the group coordinator is down (a
            # whole-cluster restart): a retriable error, for the caller to rewind again later.
            raise BrokerError(f"cannot read the committed offsets: {exc}") from exc

    def keep_alive(self) -> None:
        # kafka-python leaves the group when poll() is not called within max_poll_interval_ms.
        # Polling with every assigned partition paused proves liveness and fetches nothing.
        consumer = self._live()
        assignment = consumer.assignment()
        if not assignment:
            return
        # Partitions assigned by a rebalance met in this poll are not paused: put back any
        # records it returns, so that the next poll reads them.
        consumer.pause(*assignment)
        try:
            taken = consumer.poll(timeout_ms=0)
        except KafkaError as exc:
            raise broker_error(exc, self._kafka, "lost contact with the consumer group") from exc
        finally:  # a partition revoked meanwhile is no longer there to resume
            consumer.resume(*(assignment & consumer.assignment()))
        for tp, records in taken.items():
            if records:
                consumer.seek(tp, records[0].offset)

    def commit(self) -> None:
        try:
            self._live().commit()
        except KafkaError as exc:
            raise broker_error(exc, self._kafka, "offset commit failed") from exc

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)


def ensure_topics(
    kafka: KafkaConnection,
    topics: Iterable[str],
    partitions: int = 3,
    replication: int = 1,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Create the topics that do not exist yet (idempotent), each with its ``configs`` entry as
    topic configs (e.g. ``retention.ms``). A topic that exists already is left as it is: its
    configs are its operator's."""
    configs = configs or {}
    missing: list[str] = []
    admin = open_client(KafkaAdminClient, kafka, "the topic admin", client_id="tellonce-admin")
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            # Another process may create them at the same moment; that is the outcome we want.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [
                        NewTopic(
                            t,
                            num_partitions=partitions,
                            replication_factor=replication,
                            topic_configs=dict(configs.get(t, {})),
                        )
                        for t in missing
                    ]
                )
            # Apache Kafka accepts a creation before its brokers serve the new partitions;
            # clients that come at once log errors and retry. Wait until each has a leader.
            admin.wait_for_topics(missing, timeout_ms=TOPIC_READY_MS)
            log.info("topics created", topics=missing)
    except AuthorizationError as exc:
        # The usual case on a cluster with ACLs: a connector or publisher started before the
        # hub, which creates every topic.
        raise BrokerSecurityError(
            f"topics {', '.join(missing)} do not exist on {kafka.describe()}, and this client "
            f"may not create them ({type(exc).__name__}): start 'tellonce hub run' first (its "
            "role creates every topic) or ask the cluster's operator to create them"
        ) from exc
    except KafkaError as exc:
        raise broker_error(exc, kafka, f"cannot create topics on {kafka.bootstrap}") from exc
    finally:
        admin.close()

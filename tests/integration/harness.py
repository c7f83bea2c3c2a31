"""What the integration tests do over and over: link clients, publish, run the hub and
connectors until they have handled what was sent, and read topics back.

Runs stop as soon as they have handled the expected records (``on_batch`` sets the stop event);
the idle exit (counted from the group join, which takes Tansu about 3 s) bounds them when the
records never come, and is the whole run when the point is that nothing (more) arrives.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import SecretStr

from consent.model import ConsentState, Evidence
from hub.bootstrap import App, KafkaConnection
from hub.config.settings import AuditSettings, BrokerSettings, Settings, StoreSettings
from hub.delivery.runner import DeliveryTotals
from hub.model import Checkpoint, Headers, InboundMessage
from hub.processing.worker import Totals
from hub.wire.publishing import publish_event
from hub.wire.signatures import NOTICE_CONTEXT, RECEIPT_CONTEXT, notice_digest_header, signed
from hub.wire.topics import notify_topic
from tests.keyring import VALID_FROM, directory_file, sign, signer, signing_directory
from tests.watchdog import wait_until
from tests.watchdog import watchdog as bounded

PUBLISHER = "bc-service-bc"
EVENT_TYPE = "AddressChanged"

# Idle exit of a run that stops once the expected records are handled: reached on failure only.
BOUND_IDLE_S = 5.0
# Idle exit of a run whose point is that nothing (more) comes.
QUIET_IDLE_S = 2.5
# Longest any one run may take.
RUN_LIMIT_S = 45.0


# Store URL -> the audit signing key of the test's App (registered by the ``app`` fixture), so
# a second App on the same store signs with the same key.
SIGNING_KEYS: dict[str, Path] = {}


def settings_for(store_url: str, bootstrap: str, signing_key: Path | None = None) -> Settings:
    """Settings for one store and broker; the audit key is ``signing_key``, else the key
    registered for the store, else the default (created on first use either way)."""
    key = signing_key or SIGNING_KEYS.get(store_url)
    audit = AuditSettings(signing_key=key, create_key=True) if key else AuditSettings()
    return Settings(
        store=StoreSettings(url=store_url),
        broker=BrokerSettings(bootstrap_servers=bootstrap),
        audit=audit,
    )


def signing(app: App) -> App:
    """``app`` with its directory listing each program's key and the hub's own (its audit
    key): the tests' flows sign as production's must (tests.keyring)."""
    app.directory = signing_directory(app.directory, app.hub_key_entry(VALID_FROM))
    return app


def signed_record(record: Record, program: str | None = None) -> Record:
    """``record`` as ``program`` (by default, the program its ce_source names) sends it,
    signed over its bytes as they are."""
    key, value, headers = record
    return key, value, sign(key, value, headers, program)


def inbound(record: ConsumerRecord) -> InboundMessage:
    """A record read back from a topic, as the hub and the connectors receive it."""
    headers = [(name, value or b"") for name, value in record.headers]
    return InboundMessage(
        record.topic, record.partition, record.offset, record.key, record.value, headers
    )


def tuned(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """A copy of ``settings`` with some fields of some sections changed (settings are frozen):
    ``tuned(settings, hub={"batch_size": 2})``."""
    changes = {
        name: getattr(settings, name).model_copy(update=fields) for name, fields in sections.items()
    }
    return settings.model_copy(update=changes)


def address(street: str = "1 Main St", municipality: str = "Victoria") -> dict[str, Any]:
    return {
        "lines": [street],
        "municipality": municipality,
        "province": "BC",
        "postal_code": "V8W 1A1",
    }


def address_payload(subject: str, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "subject_id": subject,
        "effective_date": date(2025, 1, 1),
        "new_address": address(),
        "mailing_address": address("PO Box 12", "Victoria"),
    }
    payload.update(changes)
    return payload


def security_variables(broker: BrokerSettings) -> dict[str, str]:
    """The TELLONCE_BROKER__* variables of the security settings that are set, secrets
    revealed: a tellonce process started by a test reaches the broker as the test's App does."""
    found = {}
    for name, value in broker.model_dump(include=SECURITY_SETTINGS).items():
        if value is None or value == "PLAINTEXT" or value is True:  # defaults: nothing to say
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        found[f"TELLONCE_BROKER__{name.upper()}"] = "false" if value is False else str(value)
    return found


SECURITY_SETTINGS = {
    "security_protocol",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_key_password",
    "ssl_check_hostname",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password",
    "sasl_password_file",
}

Record = tuple[bytes | None, bytes | None, Headers]  # key, value, headers as sent


def send_all(
    harness: Harness, topic: str, records: list[Record], partition: int | None = 0
) -> list[int]:
    """Publish raw records in order (on one partition unless told otherwise); their offsets."""
    producer = KafkaProducer(**harness.kafka.client_options(), max_request_size=1_048_576)
    try:
        futures = [
            producer.send(topic, key=key, value=value, headers=headers, partition=partition)
            for key, value, headers in records
        ]
        producer.flush()
        return [future.get(timeout=10).offset for future in futures]
    finally:
        producer.close()


def watchdog(stop: threading.Event, what: str) -> AbstractContextManager[None]:
    """Stop a run that is still going after RUN_LIMIT_S (a retry loop never idles), and fail."""
    return bounded(stop, what, RUN_LIMIT_S)


def read_topic(kafka: KafkaConnection, topic: str, timeout_s: float = 15.0) -> list[ConsumerRecord]:
    """Every record of ``topic`` up to its current end, without joining a group."""
    consumer = KafkaConsumer(
        **kafka.client_options(),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id="tellonce-it-reader",
    )
    deadline = time.monotonic() + timeout_s
    try:
        partitions = wait_until(
            lambda: consumer.partitions_for_topic(topic),
            timeout_s,
            f"topic {topic} does not exist on {kafka.bootstrap}",
            every_s=0.1,
        )
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[ConsumerRecord] = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout_s}s")
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


@dataclass
class Harness:
    """One App on one store and one broker, with the steps tests are made of; ``kafka`` is
    how the App reaches the broker (``app.kafka()``), and every client here uses it too."""

    app: App
    kafka: KafkaConnection

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def now(self) -> datetime:
        return datetime.now(UTC)

    def env(self, **variables: str) -> dict[str, str]:
        """The environment of a tellonce process on this store, broker (and its topics' shape)
        and audit key, with a directory file that lists the programs' keys and the hub's
        (tests.keyring), logging warnings and worse: this process's without its TELLONCE_*
        variables, plus ``variables``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
        broker = self.app.settings.broker
        folder = self.app.settings.audit.signing_key.parent
        directory = directory_file(folder / "directory.toml", *self.app.directory.hub_keys)
        return env | {
            "TELLONCE_DIRECTORY_PATH": str(directory),
            "TELLONCE_STORE__URL": self.app.settings.store.url,
            "TELLONCE_BROKER__BOOTSTRAP_SERVERS": self.bootstrap,
            # A topic the process creates (the fence's claim topic) must be replicated as the
            # cluster requires: on 3 nodes with min.insync.replicas=2, one replica refuses acks=all.
            "TELLONCE_BROKER__REPLICATION_FACTOR": str(broker.replication_factor),
            "TELLONCE_BROKER__TOPIC_PARTITIONS": str(broker.topic_partitions),
            "TELLONCE_AUDIT__SIGNING_KEY": str(self.app.settings.audit.signing_key),
            "TELLONCE_LOG_LEVEL": "warning",
            **security_variables(broker),
            **variables,
        }

    def evidence(self) -> Evidence:
        return Evidence("counter", "staff-1", self.now)

    def client(self, ids: dict[str, str], consents: Iterable[str] = ()) -> str:
        """A person known under ``ids`` (program -> local id) who consented for ``consents``."""
        service = self.app.consent()
        programs = iter(ids.items())
        first, first_id = next(programs)
        person = service.link(first, first_id, self.evidence())
        for program, local_id in programs:
            service.link(program, local_id, self.evidence(), to=person)
        for recipient in consents:
            service.record(person, recipient, [EVENT_TYPE], ConsentState.GIVEN, self.evidence())
        return person

    def address_stream(self, people: int, events: int) -> list[dict[str, Any]]:
        """``people`` clients (``SBC-i``) consenting to cra-individual, the even ones to bc-msp
        too, and ``events`` AddressChanged payloads about them in turn, each a new street."""
        for i in range(people):
            self.client(
                {PUBLISHER: f"SBC-{i}", "cra-individual": f"CRA-{i}", "bc-msp": f"MSP-{i}"},
                consents=("cra-individual", "bc-msp") if i % 2 == 0 else ("cra-individual",),
            )
        return [
            address_payload(f"SBC-{n % people}", new_address=address(f"{n} Main St"))
            for n in range(events)
        ]

    def withdraw(self, person: str, recipient: str) -> str:
        """Withdraw ``recipient``'s consent; returns the hash of the withdrawal revision."""
        (revision,) = self.app.consent().record(
            person, recipient, [EVENT_TYPE], ConsentState.WITHDRAWN, self.evidence()
        )
        return revision.hash

    def publish(self, payloads: Iterable[dict[str, Any]], event_id: str | None = None) -> list[str]:
        """Publish AddressChanged events from the publisher, signed; returns their ce_ids."""
        producer = self.app.producer(self.kafka)
        try:
            ids = [
                publish_event(
                    producer,
                    self.app.codec,
                    source=PUBLISHER,
                    event_type=EVENT_TYPE,
                    payload=payload,
                    at=self.now,
                    event_id=event_id,
                    signer=signer(PUBLISHER),
                )
                for payload in payloads
            ]
            producer.flush()
        finally:
            producer.close()
        return ids

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        """Publish one record as it is, e.g. a broken event or a connector's receipt."""
        producer = self.app.producer(self.kafka)
        try:
            producer.send(topic, key, value, headers)
            producer.flush()
        finally:
            producer.close()

    def send_signed(
        self, topic: str, key: bytes, value: bytes, headers: Headers, program: str | None = None
    ) -> None:
        """Publish one record as ``program`` (by default, the program its ce_source names) sends
        it, signed over its bytes as they are (a crafted one is then refused for what was
        crafted, not for its signature)."""
        self.send(topic, key, value, sign(key, value, headers, program))

    def sign_notice(self, key: bytes, value: bytes, headers: Headers) -> Headers:
        """A notice's headers signed by the hub (its audit key) over its bytes as they are, as
        the relay signs: a connector then refuses a crafted notice for what was crafted, not
        for its signature."""
        return signed(key, value, headers, self.app.notice_signer(), NOTICE_CONTEXT)

    def signed_receipt(self, record: Record) -> Record:
        """A receipt made by hand, as its recipient's connector sends it: naming the digest
        of the notice it answers (the one of that notification on the recipient's topic) and
        signed with the recipient's key. A receipt naming no subscribing recipient of the
        directory is left as it is: the hub refuses it before it looks at a signature."""
        key, value, headers = record
        if value is None:
            return record
        receipt = self.decode(value)
        recipient, notification = receipt["recipient"], receipt["notification_id"]
        if recipient not in self.app.directory.program_ids:
            return record
        if not self.app.directory.program(recipient).subscriptions:
            return record
        for notice in self.read(notify_topic(recipient)):
            if self.decode(notice.value).get("notification_id") == notification:
                headers = [*headers, *notice_digest_header(inbound(notice))]
                break
        body = key or b""
        return key, value, signed(body, value, headers, signer(recipient), RECEIPT_CONTEXT)

    def consumed(self, topic: str) -> int:
        """Records of ``topic`` the hub has committed (the offsets stored with its batches)."""
        with self.app.store.transaction() as tx:
            return sum(tx.offsets(self.app.settings.hub.group_id, topic).values())

    def checkpoint(self) -> Checkpoint | None:
        """Sign the unsigned leaves now, as 'tellonce audit checkpoint' does."""
        with self.app.store.transaction() as tx:
            return self.app.notary().maybe_checkpoint(tx, self.now, force=True)

    def run_worker_until(self, done: Callable[[], bool]) -> Totals:
        """One hub worker run until ``done()`` holds after a batch (receipts, say, which the
        totals do not count); bounded by the idle exit when it never does."""
        worker = self.app.hub_worker(self.kafka)
        stop = threading.Event()

        def on_batch(_totals: Totals) -> None:
            if done():
                stop.set()

        with watchdog(stop, "the hub worker"):
            try:
                return worker.run(stop, idle_exit_s=BOUND_IDLE_S, on_batch=on_batch)
            finally:
                worker.close()

    def run_worker(self, records: int | None) -> Totals:
        """One hub worker run: until it handled ``records`` inbound records, or (None) until
        it was idle for QUIET_IDLE_S after the join and its last batch."""
        worker = self.app.hub_worker(self.kafka)
        stop = threading.Event()

        def on_batch(totals: Totals) -> None:
            handled = totals.accepted + totals.rejected + totals.duplicates
            if records is not None and handled >= records:
                stop.set()

        idle = QUIET_IDLE_S if records is None else BOUND_IDLE_S
        with watchdog(stop, "the hub worker"):
            try:
                return worker.run(stop, idle_exit_s=idle, on_batch=on_batch)
            finally:
                worker.close()

    def run_connectors(
        self, sinks: dict[str, tuple[str, dict[str, str]]]
    ) -> dict[str, DeliveryTotals]:
        """Run one connector per recipient, side by side, until each handled its whole topic."""
        expected = {r: len(read_topic(self.kafka, notify_topic(r))) for r in sinks}
        # Each connector signs its receipts with its recipient's key from the keyring, unless
        # the test set the connector's key file (the settings' path, as production runs it).
        own_key = self.app.settings.connector.signing_key is not None
        runners = {
            r: self.app.connector(
                self.kafka, r, name, options, receipt_signer=None if own_key else signer(r)
            )
            for r, (name, options) in sinks.items()
        }

        def run(recipient: str) -> DeliveryTotals:
            stop = threading.Event()

            def on_batch(totals: DeliveryTotals) -> None:
                handled = totals.delivered + totals.duplicates + totals.failed
                if handled >= expected[recipient]:
                    stop.set()

            with watchdog(stop, f"the {recipient} connector"):
                if expected[recipient] == 0:
                    return runners[recipient].run(stop, idle_exit_s=QUIET_IDLE_S)
                return runners[recipient].run(stop, idle_exit_s=BOUND_IDLE_S, on_batch=on_batch)

        try:
            with ThreadPoolExecutor(max_workers=len(runners)) as pool:
                futures = {r: pool.submit(run, r) for r in runners}
                return {r: f.result() for r, f in futures.items()}
        finally:
            for runner in runners.values():
                runner.close()

    def read(self, topic: str) -> list[ConsumerRecord]:
        return read_topic(self.kafka, topic)

    def decode(self, value: bytes) -> dict[str, Any]:
        record: dict[str, Any] = self.app.codec.decode(value).record
        return record

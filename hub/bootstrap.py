"""The composition root: the only place that builds adapters.

``App`` reads the settings once (``App.from_settings``) and wires ports to adapters on demand:
the store, the signing and pseudonym keys, Kafka clients, the hub worker and connector runners.
Settings are frozen; what a run derives from them, such as the address of an embedded broker,
is kept on the ``App`` beside them.

May import anything in the hub and its adapters; only the CLI and the demo import it.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from hub.adapters.avro import AvroCodec
from hub.adapters.broker import EmbeddedBroker
from hub.adapters.claims import KafkaClaimLog, ensure_claim_topic
from hub.adapters.jws import sign_compact
from hub.adapters.kafka import ConsumerTuning, KafkaSink, KafkaSource, ensure_topics
from hub.adapters.kafka_client import KafkaConnection as KafkaConnection  # for the CLI and demo
from hub.adapters.keyring import vault_for
from hub.adapters.pseudonym_key import load_pseudonym_key
from hub.adapters.record_keys import RecordKey, verify_ed25519
from hub.adapters.signing import FileSigner, public_key_check
from hub.adapters.sql import SqlStore
from hub.adapters.topics import read_topic, topic_lag
from hub.audit.log import CheckpointPolicy, Notary
from hub.audit.oversight import verify_store
from hub.audit.pseudonyms import Pseudonyms
from hub.audit.verification import Verdict
from hub.config.directory import Directory, load_directory
from hub.config.settings import Settings
from hub.config.signing_keys import ProgramKey
from hub.consents.service import ConsentService
from hub.delivery.replay import DeadLetterOffice
from hub.delivery.retries import RetryPolicy
from hub.delivery.runner import ConnectorRunner
from hub.delivery.status import ConnectorStatus, connector_status
from hub.errors import ConfigError
from hub.ports import SignatureCheck
from hub.privacy.erasure import ErasureService
from hub.privacy.vault import Vault
from hub.processing.consent_events import ConsentIntake
from hub.processing.fence import StoreFence
from hub.processing.life_events import BatchProcessor
from hub.processing.receipts import MAX_SINK_CHARS, DeliveryIntake
from hub.processing.relay import Relay
from hub.processing.relay_thread import BackgroundRelay
from hub.processing.worker import HubWorker, Intake, stored_offsets
from hub.wire.catalog import Catalog, load_catalog
from hub.wire.signatures import NoticeSignatures, ReceiptSignatures, SignaturePolicy
from hub.wire.topics import (
    CONSENT_TOPIC,
    LIFEEVENTS_TOPIC,
    RECEIPTS_TOPIC,
    REJECTED_TOPIC,
    connector_group,
    dlq_topic,
    notice_topic_config,
    notify_topic,
)

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    """The clock every use-case is given: aware, in UTC."""
    return datetime.now(UTC)


# -- what a command sets up without an App (no directory or catalog needed) ----------------


def embedded_broker(settings: Settings, port: int = 0) -> EmbeddedBroker:
    """A memory-only Tansu on loopback (on ``port``; 0: a free one), started by ``with``."""
    broker = settings.broker
    return EmbeddedBroker(broker.tansu_bin, port=port, startup_timeout=broker.startup_timeout_s)


def upgrade_schema(settings: Settings) -> None:
    """Create or migrate the configured store's schema to the latest version (sealing, with
    the hub's keys, personal data an older schema kept in plaintext)."""
    vault = vault_for(settings, create=True)
    SqlStore.open(settings.store.url, vault=vault, migrate_schema=True).close()


@dataclass
class App:
    """The settings of one run, the parts read from them at once (directory, catalog, codec),
    and builders for the rest; adapters that hold a resource are built on first use."""

    settings: Settings
    directory: Directory
    catalog: Catalog
    codec: AvroCodec
    # For commands that only read: the store must exist already and is never migrated, and
    # the signing key is never created.
    read_only: bool = False
    _store: SqlStore | None = field(default=None, repr=False)
    _signer: FileSigner | None = field(default=None, repr=False)
    _pseudonyms: Pseudonyms | None = field(default=None, repr=False)
    _vault: Vault | None = field(default=None, repr=False)
    # The embedded broker's address while ``broker()`` runs one; never written into settings.
    _embedded_bootstrap: str | None = field(default=None, repr=False)
    # How every Kafka client reaches the broker, built on first use (see ``kafka``).
    _kafka: KafkaConnection | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, read_only: bool = False) -> App:
        """The app for ``settings``, else for the environment (read here, once)."""
        settings = settings or Settings()
        catalog = load_catalog(settings.schemas_dir)
        return cls(
            settings=settings,
            directory=load_directory(settings.directory_path),
            catalog=catalog,
            codec=AvroCodec(catalog, settings.limits.decode_limits()),
            read_only=read_only,
        )

    # -- store -------------------------------------------------------------------------------

    @property
    def store(self) -> SqlStore:
        """The configured store, opened (and migrated when the settings say so) on first use."""
        if self._store is None:
            url, vault = self.settings.store.url, self.vault()
            if self.read_only:
                self._store = SqlStore.open_existing(url, vault=vault)
            else:
                migrate = self.settings.store.auto_migrate
                self._store = SqlStore.open(url, vault=vault, migrate_schema=migrate)
        return self._store

    # -- signing ---------------------------------------------------------------------------

    def signer(self, *, create: bool | None = None) -> FileSigner:
        """The audit signing key; created on first use when the settings allow it and
        ``create`` does not forbid it (a verifier must never mint the key it checks against)."""
        if self._signer is None:
            audit = self.settings.audit
            if create is None:
                create = audit.create_key and not self.read_only
            self._signer = FileSigner(audit.signing_key, create=create)
        return self._signer

    def pseudonyms(self, *, create: bool | None = None) -> Pseudonyms:
        """Keyed hashes of publisher-supplied ids. The key is read when first needed, and
        created then when the settings allow it and ``create`` does not forbid it (read-only
        commands never mint a key that could not match the log)."""
        if self._pseudonyms is None:
            audit = self.settings.audit
            allowed = audit.create_key if create is None else create
            allowed = allowed and not self.read_only
            self._pseudonyms = Pseudonyms(
                lambda: load_pseudonym_key(audit.pseudonym_key_path(), create=allowed)
            )
        return self._pseudonyms

    def vault(self) -> Vault:
        """Data keys per person under the configured KEK holder, and the blind index. Keys
        are read when first needed, and created then only when the settings allow it and the
        command may write (a reader never mints a key that could open nothing)."""
        if self._vault is None:
            self._vault = vault_for(self.settings, create=not self.read_only)
        return self._vault

    def notary(self) -> Notary:
        """Signs audit checkpoints with this hub's key, as often as the settings ask."""
        audit = self.settings.audit
        policy = CheckpointPolicy(audit.checkpoint_every_leaves, audit.checkpoint_every_s)
        return Notary(self.signer(), policy)

    @staticmethod
    def signature_check(public_key_pem: str) -> SignatureCheck:
        """A check of signatures made with the key whose public half is ``public_key_pem``."""
        return public_key_check(public_key_pem)

    def verify_audit(self) -> Verdict:
        """The live audit log checked against this hub's own public key."""
        signer = self.signer(create=False)
        check = public_key_check(signer.public_key_pem())
        return verify_store(self.store, check, signer.key_id)

    def consent(self) -> ConsentService:
        """Link and consent use-cases on the store, issuing receipts signed with the audit key."""
        return ConsentService(
            self.store,
            self.directory,
            clock=utc_now,
            issue=lambda claims: sign_compact(self.signer(), claims),
            issuer=self.settings.audit.issuer,
        )

    def erasure(self) -> ErasureService:
        """Erasing persons (``tellonce person erase``, portal requests) on the store, their
        cached data keys forgotten by this process's vault."""
        return ErasureService(
            self.store,
            resolve=self.consent().resolve,
            pseudonyms=self.pseudonyms(),
            clock=utc_now,
            vault=self.vault(),
        )

    # -- broker ------------------------------------------------------------------------------

    def kafka(self) -> KafkaConnection:
        """How every Kafka client of this run reaches the broker: the configured cluster with
        the security settings, else the embedded broker ``broker()`` runs (PLAINTEXT, the only
        protocol Tansu speaks). Built once; ConfigError when there is no broker, or a file the
        security settings name cannot be read."""
        if self._kafka is None:
            broker = self.settings.broker
            if broker.bootstrap_servers:
                self._kafka = KafkaConnection.from_settings(broker, broker.bootstrap_servers)
            elif self._embedded_bootstrap:
                self._kafka = KafkaConnection.plaintext(self._embedded_bootstrap)
            else:
                raise ConfigError(
                    "no broker configured: start one with 'tellonce broker' and set "
                    "TELLONCE_BROKER__BOOTSTRAP_SERVERS to the address it prints"
                )
        return self._kafka

    @contextlib.contextmanager
    def broker(self) -> Iterator[KafkaConnection]:
        """The configured Kafka cluster, or an embedded Tansu for as long as the block runs."""
        if self.settings.broker.bootstrap_servers:
            yield self.kafka()
            return
        with embedded_broker(self.settings) as embedded:
            self._embedded_bootstrap, self._kafka = embedded.bootstrap, None
            try:
                yield self.kafka()
            finally:
                self._embedded_bootstrap, self._kafka = None, None

    def ensure_topics(self, kafka: KafkaConnection, only: Iterable[str] | None = None) -> None:
        """Create the hub's topics and every subscriber's notify and dead-letter topics (or,
        with ``only``, just those of them a role uses: on a cluster with ACLs a connector or a
        publisher sees and may create none of the others). Notify and dead-letter topics hold
        notices (personal data), so the broker keeps them ``notice_retention`` only."""
        broker = self.settings.broker
        subscribers = [p.id for p in self.directory.subscribers()]
        notices = [notify_topic(r) for r in subscribers] + [dlq_topic(r) for r in subscribers]
        wanted = [LIFEEVENTS_TOPIC, REJECTED_TOPIC, RECEIPTS_TOPIC, CONSENT_TOPIC, *notices]
        if only is not None:
            chosen = set(only)
            wanted = [t for t in wanted if t in chosen]
        retention = notice_topic_config(broker.notice_retention)
        ensure_topics(
            kafka,
            wanted,
            broker.topic_partitions,
            broker.replication_factor,
            configs={t: retention for t in wanted if t in notices},
        )

    def _tuning(self) -> ConsumerTuning:
        broker = self.settings.broker
        return ConsumerTuning(
            max_poll_interval_ms=broker.max_poll_interval_ms,
            session_timeout_ms=broker.session_timeout_ms,
            heartbeat_interval_ms=broker.heartbeat_interval_ms,
        )

    # -- workers -----------------------------------------------------------------------------

    def store_fence(self, kafka: KafkaConnection) -> StoreFence:
        """The fence that keeps this hub out of a group working with another store."""
        ensure_claim_topic(kafka, self.settings.broker.replication_factor)
        return StoreFence(
            KafkaClaimLog(kafka),
            group_id=self.settings.hub.group_id,
            store_id=self.store.store_id(),
            audit_key_id=self.signer().key_id,
            host=socket.gethostname(),
            clock=utc_now,
        )

    def hub_worker(self, kafka: KafkaConnection) -> HubWorker:
        """The hub worker, its fence entered: it may take partitions for this store only."""
        hub = self.settings.hub
        store = self.store
        self.ensure_topics(kafka)
        notary = self.notary()  # a missing signing key stops the hub here, before the fence
        fence = self.store_fence(kafka)
        try:
            fence.enter()  # before the group join: never take partitions for another store
            intakes = self.intakes()
            source = KafkaSource(
                kafka,
                [LIFEEVENTS_TOPIC, *(intake.topic for intake in intakes)],
                group_id=hub.group_id,
                offset_lookup=stored_offsets(store, hub.group_id),
                tuning=self._tuning(),
                client_id="tellonce-hub",
            )
        except BaseException:
            fence.close()
            raise
        relay = Relay(
            store,
            KafkaSink(kafka, client_id="tellonce-hub"),
            utc_now,
            hub.relay_batch,
            redeliver_after_s=hub.redeliver_after_s,
            redeliver_max=hub.redeliver_max,
            retention=self.settings.privacy.outbox_retention,
        )
        return HubWorker(
            store=store,
            source=source,
            processor=BatchProcessor(
                directory=self.directory,
                codec=self.codec,
                clock=utc_now,
                group_id=hub.group_id,
                pseudonyms=self.pseudonyms(),
                clock_skew=self.settings.limits.clock_skew,
                signatures=self.event_signatures(),
                notice_signer=self.notice_signer(),
            ),
            relay=BackgroundRelay(relay) if self.settings.relay_in_background() else relay,
            clock=utc_now,
            notary=notary,
            intakes=intakes,
            batch_size=hub.batch_size,
            poll_timeout_ms=hub.poll_timeout_ms,
            fence=fence,
            fence_check_every_s=hub.fence_check_every_s,
        )

    def notice_signer(self) -> FileSigner:
        """The hub's audit key, which also signs every notice (README, "Signed notices"): a
        missing or corrupt key file stops the batches until it is back, as for checkpoints."""
        return self.signer()

    def hub_key_entry(self, valid_from: datetime) -> ProgramKey:
        """The directory entry (``hub_keys``) of the hub's key, for the connectors (the key is
        created when the settings allow it)."""
        return self.signer().directory_entry(valid_from)

    def notice_signatures(self) -> NoticeSignatures | None:
        """What a connector checks on each notice before delivering it: the hub's keys the
        directory lists, and whether a notice without a signature is refused. None (nothing
        checked) when the directory lists no hub key and signed notices are not required;
        ConfigError when they are required and it lists none (every notice would be refused)."""
        required = self.settings.connector.require_signed_notices
        if not self.directory.hub_keys:
            if required:
                raise ConfigError(
                    "the directory lists no hub key (hub_keys); add the entry 'tellonce keys "
                    "hub-entry' prints, or set TELLONCE_CONNECTOR__REQUIRE_SIGNED_NOTICES=false"
                )
            return None
        return NoticeSignatures(
            self.directory.hub_keys, SignaturePolicy(verify_ed25519, required=required)
        )

    def event_signatures(self) -> SignaturePolicy:
        """How life events' and portals' consent events' signatures are checked: always when
        present, and required when the settings say so."""
        return SignaturePolicy(verify_ed25519, required=self.settings.hub.require_signatures)

    def receipt_signatures(self) -> ReceiptSignatures:
        """How connectors' receipts are checked: a signature present always, against the keys
        the directory lists for the recipient; required when the settings say so."""
        required = self.settings.hub.require_signed_receipts
        return ReceiptSignatures(self.directory, SignaturePolicy(verify_ed25519, required=required))

    def receipt_signer(self, recipient: str) -> RecordKey | None:
        """The connector's own key, which signs the receipts of ``recipient`` (README, "Signed
        receipts"); None, with a warning, when the settings name none. ConfigError when the
        directory does not list it for ``recipient``: the hub would refuse every receipt it
        signs."""
        path = self.settings.connector.signing_key
        if path is None:
            # Not refused here: the hub decides, and may still take unsigned receipts while
            # connectors are moved onto keys. By default it does not, so say so at the start.
            log.warning(
                "receipts go unsigned: no TELLONCE_CONNECTOR__SIGNING_KEY; a hub that requires "
                "signed receipts (its default) refuses each one and publishes the notice again",
                recipient=recipient,
            )
            return None
        key = RecordKey.load(
            path,
            fix=f"set TELLONCE_CONNECTOR__SIGNING_KEY to the file 'tellonce keys new {recipient} "
            "--out FILE' wrote",
        )
        if self.directory.program(recipient).key(key.key_id) is None:
            raise ConfigError(
                f"the connector's key {key.key_id} ({path}) is not listed for {recipient} in the "
                f"directory; add the entry 'tellonce keys new {recipient}' printed under its "
                "[[programs.keys]]"
            )
        return key

    def intakes(self) -> list[Intake]:
        """Topics the hub worker handles besides life events."""
        group = self.settings.hub.group_id
        pseudonyms = self.pseudonyms().load()  # a missing key stops the worker at its start
        return [
            DeliveryIntake(
                codec=self.codec,
                clock=utc_now,
                group_id=group,
                pseudonyms=pseudonyms,
                signatures=self.receipt_signatures(),
            ),
            ConsentIntake(
                directory=self.directory,
                codec=self.codec,
                clock=utc_now,
                group_id=group,
                service=self.consent(),
                erasure=self.erasure(),
                pseudonyms=pseudonyms,
                clock_skew=self.settings.limits.clock_skew,
                signatures=self.event_signatures(),  # portals sign as publishers do
            ),
        ]

    def connector(
        self,
        kafka: KafkaConnection,
        recipient: str,
        sink_name: str,
        options: dict[str, str],
        *,
        receipt_signer: RecordKey | None = None,
    ) -> ConnectorRunner:
        """The connector for ``recipient``: its notify topic into the sink named ``sink_name``
        (built with ``options``), signing its receipts with ``receipt_signer`` (the demo's key
        made for the run) or else the settings' key; ConfigError for an unknown sink or options
        it refuses, or when signed notices are required and the directory lists no hub key."""
        from connectors import UnknownSinkError, resolve_sink

        program = self.directory.program(recipient)
        if not program.subscriptions:
            raise ConfigError(f"program {recipient!r} subscribes to nothing; no topic to consume")
        receipt_signer = receipt_signer or self.receipt_signer(recipient)
        try:
            sink = resolve_sink(sink_name)(recipient, options)
        except UnknownSinkError as exc:
            raise ConfigError(str(exc)) from None
        except ValueError as exc:
            raise ConfigError(f"sink {sink_name!r}: {exc}") from None
        if not 1 <= len(sink.name) <= MAX_SINK_CHARS:  # every receipt would be refused
            sink.close()
            raise ConfigError(
                f"sink {sink_name!r} has a name of {len(sink.name)} characters; receipts carry "
                f"it and the hub keeps names of 1 to {MAX_SINK_CHARS}: shorten its name attribute"
            )
        try:
            notices = self.notice_signatures()  # before the broker is asked anything
        except ConfigError:
            sink.close()
            raise
        # Only the topics this connector uses: the only ones its ACLs let it see.
        self.ensure_topics(kafka, [program.notify_topic, dlq_topic(recipient), RECEIPTS_TOPIC])
        source = KafkaSource(
            kafka,
            [program.notify_topic],
            group_id=connector_group(recipient),
            tuning=self._tuning(),
            client_id=connector_group(recipient),
        )
        return ConnectorRunner(
            recipient=recipient,
            source=source,
            codec=self.codec,
            sink=sink,
            producer=KafkaSink(kafka, client_id=connector_group(recipient)),
            clock=utc_now,
            batch_size=self.settings.hub.batch_size,
            poll_timeout_ms=self.settings.hub.poll_timeout_ms,
            retry=self.retry_policy(),
            progress_every_s=self.settings.connector.progress_every_s,
            notices=notices,
            receipt_signer=receipt_signer,
        )

    def retry_policy(self) -> RetryPolicy:
        """When a connector retries a failed delivery and when it dead-letters it."""
        c = self.settings.connector
        return RetryPolicy(
            timeout_ms=c.errors_retry_timeout_ms,
            delay_max_ms=c.errors_retry_delay_max_ms,
            delay_initial_ms=c.errors_retry_delay_initial_ms,
            tolerate_all=c.errors_tolerance == "all",
        )

    def dead_letter_office(self) -> DeadLetterOffice:
        """``tellonce dlq``: dead letters read off the broker without joining a group, replays
        published by a producer opened only when one is sent."""
        kafka = self.kafka()
        return DeadLetterOffice(
            store=self.store,  # a missing database is reported before the broker is asked
            read=lambda topic: read_topic(kafka, topic),
            open_producer=lambda: self.producer(kafka),
            pseudonyms=self.pseudonyms(),
            clock=utc_now,
        )

    def connector_status(self, recipients: Sequence[str] = ()) -> list[ConnectorStatus]:
        """``tellonce connector status``: lag read without joining the connectors' groups."""
        kafka = self.kafka()
        return connector_status(
            self.directory,
            lambda: self.store,
            lambda group, topic: topic_lag(kafka, group, topic),
            recipients,
        )

    def producer(self, kafka: KafkaConnection) -> KafkaSink:
        """A producer for commands that publish (replay, test events)."""
        return KafkaSink(kafka, client_id="tellonce-cli")

    def close(self) -> None:
        """Close the store if it was opened; the app may open it again."""
        if self._store is not None:
            self._store.close()
            self._store = None

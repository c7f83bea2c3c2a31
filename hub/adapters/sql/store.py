"""The Store port on SQLAlchemy 2.x: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import base64
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import (
    Connection,
    Engine,
    Row,
    create_engine,
    event,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.pool import NullPool

from consent.model import ConsentRevision, ConsentState, ConsentTerms, Evidence, IdentityLink
from hub.adapters.sql import migrate
from hub.adapters.sql.tables import (
    audit_checkpoints,
    audit_leaves,
    consent_events,
    consent_revisions,
    consumer_offsets,
    decisions,
    deliveries,
    events,
    identity_links,
    outbox,
    persons,
    rejections,
    store_identity,
)
from hub.errors import ConfigError, RecordStoreError, StoreError
from hub.model import (
    AcceptedEvent,
    AuditRecord,
    Checkpoint,
    Decision,
    Delivery,
    InboundMessage,
    OutboxMessage,
    Outcome,
    RejectionRecord,
)

log = structlog.get_logger(__name__)

# The hub's own store; MariaDB/MySQL serve only the sqltable sink (connectors.sqltable).
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
# Bound IN lists; SQLite allows 32k parameters, PostgreSQL 65k, and plans stay small.
CHUNK = 500


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use the psycopg 3 driver tellonce installs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _cannot_open(url: URL, exc: DBAPIError) -> ConfigError | StoreError:
    """What went wrong opening the store, in the driver's words (without the password), and
    what to do: a database that does not exist is a setting to fix (exit 2); a server that
    does not answer is a failure to retry (exit 1)."""
    where = url.render_as_string()  # hides the password
    if not isinstance(exc, OperationalError):  # may quote SQL or data: name the class only
        return StoreError(
            f"cannot migrate the database at {where} ({exc.orig.__class__.__name__}); "
            "check that TELLONCE_STORE__URL names tellonce's database"
        )
    cause = " ".join(str(exc.orig).split()) or exc.orig.__class__.__name__
    if url.password:
        cause = cause.replace(url.password, "***")
    if url.get_backend_name() == "sqlite" and "unable to open" in cause:
        return ConfigError(
            f"cannot open the SQLite database {url.database}: {cause}; check that its folder "
            "exists and is writable, or change TELLONCE_STORE__URL"
        )
    if _no_such_database(exc):
        return ConfigError(
            f"the database at {where} does not exist ({cause}); create it (createdb "
            f"{url.database}) or point TELLONCE_STORE__URL at an existing one"
        )
    return StoreError(
        f"cannot reach the database at {where}: {cause}; check TELLONCE_STORE__URL (host, "
        "port, user) and that the database server is running"
    )


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything tellonce stores is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate_schema: bool = True) -> SqlStore:
        try:
            parsed = make_url(normalise_url(url))
        except ArgumentError as exc:
            raise ConfigError(
                f"store URL is not a database URL ({exc}); use e.g. sqlite:///tellonce.db or "
                "postgresql://user@host:5432/dbname"
            ) from None
        backend = parsed.get_backend_name()
        if backend not in SUPPORTED_BACKENDS:
            raise ConfigError(
                f"the hub's store cannot be a {backend} database; TELLONCE_STORE__URL must be "
                "SQLite (sqlite:///tellonce.db) or PostgreSQL (postgresql://user@host:5432/db). "
                "MariaDB and MySQL serve the sqltable connector's back-office tables only "
                "(pip install 'tellonce[mariadb]')"
            )
        if backend == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": 30})
            _sqlite_pragmas(engine)
        else:
            try:
                engine = create_engine(parsed, pool_pre_ping=True)
            except (ArgumentError, ModuleNotFoundError) as exc:
                raise ConfigError(
                    f"cannot use database driver for {parsed.drivername}: {exc}; "
                    "for PostgreSQL install tellonce[postgres]"
                ) from None
        store = cls(engine)
        if migrate_schema:
            try:
                migrate.upgrade(engine)
            except DBAPIError as exc:
                raise _cannot_open(parsed, exc) from exc
        return store

    @classmethod
    def open_existing(cls, url: str) -> SqlStore:
        """The store for commands that only read: it never creates the database (a missing
        SQLite file stays missing) and never migrates it. A missing database, or one without
        tellonce's current schema, is a ConfigError that names TELLONCE_STORE__URL."""
        store = cls.open(url, migrate_schema=False)  # connects lazily: nothing created yet
        try:
            store._check_existing()
        except BaseException:
            store.close()
            raise
        return store

    def _check_existing(self) -> None:
        url = self.engine.url
        where = url.render_as_string(hide_password=True)
        probe = self.engine
        sqlite_file = url.get_backend_name() == "sqlite" and url.database not in (None, "")
        if sqlite_file and url.database != ":memory:" and not url.query.get("uri"):
            path = Path(str(url.database)).resolve()
            if not path.is_file():
                raise ConfigError(
                    f"there is no tellonce database at {path} (TELLONCE_STORE__URL={where}); "
                    "this command only reads and creates nothing. Point TELLONCE_STORE__URL at "
                    "the hub's database, or create this one with 'tellonce db upgrade' (or by "
                    "running the hub) first"
                )
            # Look at the schema through a read-only connection: the store's own connections
            # switch the file to WAL, which would write to a file that is not tellonce's.
            uri = path.as_uri() + "?mode=ro"
            probe = create_engine(
                "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=NullPool
            )
        try:
            with probe.connect() as connection:
                current = migrate.current_revision(connection)
                head = migrate.head_revision(connection)
        except DBAPIError as exc:
            if _no_such_database(exc):
                raise ConfigError(
                    f"the database at TELLONCE_STORE__URL={where} does not exist; this command "
                    "only reads and creates nothing. Point TELLONCE_STORE__URL at the hub's "
                    "database, or create this one (e.g. createdb) and run 'tellonce db upgrade'"
                ) from None
            raise _cannot_open(url, exc) from exc
        if current is None:
            raise ConfigError(
                f"the database at TELLONCE_STORE__URL={where} holds no tellonce tables; point "
                "TELLONCE_STORE__URL at the hub's database, or run 'tellonce db upgrade' first"
            )
        if current != head:
            raise ConfigError(
                f"the database at TELLONCE_STORE__URL={where} is at schema revision {current}, "
                f"this tellonce reads revision {head}; run 'tellonce db upgrade' (commands that "
                "only read never change the database)"
            )

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        try:
            with self.engine.begin() as connection:
                yield SqlTransaction(connection)
        except DBAPIError as exc:
            raise translated(exc) from exc

    # -- queries for reports and tests -------------------------------------------------------

    def store_id(self) -> str:
        """The random id made with the schema (migration 0003): which database this is."""
        try:
            rows = self._all(select(store_identity.c.store_id))
        except DBAPIError as exc:
            raise StoreError(
                f"cannot read the store id ({exc.orig.__class__.__name__}); check that the "
                "database is running, and run 'tellonce db upgrade' if its schema is older "
                "than this tellonce"
            ) from exc
        if len(rows) != 1:
            raise StoreError(
                f"the store_identity table holds {len(rows)} rows instead of one; it was "
                "edited by hand: restore it from a backup",
                retriable=False,
            )
        return str(rows[0][0])

    def _all(self, statement: Any) -> list[Row[Any]]:
        with self.engine.connect() as connection:
            return list(connection.execute(statement))

    def events(self) -> list[AcceptedEvent]:
        return [_event(r) for r in self._all(select(events).order_by(events.c.id))]

    def decisions(self) -> list[Decision]:
        return [_decision(r) for r in self._all(select(decisions).order_by(decisions.c.id))]

    def rejections(self) -> list[RejectionRecord]:
        return [_rejection(r) for r in self._all(select(rejections).order_by(rejections.c.id))]

    def audit_records(self, start: int = 0, stop: int | None = None) -> Iterator[AuditRecord]:
        """Leaves ``start`` to ``stop`` (exclusive) in order, streamed."""
        query = select(audit_leaves).where(audit_leaves.c.leaf_index >= start)
        if stop is not None:
            query = query.where(audit_leaves.c.leaf_index < stop)
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=2000).execute(
                query.order_by(audit_leaves.c.leaf_index)
            )
            try:
                for row in result:
                    yield _audit(row)
            finally:
                # A reader that stops early (a verifier at the first bad leaf) must not leave
                # PostgreSQL's server-side cursor open.
                result.close()

    def checkpoints(self) -> list[Checkpoint]:
        query = select(audit_checkpoints).order_by(audit_checkpoints.c.seq)
        return [_checkpoint(r) for r in self._all(query)]

    def leaf_hashes(self, stop: int | None = None) -> list[bytes]:
        query = select(audit_leaves.c.leaf_hash).order_by(audit_leaves.c.leaf_index)
        if stop is not None:
            query = query.where(audit_leaves.c.leaf_index < stop)
        return [bytes.fromhex(r[0]) for r in self._all(query)]

    def deliveries(self) -> list[Delivery]:
        query = select(deliveries).order_by(deliveries.c.recorded_at)
        return [_delivery(r) for r in self._all(query)]

    def consents(self) -> list[ConsentRevision]:
        query = select(consent_revisions).order_by(consent_revisions.c.id)
        return [_revision(r) for r in self._all(query)]

    def awaiting_receipt(self, recipient: str) -> int:
        """Notifications published to ``recipient`` that no receipt answered yet."""
        answered = select(deliveries.c.notification_id).where(
            deliveries.c.notification_id == outbox.c.message_id
        )
        query = (
            select(func.count())
            .select_from(outbox)
            .where(
                outbox.c.topic == f"tellonce.notify.{recipient}.v1",
                outbox.c.published_at.is_not(None),
                ~answered.exists(),
            )
        )
        return int(self._all(query)[0][0])

    def link_count(self) -> int:
        return int(self._all(select(func.count()).select_from(identity_links))[0][0])

    def outbox_backlog(self) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        return int(self._all(query)[0][0])

    def close(self) -> None:
        self.engine.dispose()


# SQLSTATE classes of errors caused by the data written, not by the database: 22 data exception
# (a value too long or out of range, a NUL byte, an untranslatable character), 23 integrity
# constraint violation (unique, check, foreign key, not null).
RECORD_SQLSTATE_CLASSES = ("22", "23")
# Two writers appending to the audit log at once take the same leaf index or checkpoint number.
AUDIT_TABLES = ("audit_leaves", "audit_checkpoints")


def translated(exc: DBAPIError) -> StoreError:
    """The StoreError for a failed transaction: retriable when the database failed (connection
    refused or lost, timeout, serialization failure, deadlock, disk full: SQLSTATE classes 08,
    40, 53, 57 and the like), RecordStoreError when the data written broke one of its rules
    (classes 22 and 23, or SQLite's IntegrityError and DataError). Only the driver's error
    class is named: its message may quote the values."""
    cause = exc.orig.__class__.__name__
    if isinstance(exc, IntegrityError) and any(t in str(exc.orig) for t in AUDIT_TABLES):
        # Retrying rereads the end of the log.
        return StoreError(
            f"a write broke a uniqueness rule ({cause}); another writer appended to the audit "
            "log first: retry",
            retriable=True,
        )
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if sqlstate[:2] in RECORD_SQLSTATE_CLASSES or (
        not sqlstate and isinstance(exc, IntegrityError | DataError)
    ):
        return RecordStoreError(
            f"the database refused a write of the batch ({cause}): a value it cannot hold or a "
            "rule it enforces; the batch was rolled back",
            cause=cause,
        )
    return StoreError(f"database error ({cause}); the batch was rolled back", retriable=True)


def _no_such_database(exc: DBAPIError) -> bool:
    """True when the server answered that the named database does not exist."""
    text = str(exc.orig)  # PostgreSQL: database "x" does not exist; MariaDB: Unknown database
    return re.search(r'database "[^"]*" does not exist', text) is not None or (
        "Unknown database" in text
    )


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below issue BEGIN IMMEDIATE: the write lock is taken up front,
        # so two writers queue on busy_timeout instead of failing on a lock upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class SqlTransaction:
    """Implements hub.ports.Transaction on one open connection."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- offsets -----------------------------------------------------------------------------

    def offsets(self, group: str, topic: str) -> dict[int, int]:
        rows = self._c.execute(
            select(consumer_offsets.c.kafka_partition, consumer_offsets.c.next_offset).where(
                consumer_offsets.c.group_id == group, consumer_offsets.c.topic == topic
            )
        )
        return {int(p): int(o) for p, o in rows}

    def save_offsets(self, group: str, topic: str, next_offsets: dict[int, int]) -> None:
        current = self.offsets(group, topic)
        for partition, next_offset in next_offsets.items():
            if partition in current:
                self._c.execute(
                    update(consumer_offsets)
                    .where(
                        consumer_offsets.c.group_id == group,
                        consumer_offsets.c.topic == topic,
                        consumer_offsets.c.kafka_partition == partition,
                    )
                    .values(next_offset=next_offset)
                )
            else:
                self._c.execute(
                    insert(consumer_offsets).values(
                        group_id=group,
                        topic=topic,
                        kafka_partition=partition,
                        next_offset=next_offset,
                    )
                )

    # -- identity and consent ----------------------------------------------------------------

    def persons_for(self, program: str, local_ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(set(local_ids))):
            rows = self._c.execute(
                select(identity_links.c.local_id, identity_links.c.person_id).where(
                    identity_links.c.program == program, identity_links.c.local_id.in_(chunk)
                )
            )
            found.update((str(local), str(person)) for local, person in rows)
        return found

    def links_of(self, person_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for chunk in _chunks(sorted(set(person_ids))):
            rows = self._c.execute(
                select(
                    identity_links.c.person_id,
                    identity_links.c.program,
                    identity_links.c.local_id,
                ).where(identity_links.c.person_id.in_(chunk))
            )
            for person, program, local in rows:
                found.setdefault(person, {})[program] = local
        return found

    def link_records(self, person_id: str) -> list[IdentityLink]:
        rows = self._c.execute(
            select(identity_links)
            .where(identity_links.c.person_id == person_id)
            .order_by(identity_links.c.id)
        )
        return [
            IdentityLink(
                person_id=r.person_id,
                program=r.program,
                local_id=r.local_id,
                evidence=Evidence(r.channel, r.actor, datetime.fromisoformat(r.recorded_at)),
            )
            for r in rows
        ]

    def person_exists(self, person_id: str) -> bool:
        query = select(persons.c.person_id).where(persons.c.person_id == person_id)
        return self._c.execute(query).first() is not None

    def add_person(self, person_id: str, at: datetime) -> None:
        self._c.execute(insert(persons).values(person_id=person_id, created_at=at))

    def add_link(self, link: IdentityLink) -> None:
        self._c.execute(
            insert(identity_links).values(
                person_id=link.person_id,
                program=link.program,
                local_id=link.local_id,
                channel=link.evidence.channel,
                actor=link.evidence.actor,
                recorded_at=link.evidence.recorded_at.isoformat(),
            )
        )

    def consent_history(
        self, person_ids: Iterable[str]
    ) -> dict[tuple[str, str, str], list[ConsentRevision]]:
        found: dict[tuple[str, str, str], list[ConsentRevision]] = {}
        for chunk in _chunks(sorted(set(person_ids))):
            rows = self._c.execute(
                select(consent_revisions)
                .where(consent_revisions.c.person_id.in_(chunk))
                .order_by(consent_revisions.c.seq)
            )
            for r in rows:
                revision = _revision(r)
                key = (revision.person_id, revision.recipient, revision.event_type)
                found.setdefault(key, []).append(revision)
        return found

    def add_consent(self, revision: ConsentRevision) -> None:
        self._c.execute(
            insert(consent_revisions).values(
                person_id=revision.person_id,
                recipient=revision.recipient,
                event_type=revision.event_type,
                seq=revision.seq,
                state=revision.state.value,
                channel=revision.evidence.channel,
                actor=revision.evidence.actor,
                recorded_at=revision.evidence.recorded_at.isoformat(),
                notice_version=revision.evidence.notice_version,
                notice_hash=revision.evidence.notice_hash,
                purpose=revision.terms.purpose,
                legal_basis=revision.terms.legal_basis,
                expires_at=(
                    revision.terms.expires_at.isoformat() if revision.terms.expires_at else None
                ),
                prev_hash=revision.prev_hash,
                hash=revision.hash,
            )
        )

    def known_consent_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for chunk in _chunks(sorted(set(keys))):
            rows = self._c.execute(
                select(consent_events.c.source, consent_events.c.event_id).where(
                    tuple_(consent_events.c.source, consent_events.c.event_id).in_(chunk)
                )
            )
            found.update((s, e) for s, e in rows)
        return found

    def add_consent_event(
        self, key: tuple[str, str], person_id: str, message: InboundMessage, at: datetime
    ) -> None:
        self._c.execute(
            insert(consent_events).values(
                source=key[0],
                event_id=key[1],
                person_id=person_id,
                kafka_topic=message.topic,
                kafka_partition=message.partition,
                kafka_offset=message.offset,
                processed_at=at,
            )
        )

    # -- processing results ------------------------------------------------------------------

    def known_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for chunk in _chunks(sorted(set(keys))):
            rows = self._c.execute(
                select(events.c.source, events.c.event_id).where(
                    tuple_(events.c.source, events.c.event_id).in_(chunk)
                )
            )
            found.update((s, e) for s, e in rows)
        return found

    def add_event(self, event: AcceptedEvent) -> None:
        self._c.execute(
            insert(events).values(
                source=event.source,
                event_id=event.event_id,
                event_type=event.event_type,
                event_time=event.time,
                person_id=event.person_id,
                kafka_topic=event.topic,
                kafka_partition=event.partition,
                kafka_offset=event.offset,
                processed_at=event.processed_at,
            )
        )

    def add_decision(self, decision: Decision) -> None:
        self._c.execute(
            insert(decisions).values(
                source=decision.source,
                event_id=decision.event_id,
                recipient=decision.recipient,
                outcome=decision.outcome.value,
                reason=decision.reason,
                consent_revision=decision.consent_revision,
                notification_id=decision.notification_id,
                fields=list(decision.fields),
                decided_at=decision.decided_at,
            )
        )

    def add_rejection(self, rejection: RejectionRecord) -> None:
        self._c.execute(
            insert(rejections).values(
                kafka_topic=rejection.topic,
                kafka_partition=rejection.partition,
                kafka_offset=rejection.offset,
                reason=rejection.reason,
                detail=rejection.detail,
                source=rejection.source,
                event_id=rejection.event_id,
                rejected_at=rejection.rejected_at,
            )
        )

    def add_outbox(self, message: OutboxMessage) -> None:
        self._c.execute(
            insert(outbox).values(
                message_id=message.message_id,
                topic=message.topic,
                key=message.key,
                value=message.value,
                headers=[[k, base64.b64encode(v).decode()] for k, v in message.headers],
                created_at=message.created_at,
            )
        )

    def last_audit(self) -> AuditRecord | None:
        query = select(audit_leaves).order_by(audit_leaves.c.leaf_index.desc()).limit(1)
        row = self._c.execute(query).first()
        return _audit(row) if row else None

    def add_audit(self, records: Sequence[AuditRecord]) -> None:
        if records:
            self._c.execute(
                insert(audit_leaves),
                [
                    {
                        "leaf_index": r.index,
                        "kind": r.kind,
                        "data": r.data,
                        "recorded_at": r.recorded_at.isoformat(),
                        "prev_hash": r.prev_hash,
                        "leaf_hash": r.hash,
                    }
                    for r in records
                ],
            )

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        rows = self._c.execute(
            select(audit_leaves.c.leaf_hash)
            .where(audit_leaves.c.leaf_index >= start, audit_leaves.c.leaf_index < stop)
            .order_by(audit_leaves.c.leaf_index)
        )
        return [bytes.fromhex(h) for (h,) in rows]

    def last_checkpoint(self) -> Checkpoint | None:
        query = select(audit_checkpoints).order_by(audit_checkpoints.c.seq.desc()).limit(1)
        row = self._c.execute(query).first()
        return _checkpoint(row) if row else None

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._c.execute(
            insert(audit_checkpoints).values(
                seq=checkpoint.seq,
                tree_size=checkpoint.size,
                root_hash=checkpoint.root,
                issued_at=checkpoint.issued_at.isoformat(),
                key_id=checkpoint.key_id,
                signature=checkpoint.signature,
                frontier=list(checkpoint.frontier),
            )
        )

    # -- deliveries --------------------------------------------------------------------------

    def decisions_by_notification(self, notification_ids: Iterable[str]) -> dict[str, Decision]:
        found: dict[str, Decision] = {}
        for chunk in _chunks(sorted(set(notification_ids))):
            rows = self._c.execute(select(decisions).where(decisions.c.notification_id.in_(chunk)))
            found.update((r.notification_id, _decision(r)) for r in rows)
        return found

    def deliveries_of(self, notification_ids: Iterable[str]) -> dict[str, Delivery]:
        found: dict[str, Delivery] = {}
        for chunk in _chunks(sorted(set(notification_ids))):
            rows = self._c.execute(
                select(deliveries).where(deliveries.c.notification_id.in_(chunk))
            )
            found.update((r.notification_id, _delivery(r)) for r in rows)
        return found

    def save_delivery(self, delivery: Delivery, *, new: bool) -> None:
        values = {
            "recipient": delivery.recipient,
            "status": delivery.status,
            "sink": delivery.sink,
            "detail": delivery.detail,
            "recorded_at": delivery.recorded_at,
            "dead_lettered_at": delivery.dead_lettered_at,
        }
        if new:
            self._c.execute(
                insert(deliveries).values(notification_id=delivery.notification_id, **values)
            )
        else:
            self._c.execute(
                update(deliveries)
                .where(deliveries.c.notification_id == delivery.notification_id)
                .values(**values)
            )

    # -- relay -------------------------------------------------------------------------------

    def pending_outbox(self, limit: int) -> list[OutboxMessage]:
        rows = self._c.execute(
            select(outbox)
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.seq)
            .limit(limit)
        )
        return [_outbox(r) for r in rows]

    def unreceipted_outbox(
        self, published_before: datetime, limit: int, max_republished: int
    ) -> list[OutboxMessage]:
        answered = select(deliveries.c.notification_id).where(
            deliveries.c.notification_id == outbox.c.message_id
        )
        rows = self._c.execute(
            select(outbox)
            .where(
                outbox.c.topic.like("tellonce.notify.%"),
                outbox.c.published_at.is_not(None),
                outbox.c.published_at < published_before,
                outbox.c.republished < max_republished,
                ~answered.exists(),
            )
            .order_by(outbox.c.seq)
            .limit(limit)
        )
        return [_outbox(r) for r in rows]

    def mark_republished(self, message_ids: Sequence[str], at: datetime) -> None:
        for chunk in _chunks(list(message_ids)):
            self._c.execute(
                update(outbox)
                .where(outbox.c.message_id.in_(chunk))
                .values(published_at=at, republished=outbox.c.republished + 1)
            )

    def mark_published(self, message_ids: Sequence[str], at: datetime) -> None:
        for chunk in _chunks(list(message_ids)):
            self._c.execute(
                update(outbox).where(outbox.c.message_id.in_(chunk)).values(published_at=at)
            )


# -- row mappers -----------------------------------------------------------------------------


def _event(r: Row[Any]) -> AcceptedEvent:
    return AcceptedEvent(
        source=r.source,
        event_id=r.event_id,
        event_type=r.event_type,
        time=_utc(r.event_time),
        person_id=r.person_id,
        topic=r.kafka_topic,
        partition=r.kafka_partition,
        offset=r.kafka_offset,
        processed_at=_utc(r.processed_at),
    )


def _outbox(r: Row[Any]) -> OutboxMessage:
    return OutboxMessage(
        message_id=r.message_id,
        topic=r.topic,
        key=r.key,
        value=r.value,
        headers=[(k, base64.b64decode(v)) for k, v in r.headers],
        created_at=_utc(r.created_at),
        seq=r.seq,
    )


def _decision(r: Row[Any]) -> Decision:
    return Decision(
        source=r.source,
        event_id=r.event_id,
        recipient=r.recipient,
        outcome=Outcome(r.outcome),
        reason=r.reason,
        consent_revision=r.consent_revision,
        notification_id=r.notification_id,
        fields=tuple(r.fields),
        decided_at=_utc(r.decided_at),
    )


def _rejection(r: Row[Any]) -> RejectionRecord:
    return RejectionRecord(
        topic=r.kafka_topic,
        partition=r.kafka_partition,
        offset=r.kafka_offset,
        reason=r.reason,
        detail=r.detail,
        source=r.source,
        event_id=r.event_id,
        rejected_at=_utc(r.rejected_at),
    )


def _audit(r: Row[Any]) -> AuditRecord:
    return AuditRecord(
        index=int(r.leaf_index),
        kind=r.kind,
        data=dict(r.data),
        recorded_at=datetime.fromisoformat(r.recorded_at),
        prev_hash=r.prev_hash,
        hash=r.leaf_hash,
    )


def _checkpoint(r: Row[Any]) -> Checkpoint:
    return Checkpoint(
        seq=int(r.seq),
        size=int(r.tree_size),
        root=r.root_hash,
        issued_at=datetime.fromisoformat(r.issued_at),
        key_id=r.key_id,
        signature=r.signature,
        frontier=tuple(r.frontier),
    )


def _delivery(r: Row[Any]) -> Delivery:
    return Delivery(
        notification_id=r.notification_id,
        recipient=r.recipient,
        status=r.status,
        sink=r.sink,
        detail=r.detail,
        recorded_at=_utc(r.recorded_at),
        dead_lettered_at=_utc(r.dead_lettered_at) if r.dead_lettered_at else None,
    )


def _revision(r: Row[Any]) -> ConsentRevision:
    return ConsentRevision(
        person_id=r.person_id,
        recipient=r.recipient,
        event_type=r.event_type,
        seq=r.seq,
        state=ConsentState(r.state),
        evidence=Evidence(
            r.channel,
            r.actor,
            datetime.fromisoformat(r.recorded_at),
            notice_version=r.notice_version,
            notice_hash=r.notice_hash,
        ),
        terms=ConsentTerms(
            purpose=r.purpose,
            legal_basis=r.legal_basis,
            expires_at=datetime.fromisoformat(r.expires_at) if r.expires_at else None,
        ),
        prev_hash=r.prev_hash,
        hash=r.hash,
    )


__all__ = ["SQLAlchemyError", "SqlStore", "SqlTransaction", "normalise_url"]

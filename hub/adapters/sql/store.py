"""The Store port on SQLAlchemy 2.x: SQLite (embedded default) or PostgreSQL.

This module opens the database (checking, migrating) and turns driver errors into StoreErrors;
the read side is ``queries``, the write side ``transaction``, the row layout ``mappers``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, Engine, create_engine, event
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

from hub.adapters.sql import migrate
from hub.adapters.sql.queries import SqlQueries
from hub.adapters.sql.transaction import SqlTransaction
from hub.errors import ConfigError, RecordStoreError, StoreError
from hub.privacy.vault import Vault

if TYPE_CHECKING:
    from hub.ports import Store, Transaction

log = structlog.get_logger(__name__)

# The hub's own store; MariaDB/MySQL serve only the sqltable sink (connectors.sqltable).
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


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


class SqlStore(SqlQueries):
    """Implements hub.ports.Store on an SQLAlchemy engine; personal values are sealed with
    ``vault`` (``hub.adapters.sql.sealing``)."""

    def __init__(self, engine: Engine, vault: Vault) -> None:
        super().__init__(engine)
        self.vault = vault
        # Rows whose sealed values did not open, warned about once per store (``role``).
        self._unopened: set[str] = set()

    @classmethod
    def open(cls, url: str, *, vault: Vault, migrate_schema: bool = True) -> SqlStore:
        """The store at ``url``, its schema migrated first when ``migrate_schema`` (migration
        0004 seals existing personal data with ``vault``)."""
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
        store = cls(engine, vault)
        if migrate_schema:
            try:
                migrate.upgrade(engine, vault)
            except DBAPIError as exc:
                raise _cannot_open(parsed, exc) from exc
        return store

    @classmethod
    def open_existing(cls, url: str, *, vault: Vault) -> SqlStore:
        """The store for commands that only read: it never creates the database (a missing
        SQLite file stays missing) and never migrates it. A missing database, or one without
        tellonce's current schema, is a ConfigError that names TELLONCE_STORE__URL."""
        # Connects lazily: nothing is created yet.
        store = cls.open(url, vault=vault, migrate_schema=False)
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
                yield SqlTransaction(connection, self.vault, self._unopened)
        except DBAPIError as exc:
            raise translated(exc) from exc

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


__all__ = ["SQLAlchemyError", "SqlStore", "SqlTransaction", "normalise_url", "translated"]


if TYPE_CHECKING:  # mypy proves the adapter satisfies the ports

    def _is_store(store: SqlStore) -> Store:
        return store

    def _is_transaction(tx: SqlTransaction) -> Transaction:
        return tx

"""Staging table: one row per notification in a table of the recipient's own database.

The back office reads rows where ``processed_at`` is null. The primary key on the notification
id makes redelivery a no-op (DUPLICATE) on every database.

The ``url`` option is an SQLAlchemy URL. Bare schemes get the driver tellonce ships an extra for:
``postgresql://`` and ``postgres://`` use psycopg (``pip install 'tellonce[postgres]'``),
``mysql://`` and ``mariadb://`` use PyMySQL (``pip install 'tellonce[mariadb]'``); ``sqlite://``
needs nothing. A URL naming another driver (``mysql+mysqldb://``) is used as given.

Times are stored in UTC. PostgreSQL keeps the zone (``timestamptz``); MariaDB, MySQL and SQLite
have no zoned type, so they hold the UTC wall-clock time (``DATETIME(6)`` on MariaDB), and
reading through :func:`staging_table` gives aware UTC datetimes back on every database.

On MariaDB and MySQL the table is ``utf8mb4`` with a binary collation, whatever the server's
defaults: every name fits (syllabics included) and ids compare exactly, as on PostgreSQL. The
sink's sessions are strict, so a value too long for its column fails rather than being cut.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    exists,
    insert,
    select,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DataError, DBAPIError, IntegrityError, NoSuchModuleError
from sqlalchemy.types import TypeDecorator, TypeEngine

from connectors.contract import DeliveryResult, Notification, Outcome
from hub.errors import MissingDriverError

DEFAULT_TABLE = "tellonce_inbox"

# Bare URL scheme -> SQLAlchemy driver name tellonce installs through an extra.
DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}
# Driver module -> the tellonce extra that installs it.
DRIVER_EXTRAS = {"psycopg": "postgres", "pymysql": "mariadb"}

_MYSQL_FAMILY = ("mysql", "mariadb")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database, zoned type or not."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL_FAMILY:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))  # DATETIME alone drops µs
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("staging table times must be timezone-aware")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def staging_table(name: str = DEFAULT_TABLE) -> Table:
    return Table(
        name,
        MetaData(),
        Column("notification_id", String(36), primary_key=True),
        Column("recipient", String(63), nullable=False),
        Column("event_type", String(32), nullable=False),
        Column("subject_id", String(64), nullable=False),
        Column("body", Text, nullable=False),
        Column("received_at", UTCDateTime(), nullable=False),
        Column("processed_at", UTCDateTime(), nullable=True),
        # The mysql dialect reads mysql_*, the mariadb one (mariadb:// URLs) mariadb_*.
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mariadb_charset="utf8mb4",
        mariadb_collate="utf8mb4_bin",
    )


def database_url(url: str) -> URL:
    """The SQLAlchemy URL the sink connects with: bare schemes get the driver tellonce ships."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # The message would quote the URL, password included.
        raise ValueError(
            "the url option is not a database URL; expected e.g. "
            "postgresql://user@host/db, mysql://user@host/db or sqlite:///path"
        ) from None
    parsed = parsed.set(drivername=DEFAULT_DRIVERS.get(parsed.drivername, parsed.drivername))
    if parsed.get_backend_name() in _MYSQL_FAMILY and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def _engine(url: URL) -> Engine:
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except NoSuchModuleError:
        raise ValueError(
            f"the sqltable sink cannot use {url.drivername!r} URLs; "
            "use postgresql://, mysql://, mariadb:// or sqlite://"
        ) from None
    except ModuleNotFoundError as exc:
        driver = exc.name or "its driver"
        extra = DRIVER_EXTRAS.get(driver.partition(".")[0])
        install = f"pip install 'tellonce[{extra}]'" if extra else f"pip install {driver}"
        raise MissingDriverError(
            f"{url.drivername} URLs need the {driver} driver, which is not installed; "
            f"install it with: {install}"
        ) from exc
    if url.get_backend_name() in _MYSQL_FAMILY:
        event.listen(engine, "connect", _strict_session)
    return engine


def _strict_session(dbapi_connection: Any, _record: Any) -> None:
    # A server in a lax sql_mode truncates an over-long value with a warning; refuse instead.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION sql_mode = CONCAT_WS(',', @@sql_mode, 'STRICT_ALL_TABLES')")
    finally:
        cursor.close()


class StagingTableSink:
    name = "sqltable"

    def __init__(self, recipient: str, options: dict[str, str]) -> None:
        if "url" not in options:
            raise ValueError("the sqltable sink needs --option url=DATABASE_URL")
        self.recipient = recipient
        self.table = staging_table(options.get("table", DEFAULT_TABLE))
        self._engine = _engine(database_url(options["url"]))
        try:
            self.table.metadata.create_all(self._engine, checkfirst=True)
        except DBAPIError as exc:
            self._engine.dispose()
            # Said at start-up, before any notification: the driver's words name no client.
            detail = next(iter(str(exc.orig).strip().splitlines()), "")
            raise ValueError(
                f"cannot create the staging table {self.table.name!r} "
                f"({type(exc.orig).__name__}: {detail}); check the url option"
            ) from None

    def deliver(self, notification: Notification) -> DeliveryResult:
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(self.table).values(
                        notification_id=notification.notification_id,
                        recipient=notification.recipient,
                        event_type=notification.event_type,
                        subject_id=notification.subject_id,
                        body=notification.to_json(),
                        received_at=datetime.now(UTC),
                    )
                )
        except IntegrityError as exc:
            return self._already_there(notification.notification_id, exc)
        except DataError as exc:
            # A value the table cannot hold (too long, bad encoding): retrying cannot help.
            return DeliveryResult(
                Outcome.FAILED,
                f"a value does not fit the staging table {self.table.name!r}",
                error=_driver_error(exc),
            )
        except DBAPIError as exc:
            # Never str(exc): SQLAlchemy's message quotes the row's values.
            return DeliveryResult(Outcome.RETRY, "staging database error", error=_driver_error(exc))
        return DeliveryResult(Outcome.DELIVERED)

    def _already_there(self, notification_id: str, exc: IntegrityError) -> DeliveryResult:
        """DUPLICATE if the row is there; another constraint the back office added otherwise."""
        key = self.table.c.notification_id
        try:
            with self._engine.connect() as connection:
                found = connection.scalar(select(exists().where(key == notification_id)))
        except DBAPIError as lookup:
            return DeliveryResult(
                Outcome.RETRY, "staging database error", error=_driver_error(lookup)
            )
        if found:
            return DeliveryResult(Outcome.DUPLICATE)
        return DeliveryResult(
            Outcome.FAILED,
            f"a constraint of the staging table {self.table.name!r} refused the row",
            error=_driver_error(exc),
        )

    def close(self) -> None:
        self._engine.dispose()


def _driver_error(exc: DBAPIError) -> str:
    return type(exc.orig).__name__


__all__ = [
    "DEFAULT_DRIVERS",
    "DEFAULT_TABLE",
    "DRIVER_EXTRAS",
    "MissingDriverError",
    "StagingTableSink",
    "UTCDateTime",
    "database_url",
    "staging_table",
]

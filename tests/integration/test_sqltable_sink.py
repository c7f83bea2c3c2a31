"""The staging-table sink on real databases: the shipped sink contract on SQLite, PostgreSQL and
MariaDB, and what the back office reads from the row.

Every test gets a database nobody used before: an SQLite file, or a new database on the
PostgreSQL or MariaDB server, dropped afterwards. The MariaDB one defaults to latin1 with a
case-insensitive collation, as a legacy back office might, so the sink's own table settings
are what is tested.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text

from connectors.contract import Outcome
from connectors.sqltable import DEFAULT_TABLE, StagingTableSink, database_url, staging_table
from connectors.testing import SinkContract, crash, personal_values, sample_notification

from .conftest import fresh_postgres_database, unavailable

pytestmark = pytest.mark.integration

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty database on the PostgreSQL server, dropped after the test."""
    with fresh_postgres_database("tellonce_t") as url:
        yield url


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A new database on the MariaDB server with legacy defaults, dropped after the test."""
    try:
        import pymysql
    except ImportError:
        unavailable("PyMySQL is not installed; install it with: pip install -e '.[test]'")
    where = f"{MARIADB['host']}:{MARIADB['port']}"
    name = f"tellonce_t_{uuid.uuid4().hex[:16]}"
    try:
        admin = pymysql.connect(**MARIADB, connect_timeout=5)
    except pymysql.err.OperationalError as exc:
        unavailable(f"MariaDB is not reachable at {where}: {exc}")
    with admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET latin1 COLLATE latin1_swedish_ci")
    try:
        yield f"mysql://{MARIADB['user']}@{where}/{name}"
    finally:
        with pymysql.connect(**MARIADB) as admin, admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        "mariadb",
    ]
)
def staging_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The recipient's database on each backend the sink supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'recipient.db'}"
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = create_engine(database_url(url))
    try:
        yield engine
    finally:
        engine.dispose()


def _crash_on_insert(
    _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
) -> None:
    # After the INSERT ran, before its transaction committed.
    if statement.lstrip().upper().startswith("INSERT"):
        crash()


class StagingTableContract(SinkContract):
    """The shipped contract, with the hooks for a staging table at ``self.url``."""

    url: str

    def make_sink(self) -> StagingTableSink:
        return StagingTableSink("bc-msp", {"url": self.url})

    def delivered(self) -> list[str]:
        table = staging_table()
        with engine_for(self.url) as engine, engine.connect() as connection:
            rows = connection.execute(select(table.c.notification_id, table.c.body)).all()
        for row in rows:  # a row is whole: its body parses and names its own id
            assert json.loads(row.body)["notification_id"] == row.notification_id
        return [row.notification_id for row in rows]

    @contextmanager
    def break_far_side(self) -> Iterator[None]:
        """The back office moves the table away, then puts it back."""
        aside = f"{DEFAULT_TABLE}_aside"
        with engine_for(self.url) as engine:
            with engine.begin() as connection:
                connection.execute(text(f"ALTER TABLE {DEFAULT_TABLE} RENAME TO {aside}"))
            try:
                yield
            finally:
                with engine.begin() as connection:
                    connection.execute(text(f"ALTER TABLE {aside} RENAME TO {DEFAULT_TABLE}"))

    @contextmanager
    def crash_mid_delivery(self, sink: object) -> Iterator[None]:
        event.listen(Engine, "after_cursor_execute", _crash_on_insert)
        try:
            yield
        finally:
            event.remove(Engine, "after_cursor_execute", _crash_on_insert)


class TestStagingTableOnSQLite(StagingTableContract):
    @pytest.fixture(autouse=True)
    def far_side(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'recipient.db'}"


@pytest.mark.postgres
class TestStagingTableOnPostgreSQL(StagingTableContract):
    @pytest.fixture(autouse=True)
    def far_side(self, postgres_url: str) -> None:
        self.url = postgres_url


class TestStagingTableOnMariaDB(StagingTableContract):
    @pytest.fixture(autouse=True)
    def far_side(self, mariadb_url: str) -> None:
        self.url = mariadb_url


def test_row_holds_the_notice_and_a_utc_time(staging_db: str) -> None:
    """The row carries the notice's JSON intact and an aware UTC receipt time, to the µs."""
    notice = sample_notification()
    before = datetime.now(UTC)
    sink = StagingTableSink("bc-msp", {"url": staging_db})
    try:
        assert sink.deliver(notice).outcome is Outcome.DELIVERED
    finally:
        sink.close()

    with engine_for(staging_db) as engine, engine.connect() as connection:
        (row,) = connection.execute(select(staging_table())).all()
    assert json.loads(row.body) == json.loads(notice.to_json())
    assert (row.recipient, row.event_type, row.subject_id) == (
        "bc-msp",
        "AddressChanged",
        notice.subject_id,
    )
    assert row.received_at.tzinfo is UTC
    assert before <= row.received_at <= datetime.now(UTC)
    assert row.processed_at is None


def test_ids_differing_only_in_case_are_two_rows(staging_db: str) -> None:
    """Ids compare exactly on every database, so a different id is never taken for a duplicate."""
    sink = StagingTableSink("bc-msp", {"url": staging_db})
    try:
        outcomes = [
            sink.deliver(sample_notification(notification_id=nid)).outcome
            for nid in ("n-abc", "N-ABC")
        ]
    finally:
        sink.close()
    assert outcomes == [Outcome.DELIVERED, Outcome.DELIVERED]


@pytest.mark.parametrize(
    "server", [pytest.param("postgres", marks=pytest.mark.postgres), "mariadb"]
)
def test_value_too_long_fails_without_quoting_it(
    server: str, request: pytest.FixtureRequest
) -> None:
    """A subject id longer than its column is FAILED (retrying cannot help), naming no value."""
    url: str = request.getfixturevalue(f"{server}_url")
    notice = sample_notification(subject_id="MSP-" + "7" * 80)
    sink = StagingTableSink("bc-msp", {"url": url})
    try:
        result = sink.deliver(notice)
    finally:
        sink.close()
    assert result.outcome is Outcome.FAILED
    assert result.error in {"StringDataRightTruncation", "DataError"}
    assert not [v for v in personal_values(notice) if v in result.reason + result.error]


def test_lax_mariadb_session_still_refuses_to_truncate(mariadb_url: str) -> None:
    """On a server whose sql_mode is lax, an over-long value still fails instead of being cut."""
    lax = mariadb_url + "?init_command=SET%20SESSION%20sql_mode%3D%27%27"
    sink = StagingTableSink("bc-msp", {"url": lax})
    try:
        result = sink.deliver(sample_notification(subject_id="MSP-" + "7" * 80))
    finally:
        sink.close()
    assert result.outcome is Outcome.FAILED
    with engine_for(mariadb_url) as engine, engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(staging_table())) == 0


# What each driver calls "the table is not there".
MISSING_TABLE = {
    "sqlite": "OperationalError",
    "postgresql": "UndefinedTable",
    "mysql": "ProgrammingError",
}


def test_database_error_is_retry_with_the_driver_class(staging_db: str) -> None:
    """A database failure is RETRY naming the driver's exception class, and no values."""
    sink = StagingTableSink("bc-msp", {"url": staging_db})
    try:
        with engine_for(staging_db) as engine, engine.begin() as connection:
            connection.execute(text(f"DROP TABLE {DEFAULT_TABLE}"))
        result = sink.deliver(sample_notification())
    finally:
        sink.close()
    assert result.outcome is Outcome.RETRY
    assert result.error == MISSING_TABLE[database_url(staging_db).get_backend_name()]
    assert result.reason == "staging database error"


@pytest.mark.parametrize("scheme", ["mariadb://", "mariadb+pymysql://"])
def test_mariadb_schemes_get_the_same_table(scheme: str, mariadb_url: str) -> None:
    """mariadb:// and mariadb+pymysql:// URLs deliver, into a utf8mb4 table comparing exactly."""
    url = mariadb_url.replace("mysql://", scheme, 1)
    sink = StagingTableSink("bc-msp", {"url": url})
    try:
        assert sink.deliver(sample_notification()).outcome is Outcome.DELIVERED
    finally:
        sink.close()
    with engine_for(url) as engine, engine.connect() as connection:
        collation = connection.scalar(
            text(
                "SELECT table_collation FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_name = :name"
            ),
            {"name": DEFAULT_TABLE},
        )
    assert collation == "utf8mb4_bin"


@pytest.mark.parametrize(
    ("given", "driver", "query"),
    [
        ("postgresql://u@db/x", "postgresql+psycopg", {}),
        ("postgres://u@db/x", "postgresql+psycopg", {}),
        ("mysql://u@db/x", "mysql+pymysql", {"charset": "utf8mb4"}),
        ("mariadb://u@db/x", "mysql+pymysql", {"charset": "utf8mb4"}),
        ("mysql+pymysql://u@db/x?charset=utf8", "mysql+pymysql", {"charset": "utf8"}),
        ("postgresql+psycopg2://u@db/x", "postgresql+psycopg2", {}),
        ("sqlite:///inbox.db", "sqlite", {}),
    ],
)
def test_bare_schemes_get_the_shipped_driver(
    given: str, driver: str, query: dict[str, str]
) -> None:
    """Bare postgres/mysql/mariadb schemes get psycopg or PyMySQL; explicit drivers are kept."""
    url = database_url(given)
    assert url.drivername == driver
    assert dict(url.query) == query


def test_unparseable_url_is_a_config_error_without_the_password() -> None:
    """A URL SQLAlchemy cannot parse is a ValueError that does not echo the password."""
    with pytest.raises(ValueError, match="not a database URL") as caught:
        StagingTableSink("bc-msp", {"url": "not a url s3cret-pw"})
    assert "s3cret-pw" not in str(caught.value)


def test_unreachable_database_at_start_says_so() -> None:
    """A sink whose database cannot be reached fails at start-up with the driver's reason."""
    with pytest.raises(ValueError, match=r"cannot create the staging table .*OperationalError"):
        StagingTableSink("bc-msp", {"url": "postgresql://postgres@127.0.0.1:1/none"})

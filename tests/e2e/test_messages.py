"""A message, never a traceback: each known mistake gets one `tellonce: ...` line saying what
was wrong and what to do, with exit 2 (the request or a setting is wrong) or 1 (the work failed),
and Ctrl-C on the demo exits 130 with one line."""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest

from tests.e2e.conftest import run

pytestmark = pytest.mark.e2e

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


def one_message(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single `tellonce:` line of a failed command, after checking its exit code."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tellonce: ")
    return lines[0]


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["garbage", "not a host:xx", "host:", ":9092", "host:99999"])
def test_unparsable_bootstrap_address_is_a_settings_error(
    sqlite_env: dict[str, str], address: str
) -> None:
    """A bootstrap address no client could use exits 2 naming the variable, before any client
    spends a minute retrying it."""
    env = {**sqlite_env, "TELLONCE_BROKER__BOOTSTRAP_SERVERS": address}
    result = run("publish", "bc-service-bc", "AddressChanged", "--json", "{}", env=env)
    message = one_message(result, 2)
    assert "invalid settings: TELLONCE_BROKER__BOOTSTRAP_SERVERS:" in message
    assert "is not host:port with a port from 1 to 65535" in message


def postgres_or_skip() -> None:
    """Fail in CI, where PostgreSQL must be running; skip with the reason elsewhere."""
    try:
        psycopg.connect(f"{POSTGRES_SERVER}/postgres", connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is not reachable at {POSTGRES_SERVER}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.mark.postgres
def test_missing_postgres_database_keeps_the_drivers_cause(sqlite_env: dict[str, str]) -> None:
    """A store URL naming a database that does not exist exits 2 with PostgreSQL's own words
    and how to create it."""
    postgres_or_skip()
    env = {**sqlite_env, "TELLONCE_STORE__URL": f"{POSTGRES_SERVER}/tellonce_no_such_db"}
    message = one_message(run("db", "upgrade", env=env), 2)
    assert 'database "tellonce_no_such_db" does not exist' in message
    assert "createdb tellonce_no_such_db" in message


def test_refused_store_port_keeps_the_drivers_cause_but_not_the_password(
    sqlite_env: dict[str, str],
) -> None:
    """A store URL whose port nobody listens on exits 1 with the driver's cause, what to check,
    and the password masked."""
    url = "postgresql://postgres:Sekr3t-pw@127.0.0.1:1/x"
    message = one_message(run("db", "upgrade", env={**sqlite_env, "TELLONCE_STORE__URL": url}), 1)
    assert "port 1 failed: Connection refused" in message
    assert "check TELLONCE_STORE__URL (host, port, user)" in message
    assert "Sekr3t-pw" not in message


@pytest.mark.parametrize("scheme", ["mysql", "mariadb"])
def test_mysql_store_url_says_what_the_hub_store_supports(
    sqlite_env: dict[str, str], scheme: str
) -> None:
    """A MySQL or MariaDB store URL exits 2 saying the hub's store is SQLite or PostgreSQL, and
    names the extra MariaDB is for, not the PostgreSQL one."""
    env = {**sqlite_env, "TELLONCE_STORE__URL": f"{scheme}://root@127.0.0.1:3306/tellonce"}
    message = one_message(run("db", "upgrade", env=env), 2)
    assert "must be SQLite (sqlite:///tellonce.db) or PostgreSQL" in message
    assert "tellonce[mariadb]" in message
    assert "tellonce[postgres]" not in message

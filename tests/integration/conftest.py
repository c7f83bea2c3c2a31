"""Fixtures of the integration tier: a fresh Tansu broker per test, and a fresh store per test
on each backend (an SQLite file; a new database on the PostgreSQL server).

A missing service fails the test when CI=true and skips it with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql

from hub.adapters.broker import EmbeddedBroker
from hub.bootstrap import App
from hub.errors import ConfigError

from .harness import SIGNING_KEYS, Harness, settings_for, signing

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


def unavailable(reason: str) -> NoReturn:
    """Fail in CI, where every service must be there; skip with the reason elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def require_postgres() -> None:
    """Go on only when the PostgreSQL server answers (``unavailable`` otherwise)."""
    try:
        psycopg.connect(f"{POSTGRES_SERVER}/postgres", connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_SERVER}: {exc}")


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    try:
        embedded = EmbeddedBroker()
    except ConfigError as exc:
        unavailable(f"no Tansu broker binary: {exc}")
    with embedded:  # starts it; stops it and closes its log after the test
        yield embedded


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store nobody used before: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    with fresh_postgres_database("tellonce_it") as url:
        yield url


@contextlib.contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    try:
        admin = psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_SERVER}: {exc}")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def staging_url(store_url: str, tmp_path: Path) -> str:
    """The sqltable recipient's own database: another SQLite file, or the test's PG database."""
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'recipient.db'}"
    return store_url


@pytest.fixture
def app(store_url: str, broker: EmbeddedBroker, tmp_path: Path) -> Iterator[App]:
    """The hub's composition root on the test's store and broker, with its own audit key,
    and a directory listing the keys the test's publishers and portals sign with."""
    SIGNING_KEYS[store_url] = tmp_path / "audit-key.pem"
    application = signing(App.from_settings(settings_for(store_url, broker.bootstrap)))
    try:
        application.ensure_topics(application.kafka())
        yield application
    finally:
        application.close()
        SIGNING_KEYS.pop(store_url, None)


@pytest.fixture
def harness(app: App, broker: EmbeddedBroker) -> Harness:
    return Harness(app, app.kafka())

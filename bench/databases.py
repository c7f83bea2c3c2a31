"""What both benchmarks share: a throwaway PostgreSQL database for one run.

The scripts run as ``python bench/<script>.py``, which puts this folder on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

CONNECT_TIMEOUT_S = 5


@contextlib.contextmanager
def fresh_postgres(server: str, prefix: str = "tellonce_bench") -> Iterator[str]:
    """The URL of a new database on ``server``, dropped afterwards whatever happens."""
    url = make_url(server)
    maintenance = url.set(drivername="postgresql", database=url.database or "postgres")
    dsn = maintenance.render_as_string(hide_password=False)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

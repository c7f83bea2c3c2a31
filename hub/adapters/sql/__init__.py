"""SQLAlchemy store: SQLite for the embedded default, PostgreSQL in production.

``store`` opens the database and translates its errors, ``transaction`` is the write side,
``queries`` the read side, ``mappers`` the row layout, ``tables`` the schema and ``migrate`` its
Alembic migrations. May import: ``hub.ports``, ``hub.model``, ``hub.wire``, ``hub.errors``,
``consent.model``, SQLAlchemy and Alembic.
"""

from hub.adapters.sql.store import SqlStore, normalise_url

__all__ = ["SqlStore", "normalise_url"]

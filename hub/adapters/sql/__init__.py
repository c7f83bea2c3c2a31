"""SQLAlchemy store: SQLite for the embedded default, PostgreSQL in production.

``store`` opens the database and translates its errors, ``transaction`` is the write side
(with its roles ``identity`` and ``outbox`` on ``role``), ``queries`` the read side, ``mappers``
the row layout, ``sealing`` what is sealed and bound to what, ``tables`` the schema and
``migrate`` its Alembic migrations. Personal values are sealed with the vault the store is
opened with (``hub.privacy.vault``). May import: ``hub.ports``, ``hub.model``, ``hub.wire``,
``hub.errors``, ``hub.privacy``, ``consent.model``, SQLAlchemy and Alembic.
"""

from hub.adapters.sql.store import SqlStore, normalise_url

__all__ = ["SqlStore", "normalise_url"]

"""SQLAlchemy store: SQLite for the embedded default, PostgreSQL in production."""

from hub.adapters.sql.store import SqlStore, normalise_url

__all__ = ["SqlStore", "normalise_url"]

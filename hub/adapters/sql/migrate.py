"""Schema migrations with Alembic, driven from code so no alembic.ini is needed."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

SCRIPT_LOCATION = "hub.adapters.sql:migrations"


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema; a no-op when it is already there."""
    with engine.begin() as connection:
        if current_revision(connection) == head_revision(connection):
            return
        command.upgrade(_config(connection), "head")


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision(connection: Connection) -> str | None:
    return ScriptDirectory.from_config(_config(connection)).get_current_head()


def new_revision(engine: Engine, message: str) -> None:
    """Developer helper: autogenerate a revision from the tables (used to write 0001)."""
    with engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True)

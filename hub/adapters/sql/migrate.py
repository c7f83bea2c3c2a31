"""Schema migrations with Alembic, driven from code so no alembic.ini is needed."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from hub.privacy.vault import Vault

SCRIPT_LOCATION = "hub.adapters.sql:migrations"


def _config(connection: Connection, vault: Vault | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    # Migrations that seal personal data already stored (0004) seal it with the hub's vault.
    config.attributes["vault"] = vault
    return config


def upgrade(engine: Engine, vault: Vault | None, to: str = "head") -> None:
    """Bring the database to revision ``to`` (the newest schema), in one transaction; a
    no-op when it is there. ``vault`` seals what the upgrade must seal; without one, an
    upgrade that finds personal data to seal stops with a ConfigError and changes nothing."""
    with engine.begin() as connection:
        target = head_revision(connection) if to == "head" else to
        if current_revision(connection) == target:
            return
        command.upgrade(_config(connection, vault), to)


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision(connection: Connection) -> str | None:
    return ScriptDirectory.from_config(_config(connection)).get_current_head()


def new_revision(engine: Engine, message: str) -> None:
    """Developer helper: autogenerate a revision from the tables (used to write 0001)."""
    with engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True)

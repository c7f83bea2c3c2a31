"""sealed personal data

Personal values are sealed at rest under a data key per person (DESIGN.md 8):

- ``persons`` gains the person's wrapped data key (``kek_id``, ``wrapped_key``; both NULL once
  the person is erased) and ``erased_at``;
- ``identity_links`` keeps each local id as its blind index (``local_id_index``, unique per
  program) and sealed (``local_id_sealed``), and loses the plaintext ``local_id``;
- ``outbox`` gains ``person_id``: the key, value and ``ce_subject`` header of a message about a
  person are sealed under that person's key.

A database with data is converted here, with the vault the hub hands over
(``config.attributes["vault"]``, ``hub.adapters.sql.migrate``): every person gets a data key,
every local id is indexed and sealed, every notice is sealed (its person found through
decisions.notification_id -> events.person_id), then the plaintext column goes. All in the
upgrade's one transaction, a page of rows at a time. There is no way back without the keys:
to downgrade, restore the backup taken before upgrading.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 01:00:00.000000
"""

from __future__ import annotations

import base64
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from hub.adapters.sql.sealing import sealed_local_id, sealed_message
from hub.errors import ConfigError
from hub.model import OutboxMessage, WrappedKey
from hub.privacy.vault import Vault

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PAGE = 1000  # rows read, sealed and written back at a time

# The tables as this revision finds them (never ``tables.py``, which follows the newest one).
persons = sa.table(
    "persons",
    sa.column("person_id", sa.String),
    sa.column("kek_id", sa.String),
    sa.column("wrapped_key", sa.LargeBinary),
)
links = sa.table(
    "identity_links",
    sa.column("id", sa.Integer),
    sa.column("person_id", sa.String),
    sa.column("program", sa.String),
    sa.column("local_id", sa.String),
    sa.column("local_id_index", sa.String),
    sa.column("local_id_sealed", sa.LargeBinary),
)
outbox = sa.table(
    "outbox",
    sa.column("seq", sa.Integer),
    sa.column("message_id", sa.String),
    sa.column("topic", sa.String),
    sa.column("key", sa.LargeBinary),
    sa.column("value", sa.LargeBinary),
    sa.column("headers", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("person_id", sa.String),
)
decisions = sa.table(
    "decisions",
    sa.column("source", sa.String),
    sa.column("event_id", sa.String),
    sa.column("notification_id", sa.String),
)
events = sa.table(
    "events",
    sa.column("source", sa.String),
    sa.column("event_id", sa.String),
    sa.column("person_id", sa.String),
)


def upgrade() -> None:
    bind = op.get_bind()
    vault: Vault | None = context.config.attributes.get("vault")
    has_persons = bind.execute(sa.select(persons.c.person_id).limit(1)).first() is not None
    if has_persons and vault is None:
        raise ConfigError(
            "upgrading this database to schema 0004 seals the personal data it holds, which "
            "needs the hub's keys: run 'tellonce db upgrade' (or start the hub) with the "
            "TELLONCE_PRIVACY__ settings of this hub"
        )
    with op.batch_alter_table("persons") as batch:
        batch.add_column(sa.Column("kek_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(op.f("ix_persons_kek_id"), ["kek_id"], unique=False)
    with op.batch_alter_table("identity_links") as batch:
        batch.add_column(sa.Column("local_id_index", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("local_id_sealed", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("person_id", sa.String(length=36), nullable=True))
        batch.create_index(op.f("ix_outbox_person_id"), ["person_id"], unique=False)
    if vault is not None and has_persons:
        _make_data_keys(bind, vault)
        _seal_links(bind, vault)
        _seal_notices(bind, vault)
    with op.batch_alter_table("identity_links") as batch:
        batch.drop_constraint("uq_identity_links_program_local_id", type_="unique")
        batch.drop_column("local_id")
        batch.alter_column("local_id_index", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint(
            op.f("uq_identity_links_program_local_id_index"), ["program", "local_id_index"]
        )


def downgrade() -> None:
    raise ConfigError(
        "schema 0004 sealed personal data under keys a downgrade would have to open again; "
        "restore the database backup taken before upgrading instead"
    )


def _pages(bind: Any, query: Any, column: Any, start: Any) -> Any:
    """The rows of ``query`` in pages of ``PAGE``, by increasing ``column`` (a unique key)."""
    after = start
    while True:
        rows = bind.execute(query.where(column > after).order_by(column).limit(PAGE)).all()
        if not rows:
            return
        yield rows
        after = getattr(rows[-1], column.name)


def _make_data_keys(bind: Any, vault: Vault) -> None:
    written = sa.update(persons).where(persons.c.person_id == sa.bindparam("person"))
    query = sa.select(persons.c.person_id)
    for rows in _pages(bind, query, persons.c.person_id, ""):
        keys = [(r.person_id, vault.new_key(r.person_id)) for r in rows]
        bind.execute(
            written.values(kek_id=sa.bindparam("kek"), wrapped_key=sa.bindparam("wrapped")),
            [{"person": p, "kek": k.kek_id, "wrapped": k.wrapped} for p, k in keys],
        )


def _key_of(r: Any) -> WrappedKey:
    return WrappedKey(r.kek_id, r.wrapped_key)


def _seal_links(bind: Any, vault: Vault) -> None:
    written = sa.update(links).where(links.c.id == sa.bindparam("link"))
    query = sa.select(
        links.c.id,
        links.c.person_id,
        links.c.program,
        links.c.local_id,
        persons.c.kek_id,
        persons.c.wrapped_key,
    ).join(persons, persons.c.person_id == links.c.person_id)
    for rows in _pages(bind, query, links.c.id, 0):
        bind.execute(
            written.values(
                local_id_index=sa.bindparam("index"), local_id_sealed=sa.bindparam("sealed")
            ),
            [
                {
                    "link": r.id,
                    "index": vault.index(r.program, r.local_id),
                    "sealed": sealed_local_id(
                        vault, _key_of(r), r.person_id, r.program, r.local_id
                    ),
                }
                for r in rows
            ],
        )


def _seal_notices(bind: Any, vault: Vault) -> None:
    """Seal every notice (published or not): a message some decision minted for a person."""
    written = sa.update(outbox).where(outbox.c.seq == sa.bindparam("row"))
    query = (
        sa.select(
            outbox.c.seq,
            outbox.c.message_id,
            outbox.c.topic,
            outbox.c.key,
            outbox.c.value,
            outbox.c.headers,
            outbox.c.created_at,
            events.c.person_id,
            persons.c.kek_id,
            persons.c.wrapped_key,
        )
        .join(decisions, decisions.c.notification_id == outbox.c.message_id)
        .join(
            events,
            sa.and_(
                events.c.source == decisions.c.source, events.c.event_id == decisions.c.event_id
            ),
        )
        .join(persons, persons.c.person_id == events.c.person_id)
    )
    for rows in _pages(bind, query, outbox.c.seq, 0):
        sealed = [
            sealed_message(
                vault,
                _key_of(r),
                OutboxMessage(
                    r.message_id,
                    r.topic,
                    r.key,
                    r.value,
                    [(name, base64.b64decode(data)) for name, data in r.headers],
                    r.created_at,
                    r.seq,
                    r.person_id,
                ),
            )
            for r in rows
        ]
        bind.execute(
            written.values(
                person_id=sa.bindparam("person"),
                key=sa.bindparam("sealed_key"),
                value=sa.bindparam("sealed_value"),
                headers=sa.bindparam("sealed_headers", type_=sa.JSON),
            ),
            [
                {
                    "row": m.seq,
                    "person": m.person_id,
                    "sealed_key": m.key,
                    "sealed_value": m.value,
                    "sealed_headers": [[n, base64.b64encode(v).decode()] for n, v in m.headers],
                }
                for m in sealed
            ],
        )

"""store identity

A random id for the database, made once with the schema, so a hub can tell its store from any
other: the hub records it as its consumer group's store on the tellonce.hub.v1 topic and
refuses to join a group that works with another store (hub.processing.fence).
A database upgraded from
0002 gets its id here, once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 16:30:00.000000
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "store_identity",
        sa.Column("store_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_store_identity")),
    )
    op.bulk_insert(table, [{"store_id": str(uuid.uuid4()), "created_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("store_identity")

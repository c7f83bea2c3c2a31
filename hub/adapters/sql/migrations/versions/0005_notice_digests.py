"""notice digests

``decisions`` gains ``notice_digest``: the keyed hash of the digest of the notice the hub sent
for a disclosure, which the connector's receipt must name (README, "Signed receipts"). Notices
made before this revision have none (NULL); their receipts are checked for everything else.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 08:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("notice_digest", sa.String(length=66), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("notice_digest")

"""location.updated_at: when a place was written or last changed (Plan-Net lastUpdated)

Rows older than the column get the time of this migration: the first time the system can
vouch for them as they are.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 20:55:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("location", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    location = sa.table("location", sa.column("updated_at", sa.DateTime(timezone=True)))
    op.execute(location.update().values(updated_at=datetime.now(UTC)))


def downgrade() -> None:
    with op.batch_alter_table("location", schema=None) as batch_op:
        batch_op.drop_column("updated_at")

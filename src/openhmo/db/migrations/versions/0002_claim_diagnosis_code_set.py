"""claim: the diagnosis code set (ICD-10-CM, or ICD-9-CM for services before 2015-10-01)

An 837 says which code set its diagnoses are in (HI qualifier ABK/ABF or BK/BF); a claim
for services before ICD-10's start may carry ICD-9-CM codes and is stored as such.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("claim", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "diagnosis_code_set",
                sa.String(length=9),
                server_default="ICD-10-CM",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("claim", schema=None) as batch_op:
        batch_op.drop_column("diagnosis_code_set")

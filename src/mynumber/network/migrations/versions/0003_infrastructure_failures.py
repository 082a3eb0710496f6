"""infrastructure-failure counter

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-10 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "infrastructure_failures",
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("operation", "reason", "hour",
                                name=op.f("pk_infrastructure_failures")),
    )


def downgrade() -> None:
    op.drop_table("infrastructure_failures")

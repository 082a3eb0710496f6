"""accounts: payout runs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 16:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payout_runs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("benefit", sa.String(length=120), nullable=False),
        sa.Column("transfer_date", sa.Date(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("recipients", sa.BigInteger(), nullable=False),
        sa.Column("paid", sa.BigInteger(), nullable=False),
        sa.Column("total_yen", sa.BigInteger(), nullable=False),
        sa.Column("no_account", sa.BigInteger(), nullable=False),
        sa.Column("not_enrolled", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("noticed", sa.BigInteger(), nullable=False),
        sa.Column("file_groups", sa.Integer(), nullable=False),
        sa.Column("file_bytes", sa.BigInteger(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_runs")),
    )
    with op.batch_alter_table("payout_runs", schema=None) as batch_op:
        batch_op.create_index("ix_payout_runs_agency", ["agency_id", "started_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("payout_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_payout_runs_agency")
    op.drop_table("payout_runs")

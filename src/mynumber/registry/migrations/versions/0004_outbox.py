"""the registry's transactional outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 05:45:00.000000

Every life event is published to ``outbox_events`` in the transaction that records it and
delivered to the subscribers (intermediate servers, 住基ネット, JPKI, the card, the portal)
after commit (``mynumber.kernel.events``, docs/events.md). Life events recorded before this
revision are not published.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False,
                  autoincrement=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("subject", sa.String(length=60), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    op.create_index("uq_outbox_events_seq", "outbox_events", ["seq"], unique=True)
    op.create_index("ix_outbox_events_unsequenced", "outbox_events", ["id"],
                    postgresql_where=sa.text("seq IS NULL"), sqlite_where=sa.text("seq IS NULL"))
    op.create_table(
        "outbox_checkpoints",
        sa.Column("subscriber", sa.String(length=60), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=120), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscriber", name=op.f("pk_outbox_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("outbox_checkpoints")
    op.drop_index("ix_outbox_events_unsequenced", table_name="outbox_events")
    op.drop_index("uq_outbox_events_seq", table_name="outbox_events")
    op.drop_table("outbox_events")

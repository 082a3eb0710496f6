"""notices sent for an event carry its key

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 06:05:00.000000

A notice the portal sends because of a registry event (``registry:<seq>``) is stored once,
however often the event is delivered (delivery is at least once).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_event", sa.String(length=80), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_notices_source_event"),
                                          ["source_event"])


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_notices_source_event"), type_="unique")
        batch_op.drop_column("source_event")

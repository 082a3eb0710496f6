"""a card whose holder died ends: card state ``ended``

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-20 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "state IN ('active', 'suspended', 'revoked', 'expired')"
NEW = "state IN ('active', 'suspended', 'revoked', 'expired', 'ended')"


def upgrade() -> None:
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_cards_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_cards_state"), NEW)


def downgrade() -> None:
    op.execute("UPDATE cards SET state = 'revoked' WHERE state = 'ended'")
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_cards_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_cards_state"), OLD)

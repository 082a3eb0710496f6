"""a card challenge carries its purpose

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 16:50:00.000000

``login_challenges.purpose``: ``login`` (a portal session), ``accounts`` (the resident's own
公金受取口座 and 預貯金口座付番 procedures) or ``bank:<client id>`` (a bank's counter). The portal's
login accepts only ``login`` challenges and ``verify_card`` only the purpose its caller names,
so a challenge a bank obtained and the customer signed cannot open a portal session.
Existing rows (all issued by the login) become ``login``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_challenges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=80), nullable=False,
                                      server_default="login"))


def downgrade() -> None:
    with op.batch_alter_table("login_challenges", schema=None) as batch_op:
        batch_op.drop_column("purpose")

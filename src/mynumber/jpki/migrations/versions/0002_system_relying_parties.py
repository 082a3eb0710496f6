"""relying parties registered by the platform itself (the portal) are marked ``system``

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 23:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The portal registers itself in-process, as the system principal (staff:0), under this name;
# parties registered over the admin API carry a staff actor other than staff:0. Both tests
# together pick out the portal's own registration in an existing database.
PORTAL_NAME = "マイナポータル"
SYSTEM_ACTOR = "staff:0"


def upgrade() -> None:
    with op.batch_alter_table("relying_parties", schema=None) as batch_op:
        batch_op.add_column(sa.Column("system", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    op.execute(
        sa.text(
            "UPDATE relying_parties SET \"system\" = :yes WHERE name = :name AND EXISTS ("
            " SELECT 1 FROM audit_events WHERE audit_events.tag = 'jpki:relying_party:register'"
            " AND audit_events.actor = :actor"
            " AND audit_events.subject = 'relying_party:' || CAST(relying_parties.id AS VARCHAR))"
        ).bindparams(sa.bindparam("yes", True, type_=sa.Boolean()), name=PORTAL_NAME,
                     actor=SYSTEM_ACTOR)
    )


def downgrade() -> None:
    with op.batch_alter_table("relying_parties", schema=None) as batch_op:
        batch_op.drop_column("system")

"""insurance: one open qualification per person counts linked records only

A blocked record (the re-check found it no longer agrees with 住基ネット on the four items)
keeps the resident id it was linked to, for its review, but is not the person's record: it
must not stop the person's own new qualification from being linked. The partial unique index
``uq_qualifications_open_resident`` gains ``link_state = 'linked'``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_qualifications_open_resident"
OLD = "lost_on IS NULL AND resident_id IS NOT NULL"
NEW = "lost_on IS NULL AND resident_id IS NOT NULL AND link_state = 'linked'"


def _replace(where: str) -> None:
    op.drop_index(INDEX, table_name="qualifications")
    op.create_index(INDEX, "qualifications", ["resident_id"], unique=True,
                    sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    _replace(NEW)


def downgrade() -> None:
    # Fails (a unique violation) while a person has a blocked open record and a linked one.
    _replace(OLD)

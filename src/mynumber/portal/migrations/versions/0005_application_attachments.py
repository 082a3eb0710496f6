"""applications carry their attached documents

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 13:00:00.000000

The 現況届 without the number takes real files (PDF, JPEG, PNG; checked by content and size)
instead of ticked names: they are stored here with the application, and the municipality's
staff list the applications they received by ``applications.agency_id``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "application_attachments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=120), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_attachments")),
    )
    with op.batch_alter_table("application_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_application_attachments_application_id"),
                              ["application_id"], unique=False)
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_applications_agency_id"), ["agency_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_applications_agency_id"))
    with op.batch_alter_table("application_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_application_attachments_application_id"))
    op.drop_table("application_attachments")

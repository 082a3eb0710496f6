"""each agency's copies encrypted under its own key

Revision ID: 0002
Revises: 0001
Create Date: 2027-02-01 10:00:00.000000

``copy_keys`` holds the agencies' data keys, each wrapped (HPKE) to its agency's public
encryption key; ``copies`` gains ``sealed`` (the encrypted payload) and ``key_id``, and its
plaintext ``payload`` becomes nullable. Existing rows keep their plaintext until
``mynumber agencies encrypt-copies`` encrypts them (the migration holds no key); until then the
intermediate server does not provide them. The downgrade drops the encrypted rows' content
(their payload is NULL), so decrypt nothing back: downgrading loses encrypted copies.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "copy_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copy_keys")),
    )
    with op.batch_alter_table("copy_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_copy_keys_agency_id"), ["agency_id"], unique=False)
    with op.batch_alter_table("copies", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "key_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch_op.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
        batch_op.alter_column("payload", existing_type=sa.JSON(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM copies WHERE payload IS NULL")
    with op.batch_alter_table("copies", schema=None) as batch_op:
        batch_op.alter_column("payload", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("sealed")
        batch_op.drop_column("key_id")
    with op.batch_alter_table("copy_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_copy_keys_agency_id"))
    op.drop_table("copy_keys")

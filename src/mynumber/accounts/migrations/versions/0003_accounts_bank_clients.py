"""accounts: bank clients (the bank route)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 16:05:00
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
        "bank_clients",
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("bank_code", sa.String(length=4), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("signing_public_key", sa.String(length=64), nullable=False),
        sa.Column("encryption_public_key", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_bank_clients")),
    )
    with op.batch_alter_table("bank_clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bank_clients_bank_code"), ["bank_code"],
                              unique=False)

    # Signed requests' nonces (bank clients and the agencies' routes): accepted
    # once per issuer, the primary key decides, across processes (accounts/nonces.py).
    op.create_table(
        "request_nonces",
        sa.Column("issuer", sa.String(length=80), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "nonce", name=op.f("pk_request_nonces")),
    )
    with op.batch_alter_table("request_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_request_nonces_seen_at", ["seen_at"], unique=False)

    op.create_table(
        "bank_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_bank_sessions")),
    )
    with op.batch_alter_table("bank_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bank_sessions_client_id"), ["client_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bank_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bank_sessions_client_id"))
    op.drop_table("bank_sessions")
    with op.batch_alter_table("request_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_request_nonces_seen_at")
    op.drop_table("request_nonces")
    with op.batch_alter_table("bank_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bank_clients_bank_code"))
    op.drop_table("bank_clients")

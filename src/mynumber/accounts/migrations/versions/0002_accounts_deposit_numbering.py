"""accounts: deposit-account numbering (預貯金口座付番) and 預金保険機構 look-ups

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 16:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "deposit_numbering_requests",
        sa.Column("id", _ID, nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("bank_code", sa.String(length=4), nullable=False),
        sa.Column("route", sa.String(length=12), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("authentication_id", sa.String(length=64), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("sealed_for", sa.String(length=40), nullable=True),
        sa.Column("sealed_number", sa.LargeBinary(), nullable=True),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deposit_numbering_requests")),
        sa.UniqueConstraint(
            "resident_id", "bank_code",
            name=op.f("uq_deposit_numbering_requests_resident_id_bank_code"),
        ),
    )
    with op.batch_alter_table("deposit_numbering_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deposit_numbering_requests_bank_state", ["bank_code", "state"], unique=False
        )

    op.create_table(
        "disaster_declarations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("declared_by", sa.String(length=80), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disaster_declarations")),
    )
    op.create_table(
        "disaster_municipalities",
        sa.Column("declaration_id", _ID, autoincrement=False, nullable=False),
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"], ["disaster_declarations.id"],
            name=op.f("fk_disaster_municipalities_declaration_id_disaster_declarations"),
        ),
        sa.PrimaryKeyConstraint(
            "declaration_id", "municipality_code", name=op.f("pk_disaster_municipalities")
        ),
    )
    with op.batch_alter_table("disaster_municipalities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_disaster_municipalities_code", ["municipality_code"], unique=False
        )

    op.create_table(
        "dic_lookups",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("subject_resident_id", sa.BigInteger(), nullable=False),
        sa.Column("requester_resident_id", sa.BigInteger(), nullable=False),
        sa.Column("bank_codes", sa.JSON(), nullable=False),
        sa.Column("documents", sa.JSON(), nullable=False),
        sa.Column("fee_yen", sa.Integer(), nullable=False),
        sa.Column("declaration_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dic_lookups")),
    )
    with op.batch_alter_table("dic_lookups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dic_lookups_requester", ["requester_resident_id", "id"], unique=False
        )
        batch_op.create_index("ix_dic_lookups_subject", ["subject_resident_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dic_lookups", schema=None) as batch_op:
        batch_op.drop_index("ix_dic_lookups_subject")
        batch_op.drop_index("ix_dic_lookups_requester")
    op.drop_table("dic_lookups")
    with op.batch_alter_table("disaster_municipalities", schema=None) as batch_op:
        batch_op.drop_index("ix_disaster_municipalities_code")
    op.drop_table("disaster_municipalities")
    op.drop_table("disaster_declarations")
    with op.batch_alter_table("deposit_numbering_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_deposit_numbering_requests_bank_state")
    op.drop_table("deposit_numbering_requests")

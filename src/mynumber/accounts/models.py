"""公金受取口座's tables (its own database). Only ``mynumber.accounts`` (and the assemblers)
import this module.

- ``registrations``: the current registration of each person: one per person, enforced by the
  primary key (the registry's resident id). The account, the route that made it, the date it
  was registered (``known_on``: bank codes are read on that date when banks merge), the card
  authentication that made it (portal and bank routes) and the holder-name state.
- ``registration_history``: every registration, change, migration, flag and deletion, with the
  account as it stood, so nothing is ever silently lost.
- ``used_authentications``: every card authentication that made a change (a unique key: one
  authentication makes one change, so a shared terminal's session cannot serve the next
  person, and two parallel requests cannot both use it).
- ``pension_proposals``: the pension special case (年金受給者の特例): 日本年金機構 proposes the
  pension account; without a 不同意 by the deadline it is registered, once.
- ``audit_events`` and the context's outbox (``outbox_events``, ``outbox_checkpoints``): the
  audit trail, and the changes other contexts hear of (registered, changed, deleted, migrated).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mynumber.audit import audit_model
from mynumber.db import UTCDateTime, context_metadata
from mynumber.kernel.events import outbox_tables

CONTEXT = "accounts"
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = context_metadata(CONTEXT)


AuditEvent = audit_model(Base)


class Registration(Base):
    __tablename__ = "registrations"
    __table_args__ = (
        # The nightly audit: one account registered to more than one person.
        Index("ix_registrations_account", "bank_code", "branch_code", "account_number"),
        Index("ix_registrations_name_check", "name_check"),
    )

    # One registration per person: the primary key is the person.
    resident_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    bank_code: Mapped[str] = mapped_column(String(4))
    branch_code: Mapped[str] = mapped_column(String(3))
    deposit_type: Mapped[str] = mapped_column(String(8))
    account_number: Mapped[str] = mapped_column(String(7))
    holder_name: Mapped[str] = mapped_column(String(60))  # 全銀 kana
    route: Mapped[str] = mapped_column(String(12))
    #: The date the bank codes were valid for (registration or last migration).
    known_on: Mapped[dt.date] = mapped_column(Date)
    #: Who made it: ``resident:<id>`` (portal), ``bank:<code>``, ``agency:<id>``.
    actor: Mapped[str] = mapped_column(String(80))
    #: The card authentication that made it (portal and bank routes; None for agency routes).
    authentication_id: Mapped[str | None] = mapped_column(String(64))
    certificate_serial: Mapped[str | None] = mapped_column(String(64))
    authenticated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    name_check: Mapped[str] = mapped_column(String(8))  # ok / recheck
    name_check_reason: Mapped[str | None] = mapped_column(String(32))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class RegistrationHistory(Base):
    """One row per action, with the account as the action left it (for a deletion: the
    account that was deleted)."""

    __tablename__ = "registration_history"
    __table_args__ = (Index("ix_registration_history_resident", "resident_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resident_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(80))
    route: Mapped[str] = mapped_column(String(12))
    bank_code: Mapped[str] = mapped_column(String(4))
    branch_code: Mapped[str] = mapped_column(String(3))
    deposit_type: Mapped[str] = mapped_column(String(8))
    account_number: Mapped[str] = mapped_column(String(7))
    holder_name: Mapped[str] = mapped_column(String(60))
    known_on: Mapped[dt.date] = mapped_column(Date)
    authentication_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(64))


class UsedAuthentication(Base):
    __tablename__ = "used_authentications"

    # The unique key that makes "one authentication, one change" hold under concurrency.
    authentication_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[int] = mapped_column(BigInteger, index=True)
    certificate_serial: Mapped[str] = mapped_column(String(64))
    authenticated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(16))


class PensionProposal(Base):
    __tablename__ = "pension_proposals"
    __table_args__ = (
        UniqueConstraint("resident_id", "proposed_on"),
        Index("ix_pension_proposals_due", "state", "deadline"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resident_id: Mapped[int] = mapped_column(BigInteger, index=True)
    bank_code: Mapped[str] = mapped_column(String(4))
    branch_code: Mapped[str] = mapped_column(String(3))
    deposit_type: Mapped[str] = mapped_column(String(8))
    account_number: Mapped[str] = mapped_column(String(7))
    holder_name: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str] = mapped_column(String(80))
    proposed_on: Mapped[dt.date] = mapped_column(Date)
    deadline: Mapped[dt.date] = mapped_column(Date)
    #: pending -> objected | registered | skipped (each exactly once: see finalize_pensions).
    state: Mapped[str] = mapped_column(String(12))
    objected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The pension's account is under the recipient's 旧氏 (the agency says so: the registry
    #: offers no former names).
    former_name: Mapped[bool] = mapped_column(Boolean)
    first_transfer_bounced: Mapped[bool] = mapped_column(Boolean)
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    finalized_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# The context's transactional outbox (mynumber.kernel.events): every registration, change,
# deletion and merger move is published in its own transaction (docs/events.md).
outbox_events, outbox_checkpoints = outbox_tables(Base.metadata)

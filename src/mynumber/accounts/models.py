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

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
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


# --- bank clients (the bank route: accounts/bank_clients.py) ----------------------------------


class BankClient(Base):
    """A bank's counter or app, authenticated as a client of the accounts service: its
    Ed25519 key signs its API requests, its X25519 key receives sealed 個人番号 (預貯金口座付番),
    its secret (argon2id hash) signs its counter staff in on /bank."""

    __tablename__ = "bank_clients"

    client_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    bank_code: Mapped[str] = mapped_column(String(4), index=True)
    name: Mapped[str] = mapped_column(String(100))
    signing_public_key: Mapped[str] = mapped_column(String(64))  # Ed25519, 32 bytes hex
    encryption_public_key: Mapped[str] = mapped_column(String(64))  # X25519, 32 bytes hex
    secret_hash: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12))  # active / suspended
    # Refused counter sign-ins in a row (``failed_logins + 1`` in SQL) and the throttle.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class RequestNonce(Base):
    """A signed request's nonce, once per issuer (``bank:<client id>``, ``agency:<agency
    id>``): the primary key refuses a replay, whatever process or thread receives it
    (accounts/nonces.py: the bank route's and the agency routes' one store)."""

    __tablename__ = "request_nonces"
    __table_args__ = (Index("ix_request_nonces_seen_at", "seen_at"),)

    issuer: Mapped[str] = mapped_column(String(80), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class BankSession(Base):
    """A bank counter's sign-in (/bank): only the token's hash is kept."""

    __tablename__ = "bank_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(40), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)



# --- 預貯金口座付番 and 預金保険機構 look-ups (deposit.py) ---------------------------------------


class DepositNumberingRequest(Base):
    """A person's consent that their accounts at one bank be linked to their number, and the
    delivery of the number to that bank: sealed for the bank's key (HPKE), never in clear;
    the sealed bytes are dropped once the bank acknowledges them."""

    __tablename__ = "deposit_numbering_requests"
    __table_args__ = (
        # Once per person and bank: two parallel requests cannot both insert.
        UniqueConstraint("resident_id", "bank_code"),
        Index("ix_deposit_numbering_requests_bank_state", "bank_code", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resident_id: Mapped[int] = mapped_column(BigInteger)
    bank_code: Mapped[str] = mapped_column(String(4))
    route: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(String(80))
    authentication_id: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(12))  # pending -> sealed -> delivered
    # The bank client whose X25519 key the number is sealed for: only it collects and
    # acknowledges the delivery (its suspension turns the row back to pending).
    sealed_for: Mapped[str | None] = mapped_column(String(40))
    sealed_number: Mapped[bytes | None] = mapped_column(LargeBinary)
    sealed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DisasterDeclaration(Base):
    """災害救助法の適用: residents of its municipalities may ask 預金保険機構 free of charge
    within its period."""

    __tablename__ = "disaster_declarations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    declared_by: Mapped[str] = mapped_column(String(80))
    declared_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class DisasterMunicipality(Base):
    __tablename__ = "disaster_municipalities"
    __table_args__ = (Index("ix_disaster_municipalities_code", "municipality_code"),)

    declaration_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("disaster_declarations.id"), primary_key=True, autoincrement=False)
    municipality_code: Mapped[str] = mapped_column(String(6), primary_key=True)


class DicLookup(Base):
    """Every 預金保険機構 look-up, answered or refused: visible to the person it concerns and
    to the heir who made it."""

    __tablename__ = "dic_lookups"
    __table_args__ = (
        Index("ix_dic_lookups_subject", "subject_resident_id", "id"),
        Index("ix_dic_lookups_requester", "requester_resident_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # inheritance / disaster
    outcome: Mapped[str] = mapped_column(String(12))  # answered / refused
    subject_resident_id: Mapped[int] = mapped_column(BigInteger)
    requester_resident_id: Mapped[int] = mapped_column(BigInteger)
    bank_codes: Mapped[list[str]] = mapped_column(JSON)
    #: The documents' kinds and the 機構's references (inheritance look-ups).
    documents: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    fee_yen: Mapped[int] = mapped_column(Integer)
    declaration_id: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(80))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# The context's transactional outbox (mynumber.kernel.events): every registration, change,
# deletion and merger move is published in its own transaction (docs/events.md).
outbox_events, outbox_checkpoints = outbox_tables(Base.metadata)


class PayoutRun(Base):
    """A payout run (accounts/payout.py): who paid which benefit under which task, how many
    recipients were paid and for how much, who was not (no registered account, not enrolled
    with the paying agency, refused), the 総合振込 file's SHA-256 and size. No recipient,
    account or amount per person is kept here."""

    __tablename__ = "payout_runs"
    __table_args__ = (Index("ix_payout_runs_agency", "agency_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str] = mapped_column(String(64))
    benefit: Mapped[str] = mapped_column(String(120))
    transfer_date: Mapped[dt.date] = mapped_column(Date)
    actor: Mapped[str] = mapped_column(String(80))
    #: running -> completed | failed
    state: Mapped[str] = mapped_column(String(12))
    recipients: Mapped[int] = mapped_column(BigInteger, default=0)
    paid: Mapped[int] = mapped_column(BigInteger, default=0)
    total_yen: Mapped[int] = mapped_column(BigInteger, default=0)
    no_account: Mapped[int] = mapped_column(BigInteger, default=0)
    not_enrolled: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[int] = mapped_column(BigInteger, default=0)
    noticed: Mapped[int] = mapped_column(BigInteger, default=0)
    file_groups: Mapped[int] = mapped_column(Integer, default=0)
    file_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

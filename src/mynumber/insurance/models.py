"""オンライン資格確認's tables (its own database). Only ``mynumber.insurance`` (and the
assemblers) import this module.

- ``insurers``: 保険者 with their 保険者番号 and network agency id.
- ``qualifications``: each insured person's 資格 at one insurer (記号・番号・枝番 unique per
  insurer), the four basic items as the insurer's record holds them, and the link to the
  resident (住民票コード and the registry's resident id) with its state. **One open
  qualification per person** is a partial unique index (``resident_id`` where ``lost_on`` is
  null and ``link_state`` is ``linked``): two parallel links cannot give one person two current
  insurers, and a blocked record (still naming the person it was linked to, for its review)
  never stands in the way of the person's own.
- ``reviews``: the review queue (near-misses, re-check mismatches), one open item per
  qualification (a partial unique index).
- ``activations``: 初回登録: the holder's pairwise id (JPKI, for this relying party; a
  certificate serial is never the key) tied to the resident, once per resident.
- ``documents``: 資格確認書 and 資格情報のお知らせ; one current document per qualification (a
  partial unique index on ``qualification_id`` where ``ended_at`` is null: never both at once).
- ``terminals``: medical institutions' terminals, their registered certificates and the staff
  who may use them from the reception pages.
- ``settings``: the context's own settings (its JPKI relying-party id).
- ``challenges``: one-use challenges for the card (spent by an atomic update).
- ``visits``, ``consents``: one confirmation at a reception and the patient's choices there.
- ``access_records``: every check, consent, view and refusal (append-only); the patient's
  やりとり履歴 shows them.
- ``clinical_records``: synthetic 薬剤情報 / 特定健診情報 / 診療・手術情報 lines.
- ``request_nonces``: terminals' signed requests' nonces (once per terminal).
- ``audit_events`` and the context's outbox.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mynumber.audit import audit_model
from mynumber.db import UTCDateTime, context_metadata
from mynumber.kernel.events import outbox_tables

CONTEXT = "insurance"
#: The condition of the one-open-qualification index: an open record linked to a person.
OPEN_LINKED = "lost_on IS NULL AND resident_id IS NOT NULL AND link_state = 'linked'"
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = context_metadata(CONTEXT)


AuditEvent = audit_model(Base)
OUTBOX = outbox_tables(Base.metadata)


class SettingRow(Base):
    """The context's own settings (e.g. its JPKI relying-party id, registered on first use)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class InsurerRow(Base):
    __tablename__ = "insurers"

    number: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(40))
    agency_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class QualificationRow(Base):
    __tablename__ = "qualifications"
    __table_args__ = (
        UniqueConstraint("insurer_number", "symbol", "number", "branch"),
        Index("ix_qualifications_resident_id", "resident_id"),
        Index("ix_qualifications_link_state", "insurer_number", "link_state"),
        # One open qualification per person, whatever the insurer. Only a *linked* record
        # is the person's: a blocked one (the re-check distrusts its link) keeps its
        # resident_id for its review but holds no place (migration 0002).
        Index("uq_qualifications_open_resident", "resident_id", unique=True,
              sqlite_where=text(OPEN_LINKED),
              postgresql_where=text(OPEN_LINKED)),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    insurer_number: Mapped[str] = mapped_column(String(8), ForeignKey("insurers.number"))
    symbol: Mapped[str] = mapped_column(String(20))
    number: Mapped[str] = mapped_column(String(20))
    branch: Mapped[str] = mapped_column(String(2))
    insured_kind: Mapped[str] = mapped_column(String(10))
    acquired_on: Mapped[dt.date] = mapped_column(Date)
    lost_on: Mapped[dt.date | None] = mapped_column(Date)
    loss_reason: Mapped[str | None] = mapped_column(String(24))
    copay_percent: Mapped[int] = mapped_column(Integer)
    elderly_recipient: Mapped[bool] = mapped_column(Boolean, default=False)
    limit_category: Mapped[str | None] = mapped_column(String(12))
    # The four basic items as the insurer's record holds them.
    name: Mapped[str] = mapped_column(String(100), default="")
    name_kana: Mapped[str] = mapped_column(String(100), default="")
    birth_date: Mapped[str] = mapped_column(String(10), default="")
    sex: Mapped[str] = mapped_column(String(8), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    # The link.
    link_state: Mapped[str] = mapped_column(String(12), default="unlinked")
    resident_id: Mapped[int | None] = mapped_column(BigId)
    resident_code: Mapped[str | None] = mapped_column(String(11))
    link_route: Mapped[str | None] = mapped_column(String(8))
    linked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ReviewRow(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_insurer_open", "insurer_number", "resolved_at"),
        Index("uq_reviews_open_qualification", "qualification_id", unique=True,
              sqlite_where=text("resolved_at IS NULL"),
              postgresql_where=text("resolved_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    qualification_id: Mapped[int] = mapped_column(BigId, ForeignKey("qualifications.id"))
    insurer_number: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(24))
    differing: Mapped[str] = mapped_column(String(60), default="")  # comma-separated items
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(String(80))


class ActivationRow(Base):
    __tablename__ = "activations"

    #: JPKI's pairwise id for this relying party (stable across renewal, never a serial).
    pairwise_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    resident_id: Mapped[int] = mapped_column(BigId, unique=True)
    activated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    via: Mapped[str] = mapped_column(String(40))  # portal / terminal:<id>


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (
        Index("uq_documents_current_qualification", "qualification_id", unique=True,
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    qualification_id: Mapped[int] = mapped_column(BigId, ForeignKey("qualifications.id"))
    document_number: Mapped[str] = mapped_column(String(16), unique=True)
    issued_on: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class TerminalRow(Base):
    __tablename__ = "terminals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(10), index=True)
    institution_name: Mapped[str] = mapped_column(String(120))
    certificate_pem: Mapped[str] = mapped_column(Text)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12))
    #: The staff user names (staff sign-in) who may use this terminal from the reception
    #: pages, space-separated.
    operators: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ChallengeRow(Base):
    __tablename__ = "challenges"
    __table_args__ = (Index("ix_challenges_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    terminal_id: Mapped[str | None] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(16))  # eligibility / activation
    challenge: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class VisitRow(Base):
    __tablename__ = "visits"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    terminal_id: Mapped[str] = mapped_column(String(32))
    institution_code: Mapped[str] = mapped_column(String(10))
    resident_id: Mapped[int | None] = mapped_column(BigId)
    qualification_id: Mapped[int | None] = mapped_column(BigId)
    method: Mapped[str] = mapped_column(String(12))
    validity: Mapped[str] = mapped_column(String(32))
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: Who attested the holder's presence when the card's PIN was not used: the staff member
    #: of a visual check (``staff:<name>``) or the face matcher (``face:<matcher name>``)
    #: (migration 0003).
    confirmed_by: Mapped[str | None] = mapped_column(String(120), default=None)


class ConsentRow(Base):
    __tablename__ = "consents"

    visit_id: Mapped[str] = mapped_column(String(32), ForeignKey("visits.id"), primary_key=True)
    item: Mapped[str] = mapped_column(String(16), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    given_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AccessRecordRow(Base):
    __tablename__ = "access_records"
    __table_args__ = (Index("ix_access_records_resident_at", "resident_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resident_id: Mapped[int] = mapped_column(BigId)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    institution_code: Mapped[str] = mapped_column(String(10))
    institution_name: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(20))
    item: Mapped[str | None] = mapped_column(String(16))
    method: Mapped[str | None] = mapped_column(String(12))
    validity: Mapped[str | None] = mapped_column(String(32))
    visit_id: Mapped[str | None] = mapped_column(String(32))


class ClinicalRecordRow(Base):
    __tablename__ = "clinical_records"
    __table_args__ = (Index("ix_clinical_records_resident_item", "resident_id", "item"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resident_id: Mapped[int] = mapped_column(BigId)
    item: Mapped[str] = mapped_column(String(16))
    on: Mapped[dt.date] = mapped_column(Date)
    label: Mapped[str] = mapped_column(String(120))
    value: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(120))


class RequestNonce(Base):
    """A terminal's signed request's nonce, once per issuer (``terminal:<id>``)."""

    __tablename__ = "request_nonces"
    __table_args__ = (Index("ix_request_nonces_seen_at", "seen_at"),)

    issuer: Mapped[str] = mapped_column(String(80), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

"""Registry tables. Only ``mynumber.registry`` imports this module (import-linter enforces it).

The 個人番号 itself is never stored: it is derived from the 住民票コード with FF1 under the
registry's numbering key (so the stored 住民票コード is, in effect, the number encrypted under
that key), and each number ever issued leaves only a 64-bit keyed MAC (``number_index``) whose
unique constraint guarantees that no number is ever issued twice. 64 bits are not unique per
number, and need not be: two numbers sharing an index only make the issuer skip to the next
generation (the second number is never issued), and a look-up by number confirms the match by
deriving the number again from the record (``services.find_by_number``).

Foreign keys: the high-volume rows that hang off a resident (``issued_numbers``,
``notification_letters``, ``life_events``) and ``residents.household_id`` carry no foreign-key
constraint. They are written only by ``services`` and ``bulk``, always in the same transaction
as the resident (and household) they name, with ids those same code paths reserved; nothing
deletes residents or households. On PostgreSQL the four checks were about a third of the cost
of storing a resident in bulk. ``residents.municipality_code`` and
``households.municipality_code`` carry none either (about 15% of the server's work in a bulk
import): every writer checks the code against the ``municipalities`` table first (the
services' ``_municipality``, the importer's parser, ``bulk.store_residents``), and nothing
deletes a municipality. tests/registry/test_integrity.py checks that the services and the
importer leave no orphan and no unknown municipality. The low-volume tables (identity verifications,
import bookkeeping) keep their foreign keys, except ``identity_verifications.staff_id``: staff
accounts live in the ``auth`` context's database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mynumber.audit import audit_model
from mynumber.db import UTCDateTime, context_metadata, utcnow
from mynumber.kernel.events import outbox_tables


class Base(DeclarativeBase):
    metadata = context_metadata("registry")


AuditEvent = audit_model(Base)

BigId = BigInteger().with_variant(Integer, "sqlite")


class Municipality(Base):
    """地方公共団体, keyed by its 6-digit 全国地方公共団体コード (JIS X 0402 + check digit)."""

    __tablename__ = "municipalities"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    prefecture: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(40))
    name_kana: Mapped[str] = mapped_column(String(80), default="")
    kind: Mapped[str] = mapped_column(String(20))


class ResidentCodePool(Base):
    """The central pool of 住民票コード: a counter enciphered into codes, so codes never repeat."""

    __tablename__ = "resident_code_pool"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_counter: Mapped[int] = mapped_column(BigInteger, default=0)


class Household(Base):
    """世帯."""

    __tablename__ = "households"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # municipalities.code; no FK constraint (see the module docstring).
    municipality_code: Mapped[str] = mapped_column(String(6), index=True)
    address: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Resident(Base):
    """住民票: the 基本4情報 (name, address, date of birth, sex) and the rest of the record."""

    __tablename__ = "residents"
    __table_args__ = (
        CheckConstraint("sex IN ('male', 'female')", name="sex"),
        CheckConstraint(
            "status IN ('resident', 'moved_out', 'deceased')", name="status"
        ),
        Index("ix_residents_kana_birth", "name_kana_key", "birth_date"),
        Index("ix_residents_municipality_status", "municipality_code", "status"),
        Index("ix_residents_import", "import_run_id", "import_line"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resident_code: Mapped[str] = mapped_column(String(11), unique=True)
    family_name: Mapped[str] = mapped_column(String(40))
    given_name: Mapped[str] = mapped_column(String(40))
    family_name_kana: Mapped[str] = mapped_column(String(80))
    given_name_kana: Mapped[str] = mapped_column(String(80))
    # Normalised kana (codes.kana) for search and for 4-item matching.
    name_kana_key: Mapped[str] = mapped_column(String(160))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(6))
    # municipalities.code; no FK constraint (see the module docstring).
    municipality_code: Mapped[str] = mapped_column(String(6))
    address: Mapped[str] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(8), default="")
    # households.id; no FK constraint (see the module docstring).
    household_id: Mapped[int | None] = mapped_column(BigId, index=True)
    relationship: Mapped[str] = mapped_column(String(20), default="世帯主")
    nationality: Mapped[str] = mapped_column(String(2), default="JP")
    # 在留資格 for foreign residents (住民基本台帳法 第30条の45); empty for Japanese nationals.
    residence_status: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(10), default="resident")
    destination_municipality_code: Mapped[str | None] = mapped_column(String(6))
    number_generation: Mapped[int | None] = mapped_column(Integer)
    # The import run and file line this resident came from (None if not imported). Not
    # unique: exactly-once is the import batch's (its ImportBatch row commits with its
    # residents); the index serves the reconciliation count and resume look-ups.
    import_run_id: Mapped[int | None] = mapped_column(Integer)
    import_line: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class IssuedNumber(Base):
    """Every 個人番号 ever issued, as a 64-bit keyed MAC: a new number must differ from all of
    them (see the module docstring for why 64 bits are enough)."""

    __tablename__ = "issued_numbers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number_index: Mapped[int] = mapped_column(BigInteger, unique=True)
    resident_id: Mapped[int] = mapped_column(BigId, index=True)  # residents.id, no FK
    generation: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    retire_reason: Mapped[str | None] = mapped_column(String(200))


class LifeEvent(Base):
    """One entry of a resident's history (異動): birth, move-in, move-out, change, death, …"""

    __tablename__ = "life_events"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('birth', 'move_in', 'move_out', 'name_change', 'address_change', "
            "'death', 'correction', 'number_reissue', 'import')",
            name="kind",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resident_id: Mapped[int] = mapped_column(BigId, index=True)  # residents.id, no FK
    kind: Mapped[str] = mapped_column(String(20))
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    municipality_code: Mapped[str] = mapped_column(String(6))
    actor: Mapped[str] = mapped_column(String(80))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class NotificationLetter(Base):
    """個人番号通知書: created on numbering, tracked to delivered, returned, held or handed over."""

    __tablename__ = "notification_letters"
    __table_args__ = (
        CheckConstraint(
            "status IN ('created', 'sent', 'delivered', 'returned', 'held', 'handed_over', "
            "'discarded')",
            name="status",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resident_id: Mapped[int] = mapped_column(BigId, index=True)  # residents.id, no FK
    number_generation: Mapped[int] = mapped_column(Integer)
    municipality_code: Mapped[str] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(12), default="created")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    hold_until: Mapped[dt.date | None] = mapped_column(Date)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)


class IdentityVerification(Base):
    """本人確認 (番号法 第16条): number confirmation + identity confirmation, as recorded."""

    __tablename__ = "identity_verifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    # The staff account (mynumber.auth) who verified: no foreign key, the accounts live in the
    # auth context's database since migration 0003.
    staff_id: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(100))
    number_confirmation: Mapped[str] = mapped_column(String(40))
    identity_documents: Mapped[list[Any]] = mapped_column(JSON)
    assurance_level: Mapped[str] = mapped_column(String(12))
    number_matched: Mapped[bool]
    verified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportRun(Base):
    """A bulk import of one file (identified by its SHA-256), resumable batch by batch."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    file_format: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lines_read: Mapped[int | None] = mapped_column(Integer)


class ImportBatch(Base):
    """A committed batch: it is written in the same transaction as the batch's residents."""

    __tablename__ = "import_batches"
    __table_args__ = (UniqueConstraint("run_id", "batch_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id"))
    batch_no: Mapped[int] = mapped_column(Integer)
    first_line: Mapped[int] = mapped_column(Integer)
    last_line: Mapped[int] = mapped_column(Integer)
    stored: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    committed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportRejection(Base):
    """A line an import refused, with the field and the reason (never the line's content)."""

    __tablename__ = "import_rejections"
    __table_args__ = (UniqueConstraint("run_id", "line_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    field: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(200))


class AcquisitionNumber(Base):
    """取得番号: a one-time token an agency holding a person's number gets from the registry and
    presents to the network for its 機関別符号. Only a hash of the token is kept."""

    __tablename__ = "acquisition_numbers"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    agency_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


# The registry's transactional outbox (mynumber.kernel.events): every life event is published
# in the transaction that records it, and delivered to the subscribers after commit.
outbox_events, outbox_checkpoints = outbox_tables(Base.metadata)

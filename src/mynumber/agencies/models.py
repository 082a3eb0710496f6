"""Intermediate-server tables. Only ``mynumber.agencies`` imports this module.

Like J-LIS's 中間サーバー・プラットフォーム, one database serves many agencies with logical
separation: every row carries its ``agency_id``, and every look-up is by (agency, ...). An
agency knows a person by its own 宛名番号 and its own 機関別符号 only; no 個人番号 is ever stored.
Each agency's 副本 are encrypted under that agency's key (:mod:`mynumber.agencies.copy_encryption`):
database access to this context does not let one agency read another's copies.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mynumber.audit import audit_model
from mynumber.db import UTCDateTime, context_metadata, utcnow


class Base(DeclarativeBase):
    metadata = context_metadata("agencies")


AuditEvent = audit_model(Base)

BigId = BigInteger().with_variant(Integer, "sqlite")
AGENCY_ID_LENGTH = 64
ADDRESS_NUMBER_LENGTH = 40
AGENCY_CODE_LENGTH = 32
ITEM_CODE_LENGTH = 64
TASK_ID_LENGTH = 64
SERIAL_LENGTH = 32


class Person(Base):
    """A person an agency knows: its 宛名番号 and its 機関別符号 for them."""

    __tablename__ = "persons"
    __table_args__ = (
        UniqueConstraint("agency_id", "address_number"),
        UniqueConstraint("agency_id", "agency_code"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(AGENCY_ID_LENGTH))
    address_number: Mapped[str] = mapped_column(String(ADDRESS_NUMBER_LENGTH))
    agency_code: Mapped[str] = mapped_column(String(AGENCY_CODE_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CopyKey(Base):
    """A data key of one agency's 副本, wrapped (HPKE) to the agency's public encryption key."""

    __tablename__ = "copy_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(AGENCY_ID_LENGTH), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Copy(Base):
    """副本: information the agency provides to others, under its own code for the person.

    ``sealed`` (nonce || AES-GCM ciphertext) under the data key ``key_id``; ``payload`` is the
    plaintext of rows written before encryption (agencies migration 0002) and is NULL once
    ``mynumber agencies encrypt-copies`` (or a new put) encrypted the row. A row with a
    plaintext payload is never provided."""

    __tablename__ = "copies"
    __table_args__ = (UniqueConstraint("agency_id", "agency_code", "item_code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(AGENCY_ID_LENGTH))
    agency_code: Mapped[str] = mapped_column(String(AGENCY_CODE_LENGTH))
    item_code: Mapped[str] = mapped_column(String(ITEM_CODE_LENGTH))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    key_id: Mapped[int | None] = mapped_column(BigId)
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnsweredQuery(Base):
    """Provider side: every routed query this server answered (held or not)."""

    __tablename__ = "answered_queries"
    __table_args__ = (Index("ix_answered_queries_agency_serial", "agency_id", "serial"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial: Mapped[str] = mapped_column(String(SERIAL_LENGTH))
    agency_id: Mapped[str] = mapped_column(String(AGENCY_ID_LENGTH))
    requester_id: Mapped[str] = mapped_column(String(AGENCY_ID_LENGTH))
    task_id: Mapped[str] = mapped_column(String(TASK_ID_LENGTH))
    item_code: Mapped[str] = mapped_column(String(ITEM_CODE_LENGTH))
    held: Mapped[bool] = mapped_column(Boolean)
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SentQuery(Base):
    """Requester side: every query this agency sent, with the core's outcome."""

    __tablename__ = "sent_queries"
    __table_args__ = (Index("ix_sent_queries_agency_serial", "agency_id", "serial"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial: Mapped[str] = mapped_column(String(SERIAL_LENGTH))
    agency_id: Mapped[str] = mapped_column(String(AGENCY_ID_LENGTH))
    provider_id: Mapped[str] = mapped_column(String(AGENCY_ID_LENGTH))
    task_id: Mapped[str] = mapped_column(String(TASK_ID_LENGTH))
    item_code: Mapped[str] = mapped_column(String(ITEM_CODE_LENGTH))
    address_number: Mapped[str] = mapped_column(String(ADDRESS_NUMBER_LENGTH))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

"""Intermediate-server tables. Only ``mynumber.agencies`` imports this module.

Like J-LIS's 中間サーバー・プラットフォーム, one database serves many agencies with logical
separation: every row carries its ``agency_id``, and every look-up is by (agency, ...). An
agency knows a person by its own 宛名番号 and its own 機関別符号 only; no 個人番号 is ever stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, UniqueConstraint
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


class Copy(Base):
    """副本: information the agency provides to others, under its own code for the person."""

    __tablename__ = "copies"
    __table_args__ = (UniqueConstraint("agency_id", "agency_code", "item_code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(AGENCY_ID_LENGTH))
    agency_code: Mapped[str] = mapped_column(String(AGENCY_CODE_LENGTH))
    item_code: Mapped[str] = mapped_column(String(ITEM_CODE_LENGTH))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
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

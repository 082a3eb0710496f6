"""Network core tables. Only ``mynumber.network`` imports this module.

The core keeps agencies, exchanges (with the core-internal subject key that lets a resident
find the records about them) and the access-record log (``log_models``). It never stores a
個人番号 or a 住民票コード, and never the data exchanged (that passes through sealed).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mynumber.audit import audit_model
from mynumber.db import UTCDateTime, context_metadata, utcnow


class Base(DeclarativeBase):
    metadata = context_metadata("network")


AuditEvent = audit_model(Base)
BigId = BigInteger().with_variant(Integer, "sqlite")


class Agency(Base):
    """A concrete agency of the directory (built from the legal table's data and the
    registry's municipalities), with the public keys of its intermediate server."""

    __tablename__ = "agencies"

    agency_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    municipality_code: Mapped[str | None] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(16), default="active")
    signing_key: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    encryption_key: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    endpoint: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Exchange(Base):
    """One exchange (or refused query, or declined application) with its 処理通番.

    ``subject_key`` is the core's own pseudonym for the person (a keyed hash of the
    住民票コード): it lets the portal list a resident's records and leaves the core alone.
    The public log entry carries a per-record commitment instead, so log readers cannot link
    two records of one person."""

    __tablename__ = "exchanges"
    __table_args__ = (
        Index("ix_exchanges_subject_key", "subject_key", "occurred_at"),
        Index("uq_exchanges_requester_nonce", "requester_id", "nonce", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    requester_id: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str] = mapped_column(String(64))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    item_code: Mapped[str | None] = mapped_column(String(64))
    provision_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    disclose_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    subject_key: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    nonce: Mapped[str | None] = mapped_column(String(64))
    application_ref: Mapped[str | None] = mapped_column(String(64))
    documents: Mapped[str | None] = mapped_column(Text)


class Rejection(Base):
    """The bounded rejection counter: requests refused before their sender was authenticated
    (bad signature, unknown agency, malformed...). They never become exchanges or log entries;
    only these counts remain. The key space is fixed (operation x reason, both enums, x hour)
    and buckets older than the retention are pruned, so a flood cannot grow the table."""

    __tablename__ = "rejections"

    operation: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class InfrastructureFailureBucket(Base):
    """The operators' infrastructure-failure counter: operations that failed because a
    database or an intermediate server was unavailable. Those are no refusals and leave no
    exchange row or log entry; only these counts remain. Bounded like ``rejections``: a fixed
    key space (operation x reason, both enums, x hour), pruned after the same retention."""

    __tablename__ = "infrastructure_failures"

    operation: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


# The access-record log's tables live in their own module; importing it here puts them in this
# context's metadata (migrations read ``Base.metadata``).
from mynumber.network import log_models as _log_models  # noqa: E402,F401

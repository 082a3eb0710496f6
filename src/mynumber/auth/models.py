"""Staff sign-in tables. Only ``mynumber.auth`` imports this module.

``staff.municipality_code`` has no foreign key: the municipalities live in the registry's
database, which this context cannot reach. The code is checked at account creation through a
callable the composition root injects (``StaffAuthImpl(municipality_exists=...)``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mynumber.audit import audit_model
from mynumber.db import UTCDateTime, context_metadata, utcnow


class Base(DeclarativeBase):
    metadata = context_metadata("auth")


# Every login, refused attempt (unknown user names too), throttle, unlock and logout.
AuditEvent = audit_model(Base)


class Staff(Base):
    """A municipal staff account (職員). Two factors: password (argon2id) and TOTP."""

    __tablename__ = "staff"
    __table_args__ = (
        CheckConstraint("role IN ('clerk', 'supervisor', 'admin')", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    municipality_code: Mapped[str] = mapped_column(String(6))
    role: Mapped[str] = mapped_column(String(12))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str] = mapped_column(String(64))
    # The last TOTP time step accepted: a code is consumed by raising it (atomically).
    last_totp_step: Mapped[int] = mapped_column(BigInteger, default=0)
    # Consecutive refused attempts since the last success (incremented in SQL).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    # Throttle: no login before this instant (exponential backoff, capped); never permanent.
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffSession(Base):
    """A staff login; only the token's hash is stored."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

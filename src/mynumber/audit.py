"""Audit events: one table per context, written inside the same transaction as the change.

Tags read ``context:subject:action`` (``registry:resident:read``). Details must never carry a
個人番号: callers pass identifiers such as the internal resident id or the 住民票コード.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from mynumber.db import UTCDateTime, utcnow


def audit_model(base: type[DeclarativeBase]) -> type[Any]:
    """Declare the ``audit_events`` table on a context's base."""

    class AuditEvent(base):  # type: ignore[valid-type,misc]
        __tablename__ = "audit_events"
        __table_args__ = (Index("ix_audit_events_subject", "subject"),)

        id: Mapped[int] = mapped_column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True
        )
        occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
        tag: Mapped[str] = mapped_column(String(80), index=True)
        actor: Mapped[str] = mapped_column(String(80))
        subject: Mapped[str] = mapped_column(String(80))
        reason: Mapped[str | None] = mapped_column(String(200))
        details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    return AuditEvent


def record(
    session: Session,
    model: type[Any],
    tag: str,
    *,
    actor: str,
    subject: str,
    reason: str | None = None,
    **details: Any,
) -> Any:
    """Add one audit event to the session (the caller's transaction commits it)."""
    if tag.count(":") != 2:
        raise ValueError(f"audit tag must be context:subject:action, got {tag!r}")
    event = model(tag=tag, actor=actor, subject=subject, reason=reason, details=details)
    session.add(event)
    return event

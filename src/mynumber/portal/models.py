"""Portal tables. Only ``mynumber.portal`` imports this module.

The portal knows a resident by its own account (keyed by the JPKI pairwise id it gets as an
auth verifier) and by its 宛名番号 at the network agency ``mynaportal``; it stores no 個人番号 and
no certificate serial as an identifier.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mynumber.audit import audit_model
from mynumber.db import UTCDateTime, context_metadata, utcnow


class Base(DeclarativeBase):
    metadata = context_metadata("portal")


AuditEvent = audit_model(Base)

BigId = BigInteger().with_variant(Integer, "sqlite")

AGENCY_ID_LENGTH = 64
ADDRESS_NUMBER_LENGTH = 40
AGENCY_CODE_LENGTH = 64
SERIAL_LENGTH = 32


class PortalSetting(Base):
    """Small facts the portal must remember across restarts, e.g. its JPKI relying-party id
    (pairwise ids depend on it, so it must never change)."""

    __tablename__ = "portal_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class LoginChallenge(Base):
    """32 random bytes for the card to sign: five minutes, one use."""

    __tablename__ = "login_challenges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    challenge_id: Mapped[str] = mapped_column(String(64), unique=True)
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # What the signature is for: ``login`` (a portal session), ``accounts`` (the resident's
    # own account changes), ``bank:<client id>`` (a bank's counter). A challenge is accepted
    # only by the procedure it was issued for (portal.services.sessions).
    purpose: Mapped[str] = mapped_column(String(80), default="login", server_default="login")


class Account(Base):
    """利用者: one per person, keyed by the pairwise id (``subject``). ``address_number`` is
    the portal agency's 宛名番号 for the person and ``agency_code`` its 機関別符号 (both the
    portal's own); no 個人番号, no certificate serial."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), unique=True)
    address_number: Mapped[str] = mapped_column(String(ADDRESS_NUMBER_LENGTH), unique=True)
    agency_code: Mapped[str] = mapped_column(String(AGENCY_CODE_LENGTH), index=True)
    municipality_code: Mapped[str] = mapped_column(String(6))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PortalSessionRow(Base):
    """A server-side session: only the token's SHA-256 is kept."""

    __tablename__ = "portal_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(BigId, index=True)
    acting_for: Mapped[int] = mapped_column(BigId)
    proxy_kind: Mapped[str | None] = mapped_column(String(32))
    csrf_token: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # The opening card's auth certificate serial, sealed under a key derived from the bearer
    # token (services.core.seal_serial): every look-up asks JPKI whether it is still good, and the
    # table itself holds no serial.
    certificate_seal: Mapped[bytes | None] = mapped_column(LargeBinary(64))


class ActivityRow(Base):
    """What was done in the portal for a resident (``subject_account_id``), by whom
    (``actor_account_id``; with ``proxy_kind`` when a proxy acted). ``serial`` names the
    network exchange the action caused, if any; ``client_id`` the API client for releases."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_subject_at", "subject_account_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(40))
    actor_account_id: Mapped[int] = mapped_column(BigId)
    subject_account_id: Mapped[int] = mapped_column(BigId)
    proxy_kind: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(500), default="")
    serial: Mapped[str | None] = mapped_column(String(SERIAL_LENGTH))
    client_id: Mapped[str | None] = mapped_column(String(64))


class NoticeRow(Base):
    """お知らせ, addressed to the portal's 機関別符号 for the person (``recipient_code``): it
    waits there until the person has an account, and is shown from then on."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recipient_code: Mapped[str] = mapped_column(String(AGENCY_CODE_LENGTH), index=True)
    sender_id: Mapped[str] = mapped_column(String(AGENCY_ID_LENGTH))
    sender_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    application_id: Mapped[int | None] = mapped_column(BigId)
    #: The event a notice was sent for (``registry:<seq>``): sent once however often the
    #: event is delivered.
    source_event: Mapped[str | None] = mapped_column(String(80), unique=True)


class NoticeNonce(Base):
    """The nonce of each signed お知らせ an agency sent: a repeat is a replay. Rows older than
    the allowed clock skew are purged (a request that old is refused for its time anyway)."""

    __tablename__ = "notice_nonces"
    __table_args__ = (UniqueConstraint("agency_id", "nonce", name="uq_notice_nonces_agency"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agency_id: Mapped[str] = mapped_column(String(AGENCY_ID_LENGTH))
    nonce: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ApplicationRow(Base):
    """An application submitted through the portal (児童手当 現況届)."""

    __tablename__ = "applications"
    # One application answers a notice (the second guard after the conditional claim).
    __table_args__ = (UniqueConstraint("notice_id", name="uq_applications_notice_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigId, index=True)  # whose application
    actor_account_id: Mapped[int] = mapped_column(BigId)  # who submitted it
    notice_id: Mapped[int | None] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(64))
    # The municipality it went to (its staff list what they received by it).
    agency_id: Mapped[str] = mapped_column(String(AGENCY_ID_LENGTH), index=True)
    state: Mapped[str] = mapped_column(String(16))
    application_ref: Mapped[str] = mapped_column(String(64), unique=True)
    uses_number: Mapped[bool] = mapped_column(Boolean)
    documents: Mapped[list[str]] = mapped_column(JSON, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    by_proxy: Mapped[str | None] = mapped_column(String(32))
    declined_serial: Mapped[str | None] = mapped_column(String(SERIAL_LENGTH))


class AttachmentRow(Base):
    """An attached document (添付書類) of an application made without the number, stored
    with it in one transaction: the bytes here (at most MAX_ATTACHMENT_BYTES), the type read
    from the content, the name sanitised (portal.attachments)."""

    __tablename__ = "application_attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    application_id: Mapped[int] = mapped_column(BigId, index=True)
    kind: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ProxyRow(Base):
    """代理人: registered at the counter by staff who verified both people."""

    __tablename__ = "proxies"
    __table_args__ = (Index("ix_proxies_proxy_principal", "proxy_account_id",
                            "principal_account_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    principal_account_id: Mapped[int] = mapped_column(BigId, index=True)
    proxy_account_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(32))
    registered_by: Mapped[str] = mapped_column(String(80))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(80))


# The OIDC provider's tables live in their own module; importing it here puts them in this
# context's metadata (migrations read ``mynumber.portal.models``).
from mynumber.portal import oauth_models as _oauth_models  # noqa: E402,F401

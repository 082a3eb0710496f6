"""JPKI tables. Only ``mynumber.jpki`` imports this module.

No 個人番号 is stored here, and no 基本4情報 beyond what the signing certificates themselves carry
(their PEM). A certificate names its holder by the registry's internal id and 住民票コード (needed
to follow the holder across renewals and to derive pairwise identifiers).

Serials are random 159-bit integers (RFC 5280 allows up to 20 octets), too big for BIGINT, so
they are kept as strings of decimal digits.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mynumber.audit import audit_model
from mynumber.db import UTCDateTime, context_metadata, utcnow


class Base(DeclarativeBase):
    metadata = context_metadata("jpki")


AuditEvent = audit_model(Base)

BigId = BigInteger().with_variant(Integer, "sqlite")
SERIAL_LENGTH = 49  # 2**160 has 49 decimal digits


class CertificateAuthority(Base):
    """A CA (root, issuing CA) or a delegated OCSP responder. The private key stays in the key
    provider under ``key_label``; only the certificate is here."""

    __tablename__ = "certificate_authorities"
    __table_args__ = (
        CheckConstraint("kind IN ('root', 'signing', 'auth', 'ocsp-responder')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    # The issuing CA a responder answers for, or the parent of an issuing CA.
    parent_label: Mapped[str | None] = mapped_column(String(40))
    cert_pem: Mapped[str] = mapped_column(Text)
    key_label: Mapped[str] = mapped_column(String(64))
    crl_number: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Certificate(Base):
    """An end-entity certificate (署名用 / 利用者証明用, on a card or a smartphone)."""

    __tablename__ = "certificates"
    __table_args__ = (
        CheckConstraint("kind IN ('signing', 'auth')", name="kind"),
        CheckConstraint("device IN ('card', 'smartphone')", name="device"),
        CheckConstraint("state IN ('good', 'revoked')", name="state"),
        Index("ix_certificates_holder", "resident_id", "kind", "state"),
        Index("ix_certificates_issuer_state", "issuer_label", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial: Mapped[str] = mapped_column(String(SERIAL_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    device: Mapped[str] = mapped_column(String(12))
    resident_id: Mapped[int] = mapped_column(BigInteger)
    resident_code: Mapped[str] = mapped_column(String(11), index=True)
    issuer_label: Mapped[str] = mapped_column(String(40))
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    pem: Mapped[str] = mapped_column(Text)
    # Only "good" or "revoked" is stored; "expired" is derived from not_after.
    state: Mapped[str] = mapped_column(String(10), default="good")
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revocation_reason: Mapped[str | None] = mapped_column(String(30))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SerialLink(Base):
    """新旧シリアル番号紐付け: ``old_serial`` was replaced by ``new_serial``."""

    __tablename__ = "serial_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    old_serial: Mapped[str] = mapped_column(String(SERIAL_LENGTH), unique=True)
    new_serial: Mapped[str] = mapped_column(String(SERIAL_LENGTH), index=True)
    linked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RelyingParty(Base):
    """署名検証者 / 利用者証明検証者. Its API key is kept only as a SHA-256 hash."""

    __tablename__ = "relying_parties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kinds: Mapped[str] = mapped_column(String(40))  # "signing,auth"
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Registered by the platform itself (the portal's card login): an administrator cannot
    # retire it, since that would stop card login for everyone.
    system: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RelyingPartyUser(Base):
    """A holder a relying party has as a user, named by that party's pairwise id."""

    __tablename__ = "relying_party_users"
    __table_args__ = (UniqueConstraint("relying_party_id", "holder_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    relying_party_id: Mapped[int] = mapped_column(ForeignKey("relying_parties.id"))
    holder_key: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

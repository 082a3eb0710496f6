"""Card tables. Only ``mynumber.card`` imports this module.

The card context keeps public data only: card ids, states, dates, certificate serials and the
certificates' public keys. The chip (private keys, PIN hashes, the 個人番号 on the card face)
lives with the holder: in embedded mode under ``DATA_DIR/cards/<card_id>.json`` (0600).
``resident_id`` refers to the registry's resident in another database, so it has no foreign key.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mynumber.audit import audit_model
from mynumber.db import UTCDateTime, context_metadata, utcnow


class Base(DeclarativeBase):
    metadata = context_metadata("card")


AuditEvent = audit_model(Base)

# Certificate serials are up to 160-bit integers, kept as decimal text.
SERIAL_LENGTH = 49
BigId = BigInteger().with_variant(Integer, "sqlite")


class Application(Base):
    """交付申請: one 申請書ID per application."""

    __tablename__ = "applications"
    __table_args__ = (
        CheckConstraint("state IN ('received', 'issued')", name="state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    application_id: Mapped[str] = mapped_column(String(23), unique=True)
    resident_id: Mapped[int] = mapped_column(BigId, index=True)  # registry residents.id
    state: Mapped[str] = mapped_column(String(10), default="received")
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_by: Mapped[str] = mapped_column(String(80))
    card_id: Mapped[str | None] = mapped_column(String(16))


class Card(Base):
    """An issued 個人番号カード (public data only)."""

    __tablename__ = "cards"
    __table_args__ = (
        CheckConstraint("state IN ('active', 'suspended', 'revoked', 'expired', 'ended')",
                        name="state"),
    )

    card_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    resident_id: Mapped[int] = mapped_column(BigId, index=True)  # registry residents.id
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.application_id"))
    state: Mapped[str] = mapped_column(String(10), default="active")
    issued_on: Mapped[dt.date] = mapped_column(Date)
    expires_on: Mapped[dt.date] = mapped_column(Date)
    signing_serial: Mapped[str | None] = mapped_column(String(SERIAL_LENGTH))
    auth_serial: Mapped[str | None] = mapped_column(String(SERIAL_LENGTH))
    signing_public_key: Mapped[str | None] = mapped_column(Text)
    auth_public_key: Mapped[str] = mapped_column(Text)
    replaced_by: Mapped[str | None] = mapped_column(String(16))
    state_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmartphoneCredential(Base):
    """スマホ用電子証明書: a phone's own key pairs, certified on the strength of the card."""

    __tablename__ = "smartphone_credentials"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.card_id"), index=True)
    resident_id: Mapped[int] = mapped_column(BigId, index=True)
    signing_serial: Mapped[str | None] = mapped_column(String(SERIAL_LENGTH))
    auth_serial: Mapped[str | None] = mapped_column(String(SERIAL_LENGTH))
    active: Mapped[bool] = mapped_column(default=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class FreeAreaApp(Base):
    """An application in the card's free area (空き領域): 印鑑登録証, staff ID, …"""

    __tablename__ = "free_area_apps"
    __table_args__ = (UniqueConstraint("card_id", "app_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.card_id"), index=True)
    app_id: Mapped[str] = mapped_column(String(40))
    issuer: Mapped[str] = mapped_column(String(100))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

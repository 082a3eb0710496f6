"""API shapes for the card context."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, Field

from mynumber.card.interfaces import CardState
from mynumber.kernel.schemas import Strict
from mynumber.registry.interfaces import IdentityDocument, NumberConfirmation


class Device(StrEnum):
    CARD = "card"
    SMARTPHONE = "smartphone"


class LossReportRequest(Strict):
    """紛失・盗難の届出 (24 hours a day): all three items must match the card's holder."""

    card_id: str = Field(
        min_length=1, max_length=32, pattern=r"^[0-9A-Za-z \-]+$",
        description="カードID (16 hex characters) or the 23-digit 申請書ID",
    )
    name_kana: str = Field(min_length=1, max_length=80, description="氏名フリガナ")
    birth_date: dt.date = Field(description="生年月日")
    device: Device = Field(default=Device.CARD, description="card: suspend the card; "
                           "smartphone: revoke only the smartphone certificates")


class LossReportResponse(BaseModel):
    card_id: str
    state: CardState = Field(description="suspended: both certificates are revoked")
    revoked_certificates: int = Field(description="certificates revoked by this report")
    reference: str = Field(description="受付番号: this report's reference, for the police's "
                           "遺失届 and the reissue at the counter (not a card id or serial)")


class Identity(Strict):
    """本人確認 at the counter: the presented 個人番号 and the documents shown."""

    individual_number: str = Field(min_length=1, max_length=20, description="提示された個人番号")
    number_confirmation: NumberConfirmation = Field(description="番号確認の方法")
    identity_documents: list[IdentityDocument] = Field(min_length=1, max_length=5,
                                                       description="身元確認書類")


class NewCertificatesRequest(Strict):
    """New certificates on the card: the holder sets the PIN of each new certificate."""

    identity: Identity
    signing_password: str | None = Field(default=None, max_length=16,
                                         description="署名用電子証明書の暗証番号 (6-16 A-Z0-9)")
    user_auth_pin: str | None = Field(default=None, max_length=4,
                                      description="利用者証明用電子証明書の暗証番号 (4 digits)")
    adult_ward: bool = False


class ReissueRequest(Strict):
    identity: Identity
    signing_password: str = Field(max_length=16)
    user_auth_pin: str = Field(max_length=4)
    residence_pin: str = Field(max_length=4)
    card_info_pin: str = Field(max_length=4)
    adult_ward: bool = False


class FreeAreaRequest(Strict):
    app_id: str = Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$",
                        description="an application the free area accepts (see docs)")


class CertificatePublic(BaseModel):
    kind: str = Field(description="signing or auth")
    serial: str | None
    state: str | None = Field(description="good, revoked, expired; null: none on the card")
    not_after: dt.datetime | None
    revocation_reason: str | None
    renewal_opens_on: dt.date | None


class SmartphonePublic(BaseModel):
    id: int
    active: bool
    signing_serial: str | None
    auth_serial: str | None


class FreeAreaPublic(BaseModel):
    app_id: str
    issuer: str = Field(description="the municipality code that wrote it")
    registered_at: dt.datetime


class CardPublic(BaseModel):
    card_id: str
    state: CardState
    issued_on: dt.date
    expires_on: dt.date
    replaced_by: str | None
    certificates: list[CertificatePublic]
    smartphones: list[SmartphonePublic]
    free_area: list[FreeAreaPublic]


class CertificatesIssued(BaseModel):
    card: CardPublic
    certificates: dict[str, str] = Field(description="kind -> the new certificate (PEM)")
    serial_links: dict[str, str] = Field(description="old serial -> new serial")
    revoked: list[str]


class CardIssued(BaseModel):
    card_id: str
    expires_on: dt.date
    replaces: str


class SmartphoneRequest(Strict):
    """スマホ用電子証明書: the phone's two public keys (PEM, RSA-2048) and the card's signature
    (base64, RSASSA-PKCS1-v1_5 SHA-256, made with the signing password) over the enrolment
    message ``mynumber-smartphone-enrolment-v1|CARD_ID|hex(signing SPKI DER)|hex(auth SPKI
    DER)``."""

    card_id: str = Field(min_length=1, max_length=16, pattern=r"^[0-9A-Fa-f]+$")
    signing_public_key_pem: str = Field(min_length=1, max_length=2048)
    auth_public_key_pem: str = Field(min_length=1, max_length=2048)
    proof: str = Field(pattern=r"^[A-Za-z0-9+/]+={0,2}$", max_length=1024)


class SmartphoneIssued(BaseModel):
    id: int
    signing_certificate: str
    auth_certificate: str

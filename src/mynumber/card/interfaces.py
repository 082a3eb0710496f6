"""What the card context offers the web layer, the CLI and other contexts: value types, the
service protocol and the card's errors. Other contexts import this module, never ``models``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mynumber.auth.interfaces import StaffPrincipal
from mynumber.errors import Conflict, Forbidden, InvalidInput, NotFound


class CardState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # 一時利用停止 (lost or stolen)
    REVOKED = "revoked"  # 廃止 (replaced by renewal or reissue)
    EXPIRED = "expired"
    ENDED = "ended"  # 失効: the holder died (registry event); nothing can be done with it


class ApplicationState(StrEnum):
    RECEIVED = "received"
    ISSUED = "issued"


@dataclass(frozen=True)
class ApplicationRecord:
    id: int
    application_id: str  # 申請書ID, 23 digits with a Damm check digit
    resident_id: int
    state: ApplicationState
    received_at: dt.datetime
    card_id: str | None


@dataclass(frozen=True)
class CardRecord:
    """Public data of an issued card (the chip itself lives with the holder)."""

    card_id: str
    resident_id: int
    application_id: str
    state: CardState
    issued_on: dt.date
    expires_on: dt.date
    signing_serial: int | None
    auth_serial: int | None
    replaced_by: str | None


@dataclass(frozen=True)
class IssuedPins:
    """The four PINs the resident sets at issuance (formats are enforced by the chip)."""

    signing_password: str
    user_auth_pin: str
    residence_pin: str
    card_info_pin: str


@dataclass(frozen=True)
class IdentityCheck:
    """What the counter presents for 本人確認: the 個人番号 and the documents shown."""

    individual_number: str
    number_confirmation: str  # registry NumberConfirmation value
    documents: tuple[str, ...]  # registry IdentityDocument values


@dataclass(frozen=True)
class LossReport:
    card_id: str
    state: CardState
    revoked_serials: tuple[int, ...]


@dataclass(frozen=True)
class SmartphoneCredential:
    id: int
    card_id: str
    signing_serial: int | None
    auth_serial: int | None
    active: bool
    #: The issued certificates (PEM, signing then auth); only when just issued.
    certificates: tuple[str, ...] = ()


@dataclass(frozen=True)
class CertificateStatus:
    """One certificate slot of a card as the counter sees it."""

    kind: str  # "signing" or "auth" (jpki CertificateKind values)
    serial: int | None
    state: str | None  # "good", "revoked", "expired" (jpki CertificateState); None: no cert
    not_after: dt.datetime | None
    revocation_reason: str | None
    #: From this day the certificate may be renewed on the card (3 months before not_after).
    renewal_opens_on: dt.date | None


@dataclass(frozen=True)
class CardStatus:
    """A card with its certificates, smartphone credentials and free-area applications."""

    card: CardRecord
    certificates: tuple[CertificateStatus, ...]
    smartphones: tuple[SmartphoneCredential, ...]
    free_area: tuple[FreeAreaEntry, ...]


@dataclass(frozen=True)
class CertificateRenewal:
    """What a counter procedure that writes new certificates on a card did."""

    card: CardRecord
    #: kind -> the new certificate (PEM), for each certificate written on the card.
    issued: dict[str, str]
    #: old serial -> new serial (新旧シリアル番号紐付け), also recorded in JPKI.
    links: dict[int, int]
    revoked: tuple[int, ...]


@dataclass(frozen=True)
class FreeAreaRule:
    """Which application the free area (空き領域) accepts and who may write it."""

    app_id: str
    title_ja: str
    title_en: str
    #: "residence": only the municipality where the holder lives; "any_municipality": any
    #: municipality (the issuer is the writing municipality).
    writer: str


@dataclass(frozen=True)
class FreeAreaEntry:
    """An application registered in the card's free area (空き領域), e.g. 印鑑登録証."""

    id: int
    card_id: str
    app_id: str
    issuer: str
    registered_at: dt.datetime


#: The applications the free area accepts (as data): who may write each one. A municipality
#: writes only for itself; the holder's own municipality is the only writer of 印鑑登録証.
FREE_AREA_RULES: dict[str, FreeAreaRule] = {
    r.app_id: r for r in (
        FreeAreaRule("seal_registration", "印鑑登録証", "Seal registration card", "residence"),
        FreeAreaRule("library_card", "図書館利用カード", "Library card", "any_municipality"),
        FreeAreaRule("certificate_kiosk", "証明書自動交付機利用", "Certificate kiosk use",
                     "residence"),
    )
}


def smartphone_enrolment_message(
    card_id: str, signing_public_key_der: bytes, auth_public_key_der: bytes
) -> bytes:
    """The bytes the card's signing key signs to vouch for a phone's two public keys
    (SubjectPublicKeyInfo DER)."""
    return b"|".join((
        b"mynumber-smartphone-enrolment-v1", card_id.encode("ascii"),
        signing_public_key_der.hex().encode("ascii"), auth_public_key_der.hex().encode("ascii"),
    ))


# --- errors -------------------------------------------------------------------------------


class ApplicationNotFound(NotFound):
    code = "application_not_found"
    title = "Application not found"


class InvalidApplicationId(InvalidInput):
    code = "invalid_application_id"
    title = "Invalid application ID"


class CardNotFound(NotFound):
    code = "card_not_found"
    title = "Card not found"


class CardStateConflict(Conflict):
    code = "card_state_conflict"
    title = "Not allowed in the card's current state"


class IdentityNotVerified(Forbidden):
    code = "identity_not_verified"
    title = "Identity verification did not succeed"


class PinRefused(InvalidInput):
    code = "pin_refused"
    title = "PIN refused"


class RenewalNotOpen(CardStateConflict):
    code = "renewal_not_open"
    title = "Nothing to renew yet"


class FreeAreaRefused(Forbidden):
    code = "free_area_refused"
    title = "This application may not be written by you"


class LossReportNotMatched(InvalidInput):
    code = "loss_report_not_matched"
    title = "The details do not match a card"


class CardService(Protocol):
    """Applications, issuance, PINs, loss, renewal, smartphone certificates and the free
    area. Each change is one transaction with its audit record."""

    def apply(self, actor: StaffPrincipal, resident_id: int) -> ApplicationRecord: ...

    def application(self, application_id: str) -> ApplicationRecord: ...

    def card(self, card_id: str) -> CardRecord: ...

    def cards_of(self, resident_id: int) -> Sequence[CardRecord]: ...

    def report_lost(self, identifier: str, name_kana: str, birth_date: dt.date,
                    channel: str = ...) -> LossReport: ...

    def suspend(self, actor: StaffPrincipal, card_id: str) -> LossReport: ...

    def free_area(self, card_id: str) -> Sequence[FreeAreaEntry]: ...

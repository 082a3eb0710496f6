"""What the card context offers the web layer, the CLI and other contexts: value types, the
service protocol and the card's errors. Other contexts import this module, never ``models``."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.chip import FailedPinEvent, PinKind, VirtualCard
from mynumber.errors import Conflict, Forbidden, InvalidInput, NotFound
from mynumber.registry.interfaces import (
    IdentityDocument,
    NumberConfirmation,
    ResidentRecord,
    VerificationRecord,
)


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
    #: 受付番号: this report's reference (recorded with the report's audit event), for the
    #: police's 遺失届 and the counter's reissue. Not a card id, not a certificate serial.
    reference: str = ""


@dataclass(frozen=True)
class CardHolderDetails:
    """How a person reporting a loss names the card without its card id, as the 個人番号カード
    コールセンター asks: what the holder knows and the card face shows. The 氏名 (フリガナ) and the
    date of birth, with the address, or the 個人番号 (printed on the back), or both; every item
    given must match one and only one holder. The 個人番号 stays out of ``repr``."""

    name_kana: str
    birth_date: dt.date
    address: str = ""
    individual_number: str = field(default="", repr=False)


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


class RegistryForCards(Protocol):
    """The part of the registry service the card context uses (and the counter's pages ask
    for a staff member's access to a card's holder)."""

    def get_resident(
        self, actor: StaffPrincipal, resident_id: int, reason: str
    ) -> ResidentRecord: ...

    def verify_identity(
        self, actor: StaffPrincipal, resident_id: int, purpose: str, presented_number: str,
        number_confirmation: NumberConfirmation, documents: Sequence[IdentityDocument],
    ) -> VerificationRecord: ...

    def verifications(
        self, actor: StaffPrincipal, resident_id: int
    ) -> list[VerificationRecord]: ...

    def find_by_number(
        self, actor: StaffPrincipal, individual_number: str, reason: str
    ) -> ResidentRecord: ...

    def residents_by_kana_and_birth(
        self, name_kana: str, birth_date: dt.date, limit: int = ...
    ) -> list[ResidentRecord]: ...


class CardService(Protocol):
    """Applications, issuance, PINs, loss, renewal, reissue, smartphone certificates and the
    free area. Each change is one transaction with its audit record; a procedure at the
    counter first verifies the holder's identity through the registry (recorded there).

    The chip (:class:`~mynumber.card.chip.VirtualCard`) is the holder's: the methods that
    return one hand over the card the holder takes home."""

    @property
    def registry(self) -> RegistryForCards:
        """The registry the service asks; the counter's pages and API check a staff member's
        access to a card's holder with its ``get_resident`` (which records the access)."""
        ...

    # -- applications and issuance ------------------------------------------------------------
    def apply(self, actor: StaffPrincipal, resident_id: int) -> ApplicationRecord:
        """交付申請: a numbered, current resident's application with a new 申請書ID.
        CardStateConflict for anyone else."""
        ...

    def application(self, application_id: str) -> ApplicationRecord:
        """InvalidApplicationId (bad format or check digit), ApplicationNotFound."""
        ...

    def applications_of(self, resident_id: int) -> Sequence[ApplicationRecord]: ...

    def issue(
        self, actor: StaffPrincipal, application_id: str, check: IdentityCheck,
        pins: IssuedPins, *, adult_ward: bool = False,
    ) -> tuple[CardRecord, VirtualCard]:
        """交付 at the counter after identity verification (IdentityNotVerified): the chip with
        the holder's four PINs (PinRefused), the auth certificate and, from 15 and unless an
        adult ward, the signing certificate. CardStateConflict when already issued."""
        ...

    # -- reads --------------------------------------------------------------------------------
    def card(self, card_id: str) -> CardRecord:
        """CardNotFound; an active card past its expiry reads as expired."""
        ...

    def cards_of(self, resident_id: int) -> Sequence[CardRecord]: ...

    def certificate_status(self, card_id: str) -> CardStatus:
        """The card, its certificates (state, expiry, when renewal opens), its smartphone
        credentials and its free-area applications. Records no access: callers check the
        staff member's access to the holder first (``registry.get_resident``)."""
        ...

    # -- the chip and PINs ----------------------------------------------------------------------
    def record_failed_pin(self, event: FailedPinEvent) -> None:
        """The chip's ``on_failed_pin``: every failed PIN entry leaves an audit record."""
        ...

    def open_card(self, card_id: str) -> VirtualCard:
        """The holder's chip for reads (embedded mode); PIN entries go through
        :meth:`chip_session`."""
        ...

    def chip_session(self, card_id: str) -> contextlib.AbstractContextManager[VirtualCard]:
        """The holder's chip under its lock, saved on exit: parallel PIN entries are each
        counted."""
        ...

    def reset_pin(
        self, actor: StaffPrincipal, card_id: str, pin_kind: PinKind | str, new_pin: str,
        check: IdentityCheck,
    ) -> None:
        """初期化 at the counter: a new PIN on an active card after a fresh identity
        verification."""
        ...

    # -- loss and suspension ------------------------------------------------------------------
    def report_lost(self, identifier: str, name_kana: str, birth_date: dt.date,
                    channel: str = ...) -> LossReport:
        """24-hour loss report: the card id (or 申請書ID), the kana name and the birth date
        must all match (else the same LossReportNotMatched whatever did not); suspends the
        card and revokes its certificates (a smartphone's stay). The report's 受付番号 is
        ``reference``; a card already suspended stays so (a repeat, recorded)."""
        ...

    def report_smartphone_lost(self, identifier: str, name_kana: str, birth_date: dt.date,
                               channel: str = ...) -> LossReport:
        """24-hour report of a lost smartphone, identified like :meth:`report_lost`: revokes
        only the smartphone certificates; the card keeps its state and certificates."""
        ...

    def report_lost_by_holder(self, holder: CardHolderDetails, *, smartphone: bool = False,
                              channel: str = ...) -> LossReport:
        """24-hour report (card or, with ``smartphone``, the phone's certificates) naming the
        card by its holder (:class:`CardHolderDetails`), as the resident's page does: exactly
        one holder must match every item given and hold one active or suspended card; no
        match and several matches give the same LossReportNotMatched and change nothing.
        InvalidInput (field ``address``) when neither the address nor the 個人番号 is given,
        (field ``individual_number``) for a number with a wrong length or check digit.
        Reporting again is harmless: the state stays, nothing is revoked twice, the new
        report gets its own reference."""
        ...

    def suspend(self, actor: StaffPrincipal, card_id: str) -> LossReport:
        """一時利用停止 at the counter: suspend the card, revoke both certificates."""
        ...

    def lift_suspension(
        self, actor: StaffPrincipal, card_id: str, check: IdentityCheck, *,
        signing_password: str | None = None, user_auth_pin: str | None = None,
        adult_ward: bool = False, chip: VirtualCard | None = None,
    ) -> CertificateRenewal:
        """一時利用停止の解除 after identity verification: new keys and certificates (the
        revoked ones stay revoked, old serials linked to the new), then the card is active."""
        ...

    # -- certificates, renewal and reissue ------------------------------------------------------
    def renew_certificates(
        self, actor: StaffPrincipal, card_id: str, check: IdentityCheck, *,
        signing_password: str | None = None, user_auth_pin: str | None = None,
        adult_ward: bool = False, chip: VirtualCard | None = None,
    ) -> CertificateRenewal:
        """電子証明書の発行・更新 on an active card after identity verification: after a move
        or a name change, at 15, or from 3 months before the certificates expire
        (RenewalNotOpen names the day otherwise). ``chip``: the holder's chip when it is not
        the one the card store keeps (the caller saves it)."""
        ...

    def renew(self, actor: StaffPrincipal, card_id: str, check: IdentityCheck,
              pins: IssuedPins, *, adult_ward: bool = False) -> tuple[CardRecord, VirtualCard]:
        """更新: from 3 months before the card expires, a new card; the old one is revoked and
        its serials linked to the new."""
        ...

    def reissue(self, actor: StaffPrincipal, card_id: str, check: IdentityCheck,
                pins: IssuedPins, *, adult_ward: bool = False) -> tuple[CardRecord, VirtualCard]:
        """再交付 of a card reported lost (suspended) or damaged (active): a new card with new
        keys; the old card is revoked, its certificates too, the serials linked."""
        ...

    def end_cards_of(self, resident_id: int, actor: str, reason: str = ...) -> list[str]:
        """The holder died: every active or suspended card ends (失効), and its smartphone
        credentials. Idempotent; the ids of the cards ended now."""
        ...

    # -- smartphone certificates ----------------------------------------------------------------
    def issue_smartphone(
        self, card_id: str, signing_public_key_pem: str, auth_public_key_pem: str,
        proof: bytes,
    ) -> SmartphoneCredential:
        """スマホ用電子証明書 for the phone's own keys, on the card's signature over
        :func:`smartphone_enrolment_message` (IdentityNotVerified otherwise). A phone
        enrolled before is superseded."""
        ...

    def smartphones_of(self, card_id: str) -> Sequence[SmartphoneCredential]: ...

    def revoke_smartphone(self, credential_id: int, actor: str) -> list[int]:
        """Revoke one smartphone credential's certificates on their own (the serials revoked
        now); the card's stay valid."""
        ...

    # -- the free area ----------------------------------------------------------------------------
    def register_app(self, actor: StaffPrincipal, card_id: str, app_id: str,
                     issuer: str | None = None) -> FreeAreaEntry:
        """Write an application of :data:`FREE_AREA_RULES` in the free area, as its rule
        allows (FreeAreaRefused, recorded, otherwise); the issuer is the writing
        municipality."""
        ...

    def free_area(self, card_id: str) -> Sequence[FreeAreaEntry]: ...

    def remove_app(self, actor: StaffPrincipal, card_id: str, app_id: str) -> None:
        """Only the municipality that wrote an application removes it (FreeAreaRefused)."""
        ...

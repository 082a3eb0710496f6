"""What JPKI (公的個人認証サービス) offers other contexts: certificate issuance and revocation,
status (CRL/OCSP), serial linking and relying-party verification. Other contexts import this
module, never ``models``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from mynumber.errors import Conflict, Forbidden, InvalidInput, NotFound
from mynumber.registry.interfaces import SYSTEM, ResidentRecord


class CertificateKind(StrEnum):
    SIGNING = "signing"  # 署名用電子証明書: carries the 4 basic items
    AUTH = "auth"  # 利用者証明用電子証明書: carries none


class Device(StrEnum):
    CARD = "card"
    SMARTPHONE = "smartphone"


class RevocationReason(StrEnum):
    """Why a certificate was revoked (mapped to RFC 5280 reason codes in CRL and OCSP)."""

    LOST = "lost"  # keyCompromise: card lost or stolen (24/7 report)
    BASIC_ITEM_CHANGED = "basic_item_changed"  # affiliationChanged: name/address/… changed
    SUPERSEDED = "superseded"  # renewal or reissue
    CESSATION = "cessation"  # death, moving abroad, holder's request
    DEVICE_REVOKED = "device_revoked"  # a smartphone certificate revoked on its own


class CertificateState(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class IssuedCertificate:
    serial: int
    kind: CertificateKind
    device: Device
    resident_id: int
    issuer_label: str
    not_before: dt.datetime
    not_after: dt.datetime
    pem: str


@dataclass(frozen=True)
class CertificateStanding:
    """A certificate's status as the counter and the card context see it (no PEM)."""

    serial: int
    kind: CertificateKind
    device: Device
    resident_id: int
    state: CertificateState
    issued_at: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    revocation_reason: RevocationReason | None


@dataclass(frozen=True)
class SeedCertificateRequest:
    """One certificate of a seeded card (``mynumber seed``, pooled test keys only)."""

    holder: ResidentRecord
    kind: CertificateKind
    public_key_pem: str
    card_expiry: dt.date


@dataclass(frozen=True)
class RelyingParty:
    id: int
    name: str
    kinds: tuple[CertificateKind, ...]
    active: bool
    # Registered by the platform itself (the portal): administrators cannot retire it.
    system: bool = False


@dataclass(frozen=True)
class SigningVerification:
    """What a relying party learns from a valid signing certificate: the 4 basic items."""

    serial: int
    name: str
    birth_date: str
    sex: str
    address: str


@dataclass(frozen=True)
class AuthVerification:
    """What a relying party learns from a valid auth certificate: a pairwise id, nothing else."""

    pairwise_id: str


@dataclass(frozen=True)
class HolderProof:
    """What the holder presented to a relying party: a certificate and a signature made with
    its key over ``data``. JPKI records a holder as a party's user only on such a proof (it
    checks both), never on a serial the party names."""

    certificate_pem: str
    data: bytes
    signature: bytes = field(repr=False)


@dataclass(frozen=True)
class UserChallenge:
    """Data a relying party has its holder sign to prove, over HTTP, that the holder presented
    the certificate to *this* party just now (bound to the party, valid until ``expires_at``)."""

    challenge: bytes
    expires_at: dt.datetime


@dataclass(frozen=True)
class HolderLink:
    """For a relying party that is also an agency of the network (the portal): its pairwise id
    for the holder, a one-time 取得番号 for the agency's 機関別符号, and the municipality the
    holder lives in, and the holder's name. Neither the 個人番号 nor a certificate serial is
    in it."""

    pairwise_id: str
    acquisition_number: str
    municipality_code: str
    #: The holder's name, for the portal to greet the holder by (the holder's own; it is shown
    #: to no one else).
    display_name: str = ""


# --- errors ------------------------------------------------------------------------------


class CertificateNotFound(NotFound):
    code = "certificate_not_found"
    title = "Certificate not found"


class CertificateRefused(InvalidInput):
    code = "certificate_refused"
    title = "Certificate cannot be issued"


class VerificationFailed(InvalidInput):
    code = "verification_failed"
    title = "Verification failed"


class RelyingPartyNotRegistered(Forbidden):
    code = "relying_party_not_registered"
    title = "Not a registered relying party"


class AlreadyRevoked(Conflict):
    code = "already_revoked"
    title = "Certificate already revoked"


class RelyingPartyNotFound(NotFound):
    code = "relying_party_not_found"
    title = "Relying party not found"


class SystemRelyingParty(Conflict):
    """The platform's own relying party (the portal's card login) cannot be retired by an
    administrator: retiring it would stop card login for everyone."""

    code = "system_relying_party"
    title = "The platform's own relying party cannot be retired"


class JpkiService(Protocol):
    """Issuance, revocation and status. Each change is one transaction with its audit record."""

    def issue_certificate(
        self, resident_id: int, kind: CertificateKind, public_key_pem: str,
        card_expiry: dt.date, device: Device = Device.CARD, adult_ward: bool = False,
    ) -> IssuedCertificate:
        """Issue a certificate for a key generated on the card (or phone). A signing
        certificate carries the resident's 4 basic items read from the registry; none is issued
        under 15 or to an adult ward (CertificateRefused)."""
        ...

    def revoke(self, serial: int, reason: RevocationReason, actor: str) -> None: ...

    def revoke_for_resident(
        self, resident_id: int, kinds: tuple[CertificateKind, ...], reason: RevocationReason,
        actor: str, device: Device | None = None, *,
        issued_before: dt.datetime | None = None,
    ) -> list[int]:
        """Revoke every good certificate of these kinds (and device), only those issued before
        ``issued_before`` when given; return their serials."""
        ...

    def revoke_for_residents(
        self, issued_before: Mapping[int, dt.datetime], kinds: tuple[CertificateKind, ...],
        reason: RevocationReason, actor: str,
    ) -> list[int]:
        """Many holders at once: each one's good certificates of these kinds issued before
        its moment (registry event delivery); the serials revoked."""
        ...

    def link_serials(self, old_serial: int, new_serial: int) -> None:
        """Record 新旧シリアル番号紐付け on renewal or reissue."""
        ...

    def state(self, serial: int) -> CertificateState: ...

    def standing(self, serial: int) -> CertificateStanding:
        """State, validity and revocation of one certificate (CertificateNotFound)."""
        ...

    def basic_items_current(self, serial: int) -> bool:
        """Whether a signing certificate still carries its holder's current 4 basic items
        (False after a move or a name change the registry recorded)."""
        ...

    def ca_chain_pem(self, kind: CertificateKind) -> str:
        """Issuing CA first, root last."""
        ...

    def register_relying_party(
        self, name: str, kinds: tuple[CertificateKind, ...], *, system: bool = False
    ) -> RelyingParty:
        """署名検証者 / 利用者証明検証者: registered before it may verify. ``system`` marks
        the platform's own relying party (the portal), which administrators cannot retire."""
        ...

    def retire_relying_party(self, relying_party_id: int, actor: str = SYSTEM.actor, *,
                             allow_system: bool = False) -> None:
        """End a registration. A system relying party is refused (SystemRelyingParty) unless
        ``allow_system``, which only its owner uses, to retire its own duplicate."""
        ...

    def reactivate_relying_party(self, relying_party_id: int, actor: str) -> None:
        """Undo a retirement (RelyingPartyNotFound for an unknown id; idempotent)."""
        ...

    def relying_party(self, relying_party_id: int) -> RelyingParty:
        """Raise RelyingPartyNotRegistered unless registered and active."""
        ...

    def basic_items(self, relying_party_id: int, serial: int) -> SigningVerification:
        """For a registered signature verifier: the 4 basic items of a signing certificate.
        In-process only, for the verification library once it has verified the holder's
        signature with that certificate; no HTTP route takes a serial to it."""
        ...

    def pairwise_id(self, relying_party_id: int, serial: int) -> str:
        """For a registered auth verifier: a stable identifier of the holder, different for
        every relying party, never the serial (derived from the holder, so renewal keeps it).
        In-process only, like :meth:`basic_items`."""
        ...

    def record_user(self, relying_party_id: int, proof: HolderProof) -> None:
        """Remember that this relying party has the holder as a user, on the holder's proof:
        a certificate JPKI issued, good now, and a valid signature by its key over
        ``proof.data`` (VerificationFailed otherwise; nothing is recorded)."""
        ...

    def link_for_certificate(
        self, relying_party_id: int, agency_id: str, serial: int
    ) -> HolderLink:
        """For an auth verifier that is the network agency ``agency_id``: the holder of a good
        user-authentication certificate (already verified by the caller) linked to a 取得番号
        issued by the registry for that agency (利用者登録 at the portal)."""
        ...

    def link_for_resident(
        self, relying_party_id: int, agency_id: str, resident_id: int, actor: str
    ) -> HolderLink:
        """The same for a resident identified at the counter (``actor`` names the staff), who
        may hold no card at all (a child, an adult ward): proxies are registered this way."""
        ...

    def residents_with_good_auth_certificate(self, resident_ids: Sequence[int]) -> set[int]:
        """Which of these residents hold a user-authentication certificate (card or
        smartphone) that is good now: not revoked and within its validity (one query)."""
        ...

    def current_serial(self, relying_party_id: int, old_serial: int) -> int | None:
        """新旧シリアル番号紐付けサービス: the holder's current serial of the same kind, only for
        a registered relying party and only for a holder it has recorded as its user."""
        ...

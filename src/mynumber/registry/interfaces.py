"""What the registry offers other contexts and the web layer: value types, the service
protocols and the registry's errors. Other contexts import this module, never ``models``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.errors import Conflict, Forbidden, InvalidInput, NotFound


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


class ResidentStatus(StrEnum):
    RESIDENT = "resident"
    MOVED_OUT = "moved_out"
    DECEASED = "deceased"


class LifeEventKind(StrEnum):
    BIRTH = "birth"
    MOVE_IN = "move_in"
    MOVE_OUT = "move_out"
    NAME_CHANGE = "name_change"
    ADDRESS_CHANGE = "address_change"
    DEATH = "death"
    CORRECTION = "correction"
    NUMBER_REISSUE = "number_reissue"
    IMPORT = "import"


class LetterStatus(StrEnum):
    CREATED = "created"
    SENT = "sent"
    DELIVERED = "delivered"
    RETURNED = "returned"
    HELD = "held"
    HANDED_OVER = "handed_over"
    DISCARDED = "discarded"


class AssuranceLevel(StrEnum):
    """Identity assurance of a counter verification (cf. NIST SP 800-63A IAL1-3)."""

    LOW = "low"
    SUBSTANTIAL = "substantial"
    HIGH = "high"


class NumberConfirmation(StrEnum):
    """How the number itself was confirmed (番号確認)."""

    CARD = "individual_number_card"
    NOTIFICATION_LETTER = "notification_letter"
    RESIDENT_RECORD = "resident_record_with_number"


class IdentityDocument(StrEnum):
    """Documents accepted for 身元(実在)確認 (番号法施行規則 第1条・第2条)."""

    INDIVIDUAL_NUMBER_CARD = "individual_number_card"
    DRIVERS_LICENSE = "drivers_license"
    PASSPORT = "passport"
    RESIDENCE_CARD = "residence_card"
    HEALTH_INSURANCE_CARD = "health_insurance_card"
    PENSION_BOOK = "pension_book"
    OTHER_PHOTO_ID = "other_photo_id"
    OTHER_NON_PHOTO = "other_non_photo"


# The registry's own actor for system work (imports, other contexts' reads); id 0 sees every
# municipality. Staff principals come from mynumber.auth.
SYSTEM = StaffPrincipal(0, "system", "system", "000000", StaffRole.ADMIN)


@dataclass(frozen=True)
class BasicFourItems:
    """基本4情報: the only basis on which records may be linked (all four, normalised)."""

    name: str
    name_kana: str
    birth_date: dt.date
    sex: Sex
    address: str


@dataclass(frozen=True)
class NewResident:
    """What a birth or a first move-in registers."""

    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: dt.date
    sex: Sex
    municipality_code: str
    address: str
    postal_code: str = ""
    household_id: int | None = None
    relationship: str = "世帯主"
    nationality: str = "JP"
    residence_status: str = ""


@dataclass(frozen=True)
class ResidentRecord:
    id: int
    resident_code: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: dt.date
    sex: Sex
    municipality_code: str
    address: str
    postal_code: str
    household_id: int | None
    relationship: str
    nationality: str
    residence_status: str
    status: ResidentStatus
    destination_municipality_code: str | None
    numbered: bool

    @property
    def name(self) -> str:
        return f"{self.family_name} {self.given_name}"

    @property
    def name_kana(self) -> str:
        return f"{self.family_name_kana} {self.given_name_kana}"

    def basic_four(self) -> BasicFourItems:
        return BasicFourItems(self.name, self.name_kana, self.birth_date, self.sex, self.address)


@dataclass(frozen=True)
class LifeEventRecord:
    id: int
    resident_id: int
    kind: LifeEventKind
    occurred_on: dt.date
    recorded_at: dt.datetime
    municipality_code: str
    actor: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LetterRecord:
    id: int
    resident_id: int
    number_generation: int
    status: LetterStatus
    created_at: dt.datetime
    status_changed_at: dt.datetime
    hold_until: dt.date | None
    history: list[dict[str, Any]]


@dataclass(frozen=True)
class VerificationRecord:
    id: int
    resident_id: int
    staff_id: int
    purpose: str
    number_confirmation: NumberConfirmation
    identity_documents: list[IdentityDocument]
    assurance_level: AssuranceLevel
    number_matched: bool
    verified_at: dt.datetime


#: Every life event is published as ``registry.resident.<kind>`` (mynumber.kernel.events).
EVENT_PREFIX = "registry.resident."


def every_resident(
    residents_by_ids: Callable[[Sequence[int]], dict[int, ResidentRecord]], *,
    chunk: int = 1000, empty_chunks: int = 20,
) -> Iterator[list[ResidentRecord]]:
    """Every record the registry holds (current and removed), in chunks of consecutive ids,
    read through its bulk read; stops after ``empty_chunks`` chunks in a row hold nobody. For
    a copy that starts after its residents (an initial load, a backfill)."""
    empty, start = 0, 1
    while empty < empty_chunks:
        found = residents_by_ids(list(range(start, start + chunk)))
        start += chunk
        if not found:
            empty += 1
            continue
        empty = 0
        yield list(found.values())


def event_type(kind: LifeEventKind) -> str:
    return EVENT_PREFIX + LifeEventKind(kind).value


def event_payload(
    kind: LifeEventKind, resident_id: int, resident_code: str, occurred_on: dt.date,
    municipality_code: str, household_id: int | None, status: str, *,
    basic_four_changed: bool, previous_municipality_code: str | None = None,
    abroad: bool = False,
) -> dict[str, Any]:
    """The payload of a registry event (docs/events.md). It names the resident and what kind
    of change happened, never the new values and never the 個人番号: a subscriber reads the
    resident's *current* state through this interface, so an event delivered twice or late
    applies nothing stale."""
    return {
        "resident_id": resident_id, "resident_code": resident_code,
        "kind": LifeEventKind(kind).value, "occurred_on": occurred_on.isoformat(),
        "municipality_code": municipality_code,
        "previous_municipality_code": previous_municipality_code,
        "household_id": household_id, "status": status,
        "basic_four_changed": basic_four_changed, "abroad": abroad,
    }


@dataclass(frozen=True)
class RegistryChange:
    """A registry event's payload, typed (``RegistryChange.of(event.payload)``)."""

    kind: LifeEventKind
    resident_id: int
    resident_code: str
    basic_four_changed: bool
    occurred_on: dt.date
    municipality_code: str = ""
    previous_municipality_code: str | None = None
    household_id: int | None = None
    status: ResidentStatus = ResidentStatus.RESIDENT
    abroad: bool = False

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> RegistryChange:
        return cls(
            LifeEventKind(payload["kind"]), int(payload["resident_id"]),
            str(payload["resident_code"]), bool(payload.get("basic_four_changed")),
            dt.date.fromisoformat(payload["occurred_on"]),
            str(payload.get("municipality_code") or ""),
            payload.get("previous_municipality_code"), payload.get("household_id"),
            ResidentStatus(payload.get("status") or ResidentStatus.RESIDENT.value),
            bool(payload.get("abroad")),
        )


# --- errors -------------------------------------------------------------------------------


class UnknownMunicipality(NotFound):
    code = "unknown_municipality"
    title = "Unknown municipality"


class ResidentNotFound(NotFound):
    code = "resident_not_found"
    title = "Resident not found"


class InvalidResidentData(InvalidInput):
    code = "invalid_resident_data"
    title = "Invalid resident data"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "Not allowed in the record's current state"


class OutsideJurisdiction(Forbidden):
    code = "outside_jurisdiction"
    title = "Resident is registered in another municipality"


class RoleRequired(Forbidden):
    code = "role_required"
    title = "Your role does not allow this"


@dataclass(frozen=True)
class MunicipalityRecord:
    code: str  # 6-digit 全国地方公共団体コード
    prefecture: str
    name: str
    kind: str  # prefecture, designated_city, ward, city, special_ward, town, village


@dataclass(frozen=True)
class AcquisitionGrant:
    """A 取得番号 issued for a resident identified by other means than the number (a JPKI
    certificate, or staff at the counter), with the municipality the resident lives in (so
    the agency knows which mayor holds the resident's 住民票関係情報)."""

    acquisition_number: str
    municipality_code: str


class AcquisitionNumberInvalid(Forbidden):
    code = "acquisition_number_invalid"
    title = "Acquisition number not valid"


# --- protocols ----------------------------------------------------------------------------


class RegistryService(Protocol):
    """Life events, numbering, letters and identity verification. Each method is one
    transaction with its audit record; listeners hear of a change only after it commits."""

    def register_birth(
        self, actor: StaffPrincipal, resident: NewResident, occurred_on: dt.date
    ) -> ResidentRecord: ...

    def register_move_in(
        self,
        actor: StaffPrincipal,
        resident: NewResident,
        occurred_on: dt.date,
        resident_code: str | None = None,
    ) -> ResidentRecord:
        """A first registration (from abroad) when ``resident_code`` is None; otherwise the
        person moving in from another municipality keeps their code and number."""
        ...

    def register_move_out(
        self, actor: StaffPrincipal, resident_id: int, destination_code: str | None,
        occurred_on: dt.date,
    ) -> ResidentRecord: ...

    def change_name(
        self, actor: StaffPrincipal, resident_id: int, family_name: str, given_name: str,
        family_name_kana: str, given_name_kana: str, occurred_on: dt.date,
    ) -> ResidentRecord: ...

    def change_address(
        self, actor: StaffPrincipal, resident_id: int, address: str, postal_code: str,
        occurred_on: dt.date,
    ) -> ResidentRecord: ...

    def register_death(
        self, actor: StaffPrincipal, resident_id: int, occurred_on: dt.date
    ) -> ResidentRecord: ...

    def correct(
        self, actor: StaffPrincipal, resident_id: int, changes: dict[str, str], reason: str
    ) -> ResidentRecord: ...

    def reissue_number(
        self, actor: StaffPrincipal, resident_id: int, reason: str
    ) -> ResidentRecord:
        """Replace a leaked number with one that differs from every number ever issued."""
        ...

    def get_resident(
        self, actor: StaffPrincipal, resident_id: int, reason: str
    ) -> ResidentRecord:
        """Read a record; every read is recorded with who and why."""
        ...

    def history(
        self, actor: StaffPrincipal, resident_id: int
    ) -> Sequence[LifeEventRecord]: ...

    def search(
        self, actor: StaffPrincipal, query: str, limit: int = 50
    ) -> Sequence[ResidentRecord]: ...

    def find_by_number(
        self, actor: StaffPrincipal, individual_number: str, reason: str
    ) -> ResidentRecord: ...

    def reveal_number(self, actor: StaffPrincipal, resident_id: int, reason: str) -> str: ...

    def letters(self, actor: StaffPrincipal, resident_id: int) -> list[LetterRecord]: ...

    def update_letter(
        self, actor: StaffPrincipal, letter_id: int, status: LetterStatus,
        verification_id: int | None = None,
    ) -> LetterRecord:
        """Move a 個人番号通知書 along created -> sent -> delivered | returned -> held ->
        handed_over | discarded; handing over needs a matching identity verification."""
        ...

    def verify_identity(
        self, actor: StaffPrincipal, resident_id: int, purpose: str, presented_number: str,
        number_confirmation: NumberConfirmation, documents: Sequence[IdentityDocument],
    ) -> VerificationRecord:
        """本人確認 (番号法 第16条): record number confirmation + identity documents and the
        assurance level they give; refuses too few documents."""
        ...

    def verifications(
        self, actor: StaffPrincipal, resident_id: int
    ) -> list[VerificationRecord]: ...

    def residents_by_ids(self, resident_ids: Sequence[int]) -> dict[int, ResidentRecord]:
        """System read for event subscribers: the current records of these residents (any
        status; unknown ids are left out). No staff actor: only wiring hands it out."""
        ...

    def residents_by_kana_and_birth(
        self, name_kana: str, birth_date: dt.date, limit: int = 20
    ) -> list[ResidentRecord]:
        """System read for the card context's 24-hour loss reports, which name the holder as
        the card face does: every record (any status), at most ``limit``, whose normalised
        kana reading (``codes.kana.normalize_kana``, spaces ignored) and date of birth are
        these, in id order. A reading that normalises to nothing finds nobody. Not audited
        here: the caller records what it does with the answer."""
        ...

    def household_members(self, household_ids: Sequence[int]) -> dict[int, list[ResidentRecord]]:
        """System read for event subscribers: the residents (status 'resident') of each
        household."""
        ...

    def municipalities(self) -> list[MunicipalityRecord]:
        """Every 地方公共団体 the registry knows (prefectures, cities, wards, towns, villages)."""
        ...

    def municipality_exists(self, code: str) -> bool:
        """Whether the registry knows this 6-digit code (staff sign-in checks accounts)."""
        ...

    def issue_acquisition_number(self, agency_id: str, individual_number: str) -> str:
        """An agency that lawfully holds a person's number exchanges it for a one-time
        取得番号, valid for ``ACQUISITION_TTL`` and only for that agency. The agency then
        presents it to the network for its 機関別符号 and keeps only the code."""
        ...

    def redeem_acquisition_number(self, agency_id: str, acquisition_number: str) -> str:
        """For the network core only: the 住民票コード behind a 取得番号, once. A used,
        expired, unknown or other agency's 取得番号 raises AcquisitionNumberInvalid."""
        ...

    def redeem_acquisition_numbers(
        self, agency_id: str, acquisition_numbers: Sequence[str]
    ) -> list[str]:
        """Bulk form, in order, in one transaction: all redeemed or none."""
        ...

    def acquisition_numbers_for_residents(
        self, agency_id: str, resident_ids: Sequence[int]
    ) -> dict[int, str]:
        """Seeding only (refused in production): 取得番号 for residents of the synthetic
        population that the agency is taken to already know."""
        ...

    def issue_acquisition_number_for_resident(
        self, agency_id: str, resident_id: int, actor: str
    ) -> AcquisitionGrant:
        """A 取得番号 for a current resident identified without the number: by JPKI from a
        verified certificate, or by counter staff who verified identity. ``actor`` is recorded
        (e.g. ``jpki:certificate:123``, ``staff:7``). Non-current residents are refused."""
        ...

    def number_for_purpose(self, resident_id: int, purpose: str, actor: str) -> str | None:
        """System read of a current resident's 個人番号 for a named purpose that the law
        permits another context to serve (e.g. ``deposit_numbering:<bank code>``: 預貯金口座付番
        with the person's consent), audited (``registry:number:provide`` with ``actor`` and
        ``purpose``, never the number). None when the person is not a current resident, has
        no number yet, or this process holds no numbering keys (the ``portal`` role)."""
        ...

    def resident_ids_for_codes(self, resident_codes: Sequence[str]) -> dict[str, int]:
        """System read for a context that holds 住民票コード it obtained lawfully (an insurer's
        links, by 住基ネット's four-item search): the registry's id of each code's resident (any
        status; unknown codes are left out). No staff actor: only wiring hands it out."""
        ...

    def resident_for_number(self, individual_number: str, purpose: str,
                            actor: str) -> tuple[int, str] | None:
        """System look-up of the current resident a 個人番号 given by the person names, for a
        named purpose another context serves by law (e.g. ``health_insurance_link:<insurer>``:
        an insurer checking the number the insured person gave, 番号法第14条): the resident
        id and the 住民票コード, or None when the number is malformed, not issued, replaced,
        or its holder is not a current resident (one answer for all: nothing tells them
        apart). Audited (``registry:number:resolve`` with ``actor``, ``purpose`` and whether
        it was found, never the number); the number is neither stored nor logged."""
        ...

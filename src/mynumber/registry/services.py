"""Registry services: every state change is one method, one transaction, with its audit
record inside it; listeners hear of a change only after the transaction commits."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from importlib import resources
from typing import Any, cast

from sqlalchemy import Table, func, insert, or_, select, update
from sqlalchemy.orm import Session

from mynumber import audit
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.codes import individual_number, kana, local_government_code, resident_code
from mynumber.codes.exceptions import ValidationError
from mynumber.db import Databases, in_chunk, one_of, utcnow
from mynumber.kernel.events import Outbox
from mynumber.registry import models as m
from mynumber.registry.interfaces import (
    AcquisitionGrant,
    AcquisitionNumberInvalid,
    AssuranceLevel,
    IdentityDocument,
    InvalidResidentData,
    InvalidTransition,
    LetterRecord,
    LetterStatus,
    LifeEventKind,
    LifeEventRecord,
    MunicipalityRecord,
    NewResident,
    NumberConfirmation,
    OutsideJurisdiction,
    RegistryService,
    ResidentNotFound,
    ResidentRecord,
    ResidentStatus,
    RoleRequired,
    Sex,
    UnknownMunicipality,
    VerificationRecord,
    event_payload,
    event_type,
)
from mynumber.registry.numbering import NoNumbering, Numbering

CONTEXT = "registry"
_PUBLISHED = "mynumber.outbox.published"
MAX_NUMBER_GENERATIONS = 1000
NUMBER_NOT_FOUND = "no resident has this individual number"
# Returned letters are held at the office for three months, then discarded (運用通知).
LETTER_HOLD_DAYS = 90
# A 取得番号 is for immediate use by the agency's system that asked for it.
ACQUISITION_TTL = dt.timedelta(minutes=10)

LETTER_TRANSITIONS: dict[LetterStatus, set[LetterStatus]] = {
    LetterStatus.CREATED: {LetterStatus.SENT},
    LetterStatus.SENT: {LetterStatus.DELIVERED, LetterStatus.RETURNED},
    LetterStatus.RETURNED: {LetterStatus.HELD, LetterStatus.SENT},
    LetterStatus.HELD: {LetterStatus.HANDED_OVER, LetterStatus.DISCARDED},
    LetterStatus.DELIVERED: set(),
    LetterStatus.HANDED_OVER: set(),
    LetterStatus.DISCARDED: set(),
}

CORRECTABLE_FIELDS = {
    "family_name", "given_name", "family_name_kana", "given_name_kana", "birth_date", "sex",
    "address", "postal_code", "relationship", "nationality", "residence_status",
}
BASIC_FOUR_FIELDS = {
    "family_name", "given_name", "family_name_kana", "given_name_kana", "birth_date", "sex",
    "address",
}
NAME_MAX = 40
KANA_MAX = 80
ADDRESS_MAX = 200


def load_municipality_rows() -> list[dict[str, str]]:
    """All current 地方公共団体 (see registry/data/README.md for source and date)."""
    text = resources.files("mynumber.registry").joinpath("data/municipalities.csv").read_text(
        encoding="utf-8"
    )
    return list(csv.DictReader(text.splitlines()))


def to_record(row: Any) -> ResidentRecord:
    """The record of an ORM row or of a plain row of ``_RECORD_COLUMNS``."""
    return ResidentRecord(
        id=row.id,
        resident_code=row.resident_code,
        family_name=row.family_name,
        given_name=row.given_name,
        family_name_kana=row.family_name_kana,
        given_name_kana=row.given_name_kana,
        birth_date=row.birth_date,
        sex=Sex(row.sex),
        municipality_code=row.municipality_code,
        address=row.address,
        postal_code=row.postal_code,
        household_id=row.household_id,
        relationship=row.relationship,
        nationality=row.nationality,
        residence_status=row.residence_status,
        status=ResidentStatus(row.status),
        destination_municipality_code=row.destination_municipality_code,
        numbered=row.number_generation is not None,
    )


_RESIDENTS = cast(Table, m.Resident.__table__)
_RECORD_COLUMNS = tuple(_RESIDENTS.c[name] for name in (
    "id", "resident_code", "family_name", "given_name", "family_name_kana", "given_name_kana",
    "birth_date", "sex", "municipality_code", "address", "postal_code", "household_id",
    "relationship", "nationality", "residence_status", "status",
    "destination_municipality_code", "number_generation"))


# Separators people type inside numbers: every space and dash (any width), the minus sign
# and the long-vowel marks IMEs produce for "-" (ー, ｰ).
_NUMBER_SEPARATORS = frozenset("\u2212\u30fc\uff70")


def search_digits(query: str) -> str | None:
    """The ASCII digits of a search text that is only digits and separators once normalised
    (NFKC, so full-width digits count), or None for a name search."""
    text = unicodedata.normalize("NFKC", query)
    kept = [c for c in text
            if unicodedata.category(c) not in ("Zs", "Pd") and c not in _NUMBER_SEPARATORS]
    if not kept or not all(c.isdecimal() for c in kept):
        return None
    return "".join(str(unicodedata.decimal(c)) for c in kept)


def kana_key(family_kana: str, given_kana: str) -> str:
    return kana.normalize_kana(family_kana + given_kana)


def _require_text(field: str, value: str, maximum: int) -> str:
    value = (value or "").strip()
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidResidentData(f"{field} contains control characters", field=field)
    if not value:
        raise InvalidResidentData(f"{field} is required", field=field)
    if len(value) > maximum:
        raise InvalidResidentData(f"{field} is longer than {maximum} characters", field=field)
    return value


def to_katakana(value: str) -> str:
    """Full-width katakana for a reading typed in hiragana or half-width katakana."""
    value = unicodedata.normalize("NFKC", value)
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in value)


def is_katakana(value: str) -> bool:
    return bool(value) and all(
        "\u30a1" <= c <= "\u30fa" or c in "ー・ 　ヽヾ" for c in value
    )


def _require_kana(field: str, value: str) -> str:
    value = to_katakana(_require_text(field, value, KANA_MAX))
    if not is_katakana(value):
        raise InvalidResidentData(f"{field} must be written in kana", field=field)
    return value


def validate_new_resident(resident: NewResident, today: dt.date) -> NewResident:
    """Check a registration; raise InvalidResidentData naming the first bad field."""
    if resident.birth_date > today:
        raise InvalidResidentData("birth_date is in the future", field="birth_date")
    if resident.birth_date < dt.date(1880, 1, 1):
        raise InvalidResidentData("birth_date is before 1880", field="birth_date")
    try:
        sex = Sex(resident.sex)
    except ValueError:
        raise InvalidResidentData("sex must be 'male' or 'female'", field="sex") from None
    nationality = (resident.nationality or "").strip().upper()
    if len(nationality) != 2 or not nationality.isascii() or not nationality.isalpha():
        raise InvalidResidentData(
            "nationality must be an ISO 3166-1 alpha-2 code", field="nationality"
        )
    if nationality != "JP" and not resident.residence_status.strip():
        raise InvalidResidentData(
            "a foreign resident needs a residence_status (在留資格)", field="residence_status"
        )
    postal = resident.postal_code.replace("-", "").strip()
    if postal and (len(postal) != 7 or not postal.isdigit()):
        raise InvalidResidentData("postal_code must have 7 digits", field="postal_code")
    try:
        code = local_government_code.compact(resident.municipality_code)
        local_government_code.validate(code)
    except ValidationError as exc:
        raise InvalidResidentData(
            f"municipality_code: {exc}", field="municipality_code"
        ) from None
    return replace(
        resident,
        family_name=_require_text("family_name", resident.family_name, NAME_MAX),
        given_name=_require_text("given_name", resident.given_name, NAME_MAX),
        family_name_kana=_require_kana("family_name_kana", resident.family_name_kana),
        given_name_kana=_require_kana("given_name_kana", resident.given_name_kana),
        address=_require_text("address", resident.address, ADDRESS_MAX),
        sex=sex,
        nationality=nationality,
        postal_code=postal,
        municipality_code=code,
        relationship=_require_text("relationship", resident.relationship or "世帯主", 20),
    )


class _Refusal:
    """Marks a refusal that leaves an audit record although its transaction rolls back."""

    actor: str
    subject: str
    municipality: str


class _OutsideJurisdiction(OutsideJurisdiction, _Refusal):
    def __init__(self, detail: str, *, actor: StaffPrincipal, subject: str,
                 field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.actor, self.subject = actor.actor, subject
        self.municipality = actor.municipality_code


class _NumberOutsideJurisdiction(ResidentNotFound, _Refusal):
    """A look-up by number outside the actor's municipality answers exactly as "not found"
    (status, code, detail): a 403 would tell that the number is issued."""

    def __init__(self, detail: str, *, actor: StaffPrincipal, subject: str,
                 field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.actor, self.subject = actor.actor, subject
        self.municipality = actor.municipality_code


class RegistryServiceImpl:
    """The registry, backed by the ``registry`` database."""

    def __init__(
        self, databases: Databases, numbering: Numbering, *, seeding_allowed: bool = False
    ) -> None:
        self.databases = databases
        self.numbering = numbering
        self.seeding_allowed = seeding_allowed
        #: Every life event is published here, in the transaction that records it.
        self.outbox = Outbox(databases, CONTEXT, m.outbox_events, m.outbox_checkpoints)
        #: Set by wiring (permit_own_residents): the mayor agency of a municipality code.
        self._mayor_of: Callable[[str], str | None] | None = None

    # -- plumbing -------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        try:
            with self.databases.unit_of_work(CONTEXT) as session:
                yield session
        except Exception as exc:
            if isinstance(exc, _Refusal):
                self._audit_refusal(exc)
            raise
        if session.info.get(_PUBLISHED):
            # Committed: the in-process dispatcher delivers now rather than at its next poll.
            self.outbox.committed()

    def _audit(
        self, session: Session, tag: str, actor: StaffPrincipal, subject: str,
        reason: str | None = None, **details: Any,
    ) -> None:
        audit.record(
            session, m.AuditEvent, tag, actor=actor.actor, subject=subject, reason=reason,
            **details,
        )

    def _audit_refusal(self, refusal: _Refusal) -> None:
        # Its own transaction: the refused action's transaction has rolled back, and a
        # refusal must leave a trace all the same.
        with self.databases.unit_of_work(CONTEXT) as session:
            audit.record(session, m.AuditEvent, "registry:jurisdiction:refused",
                         actor=refusal.actor, subject=refusal.subject,
                         municipality=refusal.municipality)

    def _event(
        self, session: Session, row: m.Resident, kind: LifeEventKind, occurred_on: dt.date,
        actor: StaffPrincipal, *, basic_four_changed: bool = False,
        previous_municipality_code: str | None = None, **details: Any,
    ) -> None:
        """Record a life event and publish it (same transaction) for the other contexts."""
        session.add(
            m.LifeEvent(
                resident_id=row.id, kind=kind.value, occurred_on=occurred_on,
                municipality_code=actor.municipality_code if actor.id else row.municipality_code,
                actor=actor.actor, details=details,
            )
        )
        self._audit(session, f"registry:resident:{kind.value}", actor, f"resident:{row.id}")
        session.flush()  # the household id of a new resident
        self.outbox.publish(session, event_type(kind), f"resident:{row.id}", event_payload(
            kind, row.id, row.resident_code, occurred_on, row.municipality_code, row.household_id,
            row.status, basic_four_changed=basic_four_changed,
            previous_municipality_code=previous_municipality_code,
            abroad=kind is LifeEventKind.MOVE_OUT and row.destination_municipality_code is None))
        session.info[_PUBLISHED] = True

    def _municipality(self, session: Session, code: str) -> m.Municipality:
        try:
            code = local_government_code.compact(code)
            local_government_code.validate(code)
        except ValidationError as exc:
            raise InvalidResidentData(
                f"municipality_code: {exc}", field="municipality_code"
            ) from None
        muni = session.get(m.Municipality, code)
        if muni is None:
            raise UnknownMunicipality(
                "no municipality has this code", field="municipality_code"
            )
        return muni

    def _load(
        self, session: Session, actor: StaffPrincipal, resident_id: int, *, lock: bool = False
    ) -> m.Resident:
        stmt = select(m.Resident).where(m.Resident.id == resident_id)
        if lock:
            stmt = stmt.with_for_update()
        row = session.scalars(stmt).first()
        if row is None:
            raise ResidentNotFound("no resident with this id")
        self._check_jurisdiction(actor, row)
        return row

    @staticmethod
    def _check_jurisdiction(actor: StaffPrincipal, row: m.Resident) -> None:
        # A clerk sees only their own municipality's residents (system actions see all).
        if actor.id != 0 and row.municipality_code != actor.municipality_code:
            raise _OutsideJurisdiction("this resident is registered in another municipality",
                                       actor=actor, subject=f"resident:{row.id}")

    @staticmethod
    def _check_registration(actor: StaffPrincipal, muni: m.Municipality) -> None:
        if actor.id != 0 and muni.code != actor.municipality_code:
            raise _OutsideJurisdiction("you can only register residents of your municipality",
                                       actor=actor, subject=f"municipality:{muni.code}")

    @staticmethod
    def _require_role(actor: StaffPrincipal, *roles: StaffRole) -> None:
        if actor.id != 0 and actor.role not in roles:
            raise RoleRequired(f"this needs the role {' or '.join(r.value for r in roles)}")

    @staticmethod
    def _require_status(row: m.Resident, *statuses: ResidentStatus) -> None:
        if ResidentStatus(row.status) not in statuses:
            raise InvalidTransition(f"not allowed while the resident is {row.status}")

    def _allocate_codes(self, session: Session, count: int) -> list[str]:
        # The pool, skipping codes that imported (migrated) residents already hold.
        from mynumber.registry.bulk import allocate_codes

        return allocate_codes(self.numbering, session, count)

    def _issue_number(
        self, session: Session, row: m.Resident, start_generation: int
    ) -> int:
        """Issue the first free number from ``start_generation`` on; return its generation."""
        for generation in range(start_generation, start_generation + MAX_NUMBER_GENERATIONS):
            index = self.numbering.index(
                self.numbering.individual_number(row.resident_code, generation)
            )
            taken = session.scalar(
                select(func.count()).select_from(m.IssuedNumber).where(
                    m.IssuedNumber.number_index == index
                )
            )
            if not taken:
                session.add(
                    m.IssuedNumber(number_index=index, resident_id=row.id, generation=generation)
                )
                row.number_generation = generation
                session.add(
                    m.NotificationLetter(
                        resident_id=row.id, number_generation=generation,
                        municipality_code=row.municipality_code,
                        history=[{"status": "created", "at": utcnow().isoformat()}],
                    )
                )
                return generation
        raise RuntimeError("no free number generation")  # pragma: no cover - 1000 collisions

    def _new_resident(
        self, session: Session, actor: StaffPrincipal, resident: NewResident, today: dt.date
    ) -> m.Resident:
        resident = validate_new_resident(resident, today)
        muni = self._municipality(session, resident.municipality_code)
        self._check_registration(actor, muni)
        household_id = resident.household_id
        if household_id is not None:
            household = session.get(m.Household, household_id)
            if household is None or household.municipality_code != muni.code:
                raise InvalidResidentData(
                    "household_id is not a household of this municipality", field="household_id"
                )
        else:
            household = m.Household(municipality_code=muni.code, address=resident.address)
            session.add(household)
            session.flush()
            household_id = household.id
        (code,) = self._allocate_codes(session, 1)
        row = m.Resident(
            resident_code=code,
            family_name=resident.family_name,
            given_name=resident.given_name,
            family_name_kana=resident.family_name_kana,
            given_name_kana=resident.given_name_kana,
            name_kana_key=kana_key(resident.family_name_kana, resident.given_name_kana),
            birth_date=resident.birth_date,
            sex=resident.sex.value,
            municipality_code=muni.code,
            address=resident.address,
            postal_code=resident.postal_code,
            household_id=household_id,
            relationship=resident.relationship,
            nationality=resident.nationality,
            residence_status=resident.residence_status,
        )
        session.add(row)
        session.flush()
        self._issue_number(session, row, 0)
        return row

    # -- life events ------------------------------------------------------------------------
    def register_birth(
        self, actor: StaffPrincipal, resident: NewResident, occurred_on: dt.date
    ) -> ResidentRecord:
        if occurred_on != resident.birth_date:
            raise InvalidResidentData("a birth happens on the birth date", field="occurred_on")
        with self._transaction() as session:
            row = self._new_resident(session, actor, resident, dt.date.today())
            self._event(session, row, LifeEventKind.BIRTH, occurred_on, actor)
            record = to_record(row)
        return record

    def register_move_in(
        self, actor: StaffPrincipal, resident: NewResident, occurred_on: dt.date,
        resident_code: str | None = None,
    ) -> ResidentRecord:
        with self._transaction() as session:
            if resident_code is None:
                row = self._new_resident(session, actor, resident, dt.date.today())
                self._event(session, row, LifeEventKind.MOVE_IN, occurred_on, actor,
                            origin="abroad")
            else:
                row = self._move_in_existing(session, actor, resident, resident_code,
                                             occurred_on)
            record = to_record(row)
        return record

    def _move_in_existing(
        self, session: Session, actor: StaffPrincipal, resident: NewResident, code: str,
        occurred_on: dt.date,
    ) -> m.Resident:
        try:
            code = resident_code.validate(code)
        except ValidationError as exc:
            raise InvalidResidentData(f"resident_code: {exc}", field="resident_code") from None
        row = session.scalars(
            select(m.Resident).where(m.Resident.resident_code == code).with_for_update()
        ).first()
        if row is None:
            raise ResidentNotFound("no resident has this resident code", field="resident_code")
        self._require_status(row, ResidentStatus.MOVED_OUT)
        muni = self._municipality(session, resident.municipality_code)
        self._check_registration(actor, muni)
        if row.destination_municipality_code not in (None, muni.code):
            raise InvalidTransition(
                "the move-out certificate names another destination municipality",
                field="municipality_code",
            )
        # The 4 basic items must match the move-out certificate except the address.
        if (row.birth_date, row.sex) != (resident.birth_date, Sex(resident.sex).value) or (
            kana_key(row.family_name_kana, row.given_name_kana)
            != kana_key(resident.family_name_kana, resident.given_name_kana)
        ):
            raise InvalidResidentData(
                "name, birth date or sex differ from the record of this resident code",
                field="resident_code",
            )
        address = _require_text("address", resident.address, ADDRESS_MAX)
        household = m.Household(municipality_code=muni.code, address=address)
        session.add(household)
        session.flush()
        before = {"municipality_code": row.municipality_code, "address": row.address}
        row.municipality_code = muni.code
        row.address = address
        row.postal_code = resident.postal_code.replace("-", "")
        row.household_id = household.id
        row.status = ResidentStatus.RESIDENT.value
        row.destination_municipality_code = None
        self._event(session, row, LifeEventKind.MOVE_IN, occurred_on, actor,
                    basic_four_changed=True,
                    previous_municipality_code=before["municipality_code"], before=before,
                    after={"municipality_code": muni.code, "address": address})
        return row

    def register_move_out(
        self, actor: StaffPrincipal, resident_id: int, destination_code: str | None,
        occurred_on: dt.date,
    ) -> ResidentRecord:
        with self._transaction() as session:
            row = self._load(session, actor, resident_id, lock=True)
            self._require_status(row, ResidentStatus.RESIDENT)
            destination = None
            if destination_code:
                destination = self._municipality(session, destination_code).code
                if destination == row.municipality_code:
                    raise InvalidTransition(
                        "a move within the municipality is an address change",
                        field="destination_municipality_code",
                    )
            row.status = ResidentStatus.MOVED_OUT.value
            row.destination_municipality_code = destination
            self._event(session, row, LifeEventKind.MOVE_OUT, occurred_on, actor,
                        destination=destination or "abroad")
            return to_record(row)

    def change_name(
        self, actor: StaffPrincipal, resident_id: int, family_name: str, given_name: str,
        family_name_kana: str, given_name_kana: str, occurred_on: dt.date,
    ) -> ResidentRecord:
        with self._transaction() as session:
            row = self._load(session, actor, resident_id, lock=True)
            self._require_status(row, ResidentStatus.RESIDENT)
            before = {"family_name": row.family_name, "given_name": row.given_name,
                      "family_name_kana": row.family_name_kana,
                      "given_name_kana": row.given_name_kana}
            row.family_name = _require_text("family_name", family_name, NAME_MAX)
            row.given_name = _require_text("given_name", given_name, NAME_MAX)
            row.family_name_kana = _require_kana("family_name_kana", family_name_kana)
            row.given_name_kana = _require_kana("given_name_kana", given_name_kana)
            row.name_kana_key = kana_key(row.family_name_kana, row.given_name_kana)
            after = {"family_name": row.family_name, "given_name": row.given_name,
                     "family_name_kana": row.family_name_kana,
                     "given_name_kana": row.given_name_kana}
            self._event(session, row, LifeEventKind.NAME_CHANGE, occurred_on, actor,
                        basic_four_changed=True, before=before, after=after)
            return to_record(row)

    def change_address(
        self, actor: StaffPrincipal, resident_id: int, address: str, postal_code: str,
        occurred_on: dt.date,
    ) -> ResidentRecord:
        with self._transaction() as session:
            row = self._load(session, actor, resident_id, lock=True)
            self._require_status(row, ResidentStatus.RESIDENT)
            before = {"address": row.address, "postal_code": row.postal_code}
            row.address = _require_text("address", address, ADDRESS_MAX)
            postal = postal_code.replace("-", "").strip()
            if postal and (len(postal) != 7 or not postal.isdigit()):
                raise InvalidResidentData("postal_code must have 7 digits", field="postal_code")
            row.postal_code = postal
            self._event(session, row, LifeEventKind.ADDRESS_CHANGE, occurred_on, actor,
                        basic_four_changed=True, before=before,
                        after={"address": row.address, "postal_code": postal})
            return to_record(row)

    def register_death(
        self, actor: StaffPrincipal, resident_id: int, occurred_on: dt.date
    ) -> ResidentRecord:
        with self._transaction() as session:
            row = self._load(session, actor, resident_id, lock=True)
            self._require_status(row, ResidentStatus.RESIDENT, ResidentStatus.MOVED_OUT)
            if occurred_on < row.birth_date or occurred_on > dt.date.today():
                raise InvalidResidentData(
                    "date of death must be between birth and today", field="occurred_on"
                )
            row.status = ResidentStatus.DECEASED.value
            self._event(session, row, LifeEventKind.DEATH, occurred_on, actor,
                        basic_four_changed=True)
            return to_record(row)

    def correct(
        self, actor: StaffPrincipal, resident_id: int, changes: dict[str, str], reason: str
    ) -> ResidentRecord:
        changes_ = changes
        self._require_role(actor, StaffRole.SUPERVISOR, StaffRole.ADMIN)
        reason = _require_text("reason", reason, 200)
        if not changes_:
            raise InvalidResidentData("no field to correct", field="changes")
        unknown = sorted(set(changes_) - CORRECTABLE_FIELDS)
        if unknown:
            raise InvalidResidentData(f"{unknown[0]} cannot be corrected", field=unknown[0])
        with self._transaction() as session:
            row = self._load(session, actor, resident_id, lock=True)
            current = to_record(row)
            values: dict[str, Any] = {
                k: getattr(current, k) for k in NewResident.__dataclass_fields__
                if hasattr(current, k)
            }
            for key, value in changes_.items():
                if key == "birth_date":
                    try:
                        values[key] = dt.date.fromisoformat(value)
                    except (TypeError, ValueError):
                        raise InvalidResidentData(
                            "birth_date must be YYYY-MM-DD", field="birth_date"
                        ) from None
                else:
                    values[key] = value
            checked = validate_new_resident(NewResident(**values), dt.date.today())
            before = {k: _jsonable(getattr(current, k)) for k in changes_}
            for key in changes_:
                value = getattr(checked, key)
                setattr(row, key, value.value if isinstance(value, Sex) else value)
            row.name_kana_key = kana_key(row.family_name_kana, row.given_name_kana)
            after = {k: _jsonable(getattr(row, k)) for k in changes_}
            self._event(session, row, LifeEventKind.CORRECTION, dt.date.today(), actor,
                        basic_four_changed=bool(set(changes_) & BASIC_FOUR_FIELDS),
                        before=before, after=after, reason=reason)
            return to_record(row)

    def reissue_number(
        self, actor: StaffPrincipal, resident_id: int, reason: str
    ) -> ResidentRecord:
        self._require_role(actor, StaffRole.SUPERVISOR, StaffRole.ADMIN)
        reason = _require_text("reason", reason, 200)
        with self._transaction() as session:
            row = self._load(session, actor, resident_id, lock=True)
            self._require_status(row, ResidentStatus.RESIDENT)
            if row.number_generation is None:
                raise InvalidTransition("this resident has no number yet")
            now = utcnow()
            session.execute(
                update(m.IssuedNumber)
                .where(m.IssuedNumber.resident_id == row.id,
                       m.IssuedNumber.retired_at.is_(None))
                .values(retired_at=now, retire_reason=reason)
            )
            generation = self._issue_number(session, row, row.number_generation + 1)
            self._event(session, row, LifeEventKind.NUMBER_REISSUE, now.date(), actor,
                        generation=generation, reason=reason)
            return to_record(row)

    # -- reads ------------------------------------------------------------------------------
    def get_resident(
        self, actor: StaffPrincipal, resident_id: int, reason: str
    ) -> ResidentRecord:
        reason = _require_text("reason", reason, 200)
        with self._transaction() as session:
            row = self._load(session, actor, resident_id)
            self._audit(session, "registry:resident:read", actor, f"resident:{row.id}",
                        reason=reason)
            return to_record(row)

    def history(self, actor: StaffPrincipal, resident_id: int) -> Sequence[LifeEventRecord]:
        with self._transaction() as session:
            row = self._load(session, actor, resident_id)
            events = session.scalars(
                select(m.LifeEvent).where(m.LifeEvent.resident_id == row.id)
                .order_by(m.LifeEvent.id)
            ).all()
            self._audit(session, "registry:history:read", actor, f"resident:{row.id}")
            return [
                LifeEventRecord(e.id, e.resident_id, LifeEventKind(e.kind), e.occurred_on,
                                e.recorded_at, e.municipality_code, e.actor, e.details)
                for e in events
            ]

    def search(
        self, actor: StaffPrincipal, query: str, limit: int = 50, after: int = 0
    ) -> Sequence[ResidentRecord]:
        """Residents matching the query in id order, at most ``limit``, from after the id
        ``after`` (the next page starts after the last id of the previous one)."""
        query = (query or "").strip()
        if not query:
            raise InvalidResidentData("enter a name, kana or resident code", field="q")
        if len(query) > 80:
            raise InvalidResidentData("the search text is too long", field="q")
        digits = search_digits(query)
        if digits is not None and len(digits) == 12:
            # Never take a 個人番号 through a search box (it would land in URLs and logs),
            # however it is typed: full-width digits, ideographic spaces, any hyphen.
            raise InvalidResidentData(
                "this looks like an individual number: use the look-up by individual number "
                "(POST /api/v1/registry/residents/lookup-by-number, or the number look-up "
                "form at the counter), never the search", field="q"
            )
        limit = max(1, min(limit, 200))
        with self._transaction() as session:
            stmt = select(m.Resident)
            if actor.id != 0:
                stmt = stmt.where(m.Resident.municipality_code == actor.municipality_code)
            if digits is not None and len(digits) == 11:
                stmt = stmt.where(m.Resident.resident_code == digits)
            else:
                key = kana.normalize_kana(query)
                pattern = query.replace(" ", "").replace("　", "")
                stmt = stmt.where(
                    or_(
                        m.Resident.name_kana_key.startswith(key, autoescape=True)
                        if key else m.Resident.id < 0,
                        (m.Resident.family_name + m.Resident.given_name).startswith(
                            pattern, autoescape=True
                        ),
                    )
                )
            if after > 0:
                stmt = stmt.where(m.Resident.id > after)
            rows = session.scalars(stmt.order_by(m.Resident.id).limit(limit)).all()
            self._audit(session, "registry:resident:search", actor, "residents",
                        results=len(rows))
            return [to_record(r) for r in rows]

    def find_by_number(
        self, actor: StaffPrincipal, number: str, reason: str
    ) -> ResidentRecord:
        reason = _require_text("reason", reason, 200)
        try:
            number = individual_number.validate(number)
        except ValidationError as exc:
            raise InvalidResidentData(f"individual_number: {exc}",
                                      field="individual_number") from None
        index = self.numbering.index(number)
        with self._transaction() as session:
            issued = session.scalars(
                select(m.IssuedNumber).where(m.IssuedNumber.number_index == index)
            ).first()
            # The index is a 64-bit MAC: confirm the match by deriving the number of the
            # record found (its 住民票コード and generation) and comparing in constant time.
            # Never return the holder of another number whose index happens to be the same.
            holder = None if issued is None else session.get(m.Resident, issued.resident_id)
            if (
                issued is None or holder is None
                or not hmac.compare_digest(
                    self.numbering.individual_number(holder.resident_code, issued.generation),
                    number,
                )
            ):
                raise ResidentNotFound(NUMBER_NOT_FOUND, field="individual_number")
            if actor.id != 0 and holder.municipality_code != actor.municipality_code:
                # Before the "replaced" answer too: nothing may tell another municipality's
                # number from one never issued. The attempt is audited all the same.
                raise _NumberOutsideJurisdiction(NUMBER_NOT_FOUND, actor=actor,
                                                 subject=f"resident:{holder.id}",
                                                 field="individual_number")
            if issued.retired_at is not None:
                raise InvalidTransition(
                    "this individual number was replaced and is no longer valid",
                    field="individual_number",
                )
            row = self._load(session, actor, issued.resident_id)
            self._audit(session, "registry:resident:read", actor, f"resident:{row.id}",
                        reason=reason, by="individual_number")
            return to_record(row)

    def reveal_number(self, actor: StaffPrincipal, resident_id: int, reason: str) -> str:
        reason = _require_text("reason", reason, 200)
        with self._transaction() as session:
            row = self._load(session, actor, resident_id)
            if row.number_generation is None:
                raise InvalidTransition("this resident has no number yet")
            self._audit(session, "registry:number:reveal", actor, f"resident:{row.id}",
                        reason=reason)
            return self.numbering.individual_number(row.resident_code, row.number_generation)

    # -- for other contexts (system use, audited) ----------------------------------------------
    def resident_by_code(self, code: str) -> ResidentRecord:
        with self._transaction() as session:
            row = session.scalars(
                select(m.Resident).where(m.Resident.resident_code == code)
            ).first()
            if row is None:
                raise ResidentNotFound("no resident has this resident code")
            return to_record(row)

    def _records(self, column: Any, ids: Sequence[int], *where: Any) -> Iterator[ResidentRecord]:
        """Records whose ``column`` is among ``ids``, in id order: plain rows, not ORM objects
        (the event subscribers read thousands per batch)."""
        pg = self.databases.is_postgres
        size = in_chunk(pg)
        with self.databases.engine(CONTEXT).connect() as conn:
            for i in range(0, len(ids), size):
                for row in conn.execute(select(*_RECORD_COLUMNS).where(
                        one_of(column, ids[i:i + size], postgres=pg), *where)
                        .order_by(_RESIDENTS.c.id)):
                    yield to_record(row)

    def residents_by_ids(self, resident_ids: Sequence[int]) -> dict[int, ResidentRecord]:
        return {r.id: r for r in self._records(_RESIDENTS.c.id, sorted(set(resident_ids)))}

    def resident_ids_for_codes(self, resident_codes: Sequence[str]) -> dict[str, int]:
        codes = sorted({c for c in resident_codes if isinstance(c, str)})
        pg = self.databases.is_postgres
        size = in_chunk(pg)
        found: dict[str, int] = {}
        with self.databases.engine(CONTEXT).connect() as conn:
            for i in range(0, len(codes), size):
                for code, rid in conn.execute(
                        select(_RESIDENTS.c.resident_code, _RESIDENTS.c.id).where(
                            one_of(_RESIDENTS.c.resident_code, codes[i:i + size],
                                   postgres=pg))):
                    found[str(code)] = int(rid)
        return found

    def household(self, actor: StaffPrincipal, resident_id: int) -> list[ResidentRecord]:
        """The current members of the resident's household (the resident included), for a
        member of staff who may see the resident (世帯の構成: what a 住民票 of the whole
        household shows)."""
        with self._transaction() as session:
            row = self._load(session, actor, resident_id)
            household_id = row.household_id
        if household_id is None:
            return []
        return self.household_members([household_id]).get(household_id, [])

    def residents_by_kana_and_birth(
        self, name_kana: str, birth_date: dt.date, limit: int = 20
    ) -> list[ResidentRecord]:
        try:
            key = kana.normalize_kana(name_kana)
        except (ValueError, TypeError):
            return []
        if not key or len(key) > 160:
            return []
        t = _RESIDENTS.c
        with self.databases.engine(CONTEXT).connect() as conn:
            rows = conn.execute(  # the index ix_residents_kana_birth
                select(*_RECORD_COLUMNS).where(t.name_kana_key == key, t.birth_date == birth_date)
                .order_by(t.id).limit(max(1, min(limit, 200))))
            return [to_record(row) for row in rows]

    def household_members(self, household_ids: Sequence[int]) -> dict[int, list[ResidentRecord]]:
        result: dict[int, list[ResidentRecord]] = {h: [] for h in set(household_ids)}
        t = _RESIDENTS.c
        for record in self._records(t.household_id, sorted(result),
                                    t.status == ResidentStatus.RESIDENT.value):
            result[record.household_id or 0].append(record)
        return result

    # -- 取得番号: how an agency gets its 機関別符号 without the network seeing the number -----
    def municipalities(self) -> list[MunicipalityRecord]:
        with self.databases.unit_of_work(CONTEXT) as session:
            rows = session.scalars(select(m.Municipality).order_by(m.Municipality.code))
            return [MunicipalityRecord(r.code, r.prefecture, r.name, r.kind) for r in rows]

    def municipality_exists(self, code: str) -> bool:
        with self.databases.unit_of_work(CONTEXT) as session:
            return session.get(m.Municipality, code) is not None

    @staticmethod
    def _token_hash(agency_id: str, token: str) -> str:
        return hashlib.sha256(f"{agency_id}\n{token}".encode()).hexdigest()

    @staticmethod
    def _check_agency_id(agency_id: str) -> str:
        if not agency_id or len(agency_id) > 64 or not agency_id.replace("-", "").replace(
            "_", ""
        ).isalnum():
            raise InvalidResidentData("agency_id: not a valid agency id", field="agency_id")
        return agency_id

    def issue_acquisition_number(self, agency_id: str, individual_number_: str) -> str:
        agency_id = self._check_agency_id(agency_id)
        try:
            number = individual_number.validate(individual_number_)
        except ValidationError as exc:
            raise InvalidResidentData(f"individual_number: {exc}",
                                      field="individual_number") from None
        index = self.numbering.index(number)
        with self._transaction() as session:
            issued = session.scalars(
                select(m.IssuedNumber).where(m.IssuedNumber.number_index == index)
            ).first()
            holder = None if issued is None else session.get(m.Resident, issued.resident_id)
            if (
                issued is None or holder is None or issued.retired_at is not None
                or not hmac.compare_digest(
                    self.numbering.individual_number(holder.resident_code, issued.generation),
                    number,
                )
            ):
                raise ResidentNotFound("no resident has this individual number",
                                       field="individual_number")
            return self._new_acquisition(session, agency_id, holder.id, f"agency:{agency_id}")

    def _new_acquisition(self, session: Session, agency_id: str, resident_id: int,
                         actor: str) -> str:
        token = secrets.token_hex(16)
        now = utcnow()
        session.add(m.AcquisitionNumber(
            token_hash=self._token_hash(agency_id, token), resident_id=resident_id,
            agency_id=agency_id, issued_at=now, expires_at=now + ACQUISITION_TTL,
        ))
        audit.record(session, m.AuditEvent, "registry:acquisition_number:issue",
                     actor=actor[:80], subject=f"resident:{resident_id}", agency=agency_id)
        return token

    def redeem_acquisition_number(self, agency_id: str, acquisition_number: str) -> str:
        agency_id = self._check_agency_id(agency_id)
        if not acquisition_number or len(acquisition_number) > 64:
            raise AcquisitionNumberInvalid("acquisition_number: not valid for this agency",
                                           field="acquisition_number")
        token_hash = self._token_hash(agency_id, acquisition_number)
        with self._transaction() as session:
            now = utcnow()
            # One statement marks it used, so two concurrent redemptions cannot both win.
            redeemed = session.execute(
                update(m.AcquisitionNumber)
                .where(m.AcquisitionNumber.token_hash == token_hash,
                       m.AcquisitionNumber.redeemed_at.is_(None),
                       m.AcquisitionNumber.expires_at > now)
                .values(redeemed_at=now)
                .returning(m.AcquisitionNumber.resident_id)
            ).first()
            if redeemed is None:
                raise AcquisitionNumberInvalid(
                    "acquisition_number: unknown, already used, expired or issued to another "
                    "agency", field="acquisition_number")
            row = session.get(m.Resident, redeemed[0])
            if row is None:  # pragma: no cover - residents are never deleted
                raise AcquisitionNumberInvalid("acquisition_number: not valid",
                                               field="acquisition_number")
            audit.record(session, m.AuditEvent, "registry:acquisition_number:redeem",
                         actor="network", subject=f"resident:{row.id}", agency=agency_id)
            return row.resident_code

    def redeem_acquisition_numbers(
        self, agency_id: str, acquisition_numbers: Sequence[str]
    ) -> list[str]:
        agency_id = self._check_agency_id(agency_id)
        if any(not t or len(t) > 64 for t in acquisition_numbers):
            raise AcquisitionNumberInvalid("acquisition_number: not valid for this agency",
                                           field="acquisition_number")
        hashes = [self._token_hash(agency_id, t) for t in acquisition_numbers]
        if len(set(hashes)) != len(hashes):
            raise AcquisitionNumberInvalid("acquisition_number: the same one twice",
                                           field="acquisition_number")
        codes: dict[str, str] = {}
        pg = self.databases.is_postgres
        with self._transaction() as session:
            now = utcnow()
            for start in range(0, len(hashes), 1000):
                chunk = hashes[start:start + 1000]
                rows = session.execute(
                    update(m.AcquisitionNumber)
                    .where(one_of(m.AcquisitionNumber.token_hash, chunk, postgres=pg),
                           m.AcquisitionNumber.redeemed_at.is_(None),
                           m.AcquisitionNumber.expires_at > now)
                    .values(redeemed_at=now)
                    .returning(m.AcquisitionNumber.token_hash, m.AcquisitionNumber.resident_id)
                ).all()
                if len(rows) != len(chunk):
                    # Raising rolls the whole batch back: nothing is half-redeemed.
                    raise AcquisitionNumberInvalid(
                        "acquisition_number: unknown, already used, expired or issued to "
                        "another agency", field="acquisition_number")
                by_resident = {resident_id: token_hash for token_hash, resident_id in rows}
                for resident_id, code in session.execute(
                    select(m.Resident.id, m.Resident.resident_code)
                    .where(one_of(m.Resident.id, list(by_resident), postgres=pg))
                ):
                    codes[by_resident[resident_id]] = code
            audit.record(session, m.AuditEvent, "registry:acquisition_number:redeem",
                         actor="network", subject=f"agency:{agency_id}", count=len(hashes))
        return [codes[h] for h in hashes]

    def permit_own_residents(self, mayor_of: Callable[[str], str | None]) -> None:
        """Wiring: let a municipality's mayor obtain 取得番号 in bulk for its own current
        residents (住民基本台帳事務, 番号法 別表第一), which the registry's event subscriber
        for the municipality's 副本 needs in production too. ``mayor_of`` maps a
        municipality code to its mayor agency."""
        self._mayor_of = mayor_of

    def acquisition_numbers_for_residents(
        self, agency_id: str, resident_ids: Sequence[int]
    ) -> dict[int, str]:
        agency_id = self._check_agency_id(agency_id)
        mayor_of = self._mayor_of
        if not self.seeding_allowed and mayor_of is None:
            raise RoleRequired("seeding acquisition numbers is refused in production mode")
        now = utcnow()
        tokens: dict[int, str] = {}
        with self._transaction() as session:
            known = {row.id: row for row in session.execute(
                select(m.Resident.id, m.Resident.municipality_code, m.Resident.status)
                .where(one_of(m.Resident.id, list(resident_ids),
                              postgres=self.databases.is_postgres)))}
            rows = []
            for resident_id in resident_ids:
                if resident_id not in known:
                    raise ResidentNotFound(f"no resident with id {resident_id}")
                resident = known[resident_id]
                # The municipality's own record, current or 除票 (a resident who moved out or
                # died stays on the municipality's register as a removed record, and its
                # 副本 with it: even one born and dead before the 副本 was first written).
                if not self.seeding_allowed and (
                        mayor_of is None
                        or mayor_of(resident.municipality_code) != agency_id):
                    raise RoleRequired("acquisition numbers in bulk are only for the mayor of "
                                       "the residents' own municipality")
                token = secrets.token_hex(16)
                tokens[resident_id] = token
                rows.append({"token_hash": self._token_hash(agency_id, token),
                             "resident_id": resident_id, "agency_id": agency_id,
                             "issued_at": now, "expires_at": now + ACQUISITION_TTL})
            if rows:
                # Core, not the ORM bulk path: no bookkeeping per row.
                session.execute(insert(cast(Table, m.AcquisitionNumber.__table__)), rows)
            audit.record(session, m.AuditEvent, "registry:acquisition_number:"
                         + ("seed" if self.seeding_allowed else "own_residents"),
                         actor="seed" if self.seeding_allowed else "events",
                         subject=f"agency:{agency_id}", count=len(rows))
        return tokens

    def issue_acquisition_number_for_resident(
        self, agency_id: str, resident_id: int, actor: str
    ) -> AcquisitionGrant:
        agency_id = self._check_agency_id(agency_id)
        with self._transaction() as session:
            holder = session.get(m.Resident, resident_id)
            if holder is None or holder.status != ResidentStatus.RESIDENT.value:
                raise ResidentNotFound("no current resident with this id", field="resident_id")
            token = self._new_acquisition(session, agency_id, holder.id, actor)
            return AcquisitionGrant(token, holder.municipality_code)

    def number_for_purpose(self, resident_id: int, purpose: str, actor: str) -> str | None:
        purpose = _require_text("purpose", purpose, 100)
        actor = _require_text("actor", actor, 80)
        if isinstance(self.numbering, NoNumbering):
            return None  # the portal role: the core seals it later
        with self._transaction() as session:
            row = session.get(m.Resident, resident_id)
            if (row is None or row.status != ResidentStatus.RESIDENT.value
                    or row.number_generation is None):
                return None
            # The read is recorded with who and why; the number never is.
            audit.record(session, m.AuditEvent, "registry:number:provide", actor=actor,
                         subject=f"resident:{row.id}", reason=purpose)
            return self.numbering.individual_number(row.resident_code, row.number_generation)

    def resident_for_number(self, individual_number_: str, purpose: str,
                            actor: str) -> tuple[int, str] | None:
        purpose = _require_text("purpose", purpose, 100)
        actor = _require_text("actor", actor, 80)
        if isinstance(self.numbering, NoNumbering):
            return None  # the portal role holds no numbering keys
        holder_id: int | None = None
        found: tuple[int, str] | None = None
        if isinstance(individual_number_, str) and individual_number.is_valid(
                individual_number_):
            number = individual_number.validate(individual_number_)
            index = self.numbering.index(number)
        else:
            number, index = "", None
        with self._transaction() as session:
            issued = None if index is None else session.scalars(
                select(m.IssuedNumber).where(m.IssuedNumber.number_index == index)).first()
            holder = None if issued is None else session.get(m.Resident, issued.resident_id)
            # The index is a 64-bit MAC: confirm by deriving the holder's number and comparing
            # in constant time (never the holder of another number with the same index).
            if (issued is not None and holder is not None and issued.retired_at is None
                    and holder.status == ResidentStatus.RESIDENT.value
                    and hmac.compare_digest(
                        self.numbering.individual_number(holder.resident_code,
                                                         issued.generation), number)):
                holder_id = int(holder.id)
                found = (holder_id, str(holder.resident_code))
            # Recorded whatever the answer (who asked, why, whether someone was found); the
            # number never is.
            audit.record(session, m.AuditEvent, "registry:number:resolve", actor=actor,
                         subject=f"resident:{holder_id}" if holder_id else "number:unmatched",
                         reason=purpose, found=found is not None)
        return found

    # -- notification letters ---------------------------------------------------------------
    def letters(self, actor: StaffPrincipal, resident_id: int) -> list[LetterRecord]:
        with self._transaction() as session:
            row = self._load(session, actor, resident_id)
            letters = session.scalars(
                select(m.NotificationLetter).where(m.NotificationLetter.resident_id == row.id)
                .order_by(m.NotificationLetter.id)
            ).all()
            return [_letter(x) for x in letters]

    def update_letter(
        self, actor: StaffPrincipal, letter_id: int, status: LetterStatus,
        verification_id: int | None = None,
    ) -> LetterRecord:
        with self._transaction() as session:
            letter = session.get(m.NotificationLetter, letter_id, with_for_update=True)
            if letter is None:
                raise ResidentNotFound("no notification letter with this id")
            row = self._load(session, actor, letter.resident_id)
            current = LetterStatus(letter.status)
            if status not in LETTER_TRANSITIONS[current]:
                raise InvalidTransition(
                    f"a letter that is {current.value} cannot become {status.value}",
                    field="status",
                )
            if status is LetterStatus.HANDED_OVER:
                # Handing over a held letter needs a recorded identity verification (第16条).
                check = session.get(m.IdentityVerification, verification_id or -1)
                if check is None or check.resident_id != row.id or not check.number_matched:
                    raise InvalidTransition(
                        "handing over needs an identity verification of this resident",
                        field="verification_id",
                    )
            now = utcnow()
            letter.status = status.value
            letter.status_changed_at = now
            if status is LetterStatus.HELD:
                letter.hold_until = now.date() + dt.timedelta(days=LETTER_HOLD_DAYS)
            letter.history = [*letter.history, {"status": status.value, "at": now.isoformat(),
                                                "actor": actor.actor}]
            self._audit(session, f"registry:letter:{status.value}", actor, f"letter:{letter.id}")
            return _letter(letter)

    # -- identity verification --------------------------------------------------------------
    def verify_identity(
        self, actor: StaffPrincipal, resident_id: int, purpose: str, presented_number: str,
        number_confirmation: NumberConfirmation, documents: Sequence[IdentityDocument],
    ) -> VerificationRecord:
        purpose = _require_text("purpose", purpose, 100)
        try:
            presented = individual_number.validate(presented_number)
        except ValidationError as exc:
            raise InvalidResidentData(f"individual_number: {exc}",
                                      field="individual_number") from None
        level = assurance_level(number_confirmation, documents)
        with self._transaction() as session:
            row = self._load(session, actor, resident_id)
            if row.number_generation is None:
                raise InvalidTransition("this resident has no number yet")
            current = self.numbering.individual_number(row.resident_code, row.number_generation)
            matched = secrets.compare_digest(current, presented)
            check = m.IdentityVerification(
                resident_id=row.id, staff_id=actor.id, purpose=purpose,
                number_confirmation=number_confirmation.value,
                identity_documents=[d.value for d in documents],
                assurance_level=level.value, number_matched=matched,
            )
            session.add(check)
            session.flush()
            self._audit(session, "registry:identity:verify", actor, f"resident:{row.id}",
                        reason=purpose, matched=matched, level=level.value)
            return VerificationRecord(
                check.id, row.id, actor.id, purpose, number_confirmation, list(documents),
                level, matched, check.verified_at,
            )

    def verifications(self, actor: StaffPrincipal, resident_id: int) -> list[VerificationRecord]:
        """The identity verifications recorded for a resident (for the counter's record view)."""
        with self._transaction() as session:
            row = self._load(session, actor, resident_id)
            checks = session.scalars(
                select(m.IdentityVerification)
                .where(m.IdentityVerification.resident_id == row.id)
                .order_by(m.IdentityVerification.id)
            ).all()
            return [
                VerificationRecord(
                    c.id, c.resident_id, c.staff_id, c.purpose,
                    NumberConfirmation(c.number_confirmation),
                    [IdentityDocument(d) for d in c.identity_documents],
                    AssuranceLevel(c.assurance_level), c.number_matched, c.verified_at,
                )
                for c in checks
            ]


PHOTO_DOCUMENTS = {
    IdentityDocument.INDIVIDUAL_NUMBER_CARD, IdentityDocument.DRIVERS_LICENSE,
    IdentityDocument.PASSPORT, IdentityDocument.RESIDENCE_CARD, IdentityDocument.OTHER_PHOTO_ID,
}


def assurance_level(
    confirmation: NumberConfirmation, documents: Sequence[IdentityDocument]
) -> AssuranceLevel:
    """番号法施行規則 第1条: the card alone proves both; otherwise one photo ID, or two others."""
    docs = set(documents)
    if not docs:
        raise InvalidResidentData("at least one identity document is required",
                                  field="identity_documents")
    if IdentityDocument.INDIVIDUAL_NUMBER_CARD in docs:
        return AssuranceLevel.HIGH
    if docs & PHOTO_DOCUMENTS:
        return AssuranceLevel.SUBSTANTIAL
    if len(docs) >= 2:
        return AssuranceLevel.LOW
    raise InvalidResidentData(
        "without a photo ID, two identity documents are required", field="identity_documents"
    )


def _letter(x: m.NotificationLetter) -> LetterRecord:
    return LetterRecord(x.id, x.resident_id, x.number_generation, LetterStatus(x.status),
                        x.created_at, x.status_changed_at, x.hold_until, list(x.history))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Sex):
        return value.value
    return value


def load_municipalities(databases: Databases) -> int:
    """Insert the reference list of municipalities when the table is empty."""
    with databases.unit_of_work(CONTEXT) as session:
        if session.scalar(select(func.count()).select_from(m.Municipality)):
            return 0
        rows = load_municipality_rows()
        session.add_all(m.Municipality(**row) for row in rows)
        return len(rows)


# mypy checks here that the implementations offer every method of the published protocols.
_registry_contract: type[RegistryService] = RegistryServiceImpl

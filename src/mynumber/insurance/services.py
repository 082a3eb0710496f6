"""The insurer side of オンライン資格確認: insurers, enrolment, linking a record to the resident
on all four items, the review queue, the mass re-check, loss of qualification, and the
documents issued without application.

Decisions, in one place:

- **A link needs all four items, always.** Both routes refuse a record missing any of the
  name (kanji or kana), birth date, sex or address *before* anything is asked
  (``insurance_four_items_required``): kana name + birth date + sex alone is exactly how about
  7,000-9,000 people were linked to strangers' records in 2021-2023, and no caller can ask for
  it. The search route asks 住基ネット on all four normalised items under the permitted use of
  the insurer agency's kind (住基法 別表); exactly one current resident links, none or several
  open a review item (``not_found`` / ``ambiguous``). The number route has the registry name
  the current resident behind the number the person gave (audited there, never stored or
  logged here), reads that person's 本人確認情報 from 住基ネット by 住民票コード, and compares
  the record's four items after normalisation (``mynumber.codes.kana``): all equal links;
  anything else opens a review item naming the differing items (``address_differs`` when only
  the address differs: the mislink case). A near-miss is never a link.
- **One open qualification per person** is the partial unique index
  ``uq_qualifications_open_resident`` (open *linked* records). Only a linked record is the
  person's: a blocked one (the re-check distrusts its link; it still names the person for its
  review) is never closed by the person's job change or death, never listed as theirs, and
  does not stand in the way of their new link; resolved to the same person it is linked again
  under the same rules (a newer qualification meanwhile ends it where that one began). A link
  for a person with an open qualification is a job change: the old one is closed at the new
  one's ``acquired_on`` (reason ``new_qualification``) in the link's own transaction, so the
  intervals ``[acquired_on, lost_on)`` neither overlap nor leave a gap; a new one starting on
  or before the old one's start, or overlapping any earlier one, is refused
  (``insurance_overlapping_qualification``).
  Links of one person are serialised (PostgreSQL: a transaction-level advisory lock on the
  person; SQLite: ``BEGIN IMMEDIATE``); should two still meet at the index, the loser retries
  once on the state the winner left.
- **One current document per qualification** is the partial unique index
  ``uq_documents_current_qualification``: issuing one kind ends the other in the same
  transaction; a batch that meets the index (a parallel run) is done again on the new state.
- **The re-check** walks linked records in id order, ``batch`` at a time (never all at once),
  asks 住基ネット by 住民票コード, and blocks each record that no longer agrees on all four items
  with a ``recheck_mismatch`` review item naming the items (guarded by ``WHERE link_state =
  'linked'``, so a record changed meanwhile is left alone). A 住民票コード 住基ネット no longer
  knows blocks too; no answer at all (the insurer's permission refused, an outage) blocks
  nothing: the record is counted ``unavailable`` and checked again next run.
- **Documents** (``issue_documents``): a 資格情報のお知らせ only to a linked person whose card is
  usable now (activated *and* a good user-authentication certificate: ``CardUsability``, JPKI);
  a 資格確認書 to every other current record that is linked or unlinked; nothing to a record
  in review or blocked (neither new, renewed nor replaced: the insurer resolves it first).
- **Document numbers**: 15 random digits and the 保険者番号 check digit
  (``codes.insurer_number.calc_check_digit``: weights 2,1,2,… from the right, digit sums;
  Luhn), 16 digits, unique (a unique constraint).
- **Everything is audited** in the change's transaction (``audit_events``, tags
  ``insurance:<subject>:<action>``); refusals in their own transaction. No audit record, log
  line or error carries a 個人番号.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from mynumber import audit
from mynumber.codes import individual_number as individual_number_format
from mynumber.codes import insurer_number as insurer_number_format
from mynumber.codes.exceptions import ValidationError
from mynumber.codes.kana import normalize_address, normalize_kana, normalize_name, normalize_sex
from mynumber.db import Databases, in_chunk, one_of, utcnow
from mynumber.errors import DomainError
from mynumber.insurance import models as m
from mynumber.insurance.adapters import ResidentCodes
from mynumber.insurance.interfaces import (
    CONFIRMATION_CERTIFICATE_MAX_YEARS,
    AlreadyEnrolled,
    AlreadyLinked,
    CardUsability,
    CoverageDocument,
    CoverageDocumentKind,
    FourItemsRequired,
    InsuredKind,
    Insurer,
    InsurerAlreadyRegistered,
    InsurerKind,
    InsurerNotFound,
    InvalidInsuranceInput,
    InvalidInsurerNumber,
    LimitCategory,
    LinkBlocked,
    LinkResult,
    LinkRoute,
    LinkState,
    LossReason,
    NewInsuredPerson,
    NumberResolver,
    OverlappingQualification,
    PersonItems,
    Qualification,
    QualificationNotFound,
    RecheckReport,
    ReviewItem,
    ReviewNotFound,
    ReviewReason,
    ReviewResolution,
)
from mynumber.juki.interfaces import FourItemsRequired as JukiFourItemsRequired
from mynumber.juki.interfaces import (
    Identity,
    InvalidJukiInput,
    JukiService,
    QueryOutcome,
    QueryResult,
    SearchItems,
)
from mynumber.network.interfaces import NetworkService, UnknownAgency

log = logging.getLogger("mynumber.insurance")

CONTEXT = m.CONTEXT
JST = dt.timezone(dt.timedelta(hours=9), "JST")
#: The four items, in the order a review names them.
ITEMS = ("name", "birth_date", "sex", "address")
#: How long an insurer's 住基ネット identity (agency, permitted use) is kept without asking.
AGENCY_CACHE_SECONDS = 60.0
#: At most this many records in one ``enrol_many`` / ``link_many_by_search``.
BATCH_MAX = 1000
#: Qualifications per transaction when issuing documents.
DOCUMENT_BATCH = 500
#: 16 digits: 15 random and the check digit.
DOCUMENT_NUMBER_LENGTH = 16
#: 国民健康保険 (市町村 and 国保組合) numbers have 6 digits; every other insurer's 8.
SIX_DIGIT_KINDS = frozenset({InsurerKind.MUNICIPAL_NHI, InsurerKind.NHI_SOCIETY})
#: Insurers without 被扶養者 (国保 and 後期高齢者医療: everyone is an insured person).
NO_DEPENDANTS = frozenset({InsurerKind.MUNICIPAL_NHI, InsurerKind.NHI_SOCIETY,
                           InsurerKind.LATE_ELDERLY})
MAYOR_KINDS = frozenset({"designated_city_mayor", "health_center_city_mayor",
                         "atomic_bomb_city_mayor", "city_mayor", "special_ward_mayor",
                         "town_village_mayor"})
#: The network directory's agency kinds each insurer kind may be.
AGENCY_KINDS: dict[InsurerKind, frozenset[str]] = {
    InsurerKind.KYOKAI: frozenset({"kyokai_kenpo"}),
    InsurerKind.SOCIETY: frozenset({"health_insurance_society"}),
    InsurerKind.NHI_SOCIETY: frozenset({"national_health_insurance_society"}),
    InsurerKind.LATE_ELDERLY: frozenset({"late_elderly_medical_union"}),
    InsurerKind.MUNICIPAL_NHI: MAYOR_KINDS,  # 市区町村国保: the mayor (区長) is the insurer
}
#: Insurers whose cards always carry a 記号 (被用者保険).
SYMBOL_KINDS = frozenset({InsurerKind.KYOKAI, InsurerKind.SOCIETY})
UNDER_70_LIMITS = frozenset({LimitCategory.A, LimitCategory.I, LimitCategory.U,
                             LimitCategory.E, LimitCategory.O})
COPAY_PERCENTS = (10, 20, 30)
EVENT_ACTOR = "insurance:registry-events"
#: The link states whose records get documents: a record in review or blocked gets none (nor
#: a renewal, nor a replacement) until the insurer resolves it.
ISSUABLE = frozenset({LinkState.LINKED.value, LinkState.UNLINKED.value})

_DATE = re.compile(r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})")
_BRANCH = re.compile(r"[0-9]{2}")
#: What a 記号・番号 may hold once normalised (NFKC): digits, ASCII letters, a hyphen, kana
#: (with ー) and kanji (国保's 記号 may carry one, e.g. 「中」).
_CODE = re.compile(r"[0-9A-Za-z\-\u3041-\u3096\u30a1-\u30fa\u30fc\u3005\u4e00-\u9fff]*")
_ADVISORY_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtext('insurance:person'), "
    "CAST(:rid % 2147483647 AS integer))")


#: Work done first in a link's (or review's) transaction, e.g. a correction; returns True when
#: it already linked the record (a blocked record of the same person, unblocked).
Prepare = Callable[[Session, m.QualificationRow], "bool | None"]


class _Raced(Exception):
    """The state changed between reading and writing (another transaction won): re-read."""


class _NoAnswer(Exception):
    """住基ネット gave no answer that says anything about the record (a refusal of the
    insurer's permission, an outage): the record is not judged."""


# --- pure helpers ------------------------------------------------------------------------------


def parse_birth_date(value: str) -> dt.date | None:
    """YYYY-MM-DD (also / or ., one-digit month/day, full-width digits); None if not a date."""
    s = "".join(unicodedata.normalize("NFKC", value or "").split())
    match = _DATE.fullmatch(s)
    if match is None:
        return None
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def sex_code(value: str) -> str | None:
    """``male``/``female`` for anything :func:`normalize_sex` reads as 1/2, else None."""
    try:
        code = normalize_sex(value)
    except ValidationError:
        return None
    return {"1": "male", "2": "female"}.get(code)


def missing_items(items: PersonItems) -> list[str]:
    """The four items a record lacks (a name may be kanji or kana)."""
    missing = []
    if not (items.name.strip() or items.name_kana.strip()):
        missing.append("name")
    missing += [k for k in ("birth_date", "sex", "address") if not getattr(items, k).strip()]
    return missing


def _same(normalise: Callable[[str], str], a: str, b: str) -> bool:
    try:
        return normalise(a) == normalise(b) and normalise(a) != ""
    except ValidationError:
        return False


def differing_items(items: PersonItems, identity: Identity) -> tuple[str, ...]:
    """The items of the record that do not equal 住基ネット's after normalisation (a missing
    item differs; a name given in kanji and kana must agree in both)."""
    out = []
    name_ok = bool(items.name.strip() or items.name_kana.strip())
    if items.name.strip():
        name_ok = name_ok and _same(normalize_name, items.name, identity.name)
    if items.name_kana.strip():
        name_ok = name_ok and _same(normalize_kana, items.name_kana, identity.name_kana)
    if not name_ok:
        out.append("name")
    if parse_birth_date(items.birth_date) != identity.birth_date:
        out.append("birth_date")
    if sex_code(items.sex) is None or sex_code(items.sex) != sex_code(identity.sex):
        out.append("sex")
    if not _same(normalize_address, items.address, identity.address):
        out.append("address")
    return tuple(out)


def reason_for(differing: Sequence[str]) -> ReviewReason:
    """The review reason for a comparison: the first differing item in the order name, birth
    date, sex, address, so ``address_differs`` means the other three agreed."""
    for item, reason in (("name", ReviewReason.NAME_DIFFERS),
                         ("birth_date", ReviewReason.BIRTH_DATE_DIFFERS),
                         ("sex", ReviewReason.SEX_DIFFERS),
                         ("address", ReviewReason.ADDRESS_DIFFERS)):
        if item in differing:
            return reason
    raise ValueError("nothing differs")


def new_document_number() -> str:
    """15 random digits and their check digit (the 保険者番号 scheme)."""
    body = f"{secrets.randbelow(10 ** (DOCUMENT_NUMBER_LENGTH - 1)):0{DOCUMENT_NUMBER_LENGTH - 1}d}"
    return insurer_number_format.with_check_digit(body)


def is_document_number(value: str) -> bool:
    """Whether ``value`` (spaces and hyphens allowed) has the shape and check digit of a
    document number (never raises)."""
    try:
        compact = insurer_number_format.compact(value)
    except ValidationError:
        return False
    return len(compact) == DOCUMENT_NUMBER_LENGTH and insurer_number_format.luhn_valid(compact)


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, month=3, day=1)


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _overlaps(a_start: dt.date, a_end: dt.date | None, b_start: dt.date,
              b_end: dt.date | None) -> bool:
    """Whether ``[a_start, a_end)`` and ``[b_start, b_end)`` share a day (None: open)."""
    if (a_end is not None and a_end <= a_start) or (b_end is not None and b_end <= b_start):
        return False  # an empty interval covers nothing
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)


def _text(value: object, field: str, limit: int, *, required: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidInsuranceInput(f"{field}: must be text", field=field)
    s = value.strip()
    if required and not s:
        raise InvalidInsuranceInput(f"{field}: required", field=field)
    if len(s) > limit:
        raise InvalidInsuranceInput(f"{field}: at most {limit} characters", field=field)
    if any(unicodedata.category(c) == "Cc" for c in s):
        raise InvalidInsuranceInput(f"{field}: no control characters", field=field)
    return s


def _code(value: object, field: str, limit: int, *, required: bool = False) -> str:
    """A 記号, 番号 or 枝番 as stored and looked up: normalised (NFKC) *first*, then checked,
    so a compatibility character that expands (「㍿」 is 「株式会社」) can neither slip past the
    length limit nor reach the column."""
    if not isinstance(value, str):
        raise InvalidInsuranceInput(f"{field}: must be text", field=field)
    s = unicodedata.normalize("NFKC", value).strip()
    if required and not s:
        raise InvalidInsuranceInput(f"{field}: required", field=field)
    if len(s) > limit:
        raise InvalidInsuranceInput(f"{field}: at most {limit} characters", field=field)
    if not _CODE.fullmatch(s):
        raise InvalidInsuranceInput(f"{field}: digits, letters, kana, kanji or a hyphen",
                                    field=field, rule="characters")
    return s


_QUALIFICATIONS = cast(Table, m.QualificationRow.__table__)
_REVIEWS = cast(Table, m.ReviewRow.__table__)


class _Values:
    """Attribute access to a dict of column values (a row not read back)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _items(row: Any) -> PersonItems:
    return PersonItems(row.name, row.name_kana, row.birth_date, row.sex, row.address)


def _actor(actor: str) -> str:
    return (actor or "unknown").strip()[:80] or "unknown"


@dataclass(frozen=True)
class _QueryIdentity:
    """Who the insurer is at 住基ネット: its agency and the permitted use of its kind."""

    agency_id: str
    use_id: str


class InsurerServiceImpl:
    """:class:`~mynumber.insurance.interfaces.InsurerService` on the ``insurance`` database.

    ``numbers`` resolves a 個人番号 the insured person gave (the registry, through
    ``insurance.adapters.RegistryLinks``); ``residents`` names the registry's id of a
    住民票コード (by default ``numbers``, when it offers ``resident_id_for_code`` as
    ``RegistryLinks`` does); ``cards`` says who holds a usable card now (JPKI, through
    ``insurance.adapters.JpkiCardUsability``), for the documents."""

    def __init__(self, databases: Databases, juki: JukiService, network: NetworkService,
                 numbers: NumberResolver, *, cards: CardUsability,
                 clock: Callable[[], dt.datetime] = utcnow,
                 residents: ResidentCodes | None = None) -> None:
        self.databases = databases
        self.juki = juki
        self.network = network
        self.numbers = numbers
        self.cards = cards
        if residents is None:
            if not callable(getattr(numbers, "resident_id_for_code", None)):
                raise TypeError("InsurerServiceImpl needs `residents` (ResidentCodes) when "
                                "`numbers` does not offer resident_id_for_code")
            residents = numbers  # type: ignore[assignment]
        self.residents: ResidentCodes = residents  # type: ignore[assignment]
        self.clock = clock
        self._query_identities: dict[str, tuple[float, _QueryIdentity]] = {}
        self._insurers: dict[str, Insurer] = {}

    # -- plumbing ---------------------------------------------------------------------------------
    def today(self) -> dt.date:
        return self.clock().astimezone(JST).date()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One writing transaction. SQLite: the write lock is taken first (``BEGIN
        IMMEDIATE``), since two deferred transactions that both read and then write would
        fail instead of waiting."""
        with self.databases.unit_of_work(CONTEXT) as session:
            if not self.databases.is_postgres:
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self.databases.unit_of_work(CONTEXT) as session:
            yield session

    def _lock_person(self, session: Session, resident_id: int) -> None:
        """Serialise the links of one person (PostgreSQL; SQLite serialises every writer)."""
        if self.databases.is_postgres:
            session.execute(_ADVISORY_LOCK, {"rid": resident_id})

    @staticmethod
    def _audit(session: Session, tag: str, actor: str, subject: str,
               reason: str | None = None, **details: Any) -> None:
        audit.record(session, m.AuditEvent, tag, actor=_actor(actor), subject=subject[:80],
                     reason=reason[:200] if reason else None, **details)

    def _refused(self, error: DomainError, subject: str, actor: str, action: str,
                 **details: Any) -> DomainError:
        """A refusal leaves a trace (its code), in its own transaction: the refused change
        wrote nothing. Returns the error for ``raise``."""
        with self.databases.unit_of_work(CONTEXT) as session:
            self._audit(session, f"insurance:qualification:{action}_refused", actor, subject,
                        reason=error.code, **details)
        return error

    # -- insurers ---------------------------------------------------------------------------------
    def register_insurer(self, number: str, name: str, kind: InsurerKind, agency_id: str,
                         actor: str) -> Insurer:
        try:
            number = insurer_number_format.validate(number)
        except ValidationError as exc:
            raise InvalidInsurerNumber(f"number: {exc}", field="number") from None
        try:
            kind = InsurerKind(kind)
        except ValueError:
            raise InvalidInsuranceInput("kind: not an insurer kind", field="kind") from None
        if (len(number) == 6) != (kind in SIX_DIGIT_KINDS):
            raise InvalidInsurerNumber(
                "number: 6 digits for 国民健康保険 (municipal_nhi, "
                "national_health_insurance_society), 8 digits for every other kind",
                field="number", rule="length_for_kind")
        name = _text(name, "name", 120, required=True)
        agency_id = _text(agency_id, "agency_id", 64, required=True)
        try:
            agency = self.network.agency(agency_id)
        except UnknownAgency:
            raise InvalidInsuranceInput("agency_id: not in the network's directory",
                                        field="agency_id", rule="agency_exists") from None
        if agency.kind not in AGENCY_KINDS[kind]:
            raise InvalidInsuranceInput(
                f"agency_id: a {kind.value} insurer is an agency of kind "
                f"{', '.join(sorted(AGENCY_KINDS[kind]))}", field="agency_id",
                rule="agency_kind")
        if (kind is InsurerKind.MUNICIPAL_NHI and agency.municipality_code
                and agency.municipality_code[:2] != number[:2]):
            raise InvalidInsurerNumber("number: the prefecture differs from the municipality's",
                                       field="number", rule="prefecture")
        wanted = Insurer(number, name, kind, agency.agency_id)
        try:
            with self._write() as session:
                session.add(m.InsurerRow(number=number, name=name, kind=kind.value,
                                         agency_id=agency.agency_id, created_at=self.clock()))
                self._audit(session, "insurance:insurer:register", actor, f"insurer:{number}",
                            kind=kind.value, agency_id=agency.agency_id)
                session.flush()
        except IntegrityError:
            existing = self.insurer(number)
            if existing == wanted:
                return existing  # the same registration again: nothing to do
            raise InsurerAlreadyRegistered("number: already registered to another insurer",
                                           field="number") from None
        return wanted

    def insurers(self) -> list[Insurer]:
        with self._read() as session:
            return [_insurer(r) for r in session.scalars(
                select(m.InsurerRow).order_by(m.InsurerRow.number))]

    def insurer(self, number: str) -> Insurer:
        try:
            number = insurer_number_format.compact(number)
        except ValidationError:
            raise InsurerNotFound("no insurer has this number", field="insurer_number") from None
        # An insurer never changes once registered (nothing updates or deletes one), so it is
        # kept once read; an unknown number is asked for every time.
        found = self._insurers.get(number)
        if found is not None:
            return found
        with self._read() as session:
            row = session.get(m.InsurerRow, number) if len(number) <= 8 else None
            if row is None:
                raise InsurerNotFound("no insurer has this number", field="insurer_number")
            found = _insurer(row)
        if len(self._insurers) < 100_000:
            self._insurers[number] = found
        return found

    def _insurer_name(self, number: str) -> str:
        return self.insurer(number).name

    def _query_identity(self, insurer: Insurer) -> _QueryIdentity:
        """The insurer's agency at 住基ネット and the permitted use of the agency's kind."""
        now = time.monotonic()
        cached = self._query_identities.get(insurer.number)
        if cached is not None and now - cached[0] < AGENCY_CACHE_SECONDS:
            return cached[1]
        agency = self.network.agency(insurer.agency_id)
        uses = [u.use_id for u in self.juki.permitted_uses() if u.agency_kind == agency.kind]
        # No use for the kind: 住基ネット refuses (and records) the query itself.
        found = _QueryIdentity(agency.agency_id, uses[0] if uses else "")
        if len(self._query_identities) > 10_000:
            self._query_identities.clear()
        self._query_identities[insurer.number] = (now, found)
        return found

    # -- enrolment --------------------------------------------------------------------------------
    def _valid_items(self, items: PersonItems) -> PersonItems:
        if not isinstance(items, PersonItems):
            raise InvalidInsuranceInput("items: the four basic items", field="items")
        birth = _text(items.birth_date, "birth_date", 20)
        if birth:
            parsed = parse_birth_date(birth)
            if parsed is None:
                raise InvalidInsuranceInput("birth_date: write it as YYYY-MM-DD",
                                            field="birth_date")
            birth = parsed.isoformat()
        sex = _text(items.sex, "sex", 10)
        if sex:
            code = sex_code(sex)
            if code is None:
                raise InvalidInsuranceInput("sex: male or female (男/女, M/F, 1/2)", field="sex")
            sex = code
        return PersonItems(
            name=_text(items.name, "name", 100), name_kana=_text(items.name_kana, "name_kana", 100),
            birth_date=birth, sex=sex, address=_text(items.address, "address", 300))

    def _valid_person(self, insurer: Insurer, person: NewInsuredPerson) -> NewInsuredPerson:
        symbol = _code(person.symbol, "symbol", 20)
        number = _code(person.number, "number", 20, required=True)
        if not symbol.strip() and insurer.kind in SYMBOL_KINDS:
            raise InvalidInsuranceInput("symbol: required for 協会けんぽ and 健康保険組合 "
                                        "(国保 and 後期高齢者医療 may have none)",
                                        field="symbol")
        branch = _code(person.branch, "branch", 2, required=True)
        if not _BRANCH.fullmatch(branch):
            raise InvalidInsuranceInput("branch: 2 digits (枝番)", field="branch")
        try:
            insured_kind = InsuredKind(person.insured_kind)
        except ValueError:
            raise InvalidInsuranceInput("insured_kind: insured (本人) or dependent (家族)",
                                        field="insured_kind") from None
        if insured_kind is InsuredKind.DEPENDENT and insurer.kind in NO_DEPENDANTS:
            raise InvalidInsuranceInput(
                "insured_kind: 国民健康保険 and 後期高齢者医療 have no 被扶養者 (家族); "
                "everyone is enrolled as insured", field="insured_kind", rule="no_dependants")
        if not isinstance(person.acquired_on, dt.date) or isinstance(person.acquired_on,
                                                                     dt.datetime):
            raise InvalidInsuranceInput("acquired_on: a date", field="acquired_on")
        if person.copay_percent not in COPAY_PERCENTS or isinstance(person.copay_percent, bool):
            raise InvalidInsuranceInput("copay_percent: 10, 20 or 30", field="copay_percent")
        if not isinstance(person.elderly_recipient, bool):
            raise InvalidInsuranceInput("elderly_recipient: true or false",
                                        field="elderly_recipient")
        items = self._valid_items(person.items)
        limit = None
        if person.limit_category is not None:
            try:
                limit = LimitCategory(person.limit_category)
            except ValueError:
                raise InvalidInsuranceInput("limit_category: not a 限度額適用区分",
                                            field="limit_category") from None
            birth = parse_birth_date(items.birth_date)
            if birth is not None:
                seventy = _age(birth, person.acquired_on) >= 70
                if seventy == (limit in UNDER_70_LIMITS):
                    raise InvalidInsuranceInput(
                        "limit_category: ア-オ under 70, 現役並みⅢ-低所得Ⅰ from 70 (age on "
                        "acquired_on)", field="limit_category", rule="age_band")
        return NewInsuredPerson(symbol=symbol, number=number, branch=branch,
                                insured_kind=insured_kind, acquired_on=person.acquired_on,
                                copay_percent=person.copay_percent, items=items,
                                elderly_recipient=person.elderly_recipient,
                                limit_category=limit)

    def enrol(self, insurer_number: str, person: NewInsuredPerson, actor: str) -> Qualification:
        try:
            (qualification,) = self.enrol_many(insurer_number, [person], actor)
        except DomainError as exc:
            exc.extra.pop("index", None)
            raise
        return qualification

    def _qualification(self, row: Any, insurer_name: str | None = None) -> Qualification:
        return Qualification(
            id=int(row.id), insurer_number=row.insurer_number,
            insurer_name=insurer_name or self._insurer_name(row.insurer_number),
            symbol=row.symbol, number=row.number, branch=row.branch,
            insured_kind=InsuredKind(row.insured_kind), acquired_on=row.acquired_on,
            lost_on=row.lost_on,
            loss_reason=LossReason(row.loss_reason) if row.loss_reason else None,
            copay_percent=int(row.copay_percent), elderly_recipient=bool(row.elderly_recipient),
            limit_category=LimitCategory(row.limit_category) if row.limit_category else None,
            link_state=LinkState(row.link_state))

    def find(self, insurer_number: str, symbol: str, number: str, branch: str) -> Qualification:
        insurer = self.insurer(insurer_number)
        values = [unicodedata.normalize("NFKC", v.strip()) if isinstance(v, str) else ""
                  for v in (symbol, number, branch)]
        with self._read() as session:
            row = session.scalars(select(m.QualificationRow).where(
                m.QualificationRow.insurer_number == insurer.number,
                m.QualificationRow.symbol == values[0], m.QualificationRow.number == values[1],
                m.QualificationRow.branch == values[2])).first()
            if row is None:
                raise QualificationNotFound("no insured person with this number here")
            return self._qualification(row, insurer.name)

    def qualifications(self, insurer_number: str, *, state: LinkState | None = None,
                       limit: int = 100, offset: int = 0) -> list[Qualification]:
        insurer = self.insurer(insurer_number)
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidInsuranceInput("limit: 1 to 1000; offset: not negative", field="limit")
        stmt = select(m.QualificationRow).where(
            m.QualificationRow.insurer_number == insurer.number)
        if state is not None:
            try:
                stmt = stmt.where(m.QualificationRow.link_state == LinkState(state).value)
            except ValueError:
                raise InvalidInsuranceInput("state: not a link state", field="state") from None
        with self._read() as session:
            rows = session.scalars(stmt.order_by(m.QualificationRow.id).limit(limit)
                                   .offset(offset)).all()
            return [self._qualification(r, insurer.name) for r in rows]

    def items_of(self, insurer_number: str, qualification_id: int) -> PersonItems:
        """The four items as the insurer's record holds them (the insurer's own pages)."""
        with self._read() as session:
            return _items(self._own(session, insurer_number, qualification_id))

    def _own_values(self, session: Session, insurer_number: str,
                    qualification_id: int) -> Any:
        """The record's columns (a plain row, not an ORM object)."""
        row = session.execute(select(_QUALIFICATIONS).where(
            _QUALIFICATIONS.c.id == qualification_id)).first()
        if row is None or row.insurer_number != insurer_number:
            raise QualificationNotFound("no such insured person at this insurer",
                                        field="qualification_id")
        return row

    def _own(self, session: Session, insurer_number: str, qualification_id: int,
             *, lock: bool = False) -> m.QualificationRow:
        stmt = select(m.QualificationRow).where(m.QualificationRow.id == qualification_id)
        if lock and self.databases.is_postgres:
            stmt = stmt.with_for_update()
        row = session.scalars(stmt).first()
        if row is None or row.insurer_number != insurer_number:
            raise QualificationNotFound("no such insured person at this insurer",
                                        field="qualification_id")
        return row

    # -- linking ----------------------------------------------------------------------------------
    def _linkable(self, insurer_number: str, qualification_id: int, actor: str, *,
                  allow_blocked: bool = False
                  ) -> tuple[Insurer, PersonItems, Any]:
        insurer = self.insurer(insurer_number)
        with self._read() as session:
            row = self._own_values(session, insurer.number, qualification_id)
        return insurer, self._check_linkable(row, actor, allow_blocked=allow_blocked), row

    def _check_linkable(self, row: Any, actor: str, *, allow_blocked: bool = False
                        ) -> PersonItems:
        """The record's four items, or the refusal (recorded) when it cannot be linked."""
        subject = f"qualification:{row.id}"
        if row.link_state == LinkState.LINKED.value:
            raise self._refused(AlreadyLinked("this record is already linked"), subject, actor,
                                "link")
        if row.link_state == LinkState.BLOCKED.value and not allow_blocked:
            raise self._refused(LinkBlocked("blocked: resolve its review item first"),
                                subject, actor, "link")
        items = _items(row)
        missing = missing_items(items)
        if missing:
            raise self._refused(FourItemsRequired(
                "a link needs all four basic items of the record: a name (kanji or kana), "
                "birth_date, sex and address; missing: " + ", ".join(missing),
                field=missing[0], missing=missing, rule="four_basic_items",
                qualification_id=row.id), subject, actor, "link")
        return items

    def _search(self, insurer: Insurer, items: PersonItems) -> QueryResult:
        who = self._query_identity(insurer)
        try:
            return self.juki.search(who.agency_id, who.use_id, SearchItems(
                name=items.name, name_kana=items.name_kana, birth_date=items.birth_date,
                sex=items.sex, address=items.address))
        except JukiFourItemsRequired as exc:
            raise FourItemsRequired(
                "a link needs all four basic items (住基ネット: " + exc.detail + ")",
                field=exc.field, rule="four_basic_items") from None
        except InvalidJukiInput as exc:
            raise InvalidInsuranceInput(exc.detail, field=exc.field) from None

    def link_by_search(self, insurer_number: str, qualification_id: int, actor: str
                       ) -> LinkResult:
        insurer, items, row = self._linkable(insurer_number, qualification_id, actor)
        return self._search_and_link(insurer, row.id, items, actor)

    def _search_and_link(self, insurer: Insurer, qualification_id: int, items: PersonItems,
                         actor: str, prepare: Prepare
                         | None = None) -> LinkResult:
        """Ask 住基ネット on the four ``items``, then link or open a review item (``prepare``
        runs first in that transaction: a correction's update)."""
        result = self._search(insurer, items)
        route = LinkRoute.SEARCH
        if result.outcome is QueryOutcome.ANSWERED and result.identity is not None:
            identity = result.identity
            rid = None
            if identity.status == "resident":
                rid = self.residents.resident_id_for_code(identity.resident_code)
            if rid is not None:
                return self._link(qualification_id, rid, identity.resident_code, route, actor,
                                  query_id=result.query_id, prepare=prepare)
            # Not a current resident (died, moved abroad): nobody to link to.
            return self._review(qualification_id, ReviewReason.NOT_FOUND, (), route, actor,
                                query_id=result.query_id, prepare=prepare)
        reason = (ReviewReason.AMBIGUOUS if result.outcome is QueryOutcome.AMBIGUOUS
                  else ReviewReason.NOT_FOUND)
        return self._review(qualification_id, reason, (), route, actor,
                            query_id=result.query_id, prepare=prepare)

    def link_by_number(self, insurer_number: str, qualification_id: int,
                       individual_number: str, actor: str) -> LinkResult:
        insurer, items, row = self._linkable(insurer_number, qualification_id, actor)
        route = LinkRoute.NUMBER
        if not (isinstance(individual_number, str)
                and individual_number_format.is_valid(individual_number)):
            raise self._refused(InvalidInsuranceInput(
                "individual_number: not a valid 個人番号 (12 digits with its check digit)",
                field="individual_number"), f"qualification:{row.id}", actor, "link")
        # The registry resolves (and records) it; the number goes no further than this call.
        resolved = self.numbers.resident_for_number(individual_number, actor)
        del individual_number
        if resolved is None:
            return self._review(row.id, ReviewReason.NUMBER_UNKNOWN, (), route, actor)
        rid, code = resolved
        who = self._query_identity(insurer)
        answer = self.juki.by_code(who.agency_id, who.use_id, code)
        if answer.outcome is not QueryOutcome.ANSWERED or answer.identity is None:
            return self._review(row.id, ReviewReason.NOT_FOUND, (), route, actor,
                                query_id=answer.query_id)
        differing = differing_items(items, answer.identity)
        if differing:
            return self._review(row.id, reason_for(differing), differing, route, actor,
                                query_id=answer.query_id)
        return self._link(row.id, rid, code, route, actor, query_id=answer.query_id)

    def _close_reviews(self, session: Session, qualification_id: int, actor: str,
                       resolution: ReviewResolution | None = None) -> None:
        reviews = _REVIEWS
        session.execute(update(reviews).where(
            reviews.c.qualification_id == qualification_id, reviews.c.resolved_at.is_(None)
        ).values(resolved_at=self.clock(), resolution=resolution.value if resolution else None,
                 actor=_actor(actor)))

    def _review(self, qualification_id: int, reason: ReviewReason, differing: Sequence[str],
                route: LinkRoute, actor: str, *, query_id: int | None = None,
                prepare: Prepare | None = None
                ) -> LinkResult:
        """A near-miss: a review item (a previous open one is superseded), never a link."""
        with self._write() as session:
            row: Any
            if prepare is not None:
                row = session.get(m.QualificationRow, qualification_id, populate_existing=True)
                assert row is not None
                prepare(session, row)
                session.flush()
            else:
                row = self._state_of(session, qualification_id)
            if row.link_state == LinkState.LINKED.value:
                raise AlreadyLinked("this record was linked meanwhile")
            return self._add_review(session, row.id, row.insurer_number, row.link_state,
                                    reason, differing, route, actor, query_id)

    def _add_review(self, session: Session, qualification_id: int, insurer_number: str,
                    state: str, reason: ReviewReason, differing: Sequence[str],
                    route: LinkRoute, actor: str, query_id: int | None) -> LinkResult:
        now = self.clock()
        self._close_reviews(session, qualification_id, actor)
        review_id = int(session.execute(insert(_REVIEWS).values(
            qualification_id=qualification_id, insurer_number=insurer_number,
            reason=reason.value, differing=",".join(differing), created_at=now,
            resolved_at=None, resolution=None, actor=_actor(actor)
        ).returning(_REVIEWS.c.id)).scalar_one())
        # A blocked record stays blocked; any other waits in the queue.
        new_state = state if state == LinkState.BLOCKED.value else LinkState.REVIEW.value
        session.execute(update(_QUALIFICATIONS).where(
            _QUALIFICATIONS.c.id == qualification_id).values(link_state=new_state,
                                                              updated_at=now))
        self._audit(session, "insurance:qualification:review", actor,
                    f"qualification:{qualification_id}", reason=reason.value, route=route.value,
                    differing=list(differing), query_id=query_id, review_id=review_id)
        return LinkResult(qualification_id, LinkState(new_state), route, reason, review_id)

    @staticmethod
    def _state_of(session: Session, qualification_id: int) -> Any:
        t = _QUALIFICATIONS
        return session.execute(select(
            t.c.id, t.c.insurer_number, t.c.link_state, t.c.acquired_on, t.c.lost_on).where(
            t.c.id == qualification_id)).one()

    def _link(self, qualification_id: int, resident_id: int, resident_code: str,
              route: LinkRoute, actor: str, *, query_id: int | None = None,
              prepare: Prepare | None = None
              ) -> LinkResult:
        """Link the record to the person, closing the person's open qualification (a job
        change) in the same transaction. Meeting the one-open index (a parallel link the lock
        did not serialise) retries once on the new state."""
        for attempt in (1, 2):
            try:
                return self._link_once(qualification_id, resident_id, resident_code, route,
                                       actor, query_id, prepare)
            except (IntegrityError, _Raced):
                if attempt == 2:
                    raise self._refused(OverlappingQualification(
                        "the person's qualifications changed while linking; try again"),
                        f"qualification:{qualification_id}", actor, "link") from None
                log.info("insurance: link of qualification %s met a parallel change; retrying",
                         qualification_id)
        raise AssertionError("unreachable")

    def _link_once(self, qualification_id: int, resident_id: int, resident_code: str,
                   route: LinkRoute, actor: str, query_id: int | None,
                   prepare: Prepare | None
                   ) -> LinkResult:
        try:
            with self._write() as session:
                self._lock_person(session, resident_id)
                row: Any
                if prepare is not None:
                    row = session.get(m.QualificationRow, qualification_id,
                                      populate_existing=True)
                    assert row is not None
                    done = prepare(session, row)
                    session.flush()
                    if done:
                        return LinkResult(row.id, LinkState.LINKED, route)
                else:
                    row = self._state_of(session, qualification_id)
                return self._apply_link(session, row, resident_id, resident_code, route, actor,
                                        query_id, settle_reviews=prepare is not None)
        except (AlreadyLinked, LinkBlocked, OverlappingQualification) as exc:
            raise self._refused(exc, f"qualification:{qualification_id}", actor, "link",
                                route=route.value) from None

    def _apply_link(self, session: Session, row: Any, resident_id: int, resident_code: str,
                    route: LinkRoute, actor: str, query_id: int | None, *,
                    settle_reviews: bool = False, unblock: bool = False) -> LinkResult:
        """The link inside the caller's transaction (the person locked). Every refusal is
        raised before anything is written; ``_Raced`` (after writes) means the transaction
        must be rolled back and the state read again.

        Only the person's *linked* records count as theirs: a blocked record that still names
        them (the re-check distrusts it) is neither closed by this link nor in its way.
        ``unblock``: a blocked record of this very person, found again on all four items after
        its correction, is linked again; if the person meanwhile got a newer open
        qualification, the confirmed record ended where that one began (a job change seen
        late)."""
        now = self.clock()
        t = _QUALIFICATIONS
        state = row.link_state
        if state == LinkState.LINKED.value:
            raise AlreadyLinked("this record is already linked")
        if state == LinkState.BLOCKED.value and not unblock:
            raise LinkBlocked("blocked: resolve its review item first")
        others = session.execute(select(
            t.c.id, t.c.insurer_number, t.c.acquired_on, t.c.lost_on).where(
            t.c.resident_id == resident_id, t.c.id != row.id,
            t.c.link_state == LinkState.LINKED.value)
            .order_by(t.c.acquired_on)).all()
        replaced = None
        own_end = row.lost_on
        ends = {o.id: o.lost_on for o in others}
        open_other = [o for o in others if o.lost_on is None]
        if row.lost_on is None and open_other:
            old = open_other[0]
            if row.acquired_on > old.acquired_on:
                ends[old.id] = row.acquired_on
                replaced = old
            elif unblock and row.acquired_on < old.acquired_on:
                own_end = old.acquired_on
            else:
                raise OverlappingQualification(
                    "the person has an open qualification that starts on or after this one's "
                    "acquired_on", field="acquired_on", other_insurer=old.insurer_number)
        for o in others:
            if _overlaps(row.acquired_on, own_end, o.acquired_on, ends[o.id]):
                raise OverlappingQualification(
                    "this qualification would overlap another of the person's",
                    field="acquired_on", other_insurer=o.insurer_number)
        if replaced is not None:
            # A job change: the old one ends where the new one starts (no gap, no overlap).
            # The WHERE makes it atomic: a parallel change re-reads.
            closed = session.execute(update(t).where(
                t.c.id == replaced.id, t.c.lost_on.is_(None)).values(
                lost_on=row.acquired_on, loss_reason=LossReason.NEW_QUALIFICATION.value,
                updated_at=now))
            if _rowcount(closed) != 1:
                raise _Raced()
            self._end_documents(session, [replaced.id], now)
            self._audit(session, "insurance:qualification:replaced", actor,
                        f"qualification:{replaced.id}", reason="new_qualification",
                        lost_on=row.acquired_on.isoformat(), by=row.id,
                        resident_id=resident_id)
        values: dict[str, Any] = {
            "resident_id": resident_id, "resident_code": resident_code,
            "link_state": LinkState.LINKED.value, "linked_at": now, "updated_at": now}
        if not unblock:
            values["link_route"] = route.value
        ends_now = own_end is not None and row.lost_on is None
        guard = [t.c.id == row.id, t.c.link_state == state]
        if ends_now:
            # The confirmed record ended when the person's newer qualification began.
            values.update(lost_on=own_end, loss_reason=LossReason.NEW_QUALIFICATION.value)
            guard.append(t.c.lost_on.is_(None))
        linked = session.execute(update(t).where(*guard).values(**values))
        if _rowcount(linked) != 1:
            raise _Raced()
        if ends_now:
            self._end_documents(session, [row.id], now)
        if state == LinkState.REVIEW.value or settle_reviews:
            self._close_reviews(session, row.id, actor)  # the near-miss is settled
        self._audit(session, "insurance:qualification:unblock" if unblock
                    else "insurance:qualification:link", actor,
                    f"qualification:{row.id}", route=route.value,
                    resident_id=resident_id, query_id=query_id,
                    replaced=replaced.id if replaced is not None else None,
                    lost_on=own_end.isoformat() if ends_now and own_end else None)
        session.flush()  # the one-open index is checked here at the latest
        return LinkResult(row.id, LinkState.LINKED, route,
                          replaced_qualification_id=(replaced.id if replaced is not None
                                                     else None))

    # -- many records at once (a 資格取得届 file, the seed) -------------------------------------
    def enrol_many(self, insurer_number: str, persons: Sequence[NewInsuredPerson],
                   actor: str) -> list[Qualification]:
        """:meth:`enrol` for up to :data:`BATCH_MAX` records in one transaction: all of them
        or none (an invalid record is refused with its ``index``; a 記号・番号・枝番 enrolled
        already, or twice in the batch, refuses the batch with AlreadyEnrolled)."""
        insurer = self.insurer(insurer_number)
        if len(persons) > BATCH_MAX:
            raise InvalidInsuranceInput(f"at most {BATCH_MAX} records at once", field="persons")
        valid = []
        for index, person in enumerate(persons):
            try:
                valid.append(self._valid_person(insurer, person))
            except DomainError as exc:
                exc.extra["index"] = index
                raise
        if not valid:
            return []
        now = self.clock()
        rows = [{
            "insurer_number": insurer.number, "symbol": p.symbol, "number": p.number,
            "branch": p.branch, "insured_kind": p.insured_kind.value,
            "acquired_on": p.acquired_on, "lost_on": None, "loss_reason": None,
            "copay_percent": p.copay_percent, "elderly_recipient": p.elderly_recipient,
            "limit_category": p.limit_category.value if p.limit_category else None,
            "name": p.items.name, "name_kana": p.items.name_kana,
            "birth_date": p.items.birth_date, "sex": p.items.sex, "address": p.items.address,
            "link_state": LinkState.UNLINKED.value, "resident_id": None, "resident_code": None,
            "link_route": None, "linked_at": None, "created_at": now, "updated_at": now,
        } for p in valid]
        try:
            with self._write() as session:
                # Core statements (the ORM's unit of work cost more than the database here).
                ids = session.execute(
                    insert(_QUALIFICATIONS).returning(_QUALIFICATIONS.c.id,
                                                      sort_by_parameter_order=True),
                    rows).scalars().all()
                for qid, p in zip(ids, valid, strict=True):
                    self._audit(session, "insurance:qualification:enrol", actor,
                                f"qualification:{qid}", insurer=insurer.number,
                                complete=not missing_items(p.items))
        except IntegrityError:
            raise AlreadyEnrolled("symbol, number and branch: already enrolled at this insurer",
                                  field="number") from None
        return [self._qualification(_Values(id=int(qid), **row), insurer.name)
                for qid, row in zip(ids, rows, strict=True)]

    def link_many_by_search(self, insurer_number: str, qualification_ids: Sequence[int],
                            actor: str) -> list[LinkResult]:
        """:meth:`link_by_search` for up to :data:`BATCH_MAX` records of one insurer, in
        order: the same four-item search for each, the links and review items then written
        in one transaction. A record that cannot be linked (already linked, blocked, an item
        missing) refuses the batch before anything is asked. A person whose link would
        overlap another qualification is not linked: the record gets a review item
        ``already_linked`` instead (a batch does not stop for one record)."""
        insurer = self.insurer(insurer_number)
        ids = list(dict.fromkeys(int(x) for x in qualification_ids))
        if len(ids) > BATCH_MAX:
            raise InvalidInsuranceInput(f"at most {BATCH_MAX} records at once",
                                        field="qualification_ids")
        if not ids:
            return []
        pg = self.databases.is_postgres
        with self._read() as session:
            found = {int(r.id): r for r in session.execute(select(_QUALIFICATIONS).where(
                one_of(_QUALIFICATIONS.c.id, ids, postgres=pg)))}
        for qid in ids:
            row = found.get(qid)
            if row is None or row.insurer_number != insurer.number:
                raise QualificationNotFound("no such insured person at this insurer",
                                            field="qualification_ids", qualification_id=qid)
            self._check_linkable(row, actor)
        answers = {qid: self._search(insurer, _items(found[qid])) for qid in ids}
        codes = sorted({a.identity.resident_code for a in answers.values()
                        if a.outcome is QueryOutcome.ANSWERED and a.identity is not None
                        and a.identity.status == "resident"})
        residents = self._resident_ids(codes)
        for attempt in (1, 2):
            try:
                return self._write_many(ids, answers, residents, actor)
            except (IntegrityError, _Raced):
                if attempt == 2:
                    raise
                log.info("insurance: a batch of links met a parallel change; retrying")
        raise AssertionError("unreachable")

    def _write_many(self, ids: list[int], answers: dict[int, QueryResult],
                    residents: dict[str, int], actor: str) -> list[LinkResult]:
        route = LinkRoute.SEARCH
        results = []
        with self._write() as session:
            wanted = set()
            for answer in answers.values():
                if answer.identity is not None and answer.identity.resident_code in residents:
                    wanted.add(residents[answer.identity.resident_code])
            for person_id in sorted(wanted):  # one order: no deadlock between two batches
                self._lock_person(session, person_id)
            for qid in ids:
                row = self._state_of(session, qid)
                answer = answers[qid]
                identity = answer.identity
                rid = residents.get(identity.resident_code) if identity is not None else None
                if row.link_state in (LinkState.LINKED.value, LinkState.BLOCKED.value):
                    # Linked or blocked meanwhile (by another caller): left as it is.
                    results.append(LinkResult(qid, LinkState(row.link_state), route))
                elif answer.outcome is QueryOutcome.ANSWERED and identity is not None and \
                        rid is not None:
                    try:
                        results.append(self._apply_link(session, row, rid,
                                                        identity.resident_code, route, actor,
                                                        answer.query_id))
                    except OverlappingQualification:
                        results.append(self._add_review(
                            session, qid, row.insurer_number, row.link_state,
                            ReviewReason.ALREADY_LINKED, (), route, actor, answer.query_id))
                else:
                    reason = (ReviewReason.AMBIGUOUS
                              if answer.outcome is QueryOutcome.AMBIGUOUS
                              else ReviewReason.NOT_FOUND)
                    results.append(self._add_review(session, qid, row.insurer_number,
                                                    row.link_state, reason, (), route, actor,
                                                    answer.query_id))
        return results

    def _resident_ids(self, codes: Sequence[str]) -> dict[str, int]:
        bulk = getattr(self.residents, "resident_ids_for_codes", None)
        if callable(bulk):
            found: dict[str, int] = bulk(codes)
            return found
        out = {}
        for code in codes:
            rid = self.residents.resident_id_for_code(code)
            if rid is not None:
                out[code] = rid
        return out

    # -- the review queue -------------------------------------------------------------------------
    def reviews(self, insurer_number: str, *, open_only: bool = True) -> list[ReviewItem]:
        insurer = self.insurer(insurer_number)
        stmt = select(m.ReviewRow).where(m.ReviewRow.insurer_number == insurer.number)
        if open_only:
            stmt = stmt.where(m.ReviewRow.resolved_at.is_(None))
        with self._read() as session:
            return [_review_item(r) for r in session.scalars(stmt.order_by(m.ReviewRow.id))]

    def review(self, insurer_number: str, review_id: int) -> ReviewItem:
        with self._read() as session:
            row = session.get(m.ReviewRow, review_id)
            if row is None or row.insurer_number != insurer_number:
                raise ReviewNotFound("no such review item at this insurer", field="review_id")
            return _review_item(row)

    def resolve_review(self, insurer_number: str, review_id: int,
                       resolution: ReviewResolution, actor: str,
                       corrected: PersonItems | None = None) -> ReviewItem:
        insurer = self.insurer(insurer_number)
        try:
            resolution = ReviewResolution(resolution)
        except ValueError:
            raise InvalidInsuranceInput("resolution: corrected or dismissed",
                                        field="resolution") from None
        item = self.review(insurer.number, review_id)
        if item.resolved_at is not None:
            raise ReviewNotFound("this review item is already resolved", field="review_id")

        def close(session: Session, row: m.QualificationRow) -> bool | None:
            done = session.execute(update(m.ReviewRow).where(
                m.ReviewRow.id == review_id, m.ReviewRow.resolved_at.is_(None)).values(
                resolved_at=self.clock(), resolution=resolution.value, actor=_actor(actor)
            ).execution_options(synchronize_session=False))
            if _rowcount(done) != 1:
                raise ReviewNotFound("this review item is already resolved", field="review_id")
            self._audit(session, "insurance:review:resolve", actor, f"review:{review_id}",
                        reason=resolution.value, qualification=row.id)
            return None

        if resolution is ReviewResolution.DISMISSED:
            with self._write() as session:
                row = self._own(session, insurer.number, item.qualification_id, lock=True)
                close(session, row)
                # Not this person: the record stays (or becomes again) unlinked.
                if row.link_state != LinkState.LINKED.value:
                    row.link_state = LinkState.UNLINKED.value
                    row.resident_id = None
                    row.resident_code = None
                    row.link_route = None
                    row.linked_at = None
                    row.updated_at = self.clock()
            return self.review(insurer.number, review_id)

        if corrected is None:
            raise InvalidInsuranceInput("corrected: the corrected four items", field="corrected")
        items = self._valid_items(corrected)
        missing = missing_items(items)
        if missing:
            raise FourItemsRequired(
                "corrected: all four basic items are needed; missing: " + ", ".join(missing),
                field=missing[0], missing=missing, rule="four_basic_items")

        def correct(session: Session, row: m.QualificationRow) -> bool | None:
            close(session, row)
            row.name, row.name_kana, row.birth_date = items.name, items.name_kana, \
                items.birth_date
            row.sex, row.address = items.sex, items.address
            row.updated_at = self.clock()
            if row.link_state == LinkState.REVIEW.value:
                row.link_state = LinkState.UNLINKED.value
            self._audit(session, "insurance:qualification:correct", actor,
                        f"qualification:{row.id}", review=review_id)
            return None

        # The corrected items are searched first; the correction, the resolution and the
        # outcome (a link, or a new review item) are then one transaction.
        result = self._search(insurer, items)
        identity = result.identity
        if (result.outcome is QueryOutcome.ANSWERED and identity is not None
                and identity.status == "resident"):
            rid = self.residents.resident_id_for_code(identity.resident_code)
            if rid is not None:
                self._relink(item.qualification_id, rid, identity.resident_code, actor,
                             result.query_id, correct)
                return self.review(insurer.number, review_id)
        reason = (ReviewReason.AMBIGUOUS if result.outcome is QueryOutcome.AMBIGUOUS
                  else ReviewReason.NOT_FOUND)
        self._review(item.qualification_id, reason, (), LinkRoute.SEARCH, actor,
                     query_id=result.query_id, prepare=correct)
        return self.review(insurer.number, review_id)

    def _relink(self, qualification_id: int, resident_id: int, resident_code: str, actor: str,
                query_id: int | None,
                correct: Prepare) -> LinkResult:
        """A corrected record found again on all four items: a blocked record of the same
        person is unblocked; otherwise it is linked (to whoever the items now name)."""
        def prepare(session: Session, row: m.QualificationRow) -> bool:
            correct(session, row)
            if row.link_state != LinkState.BLOCKED.value:
                return False
            if row.resident_id == resident_id:
                # The same person after all: linked again under the same rules as any link
                # (the person's other linked records; a job change meanwhile ends this one).
                session.flush()
                self._apply_link(session, row, resident_id, resident_code, LinkRoute.SEARCH,
                                 actor, query_id, unblock=True)
                return True
            # The corrected record describes someone else: it leaves the first person.
            row.link_state = LinkState.UNLINKED.value
            row.resident_id = None
            row.resident_code = None
            row.link_route = None
            row.linked_at = None
            return False

        return self._link(qualification_id, resident_id, resident_code, LinkRoute.SEARCH,
                          actor, query_id=query_id, prepare=prepare)

    # -- the mass re-check ------------------------------------------------------------------------
    def recheck(self, insurer_number: str | None = None, *, batch: int = 1000) -> RecheckReport:
        if not 1 <= batch <= 10_000:
            raise InvalidInsuranceInput("batch: 1 to 10,000", field="batch")
        insurers = {i.number: i for i in self.insurers()}
        if insurer_number is not None:
            only = self.insurer(insurer_number).number
            insurers = {only: insurers[only]}
        q = m.QualificationRow
        checked = still = unavailable = 0
        blocked_ids: list[int] = []
        last = 0
        while True:
            stmt = select(q.id, q.insurer_number, q.resident_code, q.name, q.name_kana,
                          q.birth_date, q.sex, q.address).where(
                q.link_state == LinkState.LINKED.value, q.id > last)
            if insurer_number is not None:
                stmt = stmt.where(q.insurer_number == next(iter(insurers)))
            with self._read() as session:
                rows = session.execute(stmt.order_by(q.id).limit(batch)).all()
            if not rows:
                break
            mismatches: list[tuple[int, tuple[str, ...], int | None]] = []
            for r in rows:
                insurer = insurers.get(r.insurer_number)
                differing: tuple[str, ...] = ITEMS
                query_id = None
                if insurer is not None and r.resident_code:
                    try:
                        answer = self._ask_by_code(insurer, r.resident_code)
                    except _NoAnswer:
                        unavailable += 1  # not checked: left linked, counted apart
                        continue
                    if answer is not None:
                        query_id = answer.query_id
                        if (answer.outcome is QueryOutcome.ANSWERED
                                and answer.identity is not None):
                            differing = differing_items(_items(r), answer.identity)
                        elif answer.outcome is not QueryOutcome.NOT_FOUND:
                            unavailable += 1  # refused (or no single answer): not checked
                            continue
                if differing:
                    mismatches.append((int(r.id), differing, query_id))
                else:
                    still += 1
            if mismatches:
                blocked_ids += self._block(mismatches)
            checked += len(rows)
            last = int(rows[-1].id)
        with self._write() as session:
            self._audit(session, "insurance:recheck:run", "insurance:recheck",
                        f"insurer:{insurer_number or 'all'}", checked=checked,
                        blocked=len(blocked_ids), unavailable=unavailable)
        # Counted as checked (an unavailable answer too); a record changed meanwhile (not
        # blocked) is neither matching nor blocked.
        return RecheckReport(checked, still, len(blocked_ids), tuple(blocked_ids),
                             unavailable=unavailable)

    def _ask_by_code(self, insurer: Insurer, resident_code: str) -> QueryResult | None:
        """住基ネット's answer for a linked record's 住民票コード: a result, None when the stored
        code itself is refused as malformed (the link names nobody: a mismatch), or
        :class:`_NoAnswer` when 住基ネット gave none for a reason that says nothing about the
        record (the agency or use not permitted, the directory or the service unavailable)."""
        try:
            who = self._query_identity(insurer)
            return self.juki.by_code(who.agency_id, who.use_id, resident_code)
        except InvalidJukiInput:
            return None
        except (DomainError, SQLAlchemyError, OSError) as exc:  # UnknownAgency too
            log.warning("insurance: recheck: no answer from 住基ネット for insurer %s (%s)",
                        insurer.number, type(exc).__name__)
            raise _NoAnswer() from None

    def _block(self, mismatches: Sequence[tuple[int, tuple[str, ...], int | None]]) -> list[int]:
        q = m.QualificationRow
        now = self.clock()
        done = []
        with self._write() as session:
            for qid, differing, query_id in mismatches:
                blocked = session.execute(update(q).where(
                    q.id == qid, q.link_state == LinkState.LINKED.value).values(
                    link_state=LinkState.BLOCKED.value, updated_at=now
                ).execution_options(synchronize_session=False))
                if _rowcount(blocked) != 1:
                    continue  # changed meanwhile (lost its link, or blocked already)
                self._close_reviews(session, qid, "insurance:recheck")
                row = session.get(q, qid)
                assert row is not None
                review = m.ReviewRow(qualification_id=qid, insurer_number=row.insurer_number,
                                     reason=ReviewReason.RECHECK_MISMATCH.value,
                                     differing=",".join(differing), created_at=now,
                                     actor="insurance:recheck")
                session.add(review)
                session.flush()
                self._audit(session, "insurance:qualification:block", "insurance:recheck",
                            f"qualification:{qid}", reason=ReviewReason.RECHECK_MISMATCH.value,
                            differing=list(differing), query_id=query_id, review_id=review.id)
                done.append(qid)
        return done

    # -- loss -------------------------------------------------------------------------------------
    def lose(self, insurer_number: str, qualification_id: int, lost_on: dt.date,
             reason: LossReason, actor: str) -> Qualification:
        insurer = self.insurer(insurer_number)
        try:
            reason = LossReason(reason)
        except ValueError:
            raise InvalidInsuranceInput("reason: not a 喪失事由", field="reason") from None
        if not isinstance(lost_on, dt.date) or isinstance(lost_on, dt.datetime):
            raise InvalidInsuranceInput("lost_on: a date", field="lost_on")
        with self._write() as session:
            row = self._own(session, insurer.number, qualification_id, lock=True)
            if row.lost_on is not None:
                raise InvalidInsuranceInput("this qualification has already ended",
                                            field="lost_on", rule="already_lost")
            if lost_on <= row.acquired_on:
                raise InvalidInsuranceInput("lost_on: after acquired_on (資格喪失日 is the day "
                                            "after the last day covered)", field="lost_on")
            self._close(session, row, lost_on, reason, actor)
            return self._qualification(row, insurer.name)

    def _close(self, session: Session, row: m.QualificationRow, lost_on: dt.date,
               reason: LossReason, actor: str) -> bool:
        now = self.clock()
        q = m.QualificationRow
        done = session.execute(update(q).where(q.id == row.id, q.lost_on.is_(None)).values(
            lost_on=lost_on, loss_reason=reason.value, updated_at=now
        ).execution_options(synchronize_session=False))
        if _rowcount(done) != 1:
            return False
        row.lost_on, row.loss_reason = lost_on, reason.value
        self._end_documents(session, [row.id], now)
        self._audit(session, "insurance:qualification:lose", actor, f"qualification:{row.id}",
                    reason=reason.value, lost_on=lost_on.isoformat())
        return True

    def end_for_death(self, resident_id: int, died_on: dt.date,
                      actor: str = EVENT_ACTOR) -> list[int]:
        """A recorded death ends the person's open qualification (資格喪失日: the day after
        the death). Idempotent: a second call finds nothing open. Returns the ended ids."""
        q = m.QualificationRow
        ended = []
        with self._write() as session:
            self._lock_person(session, resident_id)
            # Only the person's linked records: a blocked one that still names them may be
            # someone else's (the re-check distrusts it) and waits for its review.
            rows = session.scalars(select(q).where(q.resident_id == resident_id,
                                                   q.link_state == LinkState.LINKED.value,
                                                   q.lost_on.is_(None))).all()
            for row in rows:
                # One that would start after the death covers nothing (an empty interval).
                lost_on = max(died_on + dt.timedelta(days=1), row.acquired_on)
                if self._close(session, row, lost_on, LossReason.DEATH, actor):
                    ended.append(int(row.id))
        return ended

    # -- documents --------------------------------------------------------------------------------
    def _end_documents(self, session: Session, qualification_ids: Sequence[int],
                       now: dt.datetime) -> None:
        d = m.DocumentRow
        session.execute(update(d).where(
            one_of(d.qualification_id, list(qualification_ids),
                   postgres=self.databases.is_postgres), d.ended_at.is_(None)
        ).values(ended_at=now).execution_options(synchronize_session=False))

    def issue_documents(self, insurer_number: str | None = None, *,
                        today: dt.date | None = None, years: int = 5
                        ) -> dict[CoverageDocumentKind, int]:
        if (not isinstance(years, int) or isinstance(years, bool)
                or not 1 <= years <= CONFIRMATION_CERTIFICATE_MAX_YEARS):
            raise InvalidInsuranceInput(
                f"years: 1 to {CONFIRMATION_CERTIFICATE_MAX_YEARS} (a 資格確認書 is valid up to "
                f"{CONFIRMATION_CERTIFICATE_MAX_YEARS} years)", field="years")
        only = self.insurer(insurer_number).number if insurer_number is not None else None
        today = today or self.today()
        counts = dict.fromkeys(CoverageDocumentKind, 0)
        q = m.QualificationRow
        last = 0
        while True:
            stmt = select(q.id, q.resident_id, q.link_state, q.lost_on).where(
                q.id > last, q.acquired_on <= today,
                (q.lost_on.is_(None)) | (q.lost_on > today), q.link_state.in_(sorted(ISSUABLE)))
            if only is not None:
                stmt = stmt.where(q.insurer_number == only)
            with self._read() as session:
                rows = session.execute(stmt.order_by(q.id).limit(DOCUMENT_BATCH)).all()
            if not rows:
                break
            # JPKI is asked before the batch's transaction (not while holding its lock): who
            # of the linked people has a good user-authentication certificate now.
            usable = self.cards.usable(sorted({
                int(r.resident_id) for r in rows
                if r.resident_id is not None and r.link_state == LinkState.LINKED.value}))
            for attempt in (1, 2, 3):
                try:
                    issued = self._issue_batch([int(r.id) for r in rows], today, years, usable)
                    break
                except IntegrityError:  # a parallel run issued some of them: do it again
                    if attempt == 3:
                        raise
            for kind, n in issued.items():
                counts[kind] += n
            last = int(rows[-1].id)
        return counts

    def _issue_batch(self, ids: list[int], today: dt.date, years: int, usable: set[int]
                     ) -> dict[CoverageDocumentKind, int]:
        q, d = m.QualificationRow, m.DocumentRow
        pg = self.databases.is_postgres
        now = self.clock()
        counts = dict.fromkeys(CoverageDocumentKind, 0)
        with self._write() as session:
            rows = session.execute(select(q.id, q.resident_id, q.link_state, q.lost_on)
                                   .where(one_of(q.id, ids, postgres=pg))).all()
            residents = [int(r.resident_id) for r in rows if r.resident_id is not None]
            activated: set[int] = set()
            for start in range(0, len(residents), in_chunk(pg)):
                activated.update(int(x) for x in session.scalars(
                    select(m.ActivationRow.resident_id).where(one_of(
                        m.ActivationRow.resident_id, residents[start:start + in_chunk(pg)],
                        postgres=pg))))
            current = {int(x.qualification_id): x for x in session.scalars(
                select(d).where(one_of(d.qualification_id, ids, postgres=pg),
                                d.ended_at.is_(None)))}
            ending: list[int] = []
            new: list[dict[str, Any]] = []
            for r in rows:
                if r.link_state not in ISSUABLE:
                    continue  # in review or blocked: the insurer resolves it first
                kind = (CoverageDocumentKind.QUALIFICATION_NOTICE
                        if r.link_state == LinkState.LINKED.value and r.resident_id in activated
                        and r.resident_id in usable
                        else CoverageDocumentKind.CONFIRMATION_CERTIFICATE)
                doc = current.get(int(r.id))
                if doc is not None and doc.kind == kind.value and doc.valid_until >= today:
                    continue  # already holds the right one
                if doc is not None:
                    ending.append(int(r.id))
                valid_until = _add_years(today, years) - dt.timedelta(days=1)
                if r.lost_on is not None:
                    valid_until = min(valid_until, r.lost_on - dt.timedelta(days=1))
                new.append({"kind": kind.value, "qualification_id": int(r.id),
                            "document_number": new_document_number(), "issued_on": today,
                            "valid_until": valid_until, "ended_at": None})
                counts[kind] += 1
            if ending:
                # Issuing one kind ends the other (never both at once: the partial index).
                self._end_documents(session, ending, now)
            if new:
                session.execute(insert(m.DocumentRow), new)
                self._audit(session, "insurance:document:issue", "insurance:documents",
                            f"qualifications:{ids[0]}-{ids[-1]}",
                            certificates=counts[CoverageDocumentKind.CONFIRMATION_CERTIFICATE],
                            notices=counts[CoverageDocumentKind.QUALIFICATION_NOTICE],
                            replaced=len(ending), issued_on=today.isoformat())
        return counts

    def documents(self, qualification_id: int) -> list[CoverageDocument]:
        with self._read() as session:
            if session.get(m.QualificationRow, qualification_id) is None:
                raise QualificationNotFound("no such qualification",
                                            field="qualification_id")
            return [_document(r) for r in session.scalars(
                select(m.DocumentRow).where(m.DocumentRow.qualification_id == qualification_id)
                .order_by(m.DocumentRow.id))]

    # -- for the resident's side and the event subscriber --------------------------------------
    def open_qualifications(self, resident_id: int) -> list[Qualification]:
        """The person's linked qualifications that have not ended (at most one; a blocked
        record is not the person's until its review is resolved)."""
        q = m.QualificationRow
        with self._read() as session:
            rows = session.scalars(select(q).where(q.resident_id == resident_id,
                                                   q.link_state == LinkState.LINKED.value,
                                                   q.lost_on.is_(None))).all()
            return [self._qualification(r) for r in rows]

    def history(self, resident_id: int) -> list[Qualification]:
        """Every qualification linked to the person, oldest first (not a blocked one)."""
        q = m.QualificationRow
        with self._read() as session:
            rows = session.scalars(select(q).where(q.resident_id == resident_id,
                                                   q.link_state == LinkState.LINKED.value)
                                   .order_by(q.acquired_on, q.id)).all()
            return [self._qualification(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """How many records are in each link state (for operators)."""
        q = m.QualificationRow
        with self._read() as session:
            return {str(state): int(n) for state, n in session.execute(
                select(q.link_state, func.count()).group_by(q.link_state))}


def _insurer(row: m.InsurerRow) -> Insurer:
    return Insurer(row.number, row.name, InsurerKind(row.kind), row.agency_id)


def _review_item(row: m.ReviewRow) -> ReviewItem:
    return ReviewItem(
        id=int(row.id), qualification_id=int(row.qualification_id),
        insurer_number=row.insurer_number, reason=ReviewReason(row.reason),
        differing=tuple(x for x in row.differing.split(",") if x), created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolution=ReviewResolution(row.resolution) if row.resolution else None)


def _document(row: m.DocumentRow) -> CoverageDocument:
    return CoverageDocument(
        id=int(row.id), kind=CoverageDocumentKind(row.kind),
        qualification_id=int(row.qualification_id),
        document_number=row.document_number, issued_on=row.issued_on,
        valid_until=row.valid_until, ended_at=row.ended_at)

"""Insurers and insured persons for the embedded demo (``mynumber seed``).

Seeded data behaves like data entered by hand: every record goes through the insurer
service's own rules (``enrol_many`` and ``link_many_by_search``: ``enrol`` and
``link_by_search`` for a batch of one insurer's records, the same validation, the same
four-item search at 住基ネット for each record, recorded there and in the residents'
disclosure; the number-route near-misses through ``link_by_number``), and each near-miss lands
in the review queue like any other. Batches keep the default seed (10,000 residents) to a few
seconds of database work per thousand.

- **Insurers** for the network directory's insurer agencies: 協会けんぽ (one 支部 per prefecture
  the residents live in), the 健康保険組合 and 国民健康保険組合 of the directory, the 市区町村国保
  of each seeded municipality's mayor (a ward of a designated city: the city's), and the
  後期高齢者医療広域連合 of each of those prefectures. Their 保険者番号 are synthetic but valid
  (``codes.insurer_number``; a 国保's is its 団体コード's first five digits and the check).
- **One qualification per current resident**: 75 and over in the prefecture's 広域連合;
  otherwise the household goes together, to an employees' insurer (協会けんぽ or a 健康保険組合:
  the head insured, the others 被扶養者 (家族) on the same 記号・番号 with their own 枝番) or to
  国保 (the municipality's, sometimes a 国保組合: everyone insured). 一部負担金割合 by age (20%
  before school age and from 70, 30% otherwise; 10% for most of 後期高齢), 高齢受給者 at 70-74,
  and a 限度額適用区分 for some.
- **Deliberate near-misses**: one of each pair of residents the registry's seed planted with
  the same kana name, birth date and sex (``same_kana_birth_sex``), and a few others, are
  enrolled with a stale address: half are searched (``not_found``), half are given the
  person's number (``address_differs``: three items agree, the address does not). None is
  linked; all wait in the review queue.
- **Clinical lines**: with ``record_clinical`` (the eligibility service's
  ``record_clinical``: the service path, the same checks), each enrolled person gets
  :data:`CLINICAL_MONTHS` months of synthetic 薬剤情報 / 特定健診情報 / 診療・手術情報
  (``insurance.clinical.synthetic_records``, deterministic for the seed and the person), so a
  consented view at a demo reception shows something. One short transaction per person
  (about a millisecond each on SQLite).
- **Dates** are Japan's (``kernel.localtime``): around midnight UTC the host's date would be a
  day off the service's "today".
- **Idempotent**: nothing is enrolled when any qualification exists; insurers already
  registered are left as they are.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mynumber.codes.insurer_number import with_check_digit
from mynumber.db import utcnow
from mynumber.errors import DomainError, Forbidden
from mynumber.insurance.clinical import synthetic_records
from mynumber.insurance.interfaces import (
    ClinicalRecord,
    InsuredKind,
    InsurerKind,
    InsurerService,
    LimitCategory,
    LinkResult,
    LinkState,
    NewInsuredPerson,
    PersonItems,
    Qualification,
)
from mynumber.kernel.localtime import in_japan
from mynumber.network.interfaces import AgencyRecord, NetworkService, mayor_lookup
from mynumber.registry.interfaces import ResidentRecord, ResidentStatus
from mynumber.settings import Mode, Settings

SEED_ACTOR = "system:seed"
DEFAULT_SEED = 2026
#: Besides the planted same-kana pairs, this many residents get a near-miss record.
EXTRA_NEAR_MISSES = 3
#: Months of synthetic clinical lines each seeded insured person gets.
CLINICAL_MONTHS = 12
#: 後期高齢者医療 began on 2008-04-01 (高齢者の医療の確保に関する法律).
LATE_ELDERLY_START = dt.date(2008, 4, 1)
_FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")
_BAN = re.compile(r"([0-9]+)番")


class SeedRefused(Forbidden):
    code = "insurance_seed_refused"
    title = "Seeded insurance data is for the embedded mode only"


class SeedInsurers(InsurerService, Protocol):
    """The insurer service and what the seed uses of it beyond the protocol."""

    def counts(self) -> dict[str, int]: ...

    def enrol_many(self, insurer_number: str, persons: Sequence[NewInsuredPerson],
                   actor: str) -> list[Qualification]: ...

    def link_many_by_search(self, insurer_number: str, qualification_ids: Sequence[int],
                            actor: str) -> list[LinkResult]: ...


@dataclass
class InsuranceSeedResult:
    insurers: int = 0
    enrolled: int = 0
    linked: int = 0
    in_review: int = 0
    near_misses: int = 0
    refused: int = 0
    clinical_people: int = 0
    clinical_lines: int = 0
    skipped: bool = False
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        if self.skipped:
            return "insurance: qualifications already seeded: nothing enrolled"
        reasons = ", ".join(f"{n} {k}" for k, n in sorted(self.reasons.items()))
        clinical = (f", {self.clinical_lines:,} synthetic clinical lines for "
                    f"{self.clinical_people:,} people" if self.clinical_people else "")
        return (f"seeded {self.insurers} insurers and {self.enrolled:,} qualifications "
                f"({self.linked:,} linked on all four items, {self.in_review} in the review "
                f"queue: {reasons or 'none'}; {self.near_misses} deliberate near-misses)"
                f"{clinical} in {self.seconds:.1f} s")


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, month=3, day=1)


def _strip(name: str, suffix: str) -> str:
    return name[: -len(suffix)] if name.endswith(suffix) else name


def register_insurers(service: InsurerService, network: NetworkService,
                      residents: Sequence[ResidentRecord]
                      ) -> dict[str, dict[InsurerKind, list[str]]]:
    """Register the demo insurers; returns, per prefecture code, the insurer numbers of each
    kind the prefecture's residents may have (``""`` keys the nationwide ones)."""
    agencies = network.agencies()
    mayor_of = mayor_lookup(agencies)
    by_id = {a.agency_id: a for a in agencies}
    prefectures = sorted({r.municipality_code[:2] for r in residents})
    plans: dict[str, dict[InsurerKind, list[str]]] = defaultdict(lambda: defaultdict(list))

    def register(number: str, name: str, kind: InsurerKind, agency: AgencyRecord,
                 key: str) -> None:
        service.register_insurer(number, name, kind, agency.agency_id, SEED_ACTOR)
        plans[key][kind].append(number)

    def prefecture_name(pp: str) -> str:
        governor = by_id.get(f"prefecture-{pp}")
        return _strip(governor.name, "知事") if governor else pp

    for pp in prefectures:
        kyokai = by_id.get("kyokai_kenpo")
        if kyokai is not None:
            register(with_check_digit(f"01{pp}001"),
                     f"全国健康保険協会 {prefecture_name(pp)}支部", InsurerKind.KYOKAI, kyokai, pp)
        union = by_id.get(f"prefecture-{pp}-elderly-medical-union")
        if union is not None:
            register(with_check_digit(f"39{pp}100"), union.name, InsurerKind.LATE_ELDERLY,
                     union, pp)
    for index, agency in enumerate(sorted((a for a in agencies
                                           if a.kind == "health_insurance_society"),
                                          key=lambda a: a.number)):
        register(with_check_digit(f"0613{index + 1:03d}"), agency.name, InsurerKind.SOCIETY,
                 agency, "")
    for index, agency in enumerate(sorted((a for a in agencies
                                           if a.kind == "national_health_insurance_society"),
                                          key=lambda a: a.number)):
        register(with_check_digit(f"13{301 + index:03d}"), agency.name,
                 InsurerKind.NHI_SOCIETY, agency, "")
    seen: set[str] = set()
    for code in sorted({r.municipality_code for r in residents}):
        mayor_id = mayor_of(code)
        mayor = by_id.get(mayor_id or "")
        if mayor is None or mayor.municipality_code is None or mayor_id in seen:
            continue
        seen.add(mayor.agency_id)
        service.register_insurer(with_check_digit(mayor.municipality_code[:5]),
                                 f"{_strip(mayor.name, '長')}国民健康保険",
                                 InsurerKind.MUNICIPAL_NHI, mayor.agency_id, SEED_ACTOR)
    # A ward's residents belong to their city's 国保: map every code to its mayor's number.
    for code in {r.municipality_code for r in residents}:
        mayor = by_id.get(mayor_of(code) or "")
        if mayor is not None and mayor.municipality_code is not None:
            plans[f"municipality:{code}"][InsurerKind.MUNICIPAL_NHI] = [
                with_check_digit(mayor.municipality_code[:5])]
    return plans


def _stale_address(address: str, rng: random.Random) -> str:
    """An address the person does not live at (a 番 nobody in the seed has)."""
    stale, n = _BAN.subn(lambda m: f"{int(m[1]) + 40 + rng.randrange(20)}番", address, count=1)
    return stale if n else address + "（旧住所）"


def _items(record: ResidentRecord, rng: random.Random) -> PersonItems:
    """The four items as an insurer typed them: the registry's, written in one of the usual
    ways (full-width digits, 男/女) that normalisation makes equal."""
    address = record.address
    sex = record.sex.value
    if rng.random() < 0.2:
        address = address.translate(_FULL_WIDTH)
    if rng.random() < 0.3:
        sex = "男" if sex == "male" else "女"
    return PersonItems(record.name, record.name_kana, record.birth_date.isoformat(), sex,
                       address)


def seed_insurance(
    service: SeedInsurers, network: NetworkService, settings: Settings,
    residents: Iterable[ResidentRecord], *, number_of: Callable[[int], str | None] | None = None,
    seed: int = DEFAULT_SEED, today: dt.date | None = None, batch: int = 500,
    progress: Callable[[int, int], None] | None = None,
    record_clinical: Callable[[int, Sequence[ClinicalRecord]], int] | None = None,
) -> InsuranceSeedResult:
    """Register the demo insurers and enrol and link each current resident once (see the
    module docstring). ``number_of(resident_id)`` gives a resident's 個人番号 for the
    number-route near-misses (as the insured person would give it); without it every
    near-miss is searched. ``record_clinical`` (the eligibility service's) stores each
    enrolled person's synthetic clinical lines; ``today`` defaults to the date in Japan."""
    if settings.mode is not Mode.EMBEDDED:
        raise SeedRefused("seeded insurance data is for the embedded mode only")
    t0 = time.perf_counter()
    result = InsuranceSeedResult()
    current = [r for r in residents if r.status is ResidentStatus.RESIDENT]
    if not current:
        result.seconds = time.perf_counter() - t0
        return result
    plans = register_insurers(service, network, current)
    result.insurers = len(service.insurers())
    if any(service.counts().values()):
        result.skipped = True
        result.seconds = time.perf_counter() - t0
        return result
    today = today or in_japan(utcnow()).date()
    rng = random.Random(seed)
    near_miss = _near_misses(current, rng)
    households: dict[int, list[ResidentRecord]] = defaultdict(list)
    for r in current:
        households[r.household_id if r.household_id is not None else -r.id].append(r)
    serial: dict[str, int] = defaultdict(int)
    planned: dict[str, list[tuple[ResidentRecord, NewInsuredPerson]]] = defaultdict(list)
    for key in sorted(households):
        members = sorted(households[key], key=lambda r: (r.relationship != "世帯主",
                                                         r.birth_date))
        for record, insurer, kind, symbol, number, branch in _assign(
                members, plans, rng, today, serial):
            planned[insurer].append((record, _person(
                record, insurer, kind, symbol, number, branch, rng, today,
                near_miss.get(record.id))))
    done = 0
    total = sum(len(v) for v in planned.values())
    for insurer in sorted(planned):
        entries = planned[insurer]
        for start in range(0, len(entries), batch):
            chunk = entries[start:start + batch]
            enrolled = _enrol_and_link(service, insurer, chunk, near_miss, number_of, result)
            if record_clinical is not None:
                _clinical(record_clinical, enrolled, seed, today, result)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    result.seconds = time.perf_counter() - t0
    return result


def _clinical(record_clinical: Callable[[int, Sequence[ClinicalRecord]], int],
              people: Sequence[ResidentRecord], seed: int, today: dt.date,
              result: InsuranceSeedResult) -> None:
    """Each person's synthetic lines, through the eligibility service (one call each: it
    takes one person's lines at a time). The person's own random stream (seed and id): the
    same lines on every run, whatever the batch."""
    for record in people:
        rng = random.Random(f"{seed}:clinical:{record.id}")
        lines = synthetic_records(rng, today=today, age=_age(record.birth_date, today),
                                  months=CLINICAL_MONTHS)
        result.clinical_lines += record_clinical(record.id, lines)
        result.clinical_people += 1


def _near_misses(current: Sequence[ResidentRecord], rng: random.Random) -> dict[int, str]:
    """Resident id -> the route its near-miss is tried by (``search`` / ``number``)."""
    groups: dict[tuple[str, dt.date, str], list[ResidentRecord]] = defaultdict(list)
    for r in current:
        groups[(r.name_kana, r.birth_date, r.sex.value)].append(r)
    chosen = [min(g, key=lambda r: r.id) for g in groups.values() if len(g) > 1]
    taken = {r.id for r in chosen}
    others = [r for r in current if r.id not in taken and r.nationality == "JP"]
    chosen += rng.sample(others, min(EXTRA_NEAR_MISSES, len(others)))
    return {r.id: ("number" if i % 2 else "search") for i, r in enumerate(chosen)}


def _assign(members: list[ResidentRecord], plans: dict[str, dict[InsurerKind, list[str]]],
            rng: random.Random, today: dt.date, serial: dict[str, int]
            ) -> Iterable[tuple[ResidentRecord, str, InsuredKind, str, str, str]]:
    """Each member's insurer, 本人/家族 and 記号・番号・枝番."""
    def next_number(insurer: str) -> str:
        serial[insurer] += 1
        # 後期高齢者医療: an 8-digit 被保険者番号 and no 記号.
        return f"{serial[insurer]:08d}" if insurer.startswith("39") else f"{serial[insurer]:07d}"

    elderly = [r for r in members if _age(r.birth_date, today) >= 75]
    younger = [r for r in members if _age(r.birth_date, today) < 75]
    for r in elderly:
        pp = r.municipality_code[:2]
        late = plans[pp].get(InsurerKind.LATE_ELDERLY) or []
        if late:
            yield r, late[0], InsuredKind.INSURED, "", next_number(late[0]), "00"
        else:
            younger.append(r)
    if not younger:
        return
    head = younger[0]
    pp = head.municipality_code[:2]
    head_age = _age(head.birth_date, today)
    employed = rng.random() < (0.6 if 20 <= head_age < 65 else 0.2 if head_age >= 65 else 0.0)
    employers = (plans[pp].get(InsurerKind.KYOKAI, []) * 3
                 + plans[""].get(InsurerKind.SOCIETY, []))
    nhi = plans[f"municipality:{head.municipality_code}"].get(InsurerKind.MUNICIPAL_NHI, [])
    if employed and employers:
        insurer = rng.choice(employers)
        symbol = f"{rng.randrange(10_000, 100_000_000)}"
        number = next_number(insurer)
        for i, r in enumerate(younger):
            yield (r, insurer, InsuredKind.INSURED if i == 0 else InsuredKind.DEPENDENT,
                   symbol, number, f"{i:02d}")
        return
    societies = plans[""].get(InsurerKind.NHI_SOCIETY, [])
    choices = nhi * 9 + societies if nhi else societies
    if not choices:  # no 国保 here: the employees' insurers take the household
        choices = employers
    insurer = rng.choice(choices)
    symbol = f"{rng.randrange(1, 100):02d}"
    number = next_number(insurer)
    for i, r in enumerate(younger):
        yield r, insurer, InsuredKind.INSURED, symbol, number, f"{i:02d}"


def _person(record: ResidentRecord, insurer: str, kind: InsuredKind, symbol: str,
            number: str, branch: str, rng: random.Random, today: dt.date,
            near_miss: str | None) -> NewInsuredPerson:
    age = _age(record.birth_date, today)
    if insurer.startswith("39"):  # 後期高齢者医療: from the 75th birthday (or its start)
        acquired = max(_add_years(record.birth_date, 75), LATE_ELDERLY_START)
        copay = rng.choices((10, 20, 30), (80, 12, 8))[0]
    else:
        earliest = max(record.birth_date, today - dt.timedelta(days=365 * 15))
        span = max(0, (today - earliest).days - 1)
        acquired = earliest + dt.timedelta(days=rng.randrange(span + 1))
        copay = 20 if age < 6 or 70 <= age < 75 else 30
    limit = None
    if rng.random() < 0.2:
        over_70 = _age(record.birth_date, acquired) >= 70
        limit = rng.choice([LimitCategory.GENERAL, LimitCategory.LOW_2, LimitCategory.LOW_1,
                            LimitCategory.ACTIVE_1] if over_70 else
                           [LimitCategory.A, LimitCategory.I, LimitCategory.U,
                            LimitCategory.E, LimitCategory.O])
    items = _items(record, rng)
    if near_miss is not None:
        items = PersonItems(items.name, items.name_kana, items.birth_date, items.sex,
                            _stale_address(record.address, rng))
    return NewInsuredPerson(
        symbol=symbol, number=number, branch=branch, insured_kind=kind, acquired_on=acquired,
        copay_percent=copay, items=items, elderly_recipient=70 <= age < 75,
        limit_category=limit)


def _enrol_and_link(service: SeedInsurers, insurer: str,
                    chunk: Sequence[tuple[ResidentRecord, NewInsuredPerson]],
                    near_miss: dict[int, str], number_of: Callable[[int], str | None] | None,
                    result: InsuranceSeedResult) -> list[ResidentRecord]:
    """Enrol a batch of one insurer's records, then link them: by the four-item search, and
    the number-route near-misses by the number each person would give. Returns the people
    enrolled."""
    try:
        enrolled = service.enrol_many(insurer, [p for _, p in chunk], SEED_ACTOR)
    except DomainError as exc:
        if len(chunk) == 1:
            result.refused += 1
            _count(result, exc.code)
            return []
        people = []
        for entry in chunk:  # a record the rules refuse: the others one by one
            people += _enrol_and_link(service, insurer, [entry], near_miss, number_of, result)
        return people
    result.enrolled += len(enrolled)
    by_number = []
    searched = []
    for (record, _), q in zip(chunk, enrolled, strict=True):
        if record.id in near_miss:
            result.near_misses += 1
        if near_miss.get(record.id) == "number" and number_of is not None:
            by_number.append((record, q.id))
        else:
            searched.append(q.id)
    outcomes = []
    try:
        outcomes += service.link_many_by_search(insurer, searched, SEED_ACTOR)
    except DomainError:
        for qid in searched:
            try:
                outcomes.append(service.link_by_search(insurer, qid, SEED_ACTOR))
            except DomainError as exc:
                _count(result, exc.code)
    for record, qid in by_number:
        number = number_of(record.id) if number_of is not None else None
        try:
            outcomes.append(service.link_by_number(insurer, qid, number, SEED_ACTOR)
                            if number is not None
                            else service.link_by_search(insurer, qid, SEED_ACTOR))
        except DomainError as exc:
            _count(result, exc.code)
    for outcome in outcomes:
        if outcome.state is LinkState.LINKED:
            result.linked += 1
        else:
            result.in_review += 1
            _count(result, outcome.reason.value if outcome.reason else "review")
    return [record for record, _ in chunk]


def _count(result: InsuranceSeedResult, reason: str) -> None:
    result.reasons[reason] = result.reasons.get(reason, 0) + 1

"""Demo data for the network: agencies that know the synthetic residents (each under its own
宛名番号 and 機関別符号), the 副本 they offer, and a history of exchanges over the past half
year, a few refused, a few restricted (criminal investigation, one past its deferral), and a
few applications taken without a number.

Everything goes through the real services (registry 取得番号, the core's routing and log,
the intermediate servers' envelopes); only the clock is moved back so the history has dates.
Embedded mode only: the registry refuses seeding acquisition numbers in production.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mynumber.agencies.events import municipal_address_number
from mynumber.agencies.interfaces import (
    KYOKAI,
    MHLW,
    PENSION,
    CopyInput,
    resident_record_copy,
)
from mynumber.network.interfaces import LegalTable, mayor_lookup
from mynumber.registry.interfaces import ResidentRecord
from mynumber.settings import Mode, Settings

PORTAL = "mynaportal"
JASSO = "jasso"
HISTORY_DAYS = 180
MAX_EXCHANGES = 5000


class SeedTarget(Protocol):
    settings: Settings
    network: Any
    agencies: Any
    agencies_server: Any
    network_log: Any


@dataclass
class NetworkSeedResult:
    agencies: int = 0
    enrolments: int = 0
    copies: int = 0
    exchanges: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    restricted: int = 0
    declined: int = 0
    log_size: int = 0
    seconds: float = 0.0


def address_number(seed: int, agency_id: str, resident_id: int) -> str:
    """Each agency numbers its people its own way: no two agencies share a 宛名番号 scheme, so
    nothing outside the core can join their tables."""
    digest = hashlib.blake2b(f"{seed}:{agency_id}:{resident_id}".encode(), digest_size=8)
    return f"A{int.from_bytes(digest.digest(), 'big') % 10**12:012d}"


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


class _Plans:
    """Tasks under which a requester kind may ask a provider kind for an item."""

    def __init__(self, table: LegalTable) -> None:
        self.table = table
        self._cache: dict[tuple[str, str, str], list[str]] = {}
        self._tasks = [t.task_id for t in table.tasks()]

    def tasks(self, requester_kind: str, provider_kind: str, item: str) -> list[str]:
        key = (requester_kind, provider_kind, item)
        if key not in self._cache:
            self._cache[key] = [
                t for t in self._tasks
                if not t.startswith("extra-")
                and self.table.find(requester_kind, t, provider_kind, item) is not None
            ]
        return self._cache[key]


def seed_exchanges(
    target: SeedTarget,
    residents: Iterable[ResidentRecord],
    *,
    seed: int = 20240101,
    exchanges: int | None = None,
    as_of: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> NetworkSeedResult:
    if target.settings.mode is not Mode.EMBEDDED:
        raise RuntimeError("network demo data is for the embedded mode only")
    started = time.perf_counter()
    rng = random.Random(seed)
    now = as_of or dt.datetime.now(dt.UTC)
    today = now.date()
    network, agencies = target.network, target.agencies
    directory = network.agencies()
    by_id = {a.agency_id: a for a in directory}
    mayor = mayor_lookup(directory)
    people = [r for r in residents if r.numbered]
    result = NetworkSeedResult()

    # -- who knows whom, and what they hold ---------------------------------------------------
    households: dict[int | None, list[ResidentRecord]] = defaultdict(list)
    for r in people:
        if r.household_id is not None:
            households[r.household_id].append(r)
    own_mayor = {r.id: mayor(r.municipality_code) for r in people}

    def number_for(agency: str, rid: int) -> str:
        # The resident's own municipality numbers its residents as its registry events do
        # (agencies.events), so the seeded enrolment is the one those events find.
        if agency == own_mayor.get(rid):
            return municipal_address_number(rid)
        return address_number(seed, agency, rid)

    enrol: dict[str, dict[int, str]] = defaultdict(dict)
    copies: dict[str, list[CopyInput]] = defaultdict(list)
    holdings: dict[int, list[tuple[str, str]]] = defaultdict(list)  # rid -> (provider, item)
    for r in people:
        age = _age(r.birth_date, today)
        city = mayor(r.municipality_code)

        def know(agency: str, rid: int = r.id) -> str:
            number = number_for(agency, rid)
            enrol[agency][rid] = number
            return number

        def hold(agency: str, item: str, payload: dict[str, Any], rid: int = r.id) -> None:
            copies[agency].append(CopyInput(know(agency, rid), item, payload))
            holdings[rid].append((agency, item))

        know(PORTAL)
        if city is not None:
            hold(city, "resident_record",
                 resident_record_copy(r, households.get(r.household_id, ())))
            if age >= 18:
                income = rng.randrange(0, 9_000_000, 10_000)
                hold(city, "local_tax", {
                    "fiscal_year": today.year - 1, "taxable_income": income,
                    "municipal_tax": income // 10, "exempt": income < 1_000_000,
                })
            children = [o for o in households.get(r.household_id, ())
                        if o.relationship == "子" and _age(o.birth_date, today) < 18]
            if r.relationship == "世帯主" and children:
                # 児童手当 (2024 rules): 10,000 a month per child, 15,000 under 3.
                hold(city, "child_allowance", {
                    "status": "receiving", "children": len(children),
                    "monthly_amount": sum(15_000 if _age(c.birth_date, today) < 3 else 10_000
                                          for c in children),
                })
            if 65 <= age:
                hold(city, "long_term_care", {"certified_level": rng.choice(
                    ["none", "none", "none", "support_1", "care_1", "care_2"])})
        if age >= 65:
            hold(PENSION, "pension", {
                "kind": "old_age_basic_pension", "annual_amount": rng.randrange(600_000,
                                                                               2_400_000, 1000),
            })
        elif 20 <= age < 65 and rng.random() < 0.5:
            hold(KYOKAI, "medical_insurance", {
                "insurer": "全国健康保険協会", "status": "insured",
                "standard_monthly_remuneration": rng.randrange(200_000, 650_000, 10_000),
            })
            know(MHLW)
        if 18 <= age <= 26 and rng.random() < 0.3:
            know(JASSO)


    # -- the history -----------------------------------------------------------------------
    plans = _Plans(network.legal_table())
    requesters_for = {
        "resident_record": [MHLW, PENSION, KYOKAI],
        "local_tax": [MHLW, KYOKAI, PENSION],
        "long_term_care": [MHLW],
        "pension": [KYOKAI, "__city__"],
        "medical_insurance": [PENSION, "__city__"],
    }
    planned: list[tuple[str, int, str, str, str, str]] = []  # requester, rid, task, prov, item
    target_count = exchanges if exchanges is not None else min(len(people) // 2, MAX_EXCHANGES)
    candidates = [r for r in people if holdings[r.id]]
    attempts = 0
    while candidates and len(planned) < target_count and attempts < target_count * 20:
        attempts += 1
        r = rng.choice(candidates)
        provider, item = rng.choice(holdings[r.id])
        requester = rng.choice(requesters_for.get(item, [MHLW]))
        if requester == "__city__":
            requester = mayor(r.municipality_code) or MHLW
        if requester == provider or requester not in by_id:
            continue
        tasks = plans.tasks(by_id[requester].kind, by_id[provider].kind, item)
        if not tasks:
            continue
        planned.append(("ok", r.id, requester, rng.choice(tasks), provider, item))
        enrol[requester][r.id] = number_for(requester, r.id)
    # A few queries outside the table (refused, and shown to the resident like the rest).
    for r in rng.sample(candidates, min(len(candidates), max(3, target_count // 50))):
        provider, item = rng.choice(holdings[r.id])
        planned.append(("refused", r.id, JASSO, "bekkyo2-1", provider, item))
        enrol[JASSO][r.id] = number_for(JASSO, r.id)
    when = sorted(now - dt.timedelta(seconds=rng.uniform(60, HISTORY_DAYS * 86400))
                  for _ in planned)
    rng.shuffle(planned)
    events: list[tuple[dt.datetime, tuple[str, int, str, str, str, str]]] = list(
        zip(when, planned, strict=True))
    # Restricted provision: criminal investigation. One past the deferral, one still deferred.
    police = [a.agency_id for a in directory if a.kind == "prefectural_police"]
    deferral = dt.timedelta(days=target.settings.restricted_disclosure_days)
    city_people = [r for r in candidates if any(i == "resident_record" for _, i in holdings[r.id])]
    for offset, r in zip((deferral + dt.timedelta(days=30), dt.timedelta(days=20)),
                         rng.sample(city_people, min(2, len(city_people))), strict=False):
        city = mayor(r.municipality_code)
        prefecture_police = next((p for p in police if p.startswith(
            f"prefecture-{r.municipality_code[:2]}")), None)
        if city and prefecture_police:
            events.append((now - offset, ("restricted", r.id, prefecture_police,
                                          "extra-criminal-investigation", city,
                                          "resident_record")))
            enrol[prefecture_police][r.id] = number_for(prefecture_police, r.id)
    events.sort(key=lambda e: e[0])

    # 番号法 別表第一: only an agency with a use of the number gets agency codes (the core
    # refuses the others), so only those enrol people, hold copies or ask.
    without_use = {a for a in set(enrol) | set(copies)
                   if a not in by_id or not network.number_uses(by_id[a].kind)}
    if without_use:
        for agency in without_use:
            enrol.pop(agency, None)
            copies.pop(agency, None)
        events = [e for e in events
                  if e[1][2] not in without_use and e[1][4] not in without_use]

    for agency in enrol:
        agencies.ensure_registered(agency)
    for agency, wanted in enrol.items():
        agencies.enrol_known_residents(agency, wanted)
        result.enrolments += len(wanted)
    for agency, rows in copies.items():
        result.copies += agencies.put_copies(agency, rows)
    result.agencies = len(enrol)

    clock_holders = [network, agencies, target.agencies_server]
    saved = [h.clock for h in clock_holders]
    current = [now]
    for holder in clock_holders:
        holder.clock = lambda: current[0]
    try:
        total = len(events)
        for done, (at, (kind, rid, requester, task, provider, item)) in enumerate(events, 1):
            current[0] = at
            query = agencies.query(requester, enrol[requester][rid], task, provider, item)
            result.outcomes[query.outcome.value] = result.outcomes.get(query.outcome.value, 0) + 1
            result.restricted += kind == "restricted"
            if progress and done % 250 == 0:
                progress(done, total)
        # Applications taken without a number: documents instead, no linkage.
        cities = sorted({c for c in (mayor(r.municipality_code) for r in people) if c})
        for i in range(min(5, len(cities) * 2)):
            current[0] = now - dt.timedelta(days=rng.uniform(1, HISTORY_DAYS))
            agencies.record_declined(
                cities[i % len(cities)], "bekkyo2-56-2" if "bekkyo2-56-2" in
                {t.task_id for t in network.legal_table().tasks()} else "bekkyo2-1",
                f"APP-{seed % 10000:04d}-{i:04d}", ["課税証明書", "本人確認書類の写し"],
            )
            result.declined += 1
    finally:
        for holder, clock in zip(clock_holders, saved, strict=True):
            holder.clock = clock
    result.exchanges = len(events)
    while target.network_log.integrate() > 0:
        pass
    result.log_size = target.network_log.latest_head().size
    result.seconds = time.perf_counter() - started
    return result

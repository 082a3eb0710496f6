"""The legal table (番号法 別表第二) as reviewed data, and the directory of concrete agencies.

Everything here is read from ``mynumber/network/data`` (see its README.md and
docs/legal-table.md): ``legal_table.csv`` is the law, byte for byte; the other files are our
reviewed reading of it. Loading is strict: a requester or provider text that no agency group
resolves, an information text that no item covers, an unknown kind or a row that does not
become either a provision or a deleted item stops the load with :class:`LegalTableDataError`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Protocol

from mynumber.network.interfaces import InformationItem, Provision, Task

__all__ = [
    "WILDCARD",
    "AgencySpec",
    "LegalTableData",
    "LegalTableDataError",
    "MunicipalityLike",
    "build_directory",
    "load_legal_table",
    "national_agencies",
    "parse_legal_table",
]

DATA_PACKAGE = "mynumber.network"
DATA_DIR = "data"
WILDCARD = "*"
DELETED = "削除"  # the requester cell of a deleted item (項)
TABLE_COLUMNS = ["item", "requester", "task", "provider", "information", "source"]
TERM_SEPARATOR = re.compile("、|又は|若しくは")
ITEM_NO = re.compile(r"^([0-9]+)(?:-([0-9]+))?$")

Combination = tuple[str, str, str, str]  # (requester_kind, task_id, provider_kind, item_code)


class LegalTableDataError(ValueError):
    """The package data is inconsistent; the table refuses to load rather than guess."""


def _read_data(name: str) -> str:
    return (resources.files(DATA_PACKAGE) / DATA_DIR / name).read_text(encoding="utf-8")


def _rows(text: str, columns: Sequence[str], name: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or list(reader.fieldnames) != list(columns):
        raise LegalTableDataError(
            f"{name}: expected columns {list(columns)}, got {reader.fieldnames}"
        )
    rows = []
    for line_no, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise LegalTableDataError(f"{name}:{line_no}: wrong number of fields")
        rows.append(row)
    return rows


def item_reference(item_no: str) -> str:
    """"56-2" -> "番号法別表第二 第56の2項"."""
    m = ITEM_NO.match(item_no)
    if m is None:
        raise LegalTableDataError(f"bad item number {item_no!r}")
    number = m.group(1) + (f"の{m.group(2)}" if m.group(2) else "")
    return f"番号法別表第二 第{number}項"


def task_id_for(item_no: str) -> str:
    return f"bekkyo2-{item_no}"


def _kinds_field(value: str, known: Mapping[str, str], where: str) -> frozenset[str]:
    kinds = value.split()
    if not kinds:
        raise LegalTableDataError(f"{where}: no kinds")
    for kind in kinds:
        if kind != WILDCARD and kind not in known:
            raise LegalTableDataError(f"{where}: unknown agency kind {kind!r}")
    if len(set(kinds)) != len(kinds):
        raise LegalTableDataError(f"{where}: duplicate kinds")
    return frozenset(kinds)


class LegalTableData:
    """The parsed, validated table. Immutable; implements ``interfaces.LegalTable``."""

    def __init__(
        self,
        *,
        provisions: Sequence[Provision],
        tasks: Sequence[Task],
        items: Sequence[InformationItem],
        agency_kinds: Mapping[str, str],
        deleted_task_ids: frozenset[str],
        rows_read: int,
        groups: Mapping[str, frozenset[str]],
    ) -> None:
        self._provisions = tuple(provisions)
        self._tasks = tuple(tasks)
        self._items = tuple(items)
        self._kinds = dict(agency_kinds)
        self.deleted_task_ids = deleted_task_ids
        self.rows_read = rows_read
        self.groups: Mapping[str, frozenset[str]] = dict(groups)
        self._item_codes = frozenset(i.code for i in self._items)
        # The portal is never a provider, so a provider wildcard does not cover it.
        self._provider_universe = frozenset(k for k in self._kinds if k != "portal")
        self._by_id = {p.provision_id: p for p in self._provisions}
        self._index: dict[Combination, Provision] = {}
        self._wild: dict[tuple[str, str], list[Provision]] = {}
        for p in self._provisions:
            if WILDCARD in p.provider_kinds or WILDCARD in p.items:
                for rk in p.requester_kinds:
                    self._wild.setdefault((rk, p.task_id), []).append(p)
                continue
            for combo in self._explicit(p):
                self._index.setdefault(combo, p)  # first row that permits it wins

    @staticmethod
    def _explicit(p: Provision) -> Iterator[Combination]:
        for rk in p.requester_kinds:
            for pk in p.provider_kinds:
                for item in p.items:
                    yield (rk, p.task_id, pk, item)

    # -- the LegalTable protocol ----------------------------------------------------------
    def provisions(self) -> Sequence[Provision]:
        return self._provisions

    def tasks(self) -> Sequence[Task]:
        return self._tasks

    def items(self) -> Sequence[InformationItem]:
        return self._items

    def agency_kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    def find(
        self, requester_kind: str, task_id: str, provider_kind: str, item_code: str
    ) -> Provision | None:
        found = self._index.get((requester_kind, task_id, provider_kind, item_code))
        if found is not None:
            return found
        for p in self._wild.get((requester_kind, task_id), ()):
            if self._covers(p, provider_kind, item_code):
                return p
        return None

    # -- helpers ---------------------------------------------------------------------------
    def _covers(self, p: Provision, provider_kind: str, item_code: str) -> bool:
        provider_ok = provider_kind in p.provider_kinds or (
            WILDCARD in p.provider_kinds and provider_kind in self._provider_universe
        )
        item_ok = item_code in p.items or (WILDCARD in p.items and item_code in self._item_codes)
        return provider_ok and item_ok

    def provision(self, provision_id: str) -> Provision:
        return self._by_id[provision_id]

    def expand(self, p: Provision) -> Iterator[Combination]:
        """Every (requester_kind, task_id, provider_kind, item) one provision permits."""
        providers = (
            self._provider_universe | (p.provider_kinds - {WILDCARD})
            if WILDCARD in p.provider_kinds else p.provider_kinds
        )
        items = (
            self._item_codes | (set(p.items) - {WILDCARD}) if WILDCARD in p.items else p.items
        )
        for rk in p.requester_kinds:
            for pk in providers:
                for item in items:
                    yield (rk, p.task_id, pk, item)

    def permitted_combinations(self) -> frozenset[Combination]:
        """The set of permitted exchanges, wildcards expanded over the known kinds/items."""
        return frozenset(c for p in self._provisions for c in self.expand(p))

    def kinds_used(self) -> frozenset[str]:
        """Every agency kind some provision names as requester or provider."""
        used: set[str] = set()
        for p in self._provisions:
            used |= p.requester_kinds | p.provider_kinds
        return frozenset(used - {WILDCARD})


def parse_legal_table(
    table_csv: str,
    kinds_csv: str,
    groups_csv: str,
    items_csv: str,
    extras_csv: str,
) -> LegalTableData:
    """Build the table from the text of the five data files, validating every reference."""
    kinds: dict[str, str] = {}
    for row in _rows(kinds_csv, ["kind", "label", "note"], "agency_kinds.csv"):
        if row["kind"] in kinds or not re.fullmatch(r"[a-z][a-z0-9_]*", row["kind"]):
            raise LegalTableDataError(f"agency_kinds.csv: bad or duplicate kind {row['kind']!r}")
        kinds[row["kind"]] = row["label"]

    groups: dict[str, frozenset[str]] = {}
    for row in _rows(groups_csv, ["text", "kinds", "note"], "agency_groups.csv"):
        if row["text"] in groups:
            raise LegalTableDataError(f"agency_groups.csv: duplicate text {row['text']!r}")
        groups[row["text"]] = _kinds_field(row["kinds"], kinds, f"agency_groups.csv {row['text']}")

    items: list[InformationItem] = []
    by_label: dict[str, str] = {}
    for row in _rows(items_csv, ["code", "label", "kind"], "items.csv"):
        code, label = row["code"], row["label"]
        if not re.fullmatch(r"[a-z][a-z0-9_]*", code) or code in {i.code for i in items}:
            raise LegalTableDataError(f"items.csv: bad or duplicate code {code!r}")
        if label in by_label or row["kind"] not in ("defined_term", "text"):
            raise LegalTableDataError(f"items.csv: duplicate label or bad kind for {code!r}")
        items.append(InformationItem(code=code, label=label))
        by_label[label] = code
    defined_terms = {
        r["label"] for r in _rows(items_csv, ["code", "label", "kind"], "items.csv")
        if r["kind"] == "defined_term"
    }

    def item_codes(text: str, where: str) -> tuple[str, ...]:
        terms = TERM_SEPARATOR.split(text)
        if all(t in defined_terms for t in terms):
            codes = tuple(dict.fromkeys(by_label[t] for t in terms))
        elif text in by_label:
            codes = (by_label[text],)
        else:
            raise LegalTableDataError(f"{where}: information text not in items.csv: {text!r}")
        return codes

    def resolve(text: str, where: str) -> frozenset[str]:
        found = groups.get(text)
        if found is None:
            raise LegalTableDataError(f"{where}: agency text not in agency_groups.csv: {text!r}")
        return found

    table_rows = _rows(table_csv, TABLE_COLUMNS, "legal_table.csv")
    provisions: list[Provision] = []
    tasks: dict[str, Task] = {}
    deleted: set[str] = set()
    per_item: dict[str, int] = {}
    used_groups: set[str] = set()
    used_items: set[str] = set()
    for line_no, row in enumerate(table_rows, start=2):
        where = f"legal_table.csv:{line_no}"
        item_no = row["item"]
        reference = item_reference(item_no)
        task_id = task_id_for(item_no)
        n = per_item[item_no] = per_item.get(item_no, 0) + 1
        if row["requester"] == DELETED:
            if n != 1 or any(row[c] for c in ("task", "provider", "information")):
                raise LegalTableDataError(f"{where}: a deleted item has exactly one empty row")
            tasks[task_id] = Task(task_id=task_id, item_no=item_no, title=DELETED)
            deleted.add(task_id)
            continue
        if task_id in deleted:
            raise LegalTableDataError(f"{where}: rows for deleted item {item_no}")
        title = row["task"]
        known = tasks.get(task_id)
        if known is None:
            tasks[task_id] = Task(task_id=task_id, item_no=item_no, title=title)
        elif known.title != title:
            raise LegalTableDataError(f"{where}: item {item_no} has two task titles")
        requesters = resolve(row["requester"], where)
        providers = resolve(row["provider"], where)
        codes = item_codes(row["information"], where)
        used_groups |= {row["requester"], row["provider"]}
        used_items |= set(codes)
        provisions.append(Provision(
            provision_id=f"{task_id}-{n}", task_id=task_id, requester_kinds=requesters,
            provider_kinds=providers, items=codes, legal_reference=reference,
            source=row["source"], requester_text=row["requester"],
            provider_text=row["provider"], information_text=row["information"],
        ))
    if len(provisions) + len(deleted) != len(table_rows):
        raise LegalTableDataError("legal_table.csv: a row was neither a provision nor deleted")
    unused = set(groups) - used_groups
    if unused:
        raise LegalTableDataError(f"agency_groups.csv: texts not in the table: {sorted(unused)}")

    extra_columns = ["provision_id", "task_id", "task_title", "item_no", "requester_kinds",
                     "provider_kinds", "items", "legal_reference", "restricted", "note"]
    for row in _rows(extras_csv, extra_columns, "additional_provisions.csv"):
        where = f"additional_provisions.csv {row['provision_id']}"
        if not re.fullmatch(r"extra-[0-9]+", row["provision_id"]):
            raise LegalTableDataError(f"{where}: ids are extra-<n>")
        if row["task_id"] in tasks or not row["task_id"].startswith("extra-"):
            raise LegalTableDataError(f"{where}: task ids are extra-... and unique")
        if row["restricted"] not in ("true", "false"):
            raise LegalTableDataError(f"{where}: restricted is true or false")
        requesters = _kinds_field(row["requester_kinds"], kinds, where)
        if WILDCARD in requesters:
            raise LegalTableDataError(f"{where}: the requester is never a wildcard")
        providers = _kinds_field(row["provider_kinds"], kinds, where)
        codes = tuple(row["items"].split())
        for code in codes:
            if code != WILDCARD and code not in {i.code for i in items}:
                raise LegalTableDataError(f"{where}: unknown item {code!r}")
        used_items |= set(codes)
        tasks[row["task_id"]] = Task(
            task_id=row["task_id"], item_no=row["item_no"], title=row["task_title"]
        )
        provisions.append(Provision(
            provision_id=row["provision_id"], task_id=row["task_id"],
            requester_kinds=requesters, provider_kinds=providers, items=codes,
            legal_reference=row["legal_reference"], source="additional_provisions.csv",
            requester_text=" ".join(sorted(requesters)), provider_text=row["provider_kinds"],
            information_text=row["items"], restricted=row["restricted"] == "true",
        ))
    unused_items = {i.code for i in items} - used_items
    if unused_items:
        raise LegalTableDataError(f"items.csv: codes no provision uses: {sorted(unused_items)}")
    if len({p.provision_id for p in provisions}) != len(provisions):
        raise LegalTableDataError("duplicate provision ids")

    return LegalTableData(
        provisions=provisions, tasks=list(tasks.values()), items=items, agency_kinds=kinds,
        deleted_task_ids=frozenset(deleted), rows_read=len(table_rows), groups=groups,
    )


@cache
def load_legal_table() -> LegalTableData:
    """The table shipped with the package (read once; it is immutable)."""
    return parse_legal_table(
        _read_data("legal_table.csv"),
        _read_data("agency_kinds.csv"),
        _read_data("agency_groups.csv"),
        _read_data("items.csv"),
        _read_data("additional_provisions.csv"),
    )


# -- the directory of concrete agencies ---------------------------------------------------

NATIONAL_MAX = 9_999
PREFECTURE_BASE = 10_000  # + prefecture number (1..47) * 10 + role
MUNICIPAL_BASE = 100_000_000  # + 6-digit 団体コード * 10 + role
PREFECTURE_ROLES = {  # role digit, id suffix, kind
    0: ("", "prefectural_governor"),
    1: ("-boe", "prefectural_board_of_education"),
    2: ("-police", "prefectural_police"),
    3: ("-elderly-medical-union", "late_elderly_medical_union"),
    4: ("-social-welfare-council", "social_welfare_council"),
}


@dataclass(frozen=True)
class AgencySpec:
    """One concrete agency to put in the network's directory."""

    agency_id: str
    number: int  # stable, unique, 32-bit: the agency code cipher binds to it
    name: str
    kind: str
    municipality_code: str | None = None


class MunicipalityLike(Protocol):
    """What build_directory needs of a municipality (registry's ``MunicipalityRecord``)."""

    @property
    def code(self) -> str: ...

    @property
    def prefecture(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...


@cache
def national_agencies() -> tuple[AgencySpec, ...]:
    """The agencies listed in agencies.csv (national bodies, insurers, funds, the portal)."""
    kinds = load_legal_table().agency_kinds()
    specs = []
    for row in _rows(_read_data("agencies.csv"), ["agency_id", "number", "name", "kind", "note"],
                     "agencies.csv"):
        number = int(row["number"])
        if not 1 <= number <= NATIONAL_MAX:
            raise LegalTableDataError(f"agencies.csv {row['agency_id']}: number out of range")
        if row["kind"] not in kinds:
            raise LegalTableDataError(f"agencies.csv {row['agency_id']}: unknown kind")
        specs.append(AgencySpec(row["agency_id"], number, row["name"], row["kind"]))
    return tuple(specs)


@cache
def _special_cities() -> dict[str, str]:
    """団体コード -> role (health_center_city | atomic_bomb_city), from special_cities.csv."""
    rows = _rows(_read_data("special_cities.csv"),
                 ["code", "prefecture", "name", "role", "note"], "special_cities.csv")
    roles = {r["code"]: r["role"] for r in rows}
    if len(roles) != len(rows) or set(roles.values()) - {"health_center_city", "atomic_bomb_city"}:
        raise LegalTableDataError("special_cities.csv: duplicate code or unknown role")
    return roles


def _mayor_kind(kind: str, code: str) -> str:
    role = _special_cities().get(code)
    if role == "atomic_bomb_city":
        return "atomic_bomb_city_mayor"
    if kind == "designated_city":
        return "designated_city_mayor"
    if kind == "city":
        return "health_center_city_mayor" if role == "health_center_city" else "city_mayor"
    if kind == "special_ward":
        return "special_ward_mayor"
    return "town_village_mayor"


def _prefecture_specs(m: MunicipalityLike) -> Iterator[AgencySpec]:
    pp = int(m.code[:2])
    police = "警視庁" if m.prefecture == "東京都" else f"{m.prefecture}警察本部"
    names = {
        0: f"{m.prefecture}知事",
        1: f"{m.prefecture}教育委員会",
        2: police,
        3: f"{m.prefecture}後期高齢者医療広域連合",
        4: f"{m.prefecture}社会福祉協議会",
    }
    for role, (suffix, kind) in PREFECTURE_ROLES.items():
        # Organs of the prefecture carry its code; the 広域連合 and the 社会福祉協議会 are
        # separate bodies.
        own_code = m.code if role <= 2 else None
        yield AgencySpec(
            agency_id=f"prefecture-{pp:02d}{suffix}",
            number=PREFECTURE_BASE + pp * 10 + role,
            name=names[role], kind=kind, municipality_code=own_code,
        )


def _municipal_specs(m: MunicipalityLike) -> Iterator[AgencySpec]:
    base = MUNICIPAL_BASE + int(m.code) * 10
    yield AgencySpec(
        agency_id=f"municipality-{m.code}", number=base, name=f"{m.prefecture}{m.name}長",
        kind=_mayor_kind(m.kind, m.code), municipality_code=m.code,
    )
    yield AgencySpec(
        agency_id=f"municipality-{m.code}-boe", number=base + 1,
        name=f"{m.prefecture}{m.name}教育委員会", kind="municipal_board_of_education",
        municipality_code=m.code,
    )


def build_directory(municipalities: Iterable[MunicipalityLike]) -> list[AgencySpec]:
    """Every concrete agency: agencies.csv plus the ones generated per prefecture (知事,
    教育委員会, 警察, 後期高齢者医療広域連合, 社会福祉協議会) and per 市区町村 (長 and
    教育委員会). 行政区 of 指定都市 are not agencies: the city's mayor is."""
    specs = list(national_agencies())
    for m in municipalities:
        if not re.fullmatch(r"[0-9]{6}", m.code):
            raise LegalTableDataError(f"bad municipality code {m.code!r}")
        if m.kind == "prefecture":
            specs.extend(_prefecture_specs(m))
        elif m.kind in ("designated_city", "city", "special_ward", "town", "village"):
            specs.extend(_municipal_specs(m))
        elif m.kind != "ward":
            raise LegalTableDataError(f"unknown municipality kind {m.kind!r} for {m.code}")
    seen_ids: set[str] = set()
    seen_numbers: set[int] = set()
    for s in specs:
        if s.agency_id in seen_ids or s.number in seen_numbers:
            raise LegalTableDataError(f"duplicate agency id or number: {s.agency_id}")
        if not 0 < s.number < 2**32:
            raise LegalTableDataError(f"agency number out of 32-bit range: {s.agency_id}")
        seen_ids.add(s.agency_id)
        seen_numbers.add(s.number)
    return specs

"""Bulk registration: many residents in one transaction (used by import and seed).

One call stores a batch with a handful of statements, whatever its size:

* 住民票コード for the whole batch come from one update of the pool row
  (``Numbering.resident_codes`` over a counter range), 個人番号 from the vectorised FF1 path
  (``Numbering.individual_numbers``) and their 64-bit keyed ``indexes``;
* ids are reserved up front (PostgreSQL: ``nextval`` of each table's sequence; SQLite:
  ``max(id) + 1``, safe because the pool update has already taken SQLite's write lock), so
  households, residents, issued numbers, notification letters and life events can be written
  without reading anything back;
* PostgreSQL gets the rows through ``COPY … FROM STDIN``; SQLite through one ``executemany``
  per table;
* one audit event per batch (``registry:import:batch``), one life event per resident.

Two things are rare but must never go wrong: a 住民票コード from the pool that is already taken
(a migrated resident keeps the code of their old system, which may be one our pool would hand
out later) and a generation-0 個人番号 equal to a number issued earlier (a replacement number
is drawn from another FF1 permutation, so it can equal anyone's first number). ``checked=True``
(the default) looks both up before writing and moves on to the next free code or the next
number generation, as ``services._issue_number`` does. ``checked=False`` skips the two
look-ups and lets the unique indexes of ``residents.resident_code`` and
``issued_numbers.number_index`` catch the collision: the importer runs the batch in a savepoint
that way and, on an integrity error, rolls the savepoint back and stores the batch again with
``checked=True``. Either way no code and no number is ever given twice.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from mynumber import audit
from mynumber.codes import resident_code as resident_code_mod
from mynumber.codes.exceptions import ValidationError
from mynumber.db import utcnow
from mynumber.registry import models as m
from mynumber.registry.interfaces import (
    EVENT_PREFIX,
    InvalidResidentData,
    LifeEventKind,
    NewResident,
    ResidentStatus,
    event_payload,
)
from mynumber.registry.numbering import Numbering
from mynumber.registry.services import MAX_NUMBER_GENERATIONS, RegistryServiceImpl, kana_key

__all__ = [
    "BulkResident",
    "ResidentRow",
    "advance_pool",
    "allocate_codes",
    "store_residents",
    "store_rows",
    "taken_number_indexes",
    "taken_resident_codes",
]

AUDIT_TAG = "registry:import:batch"
# Values per IN (…) look-up: well below SQLite's bound-parameter limit.
_LOOKUP_CHUNK = 900
_POOL_SIZE = 10**10
_T = TypeVar("_T")


@dataclass(frozen=True)
class BulkResident:
    """One resident to register in bulk. Already validated (services.validate_new_resident)."""

    resident: NewResident
    # Members sharing a household_key within one call share a new household.
    household_key: str | None = None
    # Keep an existing 住民票コード (migration from another system); None allocates one.
    resident_code: str | None = None
    event: LifeEventKind = LifeEventKind.IMPORT
    occurred_on: dt.date | None = None
    # The import run and file line (residents.import_run_id / import_line), if imported.
    import_run_id: int | None = None
    import_line: int | None = None
    # With ``resident_code``: the generation of the person's current 個人番号 in the old
    # system (numbers of earlier generations are recorded as retired, never issued again).
    number_generation: int = 0


class ResidentRow(NamedTuple):
    """The flat, validated form the fast path works on (no per-row ORM or dataclass cost)."""

    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: dt.date
    sex: str  # "male" | "female"
    municipality_code: str  # 6 digits, known municipality
    address: str
    postal_code: str
    relationship: str
    nationality: str
    residence_status: str
    household_key: str | None = None
    household_id: int | None = None
    resident_code: str | None = None
    number_generation: int = 0
    event: str = "import"
    occurred_on: dt.date | None = None
    import_line: int | None = None
    # Usually set for the whole batch by store_rows(import_run_id=…).
    import_run_id: int | None = None


def _row(item: BulkResident) -> ResidentRow:
    r = item.resident
    return ResidentRow(
        r.family_name, r.given_name, r.family_name_kana, r.given_name_kana, r.birth_date,
        r.sex.value if hasattr(r.sex, "value") else str(r.sex), r.municipality_code, r.address,
        r.postal_code, r.relationship, r.nationality, r.residence_status,
        item.household_key, r.household_id, item.resident_code, item.number_generation,
        LifeEventKind(item.event).value, item.occurred_on, item.import_line, item.import_run_id,
    )


def store_residents(
    registry: RegistryServiceImpl, session: Session, items: Sequence[BulkResident], actor: str,
    *, households: dict[str, int] | None = None, audit_subject: str = "residents",
    audit_details: dict[str, Any] | None = None,
) -> list[int]:
    """Insert ``items`` (with households, numbers, letters and life events) in ``session``'s
    transaction; return the new resident ids in order. The caller commits.

    A given ``resident_code`` must be valid and not registered yet (InvalidResidentData
    naming ``resident_code`` otherwise; the message never contains the code).
    ``households`` maps household keys to existing household ids across calls; new keys are
    added to it.
    """
    rows = [_row(item) for item in items]
    given = [r.resident_code for r in rows if r.resident_code is not None]
    seen: set[str] = set()
    for index, code in enumerate(given):
        try:
            resident_code_mod.validate(code)
        except ValidationError as exc:
            raise InvalidResidentData(f"resident_code: {exc}", field="resident_code",
                                      item=index) from None
        if code in seen:
            raise InvalidResidentData("resident_code is given twice", field="resident_code")
        seen.add(code)
    if taken_resident_codes(session, given):
        raise InvalidResidentData("resident_code is already registered", field="resident_code")
    # residents.municipality_code has no FK constraint (models.py): check the codes here.
    wanted = {r.municipality_code for r in rows}
    known = set(session.scalars(
        select(m.Municipality.code).where(m.Municipality.code.in_(sorted(wanted)))
    ))
    if wanted - known:
        raise InvalidResidentData("no municipality has this code", field="municipality_code")
    # Nor has residents.household_id: an existing household named must exist.
    homes = {r.household_id for r in rows if r.household_id is not None}
    if homes and len(set(session.scalars(
        select(m.Household.id).where(m.Household.id.in_(sorted(homes)))
    ))) != len(homes):
        raise InvalidResidentData("no household has this id", field="household_id")
    return store_rows(registry.numbering, session, rows, actor, households=households,
                      audit_subject=audit_subject, audit_details=audit_details)


# --- look-ups ----------------------------------------------------------------------------------


def _chunks(values: Sequence[_T]) -> Iterable[Sequence[_T]]:
    for start in range(0, len(values), _LOOKUP_CHUNK):
        yield values[start : start + _LOOKUP_CHUNK]


def taken_resident_codes(session: Session, codes: Sequence[str]) -> set[str]:
    """Which of ``codes`` are already on a resident record."""
    taken: set[str] = set()
    for chunk in _chunks(list(codes)):
        taken.update(session.scalars(
            select(m.Resident.resident_code).where(m.Resident.resident_code.in_(chunk))
        ))
    return taken


def taken_number_indexes(session: Session, indexes: Sequence[int]) -> set[int]:
    """Which of ``indexes`` (keyed MACs of 個人番号) were ever issued."""
    taken: set[int] = set()
    for chunk in _chunks(list(indexes)):
        taken.update(session.scalars(
            select(m.IssuedNumber.number_index).where(m.IssuedNumber.number_index.in_(chunk))
        ))
    return taken


# --- the code pool -----------------------------------------------------------------------------


def advance_pool(conn: Connection, count: int) -> int:
    """Reserve ``count`` pool counters; return the first. Takes the pool row's lock (and on
    SQLite the database write lock) until the transaction ends."""
    new = conn.execute(
        text("UPDATE resident_code_pool SET next_counter = next_counter + :n WHERE id = 1 "
             "RETURNING next_counter"),
        {"n": count},
    ).scalar()
    if new is None:
        conn.execute(insert(m.ResidentCodePool).values(id=1, next_counter=count))
        new = count
    start = int(new) - count
    if int(new) > _POOL_SIZE:
        raise RuntimeError("resident code pool exhausted")
    return start


def _pool_codes(
    numbering: Numbering, conn: Connection, count: int,
    allocator: Callable[[int], int] | None = None,
) -> npt.NDArray[np.uint64]:
    start = allocator(count) if allocator is not None else advance_pool(conn, count)
    if count == 0:
        return np.empty(0, dtype=np.uint64)
    return numbering.resident_codes(np.arange(start, start + count, dtype=np.uint64))


def allocate_codes(
    numbering: Numbering, session: Session, count: int, *, exclude: Iterable[str] = (),
) -> list[str]:
    """Draw ``count`` 住民票コード from the pool, skipping any already on a record (or in
    ``exclude``): a migrated resident may hold a code the pool has not reached yet."""
    conn = session.connection()
    avoid = set(exclude)
    codes: list[str] = []
    draw = count
    while len(codes) < count:
        fresh = [f"{c:011d}" for c in _pool_codes(numbering, conn, draw).tolist()]
        taken = taken_resident_codes(session, fresh) | (avoid & set(fresh))
        codes.extend(c for c in fresh if c not in taken)
        if taken:
            # A run of taken codes (a whole migrated population, say): draw more at a time,
            # so even a long run costs a few look-ups. Surplus counters are skipped, not lost
            # codes: the pool has 10^10.
            draw = min(max(draw * 2, count - len(codes)), 1 << 17)
        else:
            draw = count - len(codes)
    return codes[:count]


# --- ids ---------------------------------------------------------------------------------------


def _reserve_ids(conn: Connection, table: str, count: int, postgres: bool) -> list[int]:
    if count == 0:
        return []
    if postgres:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            # Resolve the sequence once: pg_get_serial_sequence() in the select list would be
            # evaluated for every row (a catalogue look-up each, five times the cost).
            cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,))
            (sequence,) = cur.fetchone()
            # Usually nobody else draws from the sequence meanwhile and the values are one
            # run: then only its ends cross the wire.
            cur.execute(
                "SELECT min(v), max(v) FROM (SELECT nextval(%s::regclass) AS v "
                "FROM generate_series(1, %s)) AS drawn",
                (sequence, count),
            )
            low, high = cur.fetchone()
            if high - low + 1 == count:
                return list(range(low, high + 1))
            # Interleaved with another session: fetch the values we were given after all.
            cur.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                        (sequence, count))
            return [row[0] for row in cur.fetchall()]
    # SQLite: the pool update already holds the write lock, so nobody else can insert.
    top = conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()  # noqa: S608
    return list(range(int(top) + 1, int(top) + 1 + count))


# --- the batch ---------------------------------------------------------------------------------


class _Numbers(NamedTuple):
    codes: list[str]
    generations: list[int]
    indexes: list[int]
    # (row position, generation, index) of numbers issued before an import and retired.
    retired: list[tuple[int, int, int]]


def _number_rows(
    numbering: Numbering, session: Session, conn: Connection, rows: Sequence[ResidentRow],
    checked: bool, pool_allocator: Callable[[int], int] | None = None,
) -> _Numbers:
    n = len(rows)
    given = {i: r.resident_code for i, r in enumerate(rows) if r.resident_code is not None}
    need = n - len(given)
    if checked:
        fresh = allocate_codes(numbering, session, need, exclude=given.values())
    else:
        fresh = [f"{c:011d}" for c in _pool_codes(numbering, conn, need, pool_allocator).tolist()]
    it = iter(fresh)
    codes = [given[i] if i in given else next(it) for i in range(n)]

    code_arr = np.fromiter((int(c) for c in codes), dtype=np.uint64, count=n)
    gens = np.fromiter((r.number_generation for r in rows), dtype=np.int64, count=n)
    numbers = np.empty(n, dtype=np.uint64)
    for g in np.unique(gens).tolist():
        mask = gens == g
        numbers[mask] = numbering.individual_numbers(code_arr[mask], int(g))
    indexes = numbering.indexes(numbers)
    generations = gens.tolist()

    retired: list[tuple[int, int, int]] = []
    for i, g in enumerate(generations):
        for old in range(g):
            retired.append((i, old, numbering.index(numbering.individual_number(codes[i], old))))

    if checked:
        taken = taken_number_indexes(session, indexes + [x[2] for x in retired])
        # A retired number issued elsewhere already is recorded once: skip it here.
        retired = [x for x in retired if x[2] not in taken]
        used = set(x[2] for x in retired) | taken
        batch_seen: set[int] = set()
        for i in range(n):
            if indexes[i] in used or indexes[i] in batch_seen:
                indexes[i], generations[i] = _next_free(
                    numbering, session, codes[i], generations[i] + 1, used | batch_seen
                )
            batch_seen.add(indexes[i])
    return _Numbers(codes, generations, indexes, retired)


def _next_free(
    numbering: Numbering, session: Session, code: str, start: int, avoid: set[int],
) -> tuple[int, int]:
    for generation in range(start, start + MAX_NUMBER_GENERATIONS):
        index = numbering.index(numbering.individual_number(code, generation))
        if index not in avoid and not taken_number_indexes(session, [index]):
            return index, generation
    raise RuntimeError("no free number generation")  # pragma: no cover - 1000 collisions


def store_rows(
    numbering: Numbering, session: Session, rows: Sequence[ResidentRow], actor: str, *,
    households: MutableMapping[str, int] | None = None, checked: bool = True,
    audit_subject: str | None = "residents", audit_details: dict[str, Any] | None = None,
    import_run_id: int | None = None, household_presets: Mapping[str, int] | None = None,
    on_households: Callable[[], None] | None = None,
    pool_allocator: Callable[[int], int] | None = None,
) -> list[int]:
    """The fast path behind :func:`store_residents`, on validated :class:`ResidentRow`\\ s.

    The caller has checked that every ``municipality_code`` and ``household_id`` exists
    (no FK constraint does, see models.py). ``households`` is read and updated in place (pass
    a copy if the transaction may roll back). See the module docstring for ``checked``.
    ``audit_subject=None`` leaves the batch's audit event to the caller.

    For the importer's overlapping batches: a new household whose key is in
    ``household_presets`` gets that id (reserved by an earlier attempt at the same batch)
    instead of a fresh one; ``on_households`` is called as soon as ``households`` holds the
    batch's new keys; ``pool_allocator(count)`` (with ``checked=False``) reserves pool counters
    in a transaction of its own instead of this one, so that two batches in flight do not
    queue on the pool row.
    """
    if not rows:
        return []
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    n = len(rows)
    now = utcnow()
    today = now.date()

    households = households if households is not None else {}
    new_households: list[tuple[str, str]] = []  # (municipality_code, address)
    household_of: list[int | None] = [None] * n
    pending: dict[str, int] = {}  # key -> position in new_households
    slots: list[int] = []  # for each row, the new household position or -1
    for i, r in enumerate(rows):
        if r.household_id is not None:
            household_of[i] = r.household_id
            slots.append(-1)
        elif r.household_key is not None and r.household_key in households:
            household_of[i] = households[r.household_key]
            slots.append(-1)
        elif r.household_key is not None and r.household_key in pending:
            slots.append(pending[r.household_key])
        else:
            if r.household_key is not None:
                pending[r.household_key] = len(new_households)
            slots.append(len(new_households))
            new_households.append((r.municipality_code, r.address))

    presets = household_presets or {}
    slot_keys: list[str | None] = [None] * len(new_households)
    for key, slot in pending.items():
        slot_keys[slot] = key
    fresh = iter(_reserve_ids(
        conn, "households", sum(1 for k in slot_keys if k is None or k not in presets), postgres
    ))
    household_ids = [presets[k] if k is not None and k in presets else next(fresh)
                     for k in slot_keys]
    for i, slot in enumerate(slots):
        if slot >= 0:
            household_of[i] = household_ids[slot]
    for key, slot in pending.items():
        households[key] = household_ids[slot]
    if on_households is not None:
        on_households()
    nums = _number_rows(numbering, session, conn, rows, checked, pool_allocator)
    resident_ids = _reserve_ids(conn, "residents", n, postgres)
    issued_ids = _reserve_ids(conn, "issued_numbers", n + len(nums.retired), postgres)
    letter_ids = _reserve_ids(conn, "notification_letters", n, postgres)
    event_ids = _reserve_ids(conn, "life_events", n, postgres)

    keys = _kana_keys(rows)
    writer = _PostgresWriter(conn) if postgres else _SQLiteWriter(conn)
    writer.households(household_ids, new_households, now)
    writer.residents(resident_ids, rows, nums, keys, household_of, now, import_run_id)
    writer.issued(issued_ids, resident_ids, nums, now)
    writer.letters(letter_ids, resident_ids, rows, nums.generations, now)
    writer.events(event_ids, resident_ids, rows, actor, now, today)
    # Published in the same transaction, like every other life event (kernel.events): a bulk
    # import reaches the intermediate servers, 住基ネット and the portal as one by hand would.
    outbox_ids = _reserve_ids(conn, "outbox_events", n, postgres)
    writer.outbox(outbox_ids, [
        (EVENT_PREFIX + r.event, f"resident:{rid}", json.dumps(event_payload(
            LifeEventKind(r.event), rid, code, r.occurred_on or today, r.municipality_code, hid,
            ResidentStatus.RESIDENT.value, basic_four_changed=False), ensure_ascii=False))
        for rid, r, code, hid in zip(resident_ids, rows, nums.codes, household_of, strict=True)
    ], now)

    if audit_subject is not None:
        audit.record(
            session, m.AuditEvent, AUDIT_TAG, actor=actor, subject=audit_subject,
            count=n, first_resident_id=resident_ids[0], last_resident_id=resident_ids[-1],
            **(audit_details or {}),
        )
        session.flush()
    return resident_ids


_KANA_CACHE: dict[tuple[str, str], str] = {}


def _kana_keys(rows: Sequence[ResidentRow]) -> list[str]:
    # Readings repeat a lot (family names above all): normalise each pair once.
    cache = _KANA_CACHE
    if len(cache) > 500_000:
        cache.clear()
    out = []
    for r in rows:
        pair = (r.family_name_kana, r.given_name_kana)
        key = cache.get(pair)
        if key is None:
            key = cache[pair] = kana_key(*pair)
        out.append(key)
    return out


def _letter_history(now: dt.datetime) -> str:
    return json.dumps([{"status": "created", "at": now.isoformat()}])


RESIDENT_COLUMNS = (
    "id, resident_code, family_name, given_name, family_name_kana, given_name_kana, "
    "name_kana_key, birth_date, sex, municipality_code, address, postal_code, household_id, "
    "relationship, nationality, residence_status, status, number_generation, import_run_id, "
    "import_line, "
    "created_at, updated_at"
)
HOUSEHOLD_COLUMNS = "id, municipality_code, address, created_at"
ISSUED_COLUMNS = "id, number_index, resident_id, generation, issued_at, retired_at, retire_reason"
LETTER_COLUMNS = (
    "id, resident_id, number_generation, municipality_code, status, created_at, "
    "status_changed_at, history"
)
EVENT_COLUMNS = (
    "id, resident_id, kind, occurred_on, recorded_at, municipality_code, actor, details"
)
RETIRED_REASON = "issued before the import into this system"

class _PostgresWriter:
    """COPY … FROM STDIN in PostgreSQL's binary format, on the session's own connection and
    transaction.

    Binary rather than text: the server skips parsing dates and timestamps, and psycopg
    encodes each row in C (no escaping to get wrong). Rows are produced lazily and psycopg
    sends them in chunks, so the server ingests one chunk while Python builds the next.
    JSON columns are declared ``text``: their binary form is the JSON text itself.
    """

    def __init__(self, conn: Connection) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        self.raw: Any = raw

    def _copy(self, table: str, columns: str, types: Sequence[str],
              rows: Iterable[tuple[Any, ...]]) -> None:
        with self.raw.cursor() as cur, cur.copy(
            f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(types)
            write = copy.write_row
            for row in rows:
                write(row)

    def households(self, ids: list[int], rows: list[tuple[str, str]], now: dt.datetime) -> None:
        if not ids:
            return
        self._copy("households", HOUSEHOLD_COLUMNS, ("int8", "text", "text", "timestamptz"), (
            (i, muni, address, now) for i, (muni, address) in zip(ids, rows, strict=True)
        ))

    def residents(
        self, ids: list[int], rows: Sequence[ResidentRow], nums: _Numbers, keys: list[str],
        households: list[int | None], now: dt.datetime, run_id: int | None,
    ) -> None:
        self._copy("residents", RESIDENT_COLUMNS, _RESIDENT_TYPES, (
            (rid, code, r.family_name, r.given_name, r.family_name_kana, r.given_name_kana, key,
             r.birth_date, r.sex, r.municipality_code, r.address, r.postal_code, hid,
             r.relationship, r.nationality, r.residence_status, "resident", gen,
             run_id or r.import_run_id, r.import_line,
             now, now)
            for rid, r, code, gen, key, hid in zip(ids, rows, nums.codes, nums.generations,
                                                  keys, households, strict=True)
        ))

    def issued(self, ids: list[int], resident_ids: list[int], nums: _Numbers,
               now: dt.datetime) -> None:
        n = len(resident_ids)
        self._copy("issued_numbers", ISSUED_COLUMNS, _ISSUED_TYPES, itertools.chain(
            ((i, index, rid, gen, now, None, None)
             for i, index, rid, gen in zip(ids[:n], nums.indexes, resident_ids,
                                           nums.generations, strict=True)),
            ((i, index, resident_ids[pos], gen, now, now, RETIRED_REASON)
             for i, (pos, gen, index) in zip(ids[n:], nums.retired, strict=True)),
        ))

    def letters(self, ids: list[int], resident_ids: list[int], rows: Sequence[ResidentRow],
                generations: list[int], now: dt.datetime) -> None:
        history = _letter_history(now)
        self._copy("notification_letters", LETTER_COLUMNS, _LETTER_TYPES, (
            (i, rid, gen, r.municipality_code, "created", now, now, history)
            for i, rid, r, gen in zip(ids, resident_ids, rows, generations, strict=True)
        ))

    def events(self, ids: list[int], resident_ids: list[int], rows: Sequence[ResidentRow],
               actor: str, now: dt.datetime, today: dt.date) -> None:
        self._copy("life_events", EVENT_COLUMNS, _EVENT_TYPES, (
            (i, rid, r.event, r.occurred_on or today, now, r.municipality_code, actor, "{}")
            for i, rid, r in zip(ids, resident_ids, rows, strict=True)
        ))

    def outbox(self, ids: list[int], events: list[tuple[str, str, str]],
               now: dt.datetime) -> None:
        self._copy("outbox_events", OUTBOX_COLUMNS, _OUTBOX_TYPES, (
            (i, type_, subject, payload, now)
            for i, (type_, subject, payload) in zip(ids, events, strict=True)
        ))


_OUTBOX_TYPES = ("int8", "text", "text", "text", "timestamptz")
OUTBOX_COLUMNS = "id, type, subject, payload, recorded_at"

_RESIDENT_TYPES = (
    "int8", "text", "text", "text", "text", "text", "text", "date", "text", "text", "text",
    "text", "int8", "text", "text", "text", "text", "int4", "int4", "int4", "timestamptz",
    "timestamptz",
)
_ISSUED_TYPES = ("int8", "int8", "int8", "int4", "timestamptz", "timestamptz", "text")
_LETTER_TYPES = ("int8", "int8", "int4", "text", "text", "timestamptz", "timestamptz", "text")
_EVENT_TYPES = ("int8", "int8", "text", "date", "timestamptz", "text", "text", "text")


def _identity(value: Any) -> Any:
    return value


class _SQLiteWriter:
    """One executemany per table, values already in the form SQLAlchemy would store."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # A larger page cache for this connection (default 2 MB): the unique indexes on
        # random keys (resident_code, number_index) touch pages all over the file.
        conn.exec_driver_sql("PRAGMA cache_size = -32768")
        dialect = conn.dialect
        # The dialect's own processors: values stored exactly as the ORM would store them.
        columns = m.Resident.__table__.c
        stamp = columns.created_at.type.dialect_impl(dialect).bind_processor(dialect)
        day = columns.birth_date.type.dialect_impl(dialect).bind_processor(dialect)
        self._stamp: Callable[[Any], Any] = stamp or _identity
        self._day: Callable[[Any], Any] = day or _identity

    def _insert(self, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        marks = ", ".join("?" * (columns.count(",") + 1))
        self.conn.exec_driver_sql(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows  # noqa: S608
        )

    def households(self, ids: list[int], rows: list[tuple[str, str]], now: dt.datetime) -> None:
        ts = self._stamp(now)
        self._insert("households", HOUSEHOLD_COLUMNS, [
            (i, muni, address, ts) for i, (muni, address) in zip(ids, rows, strict=True)
        ])

    def residents(
        self, ids: list[int], rows: Sequence[ResidentRow], nums: _Numbers, keys: list[str],
        households: list[int | None], now: dt.datetime, run_id: int | None,
    ) -> None:
        ts = self._stamp(now)
        day = self._day
        self._insert("residents", RESIDENT_COLUMNS, [
            (rid, code, r.family_name, r.given_name, r.family_name_kana, r.given_name_kana, key,
             day(r.birth_date), r.sex, r.municipality_code, r.address, r.postal_code, hid,
             r.relationship, r.nationality, r.residence_status, "resident", gen,
             run_id or r.import_run_id, r.import_line,
             ts, ts)
            for rid, r, code, gen, key, hid in zip(ids, rows, nums.codes, nums.generations,
                                                  keys, households, strict=True)
        ])

    def issued(self, ids: list[int], resident_ids: list[int], nums: _Numbers,
               now: dt.datetime) -> None:
        ts = self._stamp(now)
        n = len(resident_ids)
        rows: list[tuple[Any, ...]] = [
            (i, index, rid, gen, ts, None, None)
            for i, index, rid, gen in zip(ids[:n], nums.indexes, resident_ids, nums.generations,
                                          strict=True)
        ]
        rows.extend(
            (i, index, resident_ids[pos], gen, ts, ts, RETIRED_REASON)
            for i, (pos, gen, index) in zip(ids[n:], nums.retired, strict=True)
        )
        self._insert("issued_numbers", ISSUED_COLUMNS, rows)

    def letters(self, ids: list[int], resident_ids: list[int], rows: Sequence[ResidentRow],
                generations: list[int], now: dt.datetime) -> None:
        ts = self._stamp(now)
        history = _letter_history(now)
        self._insert("notification_letters", LETTER_COLUMNS, [
            (i, rid, gen, r.municipality_code, "created", ts, ts, history)
            for i, rid, r, gen in zip(ids, resident_ids, rows, generations, strict=True)
        ])

    def events(self, ids: list[int], resident_ids: list[int], rows: Sequence[ResidentRow],
               actor: str, now: dt.datetime, today: dt.date) -> None:
        ts = self._stamp(now)
        day = self._day
        self._insert("life_events", EVENT_COLUMNS, [
            (i, rid, r.event, day(r.occurred_on or today), ts, r.municipality_code, actor, "{}")
            for i, rid, r in zip(ids, resident_ids, rows, strict=True)
        ])

    def outbox(self, ids: list[int], events: list[tuple[str, str, str]],
               now: dt.datetime) -> None:
        ts = self._stamp(now)
        self._insert("outbox_events", OUTBOX_COLUMNS, [
            (i, type_, subject, payload, ts)
            for i, (type_, subject, payload) in zip(ids, events, strict=True)
        ])

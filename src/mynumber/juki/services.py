"""住基ネット: the J-LIS copy of 本人確認情報 and the queries of permitted agencies.

Decisions, in one place:

- **A copy of the current state.** The registry's events only say *who* changed and how; the
  copy is written from the registry's current record (``events.py``), keyed on the person,
  and each row remembers the event ``seq`` it reflects (``applied_seq``). A write whose seq is
  not newer is ignored by the upsert's own ``WHERE``, so a duplicate or late batch changes
  nothing, and two writers cannot go back in time.
- **The permitted uses are data** (``data/permitted_uses.csv``: 住基法 第30条の9以下 and 別表):
  an agency may ask only for a use listed for its kind. Anything else is refused and recorded.
- **A search needs all four items** (a name in kanji and/or kana, birth date, sex, address),
  compared after normalisation (``mynumber.codes.kana``). Kana name + birth date + sex alone
  is exactly what mislinked people in 2023; it is refused (``juki_four_items_required``). A
  search that matches more than one person provides nobody (``juki_ambiguous_match``).
- **Every query is recorded**, answered or not, with the agency, the use, the time, and the
  persons it concerned, in the same transaction as the answer is read; the resident reads
  them as 本人確認情報の提供状況 (``disclosure``).
- **Hot path.** Queries run on pooled driver connections (``db.HotSQL``), like the network's
  exchange: SQLAlchemy's per-statement machinery costs more than the database here.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mynumber.codes import resident_code as resident_code_format
from mynumber.codes.exceptions import ValidationError
from mynumber.codes.kana import normalize_address, normalize_kana, normalize_name, normalize_sex
from mynumber.db import Databases, HotConnections, HotSQL, in_chunk, one_of, utcnow
from mynumber.errors import DomainError
from mynumber.juki import models as m
from mynumber.juki.interfaces import (
    AgencyNotPermitted,
    AmbiguousMatch,
    CopyUpdate,
    DisclosureEntry,
    DisclosureUnavailable,
    FourItemsRequired,
    Identity,
    IdentityNotFound,
    InvalidJukiInput,
    PermittedUse,
    PortalPersonResolver,
    QueryKind,
    QueryOutcome,
    QueryResult,
    SearchItems,
    UseNotPermitted,
)
from mynumber.network.interfaces import (
    AgencyRecord,
    AgencyStatus,
    NetworkService,
    RequestReplayed,
)
from mynumber.registry.interfaces import ResidentRecord

log = logging.getLogger("mynumber.juki")

CONTEXT = m.CONTEXT
#: How long an agency's directory entry (kind, status) is trusted without asking again.
AGENCY_CACHE_SECONDS = 30.0
#: At most this many persons are recorded for one ambiguous search.
MAX_SUBJECTS = 50
#: A disclosure shows at most this many queries (newest first).
DISCLOSURE_LIMIT = 500

_IDENTITY_COLUMNS = ("resident_id, resident_code, family_name, given_name, family_name_kana, "
                     "given_name_kana, birth_date, sex, address, municipality_code, status, "
                     "change_kind, changed_on")
# Statements are built from the constant column list only; every value is a bound parameter.
_BY_CODE = HotSQL(f"SELECT {_IDENTITY_COLUMNS} FROM identity_copies "  # noqa: S608
                  "WHERE resident_code = :code")
_BY_RESIDENT = HotSQL(f"SELECT {_IDENTITY_COLUMNS} FROM identity_copies "  # noqa: S608
                      "WHERE resident_id = :rid")
_RESIDENT_OF_CODE = HotSQL("SELECT resident_id FROM identity_copies WHERE resident_code = :code")
_INSERT_QUERY = HotSQL(
    "INSERT INTO identity_queries (at, agency_id, agency_name, use_id, kind, outcome, refusal,"
    " matches) VALUES (:at, :agency_id, :agency_name, :use_id, :kind, :outcome, :refusal,"
    " :matches) RETURNING id")
_INSERT_SUBJECT = HotSQL(
    "INSERT INTO identity_query_subjects (query_id, resident_id) VALUES (:query_id, :resident_id)")
_INSERT_NONCE = HotSQL(
    "INSERT INTO request_nonces (agency_id, nonce, at) VALUES (:agency_id, :nonce, :at)")

_DATE = re.compile(r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})")


def load_permitted_uses() -> list[PermittedUse]:
    """The permitted-use table (``data/permitted_uses.csv``); fails on a duplicate use id."""
    text = resources.files("mynumber.juki").joinpath("data/permitted_uses.csv").read_text(
        encoding="utf-8")
    uses: list[PermittedUse] = []
    seen: set[str] = set()
    for row in csv.DictReader(text.splitlines()):
        if row["use_id"] in seen:
            raise ValueError(f"permitted_uses.csv: use {row['use_id']} listed twice")
        seen.add(row["use_id"])
        uses.append(PermittedUse(row["use_id"], row["agency_kind"], row["purpose"],
                                 row["basis"], row.get("note") or ""))
    return uses


# --- normalisation -----------------------------------------------------------------------------


def name_key(family_name: str, given_name: str) -> str:
    return normalize_name(f"{family_name}{given_name}")


def kana_key(family_kana: str, given_kana: str) -> str:
    return normalize_kana(f"{family_kana}{given_kana}")


def address_key(address: str) -> str:
    return normalize_address(address)


def parse_birth_date(text: str) -> dt.date:
    """YYYY-MM-DD (also / or . as separators, one-digit month/day, full-width digits)."""
    s = "".join(unicodedata.normalize("NFKC", text).split())
    match = _DATE.fullmatch(s)
    if match is None:
        raise InvalidJukiInput("birth_date: write it as YYYY-MM-DD", field="birth_date")
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise InvalidJukiInput("birth_date: not a calendar date", field="birth_date") from None


def parse_sex(text: str) -> str:
    try:
        code = normalize_sex(text)
    except ValidationError:
        code = ""
    if code == "1":
        return "male"
    if code == "2":
        return "female"
    raise InvalidJukiInput("sex: give male/female (男/女, M/F, 1/2)", field="sex")


@dataclass(frozen=True)
class SearchKeys:
    name: str
    kana: str
    birth_date: dt.date
    sex: str
    address: str


def search_keys(items: SearchItems) -> SearchKeys:
    """The normalised four items, or FourItemsRequired naming every missing one."""
    values = {k: (getattr(items, k) or "").strip() for k in
              ("name", "name_kana", "birth_date", "sex", "address")}
    missing = []
    if not (values["name"] or values["name_kana"]):
        missing.append("name or name_kana")
    missing += [k for k in ("birth_date", "sex", "address") if not values[k]]
    if missing:
        raise FourItemsRequired(
            "a 本人確認情報 search must carry all four basic items: a name (name and/or "
            "name_kana), birth_date, sex and address; missing: " + ", ".join(missing),
            field=missing[0].split(" ")[0], missing=missing, rule="four_basic_items")
    for key, limit in (("name", 200), ("name_kana", 200), ("address", 200)):
        if len(values[key]) > limit:
            raise InvalidJukiInput(f"{key}: at most {limit} characters", field=key)
    keys = SearchKeys(
        name=normalize_name(values["name"]) if values["name"] else "",
        kana=normalize_kana(values["name_kana"]) if values["name_kana"] else "",
        birth_date=parse_birth_date(values["birth_date"]),
        sex=parse_sex(values["sex"]),
        address=normalize_address(values["address"]),
    )
    if not (keys.name or keys.kana):
        raise FourItemsRequired("name: nothing left after normalisation", field="name",
                                missing=["name or name_kana"], rule="four_basic_items")
    if not keys.address:
        raise FourItemsRequired("address: nothing left after normalisation", field="address",
                                missing=["address"], rule="four_basic_items")
    return keys


def copy_row(record: ResidentRecord, seq: int, change_kind: str, changed_on: dt.date,
             now: dt.datetime) -> dict[str, Any]:
    """One ``identity_copies`` row for a registry record (no 個人番号 in it: the record has
    none)."""
    return {
        "resident_id": record.id, "resident_code": record.resident_code,
        "family_name": record.family_name, "given_name": record.given_name,
        "family_name_kana": record.family_name_kana, "given_name_kana": record.given_name_kana,
        "birth_date": record.birth_date, "sex": str(record.sex.value),
        "address": record.address, "municipality_code": record.municipality_code,
        "status": str(record.status.value), "change_kind": change_kind,
        "changed_on": changed_on,
        "key_name": name_key(record.family_name, record.given_name),
        "key_kana": kana_key(record.family_name_kana, record.given_name_kana),
        "key_address": address_key(record.address),
        "applied_seq": seq, "updated_at": now,
    }


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _identity(row: Sequence[Any]) -> Identity:
    return Identity(
        resident_code=row[1], family_name=row[2], given_name=row[3], family_name_kana=row[4],
        given_name_kana=row[5], birth_date=_date(row[6]), sex=row[7], address=row[8],
        municipality_code=row[9], status=row[10], change_kind=row[11],
        changed_on=_date(row[12]))


def _outcome(matches: int) -> QueryOutcome:
    if matches == 1:
        return QueryOutcome.ANSWERED
    return QueryOutcome.AMBIGUOUS if matches else QueryOutcome.NOT_FOUND


def _recorded_sql(match: HotSQL, *, with_nonce: bool) -> HotSQL:
    """PostgreSQL: the match and its record in one statement (data-modifying CTEs run once and
    to completion, all or nothing). The nonce's unique constraint fails the whole statement."""
    nonce = ("n AS (INSERT INTO request_nonces (agency_id, nonce, at) "
             "VALUES (:agency_id, :nonce, :at)), ") if with_nonce else ""
    return HotSQL(
        f"WITH m AS ({match.sql}), {nonce}"  # noqa: S608 - constant SQL, bound values
        "q AS (INSERT INTO identity_queries (at, agency_id, agency_name, use_id, kind, outcome,"
        " refusal, matches) SELECT :at, :agency_id, :agency_name, :use_id, :kind,"
        " CASE count(*) WHEN 0 THEN 'not_found' WHEN 1 THEN 'answered' ELSE 'ambiguous' END,"
        " NULL, count(*) FROM m RETURNING id), "
        "s AS (INSERT INTO identity_query_subjects (query_id, resident_id)"
        " SELECT q.id, m.resident_id FROM q, m) "
        "SELECT q.id, m.* FROM q LEFT JOIN m ON true")


class _NoPortal:
    def resident_id(self, token: str) -> int:
        raise DisclosureUnavailable("the portal is not connected to 住基ネット here")


class JukiServiceImpl:
    """See the module docstring. ``network`` is the agency directory (kind, status, keys)."""

    def __init__(self, databases: Databases, network: NetworkService,
                 uses: Sequence[PermittedUse] | None = None) -> None:
        self.databases = databases
        self.network = network
        self._uses = list(uses if uses is not None else load_permitted_uses())
        self._use_by_id = {u.use_id: u for u in self._uses}
        self._kinds = {u.agency_kind for u in self._uses}
        self._hot = HotConnections(databases, CONTEXT)
        self._agencies: dict[str, tuple[float, AgencyRecord]] = {}
        self._lock = threading.Lock()
        self.clock = utcnow
        # Set by the assembler (web.juki_portal): the portal session -> the person.
        self.portal_person: PortalPersonResolver = _NoPortal()
        pg = databases.is_postgres
        self._search_sql = {
            (bool(n), bool(k)): HotSQL(
                f"SELECT {_IDENTITY_COLUMNS} FROM identity_copies "  # noqa: S608
                "WHERE birth_date = :birth AND sex = :sex AND key_address = :address"
                + (" AND key_name = :name" if n else "")
                + (" AND key_kana = :kana" if k else "")
                + f" LIMIT {MAX_SUBJECTS}")
            for n in (True, False) for k in (True, False) if n or k
        }
        self._pg = pg
        self._integrity_error = databases.engine(CONTEXT).dialect.loaded_dbapi.IntegrityError
        self._recorded: dict[tuple[str, bool], HotSQL] = {}

    # -- the permitted-use table ------------------------------------------------------------------
    def permitted_uses(self) -> list[PermittedUse]:
        return list(self._uses)

    def use(self, use_id: str) -> PermittedUse | None:
        return self._use_by_id.get(use_id)

    def agency(self, agency_id: str) -> AgencyRecord:
        """The directory entry (cached for ``AGENCY_CACHE_SECONDS``; UnknownAgency raises)."""
        now = time.monotonic()
        cached = self._agencies.get(agency_id)
        if cached is not None and now - cached[0] < AGENCY_CACHE_SECONDS:
            return cached[1]
        record = self.network.agency(agency_id)
        with self._lock:
            if len(self._agencies) > 10_000:
                self._agencies.clear()
            self._agencies[agency_id] = (now, record)
        return record

    def _permission(self, agency: AgencyRecord, use_id: str) -> DomainError | None:
        if agency.kind not in self._kinds:
            return AgencyNotPermitted(
                f"{agency.name} ({agency.kind}) is not in the permitted-use table "
                "(住基法 別表): it may not receive 本人確認情報", field="agency_id",
                rule="permitted_uses")
        if agency.status is not AgencyStatus.ACTIVE:
            return AgencyNotPermitted("this agency is suspended", field="agency_id",
                                      rule="agency_active")
        use = self._use_by_id.get(use_id)
        if use is None or use.agency_kind != agency.kind:
            allowed = sorted(u.use_id for u in self._uses if u.agency_kind == agency.kind)
            return UseNotPermitted(
                "use_id: not a use the permitted-use table lists for this agency's kind "
                f"(allowed: {', '.join(allowed)})", field="use_id", rule="permitted_uses")
        return None

    # -- the copy ----------------------------------------------------------------------------------
    def applied_seqs(self, resident_ids: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        ids = list(resident_ids)
        pg = self.databases.is_postgres
        size = in_chunk(pg)
        with self.databases.unit_of_work(CONTEXT) as session:
            for start in range(0, len(ids), size):
                chunk = ids[start:start + size]
                for rid, seq in session.execute(
                        select(m.IdentityCopy.resident_id, m.IdentityCopy.applied_seq)
                        .where(one_of(m.IdentityCopy.resident_id, chunk, postgres=pg))):
                    out[int(rid)] = int(seq)
        return out

    def apply(self, updates: Sequence[CopyUpdate]) -> int:
        """Upsert the current records; see the interface. One transaction."""
        if not updates:
            return 0
        now = self.clock()
        table = m.IdentityCopy.__table__
        full, state_only = [], []
        for u in updates:
            if u.change_kind is not None and u.changed_on is not None:
                full.append(copy_row(u.record, u.seq, u.change_kind, u.changed_on, now))
            else:
                state_only.append(u)
        changed = 0
        with self.databases.unit_of_work(CONTEXT) as session:
            if state_only:
                # Keep the copy's latest change: fill it in only for a person not copied yet.
                known = {r for (r,) in session.execute(select(table.c.resident_id).where(
                    one_of(table.c.resident_id, [u.record.id for u in state_only],
                           postgres=self.databases.is_postgres)))}
                for u in state_only:
                    row = copy_row(u.record, u.seq, "import", dt.date.today(), now)
                    if u.record.id not in known:
                        full.append(row)
                        continue
                    changed += self._upsert(session, [row], keep_change=True)
            for start in range(0, len(full), 1000):
                changed += self._upsert(session, full[start:start + 1000], keep_change=False)
        return changed

    def _upsert(self, session: Session, rows: list[dict[str, Any]], *, keep_change: bool) -> int:
        table = m.IdentityCopy.__table__
        dialect = postgresql if self.databases.is_postgres else sqlite
        # One statement executed for many rows (SQLAlchemy batches them): a multi-VALUES
        # statement would be compiled afresh for every batch, which cost more than the rows.
        stmt = dialect.insert(table)
        excluded = stmt.excluded
        skip = {"resident_id"} | ({"change_kind", "changed_on"} if keep_change else set())
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.resident_id],
            set_={c.name: excluded[c.name] for c in table.columns if c.name not in skip},
            # Idempotence: only a newer event's state replaces what the copy reflects.
            where=table.c.applied_seq < excluded.applied_seq,
        )
        result = session.execute(stmt, rows)
        count = int(getattr(result, "rowcount", 0) or 0)
        return count if count >= 0 else len(rows)

    def identity_of(self, resident_id: int) -> Identity | None:
        with self._hot.connection(autocommit=True) as raw:
            rows = self._hot.run(raw, _BY_RESIDENT, {"rid": resident_id})
        return _identity(rows[0]) if rows else None

    def copied(self) -> int:
        with self._hot.connection(autocommit=True) as raw:
            rows = self._hot.run(raw, HotSQL("SELECT count(*) FROM identity_copies"), {})
        return int(rows[0][0])

    # -- queries -----------------------------------------------------------------------------------
    def _record(self, raw: Any, agency: AgencyRecord, use_id: str, kind: QueryKind,
                outcome: QueryOutcome, subjects: Iterable[int], matches: int,
                refusal: str | None, nonce: str | None) -> int:
        now = self.clock()
        if nonce is not None:
            try:
                self._hot.run(raw, _INSERT_NONCE, {"agency_id": agency.agency_id,
                                                   "nonce": nonce, "at": now})
            except self._integrity_error:
                raise RequestReplayed("this signed request was already received; sign a new "
                                      "one with a fresh nonce", field="nonce") from None
        rows = self._hot.run(raw, _INSERT_QUERY, {
            "at": now, "agency_id": agency.agency_id, "agency_name": agency.name[:200],
            "use_id": use_id[:64], "kind": kind.value, "outcome": outcome.value,
            "refusal": refusal, "matches": matches})
        query_id = int(rows[0][0])
        for rid in subjects:
            self._hot.run(raw, _INSERT_SUBJECT, {"query_id": query_id, "resident_id": rid})
        return query_id

    def _refuse(self, agency: AgencyRecord, use_id: str, kind: QueryKind, error: DomainError,
                subjects: Sequence[int] = (), nonce: str | None = None) -> DomainError:
        with self._hot.connection() as raw:
            query_id = self._record(raw, agency, use_id, kind, QueryOutcome.REFUSED, subjects,
                                    0, error.code, nonce)
        error.extra["query_id"] = query_id
        return error

    def _answer(self, match: HotSQL, params: dict[str, Any], agency: AgencyRecord,
                use_id: str, kind: QueryKind, nonce: str | None
                ) -> tuple[int, list[tuple[Any, ...]]]:
        """Read the matches and record the query with its subjects, atomically: on PostgreSQL
        one statement in autocommit (one round trip, no BEGIN/COMMIT), elsewhere one
        transaction of a few statements."""
        if not self._pg:
            with self._hot.connection() as raw:
                rows = self._hot.run(raw, match, params)
                query_id = self._record(raw, agency, use_id, kind, _outcome(len(rows)),
                                        [int(r[0]) for r in rows], len(rows), None, nonce)
            return query_id, rows
        statement = self._recorded.get((match.sql, nonce is not None))
        if statement is None:
            statement = self._recorded[(match.sql, nonce is not None)] = _recorded_sql(
                match, with_nonce=nonce is not None)
        values = {**params, "at": self.clock(), "agency_id": agency.agency_id,
                  "agency_name": agency.name[:200], "use_id": use_id[:64], "kind": kind.value,
                  "nonce": nonce}
        try:
            with self._hot.connection(autocommit=True) as raw:
                result = self._hot.run(raw, statement, values)
        except self._integrity_error:
            raise RequestReplayed("this signed request was already received; sign a new "
                                  "one with a fresh nonce", field="nonce") from None
        return int(result[0][0]), [r[1:] for r in result if r[1] is not None]

    def by_code(self, agency_id: str, use_id: str, resident_code: str, *,
                nonce: str | None = None) -> QueryResult:
        agency = self.agency(agency_id)
        code = "".join(unicodedata.normalize("NFKC", resident_code or "").split())
        try:
            code = resident_code_format.validate(code)
        except ValidationError:
            raise self._refuse(agency, use_id, QueryKind.BY_CODE, InvalidJukiInput(
                "resident_code: not a valid 住民票コード (11 digits with its check digit)",
                field="resident_code"), nonce=nonce) from None
        refusal = self._permission(agency, use_id)
        if refusal is not None:
            # The person the refused query named can see that it was asked (and refused).
            with self._hot.connection(autocommit=True) as raw:
                holder = self._hot.run(raw, _RESIDENT_OF_CODE, {"code": code})
            raise self._refuse(agency, use_id, QueryKind.BY_CODE, refusal,
                               [int(r[0]) for r in holder], nonce=nonce)
        query_id, rows = self._answer(_BY_CODE, {"code": code}, agency, use_id,
                                      QueryKind.BY_CODE, nonce)
        outcome = QueryOutcome.ANSWERED if rows else QueryOutcome.NOT_FOUND
        return QueryResult(query_id, outcome, _identity(rows[0]) if rows else None)

    def search(self, agency_id: str, use_id: str, items: SearchItems, *,
               nonce: str | None = None) -> QueryResult:
        agency = self.agency(agency_id)
        try:
            keys = search_keys(items)
        except DomainError as exc:
            raise self._refuse(agency, use_id, QueryKind.SEARCH, exc, nonce=nonce) from None
        refusal = self._permission(agency, use_id)
        if refusal is not None:
            raise self._refuse(agency, use_id, QueryKind.SEARCH, refusal, nonce=nonce)
        statement = self._search_sql[(bool(keys.name), bool(keys.kana))]
        params: dict[str, Any] = {"birth": keys.birth_date if self._pg else
                                  keys.birth_date.isoformat(),
                                  "sex": keys.sex, "address": keys.address}
        if keys.name:
            params["name"] = keys.name
        if keys.kana:
            params["kana"] = keys.kana
        query_id, rows = self._answer(statement, params, agency, use_id, QueryKind.SEARCH,
                                      nonce)
        outcome = _outcome(len(rows))
        return QueryResult(query_id, outcome,
                           _identity(rows[0]) if outcome is QueryOutcome.ANSWERED else None)

    # -- 提供状況の開示 ----------------------------------------------------------------------
    def disclosure(self, resident_id: int) -> list[DisclosureEntry]:
        q, s = m.IdentityQuery, m.IdentityQuerySubject
        with self.databases.unit_of_work(CONTEXT) as session:
            rows = session.execute(
                select(q).join(s, s.query_id == q.id).where(s.resident_id == resident_id)
                .order_by(q.at.desc(), q.id.desc()).limit(DISCLOSURE_LIMIT)).scalars().all()
            return [DisclosureEntry(
                query_id=r.id, at=r.at, agency_id=r.agency_id, agency_name=r.agency_name,
                use_id=r.use_id, purpose=(u.purpose if (u := self._use_by_id.get(r.use_id))
                                          else ""),
                kind=QueryKind(r.kind), outcome=QueryOutcome(r.outcome)) for r in rows]

    def queries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest queries, for operators (no person data)."""
        q = m.IdentityQuery
        with self.databases.unit_of_work(CONTEXT) as session:
            return [{"query_id": r.id, "at": r.at.isoformat(timespec="seconds"),
                     "agency_id": r.agency_id, "use_id": r.use_id, "kind": r.kind,
                     "outcome": r.outcome, "refusal": r.refusal, "matches": r.matches}
                    for r in session.scalars(select(q).order_by(q.id.desc()).limit(limit))]


def raise_for(result: QueryResult) -> QueryResult:
    """The HTTP/CLI reading of a result: not found and ambiguous are problems (no one is
    provided), carrying the query's id."""
    if result.outcome is QueryOutcome.NOT_FOUND:
        raise IdentityNotFound("no person matches", query_id=result.query_id)
    if result.outcome is QueryOutcome.AMBIGUOUS:
        raise AmbiguousMatch(
            "more than one person matches these four items: nobody is provided; check the "
            "items (the address in full, as on the 住民票) or ask by 住民票コード",
            query_id=result.query_id)
    return result

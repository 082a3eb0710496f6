"""Bulk import of residents from CSV or JSON Lines (format: docs/import-format.md).

What the J-LIS incident taught (a batch import stopped half way and ~5,000 records were lost
without anyone noticing), and how this module answers it:

* **Atomic per batch.** Lines are taken in batches (default 5,000). A batch's residents (with
  households, numbers, letters, life events), its rejected lines (``ImportRejection``) and the
  ``ImportBatch`` row that marks it done commit in one transaction, or none of it does.
* **Resumable.** A run is identified by the SHA-256 of the file (``ImportRun``). Running the
  same file again skips the lines of committed batches and carries on; a finished run run
  again stores nothing and prints the same report. Exactly once holds because a line is
  stored only in its batch's transaction, which also writes the ``ImportBatch`` row (unique
  per run and batch number) that makes every later pass skip the batch's lines, and only one
  import of a file runs at a time. Every resident carries the run and the line it came from
  (``import_run_id``, ``import_line``; indexed, not unique).
* **Reconciled.** The report counts the records read from the file in this pass and, from the
  database, the residents stored under this run (by ``import_run_id``) and the rejections recorded
  for it: ``read == stored + rejected`` or the command fails.
* **No 個人番号.** A line that carries a field named like ``individual_number``, or a value in
  any field that is a 12-digit number with a valid 個人番号 check digit, is rejected; no
  message ever repeats a value (rejections name the line, the field and the reason).

Throughput: parsing and validation run in the calling thread while a second thread stores the
previous batch (PostgreSQL does its share of the work in its own process meanwhile); the
store itself is :func:`mynumber.registry.bulk.store_rows` (COPY on PostgreSQL).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import json
import queue
import re
import sys
import threading
from collections import ChainMap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber import audit
from mynumber.codes import individual_number, local_government_code, resident_code
from mynumber.codes.exceptions import ValidationError
from mynumber.errors import InvalidInput
from mynumber.registry import models as m
from mynumber.registry.bulk import (
    ResidentRow,
    advance_pool,
    store_rows,
    taken_resident_codes,
)
from mynumber.registry.interfaces import InvalidResidentData, NewResident, Sex
from mynumber.registry.services import (
    ADDRESS_MAX,
    MAX_NUMBER_GENERATIONS,
    NAME_MAX,
    RegistryServiceImpl,
    _require_kana,
    _require_text,
    validate_new_resident,
)

CONTEXT = "registry"
DEFAULT_BATCH_SIZE = 5000
MAX_BATCH_SIZE = 100_000

Format = Literal["csv", "jsonl"]

#: Every column of the format, in the order export writes them.
FIELDS: tuple[str, ...] = (
    "household_key", "family_name", "given_name", "family_name_kana", "given_name_kana",
    "birth_date", "sex", "municipality_code", "address", "postal_code", "relationship",
    "nationality", "residence_status", "resident_code", "number_generation", "event",
    "occurred_on",
)
REQUIRED: frozenset[str] = frozenset({
    "family_name", "given_name", "family_name_kana", "given_name_kana", "birth_date", "sex",
    "municipality_code", "address",
})
_FIELD_SET = frozenset(FIELDS)
(_HOUSEHOLD, _FAMILY, _GIVEN, _FAMILY_KANA, _GIVEN_KANA, _BIRTH, _SEX, _MUNI, _ADDRESS,
 _POSTAL, _RELATIONSHIP, _NATIONALITY, _STATUS, _CODE, _GENERATION, _EVENT,
 _OCCURRED) = range(len(FIELDS))

# Column or key names that announce a 個人番号 (compared after lower-casing and dropping
# "_", "-" and spaces). Such a file or line is refused outright.
_FORBIDDEN_NAMES = frozenset({
    "individualnumber", "mynumber", "個人番号", "マイナンバー", "kojinbango", "kojinbangou",
})

SEX_VALUES = {
    "male": "male", "female": "female", "男": "male", "女": "female", "男性": "male",
    "女性": "female", "1": "male", "2": "female",
}
EVENTS = {"": "import", "import": "import", "birth": "birth", "move_in": "move_in"}
HOUSEHOLD_KEY_MAX = 80
RESIDENCE_STATUS_MAX = 40
REASON_MAX = 200
_MIN_BIRTH = dt.date(1880, 1, 1)

# Twelve digits (ASCII or full-width), optionally grouped by spaces or hyphens, not part of a
# longer run of digits: the shape of a 個人番号 written by hand or by a spreadsheet.
_NUMBER_LIKE = re.compile(
    "(?<![0-9\uff10-\uff19])(?:[0-9\uff10-\uff19][ \\-\u2010\u2212\uff0d\u30fc\u3000]?){11}"
    "[0-9\uff10-\uff19](?![0-9\uff10-\uff19])"
)
# Control characters (the field separator \x1f aside) and the surrogates that stand for bytes
# that are not UTF-8 (the file is decoded with errors="surrogateescape").
_BAD_CHARS = re.compile("[\x00-\x1e\x7f-\x9f\ud800-\udfff]")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ImportFileError(InvalidInput):
    """The file cannot be imported at all (unreadable, bad header, …): nothing was stored."""

    code = "import_file_error"
    title = "File cannot be imported"


class BatchFailed(RuntimeError):
    """A batch could not be stored: it rolled back whole; earlier batches stay committed."""

    def __init__(self, batch: int, first_line: int, last_line: int, cause: BaseException):
        what = type(cause).__name__
        constraint = getattr(getattr(cause, "diag", None), "constraint_name", None)
        orig = getattr(cause, "orig", None)
        constraint = constraint or getattr(getattr(orig, "diag", None), "constraint_name", None)
        if constraint:
            what += f" on {constraint}"
        # The database's own message may quote values: name the error class only.
        super().__init__(
            f"batch {batch} (lines {first_line}-{last_line}) could not be stored ({what}); "
            "nothing of it was stored, the batches before it stay committed; run the same "
            "import again to resume"
        )
        self.batch = batch


@dataclass(frozen=True)
class Rejection:
    line: int
    field: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "reason": self.reason}


@dataclass
class ImportReport:
    read: int
    stored: int
    rejected: int
    rejections: list[Rejection]
    batches: int
    resumed_batches: int
    run_id: int | None
    file_sha256: str

    @property
    def reconciled(self) -> bool:
        return self.read == self.stored + self.rejected

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read, "stored": self.stored, "rejected": self.rejected,
            "rejections": [r.as_dict() for r in self.rejections], "batches": self.batches,
            "resumed_batches": self.resumed_batches, "run_id": self.run_id,
            "file_sha256": self.file_sha256,
        }


class _LineError(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class _Fallback(Exception):
    """The fast validation path declines; the authoritative one decides."""


def _norm_name(name: str) -> str:
    return name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")


def _forbidden_name(name: str) -> bool:
    return _norm_name(name) in _FORBIDDEN_NAMES


def detect_format(path: Path, given: str | None = None) -> Format:
    """``--format`` if given, else the file's extension (.csv; .jsonl/.ndjson/.json)."""
    if given:
        value = given.strip().lower()
        if value in ("csv",):
            return "csv"
        if value in ("jsonl", "ndjson", "json"):
            return "jsonl"
        raise ImportFileError("format must be csv or jsonl", field="format")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise ImportFileError(
        "cannot tell the format from the file name; name it .csv or .jsonl or pass --format",
        field="format",
    )


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise ImportFileError(f"cannot read the file: {exc.strerror or exc}") from None
    return digest.hexdigest(), size


# --- reading --------------------------------------------------------------------------------

# A record: its line number and either the values (aligned with FIELDS) or a rejection.
Record = tuple[int, "tuple[Any, ...] | Rejection"]


class _Reader:
    """Physical lines -> records. One record per line: a CSV field may be quoted (for commas
    and quotes) but may not span lines, so a stray quote costs one line, never the rest of
    the file. Blank lines are not records."""

    def __init__(self, path: Path, fmt: Format) -> None:
        self.path = path
        self.fmt = fmt
        self.bytes_read = 0
        self.digest = hashlib.sha256()
        self.header_line = 0
        self._getter: Callable[[list[Any]], tuple[Any, ...]] | None = None
        self._width = 0

    def _lines(self) -> Iterator[tuple[int, str]]:
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise ImportFileError(f"cannot read the file: {exc.strerror or exc}") from None
        with handle:
            update = self.digest.update
            for line_no, raw in enumerate(handle, 1):
                update(raw)
                self.bytes_read += len(raw)
                line = raw.decode("utf-8", "surrogateescape")
                if line_no == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                line = line.rstrip("\r\n")
                if line and not line.isspace():
                    yield line_no, line

    def records(self) -> Iterator[Record]:
        lines = self._lines()
        if self.fmt == "csv":
            first = next(lines, None)
            if first is None:
                raise ImportFileError("the file is empty: it needs a header line")
            self.header_line = first[0]
            self._header(first[1])
            for line_no, line in lines:
                yield line_no, self._csv(line)
        else:
            for line_no, line in lines:
                yield line_no, self._json(line)

    def _header(self, line: str) -> None:
        try:
            names = [n.strip() for n in next(csv.reader([line], strict=True))]
        except csv.Error:
            raise ImportFileError("the header line is not valid CSV") from None
        if any(_forbidden_name(n) for n in names):
            raise ImportFileError(
                "the header has an individual number (個人番号) column: import files must never "
                "carry the number; remove the column", field="individual_number",
            )
        unknown = [n for n in names if n not in _FIELD_SET]
        if unknown:
            shown = ", ".join(repr(n[:40]) for n in unknown[:5])
            raise ImportFileError(
                f"the header has unknown columns ({shown}); the columns are: "
                + ", ".join(FIELDS)
            )
        duplicate = sorted({n for n in names if names.count(n) > 1})
        if duplicate:
            raise ImportFileError(f"the header repeats columns: {', '.join(duplicate)}")
        missing = [f for f in FIELDS if f in REQUIRED and f not in names]
        if missing:
            raise ImportFileError(f"the header lacks required columns: {', '.join(missing)}")
        self._width = len(names)
        # Absent optional columns read the None appended to every row.
        positions = [names.index(f) if f in names else len(names) for f in FIELDS]
        self._getter = itemgetter(*positions)

    def _csv(self, line: str) -> tuple[Any, ...] | Rejection:
        if '"' in line:
            try:
                parts: list[Any] = next(csv.reader([line], strict=True))
            except csv.Error:
                return Rejection(0, None, "the line is not valid CSV (unbalanced quotes)")
        else:
            parts = line.split(",")
        if len(parts) != self._width:
            return Rejection(
                0, None, f"the line has {len(parts)} fields, the header has {self._width}"
            )
        parts.append(None)
        assert self._getter is not None
        return self._getter(parts)

    @staticmethod
    def _json(line: str) -> tuple[Any, ...] | Rejection:
        try:
            obj = json.loads(line)
        except ValueError:
            return Rejection(0, None, "the line is not valid JSON")
        if not isinstance(obj, dict):
            return Rejection(0, None, "the line is not a JSON object")
        if not obj.keys() <= _FIELD_SET:
            for key in obj:
                if key in _FIELD_SET:
                    continue
                if _forbidden_name(str(key)):
                    return Rejection(
                        0, "individual_number",
                        "import files must never carry an individual number (個人番号)",
                    )
            for key in obj:
                if key not in _FIELD_SET:
                    safe = re.fullmatch("[a-z_]{1,40}", str(key))
                    return Rejection(0, str(key) if safe else None, "unknown field")
        values = tuple(obj.get(f) for f in FIELDS)
        for name, value in zip(FIELDS, values, strict=True):
            if value is None or type(value) is str:
                continue
            if name == "number_generation" and type(value) is int:
                continue
            return Rejection(0, name, f"{name} must be a string")
        if values[_GENERATION] is not None:
            values = (*values[:_GENERATION], str(values[_GENERATION]), *values[_GENERATION + 1:])
        return values


# --- parsing and validation -------------------------------------------------------------------


class LineParser:
    """One line's values -> a validated :class:`ResidentRow`, or a :class:`Rejection`.

    Validation is :func:`services.validate_new_resident`'s: a fast path applies the same
    rules through the same helpers (``_require_text``, ``_require_kana``, the code
    validators) with memo tables for values that repeat (municipality codes, readings,
    dates), and any line it would refuse goes through ``validate_new_resident`` itself, whose
    verdict and message are final. tests/registry/test_import_export.py checks that both paths
    agree.
    """

    def __init__(self, today: dt.date, municipalities: set[str]) -> None:
        self.today = today
        self.municipalities = municipalities
        self._dates: dict[str, dt.date | str] = {}
        self._munis: dict[str, str | None] = {}
        self._kana: dict[str, str | None] = {}
        self._postal: dict[str, str | None] = {}
        self._nationality: dict[str, str | None] = {}
        self._family: dict[str, str | None] = {}
        self._given: dict[str, str | None] = {}
        self._address: dict[str, str | None] = {}
        self._relationship: dict[str, str | None] = {}

    # values -----------------------------------------------------------------------------------
    def parse(self, line_no: int, values: tuple[Any, ...]) -> ResidentRow | Rejection:
        try:
            return self._parse(line_no, values)
        except _LineError as exc:
            return Rejection(line_no, exc.field, exc.reason[:REASON_MAX])

    def _parse(self, line_no: int, values: tuple[Any, ...]) -> ResidentRow:
        present = [v for v in values if v]
        joined = "\x1f".join(present)
        if _NUMBER_LIKE.search(joined):
            self._refuse_numbers(values)
        if _BAD_CHARS.search(joined) or joined.count("\x1f") != len(present) - 1:
            self._refuse_characters(values)
        for index in (_FAMILY, _GIVEN, _FAMILY_KANA, _GIVEN_KANA, _BIRTH, _SEX, _MUNI, _ADDRESS):
            value = values[index]
            if value is None or not value.strip():
                raise _LineError(FIELDS[index], f"{FIELDS[index]} is required")

        birth = self._date("birth_date", values[_BIRTH])
        sex = SEX_VALUES.get(values[_SEX].strip().lower())
        if sex is None:
            raise _LineError("sex", "sex must be male or female (also 男/女 or 1/2)")
        event = EVENTS.get((values[_EVENT] or "").strip())
        if event is None:
            raise _LineError("event", "event must be birth, move_in or import")
        household = (values[_HOUSEHOLD] or "").strip() or None
        if household is not None and len(household) > HOUSEHOLD_KEY_MAX:
            raise _LineError("household_key",
                             f"household_key is longer than {HOUSEHOLD_KEY_MAX} characters")
        status = (values[_STATUS] or "").strip()
        if len(status) > RESIDENCE_STATUS_MAX:
            raise _LineError("residence_status",
                             f"residence_status is longer than {RESIDENCE_STATUS_MAX} characters")

        checked = self._validate(values, birth, sex, status)

        code_value = (values[_CODE] or "").strip()
        code: str | None = None
        if code_value:
            try:
                code = resident_code.validate(code_value)
            except ValidationError as exc:
                raise _LineError("resident_code", f"resident_code: {exc}") from None
        generation = 0
        generation_value = (values[_GENERATION] or "").strip()
        if generation_value:
            if not (generation_value.isascii() and generation_value.isdigit()
                    and int(generation_value) < MAX_NUMBER_GENERATIONS):
                raise _LineError("number_generation",
                                 "number_generation must be a whole number from 0 to "
                                 f"{MAX_NUMBER_GENERATIONS - 1}")
            generation = int(generation_value)
            if generation and code is None:
                raise _LineError("number_generation", "number_generation needs a resident_code")

        occurred_value = (values[_OCCURRED] or "").strip()
        if occurred_value:
            occurred = self._date("occurred_on", occurred_value)
            if occurred > self.today:
                raise _LineError("occurred_on", "occurred_on is in the future")
            if occurred < birth:
                raise _LineError("occurred_on", "occurred_on is before birth_date")
        else:
            occurred = birth if event == "birth" else self.today
        if event == "birth" and occurred != birth:
            raise _LineError("occurred_on", "a birth happens on the birth date")

        (family, given, family_kana, given_kana, birth_date, sex_value, muni, address, postal,
         relationship, nationality, residence_status) = checked
        return ResidentRow(
            family, given, family_kana, given_kana, birth_date, sex_value, muni, address,
            postal, relationship, nationality, residence_status, household, None, code,
            generation, event, occurred, line_no,
        )

    def _refuse_numbers(self, values: tuple[Any, ...]) -> None:
        for name, value in zip(FIELDS, values, strict=True):
            if not value:
                continue
            for match in _NUMBER_LIKE.finditer(value):
                if individual_number.is_valid(match.group()):
                    raise _LineError(
                        name, f"{name} holds what looks like an individual number (個人番号); "
                        "import files must never carry one",
                    )

    @staticmethod
    def _refuse_characters(values: tuple[Any, ...]) -> None:
        for name, value in zip(FIELDS, values, strict=True):
            if value and ("\x1f" in value or _BAD_CHARS.search(value)):
                raise _LineError(
                    name, f"{name} contains a control character or bytes that are not UTF-8"
                )

    def _date(self, name: str, value: str) -> dt.date:
        value = value.strip()
        parsed = self._dates.get(value)
        if parsed is None:
            if not _DATE.fullmatch(value):
                parsed = "format"
            else:
                try:
                    parsed = dt.date.fromisoformat(value)
                except ValueError:
                    parsed = "calendar"
            if len(self._dates) < 200_000:
                self._dates[value] = parsed
        if parsed == "format":
            raise _LineError(name, f"{name} must be a date written YYYY-MM-DD")
        if parsed == "calendar":
            raise _LineError(name, f"{name} is not a calendar date")
        assert isinstance(parsed, dt.date)
        return parsed

    # validation ---------------------------------------------------------------------------
    def _validate(
        self, values: tuple[Any, ...], birth: dt.date, sex: str, status: str
    ) -> tuple[Any, ...]:
        family, given = values[_FAMILY], values[_GIVEN]
        family_kana, given_kana = values[_FAMILY_KANA], values[_GIVEN_KANA]
        address = values[_ADDRESS]
        postal = values[_POSTAL] or ""
        relationship = values[_RELATIONSHIP] or ""
        nationality = values[_NATIONALITY] or "JP"
        # The 5-digit form (without check digit) is accepted: make it the 6-digit one first.
        muni = self._munis.get(values[_MUNI])
        if muni is None:
            muni = _municipality(values[_MUNI]) or values[_MUNI]
            if len(self._munis) < 200_000:
                self._munis[values[_MUNI]] = muni
        try:
            out = self._fast(family, given, family_kana, given_kana, birth, sex, muni, address,
                             postal, relationship, nationality, status)
        except (_Fallback, InvalidResidentData):
            try:
                checked = validate_new_resident(
                    NewResident(family, given, family_kana, given_kana, birth, Sex(sex), muni,
                                address, postal, None, relationship, nationality, status),
                    self.today,
                )
            except InvalidResidentData as exc:
                raise _LineError(exc.field, exc.detail) from None
            out = (checked.family_name, checked.given_name, checked.family_name_kana,
                   checked.given_name_kana, checked.birth_date, Sex(checked.sex).value,
                   checked.municipality_code, checked.address, checked.postal_code,
                   checked.relationship, checked.nationality, checked.residence_status)
        if out[6] not in self.municipalities:
            raise _LineError("municipality_code", "no municipality has this code")
        return out

    def _fast(
        self, family: str, given: str, family_kana: str, given_kana: str, birth: dt.date,
        sex: str, muni: str, address: str, postal: str, relationship: str, nationality: str,
        status: str,
    ) -> tuple[Any, ...]:
        """validate_new_resident's rules, memoised; raises _Fallback on anything doubtful."""
        if birth > self.today or birth < _MIN_BIRTH:
            raise _Fallback
        nat = self._memo(self._nationality, nationality, _nationality)
        if nat != "JP" and not status:
            raise _Fallback
        post = self._memo(self._postal, postal, _postal)
        if len(muni) != 6 or muni not in self.municipalities:
            raise _Fallback
        family = self._memo(self._family, family, _family_name)
        given = self._memo(self._given, given, _given_name)
        family_kana = self._memo(self._kana, family_kana, _kana)
        given_kana = self._memo(self._kana, given_kana, _kana)
        address = self._memo(self._address, address, _address)
        relationship = self._memo(self._relationship, relationship or "世帯主", _relationship)
        return (family, given, family_kana, given_kana, birth, sex, muni, address, post,
                relationship, nat, status)

    @staticmethod
    def _memo(table: dict[str, Any], value: str, compute: Callable[[str], str | None]) -> str:
        try:
            result = table[value]
        except KeyError:
            result = compute(value)
            if len(table) >= 100_000:
                table.clear()  # bounded memory; recent values (a household's) matter most
            table[value] = result
        if result is None:
            raise _Fallback
        return result  # type: ignore[no-any-return]


def _nationality(value: str) -> str | None:
    nat = (value or "").strip().upper()
    return nat if len(nat) == 2 and nat.isascii() and nat.isalpha() else None


def _postal(value: str) -> str | None:
    postal = value.replace("-", "").strip()
    return None if postal and (len(postal) != 7 or not postal.isdigit()) else postal


def _municipality(value: str) -> str | None:
    try:
        return local_government_code.validate(local_government_code.compact(value))
    except ValidationError:
        return None


def _text(field: str, maximum: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            return _require_text(field, value, maximum)
        except InvalidResidentData:
            return None

    return check


_family_name = _text("family_name", NAME_MAX)
_given_name = _text("given_name", NAME_MAX)
_address = _text("address", ADDRESS_MAX)
_relationship = _text("relationship", 20)


def _kana(value: str) -> str | None:
    try:
        return _require_kana("kana", value)
    except InvalidResidentData:
        return None


# --- the run ------------------------------------------------------------------------------------


@dataclass
class _Batch:
    no: int
    first_line: int
    last_line: int = 0
    rows: list[tuple[int, ResidentRow]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    bytes_done: int = 0
    # Overlapping stores (PostgreSQL): the batch stored before this one, and what this one
    # tells the next: its new households (key -> id, key -> municipality) once assigned, that
    # its transaction holds its ordering lock, and that it is over (``failed`` if it did not
    # commit). Events are set on every path, failures included.
    prev: _Batch | None = None
    new_households: dict[str, int] = field(default_factory=dict)
    new_munis: dict[str, str] = field(default_factory=dict)
    given_codes: bool = False
    households_ready: threading.Event = field(default_factory=threading.Event)
    locked: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    failed: bool = False


class Importer:
    """Import one file. ``run`` returns the reconciliation report or raises ImportFileError
    (nothing stored for the failing batch; earlier batches stay and a re-run resumes)."""

    def __init__(
        self, registry: RegistryServiceImpl, *, batch_size: int = DEFAULT_BATCH_SIZE,
        actor: str = "system:import", today: dt.date | None = None,
        on_progress: Callable[[int, int], None] | None = None, threaded: bool = True,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ImportFileError(f"batch size must be from 1 to {MAX_BATCH_SIZE}",
                                  field="batch_size")
        self.registry = registry
        self.databases = registry.databases
        self.numbering = registry.numbering
        self.batch_size = batch_size
        self.actor = actor[:80]
        self.today = today or dt.date.today()
        self.on_progress = on_progress
        self.threaded = threaded
        self.sha256 = ""
        self.run_id: int | None = None
        # household_key -> household id and -> municipality code, for committed households.
        self.household_ids: dict[str, int] = {}
        self.household_munis: dict[str, str] = {}
        # household_key -> lines of committed batches that named it (to resolve on resume).
        self._earlier: dict[str, list[int]] = {}
        self._committed_once = False
        self._order_key = 0

    # public -------------------------------------------------------------------------------
    def run(self, path: Path, file_format: str | None = None) -> ImportReport:
        path = Path(path)
        fmt = detect_format(path, file_format)
        if not path.is_file():
            raise ImportFileError("no such file" if not path.exists() else "not a regular file")
        self.sha256, size = file_sha256(path)
        self._filename = path.name[:255]
        self._format = fmt
        self._size = size
        # Key space of the batches' ordering locks (two-int advisory locks, see _store_batch).
        self._order_key = int(self.sha256[:7], 16)
        with self._exclusive():
            return self._run(path, fmt, size)

    # the run --------------------------------------------------------------------------------
    def _run(self, path: Path, fmt: Format, size: int) -> ImportReport:
        with self.databases.unit_of_work(CONTEXT) as session:
            run = session.scalars(
                select(m.ImportRun).where(m.ImportRun.file_sha256 == self.sha256)
            ).first()
            if run is not None and run.file_format != fmt:
                raise ImportFileError(
                    f"this file was imported as {run.file_format} before; import it the same way",
                    field="format",
                )
            self.run_id = run.id if run is not None else None
            finished = run is not None and run.finished_at is not None
            done = [] if run is None else session.execute(
                select(m.ImportBatch.batch_no, m.ImportBatch.first_line, m.ImportBatch.last_line)
                .where(m.ImportBatch.run_id == run.id).order_by(m.ImportBatch.first_line)
            ).all()
            municipalities = set(session.scalars(select(m.Municipality.code)))
        resumed = len(done)
        intervals = [(first, last) for _, first, last in done]
        next_no = max((no for no, _, _ in done), default=0) + 1

        reader = _Reader(path, fmt)
        parser = LineParser(self.today, municipalities)
        read = 0
        batch: _Batch | None = None
        k = 0  # index into intervals
        workers = 2 if self.databases.is_postgres else 1
        with _Pipeline(self._store, threaded=self.threaded, workers=workers) as pipeline:
            for line_no, values in reader.records():
                read += 1
                while k < len(intervals) and intervals[k][1] < line_no:
                    k += 1
                if k < len(intervals) and intervals[k][0] <= line_no:
                    # Committed earlier: skip it, remembering the households it named.
                    if batch is not None:
                        pipeline.put(batch)
                        batch = None
                    if not finished and not isinstance(values, Rejection):
                        key = (values[_HOUSEHOLD] or "").strip()
                        if key:
                            self._earlier.setdefault(key, []).append(line_no)
                    if read % 1000 == 0:
                        self._progress(reader.bytes_read, size)
                    continue
                if batch is None:
                    batch = _Batch(next_no, line_no)
                    next_no += 1
                batch.last_line = line_no
                if isinstance(values, Rejection):
                    batch.rejections.append(Rejection(line_no, values.field, values.reason))
                else:
                    parsed = parser.parse(line_no, values)
                    if isinstance(parsed, Rejection):
                        batch.rejections.append(parsed)
                    else:
                        batch.rows.append((line_no, parsed))
                if len(batch.rows) + len(batch.rejections) >= self.batch_size:
                    batch.bytes_done = reader.bytes_read
                    pipeline.put(batch)
                    batch = None
            if batch is not None:
                batch.bytes_done = reader.bytes_read
                pipeline.put(batch)
        if reader.digest.hexdigest() != self.sha256:
            raise ImportFileError(
                "the file changed while it was being imported; the batches stored so far "
                "belong to the earlier content: check them before importing again",
                partial=True,
            )
        if read == 0:
            raise ImportFileError("the file has no records")
        return self._report(read, resumed, fmt, path)

    def _progress(self, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total)

    # storing one batch -----------------------------------------------------------------------
    def _store(self, batch: _Batch) -> None:
        try:
            self._store_batch(batch)
        except BaseException as exc:
            batch.failed = True
            if isinstance(exc, ImportFileError | BatchFailed) or not isinstance(exc, Exception):
                raise
            raise BatchFailed(batch.no, batch.first_line, batch.last_line, exc) from exc
        finally:
            batch.households_ready.set()
            batch.locked.set()
            batch.done.set()
            batch.prev = None  # the chain stays two batches long

    def _wait(self, batch: _Batch, event: str) -> None:
        """Wait for the previous batch to reach ``event``; fail if it failed."""
        prev = batch.prev
        if prev is None:
            return
        getattr(prev, event).wait()
        if prev.failed:
            raise RuntimeError(f"batch {prev.no} before this one failed")

    def _store_batch(self, batch: _Batch) -> None:
        """Store one batch. On PostgreSQL two batches overlap (see :class:`_Pipeline`); the
        rules that keep them equivalent to one after the other:

        * batches commit in file order: before committing, a batch takes the previous batch's
          transaction-level advisory lock (so it waits for that transaction to end, and
          PostgreSQL's deadlock detector sees the wait) and then checks that the previous
          batch's ``ImportBatch`` row is there, else it rolls back. Committed batches are
          always a prefix of the batches handed out, as when they ran one at a time;
        * households: a batch starts once the previous one has assigned ids to its new
          household keys, and uses those ids for the same keys (its own commit waits for the
          previous one's);
        * the first batch of a pass, and any batch next to one that carries 住民票コード
          (migrated residents, checked against the registry before storing), runs alone.
        """
        prev = batch.prev
        if prev is not None and (batch.given_codes or prev.given_codes
                                 or not self._committed_once):
            self._wait(batch, "done")
        self._wait(batch, "households_ready")
        postgres = self.databases.is_postgres
        with self.databases.unit_of_work(CONTEXT) as session:
            if postgres:
                session.execute(text("SELECT pg_advisory_xact_lock(:k, :n)"),
                                {"k": self._order_key, "n": batch.no})
            batch.locked.set()
            run_id = self._ensure_run(session)
            before: dict[str, int] = prev.new_households if prev is not None else {}
            before_munis = prev.new_munis if prev is not None else {}
            rows, rejections = self._checks(session, batch, before_munis)
            # New keys land in the front map; the committed ones (and those of the batch in
            # flight before this one) are read through, not copied.
            households: ChainMap[str, int] = ChainMap({}, before, self.household_ids)
            stored = 0
            if rows:
                plain = [r for _, r in rows]
                munis = {r.household_key: r.municipality_code for r in plain if r.household_key}

                def assigned() -> None:
                    batch.new_households = dict(households.maps[0])
                    batch.new_munis = {k: munis.get(k, "") for k in batch.new_households}
                    batch.households_ready.set()

                try:
                    with session.begin_nested():
                        store_rows(self.numbering, session, plain, self.actor,
                                   households=households, checked=False, audit_subject=None,
                                   import_run_id=run_id, on_households=assigned,
                                   pool_allocator=self._pool_allocator if postgres else None)
                except Exception as exc:
                    if not _is_integrity_error(exc):
                        raise
                    # A pool code or a number collided (see bulk): redo with look-ups,
                    # keeping the household ids the next batch may already use.
                    presets = dict(households.maps[0])
                    households = ChainMap({}, before, self.household_ids)
                    store_rows(self.numbering, session, plain, self.actor,
                               households=households, checked=True, audit_subject=None,
                               import_run_id=run_id, household_presets=presets)
                stored = len(plain)
            batch.households_ready.set()
            if rejections:
                session.execute(insert(m.ImportRejection), [
                    {"run_id": run_id, "line_no": r.line, "field": r.field,
                     "reason": r.reason[:REASON_MAX]} for r in rejections
                ])
            session.add(m.ImportBatch(
                run_id=run_id, batch_no=batch.no, first_line=batch.first_line,
                last_line=batch.last_line, stored=stored, rejected=len(rejections),
            ))
            audit.record(
                session, m.AuditEvent, "registry:import:batch", actor=self.actor,
                subject=f"import_run:{run_id}", batch=batch.no, first_line=batch.first_line,
                last_line=batch.last_line, stored=stored, rejected=len(rejections),
            )
            if prev is not None and postgres:
                # Commit after the previous batch, and only if it committed. (Its lock is
                # taken first thing in its transaction: wait for that, then for the lock.)
                self._wait(batch, "locked")
                session.execute(text("SELECT pg_advisory_xact_lock(:k, :n)"),
                                {"k": self._order_key, "n": prev.no})
                if not session.scalar(select(func.count()).select_from(m.ImportBatch).where(
                    m.ImportBatch.run_id == run_id, m.ImportBatch.batch_no == prev.no
                )):
                    raise RuntimeError(f"batch {prev.no} before this one did not commit")
        # Committed: only now do this batch's households become known to later batches.
        munis = {r.household_key: r.municipality_code for _, r in rows if r.household_key}
        for key, hid in households.maps[0].items():
            self.household_ids[key] = hid
            self.household_munis[key] = munis.get(key, "")
        self._committed_once = True
        self._progress(batch.bytes_done, self._size)

    def _pool_allocator(self, count: int) -> int:
        # The pool row in a short transaction of its own: a batch in flight does not hold its
        # lock. Counters of a batch that rolls back are skipped, never handed out twice.
        with self.databases.engine(CONTEXT).begin() as conn:
            return advance_pool(conn, count)

    def _ensure_run(self, session: Session) -> int:
        if self.run_id is None:
            run = m.ImportRun(file_sha256=self.sha256, filename=self._filename,
                              file_format=self._format)
            session.add(run)
            session.flush()
            self.run_id = run.id
        return self.run_id

    def _checks(
        self, session: Session, batch: _Batch, in_flight: dict[str, str]
    ) -> tuple[list[tuple[int, ResidentRow]], list[Rejection]]:
        """The checks that need the database: given 住民票コード and household keys."""
        rejections = list(batch.rejections)
        rows = batch.rows
        given = [r.resident_code for _, r in rows if r.resident_code is not None]
        if given:
            taken = taken_resident_codes(session, given)
            seen: set[str] = set()
            kept = []
            for line_no, r in rows:
                code = r.resident_code
                if code is not None and code in taken:
                    rejections.append(Rejection(line_no, "resident_code",
                                                "resident_code is already registered"))
                elif code is not None and code in seen:
                    rejections.append(Rejection(
                        line_no, "resident_code",
                        "resident_code appears on an earlier line of this file"))
                else:
                    if code is not None:
                        seen.add(code)
                    kept.append((line_no, r))
            rows = kept
        if any(r.household_key for _, r in rows):
            self._resolve_households(session, rows)
            pending: dict[str, str] = {}
            kept = []
            for line_no, r in rows:
                key = r.household_key
                if key is not None:
                    known = self.household_munis.get(key)
                    if known is None:
                        known = in_flight.get(key)
                    muni = known if known is not None else pending.setdefault(
                        key, r.municipality_code)
                    if muni != r.municipality_code:
                        rejections.append(Rejection(
                            line_no, "household_key",
                            "household_key names a household of another municipality"))
                        continue
                kept.append((line_no, r))
            rows = kept
        rejections.sort(key=lambda r: r.line)
        return rows, rejections

    def _resolve_households(
        self, session: Session, rows: list[tuple[int, ResidentRow]]
    ) -> None:
        """After a resume: households that committed batches created for keys seen again."""
        wanted = {r.household_key for _, r in rows if r.household_key}
        lookup = {
            line: key
            for key in wanted if key not in self.household_ids
            for line in self._earlier.pop(key, ())
        }
        if not lookup or self.run_id is None:
            return
        lines = list(lookup)
        for start in range(0, len(lines), 900):
            for line, household_id, muni in session.execute(
                select(m.Resident.import_line, m.Resident.household_id,
                       m.Resident.municipality_code)
                .where(m.Resident.import_run_id == self.run_id,
                       m.Resident.import_line.in_(lines[start:start + 900]))
            ):
                key = lookup[line or 0]
                if household_id is not None and key not in self.household_ids:
                    self.household_ids[key] = household_id
                    self.household_munis[key] = muni

    # the report ----------------------------------------------------------------------------
    def _report(self, read: int, resumed: int, fmt: Format, path: Path) -> ImportReport:
        with self.databases.unit_of_work(CONTEXT) as session:
            run_id = self.run_id
            stored = 0 if run_id is None else session.scalar(
                select(func.count()).select_from(m.Resident)
                .where(m.Resident.import_run_id == run_id)
            ) or 0
            rejections = [] if run_id is None else [
                Rejection(line, fld, reason) for line, fld, reason in session.execute(
                    select(m.ImportRejection.line_no, m.ImportRejection.field,
                           m.ImportRejection.reason)
                    .where(m.ImportRejection.run_id == run_id)
                    .order_by(m.ImportRejection.line_no)
                )
            ]
            batches = 0 if run_id is None else session.scalar(
                select(func.count()).select_from(m.ImportBatch)
                .where(m.ImportBatch.run_id == run_id)
            ) or 0
            report = ImportReport(read, stored, len(rejections), rejections, batches, resumed,
                                  run_id, self.sha256)
            if run_id is not None and report.reconciled:
                run = session.get(m.ImportRun, run_id)
                if run is not None and run.finished_at is None:
                    run.finished_at = dt.datetime.now(dt.UTC)
                    run.lines_read = read
        return report

    # exclusivity ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One import of a given file at a time (a second one would only fight the first)."""
        if self.databases.is_postgres:
            lock_id = int(self.sha256[:15], 16)
            with self.databases.engine(CONTEXT).connect() as conn:
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_id}).scalar()
                conn.commit()
                if not got:
                    raise ImportFileError("another import of this file is running")
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_id})
                    conn.commit()
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        directory = self.databases.settings.data_dir
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / f".import-{self.sha256[:16]}.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise ImportFileError("another import of this file is running") from None
            yield

    # set by run() before the first batch
    _filename = ""
    _format = ""
    _size = 0


def _is_integrity_error(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("23")


class _Pipeline:
    """Store batches in ``workers`` threads while the caller parses the next one.

    The queue holds one batch: memory stays bounded, and parsing runs at most
    ``workers + 1`` batches ahead of the database. With two workers (PostgreSQL) two batches
    are stored at once on two connections, so the server works on both CPU cores while
    Python parses; ``Importer._store_batch`` keeps their commits in file order. An error in a
    store thread stops the run; the batch that failed rolled back whole, and so did any
    batch after it.
    """

    def __init__(self, store: Callable[[_Batch], None], *, threaded: bool = True,
                 workers: int = 1) -> None:
        self.store = store
        self.threaded = threaded
        self.queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.threads = [
            threading.Thread(target=self._work, name=f"import-store-{i}", daemon=True)
            for i in range(workers if threaded else 1)
        ]
        self._last: _Batch | None = None
        self._lock = threading.Lock()
        self._error_batch = 0
        self._interval = 0.005

    def __enter__(self) -> _Pipeline:
        if self.threaded:
            # Hand the GIL over sooner (default 5 ms): the store thread, back from a socket
            # wait, should not idle the database while the parser finishes its time slice.
            self._interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._interval, 0.0005))
            for thread in self.threads:
                thread.start()
        return self

    def _work(self) -> None:
        while True:
            batch = self.queue.get()
            if batch is None:
                return
            if self.error is None:
                try:
                    self.store(batch)
                except BaseException as exc:
                    with self._lock:
                        # Report the first batch that failed, not one that stopped after it.
                        if self.error is None or batch.no < self._error_batch:
                            self.error, self._error_batch = exc, batch.no

    def put(self, batch: _Batch) -> None:
        if self.error is not None:
            raise self.error
        batch.prev = self._last
        batch.given_codes = any(r.resident_code is not None for _, r in batch.rows)
        self._last = batch
        if not self.threaded:
            self.store(batch)
            return
        self.queue.put(batch)

    def __exit__(self, *exc_info: object) -> None:
        if not self.threaded:
            return
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()
        sys.setswitchinterval(self._interval)
        if self.error is not None and exc_info[0] is None:
            raise self.error

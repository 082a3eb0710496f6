"""Banks and branches as reference data, with their history (mergers, consolidations).

A bank has a 4-digit 金融機関コード and a branch a 3-digit 店番; both are published with a kana
name in the 全銀 character set.  Codes change: when two banks merge, or a branch is folded into
another, the old code stops on a date and its accounts continue under a successor code.  A
registration stored with the old codes is migrated to the new ones (never silently dropped),
which is what :func:`current_codes` computes.

Each row is valid from ``valid_from`` to ``valid_to`` (both inclusive; an empty ``valid_to``
means still valid).  A code may be reused after its period ends, so a code alone does not name
a branch: a code *on a date* does.  A row that ends may name its successor, which must be
valid on the next day; following successors therefore always moves forward in time, and a
chain of mergers cannot loop.

The shipped dataset (``data/banks.csv``, ``data/branches.csv``) is synthetic: see
``data/README.md``.

>>> directory = load_bank_directory()
>>> directory.bank("8001", date(2025, 4, 1)).kana
'ﾐﾗｲ'
>>> current_codes(directory, "8011", "101", known_on=date(2018, 1, 1), on=date(2025, 1, 1))
BranchCodes(bank_code='8013', branch_code='501')
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from typing import NamedTuple

from mynumber.accounts.zengin import is_zengin
from mynumber.codes.exceptions import InvalidComponent, ValidationError

__all__ = [
    "Bank",
    "BankDirectory",
    "Branch",
    "BranchClosed",
    "BranchCodes",
    "InvalidBankData",
    "UnknownBranch",
    "current_codes",
    "load_bank_directory",
    "parse_bank_directory",
]

_BANK_CODE = re.compile(r"[0-9]{4}")
_BRANCH_CODE = re.compile(r"[0-9]{3}")
#: 銀行名 and 支店名 are C(15) in the 全銀 files.
KANA_NAME_MAX = 15

BANK_COLUMNS = ("code", "name", "kana", "valid_from", "valid_to", "successor_code")
BRANCH_COLUMNS = (
    "bank_code",
    "code",
    "name",
    "kana",
    "valid_from",
    "valid_to",
    "successor_bank_code",
    "successor_code",
)


class InvalidBankData(ValidationError):
    """The bank dataset is malformed; the message names the file, row and rule."""

    code = "invalid_bank_data"
    default_message = "the bank dataset is not valid"


class UnknownBranch(InvalidComponent):
    """No branch had these codes on the date given."""

    code = "unknown_branch"
    default_message = "no branch had these codes on that date"


class BranchClosed(InvalidComponent):
    """The branch closed with no successor: accounts there must be registered again."""

    code = "branch_closed"
    default_message = "the branch closed without a successor"


class BranchCodes(NamedTuple):
    bank_code: str
    branch_code: str


@dataclass(frozen=True, slots=True)
class Bank:
    code: str
    name: str
    kana: str
    valid_from: date
    valid_to: date | None
    successor_code: str | None

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class Branch:
    bank_code: str
    code: str
    name: str
    kana: str
    valid_from: date
    valid_to: date | None
    successor: BranchCodes | None

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class BankDirectory:
    """A validated, immutable set of banks and branches; look-ups are by code on a date."""

    def __init__(self, banks: Sequence[Bank], branches: Sequence[Branch]) -> None:
        self.banks: tuple[Bank, ...] = tuple(banks)
        self.branches: tuple[Branch, ...] = tuple(branches)
        self._banks: dict[str, list[Bank]] = defaultdict(list)
        self._branches: dict[tuple[str, str], list[Branch]] = defaultdict(list)
        for bank in self.banks:
            self._banks[bank.code].append(bank)
        for branch in self.branches:
            self._branches[(branch.bank_code, branch.code)].append(branch)

    def bank(self, code: str, on: date) -> Bank | None:
        """The bank with ``code`` on ``on``, or None."""
        return next((b for b in self._banks.get(code, ()) if b.valid_on(on)), None)

    def branch(self, bank_code: str, code: str, on: date) -> Branch | None:
        """The branch with these codes on ``on``, or None."""
        rows = self._branches.get((bank_code, code), ())
        return next((b for b in rows if b.valid_on(on)), None)

    def banks_on(self, on: date) -> list[Bank]:
        """Banks open on ``on``, by code (what a form's bank list shows)."""
        return sorted((b for b in self.banks if b.valid_on(on)), key=lambda b: b.code)

    def branches_of(self, bank_code: str, on: date) -> list[Branch]:
        """Branches of ``bank_code`` open on ``on``, by code."""
        return sorted(
            (b for b in self.branches if b.bank_code == bank_code and b.valid_on(on)),
            key=lambda b: b.code,
        )


def current_codes(
    directory: BankDirectory, bank_code: str, branch_code: str, *, known_on: date, on: date
) -> BranchCodes:
    """The codes on ``on`` of the branch that had ``(bank_code, branch_code)`` on ``known_on``.

    ``known_on`` is the date the codes were recorded (a registration's date): a code can be
    reused later for another branch, so the codes alone are ambiguous.  Successors are
    followed through every merger and consolidation up to ``on``.

    Raises :class:`UnknownBranch` if no branch had the codes on ``known_on`` (or ``on`` is
    earlier), and :class:`BranchClosed` if the branch ended with no successor before ``on``.

    >>> d = load_bank_directory()
    >>> current_codes(d, "8001", "113", known_on=date(2020, 1, 1), on=date(2025, 1, 1))
    BranchCodes(bank_code='8001', branch_code='101')
    >>> current_codes(d, "8001", "113", known_on=date(2024, 5, 1), on=date(2025, 1, 1))
    BranchCodes(bank_code='8001', branch_code='113')
    """
    if on < known_on:
        raise UnknownBranch("the date asked for is before the date the codes were recorded")
    branch = directory.branch(bank_code, branch_code, known_on)
    if branch is None:
        raise UnknownBranch()
    while branch.valid_to is not None and branch.valid_to < on:
        if branch.successor is None:
            raise BranchClosed()
        next_day = branch.valid_to + timedelta(days=1)
        successor = directory.branch(*branch.successor, next_day)
        if successor is None:  # pragma: no cover - the loader guarantees it exists
            raise UnknownBranch("a successor branch is missing from the dataset")
        branch = successor
    return BranchCodes(branch.bank_code, branch.code)


# -- loading ----------------------------------------------------------------------------------


def _date(value: str, where: str, column: str) -> date:
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidBankData(f"{where}: {column} must be a date YYYY-MM-DD") from None


def _rows(text: str, columns: tuple[str, ...], file: str) -> Iterable[tuple[str, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != columns:
        raise InvalidBankData(f"{file}: the header must be {','.join(columns)}")
    for row in reader:
        where = f"{file} line {reader.line_num}"
        if None in row or any(v is None for v in row.values()):
            raise InvalidBankData(f"{where}: wrong number of columns")
        yield where, {k: v.strip() for k, v in row.items()}


def _common(row: dict[str, str], where: str) -> tuple[date, date | None]:
    if not row["name"]:
        raise InvalidBankData(f"{where}: name is required")
    kana = row["kana"]
    if not kana or not is_zengin(kana) or len(kana) > KANA_NAME_MAX:
        raise InvalidBankData(
            f"{where}: kana must be 1-{KANA_NAME_MAX} characters of the 全銀 character set"
        )
    valid_from = _date(row["valid_from"], where, "valid_from")
    valid_to = _date(row["valid_to"], where, "valid_to") if row["valid_to"] else None
    if valid_to is not None and valid_to < valid_from:
        raise InvalidBankData(f"{where}: valid_to is before valid_from")
    return valid_from, valid_to


def _overlap(a: Bank | Branch, b: Bank | Branch) -> bool:
    a_end, b_end = a.valid_to or date.max, b.valid_to or date.max
    return a.valid_from <= b_end and b.valid_from <= a_end


def parse_bank_directory(banks_csv: str, branches_csv: str) -> BankDirectory:
    """Parse and validate the two CSV texts (see ``data/README.md`` for the columns).

    Raises :class:`InvalidBankData` naming the file, line and rule on the first problem:
    malformed codes, names or dates; a code used twice in overlapping periods; a successor
    on a row that does not end, or one that is not valid the day after; a branch outside
    its bank's period; a branch of a merged bank left without a successor.
    """
    banks: list[Bank] = []
    for where, row in _rows(banks_csv, BANK_COLUMNS, "banks.csv"):
        if not _BANK_CODE.fullmatch(row["code"]):
            raise InvalidBankData(f"{where}: code must be 4 digits")
        valid_from, valid_to = _common(row, where)
        successor = row["successor_code"] or None
        if successor is not None and not _BANK_CODE.fullmatch(successor):
            raise InvalidBankData(f"{where}: successor_code must be 4 digits")
        if successor is not None and valid_to is None:
            raise InvalidBankData(f"{where}: a successor needs a valid_to")
        banks.append(Bank(row["code"], row["name"], row["kana"], valid_from, valid_to, successor))

    located: list[tuple[str, Branch]] = []
    for where, row in _rows(branches_csv, BRANCH_COLUMNS, "branches.csv"):
        if not _BANK_CODE.fullmatch(row["bank_code"]):
            raise InvalidBankData(f"{where}: bank_code must be 4 digits")
        if not _BRANCH_CODE.fullmatch(row["code"]):
            raise InvalidBankData(f"{where}: code must be 3 digits")
        valid_from, valid_to = _common(row, where)
        s_bank, s_code = row["successor_bank_code"], row["successor_code"]
        if bool(s_bank) != bool(s_code):
            raise InvalidBankData(f"{where}: successor_bank_code and successor_code go together")
        if s_bank and not (_BANK_CODE.fullmatch(s_bank) and _BRANCH_CODE.fullmatch(s_code)):
            raise InvalidBankData(f"{where}: the successor codes must be 4 and 3 digits")
        if s_bank and valid_to is None:
            raise InvalidBankData(f"{where}: a successor needs a valid_to")
        branch_successor = BranchCodes(s_bank, s_code) if s_bank else None
        branch = Branch(
            row["bank_code"], row["code"], row["name"], row["kana"], valid_from, valid_to,
            branch_successor,
        )  # fmt: skip
        located.append((where, branch))

    directory = BankDirectory(banks, [branch for _, branch in located])
    _check_banks(directory)
    _check_branches(directory, located)
    return directory


def _check_banks(directory: BankDirectory) -> None:
    seen: dict[str, list[Bank]] = defaultdict(list)
    for bank in directory.banks:
        if any(_overlap(bank, other) for other in seen[bank.code]):
            raise InvalidBankData(f"banks.csv: code {bank.code} is used twice in one period")
        seen[bank.code].append(bank)
    for bank in directory.banks:
        if bank.successor_code is None or bank.valid_to is None:
            continue
        if directory.bank(bank.successor_code, bank.valid_to + timedelta(days=1)) is None:
            raise InvalidBankData(
                f"banks.csv: the successor of {bank.code} is not a bank the day after it ends"
            )


def _check_branches(directory: BankDirectory, located: list[tuple[str, Branch]]) -> None:
    seen: dict[tuple[str, str], list[Branch]] = defaultdict(list)
    for where, branch in located:
        key = (branch.bank_code, branch.code)
        if any(_overlap(branch, other) for other in seen[key]):
            raise InvalidBankData(f"{where}: branch code is used twice in one period")
        seen[key].append(branch)
        # A branch lives inside one period of its bank.
        bank = directory.bank(branch.bank_code, branch.valid_from)
        end = branch.valid_to or date.max
        if bank is None or (bank.valid_to or date.max) < end:
            raise InvalidBankData(f"{where}: the branch is outside its bank's period")
        if branch.successor is not None and branch.valid_to is not None:
            next_day = branch.valid_to + timedelta(days=1)
            if directory.branch(*branch.successor, next_day) is None:
                raise InvalidBankData(
                    f"{where}: the successor branch does not exist the day after it ends"
                )
        elif (
            bank.successor_code is not None
            and branch.valid_to is not None
            and branch.valid_to == bank.valid_to
        ):
            # A merger must carry every branch over, or registrations would be lost.
            raise InvalidBankData(f"{where}: a branch of a merged bank needs a successor")


def load_bank_directory() -> BankDirectory:
    """The packaged (synthetic) dataset, validated."""
    data = resources.files("mynumber.accounts").joinpath("data")
    return parse_bank_directory(
        data.joinpath("banks.csv").read_text(encoding="utf-8"),
        data.joinpath("branches.csv").read_text(encoding="utf-8"),
    )

"""Banks and branches as reference data: the loader's rules and the merger mapping."""

from __future__ import annotations

import doctest
from datetime import date

import pytest

from mynumber.accounts import banks
from mynumber.accounts.banks import (
    BranchClosed,
    BranchCodes,
    InvalidBankData,
    UnknownBranch,
    current_codes,
    load_bank_directory,
    parse_bank_directory,
)
from mynumber.accounts.zengin import is_zengin

BANKS_HEADER = "code,name,kana,valid_from,valid_to,successor_code\n"
BRANCHES_HEADER = (
    "bank_code,code,name,kana,valid_from,valid_to,successor_bank_code,successor_code\n"
)

# A small valid dataset: A (0001) merges into B (0002) on 2020-04-01; A-101 becomes B-201.
GOOD_BANKS = BANKS_HEADER + (
    "0001,あ銀行,ｱ,1950-01-01,2020-03-31,0002\n"
    "0002,い銀行,ｲ,1950-01-01,,\n"
)  # fmt: skip
GOOD_BRANCHES = BRANCHES_HEADER + (
    "0001,101,本店,ﾎﾝﾃﾝ,1950-01-01,2020-03-31,0002,201\n"
    "0002,001,本店,ﾎﾝﾃﾝ,1950-01-01,,,\n"
    "0002,201,あ営業部,ｱｴｲｷﾞﾖｳﾌﾞ,2020-04-01,,,\n"
)  # fmt: skip


def test_doctests() -> None:
    assert doctest.testmod(banks, optionflags=doctest.ELLIPSIS).failed == 0


def test_the_small_dataset_is_valid() -> None:
    directory = parse_bank_directory(GOOD_BANKS, GOOD_BRANCHES)
    assert len(directory.banks) == 2 and len(directory.branches) == 3


# -- the shipped dataset ------------------------------------------------------------------


def test_shipped_dataset_loads_and_has_the_promised_size() -> None:
    directory = load_bank_directory()
    assert len(directory.banks) == 20
    assert 250 <= len(directory.branches) <= 400
    assert all(is_zengin(b.kana) for b in directory.banks)
    assert all(is_zengin(b.kana) for b in directory.branches)


def test_shipped_dataset_is_what_the_readme_describes() -> None:
    directory = load_bank_directory()
    today = date(2025, 4, 1)
    open_banks = [b.code for b in directory.banks_on(today)]
    assert "8002" not in open_banks and "8013" in open_banks
    assert directory.bank("8002", date(2020, 12, 31)) is not None
    assert directory.bank("8002", date(2021, 1, 1)) is None
    assert directory.branch("8001", "113", today).name == "虹の丘支店"  # type: ignore[union-attr]
    assert directory.branches_of("8001", today)[0].code == "001"


# -- merger mapping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "known_on", "on", "expected"),
    [
        # unchanged
        (("8005", "101"), date(2000, 1, 1), date(2025, 1, 1), ("8005", "101")),
        # before the merger the old codes stand
        (("8003", "101"), date(2000, 1, 1), date(2020, 12, 31), ("8003", "101")),
        # a merger into a new bank, codes renumbered
        (("8003", "101"), date(2000, 1, 1), date(2021, 1, 1), ("8013", "301")),
        (("8003", "001"), date(2000, 1, 1), date(2021, 1, 1), ("8013", "300")),
        # a merger that keeps the branch codes
        (("8002", "105"), date(2000, 1, 1), date(2022, 1, 1), ("8013", "105")),
        # an absorption
        (("8004", "104"), date(2010, 1, 1), date(2023, 4, 1), ("8001", "704")),
        # two mergers in a row: 8011 -> 8012 (2019) -> 8013 (2024-10)
        (("8011", "101"), date(2018, 1, 1), date(2024, 9, 30), ("8012", "501")),
        (("8011", "101"), date(2018, 1, 1), date(2025, 1, 1), ("8013", "501")),
        # a branch folded into another within the bank
        (("8001", "113"), date(2020, 1, 1), date(2023, 1, 1), ("8001", "101")),
        # the code 113 was reused in 2024: a registration made then stays with the new branch
        (("8001", "113"), date(2024, 5, 1), date(2025, 1, 1), ("8001", "113")),
    ],
)
def test_current_codes_follow_mergers(
    codes: tuple[str, str], known_on: date, on: date, expected: tuple[str, str]
) -> None:
    directory = load_bank_directory()
    assert current_codes(directory, *codes, known_on=known_on, on=on) == BranchCodes(*expected)


def test_unknown_codes_are_refused() -> None:
    directory = load_bank_directory()
    with pytest.raises(UnknownBranch):
        current_codes(directory, "8013", "301", known_on=date(2019, 1, 1), on=date(2025, 1, 1))
    with pytest.raises(UnknownBranch):
        current_codes(directory, "9999", "001", known_on=date(2019, 1, 1), on=date(2025, 1, 1))
    with pytest.raises(UnknownBranch):
        current_codes(directory, "8005", "101", known_on=date(2025, 1, 1), on=date(2024, 1, 1))


def test_a_branch_closed_without_successor_is_reported() -> None:
    branches = GOOD_BRANCHES + "0002,202,出張所,ｼﾕﾂﾁﾖｳｼﾞﾖ,1950-01-01,2010-12-31,,\n"
    directory = parse_bank_directory(GOOD_BANKS, branches)
    with pytest.raises(BranchClosed):
        current_codes(directory, "0002", "202", known_on=date(2000, 1, 1), on=date(2011, 1, 1))
    assert current_codes(
        directory, "0002", "202", known_on=date(2000, 1, 1), on=date(2010, 12, 31)
    ) == BranchCodes("0002", "202")


# -- the loader refuses a malformed dataset --------------------------------------------------


@pytest.mark.parametrize(
    ("banks_csv", "branches_csv", "problem"),
    [
        (BANKS_HEADER.replace("kana", "reading") + "0001,あ,ｱ,1950-01-01,,\n", BRANCHES_HEADER,
         "header"),
        (GOOD_BANKS + "003,う銀行,ｳ,1950-01-01,,\n", GOOD_BRANCHES, "4 digits"),
        (GOOD_BANKS + "0003,う銀行,ｳ,1950-01-01\n", GOOD_BRANCHES, "columns"),
        (GOOD_BANKS + "0003,,ｳ,1950-01-01,,\n", GOOD_BRANCHES, "name is required"),
        (GOOD_BANKS + "0003,う銀行,ウ,1950-01-01,,\n", GOOD_BRANCHES, "全銀"),
        (GOOD_BANKS + "0003,う銀行,ｳﾗﾅｲﾊﾞｲﾃﾞｨｰﾙｼｮｳﾃﾞｲﾝｸﾞ,1950-01-01,,\n", GOOD_BRANCHES, "全銀"),
        (GOOD_BANKS + "0003,う銀行,ｳ,1950/01/01,,\n", GOOD_BRANCHES, "YYYY-MM-DD"),
        (GOOD_BANKS + "0003,う銀行,ｳ,1950-02-30,,\n", GOOD_BRANCHES, "YYYY-MM-DD"),
        (GOOD_BANKS + "0003,う銀行,ｳ,1950-01-01,1949-12-31,\n", GOOD_BRANCHES, "before"),
        # the same code twice in overlapping periods
        (GOOD_BANKS + "0002,え銀行,ｴ,2000-01-01,,\n", GOOD_BRANCHES, "used twice"),
        # a successor on a bank that never ends, or that does not exist
        (GOOD_BANKS + "0003,う銀行,ｳ,1950-01-01,,0002\n", GOOD_BRANCHES, "needs a valid_to"),
        (GOOD_BANKS + "0003,う銀行,ｳ,1950-01-01,2000-01-01,0009\n", GOOD_BRANCHES,
         "successor of 0003"),
        # branches
        (GOOD_BANKS, GOOD_BRANCHES + "0002,22,支店,ｼﾃﾝ,1950-01-01,,,\n", "3 digits"),
        (GOOD_BANKS, GOOD_BRANCHES + "0002,001,本店,ﾎﾝﾃﾝ,2000-01-01,,,\n", "used twice"),
        (GOOD_BANKS, GOOD_BRANCHES + "0009,101,支店,ｼﾃﾝ,1950-01-01,,,\n", "outside"),
        (GOOD_BANKS, GOOD_BRANCHES + "0001,102,支店,ｼﾃﾝ,1950-01-01,,,\n", "outside"),
        (GOOD_BANKS, GOOD_BRANCHES + "0002,202,支店,ｼﾃﾝ,1950-01-01,2000-01-01,0002,\n",
         "go together"),
        (GOOD_BANKS, GOOD_BRANCHES + "0002,202,支店,ｼﾃﾝ,1950-01-01,2000-01-01,0002,999\n",
         "successor branch"),
        # a merger may not drop a branch
        (GOOD_BANKS, GOOD_BRANCHES + "0001,102,支店,ｼﾃﾝ,1950-01-01,2020-03-31,,\n",
         "needs a successor"),
    ],
)  # fmt: skip
def test_malformed_dataset_is_refused(banks_csv: str, branches_csv: str, problem: str) -> None:
    with pytest.raises(InvalidBankData, match=problem):
        parse_bank_directory(banks_csv, branches_csv)


def test_a_code_may_be_reused_after_its_period() -> None:
    branches = GOOD_BRANCHES + (
        "0002,301,旧支店,ｷﾕｳｼﾃﾝ,1950-01-01,1999-12-31,0002,001\n"
        "0002,301,新支店,ｼﾝｼﾃﾝ,2000-01-01,,,\n"
    )
    directory = parse_bank_directory(GOOD_BANKS, branches)
    assert current_codes(
        directory, "0002", "301", known_on=date(1990, 1, 1), on=date(2025, 1, 1)
    ) == BranchCodes("0002", "001")

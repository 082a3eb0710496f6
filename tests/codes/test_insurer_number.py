"""保険者番号: the 検証番号 (weights 2,1,2,… from the right, digit sums, 10 - sum mod 10),
the two lengths, and junk that must never raise anything but a ValidationError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mynumber.codes import insurer_number
from mynumber.codes.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

# Worked by hand (digits before the check, weights from the RIGHT-most: 2, 1, 2, 1, ...):
HAND_WORKED = [
    # 新宿区国保 13104: 4x2=8, 0x1=0, 1x2=2, 3x1=3, 1x2=2 -> 15 -> 10-5 = 5
    ("13104", "5"),
    # 協会けんぽ東京支部 0113001: 1x2=2, 0x1=0, 0x2=0, 3x1=3, 1x2=2, 1x1=1, 0x2=0 -> 8 -> 2
    ("0113001", "2"),
    # 27138: 8x2=16 -> 1+6=7, 3x1=3, 1x2=2, 7x1=7, 2x2=4 -> 23 -> 10-3 = 7
    ("27138", "7"),
    # 0613995: 5x2=10 -> 1+0=1, 9x1=9, 9x2=18 -> 1+8=9, 3x1=3, 1x2=2, 6x1=6, 0x2=0
    #          -> 30 -> 10-0 = 10 -> 0 (the "0 when that is 10" case)
    ("0613995", "0"),
    # 後期高齢者医療 3913100: 0x2=0, 0x1=0, 1x2=2, 3x1=3, 1x2=2, 9x1=9, 3x2=6 -> 22 -> 8
    ("3913100", "8"),
    # 13113: 3x2=6, 1x1=1, 1x2=2, 3x1=3, 1x2=2 -> 14 -> 6
    ("13113", "6"),
]


@pytest.mark.parametrize(("base", "check"), HAND_WORKED)
def test_hand_worked_check_digits(base: str, check: str) -> None:
    assert insurer_number.calc_check_digit(base) == check
    assert insurer_number.validate(base + check) == base + check


def test_digit_sums_not_products() -> None:
    """A doubled 9 counts 1+8 = 9, not 18 (mod 10 would give 8): 9 alone -> 18 -> 9 -> 1."""
    assert insurer_number.calc_check_digit("9") == "1"
    # 5 alone: 5x2 = 10 -> 1+0 = 1 -> 9 (a plain product sum would give 10 -> 0)
    assert insurer_number.calc_check_digit("5") == "9"


def test_both_lengths_and_prefecture() -> None:
    assert insurer_number.validate("131045") == "131045"
    assert insurer_number.validate("0113-0012") == "01130012"
    assert insurer_number.is_national_health_insurance("131045")
    assert not insurer_number.is_national_health_insurance("01130012")
    assert insurer_number.law_code("39131008") == "39"
    assert insurer_number.prefecture_code("131045") == "13"
    assert insurer_number.prefecture_code("06139950") == "13"
    with pytest.raises(InvalidLength):
        insurer_number.validate("1310450")  # 7 digits
    with pytest.raises(InvalidComponent):  # prefecture 48 does not exist
        insurer_number.validate(insurer_number.with_check_digit("48001"))
    with pytest.raises(InvalidComponent):  # prefecture 00
        insurer_number.validate(insurer_number.with_check_digit("0100001"))
    with pytest.raises(InvalidChecksum):
        insurer_number.validate("131046")
    with pytest.raises(InvalidFormat):
        insurer_number.validate("13104a")


def test_luhn_valid_for_other_numbers() -> None:
    number = insurer_number.with_check_digit("123456789012345")
    assert len(number) == 16 and insurer_number.luhn_valid(number)
    assert not insurer_number.luhn_valid(number[:-1] + str((int(number[-1]) + 1) % 10))
    assert not insurer_number.luhn_valid("")
    assert not insurer_number.luhn_valid("１３１０４５")  # full-width is not compacted here


def test_single_digit_errors_are_all_detected() -> None:
    for number in ("131045", "01130012", "06139950", "39131008"):
        for i in range(len(number)):
            for d in "0123456789":
                if d != number[i]:
                    assert not insurer_number.is_valid(number[:i] + d + number[i + 1:])


prefectures = st.integers(min_value=1, max_value=47).map(lambda p: f"{p:02d}")


@given(prefecture=prefectures, rest=st.text(alphabet="0123456789", min_size=3, max_size=3))
def test_round_trip_six_digits(prefecture: str, rest: str) -> None:
    number = insurer_number.with_check_digit(prefecture + rest)
    assert insurer_number.validate(number) == number
    assert insurer_number.is_national_health_insurance(number)
    assert insurer_number.law_code(number) is None


@given(law=st.text(alphabet="0123456789", min_size=2, max_size=2), prefecture=prefectures,
       rest=st.text(alphabet="0123456789", min_size=3, max_size=3))
def test_round_trip_eight_digits(law: str, prefecture: str, rest: str) -> None:
    number = insurer_number.with_check_digit(law + prefecture + rest)
    assert insurer_number.validate(number) == number
    assert insurer_number.law_code(number) == law
    assert insurer_number.prefecture_code(number) == prefecture
    # Any other last digit is refused.
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not insurer_number.is_valid(wrong)


@given(digits=st.text(alphabet="0123456789", min_size=1, max_size=30))
def test_check_digit_makes_weighted_digit_sum_a_multiple_of_ten(digits: str) -> None:
    """The definition, restated independently: with the check appended, the digits weighted
    1, 2, 1, 2 … from the right (the check itself weighted 1), digit sums, total = 0 mod 10."""
    number = digits + insurer_number.calc_check_digit(digits)
    total = 0
    for position, char in enumerate(reversed(number)):
        product = int(char) * (2 if position % 2 else 1)
        total += sum(int(c) for c in str(product))
    assert total % 10 == 0


JUNK: list[Any] = [None, b"131045", 131045, 1.5, ["131045"], object(), "", " ", "1" * 10_000,
                   "１" * 100_000, "١٣١٠٤٥", "①③①⓪④⑤", "131045\ud800", "🙂" * 6, "-" * 8]
junk_strategy = st.one_of(st.text(), st.text(alphabet="0123456789０１２３ -－ー", max_size=12),
                          st.binary(), st.none(), st.integers(), st.floats())


def _check(value: Any) -> None:
    result = insurer_number.is_valid(value)
    assert isinstance(result, bool)
    try:
        insurer_number.validate(value)
    except ValidationError:
        assert not result
    else:
        assert result
    for func in (insurer_number.compact, insurer_number.format, insurer_number.calc_check_digit):
        try:
            func(value)
        except ValidationError:
            pass
    assert isinstance(insurer_number.luhn_valid(value), bool)


@pytest.mark.parametrize("value", JUNK, ids=range(len(JUNK)))
def test_junk_fixed(value: Any) -> None:
    _check(value)


@given(value=junk_strategy)
@settings(max_examples=300)
def test_junk_random(value: Any) -> None:
    _check(value)


def test_messages_never_echo_the_value() -> None:
    with pytest.raises(ValidationError) as caught:
        insurer_number.validate("131046")
    assert "131046" not in str(caught.value)

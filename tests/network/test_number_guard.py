"""`contains_individual_number`: the guard the network and the portal apply to every answer.

Its fast paths (short ASCII text, small integers) must not let a number through."""

from __future__ import annotations

import pytest

from mynumber.codes import individual_number
from mynumber.network.interfaces import contains_individual_number

NUMBER = "12345678901" + individual_number.calc_check_digit("12345678901")
WRONG = NUMBER[:-1] + str((int(NUMBER[-1]) + 1) % 10)


@pytest.mark.parametrize("value", [
    NUMBER,
    int(NUMBER),
    {"note": f"番号は{NUMBER}です"},
    {NUMBER: "as a key"},
    [[[{"deep": NUMBER}]]],
    f"{NUMBER[:4]} {NUMBER[4:8]} {NUMBER[8:]}",
    f"{NUMBER[:4]}-{NUMBER[4:8]}-{NUMBER[8:]}",
    NUMBER.translate(str.maketrans("0123456789", "０１２３４５６７８９")),  # full-width
    # Six circled two-digit numbers: 6 characters that NFKC expands into 12 digits.
    "".join(chr(0x3251 + int(NUMBER[i:i + 2]) - 21) for i in range(0, 12, 2))
    if all(21 <= int(NUMBER[i:i + 2]) <= 35 for i in range(0, 12, 2)) else NUMBER,
])
def test_a_number_is_found_wherever_it_is(value: object) -> None:
    assert contains_individual_number(value)


def test_circled_numbers_expand_into_a_number() -> None:
    # ㉑..㉟ are U+3251..U+325F (21..35); build a valid number from such pairs.
    first11 = "2122232425" + "2"
    number = first11 + individual_number.calc_check_digit(first11)
    pairs = [number[i:i + 2] for i in range(0, 12, 2)]
    if not all(21 <= int(p) <= 35 for p in pairs):
        pytest.skip("the check digit gives a pair outside ㉑..㉟")
    text = "".join(chr(0x3251 + int(p) - 21) for p in pairs)
    assert len(text) == 6
    assert contains_individual_number(text)


@pytest.mark.parametrize("value", [
    WRONG, int(WRONG), "12345", 12345, 10**11 - 1, -12345, 3.5, True, None,
    {"taxable_income": 3_000_000, "fiscal_year": 2025}, "東京都新宿区西新宿二丁目8番1号",
    "1" * 13,
])
def test_other_values_pass(value: object) -> None:
    assert not contains_individual_number(value)

"""Valid/invalid examples and properties of the check-digit modules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mynumber.codes import (
    corporate_number,
    individual_number,
    local_government_code,
    resident_code,
)
from mynumber.codes.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

# -- exceptions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (InvalidFormat, "invalid_format"),
        (InvalidLength, "invalid_length"),
        (InvalidChecksum, "invalid_checksum"),
        (InvalidComponent, "invalid_component"),
    ],
)
def test_exception_codes(cls: type[ValidationError], code: str) -> None:
    exc = cls()
    assert isinstance(exc, ValidationError)
    assert isinstance(exc, ValueError)
    assert exc.code == code
    assert str(exc)
    assert str(cls("custom message")) == "custom message"


@pytest.mark.parametrize(
    "number",
    ["123456789019", "12345678901", "1234567890189", "12345678901x", "１２３４５６７８９０１９"],
)
def test_messages_never_contain_the_number(number: str) -> None:
    with pytest.raises(ValidationError) as info:
        individual_number.validate(number)
    message = str(info.value)
    assert "individual number" in message
    digits = number.translate({0xFF10 + i: str(i) for i in range(10)})
    for k in range(4, len(digits) + 1):
        for start in range(len(digits) - k + 1):
            assert digits[start : start + k] not in message
    assert number not in repr(info.value)


# -- 個人番号 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "621498320257",
        "123456789018",
        "1234 5678 9018",
        "1234-5678-9018",
        "１２３４　５６７８　９０１８",
        "1234－5678－9018",
        "1234‐5678―9018",
        "1234ー5678ー9018",
        " 123456789018\n",
    ],
)
def test_individual_number_valid(number: str) -> None:
    assert individual_number.is_valid(number)
    assert individual_number.validate(number) == individual_number.compact(number)
    assert len(individual_number.validate(number)) == 12


@pytest.mark.parametrize(
    ("number", "exc"),
    [
        ("123456789019", InvalidChecksum),
        ("12345678901", InvalidLength),
        ("1234567890180", InvalidLength),
        ("", InvalidLength),
        ("12345678901a", InvalidFormat),
        ("١٢٣٤٥٦٧٨٩٠١٨", InvalidFormat),  # Arabic-Indic digits: isdigit() but not accepted
        ("¹23456789018", InvalidFormat),
        ("1234.5678.9018", InvalidFormat),
    ],
)
def test_individual_number_invalid(number: str, exc: type[ValidationError]) -> None:
    assert not individual_number.is_valid(number)
    with pytest.raises(exc):
        individual_number.validate(number)


def test_individual_number_format_and_check_digit() -> None:
    assert individual_number.format("123456789018") == "1234 5678 9018"
    assert individual_number.calc_check_digit("12345678901") == "8"
    assert individual_number.calc_check_digit("62149832025") == "7"
    with pytest.raises(InvalidLength):
        individual_number.calc_check_digit("1234567890")
    with pytest.raises(InvalidFormat):
        individual_number.calc_check_digit("1234567890x")


def _remainder_individual(base: str) -> int:
    weights = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
    return sum(int(d) * w for d, w in zip(base, weights, strict=True)) % 11


digits11 = st.text(alphabet="0123456789", min_size=11, max_size=11)
digits10 = st.text(alphabet="0123456789", min_size=10, max_size=10)
digits12 = st.text(alphabet="0123456789", min_size=12, max_size=12)
digits5 = st.text(alphabet="0123456789", min_size=5, max_size=5)


@given(digits11)
def test_individual_number_generated_validate(base: str) -> None:
    number = base + individual_number.calc_check_digit(base)
    assert individual_number.validate(number) == number
    assert individual_number.validate(individual_number.format(number)) == number


@given(digits11, st.integers(0, 11), st.integers(1, 9))
def test_individual_number_single_digit_mutation(base: str, pos: int, delta: int) -> None:
    """A single wrong digit is detected, except for the one blind spot of the rule.

    The rule maps remainders 0 AND 1 to check digit 0, so when the check digit is 0 a
    mutation moving the remainder between 0 and 1 goes unnoticed (e.g. 456428071500 vs
    256428071500).  Every other single-digit error is caught: all weights are coprime to 11.
    """
    number = base + individual_number.calc_check_digit(base)
    mutated = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1 :]
    blind_spot = pos < 11 and number[-1] == "0" and _remainder_individual(mutated[:11]) in (0, 1)
    assert individual_number.is_valid(mutated) == blind_spot
    if number[-1] != "0" or pos == 11:
        with pytest.raises(InvalidChecksum):
            individual_number.validate(mutated)


def test_individual_number_mutation_blind_spot_example() -> None:
    assert individual_number.is_valid("456428071500")
    assert individual_number.is_valid("256428071500")


@given(st.lists(st.integers(0, 10**11 - 1), max_size=50))
def test_individual_number_vectorised(values: list[int]) -> None:
    arr = np.array(values, dtype=np.uint64)
    got = individual_number.calc_check_digits(arr)
    assert got.dtype == np.uint8
    assert got.shape == arr.shape
    assert [str(x) for x in got.tolist()] == [
        individual_number.calc_check_digit(f"{v:011d}") for v in values
    ]


def test_individual_number_vectorised_errors() -> None:
    with pytest.raises(InvalidComponent):
        individual_number.calc_check_digits(np.array([10**11], dtype=np.uint64))
    with pytest.raises(InvalidComponent):
        individual_number.calc_check_digits(np.array([-1], dtype=np.int64))
    with pytest.raises(InvalidFormat):
        individual_number.calc_check_digits(np.array([1.0]))
    # Signed input is accepted when non-negative; 2-D shape is preserved.
    got = individual_number.calc_check_digits(np.array([[12345678901]], dtype=np.int64))
    assert got.tolist() == [[8]]


# -- 住民票コード -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["12345678903", "24727059608", "1234567890-3", "００００００００００0"]
)
def test_resident_code_valid(number: str) -> None:
    assert resident_code.is_valid(number)
    assert resident_code.format(number) == resident_code.compact(number)


@pytest.mark.parametrize(
    ("number", "exc"),
    [
        ("12345678904", InvalidChecksum),
        ("1234567890", InvalidLength),
        ("123456789018", InvalidLength),
        ("1234567890a", InvalidFormat),
    ],
)
def test_resident_code_invalid(number: str, exc: type[ValidationError]) -> None:
    assert not resident_code.is_valid(number)
    with pytest.raises(exc):
        resident_code.validate(number)


def test_resident_code_weights() -> None:
    # Qn = n + 1 (n = 1..6), n - 5 (n = 7..10), n counted from the right.
    for position_from_right, weight in enumerate((2, 3, 4, 5, 6, 7, 2, 3, 4, 5), start=1):
        base = ["0"] * 10
        base[10 - position_from_right] = "1"
        expected = 0 if weight <= 1 else 11 - weight
        assert resident_code.calc_check_digit("".join(base)) == str(expected)


@given(digits10)
def test_resident_code_generated_validate(base: str) -> None:
    number = base + resident_code.calc_check_digit(base)
    assert resident_code.validate(number) == number


@given(st.lists(st.integers(0, 10**10 - 1), max_size=50))
def test_resident_code_vectorised(values: list[int]) -> None:
    got = resident_code.calc_check_digits(np.array(values, dtype=np.uint64))
    assert [str(x) for x in got.tolist()] == [
        resident_code.calc_check_digit(f"{v:010d}") for v in values
    ]


# -- 法人番号 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["5835678256246", "5-8356-7825-6246", "５８３５６７８２５６２４６", "7000012050002"]
)
def test_corporate_number_valid(number: str) -> None:
    assert corporate_number.is_valid(number)


@pytest.mark.parametrize(
    ("number", "exc"),
    [
        ("5835678256247", InvalidChecksum),
        ("4835678256246", InvalidChecksum),
        ("583567825624", InvalidLength),
        ("583567825624a", InvalidFormat),
    ],
)
def test_corporate_number_invalid(number: str, exc: type[ValidationError]) -> None:
    assert not corporate_number.is_valid(number)
    with pytest.raises(exc):
        corporate_number.validate(number)


def test_corporate_number_format() -> None:
    assert corporate_number.format("5835678256246") == "5-8356-7825-6246"
    assert corporate_number.calc_check_digit("835678256246") == "5"


@given(digits12)
def test_corporate_number_generated_validate(base: str) -> None:
    check = corporate_number.calc_check_digit(base)
    assert check != "0"
    assert corporate_number.validate(check + base) == check + base


@given(digits12, st.integers(0, 12), st.integers(1, 9))
def test_corporate_number_single_digit_mutation(base: str, pos: int, delta: int) -> None:
    """Detected unless a base digit is swapped 0 <-> 9: weights 1 and 2 times ±9 are 0 mod 9."""
    number = corporate_number.calc_check_digit(base) + base
    new_digit = (int(number[pos]) + delta) % 10
    mutated = number[:pos] + str(new_digit) + number[pos + 1 :]
    blind_spot = pos > 0 and {int(number[pos]), new_digit} == {0, 9}
    assert corporate_number.is_valid(mutated) == blind_spot


# -- 地方公共団体コード ------------------------------------------------------------------

KNOWN_LOCAL_CODES = {
    "131041": "新宿区",
    "131130": "渋谷区",
    "011002": "札幌市",
    "130001": "東京都",
    "271004": "大阪市",
    "010006": "北海道",
    "470007": "沖縄県",
    "011011": "札幌市中央区",
    "141003": "横浜市",
    "231002": "名古屋市",
    "401307": "福岡市博多区",
    "472018": "那覇市",
}


@pytest.mark.parametrize("code", sorted(KNOWN_LOCAL_CODES))
def test_local_government_code_known(code: str) -> None:
    assert local_government_code.validate(code) == code
    assert local_government_code.validate(code[:5]) == code
    assert local_government_code.to_six_digits(code[:5]) == code
    assert local_government_code.to_five_digits(code) == code[:5]
    assert local_government_code.prefecture_code(code) == code[:2]


@pytest.mark.parametrize(
    ("code", "exc"),
    [
        ("131042", InvalidChecksum),
        ("1310", InvalidLength),
        ("1310411", InvalidLength),
        ("13a041", InvalidFormat),
        ("000001", InvalidComponent),  # prefecture 00 (check digit correct)
        ("48000", InvalidComponent),  # prefecture 48
        ("990000", InvalidChecksum),  # checksum is verified before the prefecture
    ],
)
def test_local_government_code_invalid(code: str, exc: type[ValidationError]) -> None:
    assert not local_government_code.is_valid(code)
    with pytest.raises(exc):
        local_government_code.validate(code)


def test_local_government_code_remainder_zero_gives_one() -> None:
    # r = 33 mod 11 = 0 -> last digit of 11 = 1 (the 個人番号 rule would give 0).
    assert local_government_code.calc_check_digit("13104") == "1"
    # r = 1 -> 10 -> 0.
    assert local_government_code.calc_check_digit("13113") == "0"


@given(st.integers(1, 47), st.integers(0, 999))
@settings(max_examples=200)
def test_local_government_code_generated(pref: int, city: int) -> None:
    five = f"{pref:02d}{city:03d}"
    six = local_government_code.to_six_digits(five)
    assert local_government_code.validate(six) == six
    assert local_government_code.prefecture_code(five) == f"{pref:02d}"


@given(digits5)
def test_local_government_to_six_digits_any(five: str) -> None:
    six = local_government_code.to_six_digits(five)
    assert local_government_code.to_six_digits(six) == six

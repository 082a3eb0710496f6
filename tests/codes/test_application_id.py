"""申請書ID: the check digit catches every single-digit error and adjacent transposition.

Motivated by incident 004 (a mistyped application ID matched another person's form): the
detection guarantees are checked exhaustively over every position of many random IDs, not
sampled.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mynumber.codes import application_id
from mynumber.codes.application_id import _TABLE
from mynumber.codes.exceptions import InvalidChecksum, InvalidFormat, InvalidLength, ValidationError

RNG_SEED = 20261123
N_IDS = 300


def _random_ids(n: int = N_IDS) -> list[str]:
    rng = random.Random(RNG_SEED)
    ids = [application_id.generate(rng) for _ in range(n)]
    # Edge cases: all zeros and all nines, plus repeated-digit payloads.
    for d in "0123456789":
        payload = d * 22
        ids.append(payload + application_id.calc_check_digit(payload))
    return ids


IDS = _random_ids()


def test_table_is_totally_antisymmetric_quasigroup() -> None:
    """The transcribed table has the properties the guarantees rest on (catches typos in it)."""
    digits = range(10)
    for row in _TABLE:
        assert sorted(row) == list(digits)
    for col in digits:
        assert sorted(_TABLE[r][col] for r in digits) == list(digits)
    for i in digits:
        assert _TABLE[i][i] == 0
    # Total anti-symmetry: (c*x)*y == (c*y)*x implies x == y.
    for c in digits:
        for x in digits:
            for y in digits:
                if x != y:
                    assert _TABLE[_TABLE[c][x]][y] != _TABLE[_TABLE[c][y]][x]


def test_generated_ids_are_valid() -> None:
    for number in IDS:
        assert len(number) == application_id.LENGTH
        assert application_id.validate(number) == number


def test_generate_default_source_and_reproducible() -> None:
    assert application_id.is_valid(application_id.generate())
    assert application_id.generate(random.Random(1)) == application_id.generate(random.Random(1))


def test_every_single_digit_substitution_is_detected() -> None:
    checked = 0
    for number in IDS:
        for pos in range(len(number)):
            for d in "0123456789":
                if d == number[pos]:
                    continue
                mutated = number[:pos] + d + number[pos + 1 :]
                assert not application_id.is_valid(mutated), (pos, d)
                checked += 1
    assert checked == len(IDS) * 23 * 9


def test_every_adjacent_transposition_is_detected() -> None:
    checked = 0
    for number in IDS:
        for pos in range(len(number) - 1):  # includes swapping the check digit
            a, b = number[pos], number[pos + 1]
            if a == b:
                continue
            mutated = number[:pos] + b + a + number[pos + 2 :]
            assert not application_id.is_valid(mutated), pos
            checked += 1
    assert checked > len(IDS) * 15


@pytest.mark.parametrize("pos", range(21))
def test_all_digit_pairs_transposed_at_every_position(pos: int) -> None:
    """Exhaustive over (a, b) for each position, independent of the random sample."""
    rng = random.Random(pos)
    base = [str(rng.randrange(10)) for _ in range(22)]
    for a in "0123456789":
        for b in "0123456789":
            if a == b:
                continue
            digits = base.copy()
            digits[pos], digits[pos + 1] = a, b
            payload = "".join(digits)
            number = payload + application_id.calc_check_digit(payload)
            swapped = number[:pos] + b + a + number[pos + 2 :]
            assert not application_id.is_valid(swapped)


def test_swapping_last_payload_digit_with_check_digit_is_detected() -> None:
    rng = random.Random(RNG_SEED + 1)
    for _ in range(200):
        prefix = "".join(str(rng.randrange(10)) for _ in range(21))
        for a in "0123456789":
            payload = prefix + a
            number = payload + application_id.calc_check_digit(payload)
            if number[-1] != a:
                assert not application_id.is_valid(number[:-2] + number[-1] + a)


def test_format_and_compact_round_trip() -> None:
    for number in IDS[:20]:
        formatted = application_id.format(number)
        assert [len(g) for g in formatted.split(" ")] == [4, 4, 4, 4, 4, 3]
        assert application_id.validate(formatted) == number
        assert application_id.compact(formatted) == number


def test_typed_errors() -> None:
    good = IDS[0]
    bad_check = good[:-1] + str((int(good[-1]) + 1) % 10)
    with pytest.raises(InvalidChecksum):
        application_id.validate(bad_check)
    with pytest.raises(InvalidLength):
        application_id.validate(good[:-1])
    with pytest.raises(InvalidFormat):
        application_id.validate(good[:-1] + "A")
    with pytest.raises(InvalidLength):
        application_id.calc_check_digit("123")
    with pytest.raises(InvalidFormat):
        application_id.calc_check_digit("12345678901234567890１A")


def test_messages_never_contain_the_value() -> None:
    good = IDS[0]
    bad_check = good[:-1] + str((int(good[-1]) + 1) % 10)
    for value in (bad_check, good[:-1], good + "X"):
        with pytest.raises(ValidationError) as exc_info:
            application_id.validate(value)
        assert value not in str(exc_info.value)
        assert good[:10] not in str(exc_info.value)


JUNK: list[Any] = [
    None,
    b"12345678901234567890128",
    bytearray(b"12345678901234567890128"),
    12345678901234567890128,
    1.5,
    ["12345678901234567890128"],
    {"n": 1},
    object(),
    "",
    " ",
    "\x00" * 23,
    "1" * 10_000,
    "１" * 100_000,
    "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠١٢٨",
    "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳㉑㉒㉓",
    "¹²³45678901234567890128",
    "1234567890123456789012８x",
    "1234567890123456789012\u200b8",
]


@pytest.mark.parametrize("value", JUNK, ids=range(len(JUNK)))
def test_junk_is_rejected_without_unexpected_exceptions(value: Any) -> None:
    assert application_id.is_valid(value) is False
    with pytest.raises(ValidationError):
        application_id.validate(value)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_is_valid_never_raises(value: str) -> None:
    result = application_id.is_valid(value)
    assert isinstance(result, bool)
    if result:
        assert application_id.validate(value) == application_id.compact(value)

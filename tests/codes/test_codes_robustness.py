"""Junk input: is_valid never raises; validate raises only ValidationError subclasses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mynumber.codes import (
    corporate_number,
    individual_number,
    kana,
    local_government_code,
    resident_code,
)
from mynumber.codes.exceptions import ValidationError
from mynumber.codes.ff1 import FF1

MODULES = [individual_number, resident_code, corporate_number, local_government_code]

JUNK: list[Any] = [
    None,
    b"123456789018",
    bytearray(b"123456789018"),
    123456789018,
    12345678901.8,
    ["123456789018"],
    {"n": 1},
    object(),
    "",
    " ",
    "\x00" * 12,
    "1" * 10_000,
    "１" * 100_000,
    "١٢٣٤٥٦٧٨٩٠١٨",
    "①②③④⑤⑥⑦⑧⑨⑩⑪⑫",
    "12345678901８",
    "123456789018\ud800",  # lone surrogate
    "🙂" * 12,
    "-" * 12,
    "1234 5678 9018" * 3,
    "ＮＵＬＬ",
]

junk_strategy = st.one_of(
    st.text(),
    st.text(alphabet="0123456789０１２３４５６７８９ -－ー", max_size=30),
    st.binary(),
    st.none(),
    st.integers(),
    st.floats(),
    st.lists(st.text(), max_size=3),
)


def _check(validate: Callable[[Any], object], is_valid: Callable[[Any], bool], value: Any) -> None:
    result = is_valid(value)
    assert isinstance(result, bool)
    try:
        validate(value)
    except ValidationError:
        assert not result
    else:
        assert result


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("value", JUNK, ids=range(len(JUNK)))
def test_junk_fixed(module: Any, value: Any) -> None:
    _check(module.validate, module.is_valid, value)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@given(value=junk_strategy)
@settings(max_examples=300)
def test_junk_random(module: Any, value: Any) -> None:
    _check(module.validate, module.is_valid, value)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@given(value=junk_strategy)
def test_compact_and_format_raise_only_validation_errors(module: Any, value: Any) -> None:
    for func in (module.compact, module.format):
        try:
            func(value)
        except ValidationError:
            pass


@given(value=junk_strategy)
def test_ff1_junk(value: Any) -> None:
    ff1 = FF1(bytes(16), 10)
    for func in (ff1.encrypt, ff1.decrypt):
        try:
            func(value)
        except ValidationError:
            pass


@pytest.mark.parametrize("value", JUNK, ids=range(len(JUNK)))
def test_kana_junk(value: Any) -> None:
    for func in (kana.normalize_kana, kana.normalize_name, kana.normalize_address):
        try:
            func(value)
        except ValidationError:
            pass
    try:
        kana.same_person_key(value, value, value, value, value)
    except ValidationError:
        pass

"""Numbering: the vectorised path equals the scalar one, and what it gives is valid."""

from __future__ import annotations

import secrets

import numpy as np
import pytest

from mynumber.codes import individual_number, resident_code
from mynumber.registry.numbering import INDEX_KEY, NUMBERING_KEY, POOL_KEY, Numbering


class _Keys:
    """Throwaway keys in memory."""

    def __init__(self) -> None:
        self._keys = {p: secrets.token_bytes(32) for p in (POOL_KEY, NUMBERING_KEY, INDEX_KEY)}

    @property
    def is_development(self) -> bool:
        return True

    def symmetric_key(self, purpose: str, length: int = 32) -> bytes:
        return self._keys[purpose]


@pytest.fixture(scope="module")
def numbering() -> Numbering:
    return Numbering(_Keys())


@pytest.fixture(scope="module")
def counters() -> np.ndarray:
    rng = np.random.default_rng(20260401)
    random = rng.integers(0, 10**10, size=300, dtype=np.uint64)
    edges = np.array([0, 1, 9, 10**9, 10**10 - 2, 10**10 - 1], dtype=np.uint64)
    return np.concatenate([edges, random])


def test_bulk_resident_codes_equal_scalar(numbering: Numbering, counters: np.ndarray) -> None:
    bulk = numbering.resident_codes(counters)
    scalar = [numbering.resident_code(int(c)) for c in counters]
    assert [f"{c:011d}" for c in bulk.tolist()] == scalar
    assert all(resident_code.is_valid(code) for code in scalar)


@pytest.mark.parametrize("generation", [0, 1, 7, 999])
def test_bulk_numbers_equal_scalar(
    numbering: Numbering, counters: np.ndarray, generation: int
) -> None:
    codes = numbering.resident_codes(counters)
    bulk = numbering.individual_numbers(codes, generation)
    scalar = [numbering.individual_number(f"{c:011d}", generation) for c in codes.tolist()]
    assert [f"{n:012d}" for n in bulk.tolist()] == scalar
    assert all(individual_number.validate(number) == number for number in scalar)


def test_bulk_indexes_equal_scalar(numbering: Numbering, counters: np.ndarray) -> None:
    numbers = numbering.individual_numbers(numbering.resident_codes(counters[:50]))
    assert numbering.indexes(numbers) == [numbering.index(f"{n:012d}") for n in numbers.tolist()]


def test_later_generations_differ_from_generation_zero(
    numbering: Numbering, counters: np.ndarray
) -> None:
    codes = numbering.resident_codes(counters)
    first = numbering.individual_numbers(codes, 0)
    seen = {0: first}
    for generation in (1, 2, 3):
        again = numbering.individual_numbers(codes, generation)
        # A different FF1 tweak is a different permutation: every number changes.
        for earlier in seen.values():
            assert not np.any(again == earlier)
        seen[generation] = again
    code = f"{codes[0]:011d}"
    assert numbering.individual_number(code, 1) != numbering.individual_number(code, 0)


def test_numbers_are_distinct_over_a_range(numbering: Numbering) -> None:
    counters = np.arange(100_000, dtype=np.uint64)
    codes = numbering.resident_codes(counters)
    numbers = numbering.individual_numbers(codes)
    assert np.unique(codes).size == counters.size
    assert np.unique(numbers).size == counters.size
    assert int(numbers.max()) < 10**12


def test_different_keys_give_different_numbers(counters: np.ndarray) -> None:
    a, b = Numbering(_Keys()), Numbering(_Keys())
    assert not np.array_equal(a.resident_codes(counters), b.resident_codes(counters))


def test_pool_exhaustion_is_refused(numbering: Numbering) -> None:
    with pytest.raises(ValueError):
        numbering.resident_code(10**10)
    with pytest.raises(ValueError):
        numbering.resident_code(-1)

"""J-LIS numbering (番号法 第8条): 住民票コード -> 個人番号, keyed and one-way for anyone
without the registry's key, unique by construction.

- 住民票コード are drawn from a central pool: a counter enciphered with FF1 under the pool key
  (a permutation of 10^10, so two counters never give the same code), plus the check digit.
- The 個人番号 is FF1 under the numbering key over the 11-digit 住民票コード, plus the check
  digit. FF1 is a permutation, so distinct codes give distinct numbers; the number reveals
  nothing of the code without the key (番号法 第8条第2項第2号). A replacement number uses the
  generation as FF1 tweak: a different permutation, checked against every number ever issued.
- Numbers are never stored: only ``index(number)`` is: a 64-bit keyed MAC under a separate key
  (BLAKE2b in its keyed mode, which is a MAC by design, RFC 7693 section 2.9; 8-byte digest read
  as a signed big-endian integer, to fit a BIGINT). 64 bits make a false match possible but
  harmless: the issuer treats a taken index as a taken number and moves on to the next
  generation, and a look-up by number confirms any match by deriving the number again.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from mynumber.codes import individual_number, resident_code
from mynumber.codes.ff1 import FF1
from mynumber.keys import KeyProvider

POOL_KEY = "registry.resident_code_pool"
NUMBERING_KEY = "registry.numbering"
INDEX_KEY = "registry.number_index"


class NumberingUnavailable(RuntimeError):
    """This process holds no numbering keys (the portal role): numbering runs on the core."""


NUMBERING_UNAVAILABLE = (
    "this server runs without the registry's numbering keys (the portal role); deriving, "
    "issuing or looking up an individual number happens on the core only"
)


def generation_tweak(generation: int) -> bytes:
    return b"" if generation == 0 else generation.to_bytes(4, "big")


class Numbering:
    """Derivations under the registry's keys. Holds keys in memory; never logs a number."""

    def __init__(self, keys: KeyProvider) -> None:
        self._pool = FF1(keys.symmetric_key(POOL_KEY), 10)
        self._numbering = FF1(keys.symmetric_key(NUMBERING_KEY), 10)
        self._numbering_key = keys.symmetric_key(NUMBERING_KEY)
        # Keyed once; each index works on a copy of this state.
        self._index_mac = hashlib.blake2b(key=keys.symmetric_key(INDEX_KEY), digest_size=8,
                                          person=b"mynumber-index")

    # -- single values ------------------------------------------------------------------------
    def resident_code(self, counter: int) -> str:
        if not 0 <= counter < 10**10:
            raise ValueError("resident code pool exhausted")
        body = self._pool.encrypt(f"{counter:010d}")
        return body + resident_code.calc_check_digit(body)

    def individual_number(self, code: str, generation: int = 0) -> str:
        body = self._numbering.encrypt(code, generation_tweak(generation))
        return body + individual_number.calc_check_digit(body)

    def index(self, number: str) -> int:
        mac = self._index_mac.copy()
        mac.update(number.encode())
        return int.from_bytes(mac.digest(), "big", signed=True)

    # -- bulk (vectorised) --------------------------------------------------------------------
    def resident_codes(self, counters: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        body = self._pool.encrypt_digits(counters, 10)
        return body * np.uint64(10) + resident_code.calc_check_digits(body)

    def individual_numbers(
        self, codes: npt.NDArray[np.uint64], generation: int = 0
    ) -> npt.NDArray[np.uint64]:
        body = self._numbering.encrypt_digits(codes, 11, generation_tweak(generation))
        return body * np.uint64(10) + individual_number.calc_check_digits(body)

    def indexes(self, numbers: npt.NDArray[np.uint64]) -> list[int]:
        copy = self._index_mac.copy
        from_bytes = int.from_bytes
        out = []
        for n in numbers.tolist():
            mac = copy()
            mac.update(b"%012d" % n)
            out.append(from_bytes(mac.digest(), "big", signed=True))
        return out


class NoNumbering(Numbering):
    """The registry without numbering keys (the portal role): every derivation raises
    :class:`NumberingUnavailable`; what needs no number (residents by id or 住民票コード,
    acquisition numbers for a resident, municipalities) works as before."""

    def __init__(self) -> None:  # no keys: nothing to load
        pass

    def resident_code(self, counter: int) -> str:
        raise NumberingUnavailable(NUMBERING_UNAVAILABLE)

    def individual_number(self, code: str, generation: int = 0) -> str:
        raise NumberingUnavailable(NUMBERING_UNAVAILABLE)

    def index(self, number: str) -> int:
        raise NumberingUnavailable(NUMBERING_UNAVAILABLE)

    def resident_codes(self, counters: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        raise NumberingUnavailable(NUMBERING_UNAVAILABLE)

    def individual_numbers(
        self, codes: npt.NDArray[np.uint64], generation: int = 0
    ) -> npt.NDArray[np.uint64]:
        raise NumberingUnavailable(NUMBERING_UNAVAILABLE)

    def indexes(self, numbers: npt.NDArray[np.uint64]) -> list[int]:
        raise NumberingUnavailable(NUMBERING_UNAVAILABLE)

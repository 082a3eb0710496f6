"""Helpers shared by the number modules (private: not part of the public API)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mynumber.codes.exceptions import InvalidComponent, InvalidFormat, InvalidLength

__all__ = ["as_uint64_array", "clean", "digits_only", "weighted_sum_vector"]

# Separators people actually type between digit groups.  Japanese IMEs often produce the
# katakana prolonged sound mark (ー) or a full-width minus instead of "-", so those count too.
_HYPHENS = (
    "-"  # U+002D hyphen-minus
    "\u2010"  # ‐ hyphen
    "\u2011"  # ‑ non-breaking hyphen
    "\u2012"  # ‒ figure dash
    "\u2013"  # – en dash
    "\u2014"  # — em dash
    "\u2015"  # ― horizontal bar
    "\u2043"  # ⁃ hyphen bullet
    "\u2212"  # − minus sign
    "\u30fc"  # ー katakana prolonged sound mark
    "\ufe63"  # ﹣ small hyphen-minus
    "\uff0d"  # － full-width hyphen-minus
    "\uff70"  # ｰ half-width prolonged sound mark
)

# Only full-width digits are mapped.  NFKC is deliberately not used: it would also turn
# circled, superscript or other look-alike characters into digits.
_TRANSLATION: dict[int, int | None] = {ord(c): None for c in _HYPHENS}
_TRANSLATION.update({0xFF10 + i: ord("0") + i for i in range(10)})

# Longer inputs cannot be any of our numbers; refusing them early bounds the work done on junk.
_MAX_INPUT = 256


def clean(number: object, what: str) -> str:
    """Remove whitespace and hyphen-like separators; map full-width digits to ASCII."""
    if not isinstance(number, str):
        raise InvalidFormat(f"{what} must be a string")
    if len(number) > _MAX_INPUT:
        raise InvalidLength(f"{what} is far too long")
    # str.split() without arguments splits on every Unicode whitespace, including U+3000.
    return "".join(number.translate(_TRANSLATION).split())


def digits_only(number: str, length: int, what: str) -> str:
    """Check that ``number`` is exactly ``length`` ASCII digits."""
    # str.isdigit() accepts e.g. Arabic-Indic and superscript digits; insist on ASCII.
    if number and not (number.isascii() and number.isdigit()):
        raise InvalidFormat(f"{what} must contain only digits")
    if len(number) != length:
        raise InvalidLength(f"{what} must have {length} digits")
    return number


def as_uint64_array(values: Any, ndigits: int, what: str) -> npt.NDArray[np.uint64]:
    """Convert ``values`` to a uint64 array, checking every element is below ``10**ndigits``."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "ui":
        raise InvalidFormat(f"{what} values must be an integer array")
    if arr.size and arr.dtype.kind == "i" and int(arr.min()) < 0:
        raise InvalidComponent(f"{what} values must not be negative")
    out = arr.astype(np.uint64, copy=False)
    if out.size and int(out.max()) >= 10**ndigits:
        raise InvalidComponent(f"{what} values must have at most {ndigits} digits")
    return out


def weighted_sum_vector(
    values: npt.NDArray[np.uint64], weights_from_right: tuple[int, ...]
) -> npt.NDArray[np.uint64]:
    """Sum of digit * weight for every element, digits taken from the right."""
    total = np.zeros_like(values)
    # Blocks that stay in cache; digit = rest - (rest // 10) * 10, because numpy's uint64
    # remainder is several times slower than floor_divide (this is the numbering hot path).
    block = 1 << 14
    ten = np.uint64(10)
    for start in range(0, values.size, block):
        rest = values.ravel()[start:start + block].copy()
        out = total.ravel()[start:start + block]
        quotient = np.empty_like(rest)
        digit = np.empty_like(rest)
        # The loop runs over digit positions (about a dozen), never over the numbers.
        for weight in weights_from_right:
            np.floor_divide(rest, ten, out=quotient)
            np.multiply(quotient, ten, out=digit)
            np.subtract(rest, digit, out=digit)
            digit *= np.uint64(weight)
            out += digit
            rest, quotient = quotient, rest
    return total

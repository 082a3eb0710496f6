"""住民票コード (resident record code).

The 住民票コード is recorded on every 住民票 (住民基本台帳法 第7条第13号) and designated by the
市町村長 from codes allotted through the 機構 (同法 第30条の2, 第30条の3).  Per
住民基本台帳法施行規則 第1条 it is a randomly generated 10-digit number followed by one check
digit computed with the formula fixed under that article (平成14年総務省告示第436号)::

    check = 11 - (Σ Pn × Qn mod 11)       (0 when the remainder is 0 or 1)

where Pn is the n-th of the 10 digits counted from the RIGHT and Qn = n + 1 for 1 ≤ n ≤ 6 and
n - 5 for 7 ≤ n ≤ 10, i.e. weights 5,4,3,2,7,6,5,4,3,2 left to right: the same modulus-11
scheme as the 個人番号, applied to 10 digits.

>>> validate("1234567890 3")
'12345678903'
>>> is_valid("12345678904")
False
>>> calc_check_digit("2472705960")
'8'
>>> import numpy as np
>>> calc_check_digits(np.array([1234567890, 2472705960], dtype=np.uint64)).tolist()
[3, 8]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mynumber.codes._util import as_uint64_array, clean, digits_only, weighted_sum_vector
from mynumber.codes.exceptions import InvalidChecksum, ValidationError

__all__ = [
    "calc_check_digit",
    "calc_check_digits",
    "compact",
    "format",
    "is_valid",
    "validate",
]

_WHAT = "resident record code"
LENGTH = 11
# Qn for n = 1..10 counted from the right.
_WEIGHTS_FROM_RIGHT = (2, 3, 4, 5, 6, 7, 2, 3, 4, 5)


def compact(number: str) -> str:
    """Strip spaces and hyphen-like separators and map full-width digits to ASCII.

    >>> compact("１２３４５ ６７８９０－３")
    '12345678903'
    """
    return clean(number, _WHAT)


def calc_check_digit(first10: str) -> str:
    """Return the check digit for the first 10 digits.

    >>> calc_check_digit("1234567890")
    '3'
    """
    digits_only(first10, LENGTH - 1, "resident record code base")
    total = sum(int(p) * q for p, q in zip(reversed(first10), _WEIGHTS_FROM_RIGHT, strict=True))
    remainder = total % 11
    return "0" if remainder <= 1 else str(11 - remainder)


def validate(number: str) -> str:
    """Return the compact form of ``number`` or raise a :class:`ValidationError` subclass."""
    number = digits_only(compact(number), LENGTH, _WHAT)
    if calc_check_digit(number[:-1]) != number[-1]:
        raise InvalidChecksum(f"{_WHAT} has an invalid check digit")
    return number


def is_valid(number: str) -> bool:
    """Return whether ``number`` is a valid 住民票コード (never raises)."""
    try:
        validate(number)
    except ValidationError:
        return False
    return True


def format(number: str) -> str:
    """Return the compact form: the code has no official grouping, and the 住民票 prints it plain.

    >>> format(" 1234567890-3 ")
    '12345678903'
    """
    return compact(number)


def calc_check_digits(values: npt.NDArray[np.uint64] | Any) -> npt.NDArray[np.uint8]:
    """Vectorised :func:`calc_check_digit` for an array of 10-digit integers (< 10**10).

    Leading zeros are implied.  Returns uint8 check digits; the code is ``values * 10 + result``.
    """
    arr = as_uint64_array(values, LENGTH - 1, "resident record code base")
    remainder = weighted_sum_vector(arr, _WEIGHTS_FROM_RIGHT) % np.uint64(11)
    check = np.where(remainder <= 1, np.uint64(0), np.uint64(11) - remainder)
    return check.astype(np.uint8)

"""個人番号 (Individual Number, "My Number").

The 個人番号 is defined in 行政手続における特定の個人を識別するための番号の利用等に関する法律
(番号法, 平成25年法律第27号) 第2条第5項.  Per 番号法施行令 第8条 it consists of an 11-digit number
derived from the 住民票コード followed by one check digit, computed as prescribed in
番号法施行規則 (平成26年総務省令第85号) 第5条::

    check = 11 - (Σ Pn × Qn mod 11)       (0 when the remainder is 0 or 1)

where Pn is the n-th digit of the 11 digits counted from the RIGHT and Qn = n + 1 for
1 ≤ n ≤ 6 and n - 5 for 7 ≤ n ≤ 11, i.e. weights 6,5,4,3,2,7,6,5,4,3,2 left to right.

>>> validate("1234 5678 9018")
'123456789018'
>>> validate("１２３４－５６７８－９０１８")
'123456789018'
>>> is_valid("123456789019")
False
>>> validate("123456789019")
Traceback (most recent call last):
    ...
mynumber.codes.exceptions.InvalidChecksum: individual number has an invalid check digit
>>> calc_check_digit("62149832025")
'7'
>>> format("621498320257")
'6214 9832 0257'
>>> import numpy as np
>>> calc_check_digits(np.array([12345678901, 62149832025], dtype=np.uint64)).tolist()
[8, 7]
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

_WHAT = "individual number"
LENGTH = 12
# Qn for n = 1..11 counted from the right (施行規則 第5条).
_WEIGHTS_FROM_RIGHT = (2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6)


def compact(number: str) -> str:
    """Strip spaces and hyphen-like separators and map full-width digits to ASCII.

    >>> compact(" 1234-5678 ９０１８ ")
    '123456789018'
    """
    return clean(number, _WHAT)


def calc_check_digit(first11: str) -> str:
    """Return the check digit for the first 11 digits.

    >>> calc_check_digit("12345678901")
    '8'
    """
    digits_only(first11, LENGTH - 1, "individual number base")
    total = sum(int(p) * q for p, q in zip(reversed(first11), _WEIGHTS_FROM_RIGHT, strict=True))
    remainder = total % 11
    return "0" if remainder <= 1 else str(11 - remainder)


def validate(number: str) -> str:
    """Return the compact form of ``number`` or raise a :class:`ValidationError` subclass."""
    number = digits_only(compact(number), LENGTH, _WHAT)
    if calc_check_digit(number[:-1]) != number[-1]:
        raise InvalidChecksum(f"{_WHAT} has an invalid check digit")
    return number


def is_valid(number: str) -> bool:
    """Return whether ``number`` is a valid 個人番号 (never raises)."""
    try:
        validate(number)
    except ValidationError:
        return False
    return True


def format(number: str) -> str:
    """Format as three groups of four digits, as printed on the マイナンバーカード.

    >>> format("123456789018")
    '1234 5678 9018'
    """
    number = compact(number)
    return " ".join((number[0:4], number[4:8], number[8:]))


def calc_check_digits(values: npt.NDArray[np.uint64] | Any) -> npt.NDArray[np.uint8]:
    """Vectorised :func:`calc_check_digit` for an array of 11-digit integers (< 10**11).

    Leading zeros are implied: 123 stands for "00000000123".  Returns the check digits as an
    array of the same shape with dtype uint8; the full number is ``values * 10 + result``.
    """
    arr = as_uint64_array(values, LENGTH - 1, "individual number base")
    remainder = weighted_sum_vector(arr, _WEIGHTS_FROM_RIGHT) % np.uint64(11)
    check = np.where(remainder <= 1, np.uint64(0), np.uint64(11) - remainder)
    return check.astype(np.uint8)

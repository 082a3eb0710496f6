"""法人番号 (Corporate Number).

The 法人番号 is designated by the 国税庁長官 under the 法人番号 chapter of 番号法.  Per
法人番号の指定等に関する省令 (平成26年財務省令第70号) 第1条 and 第2条 it is a 12-digit base number
PRECEDED by one check digit, computed as::

    check = 9 - (Σ Pn × Qn mod 9)

where Pn is the n-th of the 12 base digits counted from the RIGHT, and Qn = 1 for odd n and 2
for even n.  The check digit is therefore never 0.

>>> validate("5-8356-7825-6246")
'5835678256246'
>>> is_valid("5835678256247")
False
>>> calc_check_digit("835678256246")
'5'
>>> format("5835678256246")
'5-8356-7825-6246'
"""

from __future__ import annotations

from mynumber.codes._util import clean, digits_only
from mynumber.codes.exceptions import InvalidChecksum, ValidationError

__all__ = ["calc_check_digit", "compact", "format", "is_valid", "validate"]

_WHAT = "corporate number"
LENGTH = 13


def compact(number: str) -> str:
    """Strip spaces and hyphen-like separators and map full-width digits to ASCII.

    >>> compact("５－８３５６－７８２５－６２４６")
    '5835678256246'
    """
    return clean(number, _WHAT)


def calc_check_digit(base12: str) -> str:
    """Return the (leading) check digit for the 12 base digits.

    >>> calc_check_digit("000000000000")
    '9'
    """
    digits_only(base12, LENGTH - 1, "corporate number base")
    # n counts from the right starting at 1: odd n -> weight 1, even n -> weight 2.
    total = sum(int(p) * (1 if n % 2 else 2) for n, p in enumerate(reversed(base12), start=1))
    return str(9 - total % 9)


def validate(number: str) -> str:
    """Return the compact form of ``number`` or raise a :class:`ValidationError` subclass."""
    number = digits_only(compact(number), LENGTH, _WHAT)
    if calc_check_digit(number[1:]) != number[0]:
        raise InvalidChecksum(f"{_WHAT} has an invalid check digit")
    return number


def is_valid(number: str) -> bool:
    """Return whether ``number`` is a valid 法人番号 (never raises)."""
    try:
        validate(number)
    except ValidationError:
        return False
    return True


def format(number: str) -> str:
    """Format as check digit then three groups of four, the grouping python-stdnum uses.

    >>> format("5835678256246")
    '5-8356-7825-6246'
    """
    number = compact(number)
    return "-".join((number[:1], number[1:5], number[5:9], number[9:]))

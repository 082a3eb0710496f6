"""全国地方公共団体コード (local government code).

The codes are maintained by 総務省 as 全国地方公共団体コード and standardised as JIS X 0401
(都道府県コード, the first two digits, 01-47) and JIS X 0402 (市区町村コード, the next three).
A sixth digit is a check digit over the first five::

    r = (6·d1 + 5·d2 + 4·d3 + 3·d4 + 2·d5) mod 11
    check = (11 - r) mod 10        i.e. the last digit of 11 - r

so r = 0 gives 1 and r = 1 gives 0.  (This differs from the 個人番号 rule, where both
remainders give 0: 新宿区 131041 has r = 0 and 東京都 130001 has r = 10.)

Many data sets (e.g. 住民基本台帳 statistics) use the 5-digit form without the check digit;
:func:`validate` accepts it and returns the 6-digit form.

>>> validate("13104-1")
'131041'
>>> validate("13104")
'131041'
>>> validate("131042")
Traceback (most recent call last):
    ...
mynumber.codes.exceptions.InvalidChecksum: local government code has an invalid check digit
>>> prefecture_code("271004")
'27'
>>> is_valid("480005")
False
"""

from __future__ import annotations

from mynumber.codes._util import clean, digits_only
from mynumber.codes.exceptions import InvalidChecksum, InvalidComponent, ValidationError

__all__ = [
    "calc_check_digit",
    "compact",
    "format",
    "is_valid",
    "prefecture_code",
    "to_five_digits",
    "to_six_digits",
    "validate",
]

_WHAT = "local government code"
LENGTH = 6
_WEIGHTS = (6, 5, 4, 3, 2)


def compact(code: str) -> str:
    """Strip spaces and hyphen-like separators and map full-width digits to ASCII.

    >>> compact("１３１０４－１")
    '131041'
    """
    return clean(code, _WHAT)


def calc_check_digit(first5: str) -> str:
    """Return the check digit for the first five digits.

    >>> [calc_check_digit(c) for c in ("13104", "13113", "01100", "13000", "27100")]
    ['1', '0', '2', '1', '4']
    """
    digits_only(first5, LENGTH - 1, "local government code base")
    remainder = sum(int(d) * w for d, w in zip(first5, _WEIGHTS, strict=True)) % 11
    return str((11 - remainder) % 10)


def to_six_digits(code: str) -> str:
    """Return the 6-digit form, appending the check digit to a 5-digit code.

    A 6-digit code has its check digit verified.  The prefecture part is not range-checked
    here; use :func:`validate` for that.

    >>> to_six_digits("01100")
    '011002'
    """
    code = compact(code)
    if len(code) == LENGTH - 1:
        return digits_only(code, LENGTH - 1, _WHAT) + calc_check_digit(code)
    code = digits_only(code, LENGTH, _WHAT)
    if calc_check_digit(code[:-1]) != code[-1]:
        raise InvalidChecksum(f"{_WHAT} has an invalid check digit")
    return code


def to_five_digits(code: str) -> str:
    """Return the 5-digit form (without check digit) of a valid code.

    >>> to_five_digits("131130")
    '13113'
    """
    return validate(code)[:-1]


def validate(code: str) -> str:
    """Return the 6-digit form of ``code`` (5 or 6 digits) or raise a ValidationError."""
    code = to_six_digits(code)
    if not 1 <= int(code[:2]) <= 47:
        raise InvalidComponent(f"{_WHAT} has an unknown prefecture part (must be 01-47)")
    return code


def is_valid(code: str) -> bool:
    """Return whether ``code`` is a valid 5- or 6-digit code (never raises)."""
    try:
        validate(code)
    except ValidationError:
        return False
    return True


def prefecture_code(code: str) -> str:
    """Return the JIS X 0401 prefecture code (01-47) of a valid code.

    >>> prefecture_code("010006")
    '01'
    """
    return validate(code)[:2]


def format(code: str) -> str:
    """Return the 6-digit form; the code is conventionally written without separators.

    >>> format("47000")
    '470007'
    """
    return to_six_digits(code)

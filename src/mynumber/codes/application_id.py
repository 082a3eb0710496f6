"""申請書ID (application ID printed on the 個人番号カード交付申請書).

The real 申請書ID is a 23-digit number whose structure J-LIS does not publish.  Ours is defined
here as 22 payload digits followed by ONE check digit computed with the Damm algorithm, a
check-digit scheme over a totally anti-symmetric quasigroup of order 10.  It detects every
single-digit substitution and every transposition of two adjacent digits (including a swap of
the last payload digit with the check digit) -- the error classes behind the incident in which a
mistyped application ID matched another applicant's form.

Source of the scheme and the table: H. Michael Damm, "Total anti-symmetrische Quasigruppen",
Dissertation, Philipps-Universität Marburg, 2004 (urn:nbn:de:hebis:04-z2004-05162); the table
below is the order-10 example with a zero diagonal reproduced in the English Wikipedia article
"Damm algorithm" and in python-stdnum's ``stdnum.damm``.  Computing ``interim = T[interim][d]``
over all digits starting from 0 yields the check digit; a number carrying its check digit
reduces to 0.  (ISO 7064 MOD 97-10 was not used: it needs two check digits; Verhoeff needs three
tables for the same guarantee.)

The printed form is groups of four digits from the left: ``dddd dddd dddd dddd dddd ddd``
(5 x 4 + 3).

>>> _damm("572")  # the worked example in the published description
4
>>> calc_check_digit("1234567890123456789012")
'8'
>>> validate("1234 5678 9012 3456 7890 128")
'12345678901234567890128'
>>> validate("１２３４－５６７８－９０１２－３４５６－７８９０－１２８")
'12345678901234567890128'
>>> is_valid("12345678901234567890129")
False
>>> is_valid("21345678901234567890128")
False
>>> validate("12345678901234567890129")
Traceback (most recent call last):
    ...
mynumber.codes.exceptions.InvalidChecksum: application ID has an invalid check digit
>>> format("12345678901234567890128")
'1234 5678 9012 3456 7890 128'
>>> import random
>>> is_valid(generate(random.Random(0)))
True
"""

from __future__ import annotations

import random
import secrets

from mynumber.codes._util import clean, digits_only
from mynumber.codes.exceptions import InvalidChecksum, ValidationError

__all__ = [
    "LENGTH",
    "calc_check_digit",
    "compact",
    "format",
    "generate",
    "is_valid",
    "validate",
]

_WHAT = "application ID"
#: Total number of digits, check digit included.
LENGTH = 23

# Damm (2004) / Wikipedia "Damm algorithm": row = interim digit, column = next digit.
_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def _damm(digits: str) -> int:
    interim = 0
    for d in digits:
        interim = _TABLE[interim][ord(d) - 48]
    return interim


def compact(number: str) -> str:
    """Strip spaces and hyphen-like separators and map full-width digits to ASCII.

    >>> compact(" 1234-5678 9012 3456 7890 １２８ ")
    '12345678901234567890128'
    """
    return clean(number, _WHAT)


def calc_check_digit(payload: str) -> str:
    """Return the Damm check digit for the 22 payload digits.

    >>> calc_check_digit("0000000000000000000000")
    '0'
    """
    digits_only(payload, LENGTH - 1, "application ID payload")
    return str(_damm(payload))


def validate(number: str) -> str:
    """Return the compact form of ``number`` or raise a :class:`ValidationError` subclass.

    >>> validate("1234")
    Traceback (most recent call last):
        ...
    mynumber.codes.exceptions.InvalidLength: application ID must have 23 digits
    """
    number = digits_only(compact(number), LENGTH, _WHAT)
    if _damm(number) != 0:
        raise InvalidChecksum(f"{_WHAT} has an invalid check digit")
    return number


def is_valid(number: str) -> bool:
    """Return whether ``number`` is a valid application ID (never raises).

    >>> is_valid(None)  # type: ignore[arg-type]
    False
    """
    try:
        validate(number)
    except ValidationError:
        return False
    return True


def format(number: str) -> str:
    """Format as groups of four digits from the left (the last group has three).

    >>> format("12345678901234567890128")
    '1234 5678 9012 3456 7890 128'
    """
    number = compact(number)
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def generate(random_source: random.Random | None = None) -> str:
    """Return a new valid application ID (compact form) with uniformly random payload digits.

    ``random_source`` defaults to :class:`secrets.SystemRandom`; pass a seeded
    :class:`random.Random` for reproducible test data.  Uniqueness is NOT guaranteed here: the
    issuing service must check the ID against those already allocated.

    >>> len(generate())
    23
    """
    rng = random_source if random_source is not None else secrets.SystemRandom()
    payload = "".join(str(rng.randrange(10)) for _ in range(LENGTH - 1))
    return payload + calc_check_digit(payload)

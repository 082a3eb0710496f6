"""保険者番号 (insurer number of a public health insurer).

Every 保険者 (協会けんぽ and its 支部, 健康保険組合, 共済組合, 国民健康保険 of a 市区町村,
国民健康保険組合, 後期高齢者医療広域連合) has a number printed on the insurance card and on claims
(診療報酬請求書等の記載要領, 厚生労働省保険局; the layout of 保険者番号 in 別添 "保険者番号等の
設定について"):

* 8 digits: 法別番号 (2; 01 協会けんぽ, 06 健康保険組合, 31-34 共済組合, 39 後期高齢者医療, ...)
  + 都道府県番号 (2) + 保険者別番号 (3) + 検証番号 (1);
* 6 digits for 国民健康保険 (市区町村 and 国民健康保険組合): 都道府県番号 (2) + 保険者別番号 (3)
  + 検証番号 (1), without a 法別番号.

The 検証番号 is computed over the digits before it: starting from the RIGHT-most of them, the
digits are multiplied by 2, 1, 2, 1, ... in turn; the digits of each product are added
(14 -> 1 + 4 = 5) and the results summed; the check is ``10 - (sum mod 10)``, 0 when that is 10.
(This is the Luhn scheme of ISO/IEC 7812-1 applied to the digits before the check.)

新宿区の国民健康保険 (13 + 104)::

    digits  1  3  1  0  4
    weight  2  1  2  1  2      (from the right: 4x2, 0x1, 1x2, 3x1, 1x2)
    product 2  3  2  0  8      sum 15 -> 10 - 5 = 5 -> 131045

>>> calc_check_digit("13104")
'5'
>>> validate("13104-5")
'131045'
>>> validate("０１１３００１２")
'01130012'
>>> is_valid("01130013")
False
>>> validate("01130013")
Traceback (most recent call last):
    ...
mynumber.codes.exceptions.InvalidChecksum: insurer number has an invalid check digit
>>> is_national_health_insurance("131045"), law_code("131045"), law_code("01130012")
(True, None, '01')
>>> prefecture_code("01130012")
'13'
>>> with_check_digit("3913100")
'39131008'
"""

from __future__ import annotations

from mynumber.codes._util import clean, digits_only
from mynumber.codes.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

__all__ = [
    "LAW_CODES",
    "LENGTHS",
    "calc_check_digit",
    "compact",
    "format",
    "is_national_health_insurance",
    "is_valid",
    "law_code",
    "luhn_valid",
    "prefecture_code",
    "validate",
    "with_check_digit",
]

_WHAT = "insurer number"
#: 8 digits with a 法別番号; 6 digits for 国民健康保険 (市区町村・国民健康保険組合).
LENGTHS = (6, 8)
#: The longest digit string :func:`calc_check_digit` takes (other numbers on this scheme, such
#: as the document numbers of the insurance context, are longer than an insurer number).
_MAX_DIGITS = 30

#: 法別番号 that commonly appear (not a closed list: the number is not refused for another).
LAW_CODES: dict[str, str] = {
    "01": "全国健康保険協会管掌健康保険 (協会けんぽ)",
    "02": "船員保険",
    "03": "日雇特例被保険者の保険 (一般療養)",
    "06": "組合管掌健康保険 (健康保険組合)",
    "07": "防衛省職員給与法による自衛官等の療養の給付",
    "31": "国家公務員共済組合",
    "32": "地方公務員等共済組合",
    "33": "警察共済組合",
    "34": "公立学校共済組合・日本私立学校振興・共済事業団",
    "39": "後期高齢者医療広域連合",
    "63": "特定健康保険組合 (特例退職被保険者)",
    "67": "国民健康保険の退職者医療",
}


def compact(number: str) -> str:
    """Strip spaces and hyphen-like separators and map full-width digits to ASCII.

    >>> compact(" ０６１３ ９９５-０ ")
    '06139950'
    """
    return clean(number, _WHAT)


def calc_check_digit(digits: str) -> str:
    """The 検証番号 for the digits before it (5 for 国民健康保険, 7 otherwise; any length up
    to 30 is accepted, for other numbers using the same scheme).

    >>> calc_check_digit("0113001")
    '2'
    >>> calc_check_digit("27138")  # 8x2 = 16 -> 1+6 = 7; 3x1, 1x2, 7x1, 2x2: 7+3+2+7+4 = 23
    '7'
    >>> calc_check_digit("13113")  # 3x2=6, 1x1, 1x2, 3x1, 1x2: 6+1+2+3+2 = 14 -> 6
    '6'
    """
    if not isinstance(digits, str):
        raise InvalidFormat(f"{_WHAT} base must be a string")
    if digits and not (digits.isascii() and digits.isdigit()):
        raise InvalidFormat(f"{_WHAT} base must contain only digits")
    if not 1 <= len(digits) <= _MAX_DIGITS:
        raise InvalidLength(f"{_WHAT} base must have 1 to {_MAX_DIGITS} digits")
    total = 0
    for position, char in enumerate(reversed(digits)):
        product = int(char) * (2 if position % 2 == 0 else 1)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)


def with_check_digit(digits: str) -> str:
    """``digits`` followed by their 検証番号.

    >>> with_check_digit("13104")
    '131045'
    """
    return digits + calc_check_digit(digits)


def luhn_valid(number: str) -> bool:
    """Whether an all-digit string (at least 2 digits) ends with the 検証番号 of the digits
    before it (never raises; for other numbers on this scheme).

    >>> luhn_valid("131045"), luhn_valid("131046"), luhn_valid("x")
    (True, False, False)
    """
    if not isinstance(number, str) or not 2 <= len(number) <= _MAX_DIGITS + 1:
        return False
    if not (number.isascii() and number.isdigit()):
        return False
    return calc_check_digit(number[:-1]) == number[-1]


def validate(number: str) -> str:
    """The compact form of ``number`` (6 or 8 digits, 都道府県番号 01-47, check digit
    verified), or a :class:`ValidationError` subclass."""
    number = compact(number)
    if number and not (number.isascii() and number.isdigit()):
        raise InvalidFormat(f"{_WHAT} must contain only digits")
    if len(number) not in LENGTHS:
        raise InvalidLength(f"{_WHAT} must have 8 digits (6 for 国民健康保険)")
    digits_only(number, len(number), _WHAT)
    prefecture = number[:2] if len(number) == 6 else number[2:4]
    if not 1 <= int(prefecture) <= 47:
        raise InvalidComponent(f"{_WHAT} has no valid prefecture number (01-47)")
    if calc_check_digit(number[:-1]) != number[-1]:
        raise InvalidChecksum(f"{_WHAT} has an invalid check digit")
    return number


def is_valid(number: str) -> bool:
    """Whether ``number`` is a valid 保険者番号 (never raises)."""
    try:
        validate(number)
    except ValidationError:
        return False
    return True


def format(number: str) -> str:
    """The compact form: a 保険者番号 is printed without grouping.

    >>> format("0113 0012")
    '01130012'
    """
    return compact(number)


def is_national_health_insurance(number: str) -> bool:
    """Whether a valid number is a 国民健康保険 one (6 digits)."""
    return len(validate(number)) == 6


def law_code(number: str) -> str | None:
    """The 法別番号 of a valid 8-digit number; None for 国民健康保険 (6 digits)."""
    number = validate(number)
    return number[:2] if len(number) == 8 else None


def prefecture_code(number: str) -> str:
    """The 都道府県番号 (JIS X 0401) of a valid number."""
    number = validate(number)
    return number[:2] if len(number) == 6 else number[2:4]

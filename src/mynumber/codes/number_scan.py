"""Finding a 個人番号 inside data: the one scan every context uses before it stores, sends or
shows something that must not carry the number (番号法 第19条)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from mynumber.codes import individual_number

__all__ = ["contains_individual_number", "text_contains_individual_number"]

# 12 digits, or three groups of four split by one space or hyphen-like mark (as printed or
# typed), not touching other digits. Checked after NFKC, so full-width digits and separators
# count; ASCII digits only afterwards (the check digit decides).
_NUMBER_RUN = re.compile(
    r"(?<![0-9])[0-9]{4}[ \-\u2010-\u2015\u2212\u30fc]?[0-9]{4}[ \-\u2010-\u2015\u2212\u30fc]?"
    r"[0-9]{4}(?![0-9])")


def _text_has_number(text: str) -> bool:
    if text.isascii():
        # ASCII is its own NFKC form, and a run needs at least 12 characters. (Non-ASCII text
        # is always normalised: one compatibility character can expand to several digits.)
        if len(text) < 12:
            return False
        normalised = text
    else:
        normalised = unicodedata.normalize("NFKC", text)
    return any(individual_number.is_valid(m.group(0)) for m in _NUMBER_RUN.finditer(normalised))


def text_contains_individual_number(text: str) -> bool:
    """Whether a text carries a 個人番号 (the same rule as :func:`contains_individual_number`).

    For a JSON document (``json.dumps(value, ensure_ascii=False)``) this is one pass instead
    of a walk: every string, key and number of the value appears in the text unchanged and
    bounded by a quote, comma, colon or bracket (no separator the rule accepts and no digit),
    so a value carrying a number gives a text carrying one.

    >>> text_contains_individual_number('{"note": "番号 1234-5678-9018"}')
    True
    >>> text_contains_individual_number('{"code": "12345678901", "n": [1234, 56789018]}')
    False
    """
    return _text_has_number(text)


def contains_individual_number(value: Any) -> bool:
    """Whether a JSON-like value carries a 個人番号 anywhere: in any string (key or value) or
    number, at any depth. A 12-digit run passing the check digit counts, whatever it means:
    one in eleven random 12-digit values does, so 副本 must not hold bare 12-digit values.
    The network, the portal and the outbox refuse to carry such a value (番号法 第19条:
    a 副本 is exchanged under the agency's code, never with the number).

    >>> contains_individual_number({"note": "番号 1234 5678 9018 を控える"})
    True
    >>> contains_individual_number({"resident_code": "12345678901", "n": 123456789018})
    True
    >>> contains_individual_number(["123456789012", {"a": 42}])
    False
    """
    stack = [value]
    while stack:  # iterative: a deeply nested payload cannot exhaust the stack
        item = stack.pop()
        if isinstance(item, str):
            if _text_has_number(item):
                return True
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -10**11 < item < 10**11 and _text_has_number(repr(item)):
                return True
        elif isinstance(item, float):
            if _text_has_number(repr(item)):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        else:
            if _text_has_number(str(item)):
                return True
    return False

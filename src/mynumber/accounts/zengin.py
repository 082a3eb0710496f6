"""The 全銀 character set, conversion to it, and the holder-name check (口座名義の照合).

A Japanese bank transfer carries names in the character set of the 全銀システム (Zengin): JIS X
0201 half-width katakana, digits, capital letters and a few symbols, one byte each.  Small
kana do not exist in it (キョウコ is written ｷﾖｳｺ), 濁点 and 半濁点 are separate characters
(ガ is ｶﾞ, two characters), and a long vowel is written with the hyphen (ソニー is ｿﾆ-).

A bank reports an account's holder name (口座名義) in that set; the registry records a
resident's reading (フリガナ) in full-width katakana.  :func:`compare_holder_name` brings both to
one form and says whether they match and, if not, what differs, as data (a reason code and the
two normalised names) that pages render through the message catalogue
(``accounts.holder_name.<reason>``).

The set of characters accepted in a name field (:data:`ZENGIN_NAME_CHARACTERS`):

* katakana ｱ-ﾝ and ｦ, the marks ﾞ ﾟ; digits 0-9; capital letters A-Z
* space and the symbols ``( ) - . /``

The 全銀 telegraphic set also has ``,`` ``¥`` ``｢`` ``｣`` and ``ｰ``, but banks and accounting
software refuse them in holder names (a comma or ー in a name is a common reason for a rejected
file), so they are refused here too: this module produces names every bank accepts.

Sources (reference, read 2025; no text copied):

* 全銀協パーソナル・コンピュータ用標準通信プロトコル (ベーシック手順), as summarised at
  https://spreadsheets.kmlog.com/ (口座名義: 英大文字, 数字, 半角カナ without small kana,
  ``()-./`` and space)
* PCA 会計 manual, 全銀協使用可能文字:
  https://pca.jp/area_support/manual/kk/Z1sanko/z1_zengin.html (振込先名カナ: カナ, 濁点,
  半濁点, A-Z, 0-9, space, ``( ) - .``)
* ジンジャー給与 help, 口座名義(フリガナ)で使用できる文字:
  https://jinjer-kyuyo.zendesk.com/hc/ja/articles/900002885563 (small kana written large,
  「ー」 and 「,」 not usable)
* 全銀テレ為替文字の正確な文字コード: https://zenn.dev/futa/scraps/91335fe8e89229 (the code
  points; ヴ is the only extra voiced kana; combining marks must be composed first)
* zengin-code/source-data ``banks.json`` (long vowels written ``-``, e.g. ``ｿﾆ-``)

>>> to_zengin_kana("ヤマダ　キョウコ")
'ﾔﾏﾀﾞ ｷﾖｳｺ'
>>> to_zengin_kana("ヴィヴァルディ ジョー")
'ｳﾞｲｳﾞｱﾙﾃﾞｲ ｼﾞﾖ-'
>>> compare_holder_name("ﾔﾏﾀﾞ ｷﾖｳｺ", "ヤマダ キョウコ").matches
True
>>> check = compare_holder_name("ﾔﾏﾀﾞ ﾊﾅｺ", "ヤマダ キョウコ")
>>> check.reason, check.bank_name, check.name_kana
(<HolderNameReason.GIVEN_NAME_DIFFERS: 'given_name_differs'>, 'ﾔﾏﾀﾞ ﾊﾅｺ', 'ﾔﾏﾀﾞ ｷﾖｳｺ')
>>> check.message_key
'accounts.holder_name.given_name_differs'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from mynumber.codes.exceptions import InvalidComponent, InvalidFormat

__all__ = [
    "ZENGIN_NAME_CHARACTERS",
    "HolderNameCheck",
    "HolderNameReason",
    "NotZenginError",
    "compare_holder_name",
    "is_zengin",
    "normalize_holder_name",
    "require_zengin",
    "to_display",
    "to_zengin_kana",
]

_HALF_KATAKANA = "".join(chr(cp) for cp in range(0xFF71, 0xFF9E)) + "ｦ"  # ｱ..ﾝ and ｦ
_VOICED = "\uff9e"  # ﾞ
_SEMI_VOICED = "\uff9f"  # ﾟ

#: Every character allowed in a 全銀 name field (holder, requester, bank and branch names).
ZENGIN_NAME_CHARACTERS: frozenset[str] = frozenset(
    _HALF_KATAKANA + _VOICED + _SEMI_VOICED + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ ()-./"
)

# The same set as a pattern: checking a million names in a payout run is a hot path.
_ZENGIN_NAME = re.compile("[" + re.escape("".join(sorted(ZENGIN_NAME_CHARACTERS))) + "]*")

# Full-width katakana -> half-width, derived from Unicode itself: NFKC maps each half-width
# form to its full-width letter, so the inverse is exactly the JIS X 0201 repertoire.
_TO_HALF: dict[str, str] = {
    unicodedata.normalize("NFKC", chr(cp)): chr(cp) for cp in range(0xFF66, 0xFF9E)
}
_COMBINING_MARKS = {"\u3099": _VOICED, "\u309a": _SEMI_VOICED}
# Stand-alone (spacing) marks become combining ones before NFKC so that か゛ composes to ガ.
_SPACING_MARKS = str.maketrans({"\u309b": "\u3099", "\u309c": "\u309a"})
# The long vowel mark and the dashes people type for it: the 全銀 set writes all of them "-".
_DASHES = frozenset("ー‐‑‒–—―−－ｰ﹣-")
# 中黒 between words of a foreign name is written "." in 全銀 names.
_DOTS = frozenset("・･.")
_HIRAGANA = range(0x3041, 0x3097)
# ヰ and ヱ have no half-width form; they are read イ and エ today, which is how banks write them.
_OBSOLETE_KANA = {"ヰ": "イ", "ヱ": "エ"}


class NotZenginError(InvalidFormat):
    """The text has characters that cannot be written in a 全銀 name field.

    ``characters`` lists the offending characters for a page to show the person who typed
    them; the message itself never contains the text (it is a name: personal data).
    """

    code = "not_zengin"
    default_message = "the name contains characters that banks do not accept"

    def __init__(self, characters: tuple[str, ...] = (), message: str | None = None) -> None:
        super().__init__(message)
        self.characters = characters


def _large(ch: str) -> str:
    """ァ -> ア, ッ -> ツ, ヵ -> カ, ㇰ -> ク: small katakana are written full size in 全銀."""
    name = unicodedata.name(ch, "")
    if name.startswith("KATAKANA LETTER SMALL "):
        try:
            return unicodedata.lookup(name.replace(" SMALL ", " ", 1))
        except KeyError:
            return ch
    return ch


def _convert_char(ch: str) -> str:
    if ch.isspace():
        return " "
    if ch in _DASHES:
        return "-"
    if ch in _DOTS:
        return "."
    if ch in ZENGIN_NAME_CHARACTERS:
        return ch
    if ord(ch) in _HIRAGANA:
        ch = chr(ord(ch) + 0x60)
    ch = _OBSOLETE_KANA.get(ch, ch)
    # ガ -> カ + U+3099 -> ｶﾞ; ヴ -> ウ + U+3099 -> ｳﾞ.
    decomposed = unicodedata.normalize("NFD", ch)
    base, marks = decomposed[0], decomposed[1:]
    half = _TO_HALF.get(_large(base))
    if half is None or any(m not in _COMBINING_MARKS for m in marks):
        return ch  # left as is: refused by the caller with the character named
    return half + "".join(_COMBINING_MARKS[m] for m in marks)


def _require_str(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidFormat("a name must be a string")
    return value


def to_zengin_kana(text: str) -> str:
    """Convert a reading (katakana, hiragana or half-width kana) to a 全銀 name.

    Full-width letters and digits become half-width, lower-case letters capitals, small kana
    large, 濁点/半濁点 separate characters, ー and dashes ``-``, ・ ``.``; runs of spaces
    (including the ideographic space) become one space and the ends are trimmed.

    Raises :class:`NotZenginError` if a character has no 全銀 form (kanji, ``,``, ``&``...).

    >>> to_zengin_kana("がっこう")
    'ｶﾞﾂｺｳ'
    >>> to_zengin_kana("ＰＥＴＥＲ　パン")
    'PETER ﾊﾟﾝ'
    >>> to_zengin_kana("山田")
    Traceback (most recent call last):
      ...
    mynumber.accounts.zengin.NotZenginError: the name contains characters that banks do not accept
    """
    text = _require_str(text).translate(_SPACING_MARKS)
    # NFKC: full-width ASCII -> ASCII, half-width kana -> full-width with marks composed.
    text = unicodedata.normalize("NFKC", text).upper()
    converted = "".join(_convert_char(ch) for ch in text)
    bad = tuple(dict.fromkeys(ch for ch in converted if ch not in ZENGIN_NAME_CHARACTERS))
    if bad:
        raise NotZenginError(bad)
    return " ".join(converted.split())


def is_zengin(text: str) -> bool:
    """True if ``text`` is already written in the 全銀 name set (no conversion needed).

    >>> is_zengin("ﾔﾏﾀﾞ ﾀﾛｳ"), is_zengin("ヤマダ"), is_zengin("ｷｮｳｺ")
    (True, False, False)
    """
    return isinstance(text, str) and _ZENGIN_NAME.fullmatch(text) is not None


def require_zengin(text: str, field: str = "name") -> str:
    """Return ``text`` if it is in the 全銀 name set, else raise :class:`NotZenginError`.

    Unlike :func:`to_zengin_kana` nothing is converted: a file writer uses this to refuse
    names that were never converted instead of guessing.
    """
    text = _require_str(text)
    if _ZENGIN_NAME.fullmatch(text):
        return text
    bad = tuple(dict.fromkeys(ch for ch in text if ch not in ZENGIN_NAME_CHARACTERS))
    if bad:
        raise NotZenginError(bad, f"{field} contains characters outside the 全銀 character set")
    return text


def normalize_holder_name(text: str) -> str:
    """The comparable form of a holder name or a reading: its 全銀 form with words separated
    by single spaces (``.`` between words counts as a space, as banks write either).

    >>> normalize_holder_name("ｽﾐｽ.ｼﾞﾖﾝ") == normalize_holder_name("スミス　ジョン")
    True
    >>> normalize_holder_name("ﾔﾏﾀﾞ  ﾀﾛｳ ")
    'ﾔﾏﾀﾞ ﾀﾛｳ'
    """
    return " ".join(to_zengin_kana(text).replace(".", " ").split())


def to_display(zengin: str) -> str:
    """A 全銀 name in full-width katakana for a page (ﾔﾏﾀﾞ ﾀﾛｳ -> ヤマダ タロウ).

    >>> to_display("ｿﾆ- ｼﾞﾛｳ")
    'ソニ- ジロウ'
    """
    return unicodedata.normalize(
        "NFKC", zengin.replace(_VOICED, "\u3099").replace(_SEMI_VOICED, "\u309a")
    )


class HolderNameReason(StrEnum):
    """Why a holder name does (not) match; the catalogue key is ``accounts.holder_name.<value>``."""

    #: Same characters (spaces between words may differ).
    MATCH = "match"
    #: Same family name, another given name: typically a family member's account.
    GIVEN_NAME_DIFFERS = "given_name_differs"
    #: Same given name, another family name: typically a name changed by marriage and not yet
    #: changed at the bank.
    FAMILY_NAME_DIFFERS = "family_name_differs"
    #: The same words in another order (family and given name swapped).
    ORDER_DIFFERS = "order_differs"
    #: Neither part agrees: the account belongs to someone else.
    DIFFERENT_PERSON = "different_person"


@dataclass(frozen=True, slots=True)
class HolderNameCheck:
    """The outcome of :func:`compare_holder_name`: the reason and both normalised names."""

    reason: HolderNameReason
    #: The bank's holder name in comparable form (:func:`normalize_holder_name`).
    bank_name: str
    #: The registrant's reading in the same form.
    name_kana: str

    @property
    def matches(self) -> bool:
        return self.reason is HolderNameReason.MATCH

    @property
    def message_key(self) -> str:
        """Catalogue key of the sentence that tells the resident what differed."""
        return f"accounts.holder_name.{self.reason.value}"


def _split(words: list[str]) -> tuple[str, str]:
    # Family name first, as banks and the registry write Japanese names; further words
    # (middle names) belong to the given name.
    return words[0], "".join(words[1:])


def _compare_split(family: str, given: str, other: str) -> HolderNameReason:
    """One side is split into family and given name, the other (``other``) is one word."""
    if other.startswith(family):
        return HolderNameReason.GIVEN_NAME_DIFFERS
    if given and other.endswith(given):
        return HolderNameReason.FAMILY_NAME_DIFFERS
    if other == given + family:
        return HolderNameReason.ORDER_DIFFERS
    return HolderNameReason.DIFFERENT_PERSON


def compare_holder_name(bank_name: str, name_kana: str) -> HolderNameCheck:
    """Compare a bank's holder name with a registrant's reading.

    Both are normalised with :func:`normalize_holder_name`; they match when their characters
    agree ignoring where the spaces are (banks write ﾔﾏﾀﾞﾀﾛｳ as well as ﾔﾏﾀﾞ ﾀﾛｳ).  Otherwise the
    reason says which part differs, using the space between family and given name on
    whichever side has one.

    Raises :class:`NotZenginError` if either name cannot be written in the 全銀 set, and
    :class:`~mynumber.codes.exceptions.InvalidComponent` if either is empty.

    >>> compare_holder_name("ﾔﾏﾀﾞﾀﾛｳ", "やまだ　たろう").matches
    True
    >>> compare_holder_name("ｻﾄｳ ﾊﾅｺ", "ヤマダ ハナコ").reason.value
    'family_name_differs'
    >>> compare_holder_name("ｽｽﾞｷ ｲﾁﾛｳ", "ヤマダ タロウ").reason.value
    'different_person'
    """
    bank = normalize_holder_name(bank_name)
    reading = normalize_holder_name(name_kana)
    if not bank or not reading:
        raise InvalidComponent("both the holder name and the reading are required")
    bank_words, reading_words = bank.split(" "), reading.split(" ")
    if "".join(bank_words) == "".join(reading_words):
        reason = HolderNameReason.MATCH
    elif len(bank_words) > 1 and len(reading_words) > 1:
        b_family, b_given = _split(bank_words)
        r_family, r_given = _split(reading_words)
        if b_family == r_family:
            reason = HolderNameReason.GIVEN_NAME_DIFFERS
        elif b_given == r_given:
            reason = HolderNameReason.FAMILY_NAME_DIFFERS
        elif sorted(bank_words) == sorted(reading_words):
            reason = HolderNameReason.ORDER_DIFFERS
        else:
            reason = HolderNameReason.DIFFERENT_PERSON
    elif len(reading_words) > 1:
        reason = _compare_split(*_split(reading_words), bank_words[0])
    elif len(bank_words) > 1:
        reason = _compare_split(*_split(bank_words), reading_words[0])
    else:
        reason = HolderNameReason.DIFFERENT_PERSON
    return HolderNameCheck(reason=reason, bank_name=bank, name_kana=reading)

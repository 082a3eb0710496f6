"""The 全銀 character set and the holder-name check (口座名義の照合)."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mynumber.accounts import zengin
from mynumber.accounts.zengin import (
    ZENGIN_NAME_CHARACTERS,
    HolderNameReason,
    NotZenginError,
    compare_holder_name,
    is_zengin,
    normalize_holder_name,
    require_zengin,
    to_display,
    to_zengin_kana,
)
from mynumber.codes.exceptions import InvalidComponent, ValidationError


def test_doctests() -> None:
    assert doctest.testmod(zengin, optionflags=doctest.ELLIPSIS).failed == 0


@pytest.mark.parametrize(
    ("name_kana", "expected"),
    [
        # small kana are written full size
        ("キョウコ", "ｷﾖｳｺ"),
        ("ハットリ", "ﾊﾂﾄﾘ"),
        ("ヶ", "ｹ"),
        ("ヵ", "ｶ"),
        ("ㇰ", "ｸ"),  # a small kana of the Ainu extension block
        # 濁点/半濁点 become separate characters
        ("ガギグゲゴ", "ｶﾞｷﾞｸﾞｹﾞｺﾞ"),
        ("パピプペポ", "ﾊﾟﾋﾟﾌﾟﾍﾟﾎﾟ"),
        ("ヴァイオリン", "ｳﾞｱｲｵﾘﾝ"),
        ("か゛っこう", "ｶﾞﾂｺｳ"),  # spacing voiced mark typed after the kana
        ("カ\u3099", "ｶﾞ"),  # combining voiced mark
        # long vowel: written with the hyphen
        ("ジョージ", "ｼﾞﾖ-ｼﾞ"),
        ("ｼﾞｮｰｼﾞ", "ｼﾞﾖ-ｼﾞ"),
        # spaces: ideographic space, runs of spaces, leading and trailing spaces
        ("ヤマダ　タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
        ("  ヤマダ   タロウ ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
        # hiragana, full-width letters, lower case
        ("やまだ たろう", "ﾔﾏﾀﾞ ﾀﾛｳ"),
        ("ｊｏｈｎ　ＳＭＩＴＨ", "JOHN SMITH"),
        # 中黒 between the words of a foreign name
        ("ジョン・スミス", "ｼﾞﾖﾝ.ｽﾐｽ"),
        # ヰ and ヱ are read イ and エ
        ("ヰヱ", "ｲｴ"),
        # already half-width: unchanged
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
    ],
)
def test_to_zengin_kana(name_kana: str, expected: str) -> None:
    assert to_zengin_kana(name_kana) == expected
    assert is_zengin(expected)


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("山田 タロウ", ("山", "田")),
        ("ヤマダ,タロウ", (",",)),
        ("ヤマダ＆タロウ", ("&",)),
        ("ヽ", ("ヽ",)),
        ("タロウ😀", ("😀",)),
    ],
)
def test_characters_outside_the_zengin_set_are_refused_and_named(
    text: str, bad: tuple[str, ...]
) -> None:
    with pytest.raises(NotZenginError) as info:
        to_zengin_kana(text)
    assert info.value.characters == bad
    assert info.value.code == "not_zengin"
    # the name is personal data: it never appears in the message
    assert not any(ch in str(info.value) for ch in bad)


def test_not_a_string_is_refused() -> None:
    with pytest.raises(ValidationError):
        to_zengin_kana(123)  # type: ignore[arg-type]


def test_require_zengin_does_not_convert() -> None:
    assert require_zengin("ﾔﾏﾀﾞ ﾀﾛｳ") == "ﾔﾏﾀﾞ ﾀﾛｳ"
    for unconverted in ("ヤマダ", "ｷｮｳｺ", "ﾔﾏﾀﾞ　ﾀﾛｳ", "ｿﾆｰ", "yamada"):
        with pytest.raises(NotZenginError):
            require_zengin(unconverted)


def test_the_character_set_is_single_byte_in_cp932() -> None:
    for ch in ZENGIN_NAME_CHARACTERS:
        assert len(ch.encode("cp932")) == 1, ch
    assert {"ｯ", "ｬ", "ｰ", ",", "¥", "｢", "｣"}.isdisjoint(ZENGIN_NAME_CHARACTERS)


@given(st.text(max_size=40))
def test_conversion_yields_zengin_or_refuses(text: str) -> None:
    try:
        converted = to_zengin_kana(text)
    except NotZenginError:
        return
    assert is_zengin(converted)
    assert to_zengin_kana(converted) == converted  # idempotent


def test_display_form_is_full_width() -> None:
    assert to_display("ﾔﾏﾀﾞ ｷﾖｳｺ") == "ヤマダ キヨウコ"
    assert to_display("ｳﾞｱｲｵﾘﾝ") == "ヴアイオリン"


# -- the holder-name check ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("bank_name", "name_kana"),
    [
        ("ﾔﾏﾀﾞ ｷﾖｳｺ", "ヤマダ キョウコ"),  # small kana
        ("ｶﾄｳ ｼﾞﾕﾝﾍﾟｲ", "カトウ　ジュンペイ"),  # 濁点, 半濁点, small kana
        ("ｳﾞｲｸﾄﾙ ｼﾞﾖ-ｼﾞ", "ヴィクトル ジョージ"),  # ヴ and the long vowel
        ("ﾔﾏﾀﾞﾀﾛｳ", "ヤマダ タロウ"),  # the bank wrote no space
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダタロウ"),  # the registry wrote no space
        ("ｽﾐｽ.ｼﾞﾖﾝ", "スミス ジョン"),  # "." between words
        ("ヤマダ タロウ", "やまだ たろう"),  # a bank that reports full-width kana
    ],
)
def test_same_name_written_differently_matches(bank_name: str, name_kana: str) -> None:
    check = compare_holder_name(bank_name, name_kana)
    assert check.matches, check
    assert check.reason is HolderNameReason.MATCH
    assert check.message_key == "accounts.holder_name.match"


def test_a_relatives_account_is_a_mismatch_on_the_given_name() -> None:
    # The 2023 finding: ~130,000 registrations were accounts in a family member's name.
    check = compare_holder_name("ﾔﾏﾀﾞ ﾊﾅｺ", "ヤマダ タロウ")
    assert not check.matches
    assert check.reason is HolderNameReason.GIVEN_NAME_DIFFERS
    assert check.message_key == "accounts.holder_name.given_name_differs"
    assert (check.bank_name, check.name_kana) == ("ﾔﾏﾀﾞ ﾊﾅｺ", "ﾔﾏﾀﾞ ﾀﾛｳ")


def test_a_relatives_account_without_spaces_at_the_bank_is_found_too() -> None:
    check = compare_holder_name("ﾔﾏﾀﾞﾊﾅｺ", "ヤマダ タロウ")
    assert check.reason is HolderNameReason.GIVEN_NAME_DIFFERS


def test_an_old_family_name_at_the_bank_is_a_family_name_mismatch() -> None:
    check = compare_holder_name("ｻﾄｳ ﾊﾅｺ", "ヤマダ ハナコ")
    assert check.reason is HolderNameReason.FAMILY_NAME_DIFFERS
    assert compare_holder_name("ｻﾄｳﾊﾅｺ", "ヤマダ ハナコ").reason is (
        HolderNameReason.FAMILY_NAME_DIFFERS
    )


def test_a_strangers_account_is_a_different_person() -> None:
    check = compare_holder_name("ｽｽﾞｷ ｲﾁﾛｳ", "ヤマダ タロウ")
    assert check.reason is HolderNameReason.DIFFERENT_PERSON
    assert check.message_key == "accounts.holder_name.different_person"
    assert compare_holder_name("ｽｽﾞｷｲﾁﾛｳ", "ヤマダタロウ").reason is (
        HolderNameReason.DIFFERENT_PERSON
    )


def test_swapped_family_and_given_name_is_reported_as_order() -> None:
    assert compare_holder_name("ｼﾞﾖﾝ ｽﾐｽ", "スミス ジョン").reason is (
        HolderNameReason.ORDER_DIFFERS
    )
    assert compare_holder_name("ｼﾞﾖﾝｽﾐｽ", "スミス ジョン").reason is (HolderNameReason.ORDER_DIFFERS)


def test_one_character_off_is_not_a_match() -> None:
    # ユウキ and ﾕ-ｷ are different spellings: the resident is told, nothing is guessed.
    assert not compare_holder_name("ﾔﾏﾀﾞ ﾕ-ｷ", "ヤマダ ユウキ").matches
    assert not compare_holder_name("ｻｲﾄｳ ﾀﾛｳ", "サイド タロウ").matches


def test_empty_names_are_refused() -> None:
    with pytest.raises(InvalidComponent):
        compare_holder_name("   ", "ヤマダ タロウ")
    with pytest.raises(InvalidComponent):
        compare_holder_name("ﾔﾏﾀﾞ ﾀﾛｳ", "")


def test_a_furigana_in_kanji_is_refused() -> None:
    with pytest.raises(NotZenginError):
        compare_holder_name("ﾔﾏﾀﾞ ﾀﾛｳ", "山田 太郎")


def test_normalized_form_is_the_same_for_both_sides() -> None:
    assert normalize_holder_name("ﾔﾏﾀﾞ  ｷﾖｳｺ") == normalize_holder_name("ヤマダ　キョウコ")

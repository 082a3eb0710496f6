"""Normalisation for record matching."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mynumber.codes.exceptions import InvalidComponent, InvalidFormat, ValidationError
from mynumber.codes.kana import (
    KANJI_VARIANTS,
    PersonKey,
    normalize_address,
    normalize_kana,
    normalize_name,
    normalize_sex,
    same_person_key,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダタロウ"),
        ("やまだ　たろう", "ヤマダタロウ"),
        ("ﾊﾟﾋﾟﾌﾟﾍﾟﾎﾟ", "パピプペポ"),
        ("か゛き゜", "ガキ゚"),  # spacing marks become combining ones; キ゚ has no precomposed form
        ("ｶﾞｯｺｳ", "ガツコウ"),
        ("きょうこ", "キヨウコ"),
        ("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ"),
        ("ゆーこ", "ユコ"),
        ("ユ－コ", "ユコ"),
        ("ﾕｰｺ", "ユコ"),
        ("ユ―コ", "ユコ"),
        ("ユ‐コ", "ユコ"),
        ("ジョン・スミス", "ジヨンスミス"),
        ("ｼﾞｮﾝ･ｽﾐｽ", "ジヨンスミス"),
        ("ゔ", "ヴ"),
        ("わ゛", "ヷ"),
        ("ゝゞ", "ヽヾ"),
        ("", ""),
    ],
)
def test_normalize_kana(raw: str, expected: str) -> None:
    assert normalize_kana(raw) == expected


@given(st.text())
def test_normalize_kana_idempotent(s: str) -> None:
    once = normalize_kana(s)
    assert normalize_kana(once) == once
    assert not any(ch.isspace() for ch in once)


@given(st.text(alphabet=st.characters(min_codepoint=0x3041, max_codepoint=0x3096)))
def test_hiragana_and_katakana_agree(s: str) -> None:
    katakana = "".join(chr(ord(c) + 0x60) for c in s)
    assert normalize_kana(s) == normalize_kana(katakana)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("髙橋", "高橋"),
        ("山﨑", "山崎"),
        ("齋藤", "斎藤"),
        ("齊藤", "斉藤"),
        ("渡邊", "渡辺"),
        ("渡邉", "渡辺"),
        ("澤田", "沢田"),
        ("濱田", "浜田"),
        ("廣瀬", "広瀬"),
        ("櫻井", "桜井"),
        ("國男", "国男"),
        ("眞一", "真一"),
        ("惠子", "恵子"),
        ("壽", "寿"),
        ("藏之介", "蔵之介"),
        ("德川", "徳川"),
        ("龍之介", "竜之介"),
        ("𠮷田", "吉田"),
        ("太郞", "太郎"),
        ("ＴＡＲＯ　ｙａｍａｄａ", "TAROYAMADA"),
        ("渡邊\U000e0104", "渡辺"),  # ideographic variation selector
    ],
)
def test_normalize_name_folds_variants(old: str, new: str) -> None:
    assert normalize_name(old) == normalize_name(new)


@pytest.mark.parametrize(("a", "b"), [("斎藤", "斉藤"), ("芸", "藝"), ("予", "豫"), ("亘", "亙")])
def test_normalize_name_keeps_distinct_characters(a: str, b: str) -> None:
    assert normalize_name(a) != normalize_name(b)


def test_kanji_table_is_sound() -> None:
    assert len(KANJI_VARIANTS) >= 100
    for old, new in KANJI_VARIANTS.items():
        assert old != new
        # Keys must survive NFKC (which runs first), and folding must be idempotent.
        assert unicodedata.normalize("NFKC", old) == old
        assert unicodedata.normalize("NFKC", new) == new
        assert new not in KANJI_VARIANTS
    assert KANJI_VARIANTS["齋"] == "斎"
    assert KANJI_VARIANTS["齊"] == "斉"


@given(st.text())
def test_normalize_name_idempotent(s: str) -> None:
    once = normalize_name(s)
    assert normalize_name(once) == once


@pytest.mark.parametrize(
    "variant",
    [
        "東京都新宿区西新宿二丁目8番1号",
        "東京都新宿区西新宿2丁目8番1号",
        "東京都新宿区西新宿２丁目８番１号",
        "東京都 新宿区 西新宿 2-8-1",
        "東京都新宿区西新宿2－8－1",
        "東京都新宿区西新宿2‐8‐1",
        "東京都新宿区西新宿2ー8ー1",
        "東京都新宿区西新宿2丁目8番地1",
        "東京都新宿区西新宿2丁目8番地の1",
        "東京都新宿区西新宿2丁目8の1",
        "東京都新宿区西新宿二丁目八番一号",
        "東京都新宿区西新宿二丁目八番地の一",
    ],
)
def test_normalize_address_variants(variant: str) -> None:
    assert normalize_address(variant) == "東京都新宿区西新宿2-8-1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("港区三田三丁目", "港区三田3"),  # 三田 is a name, not a number
        ("千代田区三番町6", "千代田区3番町6"),  # 番町 is part of the place name
        ("二十三番地の四", "23-4"),
        ("百二番", "102"),
        ("札幌市中央区北一条西二丁目", "札幌市中央区北1条西2"),
        ("1丁目2-3 ABCビル 101号室", "1-2-3ABCビル101号室"),
        ("千代田区霞が関1", "千代田区霞ケ関1"),
        ("千代田区霞ヶ関1", "千代田区霞ケ関1"),
        ("四谷一丁目", "四谷1"),
    ],
)
def test_normalize_address_cases(raw: str, expected: str) -> None:
    assert normalize_address(raw) == expected


@given(st.text())
def test_normalize_address_never_fails_on_text(s: str) -> None:
    normalize_address(s)


@pytest.mark.parametrize(
    ("raw", "code"),
    [("男", "1"), ("女", "2"), ("M", "1"), ("f", "2"), ("1", "1"), ("２", "2"), ("9", "9")],
)
def test_normalize_sex(raw: str, code: str) -> None:
    assert normalize_sex(raw) == code


def test_same_person_key_matches_variants() -> None:
    a = same_person_key("髙橋 惠子", "たかはし けいこ", "1975-12-01", "2", "梅田一丁目1番3号")
    b = same_person_key("高橋恵子", "ﾀｶﾊｼ ｹｲｺ", "１９７５-１２-０１", "女", "梅田1-1-3")
    assert a == b
    assert isinstance(a, PersonKey)
    assert len(a) == 5


def test_same_person_key_differs_on_each_item() -> None:
    base = ("山田太郎", "ヤマダタロウ", "1980-01-02", "1", "新宿区西新宿2-8-1")
    key = same_person_key(*base)
    for i, other in enumerate(["山田次郎", "ヤマダジロウ", "1980-01-03", "2", "新宿区西新宿2-8-2"]):
        changed = list(base)
        changed[i] = other
        assert same_person_key(*changed) != key


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        (("", "", "1980-01-02", "1", "新宿区"), InvalidComponent),
        (("山田", "", "1980-01-02", "1", "  "), InvalidComponent),
        (("山田", "", "1980-02-30", "1", "新宿区"), InvalidComponent),
        (("山田", "", "19800102", "1", "新宿区"), InvalidFormat),
        (("山田", "", "1980-01-02", "X", "新宿区"), InvalidComponent),
        (("山田", None, "1980-01-02", "1", "新宿区"), InvalidFormat),
    ],
)
def test_same_person_key_errors(args: tuple[object, ...], exc: type[ValidationError]) -> None:
    with pytest.raises(exc) as info:
        same_person_key(*args)  # type: ignore[arg-type]
    for value in args:
        if isinstance(value, str) and len(value) > 1:
            assert value not in str(info.value)

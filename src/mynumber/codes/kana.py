"""Normalisation of names, kana readings and addresses for record matching (名寄せ).

Records about one person arrive from many systems that spell the same thing differently:
half-width kana, hiragana for katakana, 旧字体 for 新字体, ２丁目 for 二丁目 for 2-.  The functions
here map such variants to one key so that equal keys mean "written the same way".  They never
decide identity on their own.

Identity is established on the 基本4情報 (four basic items) of the 住民基本台帳: 氏名, 生年月日,
性別 and 住所 (住民基本台帳法 第7条第1号-第3号, 第7号).  :func:`same_person_key` normalises all of
them; records may be linked only when ALL FOUR agree.  Name + birth date alone is NOT enough:
across 125 million residents, different people sharing a common name and a birthday are
expected, not exceptional, and linking them would merge two people's 特定個人情報.
The reading (kana) is carried as an extra check because many source records have none; an
empty reading means "unknown", not "different".

>>> normalize_kana("ﾔﾏﾀﾞ ﾀﾛｰ")
'ヤマダタロ'
>>> normalize_kana("やまだ　たろう") == normalize_kana("ヤマダ タロウ")
True
>>> normalize_name("髙橋　惠子") == normalize_name("高橋 恵子")
True
>>> normalize_address("東京都新宿区西新宿二丁目８番１号")
'東京都新宿区西新宿2-8-1'
>>> key = same_person_key("渡邊 一郞", "わたなべ いちろう", "1980-01-02", "男", "霞が関1丁目2番3号")
>>> key.name, key.kana, key.birth_date, key.sex
('渡辺一郎', 'ワタナベイチロウ', '1980-01-02', '1')
>>> key.address
'霞ケ関1-2-3'
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import NamedTuple

from mynumber.codes.exceptions import InvalidComponent, InvalidFormat

__all__ = [
    "KANJI_VARIANTS",
    "PersonKey",
    "normalize_address",
    "normalize_kana",
    "normalize_name",
    "normalize_sex",
    "same_person_key",
]

# -- kana -------------------------------------------------------------------------------------

# Stand-alone (spacing) voiced marks are mapped to the combining ones *before* NFKC, so that
# "か゛" and "ｶﾞ" compose to "ガ" like "が" does.  NFKC alone turns "゛" into " " + U+3099.
_VOICED_MARKS = str.maketrans(
    {"\u309b": "\u3099", "\uff9e": "\u3099", "\u309c": "\u309a", "\uff9f": "\u309a"}
)
_SMALL_TO_LARGE = str.maketrans(
    "ァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ",
    "アイウエオツヤユヨワカケクシストヌハヒフヘホムラリルレロ",
)
_HIRAGANA_TO_KATAKANA = {cp: cp + 0x60 for cp in range(0x3041, 0x3097)}
_HIRAGANA_TO_KATAKANA.update({0x309D: 0x30FD, 0x309E: 0x30FE})  # ゝゞ -> ヽヾ

# Removed from readings.  Long vowel marks: the same reading is typed as ー, －, ｰ, ―, ‐ or
# nothing at all, and a dash in kana can also be a separator ("スミス-ジョーンズ"); unifying
# would require guessing which, removing them is symmetric and cannot split equal readings.
# The price (ユーキ and ユキ collide) is acceptable because matching needs all four items.
# Separators between given and family names: spaces, ・ and ゠ carry no reading.
_KANA_DROP = str.maketrans(
    dict.fromkeys(
        "ー-‐‑‒–—―−－ｰ﹣"  # long vowel marks and dashes (NFKC already maps ｰ and －)
        "・･゠=",  # name separators
    )
)


def _fold_whitespace(s: str) -> str:
    # str.split() without arguments splits on all Unicode whitespace, including U+3000.
    return "".join(s.split())


def _nfkc_without_spaces(s: str) -> str:
    # NFKC can produce spaces ("´" -> " " + U+0301); once they are removed the combining mark
    # meets a new base character, so normalise again to keep the result in normal form.
    return unicodedata.normalize("NFKC", _fold_whitespace(unicodedata.normalize("NFKC", s)))


def _require_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidFormat(f"{what} must be a string")
    return value


def normalize_kana(s: str) -> str:
    """Normalise a kana reading to full-width, large, katakana without marks or spaces.

    * NFKC: half-width katakana become full-width, with ﾞ/ﾟ composed (ｶﾞ -> ガ)
    * hiragana become katakana, small kana become large (ァ -> ア, ッ -> ツ, ヶ -> ケ)
    * long vowel marks, dashes, spaces and ・ are removed (see ``_KANA_DROP`` for why)

    >>> normalize_kana("ｶﾞｯｺｳ")
    'ガツコウ'
    >>> normalize_kana("か゛っこう")
    'ガツコウ'
    >>> normalize_kana("ジョン・スミス")
    'ジヨンスミス'
    >>> normalize_kana("ゔぁいおりん")
    'ヴアイオリン'
    """
    s = _nfkc_without_spaces(_require_str(s, "kana").translate(_VOICED_MARKS))
    s = s.translate(_HIRAGANA_TO_KATAKANA).translate(_SMALL_TO_LARGE).translate(_KANA_DROP)
    # Compose again: ワ + U+3099 only composes (to ヷ) once わ has become ワ.
    return unicodedata.normalize("NFC", s)


# -- names ------------------------------------------------------------------------------------

# 旧字体/異体字 -> 新字体/通用字体 pairs common in names.  Only pairs that are forms of ONE
# character are listed.  Deliberately absent:
#   * 齋 and 齊 map to 斎 and 斉 respectively, never to each other: 斎藤 and 斉藤 are
#     different characters and different registered surnames.
#   * mergers where the 新字体 was historically a different character: 藝/芸, 豫/予, 餘/余,
#     缺/欠, 辨・辯・瓣/弁, 絲/糸, 臺/台, 蟲/虫, 體/体, 燈/灯.
#   * look-alikes that are distinct characters: 亙/亘, 碕/崎, 斎/斉.
# Compatibility ideographs with canonical decompositions (e.g. U+F9DC 隆 -> 隆) are already
# handled by NFKC and are not listed.
_VARIANT_PAIRS = """
亞亜 惡悪 壓圧 圍囲 醫医 爲為 壹壱 隱隠 榮栄 營営 衞衛 驛駅 圓円 鹽塩 櫻桜 應応 歐欧 奧奥
價価 假仮 畫画 會会 繪絵 擴拡 覺覚 學学 嶽岳 樂楽 卷巻 關関 歡歓 觀観 氣気 歸帰 僞偽 舊旧
據拠 擧挙 峽峡 狹狭 曉暁 區区 驅駆 勳勲 徑径 惠恵 溪渓 經経 繼継 輕軽 鷄鶏 劍剣 圈圏 檢検
權権 縣県 險険 顯顕 驗験 嚴厳 效効 廣広 恆恒 黃黄 國国 黑黒 濟済 齋斎 劑剤 雜雑 參参 棧桟
贊賛 殘残 兒児 實実 寫写 釋釈 壽寿 收収 從従 澁渋 縱縦 肅粛 處処 敍叙 將将 燒焼 稱称 證証
乘乗 條条 淨浄 疊畳 讓譲 觸触 寢寝 愼慎 晉晋 眞真 盡尽 圖図 粹粋 醉酔 隨随 髓髄 數数 樞枢
聲声 靜静 齊斉 攝摂 專専 戰戦 淺浅 潛潜 纖繊 錢銭 禪禅 雙双 壯壮 搜捜 插挿 爭争 總総 莊荘
裝装 騷騒 藏蔵 臟臓 屬属 續続 對対 帶帯 滯滞 瀧滝 擇択 澤沢 單単 擔担 膽胆 團団 彈弾 斷断
遲遅 晝昼 鑄鋳 廳庁 聽聴 鎭鎮 遞逓 鐵鉄 轉転 點点 傳伝 黨党 盜盗 當当 鬪闘 德徳 獨独 讀読
屆届 繩縄 貳弐 腦脳 霸覇 廢廃 拜拝 賣売 麥麦 發発 髮髪 拔抜 蠻蛮 祕秘 濱浜 濵浜 拂払 佛仏
竝並 變変 邊辺 邉辺 寶宝 豐豊 沒没 萬万 滿満 默黙 彌弥 譯訳 藥薬 與与 譽誉 搖揺 樣様 謠謡
來来 賴頼 亂乱 覽覧 龍竜 兩両 獵猟 綠緑 壘塁 勵励 禮礼 靈霊 齡齢 戀恋 爐炉 勞労 樓楼 錄録
灣湾 增増 龜亀 淸清 靑青 郞郎 卽即 旣既 緖緒 巖巌 彥彦 顏顔 凜凛 瀨瀬 槇槙 髙高 﨑崎 嵜崎
冨富 桒桑 栁柳 舘館 嶋島 嶌島 峯峰 𠮷吉
"""

#: Mapping of variant -> standard form used by :func:`normalize_name`.
KANJI_VARIANTS: dict[str, str] = {pair[0]: pair[1] for pair in _VARIANT_PAIRS.split()}
_KANJI_FOLD = str.maketrans(KANJI_VARIANTS)

# Ideographic variation selectors pick a glyph, not a character ("邊󠄄" is still 邊).
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_NAME_DROP = str.maketrans(dict.fromkeys("・･゠"))


def normalize_name(s: str) -> str:
    """Normalise a name written in kanji (or Latin letters) for comparison.

    NFKC, variation selectors and spaces removed, Latin letters upper-cased (the 住民票
    records foreign names in capitals), then variant kanji folded with :data:`KANJI_VARIANTS`.

    >>> normalize_name("齋藤 眞")
    '斎藤真'
    >>> normalize_name("斉藤") == normalize_name("斎藤")
    False
    >>> normalize_name("Smith John")
    'SMITHJOHN'
    """
    s = _VARIATION_SELECTORS.sub("", _require_str(s, "name"))
    s = _nfkc_without_spaces(s).translate(_NAME_DROP).upper()
    # Upper-casing can leave a string that is not NFKC ("ǰ" -> "J" + U+030C), so normalise
    # once more.
    return _nfkc_without_spaces(s).translate(_KANJI_FOLD)


# -- addresses --------------------------------------------------------------------------------

_KANJI_NUM = "〇零一二三四五六七八九十百千"
_KANJI_DIGIT = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0}
_KANJI_UNIT = {"十": 10, "百": 100, "千": 1000}

# A kanji number directly before 丁目/番地/番/号 ("二丁目", "二十三番地"), or before the 条/線/地割
# of Hokkaido and Iwate addresses ("北一条西二丁目").  Converting more than needed is harmless:
# both sides of a comparison are converted the same way, and 一 and 1 mean the same number.
_NUM_BEFORE_MARKER = re.compile(f"([{_KANJI_NUM}]+)(?=丁目|番地|番|号|条|線|地割)")
# A kanji number after a number and a separator, ending the address or before one
# ("8番地一", "8の十二").  Each lookbehind alternative has width 2, as re requires.
_NUM_AFTER_SEPARATOR = re.compile(
    f"(?<=[0-9][のノ\\-番]|丁目|番地|地の|地ノ)([{_KANJI_NUM}]+)(?=$|[\\-のノ号番])"
)
_DASH_BETWEEN_DIGITS = re.compile("(?<=[0-9])[‐‑‒–—―−－ーｰ﹣](?=[0-9])")
# 番町/番丁/番街 are parts of place names (千代田区三番町), not lot numbers; 号室/号棟/号館
# belong to the building part.
_MARKER = re.compile("(?<=[0-9])(?:丁目|番地[のノ]?|番(?![町丁街])|号(?![室棟館]))")
_NO_BETWEEN_DIGITS = re.compile("(?<=[0-9])[のノ](?=[0-9])")
# 霞ヶ関 / 霞ケ関 / 霞が関 / 自由ヵ丘: the connective between two kanji is spelled freely.
_GA_BETWEEN_KANJI = re.compile("(?<=[\u4e00-\u9fff])[ヶヵケが](?=[\u4e00-\u9fff])")


def _kanji_to_int(s: str) -> int:
    if not any(c in _KANJI_UNIT for c in s):
        # Positional: 一〇三 = 103.
        return int("".join(str(_KANJI_DIGIT[c]) for c in s))
    total = current = 0
    for c in s:
        if c in _KANJI_UNIT:
            total += (current or 1) * _KANJI_UNIT[c]
            current = 0
        else:
            current = current * 10 + _KANJI_DIGIT[c]
    return total + current


def _arabic(m: re.Match[str]) -> str:
    return str(_kanji_to_int(m.group(1)))


def normalize_address(s: str) -> str:
    """Normalise an address so that the usual ways of writing the 丁目・番地・号 part agree.

    NFKC, spaces removed, kanji numbers before 丁目/番地/番/号 (and after them, at the end)
    turned into arabic numbers, 丁目/番地/番/号/の between numbers written as "-", and the
    ヶ/ケ/が connective between kanji unified.  This is a matching key, not a parser: it does
    not resolve 住居表示 against 地番 or abbreviated prefectures.

    >>> normalize_address("西新宿2丁目8番地の1") == normalize_address("西新宿二丁目八番一号")
    True
    >>> normalize_address("港区三田三丁目１３－１２")
    '港区三田3-13-12'
    >>> normalize_address("千代田区一番町２３番地")
    '千代田区1番町23'
    """
    s = _nfkc_without_spaces(_require_str(s, "address"))
    s = _NUM_BEFORE_MARKER.sub(_arabic, s)
    # Each pass converts numbers that follow an already converted one; at most len(s) passes.
    while True:
        converted = _NUM_AFTER_SEPARATOR.sub(_arabic, s)
        if converted == s:
            break
        s = converted
    s = _DASH_BETWEEN_DIGITS.sub("-", s)
    s = _MARKER.sub("-", s)
    s = _NO_BETWEEN_DIGITS.sub("-", s)
    s = _GA_BETWEEN_KANJI.sub("ケ", s)
    s = re.sub("-{2,}", "-", s)
    return re.sub("-(?![0-9])", "", s)


# -- the four basic items ---------------------------------------------------------------------

_SEX_CODES = {
    # ISO/IEC 5218: 0 = not known, 1 = male, 2 = female, 9 = not applicable.
    "0": "0", "1": "1", "2": "2", "9": "9",
    "男": "1", "男性": "1", "M": "1", "MALE": "1",
    "女": "2", "女性": "2", "F": "2", "FEMALE": "2",
}  # fmt: skip
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class PersonKey(NamedTuple):
    """Normalised 基本4情報 plus reading.  Link records only if name, birth_date, sex and
    address ALL match; compare ``kana`` only when both sides have one."""

    name: str
    kana: str
    birth_date: str
    sex: str
    address: str


def normalize_sex(sex: str) -> str:
    """Return the ISO/IEC 5218 code ("1" male, "2" female, "0" not known, "9" n/a).

    >>> normalize_sex("女"), normalize_sex("M"), normalize_sex("１")
    ('2', '1', '1')
    """
    key = _fold_whitespace(unicodedata.normalize("NFKC", _require_str(sex, "sex"))).upper()
    try:
        return _SEX_CODES[key]
    except KeyError:
        raise InvalidComponent("sex must be an ISO/IEC 5218 code, 男/女 or M/F") from None


def _normalize_birth_date(birth_date_iso: str) -> str:
    s = _fold_whitespace(unicodedata.normalize("NFKC", _require_str(birth_date_iso, "birth date")))
    # date.fromisoformat alone also accepts "19800102" and week dates; insist on YYYY-MM-DD.
    if not _ISO_DATE.fullmatch(s):
        raise InvalidFormat("birth date must be written as YYYY-MM-DD")
    try:
        return date.fromisoformat(s).isoformat()
    except ValueError:
        raise InvalidComponent("birth date is not a calendar date") from None


def same_person_key(name: str, kana: str, birth_date_iso: str, sex: str, address: str) -> PersonKey:
    """Normalise the four basic items (and the reading) of one record.

    Two records may be treated as the same person only if the ``name``, ``birth_date``,
    ``sex`` and ``address`` fields of their keys are all equal (and ``kana`` too when both
    are non-empty).  Never link on name + birth date alone: see the module docstring.

    Raises :class:`~mynumber.codes.exceptions.ValidationError` subclasses if a required item
    is missing or malformed; messages never include the values.

    >>> a = same_person_key("髙橋 惠子", "たかはし けいこ", "1975-12-01", "2", "梅田一丁目1番3号")
    >>> b = same_person_key("高橋恵子", "ﾀｶﾊｼ ｹｲｺ", "1975-12-01", "女", "梅田1-1-3")
    >>> a == b
    True
    """
    key = PersonKey(
        name=normalize_name(name),
        kana=normalize_kana(kana),
        birth_date=_normalize_birth_date(birth_date_iso),
        sex=normalize_sex(sex),
        address=normalize_address(address),
    )
    if not key.name:
        raise InvalidComponent("name is required")
    if not key.address:
        raise InvalidComponent("address is required")
    return key

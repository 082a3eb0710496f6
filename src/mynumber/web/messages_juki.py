"""UI strings of 住基ネット's pages: 本人確認情報の提供状況の開示 (Japanese first, English)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "juki.disclosure.title": {
        "ja": "本人確認情報の提供状況",
        "en": "Who obtained your identity information",
    },
    "juki.nav": {"ja": "本人確認情報の提供状況", "en": "Identity information disclosure"},
    "juki.disclosure.link": {
        "ja": "本人確認情報の提供状況（住基ネット）",
        "en": "Identity information provided by the resident registry network",
    },
    "juki.disclosure.lead": {
        "ja": (
            "住民基本台帳ネットワークシステム（住基ネット）に、あなたの本人確認情報（氏名・住所・"
            "生年月日・性別・住民票コードと異動の情報）を照会した機関と日時の記録です。"
            "複数の人が該当して提供されなかった照会や、認められずに拒否された照会も表示します。"
        ),
        "en": (
            "The agencies that asked the resident registry network (Juki-net) for your identity "
            "information (name, address, birth date, sex, resident record code and the latest "
            "change), and when. Queries that matched several people and were therefore not "
            "answered, and refused queries, are listed too."
        ),
    },
    "juki.disclosure.mine": {"ja": "住基ネットが保有するあなたの本人確認情報",
                             "en": "Your identity information as Juki-net holds it"},
    "juki.disclosure.none": {
        "ja": "あなたの本人確認情報を照会した記録はありません。",
        "en": "No agency has asked for your identity information.",
    },
    "juki.disclosure.not_copied": {
        "ja": "住基ネットにはまだあなたの本人確認情報が登録されていません。",
        "en": "Juki-net does not hold your identity information yet.",
    },
    "juki.disclosure.at": {"ja": "日時", "en": "Date and time"},
    "juki.disclosure.agency": {"ja": "照会した機関", "en": "Agency"},
    "juki.disclosure.purpose": {"ja": "事務", "en": "Purpose"},
    "juki.disclosure.how": {"ja": "照会の方法", "en": "How it asked"},
    "juki.disclosure.result": {"ja": "結果", "en": "Result"},
    "juki.disclosure.purpose_unknown": {
        "ja": "（認められていない事務）", "en": "(a purpose that is not permitted)",
    },
    "juki.kind.by_code": {"ja": "住民票コード", "en": "By resident record code"},
    "juki.kind.search": {"ja": "基本4情報による検索", "en": "Search on the four basic items"},
    "juki.outcome.answered": {"ja": "提供しました", "en": "Provided"},
    "juki.outcome.not_found": {"ja": "該当なし（提供なし）", "en": "No match (nothing provided)"},
    "juki.outcome.ambiguous": {
        "ja": "複数の人が該当したため提供しませんでした",
        "en": "Several people matched: nothing provided",
    },
    "juki.outcome.refused": {"ja": "拒否しました（提供なし）", "en": "Refused (nothing provided)"},
    "juki.item.name": {"ja": "氏名", "en": "Name"},
    "juki.item.name_kana": {"ja": "ふりがな", "en": "Reading"},
    "juki.item.birth_date": {"ja": "生年月日", "en": "Date of birth"},
    "juki.item.sex": {"ja": "性別", "en": "Sex"},
    "juki.item.address": {"ja": "住所", "en": "Address"},
    "juki.item.resident_code": {"ja": "住民票コード", "en": "Resident record code"},
    "juki.item.latest_change": {"ja": "最新の異動", "en": "Latest change"},
    "juki.sex.male": {"ja": "男", "en": "Male"},
    "juki.sex.female": {"ja": "女", "en": "Female"},
    "juki.change.birth": {"ja": "出生", "en": "Birth"},
    "juki.change.move_in": {"ja": "転入", "en": "Moved in"},
    "juki.change.move_out": {"ja": "転出", "en": "Moved out"},
    "juki.change.address_change": {"ja": "転居", "en": "Address change"},
    "juki.change.name_change": {"ja": "氏名の変更", "en": "Name change"},
    "juki.change.death": {"ja": "死亡", "en": "Death"},
    "juki.change.correction": {"ja": "職権修正", "en": "Correction"},
    "juki.change.number_reissue": {"ja": "個人番号の変更", "en": "New individual number"},
    "juki.change.import": {"ja": "移行", "en": "Migrated"},
    "juki.error.juki_disclosure_unavailable": {
        "ja": "この画面はご本人のカードでログインしたときだけ表示できます",
        "en": "This page is shown only when you logged in with your own card",
    },
}

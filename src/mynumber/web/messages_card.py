"""UI strings of the card counter's certificate life (card/views.py): new certificates, lifting
a suspension, reissue, smartphone certificates, the free area, a card's status."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "card.form.status": {"ja": "カードの照会", "en": "Look up a card"},
    "card.form.certificates": {
        "ja": "電子証明書の発行・更新", "en": "New certificates on a card",
    },
    "card.form.lift-suspension": {"ja": "一時利用停止の解除", "en": "Lift a suspension"},
    "card.form.reissue": {"ja": "カードの再交付", "en": "Reissue a card"},
    "card.form.smartphone-revoke": {
        "ja": "スマホ用電子証明書の失効", "en": "Revoke smartphone certificates",
    },
    "card.form.free-area": {"ja": "空き領域の利用登録", "en": "Write a free-area application"},
    "card.lead.status": {
        "ja": "カードの状態、電子証明書の有効期限と更新開始日を表示します。",
        "en": "Shows the card's state, its certificates' expiry and when renewal opens.",
    },
    "card.lead.certificates": {
        "ja": (
            "転居・氏名変更の後、15歳になったとき、有効期限の3か月前から、有効なカードに新しい"
            "電子証明書を発行します。本人確認の後、新しい証明書の暗証番号を本人が設定します。"
        ),
        "en": (
            "After a move or a name change, at 15, or from 3 months before the certificates "
            "expire: new certificates on a valid card. After identity verification the holder "
            "sets the PIN of each new certificate."
        ),
    },
    "card.lead.lift-suspension": {
        "ja": (
            "紛失届の後に見つかったカードを、本人確認の後に再び使えるようにします。失効した"
            "電子証明書は新たに発行し、暗証番号を本人が設定します。"
        ),
        "en": (
            "A card found after a loss report works again only after identity verification: "
            "the revoked certificates are issued anew with PINs the holder sets."
        ),
    },
    "card.lead.reissue": {
        "ja": "紛失・破損したカードに代わる新しいカードを交付します。旧カードは廃止されます。",
        "en": "Issues a new card in place of a lost or damaged one; the old card is revoked.",
    },
    "card.lead.smartphone-revoke": {
        "ja": "スマートフォンの電子証明書だけを失効させます。カードの電子証明書は有効なままです。",
        "en": "Revokes only the smartphone's certificates; the card's stay valid.",
    },
    "card.lead.free-area": {
        "ja": (
            "印鑑登録証と証明書自動交付機の利用は住所地の市区町村だけが、図書館利用カードは"
            "どの市区町村も書き込めます。"
        ),
        "en": (
            "Only the holder's own municipality writes the seal registration and kiosk "
            "applications; any municipality may write a library card."
        ),
    },
    "card.state.active": {"ja": "有効", "en": "Active"},
    "card.state.suspended": {"ja": "一時利用停止中", "en": "Suspended"},
    "card.state.revoked": {"ja": "廃止 (更新・再交付済み)", "en": "Revoked (replaced)"},
    "card.state.expired": {"ja": "有効期限切れ", "en": "Expired"},
    "card.state.ended": {"ja": "失効 (死亡)", "en": "Ended (the holder died)"},
    "card.cert.good": {"ja": "有効", "en": "Valid"},
    "card.cert.revoked": {"ja": "失効", "en": "Revoked"},
    "card.cert.expired": {"ja": "有効期限切れ", "en": "Expired"},
    "card.cert.none": {"ja": "なし", "en": "None"},
    "card.cert.issued": {"ja": "発行しました", "en": "Issued"},
    "card.value.none": {"ja": "なし", "en": "None"},
    "card.app.seal_registration": {"ja": "印鑑登録証", "en": "Seal registration card"},
    "card.app.library_card": {"ja": "図書館利用カード", "en": "Library card"},
    "card.app.certificate_kiosk": {
        "ja": "証明書自動交付機の利用", "en": "Certificate kiosk use",
    },
    "card.lost.device": {"ja": "紛失したもの", "en": "What was lost"},
    "card.lost.device.card": {"ja": "マイナンバーカード", "en": "The card"},
    "card.lost.device.smartphone": {
        "ja": "スマートフォン (スマホ用電子証明書)", "en": "The smartphone (its certificates)",
    },
    "card.lost.done_smartphone": {
        "ja": "スマホ用電子証明書を失効させました。カードはそのまま使えます",
        "en": "The smartphone's certificates are revoked; the card stays valid",
    },
    "field.replaced_by": {"ja": "新しいカード", "en": "Replaced by"},
    "field.replaced_card": {"ja": "旧カード", "en": "Replaced card"},
    "field.signing_certificate": {"ja": "署名用電子証明書", "en": "Signing certificate"},
    "field.auth_certificate": {"ja": "利用者証明用電子証明書", "en": "Authentication certificate"},
    "field.signing_not_after": {"ja": "署名用の有効期限", "en": "Signing certificate valid until"},
    "field.auth_not_after": {"ja": "利用者証明用の有効期限", "en": "Authentication valid until"},
    "field.signing_renewal_opens_on": {
        "ja": "署名用の更新開始日", "en": "Signing certificate renewal opens",
    },
    "field.auth_renewal_opens_on": {
        "ja": "利用者証明用の更新開始日", "en": "Authentication renewal opens",
    },
    "field.smartphones": {"ja": "有効なスマホ用電子証明書", "en": "Active smartphone credentials"},
    "field.free_area": {"ja": "空き領域", "en": "Free area"},
    "field.serial_links": {"ja": "新旧シリアル番号の紐付け", "en": "Serials linked"},
    "field.revoked_certificates": {"ja": "失効させた証明書", "en": "Certificates revoked"},
    "field.app_id": {"ja": "アプリケーション", "en": "Application"},
    "field.issuer": {"ja": "書き込んだ市区町村", "en": "Written by (municipality)"},
    "hint.user_auth_pin": {
        "ja": "新しく発行する証明書の暗証番号だけが必要です。",
        "en": "Only the PINs of the certificates issued anew are needed.",
    },
    "error.renewal_not_open": {
        "ja": "まだ更新できません (更新開始日を確かめてください)",
        "en": "Nothing to renew yet (check when renewal opens)",
    },
    "error.free_area_refused": {
        "ja": "このアプリケーションは書き込めません", "en": "You may not write this application",
    },
}

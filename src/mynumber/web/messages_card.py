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
    # The resident's loss page (/card/lost): the card named as the call centre names it.
    "card.lost.intro": {
        "ja": (
            "24時間受け付けます。カードに記載されている氏名のフリガナ、生年月日と住所を入力して"
            "ください。住所の代わりに、カード裏面の個人番号でも確認できます。入力した内容のすべて"
            "に一致するカードだけを一時利用停止にします。"
        ),
        "en": (
            "Open 24 hours. Enter the name in kana, the date of birth and the address as "
            "printed on the card; instead of the address you may enter the individual number "
            "from the back of the card. Only a card that matches everything you enter is "
            "suspended."
        ),
    },
    "card.lost.field.name_kana": {"ja": "氏名（フリガナ）", "en": "Name (in kana)"},
    "card.lost.field.birth_date": {"ja": "生年月日", "en": "Date of birth"},
    "card.lost.field.address": {
        "ja": "住所（カードの表面に記載のとおり）", "en": "Address (as on the front of the card)",
    },
    "card.lost.field.individual_number": {
        "ja": "個人番号（12桁、住所の代わりに）",
        "en": "Individual number (12 digits, instead of the address)",
    },
    "card.lost.which": {
        "ja": "住所または個人番号", "en": "The address or the individual number",
    },
    "card.lost.either": {
        "ja": (
            "どちらか一方を入力してください。両方を入力したときは、両方が一致する必要があります。"
        ),
        "en": "Enter one of the two. If you enter both, both must match.",
    },
    "card.lost.hint.name_kana": {
        "ja": "例: ヤマダ タロウ（ひらがなでも入力できます）",
        "en": "E.g. ヤマダ タロウ (katakana or hiragana)",
    },
    "card.lost.hint.address": {
        "ja": (
            "都道府県から、マンション名・部屋番号まで。丁目・番地・号は「1-2-3」のようにも入力"
            "できます。"
        ),
        "en": (
            "From the prefecture to the building and room number. 丁目・番地・号 may be written "
            "as 1-2-3."
        ),
    },
    "card.lost.hint.individual_number": {
        "ja": "カード裏面の12桁の番号です。入力した番号は画面に再表示せず、記録にも残しません。",
        "en": (
            "The 12 digits on the back of the card. The number is never shown again and never "
            "written to any log."
        ),
    },
    "card.lost.error.loss_report_not_matched": {
        "ja": (
            "一時利用停止できるカードを確認できませんでした。フリガナ・生年月日・住所（または"
            "個人番号）をカードの記載と見比べて、もう一度入力してください"
        ),
        "en": (
            "We could not confirm a card to suspend. Compare the kana name, the date of birth "
            "and the address (or the individual number) with the card and try again"
        ),
    },
    "card.lost.error.invalid_input.name_kana": {
        "ja": "氏名のフリガナをカタカナかひらがなで入力してください",
        "en": "Enter the name in kana (katakana or hiragana)",
    },
    "card.lost.error.invalid_input.birth_date": {
        "ja": "生年月日を入力してください", "en": "Enter the date of birth",
    },
    "card.lost.error.invalid_input.address": {
        "ja": "住所か個人番号のどちらかを入力してください（住所は200文字まで）",
        "en": "Enter the address or the individual number (an address has up to 200 "
              "characters)",
    },
    "card.lost.error.invalid_input.individual_number": {
        "ja": "個人番号は12桁の数字です。カード裏面の番号を確かめてください",
        "en": "The individual number has 12 digits: check the number on the back of the card",
    },
    "card.lost.received": {"ja": "届出を受け付けました", "en": "Your report has been received"},
    "card.lost.reference": {"ja": "受付番号", "en": "Reference number"},
    "card.lost.reference_hint": {
        "ja": (
            "受付番号を控えてください。警察への届出や市区町村の窓口での手続きのときに伝えて"
            "ください。"
        ),
        "en": (
            "Write the reference number down and give it when you report to the police and at "
            "the municipal counter."
        ),
    },
    "card.lost.next": {"ja": "このあとの手続き", "en": "What to do next"},
    "card.lost.next.police": {
        "ja": (
            "警察（交番・警察署）に遺失届を出してください（盗まれた場合は被害届）。届出の受理番号"
            "は、カードの再交付を申請するときに必要です。"
        ),
        "en": (
            "Report the loss to the police (a kōban or police station; report a theft as "
            "such). You need the police report's acceptance number (受理番号) to apply for a "
            "new card."
        ),
    },
    "card.lost.next.found": {
        "ja": (
            "カードが見つかったときは、カードを持って住所地の市区町村の窓口で一時利用停止の解除を"
            "申請してください。本人確認が必要です。電子証明書は新しく発行されます。"
        ),
        "en": (
            "If you find the card, take it to the counter of the municipality where you live "
            "and ask for the suspension to be lifted. Your identity is checked; new "
            "certificates are issued on the card."
        ),
    },
    "card.lost.next.reissue": {
        "ja": (
            "見つからないときは、住所地の市区町村の窓口でカードの再交付を申請してください。"
            "遺失届の受理番号と本人確認書類を持参してください。"
        ),
        "en": (
            "If the card stays lost, apply for a new card (再交付) at the counter of the "
            "municipality where you live. Bring the police report's acceptance number and an "
            "identity document."
        ),
    },
    "card.lost.next.phone_police": {
        "ja": (
            "スマートフォンが盗まれたときや見つからないときは、警察に遺失届（盗難の場合は"
            "被害届）を出してください。"
        ),
        "en": "If the smartphone was stolen or stays lost, report it to the police.",
    },
    "card.lost.next.phone_new": {
        "ja": (
            "マイナンバーカードはそのまま使えます。新しいスマートフォンでは、カードを使ってスマホ用"
            "電子証明書を改めて申し込めます。"
        ),
        "en": (
            "Your card stays valid. On a new smartphone you can apply for smartphone "
            "certificates again with the card."
        ),
    },
    "card.lost.next.card_too": {
        "ja": (
            "カードも一緒になくしたときは、この届出をもう一度、「マイナンバーカード」を選んで"
            "出してください。"
        ),
        "en": "If the card is lost too, report again and choose \"The card\".",
    },
    "card.lost.link.portal": {"ja": "マイナポータルへ", "en": "Go to Mynaportal"},
    "card.lost.link.again": {"ja": "別の届出をする", "en": "Make another report"},
    "card.lost.link.home": {"ja": "トップページへ", "en": "Back to the home page"},
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

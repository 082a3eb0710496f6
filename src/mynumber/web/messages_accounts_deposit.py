"""UI strings of the resident's 預貯金口座付番 pages (web/accounts_deposit.py): the consent to
link one's accounts at chosen banks to one's number, the free look-up after a declared
disaster, and the list of 預金保険機構's look-ups concerning the resident."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "deposit.nav": {"ja": "預貯金口座への付番", "en": "Link bank accounts to my number"},
    "deposit.title": {"ja": "預貯金口座へのマイナンバーの付番",
                      "en": "Linking your bank accounts to your My Number"},
    "deposit.lead": {
        "ja": (
            "選んだ金融機関にあるあなたの預貯金口座を、あなたのマイナンバーと結び付けるよう"
            "申し出ることができます。マイナンバーは暗号化して金融機関にだけ届けられます。"
            "付番された口座は、相続のときや災害のときに、預金保険機構を通じて"
            "どの金融機関に口座があるかを確かめるのに使われます。"
        ),
        "en": (
            "You can ask that your accounts at the banks you choose be linked to your My "
            "Number. Your number is sent encrypted, readable by that bank only. Linked accounts "
            "let the Deposit Insurance Corporation of Japan tell your heirs, or you after a "
            "disaster, which banks hold your accounts."
        ),
    },
    "deposit.requested": {"ja": "申し出た金融機関", "en": "Banks you asked"},
    "deposit.requested_at": {"ja": "申出日時", "en": "Asked at"},
    "deposit.delivery": {"ja": "金融機関への通知", "en": "Sent to the bank"},
    "deposit.delivery.pending": {"ja": "準備中", "en": "Being prepared"},
    "deposit.delivery.sealed": {"ja": "金融機関の受取待ち", "en": "Waiting for the bank"},
    "deposit.delivery.delivered": {"ja": "通知済み", "en": "Received by the bank"},
    "deposit.none": {"ja": "まだ申し出ていません。", "en": "You have not asked any bank yet."},
    "deposit.form.title": {"ja": "付番を申し出る", "en": "Ask for linking"},
    "deposit.form.lead": {
        "ja": "付番を申し出る金融機関を選び、マイナンバーカードで本人確認をしてください。",
        "en": "Choose the banks, then confirm with your My Number Card.",
    },
    "deposit.form.once": {
        "ja": "申出は金融機関ごとに1回です。申し出た後は取り消せません。",
        "en": "You ask each bank once; a request cannot be withdrawn here.",
    },
    "deposit.field.bank_codes": {"ja": "金融機関", "en": "Banks"},
    "deposit.submit": {"ja": "付番を申し出る", "en": "Ask for linking"},
    "deposit.all_requested": {
        "ja": "すべての金融機関に申し出ています。",
        "en": "You have asked every bank.",
    },
    "deposit.done.requested": {
        "ja": "付番の申出を受け付けました。",
        "en": "Your request was received.",
    },
    # 災害時の照会
    "deposit.disaster.title": {"ja": "災害時の口座照会（無料）",
                               "en": "Finding your accounts after a disaster (free)"},
    "deposit.disaster.lead": {
        "ja": (
            "災害救助法が適用された市区町村にお住まいの方は、適用期間中、"
            "マイナンバーが付番された口座がある金融機関を預金保険機構に無料で照会できます。"
        ),
        "en": (
            "If you live in a municipality under the Disaster Relief Act, you can ask the "
            "Deposit Insurance Corporation of Japan, free of charge during the declared period, "
            "which banks hold accounts linked to your number."
        ),
    },
    "deposit.disaster.submit": {"ja": "照会する", "en": "Ask"},
    "deposit.disaster.banks": {
        "ja": "次の金融機関に、マイナンバーが付番された口座があります。",
        "en": "These banks hold accounts linked to your number:",
    },
    "deposit.disaster.no_banks": {
        "ja": "マイナンバーが付番された口座のある金融機関はありません。",
        "en": "No bank holds an account linked to your number.",
    },
    "deposit.disaster.free": {"ja": "この照会は無料です。", "en": "This look-up is free."},
    # 照会の記録
    "deposit.lookups.title": {"ja": "預金保険機構による照会の記録",
                              "en": "Look-ups by the Deposit Insurance Corporation"},
    "deposit.lookups.lead": {
        "ja": (
            "あなたに関する照会と、あなたが相続人として行った照会の記録です。"
            "お断りした照会も記録されます。"
        ),
        "en": (
            "Look-ups about you, and those you made as an heir. Refused look-ups are recorded "
            "too."
        ),
    },
    "deposit.lookups.at": {"ja": "日時", "en": "When"},
    "deposit.lookups.kind": {"ja": "照会の種類", "en": "Kind"},
    "deposit.lookups.outcome": {"ja": "結果", "en": "Outcome"},
    "deposit.lookups.banks": {"ja": "回答した金融機関", "en": "Banks answered"},
    "deposit.lookups.fee": {"ja": "手数料", "en": "Fee"},
    "deposit.lookups.none": {"ja": "照会の記録はありません。", "en": "No look-ups."},
    "deposit.lookups.no_banks": {"ja": "該当なし", "en": "None"},
    "deposit.kind.inheritance.heir": {
        "ja": "相続時の照会（あなたが相続人として）",
        "en": "Inheritance (you, as an heir)",
    },
    "deposit.kind.inheritance.self": {
        "ja": "相続時の照会（あなたについて）",
        "en": "Inheritance (about you)",
    },
    "deposit.kind.disaster.heir": {"ja": "災害時の照会", "en": "After a disaster"},
    "deposit.kind.disaster.self": {"ja": "災害時の照会", "en": "After a disaster"},
    "deposit.outcome.answered": {"ja": "回答しました", "en": "Answered"},
    "deposit.outcome.refused": {"ja": "お断りしました", "en": "Refused"},
    "deposit.yen": {"ja": "円", "en": " yen"},
    "deposit.free": {"ja": "無料", "en": "Free"},
    # Error headlines (kernel error_box: "deposit.error.<code>").
    "deposit.error.accounts_deposit_numbering_already_requested": {
        "ja": (
            "選んだ金融機関への付番の申出は、すでに受け付けています。個人番号は暗号化して"
            "金融機関に届けます（申出は金融機関ごとに1回です）"
        ),
        "en": (
            "Your request to one of these banks is already recorded: the number will be "
            "delivered to the bank sealed (once per bank)"
        ),
    },
    "deposit.error.accounts_unknown_bank": {
        "ja": "金融機関を選んでください",
        "en": "Choose at least one bank",
    },
    "deposit.error.accounts_no_disaster_declaration": {
        "ja": (
            "お住まいの市区町村には、現在、災害救助法が適用されていないため、"
            "無料の照会はご利用になれません"
        ),
        "en": "No Disaster Relief Act declaration covers your municipality today",
    },
    "deposit.error.accounts_route_not_permitted": {
        "ja": "この手続はマイナポータルか金融機関の窓口で、カードを使って申し出てください",
        "en": "Ask through the portal or at a bank, with your card",
    },
    "deposit.error.accounts_for_self_only": {
        "ja": "この手続はご本人だけが行えます",
        "en": "Only the person themselves can do this",
    },
    "deposit.error.accounts_registrant_unavailable": {
        "ja": "住民記録が見つかりません",
        "en": "No current resident record",
    },
}

"""UI strings of the resident's 公金受取口座 pages (web/accounts_portal.py): the registration,
the register/change form bound to a fresh card authentication, deletion, the holder-name
check's reasons."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "accounts.nav": {"ja": "公金受取口座", "en": "Public-fund account"},
    "accounts.title": {"ja": "公金受取口座", "en": "Public-fund receiving account"},
    "accounts.lead": {
        "ja": (
            "給付金などを国や自治体から受け取るための口座を、1人1口座登録できます。"
            "登録できるのはご本人名義の口座だけです。"
        ),
        "en": (
            "Register one account in which to receive benefits from the state and your "
            "municipality. Only an account in your own name can be registered."
        ),
    },
    "accounts.none": {
        "ja": "公金受取口座は登録されていません。",
        "en": "No public-fund account is registered.",
    },
    "accounts.registered": {"ja": "登録中の口座", "en": "Registered account"},
    "accounts.bank": {"ja": "金融機関", "en": "Bank"},
    "accounts.branch": {"ja": "支店", "en": "Branch"},
    "accounts.deposit_type": {"ja": "預金種目", "en": "Deposit type"},
    "accounts.account_number": {"ja": "口座番号", "en": "Account number"},
    "accounts.holder_name": {"ja": "口座名義", "en": "Account holder"},
    "accounts.route": {"ja": "登録経路", "en": "Registered through"},
    "accounts.updated_at": {"ja": "登録・変更日時", "en": "Registered or changed at"},
    "accounts.name_check": {"ja": "名義の確認", "en": "Name check"},
    "accounts.name_check.ok": {
        "ja": "口座名義とフリガナは一致しています。",
        "en": "The account holder name matches your name.",
    },
    "accounts.name_check.recheck": {
        "ja": (
            "要確認：氏名の変更などで、口座名義が現在のフリガナと一致しなくなりました。"
            "このままでは給付金を受け取れないおそれがあります。金融機関で口座名義を変更するか、"
            "ご本人名義の口座に変更してください。"
        ),
        "en": (
            "Needs checking: after a change of your name the account holder name no longer "
            "matches your name. Benefits may not be paid into it. Have your bank change the "
            "account name, or change to an account in your current name."
        ),
    },
    "accounts.route.portal": {"ja": "マイナポータル", "en": "Mynaportal"},
    "accounts.route.bank": {"ja": "金融機関の窓口・アプリ", "en": "Bank counter or app"},
    "accounts.route.tax_return": {"ja": "確定申告", "en": "Income-tax return"},
    "accounts.route.pension": {
        "ja": "年金受給者の特例（日本年金機構）", "en": "Pension recipients' special case",
    },
    "accounts.deposit.ordinary": {"ja": "普通", "en": "Ordinary"},
    "accounts.deposit.current": {"ja": "当座", "en": "Current"},
    "accounts.deposit.savings": {"ja": "貯蓄", "en": "Savings"},
    "accounts.form.register": {"ja": "口座を登録する", "en": "Register an account"},
    "accounts.form.change": {"ja": "口座を変更する", "en": "Change the account"},
    "accounts.form.lead": {
        "ja": (
            "口座名義は通帳やキャッシュカードに書かれているとおりにカタカナで入力してください。"
            "登録・変更のたびに、ご本人のマイナンバーカードで認証します（共用端末で前の方の"
            "画面が残っていても、その方の口座は登録できません）。"
        ),
        "en": (
            "Type the holder name in katakana as your passbook or cash card shows it. Every "
            "registration or change is confirmed with your own My Number Card (a screen left "
            "open on a shared terminal cannot register for anyone else)."
        ),
    },
    "accounts.field.bank_code": {"ja": "金融機関コード（4桁）", "en": "Bank code (4 digits)"},
    "accounts.field.branch_code": {"ja": "支店番号（3桁）", "en": "Branch code (3 digits)"},
    "accounts.field.deposit_type": {"ja": "預金種目", "en": "Deposit type"},
    "accounts.field.account_number": {
        "ja": "口座番号（7桁）", "en": "Account number (7 digits)",
    },
    "accounts.field.holder_name": {"ja": "口座名義（カナ）", "en": "Holder name (kana)"},
    "accounts.field.card_id": {"ja": "カード", "en": "Card"},
    "accounts.field.pin": {
        "ja": "利用者証明用電子証明書の暗証番号（4桁）",
        "en": "User-authentication PIN (4 digits)",
    },
    "accounts.field.challenge_id": {"ja": "カード認証", "en": "Card authentication"},
    "accounts.field.signature": {"ja": "署名", "en": "Signature"},
    "accounts.field.certificate": {"ja": "利用者証明用電子証明書", "en": "Certificate"},
    "accounts.field.resident_id": {"ja": "登録者", "en": "Registrant"},
    "accounts.hint.account_number": {
        "ja": "7桁に満たない番号は左に0を付けてください（例：0012345）。",
        "en": "Pad a shorter number with zeros on the left (e.g. 0012345).",
    },
    "accounts.hint.holder_name": {"ja": "例：ヤマダ タロウ", "en": "e.g. ヤマダ タロウ"},
    "accounts.card.title": {"ja": "マイナンバーカードで認証", "en": "Confirm with your card"},
    "accounts.card.lead": {
        "ja": "カードを読み取り、利用者証明用電子証明書の暗証番号（4桁）を入力してください。",
        "en": "Place your card on the reader and enter its 4-digit user-authentication PIN.",
    },
    "accounts.card.cli": {
        "ja": "カードリーダーがない場合：次のコマンドの署名と証明書を貼り付けてください。",
        "en": "Without the reader: paste the signature and certificate from this command.",
    },
    "accounts.card.no_reader": {
        "ja": "この画面ではカードリーダーを使えません。署名と証明書を貼り付けてください。",
        "en": "No card reader here: paste the signature and the certificate.",
    },
    "accounts.submit.register": {"ja": "認証して登録", "en": "Confirm and register"},
    "accounts.submit.change": {"ja": "認証して変更", "en": "Confirm and change"},
    "accounts.delete": {"ja": "登録を削除する", "en": "Delete the registration"},
    "accounts.delete.title": {
        "ja": "公金受取口座の登録の削除", "en": "Delete the public-fund account",
    },
    "accounts.delete.confirm": {
        "ja": (
            "この口座の登録を削除します。削除すると、給付金の振込先として使えなくなります。"
            "よろしければカードで認証してください。"
        ),
        "en": (
            "The registration of this account will be deleted: benefits can no longer be paid "
            "into it. Confirm with your card to delete it."
        ),
    },
    "accounts.delete.submit": {"ja": "認証して削除", "en": "Confirm and delete"},
    "accounts.delete.cancel": {"ja": "削除しないで戻る", "en": "Keep it and go back"},
    "accounts.done.registered": {
        "ja": "公金受取口座を登録しました。", "en": "The public-fund account is registered.",
    },
    "accounts.done.changed": {
        "ja": "公金受取口座を変更しました。", "en": "The public-fund account is changed.",
    },
    "accounts.done.deleted": {
        "ja": "公金受取口座の登録を削除しました。",
        "en": "The public-fund account registration is deleted.",
    },
    "accounts.proxy_only_self": {
        "ja": (
            "公金受取口座はご本人だけが登録・変更できます。代理人としての操作を終えてから"
            "ご利用ください。"
        ),
        "en": (
            "Only the person themselves can register a public-fund account: switch back to "
            "yourself first."
        ),
    },
    "accounts.names.bank": {"ja": "口座名義", "en": "Account holder name"},
    "accounts.names.yours": {"ja": "あなたのフリガナ", "en": "Your name (kana)"},
    "accounts.back": {"ja": "公金受取口座に戻る", "en": "Back to the public-fund account"},
    # The holder-name check (docs-accounts.md section 3); {characters} is filled in.
    "accounts.holder_name.match": {
        "ja": "口座名義とフリガナが一致しました。",
        "en": "The account holder name matches your name.",
    },
    "accounts.holder_name.given_name_differs": {
        "ja": (
            "名が違います。口座名義の名がフリガナと一致しません。ご家族など、ご本人以外の名義の"
            "口座は登録できません。"
        ),
        "en": (
            "The given name differs. Only an account in your own name can be registered, not "
            "one of a family member."
        ),
    },
    "accounts.holder_name.family_name_differs": {
        "ja": (
            "姓が違います。結婚などで姓が変わった場合は、金融機関で口座名義の変更をしてから"
            "登録してください。"
        ),
        "en": (
            "The family name differs. If your family name has changed, ask your bank to "
            "change the account name first."
        ),
    },
    "accounts.holder_name.order_differs": {
        "ja": (
            "姓と名の順序が違います。口座名義の姓と名が入れ替わっていないか、"
            "金融機関にご確認ください。"
        ),
        "en": (
            "Family and given name are in a different order. Please check the account name "
            "with your bank."
        ),
    },
    "accounts.holder_name.different_person": {
        "ja": "口座名義が別の方です。ご本人名義の口座だけを登録できます。",
        "en": (
            "The account belongs to someone else. Only an account in your own name can be "
            "registered."
        ),
    },
    "accounts.holder_name.not_zengin": {
        "ja": (
            "口座名義に使えない文字が含まれています（{characters}）。"
            "カタカナで入力してください。"
        ),
        "en": (
            "The name contains characters that banks do not accept ({characters}). Please use "
            "katakana."
        ),
    },
    "accounts.holder_name.not_comparable": {
        "ja": (
            "登録されているフリガナと照合できません。お住まいの市区町村でフリガナをご確認ください。"
        ),
        "en": (
            "Your registered name reading cannot be compared. Please check it with your "
            "municipality."
        ),
    },
    # Error headlines (kernel error_box: "accounts.error.<code>").
    "accounts.error.accounts_holder_name_mismatch": {
        "ja": "ご本人名義の口座ではありません", "en": "The account is not in your name",
    },
    "accounts.error.accounts_unknown_branch": {
        "ja": "金融機関コードまたは支店番号が見つかりません",
        "en": "No such bank or branch",
    },
    "accounts.error.accounts_card_authentication_required": {
        "ja": "マイナンバーカードでの認証が必要です",
        "en": "Confirm with your My Number Card",
    },
    "accounts.error.accounts_card_authentication_other_person": {
        "ja": "ログインしている方ご本人のカードではありません。ご本人のカードで認証してください",
        "en": "The card is not that of the person logged in: use your own card",
    },
    "accounts.error.accounts_card_authentication_stale": {
        "ja": "カードでの認証から時間がたちました。もう一度認証してください",
        "en": "The card authentication is too old: confirm again",
    },
    "accounts.error.accounts_card_authentication_used": {
        "ja": "このカード認証は使用済みです。もう一度認証してください",
        "en": "This card authentication was already used: confirm again",
    },
    "accounts.error.accounts_already_registered": {
        "ja": "公金受取口座はすでに登録されています（変更してください）",
        "en": "An account is already registered (change it instead)",
    },
    "accounts.error.accounts_not_registered": {
        "ja": "公金受取口座は登録されていません",
        "en": "No public-fund account is registered",
    },
    "accounts.error.accounts_for_self_only": {
        "ja": "公金受取口座はご本人だけが登録・変更できます",
        "en": "Only the person themselves can register a public-fund account",
    },
    "accounts.error.portal_login_failed": {
        "ja": "カードでの認証ができませんでした。もう一度認証してください",
        "en": "The card authentication failed: please try again",
    },
    # 年金受給者の特例: the pending proposal and the 不同意 (web/accounts_portal.py).
    "accounts.proposal.title": {
        "ja": "日本年金機構からの公金受取口座の登録のお知らせ",
        "en": "Japan Pension Service proposes your public-fund account",
    },
    "accounts.proposal.lead": {
        "ja": (
            "日本年金機構から、年金を受け取っている口座を公金受取口座として登録するお知らせが"
            "届いています。登録を希望しない場合は、期限までに「不同意」をしてください。期限までに"
            "不同意がなければ、この口座が登録されます。"
        ),
        "en": (
            "Japan Pension Service proposes to register the account your pension is paid "
            "into as your public-fund account. If you do not want this, object by the "
            "deadline; without an objection this account will be registered."
        ),
    },
    "accounts.proposal.deadline": {"ja": "不同意の期限", "en": "Object by"},
    "accounts.proposal.deadline_note": {
        "ja": "（日本時間のこの日の終わりまで）",
        "en": "(until the end of this day, Japan time)",
    },
    "accounts.proposal.object": {
        "ja": "不同意する（登録しない）", "en": "Object (do not register)",
    },
    "accounts.proposal.object_note": {
        "ja": (
            "不同意をすると、この口座は登録されません。"
            "ご自身で別の口座を登録することもできます。"
        ),
        "en": (
            "After an objection this account is not registered. You can register an account "
            "of your own choice yourself."
        ),
    },
    "accounts.done.objected": {
        "ja": "不同意を受け付けました。日本年金機構からお知らせのあった口座は登録されません。",
        "en": "Your objection was received: the proposed account will not be registered.",
    },
    "accounts.error.accounts_pension_proposal_closed": {
        "ja": "不同意の期限を過ぎています",
        "en": "The deadline for an objection has passed",
    },
    "accounts.error.accounts_pension_proposal_not_found": {
        "ja": "不同意できるお知らせはありません",
        "en": "There is no proposal to object to",
    },
    # Who looked it up: agencies' look-ups through the network (情報提供等記録).
    "accounts.lookups.title": {
        "ja": "口座情報を照会した機関",
        "en": "Who looked your account up",
    },
    "accounts.lookups.lead": {
        "ja": (
            "行政機関などが情報提供ネットワークシステムを通じてあなたの公金受取口座を照会した"
            "記録です（すべてのやりとりは「やりとり履歴」でも確認できます）。"
        ),
        "en": (
            "Agencies that asked for your public-fund account through the information "
            "provision network (every exchange is also in your exchange history)."
        ),
    },
    "accounts.lookups.at": {"ja": "日時", "en": "When"},
    "accounts.lookups.agency": {"ja": "照会した機関", "en": "Agency"},
    "accounts.lookups.task": {"ja": "事務", "en": "Task"},
    "accounts.lookups.outcome": {"ja": "結果", "en": "Result"},
    "accounts.lookups.none": {
        "ja": "あなたの公金受取口座を照会した機関はありません。",
        "en": "No agency has looked your public-fund account up.",
    },
    "accounts.lookups.history": {"ja": "やりとり履歴を見る", "en": "See the exchange history"},
    "accounts.lookups.unavailable": {
        "ja": "照会の記録を現在表示できません。しばらくしてからもう一度お試しください。",
        "en": "The look-ups cannot be shown right now. Please try again later.",
    },
}

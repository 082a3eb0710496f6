"""UI strings of the bank's counter pages for 公金受取口座 and 預貯金口座付番
(web/accounts_bank_pages.py, /bank)
and of the municipal counter's 公金受取口座 page (web/accounts_counter.py)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    # --- the bank's counter (/bank) -------------------------------------------------------------
    "accounts.bank.title": {"ja": "金融機関窓口（公金受取口座）",
                            "en": "Bank counter (public-fund accounts)"},
    "accounts.bank.nav.counter": {"ja": "登録・変更", "en": "Register or change"},
    "accounts.bank.nav.delete": {"ja": "登録の削除", "en": "Delete a registration"},
    "accounts.bank.logout": {"ja": "ログアウト", "en": "Log out"},
    "accounts.bank.back": {"ja": "窓口の画面に戻る", "en": "Back to the counter"},
    "accounts.bank.login.title": {"ja": "金融機関窓口のログイン", "en": "Bank counter sign-in"},
    "accounts.bank.login.lead": {
        "ja": "デジタル庁に登録された金融機関のクライアントIDとシークレットを入力してください。",
        "en": "Enter the client id and secret your bank received when it was registered.",
    },
    "accounts.bank.login.expired": {
        "ja": "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください。",
        "en": "You were signed out after a period without activity. Please sign in again.",
    },
    "accounts.bank.login.submit": {"ja": "ログイン", "en": "Sign in"},
    "accounts.bank.field.client_id": {"ja": "クライアントID", "en": "Client id"},
    "accounts.bank.field.secret": {"ja": "シークレット", "en": "Secret"},
    "accounts.bank.field.bank_code": {"ja": "金融機関コード（4桁）", "en": "Bank code (4 digits)"},
    "accounts.bank.counter.title": {
        "ja": "公金受取口座の登録・変更（窓口）",
        "en": "Register or change a public-fund account (counter)",
    },
    "accounts.bank.counter.lead": {
        "ja": (
            "お客さまの口座を入力し、お客さまご本人にマイナンバーカードで認証していただきます。"
            "登録・変更されるのは、カードで認証した方の公金受取口座です。当行（当金庫）の口座"
            "だけを登録できます。"
        ),
        "en": (
            "Enter the customer's account and have the customer confirm with their own My "
            "Number Card. The registration is made for the person whose card confirms it, and "
            "only an account at this bank can be registered."
        ),
    },
    "accounts.bank.counter.card_lead": {
        "ja": (
            "手続きのたびに新しいカード認証が必要です。前の方の認証は次の方には使えません。"
        ),
        "en": (
            "Each change needs a new card authentication: the previous customer's cannot be "
            "used for the next."
        ),
    },
    "accounts.bank.submit": {"ja": "カードで認証して登録・変更", "en": "Confirm with the card"},
    "accounts.bank.delete.title": {
        "ja": "公金受取口座の登録の削除（窓口）",
        "en": "Delete a public-fund account registration (counter)",
    },
    "accounts.bank.delete.lead": {
        "ja": (
            "カードで認証した方の公金受取口座の登録を削除します。当行（当金庫）の口座が"
            "登録されている場合だけ削除できます。"
        ),
        "en": (
            "The registration of the person whose card confirms it is deleted, when the "
            "registered account is at this bank."
        ),
    },
    "accounts.bank.delete.cancel": {"ja": "削除しないで戻る", "en": "Go back without deleting"},
    "accounts.bank.done.title": {"ja": "手続きが終わりました", "en": "Done"},
    "accounts.bank.done.cleared": {
        "ja": (
            "入力内容とカード認証はこの画面から消去しました。次のお客さまは新しい画面で、"
            "ご自身のカードで認証してください。"
        ),
        "en": (
            "What was entered and the card authentication are cleared from this terminal. "
            "The next customer starts on a new form with their own card."
        ),
    },
    "accounts.bank.done.next": {"ja": "次のお客さまの手続き", "en": "Next customer"},
    # Error headlines (kernel error_box: "accounts.bank.error.<code>").
    "accounts.bank.error.accounts_bank_code_not_own": {
        "ja": (
            "他の金融機関の口座は登録できません（当行・当金庫の金融機関コードを入力して"
            "ください）"
        ),
        "en": "Only an account at this bank can be registered here",
    },
    "accounts.bank.error.accounts_bank_code_not_own_delete": {
        "ja": (
            "カードで認証した方の公金受取口座は他の金融機関の口座のため、ここでは削除できません"
        ),
        "en": "The registered account is at another bank: it cannot be deleted here",
    },
    "accounts.bank.error.accounts_invalid_account": {
        "ja": "口座の入力内容に誤りがあります",
        "en": "The account details are not valid",
    },
    "accounts.bank.error.accounts_route_not_permitted": {
        "ja": "この手続は金融機関の窓口では受け付けられません",
        "en": "This procedure cannot be made at a bank's counter",
    },
    "accounts.bank.error.accounts_bank_session_expired": {
        "ja": "サインインの有効期限が切れました。もう一度サインインしてください",
        "en": "The session has ended: sign in again",
    },
    "accounts.bank.error.accounts_bank_login_failed": {
        "ja": "クライアントIDまたはシークレットが正しくないか、利用停止中です",
        "en": "Client id or secret is wrong, or the client is suspended",
    },
    "accounts.bank.error.accounts_bank_client_suspended": {
        "ja": "この金融機関クライアントは利用停止中です",
        "en": "This bank client is suspended",
    },
    "accounts.bank.error.accounts_holder_name_mismatch": {
        "ja": "お客さまご本人名義の口座ではありません",
        "en": "The account is not in the customer's own name",
    },
    "accounts.bank.error.accounts_card_authentication_used": {
        "ja": "このカード認証は使用済みです。お客さまのカードでもう一度認証してください",
        "en": "This card authentication was already used: confirm again with the card",
    },
    "accounts.bank.error.portal_login_failed": {
        "ja": "カードでの認証ができませんでした。お客さまのカードでもう一度認証してください",
        "en": "The card authentication failed: confirm again with the customer's card",
    },
    "accounts.bank.error.accounts_not_registered": {
        "ja": "カードで認証した方の公金受取口座は登録されていません",
        "en": "No public-fund account is registered for the person whose card was used",
    },
    "accounts.bank.error.accounts_registrant_unavailable": {
        "ja": "カードで認証した方の住民記録が見つかりません",
        "en": "No living resident matches the card",
    },
    # --- 預貯金口座付番 at this bank (/bank/deposit-numbering) ----------------------------------
    "accounts.bank.nav.deposit": {"ja": "預貯金口座付番", "en": "Deposit-account numbering"},
    "accounts.bank.deposit.title": {
        "ja": "預貯金口座付番の申出（窓口）",
        "en": "Deposit-account numbering request (counter)",
    },
    "accounts.bank.deposit.lead": {
        "ja": (
            "お客さまが、当行（当金庫）にお持ちの預貯金口座をマイナンバー（個人番号）と"
            "ひも付けることを申し出る手続きです。申し出るのは、カードで認証した方ご本人です。"
            "申出は金融機関ごとに1回です。"
        ),
        "en": (
            "The customer asks that their deposit accounts at this bank be linked to their "
            "My Number (individual number). The request is made by the person whose card "
            "confirms it, once per bank."
        ),
    },
    "accounts.bank.deposit.delivery": {
        "ja": (
            "個人番号はこの画面には表示されません。デジタル庁が当行（当金庫）の鍵で暗号化して"
            "お届けし、当行（当金庫）のシステムが受け取ります。"
        ),
        "en": (
            "The individual number is not shown on this terminal: the Digital Agency seals it "
            "for this bank's key and the bank's system collects it."
        ),
    },
    "accounts.bank.deposit.submit": {
        "ja": "カードで認証して申し出る", "en": "Confirm with the card and send the request",
    },
    "accounts.bank.done.deposit_numbering": {
        "ja": (
            "預貯金口座付番の申出を受け付けました。個人番号は暗号化して当行（当金庫）に"
            "届きます。"
        ),
        "en": (
            "The deposit-account numbering request was accepted. The individual number "
            "reaches this bank sealed for its key."
        ),
    },
    "accounts.bank.field.bank_codes": {"ja": "申出先の金融機関", "en": "Bank asked"},
    "accounts.bank.error.accounts_deposit_numbering_already_requested": {
        "ja": (
            "カードで認証した方の当行（当金庫）への預貯金口座付番の申出は、すでに受け付けて"
            "います。個人番号は暗号化して当行（当金庫）に届きます（申出は金融機関ごとに1回です）"
        ),
        "en": (
            "The numbering request of the person whose card was used is already recorded at "
            "this bank: the individual number will reach this bank sealed (once per bank)"
        ),
    },
    "accounts.bank.error.accounts_unknown_bank": {
        "ja": "当行（当金庫）の金融機関コードが、現在の金融機関の一覧にありません",
        "en": "This bank's code is not in today's list of banks",
    },
    # --- the municipal counter (/counter/residents/{id}/accounts) --------------------------------
    "accounts.counter.link": {"ja": "公金受取口座を見る", "en": "Public-fund account"},
    "accounts.counter.title": {"ja": "公金受取口座", "en": "Public-fund account"},
    "accounts.counter.reason.title": {
        "ja": "公金受取口座の閲覧理由", "en": "Reason for viewing the public-fund account",
    },
    "accounts.counter.reason.lead": {
        "ja": "公金受取口座を表示する理由を選んでください。閲覧は理由とともに記録されます。",
        "en": "Choose why you are viewing the public-fund account: each view is recorded "
              "with its reason.",
    },
    "accounts.counter.reason.submit": {"ja": "公金受取口座を表示", "en": "Show the account"},
    "accounts.counter.audited": {
        "ja": "この閲覧は記録されています。閲覧理由", "en": "This view is recorded. Reason",
    },
    "accounts.counter.back": {"ja": "住民票に戻る", "en": "Back to the record"},
    "accounts.counter.history": {"ja": "登録・変更の履歴", "en": "History"},
    "accounts.counter.history.none": {"ja": "履歴はありません。", "en": "No history."},
    "accounts.counter.history.at": {"ja": "日時", "en": "When"},
    "accounts.counter.history.action": {"ja": "内容", "en": "What"},
    "accounts.counter.action.registered": {"ja": "登録", "en": "Registered"},
    "accounts.counter.action.changed": {"ja": "変更", "en": "Changed"},
    "accounts.counter.action.migrated": {
        "ja": "金融機関の合併による変更", "en": "Moved after a bank merger",
    },
    "accounts.counter.action.flagged": {"ja": "名義の要確認", "en": "Name to be checked"},
    "accounts.counter.action.cleared": {"ja": "名義の確認済み", "en": "Name checked"},
    "accounts.counter.action.deleted": {"ja": "削除", "en": "Deleted"},
}

"""UI strings of the portal pages (Japanese first, English)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "portal.title": {"ja": "マイナポータル", "en": "Myna Portal"},
    "portal.lead": {
        "ja": (
            "マイナンバーカードでログインして、行政機関が保有するあなたの情報（わたしの情報）、"
            "情報のやりとりの記録（やりとり履歴）、お知らせを確認し、申請ができます。"
        ),
        "en": (
            "Log in with your My Number Card to see the information agencies hold about you, "
            "the record of every exchange of it, your notices, and to apply for benefits."
        ),
    },
    "portal.back_home": {"ja": "マイナポータルのトップへ", "en": "Back to the portal home"},
    "portal.name_unknown": {"ja": "（氏名未取得）", "en": "(name not yet fetched)"},
    "portal.bar.logged_in_as": {"ja": "ログイン中:", "en": "Logged in:"},
    "portal.nav.home": {"ja": "トップ", "en": "Home"},
    "portal.nav.info": {"ja": "わたしの情報", "en": "My information"},
    "portal.nav.history": {"ja": "やりとり履歴", "en": "Exchange history"},
    "portal.nav.notices": {"ja": "お知らせ", "en": "Notices"},
    "portal.nav.applications": {"ja": "申請状況", "en": "Applications"},
    "portal.nav.activities": {"ja": "操作履歴", "en": "Activity log"},
    "portal.nav.proxies": {"ja": "代理人", "en": "Proxy"},
    "portal.logout": {"ja": "ログアウト", "en": "Log out"},
    "portal.logout.hint": {
        "ja": "利用が終わったら必ずログアウトしてください。",
        "en": "Always log out when you have finished.",
    },
    "portal.done.grant_revoked": {
        "ja": "連携を解除しました。このサービスは今後あなたの情報を取得できません。",
        "en": "The link was revoked. The service can no longer obtain your information.",
    },
    "portal.done.acting_for": {
        "ja": "代理人としての操作に切り替えました。",
        "en": "You now act as a proxy.",
    },
    "portal.done.self": {"ja": "ご本人の操作に戻りました。", "en": "You act for yourself again."},
    # --- home ---
    "portal.home.greeting": {"ja": "{name} さん、ようこそ。", "en": "Welcome, {name}."},
    "portal.notice.back_to_notice": {"ja": "お知らせに戻る", "en": "Back to the notice"},
    "portal.lost_card_link": {
        "ja": "マイナンバーカード・スマホ用電子証明書の紛失・一時停止（24時間受付）",
        "en": "Report a lost My Number Card or smartphone certificate (24 hours)"},
    "portal.home.welcome": {"ja": "マイナポータルへようこそ。", "en": "Welcome to Mynaportal."},
    "portal.home.name_hint": {
        "ja": "氏名は「わたしの情報」で住民票関係情報を取得すると表示されます。",
        "en": "Your name is shown once you fetch your resident record under My information.",
    },
    "portal.home.info": {
        "ja": "行政機関等が保有するあなたの情報を確認できます。",
        "en": "See the information agencies hold about you.",
    },
    "portal.home.history": {
        "ja": "あなたの情報がいつ、どの機関の間でやりとりされたかを確認・検証できます。",
        "en": "See and verify when and between which agencies your information was exchanged.",
    },
    "portal.home.notices": {"ja": "行政機関からのお知らせ", "en": "Notices from agencies"},
    "portal.home.unread": {"ja": "未読 {n} 件", "en": "{n} unread"},
    "portal.home.applications": {
        "ja": "これまでの申請と、その状況です。"
              "申請・届出はお知らせからできます（児童手当の現況届など）。",
        "en": "Your applications and where they stand. Apply from a notice (e.g. the child "
              "allowance status report).",
    },
    "portal.home.activities": {
        "ja": "このポータルでの操作の記録（代理人による操作を含む）",
        "en": "What was done in the portal for you (including by a proxy)",
    },
    "portal.home.proxies": {
        "ja": "代理人として登録されている方の操作に切り替えます。",
        "en": "Switch to act for a person you are a registered proxy of.",
    },
    "portal.grants.title": {"ja": "連携中のサービス", "en": "Linked services"},
    "portal.grants.lead": {
        "ja": (
            "あなたが同意して情報の取得を認めた外部サービスです。"
            "解除すると直ちに取得できなくなります。"
        ),
        "en": (
            "Services you allowed to obtain your information. Revoking takes effect at once."
        ),
    },
    "portal.grants.client": {"ja": "サービス", "en": "Service"},
    "portal.grants.scopes": {"ja": "情報の種類", "en": "Information"},
    "portal.grants.granted_at": {"ja": "同意日時", "en": "Granted"},
    "portal.grants.revoke": {"ja": "連携を解除", "en": "Revoke"},
    "portal.grants.none": {"ja": "連携中のサービスはありません。", "en": "No linked services."},
    # --- login ---
    "portal.login.button": {"ja": "マイナンバーカードでログイン", "en": "Log in with your card"},
    "portal.login.title": {"ja": "ログイン", "en": "Log in"},
    "portal.login.again": {"ja": "もう一度ログインする", "en": "Log in again"},
    "portal.login.shared_terminal": {
        "ja": "共用端末では、利用後に必ずログアウトしてブラウザを閉じてください。",
        "en": "On a shared computer, always log out and close the browser when you finish.",
    },
    "portal.login.expired": {
        "ja": "セッションが終了しました（一定時間操作がなかったか、ログアウトされました）。"
              "もう一度ログインしてください。",
        "en": "Your session has ended (inactivity or logout). Please log in again.",
    },
    "portal.login.reason.revoked": {
        "ja": "この電子証明書は失効しています（カードの一時停止・廃止や、紛失の届出によるもの）。"
              "お住まいの市区町村の窓口にお問い合わせください。",
        "en": "This certificate has been revoked (the card was suspended or ended, or reported "
              "lost). Please contact your municipality."},
    "portal.login.reason.expired": {
        "ja": "この電子証明書は有効期限が切れています。市区町村の窓口で更新してください。",
        "en": "This certificate has expired. Please renew it at your municipality."},
    "portal.login.reason.not_yet_valid": {
        "ja": "この電子証明書はまだ有効になっていません。",
        "en": "This certificate is not valid yet."},
    "portal.login.reason.untrusted_chain": {
        "ja": "マイナンバーカードの電子証明書として確認できませんでした。",
        "en": "The certificate could not be verified as a My Number Card certificate."},
    "portal.login.reason.bad_signature": {
        "ja": "署名を確認できませんでした。もう一度お試しください。",
        "en": "The signature could not be verified. Please try again."},
    "portal.login.reason.wrong_kind": {
        "ja": "利用者証明用電子証明書でログインしてください。",
        "en": "Please log in with the user authentication certificate."},
    "portal.login.reason.status_unknown": {
        "ja": "電子証明書の状態を確認できませんでした。しばらくしてからお試しください。",
        "en": "The certificate's status could not be checked. Please try again later."},
    "portal.login.reason.malformed_certificate": {
        "ja": "電子証明書を読み取れませんでした。",
        "en": "The certificate could not be read."},
    "portal.login.reason.unknown_challenge": {
        "ja": "ログインの手続きが見つかりません。最初からやり直してください。",
        "en": "The login was not found. Please start again."},
    "portal.login.reason.challenge_used": {
        "ja": "このログインの手続きは使用済みです。最初からやり直してください。",
        "en": "This login was already used. Please start again."},
    "portal.login.reason.challenge_expired": {
        "ja": "ログインの手続きの有効期限が切れました。最初からやり直してください。",
        "en": "The login expired. Please start again."},
    "portal.login.reason.bad_challenge": {
        "ja": "ログインの手続きが正しくありません。最初からやり直してください。",
        "en": "The login was not valid. Please start again."},
    "portal.login.reason.ended": {
        "ja": "セッションが終了しました。もう一度ログインしてください。",
        "en": "Your session ended. Please log in again."},
    "portal.login.lead": {
        "ja": (
            "マイナンバーカードの利用者証明用電子証明書で、下のチャレンジに署名してログインします"
            "（利用者証明用暗証番号 数字4桁）。"
        ),
        "en": (
            "Sign the challenge below with your card's user-authentication certificate "
            "(4-digit PIN) to log in."
        ),
    },
    "portal.login.challenge": {"ja": "チャレンジ", "en": "Challenge"},
    "portal.login.expires": {"ja": "有効期限", "en": "Expires"},
    "portal.login.reader": {"ja": "カードリーダーで署名", "en": "Sign with the card reader"},
    "portal.login.reader_lead": {
        "ja": "この環境（組込みモード）では、窓口で交付された仮想カードを読み取れます。",
        "en": "In this (embedded) mode the virtual cards issued at the counter can be read.",
    },
    "portal.login.reader_button": {"ja": "カードリーダーを使う", "en": "Use the card reader"},
    "portal.login.cli": {"ja": "コマンドで署名", "en": "Sign on the command line"},
    "portal.login.cli_lead": {
        "ja": (
            "次のコマンドで署名し、"
            "表示された署名（16進）と利用者証明用証明書（PEM）を貼り付けます。"
        ),
        "en": (
            "Sign with this command, then paste the signature (hex) and the authentication "
            "certificate (PEM)."
        ),
    },
    "portal.login.submit": {"ja": "ログイン", "en": "Log in"},
    "portal.field.signature": {"ja": "署名（16進）", "en": "Signature (hex)"},
    "portal.field.certificate": {
        "ja": "利用者証明用電子証明書（PEM）", "en": "Authentication certificate (PEM)",
    },
    "portal.field.challenge_id": {"ja": "チャレンジ", "en": "Challenge"},
    "portal.field.card_id": {"ja": "カード", "en": "Card"},
    "portal.field.pin": {"ja": "暗証番号", "en": "PIN"},
    "portal.field.scope": {"ja": "情報の種類", "en": "Information item"},
    "portal.field.csrf_token": {"ja": "フォーム", "en": "Form"},
    "portal.reader.title": {"ja": "カードリーダー（仮想）", "en": "Card reader (virtual)"},
    "portal.reader.lead": {
        "ja": (
            "カードを選び、利用者証明用暗証番号（数字4桁）を入力してください。"
            "3回続けて間違えるとロックされます。"
        ),
        "en": (
            "Choose your card and enter its user-authentication PIN (4 digits). Three wrong "
            "entries in a row lock it."
        ),
    },
    "portal.reader.card": {"ja": "カード", "en": "Card"},
    "portal.reader.pin": {
        "ja": "利用者証明用暗証番号（数字4桁）",
        "en": "Authentication PIN (4 digits)",
    },
    "portal.reader.pin_hint": {
        "ja": "暗証番号は画面に表示されず、カードの中だけで照合されます。",
        "en": "The PIN is never shown; it is checked on the card only.",
    },
    "portal.reader.submit": {"ja": "署名してログイン", "en": "Sign and log in"},
    "portal.reader.no_cards": {
        "ja": "読み取れるカードがありません。窓口でカードの交付を受けてください。",
        "en": "No card in the reader. Have a card issued at the municipal counter.",
    },
    "portal.reader.back": {"ja": "ログイン画面に戻る", "en": "Back to the login page"},
    "portal.reader.wrong_pin": {
        "ja": "暗証番号が違います。あと {n} 回間違えるとロックされます。",
        "en": "Wrong PIN. {n} tries remaining before the PIN locks.",
    },
    "portal.reader.locked": {
        "ja": (
            "暗証番号がロックされています。お住まいの市区町村の窓口で暗証番号の初期化（再設定）"
            "を受けてください。"
        ),
        "en": "The PIN is locked. Have it reset at your municipal counter.",
    },
    "portal.logged_out.title": {"ja": "ログアウト", "en": "Logged out"},
    "portal.logged_out.message": {
        "ja": "ログアウトしました。共用端末ではブラウザを閉じてください。",
        "en": "You have logged out. On a shared computer, close the browser.",
    },
    # --- わたしの情報 ---
    "portal.info.lead": {
        "ja": (
            "「取得」を押すと、マイナポータルが情報提供ネットワークシステムを通じて情報を照会します。"
            "照会はやりとり履歴に記録されます。"
        ),
        "en": (
            "Fetch asks the agency through the information provision network; each request is "
            "recorded in your exchange history."
        ),
    },
    "portal.info.sources": {"ja": "取得できる情報", "en": "Available information"},
    "portal.info.item": {"ja": "情報", "en": "Item"},
    "portal.info.provider": {"ja": "提供機関", "en": "Provider"},
    "portal.info.fetch": {"ja": "取得", "en": "Fetch"},
    "portal.info.result": {"ja": "取得結果", "en": "Result"},
    "portal.info.outcome": {"ja": "結果", "en": "Outcome"},
    "portal.info.data": {"ja": "内容", "en": "Data"},
    "portal.info.serial": {"ja": "処理通番", "en": "Exchange serial"},
    "portal.info.fetched_at": {"ja": "取得日時", "en": "Fetched at"},
    "portal.info.in_history": {
        "ja": "この照会はやりとり履歴で確認・検証できます:",
        "en": "This request can be checked and verified in the",
    },
    "portal.provider.municipality": {"ja": "お住まいの市区町村", "en": "Your municipality"},
    "portal.outcome.provided": {"ja": "提供あり", "en": "Provided"},
    "portal.outcome.not_held": {"ja": "該当情報なし", "en": "Not held"},
    "portal.outcome.refused": {"ja": "提供拒否", "en": "Refused"},
    "portal.outcome.declined": {"ja": "番号利用なし", "en": "Number not used"},
    # --- labels of provider data (わたしの情報) ---
    "portal.data.name": {"ja": "氏名", "en": "Name"},
    "portal.data.name_kana": {"ja": "フリガナ", "en": "Name (kana)"},
    "portal.data.birth_date": {"ja": "生年月日", "en": "Date of birth"},
    "portal.data.sex": {"ja": "性別", "en": "Sex"},
    "portal.data.address": {"ja": "住所", "en": "Address"},
    "portal.data.household": {"ja": "世帯員", "en": "Household members"},
    "portal.data.relationship": {"ja": "続柄", "en": "Relationship"},
    "portal.data.household_relationship": {
        "ja": "世帯主との続柄", "en": "Relationship to the head",
    },
    "portal.data.municipality_code": {"ja": "市区町村コード", "en": "Municipality code"},
    "portal.data.moved_in": {"ja": "転入者", "en": "Moved in"},
    "portal.data.fiscal_year": {"ja": "年度", "en": "Fiscal year"},
    "portal.data.taxable_income": {"ja": "課税所得（円）", "en": "Taxable income (yen)"},
    "portal.data.municipal_tax": {"ja": "住民税額（円）", "en": "Municipal tax (yen)"},
    "portal.data.exempt": {"ja": "非課税", "en": "Exempt"},
    "portal.data.status": {"ja": "状態", "en": "Status"},
    "portal.data.children": {"ja": "児童数", "en": "Children"},
    "portal.data.monthly_amount": {"ja": "月額（円）", "en": "Monthly amount (yen)"},
    "portal.data.certified_level": {"ja": "要介護認定", "en": "Care level"},
    "portal.data.kind": {"ja": "種類", "en": "Kind"},
    "portal.data.annual_amount": {"ja": "年額（円）", "en": "Annual amount (yen)"},
    "portal.data.insurer": {"ja": "保険者", "en": "Insurer"},
    "portal.data.standard_monthly_remuneration": {
        "ja": "標準報酬月額（円）", "en": "Standard monthly pay (yen)",
    },
    "portal.value.male": {"ja": "男", "en": "male"},
    "portal.value.female": {"ja": "女", "en": "female"},
    "portal.value.receiving": {"ja": "受給中", "en": "receiving"},
    "portal.value.insured": {"ja": "加入", "en": "insured"},
    # --- やりとり履歴 ---
    "portal.history.lead": {
        "ja": (
            "あなたの情報が行政機関の間でやりとりされた記録です。「検証」で、記録が改ざんできない"
            "公開ログ（署名付きの木構造）に含まれていることを確かめられます。"
        ),
        "en": (
            "Every exchange of your information between agencies. Verify checks that the record "
            "is in the tamper-evident public log (a signed Merkle tree)."
        ),
    },
    "portal.history.at": {"ja": "日時", "en": "Date"},
    "portal.history.requester": {"ja": "照会機関", "en": "Requester"},
    "portal.history.task": {"ja": "事務", "en": "Task"},
    "portal.history.provider": {"ja": "提供機関", "en": "Provider"},
    "portal.history.item": {"ja": "特定個人情報", "en": "Information"},
    "portal.history.outcome": {"ja": "結果", "en": "Result"},
    "portal.history.outcome.provided": {"ja": "提供", "en": "Permitted"},
    "portal.history.outcome.not_held": {"ja": "提供（該当なし）", "en": "Permitted (not held)"},
    "portal.history.outcome.refused": {"ja": "拒否", "en": "Refused"},
    "portal.history.outcome.declined": {
        "ja": "番号利用なし（書類提出）", "en": "No number used (documents)",
    },
    "portal.history.released_to": {"ja": "提供先サービス", "en": "Released to"},
    "portal.history.proxy": {"ja": "代理人", "en": "Proxy"},
    "portal.history.restricted": {
        "ja": "（一定期間表示を制限した後に開示された記録）",
        "en": "(disclosed after a restriction period)",
    },
    "portal.history.verify": {"ja": "検証", "en": "Verify"},
    "portal.history.unverifiable": {"ja": "検証できません", "en": "Cannot be verified"},
    "portal.history.unverifiable.detail": {
        "ja": (
            "この記録は、改ざんできない公開ログの内容と一致しません（またはログにありません）。"
            "内容が正しいことを確かめられないため、照会機関や事務などは表示していません。"
            "デジタル庁の問い合わせ窓口にこの処理通番をお知らせください。"
        ),
        "en": (
            "This record does not match the tamper-evident public log (or is not in it). Its "
            "content cannot be confirmed, so the requester, task and other details are not "
            "shown. Please report this serial number to the Digital Agency's help desk."
        ),
    },
    "portal.history.none": {"ja": "やりとりの記録はまだありません。", "en": "No exchanges yet."},
    "portal.refusal.not_in_legal_table": {
        "ja": "法令で認められていない照会", "en": "Not allowed by law",
    },
    "portal.refusal.provider_unavailable": {
        "ja": "提供機関が応答しなかった", "en": "Provider unavailable",
    },
    "portal.refusal.requester_suspended": {"ja": "照会機関が停止中", "en": "Requester suspended"},
    "portal.refusal.provider_suspended": {"ja": "提供機関が停止中", "en": "Provider suspended"},
    "portal.refusal.no_number_use": {
        "ja": "個人番号を利用できる事務がない機関", "en": "The agency may not use the number",
    },
    "portal.verify.title": {"ja": "記録の検証", "en": "Record verification"},
    "portal.verify.ok": {
        "ja": "検証成功: この記録は署名付きログに含まれています。",
        "en": "Verified: this record is in the signed log.",
    },
    "portal.verify.failed": {"ja": "検証失敗", "en": "Verification failed"},
    "portal.verify.lead": {
        "ja": (
            "記録のハッシュから監査パスをたどって得た値が、署名付きチェックポイントの"
            "ルートハッシュと一致することを確かめました。"
        ),
        "en": (
            "The record's hash, combined along the audit path, was checked against the root "
            "hash of the signed checkpoint."
        ),
    },
    "portal.verify.leaf_index": {"ja": "ログ上の位置", "en": "Leaf index"},
    "portal.verify.tree_size": {"ja": "ログの大きさ", "en": "Tree size"},
    "portal.verify.root_hash": {"ja": "ルートハッシュ", "en": "Root hash"},
    "portal.verify.proof": {"ja": "監査パス", "en": "Audit path"},
    "portal.verify.checkpoint": {"ja": "署名付きチェックポイント", "en": "Signed checkpoint"},
    "portal.verify.back": {"ja": "やりとり履歴に戻る", "en": "Back to the exchange history"},
    # --- 操作履歴 ---
    "portal.activities.lead": {
        "ja": "マイナポータルでの操作の記録です。代理人による操作は明示されます。",
        "en": "What was done in the portal; actions by a proxy are marked.",
    },
    "portal.activities.action": {"ja": "操作", "en": "Action"},
    "portal.activities.by": {"ja": "操作者", "en": "By"},
    "portal.activities.detail": {"ja": "内容", "en": "Detail"},
    "portal.activities.self": {"ja": "ご本人", "en": "You"},
    "portal.activities.by_proxy": {"ja": "代理人（{kind}）", "en": "Proxy ({kind})"},
    "portal.activities.for_principal": {"ja": "代理人", "en": "Proxy"},
    "portal.activities.none": {"ja": "操作の記録はありません。", "en": "No activity yet."},
    "portal.action.login": {"ja": "ログイン", "en": "Log in"},
    "portal.action.logout": {"ja": "ログアウト", "en": "Log out"},
    "portal.action.view_information": {"ja": "わたしの情報の取得", "en": "Fetched information"},
    "portal.action.view_history": {"ja": "やりとり履歴の閲覧", "en": "Viewed the history"},
    "portal.action.verify_record": {"ja": "記録の検証", "en": "Verified a record"},
    "portal.action.read_notice": {"ja": "お知らせの確認", "en": "Read a notice"},
    "portal.action.answer_notice": {"ja": "お知らせへの回答", "en": "Answered a notice"},
    "portal.action.submit_application": {"ja": "申請", "en": "Submitted an application"},
    "portal.action.act_for": {"ja": "代理人として操作開始", "en": "Started acting as proxy"},
    "portal.action.release": {"ja": "連携サービスへの提供", "en": "Released to a linked service"},
    "portal.action.api_consent": {"ja": "連携サービスへの同意",
                                  "en": "Consented to a linked service"},
    "portal.action.api_consent_denied": {"ja": "連携サービスへの同意を拒否",
                                         "en": "Refused consent to a linked service"},
    "portal.action.api_grant_revoked": {"ja": "連携サービスへの同意の取消",
                                        "en": "Revoked consent to a linked service"},
    # --- お知らせ and the 現況届 ---
    "portal.notice.state": {"ja": "状態", "en": "State"},
    "portal.notice.state.unread": {"ja": "未読", "en": "Unread"},
    "portal.notice.state.read": {"ja": "既読", "en": "Read"},
    "portal.notice.state.answered": {"ja": "回答済み", "en": "Answered"},
    "portal.notice.received": {"ja": "受信日時", "en": "Received"},
    "portal.notice.sender": {"ja": "差出機関", "en": "From"},
    "portal.notice.subject": {"ja": "件名", "en": "Subject"},
    "portal.notice.none": {"ja": "お知らせはありません。", "en": "No notices."},
    "portal.notice.answer": {"ja": "このお知らせに回答（申請）する", "en": "Answer (apply)"},
    "portal.notice.answered": {"ja": "回答済みです。", "en": "Answered."},
    "portal.notice.back": {"ja": "お知らせ一覧に戻る", "en": "Back to the notices"},
    "portal.notice.mark_read": {"ja": "既読にする", "en": "Mark as read"},
    "portal.ca.title": {"ja": "児童手当 現況届", "en": "Child allowance status report"},
    "portal.ca.choice_lead": {
        "ja": "申請の方法を選んでください。どちらの方法でも同じように受け付けられます。",
        "en": "Choose how to apply. Both ways are accepted alike.",
    },
    "portal.ca.choice_free": {
        "ja": (
            "マイナンバーの利用はご本人の選択です。利用しないことを選んでも、申請が不利に扱われ"
            "たり、受付を拒否されたりすることはありません（その場合は書類を添付してください）。"
        ),
        "en": (
            "Using your number is your choice. Choosing not to use it never disadvantages the "
            "application or is a reason to refuse it; attach the documents instead."
        ),
    },
    "portal.ca.use_number": {
        "ja": "マイナンバーを利用して情報を取得する（添付書類不要）",
        "en": "Use my number to fetch the information (no documents needed)",
    },
    "portal.ca.use_number_hint": {
        "ja": (
            "所得や健康保険の情報を情報提供ネットワークシステムで取得し、"
            "入力します。取得はやりとり履歴に記録されます。"
        ),
        "en": (
            "Income and insurance are fetched through the network and filled in; the fetches "
            "are recorded in your exchange history."
        ),
    },
    "portal.ca.no_number": {
        "ja": "マイナンバーを利用しない（書類を添付）",
        "en": "Do not use my number (attach documents)",
    },
    "portal.ca.no_number_hint": {
        "ja": "情報の照会は行いません。課税証明書などの書類を添付して申請します。",
        "en": "Nothing is fetched; you attach documents such as the tax certificate.",
    },
    "portal.ca.with_number": {
        "ja": "マイナンバーを利用して取得した情報を入力済みです。内容を確認してください。",
        "en": "Filled in with the information fetched using your number. Please check it.",
    },
    "portal.ca.without_number": {
        "ja": (
            "マイナンバーを利用しない申請です。"
            "必要事項を入力し、書類のファイルを添付してください。"
        ),
        "en": "Applying without your number: fill in the form and attach the documents' files.",
    },
    "portal.ca.prefilled_hint": {
        "ja": "入力済みの情報の取得記録は、やりとり履歴で確認できます。",
        "en": "The fetches that filled this in are in your exchange history.",
    },
    "portal.ca.documents_hint": {
        "ja": (
            "書類をスキャンまたは撮影したファイル（PDF・JPEG・PNG）を選んでください。"
            "1ファイル{max_megabytes}MBまで、合計{max_files}ファイルまでです。"
            "＊の書類は必須です。マイナンバー（個人番号）が記載された書類は添付しないでください。"
        ),
        "en": (
            "Choose a scan or photo of each document (PDF, JPEG or PNG): up to "
            "{max_megabytes} MB a file, {max_files} files in all. Those marked * are required. "
            "Do not attach documents that show your individual number."
        ),
    },
    "portal.ca.files_dropped": {
        "ja": "エラーのため、選んだファイルは保存されていません。もう一度選んでください。",
        "en": "Nothing was stored because of the error: choose the files again.",
    },
    "portal.ca.submit": {"ja": "申請する", "en": "Submit"},
    "portal.ca.change_choice": {"ja": "申請方法を選び直す", "en": "Change how to apply"},
    "portal.ca.done_title": {"ja": "申請の受付", "en": "Application received"},
    "portal.ca.done": {"ja": "申請を受け付けました。", "en": "Your application was received."},
    "portal.ca.declined_note": {
        "ja": (
            "マイナンバーを利用しない申請として受け付けました。"
            "これによる不利益な取扱いはありません。"
        ),
        "en": (
            "Received as an application without the number. This causes no disadvantage."
        ),
    },
    "portal.application.kind": {"ja": "申請", "en": "Application"},
    "portal.application.kind.child_allowance_status_report": {
        "ja": "児童手当 現況届", "en": "Child allowance status report"},
    "portal.application.to": {"ja": "提出先", "en": "Sent to"},
    "portal.application.state": {"ja": "状況", "en": "Status"},
    "portal.application.state.submitted": {
        "ja": "受付済み（市区町村で審査中）", "en": "Received (under review by the municipality)"},
    "portal.application.none": {"ja": "申請はまだありません。", "en": "No applications yet."},
    "portal.application.attachments": {"ja": "添付ファイル", "en": "Attached files"},
    "portal.application.no_attachments": {"ja": "なし", "en": "None"},
    "portal.application.number": {"ja": "申請番号", "en": "Application number"},
    "portal.application.submitted_at": {"ja": "受付日時", "en": "Received at"},
    "portal.application.how": {"ja": "申請方法", "en": "How"},
    "portal.application.with_number": {
        "ja": "マイナンバーを利用（添付書類なし）", "en": "Using the number (no documents)",
    },
    "portal.application.without_number": {
        "ja": "マイナンバーを利用しない（書類添付）", "en": "Without the number (documents)",
    },
    "portal.field.applicant_name": {"ja": "申請者氏名", "en": "Applicant"},
    "portal.field.address": {"ja": "住所", "en": "Address"},
    "portal.field.taxable_income": {"ja": "課税所得（円）", "en": "Taxable income (yen)"},
    "portal.field.insurance_status": {"ja": "加入している健康保険", "en": "Health insurance"},
    "portal.field.children": {"ja": "監護している児童", "en": "Children in your care"},
    "portal.field.child_name": {"ja": "児童氏名", "en": "Child's name"},
    "portal.field.child_birth_date": {"ja": "生年月日", "en": "Date of birth"},
    "portal.field.documents": {"ja": "添付書類", "en": "Attached documents"},
    "portal.document.tax_certificate": {"ja": "課税証明書", "en": "Tax certificate"},
    "portal.document.health_insurance_copy": {
        "ja": "健康保険証の写し", "en": "Copy of the health insurance card",
    },
    "portal.document.child_resident_record": {
        "ja": "児童の住民票の写し", "en": "Copy of the child's resident record",
    },
    "portal.document.other": {"ja": "その他の書類", "en": "Other documents"},
    # --- the counter: applications received through the portal ---
    "portal.counter.applications.menu": {"ja": "受付した申請", "en": "Applications received"},
    "portal.counter.applications.title": {
        "ja": "マイナポータルで受け付けた申請", "en": "Applications received through the portal",
    },
    "portal.counter.applications.lead": {
        "ja": (
            "この市区町村あてにマイナポータルから提出された申請です。添付ファイルは"
            "ダウンロードして確認してください（閲覧とダウンロードは記録されます）。"
        ),
        "en": (
            "Applications residents sent this municipality through the portal. Download the "
            "attached files to check them (every view and download is recorded)."
        ),
    },
    "portal.counter.applications.none": {
        "ja": "受け付けた申請はありません。", "en": "No applications received.",
    },
    "portal.error.attachment_not_found": {
        "ja": "その添付ファイルはありません", "en": "No such attached document",
    },
    "portal.error.invalid_attachment": {
        "ja": "添付ファイルを確認してください", "en": "Please check the attached files",
    },
    # --- proxies ---
    "portal.proxy.acting": {
        "ja": "{name} さんの代理人（{kind}）として操作中",
        "en": "Acting for {name} as proxy ({kind})",
    },
    "portal.proxy.kind": {"ja": "代理の種類", "en": "Kind"},
    "portal.proxy.kind.legal_representative": {"ja": "法定代理人", "en": "legal representative"},
    "portal.proxy.kind.adult_guardian": {"ja": "成年後見人", "en": "adult guardian"},
    "portal.proxy.switch": {"ja": "代理人として操作", "en": "Act as proxy"},
    "portal.proxy.act_for": {"ja": "この方の代理人として操作", "en": "Act for this person"},
    "portal.proxy.back_to_self": {"ja": "ご本人の操作に戻る", "en": "Back to yourself"},
    "portal.proxy.lead": {
        "ja": (
            "市区町村の窓口で代理人として登録された方の情報を、"
            "代理人として操作できます。操作はすべて記録されます。"
        ),
        "en": (
            "You can act for people you were registered as proxy of at the municipal counter. "
            "Every action is recorded."
        ),
    },
    "portal.proxy.principal": {"ja": "ご本人", "en": "Principal"},
    "portal.proxy.valid_until": {"ja": "有効期限", "en": "Valid until"},
    "portal.proxy.current": {"ja": "操作中", "en": "Current"},
    "portal.proxy.none": {
        "ja": "代理人として登録されている方はいません。", "en": "You are nobody's proxy.",
    },
    # --- the counter ---
    "portal.counter.menu": {"ja": "代理人登録", "en": "Portal proxies"},
    "portal.counter.title": {"ja": "マイナポータル 代理人登録", "en": "Portal proxy registration"},
    "portal.counter.lead": {
        "ja": (
            "法定代理人（未成年者の親権者など）または成年後見人を、ご本人の代理人として登録します。"
            "登記事項証明書・戸籍謄本等で代理権を、本人確認書類で両者を確認してください。"
        ),
        "en": (
            "Register a legal representative (e.g. a minor's parent) or adult guardian as a "
            "person's proxy, after checking the authority and both identities."
        ),
    },
    "portal.counter.identity_hint": {
        "ja": "住民票コードではなく住民記録の番号（検索結果の記録番号）を入力します。",
        "en": "Enter the resident record ids (from the resident search).",
    },
    "portal.counter.register": {"ja": "代理人を登録", "en": "Register a proxy"},
    "portal.counter.register_submit": {"ja": "登録する", "en": "Register"},
    "portal.counter.revoke": {"ja": "登録の取消", "en": "Revoke a registration"},
    "portal.counter.revoke_submit": {"ja": "取り消す", "en": "Revoke"},
    "portal.counter.registered": {
        "ja": "代理人を登録しました。",
        "en": "The proxy was registered.",
    },
    "portal.counter.revoked": {
        "ja": "登録を取り消しました。",
        "en": "The registration was revoked.",
    },
    "portal.counter.proxy_id": {"ja": "登録番号", "en": "Registration number"},
    "portal.counter.revoked_at": {"ja": "取消日時", "en": "Revoked at"},
    "portal.field.principal_resident_id": {
        "ja": "ご本人の住民記録番号", "en": "Principal's resident record id",
    },
    "portal.field.proxy_resident_id": {
        "ja": "代理人の住民記録番号", "en": "Proxy's resident record id",
    },
    "portal.field.kind": {"ja": "代理の種類", "en": "Kind"},
    "portal.field.valid_until": {"ja": "有効期限", "en": "Valid until"},
    # --- errors ---
    "portal.error.individual_number_in_answer": {
        "ja": "この情報には個人番号が含まれていたため、表示しませんでした (記録済みです)。",
        "en": "This information contained an individual number and was withheld (this was "
              "recorded).",
    },
    "portal.error.individual_number_in_notice": {
        "ja": "このお知らせには個人番号が含まれていたため、受け付けませんでした。",
        "en": "This notice contained an individual number and was refused.",
    },
    "portal.error.card_revoked": {
        "ja": "ログインに使ったカードの電子証明書が失効したため、ログアウトしました。",
        "en": "The certificate of the card you logged in with was revoked, so you were logged out.",
    },
    "portal.error.csrf_failed": {
        "ja": (
            "画面の有効期限が切れたか、このサイトからの送信ではありません。"
            "再読み込みしてやり直してください。"
        ),
        "en": "The form expired or did not come from this site. Reload and try again.",
    },
    "portal.error.portal_login_failed": {
        "ja": "ログインできませんでした", "en": "Login failed",
    },
    "portal.error.portal_session_expired": {
        "ja": "セッションが終了しました", "en": "Your session has ended",
    },
    "portal.error.portal_not_a_proxy": {
        "ja": "この方の代理人として登録されていません", "en": "You are not this person's proxy",
    },
    "portal.error.notice_not_found": {"ja": "お知らせが見つかりません", "en": "No such notice"},
    "portal.error.access_record_not_found": {
        "ja": "やりとり履歴にその記録はありません", "en": "No such record in your history",
    },
    "portal.error.unknown_scope": {
        "ja": "その情報は取得できません",
        "en": "Unknown information item",
    },
    "portal.error.notice_already_answered": {
        "ja": "このお知らせには回答済みです", "en": "The notice is already answered",
    },
    "portal.error.proxy_not_found": {
        "ja": "代理人の登録が見つかりません", "en": "No such proxy registration",
    },
    "portal.error.grant_not_found": {"ja": "連携が見つかりません", "en": "No such link"},
    "portal.error.card_reader_unavailable": {
        "ja": "仮想カードリーダーは組込みモードでのみ使えます",
        "en": "The virtual card reader exists only in the embedded mode",
    },
    "portal.error.reader_card_not_found": {
        "ja": "そのカードは読み取れません", "en": "That card is not in the reader",
    },
    "portal.error.reader_wrong_pin": {"ja": "暗証番号が違います", "en": "Wrong PIN"},
    "portal.error.reader_pin_locked": {"ja": "暗証番号がロックされています", "en": "PIN locked"},
    "portal.error.reader_pin_format": {
        "ja": "暗証番号は数字4桁です", "en": "The PIN is 4 digits",
    },
    "portal.error.invalid_input": {
        "ja": "入力内容を確認してください",
        "en": "Please check the input",
    },
    "portal.error.portal_invalid_input": {
        "ja": "入力内容を確認してください", "en": "Please check the input",
    },
    "portal.error.forbidden": {"ja": "この操作はできません", "en": "Not allowed"},
}


# The attached documents of the 現況届 without the number: each file input is a field
# (``document_<kind>``), and every refusal names it: "「課税証明書」は PDF・JPEG・PNG ...".
# The limits of portal.interfaces (MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS), repeated here: the
# catalogue imports no context (tests/portal/test_attachments.py checks that they agree).
_MB = 5
_MAX_FILES = 5
_DOCUMENT_LABELS = {
    "tax_certificate": ("課税証明書", "Tax certificate"),
    "health_insurance_copy": ("健康保険証の写し", "Copy of the health insurance card"),
    "child_resident_record": ("児童の住民票の写し", "Copy of the child's resident record"),
    "other": ("その他の書類", "Other documents"),
}
_ATTACHMENT_REFUSALS = {
    "invalid_attachment_missing": ("「{ja}」のファイルを添付してください",
                                   "Attach a file for “{en}”"),
    "invalid_attachment_empty": ("「{ja}」のファイルが空です。別のファイルを選んでください",
                                 "The file for “{en}” is empty: choose another"),
    "invalid_attachment_type": (
        "「{ja}」に添付できるのは PDF・JPEG・PNG のファイルだけです",
        "Only PDF, JPEG or PNG files can be attached for “{en}”"),
    "invalid_attachment_size": ("「{ja}」のファイルが大きすぎます（1ファイル{mb}MBまで）",
                                "The file for “{en}” is too large ({mb} MB a file at most)"),
    "invalid_attachment_count": ("添付できるファイルは合計{n}つまでです（「{ja}」で超えました）",
                                 "At most {n} files in all (“{en}” went over)"),
    "invalid_attachment": ("「{ja}」の添付ファイルを確認してください",
                           "Please check the file for “{en}”"),
}
for _kind, (_ja, _en) in _DOCUMENT_LABELS.items():
    MESSAGES[f"portal.field.document_{_kind}"] = {"ja": _ja, "en": _en}
    for _code, (_ja_text, _en_text) in _ATTACHMENT_REFUSALS.items():
        MESSAGES[f"portal.error.{_code}.document_{_kind}"] = {
            "ja": _ja_text.format(ja=_ja, mb=_MB, n=_MAX_FILES),
            "en": _en_text.format(en=_en, mb=_MB, n=_MAX_FILES)}

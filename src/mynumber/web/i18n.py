"""UI strings. Japanese is the default; every key has an English text."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("ja", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "site.title": {
        "ja": "マイナンバー制度 (オープン実装)",
        "en": "My Number system (open implementation)",
    },
    "site.lead": {
        "ja": (
            "個人番号・住民基本台帳・マイナンバーカード・情報提供ネットワークシステムの"
            "動く実装です。"
        ),
        "en": (
            "A running implementation of the individual number, the resident registry, the card "
            "and the information provision network."
        ),
    },
    "nav.counter": {"ja": "窓口業務 (職員)", "en": "Municipal counter (staff)"},
    "nav.api": {"ja": "API 仕様", "en": "API reference"},
    "nav.language": {"ja": "English", "en": "日本語"},
    # --- municipal counter (registry/views.py) ---
    "counter.title": {"ja": "窓口業務", "en": "Municipal counter"},
    "counter.search": {"ja": "住民検索", "en": "Resident search"},
    "counter.logout": {"ja": "ログアウト", "en": "Log out"},
    "counter.field": {"ja": "項目", "en": "Field"},
    "counter.choose": {"ja": "選択してください", "en": "Choose"},
    "counter.back": {"ja": "住民検索に戻る", "en": "Back to the resident search"},
    "counter.cancel": {"ja": "取消", "en": "Cancel"},
    "role.clerk": {"ja": "担当者", "en": "clerk"},
    "role.supervisor": {"ja": "責任者", "en": "supervisor"},
    "role.admin": {"ja": "管理者", "en": "administrator"},
    "login.title": {"ja": "職員ログイン", "en": "Staff login"},
    "login.lead": {
        "ja": "パスワードと認証アプリのワンタイムコードの二要素で認証します。共用IDは使えません。",
        "en": (
            "Two factors: your password and the one-time code from your authenticator app. "
            "Accounts are personal; never share them."
        ),
    },
    "login.expired": {
        "ja": (
            "一定時間操作がなかったため、セッションを終了しました。もう一度ログインしてください。"
        ),
        "en": "Your session ended after a period of inactivity. Please log in again.",
    },
    "login.failed": {
        "ja": (
            "職員ID、パスワードまたはワンタイムコードが正しくないか、"
            "アカウントがロックされています。"
        ),
        "en": "The user name, password or one-time code is wrong, or the account is locked.",
    },
    "login.submit": {"ja": "ログイン", "en": "Log in"},
    "search.title": {
        "ja": "住民検索 (氏名・フリガナ・住民票コード)",
        "en": "Find a resident (name, kana or resident code)",
    },
    "search.submit": {"ja": "検索", "en": "Search"},
    "search.results": {"ja": "検索結果", "en": "Results"},
    "search.range": {"ja": "{first}～{last}件目", "en": "{first}-{last}"},
    "search.next": {"ja": "次の50件を表示", "en": "Show the next 50"},
    "search.open": {"ja": "開く", "en": "Open"},
    "search.none": {
        "ja": "該当する住民はいません (自団体の住民のみ検索できます)。",
        "en": "No resident found (only residents of your municipality are searched).",
    },
    "lookup.title": {"ja": "個人番号で検索", "en": "Find by individual number"},
    "lookup.lead": {
        "ja": "個人番号による検索は閲覧理由とともに記録されます。番号は画面に再表示されません。",
        "en": (
            "A look-up by individual number is recorded with its reason. The number is not shown "
            "back."
        ),
    },
    "lookup.submit": {"ja": "個人番号で開く", "en": "Open by number"},
    "reason.title": {"ja": "閲覧理由の入力", "en": "Reason for opening the record"},
    "reason.lead": {
        "ja": (
            "住民票を表示する前に閲覧理由を選んでください。"
            "閲覧は職員名と理由とともに記録されます。"
        ),
        "en": (
            "Choose why you open this record. Every read is recorded with your name and the "
            "reason."
        ),
    },
    "reason.submit": {"ja": "住民票を表示", "en": "Show the record"},
    "reason.move_in": {"ja": "転入届", "en": "Move-in notification"},
    "reason.certificate": {"ja": "証明書交付", "en": "Certificate issuance"},
    "reason.identity": {"ja": "本人確認", "en": "Identity verification"},
    "reason.notification": {"ja": "個人番号通知書の作成", "en": "Notification letter"},
    "reason.other": {"ja": "その他", "en": "Other"},
    "record.title": {"ja": "住民票", "en": "Resident record"},
    "record.audited": {
        "ja": "この閲覧は記録されました。閲覧理由",
        "en": "This read was recorded. Reason",
    },
    "record.basic_four": {"ja": "基本4情報", "en": "Four basic items"},
    "record.other": {"ja": "住民票の記載事項", "en": "Other entries of the record"},
    "record.unnumbered": {"ja": "未指定", "en": "not assigned"},
    "record.masked": {"ja": "個人番号 (非表示)", "en": "Individual number (hidden)"},
    "record.reveal": {"ja": "個人番号を表示", "en": "Show the individual number"},
    "record.reveal_submit": {"ja": "理由を記録して表示", "en": "Record the reason and show"},
    "record.revealed": {
        "ja": "この表示は記録されました。用が済んだら画面を閉じてください。",
        "en": "This display was recorded. Close the page when you are done.",
    },
    "record.procedures": {"ja": "届出・処理", "en": "Notifications and procedures"},
    "letters.title": {"ja": "個人番号通知書", "en": "Notification letters"},
    "letters.id": {"ja": "通知書番号", "en": "Letter"},
    "letters.generation": {"ja": "番号の世代", "en": "Number generation"},
    "letters.created": {"ja": "作成", "en": "Created"},
    "letters.changed": {"ja": "状態変更", "en": "Status changed"},
    "letters.hold_until": {"ja": "保管期限", "en": "Held until"},
    "letters.update": {"ja": "状態を変更", "en": "Change status"},
    "letters.none": {"ja": "通知書はありません。", "en": "No letters."},
    "verifications.title": {"ja": "本人確認の記録", "en": "Identity verifications"},
    "verifications.at": {"ja": "確認日時", "en": "Verified at"},
    "verifications.level": {"ja": "確認の強度", "en": "Assurance"},
    "verifications.matched": {"ja": "番号の一致", "en": "Number matched"},
    "verifications.yes": {"ja": "一致", "en": "yes"},
    "verifications.no": {"ja": "不一致", "en": "no"},
    "verifications.none": {
        "ja": "本人確認の記録はありません。",
        "en": "No identity verification recorded.",
    },
    "history.title": {"ja": "異動履歴", "en": "History"},
    "history.occurred_on": {"ja": "異動日", "en": "Date"},
    "history.kind": {"ja": "異動事由", "en": "Event"},
    "history.recorded_at": {"ja": "記録日時", "en": "Recorded at"},
    "history.actor": {"ja": "処理者", "en": "By"},
    "record.household": {"ja": "世帯の構成", "en": "Household members"},
    # 国籍: ISO 3166-1 codes as stored; Japan and the largest foreign-resident nationalities.
    # A code without a label is shown as stored.
    "nationality.JP": {"ja": "日本", "en": "Japan"},
    "nationality.CN": {"ja": "中国", "en": "China"},
    "nationality.VN": {"ja": "ベトナム", "en": "Viet Nam"},
    "nationality.KR": {"ja": "韓国", "en": "Republic of Korea"},
    "nationality.PH": {"ja": "フィリピン", "en": "Philippines"},
    "nationality.BR": {"ja": "ブラジル", "en": "Brazil"},
    "nationality.NP": {"ja": "ネパール", "en": "Nepal"},
    "nationality.ID": {"ja": "インドネシア", "en": "Indonesia"},
    "nationality.MM": {"ja": "ミャンマー", "en": "Myanmar"},
    "nationality.TW": {"ja": "台湾", "en": "Taiwan"},
    "nationality.US": {"ja": "アメリカ合衆国", "en": "United States"},
    "nationality.TH": {"ja": "タイ", "en": "Thailand"},
    "nationality.IN": {"ja": "インド", "en": "India"},
    "nationality.LK": {"ja": "スリランカ", "en": "Sri Lanka"},
    "nationality.PE": {"ja": "ペルー", "en": "Peru"},
    "actor.system": {"ja": "システム", "en": "System"},
    "actor.staff_unknown": {"ja": "職員（登録なし）", "en": "Staff (no longer registered)"},
    "actor.import": {"ja": "一括登録", "en": "Bulk import"},
    "actor.seed": {"ja": "初期データ", "en": "Initial data"},
    "actor.bench": {"ja": "性能測定", "en": "Benchmark"},
    "history.details": {"ja": "内容", "en": "Details"},
    "event.resident": {"ja": "住民", "en": "Resident"},
    "event.submit": {"ja": "登録", "en": "Register"},
    "form.birth": {"ja": "出生届", "en": "Birth"},
    "form.move-in": {"ja": "転入届", "en": "Move-in"},
    "form.move-out": {"ja": "転出届", "en": "Move-out"},
    "form.name-change": {"ja": "氏名変更", "en": "Change of name"},
    "form.address-change": {"ja": "住所変更 (転居届)", "en": "Change of address"},
    "form.death": {"ja": "死亡届", "en": "Death"},
    "form.correction": {"ja": "職権修正 (責任者)", "en": "Correction ex officio (supervisor)"},
    "form.reissue": {"ja": "個人番号の変更 (責任者)", "en": "New individual number (supervisor)"},
    "form.identity-verification": {"ja": "本人確認", "en": "Identity verification"},
    "form.letter": {"ja": "通知書の状態変更", "en": "Notification letter status"},
    "lead.birth": {
        "ja": "住民票を作成し、住民票コードと個人番号を指定して通知書を作成します。",
        "en": (
            "Creates the record, assigns a resident code and an individual number, and creates "
            "the notification letter."
        ),
    },
    "lead.move-in": {
        "ja": (
            "転出証明書の住民票コードがあれば入力します (番号は変わりません)。"
            "国外からの転入は空欄にします。"
        ),
        "en": (
            "Enter the resident code from the move-out certificate (the number stays the same); "
            "leave it empty for a move from abroad."
        ),
    },
    "lead.move-out": {
        "ja": "転出先の団体コードを入力します。国外への転出は空欄にします。",
        "en": "Enter the destination municipality code; leave it empty for a move abroad.",
    },
    "lead.name-change": {
        "ja": "新しい氏名とフリガナを入力します。署名用電子証明書は失効します。",
        "en": "Enter the new name and reading. The signing certificate will be revoked.",
    },
    "lead.address-change": {
        "ja": "同じ市区町村内の転居です。",
        "en": "A move within the municipality.",
    },
    "lead.death": {"ja": "死亡日を入力します。", "en": "Enter the date of death."},
    "lead.correction": {
        "ja": "訂正する項目だけを入力します。理由は履歴に残ります。",
        "en": "Fill in only the items to correct. The reason is kept in the history.",
    },
    "lead.reissue": {
        "ja": "漏えいのおそれがある場合に限り、新しい個人番号を指定します (番号法 第7条第2項)。",
        "en": (
            "Only when the number may have leaked: a new individual number is assigned (Number "
            "Act art. 7(2))."
        ),
    },
    "lead.identity-verification": {
        "ja": "番号確認と身元確認 (番号法 第16条)。写真付き書類がない場合は2点以上が必要です。",
        "en": (
            "Number check and identity check (Number Act art. 16). Without a photo ID, two "
            "documents are needed."
        ),
    },
    "done.birth": {"ja": "出生届を登録しました。", "en": "The birth was registered."},
    "done.move-in": {"ja": "転入届を登録しました。", "en": "The move-in was registered."},
    "done.move-out": {"ja": "転出届を登録しました。", "en": "The move-out was registered."},
    "done.name-change": {
        "ja": "氏名変更を登録しました。",
        "en": "The change of name was registered.",
    },
    "done.address-change": {
        "ja": "住所変更を登録しました。",
        "en": "The change of address was registered.",
    },
    "done.death": {"ja": "死亡届を登録しました。", "en": "The death was registered."},
    "done.correction": {"ja": "職権修正を登録しました。", "en": "The correction was registered."},
    "done.reissue": {
        "ja": "新しい個人番号を指定しました。",
        "en": "A new individual number was assigned.",
    },
    "done.identity-verification": {
        "ja": "本人確認を記録しました。",
        "en": "The identity verification was recorded.",
    },
    "done.letter": {"ja": "通知書の状態を変更しました。", "en": "The letter's status was changed."},
    "done.new.title": {"ja": "登録した住民", "en": "The record registered"},
    "done.new.lead": {
        "ja": "記録番号と住民票コードを控えてください。個人番号は理由を記録したうえで表示し、"
              "個人番号通知書に印刷します。",
        "en": "Note the record number and the resident code. The individual number is shown "
              "after you record a reason, to print the notification letter.",
    },
    "done.new.reveal": {
        "ja": "個人番号を表示 (通知書の印刷用)",
        "en": "Show the individual number (to print the notification)",
    },
    "number.title": {"ja": "個人番号 (通知書の印刷用)", "en": "Individual number (notification)"},
    "number.lead": {
        "ja": "この表示は記録されました。この画面は保存されません。"
              "通知書に印刷したら画面を閉じてください。",
        "en": "This display was recorded and the page is not stored. Close it once the "
              "notification is printed.",
    },
    "number.open_record": {"ja": "住民票を開く", "en": "Open the record"},
    "done.identity-mismatch.title": {
        "ja": "個人番号が一致しません",
        "en": "The individual number does not match",
    },
    "done.identity-mismatch": {
        "ja": "提示された個人番号は、この住民の個人番号と一致しませんでした。"
              "本人確認は「不一致」として記録しました。番号確認の書類をもう一度確かめ、"
              "別の方の書類や記録でないか確認してください。",
        "en": "The individual number presented does not match this resident's. The identity "
              "verification was recorded as not matching. Check the number document again and "
              "make sure it is not another person's document or record.",
    },
    "field.username": {"ja": "職員ID", "en": "User name"},
    "field.password": {"ja": "パスワード", "en": "Password"},
    "field.totp_code": {"ja": "ワンタイムコード (6桁)", "en": "One-time code (6 digits)"},
    "field.q": {"ja": "氏名・フリガナ・住民票コード", "en": "Name, kana or resident code"},
    "field.resident_code": {"ja": "住民票コード", "en": "Resident code"},
    # The resident record's id: what the proxy registration (portal) and other forms ask for.
    "field.record_id": {"ja": "記録番号", "en": "Record number"},
    "field.individual_number": {"ja": "個人番号", "en": "Individual number"},
    "field.name": {"ja": "氏名", "en": "Name"},
    "field.name_kana": {"ja": "フリガナ", "en": "Kana"},
    "field.family_name": {"ja": "氏", "en": "Family name"},
    "field.given_name": {"ja": "名", "en": "Given name"},
    "field.family_name_kana": {"ja": "氏 (フリガナ)", "en": "Family name (kana)"},
    "field.given_name_kana": {"ja": "名 (フリガナ)", "en": "Given name (kana)"},
    "field.birth_date": {"ja": "生年月日", "en": "Date of birth"},
    "field.sex": {"ja": "性別", "en": "Sex"},
    "field.address": {"ja": "住所", "en": "Address"},
    "field.postal_code": {"ja": "郵便番号", "en": "Postal code"},
    "field.household_id": {"ja": "世帯番号", "en": "Household"},
    "field.relationship": {"ja": "続柄", "en": "Relationship to the head"},
    "field.nationality": {"ja": "国籍", "en": "Nationality"},
    "field.residence_status": {"ja": "在留資格", "en": "Residence status"},
    "field.municipality_code": {"ja": "住所地 (団体)", "en": "Municipality"},
    "field.destination_municipality_code": {
        "ja": "転出先 (団体コード)",
        "en": "Destination (municipality code)",
    },
    "field.destination": {"ja": "転出先", "en": "Destination"},
    "field.status": {"ja": "状態", "en": "Status"},
    "field.occurred_on": {"ja": "異動日", "en": "Date of the event"},
    "field.reason": {"ja": "理由", "en": "Reason"},
    "field.reason_kind": {"ja": "閲覧理由", "en": "Reason"},
    "field.reason_text": {"ja": "理由の詳細 (受付番号など)", "en": "Details (e.g. ticket number)"},
    "field.purpose": {"ja": "事務 (利用目的)", "en": "Purpose"},
    "field.number_confirmation": {"ja": "番号確認の方法", "en": "How the number was checked"},
    "field.identity_documents": {"ja": "身元確認書類", "en": "Identity documents"},
    "field.verification_id": {"ja": "本人確認の記録", "en": "Identity verification"},
    "field.generation": {"ja": "番号の世代", "en": "Number generation"},
    "field.by": {"ja": "検索方法", "en": "Found by"},
    "field.changes": {"ja": "訂正項目", "en": "Corrected items"},
    "field.csrf_token": {"ja": "フォームの確認コード", "en": "Form token"},
    "field.origin": {"ja": "転入元", "en": "Moved in from"},
    "value.abroad": {"ja": "国外", "en": "abroad"},
    "hint.family_name_kana": {"ja": "カタカナまたはひらがな", "en": "Katakana or hiragana"},
    "hint.household_id": {"ja": "空欄なら新しい世帯", "en": "Empty: a new household"},
    "hint.resident_code": {
        "ja": "11桁。国外からの転入は空欄",
        "en": "11 digits; empty for a move from abroad",
    },
    "hint.destination_municipality_code": {
        "ja": "6桁。国外は空欄",
        "en": "6 digits; empty for abroad",
    },
    "hint.reason_text": {"ja": "「その他」の場合は必須", "en": "Required for \"Other\""},
    "hint.totp_code": {
        "ja": "認証アプリに表示される6桁の数字。一度使ったコードは再利用できません。",
        "en": "The 6 digits shown by your authenticator app. A code works only once.",
    },
    "hint.q": {
        "ja": "個人番号では検索できません (下の「個人番号で検索」を使ってください)。",
        "en": "Individual numbers are not accepted here (use \"Find by individual number\" below).",
    },
    "sex.male": {"ja": "男", "en": "male"},
    "sex.female": {"ja": "女", "en": "female"},
    "status.resident": {"ja": "住民", "en": "resident"},
    "status.moved_out": {"ja": "転出", "en": "moved out"},
    "status.deceased": {"ja": "死亡", "en": "deceased"},
    "kind.birth": {"ja": "出生", "en": "birth"},
    "kind.move_in": {"ja": "転入", "en": "move-in"},
    "kind.move_out": {"ja": "転出", "en": "move-out"},
    "kind.name_change": {"ja": "氏名変更", "en": "change of name"},
    "kind.address_change": {"ja": "転居", "en": "change of address"},
    "kind.death": {"ja": "死亡", "en": "death"},
    "kind.correction": {"ja": "職権修正", "en": "correction"},
    "kind.number_reissue": {"ja": "個人番号の変更", "en": "new individual number"},
    "kind.import": {"ja": "移行", "en": "import"},
    "letter.created": {"ja": "作成済", "en": "created"},
    "letter.sent": {"ja": "発送済", "en": "sent"},
    "letter.delivered": {"ja": "配達済", "en": "delivered"},
    "letter.returned": {"ja": "返戻", "en": "returned"},
    "letter.held": {"ja": "保管中", "en": "held at the office"},
    "letter.handed_over": {"ja": "窓口交付済", "en": "handed over"},
    "letter.discarded": {"ja": "廃棄", "en": "discarded"},
    "confirmation.individual_number_card": {"ja": "個人番号カード", "en": "Individual number card"},
    "confirmation.notification_letter": {"ja": "通知カード・通知書", "en": "Notification letter"},
    "confirmation.resident_record_with_number": {
        "ja": "番号記載の住民票",
        "en": "Resident record with the number",
    },
    "document.individual_number_card": {"ja": "個人番号カード", "en": "Individual number card"},
    "document.drivers_license": {"ja": "運転免許証", "en": "Driver's licence"},
    "document.passport": {"ja": "旅券", "en": "Passport"},
    "document.residence_card": {"ja": "在留カード", "en": "Residence card"},
    "document.health_insurance_card": {"ja": "健康保険証", "en": "Health insurance card"},
    "document.pension_book": {"ja": "年金手帳", "en": "Pension book"},
    "document.other_photo_id": {"ja": "その他の写真付き証明書", "en": "Other photo ID"},
    "document.other_non_photo": {
        "ja": "その他の書類 (写真なし)",
        "en": "Other document (no photo)",
    },
    "level.low": {"ja": "低 (写真なし2点)", "en": "low (two documents without photo)"},
    "level.substantial": {"ja": "中 (写真付き)", "en": "substantial (photo ID)"},
    "level.high": {"ja": "高 (個人番号カード)", "en": "high (individual number card)"},
    "error.generic": {"ja": "処理できませんでした", "en": "The request could not be processed"},
    "error.field_invalid": {"ja": "「{field}」の入力内容を確認してください",
                            "en": "Please check “{field}”"},
    "error.invalid_input": {"ja": "入力内容に誤りがあります", "en": "Invalid input"},
    "error.invalid_resident_data": {
        "ja": "住民票の記載内容に誤りがあります",
        "en": "Invalid resident data",
    },
    "error.unknown_municipality": {
        "ja": "該当する地方公共団体がありません",
        "en": "Unknown municipality",
    },
    "error.resident_not_found": {"ja": "該当する住民がいません", "en": "Resident not found"},
    "error.not_found": {"ja": "見つかりません", "en": "Not found"},
    "error.invalid_transition": {
        "ja": "現在の状態ではこの処理はできません",
        "en": "Not allowed in the record's current state",
    },
    "error.conflict": {
        "ja": "現在の状態ではこの処理はできません",
        "en": "Conflict with the current state",
    },
    "error.outside_jurisdiction": {
        "ja": "他の市区町村の住民です (閲覧できません)",
        "en": "Resident of another municipality (not visible to you)",
    },
    "error.role_required": {
        "ja": "この処理は責任者の権限が必要です",
        "en": "Your role does not allow this",
    },
    "error.forbidden": {"ja": "許可されていません", "en": "Not permitted"},
    "error.login_failed": {"ja": "ログインできませんでした", "en": "Login failed"},
    "error.session_expired": {"ja": "セッションが終了しました", "en": "Session ended"},
    "error.csrf_failed": {
        "ja": "フォームの有効期限が切れたか、このサイトから送信されていません",
        "en": "The form expired or did not come from this site",
    },
    # --- the site's error page (mynumber.kernel.errors) ---
    "error.infrastructure_unavailable": {"ja": "ただいま処理できません",
                                         "en": "Temporarily unavailable"},
    "error.infrastructure_unavailable.lead": {
        "ja": "システムの一部が一時的に利用できません。何も変更されていません。"
              "しばらくしてからもう一度お試しください。",
        "en": "Part of the system is temporarily unavailable. Nothing was changed. Please try "
              "again in a moment.",
    },
    "error.internal_error": {"ja": "システムで問題が発生しました", "en": "Something went wrong"},
    "error.internal_error.lead": {
        "ja": "処理を完了できませんでした。何も変更されていません。"
              "時間をおいてもう一度お試しください。",
        "en": "The request could not be completed and nothing was changed. Please try again "
              "later.",
    },
    "error.payload_too_large": {
        "ja": "送信された内容が大きすぎます", "en": "What was sent is too large",
    },
    "error.method_not_allowed": {
        "ja": "この操作はできません", "en": "This action is not available here",
    },
    "error.page.lead": {
        "ja": "入力内容やアドレスを確かめて、もう一度お試しください。",
        "en": "Check what you entered or the address, and try again.",
    },
    "error.page.home": {"ja": "トップページへ戻る", "en": "Back to the home page"},
    # --- 個人番号カード (card/views.py) ---
    "card.title": {"ja": "マイナンバーカード窓口", "en": "My Number Card counter"},
    "card.form.apply": {"ja": "交付申請の受付", "en": "Receive a card application"},
    "card.form.issue": {"ja": "カードの交付", "en": "Issue a card"},
    "card.form.pin-reset": {"ja": "暗証番号の初期化", "en": "Reset a PIN"},
    "card.form.suspend": {"ja": "一時利用停止", "en": "Suspend a card"},
    "card.lead.apply": {
        "ja": "住民IDを入力すると申請書IDを発行します。",
        "en": "Enter the resident id to allocate an application ID.",
    },
    "card.lead.issue": {
        "ja": "本人確認の後、本人が4つの暗証番号を設定します。",
        "en": "After identity verification the holder sets the four PINs.",
    },
    "card.lead.pin-reset": {
        "ja": "本人確認の後、ロックされた暗証番号を新しい暗証番号に設定します。",
        "en": "After identity verification a locked PIN is set anew.",
    },
    "card.lead.suspend": {
        "ja": "カードを一時利用停止にし、電子証明書2種類を失効させます。",
        "en": "Suspends the card and revokes both certificates.",
    },
    "card.done": {"ja": "処理が完了しました", "en": "Done"},
    "card.lost.title": {
        "ja": "マイナンバーカードの紛失・盗難の届出",
        "en": "Report a lost or stolen My Number Card",
    },
    "card.lost.submit": {"ja": "一時利用停止を申し込む", "en": "Suspend my card"},
    "card.lost.done": {
        "ja": "カードを一時利用停止にし、電子証明書を失効させました",
        "en": "The card is suspended and its certificates are revoked",
    },
    "field.resident_id": {"ja": "住民ID", "en": "Resident id"},
    "field.application_id": {"ja": "申請書ID", "en": "Application ID"},
    "field.card_id": {"ja": "カードID", "en": "Card ID"},
    "field.expires_on": {"ja": "有効期限", "en": "Valid until"},
    "field.state": {"ja": "状態", "en": "State"},
    "field.pin_kind": {"ja": "暗証番号の種類", "en": "PIN"},
    "field.new_pin": {"ja": "新しい暗証番号", "en": "New PIN"},
    "field.signing_password": {"ja": "署名用電子証明書の暗証番号", "en": "Signing password"},
    "field.user_auth_pin": {
        "ja": "利用者証明用電子証明書の暗証番号",
        "en": "User authentication PIN",
    },
    "field.residence_pin": {"ja": "住民基本台帳用の暗証番号", "en": "Residence record PIN"},
    "field.card_info_pin": {"ja": "券面事項入力補助用の暗証番号", "en": "Card information PIN"},
    "field.adult_ward": {"ja": "成年被後見人", "en": "Adult ward"},
    "hint.application_id": {"ja": "23桁 (検査用数字つき)", "en": "23 digits with a check digit"},
    "hint.signing_password": {
        "ja": "英大文字と数字で6〜16文字。他の3つは数字4桁です。",
        "en": "6-16 upper-case letters and digits; the other three are 4 digits.",
    },
    "pin.signing": {"ja": "署名用電子証明書", "en": "Signing password"},
    "pin.user_auth": {"ja": "利用者証明用電子証明書", "en": "User authentication"},
    "pin.residence": {"ja": "住民基本台帳用", "en": "Residence record"},
    "pin.card_info": {"ja": "券面事項入力補助用", "en": "Card information"},
    "yesno.no": {"ja": "いいえ", "en": "No"},
    "yesno.yes": {"ja": "はい", "en": "Yes"},
    "error.application_not_found": {"ja": "申請が見つかりません", "en": "Application not found"},
    "error.invalid_application_id": {
        "ja": "申請書IDが正しくありません",
        "en": "Invalid application ID",
    },
    "error.card_not_found": {"ja": "カードが見つかりません", "en": "Card not found"},
    "error.card_state_conflict": {
        "ja": "カードの現在の状態ではできません", "en": "Not allowed in the card's current state",
    },
    "error.identity_not_verified": {
        "ja": "本人確認ができませんでした",
        "en": "Identity not verified",
    },
    "error.pin_refused": {"ja": "暗証番号の形式が正しくありません", "en": "PIN refused"},
    "error.loss_report_not_matched": {
        "ja": "入力内容が一致しません", "en": "The details do not match",
    },
    "error.system_relying_party": {
        "ja": "システム自身の検証者は廃止できません",
        "en": "The platform's own relying party cannot be retired",
    },
    "error.relying_party_not_found": {
        "ja": "検証者が見つかりません", "en": "Relying party not found",
    },
}


# Each part of the UI keeps its strings in its own module; they are merged here.
from mynumber.web import (  # noqa: E402
    messages_accounts,
    messages_accounts_bank,
    messages_accounts_deposit,
    messages_card,
    messages_insurance,
    messages_juki,
    messages_oauth,
    messages_portal,
)

for _part in (messages_portal.MESSAGES, messages_oauth.MESSAGES, messages_juki.MESSAGES,
              messages_card.MESSAGES, messages_accounts.MESSAGES, messages_accounts_bank.MESSAGES,
              messages_accounts_deposit.MESSAGES, messages_insurance.MESSAGES):
    _clash = MESSAGES.keys() & _part.keys()
    if _clash:
        raise RuntimeError(f"UI string keys defined twice: {sorted(_clash)}")
    MESSAGES.update(_part)


def translator(lang: str) -> Callable[[str], str]:
    def t(key: str) -> str:
        entry = MESSAGES.get(key)
        if entry is None:
            return key
        return entry.get(lang) or entry["ja"]

    return t

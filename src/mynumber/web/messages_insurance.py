"""UI strings of オンライン資格確認's pages (issue 15): the medical institution's reception
(``/clinic``), the insurer's pages (``/insurer``), the resident's マイナ保険証 page
(``/portal/insurance``) and the insurance section of やりとり履歴. Japanese first, English
complete. Every code a page meets (an enum value, an error code, a refusal reason) has its
words here: the pages never show the code itself."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    # --- navigation -------------------------------------------------------------------------
    "insurance.nav": {"ja": "マイナ保険証", "en": "Health insurance card"},
    "insurance.nav.clinic": {"ja": "医療機関の受付", "en": "Medical reception"},
    "insurance.nav.insurer": {"ja": "保険者", "en": "Insurer"},
    "insurance.site.clinic": {
        "ja": "医療機関の受付（オンライン資格確認・職員）",
        "en": "Medical reception (online eligibility confirmation, staff)",
    },
    "insurance.site.insurer": {
        "ja": "保険者の業務（被保険者・紐付け・職員）",
        "en": "Insurer's work (insured persons, linking; staff)",
    },
    "insurance.logout": {"ja": "ログアウト", "en": "Log out"},
    # --- words for the context's values ------------------------------------------------------
    "insurance.validity.valid": {"ja": "有効", "en": "Valid"},
    "insurance.validity.invalid": {"ja": "無効", "en": "Not valid"},
    "insurance.validity.invalid_new_qualification": {
        "ja": "無効・新資格あり", "en": "Not valid; a new qualification exists",
    },
    "insurance.validity.not_found": {"ja": "該当なし", "en": "No match"},
    "insurance.validity.multiple": {"ja": "複数該当", "en": "Several matches"},
    "insurance.validity.valid.lead": {
        "ja": "この方の資格は本日有効です。",
        "en": "This person's qualification is valid today.",
    },
    "insurance.validity.invalid.lead": {
        "ja": "資格が失われています（資格喪失日を過ぎています）。保険者にご確認ください。",
        "en": "The qualification has ended (its loss date has passed). Please ask the insurer.",
    },
    "insurance.validity.invalid_new_qualification.lead": {
        "ja": (
            "以前の資格は失われていますが、新しい資格があります。新しい保険者の資格情報が"
            "届くまで、しばらくお待ちいただくことがあります。"
        ),
        "en": (
            "The earlier qualification has ended, but there is a new one. The new insurer's "
            "details may take a little while to arrive."
        ),
    },
    "insurance.validity.invalid.held.lead": {
        "ja": "この資格確認書では資格を確認できません。保険者にご確認ください。",
        "en": "Eligibility cannot be confirmed with this certificate. Please ask the insurer.",
    },
    "insurance.validity.not_found.lead": {
        "ja": (
            "この方の資格情報が見つかりません。マイナ保険証の初回登録がお済みか、保険者での"
            "登録がお済みかをご確認ください。"
        ),
        "en": (
            "No qualification was found for this person. Check that they registered the card "
            "for insurance use and that the insurer has registered them."
        ),
    },
    "insurance.validity.multiple.lead": {
        "ja": "複数の資格情報が該当しました。保険者にご確認ください。",
        "en": "Several qualifications matched. Please ask the insurer.",
    },
    "insurance.insured_kind.insured": {"ja": "本人", "en": "Insured person"},
    "insurance.insured_kind.dependent": {"ja": "家族", "en": "Dependant"},
    "insurance.limit.a": {"ja": "ア", "en": "A (a)"},
    "insurance.limit.i": {"ja": "イ", "en": "I (i)"},
    "insurance.limit.u": {"ja": "ウ", "en": "U (u)"},
    "insurance.limit.e": {"ja": "エ", "en": "E (e)"},
    "insurance.limit.o": {"ja": "オ", "en": "O (o)"},
    "insurance.limit.active_3": {"ja": "現役並みⅢ", "en": "Working-age income III"},
    "insurance.limit.active_2": {"ja": "現役並みⅡ", "en": "Working-age income II"},
    "insurance.limit.active_1": {"ja": "現役並みⅠ", "en": "Working-age income I"},
    "insurance.limit.general": {"ja": "一般", "en": "General"},
    "insurance.limit.low_2": {"ja": "低所得Ⅱ", "en": "Low income II"},
    "insurance.limit.low_1": {"ja": "低所得Ⅰ", "en": "Low income I"},
    "insurance.limit.none": {"ja": "なし", "en": "None"},
    "insurance.loss.retirement": {"ja": "退職", "en": "Retirement"},
    "insurance.loss.new_qualification": {
        "ja": "他の保険者の資格取得", "en": "Qualified with another insurer",
    },
    "insurance.loss.dependent_ended": {
        "ja": "被扶養者でなくなった", "en": "No longer a dependant",
    },
    "insurance.loss.moved_out": {"ja": "転出", "en": "Moved out"},
    "insurance.loss.age_75": {
        "ja": "後期高齢者医療への移行", "en": "Moved to the late-elderly scheme (age 75)",
    },
    "insurance.loss.death": {"ja": "死亡", "en": "Death"},
    "insurance.loss.other": {"ja": "その他", "en": "Other"},
    "insurance.link_state.unlinked": {"ja": "未紐付け", "en": "Not linked"},
    "insurance.link_state.review": {"ja": "確認待ち", "en": "Waiting for review"},
    "insurance.link_state.linked": {"ja": "紐付け済み", "en": "Linked"},
    "insurance.link_state.blocked": {
        "ja": "停止中（再確認で不一致）", "en": "Blocked (re-check mismatch)",
    },
    "insurance.link_state.all": {"ja": "すべて", "en": "All"},
    "insurance.route.search": {
        "ja": "住基ネットの4情報検索", "en": "Juki-net search on the four items",
    },
    "insurance.route.number": {
        "ja": "本人から届け出た個人番号（4情報で照合）",
        "en": "The number the person gave (checked on the four items)",
    },
    "insurance.review_reason.not_found": {
        "ja": "4情報に一致する人がいません", "en": "No one matches the four items",
    },
    "insurance.review_reason.ambiguous": {
        "ja": "4情報に一致する人が複数います", "en": "Several people match the four items",
    },
    "insurance.review_reason.name_differs": {
        "ja": "氏名が一致しません", "en": "The name differs",
    },
    "insurance.review_reason.birth_date_differs": {
        "ja": "生年月日が一致しません", "en": "The date of birth differs",
    },
    "insurance.review_reason.sex_differs": {"ja": "性別が一致しません", "en": "The sex differs"},
    "insurance.review_reason.address_differs": {
        "ja": (
            "住所が一致しません（カナ氏名・生年月日・性別だけが一致する別人の可能性があります）"
        ),
        "en": (
            "The address differs (possibly another person who only shares the kana name, "
            "date of birth and sex)"
        ),
    },
    "insurance.review_reason.number_unknown": {
        "ja": "届け出られた個人番号に該当する住民がいません",
        "en": "The number given names no current resident",
    },
    "insurance.review_reason.recheck_mismatch": {
        "ja": "再確認で住基ネットの情報と一致しなくなりました",
        "en": "A re-check found the record no longer matches Juki-net",
    },
    "insurance.review_reason.already_linked": {
        "ja": "この方には他の有効な資格があります",
        "en": "The person has another current qualification",
    },
    "insurance.person_item.name": {"ja": "氏名", "en": "Name"},
    "insurance.person_item.name_kana": {"ja": "氏名（カナ）", "en": "Name (kana)"},
    "insurance.person_item.birth_date": {"ja": "生年月日", "en": "Date of birth"},
    "insurance.person_item.sex": {"ja": "性別", "en": "Sex"},
    "insurance.person_item.address": {"ja": "住所", "en": "Address"},
    "insurance.sex.male": {"ja": "男", "en": "Male"},
    "insurance.sex.female": {"ja": "女", "en": "Female"},
    "insurance.resolution.corrected": {
        "ja": "記録を訂正して紐付け", "en": "Corrected and linked",
    },
    "insurance.resolution.dismissed": {
        "ja": "別人として紐付けしない", "en": "Not this person: left unlinked",
    },
    "insurance.method.card_pin": {
        "ja": "マイナンバーカード＋暗証番号", "en": "Card and PIN",
    },
    "insurance.method.face": {"ja": "マイナンバーカード＋顔認証", "en": "Card and face match"},
    "insurance.method.visual": {
        "ja": "マイナンバーカード＋職員の目視確認", "en": "Card and staff's visual check",
    },
    "insurance.method.document": {"ja": "資格確認書", "en": "Eligibility certificate"},
    "insurance.consent_item.drugs": {"ja": "薬剤情報", "en": "Medication information"},
    "insurance.consent_item.checkups": {
        "ja": "特定健診情報", "en": "Specific health check-up information",
    },
    "insurance.consent_item.treatments": {
        "ja": "診療・手術情報", "en": "Treatment and surgery information",
    },
    "insurance.document.confirmation_certificate": {
        "ja": "資格確認書", "en": "Eligibility certificate",
    },
    "insurance.document.qualification_notice": {
        "ja": "資格情報のお知らせ", "en": "Notice of qualification details",
    },
    "insurance.action.eligibility": {"ja": "資格確認", "en": "Eligibility confirmed"},
    "insurance.action.consent_given": {"ja": "同意しました", "en": "Consent given"},
    "insurance.action.consent_refused": {"ja": "同意しませんでした", "en": "Consent refused"},
    "insurance.action.view": {"ja": "閲覧", "en": "Viewed"},
    "insurance.action.view_refused": {
        "ja": "閲覧を拒否（同意なし・期限切れ）",
        "en": "Viewing refused (no consent, or it expired)",
    },
    "insurance.action.activation": {
        "ja": "マイナ保険証の初回登録", "en": "Registered for insurance use",
    },
    "insurance.kind.kyokai_kenpo": {"ja": "全国健康保険協会（協会けんぽ）", "en": "Kyokai Kenpo"},
    "insurance.kind.health_insurance_society": {
        "ja": "健康保険組合", "en": "Health insurance society",
    },
    "insurance.kind.municipal_nhi": {
        "ja": "市町村国民健康保険", "en": "Municipal national health insurance",
    },
    "insurance.kind.national_health_insurance_society": {
        "ja": "国民健康保険組合", "en": "National health insurance society",
    },
    "insurance.kind.late_elderly_medical_union": {
        "ja": "後期高齢者医療広域連合", "en": "Late-elderly medical care union",
    },
    "insurance.terminal_status.active": {"ja": "利用中", "en": "In use"},
    "insurance.terminal_status.suspended": {"ja": "停止中", "en": "Suspended"},
    "insurance.yes": {"ja": "はい", "en": "Yes"},
    "insurance.no": {"ja": "いいえ", "en": "No"},
    "insurance.none": {"ja": "なし", "en": "None"},
    "insurance.not_yet": {"ja": "—", "en": "—"},
    # --- the qualification, as every page shows it ------------------------------------------
    "insurance.q.insurer": {"ja": "保険者", "en": "Insurer"},
    "insurance.q.insurer_number": {"ja": "保険者番号", "en": "Insurer number"},
    "insurance.q.insured_number": {"ja": "記号・番号・枝番", "en": "Symbol, number, branch"},
    "insurance.q.symbol": {"ja": "記号", "en": "Symbol"},
    "insurance.q.number": {"ja": "番号", "en": "Number"},
    "insurance.q.branch": {"ja": "枝番", "en": "Branch"},
    "insurance.q.insured_kind": {"ja": "本人・家族の別", "en": "Insured person or dependant"},
    "insurance.q.copay": {"ja": "一部負担金の割合", "en": "Co-payment"},
    "insurance.q.copay_value": {"ja": "{n}割", "en": "{p}%"},
    "insurance.q.elderly": {"ja": "高齢受給者", "en": "Elderly recipient (70-74)"},
    "insurance.q.limit": {"ja": "限度額適用区分", "en": "Limit category"},
    "insurance.q.acquired_on": {"ja": "資格取得日", "en": "Qualified from"},
    "insurance.q.lost_on": {"ja": "資格喪失日", "en": "Qualification lost on"},
    "insurance.q.loss_reason": {"ja": "喪失事由", "en": "Reason for the loss"},
    "insurance.q.link_state": {"ja": "紐付けの状態", "en": "Link state"},
    "insurance.q.no_symbol": {"ja": "（記号なし）", "en": "(no symbol)"},
    # --- the reception (/clinic) -------------------------------------------------------------
    "insurance.clinic.title": {"ja": "医療機関の受付", "en": "Medical reception"},
    "insurance.clinic.lead": {
        "ja": (
            "オンライン資格確認の端末で、患者さんの保険資格を確認します。使えるのは、"
            "あなたが操作者として登録されている端末だけです。"
        ),
        "en": (
            "Confirm a patient's health-insurance eligibility on an online confirmation "
            "terminal. Only the terminals you are registered to operate are listed."
        ),
    },
    "insurance.clinic.terminals": {"ja": "使える端末", "en": "Your terminals"},
    "insurance.clinic.institution": {"ja": "医療機関", "en": "Medical institution"},
    "insurance.clinic.institution_code": {"ja": "医療機関コード", "en": "Institution code"},
    "insurance.clinic.terminal": {"ja": "端末", "en": "Terminal"},
    "insurance.clinic.status": {"ja": "状態", "en": "Status"},
    "insurance.clinic.use": {"ja": "この端末で受付", "en": "Use this terminal"},
    "insurance.clinic.no_terminals": {
        "ja": (
            "あなたが使える資格確認端末はありません。端末の管理者に、操作者としての登録を"
            "依頼してください。"
        ),
        "en": (
            "There is no eligibility terminal you may use. Ask the terminal's administrator to "
            "register you as an operator."
        ),
    },
    "insurance.clinic.confirm.title": {"ja": "資格確認", "en": "Confirm eligibility"},
    "insurance.clinic.confirm.lead": {
        "ja": (
            "患者さんのマイナンバーカードで確認する方法（暗証番号・顔認証・目視確認）か、"
            "資格確認書で確認する方法を選んでください。"
        ),
        "en": (
            "Confirm with the patient's My Number Card (PIN, face match or a visual check), "
            "or with an eligibility certificate."
        ),
    },
    "insurance.clinic.card.title": {"ja": "マイナンバーカードで確認", "en": "With the card"},
    "insurance.clinic.card.method": {"ja": "本人確認の方法", "en": "How the person is verified"},
    "insurance.clinic.card.lead": {
        "ja": (
            "患者さんにカードをカードリーダーに置いてもらい、本人確認の方法を選びます。"
            "暗証番号は患者さんご本人が入力します（職員は入力しません）。"
        ),
        "en": (
            "Have the patient place the card on the reader and choose how they are verified. "
            "The patient enters the PIN themselves; staff never do."
        ),
    },
    "insurance.clinic.card.pin_hint": {
        "ja": "「カード＋暗証番号」のときだけ入力します。数字4桁です。",
        "en": "Only for “card and PIN”: 4 digits.",
    },
    "insurance.clinic.face.note": {
        "ja": (
            "顔認証は、この試験環境では決定的な代替実装（スタンドイン）です。本物の顔照合は"
            "行いません。カードの券面写真と同じ画像を撮影写真として送ると一致と判定されます。"
        ),
        "en": (
            "In this sandbox the face match is a deterministic stand-in, not real face "
            "recognition: a live photo identical to the card's photo is taken as a match."
        ),
    },
    "insurance.clinic.face.photo": {"ja": "撮影した顔写真", "en": "Live photo"},
    "insurance.clinic.face.same": {
        "ja": "カードの写真と同じ人（一致する写真）",
        "en": "The person on the card (a matching photo)",
    },
    "insurance.clinic.face.other": {
        "ja": "別の人（一致しない写真）", "en": "Someone else (a photo that does not match)",
    },
    "insurance.clinic.visual.note": {
        "ja": (
            "目視確認では、職員がカードの顔写真とご本人を見比べて確認します。確認した職員として"
            "あなたの名前が記録されます。"
        ),
        "en": (
            "In a visual check you compare the card's photo with the person yourself. You are "
            "recorded as the member of staff who checked."
        ),
    },
    "insurance.clinic.card.cli": {
        "ja": "カードリーダーがない場合（署名と証明書を貼り付け）",
        "en": "Without a reader (paste the signature and certificate)",
    },
    "insurance.clinic.card.no_reader": {
        "ja": (
            "この環境には仮想カードリーダーがありません。次のコマンドでカードに署名させ、"
            "署名と利用者証明用電子証明書を貼り付けてください。"
        ),
        "en": (
            "There is no virtual card reader here. Sign with the card using the command below "
            "and paste the signature and the authentication certificate."
        ),
    },
    "insurance.clinic.card.submit": {"ja": "資格を確認する", "en": "Confirm eligibility"},
    "insurance.clinic.face.unavailable": {
        "ja": "この端末では顔認証を利用できません。暗証番号または目視確認で確認してください。",
        "en": "Face matching is not available here: use the PIN or a visual check.",
    },
    "insurance.clinic.activation.title": {
        "ja": "初回登録（マイナ保険証の利用登録）",
        "en": "First registration for insurance use",
    },
    "insurance.clinic.activation.lead": {
        "ja": (
            "このカードはまだマイナ保険証として登録されていません。ご本人が希望される場合は、"
            "カードをカードリーダーに置いたまま、ご本人に暗証番号（数字4桁）を入力していただくと"
            "この場で初回登録ができます。登録のあと、続けて資格を確認します。"
        ),
        "en": (
            "This card is not yet registered for insurance use. If the patient wishes, they "
            "can register it here: with the card on the reader, the patient enters the "
            "4-digit PIN. Eligibility is then confirmed as usual."
        ),
    },
    "insurance.clinic.activation.submit": {"ja": "初回登録する", "en": "Register the card"},
    "insurance.clinic.activation.done": {
        "ja": "初回登録が完了しました。続けて、カードで資格を確認してください。",
        "en": "The card is now registered for insurance use. Now confirm eligibility with "
              "the card.",
    },
    "insurance.clinic.document.title": {
        "ja": "資格確認書で確認", "en": "With an eligibility certificate",
    },
    "insurance.clinic.document.lead": {
        "ja": (
            "マイナンバーカードをお持ちでない方、カードを使えない方は、資格確認書の番号と"
            "生年月日で確認します。"
        ),
        "en": (
            "For a patient without a usable card: the certificate's number and the date of "
            "birth."
        ),
    },
    "insurance.clinic.document.submit": {
        "ja": "資格確認書で確認する", "en": "Confirm with the certificate",
    },
    "insurance.clinic.result.title": {"ja": "資格確認の結果", "en": "Eligibility"},
    "insurance.clinic.result.validity": {"ja": "資格有効性", "en": "Eligibility"},
    "insurance.clinic.result.method": {"ja": "確認の方法", "en": "Confirmed by"},
    "insurance.clinic.result.checked_at": {"ja": "確認日時", "en": "Confirmed at"},
    "insurance.clinic.result.qualification": {"ja": "資格情報", "en": "Qualification"},
    "insurance.clinic.result.no_qualification": {
        "ja": "表示できる資格情報はありません。", "en": "No qualification to show.",
    },
    "insurance.clinic.consent.title": {
        "ja": "情報の提供への同意", "en": "Consent to share information",
    },
    "insurance.clinic.consent.lead": {
        "ja": (
            "患者さんに、次の情報を今回の受診で医師などが見ることに同意するかを、項目ごとに"
            "選んでもらってください。同意は今回の受診に限り、{hours}時間で失効します"
            "（期限は医療機関では延ばせません）。同意しなくても受診できます。"
        ),
        "en": (
            "Ask the patient, item by item, whether the doctor may see the information below "
            "at this visit. Consent is for this visit only and ends after {hours} hours (the "
            "institution cannot extend it). Care does not depend on consenting."
        ),
    },
    "insurance.clinic.consent.agree": {"ja": "同意する", "en": "I agree"},
    "insurance.clinic.consent.refuse": {"ja": "同意しない", "en": "I do not agree"},
    "insurance.clinic.consent.submit": {"ja": "同意の内容を送る", "en": "Submit the choices"},
    "insurance.clinic.consent.none_possible": {
        "ja": "資格が有効でないため、情報の提供への同意はできません。",
        "en": "The qualification is not valid, so no information can be consented to.",
    },
    "insurance.clinic.visit.title": {"ja": "同意と情報の閲覧", "en": "Consent and information"},
    "insurance.clinic.records.choose": {
        "ja": "同意にもとづく情報の表示", "en": "Show information the patient consented to",
    },
    "insurance.clinic.consents.title": {"ja": "今回の受診での同意", "en": "Consents at this visit"},
    "insurance.clinic.consents.item": {"ja": "情報", "en": "Information"},
    "insurance.clinic.consents.choice": {"ja": "患者さんの選択", "en": "Patient's choice"},
    "insurance.clinic.consents.given_at": {"ja": "同意の日時", "en": "Chosen at"},
    "insurance.clinic.consents.expires_at": {"ja": "有効期限", "en": "Valid until"},
    "insurance.clinic.consents.granted": {"ja": "同意あり", "en": "Consented"},
    "insurance.clinic.consents.refused": {"ja": "同意なし", "en": "Refused"},
    "insurance.clinic.records.show": {"ja": "表示する", "en": "Show"},
    "insurance.clinic.records.title": {"ja": "{item}", "en": "{item}"},
    "insurance.clinic.records.lead": {
        "ja": (
            "患者さんの同意にもとづいて表示しています。"
            "この閲覧は患者さんのやりとり履歴に記録されます。"
        ),
        "en": (
            "Shown with the patient's consent. This view is recorded in the patient's "
            "exchange history."
        ),
    },
    "insurance.clinic.records.on": {"ja": "日付", "en": "Date"},
    "insurance.clinic.records.label.drugs": {"ja": "薬剤", "en": "Medication"},
    "insurance.clinic.records.label.checkups": {"ja": "検査項目", "en": "Measure"},
    "insurance.clinic.records.label.treatments": {"ja": "診療・手術", "en": "Treatment"},
    "insurance.clinic.records.value.drugs": {"ja": "用量・日数", "en": "Dose and days"},
    "insurance.clinic.records.value.checkups": {"ja": "結果", "en": "Result"},
    "insurance.clinic.records.value.treatments": {"ja": "内容", "en": "Details"},
    "insurance.clinic.records.source": {"ja": "報告元", "en": "Reported by"},
    "insurance.clinic.records.none": {
        "ja": "記録はありません。", "en": "There are no records.",
    },
    "insurance.clinic.refused.none": {
        "ja": "同意がないため表示できません。",
        "en": "This cannot be shown: the patient has not consented.",
    },
    "insurance.clinic.refused.refused": {
        "ja": "同意がないため表示できません（患者さんは同意しませんでした）。",
        "en": "This cannot be shown: the patient did not consent.",
    },
    "insurance.clinic.refused.expired": {
        "ja": "同意の有効期限が切れています。表示するには、改めて同意が必要です。",
        "en": "The consent has expired. A new consent is needed to show this.",
    },
    "insurance.clinic.refused.recorded": {
        "ja": "表示しなかったことも患者さんのやりとり履歴に記録されました。",
        "en": "That nothing was shown is also recorded in the patient's exchange history.",
    },
    "insurance.clinic.next": {"ja": "次の患者さんの受付", "en": "Next patient"},
    "insurance.clinic.back": {"ja": "端末の一覧に戻る", "en": "Back to the terminals"},
    "insurance.clinic.remaining": {
        "ja": "暗証番号が違います。あと {n} 回間違えるとロックされます。",
        "en": "Wrong PIN. {n} tries remaining before the PIN locks.",
    },
    # --- the insurer (/insurer) ---------------------------------------------------------------
    "insurance.insurer.title": {"ja": "保険者の業務", "en": "Insurer's work"},
    "insurance.insurer.lead": {
        "ja": (
            "被保険者の資格の登録、住民との紐付け、確認待ちの処理、再確認、資格確認書などの"
            "発行を行います。市区町村の職員は自団体の国民健康保険の保険者として操作できます。"
        ),
        "en": (
            "Enrol insured persons, link them to residents, work through the review queue, "
            "re-check links and issue documents. Municipal staff act for their municipality's "
            "national health insurance."
        ),
    },
    "insurance.insurer.choose": {"ja": "保険者を選ぶ", "en": "Choose an insurer"},
    "insurance.insurer.none": {
        "ja": (
            "あなたが担当できる保険者はありません（市区町村の職員は自団体の国民健康保険の保険者"
            "が登録されている場合に担当できます）。"
        ),
        "en": (
            "There is no insurer you can act for (municipal staff act for their municipality's "
            "national health insurance once it is registered)."
        ),
    },
    "insurance.insurer.kind": {"ja": "種別", "en": "Kind"},
    "insurance.insurer.open": {"ja": "開く", "en": "Open"},
    "insurance.insurer.persons": {"ja": "被保険者", "en": "Insured persons"},
    "insurance.insurer.persons.none": {
        "ja": "該当する被保険者はいません。", "en": "No insured person here.",
    },
    "insurance.insurer.filter": {"ja": "紐付けの状態で絞り込む", "en": "Filter by link state"},
    "insurance.insurer.next": {"ja": "次の{n}件", "en": "Next {n}"},
    "insurance.insurer.previous": {"ja": "前の{n}件", "en": "Previous {n}"},
    "insurance.insurer.actions": {"ja": "操作", "en": "Actions"},
    "insurance.insurer.details": {"ja": "詳細", "en": "Details"},
    "insurance.insurer.enrol": {"ja": "資格取得の登録", "en": "Enrol an insured person"},
    "insurance.insurer.enrol.lead": {
        "ja": (
            "資格取得届の内容を登録します。登録した時点では住民とは紐付きません。"
            "紐付けは4情報（氏名・生年月日・性別・住所）すべての照合で行います。"
        ),
        "en": (
            "Enter the notification of qualification. A new record is not linked to a "
            "resident: linking takes all four items (name, date of birth, sex, address)."
        ),
    },
    "insurance.insurer.enrol.submit": {"ja": "登録する", "en": "Enrol"},
    "insurance.insurer.enrol.items": {
        "ja": "基本4情報（保険者の記録）", "en": "The four basic items (the insurer's record)",
    },
    "insurance.insurer.enrol.qualification": {"ja": "資格", "en": "Qualification"},
    "insurance.insurer.find": {
        "ja": "記号・番号・枝番で被保険者を開く", "en": "Open an insured person by number",
    },
    "insurance.insurer.find.lead": {
        "ja": "被保険者番号で検索できるのは保険者だけです（告知要求制限）。",
        "en": "Only the insurer may look a person up by the insured number (the law limits it).",
    },
    "insurance.insurer.find.submit": {"ja": "開く", "en": "Open"},
    "insurance.insurer.link.title": {"ja": "住民との紐付け", "en": "Link to the resident"},
    "insurance.insurer.link.rule": {
        "ja": (
            "紐付けは、住基ネットでの4情報（氏名・生年月日・性別・住所）すべてによる検索か、"
            "ご本人から届け出られた個人番号を4情報で照合して行います。カナ氏名・生年月日・"
            "性別だけでの検索（3情報での紐付け）はできません。一致しないときは紐付けず、"
            "確認待ちに回します。"
        ),
        "en": (
            "A link is made only by a Juki-net search on all four items (name, date of birth, "
            "sex, address), or by the number the person gave, checked against the four items. "
            "A search on the kana name, date of birth and sex alone is not allowed. Anything "
            "that does not match goes to the review queue, never to a link."
        ),
    },
    "insurance.insurer.link.search": {
        "ja": "住基ネットで4情報検索して紐付け", "en": "Link by a four-item Juki-net search",
    },
    "insurance.insurer.link.number": {
        "ja": "届け出られた個人番号で紐付け", "en": "Link by the number the person gave",
    },
    "insurance.insurer.link.number.lead": {
        "ja": (
            "ご本人から届け出られた個人番号を入力します。番号は保存されず、画面にも再表示されません。"
            "住基ネットの4情報と照合し、すべて一致したときだけ紐付けます。"
        ),
        "en": (
            "Enter the number the person gave. It is neither stored nor shown again. The link "
            "is made only if all four items agree with Juki-net."
        ),
    },
    "insurance.insurer.link.number.submit": {
        "ja": "個人番号を照合して紐付け", "en": "Check the number and link",
    },
    "insurance.insurer.done.enrolled": {
        "ja": "資格取得を登録しました（まだ紐付けていません）。",
        "en": "The insured person was enrolled (not linked yet).",
    },
    "insurance.insurer.done.linked": {
        "ja": "4情報が一致したため、住民と紐付けました。",
        "en": "All four items matched: the record is linked to the resident.",
    },
    "insurance.insurer.done.review": {
        "ja": "紐付けませんでした。確認待ちに登録しました。理由：{reason}",
        "en": "Not linked: the record went to the review queue. Reason: {reason}",
    },
    "insurance.insurer.done.replaced": {
        "ja": "以前の保険者の資格は、この資格の取得日の前日までで終了しました（空白・重複なし）。",
        "en": (
            "The previous insurer's qualification ended the day before this one starts (no gap, "
            "no overlap)."
        ),
    },
    "insurance.insurer.done.lost": {
        "ja": "資格喪失を登録しました。", "en": "The loss of qualification was recorded.",
    },
    "insurance.insurer.done.resolved": {
        "ja": "確認待ちの案件を処理しました。", "en": "The review item was resolved.",
    },
    "insurance.insurer.person.title": {"ja": "被保険者", "en": "Insured person"},
    "insurance.insurer.documents": {"ja": "交付した書類", "en": "Documents issued"},
    "insurance.insurer.documents.none": {
        "ja": "交付した書類はありません。", "en": "No document has been issued.",
    },
    "insurance.insurer.documents.kind": {"ja": "書類", "en": "Document"},
    "insurance.insurer.documents.number": {"ja": "番号", "en": "Number"},
    "insurance.insurer.documents.issued_on": {"ja": "交付日", "en": "Issued on"},
    "insurance.insurer.documents.valid_until": {"ja": "有効期限", "en": "Valid until"},
    "insurance.insurer.documents.ended_at": {"ja": "終了", "en": "Ended"},
    "insurance.insurer.documents.current": {"ja": "現在有効", "en": "Current"},
    "insurance.insurer.lose.title": {"ja": "資格喪失の登録", "en": "Record the loss"},
    "insurance.insurer.lose.lead": {
        "ja": "資格喪失日は、資格がなくなる最初の日（最後の日の翌日）です。",
        "en": "The loss date is the first day not covered (the day after the last day).",
    },
    "insurance.insurer.lose.submit": {"ja": "資格喪失を登録", "en": "Record the loss"},
    "insurance.insurer.reviews": {"ja": "確認待ち", "en": "Review queue"},
    "insurance.insurer.reviews.lead": {
        "ja": (
            "4情報が一致せず紐付けなかった記録と、再確認で一致しなくなった記録です。記録を"
            "訂正して改めて4情報で照合するか、別人として紐付けないかを選びます。"
        ),
        "en": (
            "Records not linked because the four items did not match, and links a re-check "
            "found no longer matching. Correct the record and check the four items again, or "
            "mark it as not this person."
        ),
    },
    "insurance.insurer.reviews.none": {
        "ja": "確認待ちの案件はありません。", "en": "The review queue is empty.",
    },
    "insurance.insurer.reviews.created_at": {"ja": "受付日時", "en": "Since"},
    "insurance.insurer.reviews.person": {"ja": "被保険者", "en": "Insured person"},
    "insurance.insurer.reviews.reason": {"ja": "理由", "en": "Reason"},
    "insurance.insurer.reviews.differing": {"ja": "一致しない項目", "en": "Items that differ"},
    "insurance.insurer.reviews.dismiss": {
        "ja": "別人として紐付けない", "en": "Not this person (leave unlinked)",
    },
    "insurance.insurer.reviews.correct": {
        "ja": "記録を訂正して4情報で再照合", "en": "Correct the record and check again",
    },
    "insurance.insurer.reviews.correct.lead": {
        "ja": "訂正後の4情報をすべて入力してください。一致しなければ紐付けません。",
        "en": "Enter all four corrected items. Nothing is linked unless they match.",
    },
    "insurance.insurer.recheck": {"ja": "紐付けの一斉再確認", "en": "Re-check every link"},
    "insurance.insurer.recheck.lead": {
        "ja": (
            "紐付け済みのすべての記録を住基ネットの4情報と照合し直します。一致しない記録は"
            "閲覧を停止し、確認待ちに回します。"
        ),
        "en": (
            "Compare every linked record with Juki-net's four items again. Any that no longer "
            "match are blocked and go to the review queue."
        ),
    },
    "insurance.insurer.recheck.submit": {"ja": "再確認を実行", "en": "Run the re-check"},
    "insurance.insurer.recheck.done": {
        "ja": "再確認しました：{checked}件中、一致{matching}件、停止{blocked}件。",
        "en": "Re-checked {checked}: {matching} still match, {blocked} blocked.",
    },
    "insurance.insurer.issue": {"ja": "書類の一斉発行", "en": "Issue documents"},
    "insurance.insurer.issue.lead": {
        "ja": (
            "申請によらず、マイナ保険証を使えない方には資格確認書（有効期限は最長5年）を、"
            "マイナ保険証を使える方には資格情報のお知らせを発行します。1人に同時に両方は"
            "発行しません。"
        ),
        "en": (
            "Without application: an eligibility certificate (valid up to 5 years) for each "
            "person without a usable card, and a notice of qualification details for each "
            "person with one. Never both at once."
        ),
    },
    "insurance.insurer.issue.submit": {"ja": "発行する", "en": "Issue"},
    "insurance.insurer.issue.done": {
        "ja": "発行しました：資格確認書{certificates}件、資格情報のお知らせ{notices}件。",
        "en": "Issued {certificates} eligibility certificates and {notices} notices.",
    },
    "insurance.insurer.back": {"ja": "被保険者の一覧に戻る", "en": "Back to the insured persons"},
    # --- the resident (/portal/insurance) ------------------------------------------------------
    "insurance.portal.title": {
        "ja": "マイナ保険証",
        "en": "My Number Card as health insurance card",
    },
    "insurance.portal.lead": {
        "ja": (
            "マイナンバーカードを健康保険証として使うための登録と、あなたの資格情報、"
            "医療機関などでの資格確認や情報の閲覧の記録を確認できます。"
        ),
        "en": (
            "Register your My Number Card for use as your health insurance card, and see your "
            "qualification and the record of confirmations and views at medical institutions."
        ),
    },
    "insurance.portal.home": {
        "ja": "健康保険証としての利用登録、保険者、医療機関での確認・閲覧の記録",
        "en": "Use as your health insurance card, your insurer, and who confirmed or viewed",
    },
    "insurance.portal.current": {"ja": "現在の保険者", "en": "Your insurer now"},
    "insurance.portal.current.lead": {
        "ja": "カードで受診すると、次の保険者の資格で確認されます。",
        "en": "When you use the card at a medical institution, this qualification is confirmed.",
    },
    "insurance.portal.current.none": {
        "ja": (
            "現在、あなたのカードはどの保険者の資格にもつながっていません。保険者の登録が"
            "済んでいないか、資格を失っている可能性があります。加入先の保険者にお問い合わせ"
            "ください。"
        ),
        "en": (
            "Your card does not point to any insurer's qualification now: your insurer may "
            "not have registered you yet, or the qualification ended. Please ask your insurer."
        ),
    },
    "insurance.portal.activated": {
        "ja": "マイナ保険証として利用登録済みです（登録日時：{at}）。",
        "en": "Registered for use as your health insurance card (at {at}).",
    },
    "insurance.portal.activate.title": {"ja": "初回登録", "en": "Register for insurance use"},
    "insurance.portal.activate.lead": {
        "ja": (
            "マイナンバーカードを健康保険証として使うには、一度だけ初回登録が必要です。"
            "ご本人のカードで認証してください（ログインに使ったカードと同じカードです）。"
        ),
        "en": (
            "To use your My Number Card as your health insurance card, register it once. "
            "Confirm with your own card (the card you logged in with)."
        ),
    },
    "insurance.portal.activate.submit": {"ja": "初回登録する", "en": "Register"},
    "insurance.portal.done.activated": {
        "ja": "初回登録が完了しました。マイナ保険証として使えます。",
        "en": "Registered: your card can now be used as your health insurance card.",
    },
    "insurance.portal.documents": {
        "ja": "資格情報のお知らせ・資格確認書", "en": "Qualification notice and certificate",
    },
    "insurance.portal.documents.lead": {
        "ja": (
            "マイナ保険証をお使いの方には資格情報のお知らせが、マイナ保険証を使えない方には"
            "資格確認書が、保険者から申請によらず交付されます。"
        ),
        "en": (
            "Your insurer sends a notice of qualification details if you use the card, and an "
            "eligibility certificate if you cannot, without application."
        ),
    },
    "insurance.portal.documents.none": {
        "ja": "交付された書類はありません。", "en": "No document has been issued to you.",
    },
    "insurance.portal.access": {
        "ja": "医療機関での資格確認・閲覧の記録",
        "en": "Confirmations and views at medical institutions",
    },
    "insurance.portal.access.lead": {
        "ja": (
            "医療機関や薬局があなたの資格を確認した記録、あなたが同意した（しなかった）情報、"
            "医療機関が閲覧した情報と、同意がなく閲覧できなかった記録です。"
        ),
        "en": (
            "When medical institutions and pharmacies confirmed your eligibility, what you "
            "consented (or did not consent) to, what they viewed, and views refused for want of "
            "consent."
        ),
    },
    "insurance.portal.access.none": {
        "ja": "記録はまだありません。", "en": "There are no records yet.",
    },
    "insurance.portal.access.at": {"ja": "日時", "en": "When"},
    "insurance.portal.access.institution": {"ja": "医療機関・薬局", "en": "Institution"},
    "insurance.portal.access.action": {"ja": "内容", "en": "What happened"},
    "insurance.portal.access.detail": {"ja": "詳細", "en": "Details"},
    "insurance.portal.access.unavailable": {
        "ja": "記録を現在表示できません。しばらくしてからもう一度お試しください。",
        "en": "The records cannot be shown right now. Please try again later.",
    },
    "insurance.portal.self_only": {
        "ja": (
            "マイナ保険証の画面は、ご本人のカードでログインしたときだけ表示できます。"
            "代理人として操作しているときは、ご本人に切り替えてください。"
        ),
        "en": (
            "This page is shown only to the person themselves, logged in with their own card. "
            "If you act as a proxy, switch back to yourself."
        ),
    },
    "insurance.history.title": {
        "ja": "医療機関での資格確認・閲覧", "en": "Medical institutions: confirmations and views",
    },
    "insurance.history.more": {
        "ja": "マイナ保険証の画面で見る", "en": "See your health insurance card page",
    },
    # --- form fields (error_box: "insurance.field.<name>") -------------------------------------
    "insurance.field.card_id": {"ja": "カード", "en": "Card"},
    "insurance.field.pin": {
        "ja": "暗証番号（利用者証明用・数字4桁）", "en": "PIN (user authentication, 4 digits)",
    },
    "insurance.field.method": {"ja": "本人確認の方法", "en": "Verification"},
    "insurance.field.face": {"ja": "撮影した顔写真", "en": "Live photo"},
    "insurance.field.challenge_id": {"ja": "カード認証", "en": "Card authentication"},
    "insurance.field.challenge": {"ja": "カード認証", "en": "Card authentication"},
    "insurance.field.signature": {"ja": "署名", "en": "Signature"},
    "insurance.field.certificate": {"ja": "利用者証明用電子証明書", "en": "Certificate"},
    "insurance.field.document_number": {"ja": "資格確認書の番号", "en": "Certificate number"},
    "insurance.field.birth_date": {"ja": "生年月日", "en": "Date of birth"},
    "insurance.field.symbol": {"ja": "記号", "en": "Symbol"},
    "insurance.field.number": {"ja": "番号", "en": "Number"},
    "insurance.field.branch": {"ja": "枝番（2桁）", "en": "Branch (2 digits)"},
    "insurance.field.insured_kind": {"ja": "本人・家族の別", "en": "Insured person or dependant"},
    "insurance.field.acquired_on": {"ja": "資格取得日", "en": "Qualified from"},
    "insurance.field.copay_percent": {"ja": "一部負担金の割合", "en": "Co-payment"},
    "insurance.field.elderly_recipient": {
        "ja": "高齢受給者（70〜74歳）", "en": "Elderly recipient (70-74)",
    },
    "insurance.field.limit_category": {"ja": "限度額適用区分", "en": "Limit category"},
    "insurance.field.name": {"ja": "氏名", "en": "Name"},
    "insurance.field.name_kana": {"ja": "氏名（カナ）", "en": "Name (kana)"},
    "insurance.field.sex": {"ja": "性別", "en": "Sex"},
    "insurance.field.address": {"ja": "住所", "en": "Address"},
    "insurance.field.individual_number": {"ja": "個人番号", "en": "Individual number"},
    "insurance.field.lost_on": {"ja": "資格喪失日", "en": "Loss date"},
    "insurance.field.loss_reason": {"ja": "喪失事由", "en": "Reason"},
    "insurance.field.qualification_id": {"ja": "被保険者", "en": "Insured person"},
    "insurance.field.review_id": {"ja": "確認待ちの案件", "en": "Review item"},
    "insurance.field.resolution": {"ja": "処理", "en": "Resolution"},
    "insurance.field.item": {"ja": "情報", "en": "Information"},
    "insurance.field.visit_id": {"ja": "受付", "en": "Visit"},
    "insurance.field.insurer_number": {"ja": "保険者番号", "en": "Insurer number"},
    "insurance.field.years": {"ja": "有効期間（年）", "en": "Validity (years)"},
    "insurance.field.consent_drugs": {"ja": "薬剤情報", "en": "Medication information"},
    "insurance.field.consent_checkups": {
        "ja": "特定健診情報", "en": "Specific health check-up information",
    },
    "insurance.field.consent_treatments": {
        "ja": "診療・手術情報", "en": "Treatment and surgery information",
    },
    "insurance.hint.branch": {"ja": "例：00、01", "en": "e.g. 00, 01"},
    "insurance.hint.name_kana": {"ja": "全角カタカナ", "en": "Katakana"},
    # --- errors (error_box: "insurance.error.<code>") -------------------------------------
    "insurance.error.insurance_invalid_input": {
        "ja": "入力内容を確認してください", "en": "Please check the input",
    },
    "insurance.error.insurance_invalid_insurer_number": {
        "ja": "保険者番号が正しくありません（桁数または検証番号）",
        "en": "Not a valid insurer number (length or check digit)",
    },
    "insurance.error.insurance_four_items_required": {
        "ja": (
            "紐付けには4情報（氏名・生年月日・性別・住所）すべてが必要です。カナ氏名・生年月日・"
            "性別だけでの検索はできません"
        ),
        "en": (
            "Linking needs all four items (name, date of birth, sex, address): a search on the "
            "kana name, date of birth and sex alone is not allowed"
        ),
    },
    "insurance.error.insurance_insurer_not_found": {
        "ja": "その保険者は登録されていません", "en": "No such insurer",
    },
    "insurance.error.insurance_qualification_not_found": {
        "ja": "この保険者にその被保険者はいません",
        "en": "No such insured person at this insurer",
    },
    "insurance.error.insurance_review_not_found": {
        "ja": "その確認待ちの案件はありません", "en": "No such review item",
    },
    "insurance.error.insurance_already_enrolled": {
        "ja": "その記号・番号・枝番はすでに登録されています",
        "en": "This insured number is already enrolled",
    },
    "insurance.error.insurance_overlapping_qualification": {
        "ja": "この方の他の資格と期間が重なります",
        "en": "This would overlap the person's other qualification",
    },
    "insurance.error.insurance_already_linked": {
        "ja": "この記録はすでに紐付けられています", "en": "This record is already linked",
    },
    "insurance.error.insurance_link_blocked": {
        "ja": "この記録は再確認で不一致となったため停止中です。確認待ちを処理してください",
        "en": "This record is blocked after a re-check: resolve its review item first",
    },
    "insurance.error.insurance_terminal_unknown": {
        "ja": "この資格確認端末は登録されていないか、停止されています",
        "en": "This terminal is unknown or suspended",
    },
    "insurance.error.insurance_terminal_refused": {
        "ja": "資格確認端末からの要求を受け付けられませんでした",
        "en": "The terminal's request was refused",
    },
    "insurance.error.insurance_terminal_not_yours": {
        "ja": "この資格確認端末を使う権限がありません",
        "en": "You are not registered to operate this terminal",
    },
    "insurance.error.insurance_challenge_refused": {
        "ja": "カードの読み取りからやり直してください（受付の有効期限切れ、または使用済み）",
        "en": "Start again from reading the card (the request expired or was already used)",
    },
    "insurance.error.insurance_card_refused": {
        "ja": "マイナンバーカードを確認できませんでした",
        "en": "The card could not be verified",
    },
    "insurance.error.insurance_not_activated": {
        "ja": (
            "このカードはマイナ保険証として登録されていません。初回登録が必要です"
            "（マイナポータル、または医療機関の顔認証付きカードリーダーで登録できます）"
        ),
        "en": (
            "This card is not registered for insurance use: it must be registered first (in "
            "the portal, or at a medical institution's card reader)"
        ),
    },
    "insurance.error.insurance_already_activated": {
        "ja": "このカードはすでにマイナ保険証として登録されています",
        "en": "The card is already registered for insurance use",
    },
    "insurance.error.insurance_visit_not_found": {
        "ja": "この受付は見つかりません。資格確認からやり直してください",
        "en": "No such visit at this institution: confirm eligibility again",
    },
    "insurance.error.insurance_consent_required": {
        "ja": "同意がないため表示できません", "en": "Not shown: there is no consent",
    },
    "insurance.error.insurance_document_not_found": {
        "ja": "資格確認書の番号または生年月日が一致しません",
        "en": "The certificate number or the date of birth does not match",
    },
    "insurance.error.insurance_for_self_only": {
        "ja": "マイナ保険証の登録はご本人だけができます",
        "en": "Only the person themselves can do this",
    },
    "insurance.error.insurance_card_authentication_required": {
        "ja": "マイナンバーカードでの認証が必要です",
        "en": "Confirm with your My Number Card",
    },
    "insurance.error.insurance_card_other_person": {
        "ja": "ログインしている方ご本人のカードではありません。ご本人のカードで認証してください",
        "en": "The card is not that of the person logged in: use your own card",
    },
    "insurance.error.insurance_no_insurer": {
        "ja": "この保険者の業務を行う権限がありません",
        "en": "You may not act for this insurer",
    },
    "insurance.error.portal_login_failed": {
        "ja": "カードでの認証ができませんでした。もう一度認証してください",
        "en": "The card authentication failed: please try again",
    },
    "insurance.error.card_reader_unavailable": {
        "ja": "仮想カードリーダーは組込みモードでのみ使えます",
        "en": "The virtual card reader exists only in the embedded mode",
    },
    "insurance.error.reader_card_not_found": {
        "ja": "そのカードは読み取れません", "en": "That card is not in the reader",
    },
    "insurance.error.reader_wrong_pin": {"ja": "暗証番号が違います", "en": "Wrong PIN"},
    "insurance.error.reader_pin_locked": {
        "ja": (
            "暗証番号がロックされています。お住まいの市区町村の窓口で暗証番号の初期化（再設定）を"
            "受けてください"
        ),
        "en": "The PIN is locked: have it reset at the municipal counter",
    },
    "insurance.error.reader_pin_format": {
        "ja": "暗証番号は数字4桁です", "en": "The PIN is 4 digits",
    },
    "insurance.error.not_found": {"ja": "見つかりません", "en": "Not found"},
    "insurance.error.insurance_insurer_exists": {
        "ja": "その保険者番号はすでに登録されています",
        "en": "An insurer with this number is already registered",
    },
    "insurance.error.insurance_face_match_unavailable": {
        "ja": "この環境では顔認証を使えません。暗証番号か目視確認で確認してください",
        "en": "Face matching is not available here: use the PIN or a visual check",
    },
    "insurance.refusal.card.untrusted_chain": {
        "ja": "公的個人認証の電子証明書として確認できないカードです。",
        "en": "The certificate is not one of the public individual authentication service.",
    },
    "insurance.refusal.card.status_unknown": {
        "ja": (
            "電子証明書の失効情報を確認できませんでした。"
            "しばらくしてからもう一度お試しください。"
        ),
        "en": "The certificate's revocation status could not be checked. Try again later.",
    },
    "insurance.refusal.card.malformed_certificate": {
        "ja": "カードの電子証明書を読み取れませんでした。もう一度カードを読み取ってください。",
        "en": "The card's certificate could not be read. Read the card again.",
    },
    "insurance.refusal.card.wrong_kind": {
        "ja": "利用者証明用電子証明書ではありません。",
        "en": "This is not a user authentication certificate.",
    },
    "insurance.refusal.card.holder_mismatch": {
        "ja": "カードの持ち主がご本人と一致しません。",
        "en": "The card's holder is not this person.",
    },
    "insurance.refusal.card.unregistered_relying_party": {
        "ja": (
            "この資格確認の仕組みが公的個人認証に登録されていません。"
            "運用者にお問い合わせください。"
        ),
        "en": "This service is not registered with the public individual authentication service.",
    },
    "insurance.refusal.card.no_identifier": {
        "ja": "カードの利用者を確認できませんでした。",
        "en": "The card's holder could not be identified.",
    },
    # Why a card was refused (CardRefused's reason), in words.
    "insurance.refusal.card.revoked": {
        "ja": (
            "カードの電子証明書が失効しています。"
            "お住まいの市区町村で再発行の手続きをしてください。"
        ),
        "en": "The card's certificate has been revoked. It can be renewed at the municipality.",
    },
    "insurance.refusal.card.expired": {
        "ja": "カードの電子証明書の有効期限が切れています。市区町村の窓口で更新してください。",
        "en": "The card's certificate has expired. It can be renewed at the municipal counter.",
    },
    "insurance.refusal.card.not_yet_valid": {
        "ja": "カードの電子証明書はまだ有効になっていません。",
        "en": "The card's certificate is not valid yet.",
    },
    "insurance.refusal.card.bad_signature": {
        "ja": "カードの署名を確認できませんでした。もう一度カードを読み取ってください。",
        "en": "The card's signature could not be verified. Read the card again.",
    },
    "insurance.refusal.card.untrusted": {
        "ja": "公的個人認証の電子証明書として確認できないカードです。",
        "en": "The certificate is not one of the public individual authentication service.",
    },
    "insurance.refusal.card.face_mismatch": {
        "ja": "顔認証で本人と確認できませんでした。暗証番号か目視確認で確認してください。",
        "en": "The face did not match. Use the PIN or a visual check instead.",
    },
    "insurance.refusal.card.missing": {
        "ja": "本人確認に必要なもの（署名・写真・確認した職員）がありません。",
        "en": "Something the verification needs (signature, photo, staff) is missing.",
    },
    "insurance.refusal.card.other": {
        "ja": "カードを確認できませんでした。", "en": "The card could not be verified.",
    },
    "insurance.refusal.challenge.expired": {
        "ja": "受付の有効期限（5分）が切れました。", "en": "The request expired (5 minutes).",
    },
    "insurance.refusal.challenge.used": {
        "ja": "この受付はすでに使われました。", "en": "This request was already used.",
    },
    "insurance.refusal.challenge.unknown": {
        "ja": "この受付は見つかりません。", "en": "The request is unknown.",
    },
    "insurance.refusal.challenge.other_terminal": {
        "ja": "別の端末の受付です。", "en": "The request belongs to another terminal.",
    },
    "insurance.refusal.consent.none": {
        "ja": "同意がないため表示できません。", "en": "Not shown: there is no consent.",
    },
    "insurance.refusal.consent.refused": {
        "ja": "同意がないため表示できません（患者さんは同意しませんでした）。",
        "en": "Not shown: the patient did not consent.",
    },
    "insurance.refusal.consent.expired": {
        "ja": "同意の有効期限が切れています。", "en": "The consent has expired.",
    },
}

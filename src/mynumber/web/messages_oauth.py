"""UI strings of the self-information API's consent and error pages (Japanese first, English)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "oauth.portal": {"ja": "マイナポータル", "en": "Myna Portal"},
    "oauth.consent.title": {"ja": "情報提供への同意", "en": "Consent to share your information"},
    "oauth.consent.lead": {
        "ja": (
            "「{client}」があなたの情報の取得を求めています。提供してよい項目だけに"
            "チェックを付けて「同意する」を押してください。取得のたびに、やりとり履歴に記録されます。"
        ),
        "en": (
            "\"{client}\" asks for your information. Tick only the items you agree to share "
            "and press \"Agree\". Every fetch is recorded in your exchange history."
        ),
    },
    "oauth.consent.proxy": {
        "ja": (
            "代理人として、ご本人に代わって同意しようとしています。"
            "同意は代理人の操作として記録されます。"
        ),
        "en": (
            "You are consenting as a proxy on behalf of the person. The consent is recorded as "
            "your action."
        ),
    },
    "oauth.consent.items": {"ja": "提供する情報", "en": "Information to share"},
    "oauth.consent.give": {"ja": "提供", "en": "Share"},
    "oauth.consent.item": {"ja": "情報の項目", "en": "Item"},
    "oauth.consent.source": {"ja": "情報の提供元", "en": "Provided by"},
    "oauth.consent.openid": {
        "ja": (
            "このサービス専用の識別子 (サービスごとに異なり、個人番号ではありません) も"
            "通知されます。"
        ),
        "en": (
            "The service also receives an identifier of its own (different for every service; "
            "never your individual number)."
        ),
    },
    "oauth.consent.revoke_hint": {
        "ja": "同意はマイナポータルでいつでも取り消せます。取り消すと直ちに取得できなくなります。",
        "en": "You can withdraw the consent in the portal at any time; it stops at once.",
    },
    "oauth.consent.approve": {"ja": "同意する", "en": "Agree"},
    "oauth.consent.deny": {"ja": "同意しない", "en": "Do not agree"},
    "oauth.client.name": {"ja": "サービス名", "en": "Service"},
    "oauth.client.organisation": {"ja": "提供者", "en": "Operated by"},
    "oauth.client.contact": {"ja": "連絡先", "en": "Contact"},
    "oauth.error.title": {"ja": "連携を開始できません", "en": "The request cannot continue"},
    "oauth.error.lead": {
        "ja": "サービスからの要求が正しくないため、処理を中止しました。情報は提供されていません。",
        "en": "The service's request is not valid, so it was stopped. Nothing was shared.",
    },
    "oauth.error.hint": {
        "ja": "利用中のサービスに戻り、最初からやり直してください。",
        "en": "Go back to the service you were using and start again.",
    },
    "oauth.back_to_portal": {"ja": "マイナポータルのトップへ", "en": "Portal home"},
}

"""The resident's マイナ保険証 page (``/portal/insurance``) and the insurance section of
やりとり履歴 (``/portal/history``): which insurer the card points to now (or that none does),
初回登録 bound to a fresh card authentication for the purpose ``insurance`` by the person
logged in, the documents, and the access records (who confirmed, what was viewed, what was
refused, the consents). Japanese first, English with ``?lang=en``."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.insurance.interfaces import (
    ConfirmationMethod,
    ConsentItem,
    ConsentRequired,
    CoverageDocumentKind,
)
from mynumber.portal.interfaces import ProxyKind
from mynumber.web.i18n import MESSAGES
from tests.insurance.support_api import SOCIETY, holder, linked, reception
from tests.insurance.support_pages import (
    Patient,
    assert_plain_japanese,
    hidden,
    patient,
    text_of,
)
from tests.insurance.support_pages import page_client as page_client  # a fixture
from tests.portal.conftest import AUTH_PIN
from tests.portal.test_views import Browser

PAGE = "/portal/insurance"


def ja(key: str) -> str:
    return MESSAGES[key]["ja"]


@pytest.fixture
def browser(page_client: TestClient) -> Browser:
    return Browser(page_client)


class CardOf:
    """What the portal's reader login needs of a holder: the card's id."""

    def __init__(self, p: Patient) -> None:
        self.card_id = p.card.record.card_id


def log_in(browser: Browser, p: Patient) -> None:
    assert browser.reader_login(CardOf(p)).status_code == 303  # type: ignore[arg-type]


def activate(browser: Browser, card_id: str, *, pin: str = AUTH_PIN,
             form: dict[str, str] | None = None) -> Any:
    if form is None:
        page = browser.get(PAGE)
        assert 'id="activate-form"' in page.text, page.text
        form = hidden(page, "activate-form")
    return browser.post(PAGE + "/activate", {**form, "card_id": card_id, "pin": pin})


def visit_at_a_clinic(container: Container, p: Patient) -> None:
    """A reception checks the card, the patient consents to 薬剤情報 only, the institution
    views it and tries 特定健診情報 (refused, recorded)."""
    desk = reception(container)
    challenge = container.eligibility.challenge(desk.terminal)
    result = container.eligibility.check_card(
        desk.terminal, challenge.challenge_id, p.card.certificate,
        method=ConfirmationMethod.CARD_PIN, signature=p.card.sign(challenge.challenge))
    container.eligibility.consent(desk.terminal, result.visit_id,
                                  {ConsentItem.DRUGS: True, ConsentItem.CHECKUPS: False})
    container.eligibility.records(desk.terminal, result.visit_id, ConsentItem.DRUGS)
    with pytest.raises(ConsentRequired):
        container.eligibility.records(desk.terminal, result.visit_id, ConsentItem.CHECKUPS)


def test_the_page_needs_a_portal_session(page_client: TestClient) -> None:
    response = page_client.get(PAGE, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/portal/login")


def test_first_registration_with_a_fresh_card_authentication(
    container: Container, clerk: StaffPrincipal, browser: Browser,
) -> None:
    taro = patient(container, clerk, activate=False)
    log_in(browser, taro)
    home = browser.get("/portal")
    assert f'href="{PAGE}"' in home.text and "マイナ保険証" in home.text
    page = browser.get(PAGE)
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "現在の保険者" in shown and "全国健康保険協会 東京支部" in shown
    assert ja("insurance.portal.activate.lead") in shown
    assert 'id="activate-form"' in page.text and 'name="pin"' in page.text
    assert_plain_japanese(page.text)
    assert not container.eligibility.card_status(taro.card.resident.id).activated

    form = hidden(page, "activate-form")
    done = activate(browser, taro.card.record.card_id, form=form)
    assert done.status_code == 303 and done.headers["location"] == PAGE + "?done=activated"
    after = browser.follow(done)
    assert ja("insurance.portal.done.activated") in after.text
    assert "マイナ保険証として利用登録済みです" in after.text
    assert 'id="activate-form"' not in after.text
    assert "マイナ保険証の初回登録" in text_of(after.text)  # in the access records
    assert_plain_japanese(after.text)
    assert container.eligibility.card_status(taro.card.resident.id).activated

    # The challenge was spent: the same form again is refused, in words.
    replay = activate(browser, taro.card.record.card_id, form=form)
    assert replay.status_code == 401
    assert ja("insurance.error.portal_login_failed") in replay.text
    assert_plain_japanese(replay.text)


def test_another_persons_card_or_a_wrong_pin_registers_nothing(
    container: Container, clerk: StaffPrincipal, browser: Browser,
) -> None:
    taro = patient(container, clerk, activate=False)
    hanako = patient(container, clerk, activate=False, insurers=False, given_name="花子",
                     given_name_kana="ハナコ")
    log_in(browser, taro)
    wrong = activate(browser, taro.card.record.card_id, pin="0000")
    assert wrong.status_code == 422
    assert "暗証番号が違います。あと 2 回間違えるとロックされます。" in wrong.text
    assert_plain_japanese(wrong.text, extra=("wrong PIN",))
    other = activate(browser, hanako.card.record.card_id)
    assert other.status_code == 403
    assert ja("insurance.error.insurance_card_other_person") in other.text
    assert_plain_japanese(other.text)
    for p in (taro, hanako):
        assert not container.eligibility.card_status(p.card.resident.id).activated


def test_a_card_that_points_to_no_insurer_says_so(
    container: Container, clerk: StaffPrincipal, browser: Browser,
) -> None:
    card = holder(container, clerk)
    p = Patient(card, None)  # type: ignore[arg-type]
    log_in(browser, p)
    page = browser.get(PAGE)
    assert page.status_code == 200
    assert ja("insurance.portal.current.none") in page.text
    assert ja("insurance.portal.access.none") in page.text
    assert ja("insurance.portal.documents.none") in page.text
    assert_plain_japanese(page.text)


def test_a_job_change_shows_the_new_insurer_and_the_documents(
    container: Container, clerk: StaffPrincipal, browser: Browser,
) -> None:
    taro = patient(container, clerk)
    linked(container, taro.card.resident, SOCIETY, acquired_on=dt.date(2025, 4, 1))
    counts = container.insurance.issue_documents(SOCIETY)
    assert counts[CoverageDocumentKind.QUALIFICATION_NOTICE] == 1
    log_in(browser, taro)
    page = browser.get(PAGE)
    current = text_of(re.search(r'<section class="panel" id="current-insurer">.*?</section>',
                                page.text, re.S).group(0))
    assert "日立健康保険組合" in current and "全国健康保険協会" not in current
    assert "資格取得日 2025年4月1日" in current
    documents = text_of(re.search(r'id="documents">.*?</table>', page.text, re.S).group(0))
    assert "資格情報のお知らせ" in documents and "現在有効" in documents
    assert_plain_japanese(page.text)


def test_the_access_records_on_the_page_and_in_the_exchange_history(
    container: Container, clerk: StaffPrincipal, browser: Browser,
) -> None:
    taro = patient(container, clerk)
    visit_at_a_clinic(container, taro)
    log_in(browser, taro)
    page = browser.get(PAGE)
    rows = [text_of(r) for r in re.findall(r'<tr data-action="\w+">(.*?)</tr>', page.text, re.S)]
    joined = "\n".join(rows)
    assert "新宿テストクリニック" in joined
    for words in ("資格確認", "マイナンバーカード＋暗証番号", "資格有効性：有効", "同意しました",
                  "同意しませんでした", "閲覧", "薬剤情報", "閲覧を拒否（同意なし・期限切れ）",
                  "特定健診情報"):
        assert words in joined, words
    assert_plain_japanese(page.text)

    history = browser.get("/portal/history")
    assert history.status_code == 200
    section = re.search(r'<section class="panel" id="insurance-history">.*?</section>',
                        history.text, re.S)
    assert section, history.text
    shown = text_of(section.group(0))
    assert ja("insurance.history.title") in shown
    assert "新宿テストクリニック" in shown and "閲覧を拒否（同意なし・期限切れ）" in shown
    assert f'href="{PAGE}"' in section.group(0)
    assert_plain_japanese(history.text)

    english = text_of(browser.get("/portal/history?lang=en").text)
    assert "Medical institutions: confirmations and views" in english
    assert "Viewing refused (no consent, or it expired)" in english


def test_another_residents_records_are_not_in_ones_history(
    container: Container, clerk: StaffPrincipal, browser: Browser,
) -> None:
    taro = patient(container, clerk)
    hanako = patient(container, clerk, insurers=False, given_name="花子",
                     given_name_kana="ハナコ")
    visit_at_a_clinic(container, taro)
    log_in(browser, hanako)
    history = browser.get("/portal/history")
    section = re.search(r'<section class="panel" id="insurance-history">.*?</section>',
                        history.text, re.S)
    assert section and "新宿テストクリニック" not in section.group(0)
    assert [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", section.group(0))
            ][2::4] == ["マイナ保険証の初回登録"]  # her own 初回登録 only
    assert "新宿テストクリニック" not in browser.get(PAGE).text


def test_a_proxy_sees_a_sentence_not_the_principals_insurance(
    container: Container, clerk: StaffPrincipal, browser: Browser,
) -> None:
    guardian = patient(container, clerk)
    ward = patient(container, clerk, insurers=False, given_name="花子",
                   given_name_kana="ハナコ")
    container.portal.register_proxy(clerk.actor, ward.card.resident.id,
                                    guardian.card.resident.id, ProxyKind.ADULT_GUARDIAN)
    visit_at_a_clinic(container, ward)
    log_in(browser, guardian)
    principals = re.findall(r'name="principal_account_id" value="(\d+)"',
                            browser.get("/portal").text)
    assert principals, "the guardian is offered to act for the ward"
    acting = browser.post("/portal/proxies/act-for", {"principal_account_id": principals[0]})
    assert acting.status_code == 303
    page = browser.get(PAGE)
    assert page.status_code == 200
    assert ja("insurance.portal.self_only") in page.text
    assert "新宿テストクリニック" not in page.text and 'id="activate-form"' not in page.text
    history = browser.get("/portal/history")
    assert 'id="insurance-history"' not in history.text


def test_the_page_in_english(
    container: Container, clerk: StaffPrincipal, browser: Browser,
) -> None:
    taro = patient(container, clerk, activate=False)
    log_in(browser, taro)
    page = text_of(browser.get(PAGE + "?lang=en").text)
    assert "My Number Card as health insurance card" in page
    assert "Your insurer now" in page and "Register for insurance use" in page
    assert "Insured person" in page and "30%" in page
    wrong = text_of(activate(browser, taro.card.record.card_id, pin="1111").text)
    assert "Wrong PIN. 2 tries remaining" in wrong

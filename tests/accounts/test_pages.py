"""The resident's 公金受取口座 pages: register, change and delete through the portal with the
card, the holder-name refusal in the catalogue's words with both names, and the shared
terminal (another person's card in this session, a replayed challenge)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from tests.portal.conftest import AUTH_PIN, CardHolder, issue_card_holder
from tests.portal.test_views import Browser
from tests.portal.test_views import browser as browser  # a fixture
from tests.portal.test_views import client as client  # a fixture

HIDDEN = re.compile(r'<input type="hidden" name="(challenge_id|challenge)" value="([^"]*)"')


def card_form(page: Any) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page.text)}


def account_form(**overrides: str) -> dict[str, str]:
    values = {"bank_code": "8001", "branch_code": "101", "deposit_type": "ordinary",
              "account_number": "1234567", "holder_name": "ヤマダ タロウ"}
    values.update(overrides)
    return values


def submit(browser: Browser, holder: CardHolder, *, pin: str = AUTH_PIN,
           **overrides: str) -> Any:
    page = browser.get("/portal/accounts")
    assert page.status_code == 200, page.text
    return browser.post("/portal/accounts", {**account_form(**overrides), **card_form(page),
                                             "card_id": holder.card_id, "pin": pin})


@pytest.fixture
def taro(container: Container, clerk: StaffPrincipal) -> CardHolder:
    return issue_card_holder(container, clerk)


def test_register_change_and_delete_through_the_pages(
    container: Container, browser: Browser, taro: CardHolder
) -> None:
    assert browser.reader_login(taro).status_code == 303
    page = browser.get("/portal/accounts")
    assert 'href="/portal/accounts"' in page.text and 'id="no-registration"' in page.text
    done = submit(browser, taro)
    assert done.status_code == 303, done.text
    shown = browser.follow(done)
    assert "公金受取口座を登録しました" in shown.text
    assert "***4567" in shown.text and "1234567" not in shown.text
    assert "普通" in shown.text and "マイナポータル" in shown.text
    bank = container.accounts.directory.bank("8001", container.accounts.today())
    assert bank is not None and bank.name in shown.text
    registration = container.accounts.registration(taro.resident.id)
    assert registration is not None and registration.certificate_serial
    assert registration.authentication_id  # the challenge the card signed

    changed = submit(browser, taro, account_number="7654321", deposit_type="savings")
    assert changed.status_code == 303, changed.text
    shown = browser.follow(changed)
    assert "変更しました" in shown.text and "***4321" in shown.text and "貯蓄" in shown.text

    confirm = browser.get("/portal/accounts/delete")
    assert confirm.status_code == 200 and "削除すると" in confirm.text
    deleted = browser.post("/portal/accounts/delete",
                           {**card_form(confirm), "card_id": taro.card_id, "pin": AUTH_PIN})
    assert deleted.status_code == 303, deleted.text
    assert "削除しました" in browser.follow(deleted).text
    assert container.accounts.registration(taro.resident.id) is None
    assert [h.action for h in container.accounts.history(taro.resident.id)] == [
        "registered", "changed", "deleted"]
    # The card signed three times inside the one session: no session was opened for that
    # (the resident's 操作履歴 shows one login, no logins or logouts it did not make).
    from sqlalchemy import text

    with container.databases.unit_of_work("portal") as session:
        actions = session.execute(text("SELECT action FROM activities")).scalars().all()
    assert actions.count("login") == 1 and "logout" not in actions, actions


def test_a_relatives_account_is_refused_with_the_reason_and_both_names(
    container: Container, browser: Browser, taro: CardHolder
) -> None:
    browser.reader_login(taro)
    refused = submit(browser, taro, holder_name="ヤマダ ハナコ")
    assert refused.status_code == 422
    assert "名が違います。口座名義の名がフリガナと一致しません" in refused.text
    names = re.search(r'id="holder-names">(.*?)</dl>', refused.text, re.S)
    assert names and "ヤマダ ハナコ" in names.group(1) and "ヤマダ タロウ" in names.group(1)
    assert 'id="holder_name"' in refused.text and "口座名義（カナ）" in refused.text
    assert container.accounts.registration(taro.resident.id) is None

    english = browser.get("/portal/accounts?lang=en")
    page = browser.post("/portal/accounts", {
        **account_form(holder_name="スズキ イチロウ"), **card_form(english),
        "card_id": taro.card_id, "pin": AUTH_PIN})
    assert page.status_code == 422
    assert "The account belongs to someone else" in page.text


def test_every_error_names_its_field(browser: Browser, taro: CardHolder) -> None:
    browser.reader_login(taro)
    for field, value, label in (("bank_code", "80", "金融機関コード"),
                                ("branch_code", "999", "支店番号"),
                                ("account_number", "12", "口座番号"),
                                ("holder_name", "山田太郎", "口座名義")):
        page = submit(browser, taro, **{field: value})
        assert page.status_code in (400, 422), (field, page.status_code)
        box = re.search(r'<div class="error".*?</div>', page.text, re.S)
        assert box and label in box.group(0), (field, box and box.group(0))
    kanji = submit(browser, taro, holder_name="山田太郎")
    assert "口座名義に使えない文字が含まれています（山田太郎）" in kanji.text
    wrong_pin = submit(browser, taro, pin="0000")
    assert 'id="wrong-pin"' in wrong_pin.text and "暗証番号" in wrong_pin.text


def test_a_shared_terminal_session_cannot_register_for_the_next_person(
    container: Container, clerk: StaffPrincipal, browser: Browser, taro: CardHolder
) -> None:
    hanako = issue_card_holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    browser.reader_login(taro)  # Taro's session stays open on the terminal
    page = browser.get("/portal/accounts")
    # Hanako signs Taro's form with her own card: refused, nothing stored for anyone.
    refused = browser.post("/portal/accounts", {
        **account_form(holder_name="ヤマダ ハナコ"), **card_form(page),
        "card_id": hanako.card_id, "pin": AUTH_PIN})
    assert refused.status_code == 403
    assert "ログインしている方ご本人のカードではありません" in refused.text
    assert container.accounts.registration(taro.resident.id) is None
    assert container.accounts.registration(hanako.resident.id) is None

    # Taro's challenge, once used, cannot be replayed (not even by Taro's card).
    page = browser.get("/portal/accounts")
    challenge = card_form(page)
    assert browser.post("/portal/accounts", {**account_form(), **challenge,
                                             "card_id": taro.card_id,
                                             "pin": AUTH_PIN}).status_code == 303
    replay = browser.post("/portal/accounts", {**account_form(account_number="7654321"),
                                               **challenge, "card_id": taro.card_id,
                                               "pin": AUTH_PIN})
    assert replay.status_code == 401, replay.text
    assert "カードでの認証ができませんでした" in replay.text
    registration = container.accounts.registration(taro.resident.id)
    assert registration is not None and registration.account_number == "1234567"

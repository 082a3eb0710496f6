"""A bank's counter pages (/bank): sign-in with the client id and secret, a registration
bound to a new card authentication each time (the shared terminal), a relative's account and
another bank's code refused, the done page that clears everything, suspension and logout."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from sqlalchemy import func, select, update

from mynumber.accounts import models as m
from mynumber.accounts.interfaces import Route
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.web.accounts_bank_pages import BANK_COOKIE
from tests.accounts.test_bank_route import new_bank
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


class Clerk:
    """The bank's counter terminal (one browser, shared by the customers who come)."""

    def __init__(self, browser: Browser, client_id: str, secret: str) -> None:
        self.browser, self.client_id, self.secret = browser, client_id, secret

    def login(self) -> Any:
        page = self.browser.get("/bank/login")
        assert page.status_code == 200, page.text
        return self.browser.post("/bank/login", {"client_id": self.client_id,
                                                 "secret": self.secret})

    def submit(self, holder: CardHolder, page: Any = None, **overrides: str) -> Any:
        page = page or self.browser.get("/bank")
        assert page.status_code == 200, page.text
        return self.browser.post("/bank", {**account_form(**overrides), **card_form(page),
                                           "card_id": holder.card_id, "pin": AUTH_PIN})


@pytest.fixture
def clerk_at_bank(container: Container, browser: Browser) -> Clerk:
    bank, _key, secret = new_bank(container)
    teller = Clerk(browser, bank.client_id, secret)
    assert teller.login().status_code == 303
    return teller


@pytest.fixture
def taro(container: Container, clerk: StaffPrincipal) -> CardHolder:
    return issue_card_holder(container, clerk)


def test_sign_in_register_and_the_done_page_keeps_nothing_of_the_person(
        container: Container, clerk_at_bank: Clerk, taro: CardHolder) -> None:
    browser = clerk_at_bank.browser
    cookie = browser.last.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    page = browser.get("/bank")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in page.headers
    assert page.headers["cache-control"] == "no-store"
    assert "みらい銀行" in page.text and "公金受取口座の登録・変更" in page.text
    done = clerk_at_bank.submit(taro, page)
    assert done.status_code == 303 and done.headers["location"] == "/bank/done?done=registered"
    shown = browser.follow(done)
    assert "公金受取口座を登録しました" in shown.text and 'id="cleared"' in shown.text
    for trace in ("1234567", "ﾔﾏﾀﾞ", "ヤマダ", "challenge", taro.card_id):
        assert trace not in shown.text, trace
    registration = container.accounts.registration(taro.resident.id)
    assert registration is not None and registration.route is Route.BANK
    assert registration.actor.startswith("bank:8001:")

    changed = clerk_at_bank.submit(taro, account_number="7654321")
    assert changed.headers["location"] == "/bank/done?done=changed"
    confirm = browser.get("/bank/delete")
    deleted = browser.post("/bank/delete", {**card_form(confirm), "card_id": taro.card_id,
                                            "pin": AUTH_PIN})
    assert deleted.headers["location"] == "/bank/done?done=deleted", deleted.text
    assert container.accounts.registration(taro.resident.id) is None


def test_a_shared_bank_terminal_cannot_register_for_the_next_person(
        container: Container, clerk: StaffPrincipal, clerk_at_bank: Clerk,
        taro: CardHolder) -> None:
    browser = clerk_at_bank.browser
    hanako = issue_card_holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    taros_page = browser.get("/bank")
    taros_card = card_form(taros_page)
    assert clerk_at_bank.submit(taro, taros_page).status_code == 303
    browser.get("/bank/done?done=registered")

    # The next customer: a new form with a new challenge, nothing of Taro's.
    next_page = browser.get("/bank")
    assert card_form(next_page)["challenge_id"] != taros_card["challenge_id"]
    assert 'value="ヤマダ タロウ"' not in next_page.text
    assert 'value="1234567"' not in next_page.text
    # Taro's card authentication, kept from his form, does not serve Hanako's account.
    replay = browser.post("/bank", {**account_form(holder_name="ヤマダ ハナコ",
                                                   account_number="7777777"),
                                    **taros_card, "card_id": taro.card_id, "pin": AUTH_PIN})
    assert replay.status_code == 401
    assert "カードでの認証ができませんでした" in replay.text
    # Taro's card signing again is Taro's change, and Hanako's name is refused for him.
    wrong = clerk_at_bank.submit(taro, holder_name="ヤマダ ハナコ", account_number="7777777")
    assert wrong.status_code == 422
    assert container.accounts.registration(hanako.resident.id) is None
    registration = container.accounts.registration(taro.resident.id)
    assert registration is not None and registration.account_number == "1234567"
    # Hanako with her own card.
    own = clerk_at_bank.submit(hanako, holder_name="ヤマダ ハナコ", account_number="7777777")
    assert own.status_code == 303, own.text
    hers = container.accounts.registration(hanako.resident.id)
    assert hers is not None and hers.account_number == "7777777"


def test_a_relatives_account_is_refused_in_the_catalogues_words(
        container: Container, clerk_at_bank: Clerk, taro: CardHolder) -> None:
    refused = clerk_at_bank.submit(taro, holder_name="ヤマダ ハナコ")
    assert refused.status_code == 422
    assert "お客さまご本人名義の口座ではありません" in refused.text
    assert "名が違います" in refused.text
    assert 'id="holder-names"' not in refused.text  # the bank is not shown the registry's reading
    assert 'id="holder_name"' in refused.text and 'aria-invalid="true"' in refused.text
    assert container.accounts.registration(taro.resident.id) is None

    english = clerk_at_bank.browser.get("/bank?lang=en")
    page = clerk_at_bank.submit(taro, english, holder_name="スズキ イチロウ")
    assert page.status_code == 422 and "The account belongs to someone else" in page.text


def test_another_banks_code_is_refused_without_spending_the_card(
        container: Container, clerk_at_bank: Clerk, taro: CardHolder) -> None:
    page = clerk_at_bank.browser.get("/bank")
    card = card_form(page)
    refused = clerk_at_bank.browser.post("/bank", {**account_form(bank_code="8005"), **card,
                                                   "card_id": taro.card_id, "pin": AUTH_PIN})
    assert refused.status_code == 403
    assert "他の金融機関の口座は登録できません" in refused.text
    assert container.accounts.registration(taro.resident.id) is None
    ok = clerk_at_bank.browser.post("/bank", {**account_form(), **card,
                                              "card_id": taro.card_id, "pin": AUTH_PIN})
    assert ok.status_code == 303, ok.text


def test_sign_in_refusals_csrf_logout_expiry_and_suspension(
        container: Container, browser: Browser, taro: CardHolder) -> None:
    bank, _key, secret = new_bank(container)
    anonymous = browser.get("/bank")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/bank/login"
    wrong = Clerk(browser, bank.client_id, "not-the-secret").login()
    assert wrong.status_code == 401 and "正しくないか" in wrong.text
    teller = Clerk(browser, bank.client_id, secret)
    assert teller.login().status_code == 303
    page = browser.get("/bank")
    no_csrf = browser.post("/bank", {**account_form(), **card_form(page),
                                     "card_id": taro.card_id, "pin": AUTH_PIN}, csrf=False)
    assert no_csrf.status_code == 403
    assert container.accounts.registration(taro.resident.id) is None

    # Logout ends the session in the database.
    browser.get("/bank")
    token = browser.client.cookies.get(BANK_COOKIE)
    assert browser.post("/bank/logout").headers["location"] == "/bank/login"
    with container.databases.unit_of_work("accounts") as session:
        assert session.scalar(select(func.count()).select_from(m.BankSession)) == 0
    browser.client.cookies.set(BANK_COOKIE, token or "")
    assert browser.get("/bank").headers["location"] == "/bank/login?expired=1"

    # An idle session expires.
    browser.client.cookies.clear()
    assert teller.login().status_code == 303
    with container.databases.unit_of_work("accounts") as session:
        session.execute(update(m.BankSession).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert browser.get("/bank").headers["location"] == "/bank/login?expired=1"

    # Suspension ends the sessions and refuses new sign-ins.
    browser.client.cookies.clear()
    assert teller.login().status_code == 303
    container.bank_clients.suspend(bank.client_id, actor="test")
    assert browser.get("/bank").headers["location"] == "/bank/login?expired=1"
    browser.client.cookies.clear()
    assert teller.login().status_code == 401

"""公金受取口座 in a real browser (issue 14): the flows in Japanese on a 390 px phone, every page
through the browser suite's checks (:func:`tests.e2e.test_browser_suite.flow`: no 5xx, no raw
JSON, Japanese, no machine text, no page wider than the screen, axe-core).

* A resident objects (不同意) to 日本年金機構's proposal of her pension account, then
  registers an account on マイナポータル (/portal/accounts) with the virtual card reader; a
  relative's account (another given name) is then refused with the reason in Japanese and
  both readings, and nothing changes.
* At a bank's counter (/bank, the bank client's id and secret) the clerk registers one
  resident's account with the card; the next resident at the same terminal gets an empty form
  with a new challenge, and the previous person's card authentication does not serve them.
* A clerk at the municipal counter opens /counter/accounts/{id} from the resident's record
  with a 閲覧理由 and sees the account (masked) and its history.

The crawler (test_browser_suite.py) visits the same pages in both languages and widths, as
resident, clerk and the bank's staff (the ``bank`` role).

Needs /usr/bin/chromium and axe-core (``make axe``); skipped with that message otherwise. Set
MYNUMBER_BROWSER_SCREENSHOTS to a directory to keep a screenshot of every checked step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mynumber.accounts.interfaces import BankAccount, ProposalState, Route
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.portal.seed import PortalDemoResult
from tests.accounts.conftest import PENSION, TAX
from tests.e2e.test_browser_suite import (  # noqa: F401 - fixtures
    bank_login,
    bank_teller,
    counter_login,
    counter_staff,
    demo,
    flow,
    navigate,
    pytestmark,
)
from tests.e2e.test_portal_browser import portal_login, server  # noqa: F401 - fixtures
from tests.portal.conftest import AUTH_PIN

if TYPE_CHECKING:
    from playwright.sync_api import Page

#: みらい銀行 本店 (the sample directory), an ordinary account.
BANK, BRANCH = "8001", "101"


def shot(page: Page, name: str) -> None:
    """A full-page screenshot when MYNUMBER_BROWSER_SCREENSHOTS names a directory."""
    target = os.environ.get("MYNUMBER_BROWSER_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def checked(checker: Any, page: Page, response: Any, name: str) -> None:
    """The suite's checks on the page now shown, and its screenshot."""
    checker.check(response, name)
    shot(page, "accounts-" + "".join(c if c.isalnum() else "-" for c in name).strip("-"))


def fill_account(page: Page, number: str, holder: str) -> None:
    """The account part of the form (portal or bank), 普通預金."""
    page.fill("#bank_code", BANK)
    page.fill("#branch_code", BRANCH)
    page.select_option("#deposit_type", "ordinary")
    page.fill("#account_number", number)
    page.fill("#holder_name", holder)


def sign_with_card(page: Page, card_id: str) -> None:
    """The virtual card reader in the form: the person's card and the 4-digit PIN."""
    page.check(f'#card-auth input[name="card_id"][value="{card_id}"]')
    page.fill("#pin", AUTH_PIN)


def test_a_resident_registers_an_account_and_a_relatives_account_is_refused(
    container: Container, demo: PortalDemoResult, server: str,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    parent = demo.cards[0]  # 高橋 美咲 (タカハシ ミサキ)
    accounts = container.accounts
    accounts.propose_pension(parent.resident_id,
                             BankAccount(BANK, BRANCH, "ordinary", "3456789", "ﾀｶﾊｼ ﾐｻｷ"),
                             accounts.today(), actor=PENSION)
    with flow("accounts-portal") as (page, checker):
        portal_login(page, server, parent.card_id)
        checked(checker, page, navigate(page, lambda: page.click(
            '#portalbar a[href="/portal/accounts"]')), "/portal/accounts")
        expect(page.locator("#no-registration")).to_be_visible()
        # 年金受給者の特例: she does not want the pension account registered.
        expect(page.locator("#proposal-number")).to_have_text("***6789")
        checked(checker, page, navigate(page, lambda: page.click("#object")),
                "/portal/accounts (不同意)")
        assert "done=objected" in page.url, page.url
        expect(page.locator("#done")).to_contain_text("不同意を受け付けました")
        expect(page.locator("#pension-proposal")).to_have_count(0)
        [proposal] = accounts.proposals(parent.resident_id)
        assert proposal.state is ProposalState.OBJECTED
        fill_account(page, "1234567", "タカハシ ミサキ")
        sign_with_card(page, parent.card_id)
        checked(checker, page, navigate(page, lambda: page.click("#submit")),
                "/portal/accounts (registered)")
        assert "done=registered" in page.url, page.url
        expect(page.locator("#done")).to_contain_text("登録しました")
        expect(page.locator("#account-number")).to_contain_text("4567")
        expect(page.locator("#route")).to_have_text("マイナポータル")

        # Her son's account (タカハシ ヒナタ): the same family name, another given name.
        fill_account(page, "7654321", "タカハシ ヒナタ")
        sign_with_card(page, parent.card_id)
        refused = navigate(page, lambda: page.click("#submit"))
        checked(checker, page, refused, "/portal/accounts (a relative's account refused)")
        assert refused is not None and refused.status == 422
        expect(page.locator("#error")).to_contain_text("ご本人名義の口座ではありません")
        expect(page.locator("#holder-name-reason")).to_contain_text("名が違います")
        expect(page.locator("#name-bank")).to_contain_text("タカハシ ヒナタ")
        expect(page.locator("#name-yours")).to_contain_text("タカハシ ミサキ")
        expect(page.locator("#holder_name")).to_have_attribute("aria-invalid", "true")
        # Nothing changed: still her own account.
        registration = container.accounts.registration(parent.resident_id)
        assert registration is not None and registration.account_number == "1234567"
        assert registration.route is Route.PORTAL


def test_a_bank_clerk_registers_for_one_resident_and_the_next_cannot_reuse_the_card(
    container: Container, demo: PortalDemoResult,  # noqa: F811
    bank_teller: tuple[str, str], server: str,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    parent, guardian = demo.cards[0], demo.cards[1]  # 高橋 美咲, then 佐藤 健一
    with flow("accounts-bank") as (page, checker):
        bank_login(page, server, *bank_teller, checker)
        expect(page.locator("#bank-who")).to_contain_text("みらい銀行")
        expect(page.locator("#bank_code")).to_have_value(BANK)
        first_challenge = page.input_value('input[name="challenge_id"]')
        kept = {name: page.input_value(f'input[name="{name}"]')
                for name in ("challenge_id", "challenge")}
        fill_account(page, "1234567", "タカハシ ミサキ")
        sign_with_card(page, parent.card_id)
        checked(checker, page, navigate(page, lambda: page.click("#submit")),
                "/bank/done (registered)")
        assert page.url.endswith("/bank/done?done=registered"), page.url
        expect(page.locator("#done")).to_contain_text("登録しました")
        expect(page.locator("#cleared")).to_be_visible()
        for trace in ("1234567", "ミサキ", "ﾐｻｷ", parent.card_id):
            assert trace not in page.locator("main").inner_text(), trace
        registration = container.accounts.registration(parent.resident_id)
        assert registration is not None and registration.route is Route.BANK

        # The next customer at the same terminal: an empty form with a new challenge.
        checked(checker, page, navigate(page, lambda: page.click("#next-person")),
                "/bank (next person)")
        assert page.input_value('input[name="challenge_id"]') != first_challenge
        assert page.input_value("#account_number") == ""
        assert page.input_value("#holder_name") == ""
        # The previous person's authentication, put back into the form, does not serve him.
        for name, value in kept.items():
            page.locator(f'input[name="{name}"]').evaluate("(e, v) => e.value = v", value)
        fill_account(page, "7777777", "サトウ ケンイチ")
        sign_with_card(page, parent.card_id)
        replay = navigate(page, lambda: page.click("#submit"))
        checked(checker, page, replay, "/bank (the previous authentication replayed)")
        assert replay is not None and replay.status == 401
        expect(page.locator("#error")).to_contain_text("カードでの認証ができませんでした")
        assert container.accounts.registration(guardian.resident_id) is None
        after = container.accounts.registration(parent.resident_id)
        assert after is not None and after.account_number == "1234567"

        # With his own card, on the new form the error page gave him: his account.
        assert page.input_value('input[name="challenge_id"]') not in (first_challenge, "")
        fill_account(page, "7777777", "サトウ ケンイチ")
        sign_with_card(page, guardian.card_id)
        checked(checker, page, navigate(page, lambda: page.click("#submit")),
                "/bank/done (the next person registered)")
        assert page.url.endswith("/bank/done?done=registered"), page.url
        his = container.accounts.registration(guardian.resident_id)
        assert his is not None and his.account_number == "7777777"


def test_a_clerk_opens_a_residents_account_from_the_record_with_a_reason(
    container: Container, demo: PortalDemoResult,  # noqa: F811
    counter_staff: tuple[str, StaffPrincipal], server: str,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    secret, _staff = counter_staff
    guardian = demo.cards[1]  # 佐藤 健一, registered through his tax return
    container.accounts.register(guardian.resident_id,
                                BankAccount(BANK, BRANCH, "ordinary", "2345678", "ｻﾄｳ ｹﾝｲﾁ"),
                                Route.TAX_RETURN, actor=TAX)
    with flow("accounts-counter") as (page, checker):
        counter_login(page, server, secret)
        page.goto(f"{server}/counter/residents/{guardian.resident_id}")
        page.fill("#view-reason_text", "口座の確認")
        checked(checker, page, navigate(page, lambda: page.click("form.stack button[type=submit]")),
                "/counter/residents/{n} (record)")
        checked(checker, page, navigate(page, lambda: page.click("#accounts-link")),
                "/counter/accounts/{n}")
        page.select_option("#accounts-reason_kind", "identity")
        page.fill("#accounts-reason_text", "給付金の振込先の確認")
        shown = navigate(page, lambda: page.click("#accounts-reason-form button[type=submit]"))
        checked(checker, page, shown, "/counter/accounts/{n} (the account)")
        assert shown is not None and shown.status == 200
        expect(page.locator("#audited")).to_contain_text("給付金の振込先の確認")
        expect(page.locator("#bank")).to_contain_text("みらい銀行")
        expect(page.locator("#route")).to_have_text("確定申告")
        number = page.locator("#account-number").inner_text()
        assert "5678" in number and "2345678" not in number, number
        expect(page.locator("#account-history tbody tr")).to_have_count(1)
        assert "2345678" not in page.content()

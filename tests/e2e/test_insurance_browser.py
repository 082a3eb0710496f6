"""オンライン資格確認 in a real browser (issue 15): the flows in Japanese on a 390 px phone, every
page through the browser suite's checks (:func:`tests.e2e.test_browser_suite.flow`: no 5xx, no
raw JSON, Japanese, no machine text, no page wider than the screen, axe-core).

* At a medical institution's reception (/clinic) a clerk who operates the terminal confirms a
  patient's eligibility with the card and the PIN on the virtual reader, records the patient's
  choices item by item, shows the consented 薬剤情報 and is refused the 特定健診情報 in words;
  a card not yet registered for insurance use is registered there (初回登録, the patient's
  PIN) and then checked.
* At the municipality's 国民健康保険 (/insurer) the clerk enrols an insured person, opens the
  record, and links it on all four items by 住基ネット's search; a record whose address is
  not the person's goes to the review queue.
* On マイナポータル (/portal/insurance) a resident registers the card for insurance use with a
  fresh card authentication, and sees the reception's check in the page and in やりとり履歴.

The crawler (test_browser_suite.py) reaches the same pages from the counter's and the
portal's navigation, in both languages and widths.

Needs /usr/bin/chromium and axe-core (``make axe``); skipped with that message otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.insurance.interfaces import ConfirmationMethod, InsurerKind
from tests.e2e.test_browser_suite import (  # noqa: F401 - fixtures
    CLERK,
    counter_login,
    counter_staff,
    flow,
    navigate,
    pytestmark,
)
from tests.e2e.test_portal_browser import portal_login, server  # noqa: F401 - fixtures
from tests.insurance.support_api import STAFF, reception, resident
from tests.insurance.support_pages import patient
from tests.portal.conftest import AUTH_PIN

if TYPE_CHECKING:
    from playwright.sync_api import Page

SHINJUKU_NHI = "131045"


def pick_card(page: Page, form: str, card_id: str) -> None:
    page.check(f'#{form} input[name="card_id"][value="{card_id}"]')
    page.fill(f"#{form} #pin", AUTH_PIN)


def test_a_reception_confirms_eligibility_records_consent_and_shows_the_consented_item(
    container: Container, counter_staff: tuple[str, StaffPrincipal],  # noqa: F811
    server: str,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    secret, staff = counter_staff
    taro = patient(container, staff)
    desk = reception(container)
    container.eligibility.set_terminal_operators(desk.id, [CLERK], "operator:test")
    with flow("insurance-reception") as (page, checker):
        counter_login(page, server, secret)
        checker.check(navigate(page, lambda: page.click(
            '.staffbar a[href="/clinic"]')), "/clinic")
        checker.check(navigate(page, lambda: page.click(
            f'a[href="/clinic/terminals/{desk.id}"]')), "/clinic/terminals/{id}")
        expect(page.locator("#face-stand-in")).to_contain_text("決定的な代替実装")
        page.check("#method-card_pin")
        pick_card(page, "card-form", taro.card.record.card_id)
        checker.check(navigate(page, lambda: page.click("#card-submit")),
                      "/clinic (eligibility)")
        expect(page.locator("#validity")).to_contain_text("有効")
        expect(page.locator("#qualification")).to_contain_text("全国健康保険協会 東京支部")
        page.check('input[name="consent_drugs"][value="yes"]')
        page.check('input[name="consent_checkups"][value="no"]')
        page.check('input[name="consent_treatments"][value="no"]')
        checker.check(navigate(page, lambda: page.click("#consent-submit")),
                      "/clinic (consents)")
        expect(page.locator("#consents")).to_contain_text("同意あり")
        checker.check(navigate(page, lambda: page.click("#show-drugs")), "/clinic (drugs)")
        expect(page.locator("#records")).to_contain_text("アムロジピン錠5mg")
        checker.check(navigate(page, lambda: page.click("#show-checkups")),
                      "/clinic (check-ups refused)")
        expect(page.locator("#refused")).to_contain_text("同意がないため表示できません")
    done = {(e.action.value, e.item.value if e.item else None)
            for e in container.eligibility.access_entries(taro.card.resident.id)}
    assert {("view", "drugs"), ("view_refused", "checkups")} <= done


def test_a_reception_registers_a_new_card_then_confirms_eligibility(
    container: Container, counter_staff: tuple[str, StaffPrincipal],  # noqa: F811
    server: str,  # noqa: F811
) -> None:
    """初回登録 at the card reader: the card is refused as not registered, the page offers
    初回登録, the patient enters the PIN, then the eligibility check as usual."""
    from playwright.sync_api import expect

    secret, staff = counter_staff
    hanako = patient(container, staff, activate=False, given_name="花子",
                     given_name_kana="ハナコ")
    desk = reception(container)
    container.eligibility.set_terminal_operators(desk.id, [CLERK], "operator:test")
    with flow("insurance-reception-activation") as (page, checker):
        counter_login(page, server, secret)
        checker.check(page.goto(f"{server}/clinic/terminals/{desk.id}"),
                      "/clinic/terminals/{id}")
        page.check("#method-card_pin")
        pick_card(page, "card-form", hanako.card.record.card_id)
        checker.check(navigate(page, lambda: page.click("#card-submit")),
                      "/clinic (not registered)")
        expect(page.locator("#error")).to_contain_text("初回登録が必要です")
        page.check(f'#activation-form input[name="card_id"][value="{hanako.card.record.card_id}"]')
        page.fill("#activation-pin", AUTH_PIN)
        checker.check(navigate(page, lambda: page.click("#activation-submit")),
                      "/clinic (registered)")
        expect(page.locator("#activated")).to_contain_text("初回登録が完了しました")
        page.check("#method-card_pin")
        pick_card(page, "card-form", hanako.card.record.card_id)
        checker.check(navigate(page, lambda: page.click("#card-submit")),
                      "/clinic (eligibility)")
        expect(page.locator("#validity")).to_contain_text("有効")
    assert container.eligibility.card_status(hanako.card.resident.id).activated


def test_the_municipal_insurer_enrols_and_links_on_all_four_items(
    container: Container, counter_staff: tuple[str, StaffPrincipal],  # noqa: F811
    server: str,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    secret, staff = counter_staff
    container.insurance.register_insurer(SHINJUKU_NHI, "新宿区国民健康保険",
                                         InsurerKind.MUNICIPAL_NHI, "municipality-131041",
                                         STAFF)
    taro = resident(container, staff)
    with flow("insurance-insurer") as (page, checker):
        counter_login(page, server, secret)
        checker.check(navigate(page, lambda: page.click('.staffbar a[href="/insurer"]')),
                      "/insurer")
        checker.check(navigate(page, lambda: page.click(f'a[href="/insurer/{SHINJUKU_NHI}"]')),
                      "/insurer/{number}")
        checker.check(navigate(page, lambda: page.click("#enrol-link")), "/insurer (enrol)")
        for name, value in (("symbol", ""), ("number", "880001"), ("branch", "00"),
                            ("acquired_on", "2024-04-01"), ("name", taro.name),
                            ("name_kana", taro.name_kana),
                            ("birth_date", taro.birth_date.isoformat()),
                            ("address", taro.address)):
            page.fill(f"#enrol-{name}", value)
        page.select_option("#enrol-sex", taro.sex.value)
        checker.check(navigate(page, lambda: page.click("#enrol-submit")), "/insurer (enrolled)")
        expect(page.locator("#done")).to_contain_text("資格取得を登録しました")
        [q] = container.insurance.qualifications(SHINJUKU_NHI)
        checker.check(navigate(page, lambda: page.click(f"#open-{q.id}")), "/insurer (person)")
        expect(page.locator("#link-rule")).to_contain_text("カナ氏名・生年月日・性別だけ")
        checker.check(navigate(page, lambda: page.click("#link-search")), "/insurer (linked)")
        expect(page.locator("#done")).to_contain_text("住民と紐付けました")
        checker.check(navigate(page, lambda: page.click("#reviews-link")), "/insurer (reviews)")
        expect(page.locator("#no-reviews")).to_be_visible()


def test_a_resident_registers_the_card_and_sees_the_reception_in_the_history(
    container: Container, counter_staff: tuple[str, StaffPrincipal],  # noqa: F811
    server: str,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    _secret, staff = counter_staff
    taro = patient(container, staff, activate=False)
    with flow("insurance-portal") as (page, checker):
        portal_login(page, server, taro.card.record.card_id)
        checker.check(navigate(page, lambda: page.click(
            '#portalbar a[href="/portal/insurance"]')), "/portal/insurance")
        expect(page.locator("#activate-form")).to_be_visible()
        page.check(f'#card-auth input[name="card_id"][value="{taro.card.record.card_id}"]')
        page.fill("#pin", AUTH_PIN)
        checker.check(navigate(page, lambda: page.click("#submit")),
                      "/portal/insurance (registered)")
        expect(page.locator("#done")).to_contain_text("初回登録が完了しました")
        # A reception checks the card (the terminal's own service calls).
        desk = reception(container)
        challenge = container.eligibility.challenge(desk.terminal)
        container.eligibility.check_card(
            desk.terminal, challenge.challenge_id, taro.card.certificate,
            method=ConfirmationMethod.CARD_PIN, signature=taro.card.sign(challenge.challenge))
        checker.check(page.goto(f"{server}/portal/insurance"), "/portal/insurance (records)")
        expect(page.locator("#access")).to_contain_text("新宿テストクリニック")
        checker.check(navigate(page, lambda: page.click(
            '#portalbar a[href="/portal/history"]')), "/portal/history")
        expect(page.locator("#insurance-history")).to_contain_text("資格確認")

"""The resident's side of the pension special case (a pending proposal shown on
/portal/accounts with its deadline in 和暦, the 不同意 by page and API) and "who looked it
up": agencies' look-ups of the 公金受取口座 through the network, on /portal/accounts and in the
API, the same records as やりとり履歴."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mynumber.accounts.interfaces import (
    DIGITAL_AGENCY,
    PUBLIC_FUND_ACCOUNT_ITEM,
    ProposalState,
)
from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.kernel.localtime import wareki
from tests.accounts.conftest import PENSION, account, card
from tests.portal.conftest import CITY, CardHolder, issue_card_holder, login
from tests.portal.test_views import Browser, holder_data
from tests.portal.test_views import browser as browser  # a fixture
from tests.portal.test_views import client as client  # a fixture

CHILD_ALLOWANCE = "extra-public-fund-child-allowance"
URL = "/api/v1/portal/me/accounts"


@pytest.fixture
def taro(container: Container, clerk: StaffPrincipal) -> CardHolder:
    return issue_card_holder(container, clerk)


def propose(container: Container, holder: CardHolder) -> dt.date:
    today = container.accounts.today()
    container.accounts.propose_pension(holder.resident.id, account(), today, actor=PENSION)
    return today + dt.timedelta(days=45)


# --- 不同意 ------------------------------------------------------------------------------------


def test_the_pending_proposal_is_shown_and_the_objection_is_sent_from_the_page(
    container: Container, browser: Browser, taro: CardHolder
) -> None:
    deadline = propose(container, taro)
    browser.reader_login(taro)
    page = browser.get("/portal/accounts")
    assert page.status_code == 200
    section = re.search(r'id="pension-proposal">(.*?)</section>', page.text, re.S)
    assert section, page.text
    shown = section.group(1)
    bank = container.accounts.directory.bank("8001", container.accounts.today())
    assert bank is not None and bank.name in shown
    assert "***4567" in shown and "1234567" not in page.text
    assert wareki(deadline) in shown and "日本時間" in shown
    assert "不同意する" in shown and 'action="/portal/accounts/pension-objection"' in shown

    # Without the CSRF token the objection is refused and nothing changes.
    forged = browser.post("/portal/accounts/pension-objection", {}, csrf=False)
    assert forged.status_code == 403
    assert container.accounts.proposals(taro.resident.id)[0].state is ProposalState.PENDING

    done = browser.post("/portal/accounts/pension-objection", {})
    assert done.status_code == 303, done.text
    after = browser.follow(done)
    assert "不同意を受け付けました" in after.text and 'id="pension-proposal"' not in after.text
    (proposal,) = container.accounts.proposals(taro.resident.id)
    assert proposal.state is ProposalState.OBJECTED
    assert container.accounts.finalize_pensions(deadline + dt.timedelta(days=1)).registered == []
    assert container.accounts.registration(taro.resident.id) is None


def test_an_objection_after_the_deadline_is_refused_in_words(
    container: Container, browser: Browser, taro: CardHolder
) -> None:
    deadline = propose(container, taro)
    browser.reader_login(taro)
    browser.get("/portal/accounts")
    late = dt.datetime.combine(deadline + dt.timedelta(days=1), dt.time(3), tzinfo=dt.UTC)
    container.accounts.clock = lambda: late
    refused = browser.post("/portal/accounts/pension-objection", {})
    assert refused.status_code == 409
    box = re.search(r'<div class="error".*?</div>', refused.text, re.S)
    assert box and "不同意の期限を過ぎています" in box.group(0)
    assert "accounts_pension_proposal_closed" not in refused.text.replace(
        'data-code="accounts_pension_proposal_closed"', "")
    assert container.accounts.proposals(taro.resident.id)[0].state is ProposalState.PENDING


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def test_the_api_shows_the_proposal_and_takes_the_objection(
    container: Container, api: TestClient, taro: CardHolder
) -> None:
    bearer = {"Authorization": f"Bearer {login(container, taro).token}"}
    assert api.get(URL + "/pension-proposal", headers=bearer).json() == {"proposal": None}
    deadline = propose(container, taro)
    shown = api.get(URL + "/pension-proposal", headers=bearer).json()["proposal"]
    assert shown["state"] == "pending" and shown["deadline"] == deadline.isoformat()
    assert shown["deadline_ja"].startswith(wareki(deadline))
    assert shown["account_number_masked"] == "***4567" and shown["bank_name"]

    objected = api.post(URL + "/pension-proposal/objection", headers=bearer)
    assert objected.status_code == 200 and objected.json()["state"] == "objected"
    again = api.post(URL + "/pension-proposal/objection", headers=bearer)
    assert again.status_code == 404
    assert again.json()["code"] == "accounts_pension_proposal_not_found"
    assert api.post(URL + "/pension-proposal/objection").status_code == 401


# --- who looked it up --------------------------------------------------------------------------


def _looked_up(container: Container, holder: CardHolder, address: str | None = None) -> str:
    """A registered, enrolled account, looked up by 新宿区長 for 児童手当 through the
    network; the exchange's serial."""
    rid = holder.resident.id
    for agency in (CITY, DIGITAL_AGENCY):
        container.agencies.ensure_registered(agency)
    container.accounts.register(rid, account(), "portal",
                                authentication=card(rid, at=container.accounts.clock()))
    container.accounts_provision.enrol(rid, f"jpki:certificate:serial-{rid}")
    if address is None:  # else: the city knows the person already under ``address``
        address = f"city-{rid:06d}"
        container.agencies.enrol_person(CITY, address, holder.number)
    result = container.agencies.query(CITY, address, CHILD_ALLOWANCE, DIGITAL_AGENCY,
                                      PUBLIC_FUND_ACCOUNT_ITEM)
    container.network_log.integrate()
    return result.serial


def test_an_agencys_look_up_shows_on_the_accounts_page_and_in_the_history(
    container: Container, browser: Browser, taro: CardHolder
) -> None:
    browser.reader_login(taro)
    assert 'id="no-lookups"' in browser.get("/portal/accounts").text
    serial = _looked_up(container, taro)
    city = container.network.agency(CITY).name

    page = browser.get("/portal/accounts")
    table = re.search(r'id="lookups">(.*?)</table>', page.text, re.S)
    assert table, page.text
    row = re.search(rf'data-serial="{serial}">(.*?)</tr>', table.group(1), re.S)
    assert row, table.group(1)
    assert city in row.group(1) and "児童手当" in row.group(1) and "提供" in row.group(1)
    assert 'data-outcome="provided"' in row.group(1)
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d", row.group(1))
    # The same record in やりとり履歴.
    history = browser.get("/portal/history")
    assert f'data-serial="{serial}"' in history.text and "公金受取口座情報" in history.text

    english = browser.get("/portal/accounts?lang=en")
    assert "Who looked your account up" in english.text and "JST" in english.text


def test_the_api_lists_the_look_ups(container: Container, api: TestClient,
                                    taro: CardHolder) -> None:
    bearer = {"Authorization": f"Bearer {login(container, taro).token}"}
    assert api.get(URL + "/lookups", headers=bearer).json() == []
    # An exchange about another item is in やりとり履歴 but is not a look-up of the account.
    serial = _looked_up(container, taro, holder_data(container, taro))
    other = container.portal.my_information(login(container, taro), "resident_record").serial
    container.network_log.integrate()
    history = api.get("/api/v1/portal/me/history", headers=bearer).json()
    assert {serial, other} <= {e["record"]["serial"] for e in history}
    (lookup,) = api.get(URL + "/lookups", headers=bearer).json()
    assert lookup["serial"] == serial and lookup["agency_id"] == CITY
    assert lookup["agency_name"] == container.network.agency(CITY).name
    assert "児童手当" in lookup["task_title"]
    assert lookup["outcome"] == "provided" and lookup["outcome_ja"] == "提供"
    assert lookup["verified"] is True and "年" in lookup["occurred_at_ja"]


"""A registration with a relative's account (the 2023 review: about 130,000 of them) is refused
on EVERY route: the portal's page and API, a bank's API (a signed request and the registrant's
card authentication), the 確定申告 agency API, and the pension special case (its finalisation
skips it). Nothing is stored: no registration, no history, no event, no spent card
authentication."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mynumber.accounts import models as m
from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from tests.accounts.conftest import PENSION, account
from tests.accounts.test_agency_routes import signed
from tests.accounts.test_bank_route import URL as BANK_URL
from tests.accounts.test_bank_route import Bank, new_bank
from tests.accounts.test_pages import card_form
from tests.portal.conftest import AUTH_PIN, CardHolder, issue_card_holder, login
from tests.portal.test_views import Browser
from tests.portal.test_views import browser as browser  # a fixture
from tests.portal.test_views import client as client  # a fixture

RELATIVE = "ヤマダ ハナコ"  # 山田太郎's wife or daughter: the family name matches, the given not
FORM = {"bank_code": "8001", "branch_code": "101", "deposit_type": "ordinary",
        "account_number": "1234567"}


@pytest.fixture
def taro(container: Container, clerk: StaffPrincipal) -> CardHolder:
    return issue_card_holder(container, clerk)


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def _count(container: Container, table: Any) -> int:
    with container.databases.unit_of_work(m.CONTEXT) as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def assert_nothing_stored(container: Container, holder: CardHolder) -> None:
    rid = holder.resident.id
    assert container.accounts.registration(rid) is None
    assert container.accounts.history(rid) == []
    assert _count(container, m.Registration) == 0
    assert _count(container, m.UsedAuthentication) == 0
    assert _count(container, m.outbox_events) == 0


def test_the_portal_page_refuses_it(container: Container, browser: Browser,
                                    taro: CardHolder) -> None:
    browser.reader_login(taro)
    page = browser.get("/portal/accounts")
    refused = browser.post("/portal/accounts", {**FORM, "holder_name": RELATIVE,
                                                **card_form(page), "card_id": taro.card_id,
                                                "pin": AUTH_PIN})
    assert refused.status_code == 422
    assert "名が違います" in refused.text
    assert_nothing_stored(container, taro)


def test_the_portal_api_refuses_it(container: Container, api: TestClient,
                                   taro: CardHolder) -> None:
    bearer = {"Authorization": f"Bearer {login(container, taro).token}"}
    challenge = api.post("/api/v1/portal/me/accounts/challenge", headers=bearer).json()
    signature = taro.chip.sign("auth", AUTH_PIN, base64.b64decode(challenge["challenge"]))
    body = {**FORM, "holder_name": RELATIVE, "card": {
        "challenge_id": challenge["challenge_id"],
        "signature": base64.b64encode(signature).decode(),
        "certificate": taro.chip.certificate("auth").decode()}}
    refused = api.put("/api/v1/portal/me/accounts", headers=bearer, json=body)
    assert refused.status_code == 422
    assert refused.json()["code"] == "accounts_holder_name_mismatch"
    assert refused.json()["reason"] == "given_name_differs"
    assert_nothing_stored(container, taro)


def test_the_bank_route_refuses_it_even_with_the_registrants_card(
    container: Container, api: TestClient, taro: CardHolder
) -> None:
    """Through the bank API itself (/api/v1/bank/accounts): a registered bank client signs the
    request, the registrant signs the bank's challenge with the card and PIN at the counter;
    the relative's account (half-width kana, as banks write names) is still refused."""
    client, key, secret = new_bank(container)
    bank = Bank(api, client, key, secret)
    card = bank.card(taro)
    refused = api.post(f"{BANK_URL}/accounts", json=bank.body(
        "bank-account-register", bank.account(None, card, holder_name="ﾔﾏﾀﾞ ﾊﾅｺ")))
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "accounts_holder_name_mismatch"
    assert refused.json()["reason"] == "given_name_differs"
    assert taro.number not in refused.text
    assert_nothing_stored(container, taro)
    # The card and the bank were genuine: the registrant's own name goes through.
    done = api.post(f"{BANK_URL}/accounts", json=bank.body(
        "bank-account-register", bank.account(taro, holder_name="ﾔﾏﾀﾞ ﾀﾛｳ")))
    assert done.status_code == 201, done.text


def test_the_tax_return_api_refuses_it(container: Container, api: TestClient,
                                       clerk: StaffPrincipal, taro: CardHolder) -> None:
    container.agencies.ensure_registered("national_tax_agency")
    path = "/tax-return"
    body = signed(container, path, "national_tax_agency", individual_number=taro.number,
                  **FORM, holder_name=RELATIVE)
    refused = api.post("/api/v1/accounts/agencies" + path, json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "accounts_holder_name_mismatch"
    assert refused.json()["reason"] == "given_name_differs"
    assert taro.number not in refused.text
    assert_nothing_stored(container, taro)


def test_the_pension_finalisation_skips_it(container: Container, taro: CardHolder) -> None:
    rid = taro.resident.id
    today = container.accounts.today()
    container.accounts.propose_pension(rid, account("ﾔﾏﾀﾞ ﾊﾅｺ"), today, actor=PENSION)
    result = container.accounts.finalize_pensions(today + dt.timedelta(days=46))
    assert result.registered == []
    assert result.skipped == [(rid, "holder_name_given_name_differs")]
    (proposal,) = container.accounts.proposals(rid)
    assert proposal.skip_reason == "holder_name_given_name_differs"
    assert_nothing_stored(container, taro)

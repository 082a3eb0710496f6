"""The bank route's hardening (issue 14 review): a card challenge serves the purpose it was
issued for only (a bank's challenge opens no portal session), an out-of-range
``requested_at`` is stale (never 500), deliveries belong to the client they are sealed for,
counter sign-in is throttled in the database and ends the terminal's previous session, a
sealing failure leaves the consent standing, the bank deletes its own registrations only (in
the deleting transaction), and one nonce store serves banks and agencies."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mynumber.accounts import models as m
from mynumber.accounts.agency_nonces import AgencyNonces
from mynumber.accounts.bank_clients import THROTTLE_AFTER
from mynumber.accounts.interfaces import (
    BankAccount,
    BankCodeNotOwn,
    BankLoginFailed,
    BankSessionExpired,
    DeliveryState,
    Route,
)
from mynumber.accounts.nonces import NonceStore
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.portal.interfaces import LoginFailed
from mynumber.web.accounts_portal import ACCOUNTS_PURPOSE
from tests.accounts.test_bank_deposit import keyed_bank
from tests.accounts.test_bank_pages import Clerk
from tests.accounts.test_bank_route import URL, Bank, new_bank
from tests.accounts.test_bank_route import api as api  # a fixture
from tests.portal.conftest import AUTH_PIN, CardHolder, issue_card_holder, login
from tests.portal.test_views import Browser
from tests.portal.test_views import browser as browser  # a fixture
from tests.portal.test_views import client as client  # a fixture


@pytest.fixture
def taro(container: Container, clerk: StaffPrincipal) -> CardHolder:
    return issue_card_holder(container, clerk)


@pytest.fixture
def bank(container: Container, api: TestClient) -> Bank:
    client_, key, secret = new_bank(container)
    return Bank(api, client_, key, secret)


def _sign(holder: CardHolder, challenge: dict[str, Any]) -> dict[str, str]:
    signature = holder.chip.sign("auth", AUTH_PIN, base64.b64decode(challenge["challenge"]))
    return {"challenge_id": challenge["challenge_id"],
            "signature": base64.b64encode(signature).decode(),
            "certificate": holder.chip.certificate("auth").decode()}


# --- H1: a challenge serves its purpose only --------------------------------------------------


def test_a_banks_challenge_signed_by_the_customer_opens_no_portal_session(
        container: Container, bank: Bank, taro: CardHolder) -> None:
    card = bank.card(taro)  # the customer signs the bank's challenge at the counter
    portal = bank.api.post("/api/v1/portal/login", json=card)
    assert portal.status_code == 401, portal.text
    assert portal.json()["code"] == "portal_login_failed" and "token" not in portal.json()
    # Refused without being spent: the bank's own request with it still goes through.
    done = bank.api.post(f"{URL}/accounts", json=bank.body("bank-account-register",
                                                           bank.account(None, card)))
    assert done.status_code == 201, done.text


def test_the_bank_accepts_neither_a_login_challenge_nor_another_clients(
        container: Container, api: TestClient, bank: Bank, taro: CardHolder) -> None:
    login_card = _sign(taro, api.post("/api/v1/portal/login/challenge").json())
    refused = api.post(f"{URL}/accounts", json=bank.body("bank-account-register",
                                                         bank.account(None, login_card)))
    assert refused.status_code == 401 and refused.json()["reason"] == "unknown_challenge"
    other_client, key, secret = new_bank(container)
    other = Bank(api, other_client, key, secret)
    theirs = other.card(taro)
    refused = api.post(f"{URL}/accounts", json=bank.body("bank-account-register",
                                                         bank.account(None, theirs)))
    assert refused.status_code == 401, refused.text
    assert container.accounts.registration(taro.resident.id) is None
    # The portal login itself still works with its own challenge.
    assert api.post("/api/v1/portal/login", json=login_card).status_code == 200


def test_the_residents_procedures_and_the_login_do_not_share_challenges(
        container: Container, api: TestClient, taro: CardHolder) -> None:
    bearer = {"Authorization": f"Bearer {login(container, taro).token}"}
    account = {"bank_code": "8001", "branch_code": "101", "deposit_type": "ordinary",
               "account_number": "1234567", "holder_name": "ヤマダ タロウ"}
    login_card = _sign(taro, api.post("/api/v1/portal/login/challenge").json())
    refused = api.put("/api/v1/portal/me/accounts", headers=bearer,
                      json={**account, "card": login_card})
    assert refused.status_code == 401 and refused.json()["code"] == "portal_login_failed"
    own = _sign(taro, api.post("/api/v1/portal/me/accounts/challenge", headers=bearer).json())
    assert api.post("/api/v1/portal/login", json=own).status_code == 401
    assert api.post("/api/v1/portal/me/accounts/challenge").status_code == 401  # no session
    done = api.put("/api/v1/portal/me/accounts", headers=bearer, json={**account, "card": own})
    assert done.status_code == 200, done.text


def test_verify_card_requires_the_exact_purpose(container: Container,
                                                taro: CardHolder) -> None:
    portal = container.portal
    challenge = portal.begin_login("bank:bc_0000000000000000")
    signature = taro.chip.sign("auth", AUTH_PIN, challenge.challenge)
    certificate = taro.chip.certificate("auth").decode()
    for purpose in ("login", ACCOUNTS_PURPOSE, "bank:bc_0000000000000001"):
        with pytest.raises(LoginFailed):
            portal.verify_card(challenge.challenge_id, signature, certificate, purpose=purpose)
    with pytest.raises(LoginFailed):
        portal.complete_login(challenge.challenge_id, signature, certificate)
    assert portal.verify_card(challenge.challenge_id, signature, certificate,
                              purpose="bank:bc_0000000000000000")
    with pytest.raises(ValueError):
        portal.begin_login("Bank Login")


# --- H2: requested_at beyond UTC arithmetic is stale -------------------------------------------


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+09:00", "9999-12-31T23:59:59-09:00"])
def test_a_requested_at_at_the_calendars_edge_is_stale_not_500(
        api: TestClient, bank: Bank, when: str) -> None:
    body = {"client_id": bank.client.client_id, "requested_at": when,
            "nonce": secrets.token_urlsafe(18),
            "signature": base64.b64encode(b"x" * 64).decode()}
    answer = api.post(f"{URL}/challenges", json=body)
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "accounts_bank_request_stale"


# --- M2: a delivery belongs to the client it is sealed for ------------------------------------


def test_only_the_client_a_delivery_is_sealed_for_collects_it_and_suspension_reseals(
        container: Container, api: TestClient, taro: CardHolder) -> None:
    first = keyed_bank(container, api, "8001")
    asked = first.ask(taro)
    assert asked.status_code == 201 and asked.json()["delivery"] == "sealed", asked.text
    [made] = container.accounts_deposit.numbering_requests(taro.resident.id)
    # A second terminal of the same bank, registered later, neither sees nor acknowledges it.
    second = keyed_bank(container, api, "8001")
    assert second.deliveries().json() == {"deliveries": []}
    assert second.acknowledge([made.id]).json() == {"acknowledged": 0}
    [delivery] = first.deliveries().json()["deliveries"]
    assert first.open(container, delivery)["request_id"] == made.id

    # The first client is suspended: its uncollected delivery goes back to pending (the
    # sealed bytes dropped) and is sealed again for the bank's current key.
    container.bank_clients.suspend(first.client.client_id, actor="test")
    with container.databases.unit_of_work("accounts") as session:
        row = session.get(m.DepositNumberingRequest, made.id)
        assert row is not None and row.state == DeliveryState.PENDING.value
        assert row.sealed_number is None and row.sealed_for is None
    assert container.accounts_deposit.seal_pending() == 1
    [again] = second.deliveries().json()["deliveries"]
    assert second.open(container, again)["request_id"] == made.id
    assert second.acknowledge([made.id]).json() == {"acknowledged": 1}


# --- M3 / M4: counter sign-in ----------------------------------------------------------------


def test_counter_sign_in_is_throttled_in_the_database(container: Container) -> None:
    client_, _key, secret = new_bank(container)
    clients = container.bank_clients
    now = dt.datetime(2026, 6, 1, 3, 0, tzinfo=dt.UTC)
    clients.clock = lambda: now
    for _ in range(THROTTLE_AFTER):
        with pytest.raises(BankLoginFailed):
            clients.login(client_.client_id, "wrong")
    # Throttled: the right secret is refused too, until the throttle ends.
    with pytest.raises(BankLoginFailed):
        clients.login(client_.client_id, secret)
    with container.databases.unit_of_work("accounts") as session:
        row = session.get(m.BankClient, client_.client_id)
        assert row is not None and row.failed_logins == THROTTLE_AFTER + 1
        assert row.locked_until is not None and row.locked_until > now
    now = now + dt.timedelta(minutes=16)
    token, signed_in = clients.login(client_.client_id, secret)
    assert token and signed_in.client_id == client_.client_id
    with container.databases.unit_of_work("accounts") as session:
        row = session.get(m.BankClient, client_.client_id)
        assert row is not None and row.failed_logins == 0 and row.locked_until is None


def test_parallel_refused_sign_ins_are_all_counted(container: Container) -> None:
    client_, _key, _secret = new_bank(container)
    n = 12
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def attempt() -> None:
        barrier.wait(10)
        try:
            container.bank_clients.login(client_.client_id, "wrong")
        except BankLoginFailed:
            pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with container.databases.unit_of_work("accounts") as session:
        row = session.get(m.BankClient, client_.client_id)
        assert row is not None and row.failed_logins == n  # no lost update
        assert row.locked_until is not None


def test_signing_in_ends_the_terminals_previous_bank_session(
        container: Container, browser: Browser) -> None:
    client_, _key, secret = new_bank(container)
    teller = Clerk(browser, client_.client_id, secret)
    assert teller.login().status_code == 303
    first = browser.client.cookies.get("mn_bank")
    assert first and container.bank_clients.session(first).client_id == client_.client_id
    assert teller.login().status_code == 303
    second = browser.client.cookies.get("mn_bank")
    assert second and second != first
    with pytest.raises(BankSessionExpired):
        container.bank_clients.session(first)
    assert browser.get("/bank").status_code == 200


# --- M5: a sealing failure leaves the consent standing ---------------------------------------


def test_a_sealing_failure_after_the_consent_leaves_it_pending_not_500(
        container: Container, api: TestClient, taro: CardHolder) -> None:
    bank = keyed_bank(container, api, "8001")
    deposit = container.accounts_deposit
    signer = deposit.signer

    def no_keys() -> Any:
        raise RuntimeError("the numbering keys are not available in this process")

    deposit.signer = no_keys
    try:
        asked = bank.ask(taro)
    finally:
        deposit.signer = signer
    assert asked.status_code == 201, asked.text
    assert asked.json()["delivery"] == "pending"
    [made] = deposit.numbering_requests(taro.resident.id)
    assert made.state is DeliveryState.PENDING
    # A retry is told the request is recorded (not a bare conflict), and seal-pending
    # delivers it later.
    again = bank.ask(taro)
    assert again.status_code == 409
    assert again.json()["code"] == "accounts_deposit_numbering_already_requested"
    assert deposit.seal_pending() == 1
    [delivery] = bank.deliveries().json()["deliveries"]
    assert bank.open(container, delivery)["request_id"] == made.id


# --- M7: the bank deletes its own registration only, in the deleting transaction ------------


def test_delete_with_an_expected_bank_code_is_checked_on_the_row_deleted(
        container: Container, taro: CardHolder) -> None:
    accounts = container.accounts
    accounts.register(taro.resident.id, BankAccount("8005", "101", "ordinary", "1234567",
                                                "ヤマダ タロウ"), Route.TAX_RETURN,
                      actor="agency:nta")
    with pytest.raises(BankCodeNotOwn):
        accounts.delete(taro.resident.id, Route.TAX_RETURN, actor="agency:nta",
                        expected_bank_code="8001")
    assert accounts.registration(taro.resident.id) is not None
    accounts.delete(taro.resident.id, Route.TAX_RETURN, actor="agency:nta",
                    expected_bank_code="8005")
    assert accounts.registration(taro.resident.id) is None


def test_the_bank_route_cannot_delete_another_banks_registration(
        container: Container, api: TestClient, bank: Bank, taro: CardHolder) -> None:
    container.accounts.register(taro.resident.id, BankAccount(
        "8005", "101", "ordinary", "1234567", "ヤマダ タロウ"), Route.TAX_RETURN,
        actor="agency:nta")
    refused = api.request("DELETE", f"{URL}/accounts", json=bank.body(
        "bank-account-delete", {"card": bank.card(taro)}))
    assert refused.status_code == 403 and refused.json()["code"] == "accounts_bank_code_not_own"
    assert container.accounts.registration(taro.resident.id) is not None


# --- item 7: one nonce store ------------------------------------------------------------------


def test_one_nonce_store_for_banks_and_agencies_once_per_issuer_under_threads(
        container: Container) -> None:
    databases = container.accounts.databases
    nonce = secrets.token_urlsafe(18)
    agencies = AgencyNonces(databases)
    store = NonceStore(databases)
    outcomes: list[bool] = []
    lock = threading.Lock()
    n = 8
    barrier = threading.Barrier(n)

    def attempt() -> None:
        barrier.wait(10)
        ok = agencies.claim("nta", nonce, "tax-return")
        with lock:
            outcomes.append(ok)

    threads = [threading.Thread(target=attempt) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == [False] * (n - 1) + [True]
    # The same nonce from another issuer is its own.
    assert store.claim("bank:bc_0000000000000000", nonce, "bank-card-challenge")
    assert not store.claim("bank:bc_0000000000000000", nonce)
    with databases.unit_of_work("accounts") as session:
        issuers = sorted(session.scalars(select(m.RequestNonce.issuer)
                                         .where(m.RequestNonce.nonce == nonce)))
    assert issuers == ["agency:nta", "bank:bc_0000000000000000"]

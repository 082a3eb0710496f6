"""預貯金口座付番 through the bank route: the resident at the counter asks, with their card, for
numbering at THIS bank (API and /bank page); the bank collects its deliveries, the 個人番号
sealed for its own X25519 key (another bank sees none of them), and acknowledges them, after
which the sealed bytes are gone. Once per person and bank, refused clearly the second time."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select

from mynumber import envelope
from mynumber.accounts import models as m
from mynumber.accounts.interfaces import DIGITAL_AGENCY, DeliveryState, Route
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from tests.accounts.test_bank_pages import Clerk, card_form
from tests.accounts.test_bank_route import RAW, URL, Bank
from tests.accounts.test_bank_route import api as api  # a fixture
from tests.portal.conftest import AUTH_PIN, CardHolder, issue_card_holder
from tests.portal.test_views import Browser
from tests.portal.test_views import browser as browser  # a fixture
from tests.portal.test_views import client as client  # a fixture

NUMBERING = f"{URL}/deposit-numbering"
DELIVERIES = f"{URL}/deposit-numbering/deliveries"
ACKNOWLEDGE = f"{URL}/deposit-numbering/deliveries/acknowledge"


class KeyedBank(Bank):
    """A bank client whose X25519 private key the test keeps: the bank's own system."""

    encryption: X25519PrivateKey

    def open(self, container: Container, delivery: dict[str, Any]) -> dict[str, Any]:
        return envelope.open_sealed(base64.b64decode(delivery["sealed"]), self.encryption,
                                    _digital_agency(container), delivery["info"].encode())

    def deliveries(self, **fields: Any) -> Any:
        return self.api.post(DELIVERIES, json=self.body("bank-deposit-deliveries", fields))

    def acknowledge(self, ids: list[int]) -> Any:
        return self.api.post(ACKNOWLEDGE, json=self.body("bank-deposit-acknowledge",
                                                         {"request_ids": ids}))

    def ask(self, holder: CardHolder) -> Any:
        return self.api.post(NUMBERING, json=self.body("bank-deposit-numbering",
                                                       {"card": self.card(holder)}))


def keyed_bank(container: Container, api: TestClient, bank_code: str) -> KeyedBank:
    signing, encryption = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    client, secret = container.bank_clients.register(
        bank_code, "本店窓口", signing.public_key().public_bytes(*RAW),
        encryption.public_key().public_bytes(*RAW), actor="test")
    bank = KeyedBank(api, client, signing, secret)
    bank.encryption = encryption
    return bank


def _digital_agency(container: Container) -> bytes:
    return envelope.raw_public(container.keyring.keys(DIGITAL_AGENCY).signing.public_key())


def _number(container: Container, clerk: StaffPrincipal, resident_id: int) -> str:
    return container.registry.reveal_number(clerk, resident_id, "test: compare")


@pytest.fixture
def taro(container: Container, clerk: StaffPrincipal) -> CardHolder:
    return issue_card_holder(container, clerk)


@pytest.fixture
def mirai(container: Container, api: TestClient) -> KeyedBank:
    return keyed_bank(container, api, "8001")


@pytest.fixture
def other(container: Container, api: TestClient) -> KeyedBank:
    return keyed_bank(container, api, "8005")


def test_the_bank_collects_the_number_sealed_for_its_key_and_no_other_bank_sees_it(
        container: Container, clerk: StaffPrincipal, mirai: KeyedBank, other: KeyedBank,
        taro: CardHolder) -> None:
    asked = mirai.ask(taro)
    assert asked.status_code == 201, asked.text
    assert asked.json()["bank_code"] == "8001" and asked.json()["route"] == "bank"
    assert asked.json()["delivery"] == "sealed"
    [made] = container.accounts_deposit.numbering_requests(taro.resident.id)
    assert made.route is Route.BANK and made.actor == mirai.client.actor

    number = _number(container, clerk, taro.resident.id)
    # Another bank's client finds nothing of it, and cannot acknowledge it away.
    assert other.deliveries().json() == {"deliveries": []}
    assert other.acknowledge([made.id]).json() == {"acknowledged": 0}

    collected = mirai.deliveries()
    assert collected.status_code == 200, collected.text
    [delivery] = collected.json()["deliveries"]
    assert number not in collected.text  # sealed, never in clear
    assert delivery["request_id"] == made.id and delivery["bank_code"] == "8001"
    assert delivery["info"] == f"mynumber-deposit-numbering/v1/8001/{made.id}"
    body = mirai.open(container, delivery)
    assert body["individual_number"] == number
    assert body["request_id"] == made.id and body["name_kana"] == "ヤマダ タロウ"
    # The other bank's key opens nothing.
    with pytest.raises(envelope.EnvelopeError):
        other.open(container, delivery)

    done = mirai.acknowledge([made.id])
    assert done.status_code == 200 and done.json() == {"acknowledged": 1}
    with container.databases.unit_of_work("accounts") as session:
        row = session.scalars(select(m.DepositNumberingRequest)).one()
        assert row.sealed_number is None and row.state == DeliveryState.DELIVERED.value
    assert mirai.deliveries().json() == {"deliveries": []}
    assert mirai.acknowledge([made.id]).json() == {"acknowledged": 0}


def test_a_second_request_at_the_same_bank_is_refused(
        container: Container, mirai: KeyedBank, other: KeyedBank, taro: CardHolder) -> None:
    assert mirai.ask(taro).status_code == 201
    again = mirai.ask(taro)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    problem = again.json()
    assert problem["code"] == "accounts_deposit_numbering_already_requested"
    assert problem["field"] == "bank_codes" and problem["bank_codes"] == ["8001"]
    # Another bank is another consent.
    assert other.ask(taro).status_code == 201
    assert [r.bank_code for r in container.accounts_deposit.numbering_requests(
        taro.resident.id)] == ["8001", "8005"]


def test_parallel_requests_at_one_bank_exactly_one_is_made(
        container: Container, mirai: KeyedBank, taro: CardHolder) -> None:
    """Two counters send the same person's request at once, each with its own card
    authentication: the database's unique key lets one through (SQLite and PostgreSQL)."""
    bodies = [mirai.body("bank-deposit-numbering", {"card": mirai.card(taro)})
              for _ in range(2)]
    start = threading.Barrier(2)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(body: dict[str, Any]) -> None:
        start.wait()
        status = mirai.api.post(NUMBERING, json=body).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [201, 409], statuses
    assert len(container.accounts_deposit.numbering_requests(taro.resident.id)) == 1


def test_the_deposit_calls_are_signed_and_once(mirai: KeyedBank, taro: CardHolder) -> None:
    body = mirai.body("bank-deposit-deliveries", {"limit": 5})
    tampered = dict(body, limit=6)
    refused = mirai.api.post(DELIVERIES, json=tampered)
    assert refused.status_code == 403 and refused.json()["code"] == "accounts_bank_bad_signature"
    assert mirai.api.post(DELIVERIES, json=body).status_code == 200
    replayed = mirai.api.post(DELIVERIES, json=body)
    assert replayed.status_code == 409
    assert replayed.json()["code"] == "accounts_bank_request_replayed"
    # A signature made for fetching does not acknowledge.
    wrong_kind = mirai.body("bank-deposit-deliveries", {"request_ids": [1]})
    assert mirai.api.post(ACKNOWLEDGE, json=wrong_kind).json()["code"] \
        == "accounts_bank_bad_signature"
    # Nor does a card authentication without the client's signature ask for numbering.
    unsigned = mirai.api.post(NUMBERING, json={**mirai.body("bank-card-challenge"),
                                               "card": mirai.card(taro)})
    assert unsigned.status_code == 403


# --- the counter page -------------------------------------------------------------------------


def test_the_counter_page_asks_at_this_bank_and_refuses_a_second_request_clearly(
        container: Container, clerk: StaffPrincipal, browser: Browser, api: TestClient,
        taro: CardHolder) -> None:
    bank = keyed_bank(container, api, "8001")
    teller = Clerk(browser, bank.client.client_id, bank.secret)
    assert teller.login().status_code == 303
    counter = browser.get("/bank")
    assert 'href="/bank/deposit-numbering"' in counter.text

    page = browser.get("/bank/deposit-numbering")
    assert page.status_code == 200, page.text
    assert "預貯金口座付番の申出" in page.text and "みらい銀行" in page.text
    sent = browser.post("/bank/deposit-numbering", {**card_form(page), "card_id": taro.card_id,
                                                    "pin": AUTH_PIN})
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == "/bank/done?done=deposit_numbering"
    done = browser.follow(sent)
    assert "預貯金口座付番の申出を受け付けました" in done.text
    number = _number(container, clerk, taro.resident.id)
    for trace in (number, "ヤマダ", "challenge", taro.card_id):
        assert trace not in done.text, trace
    [made] = container.accounts_deposit.numbering_requests(taro.resident.id)
    assert (made.bank_code, made.route, made.actor) == ("8001", Route.BANK, bank.client.actor)
    # The bank's system opens what the counter's request sent.
    [delivery] = bank.deliveries().json()["deliveries"]
    assert bank.open(container, delivery)["individual_number"] == number

    again_page = browser.get("/bank/deposit-numbering")
    again = browser.post("/bank/deposit-numbering", {**card_form(again_page),
                                                     "card_id": taro.card_id, "pin": AUTH_PIN})
    assert again.status_code == 409
    # Recorded, and on its way: a retry is told so, not left wondering (M5).
    assert "すでに受け付けています" in again.text and "申出は金融機関ごとに1回です" in again.text
    assert "個人番号は暗号化して当行（当金庫）に届きます" in again.text
    assert 'class="error-field"' in again.text and "申出先の金融機関" in again.text
    code = "accounts_deposit_numbering_already_requested"  # a data attribute, not shown
    assert again.text.count(code) == again.text.count(f'data-code="{code}"')
    assert len(container.accounts_deposit.numbering_requests(taro.resident.id)) == 1

    english_page = browser.get("/bank/deposit-numbering?lang=en")
    assert "Deposit-account numbering request" in english_page.text
    english = browser.post("/bank/deposit-numbering", {**card_form(english_page),
                                                       "card_id": taro.card_id,
                                                       "pin": AUTH_PIN})
    assert english.status_code == 409
    assert "is already recorded at this bank" in english.text
    assert "Bank asked" in english.text


def test_the_counter_page_names_the_field_of_a_missing_pin(
        container: Container, browser: Browser, api: TestClient, taro: CardHolder) -> None:
    bank = keyed_bank(container, api, "8001")
    assert Clerk(browser, bank.client.client_id, bank.secret).login().status_code == 303
    page = browser.get("/bank/deposit-numbering")
    refused = browser.post("/bank/deposit-numbering", {**card_form(page),
                                                       "card_id": taro.card_id, "pin": ""})
    assert refused.status_code == 422
    assert 'class="error-field"' in refused.text and "暗証番号" in refused.text
    assert container.accounts_deposit.numbering_requests(taro.resident.id) == []

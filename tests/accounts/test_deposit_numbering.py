"""預貯金口座付番 with consent: once per person and bank (the database decides, also under
parallel requests), bound to the person's card, and the 個人番号 delivered to the bank sealed
for the bank's X25519 key only, never stored in clear."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from mynumber import envelope
from mynumber.accounts import models as m
from mynumber.accounts.deposit import DepositNumberingServiceImpl
from mynumber.accounts.interfaces import (
    DIGITAL_AGENCY,
    CardAuthenticationOtherPerson,
    CardAuthenticationUsed,
    DeliveryState,
    NumberingAlreadyRequested,
    RegistrantUnavailable,
    Route,
    RouteNotPermitted,
    UnknownBank,
    deposit_info,
)
from mynumber.accounts.services import AccountsServiceImpl
from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.cli import app as cli
from mynumber.errors import DomainError
from mynumber.settings import Settings
from tests.accounts.conftest import TODAY, Person, card
from tests.accounts.test_pages import card_form
from tests.conftest import cli_env
from tests.portal.conftest import AUTH_PIN, CardHolder, issue_card_holder, login
from tests.portal.test_views import Browser
from tests.portal.test_views import browser as browser  # a fixture
from tests.portal.test_views import client as client  # a fixture


class BankKeyring:
    """A test BankKeys: real X25519 keys, one per bank, generated here."""

    def __init__(self) -> None:
        self.private: dict[str, x25519.X25519PrivateKey] = {}

    def add(self, bank_code: str) -> x25519.X25519PrivateKey:
        key = self.private[bank_code] = x25519.X25519PrivateKey.generate()
        return key

    def sealing_key(self, bank_code: str) -> tuple[str, bytes] | None:
        key = self.private.get(bank_code)
        return (f"test:{bank_code}", envelope.raw_public(key.public_key())) if key else None


@pytest.fixture
def banks() -> BankKeyring:
    keyring = BankKeyring()
    for code in ("8001", "8005"):
        keyring.add(code)
    return keyring


@pytest.fixture
def deposit(container: Container, accounts: AccountsServiceImpl,
            banks: BankKeyring) -> DepositNumberingServiceImpl:
    service = container.accounts_deposit
    service.bank_keys = banks
    return service


def _sender(container: Container) -> bytes:
    return envelope.raw_public(container.keyring.keys(DIGITAL_AGENCY).signing.public_key())


def _number(container: Container, clerk: StaffPrincipal, resident_id: int) -> str:
    return container.registry.reveal_number(clerk, resident_id, "test: compare")


def test_the_sealed_number_opens_with_the_banks_key_only(
        container: Container, deposit: DepositNumberingServiceImpl, banks: BankKeyring,
        person: Person, clerk: StaffPrincipal) -> None:
    taro = person()
    made = deposit.request_numbering(taro.id, ["8001", "8005"], Route.PORTAL,
                                     authentication=card(taro.id))
    assert [(r.bank_code, r.state) for r in made] == [("8001", DeliveryState.SEALED),
                                                       ("8005", DeliveryState.SEALED)]
    [delivery] = deposit.deliveries("8001")
    assert delivery.request_id == made[0].id
    body = envelope.open_sealed(delivery.sealed, banks.private["8001"], _sender(container),
                                deposit_info("8001", delivery.request_id))
    number = _number(container, clerk, taro.id)
    assert body["individual_number"] == number
    assert body["bank_code"] == "8001" and body["name_kana"] == "ヤマダ タロウ"
    # Another bank's key, or the right key for another bank's delivery, opens nothing.
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_sealed(delivery.sealed, banks.private["8005"], _sender(container),
                             deposit_info("8001", delivery.request_id))
    [other] = deposit.deliveries("8005")
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_sealed(other.sealed, banks.private["8005"], _sender(container),
                             deposit_info("8001", delivery.request_id))
    # Never in clear: not in any column of the context's database, nor in its audit trail.
    with container.databases.unit_of_work("accounts") as session:
        for row in session.scalars(select(m.DepositNumberingRequest)):
            for column in m.DepositNumberingRequest.__table__.columns:
                value = getattr(row, column.key)
                assert number not in (value.decode("latin-1") if isinstance(value, bytes)
                                      else str(value))
        for event in session.scalars(select(m.AuditEvent)):
            assert number not in f"{event.reason} {event.details}"


def test_the_number_read_is_audited_in_the_registry(
        container: Container, deposit: DepositNumberingServiceImpl, person: Person) -> None:
    from mynumber.registry import models as rm

    taro = person()
    deposit.request_numbering(taro.id, ["8001"], Route.PORTAL, authentication=card(taro.id))
    with container.databases.unit_of_work("registry") as session:
        reads = session.scalars(select(rm.AuditEvent).where(
            rm.AuditEvent.tag == "registry:number:provide")).all()
        assert [(e.actor, e.subject, e.reason) for e in reads] == [
            ("accounts:deposit-numbering", f"resident:{taro.id}", "deposit_numbering:8001")]


def test_a_second_request_for_a_bank_is_refused_and_nothing_is_half_written(
        deposit: DepositNumberingServiceImpl, person: Person) -> None:
    taro = person()
    deposit.request_numbering(taro.id, ["8001"], Route.PORTAL, authentication=card(taro.id))
    with pytest.raises(NumberingAlreadyRequested) as caught:
        deposit.request_numbering(taro.id, ["8005", "8001"], Route.PORTAL,
                                  authentication=card(taro.id))
    assert caught.value.status == 409 and caught.value.extra["bank_codes"] == ["8001"]
    # All or nothing: 8005 was not recorded either, and the card authentication is unspent.
    assert [r.bank_code for r in deposit.numbering_requests(taro.id)] == ["8001"]
    auth = card(taro.id)
    with pytest.raises(NumberingAlreadyRequested):
        deposit.request_numbering(taro.id, ["8001"], Route.PORTAL, authentication=auth)
    deposit.request_numbering(taro.id, ["8005"], Route.PORTAL, authentication=auth)
    assert [r.bank_code for r in deposit.numbering_requests(taro.id)] == ["8001", "8005"]
    # Another person asks the same bank freely.
    hanako = person("山田", "花子", "ヤマダ", "ハナコ")
    deposit.request_numbering(hanako.id, ["8001"], Route.PORTAL, authentication=card(hanako.id))


def test_two_parallel_requests_for_one_bank_exactly_one_succeeds(
        deposit: DepositNumberingServiceImpl, person: Person) -> None:
    taro = person()
    start = threading.Barrier(2)
    outcomes: list[object] = []
    lock = threading.Lock()

    def attempt() -> None:
        auth = card(taro.id)  # each its own authentication: only the bank can collide
        start.wait()
        try:
            result: object = deposit.request_numbering(taro.id, ["8001"], Route.PORTAL,
                                                       authentication=auth)
        except DomainError as exc:
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(outcomes) == 2 and len(errors) == 1, outcomes
    assert isinstance(errors[0], NumberingAlreadyRequested)
    assert len(deposit.numbering_requests(taro.id)) == 1


def test_the_consent_is_bound_to_the_persons_own_fresh_card(
        deposit: DepositNumberingServiceImpl, person: Person, container: Container,
        clerk: StaffPrincipal) -> None:
    taro, hanako = person(), person("山田", "花子", "ヤマダ", "ハナコ")
    with pytest.raises(CardAuthenticationOtherPerson):
        deposit.request_numbering(taro.id, ["8001"], Route.PORTAL,
                                  authentication=card(hanako.id))
    with pytest.raises(DomainError) as missing:
        deposit.request_numbering(taro.id, ["8001"], Route.PORTAL)
    assert missing.value.code == "accounts_card_authentication_required"
    with pytest.raises(RouteNotPermitted):
        deposit.request_numbering(taro.id, ["8001"], Route.TAX_RETURN, actor="agency:x")
    used = card(taro.id)
    deposit.request_numbering(taro.id, ["8001"], Route.BANK, authentication=used,
                              actor="bank:8001")
    with pytest.raises(CardAuthenticationUsed):
        deposit.request_numbering(taro.id, ["8005"], Route.BANK, authentication=used)
    with pytest.raises(UnknownBank):
        deposit.request_numbering(taro.id, ["8002"], Route.PORTAL,  # merged away in 2020
                                  authentication=card(taro.id))
    container.registry.register_death(clerk, hanako.id, TODAY)
    with pytest.raises(RegistrantUnavailable):
        deposit.request_numbering(hanako.id, ["8001"], Route.PORTAL,
                                  authentication=card(hanako.id))
    [made] = deposit.numbering_requests(taro.id)
    assert made.route is Route.BANK and made.actor == "bank:8001"


def test_a_bank_without_a_key_gets_it_later_and_acknowledging_drops_the_sealed_bytes(
        container: Container, deposit: DepositNumberingServiceImpl, banks: BankKeyring,
        person: Person, clerk: StaffPrincipal) -> None:
    taro = person()
    [made] = deposit.request_numbering(taro.id, ["8006"], Route.PORTAL,
                                       authentication=card(taro.id))
    assert made.state is DeliveryState.PENDING and deposit.deliveries("8006") == []
    assert deposit.seal_pending() == 0
    key = banks.add("8006")
    assert deposit.seal_pending() == 1
    [delivery] = deposit.deliveries("8006")
    body = envelope.open_sealed(delivery.sealed, key, _sender(container),
                                deposit_info("8006", made.id))
    assert body["individual_number"] == _number(container, clerk, taro.id)
    assert deposit.acknowledge("8005", [made.id]) == 0  # not that bank's delivery
    assert deposit.acknowledge("8006", [made.id]) == 1
    assert deposit.acknowledge("8006", [made.id]) == 0
    assert deposit.deliveries("8006") == []
    [after] = deposit.numbering_requests(taro.id)
    assert after.state is DeliveryState.DELIVERED and after.delivered_at is not None
    with container.databases.unit_of_work("accounts") as session:
        row = session.get(m.DepositNumberingRequest, made.id)
        assert row is not None and row.sealed_number is None


# --- the portal's API and pages --------------------------------------------------------------

URL = "/api/v1/portal/me/deposit-numbering"


@pytest.fixture
def api(container: Container, banks: BankKeyring) -> Iterator[TestClient]:
    container.accounts_deposit.bank_keys = banks
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def signed(api: TestClient, holder: CardHolder, bearer: dict[str, str]) -> dict[str, str]:
    """The holder's card signs a challenge of the session's own ``accounts`` purpose."""
    challenge = api.post("/api/v1/portal/me/accounts/challenge", headers=bearer).json()
    signature = holder.chip.sign("auth", AUTH_PIN, base64.b64decode(challenge["challenge"]))
    return {"challenge_id": challenge["challenge_id"],
            "signature": base64.b64encode(signature).decode(),
            "certificate": holder.chip.certificate("auth").decode()}


def test_api_request_once_and_list(container: Container, api: TestClient,
                                   clerk: StaffPrincipal) -> None:
    taro = issue_card_holder(container, clerk)
    bearer = {"Authorization": f"Bearer {login(container, taro).token}"}
    assert api.get(URL, headers=bearer).json() == {"requests": []}
    made = api.post(URL, headers=bearer, json={"bank_codes": ["8001", "8005"],
                                               "card": signed(api, taro, bearer)})
    assert made.status_code == 201, made.text
    assert [(r["bank_code"], r["delivery"]) for r in made.json()["requests"]] == [
        ("8001", "sealed"), ("8005", "sealed")]
    assert made.json()["requests"][0]["bank_name"] == "みらい銀行"
    again = api.post(URL, headers=bearer, json={"bank_codes": ["8001"],
                                                "card": signed(api, taro, bearer)})
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["code"] == "accounts_deposit_numbering_already_requested"
    assert again.json()["bank_codes"] == ["8001"]
    number = container.registry.reveal_number(clerk, container.jpki.certificate(
        container.portal.certificate_serial(login(container, taro).token)).resident_id, "test")
    listed = api.get(URL, headers=bearer)
    assert len(listed.json()["requests"]) == 2 and number not in listed.text + made.text
    assert api.get(URL).status_code == 401


def test_pages_ask_list_and_refuse_in_japanese(container: Container, browser: Browser,
                                               banks: BankKeyring,
                                               clerk: StaffPrincipal) -> None:
    container.accounts_deposit.bank_keys = banks
    taro = issue_card_holder(container, clerk)
    assert browser.reader_login(taro).status_code == 303
    page = browser.get("/portal/accounts/deposit")
    assert page.status_code == 200, page.text
    assert "預貯金口座へのマイナンバーの付番" in page.text and 'id="no-requests"' in page.text
    assert 'value="8001"' in page.text and 'value="8002"' not in page.text  # 8002 merged
    done = browser.post("/portal/accounts/deposit", {
        "bank_codes": ["8001", "8005"], **card_form(page), "card_id": taro.card_id,
        "pin": AUTH_PIN})
    assert done.status_code == 303, done.text
    shown = browser.follow(done)
    assert "付番の申出を受け付けました" in shown.text
    assert "みらい銀行" in shown.text and "金融機関の受取待ち" in shown.text
    # Asked banks are no longer offered; asking none is refused with the field named.
    assert 'name="bank_codes" value="8001"' not in shown.text
    empty = browser.post("/portal/accounts/deposit", {
        **card_form(shown), "card_id": taro.card_id, "pin": AUTH_PIN})
    assert empty.status_code == 422 and "金融機関を選んでください" in empty.text
    assert 'class="field invalid" id="bank-choice"' in empty.text
    number = container.registry.reveal_number(clerk, taro.resident.id, "test")
    assert number not in shown.text + empty.text


def test_cli_lists_a_persons_requests(settings: Settings, deposit: DepositNumberingServiceImpl,
                                      person: Person) -> None:
    import json

    taro = person()
    deposit.request_numbering(taro.id, ["8001"], Route.PORTAL, authentication=card(taro.id))
    out = CliRunner().invoke(cli, ["accounts", "deposit", "list", "--resident-id",
                                   str(taro.id)], env=cli_env(settings))
    assert out.exit_code == 0, out.output
    assert [(r["bank_code"], r["state"]) for r in json.loads(out.stdout)] == [
        ("8001", "sealed")]

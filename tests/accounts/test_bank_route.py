"""The bank route's API (/api/v1/bank) and its clients: signed requests (signature, freshness,
a nonce used once in the database), the person named by the card, the bank's own code, the
holder-name check, suspension, the CLI, and the banks' encryption keys (BankKeys)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from mynumber.accounts import models as m
from mynumber.accounts.bank_clients import BankClientsImpl
from mynumber.accounts.interfaces import (
    BankClient,
    BankKeys,
    BankRequestReplayed,
    InvalidBankClient,
    Route,
)
from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.cli import app as cli_app
from mynumber.errors import DomainError
from mynumber.network.interfaces import signed_request_bytes
from mynumber.settings import Settings
from tests.conftest import cli_env
from tests.portal.conftest import AUTH_PIN, CardHolder, issue_card_holder

RAW = Encoding.Raw, PublicFormat.Raw
URL = "/api/v1/bank"
runner = CliRunner()


class Bank:
    """A bank's system: its client id and signing key, signing each request it sends."""

    def __init__(self, api: TestClient, client: BankClient, key: Ed25519PrivateKey,
                 secret: str) -> None:
        self.api, self.client, self.key, self.secret = api, client, key, secret

    def body(self, kind: str, fields: dict[str, Any] | None = None, *,
             at: dt.datetime | None = None, nonce: str | None = None) -> dict[str, Any]:
        requested_at = at or dt.datetime.now(dt.UTC)
        body: dict[str, Any] = {"client_id": self.client.client_id,
                                "requested_at": requested_at.isoformat(),
                                "nonce": nonce or secrets.token_urlsafe(18), **(fields or {})}
        signed = signed_request_bytes(kind, {**body, "requested_at": requested_at})
        body["signature"] = base64.b64encode(self.key.sign(signed)).decode()
        return body

    def card(self, holder: CardHolder) -> dict[str, str]:
        """The resident at the counter signs a challenge the bank asked for."""
        answer = self.api.post(f"{URL}/challenges", json=self.body("bank-card-challenge"))
        assert answer.status_code == 200, answer.text
        challenge = answer.json()
        signature = holder.chip.sign("auth", AUTH_PIN, base64.b64decode(challenge["challenge"]))
        return {"challenge_id": challenge["challenge_id"],
                "signature": base64.b64encode(signature).decode(),
                "certificate": holder.chip.certificate("auth").decode()}

    def account(self, holder: CardHolder | None, card: dict[str, str] | None = None,
                **overrides: str) -> dict[str, Any]:
        values: dict[str, Any] = {"bank_code": self.client.bank_code, "branch_code": "101",
                                  "deposit_type": "ordinary", "account_number": "1234567",
                                  "holder_name": "ヤマダ タロウ"}
        values.update(overrides)
        values["card"] = card if card is not None else self.card(holder)  # type: ignore[arg-type]
        return values


def new_bank(container: Container, bank_code: str = "8001"
             ) -> tuple[BankClient, Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    client, secret = container.bank_clients.register(
        bank_code, "本店窓口", key.public_key().public_bytes(*RAW),
        X25519PrivateKey.generate().public_key().public_bytes(*RAW), actor="test")
    return client, key, secret


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


@pytest.fixture
def bank(container: Container, api: TestClient) -> Bank:
    client, key, secret = new_bank(container)
    return Bank(api, client, key, secret)


@pytest.fixture
def taro(container: Container, clerk: StaffPrincipal) -> CardHolder:
    return issue_card_holder(container, clerk)


def test_the_bank_registers_changes_and_deletes_for_the_person_the_card_names(
        container: Container, bank: Bank, taro: CardHolder) -> None:
    done = bank.api.post(f"{URL}/accounts", json=bank.body(
        "bank-account-register", bank.account(taro)))
    assert done.status_code == 201, done.text
    shown = done.json()
    assert shown["action"] == "registered"
    assert shown["registration"]["account_number_masked"] == "***4567"
    assert "1234567" not in done.text and shown["registration"]["route"] == "bank"
    registration = container.accounts.registration(taro.resident.id)
    assert registration is not None and registration.route is Route.BANK
    assert registration.actor == f"bank:8001:{bank.client.client_id}"
    assert registration.certificate_serial  # bound to the card authentication that made it

    changed = bank.api.put(f"{URL}/accounts", json=bank.body(
        "bank-account-change", bank.account(taro, account_number="7654321")))
    assert changed.status_code == 200, changed.text
    assert changed.json()["registration"]["account_number_masked"] == "***4321"

    deleted = bank.api.request("DELETE", f"{URL}/accounts", json=bank.body(
        "bank-account-delete", {"card": bank.card(taro)}))
    assert deleted.status_code == 204, deleted.text
    assert container.accounts.registration(taro.resident.id) is None
    assert [h.action for h in container.accounts.history(taro.resident.id)] == [
        "registered", "changed", "deleted"]


def test_a_relatives_account_is_refused_through_the_bank(
        container: Container, bank: Bank, taro: CardHolder) -> None:
    refused = bank.api.post(f"{URL}/accounts", json=bank.body(
        "bank-account-register", bank.account(taro, holder_name="ヤマダ ハナコ")))
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "accounts_holder_name_mismatch"
    assert refused.json()["reason"] == "given_name_differs"
    assert container.accounts.registration(taro.resident.id) is None


def test_another_banks_code_is_refused_before_the_card_is_used(
        container: Container, bank: Bank, taro: CardHolder) -> None:
    card = bank.card(taro)
    other = bank.api.post(f"{URL}/accounts", json=bank.body(
        "bank-account-register", bank.account(None, card, bank_code="8005")))
    assert other.status_code == 403 and other.json()["code"] == "accounts_bank_code_not_own"
    assert container.accounts.registration(taro.resident.id) is None
    # The card's challenge was not spent on the refused request.
    ok = bank.api.post(f"{URL}/accounts", json=bank.body(
        "bank-account-register", bank.account(None, card)))
    assert ok.status_code == 201, ok.text

    # Nor can it delete a registration at another bank.
    other_bank = Bank(bank.api, *new_bank(container, "8005"))
    refused = other_bank.api.request("DELETE", f"{URL}/accounts", json=other_bank.body(
        "bank-account-delete", {"card": other_bank.card(taro)}))
    assert refused.status_code == 403
    assert refused.json()["code"] == "accounts_bank_code_not_own"
    assert container.accounts.registration(taro.resident.id) is not None


def test_the_next_person_cannot_use_the_previous_persons_card_authentication(
        container: Container, clerk: StaffPrincipal, bank: Bank, taro: CardHolder) -> None:
    hanako = issue_card_holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    taros_card = bank.card(taro)
    assert bank.api.post(f"{URL}/accounts", json=bank.body(
        "bank-account-register", bank.account(None, taros_card))).status_code == 201
    # Hanako's account with Taro's card authentication, replayed in a new signed request.
    replay = bank.api.post(f"{URL}/accounts", json=bank.body(
        "bank-account-register", bank.account(None, taros_card, holder_name="ヤマダ ハナコ",
                                              account_number="7777777")))
    assert replay.status_code == 401 and replay.json()["reason"] == "challenge_used"
    assert container.accounts.registration(hanako.resident.id) is None
    # With Taro's card signing afresh, it is Taro's registration that would change: and the
    # holder name (Hanako's) is refused.
    wrong = bank.api.put(f"{URL}/accounts", json=bank.body(
        "bank-account-change", bank.account(taro, holder_name="ヤマダ ハナコ")))
    assert wrong.status_code == 422
    registration = container.accounts.registration(taro.resident.id)
    assert registration is not None and registration.account_number == "1234567"
    # Hanako's own card registers hers.
    own = bank.api.post(f"{URL}/accounts", json=bank.body(
        "bank-account-register", bank.account(hanako, holder_name="ヤマダ ハナコ")))
    assert own.status_code == 201, own.text


def test_signature_freshness_and_nonce_problems(bank: Bank, taro: CardHolder) -> None:
    body = bank.body("bank-card-challenge")
    tampered = dict(body, nonce=secrets.token_urlsafe(18))
    bad = bank.api.post(f"{URL}/challenges", json=tampered)
    assert bad.status_code == 403 and bad.json()["code"] == "accounts_bank_bad_signature"
    other_kind = bank.api.post(f"{URL}/accounts", json={
        **bank.body("bank-card-challenge", bank.account(taro))})
    assert other_kind.json()["code"] == "accounts_bank_bad_signature"
    stranger = Bank(bank.api, bank.client, Ed25519PrivateKey.generate(), "")
    assert bank.api.post(f"{URL}/challenges", json=stranger.body(
        "bank-card-challenge")).json()["code"] == "accounts_bank_bad_signature"
    unknown = dict(body, client_id="bc_0000000000000000")
    assert bank.api.post(f"{URL}/challenges", json=unknown).json()["code"] \
        == "accounts_bank_bad_signature"

    old = bank.body("bank-card-challenge", at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6))
    stale = bank.api.post(f"{URL}/challenges", json=old)
    assert stale.status_code == 403 and stale.json()["code"] == "accounts_bank_request_stale"
    future = bank.body("bank-card-challenge",
                       at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6))
    assert bank.api.post(f"{URL}/challenges", json=future).json()["code"] \
        == "accounts_bank_request_stale"

    assert bank.api.post(f"{URL}/challenges", json=body).status_code == 200
    replayed = bank.api.post(f"{URL}/challenges", json=body)
    assert replayed.status_code == 409
    assert replayed.json()["code"] == "accounts_bank_request_replayed"


def test_a_suspended_client_is_refused(container: Container, bank: Bank,
                                       taro: CardHolder) -> None:
    card = bank.card(taro)
    container.bank_clients.suspend(bank.client.client_id, actor="test")
    refused = bank.api.post(f"{URL}/accounts", json=bank.body(
        "bank-account-register", bank.account(None, card)))
    assert refused.status_code == 403
    assert refused.json()["code"] == "accounts_bank_client_suspended"
    assert container.accounts.registration(taro.resident.id) is None
    assert container.bank_clients.encryption_key("8001") is None


def test_a_nonce_is_accepted_once_among_parallel_requests(
        container: Container, bank: Bank) -> None:
    """Eight threads present one signed request at once: the database's primary key lets
    exactly one through (SQLite, and PostgreSQL under bin/with-postgres)."""
    clients: BankClientsImpl = container.bank_clients
    body = bank.body("bank-card-challenge")
    fields = {k: v for k, v in body.items() if k != "signature"}
    fields["requested_at"] = dt.datetime.fromisoformat(fields["requested_at"])
    signature = base64.b64decode(body["signature"])
    start = threading.Barrier(8)
    outcomes: list[object] = []
    lock = threading.Lock()

    def attempt() -> None:
        start.wait()
        try:
            result: object = clients.authenticate(bank.client.client_id,
                                                  "bank-card-challenge", fields, signature)
        except DomainError as exc:
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    accepted = [o for o in outcomes if isinstance(o, BankClient)]
    assert len(outcomes) == 8 and len(accepted) == 1, outcomes
    assert all(isinstance(o, BankRequestReplayed) for o in outcomes if o not in accepted)
    with container.databases.unit_of_work("accounts") as session:
        assert session.scalar(select(func.count()).select_from(m.RequestNonce)) == 1


def test_clients_belong_to_a_bank_that_exists_and_hold_valid_keys(
        container: Container) -> None:
    clients: BankClientsImpl = container.bank_clients
    signing = Ed25519PrivateKey.generate().public_key().public_bytes(*RAW)
    encryption = X25519PrivateKey.generate().public_key().public_bytes(*RAW)
    for code in ("9999", "8002", "80", ""):  # 8002 merged away in 2020
        with pytest.raises(InvalidBankClient) as refused:
            clients.register(code, "x", signing, encryption, actor="test")
        assert refused.value.field == "bank_code"
    with pytest.raises(InvalidBankClient):
        clients.register("8001", "x", signing[:31], encryption, actor="test")
    assert clients.encryption_key("8001") is None
    first, _ = clients.register("8001", "本店", signing, encryption, actor="test")
    keys: BankKeys = clients  # the interface 預貯金口座付番 seals to
    assert keys.encryption_key("8001") == encryption
    newer = X25519PrivateKey.generate().public_key().public_bytes(*RAW)
    clients.register("8001", "アプリ", signing, newer, actor="test")
    assert keys.encryption_key("8001") == newer  # the newest active client's
    assert keys.encryption_key("8002") is None
    assert first.client_id in {c.client_id for c in clients.clients("8001")}


def test_cli_keygen_register_list_and_suspend(settings: Settings, container: Container,
                                              tmp_path: Path) -> None:
    env = cli_env(settings)
    made = runner.invoke(cli_app, ["accounts", "bank-client", "keygen", "--out-dir",
                                   str(tmp_path / "keys")], env=env)
    assert made.exit_code == 0, made.output
    assert (tmp_path / "keys" / "signing.key").stat().st_mode & 0o077 == 0
    registered = runner.invoke(cli_app, [
        "accounts", "bank-client", "register", "--bank-code", "8001", "--name", "本店窓口",
        "--signing-public-key", str(tmp_path / "keys" / "signing.pub"),
        "--encryption-public-key", str(tmp_path / "keys" / "encryption.pub")], env=env)
    assert registered.exit_code == 0, registered.output
    out = json.loads(registered.stdout)
    assert out["secret"] and out["status"] == "active"
    token, client = container.bank_clients.login(out["client_id"], out["secret"])
    assert token and client.bank_code == "8001"
    listed = runner.invoke(cli_app, ["accounts", "bank-client", "list"], env=env)
    assert listed.exit_code == 0 and out["secret"] not in listed.stdout
    assert [c["client_id"] for c in json.loads(listed.stdout)] == [out["client_id"]]
    wrong = runner.invoke(cli_app, [
        "accounts", "bank-client", "register", "--bank-code", "8001", "--name", "x",
        "--signing-public-key", str(tmp_path / "keys" / "encryption.pub"),
        "--encryption-public-key", str(tmp_path / "keys" / "encryption.pub")], env=env)
    assert wrong.exit_code == 2
    suspended = runner.invoke(cli_app, ["accounts", "bank-client", "suspend",
                                        out["client_id"]], env=env)
    assert suspended.exit_code == 0 and json.loads(suspended.stdout)["status"] == "suspended"
    activated = runner.invoke(cli_app, ["accounts", "bank-client", "activate",
                                        out["client_id"]], env=env)
    assert activated.exit_code == 0 and json.loads(activated.stdout)["status"] == "active"
    production = runner.invoke(cli_app, ["accounts", "bank-client", "keygen", "--out-dir",
                                         str(tmp_path / "prod")],
                               env={**env, "MYNUMBER_MODE": "production"})
    assert production.exit_code == 2 and not (tmp_path / "prod").exists()

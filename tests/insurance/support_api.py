"""What the API and CLI tests of オンライン資格確認 share: the app of the ``container`` fixture,
residents with real cards (registry, card, JPKI), 住基ネット's copy fed by the registry's real
events, insurers registered on their network agencies, terminals with their own Ed25519 keys
(a sandbox certificate, as ``mynumber insurance terminal keygen`` makes), and requests signed
exactly as the module docstrings of ``web/insurance_api.py`` say.

Everything runs through the container's own services (``container.insurance``,
``container.eligibility``): what the app serves is what is tested.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.chip import VirtualCard
from mynumber.card.interfaces import CardRecord, IdentityCheck, IssuedPins
from mynumber.cli.insurance import sandbox_terminal_certificate
from mynumber.insurance.interfaces import (
    ClinicalRecord,
    ConsentItem,
    InsuredKind,
    InsurerKind,
    NewInsuredPerson,
    PersonItems,
    Qualification,
    Terminal,
)
from mynumber.juki.events import subscriber as juki_subscriber
from mynumber.kernel.events import Dispatcher
from mynumber.network.interfaces import signed_request_bytes
from mynumber.registry.interfaces import ResidentRecord
from tests.conftest import new_resident

PINS = IssuedPins("ABC123", "1234", "5678", "2468")
AUTH_PIN = PINS.user_auth_pin
KYOKAI = "01130012"  # 協会けんぽ 東京支部 (01 + 13 + 001 + 2)
KYOKAI_AGENCY = "kyokai_kenpo"
SOCIETY = "06130017"  # a 健康保険組合 (06 + 13 + 001 + 7), synthetic
SOCIETY_AGENCY = "kenpo-hitachi"
CLINIC = ("1312345678", "新宿テストクリニック")
OTHER_CLINIC = ("1398765432", "渋谷テスト病院")
CARD_PHOTO = b"\xff\xd8\xff\xe0 card photo of the holder" + b"\x00" * 32
TERMINAL = "/api/v1/insurance/terminal"
INSURERS = "/api/v1/insurance/insurers"
ME = "/api/v1/portal/me/insurance"
STAFF = "insurer:test"

_births = itertools.count(1)
_numbers = itertools.count(1)


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as client:
        yield client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The RFC 9457 problem of ``response``, checked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


# --- residents, cards, 住基ネット -----------------------------------------------------------------


@dataclass
class Holder:
    resident: ResidentRecord
    record: CardRecord
    chip: VirtualCard

    @property
    def certificate(self) -> str:
        return self.chip.certificate("auth").decode()

    @property
    def serial(self) -> int:
        assert self.record.auth_serial is not None
        return self.record.auth_serial

    def sign(self, challenge: bytes, pin: str = AUTH_PIN) -> bytes:
        return self.chip.sign("auth", pin, challenge)


def feed(container: Container) -> int:
    """Deliver the registry's events to 住基ネット's copy (the insurers search it)."""
    return Dispatcher(container.registry.outbox,
                      [juki_subscriber(container.juki, container.registry)],
                      owner="insurance-api-tests").drain()


def resident(container: Container, clerk: StaffPrincipal, **overrides: object
             ) -> ResidentRecord:
    born = overrides.pop("birth_date", None) or (
        dt.date(1960, 1, 1) + dt.timedelta(days=next(_births)))
    assert isinstance(born, dt.date)
    record = container.registry.register_birth(
        clerk, new_resident(birth_date=born, **overrides), born)
    feed(container)
    return record


def holder(container: Container, clerk: StaffPrincipal, **overrides: object) -> Holder:
    """A 新宿区 resident with an issued card; 住基ネット's copy holds them."""
    person = resident(container, clerk, **overrides)
    number = container.registry.reveal_number(clerk, person.id, "test")
    application = container.card.apply(clerk, person.id)
    record, chip = container.card.issue(
        clerk, application.application_id,
        IdentityCheck(number, "notification_letter", ("drivers_license",)), PINS)
    return Holder(person, record, chip)


# --- insurers ----------------------------------------------------------------------------------


def register_insurers(container: Container) -> None:
    container.insurance.register_insurer(KYOKAI, "全国健康保険協会 東京支部", InsurerKind.KYOKAI,
                                         KYOKAI_AGENCY, STAFF)
    container.insurance.register_insurer(SOCIETY, "日立健康保険組合", InsurerKind.SOCIETY,
                                         SOCIETY_AGENCY, STAFF)
    for agency in (KYOKAI_AGENCY, SOCIETY_AGENCY):
        container.agencies.ensure_registered(agency)  # its public key in the directory


def items_of(record: ResidentRecord, **overrides: str) -> PersonItems:
    values = {"name": record.name, "name_kana": record.name_kana,
              "birth_date": record.birth_date.isoformat(), "sex": record.sex.value,
              "address": record.address}
    values.update(overrides)
    return PersonItems(**values)


def new_person(items: PersonItems, *, acquired_on: dt.date = dt.date(2020, 4, 1),
               branch: str = "00") -> NewInsuredPerson:
    return NewInsuredPerson(symbol="1234", number=f"{next(_numbers):06d}", branch=branch,
                            insured_kind=InsuredKind.INSURED, acquired_on=acquired_on,
                            copay_percent=30, items=items)


def linked(container: Container, person: ResidentRecord, insurer: str = KYOKAI,
           **kwargs: Any) -> Qualification:
    """A record of ``person`` at ``insurer``, linked by the four-item search."""
    enrolled = container.insurance.enrol(insurer, new_person(items_of(person), **kwargs), STAFF)
    result = container.insurance.link_by_search(insurer, enrolled.id, STAFF)
    assert result.state.value == "linked", result
    return container.insurance.find(insurer, enrolled.symbol, enrolled.number, enrolled.branch)


def insurer_request(container: Container, kind: str, path: dict[str, object], *,
                    agency: str = KYOKAI_AGENCY, key: Ed25519PrivateKey | None = None,
                    at: dt.datetime | None = None, **fields: Any) -> dict[str, Any]:
    """An insurer's request as its system builds it: the body's fields and the path's
    parameters, signed with its agency's key."""
    signing = key or container.agencies.keyring.keys(agency).signing
    moment = at or dt.datetime.now(dt.UTC)
    body: dict[str, Any] = {"agency_id": agency, "requested_at": moment.isoformat(),
                            "nonce": secrets.token_urlsafe(16), **fields}
    body["signature"] = b64(signing.sign(signed_request_bytes(
        kind, {**body, "requested_at": moment, **path})))
    return body


# --- terminals ---------------------------------------------------------------------------------


@dataclass
class Reception:
    """A registered terminal and its key."""

    terminal: Terminal
    key: Ed25519PrivateKey

    @property
    def id(self) -> str:
        return self.terminal.id

    def body(self, kind: str, *, path: dict[str, str] | None = None,
             at: dt.datetime | None = None, nonce: str | None = None,
             key: Ed25519PrivateKey | None = None, **fields: Any) -> dict[str, Any]:
        """A signed request body: the fields as sent, ``terminal_id``, ``nonce``,
        ``requested_at``, and the path's parameters signed with them."""
        moment = at or dt.datetime.now(dt.UTC)
        body: dict[str, Any] = {"terminal_id": self.id, "requested_at": moment.isoformat(),
                                "nonce": nonce or secrets.token_urlsafe(16), **fields}
        signed = {**body, "requested_at": moment, **(path or {})}
        body["signature"] = b64((key or self.key).sign(signed_request_bytes(kind, signed)))
        return body


def reception(container: Container, clinic: tuple[str, str] = CLINIC) -> Reception:
    key = Ed25519PrivateKey.generate()
    pem = sandbox_terminal_certificate(key, clinic[0], clinic[1])
    return Reception(container.eligibility.register_terminal(clinic[0], clinic[1], pem,
                                                             "operator:test"), key)


def card_check(api: TestClient, desk: Reception, card: Holder, *, method: str = "card_pin",
               headers: dict[str, str] | None = None, **extra: Any) -> Any:
    """A challenge, the card's answer, the eligibility check: the response."""
    challenge = api.post(f"{TERMINAL}/challenges",
                         json=desk.body("insurance-terminal-challenge"))
    assert challenge.status_code == 200, challenge.text
    issued = challenge.json()
    fields: dict[str, Any] = {"challenge_id": issued["challenge_id"],
                              "certificate": card.certificate, "method": method}
    if method == "card_pin":
        fields["card_signature"] = b64(card.sign(base64.b64decode(issued["challenge"])))
    fields.update(extra)
    return api.post(f"{TERMINAL}/eligibility/card", headers=headers or {},
                    json=desk.body("insurance-eligibility-card", **fields))


def clinical_lines(container: Container, person: ResidentRecord) -> None:
    container.eligibility.record_clinical(person.id, [
        ClinicalRecord(ConsentItem.DRUGS, dt.date(2025, 5, 1), "アムロジピン錠5mg",
                       "1日1回 28日分", "新宿薬局"),
        ClinicalRecord(ConsentItem.CHECKUPS, dt.date(2024, 10, 1), "HbA1c", "5.6%",
                       "全国健康保険協会 東京支部"),
    ])

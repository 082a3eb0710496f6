"""The agency routes' API (/api/v1/accounts/agencies): 国税庁 registers or changes an account
from the 確定申告, 日本年金機構 proposes a pension account and reports a bounced first transfer.
Each request is signed with the agency's own key and checked against the PUBLIC key the network
directory has for the agency (never a private key held by the core), fresh (any other
``requested_at``, year 1 or 9999 included, is ``stale_request``, never a 500), its nonce spent
once in the accounts database; only the named agency may use each route; the person is named by
the 個人番号, which is never answered or stored. A pension proposal's date cannot shorten the
recipient's 45 days for a 不同意."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mynumber.accounts import models as m
from mynumber.accounts.interfaces import ProposalState, Route
from mynumber.app import Container, build_container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.network.interfaces import AgencyStatus, signed_request_bytes
from mynumber.web.accounts_agency_api import (
    PENSION_BOUNCED_KIND,
    PENSION_PROPOSAL_KIND,
    PROPOSAL_LEAD_DAYS,
    TAX_RETURN_KIND,
)
from tests.accounts.conftest import Person

BASE = "/api/v1/accounts/agencies"
TAX = "national_tax_agency"
PENSION = "japan_pension_service"
CITY = "municipality-131041"
KINDS = {"/tax-return": TAX_RETURN_KIND, "/pension-proposals": PENSION_PROPOSAL_KIND,
         "/pension-proposals/bounced": PENSION_BOUNCED_KIND}


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    for agency in (TAX, PENSION, CITY):
        container.agencies.ensure_registered(agency)
    with TestClient(create_app(container=container)) as client:
        yield client


def signed(container: Container, path: str, agency: str, *,
           key: ed25519.Ed25519PrivateKey | None = None, at: dt.datetime | None = None,
           **fields: Any) -> dict[str, Any]:
    """A request as the agency's system builds it: signed with its own Ed25519 key."""
    signing = key or container.agencies.keyring.keys(agency).signing
    moment = at or dt.datetime.now(dt.UTC)
    body: dict[str, Any] = {"agency_id": agency, "requested_at": moment.isoformat(),
                            "nonce": secrets.token_urlsafe(16), **fields}
    body["signature"] = base64.b64encode(signing.sign(signed_request_bytes(
        KINDS[path], {**body, "requested_at": moment}))).decode()
    return body


def account(holder: str = "ヤマダ タロウ", number: str = "1234567") -> dict[str, str]:
    return {"bank_code": "8001", "branch_code": "101", "deposit_type": "ordinary",
            "account_number": number, "holder_name": holder}


def number_of(container: Container, clerk: StaffPrincipal, resident_id: int) -> str:
    return container.registry.reveal_number(clerk, resident_id, "test: the agency holds it")


def post(api: TestClient, container: Container, path: str, agency: str,
         **fields: Any) -> Any:
    return api.post(BASE + path, json=signed(container, path, agency, **fields))


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def test_the_tax_agency_registers_then_changes_an_account(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
) -> None:
    taro = person()
    number = number_of(container, clerk, taro.id)

    first = post(api, container, "/tax-return", TAX, individual_number=number, **account())
    assert first.status_code == 200, first.text
    assert first.json()["action"] == "registered" and first.json()["route"] == "tax_return"
    assert first.json()["account_number_masked"] == "***4567"
    assert number not in first.text and "1234567" not in first.text
    registration = container.accounts.registration(taro.id)
    assert registration is not None and registration.route is Route.TAX_RETURN
    assert registration.actor == f"agency:{TAX}" and registration.authentication_id is None

    second = post(api, container, "/tax-return", TAX, individual_number=number,
                  **account(number="7654321"))
    assert second.status_code == 200 and second.json()["action"] == "changed"
    changed = container.accounts.registration(taro.id)
    assert changed is not None and changed.account_number == "7654321"


def test_the_pension_service_proposes_and_reports_a_bounced_transfer(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
) -> None:
    container.accounts.clock = lambda: dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC)
    taro = person()
    number = number_of(container, clerk, taro.id)
    proposed = post(api, container, "/pension-proposals", PENSION, individual_number=number,
                    proposed_on="2026-11-02", **account())
    assert proposed.status_code == 201, proposed.text
    out = proposed.json()
    assert out["state"] == "pending" and out["deadline"] == "2026-12-17"
    assert number not in proposed.text and out["account_number_masked"] == "***4567"
    (pending,) = container.accounts.proposals(taro.id)
    assert pending.state is ProposalState.PENDING and pending.deadline == dt.date(2026, 12, 17)

    bounced = post(api, container, "/pension-proposals/bounced", PENSION,
                   individual_number=number)
    assert bounced.status_code == 200 and bounced.json()["first_transfer_bounced"] is True
    result = container.accounts.finalize_pensions(dt.date(2026, 12, 18))
    assert result.skipped == [(taro.id, "first_transfer_bounced")]
    assert container.accounts.registration(taro.id) is None
    # Nothing pending any more: a second report is a problem, not a silent success.
    problem(post(api, container, "/pension-proposals/bounced", PENSION,
                 individual_number=number), 404, "accounts_pension_proposal_not_found")


def test_only_the_named_agency_may_use_each_route(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
) -> None:
    taro = person()
    number = number_of(container, clerk, taro.id)
    for path, agency in (("/tax-return", PENSION), ("/tax-return", CITY),
                         ("/pension-proposals", TAX), ("/pension-proposals", CITY),
                         ("/pension-proposals/bounced", TAX)):
        fields: dict[str, Any] = {"individual_number": number}
        if path != "/pension-proposals/bounced":
            fields.update(account())
        body = problem(post(api, container, path, agency, **fields), 403,
                       "accounts_agency_route_not_permitted")
        assert body["field"] == "agency_id" and number not in str(body)
    assert container.accounts.registration(taro.id) is None
    assert container.accounts.proposals(taro.id) == []


def test_an_unsigned_a_foreign_or_a_stale_request_is_refused(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
) -> None:
    taro = person()
    number = number_of(container, clerk, taro.id)
    # Signed with 日本年金機構's key but naming 国税庁.
    foreign = signed(container, "/tax-return", TAX, individual_number=number,
                     key=container.agencies.keyring.keys(PENSION).signing, **account())
    problem(api.post(BASE + "/tax-return", json=foreign), 403, "bad_signature")
    # A field changed after signing.
    tampered = signed(container, "/tax-return", TAX, individual_number=number, **account())
    tampered["account_number"] = "7777777"
    problem(api.post(BASE + "/tax-return", json=tampered), 403, "bad_signature")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    problem(api.post(BASE + "/tax-return", json=signed(
        container, "/tax-return", TAX, at=old, individual_number=number, **account())),
        403, "stale_request")
    assert container.accounts.registration(taro.id) is None


def test_the_number_is_never_echoed(api: TestClient, container: Container,
                                    clerk: StaffPrincipal, person: Person) -> None:
    taro = person()
    number = number_of(container, clerk, taro.id)
    wrong_digit = number[:-1] + str((int(number[-1]) + 1) % 10)
    invalid = post(api, container, "/tax-return", TAX, individual_number=wrong_digit,
                   **account())
    assert invalid.status_code == 422 and invalid.json()["field"] == "individual_number"
    assert wrong_digit not in invalid.text
    short = post(api, container, "/tax-return", TAX, individual_number=number[:11],
                 **account())
    assert short.status_code == 422 and number[:11] not in short.text
    # A valid number nobody holds.
    from mynumber.codes import individual_number

    body = "12345678901"
    unknown = body + str(individual_number.calc_check_digit(body))
    missing = post(api, container, "/tax-return", TAX, individual_number=unknown,
                   **account())
    assert missing.status_code == 404 and unknown not in missing.text
    assert missing.json()["code"] == "resident_not_found"


def test_a_relatives_account_is_refused_through_the_tax_return_api(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
) -> None:
    taro = person()
    number = number_of(container, clerk, taro.id)
    refused = post(api, container, "/tax-return", TAX, individual_number=number,
                   **account(holder="ヤマダ ハナコ"))
    body = problem(refused, 422, "accounts_holder_name_mismatch")
    assert body["reason"] == "given_name_differs" and number not in refused.text
    assert container.accounts.registration(taro.id) is None
    assert container.accounts.history(taro.id) == []


def _nonces(container: Container) -> int:
    with container.databases.unit_of_work(m.CONTEXT) as session:
        return int(session.scalar(select(func.count()).select_from(m.RequestNonce)) or 0)


def test_a_replay_is_accepted_once_across_threads(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
) -> None:
    taro = person()
    number = number_of(container, clerk, taro.id)
    body = signed(container, "/tax-return", TAX, individual_number=number, **account())
    barrier = threading.Barrier(6)
    codes: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send() -> None:
        client = TestClient(api.app)
        barrier.wait()
        response = client.post(BASE + "/tax-return", json=body)
        with lock:
            codes.append((response.status_code, response.json().get("code", "")))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The nonce decides, not the one-per-person rule: every loser is a replay.
    assert Counter(codes) == Counter({(200, ""): 1, (409, "replayed_request"): 5}), codes
    assert [h.action for h in container.accounts.history(taro.id)] == ["registered"]
    assert _nonces(container) == 1


def test_a_replay_to_another_process_is_refused(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
) -> None:
    """The nonce is the database's, not one process's memory: a second container (another
    server process on the same database) refuses the request the first accepted."""
    taro = person()
    number = number_of(container, clerk, taro.id)
    body = signed(container, "/pension-proposals", PENSION, individual_number=number,
                  **account())
    assert api.post(BASE + "/pension-proposals", json=body).status_code == 201
    other = build_container(container.settings)
    try:
        with TestClient(create_app(container=other)) as second:
            problem(second.post(BASE + "/pension-proposals", json=body), 409,
                    "replayed_request")
    finally:
        other.close()
    assert len(container.accounts.proposals(taro.id)) == 1


# --- requested_at at the datetime edge (H2) ---------------------------------------------------


@pytest.mark.parametrize("requested_at", [
    "0001-01-01T00:00:00+09:00",  # before datetime.min once in UTC
    "9999-12-31T23:59:59-09:00",  # after datetime.max once in UTC
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59+09:00",
])
@pytest.mark.parametrize("path", sorted(KINDS))
def test_a_requested_at_at_the_datetime_edge_is_stale_never_a_500(
    container: Container, path: str, requested_at: str,
) -> None:
    """Unauthenticated and unsigned (no signature can be computed over such a date): refused
    as stale before the signature is checked, a problem, never an internal error."""
    for agency in (TAX, PENSION):
        container.agencies.ensure_registered(agency)
    agency = TAX if path == "/tax-return" else PENSION
    body: dict[str, Any] = {"agency_id": agency, "requested_at": requested_at,
                            "nonce": secrets.token_urlsafe(16),
                            "signature": base64.b64encode(b"x" * 64).decode(),
                            "individual_number": "123456789012"}
    if path != "/pension-proposals/bounced":
        body.update(account())
    with TestClient(create_app(container=container), raise_server_exceptions=False) as api:
        refused = problem(api.post(BASE + path, json=body), 403, "stale_request")
    assert refused["field"] == "requested_at"
    assert _nonces(container) == 0


# --- the pension proposal's date (M1) --------------------------------------------------------


def _on(container: Container, day: dt.date) -> None:
    """The accounts context's clock at noon, Japan time, on ``day``."""
    container.accounts.clock = lambda: dt.datetime(day.year, day.month, day.day, 3, 0,
                                                   tzinfo=dt.UTC)


def test_a_proposal_date_before_the_day_received_or_too_far_ahead_is_refused(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
) -> None:
    """A backdated letter would shorten (or, 45 days back, skip) the recipient's window for a
    不同意: refused, as is a date past the lead time or at the end of the calendar; nothing is
    stored and the registry is not asked about the person."""
    today = dt.date(2026, 11, 2)
    _on(container, today)
    taro = person()
    number = number_of(container, clerk, taro.id)
    for day in (today - dt.timedelta(days=1), today - dt.timedelta(days=60),
                today + dt.timedelta(days=PROPOSAL_LEAD_DAYS + 1), dt.date(9999, 12, 31),
                dt.date(1, 1, 1), dt.date(1900, 1, 1)):
        refused = post(api, container, "/pension-proposals", PENSION, individual_number=number,
                       proposed_on=day.isoformat(), **account())
        body = problem(refused, 422, "accounts_invalid_proposal_date")
        assert body["field"] == "proposed_on" and number not in refused.text
    assert container.accounts.proposals(taro.id) == []
    # Eight days later, the 60-day-old letter would already be past its deadline.
    assert container.accounts.finalize_pensions(today + dt.timedelta(days=8)).registered == []
    assert container.accounts.registration(taro.id) is None


@pytest.mark.parametrize("offset", [None, 0, PROPOSAL_LEAD_DAYS])
def test_a_proposal_date_from_the_day_received_to_the_lead_time_is_accepted(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
    offset: int | None,
) -> None:
    today = dt.date(2026, 11, 2)
    _on(container, today)
    taro = person()
    number = number_of(container, clerk, taro.id)
    fields: dict[str, Any] = {} if offset is None else {
        "proposed_on": (today + dt.timedelta(days=offset)).isoformat()}
    proposed = post(api, container, "/pension-proposals", PENSION, individual_number=number,
                    **fields, **account())
    assert proposed.status_code == 201, proposed.text
    letter = today + dt.timedelta(days=offset or 0)
    assert proposed.json()["proposed_on"] == letter.isoformat()
    assert proposed.json()["deadline"] == (letter + dt.timedelta(days=45)).isoformat()
    (pending,) = container.accounts.proposals(taro.id)
    assert pending.deadline - today >= dt.timedelta(days=45)


def test_the_day_received_is_the_japanese_day(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
) -> None:
    """At 23:30 UTC on 1 November it is already 2 November in Japan: 1 November is the day
    before the day received."""
    container.accounts.clock = lambda: dt.datetime(2026, 11, 1, 23, 30, tzinfo=dt.UTC)
    taro = person()
    number = number_of(container, clerk, taro.id)
    problem(post(api, container, "/pension-proposals", PENSION, individual_number=number,
                 proposed_on="2026-11-01", **account()), 422, "accounts_invalid_proposal_date")
    accepted = post(api, container, "/pension-proposals", PENSION, individual_number=number,
                    proposed_on="2026-11-02", **account())
    assert accepted.status_code == 201, accepted.text


# --- the agency's key is the network directory's public key (M6) -----------------------------


def test_the_signature_is_checked_with_the_key_registered_in_the_network_directory(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """国税庁 registers a new public key with the core (``mynumber network register-keys``);
    it holds the private key, the core does not. Requests signed with it are accepted, and
    the core never reads an agency's private key for these routes: the agencies' keyring here
    still holds the OLD key, whose signatures are now refused."""
    taro = person()
    number = number_of(container, clerk, taro.id)
    old = container.agencies.keyring.keys(TAX).signing
    new = ed25519.Ed25519PrivateKey.generate()
    record = container.network.agency(TAX)
    assert record.encryption_key is not None
    container.network.register_agency_keys(TAX, new.public_key().public_bytes_raw(),
                                           record.encryption_key)

    def no_private_keys(agency_id: str) -> Any:
        raise AssertionError(f"the core read {agency_id}'s private keys")

    monkeypatch.setattr(container.agencies.keyring, "keys", no_private_keys)
    accepted = post(api, container, "/tax-return", TAX, key=new, individual_number=number,
                    **account())
    assert accepted.status_code == 200, accepted.text
    problem(post(api, container, "/tax-return", TAX, key=old, individual_number=number,
                 **account(number="7654321")), 403, "bad_signature")
    registration = container.accounts.registration(taro.id)
    assert registration is not None and registration.account_number == "1234567"


def test_an_agency_suspended_unknown_or_without_a_key_in_the_directory_is_refused(
    api: TestClient, container: Container, clerk: StaffPrincipal, person: Person,
) -> None:
    taro = person()
    number = number_of(container, clerk, taro.id)
    container.network.set_agency_status("test", TAX, AgencyStatus.SUSPENDED, "key compromised")
    problem(post(api, container, "/tax-return", TAX, individual_number=number, **account()),
            403, "agency_suspended")
    # Not in the directory at all (the signature is made with a key of the agencies' keyring).
    stranger = ed25519.Ed25519PrivateKey.generate()
    problem(post(api, container, "/tax-return", "no-such-agency", key=stranger,
                 individual_number=number, **account()), 404, "unknown_agency")
    # In the directory, but no signing key was ever registered for it.
    keyless = next(a.agency_id for a in container.network.agencies()
                   if a.signing_key is None and a.agency_id not in (TAX, PENSION, CITY))
    problem(post(api, container, "/tax-return", keyless, key=stranger,
                 individual_number=number, **account()),
            403, "accounts_agency_key_not_registered")
    assert container.accounts.registration(taro.id) is None
    assert _nonces(container) == 0

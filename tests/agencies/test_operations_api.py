"""The agency back office's API on its intermediate server (issue 11): enrol a person and
register a 副本, each request signed with the agency's own key; RFC 9457 problems for every
client error, and never the 個人番号 in an answer."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mynumber.agencies import api as agencies_api
from mynumber.agencies import schemas as s
from mynumber.agencies.interfaces import CopyNotFound, PersonNotEnrolled
from mynumber.app import Container, build_container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.network.interfaces import signed_request_bytes
from mynumber.settings import Settings
from mynumber.web import problems
from tests.conftest import new_resident

CITY = "municipality-131041"
PERSONS = "/agencies/v1/persons"
COPIES = "/agencies/v1/copies"


@pytest.fixture
def app(container: Container) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.state.container = container
    app.include_router(agencies_api.back_office)
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    yield TestClient(app)


@pytest.fixture
def number(container: Container, clerk: StaffPrincipal) -> str:
    resident = container.registry.register_move_in(clerk, new_resident(), dt.date.today())
    return container.registry.numbering.individual_number(resident.resident_code)


def agency_key(container: Container, agency_id: str = CITY) -> ed25519.Ed25519PrivateKey:
    key: ed25519.Ed25519PrivateKey = container.agencies.keyring.keys(agency_id).signing
    return key


def signed(kind: str, key: ed25519.Ed25519PrivateKey, *, at: dt.datetime | None = None,
           **fields: Any) -> dict[str, Any]:
    """A back-office request as the agency's system builds it."""
    body: dict[str, Any] = {**fields, "requested_at": (at or dt.datetime.now(dt.UTC)).isoformat(),
                            "nonce": secrets.token_urlsafe(16)}
    for_signing = {**body, "requested_at": dt.datetime.fromisoformat(body["requested_at"])}
    body["signature"] = base64.b64encode(key.sign(signed_request_bytes(kind, for_signing))
                                         ).decode()
    return body


def enrol_body(container: Container, number: str, address: str = "A0001",
               **kw: Any) -> dict[str, Any]:
    return signed(s.ENROL_KIND, kw.pop("key", None) or agency_key(container), agency_id=CITY,
                  address_number=address, individual_number=number, **kw)


def copy_body(container: Container, payload: dict[str, Any], address: str = "A0001",
              item: str = "local_tax", **kw: Any) -> dict[str, Any]:
    return signed(s.COPY_KIND, kw.pop("key", None) or agency_key(container), agency_id=CITY,
                  address_number=address, item_code=item, payload=payload, **kw)


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    return body


def test_enrol_then_put_copy(client: TestClient, container: Container, number: str) -> None:
    response = client.post(PERSONS, json=enrol_body(container, number))
    assert response.status_code == 200, response.text
    assert response.json() == {"agency_id": CITY, "address_number": "A0001",
                               "already_enrolled": False}
    assert number not in response.text
    assert container.agencies.agency_code(CITY, "A0001")
    again = client.post(PERSONS, json=enrol_body(container, number))
    assert again.status_code == 200 and again.json()["already_enrolled"] is True

    first = client.post(COPIES, json=copy_body(container, {"fiscal_year": 2025,
                                                          "taxable_income": 3_000_000}))
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1 and first.json()["item_code"] == "local_tax"
    second = client.post(COPIES, json=copy_body(container, {"fiscal_year": 2025,
                                                           "taxable_income": 3_100_000}))
    assert second.json()["version"] == 2
    assert container.agencies.copy(CITY, "A0001", "local_tax").payload["taxable_income"] \
        == 3_100_000


def test_a_bad_signature_is_refused_before_anything_is_written(
        client: TestClient, container: Container, number: str) -> None:
    stranger = ed25519.Ed25519PrivateKey.generate()
    body = problem(client.post(PERSONS, json=enrol_body(container, number, key=stranger)),
                   403, "bad_signature")
    assert number not in str(body)
    with pytest.raises(PersonNotEnrolled):
        container.agencies.agency_code(CITY, "A0001")
    # Another agency's key does not do either.
    other = agency_key(container, "mhlw")
    problem(client.post(PERSONS, json=enrol_body(container, number, key=other)),
            403, "bad_signature")


def test_a_tampered_body_is_refused(client: TestClient, container: Container,
                                    number: str) -> None:
    assert client.post(PERSONS, json=enrol_body(container, number)).status_code == 200
    body = copy_body(container, {"taxable_income": 1})
    body["payload"] = {"taxable_income": 999_999_999}
    problem(client.post(COPIES, json=body), 403, "bad_signature")
    with pytest.raises(CopyNotFound):
        container.agencies.copy(CITY, "A0001", "local_tax")


def test_a_copy_carrying_an_individual_number_is_refused(
        client: TestClient, container: Container, number: str) -> None:
    assert client.post(PERSONS, json=enrol_body(container, number)).status_code == 200
    response = client.post(COPIES, json=copy_body(container, {"household": [
        {"name": "山田花子", "memo": number}]}))
    body = problem(response, 422, "individual_number_in_copy")
    assert number not in response.text and body["field"] == "payload"
    with pytest.raises(CopyNotFound):
        container.agencies.copy(CITY, "A0001", "local_tax")


def test_stale_and_replayed_requests_are_refused(client: TestClient, container: Container,
                                                 number: str) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    problem(client.post(PERSONS, json=enrol_body(container, number, at=old)),
            403, "stale_request")
    body = enrol_body(container, number)
    assert client.post(PERSONS, json=body).status_code == 200
    problem(client.post(PERSONS, json=body), 409, "replayed_request")


def test_a_replayed_request_is_accepted_once_across_threads(
        app: FastAPI, container: Container, number: str) -> None:
    assert TestClient(app).post(PERSONS, json=enrol_body(container, number)).status_code == 200
    body = copy_body(container, {"taxable_income": 1})
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def send() -> None:
        client = TestClient(app)
        barrier.wait()
        statuses.append(client.post(COPIES, json=body).status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [409] * 5
    assert container.agencies.copy(CITY, "A0001", "local_tax").version == 1


def test_client_errors_are_problems_without_the_number(client: TestClient,
                                                       container: Container) -> None:
    bad = "12345678901"  # 11 digits
    response = client.post(PERSONS, json=enrol_body(container, bad))
    body = problem(response, 422, "invalid_input")
    assert bad not in response.text and "individual_number" in str(body)
    unknown = "123456789018"  # valid check digit, nobody's
    response = client.post(PERSONS, json=enrol_body(container, unknown))
    problem(response, 404, "resident_not_found")
    assert unknown not in response.text
    problem(client.post(COPIES, json=copy_body(container, {}, address="Z9")), 404,
            "person_not_enrolled")
    problem(client.post(COPIES, json=copy_body(container, {}, item="no_such_item")), 422,
            "invalid_agency_input")
    extra = enrol_body(container, unknown)
    extra["admin"] = True
    problem(client.post(PERSONS, json=extra), 422, "invalid_input")


def test_a_process_without_the_back_office_service_answers_503(
        container: Container, settings: Settings, number: str) -> None:
    """The intermediate role's container has the routed-query server but no agencies service
    (no registry, no network): enrolment is not served there (yet), and says so."""
    intermediate = build_container(settings, role="intermediate")
    try:
        app = FastAPI()
        problems.install(app)
        app.state.container = intermediate
        app.include_router(agencies_api.back_office)
        problem(TestClient(app).post(PERSONS, json=enrol_body(container, number)), 503,
                "back_office_unavailable")
    finally:
        intermediate.close()

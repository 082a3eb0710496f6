"""The registry JSON API: two-factor staff login, sessions, problem documents, jurisdiction."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from mynumber.app import Container, create_app
from mynumber.auth import models as auth_models
from mynumber.auth.interfaces import StaffRole
from mynumber.registry import models as m
from tests.conftest import SHIBUYA, SHINJUKU, STAFF_PASSWORD

API = "/api/v1/registry"
PROBLEM = "application/problem+json"
BIRTH = {
    "family_name": "山田", "given_name": "花子", "family_name_kana": "ヤマダ",
    "given_name_kana": "ハナコ", "birth_date": "2024-05-01", "sex": "female",
    "address": "東京都新宿区西新宿二丁目8番1号", "postal_code": "163-8001",
}


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def staff_account(container: Container, username: str, municipality: str = SHINJUKU,
                  role: StaffRole = StaffRole.CLERK) -> str:
    """Create an account; returns its TOTP secret."""
    secret = pyotp.random_base32()
    container.staff_auth.create_staff(username, username, municipality, role, STAFF_PASSWORD,
                                      totp_secret=secret)
    return secret


def code(secret: str, step: int = 0) -> str:
    """The one-time code ``step`` time steps from now (each code is accepted once)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * step)


def login(client: TestClient, username: str, secret: str, step: int = 0) -> dict[str, str]:
    response = client.post(f"{API}/staff/login", json={
        "username": username, "password": STAFF_PASSWORD, "totp_code": code(secret, step)})
    assert response.status_code == 200, response.text
    client.cookies.clear()  # the tests authenticate with the Bearer token
    return {"Authorization": f"Bearer {response.json()['token']}"}


def assert_problem(response: Any, status: int, code_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    assert body["code"] == code_
    assert body["type"] == f"urn:mynumber:problem:{code_}"
    return body


def register_birth(client: TestClient, headers: dict[str, str], **overrides: Any) -> int:
    response = client.post(f"{API}/births", json={**BIRTH, **overrides}, headers=headers)
    assert response.status_code == 201, response.text
    resident_id: int = response.json()["id"]
    return resident_id


def reveal(client: TestClient, headers: dict[str, str], resident_id: int) -> str:
    response = client.post(f"{API}/residents/{resident_id}/individual-number/reveal",
                           json={"reason": "本人確認"}, headers=headers)
    assert response.status_code == 200, response.text
    number: str = response.json()["individual_number"]
    return number


# --- login ---------------------------------------------------------------------------------


def test_login_needs_password_and_one_time_code(
    client: TestClient, container: Container
) -> None:
    secret = staff_account(container, "clerk")
    valid_now = {code(secret, step) for step in (-1, 0, 1)}  # the accepted clock drift
    wrong_code = next(c for c in ("000000", "000001", "000002", "000003") if c not in valid_now)
    attempts = [
        {"password": STAFF_PASSWORD, "totp_code": wrong_code},
        {"password": "not the password", "totp_code": code(secret)},
        {"password": STAFF_PASSWORD, "totp_code": ""},
    ]
    details = set()
    for attempt in attempts:
        response = client.post(f"{API}/staff/login", json={"username": "clerk", **attempt})
        if response.status_code == 422:  # an empty code is refused by the schema already
            assert_problem(response, 422, "invalid_input")
            continue
        body = assert_problem(response, 401, "login_failed")
        details.add(body["detail"])
        assert "mn_staff" not in response.headers.get("set-cookie", "")
    # One message for every failure: it must not say which factor was wrong.
    assert len(details) == 1
    unknown = client.post(f"{API}/staff/login", json={
        "username": "nobody", "password": STAFF_PASSWORD, "totp_code": code(secret)})
    assert assert_problem(unknown, 401, "login_failed")["detail"] in details

    ok = client.post(f"{API}/staff/login", json={
        "username": "clerk", "password": STAFF_PASSWORD, "totp_code": code(secret)})
    assert ok.status_code == 200
    assert ok.json()["staff"]["municipality_code"] == SHINJUKU
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()


def test_a_used_one_time_code_cannot_be_replayed(
    client: TestClient, container: Container
) -> None:
    secret = staff_account(container, "clerk")
    body = {"username": "clerk", "password": STAFF_PASSWORD, "totp_code": code(secret)}
    assert client.post(f"{API}/staff/login", json=body).status_code == 200
    assert_problem(client.post(f"{API}/staff/login", json=body), 401, "login_failed")
    # The next time step's code works once.
    assert client.post(f"{API}/staff/login", json={**body, "totp_code": code(secret, 1)}
                       ).status_code == 200


def test_login_is_recorded(client: TestClient, container: Container) -> None:
    secret = staff_account(container, "clerk")
    client.post(f"{API}/staff/login", json={
        "username": "clerk", "password": "wrong password!", "totp_code": code(secret)})
    login(client, "clerk", secret)
    # Staff sign-in is its own context (mynumber.auth) with its own audit table.
    with container.databases.unit_of_work("auth") as session:
        tags = session.scalars(select(auth_models.AuditEvent.tag).where(
            auth_models.AuditEvent.tag.like("auth:staff:login%"))
            .order_by(auth_models.AuditEvent.id)).all()
    assert tags == ["auth:staff:login_failed", "auth:staff:login"]


def test_bearer_token_authenticates(client: TestClient, container: Container) -> None:
    secret = staff_account(container, "clerk")
    headers = login(client, "clerk", secret)
    me = client.get(f"{API}/staff/me", headers=headers)
    assert me.status_code == 200
    assert (me.json()["username"], me.json()["role"]) == ("clerk", "clerk")
    assert_problem(client.get(f"{API}/staff/me"), 401, "session_expired")
    assert_problem(client.get(f"{API}/staff/me", headers={"Authorization": "Bearer forged"}),
                   401, "session_expired")


def test_the_session_cookie_also_authenticates(
    client: TestClient, container: Container
) -> None:
    secret = staff_account(container, "clerk")
    client.post(f"{API}/staff/login", json={
        "username": "clerk", "password": STAFF_PASSWORD, "totp_code": code(secret)})
    assert client.get(f"{API}/staff/me").status_code == 200


def test_logout_ends_the_session(client: TestClient, container: Container) -> None:
    secret = staff_account(container, "clerk")
    headers = login(client, "clerk", secret)
    assert client.post(f"{API}/staff/logout", headers=headers).status_code == 204
    assert_problem(client.get(f"{API}/staff/me", headers=headers), 401, "session_expired")


def test_an_idle_session_expires(client: TestClient, container: Container) -> None:
    secret = staff_account(container, "clerk")
    headers = login(client, "clerk", secret)
    assert client.get(f"{API}/staff/me", headers=headers).status_code == 200
    idle = container.settings.session_idle_minutes
    with container.databases.unit_of_work("auth") as session:
        session.execute(update(auth_models.StaffSession).values(
            last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=idle + 1)))
    assert_problem(client.get(f"{API}/staff/me", headers=headers), 401, "session_expired")
    # Once ended, the session stays ended even if used again at once.
    assert_problem(client.get(f"{API}/staff/me", headers=headers), 401, "session_expired")


def test_activity_keeps_a_session_alive(client: TestClient, container: Container) -> None:
    secret = staff_account(container, "clerk")
    headers = login(client, "clerk", secret)
    idle = container.settings.session_idle_minutes
    with container.databases.unit_of_work("auth") as session:
        session.execute(update(auth_models.StaffSession).values(
            last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=idle - 1)))
    assert client.get(f"{API}/staff/me", headers=headers).status_code == 200


# --- problems ------------------------------------------------------------------------------


def test_unknown_routes_are_problem_documents(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/registry/nothing-here"), 404, "not_found")
    assert_problem(client.get("/no/such/page"), 404, "not_found")


def test_a_bad_body_names_the_field_and_does_not_echo_the_value(
    client: TestClient, container: Container
) -> None:
    headers = login(client, "clerk", staff_account(container, "clerk"))
    number = "621498320257"  # a valid-looking 個人番号 in the wrong place
    response = client.post(f"{API}/births", json={**BIRTH, "sex": number}, headers=headers)
    body = assert_problem(response, 422, "invalid_input")
    assert body["field"] == "sex"
    assert number not in response.text

    response = client.post(f"{API}/births", json={**BIRTH, "individual_number": number},
                           headers=headers)
    body = assert_problem(response, 422, "invalid_input")
    assert body["field"] == "individual_number"
    assert number not in response.text


def test_a_domain_error_names_the_field(client: TestClient, container: Container) -> None:
    headers = login(client, "clerk", staff_account(container, "clerk"))
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    response = client.post(f"{API}/births", json={**BIRTH, "birth_date": future},
                           headers=headers)
    body = assert_problem(response, 422, "invalid_resident_data")
    assert body["field"] == "birth_date"


def test_search_refuses_an_individual_number(client: TestClient, container: Container) -> None:
    headers = login(client, "clerk", staff_account(container, "clerk"))
    response = client.get(f"{API}/residents", params={"q": "621498320257"}, headers=headers)
    body = assert_problem(response, 422, "invalid_resident_data")
    assert body["field"] == "q"
    assert "621498320257" not in response.text


# --- residents -----------------------------------------------------------------------------


def test_birth_then_search_read_and_history(client: TestClient, container: Container) -> None:
    headers = login(client, "clerk", staff_account(container, "clerk"))
    resident_id = register_birth(client, headers)

    found = client.get(f"{API}/residents", params={"q": "やまだ"}, headers=headers)
    assert [r["id"] for r in found.json()["items"]] == [resident_id]
    record = client.get(f"{API}/residents/{resident_id}", params={"reason": "証明書交付"},
                        headers=headers)
    assert record.status_code == 200
    assert record.json()["numbered"] is True
    assert "individual_number" not in record.json()
    history = client.get(f"{API}/residents/{resident_id}/history", headers=headers)
    assert [e["kind"] for e in history.json()["items"]] == ["birth"]
    with container.databases.unit_of_work("registry") as session:
        read = session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.tag == "registry:resident:read")).one()
    assert (read.subject, read.reason) == (f"resident:{resident_id}", "証明書交付")
    assert read.actor.startswith("staff:")


def test_a_read_needs_a_reason(client: TestClient, container: Container) -> None:
    headers = login(client, "clerk", staff_account(container, "clerk"))
    resident_id = register_birth(client, headers)
    body = assert_problem(client.get(f"{API}/residents/{resident_id}", headers=headers),
                          422, "invalid_input")
    assert body["field"] == "reason"


def test_a_clerk_cannot_read_another_municipalitys_resident(
    client: TestClient, container: Container
) -> None:
    shinjuku = login(client, "shinjuku", staff_account(container, "shinjuku"))
    shibuya = login(client, "shibuya", staff_account(container, "shibuya", SHIBUYA))
    resident_id = register_birth(client, shinjuku)

    for response in (
        client.get(f"{API}/residents/{resident_id}", params={"reason": "確認"}, headers=shibuya),
        client.get(f"{API}/residents/{resident_id}/history", headers=shibuya),
        client.post(f"{API}/residents/{resident_id}/individual-number/reveal",
                    json={"reason": "確認"}, headers=shibuya),
        client.post(f"{API}/residents/{resident_id}/death", json={"occurred_on": "2025-01-01"},
                    headers=shibuya),
    ):
        assert_problem(response, 403, "outside_jurisdiction")
        assert "山田" not in response.text
    found = client.get(f"{API}/residents", params={"q": "ヤマダ"}, headers=shibuya)
    assert found.json()["items"] == []


def test_lookup_by_number_takes_the_number_in_the_body(
    client: TestClient, container: Container
) -> None:
    headers = login(client, "clerk", staff_account(container, "clerk"))
    resident_id = register_birth(client, headers)
    number = reveal(client, headers, resident_id)

    response = client.post(f"{API}/residents/lookup-by-number",
                           json={"individual_number": number, "reason": "番号照会"},
                           headers=headers)
    assert response.status_code == 200
    assert response.json()["id"] == resident_id
    assert number not in response.text
    missing = client.post(f"{API}/residents/lookup-by-number",
                          json={"individual_number": "123456789018", "reason": "番号照会"},
                          headers=headers)
    assert_problem(missing, 404, "resident_not_found")
    assert "123456789018" not in missing.text


def test_reissue_is_for_supervisors(client: TestClient, container: Container) -> None:
    clerk = login(client, "clerk", staff_account(container, "clerk"))
    boss = login(client, "boss", staff_account(container, "boss", role=StaffRole.SUPERVISOR))
    resident_id = register_birth(client, clerk)
    old = reveal(client, clerk, resident_id)
    url = f"{API}/residents/{resident_id}/individual-number/reissue"
    assert_problem(client.post(url, json={"reason": "漏えい"}, headers=clerk), 403,
                   "role_required")
    assert client.post(url, json={"reason": "漏えい"}, headers=boss).status_code == 200
    assert reveal(client, clerk, resident_id) != old
    replaced = client.post(f"{API}/residents/lookup-by-number",
                           json={"individual_number": old, "reason": "旧番号"}, headers=clerk)
    assert_problem(replaced, 409, "invalid_transition")
    assert old not in replaced.text


def test_letter_and_identity_verification(client: TestClient, container: Container) -> None:
    headers = login(client, "clerk", staff_account(container, "clerk"))
    resident_id = register_birth(client, headers)
    number = reveal(client, headers, resident_id)
    (letter,) = client.get(f"{API}/residents/{resident_id}/letters",
                           headers=headers).json()["items"]
    for status in ("sent", "returned", "held"):
        response = client.post(f"{API}/letters/{letter['id']}", json={"status": status},
                               headers=headers)
        assert response.json()["status"] == status
    assert_problem(client.post(f"{API}/letters/{letter['id']}", json={"status": "handed_over"},
                               headers=headers), 409, "invalid_transition")
    check = client.post(f"{API}/residents/{resident_id}/identity-verifications", json={
        "purpose": "通知書交付", "individual_number": number,
        "number_confirmation": "notification_letter",
        "identity_documents": ["drivers_license"]}, headers=headers)
    assert check.status_code == 201
    assert (check.json()["assurance_level"], check.json()["number_matched"]) == (
        "substantial", True)
    assert number not in check.text
    handed = client.post(f"{API}/letters/{letter['id']}", headers=headers, json={
        "status": "handed_over", "verification_id": check.json()["id"]})
    assert handed.json()["status"] == "handed_over"


# --- OpenAPI -------------------------------------------------------------------------------


def test_every_operation_has_a_unique_operation_id(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    ids = [
        operation.get("operationId")
        for path in schema["paths"].values()
        for method, operation in path.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert ids and all(ids)
    assert len(ids) == len(set(ids))
    assert not any(p.startswith("/counter") for p in schema["paths"])  # HTML stays out


def test_no_individual_number_in_any_path_or_query(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path, item in schema["paths"].items():
        assert "number}" not in path
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                assert "individual_number" not in parameter["name"]

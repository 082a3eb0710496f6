"""The portal's JSON API: card login over HTTP, the resident's endpoints with a bearer session,
agencies' signed お知らせ, staff proxy registration, and problem documents for bad input."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import secrets

import pyotp
import pytest
from fastapi.testclient import TestClient

from mynumber.agencies.interfaces import QueryResult
from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.network.interfaces import signed_request_bytes
from tests.conftest import SHIBUYA, SHINJUKU, new_resident
from tests.portal.conftest import AUTH_PIN, CITY, CardHolder, hold, resident_record

API = "/api/v1/portal"


@pytest.fixture
def client(container: Container) -> TestClient:
    return TestClient(create_app(container=container))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(  # type: ignore[attr-defined]
        "application/problem+json")
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status and body["code"]
    return body


def http_login(client: TestClient, holder: CardHolder,
               previous: str | None = None) -> dict[str, object]:
    challenge = client.post(f"{API}/login/challenge").json()
    raw = base64.b64decode(challenge["challenge"])
    assert len(raw) == 32
    signature = holder.chip.sign("auth", AUTH_PIN, raw)
    body: dict[str, object] = {"challenge_id": challenge["challenge_id"],
                               "signature": b64(signature),
                               "certificate": holder.chip.certificate("auth").decode()}
    if previous:
        body["previous_token"] = previous
    response = client.post(f"{API}/login", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def auth(token: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def staff_token(container: Container, username: str, municipality: str) -> str:
    secret = pyotp.random_base32()
    container.staff_auth.create_staff(username, username, municipality, StaffRole.CLERK,
                                      "a long staff password", totp_secret=secret)
    return container.staff_auth.login(username, "a long staff password",
                                      pyotp.TOTP(secret).now())


def test_login_information_history_verify_logout(client: TestClient, container: Container,
                                                  card_holder: CardHolder) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    session = http_login(client, card_holder)
    assert session["token"] and session["csrf_token"]
    assert session["acting_for"] == session["account_id"]
    headers = auth(session["token"])
    me = client.get(f"{API}/me", headers=headers)
    assert me.status_code == 200 and me.json()["account"]["municipality_code"] == SHINJUKU
    assert "token" not in me.json()["session"]
    info = client.get(f"{API}/me/information/basic_four", headers=headers)
    assert info.status_code == 200, info.text
    assert info.json()["data"]["name"] == card_holder.resident.name
    serial = info.json()["serial"]
    history = client.get(f"{API}/me/history", headers=headers).json()
    assert serial in [e["record"]["serial"] for e in history]
    container.network_log.integrate()
    verdict = client.post(f"{API}/me/history/{serial}/verify", headers=headers)
    assert verdict.status_code == 200 and verdict.json()["verified"] is True
    assert verdict.json()["proof"] is not None and verdict.json()["checkpoint"]
    problem(client.post(f"{API}/me/history/{'0' * 32}/verify", headers=headers), 404)
    problem(client.post(f"{API}/me/history/not-a-serial/verify", headers=headers), 422)
    assert problem(client.get(f"{API}/me/information/everything", headers=headers),
                   422)["code"] == "unknown_scope"
    actions = [a["action"] for a in client.get(f"{API}/me/activities", headers=headers).json()]
    assert "login" in actions and "view_information" in actions
    assert client.post(f"{API}/logout", headers=headers).status_code == 204
    assert problem(client.get(f"{API}/me", headers=headers), 401)["code"] == \
        "portal_session_expired"


def test_login_problems(client: TestClient, card_holder: CardHolder) -> None:
    challenge = client.post(f"{API}/login/challenge").json()
    certificate = card_holder.chip.certificate("auth").decode()
    raw = base64.b64decode(challenge["challenge"])
    good = b64(card_holder.chip.sign("auth", AUTH_PIN, raw))
    base = {"challenge_id": challenge["challenge_id"], "signature": good,
            "certificate": certificate}
    assert problem(client.post(f"{API}/login", json={**base, "signature": "!!not base64"}),
                   422)["field"] == "signature"
    problem(client.post(f"{API}/login", json={**base, "signature": b64(b"x" * 2000)}), 422)
    problem(client.post(f"{API}/login", json={**base, "certificate": "A" * 20000}), 422)
    problem(client.post(f"{API}/login", json={**base, "challenge_id": "../x"}), 422)
    # Refused before the service: the challenge is still unused; the first real attempt
    # (a certificate that does not parse) uses it up.
    garbage = problem(client.post(f"{API}/login", json={**base, "certificate": "garbage"}), 401)
    assert garbage["code"] == "portal_login_failed"
    assert garbage["reason"] == "malformed_certificate"
    reused = problem(client.post(f"{API}/login", json=base), 401)
    assert reused["reason"] == "challenge_used"
    assert problem(client.get(f"{API}/me"), 401)["code"] == "portal_session_expired"
    problem(client.get(f"{API}/me", headers=auth("x" * 40)), 401)


def test_a_new_login_ends_the_terminals_session(client: TestClient,
                                                card_holder: CardHolder) -> None:
    first = http_login(client, card_holder)
    second = http_login(client, card_holder, previous=str(first["token"]))
    problem(client.get(f"{API}/me", headers=auth(first["token"])), 401)
    assert client.get(f"{API}/me", headers=auth(second["token"])).status_code == 200


def _signed_notice(container: Container, code: str, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "agency_id": CITY, "agency_code": code, "kind": "child_allowance_status_report",
        "title": "児童手当 現況届", "body": "提出してください。\n期限: 6月30日",
        "requested_at": dt.datetime.now(dt.UTC), "nonce": secrets.token_urlsafe(16),
    }
    body.update(overrides)
    key = container.agencies.keyring.keys(CITY).signing
    body["signature"] = b64(key.sign(signed_request_bytes("portal-notice", body)))
    body["requested_at"] = body["requested_at"].isoformat()  # type: ignore[union-attr]
    return body


def test_agencies_send_signed_notices(client: TestClient, container: Container,
                                      card_holder: CardHolder) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    code = container.agencies.agency_code(CITY, "C-1")
    sent = client.post(f"{API}/notices", json=_signed_notice(container, code))
    assert sent.status_code == 200, sent.text
    assert set(sent.json()) == {"notice_id", "accepted_at"}
    forged = _signed_notice(container, code)
    forged["title"] = "別の題名"
    assert problem(client.post(f"{API}/notices", json=forged), 403)["code"] == "bad_signature"
    stale = _signed_notice(container, code,
                           requested_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    problem(client.post(f"{API}/notices", json=stale), 422)
    unknown = _signed_notice(container, "A" * 26)
    problem(client.post(f"{API}/notices", json=unknown), 403)
    session = http_login(client, card_holder)
    headers = auth(session["token"])
    [notice] = client.get(f"{API}/me/notices", headers=headers).json()
    assert notice["state"] == "unread" and notice["sender_id"] == CITY
    read = client.post(f"{API}/me/notices/{notice['notice_id']}/read", headers=headers)
    assert read.status_code == 200 and read.json()["state"] == "read"
    problem(client.post(f"{API}/me/notices/999999/read", headers=headers), 404)
    problem(client.post(f"{API}/me/notices/0/read", headers=headers), 422)
    assert client.get(f"{API}/me/applications", headers=headers).json() == []


def test_staff_register_proxies_in_their_municipality(
    client: TestClient, container: Container, clerk: StaffPrincipal, card_holder: CardHolder,
) -> None:
    details = new_resident(given_name="花子", birth_date=dt.date(1940, 1, 1))
    ward = container.registry.register_birth(clerk, details, details.birth_date)
    body = {"principal_resident_id": ward.id, "proxy_resident_id": card_holder.resident.id,
            "kind": "adult_guardian"}
    problem(client.post(f"{API}/proxies", json=body), 401)
    shibuya = staff_token(container, "shibuya-api", SHIBUYA)
    problem(client.post(f"{API}/proxies", json=body, headers=auth(shibuya)), 403)
    shinjuku = staff_token(container, "shinjuku-api", SHINJUKU)
    registered = client.post(f"{API}/proxies", json=body, headers=auth(shinjuku))
    assert registered.status_code == 201, registered.text
    proxy = registered.json()
    assert proxy["principal_name"] == ward.name and proxy["registered_by"].startswith("staff:")
    assert problem(client.post(f"{API}/proxies", json=body, headers=auth(shinjuku)),
                   409)["code"] == "proxy_already_registered"
    problem(client.post(f"{API}/proxies", json={**body, "kind": "friend"},
                        headers=auth(shinjuku)), 422)
    session = http_login(client, card_holder)
    headers = auth(session["token"])
    [principal] = client.get(f"{API}/me/principals", headers=headers).json()
    assert principal["principal_account_id"] == proxy["principal_account_id"]
    acting = client.post(f"{API}/me/act-for", headers=headers,
                         json={"principal_account_id": proxy["principal_account_id"]})
    assert acting.status_code == 200 and acting.json()["proxy_kind"] == "adult_guardian"
    me = client.get(f"{API}/me", headers=headers).json()
    assert me["acting_for"]["account_id"] == proxy["principal_account_id"]
    assert me["acting_for"]["display_name"] == ward.name
    problem(client.post(f"{API}/proxies/{proxy['proxy_id']}/revoke", headers=auth(shibuya)),
            403)
    revoked = client.post(f"{API}/proxies/{proxy['proxy_id']}/revoke", headers=auth(shinjuku))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert problem(client.post(f"{API}/me/act-for", headers=headers,
                               json={"principal_account_id": proxy["principal_account_id"]}),
                   403)["code"] == "portal_not_a_proxy"
    problem(client.post(f"{API}/proxies/99999/revoke", headers=auth(shinjuku)), 404)


def test_the_openapi_document_declares_the_portal_routes(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    ids = {op["operationId"] for path in document["paths"].values() for op in path.values()
           if "portal" in op.get("tags", [])}
    assert {"portal_login_challenge", "portal_login", "portal_logout", "portal_me",
            "portal_my_information", "portal_history", "portal_verify_record",
            "portal_notices", "portal_read_notice", "portal_applications",
            "portal_activities", "portal_principals", "portal_act_for", "portal_send_notice",
            "portal_register_proxy", "portal_revoke_proxy"} <= ids
    verify = document["paths"]["/api/v1/portal/me/history/{serial}/verify"]["post"]
    assert {"401", "404", "422"} <= set(verify["responses"])


def test_a_replayed_signed_notice_is_refused(client: TestClient, container: Container,
                                             card_holder: CardHolder) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    code = container.agencies.agency_code(CITY, "C-1")
    signed = _signed_notice(container, code)
    first = client.post(f"{API}/notices", json=signed)
    assert first.status_code == 200, first.text
    assert problem(client.post(f"{API}/notices", json=signed), 409)["code"] == \
        "notice_replayed"
    # A fresh nonce is a new notice; a bad signature never uses a nonce up.
    fresh = _signed_notice(container, code)
    forged = {**fresh, "title": "別の題名"}
    problem(client.post(f"{API}/notices", json=forged), 403)
    assert client.post(f"{API}/notices", json=fresh).status_code == 200
    session = http_login(client, card_holder)
    notices = client.get(f"{API}/me/notices", headers=auth(session["token"])).json()
    assert len(notices) == 2


def test_reporting_the_card_lost_ends_the_api_session(client: TestClient, container: Container,
                                                      card_holder: CardHolder) -> None:
    session = http_login(client, card_holder)
    headers = auth(session["token"])
    assert client.get(f"{API}/me", headers=headers).status_code == 200
    r = card_holder.resident
    container.card.report_lost(card_holder.card_id, r.name_kana, r.birth_date)
    assert problem(client.get(f"{API}/me", headers=headers), 401)["code"] == \
        "portal_session_expired"


def test_information_carrying_an_individual_number_never_reaches_the_api(
        client: TestClient, container: Container, card_holder: CardHolder) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    headers = auth(http_login(client, card_holder)["token"])
    real_query = container.portal.agencies.query

    def leaky(*args: object) -> QueryResult:
        result = real_query(*args)
        return dataclasses.replace(result, data={**(result.data or {}),
                                                 "name": f"山田 {card_holder.number}"})

    container.portal.agencies.query = leaky  # type: ignore[method-assign]
    try:
        response = client.get(f"{API}/me/information/basic_four", headers=headers)
    finally:
        del container.portal.agencies.query
    assert problem(response, 502)["code"] == "individual_number_in_answer"
    assert card_holder.number not in response.text

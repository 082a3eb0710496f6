"""住基ネット over HTTP: agencies' signed queries (problems with stable codes), and the
resident's 本人確認情報の提供状況 in the portal (JSON API and page)."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.juki import schemas as s
from mynumber.network.interfaces import signed_request_bytes
from mynumber.portal.interfaces import SESSION_COOKIE
from tests.conftest import new_resident
from tests.juki.conftest import KYOKAI, PENSION, UNLISTED, Feed
from tests.portal.conftest import issue_card_holder, login

BY_CODE = "/api/v1/juki/identities/by-code"
SEARCH = "/api/v1/juki/identities/search"


@pytest.fixture
def client(container: Container) -> TestClient:
    return TestClient(create_app(container=container))


def key(container: Container, agency_id: str) -> ed25519.Ed25519PrivateKey:
    container.agencies.ensure_registered(agency_id)
    signing: ed25519.Ed25519PrivateKey = container.agencies.keyring.keys(agency_id).signing
    return signing


def signed(kind: str, signing: ed25519.Ed25519PrivateKey, *, at: dt.datetime | None = None,
           **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**fields,
                            "requested_at": (at or dt.datetime.now(dt.UTC)).isoformat(),
                            "nonce": secrets.token_urlsafe(16)}
    for_signing = {**body, "requested_at": dt.datetime.fromisoformat(body["requested_at"])}
    body["signature"] = base64.b64encode(
        signing.sign(signed_request_bytes(kind, for_signing))).decode()
    return body


def test_signed_query_by_code_and_its_refusals(container: Container, client: TestClient,
                                               feed: Feed, clerk: StaffPrincipal) -> None:
    details = new_resident()
    person = container.registry.register_birth(clerk, details, details.birth_date)
    feed.deliver()
    pension = key(container, PENSION)
    body = signed(s.BY_CODE_KIND, pension, agency_id=PENSION, use_id="pension-benefits",
                  resident_code=person.resident_code)
    answer = client.post(BY_CODE, json=body)
    assert answer.status_code == 200, answer.text
    identity = answer.json()["identity"]
    assert identity["resident_code"] == person.resident_code
    assert identity["name_kana"] == "ヤマダ タロウ"
    assert identity["latest_change"] == {"kind": "birth", "date": details.birth_date.isoformat()}

    replay = client.post(BY_CODE, json=body)
    assert (replay.status_code, replay.json()["code"]) == (409, "replayed_request")
    forged = {**signed(s.BY_CODE_KIND, ed25519.Ed25519PrivateKey.generate(), agency_id=PENSION,
                       use_id="pension-benefits", resident_code=person.resident_code)}
    refused = client.post(BY_CODE, json=forged)
    assert (refused.status_code, refused.json()["code"]) == (403, "bad_signature")
    stale = signed(s.BY_CODE_KIND, pension, at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
                   agency_id=PENSION, use_id="pension-benefits",
                   resident_code=person.resident_code)
    assert client.post(BY_CODE, json=stale).json()["code"] == "stale_request"
    unlisted = client.post(BY_CODE, json=signed(
        s.BY_CODE_KIND, key(container, UNLISTED), agency_id=UNLISTED,
        use_id="pension-benefits", resident_code=person.resident_code))
    assert unlisted.status_code == 403
    assert unlisted.headers["content-type"].startswith("application/problem+json")
    assert unlisted.json()["code"] == "juki_agency_not_permitted"
    assert "query_id" in unlisted.json()
    # Only the authenticated queries were recorded: the answer and the unlisted agency's.
    assert [e.agency_id for e in container.juki.disclosure(person.id)] == [UNLISTED, PENSION]


def test_search_over_http_three_items_refused_and_two_matches_return_no_one(
        container: Container, client: TestClient, feed: Feed, clerk: StaffPrincipal) -> None:
    for family in ("斉藤", "斎藤"):
        details = new_resident(family_name=family, family_name_kana="サイトウ")
        container.registry.register_birth(clerk, details, details.birth_date)
    feed.deliver()
    kyokai = key(container, KYOKAI)
    three = client.post(SEARCH, json=signed(
        s.SEARCH_KIND, kyokai, agency_id=KYOKAI, use_id="health-insurance-kyokai",
        name_kana="サイトウ タロウ", birth_date="1990-04-01", sex="男"))
    assert three.status_code == 422
    problem = three.json()
    assert problem["code"] == "juki_four_items_required"
    assert problem["missing"] == ["address"] and "four basic items" in problem["title"]
    two = client.post(SEARCH, json=signed(
        s.SEARCH_KIND, kyokai, agency_id=KYOKAI, use_id="health-insurance-kyokai",
        name_kana="ｻｲﾄｳ ﾀﾛｳ", birth_date="1990-04-01", sex="男",
        address="東京都新宿区西新宿2-8-1"))
    assert two.status_code == 409
    assert two.json()["code"] == "juki_ambiguous_match" and "identity" not in two.json()
    one = client.post(SEARCH, json=signed(
        s.SEARCH_KIND, kyokai, agency_id=KYOKAI, use_id="health-insurance-kyokai",
        name="斎藤 太郎", birth_date="1990-04-01", sex="男",
        address="東京都新宿区西新宿二丁目八番一号"))
    assert one.status_code == 200 and one.json()["identity"]["name"] == "斎藤 太郎"


def test_resident_sees_who_asked_in_the_portal(container: Container, client: TestClient,
                                               feed: Feed, clerk: StaffPrincipal) -> None:
    holder = issue_card_holder(container, clerk)
    other = issue_card_holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    feed.deliver()
    container.juki.by_code(PENSION, "pension-benefits", holder.resident.resident_code)
    container.juki.by_code(KYOKAI, "health-insurance-kyokai", other.resident.resident_code)
    session = login(container, holder)

    api = client.get("/api/v1/portal/me/juki-disclosures",
                     headers={"Authorization": f"Bearer {session.token}"})
    assert api.status_code == 200, api.text
    assert [(d["agency_name"], d["provided"], d["kind"]) for d in api.json()] == [
        ("日本年金機構", True, "by_code")]
    assert client.get("/api/v1/portal/me/juki-disclosures").status_code == 401

    client.cookies.set(SESSION_COOKIE, session.token)
    page = client.get("/portal/juki")
    assert page.status_code == 200
    assert "本人確認情報の提供状況" in page.text and "日本年金機構" in page.text
    assert "全国健康保険協会" not in page.text  # the other person's query is not shown
    assert "提供しました" in page.text and "by_code" not in page.text
    client.cookies.clear()
    anonymous = client.get("/portal/juki", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith(
        "/portal/login")

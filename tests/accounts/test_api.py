"""The resident's 公金受取口座 JSON API (/api/v1/portal/me/accounts): the portal's bearer session,
a fresh card authentication on every change, RFC 9457 problems."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from tests.portal.conftest import AUTH_PIN, CardHolder, issue_card_holder, login

URL = "/api/v1/portal/me/accounts"


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def signed(api: TestClient, holder: CardHolder, bearer: dict[str, str]) -> dict[str, str]:
    """The holder's card signs a challenge of the session's own ``accounts`` purpose."""
    challenge = api.post("/api/v1/portal/me/accounts/challenge", headers=bearer).json()
    signature = holder.chip.sign("auth", AUTH_PIN, base64.b64decode(challenge["challenge"]))
    return {"challenge_id": challenge["challenge_id"],
            "signature": base64.b64encode(signature).decode(),
            "certificate": holder.chip.certificate("auth").decode()}


def body(card: dict[str, str], **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"bank_code": "8001", "branch_code": "101",
                              "deposit_type": "ordinary", "account_number": "1234567",
                              "holder_name": "ヤマダ タロウ", "card": card}
    values.update(overrides)
    return values


def test_register_read_change_and_delete(container: Container, api: TestClient,
                                         clerk: StaffPrincipal) -> None:
    taro = issue_card_holder(container, clerk)
    bearer = {"Authorization": f"Bearer {login(container, taro).token}"}
    assert api.get(URL, headers=bearer).json() == {"registration": None}
    put = api.put(URL, headers=bearer, json=body(signed(api, taro, bearer)))
    assert put.status_code == 200, put.text
    shown = put.json()["registration"]
    assert shown["account_number_masked"] == "***4567" and "1234567" not in put.text
    assert shown["route"] == "portal" and shown["name_check"] == "ok" and shown["bank_name"]
    changed = api.put(URL, headers=bearer,
                      json=body(signed(api, taro, bearer), account_number="7654321"))
    assert changed.json()["registration"]["account_number_masked"] == "***4321"
    assert api.get(URL, headers=bearer).json()["registration"]["account_number_masked"] \
        == "***4321"
    deleted = api.request("DELETE", URL, headers=bearer, json={"card": signed(api, taro, bearer)})
    assert deleted.status_code == 204
    assert api.get(URL, headers=bearer).json() == {"registration": None}
    again = api.request("DELETE", URL, headers=bearer, json={"card": signed(api, taro, bearer)})
    assert again.status_code == 404 and again.json()["code"] == "accounts_not_registered"


def test_problems(container: Container, api: TestClient, clerk: StaffPrincipal) -> None:
    taro = issue_card_holder(container, clerk)
    hanako = issue_card_holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    bearer = {"Authorization": f"Bearer {login(container, taro).token}"}
    anonymous = api.get(URL)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")

    relative = api.put(URL, headers=bearer, json=body(signed(api, taro, bearer),
                                                      holder_name="ヤマダ ハナコ"))
    assert relative.status_code == 422
    assert relative.json()["code"] == "accounts_holder_name_mismatch"
    assert relative.json()["reason"] == "given_name_differs"

    bad = api.put(URL, headers=bearer, json=body(signed(api, taro, bearer), branch_code="99"))
    assert bad.status_code == 422 and bad.json()["field"] == "branch_code"

    # The shared terminal: Hanako's card in Taro's session.
    other = api.put(URL, headers=bearer, json=body(signed(api, hanako, bearer),
                                                   holder_name="ヤマダ ハナコ"))
    assert other.status_code == 403
    assert other.json()["code"] == "accounts_card_authentication_other_person"
    assert container.accounts.registration(hanako.resident.id) is None

    card = signed(api, taro, bearer)
    assert api.put(URL, headers=bearer, json=body(card)).status_code == 200
    replay = api.put(URL, headers=bearer, json=body(card, account_number="7654321"))
    assert replay.status_code == 401 and replay.json()["reason"] == "challenge_used"
    registration = container.accounts.registration(taro.resident.id)
    assert registration is not None and registration.account_number == "1234567"

    schema = api.get("/openapi.json").json()
    assert {"get", "put", "delete"} <= set(schema["paths"][URL])

"""The resident's API (/api/v1/portal/me/insurance): the card's status as the insurance card
(the insurer it points to now, after a job change too), the access records of medical
institutions, and 初回登録 with a fresh card authentication for the purpose ``insurance`` only,
by the logged-in person's own card. No 個人番号 anywhere."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from fastapi.testclient import TestClient

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.jpki.interfaces import RevocationReason
from mynumber.portal.interfaces import PortalSession
from tests.insurance.support_api import (
    KYOKAI,
    ME,
    SOCIETY,
    Holder,
    api,
    b64,
    card_check,
    holder,
    linked,
    problem,
    reception,
    register_insurers,
)

__all__ = ["api"]  # the fixture


def login(container: Container, card: Holder) -> PortalSession:
    challenge = container.portal.begin_login()
    return container.portal.complete_login(challenge.challenge_id,
                                           card.sign(challenge.challenge), card.certificate)


def bearer(session: PortalSession) -> dict[str, str]:
    return {"Authorization": f"Bearer {session.token}"}


def card_auth(api: TestClient, card: Holder, headers: dict[str, str]) -> dict[str, str]:
    """The card signs a challenge of the ``insurance`` purpose."""
    challenge = api.post(f"{ME}/challenge", headers=headers)
    assert challenge.status_code == 200, challenge.text
    issued = challenge.json()
    return {"challenge_id": issued["challenge_id"],
            "signature": b64(card.sign(base64.b64decode(issued["challenge"]))),
            "certificate": card.certificate}


def activate(api: TestClient, card: Holder, headers: dict[str, str]) -> Any:
    return api.post(f"{ME}/activation", headers=headers, json=card_auth(api, card, headers))


def test_activation_status_and_access_records(api: TestClient, container: Container,
                                              clerk: StaffPrincipal) -> None:
    register_insurers(container)
    taro = holder(container, clerk)
    linked(container, taro.resident)
    headers = bearer(login(container, taro))
    before = api.get(ME, headers=headers)
    assert before.status_code == 200, before.text
    assert before.json()["activated"] is False
    assert before.json()["current"]["insurer_number"] == KYOKAI

    done = activate(api, taro, headers)
    assert done.status_code == 200, done.text
    assert done.json()["activated"] is True and done.json()["activated_at"]
    problem(activate(api, taro, headers), 409, "insurance_already_activated")

    # The reception's check is in the resident's やりとり履歴, with the activation.
    assert card_check(api, reception(container), taro).status_code == 200
    entries = api.get(f"{ME}/access-records", headers=headers)
    assert entries.status_code == 200
    assert [e["action"] for e in entries.json()] == ["eligibility", "activation"]
    assert entries.json()[0]["institution_name"] == "新宿テストクリニック"
    assert entries.json()[0]["at_ja"]
    number = container.registry.reveal_number(clerk, taro.resident.id, "test: not shown")
    for response in (before, done, entries, api.get(ME, headers=headers)):
        assert number not in response.text


def test_the_card_shows_the_new_insurer_after_a_job_change(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    register_insurers(container)
    taro = holder(container, clerk)
    linked(container, taro.resident, KYOKAI, acquired_on=dt.date(2020, 4, 1))
    changed_on = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=30)
    linked(container, taro.resident, SOCIETY, acquired_on=changed_on)
    shown = api.get(ME, headers=bearer(login(container, taro))).json()
    assert shown["current"]["insurer_number"] == SOCIETY
    assert shown["current"]["acquired_on"] == changed_on.isoformat()
    old = [q for q in container.insurance.history(taro.resident.id)
           if q.insurer_number == KYOKAI]
    assert [q.lost_on for q in old] == [changed_on]  # no gap, no overlap


def test_activation_needs_the_sessions_own_card_and_an_insurance_challenge(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    register_insurers(container)
    taro = holder(container, clerk)
    hanako = holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    for card in (taro, hanako):
        linked(container, card.resident)
    headers = bearer(login(container, taro))

    # Hanako's card left in the reader of Taro's session.
    problem(activate(api, hanako, headers), 403, "insurance_card_other_person")
    # A login challenge is not an insurance one.
    login_challenge = container.portal.begin_login()
    refused = api.post(f"{ME}/activation", headers=headers, json={
        "challenge_id": login_challenge.challenge_id,
        "signature": b64(taro.sign(login_challenge.challenge)),
        "certificate": taro.certificate})
    problem(refused, 401, "portal_login_failed")
    # The card reported lost between the challenge and the activation: the session it
    # opened ends with it, and nothing is activated.
    auth = card_auth(api, taro, headers)
    container.jpki.revoke(taro.serial, RevocationReason.LOST, "test:lost-card")
    revoked = api.post(f"{ME}/activation", headers=headers, json=auth)
    assert problem(revoked, 401, "portal_session_expired")["reason"] == "card_revoked"
    assert not container.eligibility.card_status(taro.resident.id).activated
    assert not container.eligibility.card_status(hanako.resident.id).activated

    problem(api.get(ME), 401, "portal_session_expired")
    problem(api.post(f"{ME}/challenge"), 401, "portal_session_expired")


def test_a_replayed_card_authentication_is_refused(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    register_insurers(container)
    taro = holder(container, clerk)
    linked(container, taro.resident)
    headers = bearer(login(container, taro))
    auth = card_auth(api, taro, headers)
    assert api.post(f"{ME}/activation", headers=headers, json=auth).status_code == 200
    replay = api.post(f"{ME}/activation", headers=headers, json=auth)
    assert problem(replay, 401, "portal_login_failed")["reason"] == "challenge_used"

"""The certificate life at the counter pages and in the staff JSON API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.card import api as card_api
from mynumber.card.interfaces import CardState
from mynumber.jpki.interfaces import CertificateState
from tests.card.conftest import PINS, Holder, make_holder
from tests.registry.test_api import login, staff_account
from tests.web.test_counter import logged_in, text_of


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    app = create_app(container=container)
    paths = {getattr(r, "path", "") for r in app.routes}
    for router in (card_api.counter, card_api.holder):  # until the lead's assembly has them
        if not any(getattr(r, "path", "") in paths for r in router.routes):
            app.include_router(router)
    with TestClient(app) as test_client:
        yield test_client


def _suspended_card(container: Container, holder: Holder) -> str:
    from mynumber.registry.interfaces import SYSTEM

    application = container.card.apply(SYSTEM, holder.resident.id)
    record, _ = container.card.issue(SYSTEM, application.application_id, holder.check(), PINS)
    container.card.report_lost(record.card_id, holder.resident.name_kana,
                               holder.resident.birth_date)
    return record.card_id


def test_lift_suspension_and_status_pages(client: TestClient, container: Container) -> None:
    counter, clerk = logged_in(client, container)
    holder = make_holder(container, clerk)
    card_id = _suspended_card(container, holder)
    page = counter.get("/counter/cards/status")
    assert page.status_code == 200
    shown = counter.post("/counter/cards/status", {"card_id": card_id})
    assert shown.status_code == 200, shown.text
    text = text_of(shown.text)
    assert "一時利用停止中" in text and "失効" in text and "suspended" not in text
    counter.get("/counter/cards/lift-suspension")
    form = {"card_id": card_id, "individual_number": "123456789018",
            "number_confirmation": "notification_letter",
            "identity_documents": "drivers_license", "signing_password": "FOUND1",
            "user_auth_pin": "4321"}
    refused = counter.post("/counter/cards/lift-suspension", form)
    assert refused.status_code == 403, refused.text
    assert "本人確認ができませんでした" in refused.text and "FOUND1" not in refused.text
    assert container.card.card(card_id).state is CardState.SUSPENDED
    done = counter.post("/counter/cards/lift-suspension",
                        {**form, "individual_number": holder.number})
    assert done.status_code == 200, done.text
    assert container.card.card(card_id).state is CardState.ACTIVE
    assert holder.number not in done.text
    shown = counter.post("/counter/cards/status", {"card_id": card_id})
    assert "有効" in text_of(shown.text)


def test_staff_api_certificates_and_free_area(client: TestClient,
                                              container: Container) -> None:
    secret = staff_account(container, "api-clerk")
    headers = login(client, "api-clerk", secret)
    clerk = container.staff_auth.find_staff("api-clerk")
    assert clerk is not None
    holder = make_holder(container, clerk)
    card_id = _suspended_card(container, holder)
    identity = {"individual_number": holder.number, "number_confirmation": "notification_letter",
                "identity_documents": ["drivers_license"]}
    base = f"/api/v1/card/cards/{card_id}"
    early = client.post(f"{base}/certificates", headers=headers,
                        json={"identity": identity, "signing_password": "ABC123"})
    assert early.status_code == 409 and early.json()["code"] == "card_state_conflict"
    lifted = client.post(f"{base}/lift-suspension", headers=headers,
                         json={"identity": identity, "signing_password": "FOUND1",
                               "user_auth_pin": "4321"})
    assert lifted.status_code == 200, lifted.text
    body = lifted.json()
    assert body["card"]["state"] == "active" and len(body["serial_links"]) == 2
    for old, new in body["serial_links"].items():
        assert container.jpki.state(int(old)) is CertificateState.REVOKED
        assert container.jpki.state(int(new)) is CertificateState.GOOD
    again = client.post(f"{base}/certificates", headers=headers,
                        json={"identity": identity, "signing_password": "ABC123"})
    assert again.status_code == 409 and again.json()["code"] == "renewal_not_open"
    assert holder.number not in again.text
    app_ok = client.post(f"{base}/free-area", headers=headers,
                         json={"app_id": "seal_registration"})
    assert app_ok.status_code == 201, app_ok.text
    got = client.get(base, headers=headers)
    assert got.status_code == 200
    assert [e["app_id"] for e in got.json()["free_area"]] == ["seal_registration"]
    assert client.get(base).status_code == 401

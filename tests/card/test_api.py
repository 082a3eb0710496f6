"""The loss-report API (no staff login) and the card pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.interfaces import CardState
from mynumber.jpki.interfaces import CertificateState
from tests.card.conftest import PINS, Holder

URL = "/api/v1/card/loss-reports"


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def test_loss_report_api(client: TestClient, container: Container, clerk: StaffPrincipal,
                         holder: Holder) -> None:
    application = container.card.apply(clerk, holder.resident.id)
    record, _ = container.card.issue(clerk, application.application_id, holder.check(), PINS)
    birth = holder.resident.birth_date.isoformat()
    unknown = client.post(URL, json={"card_id": "0123456789ABCDEF", "name_kana": "ヤマダ タロウ",
                                     "birth_date": birth})
    wrong = client.post(URL, json={"card_id": record.card_id, "name_kana": "ヤマダ ハナコ",
                                   "birth_date": birth})
    for response in (unknown, wrong):
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "loss_report_not_matched"
    assert unknown.json()["detail"] == wrong.json()["detail"]
    ok = client.post(URL, json={"card_id": record.card_id, "name_kana": "ヤマダ タロウ",
                                "birth_date": birth})
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"card_id": record.card_id, "state": "suspended",
                         "revoked_certificates": 2}
    assert record.auth_serial is not None
    assert container.jpki.state(record.auth_serial) is CertificateState.REVOKED
    bad_id = client.post(URL, json={"card_id": application.application_id[:-1] + "0"
                                    if application.application_id[-1] != "0"
                                    else application.application_id[:-1] + "1",
                                    "name_kana": "ヤマダ タロウ", "birth_date": birth})
    assert bad_id.status_code == 422
    assert bad_id.json()["code"] == "invalid_application_id"


def test_lost_page_with_csrf(client: TestClient, container: Container, clerk: StaffPrincipal,
                             holder: Holder) -> None:
    application = container.card.apply(clerk, holder.resident.id)
    record, _ = container.card.issue(clerk, application.application_id, holder.check(), PINS)
    page = client.get("/card/lost")
    assert page.status_code == 200 and "紛失" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    form = {"card_id": record.card_id, "name_kana": "ヤマダ タロウ",
            "birth_date": holder.resident.birth_date.isoformat()}
    refused = client.post("/card/lost", data=form)
    assert refused.status_code == 403
    assert container.card.card(record.card_id).state is CardState.ACTIVE
    done = client.post("/card/lost", data={**form, "csrf_token": token.group(1)})
    assert done.status_code == 200, done.text
    assert container.card.card(record.card_id).state is CardState.SUSPENDED


def test_counter_pages_need_login(client: TestClient) -> None:
    response = client.get("/counter/cards/issue", follow_redirects=False)
    assert response.status_code == 303

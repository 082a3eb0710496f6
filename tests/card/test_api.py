"""The loss-report API (no staff login) and the card pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.interfaces import CardState
from mynumber.jpki.interfaces import CertificateState
from tests.card.conftest import PINS, Holder, enrol_smartphone, ocsp_status

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
    reference = ok.json()["reference"]
    assert ok.json() == {"card_id": record.card_id, "state": "suspended",
                         "revoked_certificates": 2, "reference": reference}
    assert re.fullmatch(r"\d{8}-\d{4}-\d{4}-\d{4}", reference)  # 受付番号
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
    form = {"name_kana": "ヤマダ タロウ", "birth_date": holder.resident.birth_date.isoformat(),
            "address": holder.resident.address}
    refused = client.post("/card/lost", data=form)
    assert refused.status_code == 403
    assert container.card.card(record.card_id).state is CardState.ACTIVE
    done = client.post("/card/lost", data={**form, "csrf_token": token.group(1)})
    assert done.status_code == 200, done.text
    assert container.card.card(record.card_id).state is CardState.SUSPENDED


def test_counter_pages_need_login(client: TestClient) -> None:
    response = client.get("/counter/cards/issue", follow_redirects=False)
    assert response.status_code == 303


def _lost_token(client: TestClient) -> str:
    page = client.get("/card/lost")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return token.group(1)


def test_lost_page_reports_the_smartphone_or_the_card(
    client: TestClient, container: Container, clerk: StaffPrincipal, holder: Holder,
) -> None:
    application = container.card.apply(clerk, holder.resident.id)
    record, chip = container.card.issue(clerk, application.application_id, holder.check(),
                                        PINS)
    phone = enrol_smartphone(container, record.card_id, chip)
    page = client.get("/card/lost")
    assert "スマートフォン (スマホ用電子証明書)" in page.text
    assert 'name="device" value="card" checked' in page.text  # the card unless chosen
    form = {"name_kana": "ヤマダ タロウ", "birth_date": holder.resident.birth_date.isoformat(),
            "address": holder.resident.address, "device": "smartphone"}

    wrong = client.post("/card/lost", data={**form, "name_kana": "ヤマダ ハナコ",
                                            "csrf_token": _lost_token(client)})
    assert wrong.status_code == 422
    assert "一時利用停止できるカードを確認できませんでした" in wrong.text
    assert ocsp_status(client, container, phone.auth_serial, "auth") is ocsp.OCSPCertStatus.GOOD

    # The smartphone: only its certificates are revoked; the card works on.
    lost_phone = client.post("/card/lost", data={**form, "csrf_token": _lost_token(client)})
    assert lost_phone.status_code == 200, lost_phone.text
    assert "スマホ用電子証明書を失効させました。カードはそのまま使えます" in lost_phone.text
    for kind, serial in (("signing", phone.signing_serial), ("auth", phone.auth_serial)):
        assert ocsp_status(client, container, serial, kind) is ocsp.OCSPCertStatus.REVOKED
    for kind, serial in (("signing", record.signing_serial), ("auth", record.auth_serial)):
        assert ocsp_status(client, container, serial, kind) is ocsp.OCSPCertStatus.GOOD
    assert container.card.card(record.card_id).state is CardState.ACTIVE
    assert not container.card.smartphones_of(record.card_id)[0].active

    # The card: suspended, both of its certificates revoked.
    lost_card = client.post("/card/lost", data={**form, "device": "card",
                                                "csrf_token": _lost_token(client)})
    assert lost_card.status_code == 200, lost_card.text
    assert "カードを一時利用停止にし、電子証明書を失効させました" in lost_card.text
    assert "カードはそのまま使えます" not in lost_card.text
    assert container.card.card(record.card_id).state is CardState.SUSPENDED
    for kind, serial in (("signing", record.signing_serial), ("auth", record.auth_serial)):
        assert ocsp_status(client, container, serial, kind) is ocsp.OCSPCertStatus.REVOKED

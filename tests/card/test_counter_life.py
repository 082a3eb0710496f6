"""The certificate life at the counter pages and in the staff JSON API."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.card import api as card_api
from mynumber.card.chip import PinKind, VirtualCard
from mynumber.card.interfaces import CardRecord, CardState
from mynumber.jpki.interfaces import CertificateState
from mynumber.registry.interfaces import SYSTEM
from mynumber.web.i18n import MESSAGES
from tests.card.conftest import PINS, Holder, enrol_smartphone, make_holder, ocsp_status
from tests.conftest import SHIBUYA, SHINJUKU
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


# --- reissue, smartphone certificates and the free area at the counter ------------------------

IDENTITY = {"number_confirmation": "notification_letter", "identity_documents": "drivers_license"}
NEW_PINS = {"signing_password": "NEWPW1", "user_auth_pin": "9876", "residence_pin": "1357",
            "card_info_pin": "8642", "adult_ward": "no"}
WRONG_NUMBER = "123456789018"


def _shown(html: str, field: str) -> str:
    """The value a done page shows under the Japanese label of ``field``."""
    label = re.escape(MESSAGES[f"field.{field}"]["ja"])
    found = re.search(label + r"</dt><dd>([^<]*)</dd>", html)
    assert found, html
    return found.group(1)


def _issued(container: Container, holder: Holder) -> tuple[CardRecord, VirtualCard]:
    application = container.card.apply(SYSTEM, holder.resident.id)
    return container.card.issue(SYSTEM, application.application_id, holder.check(), PINS)


def test_a_lost_card_is_reissued_at_the_counter(client: TestClient,
                                                container: Container) -> None:
    counter, clerk = logged_in(client, container)
    holder = make_holder(container, clerk)
    old, _ = _issued(container, holder)
    container.card.report_lost(old.card_id, holder.resident.name_kana,
                               holder.resident.birth_date)
    page = counter.get("/counter/cards/reissue")
    assert page.status_code == 200 and "カードの再交付" in page.text
    form = {"card_id": old.card_id, "individual_number": WRONG_NUMBER, **IDENTITY, **NEW_PINS}
    refused = counter.post("/counter/cards/reissue", form)
    assert refused.status_code == 403, refused.text
    assert "本人確認ができませんでした" in refused.text
    assert "NEWPW1" not in refused.text and WRONG_NUMBER not in refused.text
    assert container.card.card(old.card_id).state is CardState.SUSPENDED
    assert len(container.card.cards_of(holder.resident.id)) == 1  # nothing was issued

    done = counter.post("/counter/cards/reissue", {**form, "individual_number": holder.number})
    assert done.status_code == 200, done.text
    assert "処理が完了しました" in done.text and holder.number not in done.text
    assert _shown(done.text, "replaced_card") == old.card_id
    new_id = _shown(done.text, "card_id")
    new = container.card.card(new_id)
    assert new.state is CardState.ACTIVE and new.application_id == old.application_id
    expires = new.expires_on
    assert f"{expires.year}年{expires.month}月{expires.day}日" == _shown(done.text, "expires_on")
    retired = container.card.card(old.card_id)
    assert retired.state is CardState.REVOKED and retired.replaced_by == new_id
    # The new card's certificates answer good over OCSP, the lost card's revoked.
    for kind, before, after in (("signing", old.signing_serial, new.signing_serial),
                                ("auth", old.auth_serial, new.auth_serial)):
        assert after is not None and after != before
        assert ocsp_status(client, container, before, kind) is ocsp.OCSPCertStatus.REVOKED
        assert ocsp_status(client, container, after, kind) is ocsp.OCSPCertStatus.GOOD
    container.card.open_card(new_id).verify_pin(PinKind.USER_AUTH, "9876")  # the new PINs

    shown = text_of(counter.post("/counter/cards/status", {"card_id": old.card_id}).text)
    assert "廃止 (更新・再交付済み)" in shown and new_id in shown
    again = counter.post("/counter/cards/reissue", {**form, "individual_number": holder.number})
    assert again.status_code == 409 and "カードの現在の状態ではできません" in again.text
    assert len(container.card.cards_of(holder.resident.id)) == 2  # one replacement only


def test_smartphone_certificates_are_revoked_at_the_counter_and_the_card_keeps_working(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    holder = make_holder(container, clerk)
    record, chip = _issued(container, holder)
    phone = enrol_smartphone(container, record.card_id, chip)
    assert ocsp_status(client, container, phone.auth_serial, "auth") is ocsp.OCSPCertStatus.GOOD

    # Another municipality's clerk may not touch this holder's credentials.
    other, _ = logged_in(TestClient(client.app), container, "shibuya-counter", SHIBUYA)
    other.get("/counter/cards/smartphone-revoke")
    outside = other.post("/counter/cards/smartphone-revoke", {"card_id": record.card_id})
    assert outside.status_code == 403, outside.text
    assert MESSAGES["error.outside_jurisdiction"]["ja"] in outside.text
    assert container.card.smartphones_of(record.card_id)[0].active

    page = counter.get("/counter/cards/smartphone-revoke")
    assert "スマートフォンの電子証明書だけを失効させます" in page.text
    done = counter.post("/counter/cards/smartphone-revoke", {"card_id": record.card_id})
    assert done.status_code == 200, done.text
    assert "処理が完了しました" in done.text
    assert _shown(done.text, "revoked_certificates") == "2"
    for kind, serial in (("signing", phone.signing_serial), ("auth", phone.auth_serial)):
        assert ocsp_status(client, container, serial, kind) is ocsp.OCSPCertStatus.REVOKED
    # The card itself: still active, its certificates good, its PIN-protected key signs.
    for kind, serial in (("signing", record.signing_serial), ("auth", record.auth_serial)):
        assert ocsp_status(client, container, serial, kind) is ocsp.OCSPCertStatus.GOOD
    assert container.card.card(record.card_id).state is CardState.ACTIVE
    assert container.card.open_card(record.card_id).sign("auth", PINS.user_auth_pin, b"login")
    assert not container.card.smartphones_of(record.card_id)[0].active
    shown = counter.post("/counter/cards/status", {"card_id": record.card_id})
    assert _shown(shown.text, "state") == "有効"
    assert _shown(shown.text, "auth_certificate") == "有効"
    assert _shown(shown.text, "smartphones") == "0"


def test_free_area_pages_let_only_the_allowed_municipality_write(
    client: TestClient, container: Container
) -> None:
    shinjuku, clerk = logged_in(client, container)
    holder = make_holder(container, clerk)  # lives in 新宿区
    record, _ = _issued(container, holder)
    shibuya, _ = logged_in(TestClient(client.app), container, "shibuya-counter", SHIBUYA)

    page = shibuya.get("/counter/cards/free-area")
    assert page.status_code == 200 and "印鑑登録証" in page.text
    # 印鑑登録証 is written only by the municipality where the holder lives.
    refused = shibuya.post("/counter/cards/free-area",
                           {"card_id": record.card_id, "app_id": "seal_registration"})
    assert refused.status_code == 403, refused.text
    assert "このアプリケーションは書き込めません" in refused.text
    assert list(container.card.free_area(record.card_id)) == []
    # A library card any municipality may write; the issuer is the writing one.
    library = shibuya.post("/counter/cards/free-area",
                           {"card_id": record.card_id, "app_id": "library_card"})
    assert library.status_code == 200, library.text
    assert _shown(library.text, "app_id") == "図書館利用カード"
    assert _shown(library.text, "issuer") == SHIBUYA

    shinjuku.get("/counter/cards/free-area")
    seal = shinjuku.post("/counter/cards/free-area",
                         {"card_id": record.card_id, "app_id": "seal_registration"})
    assert seal.status_code == 200, seal.text
    assert _shown(seal.text, "app_id") == "印鑑登録証" and _shown(seal.text, "issuer") == SHINJUKU
    unknown = shinjuku.post("/counter/cards/free-area",
                            {"card_id": record.card_id, "app_id": "anything"})
    assert unknown.status_code == 422, unknown.text
    twice = shinjuku.post("/counter/cards/free-area",
                          {"card_id": record.card_id, "app_id": "seal_registration"})
    assert twice.status_code == 409 and "カードの現在の状態ではできません" in twice.text
    assert [(e.app_id, e.issuer) for e in container.card.free_area(record.card_id)] == [
        ("library_card", SHIBUYA), ("seal_registration", SHINJUKU)]
    shown = shinjuku.post("/counter/cards/status", {"card_id": record.card_id})
    assert _shown(shown.text, "free_area") == "図書館利用カード、印鑑登録証"

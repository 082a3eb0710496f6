"""Card procedures at the counter (HTML): application, issuance after identity verification,
PIN reset and suspension, as a clerk goes through them."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from mynumber.app import Container
from mynumber.card.chip import PinKind
from mynumber.jpki.interfaces import CertificateState
from tests.web.test_counter import client, logged_in, resident  # noqa: F401  (fixture)

IDENTITY = {"number_confirmation": "individual_number_card",
            "identity_documents": "drivers_license"}
PINS = {"signing_password": "ABC123", "user_auth_pin": "1234", "residence_pin": "5678",
        "card_info_pin": "2468", "adult_ward": "no"}


def _done_value(html: str, label_text: str) -> str:
    found = re.search(label_text + r"</dt><dd>([^<]+)</dd>", html)
    assert found, html
    return found.group(1)


def test_a_card_is_applied_for_issued_reset_and_suspended_at_the_counter(
    client: TestClient, container: Container  # noqa: F811
) -> None:
    counter, clerk = logged_in(client, container)
    person = resident(container, clerk)
    number = container.registry.reveal_number(clerk, person.id, "card issuance test")

    counter.get("/counter/cards/apply")
    applied = counter.post("/counter/cards/apply", {"resident_id": str(person.id)})
    assert applied.status_code == 200, applied.text
    application_id = re.search(r"<dd>(\d{23})</dd>", applied.text).group(1)  # type: ignore[union-attr]

    # A mistyped application ID (one digit changed) is refused, and nothing is issued.
    wrong = application_id[:5] + str((int(application_id[5]) + 1) % 10) + application_id[6:]
    counter.get("/counter/cards/issue")
    refused = counter.post("/counter/cards/issue", {
        "application_id": wrong, "individual_number": number, **IDENTITY, **PINS})
    assert refused.status_code == 422
    assert number not in refused.text  # the number typed in is not echoed back

    issued = counter.post("/counter/cards/issue", {
        "application_id": application_id, "individual_number": number, **IDENTITY, **PINS})
    assert issued.status_code == 200, issued.text
    card_id = re.search(r"<dd>([0-9A-F]{16})</dd>", issued.text).group(1)  # type: ignore[union-attr]
    card = container.card.card(card_id)
    assert card.resident_id == person.id and card.application_id == application_id
    assert card.signing_serial is not None and card.auth_serial is not None
    chip = container.card.open_card(card_id)
    chip.verify_pin(PinKind.USER_AUTH, "1234")  # the PIN the resident set at the counter

    counter.get("/counter/cards/pin-reset")
    reset = counter.post("/counter/cards/pin-reset", {
        "card_id": card_id, "pin_kind": "user_auth", "new_pin": "4321",
        "individual_number": number, **IDENTITY})
    assert reset.status_code == 200, reset.text
    container.card.open_card(card_id).verify_pin(PinKind.USER_AUTH, "4321")  # the new PIN

    counter.get("/counter/cards/suspend")
    suspended = counter.post("/counter/cards/suspend", {"card_id": card_id})
    assert suspended.status_code == 200, suspended.text
    for serial in (card.signing_serial, card.auth_serial):
        assert container.jpki.state(serial) is CertificateState.REVOKED


def test_the_card_menu_lists_every_procedure_and_each_opens(
    client: TestClient, container: Container  # noqa: F811
) -> None:
    """The card menu (`/counter/cards`) is where every card form's 取消 link and every done
    page lead: it answers, in Japanese, and each procedure it lists opens."""
    counter, _ = logged_in(client, container)
    menu = counter.get("/counter/cards")
    assert menu.status_code == 200, menu.text
    links = re.findall(r'href="(/counter/cards/[a-z-]+)"', menu.text)
    assert len(links) >= 5
    for link in links:
        page = counter.get(link)
        assert page.status_code == 200, (link, page.text[:300])


def test_the_signing_password_opens_a_full_keyboard_and_pins_a_digit_keypad(
    client: TestClient, container: Container  # noqa: F811
) -> None:
    """The signing password has letters and digits (6-16): no digits-only keypad for it; the
    4-digit PINs and the 個人番号 keep theirs."""
    counter, _ = logged_in(client, container)
    page = counter.get("/counter/cards/issue").text
    signing = re.search(r'<input id="[^"]*" name="signing_password"[^>]*>', page)
    pin = re.search(r'<input id="[^"]*" name="user_auth_pin"[^>]*>', page)
    assert signing and pin
    assert 'type="password"' in signing.group(0) and "inputmode" not in signing.group(0)
    assert 'inputmode="numeric"' in pin.group(0)

"""The municipal counter (HTML) for staff: two-factor login, CSRF, audited record views,
life-event forms, jurisdiction and language."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from mynumber.app import Container, create_app
from mynumber.auth import models as auth_models
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.kernel.signin import STAFF_COOKIE
from mynumber.registry import models as m
from mynumber.registry.interfaces import SYSTEM, ResidentRecord
from mynumber.web.i18n import MESSAGES
from tests.conftest import SHIBUYA, SHINJUKU, STAFF_PASSWORD, new_resident

BIRTH_FORM = {
    "family_name": "鈴木", "given_name": "一郎", "family_name_kana": "すずき",
    "given_name_kana": "いちろう", "birth_date": "2024-06-01", "sex": "male",
    "address": "東京都新宿区西新宿二丁目8番1号", "postal_code": "163-8001",
    "household_id": "", "relationship": "世帯主", "nationality": "JP", "residence_status": "",
}
REASON = {"reason_kind": "certificate", "reason_text": "受付番号12"}


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


class Counter:
    """A browser at the counter: keeps cookies and the form's CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.token = ""

    def get(self, url: str, **kwargs: Any) -> Any:
        response = self.client.get(url, follow_redirects=False, **kwargs)
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
        if found:
            self.token = found.group(1)
        return response

    def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True) -> Any:
        body = dict(data or {})
        if csrf:
            body["csrf_token"] = self.token
        response = self.client.post(url, data=body, follow_redirects=False)
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
        if found:
            self.token = found.group(1)
        return response

    def login(self, username: str, secret: str, step: int = 0) -> Any:
        self.get("/counter/login")
        response = self.post("/counter/login", {
            "username": username, "password": STAFF_PASSWORD,
            "totp_code": pyotp.TOTP(secret).at(time.time() + 30 * step)})
        assert response.status_code == 303, response.text
        self.get("/counter")
        return response

    def open_record(self, resident_id: int, reason: dict[str, str] | None = None) -> Any:
        self.get(f"/counter/residents/{resident_id}")
        return self.post(f"/counter/residents/{resident_id}", reason or REASON)


def staff_account(container: Container, username: str, municipality: str = SHINJUKU,
                  role: StaffRole = StaffRole.CLERK) -> tuple[str, StaffPrincipal]:
    secret = pyotp.random_base32()
    container.staff_auth.create_staff(username, f"{username} さん", municipality, role,
                                      STAFF_PASSWORD, totp_secret=secret)
    principal = container.staff_auth.find_staff(username)
    assert principal is not None
    return secret, principal


def logged_in(client: TestClient, container: Container, username: str = "clerk",
              municipality: str = SHINJUKU,
              role: StaffRole = StaffRole.CLERK) -> tuple[Counter, StaffPrincipal]:
    secret, principal = staff_account(container, username, municipality, role)
    counter = Counter(client)
    counter.login(username, secret)
    return counter, principal


def resident(container: Container, actor: StaffPrincipal, **overrides: Any) -> ResidentRecord:
    values: dict[str, Any] = {"birth_date": dt.date(1990, 4, 1), **overrides}
    return container.registry.register_move_in(actor, new_resident(**values),
                                               dt.date(2020, 4, 1))


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def audit(container: Container, tag: str) -> list[Any]:
    with container.databases.unit_of_work("registry") as session:
        return list(session.scalars(
            select(m.AuditEvent).where(m.AuditEvent.tag == tag).order_by(m.AuditEvent.id)
        ).all())


# --- login and session ---------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/counter", "/counter/births", "/counter/residents/1",
                                 "/counter/residents/1/move-out"])
def test_counter_pages_redirect_to_login(client: TestClient, url: str) -> None:
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/counter/login"


def test_login_needs_password_and_one_time_code(
    client: TestClient, container: Container
) -> None:
    secret, _ = staff_account(container, "clerk")
    counter = Counter(client)
    page = counter.get("/counter/login")
    assert page.status_code == 200
    assert 'name="totp_code"' in page.text and 'name="password"' in page.text

    valid = {pyotp.TOTP(secret).at(time.time() + 30 * s) for s in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "000001", "000002", "000003") if c not in valid)
    failed = counter.post("/counter/login", {
        "username": "clerk", "password": STAFF_PASSWORD, "totp_code": wrong})
    assert failed.status_code == 401
    assert MESSAGES["login.failed"]["ja"] in failed.text
    assert STAFF_COOKIE not in failed.headers.get("set-cookie", "")
    assert 'value="clerk"' in failed.text  # the user name is kept, the secrets are not
    assert STAFF_PASSWORD not in failed.text

    ok = counter.post("/counter/login", {
        "username": "clerk", "password": STAFF_PASSWORD, "totp_code": pyotp.TOTP(secret).now()})
    assert ok.status_code == 303
    assert ok.headers["location"] == "/counter"
    session_cookie = next(c for c in ok.headers.get_list("set-cookie")
                          if c.startswith(f"{STAFF_COOKIE}="))
    assert "HttpOnly" in session_cookie and "samesite=strict" in session_cookie.lower()
    home = counter.get("/counter")
    assert home.status_code == 200
    assert "clerk さん" in home.text


def test_a_one_time_code_works_once(client: TestClient, container: Container) -> None:
    secret, _ = staff_account(container, "clerk")
    first, second = Counter(client), Counter(TestClient(client.app))
    code = pyotp.TOTP(secret).now()
    for counter in (first, second):
        counter.get("/counter/login")
    assert first.post("/counter/login", {
        "username": "clerk", "password": STAFF_PASSWORD, "totp_code": code}).status_code == 303
    assert second.post("/counter/login", {
        "username": "clerk", "password": STAFF_PASSWORD, "totp_code": code}).status_code == 401


def test_logout_ends_the_session(client: TestClient, container: Container) -> None:
    counter, _ = logged_in(client, container)
    token = client.cookies.get(STAFF_COOKIE)
    response = counter.post("/counter/logout")
    assert (response.status_code, response.headers["location"]) == (303, "/counter/login")
    assert counter.get("/counter").status_code == 303
    # The old token is dead on the server too, not just forgotten by the browser.
    client.cookies.set(STAFF_COOKIE, token or "")
    assert counter.get("/counter").headers["location"].startswith("/counter/login")


def test_an_idle_session_sends_the_clerk_back_to_login(
    client: TestClient, container: Container
) -> None:
    counter, _ = logged_in(client, container)
    idle = container.settings.session_idle_minutes
    with container.databases.unit_of_work("auth") as session:
        session.execute(update(auth_models.StaffSession).values(
            last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=idle + 1)))
    response = counter.get("/counter")
    assert response.status_code == 303
    assert response.headers["location"] == "/counter/login?expired=1"
    notice = counter.get(response.headers["location"])
    assert MESSAGES["login.expired"]["ja"] in notice.text


# --- CSRF ----------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    before = container.registry.search(clerk, "スズキ")
    for form in ({}, {"csrf_token": "forged-" + "x" * 40}):
        response = counter.post("/counter/births", {**BIRTH_FORM, **form}, csrf=False)
        assert response.status_code == 403
        assert MESSAGES["error.csrf_failed"]["ja"] in response.text
    assert container.registry.search(clerk, "スズキ") == before
    # With the token the same form goes through.
    assert counter.post("/counter/births", BIRTH_FORM).status_code == 303


def test_login_form_needs_the_csrf_token_too(client: TestClient, container: Container) -> None:
    secret, _ = staff_account(container, "clerk")
    response = client.post("/counter/login", data={
        "username": "clerk", "password": STAFF_PASSWORD, "totp_code": pyotp.TOTP(secret).now()},
        follow_redirects=False)
    assert response.status_code == 403
    assert STAFF_COOKIE not in response.headers.get("set-cookie", "")


# --- search and records --------------------------------------------------------------------


def test_search_is_posted_and_lists_own_residents(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    record = resident(container, clerk)
    resident(container, clerk, family_name="佐藤", family_name_kana="サトウ")

    response = counter.post("/counter", {"q": "やまだ"})
    assert response.status_code == 200
    page = text_of(response.text)
    assert "山田 太郎" in page and record.resident_code in page
    assert "佐藤" not in page
    assert f'href="/counter/residents/{record.id}"' in response.text
    # A search typed into the URL is not run.
    assert "山田 太郎" not in text_of(counter.get("/counter?q=やまだ").text)


def test_search_by_individual_number_is_refused_and_not_echoed(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    record = resident(container, clerk)
    number = container.registry.reveal_number(clerk, record.id, "テスト準備")
    response = counter.post("/counter", {"q": number})
    assert response.status_code == 422
    assert 'class="error"' in response.text
    assert number not in response.text


def test_opening_a_record_needs_a_reason_and_is_recorded(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    record = resident(container, clerk)

    ask = counter.get(f"/counter/residents/{record.id}")
    assert ask.status_code == 200
    assert 'name="reason_kind"' in ask.text
    assert "山田" not in ask.text  # nothing of the record before the reason
    assert audit(container, "registry:resident:read") == []

    missing = counter.post(f"/counter/residents/{record.id}",
                           {"reason_kind": "other", "reason_text": ""})
    assert missing.status_code == 422
    assert "山田" not in missing.text
    assert MESSAGES["field.reason_text"]["ja"] in missing.text

    shown = counter.post(f"/counter/residents/{record.id}", REASON)
    assert shown.status_code == 200
    page = text_of(shown.text)
    # The birth date as a 住民票 writes it: the era, then the Western year.
    for item in ("山田 太郎", "ヤマダ タロウ", "平成2年4月1日（1990年）", record.address,
                 record.resident_code):
        assert item in page
    assert "●●●● ●●●● ●●●●" in page
    assert shown.headers["cache-control"] == "no-store"
    (read,) = audit(container, "registry:resident:read")
    assert (read.actor, read.subject, read.reason) == (
        clerk.actor, f"resident:{record.id}", "証明書交付: 受付番号12")


def test_the_number_is_shown_only_in_the_body_of_the_reveal_post(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    record = resident(container, clerk)
    number = container.registry.reveal_number(clerk, record.id, "テスト準備")

    shown = counter.open_record(record.id)
    assert number not in shown.text
    revealed = counter.post(f"/counter/residents/{record.id}/reveal",
                            {"reason_kind": "identity", "reason_text": "窓口で本人が請求"})
    assert revealed.status_code == 200
    assert f'id="individual-number">{number}<' in revealed.text
    assert number not in str(revealed.url) and "location" not in revealed.headers
    assert revealed.headers["cache-control"] == "no-store"
    reveals = audit(container, "registry:number:reveal")
    assert (reveals[-1].actor, reveals[-1].reason) == (clerk.actor, "本人確認: 窓口で本人が請求")


def test_lookup_by_number_opens_the_record(client: TestClient, container: Container) -> None:
    counter, clerk = logged_in(client, container)
    record = resident(container, clerk)
    number = container.registry.reveal_number(clerk, record.id, "テスト準備")
    response = counter.post("/counter/lookup-by-number",
                            {"individual_number": number, **REASON})
    assert response.status_code == 200
    assert "山田 太郎" in text_of(response.text)
    assert number not in response.text
    unknown = counter.post("/counter/lookup-by-number",
                           {"individual_number": "123456789018", **REASON})
    assert unknown.status_code == 404
    assert "123456789018" not in unknown.text


# --- events --------------------------------------------------------------------------------


def test_a_birth_registered_through_the_form_appears_in_the_search(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    assert counter.get("/counter/births").status_code == 200
    response = counter.post("/counter/births", BIRTH_FORM)
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/counter/residents/\d+\?done=birth&ticket=[\w-]+", location)

    done = counter.get(location)
    assert MESSAGES["done.birth"]["ja"] in done.text
    found = counter.post("/counter", {"q": "スズキ"})
    assert "鈴木 一郎" in text_of(found.text)
    (record,) = container.registry.search(clerk, "スズキイチロウ")
    assert (record.municipality_code, record.numbered) == (SHINJUKU, True)
    assert record.family_name_kana == "スズキ"  # hiragana typed, katakana stored
    record_page = counter.open_record(record.id)
    assert MESSAGES["kind.birth"]["ja"] in text_of(record_page.text)


def test_a_form_error_is_shown_with_its_field_and_keeps_the_other_values(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    future = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    response = counter.post("/counter/births", {**BIRTH_FORM, "birth_date": future})
    assert response.status_code == 422
    box = re.search(r'<div class="error".*?</div>', response.text, re.S)
    assert box is not None
    # The headline names the field typed into; no English detail, no code on a Japanese page.
    assert f"「{MESSAGES['field.birth_date']['ja']}」の入力内容を確認してください" in box.group(0)
    shown = re.sub(r"<[^>]+>", " ", box.group(0))
    assert "birth_date" not in shown and "invalid_resident_data" not in shown
    assert not re.search(r"[A-Za-z]{3,}", shown)
    english = counter.post("/counter/births?lang=en", {**BIRTH_FORM, "birth_date": future})
    assert "is in the future" in english.text
    assert 'value="鈴木"' in response.text and 'value="すずき"' in response.text
    assert f'value="{future}"' not in response.text
    assert container.registry.search(clerk, "スズキ") == []


def test_move_out_and_move_in_at_another_counter(
    client: TestClient, container: Container
) -> None:
    shinjuku, clerk = logged_in(client, container)
    record = resident(container, clerk)
    shinjuku.open_record(record.id)
    moved = shinjuku.post(f"/counter/residents/{record.id}/move-out", {
        "occurred_on": "2025-03-31", "destination_municipality_code": SHIBUYA})
    assert moved.status_code == 303

    shibuya, _ = logged_in(TestClient(client.app), container, "shibuya", SHIBUYA)
    arrival = {**BIRTH_FORM, "family_name": "山田", "given_name": "太郎",
               "family_name_kana": "ヤマダ", "given_name_kana": "タロウ",
               "birth_date": "1990-04-01", "address": "東京都渋谷区宇田川町1番1号",
               "occurred_on": "2025-04-02", "resident_code": record.resident_code}
    arrived = shibuya.post("/counter/move-ins", arrival)
    assert arrived.status_code == 303, arrived.text
    assert arrived.headers["location"].startswith(
        f"/counter/residents/{record.id}?done=move-in&ticket=")
    page = text_of(shibuya.open_record(record.id, {"reason_kind": "move_in",
                                                   "reason_text": ""}).text)
    assert "渋谷区宇田川町" in page
    assert MESSAGES["kind.move_out"]["ja"] in page and MESSAGES["kind.move_in"]["ja"] in page
    assert shinjuku.open_record(record.id).status_code == 403


def test_name_change_through_the_record_page(client: TestClient, container: Container) -> None:
    counter, clerk = logged_in(client, container)
    record = resident(container, clerk)
    counter.open_record(record.id)
    response = counter.post(f"/counter/residents/{record.id}/name-change", {
        "occurred_on": "2025-05-01", "family_name": "佐藤", "given_name": "太郎",
        "family_name_kana": "サトウ", "given_name_kana": "タロウ"})
    assert response.status_code == 303
    page = text_of(counter.open_record(record.id).text)
    assert "佐藤 太郎" in page and "山田 → 佐藤" in page


def test_correction_and_reissue_are_for_supervisors_only(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    record = resident(container, clerk)
    page = counter.open_record(record.id).text
    assert f"/counter/residents/{record.id}/correction" not in page
    assert f"/counter/residents/{record.id}/reissue" not in page
    refused = counter.post(f"/counter/residents/{record.id}/correction",
                           {"given_name": "大郎", "reason": "入力誤り"})
    assert refused.status_code == 403
    assert MESSAGES["error.role_required"]["ja"] in refused.text
    assert container.registry.get_resident(clerk, record.id, "確認").given_name == "太郎"

    boss, _ = logged_in(TestClient(client.app), container, "boss",
                        role=StaffRole.SUPERVISOR)
    assert f"/counter/residents/{record.id}/reissue" in boss.open_record(record.id).text
    before = container.registry.reveal_number(clerk, record.id, "確認")
    assert boss.post(f"/counter/residents/{record.id}/reissue",
                     {"reason": "漏えいのおそれ"}).status_code == 303
    assert container.registry.reveal_number(clerk, record.id, "確認") != before
    assert boss.post(f"/counter/residents/{record.id}/correction",
                     {"given_name": "大郎", "reason": "入力誤り"}).status_code == 303
    assert container.registry.get_resident(clerk, record.id, "確認").given_name == "大郎"


def test_identity_verification_and_letter_handover(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    record = resident(container, clerk)
    number = container.registry.reveal_number(clerk, record.id, "テスト準備")
    (letter,) = container.registry.letters(clerk, record.id)
    url = f"/counter/residents/{record.id}/letters/{letter.id}"
    counter.open_record(record.id)
    for status in ("sent", "returned", "held"):
        assert counter.post(url, {"status": status}).status_code == 303
    refused = counter.post(url, {"status": "handed_over", "verification_id": ""})
    assert refused.status_code == 409
    assert MESSAGES["field.verification_id"]["ja"] in refused.text

    too_weak = counter.post(f"/counter/residents/{record.id}/identity-verification", {
        "purpose": "通知書交付", "individual_number": number,
        "number_confirmation": "notification_letter",
        "identity_documents": ["health_insurance_card"]})
    assert too_weak.status_code == 422
    assert number not in too_weak.text
    assert 'value="通知書交付"' in too_weak.text  # other values kept

    # Another person's (valid) number: recorded as not matching, and the clerk is warned loudly.
    other = container.registry.reveal_number(clerk, resident(container, clerk).id, "テスト準備")
    mismatch = counter.post(f"/counter/residents/{record.id}/identity-verification", {
        "purpose": "通知書交付", "individual_number": other,
        "number_confirmation": "notification_letter",
        "identity_documents": ["health_insurance_card", "pension_book"]})
    assert mismatch.status_code == 303
    assert mismatch.headers["location"].endswith("?done=identity-mismatch")
    warned = counter.get(mismatch.headers["location"])
    assert 'id="number-mismatch"' in warned.text and 'role="alert"' in warned.text
    assert MESSAGES["done.identity-mismatch.title"]["ja"] in warned.text
    assert MESSAGES["done.identity-verification"]["ja"] not in warned.text
    assert other not in warned.text
    (unmatched,) = container.registry.verifications(clerk, record.id)
    assert not unmatched.number_matched

    checked = counter.post(f"/counter/residents/{record.id}/identity-verification", {
        "purpose": "通知書交付", "individual_number": number,
        "number_confirmation": "notification_letter",
        "identity_documents": ["health_insurance_card", "pension_book"]})
    assert checked.status_code == 303
    assert checked.headers["location"].endswith("?done=identity-verification")
    verification = next(v for v in container.registry.verifications(clerk, record.id)
                        if v.number_matched)
    page = text_of(counter.open_record(record.id).text)
    assert MESSAGES["level.low"]["ja"] in page
    handed = counter.post(url, {"status": "handed_over", "verification_id": str(verification.id)})
    assert handed.status_code == 303
    assert container.registry.letters(clerk, record.id)[0].status.value == "handed_over"


# --- jurisdiction --------------------------------------------------------------------------


def test_a_clerk_sees_nothing_of_another_municipality(
    client: TestClient, container: Container
) -> None:
    _, shinjuku_clerk = staff_account(container, "shinjuku")
    record = resident(container, shinjuku_clerk)
    counter, _ = logged_in(client, container, "shibuya", SHIBUYA)

    for query in ("ヤマダ", "山田", record.resident_code):
        page = counter.post("/counter", {"q": query})
        assert page.status_code == 200
        assert "山田 太郎" not in text_of(page.text)
    opened = counter.open_record(record.id)
    assert opened.status_code == 403
    assert "山田" not in opened.text and record.address not in opened.text
    assert MESSAGES["error.outside_jurisdiction"]["ja"] in opened.text
    revealed = counter.post(f"/counter/residents/{record.id}/reveal", REASON)
    assert revealed.status_code == 403
    changed = counter.post(f"/counter/residents/{record.id}/address-change",
                           {"occurred_on": "2025-01-01", "address": "渋谷区1-1"})
    assert changed.status_code == 403
    assert container.registry.get_resident(shinjuku_clerk, record.id, "確認").address == (
        record.address)


# --- language ------------------------------------------------------------------------------

UNTRANSLATED = re.compile(
    r"\b(?:counter|login|search|lookup|reason|record|letters?|verifications|history|event|form"
    r"|lead|done|field|hint|sex|status|kind|confirmation|document|level|error|role|value)"
    r"\.[a-z][a-z_-]+\b"
)


def test_lang_en_switches_the_strings(client: TestClient, container: Container) -> None:
    english = client.get("/counter/login?lang=en")
    assert "Staff login" in english.text and "職員ログイン" not in english.text
    kept = client.get("/counter/login")  # the cookie keeps the choice
    assert "Staff login" in kept.text and "職員ログイン" not in kept.text
    japanese = client.get("/counter/login?lang=ja")
    assert "職員ログイン" in japanese.text


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_counter_string_is_translated(
    client: TestClient, container: Container, lang: str
) -> None:
    counter, clerk = logged_in(client, container, role=StaffRole.SUPERVISOR)
    record = resident(container, clerk)
    counter.get(f"/counter?lang={lang}")
    pages = [
        counter.get("/counter"),
        counter.post("/counter", {"q": "ヤマダ"}),
        counter.get("/counter/births"),
        counter.get("/counter/move-ins"),
        counter.post("/counter/births", {**BIRTH_FORM, "family_name_kana": "suzuki"}),
        counter.get(f"/counter/residents/{record.id}?done=name-change"),
        counter.open_record(record.id),
        counter.post(f"/counter/residents/{record.id}/reveal", REASON),
        counter.get(f"/counter/residents/{record.id}/identity-verification"),
    ]
    for page in pages:
        assert page.status_code in (200, 422)
        assert page.headers["content-type"].startswith("text/html")
        leftovers = UNTRANSLATED.findall(text_of(page.text))
        assert leftovers == [], leftovers
        assert f'<html lang="{lang}">' in page.text


def test_every_message_has_japanese_and_english() -> None:
    for key, texts in MESSAGES.items():
        assert texts.get("ja") and texts.get("en"), key


def test_the_history_names_who_did_it_not_their_code(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    record = resident(container, clerk)
    container.registry.change_address(SYSTEM, record.id, "東京都新宿区歌舞伎町一丁目4番1号",
                                      "1608484", dt.date.today())
    page = counter.open_record(record.id)
    history = re.search(r'<table class="history">.*?</table>', page.text, re.S)
    assert history is not None
    cells = text_of(history.group(0))
    assert clerk.display_name in cells  # the move-in, by the clerk
    assert MESSAGES["actor.system"]["ja"] in cells  # the address change, by the system
    assert "staff:" not in page.text


def test_the_record_shows_the_household_members_and_the_nationality_by_name(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    parent = resident(container, clerk)
    child = container.registry.register_birth(clerk, new_resident(
        given_name="花子", given_name_kana="ハナコ", birth_date=dt.date(2024, 5, 5),
        relationship="子", household_id=parent.household_id), dt.date(2024, 5, 5))
    page = counter.open_record(parent.id)
    household = re.search(r'<table class="household".*?</table>', page.text, re.S)
    assert household is not None
    cells = text_of(household.group(0))
    assert parent.name in cells and child.name in cells and "子" in cells
    assert f'href="/counter/residents/{child.id}"' in household.group(0)
    assert "令和6年5月5日" in cells
    shown = text_of(page.text)
    assert "日本" in shown and " JP " not in shown


def test_search_pages_through_every_result(client: TestClient, container: Container) -> None:
    counter, clerk = logged_in(client, container)
    for i in range(55):
        resident(container, clerk, family_name="検索", family_name_kana="ケンサク",
                 given_name=f"太郎{i}")
    first = counter.post("/counter", {"q": "ケンサク"})
    assert first.status_code == 200
    assert "1～50件目" in first.text and first.text.count("/counter/residents/") == 50
    after = re.search(r'name="after" value="(\d+)"', first.text)
    assert after is not None and 'id="next-page"' in first.text
    second = counter.post("/counter", {"q": "ケンサク", "after": after.group(1), "start": "51"})
    assert "51～55件目" in second.text and second.text.count("/counter/residents/") == 5
    assert 'id="next-page"' not in second.text

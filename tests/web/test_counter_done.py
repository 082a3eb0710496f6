"""The counter after a birth or a move-in (the new record's codes and its 個人番号 for the
notification), the visible 記録番号, and labels rather than codes on the clerk's pages."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffRole
from mynumber.web.i18n import MESSAGES
from tests.conftest import SHIBUYA
from tests.web.test_counter import BIRTH_FORM, REASON, audit, logged_in, resident, text_of

NOTIFICATION = {"reason_kind": "notification", "reason_text": ""}


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def _cell(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert found is not None, element_id
    return found.group(1)


# --- the new record's codes and number (after a birth or a move-in) ------------------------


def test_the_birth_done_page_shows_the_new_codes_and_reveals_the_number_once(
    client: TestClient, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    counter, clerk = logged_in(client, container)
    registered = counter.post("/counter/births", BIRTH_FORM)
    assert registered.status_code == 303
    done = counter.get(registered.headers["location"])
    assert done.status_code == 200
    (record,) = container.registry.search(clerk, "スズキイチロウ")
    number = container.registry.reveal_number(clerk, record.id, "テスト準備")

    assert MESSAGES["done.birth"]["ja"] in done.text
    assert _cell(done.text, "new-record-id") == str(record.id)
    assert _cell(done.text, "new-resident-code") == record.resident_code
    page = text_of(done.text)
    assert MESSAGES["field.record_id"]["ja"] in page and "鈴木 一郎" in page
    assert number not in done.text  # the number only after a reason is given
    assert done.headers["cache-control"] == "no-store"
    # Seeing the new codes is a read, recorded with the procedure as its reason.
    reads = [e for e in audit(container, "registry:resident:read")
             if e.subject == f"resident:{record.id}"]
    assert [e.reason for e in reads] == [MESSAGES["form.birth"]["ja"]]

    form = re.search(r'<form[^>]*id="notification-form".*?</form>', done.text, re.S)
    assert form is not None
    assert f'action="/counter/residents/{record.id}/notification"' in form.group(0)
    assert 'method="post"' in form.group(0) and 'name="csrf_token"' in form.group(0)
    assert 'value="notification" selected' in form.group(0)

    without_token = counter.post(f"/counter/residents/{record.id}/notification", NOTIFICATION,
                                 csrf=False)
    assert without_token.status_code == 403 and number not in without_token.text

    shown = counter.post(f"/counter/residents/{record.id}/notification", NOTIFICATION)
    assert shown.status_code == 200
    assert _cell(shown.text, "individual-number") == number
    assert shown.text.count(number) == 1
    assert _cell(shown.text, "record-id") == str(record.id)
    assert record.resident_code in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert "location" not in shown.headers and number not in str(shown.url)
    reveals = audit(container, "registry:number:reveal")
    assert (reveals[-1].actor, reveals[-1].subject, reveals[-1].reason) == (
        clerk.actor, f"resident:{record.id}", MESSAGES["reason.notification"]["ja"])

    # Shown once: the done page, reloaded, still asks for a reason.
    again = counter.get(registered.headers["location"])
    assert number not in again.text
    assert not any(number in r.getMessage() for r in caplog.records)


def test_a_move_in_done_page_shows_the_codes_from_abroad_and_from_another_town(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    abroad = counter.post("/counter/move-ins", {**BIRTH_FORM, "birth_date": "1990-04-01",
                                                "occurred_on": "2025-04-02"})
    assert abroad.status_code == 303, abroad.text
    done = counter.get(abroad.headers["location"])
    assert MESSAGES["done.move-in"]["ja"] in done.text
    (new,) = container.registry.search(clerk, "スズキイチロウ")
    assert _cell(done.text, "new-resident-code") == new.resident_code
    assert _cell(done.text, "new-record-id") == str(new.id)
    assert 'id="notification-form"' in done.text

    # From another municipality: the same record, its resident code kept.
    shibuya_clerk = logged_in(TestClient(client.app), container, "shibuya", SHIBUYA)[1]
    moving = resident(container, shibuya_clerk, municipality_code=SHIBUYA,
                      address="東京都渋谷区宇田川町1番1号")
    container.registry.register_move_out(shibuya_clerk, moving.id, None, dt.date(2025, 3, 1))
    arrived = counter.post("/counter/move-ins", {
        **BIRTH_FORM, "family_name": "山田", "given_name": "太郎", "family_name_kana": "ヤマダ",
        "given_name_kana": "タロウ", "birth_date": "1990-04-01", "occurred_on": "2025-04-02",
        "resident_code": moving.resident_code})
    assert arrived.status_code == 303, arrived.text
    page = counter.get(arrived.headers["location"])
    assert _cell(page.text, "new-resident-code") == moving.resident_code
    assert _cell(page.text, "new-record-id") == str(moving.id)


def test_the_done_page_shows_nothing_of_the_record_without_its_ticket(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    registered = counter.post("/counter/births", BIRTH_FORM)
    location = registered.headers["location"]
    (record,) = container.registry.search(clerk, "スズキイチロウ")
    ticket = location.split("ticket=")[1]
    other = resident(container, clerk)

    typed = [
        f"/counter/residents/{record.id}?done=birth",  # no ticket
        f"/counter/residents/{record.id}?done=birth&ticket=forged",
        f"/counter/residents/{other.id}?done=birth&ticket={ticket}",  # another record
        f"/counter/residents/{record.id}?done=move-in&ticket={ticket}",  # another procedure
    ]
    assert 'id="new-record"' in counter.get(location).text  # with its ticket, in this session
    colleague, _ = logged_in(TestClient(client.app), container, "colleague")
    before = len(audit(container, "registry:resident:read"))
    for browser, url in [*((counter, u) for u in typed), (colleague, location)]:
        page = browser.get(url)
        assert page.status_code == 200
        assert 'id="new-record"' not in page.text, url
        assert record.resident_code not in page.text and "鈴木" not in page.text, url
        assert 'name="reason_kind"' in page.text  # the ordinary reason form
    assert len(audit(container, "registry:resident:read")) == before


def test_the_notification_needs_a_reason_and_keeps_the_done_page(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    registered = counter.post("/counter/births", BIRTH_FORM)
    counter.get(registered.headers["location"])
    (record,) = container.registry.search(clerk, "スズキイチロウ")
    ticket = registered.headers["location"].split("ticket=")[1]
    number = container.registry.reveal_number(clerk, record.id, "テスト準備")
    reveals = len(audit(container, "registry:number:reveal"))

    refused = counter.post(f"/counter/residents/{record.id}/notification", {
        "reason_kind": "other", "reason_text": "", "done": "birth", "ticket": ticket})
    assert refused.status_code == 422
    assert number not in refused.text
    assert _cell(refused.text, "new-resident-code") == record.resident_code
    box = re.search(r'<form[^>]*id="notification-form".*?</form>', refused.text, re.S)
    assert box is not None and 'class="field invalid"' in box.group(0)
    assert len(audit(container, "registry:number:reveal")) == reveals


# --- the visible record number -------------------------------------------------------------


def test_search_results_and_the_record_show_the_record_number(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    record = resident(container, clerk)
    label = MESSAGES["field.record_id"]["ja"]
    # The proxy form (portal) sends the clerk to this label in the search results.
    assert label in MESSAGES["portal.counter.identity_hint"]["ja"]

    found = counter.post("/counter", {"q": "ヤマダ"})
    header = re.search(r"<thead>.*?</thead>", found.text, re.S)
    assert header is not None and f"<th>{label}</th>" in header.group(0)
    assert f'<td class="code record-id">{record.id}</td>' in found.text

    opened = counter.open_record(record.id)
    assert re.search(rf"<dt>{label}</dt><dd[^>]*>{record.id}</dd>", opened.text)
    form = counter.get(f"/counter/residents/{record.id}/move-out")
    assert f"{label} {record.id}" in text_of(form.text)
    english = counter.post("/counter?lang=en", {"q": "ヤマダ"})
    assert f"<th>{MESSAGES['field.record_id']['en']}</th>" in english.text


# --- labels, not codes ---------------------------------------------------------------------


def test_the_history_shows_sex_dates_and_nationality_by_their_labels(
    client: TestClient, container: Container
) -> None:
    counter, boss = logged_in(client, container, role=StaffRole.SUPERVISOR)
    record = resident(container, boss, nationality="CN", residence_status="留学",
                      postal_code="1638001")
    container.registry.correct(boss, record.id, {
        "sex": "female", "birth_date": "1990-04-02", "nationality": "VN",
        "postal_code": "1600001"}, "誤記")
    page = counter.open_record(record.id)
    history = re.search(r'<table class="history">.*?</table>', page.text, re.S)
    assert history is not None
    cells = text_of(history.group(0))
    assert "性別: 男 → 女" in cells
    assert "生年月日: 平成2年4月1日（1990年） → 平成2年4月2日（1990年）" in cells
    assert "国籍: 中国 → ベトナム" in cells
    assert "郵便番号: 163-8001 → 160-0001" in cells
    for code in ("male", "female", "1990-04-0", " CN ", " VN "):
        assert code not in f" {cells} ", code
    record_items = text_of(page.text.split('<table class="history">')[0])
    assert "国籍 ベトナム" in record_items and " VN " not in record_items


def test_a_moved_out_record_names_its_destination_not_a_code_label(
    client: TestClient, container: Container
) -> None:
    counter, clerk = logged_in(client, container)
    record = resident(container, clerk)
    container.registry.register_move_out(clerk, record.id, SHIBUYA, dt.date(2025, 3, 31))
    page = text_of(counter.open_record(record.id).text)
    assert f"({MESSAGES['field.destination']['ja']}: 東京都渋谷区 ({SHIBUYA}))" in page
    assert MESSAGES["field.destination_municipality_code"]["ja"] not in page.split("届出・処理")[0]


ASCII_WORD = re.compile(r"[A-Za-z][A-Za-z_.:-]+")
# Shown on every page by the shared layout: the language switch and the API link.
LAYOUT_WORDS = {"English", "API"}


def _visible_words(html: str) -> set[str]:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", html, flags=re.S)
    return set(ASCII_WORD.findall(text_of(html))) - LAYOUT_WORDS


def test_the_counter_pages_show_no_english_or_codes_in_japanese(
    client: TestClient, container: Container
) -> None:
    counter, boss = logged_in(client, container, "boss", role=StaffRole.SUPERVISOR)
    counter.client.get("/counter?lang=ja")
    record = resident(container, boss, nationality="CN", residence_status="留学")
    container.registry.change_address(boss, record.id, "東京都新宿区歌舞伎町一丁目4番1号",
                                       "1608484", dt.date(2021, 2, 1))
    container.registry.correct(boss, record.id, {"sex": "female", "nationality": "VN"}, "誤記")
    container.registry.reissue_number(boss, record.id, "漏えいのおそれ")
    born = counter.post("/counter/births", BIRTH_FORM)
    (baby,) = container.registry.search(boss, "スズキイチロウ")
    pages = {
        "search": counter.post("/counter", {"q": "ヤマダ"}),
        "record": counter.open_record(record.id),
        "birth": counter.get("/counter/births"),
        "move-in": counter.get("/counter/move-ins"),
        "done": counter.get(born.headers["location"]),
        "notification": counter.post(f"/counter/residents/{baby.id}/notification",
                                     NOTIFICATION),
        "reveal": counter.post(f"/counter/residents/{record.id}/reveal", REASON),
    }
    for slug in ("move-out", "death", "correction", "address-change", "name-change"):
        pages[slug] = counter.get(f"/counter/residents/{record.id}/{slug}")
    container.registry.register_move_out(boss, record.id, SHIBUYA, dt.date(2025, 3, 31))
    pages["moved-out record"] = counter.open_record(record.id)
    for name, page in pages.items():
        assert page.status_code == 200, name
        assert _visible_words(page.text) <= {"boss"}, name  # "boss さん": the clerk's name

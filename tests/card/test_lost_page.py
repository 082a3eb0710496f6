"""The resident's loss report without a card id (issue 13): the card is named as the
個人番号カードコールセンター names it (フリガナ, 生年月日, and the 住所 or the 個人番号); one
unique match on every item given, else one neutral answer; a 受付番号 and the next steps;
reporting twice (also at once, on real threads) is harmless."""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card import models as m
from mynumber.card import services as card_services
from mynumber.card.interfaces import CardHolderDetails, CardState, LossReportNotMatched
from mynumber.errors import DomainError, InvalidInput
from mynumber.jpki.interfaces import CertificateState
from mynumber.web.i18n import MESSAGES
from tests.card.conftest import PINS, Holder, enrol_smartphone, make_holder
from tests.card.test_services import audit_tags, issue

REFERENCE = re.compile(r"^[0-9]{8}-[0-9]{4}-[0-9]{4}-[0-9]{4}$")
ADDRESS_AS_TYPED = "東京都新宿区西新宿２－８－１"  # the record says 西新宿二丁目8番1号
UNISSUED_NUMBER = "123456789018"  # a valid check digit, issued to nobody here


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def _details(holder: Holder, **changes: object) -> CardHolderDetails:
    values: dict[str, object] = {"name_kana": "やまだ たろう",
                                 "birth_date": holder.resident.birth_date,
                                 "address": ADDRESS_AS_TYPED}
    values.update(changes)
    return CardHolderDetails(**values)  # type: ignore[arg-type]


def _good(container: Container, serial: int | None) -> bool:
    assert serial is not None
    return container.jpki.state(serial) is CertificateState.GOOD


# --- the service ----------------------------------------------------------------------------


def test_the_registry_finds_a_reading_and_birth_date_exactly(
    container: Container, clerk: StaffPrincipal, holder: Holder,
) -> None:
    longer = make_holder(container, clerk, given_name="太郎次", given_name_kana="タロウジ")
    found = container.registry.residents_by_kana_and_birth("ﾔﾏﾀﾞ ﾀﾛｳ", holder.resident.birth_date)
    assert [r.id for r in found] == [holder.resident.id]  # not a prefix search
    assert longer.resident.id not in [r.id for r in found]
    assert container.registry.residents_by_kana_and_birth(
        "ヤマダ タロウ", holder.resident.birth_date + dt.timedelta(days=1)) == []
    assert container.registry.residents_by_kana_and_birth("", holder.resident.birth_date) == []


def test_the_card_is_found_by_its_holder_on_every_item(
    container: Container, clerk: StaffPrincipal, holder: Holder,
) -> None:
    record, _ = issue(container, clerk, holder)
    other = make_holder(container, clerk, family_name="鈴木", family_name_kana="スズキ")
    birth = holder.resident.birth_date
    misses = (
        _details(holder, name_kana="ヤマダ ハナコ"),
        _details(holder, birth_date=birth + dt.timedelta(days=1)),
        _details(holder, address="東京都新宿区西新宿二丁目8番2号"),
        _details(holder, address="", individual_number=UNISSUED_NUMBER),
        _details(holder, address="", individual_number=other.number),  # someone else's
        # Both given: both must match (the right address does not carry a wrong number).
        _details(holder, individual_number=other.number),
    )
    refusals = []
    for details in misses:
        with pytest.raises(LossReportNotMatched) as info:
            container.card.report_lost_by_holder(details)
        refusals.append((info.value.code, info.value.status, info.value.detail,
                         info.value.field))
    assert len(set(refusals)) == 1, refusals  # one answer whatever did not match
    assert container.card.card(record.card_id).state is CardState.ACTIVE
    assert _good(container, record.signing_serial) and _good(container, record.auth_serial)
    assert "individual_number" not in repr(_details(holder, individual_number=holder.number))
    assert holder.number not in repr(_details(holder, individual_number=holder.number))

    report = container.card.report_lost_by_holder(_details(holder))
    assert report.card_id == record.card_id and report.state is CardState.SUSPENDED
    assert set(report.revoked_serials) == {record.signing_serial, record.auth_serial}
    assert REFERENCE.match(report.reference), report.reference
    assert record.card_id not in report.reference
    [suspended] = audit_tags(container, "card:card:suspend")
    assert suspended.details["reference"] == report.reference
    assert suspended.details["channel"] == "web"
    # Nothing the person typed is in the card context's records of the refused reports.
    unmatched = audit_tags(container, "card:loss:unmatched")
    assert len(unmatched) == len(misses)
    for event in unmatched:
        text = repr((event.subject, event.reason, event.details))
        assert other.number not in text and UNISSUED_NUMBER not in text and "西新宿" not in text


def test_the_number_alone_or_with_the_address(container: Container, clerk: StaffPrincipal,
                                              holder: Holder) -> None:
    record, _ = issue(container, clerk, holder)
    spaced = f"{holder.number[:4]} {holder.number[4:8]} {holder.number[8:]}"
    report = container.card.report_lost_by_holder(
        _details(holder, address="", individual_number=spaced), channel="call_centre")
    assert report.state is CardState.SUSPENDED and report.card_id == record.card_id
    again = container.card.report_lost_by_holder(
        _details(holder, individual_number=holder.number))
    assert again.state is CardState.SUSPENDED and again.revoked_serials == ()


def test_several_matches_are_refused_like_none(container: Container, clerk: StaffPrincipal,
                                               holder: Holder) -> None:
    # Same reading, birth date and address, other kanji: one household's 太郎 and 太朗.
    namesake = make_holder(container, clerk, given_name="太朗")
    first, _ = issue(container, clerk, holder)
    second, _ = issue(container, clerk, namesake)
    with pytest.raises(LossReportNotMatched) as several:
        container.card.report_lost_by_holder(_details(holder))
    with pytest.raises(LossReportNotMatched) as none:
        container.card.report_lost_by_holder(_details(holder, name_kana="ヤマダ ジロウ"))
    assert several.value.detail == none.value.detail
    assert several.value.status == none.value.status
    for card in (first, second):
        assert container.card.card(card.card_id).state is CardState.ACTIVE
    # The number tells the two apart: only that holder's card.
    report = container.card.report_lost_by_holder(
        _details(holder, individual_number=namesake.number))
    assert report.card_id == second.card_id
    assert container.card.card(first.card_id).state is CardState.ACTIVE


def test_more_namesakes_than_are_read_are_several(
    container: Container, clerk: StaffPrincipal, holder: Holder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the read limit the address or the number never narrows to one: the holder may be
    among those not read. (The limit is lowered here instead of registering 51 namesakes.)"""
    record, _ = issue(container, clerk, holder)
    make_holder(container, clerk, given_name="太朗", address="東京都新宿区西新宿一丁目1番1号")
    monkeypatch.setattr(card_services, "HOLDER_CANDIDATES", 1)
    for details in (_details(holder), _details(holder, individual_number=holder.number)):
        with pytest.raises(LossReportNotMatched):
            container.card.report_lost_by_holder(details)
    assert container.card.card(record.card_id).state is CardState.ACTIVE
    assert [e.details["several"] for e in audit_tags(container, "card:loss:unmatched")] == [
        True, True]
    monkeypatch.setattr(card_services, "HOLDER_CANDIDATES", 2)
    assert container.card.report_lost_by_holder(_details(holder)).card_id == record.card_id


def test_only_a_current_card_is_named(container: Container, clerk: StaffPrincipal,
                                      holder: Holder) -> None:
    with pytest.raises(LossReportNotMatched):  # no card at all
        container.card.report_lost_by_holder(_details(holder))
    old, _ = issue(container, clerk, holder)
    container.card.report_lost_by_holder(_details(holder))
    new, _ = container.card.reissue(clerk, old.card_id, holder.check(), PINS)
    # The old card is revoked; the report now names the new card only.
    report = container.card.report_lost_by_holder(_details(holder))
    assert report.card_id == new.card_id and report.state is CardState.SUSPENDED
    assert container.card.card(old.card_id).state is CardState.REVOKED
    with container.databases.unit_of_work("card") as session:
        row = session.get(m.Card, new.card_id)
        assert row is not None
        row.state, row.expires_on = "active", dt.date.today() - dt.timedelta(days=1)
    with pytest.raises(LossReportNotMatched):  # expired: nothing to suspend
        container.card.report_lost_by_holder(_details(holder))


@pytest.mark.parametrize(("changes", "field"), [
    ({"address": "", "individual_number": ""}, "address"),
    ({"individual_number": "123456789012"}, "individual_number"),  # wrong check digit
    ({"individual_number": "12345"}, "individual_number"),
    ({"name_kana": "山田 太郎"}, "name_kana"),
    ({"name_kana": "  "}, "name_kana"),
])
def test_input_errors_name_the_field(container: Container, clerk: StaffPrincipal,
                                     holder: Holder, changes: dict[str, str],
                                     field: str) -> None:
    record, _ = issue(container, clerk, holder)
    with pytest.raises(InvalidInput) as info:
        container.card.report_lost_by_holder(_details(holder, **changes))
    assert not isinstance(info.value, LossReportNotMatched)
    assert info.value.field == field
    assert container.card.card(record.card_id).state is CardState.ACTIVE


def test_a_smartphone_reported_by_its_holder(container: Container, clerk: StaffPrincipal,
                                             holder: Holder) -> None:
    record, chip = issue(container, clerk, holder)
    phone = enrol_smartphone(container, record.card_id, chip)
    report = container.card.report_lost_by_holder(_details(holder), smartphone=True)
    assert report.state is CardState.ACTIVE and REFERENCE.match(report.reference)
    assert set(report.revoked_serials) == {phone.signing_serial, phone.auth_serial}
    assert _good(container, record.auth_serial)
    again = container.card.report_lost_by_holder(_details(holder), smartphone=True)
    assert again.revoked_serials == () and again.reference != report.reference
    assert container.card.card(record.card_id).state is CardState.ACTIVE


def test_reporting_twice_is_harmless(container: Container, clerk: StaffPrincipal,
                                     holder: Holder) -> None:
    record, _ = issue(container, clerk, holder)
    first = container.card.report_lost_by_holder(_details(holder))
    second = container.card.report_lost_by_holder(_details(holder))
    by_id = container.card.report_lost(record.card_id, "ヤマダ タロウ",
                                       holder.resident.birth_date, "api")
    for again in (second, by_id):
        assert again.state is CardState.SUSPENDED and again.revoked_serials == ()
        assert REFERENCE.match(again.reference) and again.reference != first.reference
    assert len(audit_tags(container, "card:card:suspend")) == 1
    assert len(audit_tags(container, "card:loss:repeat")) == 2
    assert container.card.card(record.card_id).state is CardState.SUSPENDED


def test_two_reports_at_once_suspend_once(container: Container, clerk: StaffPrincipal,
                                          holder: Holder) -> None:
    """Real threads: both callers are told the card is suspended; the card is suspended and
    each certificate revoked once, one report recorded as the suspension, the other as a
    repeat."""
    record, _ = issue(container, clerk, holder)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def report() -> None:
        barrier.wait()
        try:
            results.append(container.card.report_lost_by_holder(_details(holder)))
        except DomainError as exc:  # pragma: no cover - a failure to report
            results.append(exc)

    threads = [threading.Thread(target=report) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2 and not [r for r in results if isinstance(r, DomainError)]
    revoked = [s for r in results for s in r.revoked_serials]  # type: ignore[attr-defined]
    assert sorted(revoked) == sorted([record.signing_serial, record.auth_serial])
    assert {r.state for r in results} == {CardState.SUSPENDED}  # type: ignore[attr-defined]
    assert len(audit_tags(container, "card:card:suspend")) == 1
    assert len(audit_tags(container, "card:loss:repeat")) == 1
    assert container.card.card(record.card_id).state is CardState.SUSPENDED


def test_two_smartphone_reports_at_once_revoke_once(
    container: Container, clerk: StaffPrincipal, holder: Holder,
) -> None:
    record, chip = issue(container, clerk, holder)
    phone = enrol_smartphone(container, record.card_id, chip)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def report() -> None:
        barrier.wait()
        try:
            results.append(container.card.report_lost_by_holder(_details(holder),
                                                                smartphone=True))
        except DomainError as exc:  # pragma: no cover - a failure to report
            results.append(exc)

    threads = [threading.Thread(target=report) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2 and not [r for r in results if isinstance(r, DomainError)]
    revoked = [s for r in results for s in r.revoked_serials]  # type: ignore[attr-defined]
    assert sorted(revoked) == sorted([phone.signing_serial, phone.auth_serial])
    with container.databases.unit_of_work("jpki") as session:
        from mynumber.jpki import models as jm
        events = session.scalars(select(jm.AuditEvent).where(
            jm.AuditEvent.tag == "jpki:certificate:revoke")).all()
        subjects = [e.subject for e in events]
    assert sorted(subjects) == sorted(f"certificate:{s}" for s in revoked)  # each once
    assert len(audit_tags(container, "card:loss:smartphone")) == 2
    assert container.card.card(record.card_id).state is CardState.ACTIVE


# --- the page -------------------------------------------------------------------------------


def _token(client: TestClient) -> str:
    page = client.get("/card/lost")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _post(client: TestClient, **form: str) -> str:
    response = client.post("/card/lost", data={**form, "csrf_token": _token(client)})
    return f"{response.status_code}\n{response.text}"


def _error_box(html: str) -> str:
    found = re.search(r'<div class="error".*?</div>', html, re.S)
    assert found is not None, html
    return found.group(0)


def test_the_page_asks_for_what_the_card_shows(client: TestClient) -> None:
    page = client.get("/card/lost").text
    assert 'name="card_id"' not in page and "カードID" not in page
    for name in ("name_kana", "birth_date", "address", "individual_number"):
        assert f'name="{name}"' in page
    assert "氏名（フリガナ）" in page and "住所（カードの表面に記載のとおり）" in page
    assert 'name="individual_number" type="password"' in page


def test_the_done_page_gives_a_reference_and_the_next_steps(
    client: TestClient, container: Container, clerk: StaffPrincipal, holder: Holder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record, _ = issue(container, clerk, holder)
    form = {"name_kana": "ヤマダ タロウ", "birth_date": holder.resident.birth_date.isoformat()}
    caplog.set_level(logging.DEBUG)

    wrong_number = _post(client, **form, individual_number=UNISSUED_NUMBER,
                         address="東京都新宿区西新宿二丁目8番2号")
    assert wrong_number.startswith("422")
    assert UNISSUED_NUMBER not in wrong_number  # never echoed back
    assert 'value="東京都新宿区西新宿二丁目8番2号"' in wrong_number  # the rest is kept
    nobody = _post(client, **{**form, "name_kana": "ヤマダ ハナコ"},
                   address=holder.resident.address)
    assert _error_box(nobody) == _error_box(wrong_number)  # the same neutral answer
    assert MESSAGES["card.lost.error.loss_report_not_matched"]["ja"] in nobody
    neither = _post(client, **form)
    assert neither.startswith("422") and "住所か個人番号のどちらかを入力してください" in neither
    assert container.card.card(record.card_id).state is CardState.ACTIVE

    done = _post(client, **form, address=ADDRESS_AS_TYPED, individual_number=holder.number)
    assert done.startswith("200"), done
    assert container.card.card(record.card_id).state is CardState.SUSPENDED
    assert holder.number not in done and record.card_id not in done
    shown = re.search(r'id="lost-reference">([^<]+)<', done)
    assert shown is not None and REFERENCE.match(shown.group(1))
    [suspended] = audit_tags(container, "card:card:suspend")
    assert suspended.details["reference"] == shown.group(1)
    for key in ("card.lost.received", "card.lost.done", "card.lost.reference",
                "card.lost.next.police", "card.lost.next.found", "card.lost.next.reissue"):
        assert MESSAGES[key]["ja"] in done, key
    assert "受理番号" in done and "一時利用停止の解除" in done and "本人確認" in done
    assert 'href="/portal"' in done and 'href="/"' in done
    for path in ("/portal", "/"):
        assert client.get(path).status_code == 200

    again = _post(client, **form, address=holder.resident.address)
    assert again.startswith("200")  # harmless: the same done page, a new reference
    second = re.search(r'id="lost-reference">([^<]+)<', again)
    assert second is not None and second.group(1) != shown.group(1)

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert holder.number not in logged and UNISSUED_NUMBER not in logged


def test_the_done_page_in_english_for_a_smartphone(
    client: TestClient, container: Container, clerk: StaffPrincipal, holder: Holder,
) -> None:
    record, chip = issue(container, clerk, holder)
    enrol_smartphone(container, record.card_id, chip)
    client.cookies.set("lang", "en")
    done = _post(client, name_kana="やまだたろう", device="smartphone",
                 birth_date=holder.resident.birth_date.isoformat(), address=ADDRESS_AS_TYPED)
    assert done.startswith("200"), done
    assert '<html lang="en">' in done
    for key in ("card.lost.done_smartphone", "card.lost.reference", "card.lost.next",
                "card.lost.next.phone_new", "card.lost.next.card_too"):
        assert MESSAGES[key]["en"] in html.unescape(done), key
    assert container.card.card(record.card_id).state is CardState.ACTIVE


def test_the_api_keeps_the_card_id(client: TestClient, container: Container,
                                   clerk: StaffPrincipal, holder: Holder) -> None:
    record, _ = issue(container, clerk, holder)
    ok = client.post("/api/v1/card/loss-reports", json={
        "card_id": record.card_id, "name_kana": "ヤマダ タロウ",
        "birth_date": holder.resident.birth_date.isoformat()})
    assert ok.status_code == 200, ok.text
    assert ok.json()["state"] == "suspended"
    with container.databases.unit_of_work("card") as session:
        events = session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.tag == "card:card:suspend")).all()
        assert [e.details["channel"] for e in events] == ["api"]

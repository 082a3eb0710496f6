"""The portal's HTML pages as a resident uses them: login through the embedded virtual card
reader, PINs, logout and shared terminals, わたしの情報, やりとり履歴 with verification, the
児童手当 現況届 both with and without the number, English, CSRF; and the counter page where
staff register proxies."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.chip import PinKind
from mynumber.errors import InvalidInput, NotAuthenticated
from mynumber.network.interfaces import mayor_lookup
from mynumber.portal import models as portal_models
from mynumber.portal import views as portal_views
from mynumber.portal.interfaces import (
    CHILD_ALLOWANCE_TASK,
    PORTAL_AGENCY,
    SESSION_COOKIE,
    NoticeState,
    ProxyKind,
)
from tests.conftest import SHIBUYA
from tests.portal.conftest import AUTH_PIN, JPEG, PDF, PNG, CardHolder, issue_card_holder
from tests.web.test_counter import logged_in

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


class Browser:
    """A browser on the portal: keeps cookies and the last page's CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.token = ""
        self.last: Any = None

    def _seen(self, response: Any) -> Any:
        found = CSRF.search(response.text)
        if found:
            self.token = html.unescape(found.group(1))
        self.last = response
        return response

    def get(self, url: str, **kwargs: Any) -> Any:
        return self._seen(self.client.get(url, follow_redirects=False, **kwargs))

    def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
             files: list[tuple[str, tuple[str, bytes, str]]] | None = None) -> Any:
        """``files``: (input name, (file name, bytes, declared type)); sent as
        multipart/form-data as a browser does."""
        body = dict(data or {})
        if csrf:
            body["csrf_token"] = self.token
        return self._seen(self.client.post(url, data=body, files=files,
                                           follow_redirects=False))

    def follow(self, response: Any) -> Any:
        assert response.status_code == 303, response.text
        return self.get(response.headers["location"])

    def reader_login(self, holder: CardHolder, pin: str = AUTH_PIN, next_path: str = "") -> Any:
        login = self.get("/portal/login" + (f"?next={next_path}" if next_path else ""))
        assert login.status_code == 200, login.text
        link = re.search(r'id="use-reader" href="([^"]+)"', login.text)
        assert link, login.text
        reader = self.get(html.unescape(link.group(1)))
        assert reader.status_code == 200, reader.text
        assert holder.card_id in reader.text
        form = {name: html.unescape(value) for name, value in re.findall(
            r'<input type="hidden" name="(challenge_id|challenge|next)" value="([^"]*)"',
            reader.text)}
        return self.post("/portal/reader", {**form, "card_id": holder.card_id, "pin": pin})

    def session_token(self) -> str:
        return self.client.cookies.get(SESSION_COOKIE) or ""


def holder_data(container: Container, holder: CardHolder) -> str:
    """The holder's 新宿区 (the mayor) holds their 住民票関係情報, tax and 児童手当 data."""
    mayor = mayor_lookup(container.network.agencies())(holder.resident.municipality_code)
    assert mayor is not None
    container.agencies.ensure_registered(mayor)
    address = f"A{holder.resident.id:012d}"
    container.agencies.enrol_person(mayor, address, holder.number)
    r = holder.resident
    container.agencies.put_copy(mayor, address, "resident_record", {
        "name": r.name, "name_kana": r.name_kana, "birth_date": r.birth_date.isoformat(),
        "sex": r.sex.value, "address": r.address,
        "household": [{"name": "山田 花子", "birth_date": "2018-05-05", "relationship": "子"}],
        "household_relationship": "世帯主", "municipality_code": r.municipality_code,
    })
    container.agencies.put_copy(mayor, address, "local_tax", {
        "fiscal_year": 2024, "taxable_income": 4_200_000, "municipal_tax": 420_000,
        "exempt": False})
    container.agencies.put_copy(mayor, address, "child_allowance", {
        "status": "receiving", "children": 1, "monthly_amount": 10_000})
    return address


def required_files() -> list[tuple[str, tuple[str, bytes, str]]]:
    """A file for each document the 現況届 without the number needs."""
    return [("document_tax_certificate", ("課税証明書.pdf", PDF, "application/pdf")),
            ("document_health_insurance_copy", ("hoken.png", PNG, "image/png")),
            ("document_child_resident_record", ("juminhyo.jpg", JPEG, "image/jpeg"))]


@pytest.fixture
def browser(client: TestClient) -> Browser:
    return Browser(client)


def test_login_through_the_virtual_reader_shows_the_portal_and_logout_kills_the_session(
    container: Container, browser: Browser, card_holder: CardHolder
) -> None:
    landing = browser.get("/portal")
    assert landing.status_code == 200
    # The 24-hour loss report is one click away from the portal and from the site's home.
    assert 'href="/card/lost"' in landing.text
    assert 'href="/card/lost"' in browser.get("/").text
    assert 'href="/portal/login"' in landing.text and 'id="logout"' not in landing.text
    assert landing.headers["cache-control"] == "no-store"

    done = browser.reader_login(card_holder)
    assert done.status_code == 303 and done.headers["location"] == "/portal"
    cookie = done.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower() and "path=/" in cookie.lower()
    token = browser.session_token()
    assert container.portal.session(token).account_id > 0

    home = browser.follow(done)
    assert home.status_code == 200
    for label in ("わたしの情報", "やりとり履歴", "お知らせ", "連携中のサービス", "ログアウト"):
        assert label in home.text
    assert card_holder.number not in home.text
    assert AUTH_PIN not in home.text  # never echoed (nor anything like it)
    # Greeted by name from the first login (利用者登録), not as （氏名未取得）.
    assert f"{card_holder.resident.name} さん、ようこそ。" in home.text

    out = browser.post("/portal/logout")
    assert out.status_code == 200
    assert "ログアウトしました。共用端末ではブラウザを閉じてください。" in out.text
    with pytest.raises(NotAuthenticated):
        container.portal.session(token)

    # The old cookie, replayed, no longer opens anything: back to the login page, told why.
    browser.client.cookies.set(SESSION_COOKIE, token)
    again = browser.get("/portal/history")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/portal/login?expired=1")
    assert SESSION_COOKIE in again.headers.get("set-cookie", "")  # deleted
    login = browser.follow(again)
    assert 'id="session-ended"' in login.text


def test_a_wrong_pin_counts_down_on_the_card_and_is_never_echoed(
    container: Container, browser: Browser, card_holder: CardHolder
) -> None:
    first = browser.reader_login(card_holder, pin="9999")
    assert first.status_code == 422
    assert "あと 2 回" in first.text and 'id="wrong-pin"' in first.text
    assert "9999" not in first.text
    assert not browser.session_token()
    # The count-down is on the chip as saved in the store (it persists).
    assert container.card.open_card(card_holder.card_id).remaining_tries(PinKind.USER_AUTH) == 2

    stranger = browser.post("/portal/reader", {"card_id": "00000000DEADBEEF", "pin": AUTH_PIN,
                                               "challenge_id": "x", "challenge": "00" * 32})
    assert stranger.status_code == 404 and "reader_card_not_found" in stranger.text
    browser.reader_login(card_holder, pin="9998")
    locked = browser.reader_login(card_holder, pin="9997")
    assert locked.status_code == 403 and 'id="pin-locked"' in locked.text
    assert "窓口" in locked.text
    # Even the right PIN does nothing now.
    still = browser.reader_login(card_holder)
    assert still.status_code == 403 and not browser.session_token()


def test_a_second_login_on_the_same_terminal_never_shows_the_first_person(
    container: Container, client: TestClient, clerk: StaffPrincipal
) -> None:
    alice = issue_card_holder(container, clerk, family_name="佐藤", given_name="花子",
                              family_name_kana="サトウ", given_name_kana="ハナコ")
    bob = issue_card_holder(container, clerk, family_name="鈴木", given_name="次郎",
                            family_name_kana="スズキ", given_name_kana="ジロウ")
    holder_data(container, alice)
    holder_data(container, bob)
    terminal = Browser(client)
    terminal.follow(terminal.reader_login(alice))
    terminal.get("/portal/info")
    fetched = terminal.post("/portal/info", {"scope": "basic_four"})
    assert fetched.status_code == 200, fetched.text
    assert "佐藤" in terminal.get("/portal").text
    alice_token = terminal.session_token()

    # Bob logs in on the same browser without Alice logging out.
    terminal.follow(terminal.reader_login(bob))
    bob_token = terminal.session_token()
    assert bob_token and bob_token != alice_token
    with pytest.raises(NotAuthenticated):
        container.portal.session(alice_token)
    for path in ("/portal", "/portal/history", "/portal/activities", "/portal/info"):
        page = terminal.get(path)
        assert page.status_code == 200, (path, page.text)
        assert "佐藤" not in page.text and "花子" not in page.text, path
    history = terminal.get("/portal/history")
    assert "data-serial" not in history.text  # Bob has no exchanges; Alice's are not shown
    terminal.post("/portal/info", {"scope": "basic_four"})
    assert "鈴木" in terminal.get("/portal").text


def test_history_lists_the_exchange_and_verify_checks_it_against_the_signed_log(
    container: Container, browser: Browser, card_holder: CardHolder
) -> None:
    holder_data(container, card_holder)
    browser.follow(browser.reader_login(card_holder))
    browser.get("/portal/info")
    fetched = browser.post("/portal/info", {"scope": "income"})
    assert fetched.status_code == 200, fetched.text
    assert 'data-outcome="provided"' in fetched.text
    assert "4,200,000" in fetched.text  # an amount, grouped
    data = re.search(r'id="data">(.*?)</td>', fetched.text, re.S)
    assert data is not None
    labels = [html.unescape(x) for x in re.findall(r"<dt>([^<]+)</dt>", data.group(1))]
    # In the order a person reads them (課税所得, then 住民税), not that of the English keys.
    assert labels.index("課税所得（円）") < labels.index("住民税額（円）"), labels
    serial = re.search(r'id="serial">([^<]+)<', fetched.text).group(1)  # type: ignore[union-attr]
    container.network_log.integrate()

    history = browser.get("/portal/history")
    row = re.search(rf'<tr data-serial="{re.escape(serial)}".*?</tr>', history.text, re.S)
    assert row, history.text
    cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
             for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)]
    assert cells[1] == container.network.agency(PORTAL_AGENCY).name  # the requester
    verified = browser.post(f"/portal/history/{serial}/verify")
    assert verified.status_code == 200, verified.text
    assert 'data-verified="true"' in verified.text and "検証成功" in verified.text
    head = container.network_log.latest_head()
    assert f'id="tree-size">{head.size}<' in verified.text
    assert f'<dd class="code hash">{head.root_hash.hex()}</dd>' in verified.text

    unknown = browser.post("/portal/history/NOPE-0000/verify")
    assert unknown.status_code == 404 and "access_record_not_found" in unknown.text
    assert "Traceback" not in unknown.text


def _notice(container: Container, holder: CardHolder) -> int:
    """新宿区 asks the holder for the 児童手当 現況届 through the portal."""
    mayor = mayor_lookup(container.network.agencies())(holder.resident.municipality_code)
    assert mayor is not None
    address = holder_data(container, holder)
    code = container.agencies.agency_code(mayor, address)
    notice = container.portal.send_notice(
        mayor, code, "child_allowance_status_report", "児童手当 現況届のご案内",
        "現況届を提出してください。")
    return notice.notice_id


@pytest.mark.parametrize("use_number", [True, False])
def test_the_child_allowance_report_is_completed_with_or_without_the_number(
    container: Container, browser: Browser, card_holder: CardHolder, use_number: bool
) -> None:
    notice_id = _notice(container, card_holder)
    browser.follow(browser.reader_login(card_holder))
    home = browser.get("/portal")
    assert 'id="unread">1<' in home.text
    notice = browser.get(f"/portal/notices/{notice_id}")
    assert notice.status_code == 200 and 'id="answer"' in notice.text
    choice = browser.get(f"/portal/applications/child-allowance?notice_id={notice_id}")
    assert "マイナンバーを利用して情報を取得する（添付書類不要）" in choice.text
    assert "マイナンバーを利用しない（書類を添付）" in choice.text
    assert "拒否" in choice.text  # declining is said never to be a reason for refusal
    assert 'action="/portal/applications/child-allowance/start"' in choice.text
    assert 'method="get"' not in choice.text  # the choice is POSTed, with the CSRF token

    start = {"notice_id": str(notice_id), "use_number": "yes" if use_number else "no"}
    assert browser.post("/portal/applications/child-allowance/start", start,
                        csrf=False).status_code == 403
    form = browser.post("/portal/applications/child-allowance/start", start)
    assert form.status_code == 200, form.text
    assert 'id="mark-read"' not in browser.get(f"/portal/notices/{notice_id}").text  # read now
    fields: dict[str, Any] = {
        name: html.unescape(value) for name, value in re.findall(
            r'<input (?:id="[^"]*" )?name="([a-z_0-9]+)" type="(?:text|hidden|date)"'
            r'[^>]*?value="([^"]*)"', form.text)}
    fields.update(notice_id=str(notice_id), use_number="yes" if use_number else "no")
    if use_number:
        assert fields["applicant_name"]  # filled in from the network
        assert fields["taxable_income"] == "4200000"
    else:
        assert not fields.get("taxable_income")
        fields.update(applicant_name=card_holder.resident.name,
                      address=card_holder.resident.address, taxable_income="4200000",
                      child_name_0="山田 花子", child_birth_date_0="2018-05-05")
        # Without the number the documents are needed: the form says so and keeps the rest.
        missing = browser.post("/portal/applications/child-allowance", fields)
        assert missing.status_code == 422 and 'id="documents"' in missing.text
        assert card_holder.resident.address in missing.text
        assert 'enctype="multipart/form-data"' in form.text
        assert 'type="file"' in form.text and 'type="checkbox"' not in form.text
    if use_number:
        assert 'type="file"' not in form.text  # with the number nothing is attached
    done = browser.post("/portal/applications/child-allowance", fields,
                        files=None if use_number else required_files())
    assert done.status_code == 200, done.text
    assert 'id="application-done"' in done.text
    number = re.search(r'id="application-number">([^<]+)<', done.text)
    assert number and number.group(1).strip()
    assert f'data-uses-number="{"yes" if use_number else "no"}"' in done.text
    (application,) = container.portal.applications(
        container.portal.session(browser.session_token()))
    assert application.uses_number is use_number
    assert str(application.application_id) == number.group(1).strip()
    assert application.kind == "child_allowance_status_report"
    assert CHILD_ALLOWANCE_TASK  # the municipality's task the answer goes to
    again = browser.get(f"/portal/notices/{notice_id}")
    assert "回答済み" in again.text and 'id="answer"' not in again.text
    # The choice page of an answered notice offers no way to answer again.
    choice_again = browser.get(f"/portal/applications/child-allowance?notice_id={notice_id}")
    assert 'id="already-answered"' in choice_again.text
    assert 'id="use-number"' not in choice_again.text and 'id="no-number"' not in choice_again.text


def test_the_report_without_the_number_keeps_its_children_needs_one_and_reads_yen(
    container: Container, browser: Browser, card_holder: CardHolder
) -> None:
    """Issue 13: after any error the children typed stay on the page; a report with no child
    is refused and nothing is recorded; ３８５万円 is read as 3,850,000 yen."""
    notice_id = _notice(container, card_holder)
    browser.follow(browser.reader_login(card_holder))
    start = {"notice_id": str(notice_id), "use_number": "no"}
    assert browser.post("/portal/applications/child-allowance/start", start).status_code == 200
    documents = required_files()
    fields: dict[str, Any] = {
        **start, "applicant_name": card_holder.resident.name, "address": "",
        "taxable_income": "３８５万円", "child_name_0": "山田 花子",
        "child_birth_date_0": "2018-05-05", "child_name_1": "山田 次郎",
        "child_birth_date_1": "2020-07-07", "child_name_2": "", "child_birth_date_2": ""}
    session = container.portal.session(browser.session_token())
    missing = browser.post("/portal/applications/child-allowance", fields,
                           files=documents)  # no address
    assert missing.status_code == 422
    assert 'value="山田 花子"' in missing.text and 'value="山田 次郎"' in missing.text
    assert 'value="2020-07-07"' in missing.text

    no_child = {**fields, "address": card_holder.resident.address, "child_name_0": "",
                "child_birth_date_0": "", "child_name_1": "", "child_birth_date_1": ""}
    refused = browser.post("/portal/applications/child-allowance", no_child, files=documents)
    assert refused.status_code == 422
    assert "「監護している児童」の入力内容を確認してください" in refused.text
    assert container.portal.applications(session) == []

    done = browser.post("/portal/applications/child-allowance",
                        {**fields, "address": card_holder.resident.address}, files=documents)
    assert done.status_code == 200, done.text
    (application,) = container.portal.applications(session)
    assert application.data["taxable_income"] == 3_850_000
    assert [c["name"] for c in application.data["children"]] == ["山田 花子", "山田 次郎"]
    # 申請状況: the resident finds it, in Japanese, from the navigation.
    listed = browser.get("/portal/applications")
    assert 'href="/portal/applications"' in listed.text
    row = re.search(r'<tr data-application=.*?</tr>', listed.text, re.S)
    assert row is not None
    cells = re.sub(r"<[^>]+>", " ", row.group(0))
    for shown in ("児童手当 現況届", "受付済み", "マイナンバーを利用しない"):
        assert shown in cells
    assert not re.search(r"[a-z]{3,}_[a-z]", cells)  # no code such as child_allowance_...


def test_a_get_neither_marks_a_notice_read_nor_fetches_through_the_network(
    container: Container, browser: Browser, card_holder: CardHolder
) -> None:
    notice_id = _notice(container, card_holder)
    browser.follow(browser.reader_login(card_holder))
    session = container.portal.session(browser.session_token())

    def state() -> NoticeState:
        (found,) = [n for n in container.portal.notices(session) if n.notice_id == notice_id]
        return found.state

    page = browser.get(f"/portal/notices/{notice_id}")
    assert page.status_code == 200 and 'id="mark-read"' in page.text
    assert state() is NoticeState.UNREAD
    # The old link with the choice in the query: only the choice page again, nothing fetched.
    for choice in ("yes", "no"):
        again = browser.get(f"/portal/applications/child-allowance?notice_id={notice_id}"
                            f"&use_number={choice}")
        assert again.status_code == 200, again.text
        assert 'id="use-number"' in again.text and 'name="applicant_name"' not in again.text
    assert container.portal.history(session) == []
    assert state() is NoticeState.UNREAD
    assert 'id="unread">1<' in browser.get("/portal").text
    # A GET on the start page (the language link) goes back to the notices.
    back = browser.get("/portal/applications/child-allowance/start?lang=en")
    assert back.status_code == 303 and back.headers["location"] == "/portal/notices?lang=en"

    browser.get(f"/portal/notices/{notice_id}")
    forged = browser.post(f"/portal/notices/{notice_id}/read", csrf=False)
    assert forged.status_code == 403 and state() is NoticeState.UNREAD
    marked = browser.post(f"/portal/notices/{notice_id}/read")
    assert marked.status_code == 303
    assert marked.headers["location"] == f"/portal/notices/{notice_id}"
    assert state() is NoticeState.READ
    shown = browser.follow(marked)
    assert "既読" in shown.text and 'id="mark-read"' not in shown.text
    assert browser.post("/portal/notices/999999/read").status_code == 404


def test_times_are_shown_in_japan_time_in_each_languages_style(
    container: Container, browser: Browser, card_holder: CardHolder
) -> None:
    """Stored in UTC, read in Japan time: 23:30 UTC on 6 December is 08:30 on the 7th."""
    notice_id = _notice(container, card_holder)
    with container.databases.engine("portal").begin() as conn:
        notices = portal_models.NoticeRow
        conn.execute(update(notices).where(notices.id == notice_id).values(
            created_at=dt.datetime(2026, 12, 6, 23, 30, tzinfo=dt.UTC)))
    browser.follow(browser.reader_login(card_holder))
    page = browser.get("/portal/notices")
    assert "2026年12月7日 08:30" in page.text
    assert "UTC" not in page.text and "2026-12-06" not in page.text
    english = browser.get(f"/portal/notices/{notice_id}?lang=en")
    assert "2026-12-07 08:30 JST" in english.text


def test_a_suspended_cards_login_says_why_in_japanese(
    container: Container, browser: Browser, card_holder: CardHolder, clerk: StaffPrincipal
) -> None:
    container.card.suspend(clerk, card_holder.card_id)  # a loss report: certificates revoked
    refused = browser.reader_login(card_holder)
    assert refused.status_code == 401
    box = re.search(r'<div class="error".*?</div>', refused.text, re.S)
    assert box is not None
    shown = re.sub(r"<[^>]+>", " ", box.group(0))
    assert "失効しています" in shown
    assert not re.search(r"[A-Za-z]{3,}", shown), shown  # no "revoked", no code


def test_english_is_one_switch_away(browser: Browser, card_holder: CardHolder) -> None:
    landing = browser.get("/portal?lang=en")
    assert "Log in with your card" in landing.text and "ログイン" not in landing.text
    browser.follow(browser.reader_login(card_holder))
    home = browser.get("/portal")  # the choice is kept in a cookie
    assert "My information" in home.text and "Exchange history" in home.text
    assert "Log out" in home.text
    assert browser.get("/portal?lang=ja").text.count("わたしの情報") >= 1


def test_a_post_without_the_csrf_token_is_refused_with_a_page(
    container: Container, browser: Browser, card_holder: CardHolder
) -> None:
    browser.follow(browser.reader_login(card_holder))
    token = browser.session_token()
    refused = browser.post("/portal/logout", csrf=False)
    assert refused.status_code == 403
    assert "csrf_failed" in refused.text and "<html" in refused.text
    assert container.portal.session(token)  # still logged in: nothing happened
    forged = browser.post("/portal/logout", {"csrf_token": "x" * 43}, csrf=False)
    assert forged.status_code == 403
    # The login form's token is bound to its own cookie.
    browser.client.cookies.clear()
    browser.get("/portal/login")
    bare = browser.post("/portal/login", {"challenge_id": "x", "signature": "00",
                                          "certificate": "x"}, csrf=False)
    assert bare.status_code == 403 and "csrf_failed" in bare.text


def test_next_is_followed_only_to_a_path_of_this_site(
    browser: Browser, card_holder: CardHolder
) -> None:
    page = browser.get("/portal/login?next=//evil.example/x")
    assert "evil.example" not in page.text
    done = browser.reader_login(card_holder, next_path="/portal/history")
    assert done.headers["location"] == "/portal/history"
    browser.post("/portal/logout")
    done = browser.reader_login(card_holder, next_path="https://evil.example/")
    assert done.headers["location"] == "/portal"


def test_a_page_without_a_session_redirects_to_the_login_with_next(browser: Browser) -> None:
    response = browser.get("/portal/notices")
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/login?next=%2Fportal%2Fnotices"


def test_staff_register_a_proxy_at_the_counter_and_the_proxy_acts_for_the_principal(
    container: Container, client: TestClient, clerk: StaffPrincipal
) -> None:
    principal = issue_card_holder(container, clerk, family_name="高橋", given_name="一",
                                  family_name_kana="タカハシ", given_name_kana="ハジメ")
    guardian = issue_card_holder(container, clerk, family_name="伊藤", given_name="二郎",
                                 family_name_kana="イトウ", given_name_kana="ジロウ")
    holder_data(container, principal)
    # Both have logged in once (the portal knows their accounts).
    terminal = Browser(client)
    terminal.follow(terminal.reader_login(principal))
    terminal.post("/portal/info", {"scope": "basic_four"})
    terminal.post("/portal/logout")

    counter, _ = logged_in(client, container, "portal-counter")
    page = counter.get("/counter/portal/proxies")
    assert page.status_code == 200 and "成年後見人" in page.text
    registered = counter.post("/counter/portal/proxies", {
        "principal_resident_id": str(principal.resident.id),
        "proxy_resident_id": str(guardian.resident.id), "kind": "adult_guardian",
        "valid_until": ""})
    assert registered.status_code == 200, registered.text
    proxy_id = re.search(r'id="proxy-id">(\d+)<', registered.text).group(1)  # type: ignore[union-attr]
    no_csrf = counter.post("/counter/portal/proxies", {
        "principal_resident_id": str(principal.resident.id),
        "proxy_resident_id": str(guardian.resident.id), "kind": "adult_guardian"}, csrf=False)
    assert no_csrf.status_code == 403

    terminal = Browser(client)
    terminal.follow(terminal.reader_login(guardian))
    home = terminal.get("/portal")
    assert 'id="principals"' in home.text and "高橋" in home.text
    principal_account = re.search(
        r'name="principal_account_id" value="(\d+)"', home.text).group(1)  # type: ignore[union-attr]
    switched = terminal.post("/portal/proxies/act-for",
                             {"principal_account_id": principal_account})
    assert switched.status_code == 303
    acting = terminal.follow(switched)
    assert "高橋" in acting.text and "代理人（成年後見人）として操作中" in acting.text
    fetched = terminal.post("/portal/info", {"scope": "basic_four"})
    assert fetched.status_code == 200 and "高橋" in fetched.text  # the principal's data
    assert principal.number not in fetched.text and guardian.number not in fetched.text
    activities = terminal.get("/portal/activities")
    assert activities.status_code == 200
    assert 'class="proxy-mark"' in activities.text and "代理人（成年後見人）" in activities.text
    back = terminal.follow(terminal.post("/portal/proxies/act-for",
                                         {"principal_account_id": ""}))
    assert "として操作中" not in back.text

    revoked = counter.post("/counter/portal/proxies/revoke", {"proxy_id": proxy_id})
    assert revoked.status_code == 200 and "取り消しました" in revoked.text


def test_a_linked_service_is_listed_and_revoked_from_the_home_page(
    container: Container, client: TestClient, browser: Browser, card_holder: CardHolder
) -> None:
    from tests.portal.test_oidc import answer, approved_client, exchange, rp_for, start

    holder_data(container, card_holder)
    browser.follow(browser.reader_login(card_holder))
    service = approved_client(container, name="家計簿アプリ")
    rp = rp_for(client, service)
    flow = start(rp)
    exchange(rp, answer(client, flow.authorize_url), flow)  # the resident consents
    assert rp.get("/api/v1/portal/self-information/income").status_code == 200
    again = start(rp)  # and consents a second time: still one service
    exchange(rp, answer(client, again.authorize_url), again)

    home = browser.get("/portal")
    assert "家計簿アプリ" in home.text
    assert home.text.count('data-grant="') == 1
    row = re.search(r'<tr data-grant=.*?</tr>', home.text, re.S)
    assert row is not None and "income" not in row.group(0)  # items by their names
    assert "地方税関係情報（所得・住民税）" in row.group(0)
    grant_id = re.search(r'data-grant="(\d+)"', home.text).group(1)  # type: ignore[union-attr]
    assert browser.post(f"/portal/grants/{grant_id}/revoke", csrf=False).status_code == 403
    revoked = browser.post(f"/portal/grants/{grant_id}/revoke")
    assert revoked.headers["location"] == "/portal?done=grant_revoked"
    after = browser.follow(revoked)
    assert "連携を解除しました" in after.text and "data-grant=" not in after.text
    assert rp.get("/api/v1/portal/self-information/income").status_code == 401
    unknown = browser.post("/portal/grants/999999/revoke")
    assert unknown.status_code == 404 and "grant_not_found" in unknown.text


def test_the_virtual_reader_exists_only_in_the_embedded_mode(
    container: Container, browser: Browser, card_holder: CardHolder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mynumber.settings import Mode

    monkeypatch.setattr(container.settings, "mode", Mode.PRODUCTION)
    login = browser.get("/portal/login")
    assert login.status_code == 200 and 'id="use-reader"' not in login.text
    assert "mynumber card auth" in login.text  # the CLI way is always offered
    reader = browser.get("/portal/reader")
    assert reader.status_code == 403 and "card_reader_unavailable" in reader.text
    assert card_holder.card_id not in reader.text


def test_the_cli_way_signature_and_certificate_pasted_into_the_login_form(
    container: Container, browser: Browser, card_holder: CardHolder
) -> None:
    page = browser.get("/portal/login?next=/portal/notices")
    challenge = re.search(r'id="challenge">([0-9a-f]+)<', page.text).group(1)  # type: ignore[union-attr]
    challenge_id = re.search(r'name="challenge_id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert f"--challenge {challenge}" in page.text
    certificate = card_holder.chip.certificate("auth").decode()

    forged = browser.post("/portal/login", {
        "challenge_id": html.unescape(challenge_id), "signature": "00" * 256,
        "certificate": certificate, "next": "/portal/notices"})
    assert forged.status_code == 401 and "portal_login_failed" in forged.text
    assert not browser.session_token()
    # A spent or failed challenge is not reused: the page offers a new one.
    page = browser.last
    challenge = re.search(r'id="challenge">([0-9a-f]+)<', page.text).group(1)  # type: ignore[union-attr]
    challenge_id = re.search(r'name="challenge_id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    signature = card_holder.chip.sign("auth", AUTH_PIN, bytes.fromhex(challenge))
    done = browser.post("/portal/login", {
        "challenge_id": html.unescape(challenge_id), "signature": signature.hex(),
        "certificate": certificate, "next": "/portal/notices"})
    assert done.status_code == 303 and done.headers["location"] == "/portal/notices"
    assert browser.follow(done).status_code == 200


def test_the_language_link_on_a_posts_answer_never_repeats_the_action(
    container: Container, browser: Browser, card_holder: CardHolder
) -> None:
    browser.follow(browser.reader_login(card_holder))
    token = browser.session_token()
    switched = browser.get("/portal/logout?lang=en")  # a GET never logs out
    assert switched.status_code == 303 and switched.headers["location"] == "/portal?lang=en"
    assert container.portal.session(token)
    assert "Log out" in browser.follow(switched).text


def _proxies(container: Container) -> list[Any]:
    with container.databases.unit_of_work("portal") as session:
        return list(session.scalars(select(portal_models.ProxyRow)).all())


def test_the_counter_refuses_a_proxy_for_a_person_of_another_municipality(
    container: Container, client: TestClient, clerk: StaffPrincipal
) -> None:
    principal = issue_card_holder(container, clerk, family_name="高橋", given_name="一",
                                  family_name_kana="タカハシ", given_name_kana="ハジメ")
    guardian = issue_card_holder(container, clerk, family_name="伊藤", given_name="二郎",
                                 family_name_kana="イトウ", given_name_kana="ジロウ")
    form = {"principal_resident_id": str(principal.resident.id),
            "proxy_resident_id": str(guardian.resident.id), "kind": "adult_guardian",
            "valid_until": ""}
    shibuya, _ = logged_in(client, container, "shibuya-counter", SHIBUYA)
    refused = shibuya.post("/counter/portal/proxies", form)
    assert refused.status_code == 403, refused.text
    assert "outside_jurisdiction" in refused.text and 'id="proxy-done"' not in refused.text
    assert _proxies(container) == []  # nothing created (no account either)
    with container.databases.unit_of_work("portal") as session:
        assert session.scalars(select(portal_models.Account)).all() == []

    shinjuku, _ = logged_in(client, container, "shinjuku-counter")
    registered = shinjuku.post("/counter/portal/proxies", form)
    assert registered.status_code == 200, registered.text
    assert "高橋 一" in registered.text  # the principal's name, read through the registry
    (row,) = _proxies(container)

    shibuya, _ = logged_in(client, container, "shibuya-counter-2", SHIBUYA)
    shibuya.get("/counter/portal/proxies")
    not_theirs = shibuya.post("/counter/portal/proxies/revoke", {"proxy_id": str(row.id)})
    assert not_theirs.status_code == 403, not_theirs.text
    assert "outside_jurisdiction" in not_theirs.text and "取り消しました" not in not_theirs.text
    assert container.portal.proxy(row.id).revoked_at is None


def test_a_proxy_whose_registration_lapsed_cannot_revoke_the_principals_grants(
    container: Container, client: TestClient, clerk: StaffPrincipal
) -> None:
    from sqlalchemy import update

    from tests.portal.test_oidc import answer, approved_client, exchange, rp_for, start

    principal = issue_card_holder(container, clerk, family_name="高橋", given_name="一",
                                  family_name_kana="タカハシ", given_name_kana="ハジメ")
    guardian = issue_card_holder(container, clerk, family_name="伊藤", given_name="二郎",
                                 family_name_kana="イトウ", given_name_kana="ジロウ")
    holder_data(container, principal)
    record = container.portal.register_proxy(clerk.actor, principal.resident.id,
                                             guardian.resident.id, ProxyKind.ADULT_GUARDIAN)
    terminal = Browser(client)
    terminal.follow(terminal.reader_login(principal))
    rp = rp_for(client, approved_client(container, name="家計簿アプリ"))
    flow = start(rp)
    exchange(rp, answer(client, flow.authorize_url), flow)  # the principal consents
    (grant,) = container.oidc.grants(record.principal_account_id)

    terminal.follow(terminal.reader_login(guardian))
    terminal.follow(terminal.post("/portal/proxies/act-for",
                                  {"principal_account_id": str(record.principal_account_id)}))
    assert "家計簿アプリ" in terminal.get("/portal").text  # the principal's grants, while valid
    # The registration lapses (its end date passed); the session still names the principal.
    with container.databases.unit_of_work("portal") as session:
        session.execute(update(portal_models.ProxyRow)
                        .where(portal_models.ProxyRow.id == record.proxy_id)
                        .values(valid_until=dt.date(2000, 1, 1)))
    assert container.portal.session(terminal.session_token()).acting_for == \
        record.principal_account_id
    refused = terminal.post(f"/portal/grants/{grant.grant_id}/revoke")
    assert refused.status_code == 403 and "portal_not_a_proxy" in refused.text
    (still,) = container.oidc.grants(record.principal_account_id)
    assert still.revoked_at is None
    home = terminal.get("/portal")
    assert "家計簿アプリ" not in home.text


@pytest.mark.parametrize(("typed", "yen"), [
    ("4200000", 4_200_000), ("4,200,000円", 4_200_000), ("４２０万", 4_200_000),
    ("３８５万円", 3_850_000), ("385.5万円", 3_855_000), ("", None), (" ", None),
])
def test_amounts_of_yen_as_people_type_them(typed: str, yen: int | None) -> None:
    assert portal_views._yen(typed) == yen


@pytest.mark.parametrize("typed", ["abc", "1.5", "-3", "3万円くらい", "1e6"])
def test_what_is_not_an_amount_of_yen_is_refused(typed: str) -> None:
    with pytest.raises(InvalidInput):
        portal_views._yen(typed)

"""The web kernel: CSRF bound to the session, body limits, errors without tracebacks, and
security headers on every answer."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.auth import api as auth_api
from mynumber.kernel import counter as kernel_counter
from mynumber.kernel.csrf import PRELOGIN_COOKIE, CsrfTokens
from mynumber.settings import Settings
from mynumber.web.i18n import MESSAGES
from tests.web.test_counter import BIRTH_FORM, logged_in, staff_account

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
MB2 = 2 * 1024 * 1024


@pytest.fixture
def app(container: Container) -> Any:
    return create_app(container=container)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    # raise_server_exceptions: an exception escaping the app would fail the test here.
    with TestClient(app, raise_server_exceptions=True) as test_client:
        yield test_client


def births(container: Container, clerk: Any) -> int:
    return len(container.registry.search(clerk, "スズキ"))


# --- CSRF ----------------------------------------------------------------------------------


def test_a_counter_csrf_token_from_another_session_is_refused(
    app: Any, client: TestClient, container: Container
) -> None:
    first, clerk = logged_in(client, container, "clerk-a")
    second_client = TestClient(app)
    second, _ = logged_in(second_client, container, "clerk-b")
    assert first.token and second.token and first.token != second.token

    second.token = first.token  # clerk A's token, sent in clerk B's session
    refused = second.post("/counter/births", BIRTH_FORM)
    assert refused.status_code == 403
    assert MESSAGES["error.csrf_failed"]["ja"] in refused.text
    assert births(container, clerk) == 0

    # A token of an ended session is worthless in the next one, even for the same clerk.
    old = first.token
    first.post("/counter/logout")
    secret, _ = staff_account(container, "clerk-c")
    first.login("clerk-c", secret)
    first.token = old
    assert first.post("/counter/births", BIRTH_FORM).status_code == 403
    assert births(container, clerk) == 0

    first.get("/counter")  # the page's own token goes through
    assert first.post("/counter/births", BIRTH_FORM).status_code == 303


@pytest.mark.parametrize("path", ["/counter/login", "/portal/login", "/card/lost"])
def test_a_cookie_only_double_submit_is_refused(client: TestClient, path: str) -> None:
    """Any value put both in a cookie and in the field is refused: before sign-in the token
    must be the server's HMAC over the cookie's id."""
    planted = "A" * 43
    for name in (PRELOGIN_COOKIE, "mn_csrf", "mn_portal_login_csrf", "mn_card_csrf"):
        client.cookies.set(name, planted)
    response = client.post(path, data={"csrf_token": planted, "username": "x",
                                       "card_id": "x", "challenge_id": "x"},
                           follow_redirects=False)
    assert response.status_code == 403


def test_a_pre_login_token_is_bound_to_its_cookie(client: TestClient) -> None:
    page = client.get("/counter/login")
    token = TOKEN.search(page.text)
    assert token is not None and client.cookies.get(PRELOGIN_COOKIE)
    cookie = page.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    other = TestClient(client.app)
    other.get("/counter/login")  # another browser, another pre-login id
    stolen = other.post("/counter/login", data={"csrf_token": token.group(1)},
                        follow_redirects=False)
    assert stolen.status_code == 403


def test_tokens_depend_on_key_scope_and_binding() -> None:
    tokens = CsrfTokens(b"k" * 32)
    token = tokens.token("counter", "session-a")
    assert tokens.valid("counter", "session-a", token)
    assert not tokens.valid("counter", "session-b", token)
    assert not tokens.valid("portal", "session-a", token)
    assert not CsrfTokens(b"j" * 32).valid("counter", "session-a", token)
    assert not tokens.valid("counter", None, token)
    assert not tokens.valid("counter", "", tokens.token("counter", ""))
    assert not tokens.valid("counter", "session-a", None)


def test_the_counter_uses_the_staff_sign_in_cookie() -> None:
    assert kernel_counter.STAFF_COOKIE == auth_api.STAFF_COOKIE


# --- body limits ---------------------------------------------------------------------------


def _staff_headers(client: TestClient, container: Container) -> tuple[dict[str, str], Any]:
    import pyotp

    secret, clerk = staff_account(container, "api-clerk")
    login = client.post("/api/v1/registry/staff/login", json={
        "username": "api-clerk", "password": "correct horse battery staple",
        "totp_code": pyotp.TOTP(secret).now()})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}, clerk


def _padded_birth() -> bytes:
    """A valid 出生届 padded to over 2 MB with JSON whitespace: without a limit it registers."""
    body = {k: v for k, v in BIRTH_FORM.items() if v != ""}
    body["family_name_kana"], body["given_name_kana"] = "スズキ", "イチロウ"
    text = json.dumps(body, ensure_ascii=False)
    return (text[:-1] + " " * MB2 + "}").encode()


def _assert_too_large(response: Any) -> None:
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "payload_too_large"


def test_a_2mb_json_body_is_refused_and_changes_nothing(
    client: TestClient, container: Container
) -> None:
    headers, clerk = _staff_headers(client, container)
    body = _padded_birth()
    _assert_too_large(client.post("/api/v1/registry/births", content=body,
                                  headers={**headers, "Content-Type": "application/json"}))
    assert births(container, clerk) == 0


def test_a_2mb_chunked_body_is_refused_and_changes_nothing(
    client: TestClient, container: Container
) -> None:
    headers, clerk = _staff_headers(client, container)
    body = _padded_birth()

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    response = client.post("/api/v1/registry/births", content=chunks(),
                           headers={**headers, "Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    _assert_too_large(response)
    assert births(container, clerk) == 0


def test_a_2mb_form_is_refused_at_the_counter(client: TestClient, container: Container) -> None:
    counter, clerk = logged_in(client, container)
    response = counter.post("/counter/births", {**BIRTH_FORM, "padding": "x" * MB2})
    assert response.status_code == 413
    assert births(container, clerk) == 0
    assert counter.post("/counter/births", BIRTH_FORM).status_code == 303  # a normal form


# --- unexpected errors ---------------------------------------------------------------------

SECRET = "123456789018"  # what an exception's text could carry (synthetic)


def _boom(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError(f"database said: {SECRET}")


def _assert_quiet_log(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
                      path: str) -> None:
    records = [r for r in caplog.records if "unhandled" in r.getMessage()]
    assert records, caplog.text
    for record in records:
        assert record.exc_info is None and record.exc_text is None
        assert record.getMessage().endswith(path)
        assert "RuntimeError" in record.getMessage()
    captured = capsys.readouterr()
    for text in (caplog.text, captured.out, captured.err):
        assert "Traceback" not in text and SECRET not in text


def test_an_unexpected_error_is_a_problem_on_the_api_without_a_traceback(
    client: TestClient, container: Container, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    headers, _ = _staff_headers(client, container)
    monkeypatch.setattr(container.registry, "search", _boom)
    caplog.set_level(logging.DEBUG)
    response = client.get("/api/v1/registry/residents", params={"q": "スズキ"}, headers=headers)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "internal_error"
    assert SECRET not in response.text
    _assert_quiet_log(caplog, capsys, "/api/v1/registry/residents")


def test_an_unexpected_error_on_a_page_is_a_japanese_page_without_a_traceback(
    client: TestClient, container: Container, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    counter, _ = logged_in(client, container)
    monkeypatch.setattr(container.registry, "search", _boom)
    caplog.set_level(logging.DEBUG)
    response = counter.post("/counter", {"q": "スズキ"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert MESSAGES["error.internal_error"]["ja"] in response.text
    assert "internal_error" not in response.text and SECRET not in response.text
    assert response.headers["cache-control"] == "no-store"
    _assert_quiet_log(caplog, capsys, "/counter")


def test_a_browser_gets_the_error_page_elsewhere_too(
    client: TestClient, container: Container, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    headers, _ = _staff_headers(client, container)
    monkeypatch.setattr(container.registry, "search", _boom)
    browser = {**headers, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = client.get("/api/v1/registry/residents", params={"q": "x"}, headers=browser)
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert MESSAGES["error.internal_error"]["ja"] in page.text
    missing = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and MESSAGES["error.not_found"]["ja"] in missing.text
    assert client.get("/no/such/page").json()["code"] == "not_found"


# --- security headers ----------------------------------------------------------------------


def _assert_security_headers(response: Any) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.url
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "same-origin"
    assert len(headers.get_list("x-frame-options")) == 1


def test_every_answer_carries_the_security_headers(
    client: TestClient, container: Container
) -> None:
    answers = {
        "api": client.get("/healthz"),
        "page": client.get("/counter/login"),
        "home": client.get("/"),
        "static": client.get("/static/site.css"),
        "404": client.get("/no/such/thing"),
        "redirect": client.get("/counter", follow_redirects=False),
        "413": client.post("/api/v1/registry/births", content=b"x" * MB2),
        "docs": client.get("/docs"),
    }
    for kind, response in answers.items():
        assert response.status_code in (200, 303, 404, 413), kind
        _assert_security_headers(response)
    for kind in ("page", "home"):
        csp = answers[kind].headers["content-security-policy"]
        assert "default-src 'self'" in csp and "object-src 'none'" in csp
        assert answers[kind].headers["cache-control"] == "no-store"
    assert answers["api"].headers["cache-control"] == "no-store"
    assert "no-store" not in answers["static"].headers.get("cache-control", "")
    assert "strict-transport-security" not in answers["api"].headers  # http: no HSTS


def test_hsts_when_published_over_https(settings: Settings, container: Container) -> None:
    container.settings = settings.model_copy(update={"public_url": "https://mynumber.example"})
    with TestClient(create_app(container=container)) as client:
        response = client.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")
    _assert_security_headers(response)

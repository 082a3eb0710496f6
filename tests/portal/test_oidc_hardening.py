"""The OpenID Provider under hostile input: malformed front-channel and token requests never
give a 500 (issue 10: 83 of 5,600 hand-made requests did), request objects are refused, and a
concurrently replayed authorization code yields one token at most, which the replay revokes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi.testclient import TestClient
from sqlalchemy import text

from mynumber.app import Container, create_app
from mynumber.portal.interfaces import SESSION_COOKIE
from mynumber.portal.oauth import HttpRequest, InvalidToken
from tests.portal.conftest import CITY, CardHolder, hold, login, resident_record
from tests.portal.test_oidc import (
    BASE,
    INCOME,
    REDIRECT,
    answer,
    approved_client,
    browser,
    rp_for,
    start,
)

VERIFIER = "v" * 50
GOOD = {"response_type": "code", "redirect_uri": REDIRECT, "scope": "openid income",
        "state": "st-1", "nonce": "n-1",
        "code_challenge": create_s256_code_challenge(VERIFIER), "code_challenge_method": "S256"}
ODD = ['"', "", "\\", "é", "\u202e", "\x00", "a\nb", "%22", "<script>", "x" * 5000,
       "code code", " "]


@pytest.fixture
def app(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container), base_url=BASE,
                    raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def holder(container: Container, card_holder: CardHolder) -> CardHolder:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    hold(container, card_holder.number, CITY, "local_tax", INCOME, "C-1")
    return card_holder


def _outcome(response: object, client_valid: bool) -> None:
    """A proper OAuth answer: an error page (400/401/403), the login page, a consent page, or
    a redirect to the registered URI carrying error=…; never a 5xx."""
    status = response.status_code  # type: ignore[attr-defined]
    assert status < 500, (status, response.text[:300])  # type: ignore[attr-defined]
    if status in (302, 303):
        location = response.headers["location"]  # type: ignore[attr-defined]
        if location.startswith(REDIRECT):
            assert client_valid
            assert "error" in parse_qs(urlsplit(location).query) or "code=" in location
        else:
            assert location.startswith("/portal/login")


def test_malformed_authorization_requests_get_oauth_errors_never_500(
    app: TestClient, container: Container, holder: CardHolder,
) -> None:
    client = approved_client(container)
    base = {**GOOD, "client_id": client.client_id}
    # The finding itself: a lone quote as response_type.
    got = app.get("/oauth/authorize?response_type=%22", follow_redirects=False)
    assert got.status_code == 400 and "Location" not in got.headers
    got = app.get("/oauth/authorize?" + urlencode({**base, "response_type": '"'}),
                  follow_redirects=False)
    assert got.status_code == 302
    assert parse_qs(urlsplit(got.headers["location"]).query)["error"] == [
        "unsupported_response_type"] or parse_qs(urlsplit(got.headers["location"]).query)[
        "error"] == ["invalid_request"]
    # A bad redirect_uri is never redirected to.
    got = app.get("/oauth/authorize?" + urlencode({**base, "redirect_uri": '"'}),
                  follow_redirects=False)
    assert got.status_code == 400 and "Location" not in got.headers

    session = login(container, holder)
    names = [*base, "prompt", "max_age", "request_uri", "response_mode", "login_hint"]
    for cookie in (None, session.token):
        if cookie:
            app.cookies.set(SESSION_COOKIE, cookie)
        for name in names:
            valid = name not in ("client_id", "redirect_uri")
            for value in ODD if cookie is None else ODD[:3] + ODD[-3:]:
                got = app.get("/oauth/authorize?" + urlencode({**base, name: value}),
                              follow_redirects=False)
                _outcome(got, valid or value == base.get(name))
            # The same parameter twice (RFC 6749 3.1).
            twice = [*base.items(), (name, base.get(name, "x"))]
            got = app.get("/oauth/authorize?" + urlencode(twice), follow_redirects=False)
            _outcome(got, valid)
            if name in base:
                assert got.status_code in (302, 400)
                if got.status_code == 302:
                    assert "error=invalid_request" in got.headers["location"]


def test_malformed_par_token_and_userinfo_requests_never_give_500(
    app: TestClient, container: Container,
) -> None:
    client = approved_client(container)
    auth = (client.client_id, client.client_secret)
    base = {**GOOD, "client_id": client.client_id}
    token = {"grant_type": "authorization_code", "code": "c" * 43, "redirect_uri": REDIRECT,
             "code_verifier": VERIFIER}
    for value in ODD:
        for name in base:
            got = app.post("/oauth/par", data={**base, name: value}, auth=auth)
            assert got.status_code in (201, 400), (name, value[:5], got.status_code)
            assert got.status_code == 201 or "error" in got.json()
        for name in token:
            got = app.post("/oauth/token", data={**token, name: value}, auth=auth)
            assert got.status_code in (400, 401), (name, value[:5], got.status_code)
            assert "error" in got.json()
        if value.isascii() and value.isprintable():
            got = app.get("/oauth/userinfo", headers={"Authorization": f"Bearer {value}"})
            assert got.status_code in (400, 401)
            got = app.post("/oauth/userinfo", data={"access_token": value})
            assert got.status_code in (400, 401)
    got = app.post("/oauth/par", content=urlencode([*base.items(), ("scope", "openid")]),
                   headers={"Content-Type": "application/x-www-form-urlencoded"}, auth=auth)
    assert got.status_code == 400 and got.json()["error"] == "invalid_request"


def test_request_objects_are_refused_not_ignored(app: TestClient, container: Container,
                                                 holder: CardHolder) -> None:
    meta = app.get("/.well-known/openid-configuration").json()
    assert meta["request_parameter_supported"] is False
    assert meta["request_uri_parameter_supported"] is False
    client = approved_client(container)
    base = {**GOOD, "client_id": client.client_id}
    resident = browser(container, login(container, holder))
    got = resident.get("/oauth/authorize?" + urlencode({**base, "request": "eyJhbGciOi.x.y"}),
                       follow_redirects=False)
    assert got.status_code == 302
    query = parse_qs(urlsplit(got.headers["location"]).query)
    assert query["error"] == ["request_not_supported"] and query["state"] == ["st-1"]
    assert "code" not in query
    got = resident.get("/oauth/authorize?" + urlencode(
        {**base, "request_uri": "https://rp.example.jp/request.jwt"}), follow_redirects=False)
    query = parse_qs(urlsplit(got.headers["location"]).query)
    assert query["error"] == ["request_uri_not_supported"]
    # An unknown client is never redirected to, whatever it sent.
    got = resident.get("/oauth/authorize?" + urlencode(
        {**base, "client_id": "mnc_nobody", "request": "x"}), follow_redirects=False)
    assert got.status_code == 400 and "Location" not in got.headers
    pushed = app.post("/oauth/par", data={**base, "request": "eyJhbGciOi.x.y"},
                      auth=(client.client_id, client.client_secret))
    assert pushed.status_code == 400 and pushed.json()["error"] == "request_not_supported"


def test_a_concurrently_replayed_code_gives_one_token_at_most_and_revokes_it(
    app: TestClient, container: Container, holder: CardHolder,
) -> None:
    """Ten redemptions of one code at once: exactly one wins the code (an atomic UPDATE …
    WHERE used_at IS NULL); the replays revoke whatever it got (RFC 6749 4.1.2)."""
    client = approved_client(container)
    rp = rp_for(app, client)
    resident = browser(container, login(container, holder))
    flow = start(rp)
    code = parse_qs(urlsplit(answer(resident, flow.authorize_url)).query)["code"][0]
    form = (("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT),
            ("code_verifier", flow.verifier), ("client_id", client.client_id),
            ("client_secret", client.client_secret or ""))
    request = HttpRequest("POST", "/oauth/token", (), form,
                          {"Content-Type": "application/x-www-form-urlencoded"})
    threads = 10
    barrier = threading.Barrier(threads)

    def redeem(_: int) -> tuple[int, bytes]:
        barrier.wait()
        response = container.oidc.token(request)
        return response.status_code, bytes(response.body)

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(redeem, range(threads)))
    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) <= 1 and all(s in (200, 400) for s in statuses), statuses
    with container.databases.unit_of_work("portal") as session:
        rows = session.execute(text(
            "SELECT revoked_at FROM oidc_access_tokens t JOIN oidc_codes c "
            "ON c.code_hash = t.code_hash WHERE c.client_id = :c"),
            {"c": client.client_id}).all()
    assert len(rows) == 1 and rows[0].revoked_at is not None  # one token, and it is dead
    for status, body in results:
        if status == 200:
            access = json.loads(body)["access_token"]
            with pytest.raises(InvalidToken):
                container.oidc.userinfo(access)
    kinds = " ".join(container.api_clients.monitoring(client.client_id).recent_anomalies)
    assert "code_replay" in kinds


def test_a_replay_between_claim_and_token_storage_still_kills_the_token(
    app: TestClient, container: Container, holder: CardHolder, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The interleaving the threads above hit now and then, forced: the first redemption has
    claimed the code but not stored its token yet when the replay arrives. The replay used to
    find no token to revoke, and the first one's token then lived (2 of 5 trials)."""
    client = approved_client(container)
    rp = rp_for(app, client)
    resident = browser(container, login(container, holder))
    flow = start(rp)
    code = parse_qs(urlsplit(answer(resident, flow.authorize_url)).query)["code"][0]
    form = (("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT),
            ("code_verifier", flow.verifier), ("client_id", client.client_id),
            ("client_secret", client.client_secret or ""))
    request = HttpRequest("POST", "/oauth/token", (), form,
                          {"Content-Type": "application/x-www-form-urlencoded"})
    oidc = container.oidc
    store = oidc.save_token
    replays: list[int] = []

    def replay_first(token: dict[str, object], oauth_request: object) -> None:
        replays.append(oidc.token(request).status_code)  # the replay lands right here
        store(token, oauth_request)  # type: ignore[arg-type]

    monkeypatch.setattr(oidc, "save_token", replay_first)
    first = oidc.token(request)
    assert replays == [400]
    if first.status_code == 200:
        access = json.loads(bytes(first.body))["access_token"]
        with pytest.raises(InvalidToken):
            oidc.userinfo(access)
    else:
        assert json.loads(bytes(first.body))["error"] == "invalid_grant"
    with container.databases.unit_of_work("portal") as session:
        revoked = session.execute(text(
            "SELECT revoked_at FROM oidc_access_tokens WHERE client_id = :c"),
            {"c": client.client_id}).scalars().all()
    assert len(revoked) <= 1 and all(r is not None for r in revoked)

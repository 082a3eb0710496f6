"""The self-information API's OpenID Provider end to end: a relying party driven by Authlib's
own OAuth 2 client (server to server) and a resident's browser (a TestClient holding the
portal session cookie), against the real portal, network and agencies.

Covered: code + PKCE S256 (with and without PAR), ID token signature and claims checked against
the published JWKS, pairwise subjects, a refused consent releasing nothing, immediate
revocation, the refusals (plain / missing PKCE, wrong verifier, code replay, redirect
mismatch, unapproved or suspended clients, implicit and hybrid flows) and the rate limit."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography import x509
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import text

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.portal.interfaces import (
    SESSION_COOKIE,
    ClientRecord,
    ClientState,
    GrantNotFound,
    NotAProxy,
    PortalSession,
    ProxyKind,
    ProxyRecord,
)
from mynumber.portal.oauth import AuthorizationProblem
from tests.conftest import new_resident
from tests.portal.conftest import (
    CITY,
    CardHolder,
    hold,
    issue_card_holder,
    login,
    resident_record,
)

BASE = "http://testserver"
REDIRECT = "http://127.0.0.1:8765/callback"
INCOME: dict[str, object] = {"fiscal_year": 2025, "taxable_income": 4_200_000,
                             "municipal_tax": 250_000, "exempt": False}


@pytest.fixture
def app(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container), base_url=BASE) as client:
        yield client


@pytest.fixture
def holder(container: Container, card_holder: CardHolder) -> CardHolder:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    hold(container, card_holder.number, CITY, "local_tax", INCOME, "C-1")
    return card_holder


def approved_client(container: Container, name: str = "家計簿アプリ",
                    scopes: tuple[str, ...] = ("basic_four", "income", "pension"),
                    ) -> ClientRecord:
    record = container.api_clients.register(name, "株式会社テスト", "dev@example.jp",
                                            [REDIRECT, "https://rp.example.jp/cb"], scopes)
    container.api_clients.set_state("staff:1", record.client_id, ClientState.APPROVED, "vetted")
    return record


def rp_for(app: TestClient, client: ClientRecord, scope: str = "openid basic_four income",
           ) -> OAuth2Client:
    """The relying party: Authlib's httpx client on the app's in-process transport."""
    return OAuth2Client(client.client_id, client.client_secret, scope=scope,
                        redirect_uri=REDIRECT, code_challenge_method="S256",
                        token_endpoint_auth_method="client_secret_basic",
                        transport=app._transport, base_url=BASE)


def browser(container: Container, session: PortalSession | None) -> TestClient:
    client = TestClient(create_app(container=container), base_url=BASE)
    if session is not None:
        client.cookies.set(SESSION_COOKIE, session.token)
    return client


@dataclass
class Flow:
    verifier: str
    nonce: str
    state: str
    authorize_url: str


def start(rp: OAuth2Client, **extra: str) -> Flow:
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(f"{BASE}/oauth/authorize",
                                             code_verifier=verifier, nonce=nonce, **extra)
    return Flow(verifier, nonce, state, url)


def consent_form(page: str) -> dict[str, str]:
    consent = re.search(r'name="consent_id" value="([^"]+)"', page)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert consent and csrf, page[:500]
    return {"consent_id": consent.group(1), "csrf_token": csrf.group(1)}


def answer(resident: TestClient, url: str, decision: str = "approve",
           scopes: tuple[str, ...] | None = None) -> str:
    """Open the authorization URL as the resident, answer the consent page; the Location."""
    page = resident.get(url, follow_redirects=False)
    assert page.status_code == 200, page.text[:500]
    form: dict[str, Any] = consent_form(page.text)
    offered = re.findall(r'name="scope" value="([^"]+)"', page.text)
    form["scope"] = list(scopes if scopes is not None else offered)
    form["decision"] = decision
    done = resident.post("/oauth/authorize", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text[:500]
    return str(done.headers["location"])


def exchange(rp: OAuth2Client, location: str, flow: Flow) -> dict[str, Any]:
    token: dict[str, Any] = rp.fetch_token(f"{BASE}/oauth/token", authorization_response=location,
                                           code_verifier=flow.verifier)
    return token


def check_id_token(rp: OAuth2Client, token: dict[str, Any], client: ClientRecord,
                   flow: Flow, container: Container) -> dict[str, Any]:
    jwks = KeySet.import_key_set(rp.get("/oauth/jwks").json())
    decoded = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
    assert decoded.header["alg"] == "RS256"
    assert decoded.header["kid"] in {k.kid for k in jwks.keys}
    JWTClaimsRegistry(
        iss={"essential": True, "value": container.settings.issuer},
        aud={"essential": True, "value": client.client_id},
        exp={"essential": True}, iat={"essential": True}, auth_time={"essential": True},
        nonce={"essential": True, "value": flow.nonce}, sub={"essential": True},
    ).validate(decoded.claims)
    claims: dict[str, Any] = decoded.claims
    return claims


def history_serials(container: Container, session: PortalSession) -> set[str]:
    return {e.record.serial for e in container.portal.history(session)}


# --- the whole flow -----------------------------------------------------------------------------


def test_discovery_advertises_code_pkce_s256_par_and_pairwise(app: TestClient,
                                                              container: Container) -> None:
    meta = app.get("/.well-known/openid-configuration").json()
    assert meta["issuer"] == container.settings.public_url
    assert meta["response_types_supported"] == ["code"]
    assert meta["grant_types_supported"] == ["authorization_code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["subject_types_supported"] == ["pairwise"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert meta["require_pushed_authorization_requests"] is False
    assert meta["pushed_authorization_request_endpoint"].endswith("/oauth/par")
    assert {"openid", "basic_four", "income", "pension"} <= set(meta["scopes_supported"])
    assert meta["token_endpoint_auth_methods_supported"] == ["client_secret_basic",
                                                             "client_secret_post"]
    [key] = app.get("/oauth/jwks").json()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and "d" not in key


def test_code_flow_with_pkce_id_token_and_a_recorded_release(
    app: TestClient, container: Container, holder: CardHolder,
) -> None:
    client = approved_client(container)
    session = login(container, holder)
    rp = rp_for(app, client)
    flow = start(rp)
    # Not logged in at the portal: sent to the login page, coming back to the same request.
    anonymous = browser(container, None).get(flow.authorize_url, follow_redirects=False)
    assert anonymous.status_code == 303
    target = urlsplit(anonymous.headers["location"])
    assert target.path == "/portal/login"
    assert parse_qs(target.query)["next"][0].startswith("/oauth/authorize?")

    resident = browser(container, session)
    page = resident.get(flow.authorize_url)
    assert "家計簿アプリ" in page.text and "株式会社テスト" in page.text
    assert "新宿区" in page.text  # the source of both items: the resident's mayor
    assert page.headers["x-frame-options"] == "DENY"
    location = answer(resident, flow.authorize_url)
    assert location.startswith(REDIRECT)
    assert parse_qs(urlsplit(location).query)["state"] == [flow.state]
    token = exchange(rp, location, flow)
    assert token["token_type"].lower() == "bearer" and "refresh_token" not in token
    assert token["expires_in"] == 600
    claims = check_id_token(rp, token, client, flow, container)
    assert claims["auth_time"] == int(session.started_at.timestamp())

    before = history_serials(container, session)
    got = rp.get("/api/v1/portal/self-information/income")
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["scope"] == "income" and body["provider"] == CITY
    assert body["data"]["taxable_income"] == 4_200_000
    assert body["serial"] in history_serials(container, session) - before
    [release] = container.oidc.releases(session.acting_for)
    assert (release.client_id, release.scope, release.serial) == (client.client_id, "income",
                                                                  body["serial"])
    entry = next(e for e in container.portal.history(session)
                 if e.record.serial == body["serial"])
    assert entry.released_to == ("家計簿アプリ",)
    # Not consented: pension was not asked for.
    refused = rp.get("/api/v1/portal/self-information/pension")
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]

    info = rp.get("/oauth/userinfo").json()
    assert info["sub"] == claims["sub"] and info["name"] == holder.resident.name
    watch = container.api_clients.monitoring(client.client_id)
    assert watch.releases == 2 and watch.distinct_subjects == 1
    assert watch.requests == 3 and watch.refusals == 1 and watch.anomalies == 0


def test_par_then_login_then_consent(app: TestClient, container: Container,
                                     holder: CardHolder) -> None:
    client = approved_client(container)
    rp = rp_for(app, client)
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": REDIRECT,
              "scope": "openid income", "state": "s-par", "nonce": nonce,
              "code_challenge": create_s256_code_challenge(verifier),
              "code_challenge_method": "S256"}
    unauthenticated = app.post("/oauth/par", data=params)
    assert unauthenticated.status_code in (400, 401)
    assert unauthenticated.json()["error"] == "invalid_client"
    pushed = app.post("/oauth/par", data=params, auth=(client.client_id, client.client_secret))
    assert pushed.status_code == 201, pushed.text
    request_uri = pushed.json()["request_uri"]
    assert request_uri.startswith("urn:ietf:params:oauth:request_uri:")
    assert pushed.json()["expires_in"] == 60
    url = "/oauth/authorize?" + urlencode({"client_id": client.client_id,
                                           "request_uri": request_uri})
    # Login first: the request_uri stays valid meanwhile.
    to_login = browser(container, None).get(url, follow_redirects=False)
    assert to_login.status_code == 303
    session = login(container, holder)
    resident = browser(container, session)
    location = answer(resident, parse_qs(urlsplit(to_login.headers["location"]).query)
                      ["next"][0])
    assert parse_qs(urlsplit(location).query)["state"] == ["s-par"]
    token = exchange(rp, location, Flow(verifier, nonce, "s-par", url))
    check_id_token(rp, token, client, Flow(verifier, nonce, "s-par", url), container)
    # One use.
    again = resident.get(url, follow_redirects=False)
    assert again.status_code == 400 and "Location" not in again.headers
    assert "invalid_request_uri" in again.text
    # A pushed request needs a valid PKCE challenge too.
    bad = app.post("/oauth/par", data={**params, "code_challenge_method": "plain"},
                   auth=(client.client_id, client.client_secret))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


def test_two_clients_see_different_pairwise_subjects(
    app: TestClient, container: Container, holder: CardHolder,
) -> None:
    session = login(container, holder)
    resident = browser(container, session)
    subjects = []
    for name in ("アプリA", "アプリB"):
        client = approved_client(container, name)
        rp = rp_for(app, client, scope="openid")
        flow = start(rp)
        token = exchange(rp, answer(resident, flow.authorize_url), flow)
        subjects.append(check_id_token(rp, token, client, flow, container)["sub"])
        assert rp.get("/oauth/userinfo").json() == {"sub": subjects[-1]}
    assert subjects[0] != subjects[1]
    serial = x509.load_pem_x509_certificate(holder.chip.certificate("auth")).serial_number
    forbidden = {holder.number, str(serial), f"{serial:x}", f"{serial:X}",
                 str(session.account_id), str(holder.resident.id)}
    for sub in subjects:
        assert not any(f in sub for f in forbidden if len(f) > 3)
        assert sub not in forbidden and len(sub) == 43
    # Stable per client: a second login gives the same sub to the same client.
    assert container.oidc.subject("x", session.account_id) == \
        container.oidc.subject("x", session.account_id)


# --- consent refused and revoked -----------------------------------------------------------------


def test_a_refused_consent_releases_nothing(app: TestClient, container: Container,
                                            holder: CardHolder) -> None:
    client = approved_client(container)
    session = login(container, holder)
    before = history_serials(container, session)
    rp = rp_for(app, client)
    flow = start(rp)
    location = answer(browser(container, session), flow.authorize_url, decision="deny")
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT)
    assert query["error"] == ["access_denied"] and "code" not in query
    assert query["state"] == [flow.state]
    assert container.oidc.grants(session.acting_for) == []
    assert container.oidc.releases(session.acting_for) == []
    assert history_serials(container, session) == before
    assert container.api_clients.monitoring(client.client_id).releases == 0


def test_unticked_items_are_not_granted(app: TestClient, container: Container,
                                        holder: CardHolder) -> None:
    client = approved_client(container)
    session = login(container, holder)
    rp = rp_for(app, client)
    flow = start(rp)
    location = answer(browser(container, session), flow.authorize_url, scopes=("income",))
    exchange(rp, location, flow)
    [grant] = container.oidc.grants(session.acting_for)
    assert grant.scopes == ("income",)
    assert rp.get("/api/v1/portal/self-information/basic_four").status_code == 403
    assert rp.get("/api/v1/portal/self-information/income").status_code == 200


def test_a_revoked_grant_stops_at_once(app: TestClient, container: Container,
                                       holder: CardHolder, clerk: StaffPrincipal) -> None:
    client = approved_client(container)
    session = login(container, holder)
    rp = rp_for(app, client)
    flow = start(rp)
    exchange(rp, answer(browser(container, session), flow.authorize_url), flow)
    assert rp.get("/api/v1/portal/self-information/income").status_code == 200
    [grant] = container.oidc.grants(session.acting_for)
    stranger = issue_card_holder(container, clerk)
    other = login(container, stranger)
    with pytest.raises(GrantNotFound):
        container.oidc.revoke_grant(other.acting_for, grant.grant_id, other.account_id)
    revoked = container.oidc.revoke_grant(session.acting_for, grant.grant_id,
                                          session.account_id)
    assert revoked.revoked_at is not None
    serials = history_serials(container, session)
    after = rp.get("/api/v1/portal/self-information/income")
    assert after.status_code == 401 and after.json()["code"] == "invalid_token"
    assert 'error="invalid_token"' in after.headers["www-authenticate"]
    assert rp.get("/oauth/userinfo").status_code == 401
    assert len(container.oidc.releases(session.acting_for)) == 1
    assert history_serials(container, session) == serials
    assert "token_after_revocation" in container.api_clients.monitoring(
        client.client_id).recent_anomalies[0]


# --- refusals ---------------------------------------------------------------------------------


def _authorize_url(client_id: str, **overrides: str | None) -> str:
    verifier = secrets.token_urlsafe(48)
    params: dict[str, str | None] = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "scope": "openid income", "state": "st", "nonce": "n-1",
        "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256",
    }
    params.update(overrides)
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


@pytest.mark.parametrize("overrides", [
    {"code_challenge_method": "plain"},
    {"code_challenge_method": None},
    {"code_challenge": None, "code_challenge_method": None},
])
def test_pkce_is_required_and_s256_only(app: TestClient, container: Container,
                                        holder: CardHolder, overrides: dict[str, str | None],
                                        ) -> None:
    client = approved_client(container)
    resident = browser(container, login(container, holder))
    if overrides.get("code_challenge_method", "x") == "plain":
        overrides = {**overrides, "code_challenge": secrets.token_urlsafe(48)}
    got = resident.get(_authorize_url(client.client_id, **overrides), follow_redirects=False)
    assert got.status_code == 302
    query = parse_qs(urlsplit(got.headers["location"]).query)
    assert query["error"] == ["invalid_request"] and "code" not in query


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token"])
def test_no_implicit_or_hybrid_flow(app: TestClient, container: Container, holder: CardHolder,
                                    response_type: str) -> None:
    client = approved_client(container)
    resident = browser(container, login(container, holder))
    got = resident.get(_authorize_url(client.client_id, response_type=response_type),
                       follow_redirects=False)
    assert got.status_code == 302
    location = got.headers["location"]
    assert "access_token" not in location and "id_token=" not in location
    assert parse_qs(urlsplit(location).query)["error"] == ["unsupported_response_type"]


def test_password_grant_is_unsupported(app: TestClient, container: Container) -> None:
    client = approved_client(container)
    got = app.post("/oauth/token", data={"grant_type": "password", "username": "a",
                                         "password": "b"},
                   auth=(client.client_id, client.client_secret))
    assert got.status_code == 400 and got.json()["error"] == "unsupported_grant_type"


def test_wrong_verifier_and_code_replay_are_refused(app: TestClient, container: Container,
                                                   holder: CardHolder) -> None:
    client = approved_client(container)
    session = login(container, holder)
    resident = browser(container, session)
    rp = rp_for(app, client)
    # A wrong verifier: refused, and the code is spent.
    flow = start(rp)
    location = answer(resident, flow.authorize_url)
    code = parse_qs(urlsplit(location).query)["code"][0]
    wrong = app.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": secrets.token_urlsafe(48)}, auth=(client.client_id, client.client_secret))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    missing = app.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(client.client_id, client.client_secret))
    assert missing.status_code == 400
    # Replay: the second exchange is refused and the first one's token dies.
    flow = start(rp)
    location = answer(resident, flow.authorize_url)
    code = parse_qs(urlsplit(location).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": flow.verifier}
    first = app.post("/oauth/token", data=form, auth=(client.client_id, client.client_secret))
    assert first.status_code == 200
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert app.get("/api/v1/portal/self-information/income", headers=bearer).status_code == 200
    second = app.post("/oauth/token", data=form, auth=(client.client_id, client.client_secret))
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert app.get("/api/v1/portal/self-information/income", headers=bearer).status_code == 401
    # Another client cannot use the code either, nor a wrong secret.
    flow = start(rp)
    code = parse_qs(urlsplit(answer(resident, flow.authorize_url)).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": flow.verifier}
    thief = approved_client(container, "他社")
    assert app.post("/oauth/token", data=form, auth=(thief.client_id, thief.client_secret)
                    ).json()["error"] == "invalid_grant"
    assert app.post("/oauth/token", data=form, auth=(client.client_id, "guess")
                    ).status_code == 401
    kinds = " ".join(container.api_clients.monitoring(client.client_id).recent_anomalies)
    assert "pkce_failure" in kinds and "code_replay" in kinds


def test_redirect_mismatch_and_unknown_or_unapproved_clients_get_an_error_page(
    app: TestClient, container: Container, holder: CardHolder,
) -> None:
    client = approved_client(container)
    resident = browser(container, login(container, holder))
    for uri in ("https://evil.example/cb", REDIRECT + "/", REDIRECT + "?x=1",
                "http://127.0.0.1:8765/callback#frag"):
        got = resident.get(_authorize_url(client.client_id, redirect_uri=uri),
                           follow_redirects=False)
        assert got.status_code == 400 and "location" not in got.headers
        assert "evil" not in got.headers.get("location", "")
    assert container.api_clients.monitoring(client.client_id).anomalies >= 4
    got = resident.get(_authorize_url("mnc_nobody"), follow_redirects=False)
    assert got.status_code == 400 and "location" not in got.headers
    applied = container.api_clients.register("未審査", "某社", "x@example.jp", [REDIRECT],
                                             ["income"])
    got = resident.get(_authorize_url(applied.client_id), follow_redirects=False)
    assert got.status_code == 400 and "location" not in got.headers
    assert "invalid_client" in got.text
    assert app.post("/oauth/par", data={"response_type": "code"},
                    auth=(applied.client_id, applied.client_secret or "")).status_code == 401


def test_a_suspended_client_stops_at_once(app: TestClient, container: Container,
                                          holder: CardHolder) -> None:
    client = approved_client(container)
    session = login(container, holder)
    rp = rp_for(app, client)
    flow = start(rp)
    exchange(rp, answer(browser(container, session), flow.authorize_url), flow)
    container.api_clients.set_state("staff:1", client.client_id, ClientState.SUSPENDED,
                                    "complaint")
    got = rp.get("/api/v1/portal/self-information/income")
    assert got.status_code == 403 and got.json()["code"] == "client_not_approved"
    assert container.oidc.releases(session.acting_for) == []
    watch = container.api_clients.monitoring(client.client_id)
    assert any("request_while_suspended" in a for a in watch.recent_anomalies)


def test_the_rate_limit_answers_429_with_retry_after(app: TestClient, container: Container,
                                                     holder: CardHolder) -> None:
    client = approved_client(container)
    container.api_clients.set_rate_limit("staff:1", client.client_id, 2)
    session = login(container, holder)
    rp = rp_for(app, client)
    flow = start(rp)
    exchange(rp, answer(browser(container, session), flow.authorize_url), flow)
    codes = [rp.get("/api/v1/portal/self-information/income").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = rp.get("/api/v1/portal/self-information/income")
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert len(container.oidc.releases(session.acting_for)) == 2
    assert container.api_clients.monitoring(client.client_id).rate_limited == 2


def test_missing_or_forged_tokens_are_401(app: TestClient) -> None:
    missing = app.get("/api/v1/portal/self-information/income")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    forged = app.get("/api/v1/portal/self-information/income",
                     headers={"Authorization": "Bearer " + secrets.token_urlsafe(32)})
    assert forged.status_code == 401 and forged.json()["code"] == "invalid_token"


def test_consent_form_needs_the_sessions_csrf_token_and_is_one_use(
    app: TestClient, container: Container, holder: CardHolder,
) -> None:
    client = approved_client(container)
    session = login(container, holder)
    resident = browser(container, session)
    rp = rp_for(app, client)
    flow = start(rp)
    form: dict[str, Any] = consent_form(resident.get(flow.authorize_url).text)
    forged = resident.post("/oauth/authorize", data={**form, "csrf_token": "x",
                                                     "decision": "approve"},
                           follow_redirects=False)
    assert forged.status_code == 403 and "location" not in forged.headers
    assert container.oidc.grants(session.acting_for) == []
    ok = resident.post("/oauth/authorize", data={**form, "decision": "approve",
                                                 "scope": ["income"]}, follow_redirects=False)
    assert ok.status_code == 303
    again = resident.post("/oauth/authorize", data={**form, "decision": "approve",
                                                    "scope": ["income"]},
                          follow_redirects=False)
    assert again.status_code == 400
    assert len(container.oidc.grants(session.acting_for)) == 1


# --- a proxy consenting for the principal ---------------------------------------------------------

WARD_INCOME: dict[str, object] = {"fiscal_year": 2025, "taxable_income": 1_100_000,
                                  "municipal_tax": 0, "exempt": True}


def _ward_of(container: Container, clerk: StaffPrincipal, guardian: CardHolder,
             valid_until: dt.date | None = None) -> ProxyRecord:
    """An adult ward without a card, with records at the city, and ``guardian`` registered at
    the counter as the ward's 成年後見人."""
    details = new_resident(given_name="花子", given_name_kana="ハナコ",
                           birth_date=dt.date(1940, 5, 5))
    ward = container.registry.register_birth(clerk, details, details.birth_date)
    number = container.registry.reveal_number(clerk, ward.id, "test")
    hold(container, number, CITY, "resident_record", {"name": "山田 花子", "household": []},
         "C-W")
    hold(container, number, CITY, "local_tax", WARD_INCOME, "C-W")
    return container.portal.register_proxy(clerk.actor, ward.id, guardian.resident.id,
                                           ProxyKind.ADULT_GUARDIAN, valid_until)


def _audit(container: Container, tag: str) -> list[dict[str, Any]]:
    with container.databases.unit_of_work("portal") as session:
        rows = session.execute(text("SELECT actor, subject, details FROM audit_events "
                                    "WHERE tag = :t ORDER BY id"), {"t": tag}).all()
    return [{"actor": r.actor, "subject": r.subject,
             **(r.details if isinstance(r.details, dict) else json.loads(r.details))}
            for r in rows]


def _grant_row(container: Container, grant_id: int) -> dict[str, Any]:
    with container.databases.unit_of_work("portal") as session:
        return dict(session.execute(text(
            "SELECT account_id, actor_account_id, proxy_kind, revoked_at FROM oidc_grants "
            "WHERE id = :g"), {"g": grant_id}).mappings().one())


def test_a_guardians_consent_grant_and_revocation_are_attributable(
    app: TestClient, container: Container, holder: CardHolder, clerk: StaffPrincipal,
) -> None:
    proxy = _ward_of(container, clerk, holder)
    ward = proxy.principal_account_id
    session = login(container, holder)
    acting = container.portal.act_for(session.token, ward)
    client = approved_client(container)
    guardian = browser(container, acting)
    rp = rp_for(app, client)
    # Denied first: nothing is granted, and the ward's activities say the guardian denied.
    denied = start(rp)
    page = guardian.get(denied.authorize_url)
    assert 'id="consent-as-proxy"' in page.text
    answer(guardian, denied.authorize_url, decision="deny")
    assert container.oidc.grants(ward) == []
    # Then approved: the grant is the ward's, given by the guardian as adult guardian.
    flow = start(rp)
    exchange(rp, answer(guardian, flow.authorize_url), flow)
    [grant] = container.oidc.grants(ward)
    assert container.oidc.grants(session.account_id) == []
    row = _grant_row(container, grant.grant_id)
    assert (row["account_id"], row["actor_account_id"], row["proxy_kind"]) == (
        ward, session.account_id, "adult_guardian")
    [created] = _audit(container, "portal:grant:create")
    assert created["actor"] == f"account:{session.account_id}"
    assert created["subject"] == f"account:{ward}"
    assert created["proxy_kind"] == "adult_guardian" and created["grant_id"] == grant.grant_id
    # A release under the grant is the ward's data, traceable to the guardian's grant.
    got = rp.get("/api/v1/portal/self-information/income")
    assert got.status_code == 200 and got.json()["data"]["taxable_income"] == 1_100_000
    [release] = container.oidc.releases(ward)
    assert release.serial == got.json()["serial"]
    with container.databases.unit_of_work("portal") as db:
        released_under = db.execute(text(
            "SELECT g.actor_account_id, g.proxy_kind FROM oidc_releases r "
            "JOIN oidc_grants g ON g.id = r.grant_id WHERE r.serial = :s"),
            {"s": release.serial}).one()
    assert tuple(released_under) == (session.account_id, "adult_guardian")
    # The guardian revokes it: audit and activity name the guardian and the proxy kind.
    revoked = container.oidc.revoke_grant(ward, grant.grant_id, session.account_id)
    assert revoked.revoked_at is not None
    [revocation] = _audit(container, "portal:grant:revoke")
    assert revocation["actor"] == f"account:{session.account_id}"
    assert revocation["proxy_kind"] == "adult_guardian"
    assert rp.get("/api/v1/portal/self-information/income").status_code == 401
    by_action = {a.action: a for a in container.portal.activities(acting)}
    for action in ("api_consent_denied", "api_consent", "api_grant_revoked"):
        done = by_action[action]
        assert (done.actor_account_id, done.subject_account_id, done.proxy_kind) == (
            session.account_id, ward, ProxyKind.ADULT_GUARDIAN), action
        assert "家計簿アプリ" in done.detail
    assert "income" in by_action["api_consent"].detail


def test_only_the_resident_or_a_live_proxy_may_revoke_a_grant(
    app: TestClient, container: Container, holder: CardHolder, clerk: StaffPrincipal,
) -> None:
    client = approved_client(container)
    session = login(container, holder)
    rp = rp_for(app, client)
    flow = start(rp)
    exchange(rp, answer(browser(container, session), flow.authorize_url), flow)
    [grant] = container.oidc.grants(session.account_id)
    stranger = login(container, issue_card_holder(container, clerk, given_name="次郎",
                                                  given_name_kana="ジロウ"))
    with pytest.raises(NotAProxy):  # not the resident's proxy: cannot revoke in their name
        container.oidc.revoke_grant(session.account_id, grant.grant_id, stranger.account_id)
    assert container.oidc.grants(session.account_id)[0].revoked_at is None
    assert rp.get("/api/v1/portal/self-information/income").status_code == 200
    container.oidc.revoke_grant(session.account_id, grant.grant_id, session.account_id)
    [mine] = [a for a in container.portal.activities(session) if a.action == "api_grant_revoked"]
    assert mine.actor_account_id == mine.subject_account_id == session.account_id
    assert mine.proxy_kind is None


def test_a_proxy_whose_relation_expired_cannot_consent_for_the_principal(
    app: TestClient, container: Container, holder: CardHolder, clerk: StaffPrincipal,
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    proxy = _ward_of(container, clerk, holder, valid_until=today)
    ward = proxy.principal_account_id
    session = login(container, holder)
    acting = container.portal.act_for(session.token, ward)
    client = approved_client(container)
    guardian = browser(container, acting)
    flow = start(rp_for(app, client))
    form: dict[str, Any] = consent_form(guardian.get(flow.authorize_url).text)
    # The court's appointment ends while the session still acts for the ward.
    with container.databases.unit_of_work("portal") as db:
        db.execute(text("UPDATE proxies SET valid_until = :d WHERE id = :p"),
                   {"d": today - dt.timedelta(days=1), "p": proxy.proxy_id})
    assert container.portal.session(acting.token).acting_for == ward  # not switched back
    done = guardian.post("/oauth/authorize", data={**form, "decision": "approve",
                                                   "scope": ["income"]},
                         follow_redirects=False)
    assert done.status_code == 403 and "location" not in done.headers
    assert "access_denied" in done.text and done.headers["x-frame-options"] == "DENY"
    again = guardian.get(start(rp_for(app, client)).authorize_url, follow_redirects=False)
    assert again.status_code == 403 and "location" not in again.headers
    assert 'name="consent_id"' not in again.text
    assert container.oidc.grants(ward) == []
    assert container.oidc.releases(ward) == []


def test_a_stale_proxy_session_cannot_consent_after_the_relation_is_revoked(
    app: TestClient, container: Container, holder: CardHolder, clerk: StaffPrincipal,
) -> None:
    proxy = _ward_of(container, clerk, holder)
    ward = proxy.principal_account_id
    session = login(container, holder)
    acting = container.portal.act_for(session.token, ward)
    client = approved_client(container)
    flow = start(rp_for(app, client))
    form = consent_form(browser(container, acting).get(flow.authorize_url).text)
    container.portal.revoke_proxy(clerk.actor, proxy.proxy_id)
    # The session value the consent page was shown with still says "acting for the ward".
    outcome = container.oidc.decide(acting, form["consent_id"], form["csrf_token"], True,
                                    ["income"])
    assert isinstance(outcome, AuthorizationProblem)
    assert (outcome.error, outcome.status) == ("access_denied", 403)
    assert container.oidc.grants(ward) == []
    assert container.oidc.grants(session.account_id) == []


def test_a_consent_page_shown_for_one_person_cannot_grant_for_another(
    app: TestClient, container: Container, holder: CardHolder, clerk: StaffPrincipal,
) -> None:
    proxy = _ward_of(container, clerk, holder)
    session = login(container, holder)
    acting = container.portal.act_for(session.token, proxy.principal_account_id)
    client = approved_client(container)
    flow = start(rp_for(app, client))
    guardian = browser(container, acting)
    form: dict[str, Any] = consent_form(guardian.get(flow.authorize_url).text)
    container.portal.act_for(session.token, None)  # another tab switches back to self
    done = guardian.post("/oauth/authorize", data={**form, "decision": "approve",
                                                   "scope": ["income"]},
                         follow_redirects=False)
    assert done.status_code == 400 and "location" not in done.headers
    assert container.oidc.grants(session.account_id) == []
    assert container.oidc.grants(proxy.principal_account_id) == []


def test_revoking_the_proxy_relation_stops_the_clients_access_to_the_ward(
    app: TestClient, container: Container, holder: CardHolder, clerk: StaffPrincipal,
) -> None:
    proxy = _ward_of(container, clerk, holder)
    ward = proxy.principal_account_id
    session = login(container, holder)
    acting = container.portal.act_for(session.token, ward)
    client = approved_client(container)
    rp = rp_for(app, client)
    flow = start(rp)
    exchange(rp, answer(browser(container, acting), flow.authorize_url), flow)
    first = rp.get("/api/v1/portal/self-information/income")
    assert first.status_code == 200, first.text
    assert len(container.oidc.releases(ward)) == 1
    container.portal.revoke_proxy(clerk.actor, proxy.proxy_id)
    refused = rp.get("/api/v1/portal/self-information/income")
    assert refused.status_code in (401, 403), refused.text
    assert rp.get("/oauth/userinfo").status_code in (401, 403)
    assert len(container.oidc.releases(ward)) == 1  # nothing more was released
    [grant] = container.oidc.grants(ward)
    assert grant.revoked_at is not None


def test_a_proxy_grant_stops_when_the_registration_lapses_without_any_revocation(
    app: TestClient, container: Container, holder: CardHolder, clerk: StaffPrincipal,
) -> None:
    proxy = _ward_of(container, clerk, holder)
    ward = proxy.principal_account_id
    acting = container.portal.act_for(login(container, holder).token, ward)
    client = approved_client(container)
    rp = rp_for(app, client)
    flow = start(rp)
    exchange(rp, answer(browser(container, acting), flow.authorize_url), flow)
    assert rp.get("/api/v1/portal/self-information/income").status_code == 200
    [grant] = container.oidc.grants(ward)
    assert grant.proxy_kind is not None and grant.actor_account_id == acting.account_id
    # The registration's end date passes; nobody acts, nothing is revoked.
    with container.databases.unit_of_work("portal") as session:
        session.execute(text("UPDATE proxies SET valid_until = :d WHERE id = :i"),
                        {"d": dt.date.today() - dt.timedelta(days=1), "i": proxy.proxy_id})
    refused = rp.get("/api/v1/portal/self-information/income")
    assert refused.status_code == 401, refused.text
    assert "no longer registered" in refused.json()["detail"]
    assert len(container.oidc.releases(ward)) == 1

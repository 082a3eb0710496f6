"""The whole flow as a strict third-party relying party sees it (issue 10, item 6): Authlib's
OAuth2Client drives code + PKCE; the ID token is checked with joserfc (signature by the JWKS
key named by ``kid``, RS256 only, iss, aud, exp, iat, nonce, auth_time, at_hash) and, when
pyoidc (``oic``) is installed, once more with pyoidc's own verification; UserInfo by POST;
the standard claims (Core 5.1); ``max_age``; ``prompt=login``; ``prompt=none``; the refused
``request``; and key rotation (a token signed before it still verifies through the JWKS)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.httpx_client import OAuth2Client
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import text

from mynumber.app import Container, create_app
from mynumber.keys import KeyError_
from mynumber.portal.interfaces import ClientRecord, PortalSession
from mynumber.portal.oauth import SigningKeys, load_signing_key, rotate_signing_keys
from mynumber.portal.oauth.keys import KEEP_RETIRED
from tests.portal.conftest import CITY, CardHolder, hold, login, resident_record
from tests.portal.test_oidc import (
    BASE,
    INCOME,
    Flow,
    answer,
    approved_client,
    browser,
    exchange,
    rp_for,
    start,
)


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


def strict_id_token(rp: OAuth2Client, token: dict[str, Any], client: ClientRecord,
                    flow: Flow, issuer: str, max_age: int | None = None) -> dict[str, Any]:
    """What a strict relying party checks before it believes an ID token."""
    jwks = KeySet.import_key_set(rp.get("/oauth/jwks").json())
    header = jwt.decode(token["id_token"], jwks, algorithms=["RS256"]).header
    assert header["alg"] == "RS256" and header["kid"] in {k.kid for k in jwks.keys}
    decoded = jwt.decode(token["id_token"], jwks.get_by_kid(header["kid"]),
                         algorithms=["RS256"])
    now = int(time.time())
    JWTClaimsRegistry(
        now=now, leeway=5,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client.client_id},
        exp={"essential": True}, iat={"essential": True}, sub={"essential": True},
        nonce={"essential": True, "value": flow.nonce}, auth_time={"essential": True},
    ).validate(decoded.claims)
    claims: dict[str, Any] = decoded.claims
    assert claims["iat"] <= now + 5 and claims["exp"] > now
    if "at_hash" in claims:  # Core 3.1.3.6: left half of SHA-256 of the access token
        digest = hashlib.sha256(token["access_token"].encode()).digest()
        expected = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
        assert claims["at_hash"] == expected
    if max_age is not None:
        assert now - claims["auth_time"] <= max_age + 5
    _pyoidc_verifies(token, rp.get("/oauth/jwks").json(), issuer, client.client_id)
    return claims


def _pyoidc_verifies(token: dict[str, Any], jwks: dict[str, Any], issuer: str,
                     client_id: str) -> None:
    try:
        from oic.oic.message import AccessTokenResponse
        from oic.utils.keyio import KeyBundle, KeyJar
    except ImportError:  # pyoidc is optional (dev extra)
        return
    keyjar = KeyJar()
    keyjar.add_kb(issuer, KeyBundle(jwks["keys"]))
    response = AccessTokenResponse().from_dict(dict(token))
    assert response.verify(keyjar=keyjar, iss=issuer, client_id=client_id, skew=5)
    assert response["id_token"]["aud"] == [client_id]


def _age(container: Container, session: PortalSession, seconds: int) -> None:
    """Pretend the card login behind ``session`` happened ``seconds`` ago."""
    with container.databases.unit_of_work("portal") as db:
        db.execute(text("UPDATE portal_sessions SET started_at = :at WHERE session_id = :s"),
                   {"at": session.started_at - dt.timedelta(seconds=seconds),
                    "s": session.session_id})


def _query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


def test_code_pkce_post_userinfo_and_standard_claims(app: TestClient, container: Container,
                                                      holder: CardHolder) -> None:
    client = approved_client(container)
    rp = rp_for(app, client, scope="openid basic_four")
    resident = browser(container, login(container, holder))
    flow = start(rp)
    token = exchange(rp, answer(resident, flow.authorize_url), flow)
    claims = strict_id_token(rp, token, client, flow, container.settings.issuer)
    meta = rp.get("/.well-known/openid-configuration").json()
    assert {"birthdate", "gender", "address"} <= set(meta["claims_supported"])
    assert not {"birth_date", "sex"} & set(meta["claims_supported"])

    # UserInfo by POST (Core 5.3.1), the token in the header.
    info = rp.post("/oauth/userinfo")
    assert info.status_code == 200, info.text
    body = info.json()
    assert body["sub"] == claims["sub"]
    resident_data = holder.resident
    assert body["name"] == resident_data.name
    assert body["birthdate"] == resident_data.birth_date.isoformat()
    assert body["gender"] in ("male", "female") and body["gender"] == resident_data.sex.value
    address = body["address"]
    assert address["formatted"] == resident_data.address and address["country"] == "JP"
    assert address["region"] == "東京都" and address["locality"] == "新宿区"
    assert resident_data.address == "東京都新宿区" + address["street_address"]
    assert not {"birth_date", "sex"} & set(body)
    try:
        from oic.oic.message import OpenIDSchema
    except ImportError:
        pass
    else:
        assert OpenIDSchema().from_dict(body).verify()
    # The token in the form body instead (RFC 6750 2.2); both at once is refused.
    plain = app.post("/oauth/userinfo", data={"access_token": token["access_token"]})
    assert plain.status_code == 200 and plain.json()["sub"] == claims["sub"]
    both = rp.post("/oauth/userinfo", data={"access_token": token["access_token"]})
    assert both.status_code == 400 and both.json()["code"] == "invalid_request"
    assert app.post("/oauth/userinfo").status_code == 401


def test_max_age_and_prompt_login_ask_for_a_fresh_card_login(
    app: TestClient, container: Container, holder: CardHolder,
) -> None:
    client = approved_client(container)
    rp = rp_for(app, client)
    session = login(container, holder)
    _age(container, session, 1200)  # logged in 20 minutes ago
    resident = browser(container, session)
    young_enough = resident.get(start(rp, max_age="3600").authorize_url, follow_redirects=False)
    assert young_enough.status_code == 200  # the consent page
    for extra in ({"max_age": "60"}, {"prompt": "login"}):
        flow = start(rp, **extra)
        sent = resident.get(flow.authorize_url, follow_redirects=False)
        assert sent.status_code == 303, extra
        target = urlsplit(sent.headers["location"])
        assert target.path == "/portal/login"
        back = parse_qs(target.query)["next"][0]
        assert "max_age" not in back and "prompt" not in back  # satisfied by the login
        fresh = login(container, holder, previous_token=session.token)
        again = browser(container, fresh)
        token = exchange(rp, answer(again, back), flow)
        claims = strict_id_token(rp, token, client, flow, container.settings.issuer,
                                 max_age=60)
        assert claims["auth_time"] == int(fresh.started_at.timestamp())
        session = fresh
        _age(container, session, 1200)
        resident = browser(container, session)


def test_prompt_none_never_shows_a_page(app: TestClient, container: Container,
                                        holder: CardHolder) -> None:
    client = approved_client(container)
    rp = rp_for(app, client)
    anonymous = browser(container, None).get(start(rp, prompt="none").authorize_url,
                                             follow_redirects=False)
    assert anonymous.status_code == 302
    assert _query(anonymous.headers["location"])["error"] == ["login_required"]
    session = login(container, holder)
    resident = browser(container, session)
    flow = start(rp, prompt="none")
    no_consent = resident.get(flow.authorize_url, follow_redirects=False)
    query = _query(no_consent.headers["location"])
    assert query["error"] == ["consent_required"] and query["state"] == [flow.state]
    # Consent once; then prompt=none answers at once under that grant.
    first = start(rp)
    exchange(rp, answer(resident, first.authorize_url), first)
    grants_before = len(container.oidc.grants(session.acting_for))
    flow = start(rp, prompt="none")
    silent = resident.get(flow.authorize_url, follow_redirects=False)
    assert silent.status_code == 302 and "code" in _query(silent.headers["location"])
    token = exchange(rp, silent.headers["location"], flow)
    strict_id_token(rp, token, client, flow, container.settings.issuer)
    assert len(container.oidc.grants(session.acting_for)) == grants_before  # no new consent
    # A broader request than the grant needs consent; an old login needs a login.
    broader = resident.get(start(rp, prompt="none", scope="openid income pension")
                           .authorize_url, follow_redirects=False)
    assert _query(broader.headers["location"])["error"] == ["consent_required"]
    _age(container, session, 1200)
    stale = resident.get(start(rp, prompt="none", max_age="60").authorize_url,
                         follow_redirects=False)
    assert _query(stale.headers["location"])["error"] == ["login_required"]


def test_the_request_parameter_is_refused(app: TestClient, container: Container,
                                          holder: CardHolder) -> None:
    client = approved_client(container)
    rp = rp_for(app, client)
    resident = browser(container, login(container, holder))
    flow = start(rp, request="eyJhbGciOiJub25lIn0.e30.")
    got = resident.get(flow.authorize_url, follow_redirects=False)
    assert got.status_code == 302
    query = _query(got.headers["location"])
    assert query["error"] == ["request_not_supported"] and query["state"] == [flow.state]
    assert app.get("/.well-known/openid-configuration").json()[
        "request_parameter_supported"] is False


def test_rotated_keys_keep_earlier_tokens_verifiable_until_they_expire(
    app: TestClient, container: Container, holder: CardHolder, tmp_path: Path,
) -> None:
    key_dir = tmp_path / "oidc-keys"
    clock = [dt.datetime.now(dt.UTC)]
    container.oidc.signing_keys = SigningKeys(key_dir, development=True, clock=lambda: clock[0])
    client = approved_client(container)
    rp = rp_for(app, client)
    resident = browser(container, login(container, holder))
    flow = start(rp)
    before = exchange(rp, answer(resident, flow.authorize_url), flow)
    old_kid = jwt.decode(before["id_token"], KeySet.import_key_set(
        rp.get("/oauth/jwks").json()), algorithms=["RS256"]).header["kid"]

    rotation = rotate_signing_keys(key_dir, development=True, now=clock[0])
    assert rotation.retired == old_kid and rotation.current != old_kid
    published = {k["kid"] for k in rp.get("/oauth/jwks").json()["keys"]}
    assert published == {old_kid, rotation.current}
    strict_id_token(rp, before, client, flow, container.settings.issuer)  # still verifies
    flow = start(rp)
    after = exchange(rp, answer(resident, flow.authorize_url), flow)
    claims_header = jwt.decode(after["id_token"], KeySet.import_key_set(
        rp.get("/oauth/jwks").json()), algorithms=["RS256"]).header
    assert claims_header["kid"] == rotation.current

    # Once every token the old key signed has expired, it leaves the JWKS and then the disk.
    clock[0] += KEEP_RETIRED + dt.timedelta(seconds=1)
    assert {k["kid"] for k in rp.get("/oauth/jwks").json()["keys"]} == {rotation.current}
    third = rotate_signing_keys(key_dir, development=True, now=clock[0])
    assert third.dropped == (old_kid,)
    assert sorted(p.name for p in key_dir.glob("*.pem")) == sorted(
        f"portal.oidc_signing.{kid}.pem" for kid in (rotation.current, third.current))
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in key_dir.iterdir()
               if not p.name.startswith("."))


def test_production_has_keys_only_after_the_rotate_command(tmp_path: Path) -> None:
    with pytest.raises(KeyError_):
        load_signing_key(tmp_path, development=False)
    assert not any(tmp_path.iterdir())
    first = rotate_signing_keys(tmp_path, development=False)
    assert first.retired is None
    assert load_signing_key(tmp_path, development=False).kid == first.current
    second = rotate_signing_keys(tmp_path, development=False)
    keys = SigningKeys(tmp_path, development=False)
    assert keys.current().kid == second.current
    assert {k["kid"] for k in keys.jwks()["keys"]} == {first.current, second.current}
    development = tmp_path / "dev"
    rotate_signing_keys(development, development=True)
    with pytest.raises(KeyError_):  # a development key set is refused in production
        rotate_signing_keys(development, development=False)


def test_the_rotate_keys_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mynumber.cli import app as cli

    env = {"MYNUMBER_DATA_DIR": str(tmp_path / "data"), "MYNUMBER_KEY_DIR": str(tmp_path / "k")}
    runner = CliRunner()
    first = runner.invoke(cli, ["oidc", "rotate-keys"], env=env)
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, ["oidc", "rotate-keys"], env=env)
    assert second.exit_code == 0 and "stays published" in second.output
    refused = runner.invoke(cli, ["oidc", "rotate-keys"],
                            env={**env, "MYNUMBER_MODE": "production"})
    assert refused.exit_code != 0

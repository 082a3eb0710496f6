"""A third-party app asking the local portal for your items (the self-information API).

Run `make run`, note the demo API client's id and secret that `mynumber seed` printed (or
register your own: `mynumber api-clients register ...` then `approve`), and:

    .venv/bin/python examples/oidc_client.py CLIENT_ID CLIENT_SECRET

(``--portal URL`` when the portal is not at http://127.0.0.1:8000, e.g. `make run PORT=8001`.)
Open the printed URL, log in with a demo card (virtual card reader, PIN 1234), choose the items
to release and approve. Your browser is sent to http://127.0.0.1:8765/callback?code=... (nothing
listens there: copy that URL from the address bar) and paste it here. The app then prints what
the portal released; the release shows in your やりとり履歴 at <portal>/portal/history.

A demo: with MYNUMBER_MODE=production in its environment it refuses to run (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

PORTAL = "http://127.0.0.1:8000"
REDIRECT = "http://127.0.0.1:8765/callback"
SCOPES = ("basic_four", "income")


def refuse_in_production() -> None:
    """The demo client is for the local embedded system: never pointed at production."""
    if os.environ.get("MYNUMBER_MODE", "").strip().lower() == "production":
        print("error: examples/oidc_client.py is a demo client and production mode refuses it "
              "(MYNUMBER_MODE=production); nothing was sent.", file=sys.stderr)
        sys.exit(2)


def discover(portal: str) -> dict[str, Any]:
    """The provider's metadata (OpenID Connect Discovery): endpoints and issuer as the portal
    states them, so that nothing but the base URL is configured here."""
    url = f"{portal}/.well-known/openid-configuration"
    try:
        answer = httpx.get(url, timeout=10)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        sys.exit(f"error: cannot read {url} ({exc}): is the portal running there "
                 "(`make run`)? Give its address with --portal URL.")
    metadata: dict[str, Any] = answer.json()
    return metadata


def main(client_id: str, client_secret: str, portal: str = PORTAL) -> None:
    refuse_in_production()
    portal = portal.rstrip("/")
    provider = discover(portal)
    app = OAuth2Client(client_id, client_secret, scope=" ".join(("openid", *SCOPES)),
                       redirect_uri=REDIRECT, code_challenge_method="S256")
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, _state = app.create_authorization_url(provider["authorization_endpoint"],
                                               code_verifier=verifier, nonce=nonce)
    print("open:", url, flush=True)
    redirected = input("paste the callback URL: ").strip()
    print()
    token = app.fetch_token(provider["token_endpoint"], authorization_response=redirected,
                            code_verifier=verifier)
    keys = KeySet.import_key_set(app.get(provider["jwks_uri"]).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider["issuer"]},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce}, exp={"essential": True},
    ).validate(id_token.claims)
    print("sub (pairwise, for this app only):", id_token.claims["sub"])
    for scope in SCOPES:
        answer = app.get(f"{portal}/api/v1/portal/self-information/{scope}")
        print(scope, answer.status_code, json.dumps(answer.json(), ensure_ascii=False))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="examples/oidc_client.py",
        description="A demo third-party app: the OpenID Connect flow against the portal, then "
                    "the self-information API with the token it got.")
    parser.add_argument("client_id", help="the API client's id (`mynumber seed` prints the "
                        "demo client's)")
    parser.add_argument("client_secret", help="its secret")
    parser.add_argument("--portal", default=PORTAL, metavar="URL",
                        help=f"the portal's base URL (default {PORTAL})")
    return parser.parse_args(argv)


if __name__ == "__main__":
    refuse_in_production()
    arguments = parse(sys.argv[1:])
    main(arguments.client_id, arguments.client_secret, arguments.portal)

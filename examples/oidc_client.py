"""A third-party app asking the local portal for your items (the self-information API).

Run `make run`, note the demo API client's id and secret that `mynumber seed` printed (or
register your own: `mynumber api-clients register ...` then `approve`), and:

    .venv/bin/python examples/oidc_client.py CLIENT_ID CLIENT_SECRET

Open the printed URL, log in with a demo card (virtual card reader, PIN 1234), choose the items
to release and approve. Your browser is sent to http://127.0.0.1:8765/callback?code=... (nothing
listens there: copy that URL from the address bar) and paste it here. The release then shows
in your やりとり履歴 at http://127.0.0.1:8000/portal/history.

A demo: with MYNUMBER_MODE=production in its environment it refuses to run (exit code 2).
"""

from __future__ import annotations

import os
import secrets
import sys

from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

PORTAL = "http://127.0.0.1:8000"
REDIRECT = "http://127.0.0.1:8765/callback"


def refuse_in_production() -> None:
    """The demo client is for the local embedded system: never pointed at production."""
    if os.environ.get("MYNUMBER_MODE", "").strip().lower() == "production":
        print("error: examples/oidc_client.py is a demo client and production mode refuses it "
              "(MYNUMBER_MODE=production); nothing was sent.", file=sys.stderr)
        sys.exit(2)


def main(client_id: str, client_secret: str) -> None:
    refuse_in_production()
    app = OAuth2Client(client_id, client_secret, scope="openid basic_four income",
                       redirect_uri=REDIRECT, code_challenge_method="S256")
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, _state = app.create_authorization_url(f"{PORTAL}/oauth/authorize",
                                               code_verifier=verifier, nonce=nonce)
    print("open:", url)
    redirected = input("paste the callback URL: ").strip()
    token = app.fetch_token(f"{PORTAL}/oauth/token", authorization_response=redirected,
                            code_verifier=verifier)
    keys = KeySet.import_key_set(app.get(f"{PORTAL}/oauth/jwks").json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": PORTAL}, aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce}, exp={"essential": True},
    ).validate(id_token.claims)
    print("sub (pairwise, for this app only):", id_token.claims["sub"])
    for scope in ("basic_four", "income"):
        answer = app.get(f"{PORTAL}/api/v1/portal/self-information/{scope}")
        print(scope, answer.status_code, answer.json())


if __name__ == "__main__":
    refuse_in_production()
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

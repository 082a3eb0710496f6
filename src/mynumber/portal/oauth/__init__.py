"""The self-information API (自己情報取得API) as an OpenID Provider built on Authlib.

* :mod:`.provider` -- :class:`OpenIdProvider`: authorization (PAR, ``prompt``, ``max_age``),
  token, UserInfo and resource endpoints, grants and releases;
* :mod:`.adapters` -- Authlib on Starlette: the request adapter and the grant classes;
* :mod:`.clients` -- API clients: registration, redirect-URI rules, vetting, monitoring;
* :mod:`.ratelimit` -- per-client rate limits and counters (per process);
* :mod:`.keys` -- the ID token signing keys, the JWKS and their rotation;
* :mod:`.claims` -- the standard claims (Core 5.1) of the 基本4情報;
* :mod:`.outcomes` -- what the endpoints answer the web layer;
* :mod:`.api`, :mod:`.schemas` -- the routes and their JSON shapes.

The tables are in :mod:`mynumber.portal.oauth_models` (the portal's metadata). See
docs/oidc.md.
"""

from __future__ import annotations

from mynumber.portal.oauth.adapters import HttpRequest
from mynumber.portal.oauth.clients import (
    DEMO_CLIENT_NAME,
    DEMO_REDIRECT_URI,
    TRANSITIONS,
    ApiClientsImpl,
    demo_client_id,
    seed_demo_client,
    validate_redirect_uri,
)
from mynumber.portal.oauth.common import (
    CODE_SECONDS,
    ID_TOKEN_SECONDS,
    PAIRWISE_KEY,
    PAR_SECONDS,
    TOKEN_SECONDS,
)
from mynumber.portal.oauth.keys import (
    SIGNING_KEY_FILE,
    SIGNING_META_FILE,
    SigningKeys,
    load_signing_key,
    provision_signing_key,
    rotate_signing_keys,
)
from mynumber.portal.oauth.outcomes import (
    NO_LONGER_A_PROXY,
    SESSION_ENDED,
    AuthorizationProblem,
    ClientNotApproved,
    ConsentItem,
    ConsentPage,
    InsufficientScope,
    InvalidToken,
    LoginRequired,
    SelfInformation,
)
from mynumber.portal.oauth.provider import OpenIdProvider

__all__ = [
    "CODE_SECONDS",
    "DEMO_CLIENT_NAME",
    "DEMO_REDIRECT_URI",
    "ID_TOKEN_SECONDS",
    "NO_LONGER_A_PROXY",
    "PAIRWISE_KEY",
    "PAR_SECONDS",
    "SESSION_ENDED",
    "SIGNING_KEY_FILE",
    "SIGNING_META_FILE",
    "TOKEN_SECONDS",
    "TRANSITIONS",
    "ApiClientsImpl",
    "AuthorizationProblem",
    "ClientNotApproved",
    "ConsentItem",
    "ConsentPage",
    "HttpRequest",
    "InsufficientScope",
    "InvalidToken",
    "LoginRequired",
    "OpenIdProvider",
    "SelfInformation",
    "SigningKeys",
    "demo_client_id",
    "load_signing_key",
    "provision_signing_key",
    "rotate_signing_keys",
    "seed_demo_client",
    "validate_redirect_uri",
]

"""Authlib on Starlette: the request adapter, the client/user/code objects Authlib asks
for, and the grant classes (authorization code + PKCE S256 + OpenID Connect).

Authlib supplies the protocol (``AuthorizationCodeGrant``, ``CodeChallenge``, ``OpenIDCode``,
client authentication); :class:`Server` adapts it to requests read once from Starlette and
hands storage to the :class:`~mynumber.portal.oauth.provider.OpenIdProvider`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Request,
)
from authlib.oauth2.rfc6749 import grants as oauth_grants
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from joserfc.jwk import RSAKey
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mynumber.portal.oauth.common import AUTH_METHODS, ID_TOKEN_SECONDS, TOKEN_SECONDS, hash_secret

if TYPE_CHECKING:
    from mynumber.portal.oauth.provider import OpenIdProvider

log = logging.getLogger("mynumber.portal.oidc")


@dataclass(frozen=True)
class HttpRequest:
    """What the provider needs of an HTTP request (read once from Starlette, then handed to
    Authlib synchronously)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    form: tuple[tuple[str, str], ...]
    headers: dict[str, str]

    @classmethod
    async def read(cls, request: Request) -> HttpRequest:
        form: tuple[tuple[str, str], ...] = ()
        if request.method == "POST":
            content_type = request.headers.get("content-type", "")
            if content_type.startswith("application/x-www-form-urlencoded"):
                data = await request.form()
                form = tuple((k, v) for k, v in data.multi_items() if isinstance(v, str))
        headers = {k.title(): v for k, v in request.headers.items()}
        return cls(request.method, request.url.path, tuple(request.query_params.multi_items()),
                   form, headers)

    @classmethod
    def of(cls, method: str, path: str, params: Sequence[tuple[str, str]]) -> HttpRequest:
        if method == "GET":
            return cls(method, path, tuple(params), (), {})
        return cls(method, path, (), tuple(params), {})


class Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: dict[str, list[str]] = {}
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist.setdefault(key, []).append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> Any:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, http: HttpRequest, issuer: str) -> None:
        query = f"?{urlencode(http.query)}" if http.query else ""
        super().__init__(http.method, f"{issuer}{http.path}{query}", headers=http.headers)
        self.http = http
        self.payload = Payload(http.query + http.form)
        self._args = dict(reversed(http.query))
        self._form = dict(reversed(http.form))

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass
class OAuthClient(ClientMixin):  # type: ignore[misc]
    client_id: str
    secret_hash: str
    name: str
    organisation: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    on_redirect_mismatch: Callable[[str], None]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # redirect_uri is required in every request (OIDC)

    def get_allowed_scope(self, scope: str | None) -> str | None:
        requested = scope_to_list(scope) or []
        allowed = {"openid", *self.scopes}
        if not requested or any(s not in allowed for s in requested):
            return None  # -> invalid_scope
        return " ".join(dict.fromkeys(requested))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        ok = redirect_uri in self.redirect_uris  # exact string match
        if not ok:
            self.on_redirect_mismatch(self.client_id)
        return ok

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(hash_secret(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class EndUser:
    account_id: int
    actor_account_id: int
    proxy_kind: str | None
    auth_time: dt.datetime
    scopes: tuple[str, ...]  # item scopes the resident chose
    client_id: str = ""
    grant_id: int = 0


@dataclass
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code_hash: str
    client_id: str
    grant_id: int
    account_id: int
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    auth_time: dt.datetime

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time.timestamp())


class Pkce(CodeChallenge):  # type: ignore[misc]
    """PKCE, required of every client and S256 only (``plain`` and a missing method are
    refused at the authorization endpoint; the verifier is required at the token endpoint)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def __init__(self, provider: OpenIdProvider) -> None:
        super().__init__(required=True)
        self.provider = provider

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge'")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        request = grant.request
        try:
            super().validate_code_verifier(grant, result)
        except OAuth2Error:
            self.provider.clients.record_anomaly(request.client.client_id, "pkce_failure")
            raise


class CodeGrant(oauth_grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)
    AUTHORIZATION_CODE_LENGTH = 43
    server: Server

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.server.provider.save_code(code, request)

    def query_authorization_code(self, code: str, client: OAuthClient) -> Code | None:
        return self.server.provider.claim_code(code, client)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        pass  # claimed (one use) in query_authorization_code

    def authenticate_user(self, authorization_code: Code) -> EndUser | None:
        return self.server.provider.user_of_code(authorization_code)


class OpenIdCodeExtension(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: OpenIdProvider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider
        # The key is taken once per ID token: a rotation between Authlib's calls for the
        # header and for the key must not give a header naming another key than the signer.
        self._local = threading.local()

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        self._local.key = self.provider.signing_key
        try:
            encoded: str = super().encode_id_token(token, request)
        finally:
            self._local.key = None
        return encoded

    def _key(self) -> RSAKey:
        key: RSAKey | None = getattr(self._local, "key", None)
        return key if key is not None else self.provider.signing_key

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.provider.nonce_used(request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: OAuthClient) -> RSAKey:
        return self._key()

    def get_client_algorithm(self, client: OAuthClient) -> str:
        return "RS256"

    def get_encode_header(self, client: OAuthClient) -> dict[str, str]:
        return {"alg": "RS256", "kid": self._key().kid or "", "typ": "JWT"}

    def get_client_claims(self, client: OAuthClient) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.provider.issuer, "aud": client.client_id, "iat": now,
                "exp": now + ID_TOKEN_SECONDS}

    def generate_user_info(self, user: EndUser, scope: str) -> dict[str, Any]:
        # The ID token carries the pairwise subject only: data goes through the resource API,
        # where every release is recorded.
        return {"sub": self.provider.subject(user.client_id, user.account_id)}


class Server(AuthorizationServer):  # type: ignore[misc]
    """Authlib's authorization server on Starlette: requests are read once into an
    :class:`HttpRequest`; responses are Starlette responses."""

    def __init__(self, provider: OpenIdProvider) -> None:
        super().__init__(scopes_supported=["openid", *provider.item_scopes()])
        self.provider = provider
        self.register_token_generator("default", self._generate_token)
        self.register_grant(CodeGrant, [Pkce(provider), OpenIdCodeExtension(provider)])

    def query_client(self, client_id: str) -> OAuthClient | None:
        return self.provider.oauth_client(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.provider.save_token(token, request)

    @staticmethod
    def _generate_token(grant_type: str, client: OAuthClient, user: Any = None,
                        scope: str | None = None, expires_in: int | None = None,
                        include_refresh_token: bool = True) -> dict[str, Any]:
        # No refresh tokens (docs/oidc.md): a client asks the resident again.
        return {"token_type": "Bearer", "access_token": secrets.token_urlsafe(32),
                "expires_in": TOKEN_SECONDS, "scope": scope or ""}

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        if not isinstance(request, HttpRequest):
            raise TypeError("read the Starlette request with HttpRequest.read first")
        return StarletteOAuth2Request(request, self.provider.issuer)

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        header_map = dict(headers or [])
        if isinstance(body, dict):
            header_map.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=header_map)
        return Response(body or b"", status_code=status, headers=header_map)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        log.debug("oauth signal %s", name)

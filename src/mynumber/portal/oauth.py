"""The self-information API (自己情報取得API) as an OpenID Provider built on Authlib: API
clients and their vetting, the authorization code flow with PKCE S256 only, PAR (RFC 9126),
pairwise subjects, consent grants, releases, per-client rate limits and monitoring.

Authlib supplies the protocol (``AuthorizationCodeGrant``, ``CodeChallenge``, ``OpenIDCode``,
client authentication); :class:`_Server` adapts it to Starlette requests, and this module
stores clients, codes, tokens, grants and releases in the portal database. See docs/oidc.md.

What a client never gets: the 個人番号, a certificate serial, the portal's account id. Its
``sub`` is an HMAC of (client id, account) under the portal's pairwise key, so two clients
cannot join their users on it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

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
from sqlalchemy import func, select, update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mynumber.audit import record as audit
from mynumber.db import Databases, HotConnections, HotSQL, utcnow
from mynumber.errors import DomainError, Forbidden, NotAuthenticated
from mynumber.keys import KeyError_
from mynumber.portal.interfaces import (
    ClientMonitoring,
    ClientNotFound,
    ClientRecord,
    ClientState,
    ClientStateConflict,
    GrantNotFound,
    GrantRecord,
    InformationSource,
    InvalidClient,
    NotAProxy,
    PortalSession,
    ProxyKind,
    RateLimited,
    Release,
    SessionExpired,
)
from mynumber.portal.models import ActivityRow, AuditEvent
from mynumber.portal.oauth_models import (
    AccessToken,
    ApiClient,
    AuthorizationCode,
    ClientAnomaly,
    ConsentRequest,
    Grant,
    PushedRequest,
    ReleaseRecord,
)
from mynumber.portal.services import MUNICIPALITY, hash_secret
from mynumber.settings import Mode, Settings

log = logging.getLogger("mynumber.portal.oidc")

CODE_SECONDS = 60
TOKEN_SECONDS = 600
PAR_SECONDS = 60
CONSENT_SECONDS = 600
ID_TOKEN_SECONDS = 600
PAIRWISE_KEY = "portal.pairwise"
SIGNING_KEY_FILE = "portal.oidc_signing.pem"
SIGNING_META_FILE = "portal.oidc_signing.meta.json"
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
DEFAULT_RATE_LIMIT = 600
MAX_REDIRECT_URIS = 10
AUTH_METHODS = ("client_secret_basic", "client_secret_post")

# applied -> approved|retired, approved -> suspended|retired, suspended -> approved|retired
TRANSITIONS: dict[ClientState, frozenset[ClientState]] = {
    ClientState.APPLIED: frozenset({ClientState.APPROVED, ClientState.RETIRED}),
    ClientState.APPROVED: frozenset({ClientState.SUSPENDED, ClientState.RETIRED}),
    ClientState.SUSPENDED: frozenset({ClientState.APPROVED, ClientState.RETIRED}),
    ClientState.RETIRED: frozenset(),
}


def _detail(text: str) -> str:
    """An activity's detail: one line, no control characters, at most 500 characters."""
    return "".join(" " if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 else c for c in text)[:500]


# Portal activity names of the self-information API (the activities page shows them).
ACTIVITY_CONSENT = "api_consent"
ACTIVITY_CONSENT_DENIED = "api_consent_denied"
ACTIVITY_GRANT_REVOKED = "api_grant_revoked"


# --- errors of the resource side (bearer tokens, RFC 6750) ---------------------------------------


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    title = "The access token is missing, expired or revoked"


class InsufficientScope(Forbidden):
    code = "insufficient_scope"
    title = "The grant does not cover this item"


class ClientNotApproved(Forbidden):
    code = "client_not_approved"
    title = "The API client is not approved"


# --- the ID token signing key ------------------------------------------------------------------


def provision_signing_key(key_dir: Path, *, development: bool) -> Path:
    """Create the RSA key the provider signs ID tokens with (``mynumber api-clients
    signing-key`` in production; created on first use in the embedded mode)."""
    key_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(key_dir, 0o700)
    path = key_dir / SIGNING_KEY_FILE
    key = RSAKey.generate_key(3072, private=True)
    pem = key.as_pem(private=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    meta = key_dir / SIGNING_META_FILE
    fd = os.open(meta, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps({"purpose": "portal.oidc_signing", "development": development,
                                 "alg": "RS256"}))
    return path


def load_signing_key(key_dir: Path, *, development: bool) -> RSAKey:
    """The ID token key. The embedded mode creates a development key on first use; production
    mode refuses a development key and never creates one silently."""
    path, meta = key_dir / SIGNING_KEY_FILE, key_dir / SIGNING_META_FILE
    if not path.exists():
        if not development:
            raise KeyError_(
                f"the OIDC signing key is not provisioned in {key_dir}; run "
                "`mynumber api-clients signing-key --production`"
            )
        try:
            provision_signing_key(key_dir, development=True)
        except FileExistsError:  # another process created it meanwhile
            pass
    marked_development = json.loads(meta.read_text()).get("development") is not False
    if marked_development and not development:
        raise KeyError_("the OIDC signing key is a development key; production mode refuses it")
    key = RSAKey.import_key(path.read_bytes())
    key.ensure_kid()
    return key


# --- clients -----------------------------------------------------------------------------------


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def validate_redirect_uri(uri: str) -> str:
    """Absolute https URLs, or http on a loopback host only (RFC 8252 §7.3); no fragment, no
    user information, no wildcard."""
    if len(uri) > 500 or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        raise InvalidClient("a redirect URI is too long or has spaces or control characters",
                            field="redirect_uris")
    if "*" in uri:
        raise InvalidClient("redirect URIs may not contain wildcards", field="redirect_uris")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise InvalidClient("a redirect URI is not a URL", field="redirect_uris") from None
    del port
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidClient("redirect URIs must be absolute https URLs", field="redirect_uris")
    if parts.fragment or "#" in uri:
        raise InvalidClient("redirect URIs may not have a fragment", field="redirect_uris")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidClient("redirect URIs may not carry user information",
                            field="redirect_uris")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise InvalidClient("http redirect URIs are allowed on the loopback interface only "
                            "(127.0.0.1, [::1], localhost)", field="redirect_uris")
    return uri


def _record_of(row: ApiClient, secret: str | None = None) -> ClientRecord:
    return ClientRecord(
        client_id=row.client_id, name=row.name, organisation=row.organisation,
        contact=row.contact, redirect_uris=tuple(row.redirect_uris), scopes=tuple(row.scopes),
        state=ClientState(row.state), rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=row.created_at, state_changed_at=row.state_changed_at,
        state_reason=row.state_reason, client_secret=secret,
    )


class _Counters:
    """Per-client request counters kept in memory and flushed with one UPDATE per client at
    most once a second (and whenever monitoring is read), so the hot path writes nothing
    for them. A process that dies loses at most its last second of counts."""

    FLUSH_SECONDS = 1.0

    def __init__(self, databases: Databases) -> None:
        self.databases = databases
        self._lock = threading.Lock()
        self._pending: dict[str, list[Any]] = {}  # client -> [requests, refusals, limited, last]
        self._last_flush = time.monotonic()
        self._hot = HotConnections(databases, "portal")
        self._update = HotSQL(
            "UPDATE oidc_clients SET requests = requests + :r, refusals = refusals + :f, "
            "rate_limited = rate_limited + :l, last_request_at = :at WHERE client_id = :c"
        )

    def count(self, client_id: str, *, refused: bool = False, limited: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            entry = self._pending.get(client_id)
            if entry is None:
                entry = self._pending[client_id] = [0, 0, 0, None]
            entry[0] += 1
            entry[1] += refused
            entry[2] += limited
            entry[3] = utcnow()
            due = now - self._last_flush >= self.FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        if not pending:
            return
        with self._hot.connection() as raw:
            for client_id, (r, f, limited, at) in pending.items():
                self._hot.run(raw, self._update,
                              {"r": r, "f": f, "l": limited, "at": at, "c": client_id})


class ApiClientsImpl:
    """Registration, vetting (state changes with actor and reason in the audit table),
    rate limits and monitoring of API clients."""

    def __init__(self, databases: Databases) -> None:
        self.databases = databases
        self.counters = _Counters(databases)
        # Set by the OpenIdProvider at wiring: the item scopes the portal offers.
        self.known_scopes: Callable[[], Sequence[str]] = lambda: ()

    def register(self, name: str, organisation: str, contact: str,
                 redirect_uris: Sequence[str], scopes: Sequence[str]) -> ClientRecord:
        for value, label in ((name, "name"), (organisation, "organisation"),
                             (contact, "contact")):
            if not value.strip() or len(value) > 200:
                raise InvalidClient(f"{label} must be 1 to 200 characters", field=label)
        uris = list(dict.fromkeys(validate_redirect_uri(u) for u in redirect_uris))
        if not uris:
            raise InvalidClient("at least one redirect URI is needed", field="redirect_uris")
        if len(uris) > MAX_REDIRECT_URIS:
            raise InvalidClient(f"at most {MAX_REDIRECT_URIS} redirect URIs",
                                field="redirect_uris")
        known = set(self.known_scopes())
        wanted = list(dict.fromkeys(s for s in scopes if s != "openid"))
        unknown = [s for s in wanted if s not in known]
        if unknown or not wanted:
            raise InvalidClient("scopes must be item scopes the portal offers "
                                f"({', '.join(sorted(known))})", field="scopes")
        client_id = "mnc_" + secrets.token_urlsafe(18)
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        row = ApiClient(
            client_id=client_id, secret_hash=hash_secret(secret), name=name.strip(),
            organisation=organisation.strip(), contact=contact.strip(), redirect_uris=uris,
            scopes=wanted, state=ClientState.APPLIED.value,
            rate_limit_per_minute=DEFAULT_RATE_LIMIT, created_at=now, state_changed_at=now,
            state_reason="applied", requests=0, refusals=0, rate_limited=0,
        )
        with self.databases.unit_of_work("portal") as session:
            session.add(row)
            audit(session, AuditEvent, "portal:client:apply", actor="applicant",
                  subject=client_id, name=row.name, scopes=wanted)
        return _record_of(row, secret)

    def _row(self, session: Any, client_id: str) -> ApiClient:
        row: ApiClient | None = session.scalars(
            select(ApiClient).where(ApiClient.client_id == client_id)).first()
        if row is None:
            raise ClientNotFound("no API client with this id", field="client_id")
        return row

    def set_state(self, actor: str, client_id: str, state: ClientState,
                  reason: str) -> ClientRecord:
        state = ClientState(state)
        with self.databases.unit_of_work("portal") as session:
            row = self._row(session, client_id)
            current = ClientState(row.state)
            if state not in TRANSITIONS[current]:
                raise ClientStateConflict(
                    f"a client in state {current.value} cannot become {state.value}",
                    field="state", current=current.value)
            row.state = state.value
            row.state_changed_at = utcnow()
            row.state_reason = reason[:500]
            audit(session, AuditEvent, "portal:client:state", actor=actor, subject=client_id,
                  reason=reason[:200], from_state=current.value, to_state=state.value)
            return _record_of(row)

    def set_rate_limit(self, actor: str, client_id: str, per_minute: int) -> ClientRecord:
        if not 1 <= per_minute <= 1_000_000:
            raise InvalidClient("the rate limit must be 1 to 1,000,000 a minute",
                                field="per_minute")
        with self.databases.unit_of_work("portal") as session:
            row = self._row(session, client_id)
            previous = row.rate_limit_per_minute
            row.rate_limit_per_minute = per_minute
            audit(session, AuditEvent, "portal:client:rate_limit", actor=actor,
                  subject=client_id, previous=previous, per_minute=per_minute)
            return _record_of(row)

    def client(self, client_id: str) -> ClientRecord:
        with self.databases.unit_of_work("portal") as session:
            return _record_of(self._row(session, client_id))

    def clients(self, state: ClientState | None = None) -> list[ClientRecord]:
        with self.databases.unit_of_work("portal") as session:
            query = select(ApiClient).order_by(ApiClient.id)
            if state is not None:
                query = query.where(ApiClient.state == ClientState(state).value)
            return [_record_of(r) for r in session.scalars(query)]

    def record_anomaly(self, client_id: str, kind: str) -> None:
        log.warning("api client anomaly %s", kind)
        with self.databases.unit_of_work("portal") as session:
            session.add(ClientAnomaly(client_id=client_id, kind=kind, occurred_at=utcnow()))

    def monitoring(self, client_id: str) -> ClientMonitoring:
        self.counters.flush()
        with self.databases.unit_of_work("portal") as session:
            row = self._row(session, client_id)
            releases, subjects = session.execute(
                select(func.count(ReleaseRecord.id),
                       func.count(func.distinct(ReleaseRecord.account_id)))
                .where(ReleaseRecord.client_id == client_id)).one()
            anomalies = session.scalar(select(func.count(ClientAnomaly.id))
                                       .where(ClientAnomaly.client_id == client_id)) or 0
            recent = session.execute(
                select(ClientAnomaly.occurred_at, ClientAnomaly.kind)
                .where(ClientAnomaly.client_id == client_id)
                .order_by(ClientAnomaly.id.desc()).limit(10)).all()
            return ClientMonitoring(
                client_id=client_id, state=ClientState(row.state), requests=row.requests,
                releases=releases, refusals=row.refusals, rate_limited=row.rate_limited,
                anomalies=anomalies, distinct_subjects=subjects,
                last_request_at=row.last_request_at,
                recent_anomalies=tuple(f"{at.isoformat(timespec='seconds')} {kind}"
                                       for at, kind in recent),
            )


DEMO_CLIENT_NAME = "家計簿アプリ（サンプル）"
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"


def seed_demo_client(clients: ApiClientsImpl) -> ClientRecord | None:
    """The embedded mode's demo client, approved; None when it exists already (its secret was
    shown when it was created)."""
    if any(c.name == DEMO_CLIENT_NAME for c in clients.clients()):
        return None
    record = clients.register(DEMO_CLIENT_NAME, "デモ事業者", "demo@example.invalid",
                              [DEMO_REDIRECT_URI], ["basic_four", "income", "pension"])
    approved = clients.set_state("seed", record.client_id, ClientState.APPROVED,
                                 "demo client (embedded mode)")
    return dataclasses.replace(approved, client_secret=record.client_secret)


# --- rate limits -------------------------------------------------------------------------------


class _RateLimiter:
    """A token bucket per client: ``per_minute`` requests a minute, bursts up to that many.
    In memory, per process (docs/oidc.md: each process enforces the limit on its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, list[float]] = {}  # client -> [tokens, last, capacity]

    def take(self, client_id: str, per_minute: int) -> float:
        """0 when allowed, else the seconds until a request would be."""
        now = time.monotonic()
        rate = per_minute / 60.0
        with self._lock:
            bucket = self._buckets.get(client_id)
            if bucket is None or bucket[2] != per_minute:
                tokens = float(per_minute) if bucket is None else min(bucket[0], per_minute)
                bucket = self._buckets[client_id] = [tokens, now, float(per_minute)]
            tokens = min(bucket[2], bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / rate


# --- Authlib adapters ---------------------------------------------------------------------------


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


class _Payload(OAuth2Payload):  # type: ignore[misc]
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


class _StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, http: HttpRequest, issuer: str) -> None:
        query = f"?{urlencode(http.query)}" if http.query else ""
        super().__init__(http.method, f"{issuer}{http.path}{query}", headers=http.headers)
        self.http = http
        self.payload = _Payload(http.query + http.form)
        self._args = dict(reversed(http.query))
        self._form = dict(reversed(http.form))

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass
class _Client(ClientMixin):  # type: ignore[misc]
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
class _User:
    account_id: int
    actor_account_id: int
    proxy_kind: str | None
    auth_time: dt.datetime
    scopes: tuple[str, ...]  # item scopes the resident chose
    client_id: str = ""
    grant_id: int = 0


@dataclass
class _Code(AuthorizationCodeMixin):  # type: ignore[misc]
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


class _Pkce(CodeChallenge):  # type: ignore[misc]
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


class _CodeGrant(oauth_grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)
    AUTHORIZATION_CODE_LENGTH = 43
    server: _Server

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.server.provider._save_code(code, request)

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        return self.server.provider._claim_code(code, client)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        pass  # claimed (one use) in query_authorization_code

    def authenticate_user(self, authorization_code: _Code) -> _User | None:
        return self.server.provider._user_of_code(authorization_code)


class _OpenIdCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: OpenIdProvider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.provider._nonce_used(request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: _Client) -> RSAKey:
        return self.provider.signing_key

    def get_client_algorithm(self, client: _Client) -> str:
        return "RS256"

    def get_encode_header(self, client: _Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": self.provider.signing_key.kid or "", "typ": "JWT"}

    def get_client_claims(self, client: _Client) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.provider.issuer, "aud": client.client_id, "iat": now,
                "exp": now + ID_TOKEN_SECONDS}

    def generate_user_info(self, user: _User, scope: str) -> dict[str, Any]:
        # The ID token carries the pairwise subject only: data goes through the resource API,
        # where every release is recorded.
        return {"sub": self.provider.subject(user.client_id, user.account_id)}


class _Server(AuthorizationServer):  # type: ignore[misc]
    """Authlib's authorization server on Starlette: requests are read once into an
    :class:`HttpRequest`; responses are Starlette responses."""

    def __init__(self, provider: OpenIdProvider) -> None:
        super().__init__(scopes_supported=["openid", *provider.item_scopes()])
        self.provider = provider
        self.register_token_generator("default", self._generate_token)
        self.register_grant(_CodeGrant, [_Pkce(provider), _OpenIdCode(provider)])

    def query_client(self, client_id: str) -> _Client | None:
        return self.provider._oauth_client(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.provider._save_token(token, request)

    @staticmethod
    def _generate_token(grant_type: str, client: _Client, user: Any = None,
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
        return _StarletteOAuth2Request(request, self.provider.issuer)

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        header_map = dict(headers or [])
        if isinstance(body, dict):
            header_map.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=header_map)
        return Response(body or b"", status_code=status, headers=header_map)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        log.debug("oauth signal %s", name)


# --- outcomes of the authorization endpoint for the web layer --------------------------------


@dataclass(frozen=True)
class AuthorizationProblem:
    """Shown as an HTML page, never sent to a redirect URI (unknown client or URI...)."""

    error: str
    description: str
    status: int = 400


SESSION_ENDED = AuthorizationProblem(
    "login_required", "Your portal session ended. Go back to the service and start again.",
    status=401)
NO_LONGER_A_PROXY = AuthorizationProblem(
    "access_denied", "You are no longer a registered proxy of the person you were acting "
    "for, so you cannot consent for them. Go back to the portal.", status=403)


@dataclass(frozen=True)
class LoginRequired:
    next_url: str  # relative authorize URL to come back to


@dataclass(frozen=True)
class ConsentItem:
    scope: str
    label_ja: str
    label_en: str
    provider_id: str
    provider_name: str


@dataclass(frozen=True)
class ConsentPage:
    consent_id: str
    client: ClientRecord
    items: tuple[ConsentItem, ...]
    openid: bool
    session: PortalSession


@dataclass(frozen=True)
class SelfInformation:
    scope: str
    provider: str
    provider_name: str
    outcome: str
    data: dict[str, Any] | None
    serial: str
    fetched_at: dt.datetime


@dataclass
class _TokenInfo:
    account_id: int
    grant_id: int
    scopes: frozenset[str]
    client_id: str
    client_name: str


# --- the provider -----------------------------------------------------------------------------


def _grant_record(grant: Grant, client_name: str) -> GrantRecord:
    return GrantRecord(grant.id, grant.client_id, client_name, tuple(grant.scopes.split()),
                       grant.granted_at, grant.revoked_at, grant.actor_account_id,
                       ProxyKind(grant.proxy_kind) if grant.proxy_kind else None)


class OpenIdProvider:
    """The OpenID Provider of the self-information API and the resident's side of it
    (:class:`~mynumber.portal.interfaces.SelfInformationApi`)."""

    _LOOKUP = HotSQL(
        "SELECT t.account_id, t.grant_id, t.scope, c.client_id, c.name, c.state, "
        "c.rate_limit_per_minute, "
        "CASE WHEN t.expires_at > :now THEN 1 ELSE 0 END, "
        "CASE WHEN t.revoked_at IS NULL AND g.revoked_at IS NULL THEN 1 ELSE 0 END, "
        # A grant a proxy gave lives only as long as that proxy's registration of its kind does.
        "CASE WHEN g.actor_account_id IS NULL OR g.actor_account_id = g.account_id THEN 1 "
        "WHEN EXISTS (SELECT 1 FROM proxies p WHERE p.principal_account_id = g.account_id "
        "AND p.proxy_account_id = g.actor_account_id AND p.revoked_at IS NULL "
        "AND (g.proxy_kind IS NULL OR p.kind = g.proxy_kind) "
        "AND (p.valid_until IS NULL OR p.valid_until >= :today)) THEN 1 ELSE 0 END "
        "FROM oidc_access_tokens t JOIN oidc_grants g ON g.id = t.grant_id "
        "JOIN oidc_clients c ON c.client_id = t.client_id WHERE t.token_hash = :h"
    )

    def __init__(self, databases: Databases, keys: Any, settings: Settings, *, portal: Any,
                 clients: ApiClientsImpl, network: Any = None) -> None:
        self.databases = databases
        self.keys = keys
        self.settings = settings
        self.portal = portal
        self.clients = clients
        self.network = network
        self.issuer = settings.issuer
        self._signing_key: RSAKey | None = None
        self._pairwise: bytes | None = None
        self._sources: dict[str, InformationSource] | None = None
        self._lock = threading.Lock()
        self._limiter = _RateLimiter()
        self._hot = HotConnections(databases, "portal")
        self.server = _Server(self)
        clients.known_scopes = self.item_scopes

    # keys and subjects

    @property
    def signing_key(self) -> RSAKey:
        if self._signing_key is None:
            with self._lock:
                if self._signing_key is None:
                    self._signing_key = load_signing_key(
                        self.settings.keys_path,
                        development=self.settings.mode is Mode.EMBEDDED)
        return self._signing_key

    def jwks(self) -> dict[str, Any]:
        public: dict[str, Any] = dict(self.signing_key.as_dict(private=False))
        public.update({"use": "sig", "alg": "RS256", "kid": self.signing_key.kid})
        return {"keys": [public]}

    def subject(self, client_id: str, account_id: int) -> str:
        """The pairwise ``sub``: HMAC-SHA256 under the portal key over (client, account).
        Not the 個人番号, not a certificate serial, not the account id; different per client."""
        if self._pairwise is None:
            self._pairwise = self.keys.symmetric_key(PAIRWISE_KEY, 32)
        digest = hmac.new(self._pairwise, f"sub\x00{client_id}\x00{account_id}".encode(),
                          hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    # discovery

    def sources(self) -> dict[str, InformationSource]:
        if self._sources is None:
            self._sources = {s.scope: s for s in self.portal.sources()}
        return self._sources

    def item_scopes(self) -> list[str]:
        return list(self.sources())

    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "userinfo_endpoint": f"{base}/oauth/userinfo",
            "jwks_uri": f"{base}/oauth/jwks",
            "pushed_authorization_request_endpoint": f"{base}/oauth/par",
            "require_pushed_authorization_requests": self.settings.oidc_require_par,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", *self.item_scopes()],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce",
                                 "at_hash", "name", "birth_date", "sex", "address"],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "self_information_endpoint": f"{base}/api/v1/portal/self-information/{{scope}}",
        }

    # clients as Authlib sees them

    def _oauth_client(self, client_id: str | None) -> _Client | None:
        if not client_id or len(client_id) > 64:
            return None
        with self.databases.unit_of_work("portal") as session:
            row = session.scalars(select(ApiClient)
                                  .where(ApiClient.client_id == client_id)).first()
            if row is None:
                return None
            state = row.state
            client = _Client(row.client_id, row.secret_hash, row.name, row.organisation,
                             tuple(row.redirect_uris), tuple(row.scopes),
                             self._redirect_mismatch)
        if state != ClientState.APPROVED.value:
            if state == ClientState.SUSPENDED.value:
                self.clients.record_anomaly(client_id, "request_while_suspended")
            return None  # only approved clients exist for the protocol
        return client

    def _redirect_mismatch(self, client_id: str) -> None:
        self.clients.record_anomaly(client_id, "redirect_uri_mismatch")

    # PAR (RFC 9126)

    def push(self, http: HttpRequest) -> Response:
        """Store an authenticated client's authorization request; answer its request_uri."""
        try:
            request = self.server.create_oauth2_request(http)
        except OAuth2Error as error:
            response: Response = self.server.handle_response(*error())
            return response
        try:
            client = self.server.authenticate_client(request, list(AUTH_METHODS),
                                                     endpoint="par")
            params = [(k, v) for k, v in http.form if k != "client_secret"]
            if any(k in ("request_uri", "request") for k, _ in params):
                raise InvalidRequestError("'request_uri' and 'request' are not accepted here")
            if ("client_id", client.client_id) not in params:
                params = [p for p in params if p[0] != "client_id"]
                params.append(("client_id", client.client_id))
            self.server.get_consent_grant(HttpRequest.of("GET", "/oauth/authorize", params))
        except OAuth2Error as error:
            error.redirect_uri = None  # PAR answers errors directly, never by redirection
            return self.server.handle_error_response(request, error)  # type: ignore[no-any-return]
        request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
        with self.databases.unit_of_work("portal") as session:
            session.add(PushedRequest(
                request_id=hash_secret(request_uri), client_id=client.client_id,
                params={"pairs": params},
                expires_at=utcnow() + dt.timedelta(seconds=PAR_SECONDS)))
        return JSONResponse({"request_uri": request_uri, "expires_in": PAR_SECONDS},
                            status_code=201, headers={"Cache-Control": "no-store"})

    def _pushed(self, client_id: str | None, request_uri: str,
                consume: bool) -> list[tuple[str, str]] | AuthorizationProblem:
        problem = AuthorizationProblem(
            "invalid_request_uri",
            "The request_uri is unknown, expired or already used. Go back to the service "
            "and start again.")
        if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > 200:
            return problem
        now = utcnow()
        with self.databases.unit_of_work("portal") as session:
            row = session.get(PushedRequest, hash_secret(request_uri))
            if (row is None or row.client_id != client_id or row.used_at is not None
                    or row.expires_at <= now):
                return problem
            if consume:
                claimed = session.execute(
                    update(PushedRequest).where(PushedRequest.request_id == row.request_id,
                                                PushedRequest.used_at.is_(None))
                    .values(used_at=now)).rowcount  # type: ignore[attr-defined]
                if claimed != 1:
                    return problem
            return [(str(k), str(v)) for k, v in row.params["pairs"]]

    # the authorization endpoint

    def authorize(self, http: HttpRequest, session: PortalSession | None,
                  ) -> Response | AuthorizationProblem | LoginRequired | ConsentPage:
        """GET /oauth/authorize: validate; then log in, or show the consent page."""
        params = list(http.query)
        query = dict(reversed(params))
        via_par = "request_uri" in query
        if via_par:
            pushed = self._pushed(query.get("client_id"), query["request_uri"], consume=False)
            if isinstance(pushed, AuthorizationProblem):
                return pushed
            params = pushed
        elif self.settings.oidc_require_par:
            return AuthorizationProblem("invalid_request",
                                        "This provider requires pushed authorization requests.")
        acting: tuple[int, ProxyKind | None] | None = None
        if session is not None:
            checked = self._acting(session)
            if isinstance(checked, AuthorizationProblem):
                if checked.status != 401:
                    return checked
                session = None  # the session ended meanwhile: log in again
            else:
                acting = checked
        user = None if session is None or acting is None else self._user(session, acting, ())
        try:
            grant = self.server.get_consent_grant(HttpRequest.of("GET", http.path, params),
                                                  end_user=user)
        except OAuth2Error as error:
            return self._error(error)
        if session is None or acting is None:
            return LoginRequired(f"/oauth/authorize?{urlencode(http.query)}")
        if via_par:
            consumed = self._pushed(query.get("client_id"), query["request_uri"], consume=True)
            if isinstance(consumed, AuthorizationProblem):
                return consumed
        client: _Client = grant.request.client
        requested = scope_to_list(grant.request.scope) or []
        consent_id = secrets.token_urlsafe(32)
        with self.databases.unit_of_work("portal") as db:
            db.add(ConsentRequest(
                request_id=hash_secret(consent_id), session_id=session.session_id,
                client_id=client.client_id, params={"pairs": params, "subject": acting[0]},
                expires_at=utcnow() + dt.timedelta(seconds=CONSENT_SECONDS)))
        items = tuple(self._consent_item(s, acting[0]) for s in requested if s != "openid")
        # The page shows whom the consent is for as re-checked now, not as the session said.
        shown = dataclasses.replace(session, acting_for=acting[0], proxy_kind=acting[1])
        return ConsentPage(consent_id, self.clients.client(client.client_id), items,
                           "openid" in requested, shown)

    def _acting(self, session: PortalSession
                ) -> tuple[int, ProxyKind | None] | AuthorizationProblem:
        """Whom ``session`` may consent for, re-checked with the portal now (a proxy relation
        may have been revoked or have expired since the session switched to the principal)."""
        try:
            account_id, kind = self.portal.acting_subject(session)
        except SessionExpired:
            return SESSION_ENDED
        except NotAProxy:
            return NO_LONGER_A_PROXY
        return int(account_id), None if kind is None else ProxyKind(kind)

    def _consent_item(self, scope: str, account_id: int) -> ConsentItem:
        source = self.sources()[scope]
        provider_id, name = source.provider, source.provider
        if self.network is not None:
            try:
                provider = source.provider
                if provider == MUNICIPALITY:  # the mayor serving the resident (the portal's rule)
                    provider = self.portal.mayor_of(
                        self.portal.account(account_id).municipality_code)
                provider_id, name = provider, self.network.agency(provider).name
            except Exception:  # a label must not break the consent page
                log.warning("could not resolve the provider of %s", scope)
        return ConsentItem(scope, source.label_ja, source.label_en, provider_id, name)

    def decide(self, session: PortalSession, consent_id: str, csrf_token: str, approve: bool,
               scopes: Sequence[str]) -> Response | AuthorizationProblem:
        """POST /oauth/authorize: the resident approves (chosen items only) or denies."""
        if not hmac.compare_digest(csrf_token.encode(), session.csrf_token.encode()):
            return AuthorizationProblem("invalid_request",
                                        "The form expired. Go back to the service and start "
                                        "again.", status=403)
        acting = self._acting(session)
        if isinstance(acting, AuthorizationProblem):
            return acting
        now = utcnow()
        with self.databases.unit_of_work("portal") as db:
            row = db.get(ConsentRequest, hash_secret(consent_id))
            if (row is None or row.session_id != session.session_id
                    or row.used_at is not None or row.expires_at <= now):
                return AuthorizationProblem(
                    "invalid_request", "This consent request is unknown, expired or already "
                    "answered. Go back to the service and start again.")
            claimed = db.execute(
                update(ConsentRequest).where(ConsentRequest.request_id == row.request_id,
                                             ConsentRequest.used_at.is_(None))
                .values(used_at=now)).rowcount  # type: ignore[attr-defined]
            params = [(str(k), str(v)) for k, v in row.params["pairs"]]
            shown_for = row.params.get("subject")
        if claimed != 1:
            return AuthorizationProblem("invalid_request", "Already answered.")
        if shown_for != acting[0]:  # the session switched whom it acts for since the page
            return AuthorizationProblem(
                "invalid_request", "The person this consent was asked for is not the one you "
                "act for now. Go back to the service and start again.")
        try:
            grant = self.server.get_consent_grant(
                HttpRequest.of("GET", "/oauth/authorize", params),
                end_user=self._user(session, acting, ()))
        except OAuth2Error as error:
            return self._error(error)
        requested = [s for s in scope_to_list(grant.request.scope) or [] if s != "openid"]
        chosen = tuple(s for s in dict.fromkeys(scopes) if s in requested)
        wants_openid = "openid" in (scope_to_list(grant.request.scope) or [])
        user = (self._user(session, acting, chosen) if approve and (chosen or wants_openid)
                else None)
        if user is None:  # a grant records its own activity with it (``_save_code``)
            client: _Client = grant.request.client
            try:
                self.portal.record_activity(session, ACTIVITY_CONSENT_DENIED,
                                            _detail(client.name))
            except SessionExpired:
                return SESSION_ENDED
            except NotAProxy:
                return NO_LONGER_A_PROXY
        response: Response = self.server.create_authorization_response(
            grant.request, grant_user=user, grant=grant)
        return response

    @staticmethod
    def _user(session: PortalSession, acting: tuple[int, ProxyKind | None],
              scopes: tuple[str, ...]) -> _User:
        account_id, kind = acting
        proxy = kind.value if kind is not None and account_id != session.account_id else None
        return _User(account_id, session.account_id, proxy, session.started_at, scopes)

    def _error(self, error: OAuth2Error) -> Response | AuthorizationProblem:
        if error.redirect_uri:
            response: Response = self.server.handle_response(*error())
            return response
        return AuthorizationProblem(error.error or "invalid_request", error.description or "")

    def _save_code(self, code: str, request: OAuth2Request) -> None:
        user: _User = request.user
        client: _Client = request.client
        data = request.payload.data
        openid = "openid" in (scope_to_list(request.scope) or [])
        scope = " ".join((["openid"] if openid else []) + list(user.scopes))
        now = utcnow()
        with self.databases.unit_of_work("portal") as session:
            grant = Grant(account_id=user.account_id, actor_account_id=user.actor_account_id,
                          proxy_kind=user.proxy_kind, client_id=client.client_id,
                          scopes=" ".join(user.scopes), granted_at=now)
            session.add(grant)
            session.flush()
            session.add(AuthorizationCode(
                code_hash=hash_secret(code), client_id=client.client_id, grant_id=grant.id,
                account_id=user.account_id, redirect_uri=request.payload.redirect_uri,
                scope=scope, nonce=data.get("nonce"), code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"], auth_time=user.auth_time,
                expires_at=now + dt.timedelta(seconds=CODE_SECONDS)))
            audit(session, AuditEvent, "portal:grant:create",
                  actor=f"account:{user.actor_account_id}", subject=f"account:{user.account_id}",
                  client_id=client.client_id, scopes=list(user.scopes), grant_id=grant.id,
                  proxy_kind=user.proxy_kind)
            # The resident's activities show the consent in the same transaction as the grant.
            session.add(ActivityRow(
                at=now, action=ACTIVITY_CONSENT, actor_account_id=user.actor_account_id,
                subject_account_id=user.account_id, proxy_kind=user.proxy_kind,
                detail=_detail(f"{client.name}: {' '.join(user.scopes)}"),
                client_id=client.client_id))

    def _nonce_used(self, client_id: str | None, nonce: str) -> bool:
        with self.databases.unit_of_work("portal") as session:
            return session.scalar(select(AuthorizationCode.code_hash).where(
                AuthorizationCode.client_id == client_id,
                AuthorizationCode.nonce == nonce).limit(1)) is not None

    # the token endpoint

    def token(self, http: HttpRequest) -> Response:
        try:
            response: Response = self.server.create_token_response(http)
        except OAuth2Error as error:  # e.g. insecure_transport: an http issuer off loopback
            response = self.server.handle_response(*error())
        return response

    def _claim_code(self, code: str, client: _Client) -> _Code | None:
        """The code, claimed for this one exchange; a second use is a replay: the tokens the
        first one got are revoked and the client's monitoring shows it."""
        now = utcnow()
        code_hash = hash_secret(code)
        with self.databases.unit_of_work("portal") as session:
            row = session.get(AuthorizationCode, code_hash)
            if row is None or row.client_id != client.client_id:
                return None
            if row.used_at is not None:
                session.execute(update(AccessToken).where(AccessToken.code_hash == code_hash,
                                                          AccessToken.revoked_at.is_(None))
                                .values(revoked_at=now))
                replay = True
            else:
                replay = session.execute(
                    update(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash,
                                                    AuthorizationCode.used_at.is_(None))
                    .values(used_at=now)).rowcount != 1  # type: ignore[attr-defined]
            expired = not replay and row.expires_at <= now
            found = _Code(row.code_hash, row.client_id, row.grant_id, row.account_id,
                          row.redirect_uri, row.scope, row.nonce, row.code_challenge,
                          row.code_challenge_method, row.auth_time)
        if replay:
            self.clients.record_anomaly(client.client_id, "code_replay")
            return None
        return None if expired else found

    def _user_of_code(self, code: _Code) -> _User | None:
        with self.databases.unit_of_work("portal") as session:
            grant = session.get(Grant, code.grant_id)
            if grant is None or grant.revoked_at is not None:
                return None
            return _User(grant.account_id, grant.actor_account_id, grant.proxy_kind,
                         code.auth_time, tuple(grant.scopes.split()), code.client_id, grant.id)

    def _save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        code: _Code = request.authorization_code
        now = utcnow()
        with self.databases.unit_of_work("portal") as session:
            session.add(AccessToken(
                token_hash=hash_secret(token["access_token"]), grant_id=code.grant_id,
                client_id=code.client_id, account_id=code.account_id, scope=code.scope,
                code_hash=code.code_hash, issued_at=now,
                expires_at=now + dt.timedelta(seconds=TOKEN_SECONDS)))

    # the resource side (hot path)

    def _authorize_bearer(self, token: str | None, scope: str | None) -> _TokenInfo:
        if not token or len(token) > 200:
            raise InvalidToken("send the access token as 'Authorization: Bearer <token>'")
        with self._hot.connection() as raw:
            now = utcnow()
            today = now.date() if self.databases.is_postgres else now.date().isoformat()
            rows = self._hot.run(raw, self._LOOKUP, {"h": hash_secret(token), "now": now,
                                                     "today": today})
        if not rows:
            raise InvalidToken("the access token is not valid")
        (account_id, grant_id, scopes, client_id, name, state, per_minute, live, valid,
         proxy_live) = rows[0]
        granted = frozenset(scopes.split())
        refusal: tuple[DomainError, str | None] | None = None  # (error, anomaly)
        if not valid:
            refusal = InvalidToken("the access token was revoked"), "token_after_revocation"
        elif not proxy_live:
            refusal = InvalidToken("the proxy who consented is no longer registered for the "
                                   "resident"), None
        elif not live:
            refusal = InvalidToken("the access token expired"), None
        elif state != ClientState.APPROVED.value:
            refusal = ClientNotApproved(f"the client is {state}"), "request_while_" + state
        elif scope is not None and scope not in granted:
            refusal = InsufficientScope("the resident did not consent to this item",
                                        scope=scope), None
        if refusal is not None:
            error, anomaly = refusal
            self.clients.counters.count(client_id, refused=True)
            if anomaly is not None:
                self.clients.record_anomaly(client_id, anomaly)
            raise error
        wait = self._limiter.take(client_id, per_minute)
        if wait > 0:
            self.clients.counters.count(client_id, limited=True)
            raise RateLimited("the client's rate limit is reached",
                              retry_after=max(1, math.ceil(wait)))
        self.clients.counters.count(client_id)
        return _TokenInfo(account_id, grant_id, granted, client_id, name)

    def _release(self, info: _TokenInfo, scope: str) -> SelfInformation:
        # The portal records the activity and the release (when data was provided) in one
        # transaction.
        result = self.portal.fetch_for_client(info.account_id, scope, info.client_id,
                                              info.client_name, grant_id=info.grant_id)
        return SelfInformation(result.scope, result.provider_id, result.provider_name,
                               result.outcome, result.data, result.serial, result.fetched_at)

    def self_information(self, token: str | None, scope: str) -> SelfInformation:
        """GET /api/v1/portal/self-information/{scope}: check the token, its grant (revocation
        is immediate), the scope, the client's state and rate limit; fetch through the network;
        record the release."""
        return self._release(self._authorize_bearer(token, scope), scope)

    def userinfo(self, token: str | None) -> dict[str, Any]:
        info = self._authorize_bearer(token, None)
        if "openid" not in info.scopes:
            raise InsufficientScope("the token was not issued for openid", scope="openid")
        claims: dict[str, Any] = {"sub": self.subject(info.client_id, info.account_id)}
        if "basic_four" in info.scopes:
            released = self._release(info, "basic_four")
            data = released.data or {}
            for claim in ("name", "birth_date", "sex", "address"):
                if claim in data:
                    claims[claim] = data[claim]
        return claims

    # SelfInformationApi

    def grants(self, account_id: int) -> list[GrantRecord]:
        with self.databases.unit_of_work("portal") as session:
            rows = session.execute(
                select(Grant, ApiClient.name).join(ApiClient,
                                                   ApiClient.client_id == Grant.client_id)
                .where(Grant.account_id == account_id).order_by(Grant.id.desc())).all()
            return [_grant_record(g, name) for g, name in rows]

    def revoke_grant(self, account_id: int, grant_id: int,
                     actor_account_id: int) -> GrantRecord:
        """Revoke a grant of ``account_id``. An actor other than the resident must be a live
        proxy of theirs (NotAProxy otherwise); the revocation is an audit event and a portal
        activity naming the actor and the proxy kind."""
        now = self.portal.clock()
        with self.databases.unit_of_work("portal") as session:
            kind: ProxyKind | None = None
            if actor_account_id != account_id:
                # the portal's rule of a live proxy relation (not revoked, not past valid_until)
                kind = self.portal.live_proxy_kind(session, actor_account_id, account_id, now)
                if kind is None:
                    raise NotAProxy("you are not a registered proxy of this person")
            grant = session.get(Grant, grant_id)
            if grant is None or grant.account_id != account_id:
                raise GrantNotFound("no such grant of yours", field="grant_id")
            name = session.scalar(select(ApiClient.name)
                                  .where(ApiClient.client_id == grant.client_id)) or ""
            if grant.revoked_at is None:
                grant.revoked_at = now
                grant.revoked_by = actor_account_id
                session.execute(update(AccessToken).where(AccessToken.grant_id == grant.id,
                                                          AccessToken.revoked_at.is_(None))
                                .values(revoked_at=now))
                proxy = kind.value if kind is not None else None
                audit(session, AuditEvent, "portal:grant:revoke",
                      actor=f"account:{actor_account_id}", subject=f"account:{account_id}",
                      grant_id=grant_id, client_id=grant.client_id, proxy_kind=proxy)
                session.add(ActivityRow(
                    at=now, action=ACTIVITY_GRANT_REVOKED, actor_account_id=actor_account_id,
                    subject_account_id=account_id, proxy_kind=proxy,
                    detail=_detail(f"{name}: {grant.scopes}"), client_id=grant.client_id))
            return _grant_record(grant, name)

    def releases(self, account_id: int) -> list[Release]:
        with self.databases.unit_of_work("portal") as session:
            rows = session.scalars(select(ReleaseRecord)
                                   .where(ReleaseRecord.account_id == account_id)
                                   .order_by(ReleaseRecord.id.desc()))
            return [Release(r.client_id, r.client_name, r.scope, r.serial, r.released_at)
                    for r in rows]


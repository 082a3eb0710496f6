"""The OpenID Provider of the self-information API: the authorization endpoint (with PAR,
``prompt`` and ``max_age``), the token endpoint, UserInfo, the resource endpoint, and the
resident's side (grants and releases).

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
import logging
import math
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    OAuth2Error,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from joserfc.jwk import RSAKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from mynumber.audit import record as audit
from mynumber.db import Databases, HotConnections, HotSQL, utcnow
from mynumber.errors import DomainError
from mynumber.keys import KeyProvider
from mynumber.network.interfaces import NetworkService
from mynumber.portal.interfaces import (
    MUNICIPALITY,
    ClientState,
    GrantNotFound,
    GrantRecord,
    InformationSource,
    NotAProxy,
    PortalService,
    PortalSession,
    ProxyKind,
    RateLimited,
    Release,
    SessionExpired,
)
from mynumber.portal.models import ActivityRow, AuditEvent
from mynumber.portal.oauth.adapters import Code, EndUser, HttpRequest, OAuthClient, Server
from mynumber.portal.oauth.claims import CLAIMS_SUPPORTED, Divisions, standard_claims
from mynumber.portal.oauth.clients import ApiClientsImpl
from mynumber.portal.oauth.common import (
    ACTIVITY_CONSENT,
    ACTIVITY_CONSENT_DENIED,
    ACTIVITY_GRANT_REVOKED,
    AUTH_METHODS,
    CODE_SECONDS,
    CONSENT_SECONDS,
    PAIRWISE_KEY,
    PAR_SECONDS,
    REQUEST_URI_PREFIX,
    TOKEN_SECONDS,
    detail,
    hash_secret,
)
from mynumber.portal.oauth.keys import SigningKeys
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
    TokenInfo,
)
from mynumber.portal.oauth.ratelimit import RateLimiter
from mynumber.portal.oauth_models import (
    AccessToken,
    ApiClient,
    AuthorizationCode,
    ConsentRequest,
    Grant,
    PushedRequest,
    ReleaseRecord,
)
from mynumber.registry.interfaces import MunicipalityRecord
from mynumber.settings import Mode, Settings

log = logging.getLogger("mynumber.portal.oidc")

# --- the front channel's parameters --------------------------------------------------------------
#
# Every value of an authorization (or pushed) request is checked against its grammar before
# Authlib sees it (RFC 6749 Appendix A, RFC 7636 4.1/4.2, Core 3.1.2.1). Besides refusing
# garbage early, this keeps values Authlib would quote in an error description within the
# characters such a description may carry (Authlib raises ValueError otherwise: a 500).
_VSCHAR = re.compile(r"[\x20-\x7e]*")
_NQCHAR = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_NQSCHAR = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*")
_TEXT = re.compile(r"[^\x00-\x1f\x7f]*")  # nonce, hints: any text without control characters
PARAMETERS: dict[str, tuple[re.Pattern[str], int]] = {
    "response_type": (_NQSCHAR, 100),
    "client_id": (_VSCHAR, 200),
    "redirect_uri": (_NQCHAR, 500),
    "scope": (_NQSCHAR, 1000),
    "state": (_VSCHAR, 1000),
    "nonce": (_TEXT, 255),
    "code_challenge": (re.compile(r"[A-Za-z0-9._~-]{43,128}"), 128),
    "code_challenge_method": (_NQCHAR, 20),
    "prompt": (re.compile(r"[a-z_]+(?: [a-z_]+)*"), 100),
    "max_age": (re.compile(r"[0-9]{1,9}"), 9),
    "response_mode": (_NQCHAR, 40),
    "display": (_NQCHAR, 40),
    "ui_locales": (_VSCHAR, 200),
    "claims_locales": (_VSCHAR, 200),
    "acr_values": (_VSCHAR, 500),
    "login_hint": (_TEXT, 500),
    "id_token_hint": (_VSCHAR, 8000),
    "request_uri": (_VSCHAR, 200),
    "request": (_VSCHAR, 20000),
    "claims": (_TEXT, 8000),
    "registration": (_TEXT, 8000),
}
MAX_PARAMETERS = 40


class _Refused(Exception):
    """A front-channel request refused before Authlib: ``error`` and a fixed description."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _screen(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The parameters as the protocol reads them, or _Refused. Empty values count as absent
    (RFC 6749 3.1); a parameter sent twice is refused (same section)."""
    if len(pairs) > MAX_PARAMETERS:
        raise _Refused("invalid_request", "Too many parameters.")
    kept = [(k, v) for k, v in pairs if v != ""]
    seen: set[str] = set()
    for key, value in kept:
        if key in seen:
            raise _Refused("invalid_request", f"The parameter {_safe(key)} is repeated.")
        seen.add(key)
        rule = PARAMETERS.get(key)
        if rule is None:
            continue  # unknown parameters are ignored (RFC 6749 3.1)
        pattern, limit = rule
        if len(value) > limit or not pattern.fullmatch(value):
            raise _Refused("invalid_request", f"The parameter {key} is malformed.")
    if "request" in seen:
        raise _Refused("request_not_supported",
                       "Request objects are not supported; send the parameters themselves.")
    return kept


def _safe(name: str) -> str:
    return name if _NQCHAR.fullmatch(name) and len(name) <= 40 else "(a parameter)"


def _grant_record(grant: Grant, client_name: str) -> GrantRecord:
    return GrantRecord(grant.id, grant.client_id, client_name, tuple(grant.scopes.split()),
                       grant.granted_at, grant.revoked_at, grant.actor_account_id,
                       ProxyKind(grant.proxy_kind) if grant.proxy_kind else None)


@dataclasses.dataclass(frozen=True)
class _Pushed:
    params: list[tuple[str, str]]
    pushed_at: dt.datetime


class PortalForProvider(PortalService, Protocol):
    """What the provider needs of the portal service besides its published protocol: the
    portal's own clock, the mayor serving a municipality and, inside the provider's own
    transaction on the portal database, the portal's rule of a live proxy relation (both live
    in the same context; the OpenID Provider is part of the portal)."""

    clock: Callable[[], dt.datetime]

    def mayor_of(self, municipality_code: str) -> str: ...

    def live_proxy_kind(self, session: Session, proxy_account: int, principal: int,
                        now: dt.datetime) -> ProxyKind | None: ...


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

    def __init__(self, databases: Databases, keys: KeyProvider, settings: Settings, *,
                 portal: PortalForProvider, clients: ApiClientsImpl,
                 municipalities: Callable[[], Iterable[MunicipalityRecord]],
                 network: NetworkService | None = None) -> None:
        self.databases = databases
        self._municipalities = municipalities
        self._divisions: Divisions | None = None
        self.keys = keys
        self.settings = settings
        self.portal = portal
        self.clients = clients
        self.network = network
        self.issuer = settings.issuer
        self.signing_keys = SigningKeys(settings.keys_path,
                                        development=settings.mode is Mode.EMBEDDED)
        self._pairwise: bytes | None = None
        self._sources: dict[str, InformationSource] | None = None
        self._lock = threading.Lock()
        self._limiter = RateLimiter()
        self._hot = HotConnections(databases, "portal")
        self.server = Server(self)

    # keys and subjects

    @property
    def signing_key(self) -> RSAKey:
        """The current ID token key (re-read when ``mynumber oidc rotate-keys`` changed it)."""
        return self.signing_keys.current()

    def jwks(self) -> dict[str, Any]:
        return self.signing_keys.jwks()

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
            "claims_supported": list(CLAIMS_SUPPORTED),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "prompt_values_supported": ["none", "login", "consent"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "self_information_endpoint": f"{base}/api/v1/portal/self-information/{{scope}}",
        }

    # clients as Authlib sees them

    def oauth_client(self, client_id: str | None) -> OAuthClient | None:
        if not client_id or len(client_id) > 64:
            return None
        with self.databases.unit_of_work("portal") as session:
            row = session.scalars(select(ApiClient)
                                  .where(ApiClient.client_id == client_id)).first()
            if row is None:
                return None
            state = row.state
            client = OAuthClient(row.client_id, row.secret_hash, row.name, row.organisation,
                                 tuple(row.redirect_uris), tuple(row.scopes),
                                 self._redirect_mismatch)
        if state != ClientState.APPROVED.value:
            if state == ClientState.SUSPENDED.value:
                self.clients.record_anomaly(client_id, "request_while_suspended")
            return None  # only approved clients exist for the protocol
        return client

    def _redirect_mismatch(self, client_id: str) -> None:
        self.clients.record_anomaly(client_id, "redirect_uri_mismatch")

    def _refusal(self, refused: _Refused, pairs: Sequence[tuple[str, str]],
                 ) -> Response | AuthorizationProblem:
        """A refused front-channel request: back to the client (``?error=…&state=…``) when
        its client and redirect URI are valid, else the error page (RFC 6749 4.1.2.1)."""
        first: dict[str, str] = {}
        count: dict[str, int] = {}
        for key, value in pairs:
            first.setdefault(key, value)
            count[key] = count.get(key, 0) + 1
        client_id, redirect_uri = first.get("client_id", ""), first.get("redirect_uri", "")
        state = first.get("state") if count.get("state") == 1 else None
        # Only one well-formed client_id and redirect_uri, checked against the client, earn a
        # redirect; anything else is the error page (the URI is not trusted).
        valid = all(count.get(k) == 1 and v and len(v) <= PARAMETERS[k][1]
                    and PARAMETERS[k][0].fullmatch(v)
                    for k, v in (("client_id", client_id), ("redirect_uri", redirect_uri)))
        client = self.oauth_client(client_id) if valid else None
        if client is None or redirect_uri not in client.redirect_uris:
            return AuthorizationProblem(refused.error, refused.description)
        if state is not None and (len(state) > 1000 or not _VSCHAR.fullmatch(state)):
            state = None  # a state that is not a state is not echoed
        error = OAuth2Error(refused.description, state=state, redirect_uri=redirect_uri,
                            error=refused.error)
        response: Response = self.server.handle_response(*error())
        return response

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
            try:
                params = _screen([(k, v) for k, v in http.form if k != "client_secret"])
            except _Refused as refused:
                raise OAuth2Error(refused.description, error=refused.error,
                                  status_code=400) from None
            if any(k == "request_uri" for k, _ in params):
                raise OAuth2Error("'request_uri' is not accepted in a pushed request.",
                                  error="invalid_request", status_code=400)
            if ("client_id", client.client_id) not in params:
                params = [p for p in params if p[0] != "client_id"]
                params.append(("client_id", client.client_id))
            self.server.get_consent_grant(HttpRequest.of("GET", "/oauth/authorize", params))
        except OAuth2Error as error:
            error.redirect_uri = None  # PAR answers errors directly, never by redirection
            return self.server.handle_error_response(request, error)  # type: ignore[no-any-return]
        except ValueError:  # a value Authlib cannot quote (screened above; a safety net)
            log.warning("refused a pushed request Authlib could not describe")
            return JSONResponse({"error": "invalid_request"}, status_code=400,
                                headers={"Cache-Control": "no-store"})
        request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
        with self.databases.unit_of_work("portal") as session:
            session.add(PushedRequest(
                request_id=hash_secret(request_uri), client_id=client.client_id,
                params={"pairs": params},
                expires_at=utcnow() + dt.timedelta(seconds=PAR_SECONDS)))
        return JSONResponse({"request_uri": request_uri, "expires_in": PAR_SECONDS},
                            status_code=201, headers={"Cache-Control": "no-store"})

    def _pushed(self, client_id: str | None, request_uri: str,
                consume: bool) -> _Pushed | AuthorizationProblem:
        problem = AuthorizationProblem(
            "invalid_request_uri",
            "The request_uri is unknown, expired or already used. Go back to the service "
            "and start again.")
        if len(request_uri) > 200:
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
            return _Pushed([(str(k), str(v)) for k, v in row.params["pairs"]],
                           row.expires_at - dt.timedelta(seconds=PAR_SECONDS))

    # the authorization endpoint

    def authorize(self, http: HttpRequest, session: PortalSession | None,
                  ) -> Response | AuthorizationProblem | LoginRequired | ConsentPage:
        """GET /oauth/authorize: validate; then log in, or show the consent page, or (with
        ``prompt=none`` and an earlier consent) answer at once."""
        try:
            return self._authorize(http, session)
        except ValueError:  # a value Authlib cannot quote (screened before; a safety net)
            log.warning("refused an authorization request Authlib could not describe")
            return AuthorizationProblem("invalid_request", "The request is malformed.")

    def _authorize(self, http: HttpRequest, session: PortalSession | None,
                   ) -> Response | AuthorizationProblem | LoginRequired | ConsentPage:
        try:
            params = _screen(http.query)
        except _Refused as refused:
            return self._refusal(refused, http.query)
        query = dict(params)
        pushed_at: dt.datetime | None = None
        request_uri = query.get("request_uri")
        if request_uri is not None:
            if not request_uri.startswith(REQUEST_URI_PREFIX):
                # Only PAR's own request_uri exists here (Core 6.2: no request objects).
                return self._refusal(_Refused(
                    "request_uri_not_supported",
                    "request_uri is supported only as the answer of the PAR endpoint."),
                    params)
            pushed = self._pushed(query.get("client_id"), request_uri, consume=False)
            if isinstance(pushed, AuthorizationProblem):
                return pushed
            params, pushed_at = pushed.params, pushed.pushed_at
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
        data = grant.request.payload.data
        prompts = set(str(data.get("prompt") or "").split())
        if session is None or acting is None or self._needs_login(
                session, prompts, data.get("max_age"), pushed_at):
            if "none" in prompts:  # Core 3.1.2.6: no page may be shown
                return self._redirect_error(grant, LoginRequiredError)
            return LoginRequired(self._after_login(http.query, pushed_at is not None))
        client: OAuthClient = grant.request.client
        requested = scope_to_list(grant.request.scope) or []
        if "none" in prompts:
            return self._silently(grant, session, acting, request_uri, client, requested)
        if request_uri is not None:
            consumed = self._pushed(query.get("client_id"), request_uri, consume=True)
            if isinstance(consumed, AuthorizationProblem):
                return consumed
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

    @staticmethod
    def _needs_login(session: PortalSession, prompts: set[str], max_age: str | None,
                     pushed_at: dt.datetime | None) -> bool:
        """Core 3.1.2.1: ``prompt=login`` asks for a fresh card login, ``max_age`` for one no
        older than that. A login after the request was pushed (PAR) satisfies both; without
        PAR the request comes back from the login page without them (:meth:`_after_login`)."""
        if pushed_at is not None and session.started_at >= pushed_at:
            return False
        if "login" in prompts:
            return True
        if max_age is not None:
            age = (utcnow() - session.started_at).total_seconds()
            return age > int(max_age)
        return False

    @staticmethod
    def _after_login(query: Sequence[tuple[str, str]], pushed: bool) -> str:
        """Where the login page sends the resident back: the same request, without what the
        login just satisfied (``prompt=login``, ``max_age``) so it does not ask again. The
        user agent could drop them anyway: the ID token's ``auth_time`` is what a client
        checks (Core 3.1.3.7). A pushed request keeps its parameters on the server."""
        if pushed:
            return f"/oauth/authorize?{urlencode(query)}"
        kept: list[tuple[str, str]] = []
        for key, value in query:
            if key == "max_age":
                continue
            if key == "prompt":
                value = " ".join(p for p in value.split() if p != "login")
                if not value:
                    continue
            kept.append((key, value))
        return f"/oauth/authorize?{urlencode(kept)}"

    def _redirect_error(self, grant: Any, error_class: type[OAuth2Error]) -> Response:
        error = error_class(redirect_uri=grant.redirect_uri,
                            state=grant.request.payload.state)
        response: Response = self.server.handle_response(*error())
        return response

    def _silently(self, grant: Any, session: PortalSession,
                  acting: tuple[int, ProxyKind | None], request_uri: str | None,
                  client: OAuthClient, requested: list[str]) -> Response | AuthorizationProblem:
        """``prompt=none`` with a live session: a code under the resident's live grant that
        covers every requested item, else ``consent_required`` (Core 3.1.2.6)."""
        items = {s for s in requested if s != "openid"}
        with self.databases.unit_of_work("portal") as db:
            grants = db.scalars(select(Grant).where(
                Grant.account_id == acting[0], Grant.client_id == client.client_id,
                Grant.revoked_at.is_(None)).order_by(Grant.id.desc())).all()
            covering = next((g for g in grants
                             if items <= set(g.scopes.split())
                             and g.actor_account_id == session.account_id), None)
            found = None if covering is None else (covering.id, tuple(covering.scopes.split()))
        if found is None:
            return self._redirect_error(grant, ConsentRequiredError)
        if request_uri is not None:
            consumed = self._pushed(client.client_id, request_uri, consume=True)
            if isinstance(consumed, AuthorizationProblem):
                return consumed
        grant_id, granted = found
        user = dataclasses.replace(self._user(session, acting, tuple(s for s in granted
                                                                     if s in items)),
                                   grant_id=grant_id)
        response: Response = self.server.create_authorization_response(
            grant.request, grant_user=user, grant=grant)
        return response

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
        if user is None:  # a grant records its own activity with it (``save_code``)
            client: OAuthClient = grant.request.client
            try:
                self.portal.record_activity(session, ACTIVITY_CONSENT_DENIED,
                                            detail(client.name))
            except SessionExpired:
                return SESSION_ENDED
            except NotAProxy:
                return NO_LONGER_A_PROXY
        response: Response = self.server.create_authorization_response(
            grant.request, grant_user=user, grant=grant)
        return response

    @staticmethod
    def _user(session: PortalSession, acting: tuple[int, ProxyKind | None],
              scopes: tuple[str, ...]) -> EndUser:
        account_id, kind = acting
        proxy = kind.value if kind is not None and account_id != session.account_id else None
        # auth_time: the portal session starts with a card login and never outlives it.
        return EndUser(account_id, session.account_id, proxy, session.started_at, scopes)

    def _error(self, error: OAuth2Error) -> Response | AuthorizationProblem:
        if error.redirect_uri:
            response: Response = self.server.handle_response(*error())
            return response
        return AuthorizationProblem(error.error or "invalid_request", error.description or "")

    def save_code(self, code: str, request: OAuth2Request) -> None:
        user: EndUser = request.user
        client: OAuthClient = request.client
        data = request.payload.data
        openid = "openid" in (scope_to_list(request.scope) or [])
        scope = " ".join((["openid"] if openid else []) + list(user.scopes))
        now = utcnow()
        with self.databases.unit_of_work("portal") as session:
            if user.grant_id:  # prompt=none under an earlier consent: no new grant
                grant_id = user.grant_id
                audit(session, AuditEvent, "portal:grant:reuse",
                      actor=f"account:{user.actor_account_id}",
                      subject=f"account:{user.account_id}", client_id=client.client_id,
                      grant_id=grant_id)
            else:
                grant = Grant(account_id=user.account_id,
                              actor_account_id=user.actor_account_id,
                              proxy_kind=user.proxy_kind, client_id=client.client_id,
                              scopes=" ".join(user.scopes), granted_at=now)
                session.add(grant)
                session.flush()
                grant_id = grant.id
                audit(session, AuditEvent, "portal:grant:create",
                      actor=f"account:{user.actor_account_id}",
                      subject=f"account:{user.account_id}", client_id=client.client_id,
                      scopes=list(user.scopes), grant_id=grant_id, proxy_kind=user.proxy_kind)
                # The resident's activities show the consent in the grant's transaction.
                session.add(ActivityRow(
                    at=now, action=ACTIVITY_CONSENT, actor_account_id=user.actor_account_id,
                    subject_account_id=user.account_id, proxy_kind=user.proxy_kind,
                    detail=detail(f"{client.name}: {' '.join(user.scopes)}"),
                    client_id=client.client_id))
            session.add(AuthorizationCode(
                code_hash=hash_secret(code), client_id=client.client_id, grant_id=grant_id,
                account_id=user.account_id, redirect_uri=request.payload.redirect_uri,
                scope=scope, nonce=data.get("nonce"), code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"], auth_time=user.auth_time,
                expires_at=now + dt.timedelta(seconds=CODE_SECONDS)))

    def nonce_used(self, client_id: str | None, nonce: str) -> bool:
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
        except ValueError:  # a value Authlib cannot quote in an error description
            log.warning("refused a token request Authlib could not describe")
            response = JSONResponse({"error": "invalid_request"}, status_code=400,
                                    headers={"Cache-Control": "no-store"})
        return response

    def claim_code(self, code: str, client: OAuthClient) -> Code | None:
        """The code, claimed for this one exchange by an atomic UPDATE … WHERE used_at IS
        NULL (exactly one of any number of concurrent redemptions wins). Any later redemption
        is a replay (RFC 6749 4.1.2): the code is marked, the tokens the first one got are
        revoked, and one it has not stored yet is refused (:meth:`save_token`)."""
        if len(code) > 200:
            return None
        now = utcnow()
        code_hash = hash_secret(code)
        found: Code | None = None
        replay = False
        with self.databases.unit_of_work("portal") as session:
            won = session.execute(
                update(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash,
                                                AuthorizationCode.client_id == client.client_id,
                                                AuthorizationCode.used_at.is_(None))
                .values(used_at=now)).rowcount == 1  # type: ignore[attr-defined]
            if won:
                row = session.get(AuthorizationCode, code_hash)
                assert row is not None
                if row.expires_at > now:
                    found = Code(row.code_hash, row.client_id, row.grant_id, row.account_id,
                                 row.redirect_uri, row.scope, row.nonce, row.code_challenge,
                                 row.code_challenge_method, row.auth_time)
            else:
                replay = session.execute(
                    update(AuthorizationCode)
                    .where(AuthorizationCode.code_hash == code_hash,
                           AuthorizationCode.client_id == client.client_id)
                    .values(replayed_at=now)).rowcount == 1  # type: ignore[attr-defined]
                if replay:
                    session.execute(update(AccessToken)
                                    .where(AccessToken.code_hash == code_hash,
                                           AccessToken.revoked_at.is_(None))
                                    .values(revoked_at=now))
        if replay:
            self.clients.record_anomaly(client.client_id, "code_replay")
        return found

    def user_of_code(self, code: Code) -> EndUser | None:
        with self.databases.unit_of_work("portal") as session:
            grant = session.get(Grant, code.grant_id)
            if grant is None or grant.revoked_at is not None:
                return None
            return EndUser(grant.account_id, grant.actor_account_id, grant.proxy_kind,
                           code.auth_time, tuple(grant.scopes.split()), code.client_id,
                           grant.id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        code: Code = request.authorization_code
        now = utcnow()
        with self.databases.unit_of_work("portal") as session:
            # Races with a replay's marking on the code's row: the row lock (PostgreSQL) or
            # the single writer (SQLite) orders the two, so either the replay sees this token
            # and revokes it, or this sees the mark and stores the token revoked and answers
            # an error (no access token, no ID token for a code seen twice).
            live = session.execute(
                update(AuthorizationCode)
                .where(AuthorizationCode.code_hash == code.code_hash,
                       AuthorizationCode.replayed_at.is_(None))
                .values(used_at=AuthorizationCode.used_at)
            ).rowcount == 1  # type: ignore[attr-defined]
            session.add(AccessToken(
                token_hash=hash_secret(token["access_token"]), grant_id=code.grant_id,
                client_id=code.client_id, account_id=code.account_id, scope=code.scope,
                code_hash=code.code_hash, issued_at=now,
                expires_at=now + dt.timedelta(seconds=TOKEN_SECONDS),
                revoked_at=None if live else now))
        if not live:
            raise InvalidGrantError("The authorization code was used twice.")

    # the resource side (hot path)

    def _authorize_bearer(self, token: str | None, scope: str | None) -> TokenInfo:
        if not token or len(token) > 200:
            raise InvalidToken("send the access token as 'Authorization: Bearer <token>'")
        with self._hot.connection(autocommit=True) as raw:  # one read
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
        return TokenInfo(account_id, grant_id, granted, client_id, name)

    def _release(self, info: TokenInfo, scope: str) -> SelfInformation:
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
        """UserInfo (Core 5.3; GET or POST): the pairwise ``sub``, and with ``basic_four`` the
        基本4情報 as the standard claims ``name``, ``birthdate``, ``gender`` and ``address``
        (Core 5.1; :mod:`mynumber.portal.oauth.claims`)."""
        info = self._authorize_bearer(token, None)
        if "openid" not in info.scopes:
            raise InsufficientScope("the token was not issued for openid", scope="openid")
        claims: dict[str, Any] = {"sub": self.subject(info.client_id, info.account_id)}
        if "basic_four" in info.scopes:
            released = self._release(info, "basic_four")
            if self._divisions is None:  # the list of 地方公共団体 changes only with a release
                self._divisions = Divisions.of(self._municipalities())
            claims.update(standard_claims(released.data or {}, self._divisions))
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
                    detail=detail(f"{name}: {grant.scopes}"), client_id=grant.client_id))
            return _grant_record(grant, name)

    def releases(self, account_id: int) -> list[Release]:
        with self.databases.unit_of_work("portal") as session:
            rows = session.scalars(select(ReleaseRecord)
                                   .where(ReleaseRecord.account_id == account_id)
                                   .order_by(ReleaseRecord.id.desc()))
            return [Release(r.client_id, r.client_name, r.scope, r.serial, r.released_at)
                    for r in rows]

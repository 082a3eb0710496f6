"""Routes of the self-information API's OpenID Provider, its resource endpoints and the API
client admin API for デジタル庁 staff.

OpenAPI: discovery, JWKS, userinfo, the resource endpoint and the client admin API are in the
schema. The OAuth protocol endpoints (/oauth/authorize, /oauth/par, /oauth/token) answer in
RFC 6749 / RFC 9126 form (redirects, HTML, ``{"error": ...}``) and are described by the
discovery document instead (docs/oidc.md)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from mynumber.auth.interfaces import StaffRole
from mynumber.errors import DomainError, Forbidden
from mynumber.kernel.signin import CurrentStaff
from mynumber.portal.interfaces import SESSION_COOKIE, ClientRecord, ClientState, PortalSession
from mynumber.portal.oauth import schemas as s
from mynumber.portal.oauth.adapters import HttpRequest
from mynumber.portal.oauth.clients import ApiClientsImpl
from mynumber.portal.oauth.outcomes import (
    SESSION_ENDED,
    AuthorizationProblem,
    ConsentPage,
    LoginRequired,
)
from mynumber.portal.oauth.provider import OpenIdProvider
from mynumber.web.templating import render

router = APIRouter()
PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_response(description: str) -> dict[str, Any]:
    """An RFC 9457 problem response in OpenAPI (the Problem schema the app publishes)."""
    return {"description": description, "content": {
        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


bearer = HTTPBearer(auto_error=False, description="access token from /oauth/token")
LOGIN_PATH = "/portal/login"
CLIENT_ID = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FRAME_DENY = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'",
              **NO_STORE}
BEARER_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: problem_response("invalid_token: missing, expired or revoked access token"),
    403: problem_response("insufficient_scope, or the client is not approved"),
    429: problem_response("rate_limited: the client's limit is reached (Retry-After)"),
}


def get_oidc(request: Request) -> OpenIdProvider:
    oidc: OpenIdProvider = request.app.state.container.oidc
    return oidc


def get_api_clients(request: Request) -> ApiClientsImpl:
    clients: ApiClientsImpl = request.app.state.container.api_clients
    return clients


OidcDep = Annotated[OpenIdProvider, Depends(get_oidc)]
ClientsDep = Annotated[ApiClientsImpl, Depends(get_api_clients)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


class InvalidBearerRequest(DomainError):
    status = 400
    code = "invalid_request"
    title = "The bearer token request is malformed"


def _bearer_problem(request: Request, exc: DomainError, sent_token: bool) -> JSONResponse:
    headers: dict[str, str] = dict(NO_STORE)
    if exc.status == 400:
        headers["WWW-Authenticate"] = 'Bearer realm="mynumber", error="invalid_request"'
    elif exc.status == 401:
        challenge = 'Bearer realm="mynumber"'
        if sent_token:
            challenge += ', error="invalid_token"'
        headers["WWW-Authenticate"] = challenge
    elif exc.code == "insufficient_scope":
        scope = str(exc.extra.get("scope", ""))
        headers["WWW-Authenticate"] = (f'Bearer realm="mynumber", error="insufficient_scope", '
                                       f'scope="{scope}"')
    elif exc.status == 429:
        headers["Retry-After"] = str(exc.extra.get("retry_after", 1))
    return JSONResponse(exc.problem(request.url.path), status_code=exc.status,
                        media_type=PROBLEM_MEDIA_TYPE, headers=headers)


# --- discovery -----------------------------------------------------------------------------------


@router.get("/.well-known/openid-configuration", operation_id="openid_configuration",
            response_model=s.Discovery, tags=["oidc"])
def openid_configuration(oidc: OidcDep) -> dict[str, Any]:
    """OpenID Provider metadata of the self-information API."""
    return oidc.discovery()


@router.get("/oauth/jwks", operation_id="oidc_jwks", response_model=s.Jwks, tags=["oidc"])
def jwks(oidc: OidcDep) -> dict[str, Any]:
    """The keys ID tokens are signed with (RS256)."""
    return oidc.jwks()


# --- the OAuth protocol endpoints ---------------------------------------------------------------


@router.post("/oauth/par", include_in_schema=False)
async def pushed_authorization_request(request: Request, oidc: OidcDep) -> Response:
    http = await HttpRequest.read(request)
    return await run_in_threadpool(oidc.push, http)


@router.post("/oauth/token", include_in_schema=False)
async def token(request: Request, oidc: OidcDep) -> Response:
    http = await HttpRequest.read(request)
    return await run_in_threadpool(oidc.token, http)


def _portal_session(request: Request, oidc: OpenIdProvider) -> PortalSession | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    try:
        session: PortalSession = oidc.portal.session(token)
    except DomainError:
        return None
    return session


def _problem_page(request: Request, problem: AuthorizationProblem) -> HTMLResponse:
    response = render(request, "portal/consent.html", status_code=problem.status,
                      problem=problem, page=None)
    response.headers.update(FRAME_DENY)
    return response


def _consent_page(request: Request, page: ConsentPage) -> HTMLResponse:
    response = render(request, "portal/consent.html", page=page, problem=None,
                      csrf_token=page.session.csrf_token, csrf_field="csrf_token",
                      proxy=page.session.acting_for != page.session.account_id)
    response.headers.update(FRAME_DENY)
    return response


def _authorize_sync(request: Request, http: HttpRequest, oidc: OpenIdProvider) -> Response:
    session = _portal_session(request, oidc)
    outcome = oidc.authorize(http, session)
    if isinstance(outcome, AuthorizationProblem):
        return _problem_page(request, outcome)
    if isinstance(outcome, LoginRequired):
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(outcome.next_url, safe='')}",
                                status_code=303, headers=NO_STORE)
    if isinstance(outcome, ConsentPage):
        return _consent_page(request, outcome)
    return outcome


@router.get("/oauth/authorize", include_in_schema=False)
async def authorize(request: Request, oidc: OidcDep) -> Response:
    """Validate the request (invalid client or redirect URI: an error page, never a redirect),
    make the resident log in to the portal, then ask for consent."""
    http = await HttpRequest.read(request)
    return await run_in_threadpool(_authorize_sync, request, http, oidc)


def _decide_sync(request: Request, form: dict[str, Any], scopes: list[str],
                 oidc: OpenIdProvider) -> Response:
    session = _portal_session(request, oidc)
    if session is None:
        return _problem_page(request, SESSION_ENDED)
    outcome = oidc.decide(session, str(form.get("consent_id", "")),
                          str(form.get("csrf_token", "")), form.get("decision") == "approve",
                          scopes)
    if isinstance(outcome, AuthorizationProblem):
        return _problem_page(request, outcome)
    outcome.status_code = 303 if outcome.status_code == 302 else outcome.status_code
    return outcome


@router.post("/oauth/authorize", include_in_schema=False)
async def decide(request: Request, oidc: OidcDep) -> Response:
    """The consent form: approve (the chosen items only) or deny."""
    data = await request.form()
    form = {k: v for k, v in data.items() if isinstance(v, str)}
    scopes = [v for v in data.getlist("scope") if isinstance(v, str)]
    return await run_in_threadpool(_decide_sync, request, form, scopes, oidc)


# --- resource endpoints ------------------------------------------------------------------------


def _userinfo_sync(request: Request, oidc: OpenIdProvider, token: str | None) -> Response:
    try:
        return JSONResponse(oidc.userinfo(token), headers=NO_STORE)
    except DomainError as exc:
        return _bearer_problem(request, exc, token is not None)


@router.get("/oauth/userinfo", operation_id="oidc_userinfo", response_model=s.UserInfo,
            response_model_exclude_none=True, tags=["oidc"], responses=BEARER_PROBLEMS)
def userinfo(request: Request, oidc: OidcDep, credentials: BearerDep) -> Any:
    """The pairwise ``sub``, and with scope ``basic_four`` the 基本4情報 as the standard claims
    ``name``, ``birthdate``, ``gender``, ``address`` (fetched through the network and
    recorded as a release)."""
    return _userinfo_sync(request, oidc, credentials.credentials if credentials else None)


USERINFO_FORM = {"requestBody": {"required": False, "content": {
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": {"access_token": {"type": "string", "maxLength": 200}},
    }}}}}


@router.post("/oauth/userinfo", operation_id="oidc_userinfo_post", response_model=s.UserInfo,
             response_model_exclude_none=True, tags=["oidc"], openapi_extra=USERINFO_FORM,
             responses={**BEARER_PROBLEMS,
                        400: problem_response("invalid_request: the token sent twice")})
async def userinfo_post(request: Request, oidc: OidcDep, credentials: BearerDep) -> Any:
    """UserInfo by POST (OIDC Core 5.3.1): the token in the ``Authorization`` header, or as
    the form field ``access_token`` (RFC 6750 2.2) -- one of them, not both."""
    token = credentials.credentials if credentials else None
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        sent = form.getlist("access_token")
        if len(sent) > 1 or (sent and token is not None):  # RFC 6750 2: exactly one method
            problem = InvalidBearerRequest("send the access token once: in the Authorization "
                                           "header or in the form, not both")
            return _bearer_problem(request, problem, True)
        if sent and isinstance(sent[0], str):
            token = sent[0]
    return await run_in_threadpool(_userinfo_sync, request, oidc, token)


@router.get("/api/v1/portal/self-information/{scope}", operation_id="get_self_information",
            response_model=s.SelfInformationOut, tags=["self-information"],
            responses=BEARER_PROBLEMS)
def self_information(
    request: Request, oidc: OidcDep, credentials: BearerDep,
    scope: Annotated[str, Path(min_length=1, max_length=40, pattern=s.SCOPE_PATTERN)],
) -> Any:
    """自己情報取得API: one item the resident consented to, fetched from its agency through
    the network now; the release is recorded and shown in the resident's やりとり履歴."""
    token = credentials.credentials if credentials else None
    try:
        result = oidc.self_information(token, scope)
    except DomainError as exc:
        return _bearer_problem(request, exc, token is not None)
    return s.SelfInformationOut(**dataclasses.asdict(result))


# --- API client admin (デジタル庁) ---------------------------------------------------------


def _vetting_staff(staff: CurrentStaff) -> str:
    """API clients are vetted by デジタル庁 operators (role ``admin``) only: a municipal
    supervisor's authority is their municipality, not who may fetch residents' data."""
    if staff.role is not StaffRole.ADMIN:
        raise Forbidden("vetting API clients needs the admin role (デジタル庁)")
    return staff.actor


VettingStaff = Annotated[str, Depends(_vetting_staff)]
clients_router = APIRouter(prefix="/api/v1/portal/clients", tags=["api-clients"])


def _out(record: ClientRecord) -> s.ClientOut:
    data = dataclasses.asdict(record)
    data.pop("client_secret", None)
    return s.ClientOut(**data)


@clients_router.post("", operation_id="apply_api_client", response_model=s.ClientRegistered,
                     status_code=201)
def apply_client(body: s.ClientApplication, clients: ClientsDep) -> s.ClientRegistered:
    """An applicant registers a client (state ``applied``); the secret is shown once."""
    record = clients.register(body.name, body.organisation, body.contact, body.redirect_uris,
                              body.scopes)
    return s.ClientRegistered(**dataclasses.asdict(record))


@clients_router.get("", operation_id="list_api_clients", response_model=s.ClientList)
def list_clients(actor: VettingStaff, clients: ClientsDep,
                 state: ClientState | None = None) -> s.ClientList:
    return s.ClientList(items=[_out(c) for c in clients.clients(state)])


@clients_router.get("/{client_id}", operation_id="get_api_client", response_model=s.ClientOut)
def get_client(actor: VettingStaff, clients: ClientsDep, client_id: CLIENT_ID) -> s.ClientOut:
    return _out(clients.client(client_id))


@clients_router.post("/{client_id}/state", operation_id="set_api_client_state",
                     response_model=s.ClientOut)
def set_state(actor: VettingStaff, clients: ClientsDep, client_id: CLIENT_ID,
              body: s.StateChange) -> s.ClientOut:
    """Approve, suspend or retire (applied→approved|retired, approved→suspended|retired,
    suspended→approved|retired); recorded with the staff member and the reason. A retired
    client comes back only through ``/reactivate``."""
    return _out(clients.set_state(actor, client_id, body.state, body.reason))


@clients_router.post("/{client_id}/reactivate", operation_id="reactivate_api_client",
                     response_model=s.ClientOut)
def reactivate(actor: VettingStaff, clients: ClientsDep, client_id: CLIENT_ID,
               body: s.Reactivation) -> s.ClientOut:
    """Bring a retired client back to ``suspended`` (approve it again to let it serve);
    recorded with the staff member and the reason. Retirement is therefore never final by
    one call."""
    return _out(clients.reactivate(actor, client_id, body.reason))


@clients_router.post("/{client_id}/rate-limit", operation_id="set_api_client_rate_limit",
                     response_model=s.ClientOut)
def set_rate_limit(actor: VettingStaff, clients: ClientsDep, client_id: CLIENT_ID,
                   body: s.RateLimitChange) -> s.ClientOut:
    return _out(clients.set_rate_limit(actor, client_id, body.per_minute))


@clients_router.get("/{client_id}/monitoring", operation_id="get_api_client_monitoring",
                    response_model=s.MonitoringOut)
def monitoring(actor: VettingStaff, clients: ClientsDep,
               client_id: CLIENT_ID) -> s.MonitoringOut:
    """Requests, releases, refusals, rate-limited calls, anomalies and distinct residents."""
    return s.MonitoringOut(**dataclasses.asdict(clients.monitoring(client_id)))


router.include_router(clients_router)

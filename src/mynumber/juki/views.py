"""The resident's page of 本人確認情報の提供状況の開示 (``/portal/juki``), in the portal.

It uses the portal's session (its cookie, its login page, its CSRF binding for the layout's
logout form) through ``mynumber.portal.interfaces`` only, and asks 住基ネット's
``portal_person`` who the session is. Times are shown in JST; nothing on the page is a code or
an enum value (the message catalogue, ``web/messages_juki.py``, names them).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mynumber.errors import DomainError, NotAuthenticated
from mynumber.juki.interfaces import JukiService
from mynumber.kernel import csrf
from mynumber.kernel.errors import error_box
from mynumber.kernel.routes import PagePolicy, SignInRequired, page_route
from mynumber.portal.interfaces import SESSION_COOKIE, PortalService, PortalSession, SessionExpired
from mynumber.web.templating import render

PATH = "/portal/juki"
CSRF_SCOPE = "portal"  # the portal's scope: the layout's logout form posts to the portal


def _portal(request: Request) -> PortalService:
    portal: PortalService = request.app.state.container.portal
    return portal


def _juki(request: Request) -> Any:
    return request.app.state.container.juki


def _session(request: Request) -> PortalSession:
    cached = getattr(request.state, "portal_session", None)
    if cached is not None:
        session: PortalSession = cached
        return session
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise SignInRequired(expired=False)
    try:
        session = _portal(request).session(token)
    except NotAuthenticated:
        raise SignInRequired(expired=True) from None
    request.state.portal_session = session
    return session


def _who(request: Request, session: PortalSession) -> dict[str, Any]:
    portal = _portal(request)
    who: dict[str, Any] = {"name": portal.account(session.account_id).display_name,
                           "proxy": None}
    if session.acting_for != session.account_id:
        principal = portal.account(session.acting_for)
        who["proxy"] = {"name": principal.display_name,
                        "kind": session.proxy_kind.value if session.proxy_kind else ""}
    return who


def _page(request: Request, template: str, session: PortalSession | None, *,
          status: int = 200, **context: Any) -> HTMLResponse:
    return render(request, template, status_code=status, session=session,
                  who=_who(request, session) if session is not None else None,
                  **csrf.form_fields(request, CSRF_SCOPE,
                                     session.session_id if session is not None else None),
                  **context)


def _error_page(request: Request, exc: DomainError, status: int | None = None,
                code: str | None = None) -> HTMLResponse:
    error = error_box(request, exc, code, prefixes=("juki.", "portal.", ""))
    session = getattr(request.state, "portal_session", None)
    try:
        return _page(request, "portal/error.html", session, status=status or exc.status,
                     error=error)
    except DomainError:
        return _page(request, "portal/error.html", None, status=status or exc.status,
                     error=error)


POLICY = PagePolicy(
    scope=CSRF_SCOPE, error_page=_error_page,
    session_binding=lambda request: _session(request).session_id,
    login_path="/portal/login", home_path="/portal", session_cookie=SESSION_COOKIE,
    remember_next=True, expired_errors=(SessionExpired,),
)
router = APIRouter(include_in_schema=False, route_class=page_route("JukiRoute", POLICY))


@router.get(PATH, response_class=HTMLResponse)
def disclosure_page(request: Request) -> HTMLResponse:
    session = _session(request)
    juki: JukiService = _juki(request)
    resident_id = _juki(request).portal_person.resident_id(request.cookies[SESSION_COOKIE])
    identity = juki.identity_of(resident_id)
    rows = [{"at": e.at,
             "agency": e.agency_name, "purpose": e.purpose, "kind": e.kind.value,
             "outcome": e.outcome.value} for e in juki.disclosure(resident_id)]
    return _page(request, "juki/disclosure.html", session, identity=identity, rows=rows)

"""The staff counter's shell, shared by every context's counter pages (registry, card,
portal proxies): the staff sign-in dependency, the route class and the page frame.

- Sign-in is the staff session cookie (``STAFF_COOKIE``: HttpOnly, SameSite=Strict), checked
  through ``container.staff_auth.authenticate``; no live session: 303 to the login page.
- CSRF tokens are bound to that session (HMAC of the server key over the session cookie):
  a token from another clerk's session, or an old session's, is refused. The login form's is
  bound to the pre-login cookie.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from fastapi.responses import HTMLResponse
from starlette.requests import Request

from mynumber.auth.interfaces import StaffPrincipal
from mynumber.errors import DomainError, NotAuthenticated
from mynumber.kernel import csrf
from mynumber.kernel.errors import error_box
from mynumber.kernel.forms import municipality_label
from mynumber.kernel.routes import PagePolicy, SignInRequired, page_route
from mynumber.kernel.signin import STAFF_COOKIE, staff_auth
from mynumber.web.templating import render

LOGIN_PATH = "/counter/login"
HOME_PATH = "/counter"
CSRF_SCOPE = "counter"
ERROR_TEMPLATE = "registry/error.html"


def _session_binding(request: Request) -> str:
    token = request.cookies.get(STAFF_COOKIE, "")
    if not token:
        raise SignInRequired(expired=False)
    return token


def counter_staff(request: Request) -> StaffPrincipal:
    token = _session_binding(request)
    try:
        staff = staff_auth(request).authenticate(token)
    except NotAuthenticated:
        raise SignInRequired(expired=True) from None
    return staff


CounterStaff = Annotated[StaffPrincipal, Depends(counter_staff)]


def counter_page(request: Request, template: str, *, status: int = 200,
                 staff: StaffPrincipal | None = None, **context: Any) -> HTMLResponse:
    """A counter page; its forms carry a token bound to the staff session when ``staff`` is
    given (else to the pre-login cookie: the login form)."""
    binding = request.cookies.get(STAFF_COOKIE) if staff is not None else None
    rows = {r["code"]: r for r in request.app.state.municipalities}
    return render(request, template, status_code=status, staff=staff,
                  muni=lambda code: municipality_label(rows, code),
                  **csrf.form_fields(request, CSRF_SCOPE, binding), **context)


def counter_error_page(request: Request, exc: DomainError, status: int | None = None,
                       code: str | None = None) -> HTMLResponse:
    return counter_page(request, ERROR_TEMPLATE, status=status or exc.status,
                        error=error_box(request, exc, code))


COUNTER = PagePolicy(
    scope=CSRF_SCOPE, error_page=counter_error_page, session_binding=_session_binding,
    login_path=LOGIN_PATH, home_path=HOME_PATH, session_cookie=STAFF_COOKIE,
    public_posts=frozenset({LOGIN_PATH}),
)
CounterRoute = page_route("CounterRoute", COUNTER)

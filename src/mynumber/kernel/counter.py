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
from mynumber.web.i18n import translator
from mynumber.web.templating import language, render

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
                  muni=lambda code: municipality_label(rows, code), who=_Actors(request),
                  **csrf.form_fields(request, CSRF_SCOPE, binding), **context)


class _Actors:
    """``who(actor)`` on a counter page: who did something, for people. ``staff:4`` is the
    member of staff's name; the system's own actors (registry events, imports, the seed, the
    network) are named by what they are, never by their code."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.names: dict[int, str] = {}
        self.t = translator(language(request))

    def __call__(self, actor: str) -> str:
        kind, _, rest = str(actor).partition(":")
        if kind == "staff" and rest.isdigit() and int(rest) > 0:  # staff:0 is the system
            if int(rest) not in self.names:
                self.names.update(staff_auth(self.request).staff_names([int(rest)]))
            return self.names.get(int(rest)) or self.t("actor.staff_unknown")
        label = self.t(f"actor.{kind}")
        return label if label != f"actor.{kind}" else self.t("actor.system")


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

"""The route class of every HTML page, parameterised by a :class:`PagePolicy` (who is signed
in, where to log in, how errors look). In one place, so no handler can forget any of it:

- every POST carries a CSRF token (kernel.csrf), checked before the handler runs: bound to the
  session on signed-in pages, to the pre-login cookie on the policy's public POSTs;
- no live session: a 303 to the login page (``expired=1`` and the cookie deleted when a
  session was there; ``next`` for a GET when the policy asks for it);
- a domain error becomes the policy's error page; anything unexpected the site's error page
  (HTML, one log line without traceback);
- ``Cache-Control: no-store``: a shared terminal's back button shows nothing of the previous
  person.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar
from urllib.parse import quote

from fastapi import Depends
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mynumber.errors import DomainError, InvalidInput
from mynumber.kernel import csrf
from mynumber.kernel.errors import unexpected


class SignInRequired(Exception):
    """No live session: the route answers with a redirect to the login page."""

    def __init__(self, expired: bool) -> None:
        super().__init__("sign-in required")
        self.expired = expired


ErrorPage = Callable[[Request, DomainError, "int | None", "str | None"], Response]


@dataclass(frozen=True)
class PagePolicy:
    """``scope``: the CSRF scope. ``session_binding``: the signed-in session's CSRF binding (it
    raises :class:`SignInRequired` when there is none); None for public pages, whose every POST
    is bound to the pre-login cookie, like the ``public_posts`` (login forms)."""

    scope: str
    error_page: ErrorPage
    session_binding: Callable[[Request], str] | None = None
    login_path: str = "/"
    home_path: str = "/"
    session_cookie: str = ""
    public_posts: frozenset[str] = field(default_factory=frozenset)
    remember_next: bool = False  # a GET's path goes to the login page as ``next``
    expired_errors: tuple[type[Exception], ...] = ()  # raised when the session ends mid-way

    def csrf_binding(self, request: Request) -> str | None:
        if self.session_binding is None or request.url.path in self.public_posts:
            return None
        return self.session_binding(request)

    def login_redirect(self, request: Request, expired: bool) -> Response:
        params = []
        if expired:
            params.append("expired=1")
        if self.remember_next and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if safe_next(target) and request.url.path != self.home_path:
                params.append("next=" + quote(target, safe=""))
        response = RedirectResponse(self.login_path + ("?" + "&".join(params) if params else ""),
                                    status_code=303)
        if self.session_cookie and (expired or request.cookies.get(self.session_cookie)):
            response.delete_cookie(self.session_cookie, path="/")
        return response


def safe_next(value: object) -> str:
    """A same-site path to go to after login, else ""."""
    if not isinstance(value, str) or len(value) > 2000:
        return ""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return ""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return ""
    return value


def secure_cookies(request: Request) -> bool:
    return str(request.app.state.settings.public_url).startswith("https://")


class PageRoute(APIRoute):
    """Subclass with :func:`page_route`; ``policy`` says who is signed in and how."""

    policy: ClassVar[PagePolicy]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        policy = self.policy

        async def handler(request: Request) -> Response:
            response: Response
            try:
                if request.method == "POST" and not csrf.check(
                    request, policy.scope, policy.csrf_binding(request),
                    (await request.form()).get(csrf.CSRF_FIELD),
                ):
                    response = policy.error_page(request, InvalidInput(
                        "the form is out of date or did not come from this site; reload and "
                        "retry", field=csrf.CSRF_FIELD), 403, "csrf_failed")
                else:
                    response = await original(request)
            except SignInRequired as exc:
                response = policy.login_redirect(request, exc.expired)
            except policy.expired_errors:  # the session ended while the page was being made
                response = policy.login_redirect(request, True)
            except DomainError as exc:
                response = policy.error_page(request, exc, None, None)
            except (HTTPException, RequestValidationError):
                raise  # 404, 413, 422 ...: kernel.errors renders them like everywhere else
            except Exception as exc:
                response = unexpected(request, exc, page=True)
            response.headers["Cache-Control"] = "no-store"
            csrf.set_prelogin_cookie(request, response, secure=secure_cookies(request))
            return response

        return handler


def page_route(name: str, policy: PagePolicy) -> type[PageRoute]:
    return type(name, (PageRoute,), {"policy": policy})


async def form_data(request: Request) -> FormData:
    return await request.form()  # parsed once; the route class already read it for CSRF


FormDep = Annotated[FormData, Depends(form_data)]

"""CSRF tokens bound to who is asking, one way to make them and one way to check them.

A token is ``HMAC-SHA256(server key, scope, binding)``, base64url:

- signed in, ``binding`` is the session (the staff session cookie at the counter, the portal
  session's id): a token taken from one session is worthless in another, and an attacker who
  can plant a cookie still cannot mint the matching token without the server key;
- before sign-in (login forms, the public loss report), ``binding`` is the id in the
  ``PRELOGIN_COOKIE`` (random, HttpOnly, SameSite=Strict): the token is bound to that id by the
  HMAC, so a cookie-only "double submit" (cookie value == field value) is refused.

``scope`` keeps the counter's, the portal's and the public pages' tokens apart. Tokens are
compared in constant time. The key is ``keys.symmetric_key(KEY_PURPOSE)``, read when the app is
assembled, never at import.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

KEY_PURPOSE = "web.csrf"
CSRF_FIELD = "csrf_token"
PRELOGIN_COOKIE = "mn_prelogin"
_PRELOGIN_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_NEW_ID = "mynumber.csrf.new_prelogin_id"


class CsrfTokens:
    """Makes and checks tokens under one server key (kept on ``app.state.csrf``)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the CSRF key must have at least 32 bytes")
        self._key = key

    def token(self, scope: str, binding: str) -> str:
        mac = hmac.new(self._key, f"{scope}\x00{binding}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def valid(self, scope: str, binding: str | None, submitted: object) -> bool:
        if not binding or not isinstance(submitted, str) or not submitted:
            return False
        return hmac.compare_digest(self.token(scope, binding).encode(), submitted.encode())


def install(app: Starlette, key: bytes) -> None:
    app.state.csrf = CsrfTokens(key)


def _tokens(request: Request) -> CsrfTokens:
    tokens: CsrfTokens = request.app.state.csrf
    return tokens


def prelogin_id(request: Request) -> str | None:
    """The pre-login cookie's id as sent (None when absent or not one of ours)."""
    value = request.cookies.get(PRELOGIN_COOKIE, "")
    return value if _PRELOGIN_ID.fullmatch(value) else None


def form_token(request: Request, scope: str, binding: str | None) -> str:
    """The token to put in this page's forms (``binding`` None: before sign-in). A fresh
    pre-login id is remembered on the request; the route class sets its cookie."""
    if binding is None:
        binding = prelogin_id(request) or getattr(request.state, _NEW_ID, None)
        if binding is None:
            binding = secrets.token_urlsafe(32)
            setattr(request.state, _NEW_ID, binding)
    return _tokens(request).token(scope, binding)


def form_fields(request: Request, scope: str, binding: str | None) -> dict[str, str]:
    """What the templates' ``forms.csrf()`` macro needs."""
    return {"csrf_token": form_token(request, scope, binding), "csrf_field": CSRF_FIELD}


def check(request: Request, scope: str, binding: str | None, submitted: object) -> bool:
    """The one check: ``binding`` None means the pre-login cookie's id."""
    if binding is None:
        binding = prelogin_id(request)
    return _tokens(request).valid(scope, binding, submitted)


def set_prelogin_cookie(request: Request, response: Response, *, secure: bool) -> None:
    """Send the pre-login cookie if this request minted a new id for a form."""
    new_id = getattr(request.state, _NEW_ID, None)
    if new_id:
        response.set_cookie(PRELOGIN_COOKIE, new_id, httponly=True, samesite="strict",
                            secure=secure, path="/")

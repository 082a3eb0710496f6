"""One ASGI middleware that puts the security headers on every response (API, pages, static
files, errors, 404s), so no route can forget them."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages: everything from this origin only, no plugins, no <base> rewriting, never framed
# (clickjacking). No form-action: the OAuth consent form's answer redirects to the relying
# party, and browsers apply form-action to that redirect.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
# Anything else (JSON, DER, text): nothing to load, never framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The interactive API docs load Swagger UI / ReDoc from their CDN with an inline bootstrap.
DOCS_CSP = "frame-ancestors 'none'"
HSTS = "max-age=31536000"


class SecurityHeaders:
    """``no_cache_prefixes``: paths whose responses may be cached (static assets); every other
    response without its own Cache-Control gets ``no-store`` (pages and answers carry personal
    data, and a shared terminal's cache or back button must not show them)."""

    def __init__(self, app: ASGIApp, *, https: bool, docs_paths: Iterable[str] = (),
                 cacheable_prefixes: Iterable[str] = ("/static/",)) -> None:
        self.app = app
        self.https = https
        self.docs_paths = frozenset(p for p in docs_paths if p)
        self.cacheable = tuple(cacheable_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                html = headers.get("content-type", "").startswith("text/html")
                if path in self.docs_paths:
                    csp = DOCS_CSP
                else:
                    csp = PAGE_CSP if html else API_CSP
                headers["Content-Security-Policy"] = csp
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "same-origin"
                if "cache-control" not in headers and not path.startswith(self.cacheable):
                    headers["Cache-Control"] = "no-store"
                if self.https:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_headers)

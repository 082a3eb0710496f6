"""Request body limits: an ASGI middleware that refuses bodies over a limit, declared or not.

Without it a client could make the server hold any body in memory (8 x 100 MB bodies took it
from 198 MB to 2.7 GB). Two checks, both needed:

- a declared ``Content-Length`` over the limit is refused before the app runs;
- a body without one (chunked) is counted as it is received, and reading past the limit raises
  :class:`BodyTooLarge` in whoever reads it, so the route never runs on a partial body.

Both answer 413 ``payload_too_large`` (problem JSON, or the HTML error page for a browser).

Why not Starlette's ``RequestBodyLimitMiddleware`` (FastAPI ``max_body_size``): it answers
text/plain and replaces any response once the declared length is over the limit, and every
error here is an RFC 9457 problem. ``BodyTooLarge`` is an ``HTTPException`` so that FastAPI's
body parsing passes it through instead of turning it into a 400.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1024 * 1024
DEFAULT_MAX_BODY = 1 * MIB
# Larger allowances by path prefix. Bulk data does not come over HTTP (the registry's import
# and export are CLI commands); the only larger bodies are the files a resident attaches to the
# 現況届 without the number: portal.interfaces allows MAX_ATTACHMENTS (5) files of at most
# MAX_ATTACHMENT_BYTES (5 MiB) each, and the portal refuses each file over that by name; the
# body may hold all five and the form's text fields (1 MiB).
LARGER_BODIES: Mapping[str, int] = {"/portal/applications/child-allowance": 26 * MIB}


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is larger than {limit} bytes")
        self.limit = limit


TooLargeResponder = Callable[[Scope, Receive, Send, BodyTooLarge], Awaitable[None]]


class BodyLimit:
    """``respond`` sends the 413 (kernel.errors renders it like every other error)."""

    def __init__(self, app: ASGIApp, *, respond: TooLargeResponder,
                 default: int = DEFAULT_MAX_BODY,
                 larger: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.respond = respond
        self.default = default
        self.larger = dict(LARGER_BODIES if larger is None else larger)

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.larger.items():
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self.respond(scope, receive, send, BodyTooLarge(limit))
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as exc:  # read outside any handler that renders it
            if started:
                raise
            await self.respond(scope, receive, send, exc)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

"""Every error, rendered in one place: an RFC 9457 problem for API clients, an HTML page (in
the visitor's language, from the message catalogue, without codes or traces) for browsers.

- ``install(app)`` registers the handlers for domain errors, validation errors and HTTP errors
  (404, 405, 413 ...), and :class:`UnhandledErrors`, a pure ASGI middleware that catches every
  other exception itself. It must catch them: Starlette's ServerErrorMiddleware would call an
  ``Exception`` handler and then re-raise, and uvicorn would log the full traceback, whose
  frames and message can hold personal data. Here the log line carries the exception's type,
  the method and the path only.
- A browser (``Accept`` names text/html and no JSON type) gets a page; anyone else gets JSON.
- ``error_box`` is what the pages' error box shows for a domain error.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mynumber.errors import DomainError
from mynumber.kernel.limits import BodyTooLarge
from mynumber.kernel.retry import (
    RETRY_AFTER_SECONDS,
    InfrastructureUnavailable,
    database_unavailable,
)
from mynumber.web.i18n import MESSAGES
from mynumber.web.templating import language, render

log = logging.getLogger("mynumber.web")

PROBLEM_MEDIA_TYPE = "application/problem+json"
ERROR_TEMPLATE = "error.html"
HTTP_CODES = {401: "not_authenticated", 404: "not_found", 405: "method_not_allowed",
              413: "payload_too_large"}


class InternalError(DomainError):
    code = "internal_error"
    status = 500
    title = "Internal error"


def text(key: str, lang: str) -> str:
    """A catalogue string in ``lang`` (Japanese when it has no translation), else ""."""
    entry = MESSAGES.get(key)
    return "" if entry is None else entry.get(lang) or entry["ja"]


def error_box(request: Request, exc: DomainError, code: str | None = None, *,
              prefixes: tuple[str, ...] = ("",)) -> dict[str, Any]:
    """The error box of a form page: a localised title and field label, and the message.
    ``prefixes``: catalogue sections tried in order (e.g. ``("portal.", "")``)."""
    lang = language(request)
    code = code or exc.code
    field = exc.field
    label = next((t for p in prefixes if field and (t := text(f"{p}field.{field}", lang))), "")
    title = ""
    if not label and field and (row := re.fullmatch(r"(.+)_([0-9]+)", field)):
        # A field of a table row (child_name_0): its column's label and the row's number.
        base = next((t for p in prefixes if (t := text(f"{p}field.{row.group(1)}", lang))), "")
        label = f"{base} {int(row.group(2)) + 1}" if base else ""
    if label and "invalid_" in code and code != "invalid_transition":
        # Input the person typed: the headline names that field (a code's own headline, e.g.
        # 住民票の記載内容に誤り, would blame the record for a mistyped number).
        title = next((t for p in prefixes if (t := text(f"{p}error.{code}.{field}", lang))), "")
        title = title or text("error.field_invalid", lang).format(field=label)
    title = title or next((t for p in prefixes if (t := text(f"{p}error.{code}", lang))), "")
    title = title or (exc.title if lang == "en" else "") or text("error.generic", lang)
    # The detail is English, written for developers: shown on English pages only, without
    # the field's internal name it starts with.
    detail = ""
    if lang == "en":
        detail = exc.detail
        if field and detail.startswith(f"{field}: "):
            detail = detail[len(field) + 2:]
    return {"code": code, "title": title, "field": field, "field_label": label,
            "detail": detail, "status": exc.status,
            "reason": str(exc.extra.get("reason", "")) if exc.extra else ""}


# --- the two renderings --------------------------------------------------------------------


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "text/html" in accept and "json" not in accept


def problem_json(body: dict[str, Any], status: int,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def error_page(request: Request, status: int, code: str,
               headers: dict[str, str] | None = None) -> Response:
    """The site's error page: the title from the catalogue, what to do next; no code, no
    detail (a detail is English and written for developers)."""
    lang = language(request)
    title = text(f"error.{code}", lang) or text("error.generic", lang)
    lead = text(f"error.{code}.lead", lang) or text("error.page.lead", lang)
    response = render(request, ERROR_TEMPLATE, status_code=status, title=title, lead=lead)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def respond(request: Request, body: dict[str, Any], status: int,
            headers: dict[str, str] | None = None) -> Response:
    if wants_html(request):
        try:
            return error_page(request, status, str(body.get("code", "")), headers)
        except Exception as exc:  # a page that cannot be drawn must not become a traceback
            log.error("error page failed with %s on %s", type(exc).__name__, request.url.path)
    return problem_json(body, status, headers)


def unavailable(request: Request, exc: BaseException, *, page: bool = False) -> Response:
    """503 ``infrastructure_unavailable`` with ``Retry-After`` for a database that could not be
    used (restarted, unreachable, locked): not the caller's fault, worth retrying, no 500."""
    # Operators see the kind of failure; the type and the path only, as for any error.
    log.warning("database unavailable (%s) on %s %s", type(exc).__name__, request.method,
                request.url.path)
    failure = InfrastructureUnavailable(
        "a database is temporarily unavailable; nothing was changed, retry later",
        reason="database", retry_after=RETRY_AFTER_SECONDS)
    headers = failure.headers()
    if page:
        try:
            return error_page(request, failure.status, failure.code, headers)
        except Exception as failed:
            log.error("error page failed with %s on %s", type(failed).__name__,
                      request.url.path)
    return respond(request, failure.problem(request.url.path), failure.status, headers)


def unexpected(request: Request, exc: BaseException, *, page: bool = False) -> Response:
    """500 for an exception nobody handled (503 when it is a database that could not be used:
    :func:`unavailable`); ``page``: the route is an HTML page."""
    if database_unavailable(exc):
        return unavailable(request, exc, page=page)
    # The type only: an exception's text and traceback can carry personal data.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    if page:
        try:
            return error_page(request, 500, "internal_error")
        except Exception as failed:
            log.error("error page failed with %s on %s", type(failed).__name__,
                      request.url.path)
    body = {
        "type": "urn:mynumber:problem:internal_error",
        "title": "Internal error",
        "status": 500,
        "detail": "the request could not be completed; nothing was changed",
        "code": "internal_error",
    }
    return respond(request, body, 500)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


def http_problem(request: Request, exc: StarletteHTTPException) -> Response:
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    body = {
        "type": f"urn:mynumber:problem:{code}",
        "title": detail,
        "status": exc.status_code,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    return respond(request, body, exc.status_code, getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, InfrastructureUnavailable):
            headers = exc.headers()
        return respond(request, exc.problem(request.url.path), exc.status, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # Never echo the submitted value back: it could be a 個人番号.
        errors = [
            {"field": _field_name(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        first = errors[0]["field"] if errors else "body"
        body = {
            "type": "urn:mynumber:problem:invalid_input",
            "title": "Invalid input",
            "status": 422,
            "detail": f"{first}: {errors[0]['message']}" if errors else "invalid request",
            "code": "invalid_input",
            "instance": request.url.path,
            "field": first,
            "errors": errors,
        }
        return respond(request, body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return http_problem(request, exc)

    app.add_middleware(UnhandledErrors)


async def too_large(scope: Scope, receive: Receive, send: Send, exc: BodyTooLarge) -> None:
    """kernel.limits' 413, rendered like any other HTTP error."""
    request = Request(scope, receive)
    await http_problem(request, exc)(scope, receive, send)


class UnhandledErrors:
    """Catches what no handler did, logs one line without a traceback, answers 500 (503 with
    ``Retry-After`` when a database could not be used)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            request = Request(scope, receive)
            if started:  # too late for an answer; the server closes the connection
                log.error("unhandled %s on %s %s after the response started",
                          type(exc).__name__, request.method, request.url.path)
                return
            await unexpected(request, exc)(scope, receive, send)

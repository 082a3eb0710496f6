"""RFC 9457 problem details for every error, and their OpenAPI description."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from mynumber.errors import DomainError

log = logging.getLogger("mynumber.web")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable ``code``."""

    type: str = Field(description="URI naming the problem type (urn:mynumber:problem:<code>)")
    title: str
    status: int
    detail: str
    code: str = Field(description="stable machine-readable error code")
    instance: str | None = None
    field: str | None = None
    errors: list[FieldError] | None = None


def problem_response(status: int, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


STANDARD_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: problem_response(400, "Bad request"),
    401: problem_response(401, "Not logged in, or the session ended"),
    403: problem_response(403, "Not permitted (role or jurisdiction)"),
    404: problem_response(404, "Not found"),
    409: problem_response(409, "Not allowed in the current state"),
    422: problem_response(422, "Invalid input; `field` / `errors` name the fields"),
}


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _json(exc.problem(request.url.path), exc.status, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
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
        return _json(body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated"}
        code = codes.get(exc.status_code, f"http_{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        body = {
            "type": f"urn:mynumber:problem:{code}",
            "title": detail,
            "status": exc.status_code,
            "detail": detail,
            "code": code,
            "instance": request.url.path,
        }
        return _json(body, exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the type only: exception text may carry personal data.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        body = {
            "type": "urn:mynumber:problem:internal_error",
            "title": "Internal error",
            "status": 500,
            "detail": "the request could not be completed; nothing was changed",
            "code": "internal_error",
        }
        return _json(body, 500)

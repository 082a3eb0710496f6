"""RFC 9457 problem details for every error, and their OpenAPI description."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from mynumber.kernel import errors
from mynumber.kernel.errors import PROBLEM_MEDIA_TYPE


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
    413: problem_response(413, "`payload_too_large`: the request body is over the limit"),
    422: problem_response(422, "Invalid input; `field` / `errors` name the fields"),
    503: problem_response(503, "`infrastructure_unavailable`: a database or an intermediate "
                               "server is temporarily unavailable; nothing was done that "
                               "needs undoing; retry after `Retry-After` seconds (`reason` "
                               "names the failing part for operators)"),
}


def install(app: FastAPI) -> None:
    """Every error handler and the last-resort middleware: kernel.errors, the one place that
    renders errors (problem JSON for clients, an HTML page for browsers)."""
    errors.install(app)

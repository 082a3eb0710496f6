"""Errors a user or client can cause, and their RFC 9457 problem-details form.

Each error has a stable ``code``; messages name the field and never echo the submitted value
(it could be a 個人番号).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base for every error a user can cause. Subclasses set ``code``, ``status``, ``title``."""

    code = "domain_error"
    status = 400
    title = "Request cannot be processed"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:mynumber:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        if self.field:
            body["field"] = self.field
        body.update(self.extra)
        return body


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422
    title = "Invalid input"


class NotFound(DomainError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    status = 409
    title = "Conflict with the current state"


class NotAuthenticated(DomainError):
    code = "not_authenticated"
    status = 401
    title = "Authentication required"


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    title = "Not permitted"

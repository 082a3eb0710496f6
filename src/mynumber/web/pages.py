"""Site-wide pages: the home page. Liveness and readiness (``/healthz``, ``/readyz``) are in
:mod:`mynumber.web.health`, on every listener."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from mynumber.web.health import Health, health
from mynumber.web.i18n import LANGUAGES
from mynumber.web.templating import render

__all__ = ["Health", "health", "home", "router", "switch_language"]

router = APIRouter()


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html")


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (``//evil``, ``/\\evil``, a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target \
            or any(ord(c) < 0x20 for c in target):
        return "/"
    return target


@router.get("/lang/{code}", include_in_schema=False)
def switch_language(request: Request, code: str, next: str | None = None) -> RedirectResponse:
    """The header's language link: remember the choice (cookie ``lang``) and go back to the
    page (a GET page: see :func:`mynumber.web.templating.return_path`)."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if code in LANGUAGES:
        response.set_cookie("lang", code, samesite="lax", max_age=365 * 24 * 3600)
    return response

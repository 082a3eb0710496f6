"""Site-wide pages: the home page. Liveness and readiness (``/healthz``, ``/readyz``) are in
:mod:`mynumber.web.health`, on every listener."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mynumber.web.health import Health, health
from mynumber.web.templating import render

__all__ = ["Health", "health", "home", "router"]

router = APIRouter()


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html")

"""Site-wide pages: the home page and the health check."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from mynumber import __version__
from mynumber.web.templating import render

router = APIRouter()


class Health(BaseModel):
    status: str
    version: str


@router.get("/healthz", operation_id="health", response_model=Health, tags=["system"])
def health() -> Health:
    return Health(status="ok", version=__version__)


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html")

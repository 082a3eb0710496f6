"""Jinja2 templates with Japanese first and English switchable (``?lang=en`` or cookie)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from mynumber.web.i18n import LANGUAGES, translator

TEMPLATE_DIRS = [Path(__file__).parent / "templates"]
_templates = Jinja2Templates(directory=[str(p) for p in TEMPLATE_DIRS])


def language(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or "ja"
    return lang if lang in LANGUAGES else "ja"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    response = _templates.TemplateResponse(
        request, template, {"t": translator(lang), "lang": lang, **context},
        status_code=status_code,
    )
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie("lang", lang, samesite="lax")
    return response

"""Jinja2 templates with Japanese first and English switchable (``?lang=en`` or cookie)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from mynumber.kernel import localtime
from mynumber.web.i18n import LANGUAGES, MESSAGES, translator

TEMPLATE_DIRS = [Path(__file__).parent / "templates"]
_templates = Jinja2Templates(directory=[str(p) for p in TEMPLATE_DIRS])


@pass_context
def _local_time(context: Context, moment: Any, seconds: bool = False) -> str:
    return localtime.local_time(moment, context.get("lang", "ja"), seconds=seconds)


@pass_context
def _local_date(context: Context, day: Any, era: bool = False) -> str:
    return localtime.local_date(day, context.get("lang", "ja"), era=era)


@pass_context
def _amount(context: Context, value: Any) -> str:
    return localtime.amount(value, context.get("lang", "ja"))


#: Where each data key's label stands in the catalogue (``portal.data.*``).
_DATA_ORDER = {key.removeprefix("portal.data."): i
               for i, key in enumerate(k for k in MESSAGES if k.startswith("portal.data."))}


def _in_reading_order(mapping: Any) -> list[tuple[Any, Any]]:
    """A provider's data in the order a person reads it: the order the catalogue lists the
    keys' labels (氏名, フリガナ, 生年月日, 性別, 住所, ...), keys without a label after them in
    their own order (never the alphabetical order of English keys)."""
    return sorted(mapping.items(), key=lambda kv: _DATA_ORDER.get(str(kv[0]), len(_DATA_ORDER)))


# Every time a person reads is in Japan time, every date in the page's language's style
# (mynumber.kernel.localtime): templates never format a date or time themselves.
_templates.env.filters.update(local_time=_local_time, local_date=_local_date, amount=_amount,
                              in_reading_order=_in_reading_order)
#: Data keys whose numbers are amounts of yen (grouped: 4,200,000; the label names the unit).
_templates.env.globals["YEN_KEYS"] = frozenset({
    "taxable_income", "municipal_tax", "monthly_amount", "annual_amount",
    "standard_monthly_remuneration", "income"})
_templates.env.tests.update(moment=lambda v: isinstance(v, dt.datetime),
                            day=lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime))


def language(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or "ja"
    return lang if lang in LANGUAGES else "ja"


def _has_get_page(request: Request, path: str) -> bool:
    from starlette.routing import Match

    scope = {"type": "http", "path": path, "root_path": "", "method": "GET"}
    return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)


def _off_site(value: str) -> bool:
    """A query value that names another site: never echoed into the page's links."""
    return value.startswith("//") or "://" in value or "\\" in value


def return_path(request: Request) -> str:
    """Where the language switch brings the person back: the same page if it is a GET page
    (its query kept, ``lang`` dropped), otherwise the closest page above it that answers GET:
    a page reached by POST (a form's result) cannot be asked for again."""
    if request.method in ("GET", "HEAD"):
        query = urlencode([(k, v) for k, v in request.query_params.multi_items()
                           if k != "lang" and not _off_site(v)])
        return request.url.path + (f"?{query}" if query else "")
    path = request.url.path.rstrip("/") or "/"
    while path != "/" and not _has_get_page(request, path):
        path = path.rsplit("/", 1)[0] or "/"
    return path


def language_switch(request: Request, lang: str) -> str:
    """The header's link to the other language: ``/lang/<code>?next=<this page>``."""
    other = "en" if lang == "ja" else "ja"
    return f"/lang/{other}?{urlencode({'next': return_path(request)})}"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    response = _templates.TemplateResponse(
        request, template, {"t": translator(lang), "lang": lang,
                            "language_switch": language_switch(request, lang), **context},
        status_code=status_code,
    )
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie("lang", lang, samesite="lax")
    return response

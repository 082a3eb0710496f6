"""Card pages: counter procedures for staff (application, issuance, PIN reset, suspension)
on the kernel's counter route class (login, CSRF bound to the staff session, no-store, errors
as HTML), and a resident page to report a lost card (/card/lost, no login: a public page route
whose CSRF token is bound to the pre-login cookie by HMAC).

PINs and the 個人番号 are never echoed back into a form; the loss page answers a mismatch with
the same generic message whatever did not match."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.datastructures import FormData
from fastapi.responses import HTMLResponse

from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.api import CardsDep
from mynumber.card.chip import PinKind
from mynumber.card.interfaces import IdentityCheck, IssuedPins
from mynumber.card.services import CardServiceImpl
from mynumber.errors import DomainError, InvalidInput, NotFound
from mynumber.kernel import csrf, forms
from mynumber.kernel.counter import CounterRoute, CounterStaff, counter_page
from mynumber.kernel.errors import error_box
from mynumber.kernel.forms import FormField
from mynumber.kernel.routes import FormDep, PagePolicy, page_route
from mynumber.registry.interfaces import IdentityDocument, NumberConfirmation
from mynumber.web.templating import render

PIN_FIELDS = frozenset({"signing_password", "user_auth_pin", "residence_pin", "card_info_pin",
                        "new_pin", "individual_number"})
LOST_PATH = "/card/lost"
LOST_CSRF_SCOPE = "card.lost"

IDENTITY_FIELDS = (
    FormField("individual_number", "password", required=True, maxlength=14),
    FormField("number_confirmation", "select", required=True,
              options=tuple(c.value for c in NumberConfirmation), option_prefix="confirmation"),
    FormField("identity_documents", "checkboxes", required=True,
              options=tuple(d.value for d in IdentityDocument), option_prefix="document"),
)


def _check(form: FormData) -> IdentityCheck:
    docs = tuple(v for v in form.getlist("identity_documents") if isinstance(v, str))
    return IdentityCheck(forms.value(form, "individual_number"),
                         forms.value(form, "number_confirmation"), docs)


def _resident_id(form: FormData) -> int:
    text = forms.value(form, "resident_id")
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise InvalidInput("resident_id must be a number", field="resident_id")
    return int(text)


router = APIRouter(include_in_schema=False, route_class=CounterRoute)

Runner = Callable[[CardServiceImpl, StaffPrincipal, FormData], dict[str, str]]


def _apply(cards: CardServiceImpl, staff: StaffPrincipal, form: FormData) -> dict[str, str]:
    application = cards.apply(staff, _resident_id(form))
    return {"application_id": application.application_id}


def _issue(cards: CardServiceImpl, staff: StaffPrincipal, form: FormData) -> dict[str, str]:
    pins = IssuedPins(forms.value(form, "signing_password"), forms.value(form, "user_auth_pin"),
                      forms.value(form, "residence_pin"), forms.value(form, "card_info_pin"))
    record, _ = cards.issue(staff, forms.value(form, "application_id"), _check(form), pins,
                            adult_ward=forms.value(form, "adult_ward") == "yes")
    return {"card_id": record.card_id, "expires_on": record.expires_on.isoformat()}


def _pin_reset(cards: CardServiceImpl, staff: StaffPrincipal, form: FormData) -> dict[str, str]:
    kind = forms.value(form, "pin_kind")
    if kind not in {k.value for k in PinKind}:
        raise InvalidInput("choose the PIN to reset", field="pin_kind")
    cards.reset_pin(staff, forms.value(form, "card_id"), kind, forms.value(form, "new_pin"),
                    _check(form))
    return {"card_id": forms.value(form, "card_id").upper(), "pin_kind": kind}


def _suspend(cards: CardServiceImpl, staff: StaffPrincipal, form: FormData) -> dict[str, str]:
    report = cards.suspend(staff, forms.value(form, "card_id"))
    return {"card_id": report.card_id, "state": report.state.value}


@dataclass(frozen=True)
class CardForm:
    slug: str
    fields: tuple[FormField, ...]
    run: Runner


FORMS: dict[str, CardForm] = {
    f.slug: f
    for f in (
        CardForm("apply", (FormField("resident_id", "number", required=True),), _apply),
        CardForm("issue", (
            FormField("application_id", required=True, maxlength=30, hint=True),
            *IDENTITY_FIELDS,
            FormField("signing_password", "password", required=True, maxlength=16, hint=True),
            FormField("user_auth_pin", "password", required=True, maxlength=4),
            FormField("residence_pin", "password", required=True, maxlength=4),
            FormField("card_info_pin", "password", required=True, maxlength=4),
            FormField("adult_ward", "select", options=("no", "yes"), option_prefix="yesno"),
        ), _issue),
        CardForm("pin-reset", (
            FormField("card_id", required=True, maxlength=16),
            FormField("pin_kind", "select", required=True,
                      options=tuple(k.value for k in PinKind), option_prefix="pin"),
            FormField("new_pin", "password", required=True, maxlength=16),
            *IDENTITY_FIELDS,
        ), _pin_reset),
        CardForm("suspend", (FormField("card_id", required=True, maxlength=16),), _suspend),
    )
}


def _form(slug: str) -> CardForm:
    form = FORMS.get(slug)
    if form is None:
        raise NotFound("no such card procedure")
    return form


def _kept(form: FormData, field: str | None = None) -> dict[str, Any]:
    return forms.kept_values(form, field, sensitive=forms.SENSITIVE_FIELDS | PIN_FIELDS)


@router.get("/counter/cards", response_class=HTMLResponse)
def card_home(request: Request, staff: CounterStaff) -> HTMLResponse:
    return counter_page(request, "card/home.html", staff=staff, forms=FORMS)


@router.get("/counter/cards/{slug}", response_class=HTMLResponse)
def card_form(request: Request, staff: CounterStaff, slug: str) -> HTMLResponse:
    return counter_page(request, "card/form.html", staff=staff, form=_form(slug), values={},
                        action=f"/counter/cards/{slug}")


@router.post("/counter/cards/{slug}", response_class=HTMLResponse)
def card_submit(request: Request, staff: CounterStaff, cards: CardsDep, form: FormDep,
                slug: str) -> HTMLResponse:
    procedure = _form(slug)
    try:
        result = procedure.run(cards, staff, form)
    except DomainError as exc:
        return counter_page(request, "card/form.html", status=exc.status, staff=staff,
                            form=procedure, values=_kept(form, exc.field),
                            error=error_box(request, exc), action=f"/counter/cards/{slug}")
    return counter_page(request, "card/done.html", staff=staff, form=procedure, result=result)


# --- resident: report a lost card ---------------------------------------------------------


def _resident_page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    return render(request, "card/lost.html", status_code=status, staff=None,
                  **csrf.form_fields(request, LOST_CSRF_SCOPE, None), **context)


def _lost_error_page(request: Request, exc: DomainError, status: int | None = None,
                     code: str | None = None) -> HTMLResponse:
    return _resident_page(request, status=status or exc.status, values={},
                          error=error_box(request, exc, code))


# No sign-in: every POST is bound to the pre-login cookie.
LOST_PAGE = PagePolicy(scope=LOST_CSRF_SCOPE, error_page=_lost_error_page)
public = APIRouter(include_in_schema=False, route_class=page_route("LostCardRoute", LOST_PAGE))


@public.get(LOST_PATH, response_class=HTMLResponse)
def lost_form(request: Request) -> HTMLResponse:
    return _resident_page(request, values={})


@public.post(LOST_PATH, response_class=HTMLResponse)
def lost_submit(request: Request, cards: CardsDep, form: FormDep) -> Response:
    values = {k: forms.value(form, k) for k in ("card_id", "name_kana", "birth_date")}
    try:
        if not values["card_id"] or len(values["card_id"]) > 32:
            raise InvalidInput("enter the card ID", field="card_id")
        if not values["name_kana"] or len(values["name_kana"]) > 80:
            raise InvalidInput("enter the name in kana", field="name_kana")
        report = cards.report_lost(values["card_id"], values["name_kana"],
                                   forms.date(form, "birth_date"), "web")
    except DomainError as exc:
        return _resident_page(request, status=exc.status, values=values,
                              error=error_box(request, exc))
    return _resident_page(request, values={}, done=report.card_id)

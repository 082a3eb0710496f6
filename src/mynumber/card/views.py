"""Card pages: counter procedures for staff (application, issuance, PIN reset, suspension)
on the kernel's counter route class (login, CSRF bound to the staff session, no-store, errors
as HTML), and a resident page to report a lost card (/card/lost, no login: a public page route
whose CSRF token is bound to the pre-login cookie by HMAC).

PINs and the 個人番号 are never echoed back into a form. The loss page names the card as the
個人番号カードコールセンター does (氏名のフリガナ, 生年月日, and the 住所 or the 個人番号), answers
no match and several matches with the same generic message, and gives a 受付番号 and the next
steps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.datastructures import FormData
from fastapi.responses import HTMLResponse

from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.api import CardsDep
from mynumber.card.chip import PinKind
from mynumber.card.interfaces import (
    FREE_AREA_RULES,
    CardHolderDetails,
    CardService,
    CertificateRenewal,
    IdentityCheck,
    IssuedPins,
)
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
#: The loss page's inputs and their longest accepted length (the 個人番号 with separators).
LOST_LIMITS = {"name_kana": 80, "birth_date": 10, "address": 200, "individual_number": 20}
#: What a failed loss report shows again: never the 個人番号.
LOST_KEPT = ("name_kana", "birth_date", "address")

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

#: A done page's value for a field: a text or a catalogue key ("card.…"), several keys (shown
#: translated), or a date or moment (shown in Japan time in the page's language).
Value = str | tuple[str, ...] | dt.date
Result = Mapping[str, Value]
Runner = Callable[[CardService, StaffPrincipal, FormData], Result]


def _apply(cards: CardService, staff: StaffPrincipal, form: FormData) -> dict[str, Value]:
    application = cards.apply(staff, _resident_id(form))
    return {"application_id": application.application_id}


def _issue(cards: CardService, staff: StaffPrincipal, form: FormData) -> dict[str, Value]:
    pins = IssuedPins(forms.value(form, "signing_password"), forms.value(form, "user_auth_pin"),
                      forms.value(form, "residence_pin"), forms.value(form, "card_info_pin"))
    record, _ = cards.issue(staff, forms.value(form, "application_id"), _check(form), pins,
                            adult_ward=forms.value(form, "adult_ward") == "yes")
    return {"card_id": record.card_id, "expires_on": record.expires_on}


def _pin_reset(cards: CardService, staff: StaffPrincipal, form: FormData) -> dict[str, Value]:
    kind = forms.value(form, "pin_kind")
    if kind not in {k.value for k in PinKind}:
        raise InvalidInput("choose the PIN to reset", field="pin_kind")
    cards.reset_pin(staff, forms.value(form, "card_id"), kind, forms.value(form, "new_pin"),
                    _check(form))
    return {"card_id": forms.value(form, "card_id").upper(), "pin_kind": kind}


def _suspend(cards: CardService, staff: StaffPrincipal, form: FormData) -> dict[str, Value]:
    report = cards.suspend(staff, forms.value(form, "card_id"))
    return {"card_id": report.card_id, "state": f"card.state.{report.state.value}"}


def _moment(moment: dt.datetime | None) -> Value:
    return "card.value.none" if moment is None else moment


def _status(cards: CardService, staff: StaffPrincipal, form: FormData) -> Result:
    """照会: the card's state and its certificates (the counter's view)."""
    status = cards.certificate_status(forms.value(form, "card_id"))
    cards.registry.get_resident(staff, status.card.resident_id, "個人番号カードの照会")
    card = status.card
    result: dict[str, Value] = {
        "card_id": card.card_id, "state": f"card.state.{card.state.value}",
        "expires_on": card.expires_on}
    if card.replaced_by:
        result["replaced_by"] = card.replaced_by
    for slot in status.certificates:
        key = f"{slot.kind}_certificate"
        result[key] = f"card.cert.{slot.state or 'none'}"
        if slot.state is not None:
            result[f"{slot.kind}_not_after"] = _moment(slot.not_after)
            if slot.renewal_opens_on is not None:
                result[f"{slot.kind}_renewal_opens_on"] = slot.renewal_opens_on
    result["smartphones"] = str(sum(1 for p in status.smartphones if p.active))
    # The applications by their names in the catalogue, not their ids.
    result["free_area"] = tuple(f"card.app.{e.app_id}" for e in status.free_area) \
        or "card.value.none"
    return result


def _pins(form: FormData) -> tuple[str | None, str | None]:
    return (forms.value(form, "signing_password") or None,
            forms.value(form, "user_auth_pin") or None)


def _renewal_result(renewal: CertificateRenewal) -> dict[str, Value]:
    result: dict[str, Value] = {"card_id": renewal.card.card_id,
                                "state": f"card.state.{renewal.card.state.value}"}
    for kind in renewal.issued:
        result[f"{kind}_certificate"] = "card.cert.issued"
    result["serial_links"] = str(len(renewal.links))
    return result


def _certificates(cards: CardService, staff: StaffPrincipal,
                  form: FormData) -> dict[str, Value]:
    signing, auth = _pins(form)
    renewal = cards.renew_certificates(staff, forms.value(form, "card_id"), _check(form),
                                       signing_password=signing, user_auth_pin=auth,
                                       adult_ward=forms.value(form, "adult_ward") == "yes")
    return _renewal_result(renewal)


def _lift(cards: CardService, staff: StaffPrincipal, form: FormData) -> dict[str, Value]:
    signing, auth = _pins(form)
    renewal = cards.lift_suspension(staff, forms.value(form, "card_id"), _check(form),
                                    signing_password=signing, user_auth_pin=auth,
                                    adult_ward=forms.value(form, "adult_ward") == "yes")
    return _renewal_result(renewal)


def _reissue(cards: CardService, staff: StaffPrincipal, form: FormData) -> dict[str, Value]:
    pins = IssuedPins(forms.value(form, "signing_password"), forms.value(form, "user_auth_pin"),
                      forms.value(form, "residence_pin"), forms.value(form, "card_info_pin"))
    record, _ = cards.reissue(staff, forms.value(form, "card_id"), _check(form), pins,
                              adult_ward=forms.value(form, "adult_ward") == "yes")
    return {"card_id": record.card_id, "expires_on": record.expires_on,
            "replaced_card": forms.value(form, "card_id").upper()}


def _smartphone_revoke(cards: CardService, staff: StaffPrincipal,
                       form: FormData) -> dict[str, Value]:
    card_id = forms.value(form, "card_id")
    status = cards.certificate_status(card_id)
    cards.registry.get_resident(staff, status.card.resident_id, "スマホ用電子証明書の失効")
    revoked = 0
    for cred in status.smartphones:
        if cred.active:
            revoked += len(cards.revoke_smartphone(cred.id, staff.actor))
    return {"card_id": status.card.card_id, "revoked_certificates": str(revoked)}


def _free_area(cards: CardService, staff: StaffPrincipal, form: FormData) -> dict[str, Value]:
    app_id = forms.value(form, "app_id")
    if app_id not in FREE_AREA_RULES:
        raise InvalidInput("choose an application", field="app_id")
    entry = cards.register_app(staff, forms.value(form, "card_id"), app_id)
    return {"card_id": entry.card_id, "app_id": f"card.app.{entry.app_id}",
            "issuer": entry.issuer}


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
            FormField("signing_password", "secret", required=True, maxlength=16, hint=True),
            FormField("user_auth_pin", "password", required=True, maxlength=4),
            FormField("residence_pin", "password", required=True, maxlength=4),
            FormField("card_info_pin", "password", required=True, maxlength=4),
            FormField("adult_ward", "select", options=("no", "yes"), option_prefix="yesno"),
        ), _issue),
        CardForm("pin-reset", (
            FormField("card_id", required=True, maxlength=16),
            FormField("pin_kind", "select", required=True,
                      options=tuple(k.value for k in PinKind), option_prefix="pin"),
            FormField("new_pin", "secret", required=True, maxlength=16),
            *IDENTITY_FIELDS,
        ), _pin_reset),
        CardForm("suspend", (FormField("card_id", required=True, maxlength=16),), _suspend),
        CardForm("status", (FormField("card_id", required=True, maxlength=16),), _status),
        CardForm("certificates", (
            FormField("card_id", required=True, maxlength=16),
            *IDENTITY_FIELDS,
            FormField("signing_password", "secret", maxlength=16, hint=True),
            FormField("user_auth_pin", "password", maxlength=4),
            FormField("adult_ward", "select", options=("no", "yes"), option_prefix="yesno"),
        ), _certificates),
        CardForm("lift-suspension", (
            FormField("card_id", required=True, maxlength=16),
            *IDENTITY_FIELDS,
            FormField("signing_password", "secret", maxlength=16, hint=True),
            FormField("user_auth_pin", "password", required=True, maxlength=4),
            FormField("adult_ward", "select", options=("no", "yes"), option_prefix="yesno"),
        ), _lift),
        CardForm("reissue", (
            FormField("card_id", required=True, maxlength=16),
            *IDENTITY_FIELDS,
            FormField("signing_password", "secret", required=True, maxlength=16, hint=True),
            FormField("user_auth_pin", "password", required=True, maxlength=4),
            FormField("residence_pin", "password", required=True, maxlength=4),
            FormField("card_info_pin", "password", required=True, maxlength=4),
            FormField("adult_ward", "select", options=("no", "yes"), option_prefix="yesno"),
        ), _reissue),
        CardForm("smartphone-revoke", (FormField("card_id", required=True, maxlength=16),),
                 _smartphone_revoke),
        CardForm("free-area", (
            FormField("card_id", required=True, maxlength=16),
            FormField("app_id", "select", required=True, options=tuple(FREE_AREA_RULES),
                      option_prefix="card.app"),
        ), _free_area),
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
    # Not "forms": the layout imports its form macros under that name.
    return counter_page(request, "card/home.html", staff=staff, procedures=FORMS)


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


def _lost_error(request: Request, exc: DomainError, code: str | None = None) -> dict[str, Any]:
    # The page's own labels and headlines first ("card.lost.field.address", …).
    return error_box(request, exc, code, prefixes=("card.lost.", ""))


def _lost_error_page(request: Request, exc: DomainError, status: int | None = None,
                     code: str | None = None) -> HTMLResponse:
    return _resident_page(request, status=status or exc.status, values={},
                          error=_lost_error(request, exc, code))


# No sign-in: every POST is bound to the pre-login cookie.
LOST_PAGE = PagePolicy(scope=LOST_CSRF_SCOPE, error_page=_lost_error_page)
public = APIRouter(include_in_schema=False, route_class=page_route("LostCardRoute", LOST_PAGE))


@public.get(LOST_PATH, response_class=HTMLResponse)
def lost_form(request: Request) -> HTMLResponse:
    return _resident_page(request, values={})


@public.post(LOST_PATH, response_class=HTMLResponse)
def lost_submit(request: Request, cards: CardsDep, form: FormDep) -> Response:
    """The card named as the call centre names it (what the holder knows and the card face
    shows), never by a card id: no card prints one. The 個人番号 is never shown again."""
    smartphone = forms.value(form, "device") == "smartphone"
    values = {k: forms.value(form, k) for k in LOST_KEPT}
    values["device"] = "smartphone" if smartphone else "card"
    try:
        if not values["name_kana"] or len(values["name_kana"]) > LOST_LIMITS["name_kana"]:
            raise InvalidInput("enter the name in kana", field="name_kana")
        birth_date = forms.date(form, "birth_date")
        holder = CardHolderDetails(
            values["name_kana"], birth_date,
            forms.value(form, "address", LOST_LIMITS["address"]),
            forms.value(form, "individual_number", LOST_LIMITS["individual_number"]))
        report = cards.report_lost_by_holder(holder, smartphone=smartphone, channel="web")
    except DomainError as exc:
        return _resident_page(request, status=exc.status, values=values,
                              error=_lost_error(request, exc))
    return _resident_page(request, values={}, done=True, reference=report.reference,
                          smartphone=smartphone)

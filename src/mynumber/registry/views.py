"""Municipal counter pages (HTML) for staff, on the same services as the JSON API.

Security decisions, in one place:

- Login takes both factors (password + one-time code) through ``StaffAuthImpl.login``; the
  session cookie is the API's (``STAFF_COOKIE``: httponly, SameSite=Strict). Any /counter page
  without a live session redirects (303) to the login page.
- Every POST carries a CSRF token bound to the staff session (HMAC of the server key over the
  session cookie; the login form's to the pre-login cookie), compared in constant time. The
  check sits in the kernel's ``CounterRoute`` (mynumber.kernel.counter), so no handler can
  forget it.
- Reading a record needs a declared reason (閲覧理由), which the service records with the reader;
  reads are POSTs, so neither the reason nor anything typed into a search lands in a URL.
- The 個人番号 is never in a URL, a redirect or a log line: lookups by number are POSTs, and the
  number is shown only in the body of the reveal POST. Pages are ``Cache-Control: no-store`` so
  a shared terminal's back button or cache does not show the previous clerk's work.
- A form that fails is shown again with the error and the other values; the field in error and
  any number field are left empty rather than echoed back.
- After a birth or a move-in the "done" page shows the new record's 記録番号 and 住民票コード
  without asking for a 閲覧理由 (the read is recorded with the procedure as its reason), but only
  to the clerk who registered it in this session: the redirect carries a ticket, an HMAC of the
  server key over the session, the record and the procedure. Without it the page is the plain
  reason form, so a typed-in ``?done=birth`` opens nothing. The new 個人番号 is shown only by a
  reason-giving POST (audited by ``reveal_number``), on a page of its own for printing the
  notification.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request, Response
from fastapi.datastructures import FormData
from fastapi.responses import HTMLResponse, RedirectResponse

from mynumber.auth.interfaces import LoginFailed, StaffPrincipal, StaffRole
from mynumber.errors import DomainError, InvalidInput, NotFound
from mynumber.kernel import forms
from mynumber.kernel.counter import HOME_PATH, LOGIN_PATH, CounterRoute, CounterStaff, counter_page
from mynumber.kernel.csrf import CsrfTokens
from mynumber.kernel.errors import error_box, text
from mynumber.kernel.forms import FormField, municipality_label
from mynumber.kernel.localtime import local_date
from mynumber.kernel.routes import FormDep, secure_cookies
from mynumber.kernel.signin import STAFF_COOKIE, StaffAuthDep
from mynumber.registry.api import RegistryDep
from mynumber.registry.interfaces import (
    IdentityDocument,
    LetterRecord,
    LetterStatus,
    LifeEventRecord,
    NewResident,
    NumberConfirmation,
    ResidentRecord,
    ResidentStatus,
    Sex,
)
from mynumber.registry.services import LETTER_TRANSITIONS, RegistryServiceImpl
from mynumber.web.i18n import MESSAGES
from mynumber.web.templating import language

# Longest inputs accepted at login before any hashing (argon2 on megabytes would be a DoS).
LOGIN_LIMITS = {"username": 40, "password": 200, "totp_code": 10}

SUPERVISORS = frozenset({StaffRole.SUPERVISOR, StaffRole.ADMIN})
# 閲覧理由: the reasons a clerk may give for opening a record (registry/_forms.html lists the
# same, in the same order).
REASONS = ("move_in", "certificate", "identity", "notification", "other")

router = APIRouter(include_in_schema=False, route_class=CounterRoute)
# Identifiers are 63-bit in every database; a larger one would overflow rather than not match.
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]

def _sex(form: FormData) -> Sex:
    try:
        return Sex(forms.value(form, "sex"))
    except ValueError:
        raise InvalidInput("sex must be male or female", field="sex") from None


def view_reason(form: FormData) -> str:
    """The 閲覧理由 as recorded: the chosen purpose (in Japanese, the register's language)
    followed by the clerk's note; "その他" needs the note."""
    kind = forms.value(form, "reason_kind")
    note = forms.value(form, "reason_text")
    if kind not in REASONS:
        raise InvalidInput("choose a reason for opening the record", field="reason_kind")
    if kind == "other" and not note:
        raise InvalidInput("describe the reason for opening the record", field="reason_text")
    if len(note) > 150:
        raise InvalidInput("the reason is longer than 150 characters", field="reason_text")
    label = MESSAGES[f"reason.{kind}"]["ja"]
    return f"{label}: {note}" if note else label


# --- forms ---------------------------------------------------------------------------------


#: A procedure's service call: the record to open next, or that record and the message to show
#: there instead of the procedure's own (``done.<key>``).
Runner = Callable[[RegistryServiceImpl, StaffPrincipal, int | None, FormData],
                  int | tuple[int, str]]


@dataclass(frozen=True)
class EventForm:
    """A counter procedure: its URL slug, fields, who may use it and the service call."""

    slug: str
    fields: tuple[FormField, ...]
    run: Runner
    roles: frozenset[StaffRole] | None = None  # None: every role
    reason: str = "other"  # the 閲覧理由 proposed when the record is opened afterwards

    def allowed(self, staff: StaffPrincipal) -> bool:
        return self.roles is None or staff.role in self.roles


def _occurred_on() -> FormField:
    return FormField("occurred_on", "date", required=True)


NAME_FIELDS = (
    FormField("family_name", required=True, maxlength=40),
    FormField("given_name", required=True, maxlength=40),
    FormField("family_name_kana", required=True, maxlength=80, hint=True),
    FormField("given_name_kana", required=True, maxlength=80),
)
RESIDENT_FIELDS = (
    *NAME_FIELDS,
    FormField("birth_date", "date", required=True),
    FormField("sex", "select", required=True, options=tuple(s.value for s in Sex),
              option_prefix="sex"),
    FormField("address", required=True),
    FormField("postal_code", maxlength=8),
    FormField("household_id", "number", hint=True),
    FormField("relationship", maxlength=20),
    FormField("nationality", maxlength=2),
    FormField("residence_status", maxlength=40),
)
# 職権修正: every correctable item, all optional (an empty input leaves the item as it is).
CORRECTABLE = tuple(
    FormField(f.name, f.kind, options=f.options, option_prefix=f.option_prefix,
              maxlength=f.maxlength)
    for f in RESIDENT_FIELDS if f.name != "household_id"
)


def _new_resident(staff: StaffPrincipal, form: FormData) -> NewResident:
    return NewResident(
        family_name=forms.value(form, "family_name"),
        given_name=forms.value(form, "given_name"),
        family_name_kana=forms.value(form, "family_name_kana"),
        given_name_kana=forms.value(form, "given_name_kana"),
        birth_date=forms.date(form, "birth_date"),
        sex=_sex(form),
        municipality_code=staff.municipality_code,
        address=forms.value(form, "address"),
        postal_code=forms.value(form, "postal_code"),
        household_id=forms.optional_int(form, "household_id"),
        relationship=forms.value(form, "relationship") or "世帯主",
        nationality=forms.value(form, "nationality") or "JP",
        residence_status=forms.value(form, "residence_status"),
    )


def _birth(reg: RegistryServiceImpl, staff: StaffPrincipal, _id: int | None,
           form: FormData) -> int:
    resident = _new_resident(staff, form)
    return reg.register_birth(staff, resident, resident.birth_date).id


def _move_in(reg: RegistryServiceImpl, staff: StaffPrincipal, _id: int | None,
             form: FormData) -> int:
    occurred_on = forms.date(form, "occurred_on")
    code = forms.value(form, "resident_code") or None
    return reg.register_move_in(staff, _new_resident(staff, form), occurred_on, code).id


def _resident_id(resident_id: int | None) -> int:
    assert resident_id is not None  # the route gives one for every per-resident form
    return resident_id


def _move_out(reg: RegistryServiceImpl, staff: StaffPrincipal, resident_id: int | None,
              form: FormData) -> int:
    return reg.register_move_out(
        staff, _resident_id(resident_id),
        forms.value(form, "destination_municipality_code") or None, forms.date(form, "occurred_on"),
    ).id


def _name_change(reg: RegistryServiceImpl, staff: StaffPrincipal, resident_id: int | None,
                 form: FormData) -> int:
    return reg.change_name(
        staff, _resident_id(resident_id), forms.value(form, "family_name"),
        forms.value(form, "given_name"), forms.value(form, "family_name_kana"),
        forms.value(form, "given_name_kana"), forms.date(form, "occurred_on"),
    ).id


def _address_change(reg: RegistryServiceImpl, staff: StaffPrincipal, resident_id: int | None,
                    form: FormData) -> int:
    return reg.change_address(staff, _resident_id(resident_id), forms.value(form, "address"),
                              forms.value(form, "postal_code"), forms.date(form, "occurred_on")).id


def _death(reg: RegistryServiceImpl, staff: StaffPrincipal, resident_id: int | None,
           form: FormData) -> int:
    return reg.register_death(staff, _resident_id(resident_id), forms.date(form, "occurred_on")).id


def _correction(reg: RegistryServiceImpl, staff: StaffPrincipal, resident_id: int | None,
                form: FormData) -> int:
    changes = {f.name: forms.value(form, f.name) for f in CORRECTABLE if forms.value(form, f.name)}
    return reg.correct(staff, _resident_id(resident_id), changes, forms.value(form, "reason")).id


def _reissue(reg: RegistryServiceImpl, staff: StaffPrincipal, resident_id: int | None,
             form: FormData) -> int:
    return reg.reissue_number(staff, _resident_id(resident_id), forms.value(form, "reason")).id


def _identity_verification(reg: RegistryServiceImpl, staff: StaffPrincipal,
                           resident_id: int | None,
                           form: FormData) -> int | tuple[int, str]:
    try:
        confirmation = NumberConfirmation(forms.value(form, "number_confirmation"))
    except ValueError:
        raise InvalidInput("choose how the number was confirmed",
                           field="number_confirmation") from None
    try:
        documents = [IdentityDocument(v) for v in form.getlist("identity_documents")
                     if isinstance(v, str)]
    except ValueError:
        raise InvalidInput("unknown identity document", field="identity_documents") from None
    check = reg.verify_identity(staff, _resident_id(resident_id), forms.value(form, "purpose"),
                                forms.value(form, "individual_number"), confirmation, documents)
    if not check.number_matched:
        # Recorded as not matching: the clerk must not read this as a completed check.
        return check.resident_id, "identity-mismatch"
    return check.resident_id


EVENTS: dict[str, EventForm] = {
    form.slug: form
    for form in (
        EventForm("birth", RESIDENT_FIELDS, _birth),
        EventForm("move-in", (_occurred_on(), FormField("resident_code", maxlength=13, hint=True),
                              *RESIDENT_FIELDS), _move_in, reason="move_in"),
        EventForm("move-out", (_occurred_on(), FormField("destination_municipality_code",
                                                         maxlength=6, hint=True)), _move_out),
        EventForm("name-change", (_occurred_on(), *NAME_FIELDS), _name_change),
        EventForm("address-change", (_occurred_on(), FormField("address", required=True),
                                     FormField("postal_code", maxlength=8)), _address_change),
        EventForm("death", (_occurred_on(),), _death),
        EventForm("correction", (*CORRECTABLE, FormField("reason", required=True)),
                  _correction, roles=SUPERVISORS),
        EventForm("reissue", (FormField("reason", required=True),), _reissue,
                  roles=SUPERVISORS),
        EventForm("identity-verification", (
            FormField("purpose", required=True, maxlength=100),
            FormField("individual_number", "password", required=True, maxlength=14),
            FormField("number_confirmation", "select", required=True,
                      options=tuple(c.value for c in NumberConfirmation),
                      option_prefix="confirmation"),
            FormField("identity_documents", "checkboxes", required=True,
                      options=tuple(d.value for d in IdentityDocument),
                      option_prefix="document"),
        ), _identity_verification, reason="identity"),
    )
}
NEW_RECORD_EVENTS = ("birth", "move-in")
RECORD_EVENTS = tuple(slug for slug in EVENTS if slug not in NEW_RECORD_EVENTS)
LETTER_FIELDS = (
    FormField("status", "select", required=True, options=tuple(s.value for s in LetterStatus),
              option_prefix="letter"),
    FormField("verification_id", "number"),
)
DONE_KEYS = frozenset({*EVENTS, "letter", "identity-mismatch"})
#: Search results per page.
SEARCH_PAGE = 50
# The procedures offered on a record that is no longer current (the services enforce it too).
STATUS_EVENTS: dict[ResidentStatus, tuple[str, ...]] = {
    ResidentStatus.MOVED_OUT: ("death", "correction", "identity-verification"),
    ResidentStatus.DECEASED: ("correction",),
}


def _defaults(record: ResidentRecord | None = None) -> dict[str, Any]:
    today = dt.date.today().isoformat()
    values: dict[str, Any] = {"occurred_on": today, "relationship": "世帯主",
                              "nationality": "JP"}
    if record is not None:
        values.update(family_name=record.family_name, given_name=record.given_name,
                      family_name_kana=record.family_name_kana,
                      given_name_kana=record.given_name_kana, address=record.address,
                      postal_code=record.postal_code)
    return values


# --- login ---------------------------------------------------------------------------------


@router.get(LOGIN_PATH, response_class=HTMLResponse)
def login_form(request: Request, expired: str = "") -> HTMLResponse:
    return counter_page(request, "registry/login.html", values={}, expired=expired == "1")


@router.post(LOGIN_PATH, response_class=HTMLResponse)
def login(request: Request, auth: StaffAuthDep, form: FormDep) -> Response:
    values = {name: forms.value(form, name) for name in LOGIN_LIMITS}
    try:
        if any(len(values[n]) > limit for n, limit in LOGIN_LIMITS.items()):
            raise LoginFailed("user name, password or one-time code is wrong")
        token = auth.login(values["username"], values["password"], values["totp_code"])
    except LoginFailed as exc:
        # One message whatever failed: the page must not tell which factor was wrong.
        return counter_page(request, "registry/login.html", status=401,
                            error=error_box(request, exc), values={"username": values["username"]})
    response = RedirectResponse(HOME_PATH, status_code=303)
    # The pages' CSRF tokens are bound to this new session (kernel.counter): a token planted
    # before login is worthless after it.
    response.set_cookie(STAFF_COOKIE, token, httponly=True, samesite="strict",
                        secure=secure_cookies(request))
    return response


@router.post("/counter/logout")
def logout(request: Request, auth: StaffAuthDep) -> Response:
    auth.logout(request.cookies.get(STAFF_COOKIE, ""))
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(STAFF_COOKIE)
    return response


# --- search --------------------------------------------------------------------------------


@router.get(HOME_PATH, response_class=HTMLResponse)
def counter_home(request: Request, staff: CounterStaff) -> HTMLResponse:
    return counter_page(request, "registry/search.html", staff=staff, values={}, results=None)


@router.post(HOME_PATH, response_class=HTMLResponse)
def search(request: Request, staff: CounterStaff, registry: RegistryDep,
           form: FormDep) -> HTMLResponse:
    try:
        after_text = forms.value(form, "after", 20)
        after = int(after_text) if after_text.isdigit() else 0
        start_text = forms.value(form, "start", 9)
        start = int(start_text) if start_text.isdigit() else 1
        found = registry.search(staff, forms.value(form, "q"), limit=SEARCH_PAGE + 1,
                                after=after)
    except DomainError as exc:
        return counter_page(request, "registry/search.html", status=exc.status, staff=staff,
                            error=error_box(request, exc),
                            values=forms.kept_values(form, exc.field), results=None)
    results = list(found[:SEARCH_PAGE])
    # One page at a time, never cut silently: the page says which results these are and
    # offers the next ones.
    more = len(found) > SEARCH_PAGE
    return counter_page(request, "registry/search.html", staff=staff,
                        values=forms.kept_values(form), results=results, start=start,
                        next_after=results[-1].id if more and results else None)


@router.post("/counter/lookup-by-number", response_class=HTMLResponse)
def lookup_by_number(request: Request, staff: CounterStaff, registry: RegistryDep,
                     form: FormDep) -> HTMLResponse:
    """Open a record by 個人番号: the number comes in the body and is never shown back."""
    try:
        reason = view_reason(form)
        record = registry.find_by_number(staff, forms.value(form, "individual_number"), reason)
    except DomainError as exc:
        return counter_page(request, "registry/search.html", status=exc.status, staff=staff,
                            lookup_error=error_box(request, exc),
                            lookup_values=forms.kept_values(form, exc.field), values={},
                            results=None)
    return _record_page(request, staff, registry, record, reason)


# --- records -------------------------------------------------------------------------------


def _done_ticket(request: Request, resident_id: int, done: str) -> str:
    """The ticket that lets the clerk who registered a birth or move-in see the new record's
    codes on the "done" page: an HMAC of the server key over this staff session and the record,
    worthless in another session or for another record."""
    tokens: CsrfTokens = request.app.state.csrf
    return tokens.token(f"counter.done.{done}", _done_binding(request, resident_id))


def _done_binding(request: Request, resident_id: int) -> str:
    return f"{request.cookies.get(STAFF_COOKIE, '')}\x00{resident_id}"


def _new_record(request: Request, staff: StaffPrincipal, registry: RegistryServiceImpl,
                resident_id: int, done: str | None, ticket: str) -> ResidentRecord | None:
    """The record just registered, for its "done" page; None without a valid ticket."""
    if done not in NEW_RECORD_EVENTS:
        return None
    tokens: CsrfTokens = request.app.state.csrf
    if not tokens.valid(f"counter.done.{done}", _done_binding(request, resident_id), ticket):
        return None
    # The procedure just completed is the reason for this read (recorded like any other).
    return registry.get_resident(staff, resident_id, MESSAGES[f"form.{done}"]["ja"])


def _reason_page(request: Request, staff: StaffPrincipal, registry: RegistryServiceImpl,
                 resident_id: int, done: str | None, ticket: str = "", *,
                 error: dict[str, Any] | None = None, values: Mapping[str, Any] | None = None,
                 notice_error: dict[str, Any] | None = None,
                 notice_values: Mapping[str, Any] | None = None,
                 status: int = 200) -> HTMLResponse:
    done = done if done in DONE_KEYS else None
    proposed = EVENTS[done].reason if done in EVENTS else "other"
    new_record = _new_record(request, staff, registry, resident_id, done, ticket)
    return counter_page(
        request, "registry/reason.html", status=status, staff=staff, resident_id=resident_id,
        done=done, error=error, values=values if values is not None else {"reason_kind": proposed},
        new_record=new_record, ticket=ticket if new_record is not None else "",
        notice_error=notice_error,
        notice_values=notice_values or {"reason_kind": "notification"},
    )


@router.get("/counter/residents/{resident_id}", response_class=HTMLResponse)
def reason_form(request: Request, staff: CounterStaff, registry: RegistryDep,
                resident_id: RecordId, done: str | None = None,
                ticket: str = "") -> HTMLResponse:
    """Ask why the record is opened before showing anything of it (after a birth or move-in
    registered in this session, the "done" page also shows the new record's codes)."""
    return _reason_page(request, staff, registry, resident_id, done, ticket[:64])


@router.post("/counter/residents/{resident_id}", response_class=HTMLResponse)
def view_record(request: Request, staff: CounterStaff, registry: RegistryDep,
                resident_id: RecordId, form: FormDep) -> HTMLResponse:
    try:
        reason = view_reason(form)
    except DomainError as exc:
        return _reason_page(request, staff, registry, resident_id, None, status=exc.status,
                            error=error_box(request, exc),
                            values=forms.kept_values(form, exc.field))
    record = registry.get_resident(staff, resident_id, reason)
    return _record_page(request, staff, registry, record, reason)


@router.post("/counter/residents/{resident_id}/reveal", response_class=HTMLResponse)
def reveal_number(request: Request, staff: CounterStaff, registry: RegistryDep,
                  resident_id: RecordId, form: FormDep) -> HTMLResponse:
    """Show the 個人番号, in this response's body only; the reveal is recorded with its reason."""
    try:
        reason = view_reason(form)
    except DomainError as exc:
        return _reason_page(request, staff, registry, resident_id, None, status=exc.status,
                            error=error_box(request, exc),
                            values=forms.kept_values(form, exc.field))
    record = registry.get_resident(staff, resident_id, reason)
    number = registry.reveal_number(staff, resident_id, reason)
    return _record_page(request, staff, registry, record, reason, number=number)


@router.post("/counter/residents/{resident_id}/notification", response_class=HTMLResponse)
def number_notification(request: Request, staff: CounterStaff, registry: RegistryDep,
                        resident_id: RecordId, form: FormDep) -> HTMLResponse:
    """The 個人番号 of a record just registered, for printing its notification: shown in this
    response's body only, once, and recorded with its reason (``reveal_number``)."""
    try:
        reason = view_reason(form)
    except DomainError as exc:
        # Back to the "done" page (when its ticket came along) with the error in the box.
        return _reason_page(request, staff, registry, resident_id, forms.value(form, "done", 20),
                            forms.value(form, "ticket", 64), status=exc.status,
                            notice_error=error_box(request, exc),
                            notice_values=forms.kept_values(form, exc.field))
    record = registry.get_resident(staff, resident_id, reason)
    number = registry.reveal_number(staff, resident_id, reason)
    return counter_page(request, "registry/number.html", staff=staff, record=record,
                        number=number, reason=reason, postal=postal_code)


def _record_page(request: Request, staff: StaffPrincipal, registry: RegistryServiceImpl,
                 record: ResidentRecord, reason: str, *, number: str | None = None
                 ) -> HTMLResponse:
    letters = registry.letters(staff, record.id)
    verifications = registry.verifications(staff, record.id)
    history = registry.history(staff, record.id)
    municipalities = {r["code"]: r for r in request.app.state.municipalities}
    open_to = STATUS_EVENTS.get(record.status, RECORD_EVENTS)
    procedures = [EVENTS[s] for s in RECORD_EVENTS
                  if s in open_to and EVENTS[s].allowed(staff)]
    return counter_page(
        request, "registry/record.html", staff=staff, record=record, reason=reason,
        number=number, letters=[(x, _next_statuses(x)) for x in letters],
        verifications=verifications,
        history=[(e, _describe(e, language(request), municipalities)) for e in history],
        procedures=procedures, values=_defaults(record), letter_fields=LETTER_FIELDS,
        reasons=REASONS, household=registry.household(staff, record.id), postal=postal_code,
    )


def postal_code(value: str) -> str:
    """〒 style for a page: 1638001 -> 163-8001 (anything else as stored)."""
    return f"{value[:3]}-{value[3:]}" if len(value) == 7 and value.isdigit() else value


def _next_statuses(letter: LetterRecord) -> list[str]:
    return sorted(s.value for s in LETTER_TRANSITIONS[letter.status])


#: History detail keys whose values are codes, shown through the catalogue (``prefix.value``).
CODED_DETAILS = {"sex": "sex", "status": "status", "nationality": "nationality"}


def _describe(event: LifeEventRecord, lang: str,
              municipalities: Mapping[str, Mapping[str, str]]) -> list[tuple[str, str]]:
    """History details as localised (label, text): before -> after for changes, else the value.
    Codes (sex, status, nationality, municipalities) are shown by their labels, dates in the
    page's style."""

    def label(key: str) -> str:
        return text(f"field.{key}", lang) or key

    def show(key: str, value: Any) -> str:
        if value is None:
            return ""
        if value == "abroad":
            return text("value.abroad", lang)
        if key in ("destination", "municipality_code", "previous_municipality_code"):
            return municipality_label(municipalities, str(value))
        if key in CODED_DETAILS:
            return text(f"{CODED_DETAILS[key]}.{value}", lang) or str(value)
        if key in ("birth_date", "occurred_on"):
            try:
                return local_date(dt.date.fromisoformat(str(value)), lang, era=True)
            except ValueError:
                return str(value)
        if key == "postal_code":
            return postal_code(str(value))
        return str(value)

    details = dict(event.details)
    before = details.pop("before", {}) or {}
    after = details.pop("after", {}) or {}
    lines = [(label(k), f"{show(k, before.get(k))} → {show(k, after.get(k))}")
             for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
    lines += [(label(k), show(k, v)) for k, v in details.items()]
    return lines


# --- events --------------------------------------------------------------------------------


def _event_page(request: Request, staff: StaffPrincipal, form: EventForm,
                resident_id: int | None, values: Mapping[str, Any], *,
                error: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    action = (f"/counter/{'births' if form.slug == 'birth' else 'move-ins'}"
              if resident_id is None else f"/counter/residents/{resident_id}/{form.slug}")
    return counter_page(request, "registry/event.html", status=status, staff=staff, form=form,
                        resident_id=resident_id, action=action, values=values, error=error)


def _submit(request: Request, staff: StaffPrincipal, registry: RegistryServiceImpl,
            event: EventForm, resident_id: int | None, form: FormData) -> Response:
    try:
        outcome = event.run(registry, staff, resident_id, form)
    except DomainError as exc:
        return _event_page(request, staff, event, resident_id, forms.kept_values(form, exc.field),
                           error=error_box(request, exc), status=exc.status)
    target, done = outcome if isinstance(outcome, tuple) else (outcome, event.slug)
    query = {"done": done}
    if done in NEW_RECORD_EVENTS:
        query["ticket"] = _done_ticket(request, target, done)
    # Post/redirect/get: reloading the next page must not register the event twice.
    return RedirectResponse(f"/counter/residents/{target}?{urlencode(query)}", status_code=303)


@router.get("/counter/births", response_class=HTMLResponse)
def birth_form(request: Request, staff: CounterStaff) -> HTMLResponse:
    return _event_page(request, staff, EVENTS["birth"], None, _defaults())


@router.post("/counter/births")
def register_birth(request: Request, staff: CounterStaff, registry: RegistryDep,
                   form: FormDep) -> Response:
    return _submit(request, staff, registry, EVENTS["birth"], None, form)


@router.get("/counter/move-ins", response_class=HTMLResponse)
def move_in_form(request: Request, staff: CounterStaff) -> HTMLResponse:
    return _event_page(request, staff, EVENTS["move-in"], None, _defaults())


@router.post("/counter/move-ins")
def register_move_in(request: Request, staff: CounterStaff, registry: RegistryDep,
                     form: FormDep) -> Response:
    return _submit(request, staff, registry, EVENTS["move-in"], None, form)


def _record_event(slug: str) -> EventForm:
    event = EVENTS.get(slug)
    if event is None or slug in NEW_RECORD_EVENTS:
        raise NotFound("no such counter procedure")
    return event


@router.get("/counter/residents/{resident_id}/{slug}", response_class=HTMLResponse)
def event_form(request: Request, staff: CounterStaff, resident_id: RecordId,
               slug: str) -> HTMLResponse:
    return _event_page(request, staff, _record_event(slug), resident_id, _defaults())


@router.post("/counter/residents/{resident_id}/letters/{letter_id}")
def update_letter(request: Request, staff: CounterStaff, registry: RegistryDep,
                  resident_id: RecordId, letter_id: RecordId, form: FormDep) -> Response:
    try:
        try:
            status = LetterStatus(forms.value(form, "status"))
        except ValueError:
            raise InvalidInput("choose the letter's new status", field="status") from None
        letter = registry.update_letter(staff, letter_id, status,
                                        forms.optional_int(form, "verification_id"))
    except DomainError as exc:
        return counter_page(request, "registry/letter.html", status=exc.status, staff=staff,
                            resident_id=resident_id, letter_id=letter_id, fields=LETTER_FIELDS,
                            values=forms.kept_values(form, exc.field),
                            error=error_box(request, exc))
    return RedirectResponse(f"/counter/residents/{letter.resident_id}?done=letter",
                            status_code=303)


@router.post("/counter/residents/{resident_id}/{slug}")
def submit_event(request: Request, staff: CounterStaff, registry: RegistryDep,
                 resident_id: RecordId, slug: str, form: FormDep) -> Response:
    return _submit(request, staff, registry, _record_event(slug), resident_id, form)


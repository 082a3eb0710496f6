"""オンライン資格確認's staff pages: the medical institution's reception (``/clinic``) and the
insurer's work (``/insurer``). Both are built on the kernel's counter shell: the staff sign-in
(``CounterStaff``: no session, 303 to ``/counter/login``), CSRF on every POST bound to the
staff session, errors as a page in the catalogue's words, ``Cache-Control: no-store``.

**The reception** (``/clinic``). A member of staff may use a terminal only when their user
name is among the terminal's ``operators`` (``Terminal.operators``, set by
``EligibilityService.set_terminal_operators``); any other terminal, or a suspended one, is
refused before anything is read. The page acts as the terminal (the reception's browser is
the terminal's screen): it asks the eligibility service for the terminal's one-use
challenge, and the patient's card answers it in one of three ways, or the patient shows a
資格確認書:

- card + PIN: the card signs the challenge after its 4-digit PIN (the embedded mode's virtual
  reader, ``PortalCardReader``, exactly as the portal's login and the bank counter use it; or a
  signature and certificate pasted from ``mynumber card auth``); a wrong PIN says how many tries
  are left;
- face: the card's certificate is read (no PIN) and the live photo is matched with the card's
  photo by the context's matcher. The virtual chip holds no photo and the sandbox has no camera:
  the page's card photo is derived from the certificate and the "live photo" is the stand-in's
  (``insurance.face``), and the page says so;
- visual: the certificate is read and the member of staff who looked is recorded;
- 資格確認書: its number and the birth date.

The face option is offered only when the eligibility service has a matcher (production
without a certified one has none: card + PIN or a visual check). A card not yet registered
for insurance use (初回登録が必要です) is offered 初回登録 on the same page: the patient's card
signs the terminal's challenge again after its PIN (``EligibilityService.activate`` with the
terminal), then the eligibility check is made as usual.

The answer shows 資格有効性 in words and the qualification; when it is 有効 the consent form
asks the patient item by item (薬剤情報・特定健診情報・診療・手術情報) and the next page shows
the choices with their expiry and a button per item to show it: the service refuses an item
without this visit's unexpired consent (and records the refusal); the page says why
(同意がないため表示できません / 同意の有効期限が切れています).

**The insurer** (``/insurer``). An ``admin`` may act for any insurer; any other member of staff
for their municipality's 国民健康保険 only (an insurer of kind ``municipal_nhi`` whose network
agency is the mayor of the staff member's municipality, by the network directory). The pages:
the insured persons with their link state, enrolment, the person's page (opened by 記号・番号・
枝番, the insurer's own look-up: POSTed, never in a URL), linking on all four items (by
住基ネット's search, or by the number the person gave: never stored or shown again), loss of
qualification, the review queue with its reasons in words and its resolution, the mass
re-check, and issuing documents.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.card.chip import CardError
from mynumber.card.interfaces import CardNotFound
from mynumber.errors import DomainError, Forbidden, InvalidInput
from mynumber.insurance.face import stand_in_live_photo
from mynumber.insurance.interfaces import (
    CONSENT_TTL,
    AlreadyActivated,
    ConfirmationMethod,
    ConsentItem,
    ConsentRequired,
    CoverageDocumentKind,
    EligibilityResult,
    InsuredKind,
    Insurer,
    InsurerKind,
    LimitCategory,
    LinkResult,
    LinkState,
    LossReason,
    NewInsuredPerson,
    NotActivated,
    PersonItems,
    Qualification,
    ReviewReason,
    ReviewResolution,
    Terminal,
    TerminalNotFound,
    TerminalStatus,
)
from mynumber.kernel import forms
from mynumber.kernel.counter import COUNTER, counter_page, counter_staff
from mynumber.kernel.errors import error_box
from mynumber.kernel.routes import FormDep, page_route
from mynumber.network.interfaces import mayor_lookup
from mynumber.portal.reader import (
    PortalCardReader,
    ReaderCardNotFound,
    ReaderPinLocked,
    ReaderWrongPin,
)
from mynumber.settings import Mode
from mynumber.web.i18n import translator
from mynumber.web.templating import language

CLINIC_PATH = "/clinic"
INSURER_PATH = "/insurer"
PREFIXES = ("insurance.", "")
PAGE_SIZE = 50
CONSENT_HOURS = int(CONSENT_TTL.total_seconds() // 3600)
TerminalId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
VisitId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
InsurerNumber = Annotated[str, Path(min_length=6, max_length=8, pattern=r"^[0-9]+$")]
ReviewId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class TerminalNotYours(Forbidden):
    code = "insurance_terminal_not_yours"
    title = "You are not registered to operate this terminal"


class NotYourInsurer(Forbidden):
    code = "insurance_no_insurer"
    title = "You may not act for this insurer"


# --- the shell: staff sign-in, pages, errors ------------------------------------------------


def insurance_staff(request: Request) -> StaffPrincipal:
    """The kernel's staff sign-in, remembered for the error page's staff bar."""
    staff = counter_staff(request)
    request.state.insurance_staff = staff
    return staff


Staff = Annotated[StaffPrincipal, Depends(insurance_staff)]


def _page(request: Request, template: str, *, status: int = 200,
          staff: StaffPrincipal | None = None, **context: Any) -> HTMLResponse:
    return counter_page(request, template, status=status, staff=staff, **context)


def _error(request: Request, exc: DomainError, code: str | None = None) -> dict[str, Any]:
    """The error box: the catalogue's words, and for a card or a consent refused the reason in
    words (``reason_text``); the PIN's remaining tries after a wrong PIN."""
    box = error_box(request, exc, code, prefixes=PREFIXES)
    reason = box.get("reason") or ""
    if reason:
        kind = {"insurance_card_refused": "card", "insurance_challenge_refused": "challenge",
                "insurance_consent_required": "consent"}.get(box["code"])
        if kind:
            box["reason_key"] = f"insurance.refusal.{kind}.{reason}"
            box["reason_fallback"] = f"insurance.refusal.{kind}.other"
    if isinstance(exc, ReaderWrongPin):
        box["remaining"] = exc.remaining
    return box


def _error_page(request: Request, exc: DomainError, status: int | None = None,
                code: str | None = None) -> HTMLResponse:
    staff = getattr(request.state, "insurance_staff", None)
    back = INSURER_PATH if request.url.path.startswith(INSURER_PATH) else CLINIC_PATH
    return _page(request, "insurance/staff_error.html", status=status or exc.status,
                 staff=staff, error=_error(request, exc, code), back=back)


POLICY = dataclasses.replace(COUNTER, error_page=_error_page)
router = APIRouter(include_in_schema=False,
                   route_class=page_route("InsuranceStaffRoute", POLICY))


# --- terminals and their operators ----------------------------------------------------------


def _own_terminal(container: Any, staff: StaffPrincipal, terminal_id: str) -> Terminal:
    """The terminal, if this member of staff operates it and it is in use. An unknown id is
    refused as another's terminal is (nothing said of which terminals exist)."""
    mine = {t.id: t for t in container.eligibility.terminals_for_operator(
        staff.username, include_suspended=True)}
    terminal: Terminal | None = mine.get(terminal_id)
    if terminal is None:
        raise TerminalNotYours("this member of staff does not operate this terminal",
                               field="terminal_id")
    if terminal.status is not TerminalStatus.ACTIVE:
        raise TerminalNotFound("the terminal is suspended", field="terminal_id")
    return terminal


# --- the reception --------------------------------------------------------------------------


def _clinic_base(terminal_id: str) -> str:
    return f"{CLINIC_PATH}/terminals/{terminal_id}"


def _confirm_page(request: Request, staff: StaffPrincipal, terminal: Terminal, *,
                  status: int = 200, error: dict[str, Any] | None = None,
                  values: Mapping[str, str] | None = None, activation: bool = False,
                  activated: bool = False) -> HTMLResponse:
    """The confirmation forms with a fresh challenge of the terminal (one use, 5 minutes);
    ``activation``: the 初回登録 form too (the card was not registered for insurance use);
    ``activated``: 初回登録 was just done. The face option only when the service has a
    matcher."""
    container = request.app.state.container
    challenge = container.eligibility.challenge(terminal)
    cards: list[str] = []
    if container.settings.mode is Mode.EMBEDDED:
        cards = PortalCardReader(container).cards()
    return _page(request, "insurance/clinic_confirm.html", status=status, staff=staff,
                 terminal=terminal, base=_clinic_base(terminal.id),
                 challenge_id=challenge.challenge_id, challenge_hex=challenge.challenge.hex(),
                 cards=cards, error=error, values=dict(values or {}),
                 face=getattr(container.eligibility, "matcher", None) is not None,
                 activation=activation, activated=activated)


def card_photo_of(certificate_pem: str) -> bytes:
    """The card's photo as this sandbox reads it: the virtual chip holds none, so a stand-in
    derived from the card's certificate (the same card, the same photo)."""
    return b"MYNUMBER-STAND-IN-CARD-PHOTO:" + hashlib.sha256(
        certificate_pem.encode()).hexdigest().encode()


def _read_certificate(container: Any, card_id: str) -> str:
    """The card's user-authentication certificate, read without a PIN (face and visual)."""
    PortalCardReader(container).check_available()
    try:
        with container.card.chip_session(card_id) as chip:
            certificate: str = chip.certificate("auth").decode("ascii")
    except (CardNotFound, CardError, OSError, ValueError):
        raise ReaderCardNotFound("no card with this id in the reader", field="card_id") from None
    return certificate


def _hex(form: FormData, name: str, limit: int) -> bytes:
    text = re.sub(r"\s+", "", forms.value(form, name, limit))
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InvalidInput(f"{name} must be hexadecimal", field=name) from None


def _card_answer(request: Request, form: FormData, method: ConfirmationMethod
                 ) -> tuple[str, bytes | None]:
    """(certificate, signature over the challenge for card + PIN) from the virtual reader or
    from what was pasted."""
    container = request.app.state.container
    card_id = forms.value(form, "card_id", 32)
    if card_id:
        if method is not ConfirmationMethod.CARD_PIN:
            return _read_certificate(container, card_id), None
        challenge = _hex(form, "challenge", 256)
        pin = form.get("pin")
        if not isinstance(pin, str) or not pin:
            raise InvalidInput("enter the PIN", field="pin")
        signature, certificate = PortalCardReader(container).sign_challenge(card_id, pin,
                                                                            challenge)
        return certificate, signature
    certificate = forms.value(form, "certificate", 10000)
    if "BEGIN CERTIFICATE" not in certificate:
        raise InvalidInput("choose the card, or paste the authentication certificate (PEM)",
                           field="card_id")
    if method is not ConfirmationMethod.CARD_PIN:
        return certificate, None
    signature = _hex(form, "signature", 4096)
    if not signature:
        raise InvalidInput("paste the card's signature", field="signature")
    return certificate, signature


def _method(form: FormData) -> ConfirmationMethod:
    text = forms.value(form, "method", 20)
    try:
        method = ConfirmationMethod(text)
    except ValueError:
        raise InvalidInput("choose how the person is verified", field="method") from None
    if method is ConfirmationMethod.DOCUMENT:
        raise InvalidInput("choose how the person is verified", field="method")
    return method


def _result_page(request: Request, staff: StaffPrincipal, terminal: Terminal,
                 result: EligibilityResult) -> HTMLResponse:
    return _page(request, "insurance/clinic_result.html", staff=staff, terminal=terminal,
                 base=_clinic_base(terminal.id), result=result, consent_hours=CONSENT_HOURS)


@router.get(CLINIC_PATH, response_class=HTMLResponse)
def clinic_home(request: Request, staff: Staff) -> HTMLResponse:
    # Suspended ones too: listed as 停止中, without the button (so the clerk knows why).
    terminals = request.app.state.container.eligibility.terminals_for_operator(
        staff.username, include_suspended=True)
    return _page(request, "insurance/clinic_home.html", staff=staff, terminals=terminals)


@router.get(CLINIC_PATH + "/terminals/{terminal_id}", response_class=HTMLResponse)
def clinic_terminal(request: Request, staff: Staff, terminal_id: TerminalId) -> HTMLResponse:
    terminal = _own_terminal(request.app.state.container, staff, terminal_id)
    return _confirm_page(request, staff, terminal)


@router.get(CLINIC_PATH + "/terminals/{terminal_id}/{rest:path}")
def clinic_back(terminal_id: TerminalId) -> Response:
    """A form's address asked for by GET (a reload, the language switch): the terminal's page."""
    return RedirectResponse(_clinic_base(terminal_id), status_code=303)


@router.post(CLINIC_PATH + "/terminals/{terminal_id}/card", response_class=HTMLResponse)
def clinic_check_card(request: Request, staff: Staff, terminal_id: TerminalId,
                      form: FormDep) -> HTMLResponse:
    container = request.app.state.container
    terminal = _own_terminal(container, staff, terminal_id)
    values = {"method": forms.value(form, "method", 20),
              "card_id": forms.value(form, "card_id", 32), "face": forms.value(form, "face", 10)}
    try:
        method = _method(form)
        challenge_id = forms.value(form, "challenge_id", 100)
        if not challenge_id:
            raise InvalidInput("the card request is missing; start again", field="challenge_id")
        certificate, signature = _card_answer(request, form, method)
        extra: dict[str, Any] = {}
        if method is ConfirmationMethod.FACE:
            photo = card_photo_of(certificate)
            # The sandbox's "camera": the stand-in's photo of the same face, or another face.
            live = (stand_in_live_photo(photo, b":live") if values["face"] == "same"
                    else b"MYNUMBER-STAND-IN-OTHER-FACE:" + photo[-16:])
            extra = {"card_photo": photo, "live_photo": live}
        elif method is ConfirmationMethod.VISUAL:
            extra = {"staff": str(staff.id)}
        result = container.eligibility.check_card(terminal, challenge_id, certificate,
                                                  method=method, signature=signature, **extra)
    except (ReaderWrongPin, ReaderPinLocked, DomainError) as exc:
        # A new challenge: the card answers again; nothing of this attempt is kept. A card
        # not registered for insurance use is offered 初回登録 (the card signs again).
        return _confirm_page(request, staff, terminal, status=exc.status,
                             error=_error(request, exc), values=values,
                             activation=isinstance(exc, NotActivated))
    return _result_page(request, staff, terminal, result)


@router.post(CLINIC_PATH + "/terminals/{terminal_id}/activation", response_class=HTMLResponse)
def clinic_activation(request: Request, staff: Staff, terminal_id: TerminalId,
                      form: FormDep) -> HTMLResponse:
    """初回登録 at the card reader: the card signs the terminal's challenge after its PIN
    (entered by the patient); then the terminal's page again, to check eligibility (the card
    answers a new challenge)."""
    container = request.app.state.container
    terminal = _own_terminal(container, staff, terminal_id)
    values = {"method": "card_pin", "card_id": forms.value(form, "card_id", 32)}
    try:
        challenge_id = forms.value(form, "challenge_id", 100)
        if not challenge_id:
            raise InvalidInput("the card request is missing; start again", field="challenge_id")
        certificate, signature = _card_answer(request, form, ConfirmationMethod.CARD_PIN)
        if signature is None:  # card + PIN always signs (or _card_answer refused)
            raise InvalidInput("paste the card's signature", field="signature")
        container.eligibility.activate(challenge_id, certificate, signature, terminal=terminal)
    except (ReaderWrongPin, ReaderPinLocked, DomainError) as exc:
        return _confirm_page(request, staff, terminal, status=exc.status,
                             error=_error(request, exc), values=values,
                             activation=not isinstance(exc, AlreadyActivated))
    return _confirm_page(request, staff, terminal, values=values, activated=True)


@router.post(CLINIC_PATH + "/terminals/{terminal_id}/document", response_class=HTMLResponse)
def clinic_check_document(request: Request, staff: Staff, terminal_id: TerminalId,
                          form: FormDep) -> HTMLResponse:
    container = request.app.state.container
    terminal = _own_terminal(container, staff, terminal_id)
    values = {"document_number": forms.value(form, "document_number", 40),
              "birth_date": forms.value(form, "birth_date", 10)}
    try:
        if not values["document_number"]:
            raise InvalidInput("enter the certificate's number", field="document_number")
        born = forms.date(form, "birth_date")
        result = container.eligibility.check_document(terminal, values["document_number"], born)
    except DomainError as exc:
        return _confirm_page(request, staff, terminal, status=exc.status,
                             error=_error(request, exc), values=values)
    return _result_page(request, staff, terminal, result)


def _choices(form: FormData) -> dict[ConsentItem, bool]:
    choices: dict[ConsentItem, bool] = {}
    for item in ConsentItem:
        answer = forms.value(form, f"consent_{item.value}", 5)
        if answer in ("yes", "no"):
            choices[item] = answer == "yes"
        elif answer:
            raise InvalidInput("choose agree or not", field=f"consent_{item.value}")
    if not choices:
        raise InvalidInput("the patient's choice is missing", field="consent_drugs")
    return choices


def _visit_page(request: Request, staff: StaffPrincipal, terminal: Terminal, visit_id: str,
                **context: Any) -> HTMLResponse:
    return _page(request, "insurance/clinic_visit.html", staff=staff, terminal=terminal,
                 base=_clinic_base(terminal.id), visit_id=visit_id, items=list(ConsentItem),
                 **context)


@router.post(CLINIC_PATH + "/terminals/{terminal_id}/visits/{visit_id}/consent",
             response_class=HTMLResponse)
def clinic_consent(request: Request, staff: Staff, terminal_id: TerminalId,
                   visit_id: VisitId, form: FormDep) -> HTMLResponse:
    container = request.app.state.container
    terminal = _own_terminal(container, staff, terminal_id)
    consents = container.eligibility.consent(terminal, visit_id, _choices(form))
    return _visit_page(request, staff, terminal, visit_id, consents=consents)


@router.post(CLINIC_PATH + "/terminals/{terminal_id}/visits/{visit_id}/records",
             response_class=HTMLResponse)
def clinic_records(request: Request, staff: Staff, terminal_id: TerminalId,
                   visit_id: VisitId, form: FormDep) -> HTMLResponse:
    container = request.app.state.container
    terminal = _own_terminal(container, staff, terminal_id)
    try:
        item = ConsentItem(forms.value(form, "item", 20))
    except ValueError:
        raise InvalidInput("choose the information to show", field="item") from None
    try:
        records = container.eligibility.records(terminal, visit_id, item)
    except ConsentRequired as exc:
        reason = str(exc.extra.get("reason", "none")) if exc.extra else "none"
        if reason not in ("none", "refused", "expired"):
            reason = "none"
        return _visit_page(request, staff, terminal, visit_id, status_item=item,
                           refused=reason)
    return _visit_page(request, staff, terminal, visit_id, status_item=item, records=records)


# --- the insurer ----------------------------------------------------------------------------


def insurers_for(container: Any, staff: StaffPrincipal) -> list[Insurer]:
    """The insurers this member of staff may act for: every one for an ``admin``; otherwise
    their municipality's 国民健康保険 (its agency is their municipality's mayor in the network
    directory)."""
    every: list[Insurer] = container.insurance.insurers()
    if staff.role is StaffRole.ADMIN:
        return every
    mayor = mayor_lookup(container.network.agencies())(staff.municipality_code)
    if mayor is None:
        return []
    return [i for i in every if i.kind is InsurerKind.MUNICIPAL_NHI and i.agency_id == mayor]


def _insurer(container: Any, staff: StaffPrincipal, number: str) -> Insurer:
    for insurer in insurers_for(container, staff):
        if insurer.number == number:
            return insurer
    # The same answer whether the insurer exists or not: nothing is said of others.
    raise NotYourInsurer("this member of staff may not act for this insurer")


def _actor(insurer: Insurer, staff: StaffPrincipal) -> str:
    return f"insurer:{insurer.number}:{staff.actor}"


def _insurer_base(insurer: Insurer) -> str:
    return f"{INSURER_PATH}/{insurer.number}"


def _state(text: str) -> LinkState | None:
    try:
        return LinkState(text) if text else None
    except ValueError:
        return None


INSURER_DONE = ("enrolled", "linked", "review", "lost", "resolved")


def _persons_page(request: Request, staff: StaffPrincipal, insurer: Insurer, *,
                  state: str = "", page: int = 0, status: int = 200,
                  error: dict[str, Any] | None = None, notice: str = "",
                  done: str = "", reason: str = "") -> HTMLResponse:
    container = request.app.state.container
    chosen = _state(state)
    page = max(0, min(page, 10_000))
    rows = container.insurance.qualifications(insurer.number, state=chosen, limit=PAGE_SIZE + 1,
                                              offset=page * PAGE_SIZE)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    names = {q.id: container.insurance.items_of(insurer.number, q.id).name for q in rows}
    reason_ok = reason if reason in {r.value for r in ReviewReason} else ""
    return _page(request, "insurance/insurer_persons.html", status=status, staff=staff,
                 insurer=insurer, base=_insurer_base(insurer), persons=rows, names=names,
                 state=chosen.value if chosen else "", states=[s.value for s in LinkState],
                 page=page, more=more, page_size=PAGE_SIZE, error=error, notice=notice,
                 done=done if done in INSURER_DONE else "", reason=reason_ok,
                 reviews=len(container.insurance.reviews(insurer.number)))


@router.get(INSURER_PATH, response_class=HTMLResponse)
def insurer_home(request: Request, staff: Staff) -> HTMLResponse:
    insurers = insurers_for(request.app.state.container, staff)
    return _page(request, "insurance/insurer_home.html", staff=staff, insurers=insurers)


@router.get(INSURER_PATH + "/{number}", response_class=HTMLResponse)
def insurer_persons(request: Request, staff: Staff, number: InsurerNumber, state: str = "",
                    page: int = 0, done: str = "", reason: str = "") -> HTMLResponse:
    insurer = _insurer(request.app.state.container, staff, number)
    return _persons_page(request, staff, insurer, state=state[:20], page=page, done=done[:20],
                         reason=reason[:40])


# Enrolment ---------------------------------------------------------------------------------


ENROL_FIELDS = ("symbol", "number", "branch", "insured_kind", "acquired_on", "copay_percent",
                "elderly_recipient", "limit_category", "name", "name_kana", "birth_date", "sex",
                "address")


def _enrol_page(request: Request, staff: StaffPrincipal, insurer: Insurer, *,
                status: int = 200, error: dict[str, Any] | None = None,
                values: Mapping[str, str] | None = None) -> HTMLResponse:
    return _page(request, "insurance/insurer_enrol.html", status=status, staff=staff,
                 insurer=insurer, base=_insurer_base(insurer), error=error,
                 values=dict(values or {"insured_kind": "insured", "copay_percent": "30"}),
                 kinds=[k.value for k in InsuredKind], limits=[c.value for c in LimitCategory])


def _items(form: FormData) -> PersonItems:
    birth = forms.value(form, "birth_date", 10)
    if birth:
        birth = forms.date(form, "birth_date").isoformat()
    sex = forms.value(form, "sex", 10)
    if sex not in ("", "male", "female"):
        raise InvalidInput("sex: male or female", field="sex")
    return PersonItems(name=forms.value(form, "name", 100),
                       name_kana=forms.value(form, "name_kana", 100), birth_date=birth, sex=sex,
                       address=forms.value(form, "address", 300))


def _new_person(form: FormData) -> NewInsuredPerson:
    try:
        kind = InsuredKind(forms.value(form, "insured_kind", 20))
    except ValueError:
        raise InvalidInput("choose insured person or dependant", field="insured_kind") from None
    copay = forms.optional_int(form, "copay_percent")
    if copay not in (10, 20, 30):
        raise InvalidInput("co-payment: 10, 20 or 30 percent", field="copay_percent")
    limit_text = forms.value(form, "limit_category", 20)
    try:
        limit = LimitCategory(limit_text) if limit_text else None
    except ValueError:
        raise InvalidInput("not a limit category", field="limit_category") from None
    return NewInsuredPerson(
        symbol=forms.value(form, "symbol", 20), number=forms.value(form, "number", 20),
        branch=forms.value(form, "branch", 2), insured_kind=kind,
        acquired_on=forms.date(form, "acquired_on"), copay_percent=copay,
        items=_items(form), elderly_recipient=forms.value(form, "elderly_recipient", 5) == "yes",
        limit_category=limit)


@router.get(INSURER_PATH + "/{number}/enrol", response_class=HTMLResponse)
def enrol_form(request: Request, staff: Staff, number: InsurerNumber) -> HTMLResponse:
    insurer = _insurer(request.app.state.container, staff, number)
    return _enrol_page(request, staff, insurer)


@router.post(INSURER_PATH + "/{number}/enrol", response_class=HTMLResponse)
def enrol(request: Request, staff: Staff, number: InsurerNumber, form: FormDep) -> Response:
    container = request.app.state.container
    insurer = _insurer(container, staff, number)
    try:
        container.insurance.enrol(insurer.number, _new_person(form), _actor(insurer, staff))
    except DomainError as exc:
        return _enrol_page(request, staff, insurer, status=exc.status, error=_error(request, exc),
                           values=forms.kept_values(form))
    return RedirectResponse(f"{_insurer_base(insurer)}?done=enrolled", status_code=303)


# The person's page -------------------------------------------------------------------------


def _person_page(request: Request, staff: StaffPrincipal, insurer: Insurer,
                 q: Qualification, *, status: int = 200, error: dict[str, Any] | None = None,
                 done: str = "", link: LinkResult | None = None) -> HTMLResponse:
    container = request.app.state.container
    items = container.insurance.items_of(insurer.number, q.id)
    documents = container.insurance.documents(q.id)
    try:
        birth: dt.date | None = dt.date.fromisoformat(items.birth_date)
    except ValueError:
        birth = None
    return _page(request, "insurance/insurer_person.html", status=status, staff=staff,
                 insurer=insurer, base=_insurer_base(insurer), q=q, items=items, birth=birth,
                 documents=documents, error=error, done=done, link=link,
                 losses=[r.value for r in LossReason])


def _find(container: Any, insurer: Insurer, form: FormData) -> Qualification:
    """The insurer's own look-up by 記号・番号・枝番 (POSTed: never in a URL or a log)."""
    q: Qualification = container.insurance.find(
        insurer.number, forms.value(form, "symbol", 20), forms.value(form, "number", 20),
        forms.value(form, "branch", 2))
    return q


@router.post(INSURER_PATH + "/{number}/person", response_class=HTMLResponse)
def person(request: Request, staff: Staff, number: InsurerNumber, form: FormDep
           ) -> HTMLResponse:
    container = request.app.state.container
    insurer = _insurer(container, staff, number)
    try:
        q = _find(container, insurer, form)
    except DomainError as exc:
        return _persons_page(request, staff, insurer, status=exc.status,
                             error=_error(request, exc))
    return _person_page(request, staff, insurer, q)


def _qualification_id(form: FormData) -> int:
    value = forms.optional_int(form, "qualification_id")
    if value is None or value < 1:
        raise InvalidInput("no insured person chosen", field="qualification_id")
    return value


@router.post(INSURER_PATH + "/{number}/link", response_class=HTMLResponse)
def link(request: Request, staff: Staff, number: InsurerNumber, form: FormDep) -> Response:
    """Link on all four items: by 住基ネット's search or by the number the person gave (read
    from the form, handed to the service, never kept or shown)."""
    container = request.app.state.container
    insurer = _insurer(container, staff, number)
    q = _find(container, insurer, form)
    qualification_id = _qualification_id(form)
    if qualification_id != q.id:
        raise InvalidInput("the record changed; open it again", field="qualification_id")
    route = forms.value(form, "route", 10)
    try:
        if route == "number":
            individual_number = forms.value(form, "individual_number", 20)
            if not individual_number:
                raise InvalidInput("enter the number the person gave", field="individual_number")
            result = container.insurance.link_by_number(insurer.number, q.id, individual_number,
                                                        _actor(insurer, staff))
        else:
            result = container.insurance.link_by_search(insurer.number, q.id,
                                                         _actor(insurer, staff))
    except DomainError as exc:
        return _person_page(request, staff, insurer, q, status=exc.status,
                            error=_error(request, exc))
    return _person_page(request, staff, insurer, _find(container, insurer, form),
                        done="linked" if result.state is LinkState.LINKED else "review",
                        link=result)


@router.post(INSURER_PATH + "/{number}/lose", response_class=HTMLResponse)
def lose(request: Request, staff: Staff, number: InsurerNumber, form: FormDep) -> Response:
    container = request.app.state.container
    insurer = _insurer(container, staff, number)
    q = _find(container, insurer, form)
    try:
        try:
            reason = LossReason(forms.value(form, "loss_reason", 30))
        except ValueError:
            raise InvalidInput("choose the reason", field="loss_reason") from None
        container.insurance.lose(insurer.number, q.id, forms.date(form, "lost_on"), reason,
                                 _actor(insurer, staff))
    except DomainError as exc:
        return _person_page(request, staff, insurer, q, status=exc.status,
                            error=_error(request, exc))
    return _person_page(request, staff, insurer, _find(container, insurer, form), done="lost")


# The review queue --------------------------------------------------------------------------


def _reviews_page(request: Request, staff: StaffPrincipal, insurer: Insurer, *,
                  status: int = 200, error: dict[str, Any] | None = None, done: str = "",
                  values: Mapping[str, str] | None = None, failed: int | None = None
                  ) -> HTMLResponse:
    container = request.app.state.container
    reviews = container.insurance.reviews(insurer.number)
    # The review names its record by id; the insurer sees the record's insured number. An
    # open review's record waits in REVIEW or BLOCKED: only those (few) are read.
    shown: dict[int, Qualification] = {}
    for state in (LinkState.REVIEW, LinkState.BLOCKED):
        wanted = {r.qualification_id for r in reviews} - shown.keys()
        if not wanted:
            break
        offset = 0
        while wanted:
            batch = container.insurance.qualifications(insurer.number, state=state, limit=1000,
                                                       offset=offset)
            shown.update({q.id: q for q in batch if q.id in wanted})
            wanted -= {q.id for q in batch}
            if len(batch) < 1000:
                break
            offset += 1000
    names = {r.id: container.insurance.items_of(insurer.number, r.qualification_id).name
             for r in reviews}
    return _page(request, "insurance/insurer_reviews.html", status=status, staff=staff,
                 insurer=insurer, base=_insurer_base(insurer), reviews=reviews, records=shown,
                 names=names, error=error, done=done, values=dict(values or {}),
                 failed=failed)


@router.get(INSURER_PATH + "/{number}/reviews", response_class=HTMLResponse)
def reviews(request: Request, staff: Staff, number: InsurerNumber, done: str = ""
            ) -> HTMLResponse:
    insurer = _insurer(request.app.state.container, staff, number)
    return _reviews_page(request, staff, insurer, done="resolved" if done == "resolved" else "")


@router.post(INSURER_PATH + "/{number}/reviews/{review_id}", response_class=HTMLResponse)
def resolve(request: Request, staff: Staff, number: InsurerNumber, review_id: ReviewId,
            form: FormDep) -> Response:
    container = request.app.state.container
    insurer = _insurer(container, staff, number)
    try:
        try:
            resolution = ReviewResolution(forms.value(form, "resolution", 20))
        except ValueError:
            raise InvalidInput("choose how to resolve it", field="resolution") from None
        corrected = _items(form) if resolution is ReviewResolution.CORRECTED else None
        container.insurance.resolve_review(insurer.number, review_id, resolution,
                                           _actor(insurer, staff), corrected)
    except DomainError as exc:
        return _reviews_page(request, staff, insurer, status=exc.status,
                             error=_error(request, exc), values=forms.kept_values(form),
                             failed=review_id)
    return RedirectResponse(f"{_insurer_base(insurer)}/reviews?done=resolved", status_code=303)


# The re-check and the documents -------------------------------------------------------------


@router.post(INSURER_PATH + "/{number}/recheck", response_class=HTMLResponse)
def recheck(request: Request, staff: Staff, number: InsurerNumber) -> HTMLResponse:
    container = request.app.state.container
    insurer = _insurer(container, staff, number)
    report = container.insurance.recheck(insurer.number)
    notice = translator(language(request))("insurance.insurer.recheck.done").format(
        checked=report.checked, matching=report.still_matching, blocked=report.blocked)
    return _persons_page(request, staff, insurer, notice=notice)


@router.post(INSURER_PATH + "/{number}/documents", response_class=HTMLResponse)
def issue_documents(request: Request, staff: Staff, number: InsurerNumber) -> HTMLResponse:
    container = request.app.state.container
    insurer = _insurer(container, staff, number)
    counts = container.insurance.issue_documents(insurer.number)
    notice = translator(language(request))("insurance.insurer.issue.done").format(
        certificates=counts.get(CoverageDocumentKind.CONFIRMATION_CERTIFICATE, 0),
        notices=counts.get(CoverageDocumentKind.QUALIFICATION_NOTICE, 0))
    return _persons_page(request, staff, insurer, notice=notice)


@router.get(INSURER_PATH + "/{number}/{rest:path}")
def insurer_back(request: Request, number: InsurerNumber, rest: str) -> Response:
    """A form's address asked for by GET: back to the insurer's list (the enrol form and the
    review queue answer GET themselves)."""
    return RedirectResponse(f"{INSURER_PATH}/{number}", status_code=303)

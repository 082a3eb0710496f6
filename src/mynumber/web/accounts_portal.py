"""The resident's 公金受取口座 pages in the portal (``/portal/accounts``), and the one rule both
they and the JSON API (``web/accounts_api.py``) follow: a registration, change or deletion is
bound to a fresh card authentication of the person logged in.

The card binding (the 2023 shared terminal that kept the previous person's session): the form
carries a one-use challenge of the portal's login (``begin_login``); the card signs it with its
user-authentication key after the PIN (the embedded mode's virtual reader, ``PortalCardReader``,
or the CLI and a paste), and the portal's login verification checks chain, revocation,
signature and the challenge's single use (``verify_card``: no session is opened, the terminal's
session is untouched); the certificate's serial names the holder through JPKI. The result
is a :class:`CardAuthentication` (the holder's
resident id, the serial, the challenge id as the authentication id, now) that the accounts
service compares with the person the portal session was opened for: another person's card is
refused, a challenge is spent once (the portal's challenge and the service's
``used_authentications`` both refuse a replay).

It lives in the web assembler: it joins the portal's, JPKI's and the accounts context's
interfaces (as ``web/juki_portal.py`` does for 住基ネット).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.datastructures import FormData
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mynumber.accounts.interfaces import (
    PUBLIC_FUND_ACCOUNT_ITEM,
    BankAccount,
    CardAuthentication,
    CardAuthenticationRequired,
    HolderNameMismatch,
    PensionProposal,
    ProposalState,
    Registration,
    Route,
)
from mynumber.accounts.zengin import NotZenginError, to_display, to_zengin_kana
from mynumber.codes.exceptions import ValidationError
from mynumber.errors import DomainError, Forbidden
from mynumber.kernel import forms
from mynumber.kernel.errors import error_box
from mynumber.kernel.routes import FormDep, page_route
from mynumber.portal import views as portal_views
from mynumber.portal.interfaces import HistoryEntry, PortalSession
from mynumber.portal.reader import ReaderPinLocked, ReaderWrongPin
from mynumber.web import card_forms
from mynumber.web.card_forms import (
    NO_CARD,
    session_holder,
    signed_form,
    verified_holder,
)
from mynumber.web.card_forms import card_error as card_error  # the pages' card forms use it
from mynumber.web.i18n import translator
from mynumber.web.templating import language

PATH = "/portal/accounts"
DELETE_PATH = "/portal/accounts/delete"
OBJECTION_PATH = "/portal/accounts/pension-objection"
PREFIXES = ("accounts.", "portal.", "")
FORM_FIELDS = ("bank_code", "branch_code", "deposit_type", "account_number", "holder_name")
DONE = ("registered", "changed", "deleted", "objected")
#: The purpose of the card challenges of the resident's own 公金受取口座 and 預貯金口座付番
#: procedures (pages and API): such a challenge opens no portal session, and a login
#: challenge is refused here (portal ``verify_card``).
ACCOUNTS_PURPOSE = "accounts"


class ForSelfOnly(Forbidden):
    code = "accounts_for_self_only"
    title = "Only the person themselves can register a public-fund account"


# --- the card binding (pages and API) ----------------------------------------------------------


def session_resident(container: Any, session: PortalSession) -> int:
    """The person the portal session was opened for, named by JPKI from the card serial the
    session keeps sealed under its token. A proxy acting for someone cannot use this page."""
    return session_holder(
        container.portal, container.jpki, session,
        not_own=ForSelfOnly("a public-fund account is registered by the person themselves: "
                            "switch back to yourself"),
        no_card=CardAuthenticationRequired(NO_CARD))


def card_authentication(container: Any, challenge_id: str, signature: bytes,
                        certificate: str, *, purpose: str = ACCOUNTS_PURPOSE
                        ) -> CardAuthentication:
    """Verify a card's signature over the portal challenge ``challenge_id``, issued for
    ``purpose``, with the portal's login verification (the challenge is spent); the holder as
    JPKI names them."""
    serial, holder = verified_holder(container.portal, container.jpki, challenge_id, signature,
                                     certificate, purpose=purpose)
    return CardAuthentication(resident_id=holder, certificate_serial=str(serial),
                              authentication_id=challenge_id,
                              authenticated_at=container.accounts.clock())


def masked(number: str) -> str:
    """An account number as pages show it: the last four digits (***4567)."""
    return "***" + number[-4:]


def pending_proposal(container: Any, resident_id: int) -> PensionProposal | None:
    """日本年金機構's pending proposal for the person (年金受給者の特例), if any."""
    pending = [p for p in container.accounts.proposals(resident_id)
               if p.state is ProposalState.PENDING]
    return pending[-1] if pending else None


def account_lookups(container: Any, session: PortalSession) -> list[HistoryEntry]:
    """Agencies' look-ups of the person's 公金受取口座: the entries of the portal's やりとり
    履歴 (``PortalService.history``, the same records, the same rule for restricted ones:
    shown once their deferral has ended) whose item is ``public_fund_account``."""
    return [e for e in container.portal.history(session)
            if e.record.item_code == PUBLIC_FUND_ACCOUNT_ITEM]


# --- pages --------------------------------------------------------------------------------------


def _error(request: Request, exc: DomainError, code: str | None = None) -> dict[str, Any]:
    return error_box(request, exc, code, prefixes=PREFIXES)


def portal_error_page(prefixes: tuple[str, ...]) -> Callable[..., HTMLResponse]:
    """The portal's error page for a page route whose catalogue keys start with ``prefixes``
    (these pages and ``web/accounts_deposit.py``)."""
    def error_page(request: Request, exc: DomainError, status: int | None = None,
                   code: str | None = None) -> HTMLResponse:
        session: PortalSession | None = getattr(request.state, "portal_session", None)
        status_, error = status or exc.status, error_box(request, exc, code, prefixes=prefixes)
        try:
            return portal_views._page(request, "portal/error.html", status=status_,
                                      session=session, error=error)
        except DomainError:
            return portal_views._page(request, "portal/error.html", status=status_,
                                      error=error)
    return error_page


_error_page = portal_error_page(PREFIXES)


POLICY = dataclasses.replace(portal_views.PORTAL, error_page=_error_page)
router = APIRouter(include_in_schema=False, route_class=page_route("AccountsRoute", POLICY))


def _shown(container: Any, registration: Registration) -> dict[str, Any]:
    directory = container.accounts.directory
    today = container.accounts.today()
    bank = directory.bank(registration.bank_code, today)
    branch = directory.branch(registration.bank_code, registration.branch_code, today)
    return {"bank_code": registration.bank_code, "branch_code": registration.branch_code,
            "bank_name": bank.name if bank else "", "branch_name": branch.name if branch else "",
            "deposit_type": registration.deposit_type.value,
            "account_number": masked(registration.account_number),
            "holder_name": to_display(registration.holder_name),
            "route": registration.route.value, "updated_at": registration.updated_at,
            "name_check": registration.name_check.value,
            "name_check_reason": registration.name_check_reason or ""}


def _shown_proposal(container: Any, proposal: PensionProposal) -> dict[str, Any]:
    account = proposal.account
    directory, today = container.accounts.directory, container.accounts.today()
    bank = directory.bank(account.bank_code, today)
    branch = directory.branch(account.bank_code, account.branch_code, today)
    return {"bank_code": account.bank_code, "branch_code": account.branch_code,
            "bank_name": bank.name if bank else "", "branch_name": branch.name if branch else "",
            "deposit_type": str(account.deposit_type),
            "account_number": masked(account.account_number),
            "holder_name": to_display(account.holder_name), "deadline": proposal.deadline}


def card_context(request: Request, purpose: str = ACCOUNTS_PURPOSE) -> dict[str, Any]:
    """A fresh one-use challenge for ``purpose``, and the reader's cards in the embedded
    mode."""
    return card_forms.card_context(request, purpose)


def _account_page(request: Request, session: PortalSession, *, status: int = 200,
                  error: dict[str, Any] | None = None, values: dict[str, str] | None = None,
                  names: dict[str, str] | None = None, done: str = "") -> HTMLResponse:
    container = request.app.state.container
    registration = proposal = None
    lookups: list[HistoryEntry] | None = []
    own = session.acting_for == session.account_id
    if own:
        resident_id = session_resident(container, session)
        registration = container.accounts.registration(resident_id)
        proposal = pending_proposal(container, resident_id)
        try:
            lookups = account_lookups(container, session)
        except DomainError:  # the network cannot be reached now: the rest of the page can
            lookups = None
    return portal_views._page(
        request, "accounts/account.html", status=status, session=session, own=own,
        registration=_shown(container, registration) if registration else None,
        proposal=_shown_proposal(container, proposal) if proposal else None, lookups=lookups,
        error=error, values=values or {}, names=names, done=done if done in DONE else "",
        **(_card_context(request) if own else {}))


_card_context = card_context


def signed_card(request: Request, form: FormData,
                purpose: str = ACCOUNTS_PURPOSE) -> CardAuthentication:
    """The card authentication the form carries, over a challenge issued for ``purpose``: the
    virtual reader signs the challenge now (card and PIN), or the signature and certificate
    were pasted (the CLI way)."""
    challenge_id, signature, certificate = signed_form(request, form,
                                                       missing=CardAuthenticationRequired)
    return card_authentication(request.app.state.container, challenge_id, signature, certificate,
                               purpose=purpose)


_signed = signed_card


def _refusal_names(request: Request, resident_id: int, exc: DomainError,
                   holder: str) -> dict[str, str] | None:
    """Beside a holder-name refusal: the catalogue's sentence for the reason and both names."""
    lang = language(request)
    t = translator(lang)
    if isinstance(exc, HolderNameMismatch):
        check = request.app.state.container.accounts.holder_name_check(resident_id, holder)
        reason = str(exc.extra.get("reason", "different_person"))
        return {"reason": t(f"accounts.holder_name.{reason}"),
                "bank": to_display(check.bank_name) if check else "",
                "yours": to_display(check.name_kana) if check else ""}
    if exc.field == "holder_name" and holder:
        try:
            to_zengin_kana(holder)
        except NotZenginError as bad:
            chars = "".join(bad.characters)
            return {"reason": t("accounts.holder_name.not_zengin").replace(
                "{characters}", chars), "bank": "", "yours": ""}
        except ValidationError:
            return None
    return None


@router.get(PATH, response_class=HTMLResponse)
def account_page(request: Request, done: str = "") -> HTMLResponse:
    session = portal_views.current_session(request)
    return _account_page(request, session, done=done)


@router.post(PATH, response_class=HTMLResponse)
def register_or_change(request: Request, form: FormDep) -> Response:
    session = portal_views.current_session(request)
    container = request.app.state.container
    resident_id = session_resident(container, session)
    values = {name: forms.value(form, name, 100) for name in FORM_FIELDS}
    accounts = container.accounts
    try:
        authentication = _signed(request, form)
        account = BankAccount(values["bank_code"], values["branch_code"], values["deposit_type"],
                          values["account_number"], values["holder_name"])
        if accounts.registration(resident_id) is None:
            accounts.register(resident_id, account, Route.PORTAL, authentication=authentication)
            done = "registered"
        else:
            accounts.change(resident_id, account, Route.PORTAL, authentication=authentication)
            done = "changed"
    except (ReaderWrongPin, ReaderPinLocked, DomainError) as exc:
        error = card_error(request, exc, PREFIXES)
        names = _refusal_names(request, resident_id, exc, values["holder_name"])
        return _account_page(request, session, status=exc.status, error=error, values=values,
                             names=names)
    return RedirectResponse(f"{PATH}?done={done}", status_code=303)


@router.get(DELETE_PATH, response_class=HTMLResponse)
def delete_confirm(request: Request) -> Response:
    session = portal_views.current_session(request)
    container = request.app.state.container
    registration = container.accounts.registration(session_resident(container, session))
    if registration is None:
        return RedirectResponse(PATH, status_code=303)
    return portal_views._page(request, "accounts/delete.html", session=session,
                              registration=_shown(container, registration),
                              **_card_context(request))


@router.post(DELETE_PATH, response_class=HTMLResponse)
def delete(request: Request, form: FormDep) -> Response:
    session = portal_views.current_session(request)
    container = request.app.state.container
    resident_id = session_resident(container, session)
    registration = container.accounts.registration(resident_id)
    try:
        authentication = _signed(request, form)
        container.accounts.delete(resident_id, Route.PORTAL, authentication=authentication)
    except DomainError as exc:
        error = card_error(request, exc, PREFIXES)
        if registration is None:
            return _account_page(request, session, status=exc.status, error=error)
        return portal_views._page(request, "accounts/delete.html", status=exc.status,
                                  session=session, registration=_shown(container, registration),
                                  error=error, **_card_context(request))
    return RedirectResponse(f"{PATH}?done=deleted", status_code=303)


@router.post(OBJECTION_PATH, response_class=HTMLResponse)
def object_to_proposal(request: Request, form: FormDep) -> Response:
    """不同意: the pending pension proposal is never registered. The session is the person's
    own, opened with the card (``session_resident``); the form carries the CSRF token."""
    session = portal_views.current_session(request)
    container = request.app.state.container
    resident_id = session_resident(container, session)
    try:
        container.accounts.object_pension(resident_id, container.accounts.today())
    except DomainError as exc:
        return _account_page(request, session, status=exc.status, error=_error(request, exc))
    return RedirectResponse(f"{PATH}?done=objected", status_code=303)

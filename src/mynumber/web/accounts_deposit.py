"""The resident's 預貯金口座付番 pages (``/portal/accounts/deposit``) and JSON API
(``/api/v1/portal/me/deposit-numbering``): ask, once per bank and with a fresh card
authentication, that one's accounts at chosen banks be linked to one's 個人番号; ask
預金保険機構 after a declared disaster, free of charge, which banks hold one's numbered
accounts; and see every 預金保険機構 look-up concerning oneself (as the person concerned, or as
the heir who asked).

The person is the one the portal session was opened for with the card, and the consent is
bound to a card authentication made on the spot, as for a 公金受取口座 registration
(``web/accounts_portal.py``, whose helpers this module reuses). No page, answer or log shows a
個人番号: the number goes to the bank sealed for its key (accounts/deposit.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from mynumber.accounts.interfaces import (
    DeliveryState,
    DicLookup,
    LookupKind,
    LookupOutcome,
    NumberingRequest,
    Route,
)
from mynumber.errors import DomainError
from mynumber.kernel.errors import error_box
from mynumber.kernel.routes import FormDep, page_route
from mynumber.portal import views as portal_views
from mynumber.portal.api import Resident
from mynumber.portal.interfaces import PortalSession
from mynumber.portal.reader import ReaderPinLocked, ReaderWrongPin
from mynumber.web.accounts_api import CardAuthenticationIn
from mynumber.web.accounts_portal import (
    card_authentication,
    card_context,
    card_error,
    portal_error_page,
    session_resident,
    signed_card,
)

PATH = "/portal/accounts/deposit"
DISASTER_PATH = "/portal/accounts/deposit/disaster"
LOOKUPS_PATH = "/portal/accounts/deposit/lookups"
API = "/api/v1/portal/me/deposit-numbering"
PREFIXES = ("deposit.", "accounts.", "portal.", "")


# --- shared --------------------------------------------------------------------------------------


def _bank_name(container: Any, code: str) -> str:
    bank = container.accounts.directory.bank(code, container.accounts.today())
    return bank.name if bank else ""


def _error(request: Request, exc: DomainError) -> dict[str, Any]:
    return error_box(request, exc, prefixes=PREFIXES)


POLICY = dataclasses.replace(portal_views.PORTAL, error_page=portal_error_page(PREFIXES))
router = APIRouter(include_in_schema=False, route_class=page_route("DepositRoute", POLICY))


def _request_shown(container: Any, r: NumberingRequest) -> dict[str, Any]:
    return {"bank_code": r.bank_code, "bank_name": _bank_name(container, r.bank_code),
            "route": r.route.value, "requested_at": r.requested_at, "state": r.state.value}


def _lookup_shown(container: Any, lookup: DicLookup, me: int) -> dict[str, Any]:
    return {"id": lookup.id, "kind": lookup.kind.value, "outcome": lookup.outcome.value,
            "at": lookup.at, "fee_yen": lookup.fee_yen, "as_heir": lookup.requester_resident_id
            == me and lookup.subject_resident_id != me,
            "banks": [{"code": c, "name": _bank_name(container, c)} for c in lookup.bank_codes]}


# --- pages ---------------------------------------------------------------------------------------


def _numbering_page(request: Request, session: PortalSession, *, status: int = 200,
                    error: dict[str, Any] | None = None, chosen: list[str] | None = None,
                    done: str = "") -> HTMLResponse:
    container = request.app.state.container
    me = session_resident(container, session)
    requests = container.accounts_deposit.numbering_requests(me)
    asked = {r.bank_code for r in requests}
    banks = [{"code": b.code, "name": b.name}
             for b in container.accounts.directory.banks_on(container.accounts.today())
             if b.code not in asked]
    return portal_views._page(
        request, "accounts/deposit_numbering.html", status=status, session=session,
        requests=[_request_shown(container, r) for r in requests], banks=banks,
        chosen=chosen or [], error=error, done=done == "requested",
        **card_context(request))


@router.get(PATH, response_class=HTMLResponse)
def numbering_page(request: Request, done: str = "") -> HTMLResponse:
    session = portal_views.current_session(request)
    return _numbering_page(request, session, done=done)


@router.post(PATH, response_class=HTMLResponse)
def request_numbering(request: Request, form: FormDep) -> Response:
    session = portal_views.current_session(request)
    container = request.app.state.container
    me = session_resident(container, session)
    chosen = [str(v)[:8] for v in form.getlist("bank_codes")][:60]
    try:
        authentication = signed_card(request, form)
        container.accounts_deposit.request_numbering(me, chosen, Route.PORTAL,
                                                     authentication=authentication)
    except (ReaderWrongPin, ReaderPinLocked, DomainError) as exc:
        error = card_error(request, exc, PREFIXES)
        return _numbering_page(request, session, status=exc.status, error=error, chosen=chosen)
    return RedirectResponse(f"{PATH}?done=requested", status_code=303)


@router.get(DISASTER_PATH, response_class=HTMLResponse)
def disaster_page(request: Request) -> HTMLResponse:
    session = portal_views.current_session(request)
    session_resident(request.app.state.container, session)
    return portal_views._page(request, "accounts/deposit_disaster.html", session=session,
                              result=None, error=None)


@router.post(DISASTER_PATH, response_class=HTMLResponse)
def disaster_lookup(request: Request, form: FormDep) -> HTMLResponse:
    session = portal_views.current_session(request)
    container = request.app.state.container
    me = session_resident(container, session)
    try:
        lookup = container.accounts_deposit.disaster_lookup(me, actor=f"resident:{me}")
    except DomainError as exc:
        return portal_views._page(request, "accounts/deposit_disaster.html", status=exc.status,
                                  session=session, result=None, error=_error(request, exc))
    return portal_views._page(request, "accounts/deposit_disaster.html", session=session,
                              result=_lookup_shown(container, lookup, me), error=None)


@router.get(LOOKUPS_PATH, response_class=HTMLResponse)
def lookups_page(request: Request) -> HTMLResponse:
    session = portal_views.current_session(request)
    container = request.app.state.container
    me = session_resident(container, session)
    lookups = container.accounts_deposit.lookups_for(me)
    return portal_views._page(request, "accounts/deposit_lookups.html", session=session,
                              lookups=[_lookup_shown(container, x, me) for x in lookups])


# --- JSON API ------------------------------------------------------------------------------------

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
Responses = dict[int | str, dict[str, Any]]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


class NumberingIn(BaseModel):
    bank_codes: list[Annotated[str, Field(min_length=1, max_length=8,
                                          pattern=r"^[^\x00-\x1f\x7f]*$")]] = Field(
        min_length=1, max_length=50, description="金融機関コード (4 digits) of the chosen banks")
    card: CardAuthenticationIn


class NumberingRequestOut(BaseModel):
    bank_code: str
    bank_name: str
    route: Route
    requested_at: dt.datetime
    delivery: DeliveryState = Field(description="pending: not yet sealed for the bank; "
                                                "sealed: waiting for the bank; delivered")


class NumberingOut(BaseModel):
    requests: list[NumberingRequestOut]


class BankOut(BaseModel):
    bank_code: str
    bank_name: str


class LookupOut(BaseModel):
    id: int
    kind: LookupKind = Field(description="inheritance (相続時, you as the heir) or disaster "
                                         "(災害時, your own)")
    outcome: LookupOutcome
    as_heir: bool
    banks: list[BankOut]
    fee_yen: int
    at: dt.datetime


class LookupsOut(BaseModel):
    lookups: list[LookupOut]


api_router = APIRouter(prefix=API, tags=["accounts"])
R_AUTH: Responses = {
    401: _problem("`portal_session_expired`; `portal_login_failed` (`reason`); "
                  "`accounts_card_authentication_required`"),
    403: _problem("`accounts_for_self_only`; `accounts_card_authentication_other_person`; "
                  "`accounts_card_authentication_stale`")}


def _container(request: Request) -> Any:
    return request.app.state.container


Container = Annotated[Any, Depends(_container)]


def _numbering_out(container: Any, requests: list[NumberingRequest]) -> NumberingOut:
    return NumberingOut(requests=[NumberingRequestOut(
        bank_code=r.bank_code, bank_name=_bank_name(container, r.bank_code), route=r.route,
        requested_at=r.requested_at, delivery=r.state) for r in requests])


def _lookup_out(container: Any, lookup: DicLookup, me: int) -> LookupOut:
    shown = _lookup_shown(container, lookup, me)
    return LookupOut(id=lookup.id, kind=lookup.kind, outcome=lookup.outcome,
                     as_heir=shown["as_heir"],
                     banks=[BankOut(bank_code=b["code"], bank_name=b["name"])
                            for b in shown["banks"]], fee_yen=lookup.fee_yen, at=lookup.at)


@api_router.get("", operation_id="accounts_my_deposit_numbering", response_model=NumberingOut,
                responses=R_AUTH)
def my_numbering(session: Resident, container: Container) -> NumberingOut:
    """The banks at which you asked that your accounts be linked to your number."""
    me = session_resident(container, session)
    return _numbering_out(container, container.accounts_deposit.numbering_requests(me))


@api_router.post("", operation_id="accounts_request_deposit_numbering", status_code=201,
                 response_model=NumberingOut,
                 responses={**R_AUTH,
                            409: _problem("`accounts_deposit_numbering_already_requested` "
                                          "(`bank_codes`: asked before; once per bank); "
                                          "`accounts_card_authentication_used`"),
                            422: _problem("`accounts_unknown_bank` (`field` bank_codes)")})
def request_my_numbering(body: NumberingIn, session: Resident,
                         container: Container) -> NumberingOut:
    """Ask, once per bank and with a card authentication made just now, that your accounts at
    these banks be linked to your 個人番号 (預貯金口座付番). All banks or none. Answers the
    requests made now."""
    me = session_resident(container, session)
    authentication = card_authentication(container, body.card.challenge_id,
                                         body.card.signature, body.card.certificate)
    made = container.accounts_deposit.request_numbering(me, body.bank_codes, Route.PORTAL,
                                                        authentication=authentication)
    return _numbering_out(container, made)


@api_router.post("/disaster-lookup", operation_id="accounts_disaster_lookup",
                 response_model=LookupOut,
                 responses={**R_AUTH,
                            403: _problem("`accounts_no_disaster_declaration`: no declaration "
                                          "covers your municipality today; "
                                          "`accounts_for_self_only`")})
def my_disaster_lookup(session: Resident, container: Container) -> LookupOut:
    """After a disaster under 災害救助法: which banks hold your numbered accounts, free of
    charge (預金保険機構), for a resident of a municipality named by a declaration in force."""
    me = session_resident(container, session)
    lookup = container.accounts_deposit.disaster_lookup(me, actor=f"resident:{me}")
    return _lookup_out(container, lookup, me)


@api_router.get("/lookups", operation_id="accounts_my_dic_lookups", response_model=LookupsOut,
                responses=R_AUTH)
def my_lookups(session: Resident, container: Container) -> LookupsOut:
    """Every 預金保険機構 look-up concerning you (your own, or made by you as an heir), newest
    first."""
    me = session_resident(container, session)
    return LookupsOut(lookups=[_lookup_out(container, x, me)
                               for x in container.accounts_deposit.lookups_for(me)])

"""The resident's 公金受取口座 JSON API (``/api/v1/portal/me/accounts``), with the portal's
bearer session like the portal's other ``/me`` endpoints; errors are RFC 9457 problems.

A PUT (register, or change the one there is) and a DELETE carry a fresh card authentication:
a challenge from ``POST /api/v1/portal/me/accounts/challenge`` (issued for the ``accounts``
purpose only: a login challenge is refused, and this one opens no session) signed by the
logged-in person's card (user-authentication key, after the PIN), with the certificate.
It is verified by the portal's login verification and must be the session's own person
(``web/accounts_portal.py``: the shared-terminal rule). The account number is shown masked.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from mynumber.accounts.interfaces import (
    BankAccount,
    DepositType,
    NameCheck,
    PensionProposal,
    ProposalState,
    Registration,
    Route,
)
from mynumber.accounts.zengin import to_display
from mynumber.kernel.localtime import local_date, local_time
from mynumber.network.interfaces import Outcome
from mynumber.portal import schemas as ps
from mynumber.portal.api import Resident
from mynumber.web.accounts_portal import (
    ACCOUNTS_PURPOSE,
    account_lookups,
    card_authentication,
    masked,
    pending_proposal,
    session_resident,
)
from mynumber.web.i18n import translator

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Responses = dict[int | str, dict[str, Any]]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


class CardAuthenticationIn(BaseModel):
    """The card's signature over a portal challenge, made just now."""

    challenge_id: ps.Token = Field(description="from POST /api/v1/portal/me/accounts/challenge")
    signature: ps.B64Signature = Field(description="RSASSA-PKCS1-v1_5/SHA-256 over the "
                                                   "challenge, base64")
    certificate: str = Field(min_length=1, max_length=16384,
                             pattern=r"^[\x09\x0a\x0d\x20-\x7e]*$",
                             description="the card's user-authentication certificate (PEM)")


class AccountFields(BaseModel):
    """The account as submitted, on every route with a JSON body (the resident's, the bank's)."""

    bank_code: str = Field(min_length=1, max_length=8, pattern=PRINTABLE,
                           description="金融機関コード, 4 digits")
    branch_code: str = Field(min_length=1, max_length=8, pattern=PRINTABLE,
                             description="店番, 3 digits")
    account_number: str = Field(min_length=1, max_length=16, pattern=PRINTABLE,
                                description="口座番号, 7 digits")
    holder_name: str = Field(min_length=1, max_length=100, pattern=PRINTABLE,
                             description="口座名義 in kana, as the bank writes it")


class AccountIn(AccountFields):
    deposit_type: DepositType = Field(description="預金種目")
    card: CardAuthenticationIn


class DeleteIn(BaseModel):
    card: CardAuthenticationIn


class RegistrationOut(BaseModel):
    bank_code: str
    bank_name: str
    branch_code: str
    branch_name: str
    deposit_type: DepositType
    account_number_masked: str = Field(description="the last four digits, e.g. ***4567")
    holder_name: str = Field(description="in full-width katakana")
    route: Route
    name_check: NameCheck
    name_check_reason: str | None = Field(
        description="why the name needs re-checking (`accounts.holder_name.<reason>`)")
    registered_at: dt.datetime
    updated_at: dt.datetime


class MyAccountOut(BaseModel):
    registration: RegistrationOut | None


router = APIRouter(prefix="/api/v1/portal/me", tags=["accounts"])
R401: Responses = {401: _problem("`portal_session_expired`: log in (again); "
                      "`portal_login_failed`: the card authentication did not verify "
                      "(`reason`, e.g. `challenge_used`); "
                      "`accounts_card_authentication_required`")}
R403: Responses = {403: _problem("`accounts_card_authentication_other_person`: not the logged-in "
                      "person's card; `accounts_for_self_only`: the session acts as a proxy; "
                      "`accounts_card_authentication_stale`")}
R_WRITE: Responses = {**R401, **R403,
           409: _problem("`accounts_card_authentication_used`; `accounts_already_registered`"),
           422: _problem("`accounts_invalid_account` / `accounts_unknown_branch` (`field`); "
                         "`accounts_holder_name_mismatch` (`reason`: given_name_differs, "
                         "family_name_differs, order_differs, different_person)")}


def _container(request: Request) -> Any:
    return request.app.state.container


Container = Annotated[Any, Depends(_container)]


def registration_out(container: Any, registration: Registration) -> RegistrationOut:
    """A registration as the JSON APIs answer it: names from today's bank dataset, the number
    masked, the holder name in full-width katakana."""
    directory, today = container.accounts.directory, container.accounts.today()
    bank = directory.bank(registration.bank_code, today)
    branch = directory.branch(registration.bank_code, registration.branch_code, today)
    return RegistrationOut(
        bank_code=registration.bank_code, bank_name=bank.name if bank else "",
        branch_code=registration.branch_code, branch_name=branch.name if branch else "",
        deposit_type=registration.deposit_type,
        account_number_masked=masked(registration.account_number),
        holder_name=to_display(registration.holder_name), route=registration.route,
        name_check=registration.name_check, name_check_reason=registration.name_check_reason,
        registered_at=registration.registered_at, updated_at=registration.updated_at)


def _out(container: Any, registration: Registration | None) -> MyAccountOut:
    return MyAccountOut(registration=None if registration is None
                        else registration_out(container, registration))


@router.post("/accounts/challenge", operation_id="accounts_card_challenge",
             response_model=ps.ChallengeOut, responses={401: R401[401]})
def accounts_challenge(session: Resident, container: Container) -> ps.ChallengeOut:
    """A one-use challenge (32 random bytes, 5 minutes) for your card to sign, for your own
    公金受取口座 and 預貯金口座付番 procedures (PUT and DELETE `/accounts`, POST
    `/deposit-numbering`). It opens no session; a login challenge is not accepted there."""
    challenge = container.portal.begin_login(ACCOUNTS_PURPOSE)
    return ps.ChallengeOut(challenge_id=challenge.challenge_id, challenge=challenge.challenge,
                           expires_at=challenge.expires_at)


@router.get("/accounts", operation_id="accounts_my_account", response_model=MyAccountOut,
            responses={**R401, **R403})
def my_account(session: Resident, container: Container) -> MyAccountOut:
    """Your 公金受取口座 (null when none is registered)."""
    resident_id = session_resident(container, session)
    return _out(container, container.accounts.registration(resident_id))


@router.put("/accounts", operation_id="accounts_put_my_account", response_model=MyAccountOut,
            responses=R_WRITE)
def put_my_account(body: AccountIn, session: Resident, container: Container) -> MyAccountOut:
    """Register your 公金受取口座, or change the one registered, with a card authentication
    made just now by your own card. The holder name must be yours."""
    resident_id = session_resident(container, session)
    authentication = card_authentication(container, body.card.challenge_id,
                                         body.card.signature, body.card.certificate)
    account = BankAccount(body.bank_code, body.branch_code, body.deposit_type, body.account_number,
                      body.holder_name)
    accounts = container.accounts
    if accounts.registration(resident_id) is None:
        done = accounts.register(resident_id, account, Route.PORTAL,
                                 authentication=authentication)
    else:
        done = accounts.change(resident_id, account, Route.PORTAL,
                               authentication=authentication)
    return _out(container, done)


@router.delete("/accounts", operation_id="accounts_delete_my_account", status_code=204,
               responses={**R401, **R403,
                          404: _problem("`accounts_not_registered`"),
                          409: _problem("`accounts_card_authentication_used`")})
def delete_my_account(body: DeleteIn, session: Resident, container: Container) -> Response:
    """Delete your 公金受取口座 registration, with a card authentication made just now."""
    resident_id = session_resident(container, session)
    authentication = card_authentication(container, body.card.challenge_id,
                                         body.card.signature, body.card.certificate)
    container.accounts.delete(resident_id, Route.PORTAL, authentication=authentication)
    return Response(status_code=204)


# --- 年金受給者の特例: the pending proposal and the 不同意 ------------------------------------


class ProposalOut(BaseModel):
    """日本年金機構's proposal of the pension account (年金受給者の特例)."""

    state: ProposalState
    bank_code: str
    bank_name: str
    branch_code: str
    branch_name: str
    deposit_type: DepositType
    account_number_masked: str = Field(description="the last four digits, e.g. ***4567")
    holder_name: str = Field(description="in full-width katakana")
    proposed_on: dt.date
    deadline: dt.date = Field(description="the last day (Japan time) for a 不同意")
    deadline_ja: str = Field(description="the deadline in 和暦, e.g. 令和7年7月17日（2025年）")


class MyProposalOut(BaseModel):
    proposal: ProposalOut | None = Field(description="the pending proposal, or null")


def _proposal_out(container: Any, proposal: PensionProposal) -> ProposalOut:
    account = proposal.account
    directory, today = container.accounts.directory, container.accounts.today()
    bank = directory.bank(account.bank_code, today)
    branch = directory.branch(account.bank_code, account.branch_code, today)
    return ProposalOut(
        state=proposal.state, bank_code=account.bank_code, bank_name=bank.name if bank else "",
        branch_code=account.branch_code, branch_name=branch.name if branch else "",
        deposit_type=DepositType(account.deposit_type),
        account_number_masked=masked(account.account_number),
        holder_name=to_display(account.holder_name), proposed_on=proposal.proposed_on,
        deadline=proposal.deadline, deadline_ja=local_date(proposal.deadline, "ja", era=True))


@router.get("/accounts/pension-proposal", operation_id="accounts_my_pension_proposal",
            response_model=MyProposalOut, responses={**R401, **R403})
def my_pension_proposal(session: Resident, container: Container) -> MyProposalOut:
    """日本年金機構's pending proposal of your pension account (null when there is none).
    Without a 不同意 by the deadline it is registered."""
    resident_id = session_resident(container, session)
    proposal = pending_proposal(container, resident_id)
    return MyProposalOut(proposal=_proposal_out(container, proposal) if proposal else None)


@router.post("/accounts/pension-proposal/objection",
             operation_id="accounts_object_pension_proposal", response_model=ProposalOut,
             responses={**R401, **R403,
                        404: _problem("`accounts_pension_proposal_not_found`: no pending "
                                      "proposal"),
                        409: _problem("`accounts_pension_proposal_closed`: the deadline has "
                                      "passed")})
def object_pension_proposal(session: Resident, container: Container) -> ProposalOut:
    """不同意: the proposed pension account is never registered (up to and including the
    deadline, Japan time)."""
    resident_id = session_resident(container, session)
    accounts = container.accounts
    return _proposal_out(container, accounts.object_pension(resident_id, accounts.today()))


# --- who looked it up ------------------------------------------------------------------------


class LookupOut(BaseModel):
    """An agency's look-up of your 公金受取口座 through the network (a record of your やりとり
    履歴 for the item `public_fund_account`)."""

    serial: str
    occurred_at: dt.datetime
    occurred_at_ja: str = Field(description="in Japan time, e.g. 2025年6月2日 12:00")
    agency_id: str
    agency_name: str = Field(description="照会した機関")
    task_id: str
    task_title: str = Field(description="事務, in Japanese")
    outcome: Outcome
    outcome_ja: str = Field(description="the outcome in words (提供, 拒否, ...)")
    outcome_en: str
    restricted: bool = Field(description="a record whose disclosure was deferred (shown now "
                                         "that the deferral has ended)")
    verified: bool = Field(description="false: the record does not match the signed log; its "
                                       "fields are not confirmed and must not be shown as fact")


@router.get("/accounts/lookups", operation_id="accounts_my_lookups",
            response_model=list[LookupOut], responses={**R401, **R403})
def my_lookups(session: Resident, container: Container) -> list[LookupOut]:
    """Who looked your 公金受取口座 up: agencies' look-ups through the network, newest first
    (the same records as `GET /api/v1/portal/me/history`, restricted ones after their
    deferral)."""
    session_resident(container, session)
    ja, en = translator("ja"), translator("en")
    out = []
    for entry in account_lookups(container, session):
        r = entry.record
        key = f"portal.history.outcome.{r.outcome.value}"
        out.append(LookupOut(
            serial=r.serial, occurred_at=r.occurred_at,
            occurred_at_ja=local_time(r.occurred_at, "ja"), agency_id=r.requester_id,
            agency_name=r.requester_name, task_id=r.task_id, task_title=r.task_title,
            outcome=r.outcome, outcome_ja=ja(key), outcome_en=en(key),
            restricted=r.restricted, verified=r.verified))
    return out

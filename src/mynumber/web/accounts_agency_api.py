"""The agency routes of 公金受取口座 (``/api/v1/accounts/agencies``, infrastructure listener):

- ``POST /tax-return``: 国税庁 (``national_tax_agency``) registers, or changes, the account a
  taxpayer gave in the 確定申告 (route ``tax_return``);
- ``POST /pension-proposals``: 日本年金機構 (``japan_pension_service``) proposes a pension
  recipient's pension account (年金受給者の特例: registered without a 不同意 within 45 days);
- ``POST /pension-proposals/bounced``: 日本年金機構 reports that the first transfer into the
  proposed account bounced (it will not be registered).

**The agency.** Each request is signed with the agency's own Ed25519 key over
``signed_request_bytes(kind, fields)`` and checked with the rules of the agencies' back office
(``agencies.api.verify_agency_request``: ``requested_at`` at most 5 minutes from this server's
clock, any other date, year 1 or 9999 included, is ``stale_request``; then the signature; then
the nonce), against the agency's PUBLIC signing key registered in the network directory
(``NetworkService.agency(agency_id).signing_key``, put there by ``mynumber network
register-keys``). The core holds no agency's private key for these routes. An agency the
directory does not know is 404 ``unknown_agency``, one without a registered signing key 403
``accounts_agency_key_not_registered``, a suspended one 403 ``agency_suspended``. The nonce is
spent in the accounts database (``request_nonces``, issuer ``agency:<agency id>``;
accounts/nonces.py), so a replay is refused whichever thread or process receives it. Only the
named agency may use each route: another (authenticated) agency gets 403
``accounts_agency_route_not_permitted``.

**The pension proposal's date.** ``proposed_on`` (the date of the agency's letter, from which
the 45 days for a 不同意 run) must lie between the day the request is received and
:data:`PROPOSAL_LEAD_DAYS` days after it (Japan time); left out, it is the day received. A
date before the day received would shorten the recipient's window and is refused with 422
``accounts_invalid_proposal_date`` (``field`` ``proposed_on``), as is a later one.

**The person** is named by the 個人番号, which both agencies lawfully hold for these tasks
(番号法 別表第一; 公金受取口座登録法). It is used for this call only: resolved to the registry's
record through the registry's interface (``find_by_number`` as the system, audited there with
the purpose), never stored, logged or echoed (not in an answer, an error or a URL). The
agency's 機関別符号 was not chosen: the network translates a code only into another agency's
code for an exchange, and the accounts context is no agency of the network.

The holder-name check runs as on every route: a relative's account is refused with
``accounts_holder_name_mismatch`` (``reason``) and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from mynumber.accounts.agency_nonces import AgencyNonces
from mynumber.accounts.interfaces import (
    BankAccount,
    DepositType,
    PensionProposal,
    ProposalState,
    Registration,
    Route,
)
from mynumber.agencies import schemas as agency_schemas
from mynumber.agencies.api import verify_agency_request
from mynumber.errors import Forbidden, InvalidInput
from mynumber.network.interfaces import (
    AgencyStatus,
    AgencySuspended,
    NetworkService,
)
from mynumber.registry.interfaces import SYSTEM, ResidentRecord
from mynumber.web.accounts_portal import masked

PREFIX = "/api/v1/accounts/agencies"
TAX_AGENCY = "national_tax_agency"  # 国税庁 (network/data/agencies.csv)
PENSION_AGENCY = "japan_pension_service"  # 日本年金機構
#: The type tags (``mynumber.<kind>.v1``) of the signed requests.
TAX_RETURN_KIND = "accounts-tax-return"
PENSION_PROPOSAL_KIND = "accounts-pension-proposal"
PENSION_BOUNCED_KIND = "accounts-pension-bounced"
#: The latest ``proposed_on`` accepted: this many days after the day received (Japan time).
PROPOSAL_LEAD_DAYS = 30

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Responses = dict[int | str, dict[str, Any]]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


class AgencyRouteNotPermitted(Forbidden):
    code = "accounts_agency_route_not_permitted"
    title = "This agency may not use this route"


class AgencyKeyNotRegistered(Forbidden):
    code = "accounts_agency_key_not_registered"
    title = "No signing key is registered for this agency"


class InvalidProposalDate(InvalidInput):
    code = "accounts_invalid_proposal_date"
    title = "The proposal date is out of range"


# --- schemas ---------------------------------------------------------------------------------


class _PersonIn(agency_schemas.SignedIn):
    individual_number: str = Field(
        pattern=r"^[0-9]{12}$",
        description="個人番号 (12 digits) of the person: used for this request only, never "
                    "kept, logged or answered")


class _AccountFields(_PersonIn):
    bank_code: str = Field(min_length=1, max_length=8, pattern=PRINTABLE,
                           description="金融機関コード, 4 digits")
    branch_code: str = Field(min_length=1, max_length=8, pattern=PRINTABLE,
                             description="店番, 3 digits")
    deposit_type: DepositType = Field(description="預金種目: ordinary (普通), current (当座), "
                                                  "savings (貯蓄)")
    account_number: str = Field(min_length=1, max_length=16, pattern=PRINTABLE,
                                description="口座番号, 7 digits")
    holder_name: str = Field(min_length=1, max_length=100, pattern=PRINTABLE,
                             description="口座名義 in kana, as the bank writes it")

    def account(self) -> BankAccount:
        return BankAccount(self.bank_code, self.branch_code, self.deposit_type,
                       self.account_number, self.holder_name)


class TaxReturnIn(_AccountFields):
    """確定申告: the 公金受取口座 the taxpayer gave in the return. Signed by 国税庁 (type
    ``mynumber.accounts-tax-return.v1``). Registers the account, or changes the one
    registered (whatever route registered it)."""


class PensionProposalIn(_AccountFields):
    """年金受給者の特例: the recipient's pension account, proposed (type
    ``mynumber.accounts-pension-proposal.v1``)."""

    proposed_on: dt.date | None = Field(
        default=None, description="the date of the agency's letter to the recipient (the 45 "
                                  "days for a 不同意 run from it): from the day received to "
                                  f"{PROPOSAL_LEAD_DAYS} days after it, Japan time; default: "
                                  "the day received")
    former_name: bool = Field(default=False, description="the account is under the "
                                                         "recipient's 旧氏")
    first_transfer_bounced: bool = Field(default=False)

    def signed_fields(self) -> dict[str, object]:
        # The fields as sent (an optional field left out is not signed), ``proposed_on`` in
        # its ISO form (the canonical JSON has no date type).
        fields = self.model_dump(exclude={"signature"}, exclude_unset=True)
        if self.proposed_on is not None:
            fields["proposed_on"] = self.proposed_on.isoformat()
        return fields


class PensionBouncedIn(_PersonIn):
    """The first transfer into the proposed account bounced (type
    ``mynumber.accounts-pension-bounced.v1``)."""


class AgencyRegistrationOut(BaseModel):
    action: str = Field(description="`registered` or `changed`")
    bank_code: str
    branch_code: str
    deposit_type: DepositType
    account_number_masked: str = Field(description="the last four digits, e.g. ***4567")
    route: Route
    updated_at: dt.datetime


class AgencyProposalOut(BaseModel):
    state: ProposalState
    bank_code: str
    branch_code: str
    deposit_type: DepositType
    account_number_masked: str
    proposed_on: dt.date
    deadline: dt.date = Field(description="the last day of the 45 days for a 不同意")
    first_transfer_bounced: bool


# --- the agency and the person ---------------------------------------------------------------


def _container(request: Request) -> Any:
    return request.app.state.container


Container = Annotated[Any, Depends(_container)]


def _registered_key(network: NetworkService) -> Callable[[str], bytes]:
    """The agency's public signing key as the network directory has it (raw Ed25519)."""
    def key(agency_id: str) -> bytes:
        record = network.agency(agency_id)  # UnknownAgency (404) for an unknown id
        if record.status is not AgencyStatus.ACTIVE:
            raise AgencySuspended("the agency is suspended in the network directory",
                                  field="agency_id")
        if record.signing_key is None:
            raise AgencyKeyNotRegistered(
                "no signing key is registered for the agency in the network directory",
                field="agency_id")
        return record.signing_key
    return key


def _agency(request: Request, body: agency_schemas.SignedIn, kind: str, allowed: str) -> str:
    """The agency's id once the request is proven to be its own (its key in the network
    directory) and new (the nonce is spent in the accounts database), and the route is the
    agency's."""
    container = request.app.state.container
    nonces = AgencyNonces(container.accounts.databases)
    verify_agency_request(body, kind, _registered_key(container.network),
                          lambda agency, nonce: nonces.claim(agency, nonce, kind))
    if body.agency_id != allowed:
        raise AgencyRouteNotPermitted(
            f"this route is {allowed}'s only", field="agency_id")
    return body.agency_id


def _proposal_date(body: PensionProposalIn, today: dt.date) -> dt.date:
    """``proposed_on``, checked: not before the day received (that would shorten the
    recipient's 45 days for a 不同意) and at most :data:`PROPOSAL_LEAD_DAYS` after it."""
    if body.proposed_on is None:
        return today
    latest = today + dt.timedelta(days=PROPOSAL_LEAD_DAYS)
    if not today <= body.proposed_on <= latest:
        raise InvalidProposalDate(
            f"proposed_on: must be from {today.isoformat()} (the day received, Japan time) "
            f"to {latest.isoformat()}; an earlier date would shorten the recipient's 45 days "
            "for a 不同意", field="proposed_on")
    return body.proposed_on


def _person(container: Any, body: _PersonIn, purpose: str) -> ResidentRecord:
    """The registry's record of the person the number names (the registry audits the read
    with ``purpose``). The number goes no further than this call."""
    record: ResidentRecord = container.registry.find_by_number(
        SYSTEM, body.individual_number, purpose)
    return record


def _registration_out(action: str, registration: Registration) -> AgencyRegistrationOut:
    return AgencyRegistrationOut(
        action=action, bank_code=registration.bank_code, branch_code=registration.branch_code,
        deposit_type=registration.deposit_type,
        account_number_masked=masked(registration.account_number), route=registration.route,
        updated_at=registration.updated_at)


def _proposal_out(proposal: PensionProposal, bounced: bool | None = None
                  ) -> AgencyProposalOut:
    account = proposal.account
    return AgencyProposalOut(
        state=proposal.state, bank_code=account.bank_code, branch_code=account.branch_code,
        deposit_type=DepositType(account.deposit_type),
        account_number_masked=masked(account.account_number), proposed_on=proposal.proposed_on,
        deadline=proposal.deadline,
        first_transfer_bounced=bool(bounced))


# --- routes ----------------------------------------------------------------------------------

router = APIRouter(prefix=PREFIX, tags=["accounts"])

SIGNED: Responses = {
    403: _problem("`bad_signature` (not signed with the agency's key registered in the "
                  "network directory), `stale_request` (requested_at more than 5 minutes "
                  "off), `accounts_agency_key_not_registered` (the directory has no signing "
                  "key for the agency), `agency_suspended`, "
                  "`accounts_agency_route_not_permitted` (another agency's route)"),
    404: _problem("`unknown_agency`: the network directory has no such agency; "
                  "`resident_not_found`: no resident has this individual number; "
                  "`accounts_registrant_unavailable`: the person is not living"),
    409: _problem("`replayed_request`: the nonce was already used"),
    422: _problem("Invalid input; `field` names it, never the individual number's value; "
                  "`invalid_resident_data` (`field` `individual_number`: not a valid "
                  "individual number)"),
}
ACCOUNT_422 = _problem(
    "`accounts_invalid_account` / `accounts_unknown_branch` (`field`); "
    "`accounts_holder_name_mismatch` (`reason`: given_name_differs, family_name_differs, "
    "order_differs, different_person, not_comparable): the account is not in the person's "
    "own name (a relative's account) and nothing was stored; `invalid_resident_data`")


@router.post("/tax-return", operation_id="accounts_agency_tax_return",
             response_model=AgencyRegistrationOut,
             responses={**SIGNED, 422: ACCOUNT_422,
                        409: _problem("`replayed_request`; `accounts_already_registered` (a "
                                      "parallel registration won: send a new request)")})
def tax_return(body: TaxReturnIn, request: Request,
               container: Container) -> AgencyRegistrationOut:
    """確定申告: register the taxpayer's 公金受取口座, or change the one registered. 国税庁
    only. The holder name must be the taxpayer's own."""
    agency = _agency(request, body, TAX_RETURN_KIND, TAX_AGENCY)
    person = _person(container, body, "公金受取口座の登録・変更（確定申告）")
    accounts = container.accounts
    actor = f"agency:{agency}"
    if accounts.registration(person.id) is None:
        done = accounts.register(person.id, body.account(), Route.TAX_RETURN, actor=actor)
        return _registration_out("registered", done)
    done = accounts.change(person.id, body.account(), Route.TAX_RETURN, actor=actor)
    return _registration_out("changed", done)


@router.post("/pension-proposals", operation_id="accounts_agency_propose_pension",
             response_model=AgencyProposalOut, status_code=201,
             responses={**SIGNED,
                        409: _problem("`replayed_request`; `accounts_already_registered` (the "
                                      "recipient has an account or a pending proposal)"),
                        422: _problem(ACCOUNT_422["description"] + "; "
                                      "`accounts_invalid_proposal_date` (`field` "
                                      "`proposed_on`): before the day received or more than "
                                      f"{PROPOSAL_LEAD_DAYS} days after it (Japan time)")})
def propose_pension(body: PensionProposalIn, request: Request,
                    container: Container) -> AgencyProposalOut:
    """年金受給者の特例: propose the recipient's pension account. 日本年金機構 only. Without
    a 不同意 by the deadline (45 days) it is registered by the daily finalisation, which
    checks the holder name then."""
    agency = _agency(request, body, PENSION_PROPOSAL_KIND, PENSION_AGENCY)
    accounts = container.accounts
    proposed_on = _proposal_date(body, accounts.today())
    person = _person(container, body, "公金受取口座の登録（年金受給者の特例）")
    proposal = accounts.propose_pension(
        person.id, body.account(), proposed_on,
        actor=f"agency:{agency}", former_name=body.former_name,
        first_transfer_bounced=body.first_transfer_bounced)
    return _proposal_out(proposal, body.first_transfer_bounced)


@router.post("/pension-proposals/bounced", operation_id="accounts_agency_pension_bounced",
             response_model=AgencyProposalOut,
             responses={**SIGNED,
                        404: _problem("`resident_not_found`; "
                                      "`accounts_pension_proposal_not_found`: no pending "
                                      "proposal for the person")})
def pension_bounced(body: PensionBouncedIn, request: Request,
                    container: Container) -> AgencyProposalOut:
    """The first transfer into the proposed pension account bounced: the proposal will not
    be registered. 日本年金機構 only."""
    _agency(request, body, PENSION_BOUNCED_KIND, PENSION_AGENCY)
    person = _person(container, body, "公金受取口座（年金受給者の特例）の振込不能")
    return _proposal_out(container.accounts.mark_bounced(person.id), True)

"""The resident's 公金受取口座 JSON API (``/api/v1/portal/me/accounts``), with the portal's
bearer session like the portal's other ``/me`` endpoints; errors are RFC 9457 problems.

A PUT (register, or change the one there is) and a DELETE carry a fresh card authentication:
a challenge from ``POST /api/v1/portal/login/challenge`` signed by the logged-in person's
card (user-authentication key, after the PIN), with the certificate. It is verified by the
portal's login verification and must be the session's own person
(``web/accounts_portal.py``: the shared-terminal rule). The account number is shown masked.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from mynumber.accounts.interfaces import Account, DepositType, NameCheck, Registration, Route
from mynumber.accounts.zengin import to_display
from mynumber.portal import schemas as ps
from mynumber.portal.api import Resident
from mynumber.web.accounts_portal import card_authentication, masked, session_resident

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Responses = dict[int | str, dict[str, Any]]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


class CardAuthenticationIn(BaseModel):
    """The card's signature over a portal challenge, made just now."""

    challenge_id: ps.Token = Field(description="from POST /api/v1/portal/login/challenge")
    signature: ps.B64Signature = Field(description="RSASSA-PKCS1-v1_5/SHA-256 over the "
                                                   "challenge, base64")
    certificate: str = Field(min_length=1, max_length=16384,
                             pattern=r"^[\x09\x0a\x0d\x20-\x7e]*$",
                             description="the card's user-authentication certificate (PEM)")


class AccountIn(BaseModel):
    bank_code: str = Field(min_length=1, max_length=8, pattern=PRINTABLE,
                           description="金融機関コード, 4 digits")
    branch_code: str = Field(min_length=1, max_length=8, pattern=PRINTABLE,
                             description="店番, 3 digits")
    deposit_type: DepositType = Field(description="預金種目")
    account_number: str = Field(min_length=1, max_length=16, pattern=PRINTABLE,
                                description="口座番号, 7 digits")
    holder_name: str = Field(min_length=1, max_length=100, pattern=PRINTABLE,
                             description="口座名義 in kana, as the bank writes it")
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


def _out(container: Any, registration: Registration | None) -> MyAccountOut:
    if registration is None:
        return MyAccountOut(registration=None)
    directory, today = container.accounts.directory, container.accounts.today()
    bank = directory.bank(registration.bank_code, today)
    branch = directory.branch(registration.bank_code, registration.branch_code, today)
    return MyAccountOut(registration=RegistrationOut(
        bank_code=registration.bank_code, bank_name=bank.name if bank else "",
        branch_code=registration.branch_code, branch_name=branch.name if branch else "",
        deposit_type=registration.deposit_type,
        account_number_masked=masked(registration.account_number),
        holder_name=to_display(registration.holder_name), route=registration.route,
        name_check=registration.name_check, name_check_reason=registration.name_check_reason,
        registered_at=registration.registered_at, updated_at=registration.updated_at))


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
    account = Account(body.bank_code, body.branch_code, body.deposit_type, body.account_number,
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

"""The bank route's JSON API (``/api/v1/bank``): a bank's counter or app, authenticated as a
bank client, registers, changes or deletes a resident's 公金受取口座 with the resident's card.

Every request is signed by the client's Ed25519 key over
``network.interfaces.signed_request_bytes(kind, fields)``: the canonical JSON (sorted keys, no
spaces, UTF-8) of every body field but ``signature`` (nested ``card`` included, as sent),
``requested_at`` written as UTC ISO (``2025-06-02T03:00:00+00:00``), plus ``"type":
"mynumber.<kind>.v1"``. The request must be at most 5 minutes off and its nonce is accepted
once per client, in the database (``request_nonces``, issuer ``bank:<client id>``;
accounts/nonces.py).

The resident at the counter signs a one-use card challenge (``POST /challenges``: a portal
challenge issued for the purpose ``bank:<client id>``, see :func:`bank_purpose`) with the
card's user-authentication key after the PIN; the portal's login verification checks it
(``verify_card`` with that purpose: the challenge is spent) and JPKI names the holder from
the certificate serial. The challenge is accepted by this client's requests only: the
portal's login refuses it (no portal session can be opened with the customer's signature),
and another client's, or the portal's own, challenge is refused here. **The person is
whoever the card names**: there is no resident field. The account must be at the client's
own 金融機関コード; the holder-name check runs in the service (a relative's account is
refused). The account number is never answered in full.

預貯金口座付番 at the bank (``/deposit-numbering``): the resident at the counter asks, with a
fresh card authentication, that their accounts at THIS bank (the client's own 金融機関コード;
there is no bank field) be linked to their 個人番号; the deposit service's rules apply (route
``bank``, once per person and bank in the database). The bank then collects its deliveries:
the number sealed for its X25519 key (HPKE, signed by デジタル庁; accounts/deposit.py), only
its own bank code's, never in clear, and acknowledges them, after which the sealed bytes are
dropped.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mynumber.accounts.interfaces import (
    BankAccount,
    BankClient,
    DeliveryState,
    NumberingRequest,
    Route,
    deposit_info,
)
from mynumber.errors import InvalidInput
from mynumber.web.accounts_api import (
    PRINTABLE,
    AccountFields,
    RegistrationOut,
    registration_out,
)
from mynumber.web.accounts_portal import card_authentication


def bank_purpose(client_id: str) -> str:
    """The purpose of a card challenge issued to a bank client (API and /bank pages)."""
    return f"bank:{client_id}"

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
NONCE = r"^[A-Za-z0-9_-]{16,64}$"
Responses = dict[int | str, dict[str, Any]]

CHALLENGE_KIND = "bank-card-challenge"
REGISTER_KIND = "bank-account-register"
CHANGE_KIND = "bank-account-change"
DELETE_KIND = "bank-account-delete"
NUMBERING_KIND = "bank-deposit-numbering"
DELIVERIES_KIND = "bank-deposit-deliveries"
ACKNOWLEDGE_KIND = "bank-deposit-acknowledge"
#: At most this many deliveries in one answer or one acknowledgement.
DELIVERIES_MAX = 1000


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


def _b64(value: str, field: str, size: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{field}: not base64", field=field) from None
    if size is not None and len(raw) != size:
        raise InvalidInput(f"{field}: {size} bytes, base64", field=field)
    return raw


class _Signed(BaseModel):
    """A bank client's signed request (see the module docstring for the bytes signed)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(pattern=r"^bc_[0-9a-f]{16}$", description="the bank client")
    requested_at: AwareDatetime = Field(
        description="RFC 3339 with an offset; refused when more than 5 minutes off")
    nonce: str = Field(pattern=NONCE, description="random, used once (16-64 of A-Za-z0-9_-)")
    signature: str = Field(min_length=88, max_length=88,
                           description="the client's Ed25519 signature, base64 (64 bytes)")

    def signed_fields(self) -> dict[str, Any]:
        return self.model_dump(exclude={"signature"})


class CardIn(BaseModel):
    """The resident's card signature over a challenge from ``POST /api/v1/bank/challenges``."""

    model_config = ConfigDict(extra="forbid")

    challenge_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    signature: str = Field(min_length=1, max_length=1400,
                           description="RSASSA-PKCS1-v1_5/SHA-256 over the challenge, base64")
    certificate: str = Field(min_length=1, max_length=16384,
                             pattern=r"^[\x09\x0a\x0d\x20-\x7e]*$",
                             description="the card's user-authentication certificate (PEM)")


class ChallengeIn(_Signed):
    pass


class ChallengeOut(BaseModel):
    challenge_id: str
    challenge: str = Field(description="32 random bytes, base64: the card signs them")
    expires_at: dt.datetime


class AccountIn(AccountFields, _Signed):
    """The account (``bank_code``: the client's own) and the resident's card."""

    deposit_type: str = Field(min_length=1, max_length=16, pattern=PRINTABLE,
                              description="預金種目: ordinary, current or savings")
    card: CardIn


class DeleteIn(_Signed):
    card: CardIn


class DoneOut(BaseModel):
    action: str = Field(description="registered, changed or deleted")
    registration: RegistrationOut | None


router = APIRouter(prefix="/api/v1/bank", tags=["accounts-bank"])

R_SIGNED: Responses = {
    403: _problem("`accounts_bank_bad_signature` (unknown client or the signature does not "
                  "verify), `accounts_bank_request_stale` (requested_at more than 5 minutes "
                  "off), `accounts_bank_client_suspended`"),
    409: _problem("`accounts_bank_request_replayed`: the nonce was already used"),
}
R_WRITE: Responses = {
    401: _problem("`portal_login_failed`: the card authentication did not verify (`reason`, "
                  "e.g. `challenge_used`)"),
    403: _problem("`accounts_bank_bad_signature`, `accounts_bank_request_stale`, "
                  "`accounts_bank_client_suspended`; `accounts_bank_code_not_own` (an account "
                  "at another bank's code); `accounts_card_authentication_stale`"),
    409: _problem("`accounts_bank_request_replayed`; `accounts_card_authentication_used`; "
                  "`accounts_already_registered` (POST) "),
    404: _problem("`accounts_not_registered` (PUT, DELETE); `accounts_registrant_unavailable`"),
    422: _problem("`accounts_invalid_account` / `accounts_unknown_branch` (`field`); "
                  "`accounts_holder_name_mismatch` (`reason`)"),
}


def _container(request: Request) -> Any:
    return request.app.state.container


Container = Annotated[Any, Depends(_container)]


def authenticated(container: Any, body: _Signed, kind: str) -> BankClient:
    """The bank client that signed ``body``: signature, status, freshness, nonce once."""
    client: BankClient = container.bank_clients.authenticate(
        body.client_id, kind, body.signed_fields(), _b64(body.signature, "signature", 64))
    return client


def _card(container: Any, client: BankClient, card: CardIn) -> Any:
    return card_authentication(container, card.challenge_id,
                               _b64(card.signature, "card.signature"), card.certificate,
                               purpose=bank_purpose(client.client_id))


@router.post("/challenges", operation_id="bank_card_challenge", response_model=ChallengeOut,
             responses=R_SIGNED)
def card_challenge(body: ChallengeIn, container: Container) -> ChallengeOut:
    """A one-use challenge (32 bytes, 5 minutes) for the resident's card to sign at the
    counter. Signed by the client (type `mynumber.bank-card-challenge.v1`)."""
    client = authenticated(container, body, CHALLENGE_KIND)
    challenge = container.portal.begin_login(bank_purpose(client.client_id))
    return ChallengeOut(challenge_id=challenge.challenge_id,
                        challenge=base64.b64encode(challenge.challenge).decode(),
                        expires_at=challenge.expires_at)


def _write(container: Any, body: AccountIn, kind: str, action: str) -> DoneOut:
    client = authenticated(container, body, kind)
    container.bank_clients.check_own_bank(client, body.bank_code)
    authentication = _card(container, client, body.card)
    account = BankAccount(body.bank_code, body.branch_code, body.deposit_type, body.account_number,
                      body.holder_name)
    write = container.accounts.register if action == "registered" else container.accounts.change
    done = write(authentication.resident_id, account, Route.BANK,
                 authentication=authentication, actor=client.actor)
    return DoneOut(action=action, registration=registration_out(container, done))


@router.post("/accounts", operation_id="bank_register_account", response_model=DoneOut,
             status_code=201, responses=R_WRITE)
def register_account(body: AccountIn, container: Container) -> DoneOut:
    """Register the 公金受取口座 of the person whose card signed the challenge, at this bank
    (type `mynumber.bank-account-register.v1`). The holder name must be theirs."""
    return _write(container, body, REGISTER_KIND, "registered")


@router.put("/accounts", operation_id="bank_change_account", response_model=DoneOut,
            responses=R_WRITE)
def change_account(body: AccountIn, container: Container) -> DoneOut:
    """Change the person's registration to an account at this bank (type
    `mynumber.bank-account-change.v1`)."""
    return _write(container, body, CHANGE_KIND, "changed")


def delete_at_own_bank(container: Any, client: BankClient, authentication: Any) -> None:
    """Delete the registration of the person the card names, when it is at the client's own
    bank code: the service checks the code in the deleting transaction (a registration moved
    to another bank meanwhile is not deleted: BankCodeNotOwn)."""
    container.accounts.delete(authentication.resident_id, Route.BANK,
                              authentication=authentication, actor=client.actor,
                              expected_bank_code=client.bank_code)


@router.delete("/accounts", operation_id="bank_delete_account", status_code=204,
               responses=R_WRITE)
def delete_account(body: DeleteIn, container: Container) -> Response:
    """Delete the person's registration, when it is an account at this bank (type
    `mynumber.bank-account-delete.v1`)."""
    client = authenticated(container, body, DELETE_KIND)
    authentication = _card(container, client, body.card)
    delete_at_own_bank(container, client, authentication)
    return Response(status_code=204)


# --- 預貯金口座付番 at this bank ----------------------------------------------------------------


class NumberingIn(_Signed):
    card: CardIn


class NumberingOut(BaseModel):
    bank_code: str = Field(description="金融機関コード: this bank's")
    bank_name: str
    route: Route
    requested_at: dt.datetime
    delivery: DeliveryState = Field(description="pending: not yet sealed for the bank (it has "
                                                "no key yet, or sealing waits for the core); "
                                                "sealed: ready to collect; delivered")


class DeliveriesIn(_Signed):
    limit: int = Field(default=100, ge=1, le=DELIVERIES_MAX,
                       description="at most this many deliveries, oldest first (default 100)")

    def signed_fields(self) -> dict[str, Any]:
        # Only what the client sent is signed: a default it left out is not in its bytes.
        return self.model_dump(exclude={"signature"}, exclude_unset=True)


class DeliveryOut(BaseModel):
    request_id: int = Field(description="the 付番 request; acknowledge it by this id")
    bank_code: str
    sealed: str = Field(description="base64 of the HPKE envelope (DHKEM(X25519, HKDF-SHA256), "
                                    "HKDF-SHA256, AES-256-GCM) for the bank's X25519 key: "
                                    "enc || ciphertext; the plaintext is デジタル庁's Ed25519 "
                                    "signature (64 bytes) over info || body, then the body "
                                    "(canonical JSON: request_id, bank_code, "
                                    "individual_number, name, name_kana, birth_date, "
                                    "requested_at)")
    info: str = Field(description="the HPKE info and signature prefix: "
                                  "mynumber-deposit-numbering/v1/<bank code>/<request id>")
    sealed_at: dt.datetime


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]


class AcknowledgeIn(_Signed):
    request_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(
        min_length=1, max_length=DELIVERIES_MAX,
        description="the deliveries the bank has stored (its own, sealed ones)")


class AcknowledgeOut(BaseModel):
    acknowledged: int = Field(description="how many were marked delivered now (another "
                                          "bank's, unknown or already acknowledged ids are "
                                          "not counted)")


R_NUMBERING: Responses = {
    401: _problem("`portal_login_failed`: the card authentication did not verify (`reason`, "
                  "e.g. `challenge_used`)"),
    403: _problem("`accounts_bank_bad_signature`, `accounts_bank_request_stale`, "
                  "`accounts_bank_client_suspended`; `accounts_card_authentication_stale`"),
    404: _problem("`accounts_registrant_unavailable`: the card's holder is no current "
                  "resident"),
    409: _problem("`accounts_bank_request_replayed`; `accounts_card_authentication_used`; "
                  "`accounts_deposit_numbering_already_requested` (`field` bank_codes, "
                  "`bank_codes`): the person already asked at this bank (once per bank)"),
    422: _problem("`accounts_unknown_bank`: the client's bank code is not in the bank "
                  "dataset today"),
}


def _numbering_out(container: Any, request: NumberingRequest) -> NumberingOut:
    bank = container.accounts.directory.bank(request.bank_code, container.accounts.today())
    return NumberingOut(bank_code=request.bank_code, bank_name=bank.name if bank else "",
                        route=request.route, requested_at=request.requested_at,
                        delivery=request.state)


def request_numbering(container: Any, client: BankClient, authentication: Any) -> NumberingRequest:
    """預貯金口座付番 at the client's own bank for the person the card names (route bank)."""
    [made] = container.accounts_deposit.request_numbering(
        authentication.resident_id, [client.bank_code], Route.BANK,
        authentication=authentication, actor=client.actor)
    return made  # type: ignore[no-any-return]


@router.post("/deposit-numbering", operation_id="bank_request_deposit_numbering",
             response_model=NumberingOut, status_code=201, responses=R_NUMBERING)
def deposit_numbering(body: NumberingIn, container: Container) -> NumberingOut:
    """預貯金口座付番 at this bank: the person whose card signed the challenge asks that their
    accounts at this bank be linked to their 個人番号 (type
    `mynumber.bank-deposit-numbering.v1`). Once per person and bank. The number reaches the
    bank sealed, through `POST /deposit-numbering/deliveries`."""
    client = authenticated(container, body, NUMBERING_KIND)
    authentication = _card(container, client, body.card)
    return _numbering_out(container, request_numbering(container, client, authentication))


@router.post("/deposit-numbering/deliveries", operation_id="bank_deposit_deliveries",
             response_model=DeliveriesOut, responses=R_SIGNED)
def deposit_deliveries(body: DeliveriesIn, container: Container) -> DeliveriesOut:
    """The 個人番号 deliveries waiting for this bank (its own bank code's only), oldest first,
    each sealed for the bank's X25519 key (type `mynumber.bank-deposit-deliveries.v1`). They
    stay until acknowledged."""
    client = authenticated(container, body, DELIVERIES_KIND)
    found = container.accounts_deposit.deliveries(client.bank_code, body.limit,
                                                  recipient=client.client_id)
    return DeliveriesOut(deliveries=[DeliveryOut(
        request_id=d.request_id, bank_code=d.bank_code,
        sealed=base64.b64encode(d.sealed).decode(),
        info=deposit_info(d.bank_code, d.request_id).decode(), sealed_at=d.sealed_at)
        for d in found])


@router.post("/deposit-numbering/deliveries/acknowledge",
             operation_id="bank_acknowledge_deposit_deliveries", response_model=AcknowledgeOut,
             responses=R_SIGNED)
def acknowledge_deliveries(body: AcknowledgeIn, container: Container) -> AcknowledgeOut:
    """The bank has stored these deliveries: they are marked delivered and their sealed bytes
    are deleted (type `mynumber.bank-deposit-acknowledge.v1`). Only this bank's own."""
    client = authenticated(container, body, ACKNOWLEDGE_KIND)
    done = container.accounts_deposit.acknowledge(client.bank_code, body.request_ids,
                                                  recipient=client.client_id)
    return AcknowledgeOut(acknowledged=int(done))

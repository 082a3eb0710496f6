"""The resident's オンライン資格確認 JSON API (``/api/v1/portal/me/insurance``), with the portal's
bearer session like the portal's other ``/me`` endpoints; errors are RFC 9457 problems.

- ``GET /insurance``: whether the card is in use as the health-insurance card, the
  qualification it points to now (after a job change: the new insurer), and the documents
  (資格確認書, 資格情報のお知らせ);
- ``GET /insurance/access-records``: every check, consent, view and refusal by a medical
  institution, newest first (やりとり履歴);
- ``POST /insurance/challenge`` then ``POST /insurance/activation``: 初回登録 (利用登録) with
  a fresh card authentication for the purpose ``insurance`` only, as the 公金受取口座 API does
  for ``accounts``: the challenge is signed by the logged-in person's card (user-
  authentication key, after the PIN), verified by the portal (``verify_card``: chain,
  revocation, signature, the challenge spent once; it opens no session), JPKI names the
  holder, who must be the session's own person (``web/insurance_links.py``).

The session's own person only (a proxy switches back first). No 個人番号 anywhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from mynumber.insurance.interfaces import (
    AccessAction,
    AccessEntry,
    CardStatus,
    ConfirmationMethod,
    ConsentItem,
    Validity,
)
from mynumber.kernel.localtime import local_time
from mynumber.portal import schemas as ps
from mynumber.portal.api import Resident
from mynumber.web.insurance_api import (
    CoverageOut,
    DocumentOut,
    StrictIn,
    coverage_out,
    document_out,
)
from mynumber.web.insurance_links import INSURANCE_PURPOSE, activate_with_card, session_resident

PREFIX = "/api/v1/portal/me/insurance"
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
Responses = dict[int | str, dict[str, Any]]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


def _container(request: Request) -> Any:
    return request.app.state.container


Container = Annotated[Any, Depends(_container)]


class CardStatusOut(BaseModel):
    """Your card as the health-insurance card."""

    activated: bool = Field(description="初回登録 done: the card can be used at medical "
                                        "institutions")
    activated_at: dt.datetime | None
    current: CoverageOut | None = Field(description="the qualification the card points to "
                                                    "now (null: none)")
    documents: list[DocumentOut] = Field(description="資格確認書 / 資格情報のお知らせ")


def card_status_out(status: CardStatus) -> CardStatusOut:
    return CardStatusOut(
        activated=status.activated, activated_at=status.activated_at,
        current=None if status.current is None else coverage_out(status.current),
        documents=[document_out(d) for d in status.documents])


class AccessEntryOut(BaseModel):
    """One access by a medical institution (やりとり履歴)."""

    id: int
    at: dt.datetime
    at_ja: str = Field(description="in Japan time, e.g. 2025年6月2日 12:00")
    institution_code: str = Field(description="医療機関コード")
    institution_name: str
    action: AccessAction = Field(description="eligibility (資格確認), consent_given, "
                                             "consent_refused, view, view_refused, activation")
    item: ConsentItem | None = Field(description="drugs (薬剤情報), checkups (特定健診情報), "
                                                 "treatments (診療・手術情報)")
    method: ConfirmationMethod | None
    validity: Validity | None


def _entry_out(entry: AccessEntry) -> AccessEntryOut:
    return AccessEntryOut(
        id=entry.id, at=entry.at, at_ja=local_time(entry.at, "ja"),
        institution_code=entry.institution_code, institution_name=entry.institution_name,
        action=entry.action, item=entry.item, method=entry.method, validity=entry.validity)


class ActivationIn(StrictIn):
    """The card's signature over a challenge from ``POST /api/v1/portal/me/insurance/challenge``,
    made just now."""

    MULTILINE = frozenset({"certificate"})

    challenge_id: ps.Token = Field(description="from POST /api/v1/portal/me/insurance/challenge")
    signature: ps.B64Signature = Field(description="RSASSA-PKCS1-v1_5/SHA-256 over the "
                                                   "challenge, base64")
    certificate: str = Field(min_length=1, max_length=16384,
                             pattern=r"^[\x09\x0a\x0d\x20-\x7e]*$",
                             description="the card's user-authentication certificate (PEM)")


router = APIRouter(prefix=PREFIX, tags=["insurance"])
R401: Responses = {401: _problem("`portal_session_expired`: log in (again); "
                                 "`insurance_card_authentication_required`: the session was "
                                 "not opened with a card")}
R403: Responses = {403: _problem("`insurance_for_self_only`: the session acts as a proxy")}


@router.get("", operation_id="insurance_my_card", response_model=CardStatusOut,
            responses={**R401, **R403})
def my_card(session: Resident, container: Container) -> CardStatusOut:
    """Your card as the health-insurance card: activated or not, the insurer and
    qualification it points to now, your documents."""
    resident_id = session_resident(container, session)
    return card_status_out(container.eligibility.card_status(resident_id))


@router.get("/access-records", operation_id="insurance_my_access_records",
            response_model=list[AccessEntryOut], responses={**R401, **R403})
def my_access_records(session: Resident, container: Container,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200
                      ) -> list[AccessEntryOut]:
    """Every eligibility check, consent, view and refused view by a medical institution,
    newest first."""
    resident_id = session_resident(container, session)
    return [_entry_out(e) for e in container.eligibility.access_entries(resident_id,
                                                                        limit=limit)]


@router.post("/challenge", operation_id="insurance_card_challenge",
             response_model=ps.ChallengeOut, responses={**R401, **R403})
def insurance_challenge(session: Resident, container: Container) -> ps.ChallengeOut:
    """A one-use challenge (32 random bytes, 5 minutes) for your card to sign for 初回登録.
    It opens no session; a login challenge is not accepted for 初回登録."""
    session_resident(container, session)
    challenge = container.portal.begin_login(INSURANCE_PURPOSE)
    return ps.ChallengeOut(challenge_id=challenge.challenge_id, challenge=challenge.challenge,
                           expires_at=challenge.expires_at)


@router.post("/activation", operation_id="insurance_activate", response_model=CardStatusOut,
             responses={401: _problem(R401[401]["description"] + "; `portal_login_failed`: "
                                      "the card authentication did not verify (`reason`, "
                                      "e.g. `challenge_used`, `revoked`)"),
                        403: _problem("`insurance_for_self_only`; "
                                      "`insurance_card_other_person`: not the logged-in "
                                      "person's card"),
                        409: _problem("`insurance_already_activated`")})
def activate(body: ActivationIn, session: Resident, container: Container) -> CardStatusOut:
    """初回登録: use your card as your health-insurance card, with a card authentication made
    just now by your own card. Once."""
    status = activate_with_card(container, session, body.challenge_id, body.signature,
                                body.certificate)
    return card_status_out(status)

"""住基ネット's JSON API.

- ``/api/v1/juki/...`` (infrastructure listener): permitted agencies ask for 本人確認情報, (a) by
  住民票コード or (b) by the four basic items. Every call is signed with the agency's
  registered Ed25519 key over ``signed_request_bytes(kind, body)`` (the network API's
  convention: type ``mynumber.juki-identity-by-code.v1`` / ``mynumber.juki-identity-search.v1``),
  is at most 5 minutes from the server's clock and carries a nonce accepted once. A request
  refused before the agency is authenticated (unknown agency, bad signature, stale) is not
  recorded against anyone; from then on every query is recorded (answered, not found,
  ambiguous, refused) and its problem carries the ``query_id``.
- ``/api/v1/portal/me/juki-disclosures`` (public, with the portal's bearer session): the
  resident's 本人確認情報の提供状況.
"""

from __future__ import annotations

from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mynumber.db import utcnow
from mynumber.juki import schemas as s
from mynumber.juki.interfaces import (
    DisclosureEntry,
    Identity,
    InvalidJukiInput,
    PortalPersonResolver,
    QueryOutcome,
    QueryResult,
    SearchItems,
    StaleRequest,
)
from mynumber.juki.services import JukiServiceImpl, raise_for
from mynumber.network.interfaces import BadSignature, signed_request_bytes
from mynumber.portal.interfaces import SessionExpired

MAX_CLOCK_SKEW_SECONDS = 300
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "agency or use not permitted, bad signature", "content": PROBLEM},
    404: {"description": "unknown agency, or no person matches", "content": PROBLEM},
    409: {"description": "more than one person matches (nobody provided), or a replayed "
                         "nonce", "content": PROBLEM},
    422: {"description": "fewer than four items, or malformed", "content": PROBLEM},
}

bearer = HTTPBearer(auto_error=False,
                    description="portal session token from POST /api/v1/portal/login")


def get_juki(request: Request) -> JukiServiceImpl:
    juki: JukiServiceImpl = request.app.state.container.juki
    return juki


JukiDep = Annotated[JukiServiceImpl, Depends(get_juki)]

router = APIRouter(prefix="/api/v1/juki", tags=["juki"])
portal_router = APIRouter(prefix="/api/v1/portal/me", tags=["juki"])


def _authenticate(juki: JukiServiceImpl, kind: str, body: Any) -> None:
    agency = juki.agency(body.agency_id)  # UnknownAgency (404) for an unknown id
    if body.requested_at.tzinfo is None:
        raise InvalidJukiInput("requested_at: needs a timezone", field="requested_at")
    if abs((utcnow() - body.requested_at).total_seconds()) > MAX_CLOCK_SKEW_SECONDS:
        raise StaleRequest("requested_at: more than 5 minutes from the server's clock",
                           field="requested_at")
    try:
        if agency.signing_key is None:
            raise InvalidSignature
        ed25519.Ed25519PublicKey.from_public_bytes(agency.signing_key).verify(
            # What the agency sent is what it signed (fields it left out take no part).
            body.signature, signed_request_bytes(kind, body.model_dump(exclude_unset=True)))
    except (InvalidSignature, ValueError):
        raise BadSignature("the request's signature does not verify with the agency's "
                           "registered key", field="signature") from None


def identity_out(identity: Identity) -> s.IdentityOut:
    return s.IdentityOut(
        resident_code=identity.resident_code, name=identity.name, name_kana=identity.name_kana,
        birth_date=identity.birth_date, sex=identity.sex, address=identity.address,
        municipality_code=identity.municipality_code, status=identity.status,
        latest_change=s.LatestChange(kind=identity.change_kind, date=identity.changed_on))


def _out(result: QueryResult) -> s.QueryOut:
    raise_for(result)
    assert result.identity is not None
    return s.QueryOut(query_id=result.query_id, outcome=result.outcome.value,
                      identity=identity_out(result.identity))


@router.post("/identities/by-code", operation_id="juki_identity_by_code",
             response_model=s.QueryOut, responses=RESPONSES)
def identity_by_code(body: s.ByCodeIn, juki: JukiDep) -> s.QueryOut:
    """(a) 住民票コードによる本人確認情報の照会 (signed by the agency)."""
    _authenticate(juki, s.BY_CODE_KIND, body)
    return _out(juki.by_code(body.agency_id, body.use_id, body.resident_code,
                             nonce=body.nonce))


@router.post("/identities/search", operation_id="juki_identity_search",
             response_model=s.QueryOut, responses=RESPONSES)
def identity_search(body: s.SearchIn, juki: JukiDep) -> s.QueryOut:
    """(b) 基本4情報による検索 (signed by the agency): all four items, normalised; more than one
    match provides nobody (409 ``juki_ambiguous_match``)."""
    _authenticate(juki, s.SEARCH_KIND, body)
    items = SearchItems(name=body.name, name_kana=body.name_kana, birth_date=body.birth_date,
                        sex=body.sex, address=body.address)
    return _out(juki.search(body.agency_id, body.use_id, items, nonce=body.nonce))


@router.get("/permitted-uses", operation_id="juki_permitted_uses",
            response_model=list[s.PermittedUseOut])
def permitted_uses(juki: JukiDep) -> list[s.PermittedUseOut]:
    """The permitted-use table (住基法 第30条の9以下・別表) as the service enforces it."""
    return [s.PermittedUseOut(use_id=u.use_id, agency_kind=u.agency_kind, purpose=u.purpose,
                              basis=u.basis) for u in juki.permitted_uses()]


def disclosure_out(entries: list[DisclosureEntry]) -> list[s.DisclosureOut]:
    return [s.DisclosureOut(at=e.at, agency_id=e.agency_id, agency_name=e.agency_name,
                            purpose=e.purpose, kind=e.kind.value, outcome=e.outcome.value,
                            provided=e.outcome is QueryOutcome.ANSWERED) for e in entries]


def resolver(request: Request) -> PortalPersonResolver:
    found: PortalPersonResolver = request.app.state.container.juki.portal_person
    return found


@portal_router.get("/juki-disclosures", operation_id="juki_my_disclosures",
                   response_model=list[s.DisclosureOut],
                   responses={401: {"description": "no live portal session",
                                    "content": PROBLEM},
                              403: {"description": "the session acts for someone else or "
                                                   "was not opened with a card",
                                    "content": PROBLEM}})
def my_disclosures(
    juki: JukiDep, request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> list[s.DisclosureOut]:
    """本人確認情報の提供状況の開示: who asked 住基ネット for your 本人確認情報, when, for which
    事務, and whether it was provided (newest first)."""
    if credentials is None or not credentials.credentials:
        raise SessionExpired("log in with your card first")
    resident_id = resolver(request).resident_id(credentials.credentials)
    return disclosure_out(juki.disclosure(resident_id))

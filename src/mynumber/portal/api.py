"""The portal's JSON API (``/api/v1/portal``): card login, sessions, わたしの情報, やりとり履歴 with
verification, お知らせ, applications, proxies.

Who may call what:

* residents: ``Authorization: Bearer <session token>`` from ``POST /login`` (the card signs a
  challenge from ``POST /login/challenge``). The session follows the portal's rules (idle and
  absolute timeouts; a new login ends the old session). No cookie is read here: the HTML pages
  use the cookie with a CSRF token, the API the bearer header only.
* agencies: ``POST /notices`` is signed with the agency's registered Ed25519 key over the
  canonical JSON of the request (the network API's convention, type
  ``mynumber.portal-notice.v1``).
* staff: proxies are registered and revoked with a staff bearer token (``/api/v1/registry/
  staff/login``) by a clerk, supervisor or administrator of the principal's municipality (the
  registry's jurisdiction rule; the registry records the read with its reason).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import APIRouter, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mynumber.db import utcnow
from mynumber.kernel.schemas import MAX_ID
from mynumber.kernel.signin import CurrentStaff
from mynumber.network.interfaces import BadSignature, signed_request_bytes
from mynumber.portal import schemas as s
from mynumber.portal.interfaces import (
    NOTICE_CLOCK_SKEW,
    PortalError,
    PortalSession,
    SessionExpired,
)
from mynumber.portal.services import PortalServiceImpl
from mynumber.registry.interfaces import RegistryService

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

bearer = HTTPBearer(auto_error=False,
                    description="portal session token from POST /api/v1/portal/login")


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


def get_portal(request: Request) -> PortalServiceImpl:
    portal: PortalServiceImpl = request.app.state.container.portal
    return portal


def get_registry(request: Request) -> RegistryService:
    registry: RegistryService = request.app.state.container.registry
    return registry


PortalDep = Annotated[PortalServiceImpl, Depends(get_portal)]
RegistryDep = Annotated[RegistryService, Depends(get_registry)]


def current_session(
    portal: PortalDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> PortalSession:
    if credentials is None or not credentials.credentials:
        raise SessionExpired("log in with your card first")
    return portal.session(credentials.credentials)


Resident = Annotated[PortalSession, Depends(current_session)]
Serial = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="処理通番")]
NoticeId = Annotated[int, Path(ge=1, le=MAX_ID)]
ProxyId = Annotated[int, Path(ge=1, le=MAX_ID)]
Scope = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]

Responses = dict[int | str, dict[str, Any]]
R401: Responses = {401: _problem("`portal_session_expired`: log in (again)")}
R403_PROXY: Responses = {
    403: _problem("`portal_not_a_proxy`: not a registered proxy of this person")}

router = APIRouter(prefix="/api/v1/portal", tags=["portal"])


def _session_out(session: PortalSession) -> s.SessionOut:
    return s.SessionOut(**dataclasses.asdict(session))


def _info(session: PortalSession) -> s.SessionInfo:
    fields = dataclasses.asdict(session)
    return s.SessionInfo(**{k: v for k, v in fields.items() if k in s.SessionInfo.model_fields})


# --- login ---------------------------------------------------------------------------------------


@router.post("/login/challenge", operation_id="portal_login_challenge",
             response_model=s.ChallengeOut)
def login_challenge(portal: PortalDep) -> s.ChallengeOut:
    """A one-use challenge (32 random bytes, 5 minutes) for the card to sign."""
    challenge = portal.begin_login()
    return s.ChallengeOut(challenge_id=challenge.challenge_id, challenge=challenge.challenge,
                          expires_at=challenge.expires_at)


@router.post("/login", operation_id="portal_login", response_model=s.SessionOut,
             responses={401: _problem("`portal_login_failed`; `reason` names the check that "
                                      "failed (e.g. `revoked`, `bad_signature`, "
                                      "`challenge_used`)")})
def login(body: s.LoginIn, portal: PortalDep) -> s.SessionOut:
    """Verify the signed challenge (certificate chain, revocation, signature) and start a new
    session. ``previous_token`` (the session the terminal still holds) is ended first."""
    return _session_out(portal.complete_login(body.challenge_id, body.signature,
                                              body.certificate, body.previous_token))


@router.post("/logout", operation_id="portal_logout", status_code=204, responses=R401)
def logout(session: Resident, portal: PortalDep) -> None:
    """End the session (an unknown or already ended session is a 401)."""
    portal.logout(session.token)


@router.get("/me", operation_id="portal_me", response_model=s.MeOut, responses=R401)
def me(session: Resident, portal: PortalDep) -> s.MeOut:
    account = s.AccountOut(**dataclasses.asdict(portal.account(session.account_id)))
    acting = account if session.acting_for == session.account_id else s.AccountOut(
        **dataclasses.asdict(portal.account(session.acting_for)))
    return s.MeOut(account=account, acting_for=acting, session=_info(session))


@router.post("/me/act-for", operation_id="portal_act_for", response_model=s.SessionInfo,
             responses={**R401, **R403_PROXY})
def act_for(body: s.ActForIn, portal: PortalDep,
            session: Resident) -> s.SessionInfo:
    """Act for a principal you are a registered proxy of (null: back to yourself)."""
    return _info(portal.act_for(session.token, body.principal_account_id))


@router.get("/me/principals", operation_id="portal_principals",
            response_model=list[s.ProxyOut], responses=R401)
def principals(session: Resident, portal: PortalDep) -> list[s.ProxyOut]:
    return [s.ProxyOut(**dataclasses.asdict(p)) for p in portal.principals(session)]


# --- わたしの情報 and やりとり履歴 ----------------------------------------------------------------


@router.get("/sources", operation_id="portal_sources", response_model=list[s.SourceOut])
def sources(portal: PortalDep) -> list[s.SourceOut]:
    """The information items the portal can fetch, and from which agency."""
    return [s.SourceOut(**dataclasses.asdict(x)) for x in portal.sources()]


@router.get("/me/information/{scope}", operation_id="portal_my_information",
            response_model=s.InformationOut,
            responses={**R401, **R403_PROXY,
                       422: _problem("`unknown_scope` or invalid input")})
def my_information(scope: Scope, session: Resident, portal: PortalDep) -> s.InformationOut:
    """わたしの情報: fetched now through the network (the exchange is in your history)."""
    return s.InformationOut(**dataclasses.asdict(portal.my_information(session, scope)))


@router.get("/me/history", operation_id="portal_history",
            response_model=list[s.HistoryEntryOut], responses={**R401, **R403_PROXY})
def history(session: Resident, portal: PortalDep) -> list[s.HistoryEntryOut]:
    """やりとり履歴: every exchange about you (restricted ones after their deferral)."""
    return [s.HistoryEntryOut(record=e.record,
                              released_to=list(e.released_to), by_proxy=e.by_proxy,
                              **_verification(e.record.verified))
            for e in portal.history(session)]


def _verification(verified: bool) -> dict[str, str | None]:
    """検証できません, in both languages from the message catalogue (the pages' wording), for
    a record the signed log does not vouch for."""
    if verified:
        return {"verification_ja": None, "verification_en": None}
    from mynumber.portal.views import unverifiable_text

    return {"verification_ja": unverifiable_text("ja"),
            "verification_en": unverifiable_text("en")}


@router.post("/me/history/{serial}/verify", operation_id="portal_verify_record",
             response_model=s.VerificationOut,
             responses={**R401, **R403_PROXY,
                        404: _problem("`access_record_not_found`: not in your history")})
def verify_record(serial: Serial, session: Resident, portal: PortalDep) -> s.VerificationOut:
    """Check the record's inclusion proof against the latest signed tree head (the portal
    recomputes it; ``verified`` false names the reason)."""
    result = portal.verify_record(session, serial)
    fields = dataclasses.asdict(result)
    fields["proof"] = list(result.proof)
    return s.VerificationOut(**fields)


@router.get("/me/activities", operation_id="portal_activities",
            response_model=list[s.ActivityOut], responses={**R401, **R403_PROXY})
def activities(session: Resident, portal: PortalDep) -> list[s.ActivityOut]:
    """What was done in the portal for you (a proxy's actions say so)."""
    return [s.ActivityOut(**dataclasses.asdict(a)) for a in portal.activities(session)]


# --- お知らせ and applications ------------------------------------------------------------------


@router.get("/me/notices", operation_id="portal_notices", response_model=list[s.NoticeOut],
            responses={**R401, **R403_PROXY})
def notices(session: Resident, portal: PortalDep) -> list[s.NoticeOut]:
    return [s.NoticeOut(**dataclasses.asdict(n)) for n in portal.notices(session)]


@router.post("/me/notices/{notice_id}/read", operation_id="portal_read_notice",
             response_model=s.NoticeOut,
             responses={**R401, **R403_PROXY, 404: _problem("`notice_not_found`")})
def read_notice(notice_id: NoticeId, session: Resident, portal: PortalDep) -> s.NoticeOut:
    return s.NoticeOut(**dataclasses.asdict(portal.read_notice(session, notice_id)))


@router.get("/me/applications", operation_id="portal_applications",
            response_model=list[s.ApplicationOut], responses={**R401, **R403_PROXY})
def applications(session: Resident, portal: PortalDep) -> list[s.ApplicationOut]:
    return [s.ApplicationOut(**dataclasses.asdict(a)) for a in portal.applications(session)]


@router.post("/notices", operation_id="portal_send_notice", response_model=s.NoticeAccepted,
             responses={403: _problem("`bad_signature` (not signed by the agency's registered "
                                      "key) or `not_permitted` (unknown code, suspended)"),
                        404: _problem("`unknown_agency`"),
                        409: _problem("`notice_replayed`: a request with this nonce was "
                                      "already received")})
def send_notice(body: s.NoticeIn, portal: PortalDep) -> s.NoticeAccepted:
    """お知らせ from an agency, to a person it names by its own 機関別符号; the core routes
    it to the portal's code. The agency learns nothing about the person's portal account.
    Each signed request is accepted once: its ``nonce`` again is `notice_replayed`."""
    if body.requested_at.tzinfo is None:
        raise PortalError("requested_at: needs a timezone", field="requested_at")
    if abs(utcnow() - body.requested_at) > NOTICE_CLOCK_SKEW:
        raise PortalError("requested_at: more than 5 minutes from the portal's clock",
                          field="requested_at")
    agency = portal.network.agency(body.agency_id)
    try:
        if agency.signing_key is None:
            raise InvalidSignature
        ed25519.Ed25519PublicKey.from_public_bytes(agency.signing_key).verify(
            body.signature, signed_request_bytes("portal-notice", body.model_dump()))
    except (InvalidSignature, ValueError):
        raise BadSignature("the request's signature does not verify with the agency's "
                           "registered key", field="signature") from None
    notice = portal.send_notice(body.agency_id, body.agency_code, body.kind, body.title,
                                body.body, nonce=body.nonce)
    return s.NoticeAccepted(notice_id=notice.notice_id, accepted_at=notice.created_at)


# --- proxies (staff at the counter) ---------------------------------------------------------------


@router.post("/proxies", operation_id="portal_register_proxy", response_model=s.ProxyOut,
             status_code=201,
             responses={403: _problem("outside the staff member's municipality"),
                        404: _problem("no such (current) resident"),
                        409: _problem("`proxy_already_registered`")})
def register_proxy(body: s.ProxyIn, staff: CurrentStaff, portal: PortalDep,
                   registry: RegistryDep) -> s.ProxyOut:
    """代理人登録: staff of the principal's municipality who verified both people register
    the proxy (the principal may hold no card: a child, an adult ward)."""
    principal = registry.get_resident(staff, body.principal_resident_id, "代理人登録")
    record = portal.register_proxy(staff.actor, body.principal_resident_id,
                                   body.proxy_resident_id, body.kind, body.valid_until,
                                   principal_name=principal.name)
    return s.ProxyOut(**dataclasses.asdict(record))


@router.post("/proxies/{proxy_id}/revoke", operation_id="portal_revoke_proxy",
             response_model=s.ProxyOut,
             responses={403: _problem("outside the staff member's municipality"),
                        404: _problem("`proxy_not_found`")})
def revoke_proxy(proxy_id: ProxyId, staff: CurrentStaff, portal: PortalDep) -> s.ProxyOut:
    """End a proxy registration at once (sessions acting under it fall back)."""
    portal.check_staff_jurisdiction(staff, proxy_id)
    return s.ProxyOut(**dataclasses.asdict(portal.revoke_proxy(staff.actor, proxy_id)))

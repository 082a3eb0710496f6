"""The intermediate server's HTTP face, on the infrastructure (mutual-TLS) listener.

- ``POST /agencies/v1/routed-queries``: the core POSTs each routed query here and gets the
  sealed answer back. The core's Ed25519 signature on the query is what authorises it; the TLS
  client certificate only keeps strangers off the port.
- ``POST /agencies/v1/persons`` and ``POST /agencies/v1/copies``: the agency's own back office
  enrols a person (宛名番号 + 個人番号 -> 機関別符号) and registers a 副本. Each request is
  signed with the agency's own Ed25519 signing key (the key this server holds for the agency)
  over ``signed_request_bytes`` (as the network API's signed calls are), is at most 5 minutes
  old and carries a nonce never seen before by this process.

Every client error is an RFC 9457 problem document; none repeats a 個人番号.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Annotated, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import APIRouter, Depends, Request

from mynumber.agencies import schemas as s
from mynumber.agencies.interfaces import (
    AgenciesService,
    AgencyNotServed,
    IntermediateServerUnavailable,
    InvalidAgencyInput,
    PersonNotEnrolled,
)
from mynumber.errors import Forbidden
from mynumber.network.interfaces import (
    BadSignature,
    IntermediateServer,
    RequestReplayed,
    signed_request_bytes,
)

#: A back-office request older (or further in the future) than this is refused.
MAX_REQUEST_AGE = dt.timedelta(minutes=5)

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


def get_server(request: Request) -> IntermediateServer:
    container = getattr(request.app.state, "container", None)
    server: IntermediateServer | None = getattr(container, "agencies_server", None)
    if server is None:
        raise IntermediateServerUnavailable("no intermediate server is configured here")
    return server


ServerDep = Annotated[IntermediateServer, Depends(get_server)]

router = APIRouter(prefix="/agencies/v1", tags=["agencies"])
# The agencies' back office (enrolment, 副本): served where the agencies service runs, i.e. by
# the core's infrastructure listener in a split deployment (it needs the registry for the
# 取得番号 and the network for the code), and by the embedded all-in-one process.
back_office = APIRouter(prefix="/agencies/v1", tags=["agencies"])


# --- the agency's back office ----------------------------------------------------------------


class StaleRequest(Forbidden):
    code = "stale_request"
    title = "Request too old or from the future"


class BackOfficeUnavailable(IntermediateServerUnavailable):
    code = "back_office_unavailable"
    title = "Enrolment and copies are not served here"


class _Keyring(Protocol):
    def keys(self, agency_id: str) -> Any: ...


class _Nonces:
    """The (agency, nonce) pairs accepted in the last ``2 * MAX_REQUEST_AGE``: a replay within
    the accepted age is refused. Held in this process (one intermediate-server process serves
    the back office; see docs/deployment.md)."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self._seen: dict[tuple[str, str], dt.datetime] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def claim(self, agency_id: str, nonce: str) -> bool:
        now = self._clock()
        with self._lock:
            if len(self._seen) > 10_000:
                horizon = now - 2 * MAX_REQUEST_AGE
                self._seen = {k: t for k, t in self._seen.items() if t > horizon}
            if (agency_id, nonce) in self._seen:
                return False
            self._seen[(agency_id, nonce)] = now
            return True


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


NONCES = _Nonces(_now)


def _part(container: object, name: str) -> Any:
    """A part of the process's container, or None when its role does not build it."""
    has = getattr(container, "has", None)
    if callable(has) and not has(name):
        return None
    return getattr(container, name, None)


def _keyring(container: object) -> _Keyring | None:
    keyring = getattr(container, "keyring", None)
    if keyring is None:
        service = _part(container, "agencies")
        keyring = getattr(service, "keyring", None)
    return keyring


def _authenticate(request: Request, body: s._SignedIn, kind: str) -> AgenciesService:
    """The agencies service, once ``body`` is proven to come from the agency: served here,
    signed with its key, fresh, and not seen before. Nothing is read from or written to a
    database before that."""
    return authenticate_agency_request(request, body, kind, NONCES.claim)


def authenticate_agency_request(request: Request, body: s._SignedIn, kind: str,
                                claim_nonce: Callable[[str, str], bool]) -> AgenciesService:
    """:func:`_authenticate` with the nonce store given by the caller: ``claim_nonce(agency,
    nonce)`` is True the first time only. The agency's key is the one this server holds for
    it (its keyring); :func:`verify_agency_request` does the checks."""
    container = getattr(request.app.state, "container", None)
    service: AgenciesService | None = _part(container, "agencies")
    keyring = _keyring(container)
    if service is None or keyring is None:
        raise BackOfficeUnavailable(
            "this process does not run the agencies' back-office service (enrolment and "
            "copies): send these requests to an intermediate server that does")
    server = _part(container, "agencies_server")
    if server is not None and not server.serves(body.agency_id):
        raise AgencyNotServed("this intermediate server does not serve the agency",
                              field="agency_id")

    def held_key(agency_id: str) -> bytes:
        try:
            public = keyring.keys(agency_id).signing.public_key()
            assert isinstance(public, ed25519.Ed25519PublicKey)
            return public.public_bytes_raw()
        except Exception:  # AgencyKeyError: no keys here for that agency
            raise AgencyNotServed("this intermediate server holds no keys for the agency",
                                  field="agency_id") from None

    verify_agency_request(body, kind, held_key, claim_nonce)
    return service


def check_fresh(requested_at: dt.datetime) -> None:
    """``StaleRequest`` unless ``requested_at`` is within :data:`MAX_REQUEST_AGE` of this
    server's clock. Any aware datetime is answered, year 1 and 9999 included (never an
    ``OverflowError``)."""
    try:
        stale = abs(_now() - requested_at) > MAX_REQUEST_AGE
    except (OverflowError, TypeError):
        stale = True
    if stale:
        raise StaleRequest("requested_at: more than 5 minutes from this server's clock",
                           field="requested_at")


def verify_agency_request(body: s._SignedIn, kind: str, public_key: Callable[[str], bytes],
                          claim_nonce: Callable[[str, str], bool]) -> None:
    """Prove ``body`` is the agency's own, fresh request, in this order: ``requested_at``
    within :data:`MAX_REQUEST_AGE` (``stale_request``; checked first, so an out-of-range date
    is never signed over), the Ed25519 signature over ``signed_request_bytes(kind, fields)``
    with ``public_key(agency_id)`` (the raw 32-byte public key; the callable raises its own
    refusal when there is none), ``bad_signature``, then the nonce, spent through
    ``claim_nonce(agency, nonce)`` (True the first time only; ``replayed_request``).

    Shared by the back office (the key its keyring holds for the agency) and the accounts
    context's agency routes (the key registered in the network directory)."""
    check_fresh(body.requested_at)
    raw = public_key(body.agency_id)
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(raw).verify(
            body.signature_bytes(), signed_request_bytes(kind, body.signed_fields()))
    except (InvalidSignature, ValueError, OverflowError):
        raise BadSignature("the request's signature does not verify with the agency's key",
                           field="signature") from None
    if not claim_nonce(body.agency_id, body.nonce):
        raise RequestReplayed("this nonce was already used by the agency", field="nonce")


def _check_item(container: object, item_code: str) -> None:
    """Refuse an item the legal table does not name (when this process has the table)."""
    network = _part(container, "network")
    if network is None:
        return
    if item_code not in {i.code for i in network.legal_table().items()}:
        raise InvalidAgencyInput("item_code: not an item of the legal table (別表第二); "
                                 "GET /api/v1/network/items lists them", field="item_code")


_SIGNED_ERRORS: dict[int | str, dict[str, Any]] = {
    403: _problem("`bad_signature` (not signed with the agency's key), `stale_request` "
                  "(requested_at more than 5 minutes off) or `agency_not_served` (no keys "
                  "for the agency here)"),
    409: _problem("`replayed_request`: the nonce was already used"),
    503: _problem("`back_office_unavailable`: this process does not run the agencies' "
                  "back-office service"),
}


@back_office.post(
    "/persons", operation_id="enrol_person", response_model=s.EnrolPersonOut,
    responses={
        **_SIGNED_ERRORS,
        404: _problem("`resident_not_found`: no resident has this individual number"),
        409: _problem("`replayed_request` (nonce already used) or `person_already_enrolled` "
                      "(the person is enrolled under another address number)"),
        422: _problem("Invalid input; `field` / `errors` name the fields (never the "
                      "individual number's value)"),
    },
)
def enrol_person(body: s.EnrolPersonIn, request: Request) -> s.EnrolPersonOut:
    """宛名番号の登録 (符号取得): get the agency's 機関別符号 for a person whose 個人番号 it
    lawfully holds. Signed by the agency (type `mynumber.agency-person-enrolment.v1`). The
    number goes to the registry for a one-time 取得番号 and is kept nowhere. Idempotent per
    address number; the code itself is not returned (the agency names the person by its
    address number)."""
    service = _authenticate(request, body, s.ENROL_KIND)
    try:
        service.agency_code(body.agency_id, body.address_number)
        already = True
    except PersonNotEnrolled:
        already = False
    if not already:
        service.enrol_person(body.agency_id, body.address_number, body.individual_number)
    return s.EnrolPersonOut(agency_id=body.agency_id, address_number=body.address_number,
                            already_enrolled=already)


@back_office.post(
    "/copies", operation_id="put_copy", response_model=s.CopyOut,
    responses={
        **_SIGNED_ERRORS,
        404: _problem("`person_not_enrolled`: no person is enrolled under the address number"),
        422: _problem("Invalid input; `individual_number_in_copy`: the payload carries a "
                      "個人番号 and nothing was stored"),
    },
)
def put_copy(body: s.PutCopyIn, request: Request) -> s.CopyOut:
    """副本の登録: register or replace the copy of one item for an enrolled person. Signed by
    the agency (type `mynumber.agency-copy.v1`); each replacement increments `version`."""
    service = _authenticate(request, body, s.COPY_KIND)
    _check_item(getattr(request.app.state, "container", None), body.item_code)
    record = service.put_copy(body.agency_id, body.address_number, body.item_code,
                              body.payload)
    return s.CopyOut(agency_id=record.agency_id, address_number=record.address_number,
                     item_code=record.item_code, version=record.version,
                     updated_at=record.updated_at)


@router.post(
    "/routed-queries", operation_id="answer_routed_query", response_model=s.SealedAnswerOut,
    responses={
        403: _problem("`routed_query_rejected` (core signature does not verify, or stale) or "
                      "`agency_not_served` (the provider is not served here)"),
        422: _problem("Invalid input; `field` / `errors` name the fields; "
                      "`individual_number_in_copy`: the 副本 carries a 個人番号 and is never "
                      "provided"),
        503: _problem("`intermediate_server_unavailable`: none configured in this deployment"),
    },
)
def answer_routed_query(body: s.RoutedQueryIn, server: ServerDep) -> s.SealedAnswerOut:
    """情報提供: answer one query routed by the core. The answer is sealed for the requester;
    `held` false means the provider holds no such 副本 for the person."""
    return s.SealedAnswerOut.from_answer(server.answer(body.to_query()))

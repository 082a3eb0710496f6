"""The network's JSON API: the directory and the legal table (public law), and the signed
operations of agencies (exchange, agency codes, declined applications) and of the portal
(a resident's access records with their inclusion proofs).

Agencies authenticate every call with an Ed25519 signature over the canonical JSON of the
request (docs/network.md); in production the transport is mutual TLS as well."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from mynumber.db import utcnow
from mynumber.errors import DomainError
from mynumber.network import schemas as s
from mynumber.network.interfaces import (
    AccessLog,
    BadSignature,
    ExchangeQuery,
    NetworkError,
    Operation,
    Outcome,
    RefusalReason,
    UnknownAgency,
    signed_request_bytes,
)
from mynumber.network.services import MAX_CLOCK_SKEW, NetworkServiceImpl


def get_network(request: Request) -> NetworkServiceImpl:
    network: NetworkServiceImpl = request.app.state.container.network
    return network


def get_log(request: Request) -> AccessLog:
    access_log: AccessLog = request.app.state.container.network_log
    return access_log


NetworkDep = Annotated[NetworkServiceImpl, Depends(get_network)]
LogDep = Annotated[AccessLog, Depends(get_log)]

# The signed operations, by operation id: a body that does not even parse is a refusal before
# authentication too, and counts as one.
_SIGNED_OPERATIONS = {
    "exchange": Operation.EXCHANGE,
    "issue_agency_code": Operation.AGENCY_CODE,
    "record_declined_application": Operation.DECLINED_APPLICATION,
    "query_access_records": Operation.ACCESS_RECORDS,
}


class _CountingRoute(APIRoute):
    """Counts a signed operation's malformed requests in the rejection counter."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        operation = _SIGNED_OPERATIONS.get(self.operation_id or "")
        if operation is None:
            return handler

        async def counted(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, HTTPException) as exc:
                # FastAPI answers an undecodable body with starlette's 400 HTTPException.
                if isinstance(exc, HTTPException) and not 400 <= exc.status_code < 500:
                    raise
                await run_in_threadpool(get_network(request).count_rejection, operation,
                                        RefusalReason.MALFORMED_REQUEST)
                raise

        return counted


router = APIRouter(prefix="/api/v1/network", tags=["network"], route_class=_CountingRoute)


class ExchangeRefused(DomainError):
    code = "exchange_refused"
    status = 403
    title = "Exchange refused"


def _check_signed(network: NetworkServiceImpl, operation: Operation, kind: str,
                  body: Any) -> None:
    """Authenticate a signed non-exchange request. Every refusal here happens before the
    sender is known, so it is counted (bounded), never recorded anywhere else."""
    def refuse(reason: RefusalReason, error: DomainError) -> DomainError:
        network.count_rejection(operation, reason)
        return error

    try:
        agency = network.agency(body.agency_id)
    except UnknownAgency as exc:
        raise refuse(RefusalReason.UNKNOWN_AGENCY, exc) from None
    requested_at = body.requested_at
    if requested_at.tzinfo is None:
        raise refuse(RefusalReason.MALFORMED_REQUEST, NetworkError(
            "requested_at: needs a timezone", field="requested_at"))
    if abs(utcnow() - requested_at) > MAX_CLOCK_SKEW:
        raise refuse(RefusalReason.STALE_REQUEST, NetworkError(
            "requested_at: more than 5 minutes from the core's clock", field="requested_at"))
    try:
        if agency.signing_key is None:
            raise InvalidSignature
        ed25519.Ed25519PublicKey.from_public_bytes(agency.signing_key).verify(
            body.signature, signed_request_bytes(kind, body.model_dump())
        )
    except (InvalidSignature, ValueError):
        raise refuse(RefusalReason.BAD_SIGNATURE, BadSignature(
            "the request's signature does not verify with the agency's registered key",
            field="signature")) from None


def _agency(a: Any) -> s.AgencyPublic:
    return s.AgencyPublic(
        agency_id=a.agency_id, name=a.name, kind=a.kind, status=a.status,
        municipality_code=a.municipality_code, signing_key=a.signing_key,
        encryption_key=a.encryption_key,
    )


@router.get("/agencies", operation_id="list_agencies", response_model=list[s.AgencyPublic])
def list_agencies(
    network: NetworkDep,
    kind: Annotated[str | None, Query(max_length=64)] = None,
) -> list[s.AgencyPublic]:
    """機関一覧: every agency (optionally of one kind) with its public keys."""
    return [_agency(a) for a in network.agencies(kind)]


@router.get("/agencies/{agency_id}", operation_id="get_agency", response_model=s.AgencyPublic)
def get_agency(agency_id: str, network: NetworkDep) -> s.AgencyPublic:
    return _agency(network.agency(agency_id))


@router.get("/legal-table", operation_id="list_provisions",
            response_model=list[s.ProvisionPublic])
def list_provisions(
    network: NetworkDep,
    task_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[s.ProvisionPublic]:
    """別表第二: every permitted (requester kind, task, provider kind, items) with its
    legal reference, as the core enforces it."""
    return [
        s.ProvisionPublic(
            provision_id=p.provision_id, task_id=p.task_id,
            requester_kinds=sorted(p.requester_kinds), provider_kinds=sorted(p.provider_kinds),
            items=list(p.items), legal_reference=p.legal_reference,
            requester_text=p.requester_text, provider_text=p.provider_text,
            information_text=p.information_text, restricted=p.restricted,
        )
        for p in network.legal_table().provisions()
        if task_id is None or p.task_id == task_id
    ]


@router.get("/tasks", operation_id="list_tasks", response_model=list[s.TaskPublic])
def list_tasks(network: NetworkDep) -> list[s.TaskPublic]:
    return [s.TaskPublic(task_id=t.task_id, item_no=t.item_no, title=t.title)
            for t in network.legal_table().tasks()]


@router.get("/items", operation_id="list_items", response_model=list[s.ItemPublic])
def list_items(network: NetworkDep) -> list[s.ItemPublic]:
    return [s.ItemPublic(code=i.code, label=i.label) for i in network.legal_table().items()]


@router.post("/exchanges", operation_id="exchange", response_model=s.ExchangeResultOut)
def exchange(body: s.ExchangeQueryIn, network: NetworkDep) -> s.ExchangeResultOut:
    """情報照会・情報提供: the core checks the legal table, maps the requester's code to the
    provider's, and returns the provider's sealed answer. A query refused once the requester
    is authenticated is recorded like any other and answered with a 403 problem
    `exchange_refused` naming the reason and the 処理通番; one refused before that (unknown
    requester, bad signature, stale, malformed) is only counted and has no 処理通番."""
    if body.requested_at.tzinfo is None:
        network.count_rejection(Operation.EXCHANGE, RefusalReason.MALFORMED_REQUEST)
        raise NetworkError("requested_at: needs a timezone", field="requested_at")
    result = network.exchange(ExchangeQuery(
        requester_id=body.requester_id, task_id=body.task_id, provider_id=body.provider_id,
        item_code=body.item_code, subject_code=body.subject_code,
        requested_at=body.requested_at, nonce=body.nonce, signature=body.signature,
    ))
    if result.outcome is Outcome.REFUSED:
        reason = result.reason.value if result.reason else "refused"
        if not result.serial:  # refused before authentication: nothing recorded, no serial
            raise ExchangeRefused(f"the core refused this query: {reason}", reason=reason)
        raise ExchangeRefused(f"the core refused this query: {reason}", serial=result.serial,
                              reason=reason)
    return s.ExchangeResultOut(serial=result.serial, outcome=result.outcome,
                               reason=result.reason, provision_id=result.provision_id,
                               sealed=result.sealed)


@router.post("/agency-codes", operation_id="issue_agency_code",
             response_model=s.AgencyCodeOut)
def issue_agency_code(body: s.AgencyCodeIn, network: NetworkDep) -> s.AgencyCodeOut:
    """符号取得: redeem a one-time 取得番号 from the registry for this agency's code. 403
    `no_number_use` when the agency has no use of the number in 番号法 別表第一 (the 取得番号
    is not spent)."""
    _check_signed(network, Operation.AGENCY_CODE, "agency-code-request", body)
    return s.AgencyCodeOut(
        agency_code=network.issue_agency_code(body.agency_id, body.acquisition_number)
    )


@router.post("/declined-applications", operation_id="record_declined_application",
             response_model=s.ExchangeResultOut)
def record_declined_application(body: s.DeclinedIn, network: NetworkDep) -> s.ExchangeResultOut:
    """The resident gave no number: the application proceeds on the attached documents; the
    core records that, and no exchange happens."""
    _check_signed(network, Operation.DECLINED_APPLICATION, "declined-application", body)
    # The nonce is claimed atomically with the record: a replayed request is 409
    # `replayed_request` and records nothing.
    result = network.record_declined(body.agency_id, body.task_id, body.application_ref,
                                     body.documents, nonce=body.nonce)
    return s.ExchangeResultOut(serial=result.serial, outcome=result.outcome)


@router.post("/access-records/query", operation_id="query_access_records",
             response_model=s.AccessRecordsOut)
def query_access_records(
    body: s.AccessRecordsIn, network: NetworkDep, access_log: LogDep
) -> s.AccessRecordsOut:
    """情報提供等記録: one resident's records (for the portal), each with its log entry and
    an inclusion proof against the returned checkpoint."""
    _check_signed(network, Operation.ACCESS_RECORDS, "access-records-query", body)
    access_log.integrate()
    records = network.access_records(body.agency_id, body.subject_code)
    head = access_log.latest_head()
    out = []
    for r in records:
        entry = proof = None
        if r.log_index is not None and r.log_index < head.size:
            entry = access_log.entries(r.log_index, r.log_index + 1)[0].entry.decode()
            p = access_log.inclusion_proof(r.log_index, head.size)
            proof = s.InclusionProofOut(leaf_index=p.leaf_index, tree_size=p.tree_size,
                                        audit_path=list(p.path))
        out.append(s.AccessRecordOut(**r.__dict__, entry=entry, inclusion_proof=proof))
    return s.AccessRecordsOut(checkpoint=head.checkpoint, records=out)

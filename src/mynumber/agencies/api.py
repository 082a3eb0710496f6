"""The intermediate server's HTTP face, for production deployments where an agency's 中間サーバー
runs apart from the core: the core POSTs each routed query here (over mutual TLS, terminated in
front of the app) and gets the sealed answer back. The core's Ed25519 signature on the query is
what authorises it; the TLS client certificate only keeps strangers off the port."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from mynumber.agencies import schemas as s
from mynumber.agencies.interfaces import IntermediateServerUnavailable
from mynumber.network.interfaces import IntermediateServer

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

"""Reaching a remote 中間サーバー: :class:`HttpIntermediateServer` implements the network's
``IntermediateServer`` protocol over HTTPS with mutual TLS (``mynumber.agencies.api`` on the
other end). The core needs nothing else to route to an agency that runs its own server."""

from __future__ import annotations

import ssl
from pathlib import Path
from types import TracebackType

import httpx
from pydantic import ValidationError

from mynumber.agencies import schemas as s
from mynumber.agencies.interfaces import IntermediateServerUnavailable
from mynumber.errors import DomainError
from mynumber.network.interfaces import (
    IndividualNumberInCopy,
    IntermediateServer,
    RoutedQuery,
    SealedAnswer,
)

PATH = "/agencies/v1/routed-queries"

# The network core counts a failure by these codes (``InfrastructureFailure``): each error
# below names its kind as ``infrastructure`` in its extra.
UNREACHABLE, TLS, TIMEOUT = "provider_unreachable", "provider_tls", "provider_timeout"
FAILED, DATABASE, REJECTED = "provider_failed", "provider_database", "provider_rejected"


def _transport_failure(exc: httpx.HTTPError) -> str:
    """Which kind of failure an HTTP client error is: TLS (a certificate refused either way, a
    client certificate missing, a handshake cut off), a timeout, or no connection."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or any(
                mark in str(seen) for mark in ("SSL", "TLS", "CERTIFICATE")):
            return TLS
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.TimeoutException):
        return TIMEOUT
    return UNREACHABLE


class RemoteRefusal(DomainError):
    """The remote server answered with a problem document (e.g. 403 routed_query_rejected)."""

    code = "remote_refusal"
    status = 502
    title = "The intermediate server refused the query"


class HttpIntermediateServer:
    """An agency's intermediate server at ``base_url``.

    ``client_cert``/``client_key`` are the core's TLS client certificate and key (PEM) for
    mutual TLS; ``ca_bundle`` the CA file the server's certificate must chain to (the system
    store when None). ``client`` replaces the whole HTTP client (tests pass a TestClient)."""

    def __init__(
        self,
        base_url: str,
        *,
        client_cert: Path | None = None,
        client_key: Path | None = None,
        ca_bundle: Path | None = None,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        if client is not None:
            self._client = client
            self._owned = False
        else:
            context = ssl.create_default_context(
                cafile=str(ca_bundle) if ca_bundle is not None else None)
            if client_cert is not None:
                context.load_cert_chain(str(client_cert),
                                        str(client_key) if client_key is not None else None)
            self._client = httpx.Client(base_url=base_url.rstrip("/"), verify=context,
                                        timeout=timeout)
            self._owned = True

    def answer(self, query: RoutedQuery) -> SealedAnswer:
        try:
            response = self._client.post(PATH, json=s.RoutedQueryIn.from_query(query))
        except httpx.HTTPError as exc:
            raise IntermediateServerUnavailable(
                f"the intermediate server cannot be reached ({type(exc).__name__})",
                infrastructure=_transport_failure(exc)) from None
        if response.status_code != 200:
            code = "unknown"
            try:
                code = str(response.json().get("code", code))
            except ValueError:
                pass
            if response.status_code >= 500:
                raise IntermediateServerUnavailable(
                    f"the intermediate server failed with HTTP {response.status_code}",
                    remote_code=code,
                    infrastructure=DATABASE if code == "infrastructure_unavailable" else FAILED)
            if code == IndividualNumberInCopy.code:  # the core records its own reason
                raise IndividualNumberInCopy(
                    "the intermediate server withheld a copy carrying an individual number")
            raise RemoteRefusal(f"the intermediate server refused the query ({code})",
                                remote_code=code, remote_status=response.status_code,
                                infrastructure=REJECTED)
        try:
            answer = s.SealedAnswerOut.model_validate_json(response.content).to_answer()
        except (ValidationError, ValueError):
            raise IntermediateServerUnavailable(
                "the intermediate server's answer is malformed", infrastructure=FAILED) from None
        if answer.serial != query.serial or answer.held != (answer.sealed is not None):
            raise IntermediateServerUnavailable(
                "the intermediate server answered another query", infrastructure=FAILED)
        return answer

    def close(self) -> None:
        if self._owned:
            self._client.close()

    def __enter__(self) -> HttpIntermediateServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


_contract: type[IntermediateServer] = HttpIntermediateServer

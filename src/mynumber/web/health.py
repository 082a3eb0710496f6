"""Liveness and readiness, on every listener.

- ``GET /healthz`` (liveness): the process answers. Touches no database, no key, no file: a
  load balancer or an orchestrator restarts the process only when this stops answering.
- ``GET /readyz`` (readiness): whether this process can do its work now. Each check runs in a
  worker thread with a time limit (:data:`CHECK_SECONDS`):

  - ``database.<context>``: ``SELECT 1`` on each context database the role uses;
  - ``keys``: the key source is reachable (the PKCS#11 token answers, or the software key
    directory can be read);
  - ``tls``: this listener's TLS settings are usable (certificate in its validity period, key
    matching it, and for the infrastructure listener the CA certificate), or the listener is
    plain HTTP by configuration (embedded mode, or ``--public-plain-http`` behind a proxy).

  200 with ``"status": "ready"`` when every check passes, else 503 with ``"not_ready"``. The
  answer names the checks and their results (``ok``, ``failed``, ``timeout``) and nothing else:
  the reason (a database message, a file path) goes to the server's log only.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import text

from mynumber import __version__
from mynumber.app import ROLE_CONTEXTS
from mynumber.kernel.events import SubscriberStatus

if TYPE_CHECKING:
    from mynumber.app import Container


LIVENESS = "/healthz"
READINESS = "/readyz"
CHECK_SECONDS = 3.0
log = logging.getLogger("mynumber.health")

TlsMode = Literal["plain", "proxy", "server", "mutual"]


@dataclass(frozen=True)
class ListenerTls:
    """How one listener is served: ``plain`` HTTP (embedded mode), ``proxy`` (plain HTTP
    behind a TLS-terminating proxy, ``--public-plain-http``), ``server`` (server-authenticated
    HTTPS, MYNUMBER_PUBLIC_TLS_DIR) or ``mutual`` (client certificate required,
    MYNUMBER_TLS_DIR)."""

    mode: TlsMode = "plain"
    directory: Path | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.mode in ("server", "mutual") else "http"

    def describe(self) -> str:
        return {"plain": "plain HTTP", "proxy": "plain HTTP behind a TLS-terminating proxy",
                "server": "server-authenticated TLS",
                "mutual": "mutual TLS (client certificate required)"}[self.mode]


PLAIN = ListenerTls()


class Health(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, Literal["ok", "failed", "timeout"]]


router = APIRouter(tags=["system"])


@router.get(LIVENESS, operation_id="health", response_model=Health)
def health() -> Health:
    """Liveness: the process answers (no database, no key)."""
    return Health(status="ok", version=__version__)


@router.get(READINESS, operation_id="readiness", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "not ready"}})
async def readiness(request: Request) -> JSONResponse:
    """Readiness: databases, key source and this listener's TLS (see the module doc)."""
    state = request.app.state
    checks = readiness_checks(state.container, state.role, getattr(state, "listener_tls", PLAIN))
    results = await asyncio.gather(*(_run(name, check) for name, check in checks.items()))
    outcome = dict(zip(checks, results, strict=True))
    ready = all(result == "ok" for result in outcome.values())
    body = Readiness(status="ready" if ready else "not_ready", checks=outcome)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503,
                        headers={"Cache-Control": "no-store"})


async def _run(name: str, check: Callable[[], None]) -> Literal["ok", "failed", "timeout"]:
    try:
        await asyncio.wait_for(asyncio.to_thread(check), CHECK_SECONDS)
    except TimeoutError:
        log.warning("readiness check %s took more than %.0f s", name, CHECK_SECONDS)
        return "timeout"
    except Exception as exc:  # every failure is "not ready"; the reason goes to the log only
        log.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
        return "failed"
    return "ok"


def readiness_checks(container: Container, role: str,
                     tls: ListenerTls) -> dict[str, Callable[[], None]]:
    """The named checks for one listener of one role (each raises when it fails)."""
    checks: dict[str, Callable[[], None]] = {
        f"database.{context}": _database(container, context)
        for context in ROLE_CONTEXTS[role]
    }
    checks["keys"] = _key_source(container)
    checks["tls"] = _tls(tls)
    return checks


def _database(container: Container, context: str) -> Callable[[], None]:
    def check() -> None:
        with container.databases.engine(context).connect() as connection:
            connection.execute(text("SELECT 1")).scalar_one()

    return check


def _key_source(container: Container) -> Callable[[], None]:
    settings = container.settings

    def check() -> None:
        if settings.pkcs11_library:
            from mynumber.keys.pkcs11 import shared_session

            if not settings.pkcs11_token or settings.pkcs11_pin is None:
                raise RuntimeError("PKCS#11 library set without token label or PIN")
            token = shared_session(settings.pkcs11_library, settings.pkcs11_token,
                                   settings.pkcs11_pin.get_secret_value())
            token.run(lambda session: session.generate_random(64))
        directory = settings.keys_path  # symmetric keys are files even with a token
        if not directory.is_dir() or not os.access(directory, os.R_OK | os.X_OK):
            raise RuntimeError(f"the key directory {directory} cannot be read")

    return check


def _tls(tls: ListenerTls) -> Callable[[], None]:
    def check() -> None:
        if tls.mode in ("plain", "proxy"):
            return
        from mynumber.tls import check_usable

        if tls.directory is None:
            raise RuntimeError(f"{tls.mode} TLS without a directory")
        check_usable(tls.directory, mutual=tls.mode == "mutual")

    return check


METRICS = "/metrics"
#: Operators' monitoring: on the infrastructure listener only (web.assemble).
metrics_router = APIRouter(tags=["system"])


@metrics_router.get(METRICS, operation_id="metrics", include_in_schema=False)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format: event delivery per outbox and subscriber (roles that run the
    dispatchers: the registry's and the accounts context's, labelled ``outbox``; other roles
    answer with no samples). ``pending`` events and the age of the oldest one are the lag;
    ``failing`` is 1 while a subscriber's handler keeps failing."""
    from mynumber.app import dispatcher_name

    container = request.app.state.container
    lines: list[str] = []
    dispatchers = list(container.dispatchers)
    if not dispatchers:
        return PlainTextResponse("\n", headers={"Cache-Control": "no-store"})

    def read() -> list[tuple[str, list[SubscriberStatus]]]:
        return [(dispatcher_name(d), d.status()) for d in dispatchers]

    try:
        outboxes = await asyncio.wait_for(asyncio.to_thread(read), CHECK_SECONDS)
    except Exception as exc:
        log.warning("event metrics failed: %s", type(exc).__name__)
        return PlainTextResponse("# event metrics unavailable\n", status_code=503,
                                 headers={"Cache-Control": "no-store"})
    lines += ["# HELP mynumber_events_head Position of the newest numbered event of the outbox.",
              "# TYPE mynumber_events_head gauge"]
    lines += [f'mynumber_events_head{{outbox="{outbox}"}} {statuses[0].head if statuses else 0}'
              for outbox, statuses in outboxes]
    series: tuple[tuple[str, str, str, Callable[[SubscriberStatus], float | int]], ...] = (
        ("pending", "Events not yet delivered to the subscriber.", "gauge",
         lambda s: s.pending),
        ("oldest_pending_seconds", "Age of the oldest event the subscriber has not "
         "taken (the delivery lag).", "gauge", lambda s: round(s.oldest_pending_seconds, 3)),
        ("failing", "1 while the subscriber's handler keeps failing.", "gauge",
         lambda s: int(s.last_error is not None)),
        ("delivered_total", "Events handed to the subscriber's handler.", "counter",
         lambda s: s.delivered),
    )
    for name, help_, kind, value in series:
        lines += [f"# HELP mynumber_events_{name} {help_}",
                  f"# TYPE mynumber_events_{name} {kind}"]
        lines += [f'mynumber_events_{name}{{outbox="{outbox}",subscriber="{s.name}"}} '
                  f'{value(s)}' for outbox, statuses in outboxes for s in statuses]
    return PlainTextResponse("\n".join(lines) + "\n", headers={"Cache-Control": "no-store"})

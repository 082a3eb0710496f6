"""An infrastructure failure is not the resident's refusal: when the core's database or the
provider's intermediate server is unavailable, the exchange is not carried out, nothing is
recorded or logged against anybody, the operators' counter counts it, and the caller gets 503
``infrastructure_unavailable`` with Retry-After, never a 500. A lost database connection (a
PostgreSQL restart) is retried and costs the caller nothing.

The database is made unavailable for real: on SQLite its file is replaced by a directory; on
PostgreSQL the database refuses connections and its backends are terminated."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from mynumber.agencies.transport import HttpIntermediateServer
from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffRole
from mynumber.network import models as nm
from mynumber.network.interfaces import (
    InfrastructureFailure,
    InfrastructureUnavailable,
    Operation,
    Outcome,
)
from mynumber.network.log_models import LogLeaf, LogQueue
from mynumber.web.i18n import MESSAGES
from tests.conftest import PG_URL, SHINJUKU, make_staff, new_resident
from tests.network.test_exchange import CITY, ITEM, MHLW, PORTAL, TASK, World, _signed

EXCHANGES = "/api/v1/network/exchanges"
PAYLOAD = {"taxable_income": 4_200_000, "year": 2025}


@dataclasses.dataclass
class Setup:
    world: World
    mhlw_code: str
    portal_code: str


@pytest.fixture
def setup(container: Container) -> Setup:
    clerk = make_staff(container, "infra-clerk", SHINJUKU, StaffRole.CLERK)
    details = new_resident()
    resident = container.registry.register_birth(clerk, details, details.birth_date)
    world = World(container, clerk,
                  {resident.id: container.registry.reveal_number(clerk, resident.id, "test")})
    for agency in (MHLW, CITY, PORTAL):
        container.agencies.ensure_registered(agency)
    city = world.enrol(CITY, resident.id)
    container.agencies.put_copy(CITY, city, ITEM, PAYLOAD)
    agencies = container.agencies
    return Setup(world, agencies.agency_code(MHLW, world.enrol(MHLW, resident.id)),
                 agencies.agency_code(PORTAL, world.enrol(PORTAL, resident.id)))


def _body(s: Setup, provider: str = CITY) -> dict[str, Any]:
    query = _signed(s.world, MHLW, requester_id=MHLW, task_id=TASK, provider_id=provider,
                    item_code=ITEM, subject_code=s.mhlw_code)
    return {**{k: v for k, v in dataclasses.asdict(query).items() if k != "signature"},
            "requested_at": query.requested_at.isoformat(),
            "signature": base64.b64encode(query.signature).decode()}


def _rows(container: Container) -> tuple[int, int, int]:
    """(exchanges, refused exchanges, log entries queued or integrated)."""
    with container.databases.unit_of_work("network") as session:
        exchanges = session.scalar(select(func.count()).select_from(nm.Exchange)) or 0
        refused = session.scalar(select(func.count()).select_from(nm.Exchange).where(
            nm.Exchange.outcome == Outcome.REFUSED.value)) or 0
        logged = (session.scalar(select(func.count()).select_from(LogQueue)) or 0) + (
            session.scalar(select(func.count()).select_from(LogLeaf)) or 0)
    return exchanges, refused, logged


def _failures(container: Container) -> dict[tuple[Operation, InfrastructureFailure], int]:
    totals: dict[tuple[Operation, InfrastructureFailure], int] = {}
    for bucket in container.network.infrastructure_failures():
        key = (bucket.operation, bucket.reason)
        totals[key] = totals.get(key, 0) + bucket.count
    return totals


def _resident_records(s: Setup) -> list[Any]:
    return s.world.container.network.access_records(PORTAL, s.portal_code)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nobody listens there


def _assert_unavailable(response: Any, reason: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    problem = response.json()
    assert problem["code"] == "infrastructure_unavailable"
    assert problem["reason"] == reason
    assert "serial" not in problem  # nothing was recorded: no 処理通番 to name


# --- the provider's intermediate server -------------------------------------------------------


def test_a_provider_on_a_closed_port_is_an_infrastructure_failure_not_a_refusal(
        setup: Setup) -> None:
    c = setup.world.container
    c.network.set_agency_endpoint(CITY, f"http://127.0.0.1:{_closed_port()}")
    before = _rows(c)
    client = TestClient(create_app(container=c), raise_server_exceptions=False)
    _assert_unavailable(client.post(EXCHANGES, json=_body(setup)), "provider_unreachable")
    assert _rows(c) == before  # no exchange, no refusal, no log entry
    assert c.network_log.integrate() == 0
    assert _resident_records(setup) == []
    assert _failures(c) == {(Operation.EXCHANGE, InfrastructureFailure.PROVIDER_UNREACHABLE): 1}
    # In process too (the requesting agency's own path): the 503 passes through unrecorded.
    with pytest.raises(InfrastructureUnavailable) as caught:
        c.agencies.query(MHLW, f"{MHLW[:8]}-{sorted(setup.world.numbers)[0]:06d}", TASK, CITY,
                         ITEM)
    assert caught.value.reason == "provider_unreachable"
    assert _rows(c) == before
    # Back on its in-process server, the same exchange goes through and is recorded.
    c.network.set_agency_endpoint(CITY, None)
    c.network._invalidate()
    response = client.post(EXCHANGES, json=_body(setup))
    assert response.status_code == 200 and response.json()["outcome"] == "provided"
    assert [r.outcome for r in _resident_records(setup)] == [Outcome.PROVIDED]


@contextmanager
def _plain_tcp_server() -> Iterator[int]:
    """A listener that answers a TLS ClientHello with plain HTTP: the handshake fails."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()
        thread.join(timeout=5)


def test_a_tls_failure_towards_the_provider_is_named_and_not_a_refusal(setup: Setup) -> None:
    """What a core without its TLS client settings meets: the handshake fails. The transport
    names it ``provider_tls``; the core counts it and refuses nothing."""
    c = setup.world.container
    with _plain_tcp_server() as port:
        c.network.set_agency_endpoint(CITY, f"https://127.0.0.1:{port}")
        before = _rows(c)
        client = TestClient(create_app(container=c), raise_server_exceptions=False)
        _assert_unavailable(client.post(EXCHANGES, json=_body(setup)), "provider_tls")
    assert _rows(c) == before and _resident_records(setup) == []
    assert _failures(c) == {(Operation.EXCHANGE, InfrastructureFailure.PROVIDER_TLS): 1}


def test_the_transport_names_each_kind_of_failure() -> None:
    from mynumber.agencies.interfaces import IntermediateServerUnavailable
    from mynumber.network.interfaces import RoutedQuery

    query = RoutedQuery(serial="1" * 32, requester_id=MHLW, task_id=TASK, provider_id=CITY,
                        item_code=ITEM, subject_code="x", requester_encryption_key=b"\0" * 32,
                        routed_at=dt.datetime.now(dt.UTC))
    with HttpIntermediateServer(f"http://127.0.0.1:{_closed_port()}") as server, \
            pytest.raises(IntermediateServerUnavailable) as closed:
        server.answer(query)
    assert closed.value.extra["infrastructure"] == "provider_unreachable"
    with _plain_tcp_server() as port, \
            HttpIntermediateServer(f"https://127.0.0.1:{port}") as server, \
            pytest.raises(IntermediateServerUnavailable) as tls:
        server.answer(query)
    assert tls.value.extra["infrastructure"] == "provider_tls"


# --- the core's database ------------------------------------------------------------------------


@contextmanager
def _database_down(container: Container, context: str) -> Iterator[None]:
    """Make ``context``'s database unusable until the block ends, for real: SQLite's file is
    replaced by a directory; PostgreSQL refuses new connections and its backends are
    terminated (every pooled connection dies, as in a restart, and none can be opened)."""
    engine = container.databases.engine(context)
    if PG_URL:
        name = make_url(str(container.databases.url_for(context))).database
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :name"), {"name": name})
            yield
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            admin.dispose()
        return
    engine.dispose()  # close the pool's files (WAL is checkpointed and removed)
    path = Path(str(engine.url.database))
    aside = path.with_name(path.name + ".aside")
    os.replace(path, aside)
    path.mkdir()
    try:
        yield
    finally:
        path.rmdir()
        os.replace(aside, path)
        engine.dispose()


def test_the_core_database_down_answers_503_and_logs_nothing_against_the_resident(
        setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    c = setup.world.container
    client = TestClient(create_app(container=c), raise_server_exceptions=False)
    before = _rows(c)
    caplog.set_level("WARNING")
    with _database_down(c, "network"):
        c.network._invalidate()  # the directory must be read again: that fails too
        _assert_unavailable(client.post(EXCHANGES, json=_body(setup)), "core_database")
        # The directory was read: on SQLite the record is what fails (the answer is then
        # discarded); on PostgreSQL one database holds every context, so the in-process
        # provider's fails first.
        c.network._directory_loaded = time.monotonic()
        second = InfrastructureFailure.PROVIDER_DATABASE if PG_URL else (
            InfrastructureFailure.CORE_DATABASE)
        _assert_unavailable(client.post(EXCHANGES, json=_body(setup)), second.value)
        # Any other API reading the database: 503 too, never 500.
        c.network._invalidate()
        response = client.get("/api/v1/network/agencies")
        assert response.status_code == 503 and response.json()["code"] == (
            "infrastructure_unavailable") and response.headers["retry-after"]
    assert PG_URL or "the provider's answer was discarded" in caplog.text
    assert "Traceback" not in caplog.text
    for record in caplog.records:  # never a code or a number in what operators read
        assert setup.mhlw_code not in record.getMessage()
    assert _rows(c) == before and _resident_records(setup) == []
    # Counted while the database was down (in memory), written once it is back.
    response = client.post(EXCHANGES, json=_body(setup))
    assert response.status_code == 200, response.text
    expected = {(Operation.EXCHANGE, InfrastructureFailure.CORE_DATABASE): 1}
    expected[(Operation.EXCHANGE, second)] = expected.get((Operation.EXCHANGE, second), 0) + 1
    assert _failures(c) == expected
    with c.databases.unit_of_work("network") as session:
        written = session.scalar(select(func.sum(nm.InfrastructureFailureBucket.count)))
    assert written == 2
    assert [r.outcome for r in _resident_records(setup)] == [Outcome.PROVIDED]


def test_a_page_gets_a_503_page_in_japanese(setup: Setup) -> None:
    c = setup.world.container
    client = TestClient(create_app(container=c), raise_server_exceptions=False)
    with _database_down(c, "network"):
        c.network._invalidate()
        page = client.get("/api/v1/network/agencies", headers={"Accept": "text/html"})
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"]
    assert MESSAGES["error.infrastructure_unavailable"]["ja"] in page.text
    assert "Traceback" not in page.text and "OperationalError" not in page.text


@pytest.mark.skipif(not PG_URL, reason="a lost connection is PostgreSQL's (bin/with-postgres)")
def test_connections_lost_to_a_restart_are_retried_without_the_caller_noticing(
        setup: Setup) -> None:
    c = setup.world.container
    client = TestClient(create_app(container=c), raise_server_exceptions=False)
    assert client.post(EXCHANGES, json=_body(setup)).status_code == 200  # pools are warm
    name = make_url(str(c.databases.url_for("network"))).database
    admin = create_engine(PG_URL or "", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            killed = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name}).scalar()
    finally:
        admin.dispose()
    assert killed and killed >= 2  # the network's and the agencies' pooled connections
    c.network._invalidate()
    response = client.post(EXCHANGES, json=_body(setup))
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "provided"
    exchanges, refused, logged = _rows(c)
    assert (exchanges, refused, logged) == (2, 0, 2)
    assert _failures(c) == {}
    assert [r.outcome for r in _resident_records(setup)] == [Outcome.PROVIDED] * 2


def test_an_agencys_database_down_is_the_providers_failure_not_a_refusal(
        setup: Setup) -> None:
    """The in-process intermediate server's database (the agencies context) unavailable: the
    core counts ``provider_database`` and records nothing."""
    c = setup.world.container
    client = TestClient(create_app(container=c), raise_server_exceptions=False)
    before = _rows(c)
    with _database_down(c, "agencies"):
        _assert_unavailable(client.post(EXCHANGES, json=_body(setup)), "provider_database")
    assert _rows(c) == before and _resident_records(setup) == []
    assert _failures(c) == {(Operation.EXCHANGE, InfrastructureFailure.PROVIDER_DATABASE): 1}



def test_operators_read_the_counter_with_the_cli(setup: Setup) -> None:
    import json

    from typer.testing import CliRunner

    from mynumber.cli import app as cli

    c = setup.world.container
    c.network.set_agency_endpoint(CITY, f"http://127.0.0.1:{_closed_port()}")
    client = TestClient(create_app(container=c), raise_server_exceptions=False)
    _assert_unavailable(client.post(EXCHANGES, json=_body(setup)), "provider_unreachable")
    settings = c.settings
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MYNUMBER_")}
    env.update({"MYNUMBER_DATA_DIR": str(settings.data_dir),
                "MYNUMBER_KEY_DIR": str(settings.keys_path),
                "MYNUMBER_DATABASE_URL": settings.database_url})
    result = CliRunner().invoke(cli, ["network", "failures", "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [(r["operation"], r["reason"], r["count"]) for r in rows] == [
        ("exchange", "provider_unreachable", 1)]

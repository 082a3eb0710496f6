"""A PostgreSQL restart under load: exchanges run in threads through the HTTP API while every
backend of the database is terminated, three times (what a restart does to the pools, without
stopping the shared test cluster). No request may end in a 500 or an unhandled exception;
each one either succeeded (and is recorded and logged) or got 503 ``infrastructure_unavailable``
(and left nothing); the residents' access log holds no refusal; afterwards exchanges succeed
again and the log verifies.

PostgreSQL only (``bin/with-postgres``): SQLite has no connections to lose."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mynumber.app import create_app
from mynumber.network.interfaces import Outcome
from tests.conftest import PG_URL
from tests.network.test_infrastructure_failures import (  # noqa: F401 - the fixture
    EXCHANGES,
    Setup,
    _body,
    _resident_records,
    _rows,
    setup,
)

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (bin/with-postgres)")]

THREADS = 6
PER_THREAD = 25
KILLS = 3


def _terminate_all(database: str) -> int:
    admin = create_engine(PG_URL or "", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": database},
            ).scalar() or 0)
    finally:
        admin.dispose()


def test_a_restart_under_load_gives_retries_or_503_never_500_nor_a_false_refusal(
        setup: Setup) -> None:  # noqa: F811 - the imported fixture
    c = setup.world.container
    c.network_log.integrate()
    database = make_url(str(c.databases.url_for("network"))).database or ""
    client = TestClient(create_app(container=c), raise_server_exceptions=True)
    assert client.post(EXCHANGES, json=_body(setup)).status_code == 200  # warm pools
    before = _rows(c)

    answers: list[tuple[int, dict[str, Any]]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS + 1)

    def load() -> None:
        start.wait()
        for _ in range(PER_THREAD):
            try:
                response = client.post(EXCHANGES, json=_body(setup))
                result = (response.status_code, response.json())
            except BaseException as exc:  # an exception escaping the app fails the test
                with lock:
                    errors.append(exc)
                continue
            with lock:
                answers.append(result)

    threads = [threading.Thread(target=load) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    killed = []
    for _ in range(KILLS):
        time.sleep(0.15)
        killed.append(_terminate_all(database))
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)

    assert errors == []
    assert sum(killed) > 0  # the restart did hit pooled connections
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert len(answers) == THREADS * PER_THREAD
    for status, body in answers:
        if status == 200:
            assert body["outcome"] == "provided"
        else:
            assert body["code"] == "infrastructure_unavailable", body
            assert "serial" not in body
    # Every success is recorded and logged once; a 503 left nothing; nothing was refused.
    exchanges, refused, logged = _rows(c)
    assert exchanges - before[0] == statuses[200]
    assert logged - before[2] == statuses[200]
    assert refused == before[1] == 0
    # And afterwards it works again, and the log holds exactly the successes.
    response = client.post(EXCHANGES, json=_body(setup))
    assert response.status_code == 200 and response.json()["outcome"] == "provided"
    c.network_log.integrate()
    records = _resident_records(setup)
    assert len(records) == statuses[200] + 2
    assert {r.outcome for r in records} == {Outcome.PROVIDED}
    assert c.network_log.verify().ok

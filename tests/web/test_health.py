"""Liveness (/healthz) and readiness (/readyz): databases, key source, the listener's TLS."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mynumber import tls
from mynumber.app import Container, build_container
from mynumber.auth.interfaces import StaffRole
from mynumber.db import CONTEXTS
from mynumber.settings import Settings
from mynumber.web.assemble import INFRASTRUCTURE, PUBLIC, assemble
from mynumber.web.health import ListenerTls


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nobody listens once the socket is closed


def test_ready_names_every_check(container: Container) -> None:
    with TestClient(assemble(container)) as client:
        response = client.get("/readyz")
        live = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {**{f"database.{c}": "ok" for c in CONTEXTS}, "keys": "ok",
                              "tls": "ok"}
    assert response.headers["cache-control"] == "no-store"
    assert live.status_code == 200 and live.json()["status"] == "ok"


def test_an_unreachable_database_is_not_ready_but_alive(tmp_path: Path, key_dir: Path) -> None:
    """Liveness touches no database; readiness reports each one, and only by name."""
    port = _closed_port()
    settings = Settings(database_url=f"postgresql+psycopg://mynumber:s3cret@127.0.0.1:{port}/x",
                        data_dir=tmp_path / "data", key_dir=key_dir)
    container = build_container(settings)
    try:
        client = TestClient(assemble(container))  # no lifespan: nothing else connects
        live = client.get("/healthz")
        ready = client.get("/readyz")
    finally:
        container.close()
    assert live.status_code == 200
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not_ready"
    assert {body["checks"][f"database.{c}"] for c in CONTEXTS} == {"failed"}
    assert body["checks"]["keys"] == "ok"
    for secret in ("s3cret", str(port), "127.0.0.1", str(key_dir), "postgresql"):
        assert secret not in ready.text


def test_the_database_going_away_makes_a_ready_process_not_ready(
        settings: Settings, container: Container) -> None:
    """The real database stops answering under a running app (PostgreSQL: the database is
    dropped; SQLite: the data directory disappears)."""
    with TestClient(assemble(container)) as client:
        assert client.get("/readyz").status_code == 200
        container.databases.dispose()
        if settings.database_url:
            from sqlalchemy import create_engine, text
            from sqlalchemy.engine import make_url

            url = make_url(settings.database_url)
            admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{url.database}" WITH (FORCE)'))
            admin.dispose()
        else:
            shutil.rmtree(settings.data_dir)
            settings.data_dir.write_text("not a directory")  # SQLite cannot open files in it
        response = client.get("/readyz")
        if not settings.database_url:
            settings.data_dir.unlink()
            settings.data_dir.mkdir()  # let the lifespan's shutdown find a directory
    assert response.status_code == 503
    assert response.json()["checks"]["database.registry"] == "failed"


def test_an_unreadable_key_source_is_not_ready(settings: Settings, tmp_path: Path) -> None:
    keys = tmp_path / "own-keys"
    container = build_container(settings.model_copy(update={"key_dir": keys}))
    try:
        client = TestClient(assemble(container))
        assert client.get("/readyz").json()["checks"]["keys"] == "ok"
        keys.rename(tmp_path / "moved-away")
        response = client.get("/readyz")
    finally:
        container.close()
    assert response.status_code == 503
    assert response.json()["checks"]["keys"] == "failed"
    assert str(keys) not in response.text


def test_the_listeners_tls_is_checked(container: Container, tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    tls.init_ca(ca)
    tls.issue(ca, "core", tmp_path / "core", ips=["127.0.0.1"])
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        ListenerTls("mutual", tmp_path / "core"): (INFRASTRUCTURE, 200),
        ListenerTls("server", tmp_path / "core"): (PUBLIC, 200),
        ListenerTls("proxy"): (PUBLIC, 200),
        ListenerTls("mutual", empty): (INFRASTRUCTURE, 503),
        ListenerTls("server", empty): (PUBLIC, 503),
    }
    for listener_tls, (listener, status) in cases.items():
        client = TestClient(assemble(container, "all", listener, tls=listener_tls))
        response = client.get("/readyz")
        assert response.status_code == status, listener_tls
        assert response.json()["checks"]["tls"] == ("ok" if status == 200 else "failed")
        assert str(tmp_path) not in response.text


def test_check_usable_refuses_expired_and_mismatched_certificates(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    tls.init_ca(ca)
    issued = tls.issue(ca, "svc", tmp_path / "svc", ips=["127.0.0.1"], days=1)
    tls.check_usable(issued.directory, mutual=True)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    with pytest.raises(tls.TlsError, match="not valid now"):
        tls.check_usable(issued.directory, mutual=True, now=later)
    other = tls.issue(ca, "other", tmp_path / "other", ips=["127.0.0.1"])
    shutil.copy(other.key, issued.key)
    with pytest.raises(tls.TlsError, match="does not belong"):
        tls.check_usable(issued.directory, mutual=False)


def test_the_intermediate_role_checks_only_its_database(container: Container) -> None:
    response = TestClient(assemble(container, "intermediate")).get("/readyz")
    assert response.status_code == 200
    assert [name for name in response.json()["checks"] if name.startswith("database.")] == [
        "database.agencies"]


def test_metrics_show_each_outbox_and_its_subscribers(container: Container) -> None:
    from mynumber.accounts.interfaces import BankAccount, Route
    from tests.conftest import make_staff, new_resident

    clerk = make_staff(container, "metrics-clerk", "131041", StaffRole.CLERK)
    details = new_resident()
    resident = container.registry.register_birth(clerk, details, details.birth_date)
    container.accounts.register(resident.id, BankAccount("8001", "101", "ordinary", "1234567",
                                                     "ﾔﾏﾀﾞ ﾀﾛｳ"),
                                Route.TAX_RETURN, actor="agency:national_tax_agency")
    client = TestClient(assemble(container, "all", INFRASTRUCTURE))

    before = client.get("/metrics").text
    assert 'mynumber_events_head{outbox="registry"}' in before
    assert ('mynumber_events_pending{outbox="accounts",subscriber="digital_agency_codes"} 1'
            in before)
    assert 'mynumber_events_pending{outbox="accounts",subscriber="notices"} 1' in before
    assert 'mynumber_events_failing{outbox="registry",subscriber="jpki.certificates"} 0' in before
    container.dispatcher("accounts").drain()
    after = client.get("/metrics").text
    assert 'mynumber_events_head{outbox="accounts"} 1' in after
    assert ('mynumber_events_pending{outbox="accounts",subscriber="digital_agency_codes"} 0'
            in after)

"""API clients (API利用者): registration rules, vetting states with actor and reason, rate
limits, monitoring, and the admin JSON API for デジタル庁 staff."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffRole
from mynumber.keys import KeyError_
from mynumber.portal.interfaces import (
    ClientNotFound,
    ClientRecord,
    ClientState,
    ClientStateConflict,
    InvalidClient,
)
from mynumber.portal.oauth import SIGNING_KEY_FILE, load_signing_key, provision_signing_key
from mynumber.settings import Settings
from tests.conftest import SHINJUKU, cli_env

GOOD = ["https://kakeibo.example.jp/callback", "http://127.0.0.1:8765/callback",
        "http://[::1]:9000/cb", "http://localhost/cb", "https://rp.example.jp/cb?app=1"]


def _register(container: Container, uris: list[str] | None = None,
              scopes: list[str] | None = None) -> ClientRecord:
    return container.api_clients.register("家計簿アプリ", "株式会社テスト", "dev@example.jp",
                                          uris or [GOOD[0]], scopes or ["basic_four", "income"])


def test_registration_applies_and_shows_the_secret_once(container: Container) -> None:
    record = _register(container, GOOD, ["basic_four", "income", "openid"])
    assert record.state is ClientState.APPLIED and record.client_secret
    assert record.redirect_uris == tuple(GOOD)
    assert record.scopes == ("basic_four", "income")  # openid is implied, not an item
    again = container.api_clients.client(record.client_id)
    assert again.client_secret is None
    with container.databases.unit_of_work("portal") as session:
        stored = session.execute(text("SELECT secret_hash FROM oidc_clients WHERE client_id = :c"),
                                 {"c": record.client_id}).scalar_one()
    assert stored == hashlib.sha256(record.client_secret.encode()).hexdigest()
    assert record.client_secret not in stored


@pytest.mark.parametrize("uri", [
    "http://kakeibo.example.jp/callback",  # http off loopback
    "https://kakeibo.example.jp/cb#frag",  # fragment
    "https://*.example.jp/cb",  # wildcard
    "https://user:pw@kakeibo.example.jp/cb",  # user information
    "https://user@kakeibo.example.jp/cb",
    "/callback",  # relative
    "kakeibo://callback",  # custom scheme
    "javascript:alert(1)",
    "https://kakeibo.example.jp/c b",
    "http://127.0.0.1.evil.example/cb",
    "http://0x7f.1/cb",
    "https://",
])
def test_redirect_uri_rules(container: Container, uri: str) -> None:
    with pytest.raises(InvalidClient) as refused:
        _register(container, [uri])
    assert refused.value.field == "redirect_uris"


def test_at_most_ten_redirect_uris_and_only_known_item_scopes(container: Container) -> None:
    many = [f"https://rp.example.jp/cb{i}" for i in range(11)]
    with pytest.raises(InvalidClient):
        _register(container, many)
    assert len(_register(container, many[:10]).redirect_uris) == 10
    for scopes in (["everything"], ["openid"], ["income", "number"]):
        with pytest.raises(InvalidClient) as refused:
            _register(container, scopes=scopes)
        assert refused.value.field == "scopes"


def test_state_transitions_are_recorded_with_actor_and_reason(container: Container) -> None:
    clients = container.api_clients
    record = _register(container)
    with pytest.raises(ClientStateConflict):
        clients.set_state("staff:1", record.client_id, ClientState.SUSPENDED, "not yet")
    path = [(ClientState.APPROVED, "vetted"), (ClientState.SUSPENDED, "complaint"),
            (ClientState.APPROVED, "fixed"), (ClientState.RETIRED, "closed")]
    for state, reason in path:
        changed = clients.set_state("staff:7", record.client_id, state, reason)
        assert changed.state is state and changed.state_reason == reason
    for state in ClientState:
        with pytest.raises(ClientStateConflict):
            clients.set_state("staff:7", record.client_id, state, "retired is final")
    with container.databases.unit_of_work("portal") as session:
        rows = session.execute(text(
            "SELECT actor, reason, details FROM audit_events WHERE tag = 'portal:client:state' "
            "AND subject = :c ORDER BY id"), {"c": record.client_id}).all()
    assert [(r.actor, r.reason) for r in rows] == [("staff:7", reason) for _, reason in path]
    applied = _register(container)
    assert clients.set_state("staff:1", applied.client_id, ClientState.RETIRED,
                             "withdrawn").state is ClientState.RETIRED
    assert [c.client_id for c in clients.clients(ClientState.RETIRED)] == [
        record.client_id, applied.client_id]


def test_rate_limit_bounds(container: Container) -> None:
    record = _register(container)
    assert container.api_clients.set_rate_limit("staff:1", record.client_id,
                                                 120).rate_limit_per_minute == 120
    for bad in (0, -1, 1_000_001):
        with pytest.raises(InvalidClient):
            container.api_clients.set_rate_limit("staff:1", record.client_id, bad)


def test_monitoring_of_a_quiet_client(container: Container) -> None:
    record = _register(container)
    watch = container.api_clients.monitoring(record.client_id)
    assert (watch.requests, watch.releases, watch.refusals, watch.rate_limited,
            watch.anomalies, watch.distinct_subjects) == (0, 0, 0, 0, 0, 0)
    assert watch.last_request_at is None and watch.state is ClientState.APPLIED


# --- the admin JSON API ---------------------------------------------------------------------------


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as client:
        yield client


def _staff(container: Container, username: str, role: StaffRole) -> dict[str, str]:
    secret = pyotp.random_base32()
    password = "password-for-" + username
    container.staff_auth.create_staff(username, username, SHINJUKU, role, password,
                                      totp_secret=secret)
    token = container.staff_auth.login(username, password, pyotp.TOTP(secret).now())
    return {"Authorization": f"Bearer {token}"}


def test_admin_api_apply_vet_and_monitor(api: TestClient, container: Container) -> None:
    body = {"name": "家計簿アプリ", "organisation": "株式会社テスト", "contact": "dev@example.jp",
            "redirect_uris": ["https://kakeibo.example.jp/callback"], "scopes": ["income"]}
    applied = api.post("/api/v1/portal/clients", json=body)
    assert applied.status_code == 201 and applied.json()["client_secret"]
    client_id = applied.json()["client_id"]
    bad = api.post("/api/v1/portal/clients", json={**body, "redirect_uris": ["http://x.jp/cb"]})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_client_registration"

    base = f"/api/v1/portal/clients/{client_id}"
    assert api.get("/api/v1/portal/clients").status_code == 401
    clerk = _staff(container, "c1", StaffRole.CLERK)
    assert api.post(f"{base}/state", json={"state": "approved", "reason": "ok"},
                    headers=clerk).json()["code"] == "forbidden"
    admin = _staff(container, "a1", StaffRole.ADMIN)
    listed = api.get("/api/v1/portal/clients?state=applied", headers=admin).json()
    assert [c["client_id"] for c in listed["items"]] == [client_id]
    assert "client_secret" not in listed["items"][0]
    approved = api.post(f"{base}/state", json={"state": "approved", "reason": "vetted"},
                        headers=admin)
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    conflict = api.post(f"{base}/state", json={"state": "approved", "reason": "again"},
                        headers=admin)
    assert conflict.status_code == 409 and conflict.json()["code"] == "client_state_conflict"
    limited = api.post(f"{base}/rate-limit", json={"per_minute": 30}, headers=admin)
    assert limited.json()["rate_limit_per_minute"] == 30
    watch = api.get(f"{base}/monitoring", headers=admin).json()
    assert watch["state"] == "approved" and watch["requests"] == 0
    missing = api.get("/api/v1/portal/clients/mnc_nobody", headers=admin)
    assert missing.status_code == 404 and missing.json()["code"] == "client_not_found"


def test_the_signing_key_is_never_created_silently_in_production(tmp_path: Path) -> None:
    with pytest.raises(KeyError_):
        load_signing_key(tmp_path, development=False)
    assert not (tmp_path / SIGNING_KEY_FILE).exists()
    key = load_signing_key(tmp_path, development=True)  # the embedded mode creates one
    assert (tmp_path / SIGNING_KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert load_signing_key(tmp_path, development=True).kid == key.kid  # and keeps it
    with pytest.raises(KeyError_):
        load_signing_key(tmp_path, development=False)  # a development key: refused
    production = tmp_path / "prod"
    provision_signing_key(production, development=False)
    assert load_signing_key(production, development=False).kid


def test_a_municipal_supervisor_may_not_vet_api_clients(api: TestClient,
                                                        container: Container) -> None:
    """Vetting is for デジタル庁 operators (admin): a city's supervisor gets 403 everywhere and
    changes nothing."""
    record = _register(container)
    base = f"/api/v1/portal/clients/{record.client_id}"
    supervisor = _staff(container, "s1", StaffRole.SUPERVISOR)
    attempts = [
        api.get("/api/v1/portal/clients", headers=supervisor),
        api.get(base, headers=supervisor),
        api.post(f"{base}/state", json={"state": "approved", "reason": "looks fine"},
                 headers=supervisor),
        api.post(f"{base}/rate-limit", json={"per_minute": 5}, headers=supervisor),
        api.get(f"{base}/monitoring", headers=supervisor),
    ]
    for refused in attempts:
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        assert "admin" in refused.json()["detail"]
    unchanged = container.api_clients.client(record.client_id)
    assert unchanged.state is ClientState.APPLIED
    assert unchanged.rate_limit_per_minute == 600
    admin = _staff(container, "a1", StaffRole.ADMIN)
    assert api.post(f"{base}/state", json={"state": "approved", "reason": "vetted"},
                    headers=admin).json()["state"] == "approved"


def test_a_retired_client_can_be_reactivated_by_an_admin_with_an_audit_record(
    api: TestClient, container: Container,
) -> None:
    """One admin call used to retire a client for good (issue 10). Retirement now has a way
    back: reactivation (admin only, audited) returns it to ``suspended``, and a second,
    separate approval lets it serve again."""
    record = _register(container)
    base = f"/api/v1/portal/clients/{record.client_id}"
    admin = _staff(container, "a1", StaffRole.ADMIN)
    supervisor = _staff(container, "s1", StaffRole.SUPERVISOR)
    for state in ("approved", "retired"):
        assert api.post(f"{base}/state", json={"state": state, "reason": "r"},
                        headers=admin).json()["state"] == state
    refused = api.post(f"{base}/reactivate", json={"reason": "mistake"}, headers=supervisor)
    assert refused.status_code == 403
    back = api.post(f"{base}/reactivate", json={"reason": "retired by mistake"},
                    headers=admin)
    assert back.status_code == 200 and back.json()["state"] == "suspended"
    again = api.post(f"{base}/reactivate", json={"reason": "twice"}, headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "client_state_conflict"
    assert api.post(f"{base}/state", json={"state": "approved", "reason": "vetted again"},
                    headers=admin).json()["state"] == "approved"
    with container.databases.unit_of_work("portal") as session:
        rows = session.execute(text(
            "SELECT actor, reason FROM audit_events WHERE tag = 'portal:client:reactivate' "
            "AND subject = :c"), {"c": record.client_id}).all()
    assert [r.reason for r in rows] == ["retired by mistake"] and rows[0].actor != "cli"


def test_concurrent_state_changes_of_one_client_cannot_both_pass(container: Container) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    clients = container.api_clients
    record = _register(container)
    clients.set_state("staff:1", record.client_id, ClientState.APPROVED, "vetted")
    threads = 12
    barrier = threading.Barrier(threads)

    def change(i: int) -> str:
        barrier.wait()
        target = ClientState.RETIRED if i % 2 else ClientState.SUSPENDED
        try:
            return clients.set_state(f"staff:{i}", record.client_id, target, "race").state.value
        except ClientStateConflict:
            return "conflict"

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(change, range(threads)))
    won = [o for o in outcomes if o != "conflict"]
    # approved -> suspended -> retired is a legal chain, so at most two changes pass, each
    # from the state the other left; never two from ``approved``.
    from sqlalchemy import select

    from mynumber.portal.models import AuditEvent

    with container.databases.unit_of_work("portal") as session:
        moves = session.scalars(select(AuditEvent.details).where(
            AuditEvent.tag == "portal:client:state", AuditEvent.subject == record.client_id,
            AuditEvent.reason == "race")).all()
    assert len(moves) == len(won) <= 2
    assert [m["from_state"] for m in moves].count("approved") == 1


def test_a_lost_secret_is_replaced_and_the_old_one_stops_working(container: Container) -> None:
    record = _register(container)
    container.api_clients.set_state("admin", record.client_id, ClientState.APPROVED, "vetted")
    old = record.client_secret
    assert old is not None
    client = container.oidc.oauth_client(record.client_id)
    assert client is not None and client.check_client_secret(old)
    rotated = container.api_clients.rotate_secret("admin", record.client_id, "secret lost")
    assert rotated.client_secret and rotated.client_secret != old
    client = container.oidc.oauth_client(record.client_id)
    assert client is not None
    assert not client.check_client_secret(old)
    assert client.check_client_secret(rotated.client_secret)
    with container.databases.unit_of_work("portal") as session:
        actions = session.execute(text(
            "SELECT tag FROM audit_events WHERE subject = :c"),
            {"c": record.client_id}).scalars().all()
    assert "portal:client:secret" in actions
    with pytest.raises(ClientNotFound):
        container.api_clients.rotate_secret("admin", "mnc_unknown", "lost")


def test_the_cli_prints_a_new_secret_once(container: Container, settings: Settings) -> None:
    from typer.testing import CliRunner

    from mynumber.cli import app

    record = _register(container)
    result = CliRunner().invoke(app, ["api-clients", "rotate-secret", record.client_id,
                                      "--reason", "lost"], env=cli_env(settings))
    assert result.exit_code == 0, result.output
    secret = next(line.split(": ", 1)[1] for line in result.output.splitlines()
                  if line.startswith("client_secret: "))
    assert secret != record.client_secret
    with container.databases.unit_of_work("portal") as session:
        stored = session.execute(text("SELECT secret_hash FROM oidc_clients WHERE client_id = :c"),
                                 {"c": record.client_id}).scalar_one()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    unknown = CliRunner().invoke(app, ["api-clients", "rotate-secret", "mnc_nobody"],
                                 env=cli_env(settings))
    assert unknown.exit_code != 0 and "no API client" in unknown.output

"""The public and the infrastructure listener (issue 11 item 4): which routes each serves,
once-per-process start-up and shut-down, and what `mynumber serve` refuses to start.

The TLS side (client certificates, OCSP through the public listener with openssl) is in
tests/e2e/test_mtls_services.py; here the split itself, in-process and with one real
`mynumber serve` process holding two plain-HTTP listeners."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from mynumber import tls
from mynumber.app import Container
from mynumber.cli import app as cli
from mynumber.settings import Settings
from mynumber.web.assemble import (
    EVERY,
    INFRASTRUCTURE,
    PUBLIC,
    ROLE_LISTENERS,
    ROLES,
    UnplacedRoute,
    _effective_routes,
    assemble,
    assemble_listeners,
    placement,
)

runner = CliRunner()
CITY = "municipality-131041"


def _routes(application: object) -> set[tuple[str, tuple[str, ...]]]:
    return {(r.path, tuple(sorted(r.methods or ()))) for r in _effective_routes(application)}  # type: ignore[arg-type]


# --- the split ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "methods", "where"), [
    ("/portal/login", {"GET"}, PUBLIC),
    ("/oauth/token", {"POST"}, PUBLIC),
    ("/.well-known/openid-configuration", {"GET"}, PUBLIC),
    ("/card/lost", {"POST"}, PUBLIC),
    ("/api/v1/card/loss-reports", {"POST"}, PUBLIC),
    ("/jpki/ocsp/{label}", {"POST"}, PUBLIC),
    ("/jpki/crl/{label}.crl", {"GET"}, PUBLIC),
    ("/jpki/ca/{kind}.pem", {"GET"}, PUBLIC),
    ("/log/v1/get-sth", {"GET"}, PUBLIC),
    ("/api/v1/portal/clients", {"POST"}, PUBLIC),  # an applicant applies
    ("/api/v1/portal/clients", {"GET"}, INFRASTRUCTURE),  # staff vet
    ("/api/v1/portal/notices", {"POST"}, INFRASTRUCTURE),  # agencies
    ("/api/v1/portal/proxies", {"POST"}, INFRASTRUCTURE),  # counter staff
    ("/api/v1/network/exchanges", {"POST"}, INFRASTRUCTURE),
    ("/agencies/v1/routed-queries", {"POST"}, INFRASTRUCTURE),
    ("/api/v1/jpki/relying-parties", {"POST"}, INFRASTRUCTURE),
    ("/api/v1/registry/staff/login", {"POST"}, INFRASTRUCTURE),
    ("/counter/portal/proxies", {"GET"}, INFRASTRUCTURE),
    ("/counter/cards", {"GET"}, INFRASTRUCTURE),
    ("/healthz", {"GET"}, EVERY),
    ("/readyz", {"GET"}, EVERY),
])
def test_placement(path: str, methods: set[str], where: str) -> None:
    assert placement(path, frozenset(methods)) == where


def test_a_route_nobody_placed_is_refused() -> None:
    with pytest.raises(UnplacedRoute, match="PLACEMENTS"):
        placement("/something/new")
    # A prefix is a path segment, not a string prefix.
    with pytest.raises(UnplacedRoute):
        placement("/portalx")


def test_each_role_splits_its_routes_between_its_listeners(container: Container) -> None:
    """Per role: the listeners share only health, static files and the API description;
    together they serve exactly what the single embedded listener serves."""
    for role in ROLES:
        both = _routes(assemble(container, role))
        apps = {name: _routes(app) for name, app in
                assemble_listeners(container, role).items()}
        assert set(apps) == set(ROLE_LISTENERS[role])
        assert set().union(*apps.values()) == both, role
        if len(apps) == 2:
            shared = apps[PUBLIC] & apps[INFRASTRUCTURE]
            assert {path for path, _ in shared} == {
                "/healthz", "/readyz", "/static", "/openapi.json", "/docs",
                "/docs/oauth2-redirect", "/redoc"}, role
        for name, routes in apps.items():
            for path, methods in routes:
                assert placement(path, frozenset(methods)) in (name, EVERY), (role, path)
    portal = {path for path, _ in _routes(assemble(container, "portal"))}
    assert "/portal/login" in portal and "/oauth/token" in portal
    # The portal role leaves the CRL, OCSP and the log's API to the core.
    assert not any(p.startswith(("/jpki/", "/log/", "/counter", "/api/v1/network"))
                   for p in portal)
    intermediate = {path for path, _ in _routes(assemble(container, "intermediate"))}
    assert "/agencies/v1/routed-queries" in intermediate and "/portal/login" not in intermediate
    # The agencies' back office is served by the core (it needs the registry and the network),
    # not by an intermediate server; the core does not answer routed queries.
    assert "/agencies/v1/persons" not in intermediate
    core = {path for path, _ in _routes(assemble(container, "core"))}
    assert {"/agencies/v1/persons", "/agencies/v1/copies"} <= core
    assert "/agencies/v1/routed-queries" not in core
    with pytest.raises(ValueError, match="no public listener"):
        assemble(container, "intermediate", PUBLIC)


def test_a_router_on_the_other_listener_answers_404(container: Container) -> None:
    apps = assemble_listeners(container, "all")
    with TestClient(apps[PUBLIC]) as public, TestClient(apps[INFRASTRUCTURE]) as infra:
        assert public.get("/portal/login").status_code == 200
        assert infra.get("/portal/login").status_code == 404
        assert public.get("/log/checkpoint").status_code == 200
        assert infra.get("/log/checkpoint").status_code == 404
        assert infra.get("/api/v1/network/agencies/mhlw").status_code == 200
        assert public.get("/api/v1/network/agencies/mhlw").status_code == 404
        assert public.post("/api/v1/network/exchanges", json={}).status_code == 404
        assert infra.get("/counter/login").status_code == 200
        assert public.get("/counter/login").status_code == 404
        for client in (public, infra):
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 200
        # Each listener describes only its own API.
        public_paths = set(public.get("/openapi.json").json()["paths"])
        infra_paths = set(infra.get("/openapi.json").json()["paths"])
        assert "/api/v1/network/exchanges" in infra_paths - public_paths
        assert "/log/v1/get-sth" in public_paths - infra_paths


def test_the_sequencer_and_close_run_once_per_process(container: Container) -> None:
    """Two apps, one container: the sequencer starts with the first app and stops with the
    last; the container closes once, after both."""
    closed: list[int] = []
    original = container.close
    def close() -> None:
        closed.append(1)
        original()

    container.close = close  # type: ignore[method-assign]
    apps = assemble_listeners(container, "core")
    lifecycle = apps[PUBLIC].state.lifecycle
    assert lifecycle is apps[INFRASTRUCTURE].state.lifecycle
    with TestClient(apps[PUBLIC]) as public:
        first = lifecycle.sequencer
        assert first is not None
        with TestClient(apps[INFRASTRUCTURE]) as infra:
            assert lifecycle.sequencer is first and lifecycle.users == 2
            assert infra.get("/readyz").status_code == 200
        assert closed == [] and lifecycle.sequencer is first  # one app still serves
        assert public.get("/readyz").json()["status"] == "ready"
    assert closed == [1] and lifecycle.sequencer is None


# --- `mynumber serve` ---------------------------------------------------------------------------


def _env(settings: Settings | None = None, /, **extra: str) -> dict[str, str | None]:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MYNUMBER_")}
    if settings is not None:
        env["MYNUMBER_DATA_DIR"] = str(settings.data_dir)
        env["MYNUMBER_KEY_DIR"] = str(settings.keys_path)
        if settings.database_url:
            env["MYNUMBER_DATABASE_URL"] = settings.database_url
    env.update(extra)
    return env


def _serve(env: dict[str, str | None], *args: str) -> Result:
    return runner.invoke(cli, ["serve", *args], env=env)


def test_the_tls_dir_option_is_gone_and_says_what_to_set(tmp_path: Path) -> None:
    result = _serve(_env(MYNUMBER_DATA_DIR=str(tmp_path)), "--tls-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "MYNUMBER_TLS_DIR" in result.output and "Traceback" not in result.output


def test_production_refuses_listeners_without_tls(tmp_path: Path) -> None:
    """Checked from the settings alone, before any database or key is touched."""
    production = {"MYNUMBER_MODE": "production", "MYNUMBER_DATA_DIR": str(tmp_path)}
    no_tls = _serve(_env(**production), "--role", "core")
    assert no_tls.exit_code == 1
    assert "MYNUMBER_TLS_DIR" in no_tls.output and "mutual" in no_tls.output
    assert "MYNUMBER_PUBLIC_TLS_DIR" in no_tls.output  # both named at once
    ca = tmp_path / "ca"
    tls.init_ca(ca)
    tls.issue(ca, "core", tmp_path / "core", ips=["127.0.0.1"])
    no_public_tls = _serve(_env(**production, MYNUMBER_TLS_DIR=str(tmp_path / "core")),
                           "--role", "core")
    assert no_public_tls.exit_code == 1
    assert "MYNUMBER_PUBLIC_TLS_DIR" in no_public_tls.output
    assert "--public-plain-http" in no_public_tls.output
    # The intermediate role has no public listener: nothing asked about public TLS (it
    # goes on to the next check, the production database URL).
    intermediate = _serve(_env(**production, MYNUMBER_TLS_DIR=str(tmp_path / "core")),
                          "--role", "intermediate")
    assert intermediate.exit_code != 0
    assert "PUBLIC_TLS" not in intermediate.output and "--public-plain-http" not in \
        intermediate.output


def test_serve_refuses_unusable_tls_settings(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _serve(_env(MYNUMBER_DATA_DIR=str(tmp_path), MYNUMBER_TLS_DIR=str(empty)))
    assert result.exit_code == 1
    assert "MYNUMBER_TLS_DIR" in result.output and "cert.pem" in result.output
    both = _serve(_env(MYNUMBER_DATA_DIR=str(tmp_path), MYNUMBER_PUBLIC_TLS_DIR=str(empty)),
                  "--public-plain-http")
    assert both.exit_code == 1 and "contradicts" in both.output
    same = _serve(_env(MYNUMBER_DATA_DIR=str(tmp_path)), "--public-port", "18080",
                  "--infra-port", "18080")
    assert same.exit_code == 1 and "different ports" in same.output


def test_a_remote_endpoint_without_a_client_certificate_refuses_start_up(
        settings: Settings, container: Container) -> None:
    container.network.set_agency_endpoint(CITY, "https://chukan.example.lg.jp:9443")
    container.close()
    for role in ("core", "portal"):  # the portal's self-information exchanges call out too
        result = _serve(_env(settings), "--role", role)
        assert result.exit_code == 1, (role, result.output)
        assert "MYNUMBER_TLS_DIR" in result.output and CITY in result.output
        assert "set-endpoint" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_one_process_serves_two_listeners_and_stops_both_on_sigterm(
        settings: Settings, container: Container) -> None:
    """Embedded mode with both ports given: two plain-HTTP listeners, one process, one
    shutdown (exit 0 on SIGTERM, each app's shutdown complete)."""
    container.close()
    public_port = _free_port()
    infra_port = _free_port()
    while infra_port == public_port:
        infra_port = _free_port()
    env = {k: v for k, v in _env(settings).items() if v is not None}
    env.update({k: v for k, v in os.environ.items() if not k.startswith("MYNUMBER_")})
    output = settings.data_dir.parent / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "mynumber", "serve", "--role", "all", "--host", "127.0.0.1",
         "--public-port", str(public_port), "--infra-port", str(infra_port)],
        env=env, stdout=output.open("wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        for port in (public_port, infra_port):
            while True:
                assert process.poll() is None, output.read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).is_success:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, output.read_text()
                time.sleep(0.1)
        public = httpx.Client(base_url=f"http://127.0.0.1:{public_port}", timeout=10)
        infra = httpx.Client(base_url=f"http://127.0.0.1:{infra_port}", timeout=10)
        with public, infra:
            assert public.get("/portal/login").status_code == 200
            assert infra.get("/portal/login").status_code == 404
            assert infra.get("/api/v1/network/agencies/mhlw").status_code == 200
            assert public.get("/api/v1/network/agencies/mhlw").status_code == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, output.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    log = output.read_text()
    assert log.count("Application shutdown complete") == 2, log
    assert "Traceback" not in log

"""The production shape: the network core and an intermediate server (中間サーバー) as two
separate ASGI services (``mynumber serve --role core|intermediate`` subprocesses on loopback),
talking HTTPS with mutual TLS and certificates from the project's own CA (``mynumber tls``).
TLS is set once per service, in the environment: MYNUMBER_TLS_DIR (the infrastructure
listener's mutual TLS and the core's client certificate) and, for the core,
MYNUMBER_PUBLIC_TLS_DIR (its public listener: portal, OIDC, CRL/OCSP, the log's auditor API,
server-authenticated only).

Always on SQLite, whatever backend the rest of the suite uses: both services share one
temporary MYNUMBER_DATA_DIR (one SQLite file per context, WAL), which is what this test is
about — two processes, one deployment — and it needs no database server."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import os
import secrets
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from sqlalchemy import text
from typer.testing import CliRunner

from mynumber import envelope, tls
from mynumber.app import build_container
from mynumber.auth.interfaces import StaffRole
from mynumber.cli import app as cli
from mynumber.network.interfaces import ExchangeQuery
from mynumber.network.legal_table import load_legal_table
from mynumber.settings import Settings
from tests.conftest import SHINJUKU, make_staff, new_resident

REQUESTER = "mhlw"  # 厚生労働大臣 (mhlw_minister)
PROVIDER = "municipality-131041"  # 新宿区長 (special_ward_mayor)
UNREACHABLE = "municipality-131130"  # 渋谷区長: its endpoint is a port nobody listens on
TASK = "bekkyo2-1"
ITEM = "local_tax"
PAYLOAD = {"taxable_income": 4_200_000, "year": 2025}
EXCHANGES = "/api/v1/network/exchanges"
ROUTED = "/agencies/v1/routed-queries"
STARTUP_SECONDS = 60.0  # a deadline, not a wait: generous for a loaded machine

runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli(env: dict[str, str], *args: str) -> str:
    # CliRunner only overlays ``env`` on this process's environment: unset the rest.
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MYNUMBER_")}
    result = runner.invoke(cli, list(args), env={**unset, **env})
    assert result.exit_code == 0, result.output
    return result.output


def _settings(data: Path) -> Settings:
    """The services' settings, immune to any MYNUMBER_* variable of the test run."""
    return Settings(data_dir=data, database_url=None, key_dir=None, tls_dir=None)


@dataclass
class Service:
    name: str
    port: int  # the infrastructure listener (mutual TLS)
    public_port: int | None  # the public listener (server-authenticated TLS), if the role has one
    process: subprocess.Popen[bytes]
    output: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def public_url(self) -> str:
        assert self.public_port is not None
        return f"https://localhost:{self.public_port}"

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Deployment:
    root: Path
    env: dict[str, str]
    core: Service
    intermediate: Service
    ca: Path  # the project CA's certificate
    public_ca: Path  # what residents trust for the public listener
    requester_tls: Path
    stranger_tls: Path  # a certificate from another CA
    agency_code: str  # the requester's 機関別符号 for the person
    requester_keys: Any
    provider_signing_key: bytes


def _serve(name: str, role: str, env: dict[str, str], root: Path, *,
           tls_dir: Path | None, public_tls_dir: Path | None = None) -> Service:
    """``mynumber serve`` with TLS from the environment only (no TLS option exists)."""
    port = _free_port()
    public_port = None
    while role != "intermediate" and public_port in (None, port):
        public_port = _free_port()
    output = root / f"{name}.log"
    env = dict(env)
    if tls_dir is not None:
        env["MYNUMBER_TLS_DIR"] = str(tls_dir)
    if public_tls_dir is not None:
        env["MYNUMBER_PUBLIC_TLS_DIR"] = str(public_tls_dir)
    args = [sys.executable, "-m", "mynumber", "serve", "--role", role, "--host", "127.0.0.1",
            "--infra-port", str(port)]
    if public_port is not None:
        args += ["--public-port", str(public_port)]
    process = subprocess.Popen(args, env=env, stdout=output.open("wb"),
                               stderr=subprocess.STDOUT)
    return Service(name, port, public_port, process, output)


def _start(name: str, role: str, tls_dir: Path, env: dict[str, str], root: Path,
           public_tls_dir: Path | None = None) -> Service:
    return _serve(name, role, env, root, tls_dir=tls_dir, public_tls_dir=public_tls_dir)


def _wait_ready(service: Service, context: ssl.SSLContext, deadline: float,
                public_ca: Path | None = None) -> None:
    """Until /readyz answers 200 on every listener of the service (the public one without a
    client certificate)."""
    probes = [(f"{service.url}/readyz", context)]
    if service.public_port is not None:
        assert public_ca is not None
        probes.append((f"{service.public_url}/readyz", ssl.create_default_context(
            cafile=str(public_ca))))
    while probes:
        if service.process.poll() is not None:
            pytest.fail(f"{service.name} exited with {service.process.returncode}:\n"
                        f"{service.log()}")
        url, verify = probes[0]
        try:
            response = httpx.get(url, verify=verify, timeout=2)
            if response.status_code == 200:
                assert response.json()["status"] == "ready"
                probes.pop(0)
                continue
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{service.name} did not start in time:\n{service.log()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("mtls")
    data = root / "data"
    # Only our own settings reach the services: SQLite in a private data directory.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYNUMBER_")}
    env["MYNUMBER_DATA_DIR"] = str(data)

    # The operator's steps, through the command line.
    _cli(env, "db", "upgrade")  # migrate, load municipalities, sync the directory
    _cli(env, "tls", "init-ca")
    for name in ("core", "intermediate", "requester", "public"):
        _cli(env, "tls", "issue", name, "--out", str(root / name), "--dns", "localhost",
             "--ip", "127.0.0.1")
    stranger_ca = root / "stranger-ca"
    tls.init_ca(stranger_ca, common_name="not the mynumber CA")
    tls.issue(stranger_ca, "stranger", root / "stranger", ips=["127.0.0.1"])

    # An agency's data, in-process: a resident, enrolled with both agencies, and a 副本.
    settings = _settings(data)
    container = build_container(settings)
    try:
        clerk = make_staff(container, "mtls-clerk", SHINJUKU, StaffRole.CLERK)
        resident = container.registry.register_birth(
            clerk, new_resident(birth_date=dt.date(1985, 6, 1)), dt.date(1985, 6, 1))
        number = container.registry.reveal_number(clerk, resident.id, "mtls e2e setup")
        agency_code = container.agencies.enrol_person(REQUESTER, "M-000001", number)
        container.agencies.enrol_person(PROVIDER, "C-000001", number)
        del number
        container.agencies.put_copy(PROVIDER, "C-000001", ITEM, PAYLOAD)
        requester_keys = container.agencies.keyring.keys(REQUESTER)
        provider_signing_key = container.agencies.keyring.keys(PROVIDER).signing_public
    finally:
        container.close()
    for agency in (REQUESTER, PROVIDER, UNREACHABLE):
        _cli(env, "network", "register-keys", agency)

    intermediate = _start("intermediate", "intermediate", root / "intermediate", env, root)
    _cli(env, "network", "set-endpoint", PROVIDER, intermediate.url)
    _cli(env, "network", "set-endpoint", UNREACHABLE, f"https://127.0.0.1:{_free_port()}")
    # The core's public listener: in real life a certificate from a public CA; here one from
    # the project CA, trusted by the "residents" below through public/ca.pem.
    core = _start("core", "core", root / "core", env, root, public_tls_dir=root / "public")
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        context = tls.client_context(root / "requester")
        _wait_ready(intermediate, context, deadline)
        _wait_ready(core, context, deadline, public_ca=root / "public" / "ca.pem")
        yield Deployment(root, env, core, intermediate, root / "requester" / "ca.pem",
                         root / "public" / "ca.pem", root / "requester", root / "stranger",
                         agency_code, requester_keys, provider_signing_key)
    finally:
        core.stop()
        intermediate.stop()


def _signed_query(d: Deployment, provider: str = PROVIDER) -> dict[str, Any]:
    unsigned = ExchangeQuery(
        requester_id=REQUESTER, task_id=TASK, provider_id=provider, item_code=ITEM,
        subject_code=d.agency_code, requested_at=dt.datetime.now(dt.UTC),
        nonce=secrets.token_urlsafe(16),
    )
    query = dataclasses.replace(
        unsigned, signature=d.requester_keys.signing.sign(unsigned.signed_bytes()))
    return {
        "requester_id": query.requester_id, "task_id": query.task_id,
        "provider_id": query.provider_id, "item_code": query.item_code,
        "subject_code": query.subject_code, "requested_at": query.requested_at.isoformat(),
        "nonce": query.nonce, "signature": base64.b64encode(query.signature).decode(),
    }


def _client(d: Deployment, base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, verify=tls.client_context(d.requester_tls),
                        timeout=10)


def _raw_get(port: int, context: ssl.SSLContext) -> bytes:
    """GET /healthz over a bare TLS socket (no HTTP client to retry or hide errors)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost",
                                 suppress_ragged_eofs=False) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            return conn.recv(4096)


def _context(ca: Path, cert_dir: Path | None, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = context.maximum_version = version
    if cert_dir is not None:
        context.load_cert_chain(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))
    return context


TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


def _assert_refused(port: int, ca: Path, cert_dir: Path | None) -> None:
    """The service refuses the client's certificate (or its absence). With TLS 1.2 the
    handshake itself fails; with TLS 1.3 the client's side of the handshake completes before
    the server checks the certificate and the server then drops the connection, so the
    failure surfaces on the first read. Either way not one HTTP byte comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _context(ca, cert_dir, TLS12).wrap_socket(raw, server_hostname="localhost")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _raw_get(port, _context(ca, cert_dir, TLS13))


def test_the_requesters_certificate_is_accepted_over_tls_12_and_13(
        deployment: Deployment) -> None:
    """The control for the refusals below: same sockets, same CA, a valid certificate."""
    d = deployment
    for service in (d.core, d.intermediate):
        for version in (TLS12, TLS13):
            answer = _raw_get(service.port, _context(d.ca, d.requester_tls, version))
            assert answer.startswith(b"HTTP/1.1 200"), answer[:80]


def test_the_pair_is_permitted_by_the_legal_table() -> None:
    table = load_legal_table()
    assert table.find("mhlw_minister", TASK, "special_ward_mayor", ITEM) is not None


def test_exchange_through_the_core_reaches_the_remote_intermediate_server(
        deployment: Deployment) -> None:
    d = deployment
    with _client(d, d.core.url) as client:
        response = client.post(EXCHANGES, json=_signed_query(d))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "provided" and body["sealed"]
    opened = envelope.open_sealed(
        base64.b64decode(body["sealed"]), d.requester_keys.encryption,
        d.provider_signing_key, envelope.info_for(body["serial"]))
    assert opened["data"] == PAYLOAD
    assert opened["serial"] == body["serial"] and opened["provider"] == PROVIDER
    # The core reached the provider over HTTPS: the intermediate service logged the call,
    # and it recorded the answer under the core's 処理通番.
    deadline = time.monotonic() + 5
    while f"POST {ROUTED}" not in d.intermediate.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"POST {ROUTED}" in d.intermediate.log()
    container = build_container(_settings(d.root / "data"))
    try:
        with container.databases.unit_of_work("agencies") as session:
            held = session.execute(
                text("SELECT held FROM answered_queries WHERE serial = :s"),
                {"s": body["serial"]}).scalar_one()
        assert held
    finally:
        container.close()


def test_a_client_without_a_certificate_cannot_connect(deployment: Deployment) -> None:
    d = deployment
    for service in (d.core, d.intermediate):
        _assert_refused(service.port, d.ca, None)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{service.url}/healthz", verify=_context(d.ca, None, TLS13), timeout=5)


def test_a_certificate_from_another_ca_is_refused(deployment: Deployment) -> None:
    d = deployment
    for service in (d.core, d.intermediate):
        _assert_refused(service.port, d.ca, d.stranger_tls)
    # And a client that trusts only the other CA does not accept the services' certificates.
    trusts_other = tls.client_context(d.stranger_tls)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{d.core.url}/healthz", verify=trusts_other, timeout=5)


def test_each_service_serves_only_its_role(deployment: Deployment) -> None:
    d = deployment
    with _client(d, d.core.url) as core, _client(d, d.intermediate.url) as intermediate:
        assert core.post(ROUTED, json={}).status_code == 404
        assert core.get("/api/v1/network/agencies/mhlw").status_code == 200
        assert intermediate.get("/api/v1/network/agencies/mhlw").status_code == 404
        assert intermediate.post(EXCHANGES, json=_signed_query(d)).status_code == 404
        assert core.get("/log/checkpoint").status_code == 404  # on the public listener
        assert intermediate.get("/log/checkpoint").status_code == 404
        assert intermediate.get("/").status_code == 404
        # The intermediate server's own route is there (an empty body is invalid input).
        assert intermediate.post(ROUTED, json={}).status_code == 422


def test_a_provider_whose_service_is_down_is_unavailable(deployment: Deployment) -> None:
    """The core does not fall back to its in-process server when the directory names an
    endpoint. An unreachable provider is an infrastructure failure (503, retry later), not
    the resident's refusal: nothing is recorded."""
    d = deployment
    with _client(d, d.core.url) as client:
        response = client.post(EXCHANGES, json=_signed_query(d, UNREACHABLE))
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "infrastructure_unavailable"
    assert response.json()["reason"] == "provider_unreachable"
    # ...because the HTTPS call failed (not, say, for want of the provider's keys).
    failures = [line for line in d.core.log().splitlines()
                if "provider_unreachable" in line and UNREACHABLE in line]
    assert failures, d.core.log()


# --- the two listeners -------------------------------------------------------------------------


def _resident_client(d: Deployment) -> httpx.Client:
    """What a resident's browser or an auditor has: trust in the public certificate, no
    client certificate."""
    return httpx.Client(base_url=d.core.public_url, timeout=10,
                        verify=ssl.create_default_context(cafile=str(d.public_ca)))


def test_the_public_listener_needs_no_client_certificate(deployment: Deployment) -> None:
    d = deployment
    with _resident_client(d) as client:
        login = client.get("/portal/login")
        assert login.status_code == 200 and "text/html" in login.headers["content-type"]
        assert client.get("/card/lost").status_code == 200
        assert client.get("/.well-known/openid-configuration").status_code == 200
        assert client.get("/log/checkpoint").status_code == 200
        assert client.get("/").status_code == 200
        ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["checks"]["tls"] == "ok"


def test_ocsp_and_the_crl_through_the_public_listener(deployment: Deployment) -> None:
    """What a relying party does with the URLs printed in every resident certificate."""
    d = deployment
    with _resident_client(d) as client:
        chain = client.get("/jpki/ca/auth.pem")
        assert chain.status_code == 200, chain.text
        crl = client.get("/jpki/crl/auth.crl")
    assert crl.status_code == 200
    issuer = x509.load_pem_x509_certificates(chain.content)[0]
    assert x509.load_der_x509_crl(crl.content).issuer == issuer.subject
    issuer_pem = d.root / "auth-ca.pem"
    issuer_pem.write_bytes(chain.content)
    # openssl's own OCSP client over HTTPS, trusting only the public certificate's CA and
    # presenting no client certificate (before the split it ended with "unexpected eof").
    result = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(issuer_pem), "-serial", "0x5a5a5a5a",
         "-url", f"{d.core.public_url}/jpki/ocsp/auth", "-CAfile", str(d.public_ca),
         "-noverify", "-no_nonce", "-respout", str(d.root / "ocsp.der")],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0x5a5a5a5a: unknown" in result.stdout.lower()
    answer = ocsp.load_der_ocsp_response((d.root / "ocsp.der").read_bytes())
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    # The same OCSP URL on the infrastructure port is not there, even with a certificate.
    with _client(d, d.core.url) as infrastructure:
        assert infrastructure.post("/jpki/ocsp/auth", content=b"x").status_code == 404


def test_exchanges_are_not_reachable_without_a_client_certificate(
        deployment: Deployment) -> None:
    d = deployment
    no_certificate = ssl.create_default_context(cafile=str(d.ca))
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{d.core.url}{EXCHANGES}", json=_signed_query(d), verify=no_certificate,
                   timeout=5)
    # ...and the public listener, which needs none, does not serve them at all.
    with _resident_client(d) as client:
        assert client.post(EXCHANGES, json=_signed_query(d)).status_code == 404


def test_each_listener_serves_only_its_routes(deployment: Deployment) -> None:
    d = deployment
    with _resident_client(d) as public, _client(d, d.core.url) as infrastructure:
        for path in ("/api/v1/network/agencies/mhlw", "/counter/login",
                     "/api/v1/registry/municipalities", "/api/v1/portal/clients/1"):
            assert public.get(path).status_code == 404, path
            assert infrastructure.get(path).status_code in (200, 401, 403), path
        for path in ("/portal/login", "/log/checkpoint", "/card/lost", "/jpki/crl/auth.crl",
                     "/.well-known/openid-configuration", "/"):
            assert infrastructure.get(path).status_code == 404, path
            assert public.get(path).status_code == 200, path
        assert public.post(ROUTED, json={}).status_code == 404
        for client in (public, infrastructure):  # health on both
            assert client.get("/healthz").json()["status"] == "ok"


def test_a_core_with_remote_endpoints_and_no_client_certificate_refuses_to_start(
        deployment: Deployment) -> None:
    """The directory names remote intermediate servers (set-endpoint above); without
    MYNUMBER_TLS_DIR every call would be a silent provider_unavailable."""
    d = deployment
    refused = _serve("core-without-tls", "core", d.env, d.root, tls_dir=None,
                     public_tls_dir=d.root / "public")
    try:
        refused.process.wait(timeout=STARTUP_SECONDS)
    finally:
        refused.stop()
    assert refused.process.returncode == 1, refused.log()
    log = refused.log()
    assert "MYNUMBER_TLS_DIR" in log and PROVIDER in log and "Started server" not in log

"""docs/deployment.md's production walk-through, run at small scale (issue 11 item 7).

Everything an operator types is a `mynumber` command run as its own process with only the
MYNUMBER_* settings of the host it is typed on:

- a PostgreSQL cluster of its own with durability on (fsync, synchronous_commit, full page
  writes), provisioned once with the administrator's URL (`mynumber db provision`): one login
  role per context, nothing else;
- keys by ceremony: the agency-code key and the JPKI CA on a SoftHSM2 token (PIN from a 0600
  file), the symmetric keys as production key files, each agency's keys made on its own host
  and registered at the core by their public half;
- three services as separate processes: the core (public listener: OCSP, CRL; mutual-TLS
  listener: exchanges, counter), an intermediate server (mutual TLS only, holding its agency
  keys and the core's public key), and the portal (public listener only, no numbering keys);
- a resident registered and given a card at the counter (tests/e2e/walkthrough_counter.py,
  the services the counter pages call), enrolled with two agencies through
  `mynumber agencies enrol` and given a 副本 with `mynumber agencies put-copy`;
- an exchange over mutual TLS, a portal login with the card over the public listener, the
  exchange in the resident's history, OCSP through the public listener with openssl, and a
  restart of the core that loses nothing (`mynumber log verify`).

It runs in the PostgreSQL leg of `make test` (where bin/with-postgres provides the PostgreSQL
binaries); the SQLite leg skips it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from mynumber import envelope, tls
from mynumber.agencies.keyring import FileKeyring, read_agency_public_keys
from mynumber.card.chip import VirtualCard
from mynumber.db import CONTEXTS
from mynumber.network.interfaces import ExchangeQuery

ROOT = Path(__file__).resolve().parents[2]
REQUESTER, PROVIDER = "mhlw", "municipality-131041"
TASK, ITEM = "bekkyo2-1", "local_tax"
PAYLOAD = {"fiscal_year": 2025, "taxable_income": 4_200_000, "municipal_tax": 252_000,
           "exempt": False}
AUTH_PIN = "1234"
TOKEN_LABEL, TOKEN_PIN, SO_PIN = "mynumber-walk", "walk-pin-2468", "walk-so-13579"
STARTUP_SECONDS = 90.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("MYNUMBER_TEST_DATABASE_URL"),
                       reason="the production walk-through runs in the PostgreSQL leg of "
                       "`make test` (bin/with-postgres); it starts a cluster of its own"),
]


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    return found[-1].parent if found else None


def _softhsm_library() -> str | None:
    for candidate in ("/usr/lib/softhsm/libsofthsm2.so",
                      *map(str, Path("/usr/lib").glob("*-linux-gnu/softhsm/libsofthsm2.so"))):
        if os.path.exists(candidate):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    """A PostgreSQL cluster with durability on, owned by the postgres user when we are root."""

    directory: Path
    port: int
    bin: Path
    as_pg: list[str]

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/mynumber"

    def ctl(self, *args: str) -> None:
        subprocess.run([*self.as_pg, str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"),
                        *args], check=True, capture_output=True, timeout=120)

    def sql(self, statement: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [*self.as_pg, str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "-d", database, "-Atc", statement],
            check=True, capture_output=True, text=True, timeout=60)
        return done.stdout.strip()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    pg = _pg_bin()
    if pg is None:
        pytest.skip("PostgreSQL is not installed (sudo apt-get install postgresql)")
    # Not under pytest's 0700 temporary root: the postgres user must reach it.
    directory = Path(tempfile.mkdtemp(prefix="mynumber-walk-pg."))
    as_pg: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses root: the cluster belongs to postgres
        subprocess.run(["chown", "-R", "postgres", str(directory)], check=True)
        as_pg = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    c = Cluster(directory, port, pg, as_pg)
    subprocess.run([*as_pg, str(pg / "initdb"), "-D", str(directory / "data"), "-U", "postgres",
                    "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, capture_output=True, timeout=120)
    # Durability on (the defaults, said out loud): fsync, synchronous commit, full page writes.
    c.ctl("-l", str(directory / "log"), "-w", "-o",
          f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=on "
          "-c synchronous_commit=on -c full_page_writes=on -c max_connections=200", "start")
    try:
        c.sql("CREATE DATABASE mynumber")
        yield c
    finally:
        subprocess.run([*as_pg, str(pg / "pg_ctl"), "-D", str(directory / "data"), "-m",
                        "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Host:
    """One machine's MYNUMBER_* settings (and nothing else from the test's environment)."""

    name: str
    root: Path
    env: dict[str, str]
    services: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(self, *args: str, stdin: str | None = None, ok: bool = True) -> str:
        done = subprocess.run([sys.executable, "-m", "mynumber", *args], env=self.env,
                              input=stdin, capture_output=True, text=True, timeout=300)
        if ok:
            assert done.returncode == 0, (f"{self.name}$ mynumber {' '.join(args)}\n"
                                          f"{done.stdout}{done.stderr}")
        return done.stdout + done.stderr


@dataclass
class Service:
    name: str
    host: Host
    args: list[str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def output(self) -> Path:
        return self.host.root / f"{self.name}.out"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mynumber", "serve", *self.args], env=self.host.env,
            stdout=self.output.open("ab"), stderr=subprocess.STDOUT)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return None

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""


def _wait_ready(service: Service, url: str, verify: object) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    last = ""
    while time.monotonic() < deadline:
        assert service.process is not None
        if service.process.poll() is not None:
            pytest.fail(f"{service.name} exited with {service.process.returncode}:\n"
                        f"{service.log()}")
        try:
            answer = httpx.get(f"{url}/readyz", verify=verify, timeout=5)  # type: ignore[arg-type]
            last = answer.text
            if answer.status_code == 200:
                return
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.25)
    pytest.fail(f"{service.name} not ready in time ({last}):\n{service.log()}")


@dataclass
class Walk:
    root: Path
    core: Host
    intermediate: Host
    portal: Host
    requester_keys: Path
    tls_dir: Path
    ports: dict[str, int]
    services: dict[str, Service]
    agency_code: str
    card: Path

    def url(self, listener: str) -> str:
        return f"https://localhost:{self.ports[listener]}"

    def requester(self) -> httpx.Client:
        return httpx.Client(base_url=self.url("core_infra"),
                            verify=tls.client_context(self.tls_dir / "requester"), timeout=30)

    def resident(self, listener: str) -> httpx.Client:
        return httpx.Client(base_url=self.url(listener),
                            verify=str(self.tls_dir / "public" / "ca.pem"), timeout=30)


def _signed_query(walk: Walk) -> dict[str, str]:
    keys = FileKeyring(walk.requester_keys / "agencies").keys(REQUESTER)
    unsigned = ExchangeQuery(requester_id=REQUESTER, task_id=TASK, provider_id=PROVIDER,
                             item_code=ITEM, subject_code=walk.agency_code,
                             requested_at=dt.datetime.now(dt.UTC),
                             nonce=secrets.token_urlsafe(16))
    signature = keys.signing.sign(unsigned.signed_bytes())
    return {"requester_id": REQUESTER, "task_id": TASK, "provider_id": PROVIDER,
            "item_code": ITEM, "subject_code": walk.agency_code,
            "requested_at": unsigned.requested_at.isoformat(), "nonce": unsigned.nonce,
            "signature": base64.b64encode(signature).decode()}


def _exchange(walk: Walk) -> dict[str, object]:
    with walk.requester() as client:
        response = client.post("/api/v1/network/exchanges", json=_signed_query(walk))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    assert body["outcome"] == "provided"
    keys = FileKeyring(walk.requester_keys / "agencies").keys(REQUESTER)
    provider_signing, _ = read_agency_public_keys(walk.root / "provider-public.json", PROVIDER)
    opened = envelope.open_sealed(base64.b64decode(str(body["sealed"])), keys.encryption,
                                  provider_signing, envelope.info_for(str(body["serial"])))
    assert opened["data"] == PAYLOAD
    return body


@pytest.fixture(scope="module")
def walk(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    library = _softhsm_library()
    if library is None or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed: sudo apt-get install softhsm2 "
                    "(or run bin/system-deps as root)")
    root = tmp_path_factory.mktemp("walk")
    # The HSM: one token; each host reaches it with the same library and label, and reads
    # the user PIN from a 0600 file (never a command line).
    hsm = root / "hsm"
    (hsm / "tokens").mkdir(parents=True)
    (hsm / "softhsm2.conf").write_text(f"directories.tokendir = {hsm / 'tokens'}\n"
                                       "objectstore.backend = file\nlog.level = ERROR\n")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MYNUMBER_")}
    base_env["SOFTHSM2_CONF"] = str(hsm / "softhsm2.conf")
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL,
                    "--pin", TOKEN_PIN, "--so-pin", SO_PIN], env=base_env, check=True,
                   capture_output=True)
    hsm.chmod(0o700)  # the PIN file and its directory: the owner only
    pin_file = hsm / "user-pin"
    pin_file.write_text(TOKEN_PIN + "\n")
    pin_file.chmod(0o600)

    ports = {"core_public": _free_port(), "core_infra": _free_port(),
             "intermediate": _free_port(), "portal": _free_port()}
    tls_dir = root / "tls"

    def host(name: str, **extra: str) -> Host:
        directory = root / name
        directory.mkdir()
        env = {**base_env, "MYNUMBER_MODE": "production",
               "MYNUMBER_DATA_DIR": str(directory / "data"),
               "MYNUMBER_KEY_DIR": str(directory / "keys"), **extra}
        return Host(name, directory, env)

    # 1. The DBA provisions the database once, with the administrator's URL.
    admin = host("dba")
    admin.env["MYNUMBER_ADMIN_DATABASE_URL"] = cluster.admin_url
    provisioned = admin.run("db", "provision", "--credentials", str(root / "secrets" / "pgpass"))
    match = re.search(r"MYNUMBER_DATABASE_URL='([^']+)'", provisioned)
    assert match, provisioned
    database_url = match.group(1)
    assert "{context}" in database_url and "passfile=" in database_url
    hsm_env = {"MYNUMBER_PKCS11_LIBRARY": library, "MYNUMBER_PKCS11_TOKEN": TOKEN_LABEL,
               "MYNUMBER_PKCS11_PIN_FILE": str(pin_file)}

    # 2. Infrastructure certificates, on an operator machine (the CA never on a service host).
    operator = host("operator", MYNUMBER_MODE="embedded")
    operator.run("tls", "init-ca")
    for name in ("core", "intermediate", "requester", "public"):
        operator.run("tls", "issue", name, "--out", str(tls_dir / name), "--dns", "localhost",
                     "--ip", "127.0.0.1")

    core = host("core", MYNUMBER_DATABASE_URL=database_url,
                MYNUMBER_PUBLIC_URL=f"https://localhost:{ports['core_public']}",
                MYNUMBER_TLS_DIR=str(tls_dir / "core"),
                MYNUMBER_PUBLIC_TLS_DIR=str(tls_dir / "public"), **hsm_env)
    # 3. The core's key ceremony: symmetric keys and the agency-code key on the token, the
    #    schema, the JPKI CA on the token; then the check every service makes at start.
    core.run("keys", "init", "--production", "--role", "core")
    core.run("db", "upgrade")
    core.run("keys", "init-ca")
    assert "problem" not in core.run("keys", "check", "--role", "core").lower()

    # 4. Each agency makes its keys on its own host and hands over the public half.
    intermediate = host("intermediate", MYNUMBER_DATABASE_URL=database_url,
                        MYNUMBER_TLS_DIR=str(tls_dir / "intermediate"),
                        MYNUMBER_CORE_PUBLIC_KEY_FILE=str(root / "intermediate" / "core.pem"))
    requester = host("requester")
    core.run("keys", "export-core-public", "--out", str(root / "intermediate" / "core.pem"))
    intermediate.run("keys", "agency", PROVIDER)
    intermediate.run("keys", "agency-public", PROVIDER, "--out",
                     str(root / "provider-public.json"))
    requester.run("keys", "agency", REQUESTER)
    requester.run("keys", "agency-public", REQUESTER, "--out",
                  str(root / "requester-public.json"))
    core.run("network", "register-keys", PROVIDER, "--public-keys",
             str(root / "provider-public.json"))
    core.run("network", "register-keys", REQUESTER, "--public-keys",
             str(root / "requester-public.json"))
    core.run("network", "set-endpoint", PROVIDER, f"https://localhost:{ports['intermediate']}")

    # 5. The portal host gets the core's keys it needs, not the registry's numbering keys.
    portal = host("portal", MYNUMBER_DATABASE_URL=database_url,
                  MYNUMBER_PUBLIC_URL=f"https://localhost:{ports['portal']}",
                  MYNUMBER_PUBLIC_TLS_DIR=str(tls_dir / "public"),
                  MYNUMBER_TLS_DIR=str(tls_dir / "core"), **hsm_env)
    (portal.root / "keys").mkdir(mode=0o700)
    for key in (core.root / "keys").iterdir():
        if key.is_file() and not key.name.startswith("registry."):
            shutil.copy2(key, portal.root / "keys" / key.name)
    if (core.root / "keys" / "agencies").is_dir():
        shutil.copytree(core.root / "keys" / "agencies", portal.root / "keys" / "agencies")
    os.chmod(portal.root / "keys", 0o700)
    assert not list((portal.root / "keys").glob("registry.*"))

    # 6. The counter: a birth, the card; then the agencies enrol the person and the city
    #    registers its 副本 (the number typed on standard input, never on a command line).
    counter = subprocess.run([sys.executable, str(ROOT / "tests/e2e/walkthrough_counter.py"),
                              str(root / "card"), "--number"], env=core.env,
                             capture_output=True, text=True, timeout=300)
    assert counter.returncode == 0, counter.stdout + counter.stderr
    number = counter.stdout.strip().splitlines()[-1]
    enrolled = core.run("agencies", "enrol", REQUESTER, "M-000001", "--json", "--print-code",
                        stdin=number)
    core.run("agencies", "enrol", PROVIDER, "C-000001", stdin=number)
    assert number not in enrolled
    del number
    copy = root / "copy.json"
    copy.write_text(json.dumps(PAYLOAD))
    core.run("agencies", "put-copy", PROVIDER, "C-000001", ITEM, "--json", str(copy))
    # The city's 初期移行: the current 住民票関係情報 of everyone it holds, encrypted to the
    # public key registered above (the core holds no private key of the city's).
    loaded = core.run("agencies", "load-copies", PROVIDER)
    assert re.search(r"副本 of [1-9][0-9,]* records written", loaded), loaded
    code = re.search(r'"agency_code":\s*"([^"]+)"', enrolled)
    assert code, enrolled

    # 7. Three services.
    services = {
        "intermediate": Service("intermediate", intermediate, [
            "--role", "intermediate", "--host", "127.0.0.1",
            "--infra-port", str(ports["intermediate"])]),
        "core": Service("core", core, [
            "--role", "core", "--host", "127.0.0.1", "--public-port", str(ports["core_public"]),
            "--infra-port", str(ports["core_infra"])]),
        "portal": Service("portal", portal, [
            "--role", "portal", "--host", "127.0.0.1", "--public-port", str(ports["portal"])]),
    }
    walk = Walk(root, core, intermediate, portal, requester.root / "keys", tls_dir, ports,
                services, code.group(1), root / "card" / "card.json")
    try:
        for service in services.values():
            service.start()
        infra = tls.client_context(tls_dir / "requester")
        public = str(tls_dir / "public" / "ca.pem")
        _wait_ready(services["intermediate"], walk.url("intermediate"), infra)
        _wait_ready(services["core"], walk.url("core_infra"), infra)
        _wait_ready(services["core"], walk.url("core_public"), public)
        _wait_ready(services["portal"], walk.url("portal"), public)
        yield walk
    finally:
        for service in services.values():
            service.stop()


def test_the_database_roles_are_isolated_and_durable(walk: Walk, cluster: Cluster) -> None:
    assert cluster.sql("SHOW fsync") == "on"
    assert cluster.sql("SHOW synchronous_commit") == "on"
    roles = cluster.sql("SELECT string_agg(rolname || ':' || rolsuper::text || rolcreaterole::text"
                        " || rolcreatedb::text, ',' ORDER BY rolname) FROM pg_roles "
                        "WHERE rolname LIKE 'mynumber\\_%'")
    assert roles.count(":falsefalsefalse") == len(CONTEXTS), roles
    assert cluster.sql("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r "
                       "ON r.oid = m.member WHERE r.rolname LIKE 'mynumber\\_%'") == "0"


def test_an_exchange_crosses_core_and_intermediate_server_over_mutual_tls(walk: Walk) -> None:
    body = _exchange(walk)
    assert body["serial"]
    # Not on the public listener, and not without a client certificate.
    with walk.resident("core_public") as client:
        assert client.post("/api/v1/network/exchanges",
                           json=_signed_query(walk)).status_code == 404
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{walk.url('core_infra')}/api/v1/network/exchanges",
                   json=_signed_query(walk), verify=str(walk.tls_dir / "core" / "ca.pem"),
                   timeout=10)


def _login(walk: Walk) -> str:
    card = VirtualCard.load(walk.card)
    with walk.resident("portal") as client:
        challenge = client.post("/api/v1/portal/login/challenge")
        assert challenge.status_code == 200, challenge.text
        raw = base64.b64decode(challenge.json()["challenge"])
        signature = card.sign("auth", AUTH_PIN, raw)
        login = client.post("/api/v1/portal/login", json={
            "challenge_id": challenge.json()["challenge_id"],
            "signature": base64.b64encode(signature).decode(),
            "certificate": card.certificate("auth").decode()})
    assert login.status_code == 200, login.text
    token: str = login.json()["token"]
    return token


def test_the_resident_logs_in_to_the_portal_and_sees_the_exchange(walk: Walk) -> None:
    body = _exchange(walk)
    token = _login(walk)
    with walk.resident("portal") as client:
        history = client.get("/api/v1/portal/me/history",
                             headers={"Authorization": f"Bearer {token}"})
    assert history.status_code == 200, history.text
    assert body["serial"] in history.text
    # The portal service holds no numbering key and serves no infrastructure route.
    assert not list((walk.portal.root / "keys").glob("registry.*"))
    with walk.resident("portal") as client:
        assert client.get("/api/v1/registry/municipalities").status_code == 404


def test_ocsp_through_the_public_listener_without_a_client_certificate(walk: Walk) -> None:
    with walk.resident("core_public") as client:
        chain = client.get("/jpki/ca/auth.pem")
    assert chain.status_code == 200, chain.text
    issuer = walk.root / "auth-ca.pem"
    issuer.write_bytes(chain.content)
    leaf = x509.load_pem_x509_certificate((walk.root / "card" / "auth-cert.pem").read_bytes())
    result = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(issuer),
         "-cert", str(walk.root / "card" / "auth-cert.pem"),
         "-url", f"{walk.url('core_public')}/jpki/ocsp/auth",
         "-CAfile", str(walk.tls_dir / "public" / "ca.pem"), "-noverify", "-no_nonce"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": good" in result.stdout, result.stdout
    assert leaf.serial_number > 0


def test_a_restart_of_the_core_loses_nothing(walk: Walk) -> None:
    before = _exchange(walk)
    core = walk.services["core"]
    assert core.stop() == 0, core.log()
    core.start()
    _wait_ready(core, walk.url("core_infra"), tls.client_context(walk.tls_dir / "requester"))
    after = _exchange(walk)
    assert after["serial"] != before["serial"]
    token = _login(walk)
    with walk.resident("portal") as client:
        history = client.get("/api/v1/portal/me/history",
                             headers={"Authorization": f"Bearer {token}"}).text
    assert str(before["serial"]) in history and str(after["serial"]) in history
    # The log holds every exchange, and its tree and signed heads check out end to end.
    report = json.loads(walk.core.run("log", "verify", "--json").strip().splitlines()[-1])
    assert report["ok"] is True, report
    assert report["tree_size"] >= 2 and report["heads_checked"] >= 1

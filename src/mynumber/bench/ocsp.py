"""Workload ``ocsp``: OCSP responses per second over HTTP on loopback, ours against
``openssl ocsp`` as a responder on the same index (the issue's goal: at least as fast).

Set-up (not timed), in a temporary directory: a throwaway root, issuing CA and delegated OCSP
responder (RSA-2048); ``serials`` random certificate serials (default ``min(count, 500)``),
every tenth revoked (keyCompromise); an OpenSSL CA database ``index.txt`` listing them, and the
same statuses as a dict for our responder.

Servers, each a child process on a free 127.0.0.1 port, both stopped at the end:

* baseline: ``openssl ocsp -index index.txt -port P -rsigner responder.pem -rkey responder.key
  -CA issuing.pem -nmin 1 -multi 2`` (two forked responder processes; ``-multi`` needs
  OpenSSL >= 3.0, otherwise it runs as one process). It signs every response.
* ours: a Starlette app serving ``POST /ocsp`` with :func:`mynumber.jpki.revocation.
  build_response` over a dict lookup, under uvicorn (one process; the same function the jpki
  API serves). With ``cached_responses`` (the default, as production responders do, RFC 5019
  §2.2), a signed response to a request without a nonce is kept, keyed by the exact request
  bytes, and served again until ``refresh`` (60 s) — well before its nextUpdate (24 h); requests
  with a nonce are always signed afresh. The same server without the cache is measured too
  (``uncached_per_second``).

Client: the same pre-built DER requests (no nonce, SHA-1 CertIDs as RFC 5019 asks), ``count``
of them cycling over the serials, sent with httpx (keep-alive where the server allows it;
``openssl ocsp`` answers HTTP/1.0 and closes each connection) from ``threads`` threads (default
4). Every response is then parsed and checked against the expected status (``all_correct``), and
one revoked and one good serial are compared between the two responders (``agree``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

from mynumber.bench import BenchOptions, BenchProgress, NoProgress
from mynumber.jpki.profiles import ca_certificate, ocsp_responder_certificate
from mynumber.jpki.revocation import GOOD, UNKNOWN, CertificateStatus, build_response, revoked

DEFAULT_COUNT = 2_000
DEFAULT_THREADS = 4
DEFAULT_ROUNDS = 4
MAX_SERIALS = 500
GOAL_RATIO = 1.0
REFRESH_SECONDS = 60.0
STARTUP_TIMEOUT = 20.0
REQUEST_TIMEOUT = 10.0
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"

_OPENSSL_REASONS = {
    x509.ReasonFlags.key_compromise: "keyCompromise",
    x509.ReasonFlags.affiliation_changed: "affiliationChanged",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessationOfOperation",
}


# ---------------------------------------------------------------------------------------------
# Fixture: PKI, statuses, index.txt


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _openssl_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%y%m%d%H%M%SZ")


def openssl_serial(serial: int) -> str:
    """A serial as OpenSSL's index stores it (``BN_bn2hex``: upper case, whole bytes)."""
    digits = max(1, (serial.bit_length() + 7) // 8) * 2
    return f"{serial:0{digits}X}"


def index_line(serial: int, expires: dt.datetime, status: CertificateStatus) -> str:
    subject = f"/C=JP/CN={openssl_serial(serial)}"
    if status.state is ocsp.OCSPCertStatus.REVOKED:
        assert status.revoked_at is not None
        revocation = _openssl_time(status.revoked_at)
        if status.reason in _OPENSSL_REASONS:
            revocation += "," + _OPENSSL_REASONS[status.reason]
        return f"R\t{_openssl_time(expires)}\t{revocation}\t{openssl_serial(serial)}\tunknown\t" \
               f"{subject}\n"
    return f"V\t{_openssl_time(expires)}\t\t{openssl_serial(serial)}\tunknown\t{subject}\n"


def write_fixture(directory: Path, serials: int) -> dict[str, Any]:
    """Write the PKI, ``index.txt`` and ``statuses.json`` to ``directory``; return what the
    client needs (issuer hashes, serials, expected states)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_from, ca_to = now - dt.timedelta(days=1), now + dt.timedelta(days=3650)
    root_key = _key()
    root = ca_certificate("JPKI Root CA (bench)", root_key.public_key(), issuer_key=root_key,
                          not_before=ca_from, not_after=ca_to, path_length=1)
    ca_key = _key()
    ca = ca_certificate("JPKI User Authentication CA (bench)", ca_key.public_key(),
                        issuer=root, issuer_key=root_key, not_before=ca_from, not_after=ca_to,
                        path_length=0)
    responder_key = _key()
    responder = ocsp_responder_certificate(
        responder_key.public_key(), issuer=ca, issuer_key=ca_key, not_before=ca_from,
        not_after=now + dt.timedelta(days=7), subject_cn="JPKI Auth CA OCSP responder (bench)",
    )
    pem = serialization.Encoding.PEM
    (directory / "issuing.pem").write_bytes(ca.public_bytes(pem))
    (directory / "responder.pem").write_bytes(responder.public_bytes(pem))
    key_path = directory / "responder.key"
    key_path.touch(mode=0o600)
    key_path.write_bytes(responder_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    expires = now + dt.timedelta(days=1800)
    statuses: dict[int, CertificateStatus] = {}
    for i in range(serials):
        serial = x509.random_serial_number()
        statuses[serial] = (
            revoked(now - dt.timedelta(hours=1 + i), x509.ReasonFlags.key_compromise)
            if i % 10 == 0 else GOOD
        )
    with open(directory / "index.txt", "w", encoding="ascii") as index:
        for serial, status in statuses.items():
            index.write(index_line(serial, expires, status))
    (directory / "index.txt.attr").write_text("unique_subject = no\n", encoding="ascii")
    (directory / "statuses.json").write_text(json.dumps({
        str(serial): [status.state.name, status.revoked_at.isoformat() if status.revoked_at
                      else None, status.reason.value if status.reason else None]
        for serial, status in statuses.items()
    }), encoding="ascii")
    return {"issuer": ca, "statuses": statuses}


def load_statuses(directory: Path) -> dict[int, CertificateStatus]:
    raw = json.loads((directory / "statuses.json").read_text(encoding="ascii"))
    statuses: dict[int, CertificateStatus] = {}
    for serial, (state, revoked_at, reason) in raw.items():
        if state == "REVOKED":
            statuses[int(serial)] = revoked(
                dt.datetime.fromisoformat(revoked_at), x509.ReasonFlags(reason) if reason
                else None)
        else:
            statuses[int(serial)] = GOOD
    return statuses


def build_requests(issuer: x509.Certificate, serials: list[int]) -> list[bytes]:
    """One DER OCSP request per serial: SHA-1 CertID (RFC 5019), no nonce."""
    sha1 = hashes.SHA1()  # noqa: S303 - CertID hash (a name), as RFC 5019 asks
    name_hash = hashes.Hash(sha1)
    name_hash.update(issuer.subject.public_bytes())
    key_hash = hashes.Hash(sha1)
    key_hash.update(issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1))
    names, keys = name_hash.finalize(), key_hash.finalize()
    return [
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(names, keys, serial, sha1)
        .build()
        .public_bytes(serialization.Encoding.DER)
        for serial in serials
    ]


# ---------------------------------------------------------------------------------------------
# Our responder (served in a child process)


def create_app(directory: Path, cached: bool) -> Any:
    """The Starlette app: ``POST /ocsp`` -> revocation.build_response over the statuses."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    issuer = x509.load_pem_x509_certificate((directory / "issuing.pem").read_bytes())
    responder = x509.load_pem_x509_certificate((directory / "responder.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "responder.key").read_bytes(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("the responder key is RSA")
    responder_key: rsa.RSAPrivateKey = key
    statuses = load_statuses(directory)

    def lookup(serial: int) -> CertificateStatus:
        return statuses.get(serial, UNKNOWN)

    cache: dict[bytes, tuple[float, bytes]] = {}

    def answer(body: bytes) -> bytes:
        clock = time.monotonic()
        if cached:
            hit = cache.get(body)
            if hit is not None and clock < hit[0]:
                return hit[1]
        der = build_response(body, lookup, responder, responder_key, issuer,
                             dt.datetime.now(dt.UTC))
        if cached and _cacheable(body):
            if len(cache) > 100_000:
                cache.clear()
            cache[body] = (clock + REFRESH_SECONDS, der)
        return der

    async def post(request: Request) -> Response:
        body = await request.body()
        return Response(answer(body), media_type=OCSP_RESPONSE)

    return Starlette(routes=[Route("/ocsp", post, methods=["POST"])])


def _cacheable(request_der: bytes) -> bool:
    """A readable request without a nonce (a nonce asks for a fresh response)."""
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        request.extensions.get_extension_for_class(x509.OCSPNonce)
    except x509.ExtensionNotFound:
        return True
    except (ValueError, NotImplementedError):
        return False
    return False


def _serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m mynumber.bench.ocsp serve")
    parser.add_argument("directory", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    import uvicorn

    os.environ[_ENV_DIR] = str(args.directory)
    os.environ[_ENV_CACHE] = "0" if args.no_cache else "1"
    uvicorn.run("mynumber.bench.ocsp:app_from_environment", factory=True, host="127.0.0.1",
                port=args.port, workers=args.workers, log_level="warning", access_log=False)


_ENV_DIR = "MYNUMBER_BENCH_OCSP_DIR"
_ENV_CACHE = "MYNUMBER_BENCH_OCSP_CACHE"


def app_from_environment() -> Any:
    """uvicorn factory for the worker processes of :func:`_serve`."""
    return create_app(Path(os.environ[_ENV_DIR]), os.environ.get(_ENV_CACHE) == "1")


# ---------------------------------------------------------------------------------------------
# Driver


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"responder exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("responder did not start")


def _stop(process: subprocess.Popen[bytes], group: bool = False) -> None:
    """Stop a responder we started. ``group``: ``openssl ocsp -multi`` puts itself and its
    forked children in a process group of its own (pgid = its pid), and its parent does not
    always exit on SIGTERM, so the whole group (ours alone) is signalled, then killed."""
    def signal_(sig: int) -> None:
        try:
            if group and os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, sig)
            else:
                os.kill(process.pid, sig)
        except ProcessLookupError:
            pass

    if process.poll() is None:
        signal_(signal.SIGTERM)
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            signal_(signal.SIGKILL)
            process.wait(timeout=5)
    if group:
        try:  # forked children may outlive their parent
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def openssl_supports_multi() -> bool:
    out = subprocess.run(["openssl", "version"],  # noqa: S607 - the openssl on PATH
                         capture_output=True, text=True, check=True, timeout=10).stdout
    parts = out.split()
    major = int(parts[1].split(".")[0]) if len(parts) > 1 and parts[1][0].isdigit() else 1
    return major >= 3


def start_openssl(directory: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        "openssl", "ocsp", "-index", str(directory / "index.txt"), "-port", str(port),
        "-rsigner", str(directory / "responder.pem"), "-rkey", str(directory / "responder.key"),
        "-CA", str(directory / "issuing.pem"), "-nmin", "1",
    ]
    if openssl_supports_multi():
        command += ["-multi", "2"]
    log = open(directory / f"openssl-{port}.log", "wb")  # the child's output
    try:
        # Not start_new_session: with -multi openssl calls setpgid(0, 0), which a session
        # leader may not do (it then exits with status 1).
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                   stdin=subprocess.DEVNULL, cwd=directory)
    finally:
        log.close()
    return process


def start_ours(directory: Path, port: int, cached: bool, workers: int = 1
               ) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mynumber.bench.ocsp", "serve", str(directory), str(port),
               "--workers", str(workers)]
    if not cached:
        command.append("--no-cache")
    log = open(directory / f"ours-{port}.log", "wb")  # the child's output
    try:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                   stdin=subprocess.DEVNULL)
    finally:
        log.close()
    return process


def drive(url: str, requests: list[bytes], threads: int) -> tuple[float, list[bytes]]:
    """Send every request once over ``threads`` threads (one keep-alive client each); return
    responses per second and the responses, in request order."""
    responses: list[bytes] = [b""] * len(requests)
    slices = [range(t, len(requests), threads) for t in range(threads)]
    headers = {"Content-Type": OCSP_REQUEST}
    timeouts = httpx.Timeout(REQUEST_TIMEOUT).as_dict()

    def worker(indexes: range) -> None:
        # httpx's transport (connection pool, keep-alive) without the Client's per-request
        # machinery (cookies, auth, redirects, hooks): the client is the cheaper for it, and
        # the same for both servers.
        with httpx.HTTPTransport(retries=1) as transport:
            for i in indexes:
                request = httpx.Request("POST", url, content=requests[i], headers=headers,
                                        extensions={"timeout": timeouts})
                reply = transport.handle_request(request)
                try:
                    reply.read()
                finally:
                    reply.close()
                if reply.status_code != 200:
                    raise RuntimeError(f"responder answered HTTP {reply.status_code}")
                responses[i] = reply.content

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        t0 = time.perf_counter()
        for future in [pool.submit(worker, s) for s in slices]:
            future.result()
        seconds = time.perf_counter() - t0
    return len(requests) / seconds, responses


def answered_state(der: bytes, serial: int) -> str:
    response = ocsp.load_der_ocsp_response(der)
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return response.response_status.name
    if response.serial_number != serial:
        return "WRONG_SERIAL"
    return response.certificate_status.name


def run_ocsp(count: int = DEFAULT_COUNT, threads: int = DEFAULT_THREADS,
             serials: int | None = None, progress: BenchProgress | None = None,
             rounds: int = DEFAULT_ROUNDS) -> dict[str, Any]:
    if count < 1 or threads < 1 or rounds < 1:
        raise ValueError("count and threads must be positive")
    progress = progress or NoProgress()
    n_serials = serials or min(count, MAX_SERIALS)
    with tempfile.TemporaryDirectory(prefix="mynumber-bench-ocsp-") as scratch:
        directory = Path(scratch)
        with progress.phase(f"writing a throwaway PKI and {n_serials:,} statuses"):
            fixture = write_fixture(directory, n_serials)
        statuses: dict[int, CertificateStatus] = fixture["statuses"]
        serial_list = list(statuses)
        order = [serial_list[i % len(serial_list)] for i in range(count)]
        by_serial = dict(zip(serial_list, build_requests(fixture["issuer"], serial_list),
                             strict=True))
        requests = [by_serial[s] for s in order]
        expected = [statuses[s].state.name for s in order]
        servers = {
            "openssl": (start_openssl, "/", True),
            "ours": (lambda d, p: start_ours(d, p, True), "/ocsp", False),
            "ours_uncached": (lambda d, p: start_ours(d, p, False), "/ocsp", False),
        }
        running: dict[str, tuple[subprocess.Popen[bytes], str, bool]] = {}
        seconds = dict.fromkeys(servers, 0.0)
        answers: dict[str, list[bytes]] = {name: [] for name in servers}
        # The count is cut into rounds and the servers take turns round by round, so that
        # other load on a shared machine falls on all of them alike.
        cuts = [count * r // rounds for r in range(rounds + 1)]
        try:
            with progress.phase("starting and warming up the responders"):
                for name, (start, path, group) in servers.items():
                    port = free_port()
                    process = start(directory, port)
                    running[name] = (process, f"http://127.0.0.1:{port}{path}", group)
                for process, url, _ in running.values():
                    _wait_for_port(int(url.split(":")[2].split("/")[0]), process)
                    drive(url, requests[: min(len(requests), 4 * threads)], threads)  # warm up
            # One report per round and server, between the timed drives.
            with progress.phase(f"requests ({len(running)} responders taking turns, "
                                f"{rounds} rounds)", total=count * len(running)) as report:
                sent = 0
                for r in range(rounds):
                    for name, (_, url, _) in running.items():
                        chunk = requests[cuts[r] : cuts[r + 1]]
                        if not chunk:
                            continue
                        rate, got = drive(url, chunk, threads)
                        seconds[name] += len(chunk) / rate
                        answers[name] += got
                        sent += len(chunk)
                        report(sent)
        finally:
            for process, _, group in running.values():
                _stop(process, group)
        results = {name: (count / seconds[name], answers[name]) for name in servers}
        states = {name: [answered_state(der, s) for der, s in zip(res[1], order, strict=True)]
                  for name, res in results.items()}
        correct = {name: got == expected for name, got in states.items()}
        revoked_serial = next(s for s in serial_list if statuses[s].state.name == "REVOKED")
        good_serial = next(s for s in serial_list if statuses[s].state.name == "GOOD")
        agree = all(
            states["openssl"][order.index(s)] == states["ours"][order.index(s)]
            == states["ours_uncached"][order.index(s)] == statuses[s].state.name
            for s in (revoked_serial, good_serial)
        )
    per_second = results["ours"][0]
    baseline = results["openssl"][0]
    return {
        "per_second": per_second,
        "baseline_per_second": baseline,
        "ratio": per_second / baseline,
        "count": count,
        "goal_ratio": GOAL_RATIO,
        "goal_met": per_second / baseline >= GOAL_RATIO,
        "cached_responses": True,
        "uncached_per_second": results["ours_uncached"][0],
        "uncached_ratio": results["ours_uncached"][0] / baseline,
        "distinct_serials": len(serial_list),
        "revoked_serials": sum(1 for s in statuses.values() if s.state.name == "REVOKED"),
        "threads": threads,
        "rounds": rounds,
        "openssl_multi": 2 if openssl_supports_multi() else 1,
        "our_server_processes": 1,
        "all_correct": correct,
        "agree": agree,
        "revoked_example": {name: states[name][order.index(revoked_serial)] for name in states},
    }


def run(options: BenchOptions) -> dict[str, Any]:
    extra = options.extra
    return run_ocsp(options.count or DEFAULT_COUNT,
                    int(extra.get("threads", options.workers or DEFAULT_THREADS)),
                    int(extra["serials"]) if "serials" in extra else None,
                    progress=options.progress, rounds=int(extra.get("rounds", DEFAULT_ROUNDS)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        _serve(sys.argv[2:])
    else:
        raise SystemExit("usage: python -m mynumber.bench.ocsp serve DIRECTORY PORT [--no-cache]")

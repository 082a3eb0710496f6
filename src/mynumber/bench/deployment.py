"""`mynumber bench exchange-deployment` (also `mynumber bench exchange --deployment`): the
production path of an exchange, measured end to end (issue 11, "Figures").

What is measured: requester processes post signed 情報照会 (``ExchangeQuery``, a fresh nonce
each) to the network core's ``/api/v1/network/exchanges`` over HTTPS with mutual TLS; the core
(``mynumber serve --role core``, its own process) checks and routes the query over mutual TLS
to an intermediate server (``mynumber serve --role intermediate``, another process) that reads
the 副本, signs it and seals it for the requester; the core writes the exchange and its access
log entry in one transaction and its sequencer integrates the log; the requester opens the
sealed answer and checks the provider's signature. All of it on PostgreSQL, whose durability
settings (``fsync``, ``synchronous_commit``, ``full_page_writes``) are read from the server
and reported with the figures (a warning in the JSON when fsync is off).

Prepared first and not measured: a throwaway database (:func:`mynumber.bench.postgres_database`;
SQLite is refused), residents enrolled with the requester (mhlw) and their city, a 副本 each
(the same preparation as ``bench exchange``), a TLS CA and the services' certificates in a
temporary directory, and every provider's endpoint set to the intermediate server. The
services get only the benchmark's own ``MYNUMBER_*`` settings (embedded mode, temporary data
and key directories with development keys, the throwaway database, the TLS directories).

Figures, in one run:

- ``in_process``: the same exchanges through one container per worker process, no HTTP (what
  ``bench exchange`` measures), on the same database before the services start;
- ``sustained``: ``--workers`` requester processes, closed loop (``--concurrency`` requests in
  flight per process), for ``--seconds``;
- ``at_rate``: an open loop at ``--rate`` exchanges/s (default 150) for ``--seconds``, latency
  counted from each request's scheduled start, so queueing is not hidden;
- ``nothing_lost``: after the services stop, the exchanges recorded in the database equal the
  answers the requesters received (with a 処理通番), every one reached the log and the log
  verifies.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import multiprocessing as mp
import os
import queue
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mynumber.bench import (
    BenchOptions,
    BenchProgress,
    BenchRefused,
    NoProgress,
    Report,
    bench_settings,
    collect_window_results,
    postgres_database,
    postgres_url,
)

GOAL_PER_SECOND = 300
GOAL_P99_MS = 100.0
LATENCY_RATE = 150
EXCHANGES = "/api/v1/network/exchanges"
STARTUP_SECONDS = 120.0  # a deadline, not a wait
REQUEST_TIMEOUT = 30.0
#: Connections per requester process in the open loop: an agency's system keeps a bounded pool
#: of kept-alive connections; exchanges beyond it wait for one (and that wait counts in their
#: latency, which runs from the scheduled start).
OPEN_LOOP_CONNECTIONS = 16
DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")


@dataclass
class Job:
    """What one requester process needs: where the core is, its TLS directory, the
    requester's private keys (raw), the providers' signing keys (raw public) and the work
    items (provider, item, the requester's 機関別符号 for the person)."""

    core_url: str
    tls_dir: Path
    requester: str
    task: str
    signing_key: bytes
    encryption_key: bytes
    provider_keys: dict[str, bytes]
    work: list[tuple[str, str, str]]


# --- the requester ----------------------------------------------------------------------------


class _Requester:
    def __init__(self, job: Job) -> None:
        from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

        self.job = job
        self.signing = ed25519.Ed25519PrivateKey.from_private_bytes(job.signing_key)
        self.encryption = x25519.X25519PrivateKey.from_private_bytes(job.encryption_key)

    def body(self, provider: str, item: str, code: str) -> dict[str, Any]:
        from mynumber.network.interfaces import ExchangeQuery

        unsigned = ExchangeQuery(
            requester_id=self.job.requester, task_id=self.job.task, provider_id=provider,
            item_code=item, subject_code=code, requested_at=dt.datetime.now(dt.UTC),
            nonce=secrets.token_urlsafe(16))
        query = dataclasses.replace(unsigned,
                                    signature=self.signing.sign(unsigned.signed_bytes()))
        return {
            "requester_id": query.requester_id, "task_id": query.task_id,
            "provider_id": query.provider_id, "item_code": query.item_code,
            "subject_code": query.subject_code, "requested_at": query.requested_at.isoformat(),
            "nonce": query.nonce, "signature": base64.b64encode(query.signature).decode(),
        }

    def check(self, provider: str, status: int, answer: Any) -> tuple[bool, bool]:
        """(recorded: the core answered with a 処理通番, provided: the answer opened and
        carries the provider's data)."""
        from mynumber import envelope

        if not isinstance(answer, dict):
            return False, False
        serial = answer.get("serial")
        if not isinstance(serial, str) or not serial:
            return False, False
        if status != 200 or not answer.get("sealed"):
            return True, False
        try:
            opened = envelope.open_sealed(
                base64.b64decode(answer["sealed"]), self.encryption,
                self.job.provider_keys[provider], envelope.info_for(serial))
        except Exception:
            return True, False
        return True, opened.get("serial") == serial and "data" in opened


async def _exchange(client: Any, requester: _Requester, item: tuple[str, str, str],
                    tally: dict[str, Any], scheduled: float) -> None:
    import httpx

    provider, item_code, code = item
    try:
        response = await client.post(EXCHANGES, json=requester.body(provider, item_code, code))
        try:
            answer = response.json()
        except ValueError:
            answer = None
        recorded, provided = requester.check(provider, response.status_code, answer)
    except httpx.HTTPError as exc:
        tally["transport_errors"] += 1
        kind = type(exc).__name__
        tally["error_kinds"][kind] = tally["error_kinds"].get(kind, 0) + 1
        tally["first_error"] = tally["first_error"] or f"{kind}: {exc}"[:200]
        recorded = provided = False
    finished = time.perf_counter()
    tally["latencies"].append(finished - scheduled)
    tally["finished"] = max(tally["finished"], finished)
    tally["recorded"] += recorded
    tally["provided"] += provided


async def _load(job: Job, start: Any, go: Any, ready: Any, seconds: float,
                rate: float | None, concurrency: int) -> dict[str, Any]:
    import httpx

    from mynumber import tls

    requester = _Requester(job)
    context = tls.client_context(job.tls_dir)
    connections = max(concurrency, OPEN_LOOP_CONNECTIONS) if rate else concurrency
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                          keepalive_expiry=4.0)  # under uvicorn's 5 s keep-alive timeout
    tally: dict[str, Any] = {"latencies": [], "recorded": 0, "provided": 0,
                             "transport_errors": 0, "first_error": None, "finished": 0.0,
                             "error_kinds": {}}
    timeout = httpx.Timeout(REQUEST_TIMEOUT, pool=None)  # waiting for a connection is queueing
    async with httpx.AsyncClient(base_url=job.core_url, verify=context, limits=limits,
                                 timeout=timeout) as client:
        # Warm up outside the window: the TLS connections, the core's and the intermediate
        # server's caches. These exchanges are recorded too (counted in "warm_up").
        warm: dict[str, Any] = {"latencies": [], "recorded": 0, "provided": 0,
                                "transport_errors": 0, "first_error": None, "finished": 0.0,
                                "error_kinds": {}}
        await asyncio.gather(*(
            _exchange(client, requester, job.work[i % len(job.work)], warm, time.perf_counter())
            for i in range(concurrency)))
        ready.put(True)
        while not go.is_set():
            await asyncio.sleep(0.005)
        start_at = start.value
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        cpu_at_start = time.process_time()
        end = start_at + seconds
        if rate:
            # Open loop: exchanges are due at fixed times whatever is in flight; ``connections``
            # senders take them in order as they become free (a due exchange waiting for a
            # sender is queueing, and counts in its latency, which runs from its due time).
            interval = 1.0 / rate
            due: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

            async def sender() -> None:
                while (entry := await due.get()) is not None:
                    i, scheduled = entry
                    await _exchange(client, requester, job.work[i % len(job.work)], tally,
                                    scheduled)

            senders = [asyncio.create_task(sender()) for _ in range(connections)]
            i = 0
            while (scheduled := start_at + i * interval) < end:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                due.put_nowait((i, scheduled))
                i += 1
            for _ in senders:
                due.put_nowait(None)
            await asyncio.gather(*senders)
        else:  # closed loop: ``concurrency`` requests in flight, each followed by the next
            counter = iter(range(10**12))

            async def loop() -> None:
                while (now := time.perf_counter()) < end:
                    await _exchange(client, requester,
                                    job.work[next(counter) % len(job.work)], tally, now)

            await asyncio.gather(*(loop() for _ in range(concurrency)))
    tally["cpu_seconds"] = time.process_time() - cpu_at_start
    tally["warm_up"] = warm["recorded"]
    tally["warm_up_errors"] = concurrency - warm["provided"]
    tally["warm_up_transport_errors"] = warm["transport_errors"]
    tally["first_error"] = tally["first_error"] or warm["first_error"]
    return tally


def _worker(job: Job, start: Any, go: Any, ready: Any, seconds: float, rate: float | None,
            concurrency: int, out: Any) -> None:
    try:
        out.put(asyncio.run(_load(job, start, go, ready, seconds, rate, concurrency)))
    except BaseException as exc:
        ready.put(False)
        out.put({"failed": f"{type(exc).__name__}: {exc}"})


def _percentile(values: list[float], q: float) -> float:
    value = values[min(len(values) - 1, int(q * len(values)))]
    return round(value * 1000, 2)


def _proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds (user + system) the process used so far; with ``children``, also those of
    its children that exited (cutime, cstime) and of the live ones."""
    ticks = os.sysconf("SC_CLK_TCK")

    def fields(p: int) -> list[str]:
        raw = Path(f"/proc/{p}/stat").read_text()
        return raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "

    own = fields(pid)
    total = int(own[11]) + int(own[12])  # utime, stime
    if children:
        total += int(own[13]) + int(own[14])  # cutime, cstime
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    child = fields(int(entry.name))
                except (OSError, ValueError):
                    continue
                if child[1] == str(pid):  # ppid
                    total += int(child[11]) + int(child[12])
    return total / ticks


def _cpu_probes(core: _Service, intermediate: _Service,
                postmaster: int | None) -> dict[str, Any]:
    probes: dict[str, Any] = {
        "core": lambda: _proc_cpu(core.process.pid),
        "intermediate": lambda: _proc_cpu(intermediate.process.pid),
    }
    if postmaster is not None:
        probes["postgresql"] = lambda: _proc_cpu(postmaster, children=True)
    return probes


def _cpu_figures(before: dict[str, float], after: dict[str, float], requesters: float,
                 exchanges: int, elapsed: float) -> dict[str, Any]:
    """CPU milliseconds per exchange by component in the window, and how much of the machine
    they kept busy (the rest went to other processes, or was idle)."""
    used = {name: after[name] - before[name] for name in before}
    used["requesters"] = requesters
    total = sum(used.values())
    per = {name: round(1000 * value / max(exchanges, 1), 2) for name, value in used.items()}
    per["total"] = round(1000 * total / max(exchanges, 1), 2)
    return {"cpu_ms_per_exchange": per,
            "cpu_share_of_machine": round(total / (elapsed * (os.cpu_count() or 1)), 2)}


def _run_load(jobs: list[Job], seconds: float, rate: float | None,
              concurrency: int, probes: dict[str, Any] | None = None,
              report: Report | None = None) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out, ready, go, start = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    per_worker_rate = rate / len(jobs) if rate else None
    procs = [ctx.Process(target=_worker, args=(job, start, go, ready, seconds, per_worker_rate,
                                               concurrency, out)) for job in jobs]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            if not ready.get(timeout=600):
                raise RuntimeError(f"a requester process failed: {out.get(timeout=5)}")
    except BaseException as exc:
        for p in procs:
            p.terminate()
        if isinstance(exc, queue.Empty):
            raise RuntimeError("a requester process did not start within 10 minutes") from None
        raise
    # The window opens once every requester is connected and warm; time.perf_counter is
    # CLOCK_MONOTONIC, shared by the processes.
    start.value = time.perf_counter() + 0.2
    go.set()
    probes = probes or {}
    load_before = os.getloadavg()[0]
    time.sleep(max(0.0, start.value - time.perf_counter()))
    cpu_before = {name: probe() for name, probe in probes.items()}
    results = collect_window_results(out, len(procs), start.value, seconds, report)
    cpu_after = {name: probe() for name, probe in probes.items()}
    for p in procs:
        p.join()
    failed = [r["failed"] for r in results if "failed" in r]
    if failed:
        raise RuntimeError(f"a requester process failed: {failed[0]}")
    latencies = sorted(x for r in results for x in r["latencies"])
    if not latencies:
        raise RuntimeError("no exchange completed in the measurement window")
    count = len(latencies)
    provided = sum(r["provided"] for r in results)
    # From the window's start to the last answer: an overloaded open loop takes longer than
    # the window to finish what it offered, and that shows here.
    elapsed = max(seconds, max(r["finished"] for r in results) - start.value)
    figures: dict[str, Any] = {
        "exchanges": count,
        "per_second": round(provided / elapsed, 1),
        "elapsed_s": round(elapsed, 2),
        "errors": count - provided,
        "transport_errors": sum(r["transport_errors"] for r in results),
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "recorded": sum(r["recorded"] for r in results),
        "warm_up": sum(r["warm_up"] for r in results),
        "warm_up_errors": sum(r["warm_up_errors"] for r in results),
        "warm_up_transport_errors": sum(r["warm_up_transport_errors"] for r in results),
    }
    if rate:
        figures["offered_per_second"] = rate
    if probes:
        figures.update(_cpu_figures(cpu_before, cpu_after,
                                    sum(r["cpu_seconds"] for r in results), count, elapsed))
    figures["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    first_error = next((r["first_error"] for r in results if r["first_error"]), None)
    if first_error:
        kinds: dict[str, int] = {}
        for r in results:
            for kind, n in r["error_kinds"].items():
                kinds[kind] = kinds.get(kind, 0) + n
        figures["transport_error_kinds"] = kinds
        figures["first_error"] = first_error
    return figures


# --- the services -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    output: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def _service_env(settings: Any, tls_dir: Path, public_tls_dir: Path | None) -> dict[str, str]:
    """The host's environment without any MYNUMBER_* setting, plus the benchmark's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYNUMBER_")}
    env.update({
        "MYNUMBER_MODE": "embedded",
        "MYNUMBER_DATA_DIR": str(settings.data_dir),
        "MYNUMBER_KEY_DIR": str(settings.keys_path),
        "MYNUMBER_DATABASE_URL": settings.database_url,
        "MYNUMBER_TLS_DIR": str(tls_dir),
    })
    if public_tls_dir is not None:
        env["MYNUMBER_PUBLIC_TLS_DIR"] = str(public_tls_dir)
    return env


def _start(name: str, role: str, env: dict[str, str], root: Path, *,
           public: bool) -> _Service:
    port = _free_port()
    args = [sys.executable, "-m", "mynumber", "serve", "--role", role, "--host", "127.0.0.1",
            "--infra-port", str(port)]
    if public:
        public_port = _free_port()
        while public_port == port:
            public_port = _free_port()
        args += ["--public-port", str(public_port)]
    output = root / f"{name}.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT,  # noqa: S603
                                   cwd=root)
    return _Service(name, port, process, output)


def _wait_ready(service: _Service, context: ssl.SSLContext, deadline: float) -> None:
    import httpx

    while True:
        if service.process.poll() is not None:
            raise RuntimeError(f"the {service.name} service exited with "
                               f"{service.process.returncode}:\n{service.log_tail()}")
        try:
            if httpx.get(f"{service.url}/readyz", verify=context, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {service.name} service did not become ready in "
                               f"{STARTUP_SECONDS:.0f} s:\n{service.log_tail()}")
        time.sleep(0.2)


# --- the database -----------------------------------------------------------------------------


def _durability(url: str) -> tuple[dict[str, Any], int | None]:
    """The server's durability settings, and its postmaster's process id when the server
    runs on this machine (for the CPU figures), else None."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found: dict[str, Any] = {
                name: conn.execute(text(f"SHOW {name}")).scalar_one() for name in DURABILITY}
            found["server_version"] = conn.execute(text("SHOW server_version")).scalar_one()
            backend = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            postmaster: int | None = None
            if make_url(url).host in (None, "", "localhost", "127.0.0.1", "::1"):
                try:
                    stat = Path(f"/proc/{backend}/stat").read_text()
                    postmaster = int(stat[stat.rindex(")") + 2:].split()[1])
                    _proc_cpu(postmaster, children=True)
                except (OSError, ValueError, IndexError):
                    postmaster = None
    finally:
        engine.dispose()
    found["durable"] = all(found[name] == "on" for name in DURABILITY)
    return found, postmaster


def _exchange_rows(settings: Any) -> int:
    from sqlalchemy import text

    from mynumber.app import build_container

    container = build_container(settings)
    try:
        with container.databases.unit_of_work("network") as session:
            return int(session.execute(text("SELECT count(*) FROM exchanges")).scalar_one())
    finally:
        container.close()


def _jobs(settings: Any, work: list[tuple[str, str, str, str, str]], workers: int,
          core_url: str, tls_dir: Path) -> list[Job]:
    """Split the work among the requester processes, with what each needs to sign, send and
    open: the requester's keys, its 機関別符号 for each person, the providers' public keys."""
    from cryptography.hazmat.primitives import serialization

    from mynumber.app import build_container

    raw = serialization.Encoding.Raw, serialization.PrivateFormat.Raw, \
        serialization.NoEncryption()
    container = build_container(settings)
    try:
        requester = work[0][0]
        keys = container.agencies.keyring.keys(requester)
        providers = sorted({w[3] for w in work})
        provider_keys = {p: container.agencies.keyring.keys(p).signing_public
                         for p in providers}
        items = [(provider, item, container.agencies.agency_code(requester, number))
                 for (_r, number, _t, provider, item) in work]
        signing = keys.signing.private_bytes(*raw)
        encryption = keys.encryption.private_bytes(*raw)
    finally:
        container.close()
    return [Job(core_url, tls_dir, requester, work[0][2], signing, encryption, provider_keys,
                items[i::workers]) for i in range(workers)]


def _set_endpoints(settings: Any, providers: set[str], url: str | None) -> None:
    from mynumber.app import build_container

    container = build_container(settings)
    try:
        for provider in sorted(providers):
            container.network.set_agency_endpoint(provider, url)
    finally:
        container.close()


def _final_check(settings: Any, rows_before: int, recorded: int,
                 transport_errors: int) -> dict[str, Any]:
    """After the services stopped: integrate what the core's sequencer had not yet, and
    compare the exchanges recorded with the answers the requesters received. An exchange may
    be recorded without its answer reaching the requester only where the requester saw a
    transport error (a timeout after the core committed): ``unacknowledged`` is at most
    ``transport_errors``; never fewer rows than answers."""
    from mynumber.app import build_container

    rows = _exchange_rows(settings)
    container = build_container(settings)
    try:
        while container.network_log.integrate() > 0:
            pass
        head = container.network_log.latest_head()
        report = container.network_log.verify()
    finally:
        container.close()
    deployment_rows = rows - rows_before
    return {
        "exchange_rows": rows,
        "recorded_by_the_deployment": deployment_rows,
        "answered_with_a_serial": recorded,
        "unacknowledged": deployment_rows - recorded,
        "transport_errors": transport_errors,
        "log_size": head.size,
        "not_in_log": rows - head.size,
        "log_verifies": report.ok,
        "ok": (0 <= deployment_rows - recorded <= transport_errors and head.size == rows
               and report.ok),
    }


# --- the run ----------------------------------------------------------------------------------


def _deployment(settings: Any, root: Path, work: list[Any], workers: int, concurrency: int,
                seconds: float, rate: int, postmaster: int | None,
                progress: BenchProgress | None = None) -> dict[str, Any]:
    from mynumber import tls

    progress = progress or NoProgress()
    ca = root / "tls-ca"
    tls.init_ca(ca)
    for name in ("core", "intermediate", "requester", "public"):
        tls.issue(ca, name, root / name, dns=["localhost"], ips=["127.0.0.1"])
    providers = {w[3] for w in work}
    rows_before = _exchange_rows(settings)
    intermediate = _start("intermediate", "intermediate",
                          _service_env(settings, root / "intermediate", None), root,
                          public=False)
    core: _Service | None = None
    window = max(1, int(seconds))
    try:
        with progress.phase("starting the core and the intermediate server (mutual TLS)"):
            _set_endpoints(settings, providers, intermediate.url)
            core = _start("core", "core",
                          _service_env(settings, root / "core", root / "public"), root,
                          public=True)
            deadline = time.monotonic() + STARTUP_SECONDS
            context = tls.client_context(root / "requester")
            _wait_ready(intermediate, context, deadline)
            _wait_ready(core, context, deadline)
            jobs = _jobs(settings, work, workers, core.url, root / "requester")
            probes = _cpu_probes(core, intermediate, postmaster)
        with progress.phase(f"sustained load, {workers} requester processes (seconds)",
                            total=window) as report:
            sustained = _run_load(jobs, seconds, None, concurrency, probes, report)
        with progress.phase(f"latency at {rate}/s (seconds)", total=window) as report:
            at_rate = _run_load(jobs, seconds, rate, concurrency, probes, report)
    finally:
        stopped = {"core": core.stop() if core is not None else None,
                   "intermediate": intermediate.stop()}
    recorded = (sustained["recorded"] + sustained["warm_up"] + at_rate["recorded"]
                + at_rate["warm_up"])
    with progress.phase("checking that nothing was lost"):
        check = _final_check(settings, rows_before, recorded,
                             sum(run[k] for run in (sustained, at_rate)
                                 for k in ("transport_errors", "warm_up_transport_errors")))
    check["services_exit_status"] = stopped
    return {"sustained": sustained, f"at_{rate}_per_second": at_rate, "nothing_lost": check}


def _in_process(settings: Any, work: list[Any], workers: int, seconds: float,
                report: Report | None = None) -> dict[str, Any]:
    """``bench exchange``'s closed loop (one container per worker, no HTTP) on this database."""
    from mynumber.bench import exchange

    figures = exchange._run_load(settings, work, workers, seconds, None, report)
    return {k: figures[k] for k in ("exchanges", "per_second", "not_provided", "p50_ms",
                                    "p99_ms", "mean_ms")}


def run(options: BenchOptions) -> dict[str, Any]:
    url = postgres_url(options)
    if url is None:
        raise BenchRefused(
            "exchange-deployment measures the production path on PostgreSQL: give "
            "--database-url (or MYNUMBER_BENCH_DATABASE_URL), e.g. under "
            "`MYNUMBER_PG_DURABLE=1 bin/with-postgres` with \"$MYNUMBER_TEST_DATABASE_URL\"")
    from mynumber.bench.exchange import _prepare

    residents = options.count or 1000
    workers = options.workers or 4
    seconds = float(options.extra.get("seconds", 20))
    rate = int(options.extra.get("rate", LATENCY_RATE))
    concurrency = int(options.extra.get("concurrency", 4))
    in_process_seconds = float(options.extra.get("in_process_seconds", min(seconds, 10.0)))
    root = Path(tempfile.mkdtemp(prefix="mynumber-bench-deployment-"))
    result: dict[str, Any] = {
        "residents": residents, "workers": workers, "concurrency": concurrency,
        "seconds": seconds, "rate": rate,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        with postgres_database(url) as target:
            settings = bench_settings(root / "data", root / "keys", target)
            durability, postmaster = _durability(target)
            progress = options.progress
            with progress.phase(f"databases, {residents:,} residents, their 副本"):
                work = _prepare(settings, residents)
            with progress.phase(f"in-process load, {workers} processes (seconds)",
                                total=max(1, int(in_process_seconds))) as report:
                in_process = _in_process(settings, work, workers, in_process_seconds, report)
            deployment = _deployment(settings, root, work, workers, concurrency, seconds, rate,
                                     postmaster, progress)
        at_rate = deployment[f"at_{rate}_per_second"]
        warnings = []
        if durability["fsync"] != "on":
            warnings.append("fsync is off on this PostgreSQL server: these are not durable "
                            "figures (run under MYNUMBER_PG_DURABLE=1 bin/with-postgres)")
        elif not durability["durable"]:
            warnings.append("synchronous_commit or full_page_writes is off on this PostgreSQL "
                            "server: commits are not fully durable")
        if not deployment["nothing_lost"]["ok"]:
            warnings.append("the exchanges recorded do not match the answers received, or "
                            "the log does not hold or verify them (see nothing_lost)")
        return {
            "per_second": deployment["sustained"]["per_second"],
            f"p99_ms_at_{rate}_per_second": at_rate["p99_ms"],
            "in_process_per_second": in_process["per_second"],
            "goal_per_second": GOAL_PER_SECOND,
            "goal_p99_ms": GOAL_P99_MS,
            "path": "requester -> core -> intermediate server, HTTPS with mutual TLS, "
                    "PostgreSQL",
            "postgresql": durability,
            **({"warnings": warnings} if warnings else {}),
            **result,
            "in_process": in_process,
            **deployment,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)

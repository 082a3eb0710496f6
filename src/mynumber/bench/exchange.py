"""`mynumber bench exchange`: end-to-end exchanges per second through the network, with the
access log on.

One exchange here is everything issue 4 describes: the requester agency looks up its code for
the person and signs the query; the core checks the signature, the legal table and the code,
maps it to the provider's code, signs the routed query; the provider's intermediate server
checks the core's signature, reads its 副本, signs it and seals it for the requester (HPKE);
the core writes the exchange and its log entry in one transaction; the requester opens and
checks the answer and records it. A sequencer process integrates the log (Merkle tree,
signed heads) while the load runs, and the run ends by checking every exchange reached a signed
tree head: nothing lost.

Two measurements per database (embedded SQLite, and PostgreSQL when ``--database-url`` or
``MYNUMBER_BENCH_DATABASE_URL`` is given): the sustained rate of ``--workers`` closed-loop
processes, and the latency at a fixed offered rate (default 500/s, open loop: latency counts
from each request's scheduled start, so queueing is not hidden).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import queue
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from mynumber.bench import (
    BenchOptions,
    BenchProgress,
    NoProgress,
    Report,
    bench_settings,
    collect_window_results,
    migrated_container,
    postgres_database,
    postgres_url,
)

GOAL_PER_SECOND = 1000
GOAL_P99_MS = 50.0
LATENCY_RATE = 500
REQUESTER = "mhlw"
TASK = "bekkyo2-1"
ITEM = "local_tax"


def _settings(data_dir: Path, keys: Path, url: str | None) -> Any:
    return bench_settings(data_dir, keys, url)


def _prepare(settings: Any, residents: int) -> list[tuple[str, str, str, str, str]]:
    """Migrate, seed residents, enrol them with the ministry and their city, give the cities
    a 副本 each; return the work: (requester, address number, task, provider, item)."""
    from mynumber.agencies.interfaces import CopyInput
    from mynumber.agencies.seed import address_number
    from mynumber.app import sync_directory
    from mynumber.network.interfaces import mayor_lookup
    from mynumber.registry.seed import current_residents, seed_population

    container = migrated_container(settings)
    try:
        sync_directory(container)
        seed_population(container, residents)
        people = current_residents(container.databases)
        mayor = mayor_lookup(container.network.agencies())
        by_city: dict[str, dict[int, str]] = {}
        for r in people:
            city = mayor(r.municipality_code)
            if city:
                by_city.setdefault(city, {})[r.id] = address_number(1, city, r.id)
        container.agencies.ensure_registered(REQUESTER)
        requester_numbers = {r.id: address_number(1, REQUESTER, r.id) for r in people}
        container.agencies.enrol_known_residents(REQUESTER, requester_numbers)
        work = []
        for city, numbers in by_city.items():
            container.agencies.ensure_registered(city)
            container.agencies.enrol_known_residents(city, numbers)
            container.agencies.put_copies(city, [
                CopyInput(n, ITEM, {"fiscal_year": 2025, "taxable_income": 3_000_000 + rid})
                for rid, n in numbers.items()
            ])
            work += [(REQUESTER, requester_numbers[rid], TASK, city, ITEM) for rid in numbers]
        return work
    finally:
        container.close()


def _worker(settings: Any, work: list[Any], start: Any, go: Any, ready: Any,
            seconds: float, rate: float | None, out: Any) -> None:
    from mynumber.app import build_container
    from mynumber.network.interfaces import Outcome

    container = build_container(settings)
    try:
        container.agencies.query(*work[0])  # warm caches and connections outside the window
        ready.put(True)
        go.wait()  # every worker is warm: the parent has set the common start time
        start_at = start.value
        while time.perf_counter() < start_at:
            time.sleep(0.001)
        latencies: list[float] = []
        errors = 0
        i = 0
        end = start_at + seconds
        interval = 1.0 / rate if rate else 0.0
        while True:
            scheduled = start_at + i * interval if rate else time.perf_counter()
            if scheduled >= end:
                break
            if rate:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            result = container.agencies.query(*work[i % len(work)])
            latencies.append(time.perf_counter() - scheduled)
            if result.outcome is not Outcome.PROVIDED:
                errors += 1
            i += 1
        out.put({"count": len(latencies), "errors": errors, "latencies": latencies})
    finally:
        container.close()


def _sequencer(settings: Any, stop: Any, out: Any) -> None:
    from mynumber.app import build_container

    container = build_container(settings)
    integrated = 0
    try:
        while not stop.is_set():
            n = container.network_log.integrate()
            integrated += n
            if n == 0:
                time.sleep(0.05)
        while (n := container.network_log.integrate()) > 0:
            integrated += n
        out.put(integrated)
    finally:
        container.close()


def _run_load(settings: Any, work: list[Any], workers: int, seconds: float,
              rate: float | None, report: Report | None = None) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out, seq_out, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    sequencer = ctx.Process(target=_sequencer, args=(settings, stop, seq_out))
    sequencer.start()
    # The window opens once every spawned worker has imported, connected and warmed up
    # (on a busy machine that can take many seconds); time.perf_counter is CLOCK_MONOTONIC,
    # shared by the processes.
    start, go, ready = ctx.Value("d", 0.0), ctx.Event(), ctx.Queue()
    per_worker_rate = rate / workers if rate else None
    procs = [
        ctx.Process(target=_worker, args=(settings, work[i::workers], start, go, ready,
                                          seconds, per_worker_rate, out))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        try:
            ready.get(timeout=600)
        except queue.Empty:
            for p in procs:
                p.terminate()
            stop.set()
            sequencer.join()
            raise RuntimeError("a benchmark worker did not start within 10 minutes") from None
    start.value = time.perf_counter() + 0.2
    go.set()
    results = collect_window_results(out, len(procs), start.value, seconds, report)
    for p in procs:
        p.join()
    stop.set()
    integrated = seq_out.get()
    sequencer.join()
    latencies = sorted(x for r in results for x in r["latencies"])
    count = sum(r["count"] for r in results)
    if not latencies:
        raise RuntimeError("no exchange completed in the measurement window")

    def pct(q: float) -> float:
        value: float = latencies[min(len(latencies) - 1, int(q * len(latencies)))]
        return round(value * 1000, 2)

    return {
        "exchanges": count,
        "per_second": round(count / seconds, 1),
        "not_provided": sum(r["errors"] for r in results),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "integrated_into_log": integrated,
    }


def _measure(settings: Any, residents: int, workers: int, seconds: float,
             latency_rate: int, progress: BenchProgress | None = None,
             database: str = "sqlite") -> dict[str, Any]:
    from mynumber.app import build_container

    progress = progress or NoProgress()
    with progress.phase(f"{database}: databases, {residents:,} residents, their 副本"):
        work = _prepare(settings, residents)
    with progress.phase(f"{database}: sustained load, {workers} processes (seconds)",
                        total=max(1, int(seconds))) as report:
        throughput = _run_load(settings, work, workers, seconds, None, report)
    with progress.phase(f"{database}: latency at {latency_rate}/s (seconds)",
                        total=max(1, int(seconds))) as report:
        at_rate = _run_load(settings, work, workers, seconds, latency_rate, report)
    container = build_container(settings)
    try:
        head = container.network_log.latest_head()
        expected = throughput["exchanges"] + at_rate["exchanges"] + 2 * workers  # + warm-ups
        lost = expected - head.size
    finally:
        container.close()
    return {
        "sustained_per_second": throughput["per_second"],
        "sustained": throughput,
        f"at_{latency_rate}_per_second": at_rate,
        "p99_ms_at_rate": at_rate["p99_ms"],
        "log_size": head.size,
        "lost_exchanges": lost,
    }


def run(options: BenchOptions) -> dict[str, Any]:
    residents = options.count or 2000
    workers = options.workers or 3
    seconds = float(options.extra.get("seconds", 10))
    rate = int(options.extra.get("rate", LATENCY_RATE))
    work_dir = Path(tempfile.mkdtemp(prefix="mynumber-bench-exchange-"))
    result: dict[str, Any] = {
        "residents": residents, "workers": workers, "seconds": seconds,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        keys = work_dir / "keys"
        url = postgres_url(options)
        if not (url and options.extra.get("postgres_only")):
            result["sqlite"] = _measure(_settings(work_dir / "sqlite", keys, None), residents,
                                        workers, seconds, rate, options.progress, "sqlite")
        if url:
            with postgres_database(url) as target:
                result["postgresql"] = _measure(_settings(work_dir / "pg", keys, target),
                                                residents, workers, seconds, rate,
                                                options.progress, "postgresql")
        main = result.get("postgresql") or result["sqlite"]
        return {
            "per_second": main["sustained_per_second"],
            "p99_ms_at_500_per_second": main["p99_ms_at_rate"],
            "measured_on": "postgresql" if "postgresql" in result else "sqlite",
            "goal_per_second": GOAL_PER_SECOND,
            "goal_p99_ms": GOAL_P99_MS,
            "baseline": "X-Road (Estonia) averages about 250 requests/s for the whole country",
            **result,
        }
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

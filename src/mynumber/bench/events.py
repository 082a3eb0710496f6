"""`mynumber bench events`: registry events delivered to every subscriber (issue 12).

Two figures, on a throwaway SQLite data directory and, when a PostgreSQL URL is given, on a
throwaway PostgreSQL database:

1. **Burst.** ``--count`` residents (default 100,000) arrive through the real bulk import
   (`mynumber registry import`'s importer, households of 1-4 in ``--municipalities``
   municipalities, default 20 as when municipalities migrate their registers; 0 spreads them
   over all 1,959, which costs each subscriber one write per municipality per batch): one
   ``registry.resident.import`` event each, published in the import's transactions. Then the
   dispatcher delivers them to every subscriber (JPKI, the municipalities' 副本 with enrolment
   of every new person, the portal's notices); ``per_second`` is events / the time until every
   subscriber's checkpoint reached the last event. Goal: 5,000/s.
2. **Lag.** With the dispatcher's background thread running, address changes are offered at
   ``--rate`` per second (default 1,000) for ``--seconds`` (default 10) from ``--workers``
   worker processes (default 4, as the counter's web workers) through the registry service
   (a clerk's change, each its own transaction); this process runs the dispatcher, which
   finds their commits by polling (``POLL_SECONDS``). The lag of an
   event is the time from its commit (``recorded_at``) to the moment every subscriber's
   checkpoint had passed it (checkpoints polled every 10 ms). Goal: p99 under 2 s.
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from mynumber.bench import (
    BenchOptions,
    BenchProgress,
    NoProgress,
    Report,
    bench_settings,
    migrated_container,
    postgres_database,
    postgres_url,
)

DEFAULT_COUNT = 100_000
GOAL_PER_SECOND = 5_000
GOAL_P99_LAG_SECONDS = 2.0


def _container(settings: Any) -> Any:
    from mynumber.app import sync_directory

    container = migrated_container(settings)
    sync_directory(container)
    return container


def _burst(container: Any, work: Path, count: int, spread: int | None,
           progress: BenchProgress | None = None, database: str = "sqlite") -> dict[str, Any]:
    import random

    from mynumber.bench.import_ import generate_csv
    from mynumber.registry.importer import Importer
    from mynumber.registry.services import load_municipality_rows

    csv_path = work / "burst.csv"
    codes = [row["code"] for row in load_municipality_rows()]
    chosen = random.Random(7).sample(codes, spread) if spread else None
    progress = progress or NoProgress()
    with progress.phase(f"generating {count:,} residents"):
        generate_csv(csv_path, count, municipalities=chosen)
    with progress.phase(f"{database}: burst: importing", in_bytes=True) as done:
        began = time.perf_counter()
        report = Importer(container.registry, batch_size=5000, actor="bench:events",
                          on_progress=done).run(csv_path)
        import_seconds = time.perf_counter() - began
    with progress.phase(f"{database}: burst: delivering {report.stored:,} events"):
        began = time.perf_counter()
        container.events.drain()
        seconds = time.perf_counter() - began
    statuses = container.events.status()
    return {
        "municipalities": spread or len(codes),
        "events": report.stored, "import_seconds": round(import_seconds, 2),
        "deliver_seconds": round(seconds, 2),
        "per_second": round(report.stored / seconds, 1) if seconds else None,
        "subscribers": {s.name: {"pending": s.pending, "failing": s.last_error}
                        for s in statuses},
    }


def _offer(settings: Any, ids: list[int], first: int, step: int, offered: int, rate: float,
           start_at: float) -> int:
    """One worker process of the lag figure (a web worker of the counter): its share of the
    address changes at its share of the rate, from ``start_at`` (wall time); its errors."""
    from mynumber.app import build_container
    from mynumber.registry.interfaces import SYSTEM

    container = build_container(settings)
    errors = 0
    try:
        interval = 1 / rate
        time.sleep(max(0.0, start_at - time.time()))
        due = time.perf_counter()
        for i in range(first, offered, step):
            due += interval
            try:
                address = f"東京都新宿区西新宿二丁目{i % 50 + 1}番{i % 9 + 1}号"
                container.registry.change_address(SYSTEM, ids[i % len(ids)], address,
                                                  "1638001", dt.date.today())
            except Exception:  # counted and reported
                errors += 1
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    finally:
        container.close()
    return errors


def _lag(container: Any, settings: Any, rate: int, seconds: float,
         workers: int, report: Report | None = None) -> dict[str, Any]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, wait

    from sqlalchemy import select

    from mynumber.registry.models import outbox_checkpoints, outbox_events

    container.events.drain()  # start from a quiet outbox
    ids = sorted(container.registry.residents_by_ids(range(1, 5001)))
    if not ids:
        raise RuntimeError("no residents to change")
    engine = container.databases.engine("registry")
    with engine.connect() as conn:
        start_seq = int(conn.execute(select(outbox_events.c.seq).order_by(
            outbox_events.c.seq.desc()).limit(1)).scalar() or 0)
    passed: list[tuple[float, int]] = []  # (wall time, lowest checkpoint)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            with engine.connect() as conn:
                low = conn.execute(select(outbox_checkpoints.c.position).order_by(
                    outbox_checkpoints.c.position).limit(1)).scalar()
            passed.append((time.time(), int(low or 0)))
            time.sleep(0.01)

    offered = int(rate * seconds)
    # The changes come from worker processes, as from the counter's web workers; this process
    # runs the dispatcher (as `mynumber serve` or `mynumber events deliver --follow` would),
    # which finds their commits by polling.
    start_at = time.time() + 10.0  # the workers' containers are built by then
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    futures = [pool.submit(_offer, settings, ids, w, workers, offered, rate / workers, start_at)
               for w in range(workers)]
    container.events.start()
    watcher = threading.Thread(target=watch)
    watcher.start()
    while wait(futures, timeout=0.5).not_done:
        if report is not None:  # whole seconds of offering passed
            report(max(0, min(int(time.time() - start_at), int(seconds))))
    if report is not None:
        report(int(seconds))  # every change offered
    errors = sum(f.result() for f in futures)
    offer_seconds = time.time() - start_at
    pool.shutdown()
    with engine.connect() as conn:
        end_seq = int(conn.execute(select(outbox_events.c.seq).order_by(
            outbox_events.c.seq.desc()).limit(1)).scalar() or 0)
    deadline = time.time() + 120
    while time.time() < deadline and (not passed or passed[-1][1] < end_seq
                                      or container.registry.outbox.unsequenced()):
        time.sleep(0.05)
        with engine.connect() as conn:
            end_seq = int(conn.execute(select(outbox_events.c.seq).order_by(
                outbox_events.c.seq.desc()).limit(1)).scalar() or 0)
    done.set()
    watcher.join()
    container.events.stop()
    with engine.connect() as conn:
        recorded = {int(seq): at.timestamp() for seq, at in conn.execute(
            select(outbox_events.c.seq, outbox_events.c.recorded_at)
            .where(outbox_events.c.seq > start_seq))}
    lags: list[float] = []
    j = 0
    for seq in sorted(recorded):
        while j < len(passed) and passed[j][1] < seq:
            j += 1
        if j == len(passed):
            break
        lags.append(max(0.0, passed[j][0] - recorded[seq]))
    lags.sort()

    def pct(q: float) -> float | None:
        return round(lags[min(len(lags) - 1, int(q * len(lags)))], 3) if lags else None

    return {
        "offered_per_second": rate, "worker_processes": workers,
        "achieved_per_second": round(len(recorded) / offer_seconds, 1),
        "changes": len(recorded), "errors": errors, "delivered": len(lags),
        "p50_lag_seconds": pct(0.5), "p99_lag_seconds": pct(0.99),
        "max_lag_seconds": round(lags[-1], 3) if lags else None,
        "mean_lag_seconds": round(statistics.fmean(lags), 3) if lags else None,
    }


def _measure(settings: Any, work: Path, count: int, rate: int, seconds: float,
             workers: int, spread: int | None, progress: BenchProgress | None = None,
             database: str = "sqlite") -> dict[str, Any]:
    progress = progress or NoProgress()
    with progress.phase(f"{database}: creating the databases"):
        container = _container(settings)
    try:
        result = {"burst": _burst(container, work, count, spread, progress, database)}
        with progress.phase(f"{database}: lag: {rate:,} changes/s from {workers} processes "
                            f"(seconds)", total=max(1, int(seconds))) as report:
            result["lag"] = _lag(container, settings, rate, seconds, workers, report)
        return result
    finally:
        container.close()


def run(options: BenchOptions) -> dict[str, Any]:
    count = options.count or DEFAULT_COUNT
    url = postgres_url(options)
    rate = int(options.extra.get("rate") or 1000)
    seconds = float(options.extra.get("seconds") or 10)
    workers = options.workers or 4
    # How many municipalities the burst's residents live in: a bulk import is usually one
    # municipality's (or a few municipalities') register; 0 spreads it over all 1,959.
    spread = int(options.extra.get("municipalities", 20)) or None
    work = Path(tempfile.mkdtemp(prefix="mynumber-bench-events-"))
    try:
        keys = work / "keys"
        result: dict[str, Any] = {"count": count}
        settings = bench_settings(work / "sqlite", keys, None).model_copy(
            update={"event_dispatcher": False})
        result["sqlite"] = _measure(settings, work, count, rate, seconds, workers, spread,
                                    options.progress, "sqlite")
        if url:
            with postgres_database(url) as target:
                settings = bench_settings(work / "pg", keys, target).model_copy(
                    update={"event_dispatcher": False})
                result["postgresql"] = _measure(settings, work, count, rate, seconds, workers,
                                                spread, options.progress, "postgresql")
        headline = result.get("postgresql") or result["sqlite"]
        return {
            "per_second": headline["burst"]["per_second"],
            "p99_lag_seconds": headline["lag"]["p99_lag_seconds"],
            "goal_per_second": GOAL_PER_SECOND,
            "goal_p99_lag_seconds": GOAL_P99_LAG_SECONDS,
            "measured_on": "postgresql" if "postgresql" in result else "sqlite",
            **result,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""`mynumber bench payout`: a payout run of ``--count`` recipients resolved and written
(issue 14: 1,000,000 recipients at >= 5,000/s on PostgreSQL).

Setup (not timed), on a throwaway SQLite data directory and, when a PostgreSQL URL is given,
on a throwaway PostgreSQL database:

- ``--count`` residents seeded in bulk (``registry.seed.seed_population``);
- for all but one in ``MISSING_EVERY`` a 公金受取口座 written straight into the accounts
  table in bulk (synthetic accounts at the synthetic bank 8001, branch 101; the registration
  service's checks are not what this measures), and every resident enrolled with デジタル庁
  (``pfa-<id>``) and with the paying municipality (``enrol_known_residents``: 取得番号 and
  codes in bulk).

Timed, in a fresh process (so that its peak memory is the run's own): ``PayoutService.run``
for every resident (amount 10,000 to 99,999 yen) in chunks of 5,000: the batch exchanges
through the network (each recipient's exchange row and log entry written), デジタル庁's batch
answers, the 総合振込 file streamed to disk, and the notices to those without an account.
``per_second`` is recipients / the run's wall time. The log's integration of the queued
entries (the sequencer's work, asynchronous to the run) is timed separately afterwards.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mynumber.bench import (
    BenchOptions,
    BenchProgress,
    NoProgress,
    bench_settings,
    migrated_container,
    postgres_database,
    postgres_url,
)

DEFAULT_COUNT = 100_000
GOAL_PER_SECOND = 5_000
PAYER = "municipality-131041"  # 新宿区長
TASK = "extra-public-fund-emergency-benefit"
CHUNK = 5_000
#: One recipient in this many has no registered account (reported and noticed).
MISSING_EVERY = 100
SEED_CHUNK = 50_000


def _resident_ids(container: Any) -> list[int]:
    from sqlalchemy import select

    from mynumber.registry import models as rm

    engine = container.databases.engine("registry")
    with engine.connect() as conn:
        return [int(i) for i in conn.execute(
            select(rm.Resident.id).where(rm.Resident.status == "resident")
            .order_by(rm.Resident.id)).scalars()]


def _seed(settings: Any, count: int, progress: BenchProgress, database: str) -> int:
    from typing import cast

    from sqlalchemy import Table, insert

    from mynumber.accounts import models as am
    from mynumber.accounts.interfaces import DIGITAL_AGENCY
    from mynumber.app import sync_directory
    from mynumber.registry.seed import seed_population

    with progress.phase(f"{database}: creating the databases"):
        container = migrated_container(settings)
    try:
        sync_directory(container)
        with progress.phase(f"{database}: seeding {count:,} residents", total=count) as done:
            seed_population(container, count, progress=done)
        ids = _resident_ids(container)
        for agency in (PAYER, DIGITAL_AGENCY):
            container.agencies.ensure_registered(agency)
        now = dt.datetime.now(dt.UTC)
        today = now.date()
        registrations = cast(Table, am.Registration.__table__)
        engine = container.databases.engine("accounts")
        with progress.phase(f"{database}: registering accounts", total=len(ids)) as done:
            for start in range(0, len(ids), SEED_CHUNK):
                rows = [{
                    "resident_id": rid, "bank_code": "8001", "branch_code": "101",
                    "deposit_type": "ordinary", "account_number": f"{rid % 10_000_000:07d}",
                    "holder_name": "ﾏｲﾅ ﾀﾛｳ", "route": "portal", "known_on": today,
                    "actor": "bench:payout", "authentication_id": None,
                    "certificate_serial": None, "authenticated_at": None, "name_check": "ok",
                    "name_check_reason": None, "registered_at": now, "updated_at": now,
                } for rid in ids[start:start + SEED_CHUNK] if rid % MISSING_EVERY]
                with engine.begin() as conn:
                    conn.execute(insert(registrations), rows)
                done(min(len(ids), start + SEED_CHUNK))
        with progress.phase(f"{database}: enrolling with デジタル庁 and {PAYER}",
                            total=2 * len(ids)) as done:
            for n, (agency, prefix) in enumerate(((DIGITAL_AGENCY, "pfa-"), (PAYER, "b-"))):
                for start in range(0, len(ids), SEED_CHUNK):
                    part = ids[start:start + SEED_CHUNK]
                    container.agencies.enrol_known_residents(
                        agency, {rid: f"{prefix}{rid}" for rid in part})
                    done(n * len(ids) + start + len(part))
        return len(ids)
    finally:
        container.close()


def _payout_process(settings: Any, count: int, out_path: str, queue: Any) -> None:
    """The timed run, in its own process: its peak memory is the run's."""
    from mynumber.accounts.payout import PayoutService
    from mynumber.accounts.transfer_file import DepositType, Requester
    from mynumber.app import build_container

    container = build_container(settings)
    try:
        ids = _resident_ids(container)[:count]
        recipients = [(f"b-{rid}", 10_000 + rid % 90_000) for rid in ids]
        requester = Requester(code="1310410001", name="ｼﾝｼﾞﾕｸｸ", bank_code="8001",
                              bank_name="ﾐﾗｲ", branch_code="001", branch_name="ﾎﾝﾃﾝ",
                              deposit_type=DepositType.CURRENT, account_number="0000001")
        service = PayoutService(container.databases, container.agencies, container.portal,
                                lambda: container.accounts.directory,
                                agency_name=lambda a: container.network.agency(a).name)
        # Warm the directory, the keys and the connections outside the timed window.
        container.network.agency(PAYER)
        container.accounts.directory  # noqa: B018
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        began = time.perf_counter()
        cpu_began = time.process_time()
        last = [0]

        def progress(done: int) -> None:
            last[0] = done
            queue.put(("progress", done))

        report = service.run(PAYER, TASK, "特別定額給付金", recipients,
                             dt.date.today() + dt.timedelta(days=7), requester,
                             Path(out_path), chunk=CHUNK, on_progress=progress)
        seconds = time.perf_counter() - began
        cpu = time.process_time() - cpu_began
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        integrate_began = time.perf_counter()
        integrated = 0
        while (n := container.network_log.integrate(max_batch=50_000)) > 0:
            integrated += n
        integrate_seconds = time.perf_counter() - integrate_began
        queue.put(("done", {
            "recipients": report.recipients, "paid": report.paid,
            "total_yen": report.total_yen, "unpaid": report.counts(),
            "noticed": report.noticed, "groups": report.groups,
            "seconds": round(seconds, 2),
            "per_second": round(report.recipients / seconds, 1) if seconds else None,
            # This process's CPU time (the database server's is not counted): on a shared
            # machine the wall-clock rate understates what the code does.
            "client_cpu_seconds": round(cpu, 2),
            "per_client_cpu_second": round(report.recipients / cpu, 1) if cpu else None,
            "file_bytes": report.file_bytes,
            "peak_rss_mib": round(rss * scale / 2**20, 1),
            "rss_before_run_mib": round(rss_before * scale / 2**20, 1),
            "log_entries_integrated": integrated,
            "log_integrate_seconds": round(integrate_seconds, 2),
        }))
    except BaseException as exc:
        queue.put(("error", f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        container.close()


def _measure(settings: Any, work: Path, count: int, progress: BenchProgress,
             database: str) -> dict[str, Any]:
    import queue as queue_module

    seeded = _seed(settings, count, progress, database)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    out = work / f"payout-{database}.txt"
    process = ctx.Process(target=_payout_process, args=(settings, count, str(out), queue))
    result: dict[str, Any] | None = None
    with progress.phase(f"{database}: payout run of {seeded:,} recipients",
                        total=seeded) as report:
        process.start()
        while result is None:
            try:
                kind, value = queue.get(timeout=1.0)
            except queue_module.Empty:
                if not process.is_alive():
                    raise RuntimeError("the payout process ended without a result") from None
                continue
            if kind == "progress":
                report(int(value))
            elif kind == "error":
                process.join()
                raise RuntimeError(f"the payout run failed: {value}")
            else:
                result = value
        process.join()
    result["residents"] = seeded
    out.unlink(missing_ok=True)
    return result


def run(options: BenchOptions) -> dict[str, Any]:
    count = options.count or DEFAULT_COUNT
    url = postgres_url(options)
    progress = options.progress or NoProgress()
    work = Path(tempfile.mkdtemp(prefix="mynumber-bench-payout-"))
    try:
        keys = work / "keys"
        result: dict[str, Any] = {"count": count}
        settings = bench_settings(work / "sqlite", keys, None).model_copy(
            update={"event_dispatcher": False})
        result["sqlite"] = _measure(settings, work, count, progress, "sqlite")
        if url:
            with postgres_database(url) as target:
                settings = bench_settings(work / "pg", keys, target).model_copy(
                    update={"event_dispatcher": False})
                result["postgresql"] = _measure(settings, work, count, progress, "postgresql")
        headline = result.get("postgresql") or result["sqlite"]
        return {
            "per_second": headline["per_second"],
            "goal_per_second": GOAL_PER_SECOND,
            "seconds": headline["seconds"],
            "peak_rss_mib": headline["peak_rss_mib"],
            "measured_on": "postgresql" if "postgresql" in result else "sqlite",
            **result,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

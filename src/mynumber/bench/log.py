"""`mynumber bench log`: appends per second into the access-record log, and proof times.

For ``count`` entries (default 100,000) of about 400 bytes (the canonical JSON of a realistic
public record), into a throwaway SQLite data directory and, when a PostgreSQL URL is given
(``--database-url`` or ``MYNUMBER_BENCH_DATABASE_URL``), into a throwaway database on that server:

* enqueue: :meth:`MerkleAccessLog.enqueue`, one call per entry as an exchange makes it, in
  transactions of 1,000 entries (``enqueue_per_second``);
* integrate: :meth:`MerkleAccessLog.integrate` in batches of 10,000, each signing a head
  (``integrate_per_second``);
* ``end_to_end_per_second``: count / (enqueue + integrate time); the goal is 10,000/s;
* inclusion proofs: 1,000 at random indices at the final size (mean and p99, ms), and
  consistency proofs from 200 random earlier sizes to the final size;
* ``verify_seconds``: a full :meth:`MerkleAccessLog.verify` of the final tree.

``per_second`` is the PostgreSQL end-to-end figure when measured, else the SQLite one.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mynumber.bench import (
    BenchOptions,
    BenchProgress,
    NoProgress,
    bench_settings,
    postgres_database,
    postgres_url,
)

DEFAULT_COUNT = 100_000
ENQUEUE_TRANSACTION = 1_000
INTEGRATE_BATCH = 10_000
PROOFS = 1_000
CONSISTENCY_PROOFS = 200
GOAL_PER_SECOND = 10_000
ORIGIN = "bench.invalid/access-records"


def record(i: int, rng: random.Random) -> tuple[str, bytes]:
    """A public access record like the network writes: no number, a per-record commitment."""
    from mynumber.network.interfaces import canonical_json

    at = dt.datetime(2025, 4, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=37 * i)
    serial = f"{int(at.timestamp() * 1000):013d}{i:019x}"
    body = {
        "type": "mynumber.access-record.v1",
        "serial": serial,
        "occurred_at": at.isoformat(),
        "requester": f"municipality-{rng.randint(10000, 479999):06d}",
        "provider": rng.choice(["mhlw", "nenkin", "municipality-131041", "kyokai-kenpo"]),
        "task": f"bekkyo2-{rng.randint(1, 120)}",
        "item": rng.choice(["local_tax", "resident_record", "pension", "health_insurance"]),
        "provision": f"bekkyo2-{rng.randint(1, 120)}-{rng.randint(1, 9)}",
        "outcome": rng.choice(["provided", "provided", "provided", "not_held", "refused"]),
        "restricted": False,
        "subject_commitment": f"{rng.getrandbits(256):064x}",
        "requester_signature": f"{rng.getrandbits(256):064x}",
    }
    return serial, canonical_json(body)


def _ms(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return round(statistics.fmean(values) * 1000, 3), round(p99 * 1000, 3)


def _measure(settings: Any, count: int, progress: BenchProgress | None = None,
             database: str = "sqlite") -> dict[str, Any]:
    from mynumber import migrations
    from mynumber.db import Databases
    from mynumber.network.log import (
        MerkleAccessLog,
        leaf_hash,
        verify_consistency,
        verify_inclusion,
    )

    progress = progress or NoProgress()
    databases = Databases(settings)
    try:
        with progress.phase(f"{database}: creating the databases"):
            migrations.upgrade(databases)
        log = MerkleAccessLog(databases, Ed25519PrivateKey.generate(), ORIGIN)
        rng = random.Random(6962)
        with progress.phase(f"{database}: generating {count:,} records"):
            records = [record(i, rng) for i in range(count)]
        mean_size = statistics.fmean(len(e) for _, e in records)

        # Progress is reported once per transaction or batch, never per entry.
        with progress.phase(f"{database}: enqueueing", total=count) as report:
            start = time.perf_counter()
            for lo in range(0, count, ENQUEUE_TRANSACTION):
                with databases.unit_of_work("network") as session:
                    for serial, entry in records[lo : lo + ENQUEUE_TRANSACTION]:
                        log.enqueue(session, serial, entry)
                report(min(lo + ENQUEUE_TRANSACTION, count))
            enqueue_seconds = time.perf_counter() - start

        with progress.phase(f"{database}: integrating", total=count) as report:
            start = time.perf_counter()
            integrated = 0
            while True:
                done = log.integrate(INTEGRATE_BATCH)
                integrated += done
                report(integrated)
                if done == 0:
                    break
            integrate_seconds = time.perf_counter() - start
        head = log.latest_head()

        with progress.phase(f"{database}: proofs",
                            total=PROOFS + CONSISTENCY_PROOFS) as report:
            times = []
            all_valid = True
            for n in range(PROOFS):
                index = rng.randrange(head.size)
                t0 = time.perf_counter()
                proof = log.inclusion_proof(index)
                times.append(time.perf_counter() - t0)
                all_valid &= verify_inclusion(leaf_hash(records[index][1]), index, head.size,
                                              proof.path, head.root_hash)
                report(n + 1)
            inclusion_mean, inclusion_p99 = _ms(times)

            ctimes = []
            for n in range(CONSISTENCY_PROOFS):
                first = rng.randint(1, head.size)
                t0 = time.perf_counter()
                cproof = log.consistency_proof(first, head.size)
                ctimes.append(time.perf_counter() - t0)
                if first in (1, head.size):  # cheap to check fully here
                    all_valid &= verify_consistency(first, head.size, log.root_at(first),
                                                    head.root_hash, cproof.path)
                report(PROOFS + n + 1)
            consistency_mean, consistency_p99 = _ms(ctimes)

        with progress.phase(f"{database}: verifying the whole log"):
            start = time.perf_counter()
            verified = log.verify()
            verify_seconds = time.perf_counter() - start
        total = enqueue_seconds + integrate_seconds
        return {
            "stored": integrated,
            "entry_bytes_mean": round(mean_size, 1),
            "enqueue_per_second": round(count / enqueue_seconds, 1),
            "integrate_per_second": round(count / integrate_seconds, 1),
            "end_to_end_per_second": round(count / total, 1),
            "inclusion_proof_ms_mean": inclusion_mean,
            "inclusion_proof_ms_p99": inclusion_p99,
            "consistency_proof_ms_mean": consistency_mean,
            "consistency_proof_ms_p99": consistency_p99,
            "proofs_verified": all_valid,
            "verify_seconds": round(verify_seconds, 3),
            "verify_ok": verified.ok,
        }
    finally:
        databases.dispose()


def run(options: BenchOptions) -> dict[str, Any]:
    count = options.count or DEFAULT_COUNT
    url = postgres_url(options)  # refused before any work if it is not PostgreSQL
    work = Path(tempfile.mkdtemp(prefix="mynumber-bench-log-"))
    try:
        keys = work / "keys"
        sqlite = bench_settings(work / "sqlite", keys, None)
        result: dict[str, Any] = {"count": count}
        result.update({f"sqlite_{k}": v for k, v
                       in _measure(sqlite, count, options.progress, "sqlite").items()})
        if url:
            with postgres_database(url) as target:
                postgres = bench_settings(work / "pg", keys, target)
                result.update({f"postgres_{k}": v for k, v in _measure(
                    postgres, count, options.progress, "postgresql").items()})
        measured_on = "postgresql" if "postgres_stored" in result else "sqlite"
        prefix = "postgres" if measured_on == "postgresql" else "sqlite"
        return {
            "per_second": result[f"{prefix}_end_to_end_per_second"],
            **result,
            "goal_per_second": GOAL_PER_SECOND,
            "measured_on": measured_on,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

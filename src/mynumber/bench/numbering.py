"""Workload ``numbering``: how fast the nation can be numbered, and in how much memory.

Numbering is, for counters 0..N-1, ``Numbering.resident_codes`` (FF1 under the pool key over 10
digits, plus the check digit) then ``Numbering.individual_numbers`` (FF1 under the numbering key
over the 11-digit code, plus the check digit): the vectorised path of ``registry/numbering.py``
exactly as the registry uses it, with throwaway random keys held in memory (never the registry's
own keys).

The counters are cut into chunks spread over ``workers`` processes.  Each worker builds its own
``Numbering`` from the raw keys, numbers its chunk, writes the numbers to a scratch file (a real
run has to put them somewhere too) and returns a count and checksums rather than the numbers.
Uniqueness is then checked for real, not assumed from FF1 being a permutation:

1. each chunk file is sorted, checked for two equal neighbours, and cut at the bounds of 2^k
   equal value ranges (buckets);
2. bucket by bucket, the workers read that value range from every chunk, merge-sort it and
   look for equal neighbours.  Two equal numbers always land in the same bucket, so this finds
   every duplicate in the whole run while holding one bucket (about 2 million numbers) at a
   time instead of the whole run.

Reported figures: ``seconds`` is the wall time of the numbering step (numbering, checksums and
the write) once the workers are up, and ``per_second`` is ``count / seconds``.  The uniqueness
check is the benchmark auditing itself, not part of numbering, and is timed apart as
``verify_seconds``; process start-up, a fixed cost, is ``startup_seconds``.  The machine may be
shared with other work, so the workers' CPU
time is reported too: ``per_cpu_second`` is what one core numbers per second when nobody else
uses it, and ``nation_seconds_cpu_bound`` the nation at that rate on every worker.
``peak_memory_mb`` is the parent's peak RSS plus every worker's peak RSS (``getrusage``
``ru_maxrss``): an upper bound on what the run held at any one time.  The baseline is the
per-number scalar path (``Numbering.resident_code`` + ``Numbering.individual_number``, i.e. the
pure-Python FF1 class) on a sample, in the same run, and it must give the same numbers as the
vectorised path (``baseline_matches_vector``).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import resource
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mynumber.bench import BenchOptions, BenchProgress, NoProgress
from mynumber.codes import individual_number, resident_code
from mynumber.registry.numbering import INDEX_KEY, NUMBERING_KEY, POOL_KEY, Numbering

NATION = 125_000_000
DEFAULT_COUNT = 10_000_000
DEFAULT_CHUNK = 1_000_000
# Numbers per call of Numbering inside a chunk: its check-digit passes then stay in the CPU
# cache (measured 10-30% more numbers per CPU second than whole 1M chunks).
INNER_BLOCK = 1 << 17
BASELINE_SAMPLE = 20_000
# Aim for buckets of about this many numbers in the cross-chunk check.
BUCKET_TARGET = 2_000_000
# Numbers are 12 digits: every value lies in [0, 10**12).
NUMBER_SPACE = 10**12
GOAL = {"nation_seconds": 30, "peak_memory_mb": 2000, "ratio": 100}


class MemoryKeys:
    """A KeyProvider holding throwaway keys in memory (the bench never touches real keys)."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self._keys = dict(keys)

    @property
    def is_development(self) -> bool:
        return True

    def symmetric_key(self, purpose: str, length: int = 32) -> bytes:
        key = self._keys[purpose]
        if len(key) != length:
            raise ValueError(f"key {purpose!r} has {len(key)} bytes, expected {length}")
        return key

    def __repr__(self) -> str:  # never show a key
        return f"MemoryKeys({sorted(self._keys)})"


def throwaway_keys() -> dict[str, bytes]:
    return {purpose: secrets.token_bytes(32) for purpose in (POOL_KEY, NUMBERING_KEY, INDEX_KEY)}


def number_range(
    numbering: Numbering, start: int, stop: int, block: int | None = None
) -> npt.NDArray[np.uint64]:
    """The 個人番号 (generation 0) of the residents whose pool counters are start..stop-1,
    computed ``block`` at a time (same result; smaller blocks keep the check-digit passes of
    ``Numbering`` in the CPU cache)."""
    if block is None or stop - start <= block:
        counters = np.arange(start, stop, dtype=np.uint64)
        return numbering.individual_numbers(numbering.resident_codes(counters))
    out = np.empty(stop - start, dtype=np.uint64)
    for first in range(start, stop, block):
        last = min(first + block, stop)
        out[first - start : last - start] = number_range(numbering, first, last)
    return out


def bucket_bounds(buckets: int) -> npt.NDArray[np.uint64]:
    """Upper bounds of ``buckets`` equal value ranges covering [0, 10**12)."""
    width = -(-NUMBER_SPACE // buckets)
    return np.array([min(width * (b + 1), NUMBER_SPACE) for b in range(buckets)], np.uint64)


def maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(who).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


# -- worker side ------------------------------------------------------------------------------

_numbering: Numbering | None = None


def _init_worker(keys: dict[str, bytes]) -> None:
    global _numbering
    _numbering = Numbering(MemoryKeys(keys))


def _ready(_: int) -> int:
    time.sleep(0.05)  # so that every worker takes one: all are up before the clock starts
    return os.getpid()


@dataclass(frozen=True)
class ChunkTask:
    index: int
    start: int
    stop: int
    scratch: str


@dataclass(frozen=True)
class ChunkResult:
    index: int
    count: int
    xor: int
    total: int  # sum mod 2**64
    checks_ok: bool  # a sample validated through the string path of codes.individual_number
    numbering_seconds: float
    numbering_cpu: float
    write_seconds: float
    pid: int
    maxrss_mb: float


def _chunk_path(scratch: str, index: int) -> Path:
    return Path(scratch) / f"chunk-{index:06d}.npy"


def _number_chunk(task: ChunkTask) -> ChunkResult:
    """Step 1: number one chunk and write the numbers out (as a real run would store them)."""
    assert _numbering is not None, "worker not initialised"
    t0, c0 = time.perf_counter(), time.process_time()
    numbers = number_range(_numbering, task.start, task.stop, INNER_BLOCK)
    t1, c1 = time.perf_counter(), time.process_time()
    xor = int(np.bitwise_xor.reduce(numbers)) if numbers.size else 0
    total = int(numbers.sum(dtype=np.uint64)) if numbers.size else 0
    sample = numbers[:: max(1, numbers.size // 16)]
    checks_ok = all(individual_number.is_valid(f"{n:012d}") for n in sample.tolist())
    np.save(_chunk_path(task.scratch, task.index), numbers, allow_pickle=False)
    t2 = time.perf_counter()
    return ChunkResult(task.index, int(numbers.size), xor, total, checks_ok, t1 - t0, c1 - c0,
                       t2 - t1, os.getpid(), maxrss_mb())


@dataclass(frozen=True)
class SortTask:
    index: int
    scratch: str
    bounds: tuple[int, ...]


@dataclass(frozen=True)
class SortResult:
    index: int
    duplicates: int  # equal neighbours within the chunk
    offsets: tuple[int, ...]  # bucket b is sorted[offsets[b]:offsets[b + 1]]
    pid: int
    maxrss_mb: float


def _sort_chunk(task: SortTask) -> SortResult:
    """Step 2a: sort one chunk in its file and cut it into the value ranges."""
    path = _chunk_path(task.scratch, task.index)
    numbers = np.load(path, allow_pickle=False)
    numbers.sort()
    duplicates = int(np.count_nonzero(numbers[1:] == numbers[:-1]))
    cuts = np.searchsorted(numbers, np.array(task.bounds, dtype=np.uint64), side="left")
    np.save(path, numbers, allow_pickle=False)
    return SortResult(task.index, duplicates, (0, *(int(c) for c in cuts)), os.getpid(),
                      maxrss_mb())


@dataclass(frozen=True)
class BucketTask:
    bucket: int
    scratch: str
    slices: tuple[tuple[int, int, int], ...]  # (chunk index, begin, end)


@dataclass(frozen=True)
class BucketResult:
    bucket: int
    count: int
    duplicates: int
    pid: int
    maxrss_mb: float


def _check_bucket(task: BucketTask) -> BucketResult:
    """Step 2b: one value range from every chunk, sorted together: any equal pair is here."""
    parts = []
    for index, begin, end in task.slices:
        if end > begin:
            mapped = np.load(_chunk_path(task.scratch, index), mmap_mode="r", allow_pickle=False)
            parts.append(np.array(mapped[begin:end]))
            del mapped
    values = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    del parts
    # Each part is sorted: the stable sort (timsort for uint64) merges the runs.
    values.sort(kind="stable")
    duplicates = int(np.count_nonzero(values[1:] == values[:-1]))
    return BucketResult(task.bucket, int(values.size), duplicates, os.getpid(), maxrss_mb())


# -- driver -----------------------------------------------------------------------------------


def baseline(numbering: Numbering, sample: int) -> tuple[float, bool]:
    """Scalar numbers per second on counters 0..sample-1, and whether they equal the vector
    path's numbers for the same counters."""
    t0 = time.perf_counter()
    scalar = [
        numbering.individual_number(numbering.resident_code(counter))
        for counter in range(sample)
    ]
    seconds = time.perf_counter() - t0
    vector = number_range(numbering, 0, sample)
    matches = [int(x) for x in scalar] == vector.tolist()
    codes_ok = all(resident_code.is_valid(numbering.resident_code(c)) for c in range(10))
    return sample / seconds, matches and codes_ok


def run_numbering(
    count: int = DEFAULT_COUNT,
    workers: int | None = None,
    *,
    chunk: int = DEFAULT_CHUNK,
    baseline_sample: int = BASELINE_SAMPLE,
    start_method: str = "spawn",
    scratch_dir: str | None = None,
    progress: BenchProgress | None = None,
) -> dict[str, Any]:
    """Number ``count`` residents on ``workers`` processes; return the figures."""
    if not 0 < count <= 10**10:
        raise ValueError("count must be 1 to 10**10 (the 住民票コード pool)")
    progress = progress or NoProgress()
    workers = max(1, workers or os.cpu_count() or 1)
    chunk = max(1, min(chunk, -(-count // workers)))
    keys = throwaway_keys()
    load_before = os.getloadavg()

    sample = min(baseline_sample, count)
    with progress.phase(f"baseline (scalar path, {sample:,} numbers)"):
        base_rate, base_matches = baseline(Numbering(MemoryKeys(keys)), sample)

    buckets = 1 << max(0, math.ceil(math.log2(max(1, count / BUCKET_TARGET))))
    bounds = tuple(int(b) for b in bucket_bounds(buckets))
    context = multiprocessing.get_context(start_method)
    with tempfile.TemporaryDirectory(prefix="mynumber-bench-", dir=scratch_dir) as scratch:
        tasks = [ChunkTask(i, start, min(start + chunk, count), scratch)
                 for i, start in enumerate(range(0, count, chunk))]
        t_start = time.perf_counter()
        with context.Pool(workers, initializer=_init_worker, initargs=(keys,)) as pool:
            with progress.phase(f"starting {workers} worker processes"):
                pool.map(_ready, range(workers), chunksize=1)
            results: list[ChunkResult] = []
            numbered_so_far = 0
            with progress.phase("numbering", total=count) as report:
                t_ready = time.perf_counter()  # the phase's start line is not numbering
                # Reported here, in the parent, once per finished chunk: nothing in the
                # workers' timed numbering.
                for result in pool.imap_unordered(_number_chunk, tasks):
                    results.append(result)
                    numbered_so_far += result.count
                    report(numbered_so_far)
                t_numbered = time.perf_counter()
            with progress.phase("checking uniqueness (chunks, then value ranges)",
                                total=len(results) + buckets) as report:
                sorted_chunks: list[SortResult] = []
                for sort_result in pool.imap_unordered(
                        _sort_chunk, [SortTask(r.index, scratch, bounds) for r in results]):
                    sorted_chunks.append(sort_result)
                    report(len(sorted_chunks))
                sorted_chunks.sort(key=lambda r: r.index)
                bucket_tasks = [
                    BucketTask(b, scratch, tuple((r.index, r.offsets[b], r.offsets[b + 1])
                                                 for r in sorted_chunks))
                    for b in range(buckets)
                ]
                checked: list[BucketResult] = []
                for bucket_result in pool.imap_unordered(_check_bucket, bucket_tasks):
                    checked.append(bucket_result)
                    report(len(sorted_chunks) + len(checked))
                t_verified = time.perf_counter()
            pool.close()
            pool.join()

    child_peaks: dict[int, float] = {}
    for pid, mb in [*((r.pid, r.maxrss_mb) for r in results),
                    *((r.pid, r.maxrss_mb) for r in sorted_chunks),
                    *((c.pid, c.maxrss_mb) for c in checked)]:
        child_peaks[pid] = max(child_peaks.get(pid, 0.0), mb)
    parent_mb = maxrss_mb(resource.RUSAGE_SELF)
    children_max_mb = maxrss_mb(resource.RUSAGE_CHILDREN)
    peak_mb = parent_mb + sum(child_peaks.values())

    numbered = sum(r.count for r in results)
    in_chunk_duplicates = sum(r.duplicates for r in sorted_chunks)
    duplicates = sum(c.duplicates for c in checked)  # the whole run (in-chunk ones included)
    bucketed = sum(c.count for c in checked)
    xor = 0
    total = 0
    for r in results:
        xor ^= r.xor
        total = (total + r.total) % 2**64
    seconds = t_numbered - t_ready
    per_second = numbered / seconds
    ratio = per_second / base_rate
    numbering_cpu = sum(r.numbering_cpu for r in results)
    per_cpu_second = numbered / numbering_cpu if numbering_cpu > 0 else 0.0
    distinct = (numbered == count and bucketed == count and in_chunk_duplicates == 0
                and duplicates == 0)
    return {
        "per_second": per_second,
        "count": numbered,
        "workers": workers,
        "seconds": seconds,
        "nation_seconds_extrapolated": NATION / per_second,
        "peak_memory_mb": round(peak_mb, 1),
        "baseline_per_second": base_rate,
        "ratio": ratio,
        "distinct": distinct,
        "goal": dict(GOAL),
        "goal_met": {
            "nation_seconds": NATION / per_second <= GOAL["nation_seconds"],
            "peak_memory_mb": peak_mb <= GOAL["peak_memory_mb"],
            "ratio": ratio >= GOAL["ratio"],
        },
        # Like for like: one core of the vector path against the one-core scalar loop.
        "ratio_per_core": per_second / workers / base_rate,
        "baseline_sample": sample,
        "baseline_matches_vector": base_matches,
        "check_digits_valid": all(r.checks_ok for r in results),
        "duplicates": duplicates,
        "verify_seconds": t_verified - t_numbered,
        "startup_seconds": t_ready - t_start,
        "chunk": chunk,
        "chunks": len(results),
        "buckets": buckets,
        "checksum_xor": f"{xor:016x}",
        "checksum_sum": f"{total:016x}",
        # Worker seconds summed over chunks.  CPU time is what other load on the machine
        # does not inflate: the numbering rate of a core one has to oneself.
        "worker_seconds": {
            "numbering": sum(r.numbering_seconds for r in results),
            "numbering_cpu": numbering_cpu,
            "write": sum(r.write_seconds for r in results),
        },
        "per_cpu_second": per_cpu_second,
        "nation_seconds_cpu_bound": NATION / (per_cpu_second * workers) if per_cpu_second
        else None,
        "loadavg_before": [round(x, 2) for x in load_before],
        "memory_mb": {
            "parent": round(parent_mb, 1),
            "workers": [round(v, 1) for v in child_peaks.values()],
            "largest_child_rusage": round(children_max_mb, 1),
        },
        "start_method": start_method,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }


def run(options: BenchOptions) -> dict[str, Any]:
    extra = options.extra
    return run_numbering(
        options.count or DEFAULT_COUNT,
        options.workers,
        chunk=int(extra.get("chunk", DEFAULT_CHUNK)),
        baseline_sample=int(extra.get("baseline_sample", BASELINE_SAMPLE)),
        start_method=str(extra.get("start_method", "spawn")),
        scratch_dir=extra.get("scratch_dir"),
        progress=options.progress,
    )

"""Per-client rate limits and request counters of the self-information API.

Both live in memory, **per process** (docs/oidc.md): with N processes a client gets up to N
times its limit, and each process batches its counters. This is a known, documented limit;
put a shared limiter in front of the processes when that matters.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from mynumber.db import Databases, HotConnections, HotSQL, utcnow


class Counters:
    """Per-client request counters kept in memory and flushed with one UPDATE per client at
    most once a second (and whenever monitoring is read), so the hot path writes nothing
    for them. A process that dies loses at most its last second of counts."""

    FLUSH_SECONDS = 1.0

    def __init__(self, databases: Databases) -> None:
        self.databases = databases
        self._lock = threading.Lock()
        self._pending: dict[str, list[Any]] = {}  # client -> [requests, refusals, limited, last]
        self._last_flush = time.monotonic()
        self._hot = HotConnections(databases, "portal")
        self._update = HotSQL(
            "UPDATE oidc_clients SET requests = requests + :r, refusals = refusals + :f, "
            "rate_limited = rate_limited + :l, last_request_at = :at WHERE client_id = :c"
        )

    def count(self, client_id: str, *, refused: bool = False, limited: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            entry = self._pending.get(client_id)
            if entry is None:
                entry = self._pending[client_id] = [0, 0, 0, None]
            entry[0] += 1
            entry[1] += refused
            entry[2] += limited
            entry[3] = utcnow()
            due = now - self._last_flush >= self.FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        if not pending:
            return
        with self._hot.connection() as raw:
            for client_id, (r, f, limited, at) in pending.items():
                self._hot.run(raw, self._update,
                              {"r": r, "f": f, "l": limited, "at": at, "c": client_id})


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests a minute, bursts up to that many.
    In memory, per process (docs/oidc.md: each process enforces the limit on its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, list[float]] = {}  # client -> [tokens, last, capacity]

    def take(self, client_id: str, per_minute: int) -> float:
        """0 when allowed, else the seconds until a request would be."""
        now = time.monotonic()
        rate = per_minute / 60.0
        with self._lock:
            bucket = self._buckets.get(client_id)
            if bucket is None or bucket[2] != per_minute:
                tokens = float(per_minute) if bucket is None else min(bucket[0], per_minute)
                bucket = self._buckets[client_id] = [tokens, now, float(per_minute)]
            tokens = min(bucket[2], bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / rate

"""住基ネット as a subscriber of the registry's events (``registry.resident.<kind>``).

``make_handler(juki, registry)`` gives the ``handle(events)`` function the dispatcher calls
(subscriber name :data:`mynumber.juki.interfaces.SUBSCRIBER`, ``"juki"``). For each person in
the batch it reads the *current* record through the registry's interface (in bulk with
``residents_by_ids`` when the registry offers it) and writes it with the seq of the person's
newest event in the batch; the copy ignores anything not newer than what it reflects. So a
batch delivered twice, or an older batch delivered after a newer one, changes nothing, and a
handler that fails part-way is simply run again.

The latest change (異動事由・異動年月日) is the newest event that changes 本人確認情報; a number
reissue changes none of it (住基ネット holds no 個人番号) and only moves ``applied_seq``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from mynumber.juki.interfaces import CopyUpdate, JukiService, RegistryReader
from mynumber.kernel.events import Event, Subscriber
from mynumber.registry.interfaces import ResidentNotFound, ResidentRecord, every_resident

log = logging.getLogger("mynumber.juki.events")

EVENT_PREFIX = "registry.resident."
#: Life events that change none of 本人確認情報.
NOT_IDENTITY_CHANGES = frozenset({"number_reissue"})


def _current(registry: RegistryReader, wanted: dict[int, str]) -> dict[int, ResidentRecord]:
    bulk: Callable[[Sequence[int]], dict[int, ResidentRecord]] | None = getattr(
        registry, "residents_by_ids", None)
    if bulk is not None:
        ids = list(wanted)
        found: dict[int, ResidentRecord] = {}
        for start in range(0, len(ids), 1000):
            found.update(bulk(ids[start:start + 1000]))
        return found
    out = {}
    for rid, code in wanted.items():  # until the registry offers the bulk read
        try:
            out[rid] = registry.resident_by_code(code)
        except ResidentNotFound:
            continue
    return out


def make_handler(juki: JukiService, registry: RegistryReader) -> Callable[[Sequence[Event]], None]:
    def handle(events: Sequence[Event]) -> None:
        newest: dict[int, int] = {}  # resident id -> newest seq in the batch
        change: dict[int, tuple[int, str, dt.date]] = {}  # newest identity change
        codes: dict[int, str] = {}
        for event in events:
            if not event.type.startswith(EVENT_PREFIX):
                continue
            payload: Any = event.payload
            try:
                rid = int(payload["resident_id"])
                kind = str(payload["kind"])
                occurred = dt.date.fromisoformat(str(payload["occurred_on"])[:10])
            except (KeyError, TypeError, ValueError):
                log.warning("juki: event %s has no usable payload; skipped", event.seq)
                continue
            codes[rid] = str(payload.get("resident_code") or "")
            if event.seq > newest.get(rid, -1):
                newest[rid] = event.seq
            if kind not in NOT_IDENTITY_CHANGES and event.seq > change.get(rid, (-1,))[0]:
                change[rid] = (event.seq, kind, occurred)
        if not newest:
            return
        applied = juki.applied_seqs(list(newest))
        stale = {rid for rid, seq in newest.items() if applied.get(rid, -1) >= seq}
        wanted = {rid: codes[rid] for rid in newest if rid not in stale}
        if not wanted:
            return
        records = _current(registry, wanted)
        updates = []
        for rid in wanted:
            record = records.get(rid)
            if record is None:  # the registry does not know it (any more): nothing to copy
                continue
            seen = change.get(rid)
            updates.append(CopyUpdate(record, newest[rid], seen[1] if seen else None,
                                      seen[2] if seen else None))
        juki.apply(updates)

    return handle


def subscriber(juki: JukiService, registry: RegistryReader) -> Subscriber:
    """The dispatcher's subscriber for 住基ネット (only registry resident events)."""
    return Subscriber("juki", make_handler(juki, registry))


def backfill(juki: JukiService, registry: RegistryReader, *, chunk: int = 1000,
             empty_chunks: int = 20) -> int:
    """Copy every resident the registry has (for a copy created after its residents, e.g. a
    database seeded before the outbox existed). Rows are written with seq 0, so every event
    the dispatcher delivers later still wins, and rows already copied are left alone. Needs
    the registry's bulk read; walks ids in chunks until ``empty_chunks`` chunks in a row hold
    nobody. Returns how many rows were written."""
    bulk: Callable[[Sequence[int]], dict[int, ResidentRecord]] | None = getattr(
        registry, "residents_by_ids", None)
    if bulk is None:
        raise RuntimeError("the registry offers no bulk read (residents_by_ids)")
    written = 0
    for records in every_resident(bulk, chunk=chunk, empty_chunks=empty_chunks):
        written += juki.apply([CopyUpdate(r, 0, "import", dt.date.today()) for r in records])
    return written

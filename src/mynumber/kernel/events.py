"""The transactional outbox: how a change in one context reaches the others.

A context that publishes (the registry first) keeps two tables in its own database:

- ``outbox_events``: one row per change, inserted **in the same transaction as the change**
  (:meth:`Outbox.publish`), so a change and its event commit or roll back together;
- ``outbox_checkpoints``: for each subscriber, the position (``seq``) of the last event it
  has taken, its lease, and its last failure.

Order. Rows get an ``id`` when inserted, but on PostgreSQL two transactions can commit out of
id order, so a reader that went by ``id`` could pass over an event that commits a moment
later. Events are therefore numbered a second time, after commit: :meth:`Outbox.sequence`
gives committed, unnumbered rows the next ``seq`` values in one statement (under an advisory
lock on PostgreSQL; SQLite has one writer). Subscribers read by ``seq`` only, so what they
read is gap-free and never changes.

Delivery is at least once. :class:`Dispatcher` hands each subscriber the events after its
checkpoint in batches and moves the checkpoint after the handler returned. A crash (kill -9)
between the two delivers the batch again, so every handler is **idempotent**: it applies the
*current* state it reads through the publishing context's interface, or keys what it writes on
the event's ``seq``. A handler that raises leaves its checkpoint where it was; the dispatcher
records the error (its type, never its data), backs off, and tries again, while the other
subscribers go on. A lease on the checkpoint row keeps two dispatcher processes from
delivering the same subscriber's batches at once.

Lag is measured, not guessed: :meth:`Dispatcher.status` gives, per subscriber, how many
events are waiting and how old the oldest is (``/healthz`` shows it).

Events never carry a 個人番号: ``payload`` is checked before it is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber.codes.number_scan import contains_individual_number
from mynumber.db import Databases, UTCDateTime, utcnow

log = logging.getLogger("mynumber.events")

#: Events handed to a handler at once.
BATCH_SIZE = 10000
#: How long a dispatcher owns a subscriber's checkpoint without renewing it.
LEASE_SECONDS = 30.0
#: Pause before the n-th retry of a failing subscriber (capped at the last value).
BACKOFF_SECONDS: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
#: How often an idle dispatcher looks for events committed by another process.
POLL_SECONDS = 0.5


BigId = BigInteger().with_variant(Integer, "sqlite")


class EventPayloadRefused(ValueError):
    """A payload that would carry a 個人番号: a programming error, never written."""


def outbox_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The outbox's two tables, declared on a publishing context's metadata (its own
    database, its own migrations)."""
    events = Table(
        "outbox_events", metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("seq", BigInteger, nullable=True),
        Column("type", String(60), nullable=False),
        Column("subject", String(60), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("recorded_at", UTCDateTime, nullable=False),
        Index("uq_outbox_events_seq", "seq", unique=True),
        Index("ix_outbox_events_unsequenced", "id",
              postgresql_where=text("seq IS NULL"), sqlite_where=text("seq IS NULL")),
    )
    checkpoints = Table(
        "outbox_checkpoints", metadata,
        Column("subscriber", String(60), primary_key=True),
        Column("position", BigInteger, nullable=False, default=0),
        Column("lease_owner", String(120), nullable=True),
        Column("lease_until", UTCDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", String(300), nullable=True),
        Column("failing_since", UTCDateTime, nullable=True),
        Column("delivered", BigInteger, nullable=False, default=0),
        Column("updated_at", UTCDateTime, nullable=False),
    )
    return events, checkpoints


@dataclass(frozen=True)
class Event:
    """One published change. ``type`` is ``<context>.<subject>.<change>`` (e.g.
    ``registry.resident.birth``); ``subject`` names what changed (``resident:42``)."""

    seq: int
    type: str
    subject: str
    payload: Mapping[str, Any]
    recorded_at: dt.datetime


Handler = Callable[[Sequence[Event]], None]


@dataclass(frozen=True)
class Subscriber:
    """``name`` is stable: it keys the checkpoint. ``types`` limits what the handler is given
    (None: every event); events of other types still move its checkpoint."""

    name: str
    handle: Handler
    types: frozenset[str] | None = None
    batch_size: int = BATCH_SIZE


@dataclass(frozen=True)
class SubscriberStatus:
    name: str
    position: int
    head: int
    pending: int
    oldest_pending_seconds: float
    attempts: int
    last_error: str | None
    failing_since: dt.datetime | None
    delivered: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscriber": self.name, "position": self.position, "head": self.head,
            "pending": self.pending,
            "oldest_pending_seconds": round(self.oldest_pending_seconds, 3),
            "attempts": self.attempts, "last_error": self.last_error,
            "failing_since": None if self.failing_since is None
            else self.failing_since.isoformat(timespec="seconds"),
            "delivered": self.delivered,
        }


def _check_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(payload)
    if contains_individual_number(data):
        raise EventPayloadRefused("an event must not carry an individual number")
    return data


class Outbox:
    """One publishing context's outbox."""

    def __init__(self, databases: Databases, context: str, events: Table,
                 checkpoints: Table) -> None:
        self.databases = databases
        self.context = context
        self.events = events
        self.checkpoints = checkpoints
        self._after_commit: list[Callable[[], None]] = []

    # -- publishing (inside the caller's transaction) ----------------------------------------
    def publish(self, session: Session | Connection, type_: str, subject: str,
                payload: Mapping[str, Any], *, at: dt.datetime | None = None) -> None:
        session.execute(insert(self.events).values(
            type=type_, subject=subject, payload=_check_payload(payload),
            recorded_at=at or utcnow()))

    def publish_rows(self, session: Session | Connection,
                     rows: Iterable[tuple[str, str, Mapping[str, Any]]],
                     *, at: dt.datetime | None = None) -> int:
        now = at or utcnow()
        values = [{"type": t, "subject": s, "payload": _check_payload(p), "recorded_at": now}
                  for t, s, p in rows]
        if values:
            session.execute(insert(self.events), values)
        return len(values)

    def on_commit(self, hook: Callable[[], None]) -> None:
        """Called by the publisher after a transaction with events committed (the in-process
        dispatcher wakes up instead of waiting for its next poll)."""
        self._after_commit.append(hook)

    def committed(self) -> None:
        for hook in self._after_commit:
            try:
                hook()
            except Exception:  # a wake-up must never fail the change that committed
                log.exception("outbox after-commit hook failed")

    # -- ordering ------------------------------------------------------------------------------
    def sequence(self, limit: int = 20_000) -> int:
        """Number committed, unnumbered events in id order; returns how many."""
        e = self.events.name
        statement = text(  # the table's own name, no input
            f"UPDATE {e} SET seq = r.base + r.rn FROM ("  # noqa: S608
            f"SELECT id, row_number() OVER (ORDER BY id) AS rn, "
            f"(SELECT coalesce(max(seq), 0) FROM {e}) AS base "
            f"FROM {e} WHERE seq IS NULL ORDER BY id LIMIT :limit) AS r "
            f"WHERE {e}.id = r.id")
        with self.databases.engine(self.context).begin() as conn:
            if self.databases.is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                             {"key": f"mynumber.outbox.{self.context}"})
            result = conn.execute(statement, {"limit": limit})
            return int(result.rowcount or 0)

    def head(self) -> int:
        with self.databases.engine(self.context).connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(self.events.c.seq), 0)))
                       .scalar_one())

    def unsequenced(self) -> int:
        with self.databases.engine(self.context).connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.events)
                                    .where(self.events.c.seq.is_(None))).scalar_one())

    def read(self, after: int, limit: int) -> list[Event]:
        c = self.events.c
        with self.databases.engine(self.context).connect() as conn:
            rows = conn.execute(
                select(c.seq, c.type, c.subject, c.payload, c.recorded_at)
                .where(c.seq > after).order_by(c.seq).limit(limit)).all()
        return [Event(int(r.seq), r.type, r.subject, r.payload or {}, r.recorded_at)
                for r in rows]


class Dispatcher:
    """Delivers one outbox's events to its subscribers: :meth:`drain` synchronously (tests,
    ``mynumber events deliver``), or a background thread (:meth:`start`) in the serving
    process, woken after each commit and polling for other processes' events."""

    def __init__(self, outbox: Outbox, subscribers: Sequence[Subscriber], *,
                 owner: str | None = None, poll_seconds: float = POLL_SECONDS) -> None:
        names = [s.name for s in subscribers]
        if len(set(names)) != len(names):
            raise ValueError(f"subscriber names must be unique: {names}")
        self.outbox = outbox
        self.subscribers = list(subscribers)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at: dict[str, float] = {}
        self._ensured = False
        self._lock = threading.Lock()  # one delivery round at a time in this process
        outbox.on_commit(self.wake)

    # -- checkpoints ---------------------------------------------------------------------------
    def _ensure_checkpoints(self) -> None:
        if self._ensured:
            return
        cp = self.outbox.checkpoints
        with self.outbox.databases.engine(self.outbox.context).begin() as conn:
            known = set(conn.execute(select(cp.c.subscriber)).scalars())
            for s in self.subscribers:
                if s.name not in known:
                    try:
                        with conn.begin_nested():
                            conn.execute(insert(cp).values(
                                subscriber=s.name, position=0, attempts=0, delivered=0,
                                updated_at=utcnow()))
                    except IntegrityError:  # another process created it first
                        log.debug("checkpoint %s created concurrently", s.name)
        self._ensured = True

    def _lease(self, conn: Connection, name: str, now: dt.datetime) -> int | None:
        """Take (or renew) the subscriber's lease; its position, or None if another process
        holds it."""
        cp = self.outbox.checkpoints
        until = now + dt.timedelta(seconds=LEASE_SECONDS)
        taken = conn.execute(
            update(cp).where(
                cp.c.subscriber == name,
                (cp.c.lease_owner.is_(None)) | (cp.c.lease_owner == self.owner)
                | (cp.c.lease_until < now))
            .values(lease_owner=self.owner, lease_until=until)
            .returning(cp.c.position)).first()
        return None if taken is None else int(taken[0])

    # -- delivery ------------------------------------------------------------------------------
    def deliver(self, subscriber: Subscriber,
                reads: dict[tuple[int, int], list[Event]] | None = None) -> int:
        """One batch for one subscriber; how many events it moved past (0: nothing to do, or
        another process holds the lease, or the handler failed). ``reads`` shares what one
        round read among the subscribers that stand at the same position."""
        engine = self.outbox.databases.engine(self.outbox.context)
        cp = self.outbox.checkpoints
        now = utcnow()
        with engine.begin() as conn:
            position = self._lease(conn, subscriber.name, now)
        if position is None:
            return 0
        key = (position, subscriber.batch_size)
        shared = reads.get(key) if reads is not None else None
        events = shared if shared is not None else self.outbox.read(position,
                                                                     subscriber.batch_size)
        if reads is not None:
            reads[key] = events
        if not events:
            return 0
        wanted = [e for e in events if subscriber.types is None or e.type in subscriber.types]
        last = events[-1].seq
        try:
            if wanted:
                subscriber.handle(wanted)
        except Exception as exc:
            self._failed(subscriber, exc)
            return 0
        with engine.begin() as conn:
            moved = conn.execute(
                update(cp).where(cp.c.subscriber == subscriber.name,
                                 cp.c.lease_owner == self.owner, cp.c.position == position)
                .values(position=last, attempts=0, last_error=None, failing_since=None,
                        delivered=cp.c.delivered + len(wanted), updated_at=utcnow()))
        self._retry_at.pop(subscriber.name, None)
        return len(events) if moved.rowcount == 1 else 0

    def _failed(self, subscriber: Subscriber, exc: Exception) -> None:
        # The error's type and the first line of its message: handlers raise domain errors
        # whose details never carry a 個人番号, but the data they were given stays out.
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        log.warning("event subscriber %s failed: %s", subscriber.name, type(exc).__name__)
        cp = self.outbox.checkpoints
        now = utcnow()
        with self.outbox.databases.engine(self.outbox.context).begin() as conn:
            row = conn.execute(
                update(cp).where(cp.c.subscriber == subscriber.name)
                .values(attempts=cp.c.attempts + 1, last_error=detail,
                        failing_since=func.coalesce(cp.c.failing_since, now), updated_at=now)
                .returning(cp.c.attempts)).first()
        attempts = int(row[0]) if row else 1
        pause = BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1]
        self._retry_at[subscriber.name] = time.monotonic() + pause

    def round(self, *, ignore_backoff: bool = False) -> int:
        """Sequence what committed, then one batch for each subscriber that is due."""
        with self._lock:
            self._ensure_checkpoints()
            self.outbox.sequence()
            reads: dict[tuple[int, int], list[Event]] = {}
            due = [s for s in self.subscribers
                   if ignore_backoff or self._retry_at.get(s.name, 0.0) <= time.monotonic()]
            return sum(self.deliver(s, reads) for s in due)

    def drain(self, max_rounds: int = 10_000) -> int:
        """Deliver until no subscriber moves (a failing one stays behind); how many events
        were moved past in all."""
        total = 0
        for _ in range(max_rounds):
            moved = self.round(ignore_backoff=True)
            total += moved
            if moved == 0:
                break
        return total

    # -- the background thread -----------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"events-{self.outbox.context}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._release_leases()

    def _release_leases(self) -> None:
        cp = self.outbox.checkpoints
        try:
            with self.outbox.databases.engine(self.outbox.context).begin() as conn:
                conn.execute(update(cp).where(cp.c.lease_owner == self.owner)
                             .values(lease_owner=None, lease_until=None))
        except Exception:  # shutting down: the lease runs out by itself
            log.debug("could not release event leases", exc_info=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                moved = self.round()
            except Exception:  # the database is away: try again after a pause
                log.warning("event delivery round failed", exc_info=True)
                moved = 0
            if moved:
                continue
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    # -- what operators see --------------------------------------------------------------------
    def status(self) -> list[SubscriberStatus]:
        cp, ev = self.outbox.checkpoints, self.outbox.events
        now = utcnow()
        with self.outbox.databases.engine(self.outbox.context).connect() as conn:
            head = int(conn.execute(select(func.coalesce(func.max(ev.c.seq), 0))).scalar_one())
            unsequenced_oldest, unsequenced = conn.execute(
                select(func.min(ev.c.recorded_at), func.count())
                .where(ev.c.seq.is_(None))).one()
            rows = {r.subscriber: r for r in conn.execute(select(cp))}
            result = []
            for s in self.subscribers:
                row = rows.get(s.name)
                position = int(row.position) if row else 0
                oldest = conn.execute(select(ev.c.recorded_at).where(ev.c.seq == position + 1)
                                      ).scalar() if position < head else None
                candidates = [t for t in (oldest, unsequenced_oldest) if t is not None]
                age = max(0.0, (now - min(candidates)).total_seconds()) if candidates else 0.0
                result.append(SubscriberStatus(
                    s.name, position, head, max(0, head - position) + int(unsequenced), age,
                    int(row.attempts) if row else 0, row.last_error if row else None,
                    row.failing_since if row else None, int(row.delivered) if row else 0))
        return result

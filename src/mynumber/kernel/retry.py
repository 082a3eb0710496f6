"""Infrastructure failures: which database errors mean "the database is not there right now",
which of them may be retried, a retry loop with a short backoff, and the 503 every caller gets
when a retry is not possible or did not help.

An infrastructure failure (a database restarted or unreachable, an intermediate server that
cannot be reached) is not a decision about anybody: it never becomes a refusal, never enters
a resident's やりとり履歴, and is answered ``503`` with ``Retry-After`` and the stable problem code
``infrastructure_unavailable`` (``kernel.errors`` renders it, as a page for browsers).

Retrying is safe only when nothing of the failed attempt can have been committed:

- a failure while the transaction's statements ran (before COMMIT was sent) rolled everything
  back, whatever the statements were: :func:`unit_of_work` retries those;
- a failure during COMMIT leaves the outcome unknown: retried only when the work is read-only,
  or when the caller checks first whether the earlier attempt landed (a unique key, e.g. an
  exchange's 処理通番), as the exchange's hot path does.

Only *disconnects* (and the server's "cannot connect now", "too many connections",
serialization failure and deadlock) are retried: a broken pooled connection after a PostgreSQL
restart fails on first use, and a second attempt gets a fresh one.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from mynumber.errors import DomainError

log = logging.getLogger("mynumber.infrastructure")

T = TypeVar("T")

#: Pauses before the second and third attempt: a dropped pool reconnects at once, a restarting
#: server usually accepts connections again within a second.
RETRY_DELAYS: tuple[float, ...] = (0.05, 0.3)
#: What ``Retry-After`` tells a caller when the database failed.
RETRY_AFTER_SECONDS = 2

# SQLite reports both broken files and programming errors ("no such table") as
# OperationalError: only these messages mean the database file is not usable right now.
_SQLITE_UNAVAILABLE = ("unable to open database", "disk i/o error", "database is locked",
                       "readonly database", "database disk image is malformed",
                       "file is not a database", "database or disk is full")
# PostgreSQL states after which a new attempt on a new connection can succeed.
_PG_RETRYABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300", "40001", "40P01"})
_PG_UNAVAILABLE_STATES = frozenset({"25006"})  # read-only transaction: a standby after failover


class InfrastructureUnavailable(DomainError):
    """A part of the system (a database, an intermediate server) is not available: nothing was
    done that the caller must know about, and the same request may be sent again later.

    ``reason`` is a stable code for operators (e.g. ``core_database``, ``provider_tls``);
    ``retry_after`` the seconds a caller should wait (the ``Retry-After`` header)."""

    code = "infrastructure_unavailable"
    status = 503
    title = "Temporarily unavailable; retry later"

    def __init__(self, detail: str, *, reason: str = "database",
                 retry_after: int = RETRY_AFTER_SECONDS, **extra: Any) -> None:
        super().__init__(detail, reason=reason, retry_after=retry_after, **extra)
        self.reason = reason
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def _errors(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (a SQLAlchemy error's DBAPI error) and what it was raised
    from or during (a failed rollback raises from within the original failure)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        orig = getattr(item, "orig", None)
        if isinstance(orig, BaseException):
            stack.append(orig)
        for linked in (item.__cause__, item.__context__):
            if linked is not None:
                stack.append(linked)


def _psycopg_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return ()
    return (psycopg.OperationalError, psycopg.InterfaceError)


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def _sqlite_unavailable(exc: BaseException) -> bool:
    message = str(exc).lower()
    return any(text in message for text in _SQLITE_UNAVAILABLE)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps or interrupted) says the database could not be used:
    connection refused or lost, server shutting down or starting, too many connections, a
    lock or statement timeout, a read-only standby, a broken or locked SQLite file. Not:
    constraint violations, programming errors, or anything that is not a database error."""
    psycopg_errors = _psycopg_errors()
    for error in _errors(exc):
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
            return True
        if isinstance(error, sqlite3.OperationalError):
            if _sqlite_unavailable(error):
                return True
            continue
        if psycopg_errors and isinstance(error, psycopg_errors):
            return True
        if _sqlstate(error) in _PG_UNAVAILABLE_STATES:
            return True
    return False


def disconnected(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure a new attempt on a new connection can get past: the
    connection was lost or refused (the server restarted), the server was shutting down or
    starting, had no free connection slot, or rolled the transaction back (serialization
    failure, deadlock). A transaction that failed so has not been committed, unless the
    failure came during COMMIT itself."""
    psycopg_errors = _psycopg_errors()
    for error in _errors(exc):
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.DisconnectionError):
            return True
        if psycopg_errors and isinstance(error, psycopg_errors):
            state = _sqlstate(error)
            # No state: the client library lost or could not open the connection.
            if state is None or state.startswith("08") or state in _PG_RETRYABLE_STATES:
                return True
    return False


def retrying(work: Callable[[int], T], *, retry_if: Callable[[BaseException], bool] = disconnected,
             delays: Sequence[float] = RETRY_DELAYS,
             on_retry: Callable[[BaseException], None] | None = None,
             what: str = "database work") -> T:
    """Run ``work(attempt)`` (attempt 0, 1, ...) until it returns; after a failure that
    ``retry_if`` accepts, wait the next of ``delays`` and try again; re-raise the last failure
    once ``delays`` are used up. ``work`` decides what a repeat may do (e.g. check whether an
    attempt whose COMMIT failed did land)."""
    for attempt in range(len(delays) + 1):
        try:
            return work(attempt)
        except Exception as exc:
            if attempt >= len(delays) or not retry_if(exc):
                raise
            delay = delays[attempt]
            log.warning("%s: database connection failed (%s); attempt %d in %.2fs",
                        what, type(exc).__name__, attempt + 2, delay)
            if on_retry is not None:
                on_retry(exc)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


class SessionSource(Protocol):
    """What :func:`unit_of_work` needs of ``mynumber.db.Databases``."""

    def sessionmaker(self, context: str) -> sessionmaker[Session]: ...


class _CommitFailed(Exception):
    """COMMIT itself failed: the transaction may or may not have been committed."""


def unit_of_work(databases: SessionSource, context: str, work: Callable[[Session], T], *,
                 read_only: bool = False, delays: Sequence[float] = RETRY_DELAYS,
                 what: str = "database work") -> T:
    """``work(session)`` in one transaction of ``context`` (commit at the end, rollback on
    failure), repeated on a disconnect that happened before COMMIT was sent. A failure during
    COMMIT is repeated only when ``read_only`` (a read has no outcome to lose); otherwise it is
    raised, since a repeat could do the work twice."""

    def attempt(_: int) -> T:
        session = databases.sessionmaker(context)()
        try:
            result = work(session)
            try:
                session.commit()
            except Exception as exc:
                if read_only:
                    raise
                raise _CommitFailed("commit failed") from exc
            return result
        except BaseException:
            try:
                session.rollback()
            except Exception as failed:  # the connection is gone; closing the session drops it
                log.debug("rollback failed (%s)", type(failed).__name__)
            raise
        finally:
            session.close()

    try:
        return retrying(attempt, delays=delays, what=what,
                        retry_if=lambda e: not isinstance(e, _CommitFailed) and disconnected(e))
    except _CommitFailed as failed:
        cause = failed.__cause__
        raise cause if cause is not None else failed from None

"""Benchmark workloads for ``mynumber bench NAME``.

Each workload is a module here exposing ``run(options: BenchOptions) -> dict`` that returns one
JSON-serialisable object with at least ``per_second``; where the issue names a baseline it also
carries ``baseline_per_second`` and ``ratio``, measured in the same run.

The benchmarks never touch a production system (issue 11):

- ``mynumber bench`` refuses to run when MYNUMBER_MODE=production.
- Every workload builds its settings with :func:`bench_settings`: embedded mode, its own
  temporary data and key directories, and nothing read from the environment (so no
  MYNUMBER_PKCS11_* token, MYNUMBER_KEY_DIR, MYNUMBER_DATABASE_URL or TLS setting of the
  host is ever used).
- A PostgreSQL URL (``--database-url`` / MYNUMBER_BENCH_DATABASE_URL) is only a way to reach a
  cluster; :func:`postgres_database` decides what is written there (see its rule).

Progress: a workload names its phases through ``options.progress`` (a :class:`BenchProgress`;
by default :class:`NoProgress`, which shows nothing) and reports counts within a phase through
the callable the phase yields. Workloads never print; how progress looks is the CLI's business.
"""

from __future__ import annotations

import os
import platform
import re
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from mynumber.settings import Mode, Settings

WORKLOADS = {
    "numbering": "mynumber.bench.numbering",
    "import": "mynumber.bench.import_",
    "jpki-verify": "mynumber.bench.jpki_verify",
    "ocsp": "mynumber.bench.ocsp",
    "log": "mynumber.bench.log",
    "exchange": "mynumber.bench.exchange",
    "exchange-deployment": "mynumber.bench.deployment",
    "portal-api": "mynumber.bench.portal_api",
    "juki": "mynumber.bench.juki",
    "events": "mynumber.bench.events",
    "payout": "mynumber.bench.payout",
    "eligibility": "mynumber.bench.eligibility",
}


class Report(Protocol):
    """Where a phase stands: ``report(done)`` or ``report(done, total)``. It must cost no more
    than storing a number (it may be called between the blocks of a timed loop, never per
    item inside one); showing it, and how often, is up to the :class:`BenchProgress`."""

    def __call__(self, done: int, total: int | None = None) -> None: ...


class BenchProgress(Protocol):
    """How a workload tells its phases: ``with progress.phase("sqlite: import", total=n) as
    report: ... report(done)``. A phase may report nothing (then only its start, its end and
    the time it took are shown). ``in_bytes``: the counts are bytes."""

    def phase(self, description: str, total: int | None = None, *, in_bytes: bool = False
              ) -> AbstractContextManager[Report]: ...


def _ignore(done: int, total: int | None = None) -> None:
    return None


class NoProgress:
    """Shows nothing (the default: tests, library callers, ``--json`` gets its own quiet
    one)."""

    @contextmanager
    def phase(self, description: str, total: int | None = None, *, in_bytes: bool = False
              ) -> Iterator[Report]:
        yield _ignore


@dataclass
class BenchOptions:
    count: int | None = None
    workers: int | None = None
    database_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    progress: BenchProgress = field(default_factory=NoProgress)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


class BenchRefused(RuntimeError):
    """The benchmark will not run against this target (the message says why and what to do)."""


class BenchSettings(Settings):
    """Settings built from the constructor's arguments only: no MYNUMBER_* environment
    variable (a production host's PKCS#11 token, key directory, database URL, TLS) is read."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def bench_settings(data_dir: Path, key_dir: Path, database_url: str | None) -> Settings:
    """Settings for one measurement: embedded mode, the given throwaway directories and
    database, and every other setting at its default (see :class:`BenchSettings`)."""
    return BenchSettings(mode=Mode.EMBEDDED, data_dir=data_dir, key_dir=key_dir,
                         database_url=database_url)


def migrated_container(settings: Settings) -> Any:
    """A container on freshly migrated databases holding the municipalities (what every
    database benchmark starts from; the caller closes it)."""
    from mynumber import migrations
    from mynumber.app import build_container
    from mynumber.db import Databases
    from mynumber.registry.services import load_municipalities

    databases = Databases(settings)
    migrations.upgrade(databases)
    load_municipalities(databases)
    databases.dispose()
    return build_container(settings)


def postgres_url(options: BenchOptions) -> str | None:
    """The PostgreSQL URL the run was given (option, else MYNUMBER_BENCH_DATABASE_URL), with
    the psycopg driver named; None when there is none. Anything but PostgreSQL is refused."""
    url = options.database_url or os.environ.get("MYNUMBER_BENCH_DATABASE_URL")
    if not url:
        return None
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if not url.startswith("postgresql+"):
        raise BenchRefused("--database-url must be a PostgreSQL URL (the SQLite measurement "
                           "always runs in its own temporary directory)")
    return url


#: A database a role without CREATEDB may hand to the benchmarks: its name says so.
BENCH_DATABASE_NAME = re.compile(r"(^|[_-])bench([_-]|$)", re.IGNORECASE)


def _mynumber_schemas(conn: Any) -> list[str]:
    from sqlalchemy import text

    from mynumber.db import CONTEXTS

    found = conn.execute(text(
        "SELECT nspname FROM pg_namespace WHERE nspname = ANY(:names) "
        "UNION SELECT schemaname FROM pg_tables WHERE tablename = 'alembic_version' "
        "OR tablename LIKE 'alembic_version%'"), {"names": list(CONTEXTS)}).scalars().all()
    return sorted(set(found))


def _user_tables(conn: Any) -> int:
    from sqlalchemy import text

    return int(conn.execute(text(
        "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
        "'information_schema') AND schemaname NOT LIKE 'pg_toast%'")).scalar_one())


@contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """Yield the URL of a throwaway database for one measurement, and remove what the
    benchmark wrote afterwards. The rule:

    1. The database the URL names must hold no mynumber schema (no context schema, no
       migration version table): a mynumber database is never a benchmark's target, whoever
       connects to it.
    2. If the role may create databases (CREATEDB or superuser), a new database
       ``mn_bench_<random>`` is created next to it and dropped afterwards.
    3. Otherwise the database the URL names is used only if its name says it is for
       benchmarks (``bench`` as a word: ``mynumber_bench``, ``bench-1``) and it holds no
       table at all; the context schemas the benchmark created are dropped afterwards.

    Anything else raises :class:`BenchRefused` before anything is written."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from mynumber.db import CONTEXTS

    parsed = make_url(url)
    name = parsed.database or ""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as conn:
                schemas = _mynumber_schemas(conn)
                can_create = bool(conn.execute(text(
                    "SELECT rolcreatedb OR rolsuper FROM pg_roles "
                    "WHERE rolname = current_user")).scalar())
                tables = _user_tables(conn)
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) or exc
            first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
            raise BenchRefused(f"cannot inspect the benchmark database {name!r}: {first}") \
                from None
        if schemas:
            raise BenchRefused(
                f"database {name!r} holds mynumber schemas ({', '.join(schemas)}): benchmarks "
                "never run in a mynumber database. Give the URL of an empty database on a "
                "non-production cluster (bin/with-postgres starts a throwaway one)")
        if can_create:
            target = f"mn_bench_{uuid.uuid4().hex[:10]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{target}"'))
            try:
                yield parsed.set(database=target).render_as_string(hide_password=False)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
            return
        if not BENCH_DATABASE_NAME.search(name) or tables:
            raise BenchRefused(
                f"the role cannot create databases (no CREATEDB), so the benchmark may only "
                f"use the database the URL names if that is an EMPTY database named for "
                f"benchmarks (e.g. mynumber_bench); {name!r} "
                + ("holds tables" if tables else "is not named so")
                + ". Use a role with CREATEDB on a non-production cluster, or create such a "
                "database for the benchmarks")
        try:
            yield url
        finally:
            with admin.connect() as conn:
                for context in CONTEXTS:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{context}" CASCADE'))
    finally:
        admin.dispose()


def collect_window_results(out: Any, workers: int, start: float, seconds: float,
                           report: Report | None) -> list[dict[str, Any]]:
    """The figures of ``workers`` processes that measure one time window (they put one dict
    each on the queue ``out``), reporting the whole seconds of the window passed meanwhile
    (``start``: the window's opening on time.perf_counter, shared by the processes)."""
    import queue
    import time

    results: list[dict[str, Any]] = []
    while len(results) < workers:
        try:
            results.append(out.get(timeout=0.5))
        except queue.Empty:
            pass
        if report is not None:  # whole seconds of the window passed (this process only)
            report(max(0, min(int(time.perf_counter() - start), int(seconds))))
    if report is not None:
        report(int(seconds))  # the window is over (the last request began just before its end)
    return results

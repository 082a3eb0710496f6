"""Databases: one per bounded context.

Embedded mode: one SQLite file per context, ``DATA_DIR/<context>.sqlite3``.

PostgreSQL: one schema per context, each owned by the context's role ``mynumber_<context>``.

* Production: ``MYNUMBER_DATABASE_URL`` holds the placeholder ``{context}`` (for instance
  ``postgresql+psycopg://mynumber_{context}@db/mynumber?passfile=/etc/mynumber/pgpass``), so
  every context connects with its own LOGIN role, created once by the database administrator
  with ``mynumber db provision`` (:mod:`mynumber.db_roles`). That role owns its schema, may use
  no other, is a member of no role and holds no CREATEROLE, CREATEDB or superuser:
  a context's connection cannot reach another context's tables, whatever SQL it sends.
  :meth:`Databases.check_production_roles` refuses anything else.
* Embedded mode with one URL (the test suite, benchmarks, a developer's superuser): the
  login role is granted a NOLOGIN role per context and each engine switches to it on connect
  (:meth:`Databases.prepare_postgres`). That keeps a context's code in its own schema but
  isolates nothing from a ``RESET ROLE``; production refuses it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    MetaData,
    any_,
    bindparam,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from mynumber.keys.files import ensure_private_dir
from mynumber.settings import Mode, Settings

# Every context registers itself here, in dependency order (migrations run in this order).
CONTEXTS: tuple[str, ...] = ("auth", "registry", "jpki", "card", "network", "agencies", "portal",
                             "juki", "accounts", "insurance")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def context_metadata(context: str) -> MetaData:
    """The MetaData for one context's declarative base (its own tables, our naming rules)."""
    return MetaData(naming_convention=NAMING_CONVENTION, info={"context": context})


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware timestamps everywhere; SQLite gets UTC, PostgreSQL timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


ROLE_PREFIX = "mynumber_"
#: In ``MYNUMBER_DATABASE_URL``, replaced by the context's name (one login role per context).
CONTEXT_PLACEHOLDER = "{context}"
PROVISION_HINT = ("run `mynumber db provision --admin-url URL --credentials FILE` once as the "
                  "database administrator, then set MYNUMBER_DATABASE_URL to the template it "
                  "prints (docs/deployment.md)")


def one_of(column: ColumnElement[Any] | QueryableAttribute[Any], values: Sequence[Any], *,
           postgres: bool) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(:array)`` instead: one parameter,
    so the statement's text is the same whatever the number of values (the driver converts it
    once and caches it; a long ``IN`` list of a different length is converted every time)."""
    if postgres:
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def in_chunk(postgres: bool) -> int:
    """How many values one ``one_of`` takes: SQLite's bound-parameter limit is a concern,
    PostgreSQL's single array parameter is not."""
    return 20_000 if postgres else 900


def role_name(context: str, prefix: str = ROLE_PREFIX) -> str:
    return f"{prefix}{context}"


class DatabaseRoleError(RuntimeError):
    """The database's roles do not isolate the contexts, or a context cannot connect with its
    own role: production refuses to start. The message names the fix."""


def database_message(exc: BaseException) -> str:
    """The database's own words for an error (e.g. ``permission denied for schema registry``),
    without SQLAlchemy's wrapping, the statement or its parameters."""
    orig = getattr(exc, "orig", None) or exc
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        return str(primary)
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


# One round trip: what the connected login role is and what it can reach.
_ROLE_FACTS = """
SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication,
       r.rolbypassrls,
       ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1),
       ARRAY(SELECT n.nspname::text FROM pg_namespace n
             WHERE n.nspname = ANY(%(others)s)
               AND (has_schema_privilege(r.oid, n.oid, 'USAGE')
                    OR has_schema_privilege(r.oid, n.oid, 'CREATE')) ORDER BY 1),
       (SELECT pg_get_userbyid(n.nspowner)::text FROM pg_namespace n
        WHERE n.nspname = %(own)s)
FROM pg_roles r WHERE r.rolname = current_user
"""


def role_problems(dbapi_conn: Any, context: str) -> list[str]:
    """Why the login role of ``dbapi_conn`` (a psycopg connection) may not serve ``context``
    in production; empty when it is an isolated context role owning the context's schema."""
    with dbapi_conn.cursor() as cur:
        cur.execute(_ROLE_FACTS, {"others": [c for c in CONTEXTS if c != context],
                                  "own": context})
        row = cur.fetchone()
    dbapi_conn.rollback()
    if row is None:  # pragma: no cover - current_user always has a pg_roles row
        return ["the login role is not in pg_roles"]
    name, superuser, createrole, createdb, replication, bypassrls, groups, others, owner = row
    problems = [f"is {what}" for what, held in (
        ("a superuser", superuser), ("allowed CREATEROLE", createrole),
        ("allowed CREATEDB", createdb), ("allowed REPLICATION", replication),
        ("allowed BYPASSRLS", bypassrls)) if held]
    if groups:
        problems.append(f"is a member of {', '.join(groups)}")
    if others:
        problems.append(f"can use the schema(s) of other contexts: {', '.join(others)}")
    if owner is None:
        problems.append(f"finds no schema {context!r}")
    elif owner != name:
        problems.append(f"does not own the schema {context!r} (its owner is {owner})")
    return [f"role {name} {problem}" for problem in problems]


class Databases:
    """Engines and session factories for every context."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engines: dict[str, Engine] = {}
        self._sessionmakers: dict[str, sessionmaker[Session]] = {}

    @property
    def is_postgres(self) -> bool:
        return self.settings.is_postgres

    @property
    def per_context_roles(self) -> bool:
        """PostgreSQL with one login role per context (the URL holds ``{context}``)."""
        return self.is_postgres and CONTEXT_PLACEHOLDER in (self.settings.database_url or "")

    def url_for(self, context: str) -> str:
        if self.settings.database_url:
            return self.settings.database_url.replace(CONTEXT_PLACEHOLDER, context)
        return f"sqlite:///{self.settings.data_dir / f'{context}.sqlite3'}"

    def check_production_url(self) -> None:
        """Production: refuse a database URL that does not give each context its own role.
        Connects nowhere."""
        if self.settings.mode is not Mode.PRODUCTION:
            return
        if not self.is_postgres:
            raise DatabaseRoleError(
                "production mode needs PostgreSQL: set MYNUMBER_DATABASE_URL; " + PROVISION_HINT)
        if not self.per_context_roles:
            raise DatabaseRoleError(
                "MYNUMBER_DATABASE_URL has no {context} placeholder: in production each "
                "context connects with its own login role (e.g. "
                "postgresql+psycopg://mynumber_{context}@HOST/DB?passfile=FILE), never one "
                "role for all; " + PROVISION_HINT)

    def check_production_roles(self, contexts: tuple[str, ...] = CONTEXTS) -> None:
        """Production start-up check (embedded mode: does nothing). Refuses, naming
        ``mynumber db provision``, a URL without ``{context}``, and for each of ``contexts``
        a login role that cannot connect, is a superuser, has CREATEROLE, CREATEDB or
        REPLICATION, is a member of any role, can use another context's schema or does not
        own its own schema. Connects once per context (the engines' first connections)."""
        if self.settings.mode is not Mode.PRODUCTION:
            return
        self.check_production_url()
        from sqlalchemy.exc import DBAPIError

        for context in contexts:
            try:
                with self.engine(context).connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            except DBAPIError as exc:
                raise DatabaseRoleError(
                    f"cannot connect the {context} context with its role: "
                    f"{database_message(exc)}; check MYNUMBER_DATABASE_URL and the password "
                    f"file, or {PROVISION_HINT}") from None

    def engine(self, context: str) -> Engine:
        if context not in self._engines:
            self._engines[context] = self._create_engine(context)
        return self._engines[context]

    def _create_engine(self, context: str) -> Engine:
        if self.is_postgres:
            # No pre-ping: it costs a round trip per checkout, and the exchange path checks out
            # several connections per request. Connections are recycled after 30 minutes.
            # A PostgreSQL restart still recovers: the first statement on a dead connection
            # fails, SQLAlchemy sees a disconnect and invalidates the whole pool, so every
            # later checkout opens a fresh connection (HotConnections does the same).
            engine = create_engine(
                self.url_for(context), pool_pre_ping=False, pool_recycle=1800, pool_size=10,
                max_overflow=10,
            )
            schema, role = context, role_name(context)
            per_context = self.per_context_roles
            # Production with a role per context: the first connection proves the role is
            # isolated (once per engine; a refused engine checks again on its next connect).
            unchecked = [self.settings.mode is Mode.PRODUCTION and per_context]

            @event.listens_for(engine, "connect")
            def _scope(dbapi_conn: Any, _record: Any) -> None:
                if unchecked[0]:
                    problems = role_problems(dbapi_conn, schema)
                    if problems:
                        dbapi_conn.close()
                        raise DatabaseRoleError(
                            f"the {schema} context's database role is not isolated: "
                            + "; ".join(problems) + "; " + PROVISION_HINT)
                    unchecked[0] = False
                # The search path (and, with one shared login role, the role switched to)
                # confine this engine to its context's schema.
                with dbapi_conn.cursor() as cur:
                    cur.execute(f'SET search_path TO "{schema}"')
                    if not per_context:
                        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                        if cur.fetchone() is not None:
                            cur.execute(f'SET ROLE "{role}"')
                dbapi_conn.commit()

            return engine
        self._private_sqlite_file(context)
        engine = create_engine(self.url_for(context), connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # 64 MiB of page cache per connection (the default is 2 MiB): the indexes that take
            # random keys (token hashes, agency codes) stay in memory past a few 100,000 rows.
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        return engine

    def _private_sqlite_file(self, context: str) -> None:
        """Make the data directory 0700 and the context's SQLite file 0600 before SQLite opens it.

        The registry's databases are readable by nobody else on the machine. SQLite would
        create a new file 0644 (minus the umask), so the file is created here first, 0600
        whatever the umask; SQLite then gives its -wal and -shm files the database file's own
        mode. Files left looser by an older version are tightened, -wal/-shm/-journal too."""
        ensure_private_dir(self.settings.data_dir)
        path = self.settings.data_dir / f"{context}.sqlite3"
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
            if file.exists() and stat.S_IMODE(file.stat().st_mode) != 0o600:
                os.chmod(file, 0o600)

    def sessionmaker(self, context: str) -> sessionmaker[Session]:
        if context not in self._sessionmakers:
            self._sessionmakers[context] = sessionmaker(
                self.engine(context), expire_on_commit=False
            )
        return self._sessionmakers[context]

    @contextmanager
    def unit_of_work(self, context: str) -> Iterator[Session]:
        """One transaction: commits when the block ends, rolls back on any exception."""
        session = self.sessionmaker(context)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def prepare_postgres(self) -> None:
        """Embedded mode with one shared PostgreSQL login role: create each context's schema
        and NOLOGIN role and grant it to the login role (idempotent; needs CREATEROLE).
        Does nothing with a role per context (``mynumber db provision`` made them) and is
        never used in production."""
        if not self.is_postgres or self.per_context_roles:
            return
        if self.settings.mode is Mode.PRODUCTION:
            self.check_production_url()
        admin = create_engine(self.settings.database_url or "", isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                user = conn.execute(text("SELECT current_user")).scalar_one()
                for context in CONTEXTS:
                    role = role_name(context)
                    # Roles are cluster-wide, so two processes preparing different databases
                    # at once (test workers, services starting together) can race: let the
                    # loser of CREATE ROLE / GRANT carry on instead of failing.
                    conn.execute(text(
                        f'DO $$ BEGIN CREATE ROLE "{role}" NOLOGIN; '
                        # The loser of a simultaneous CREATE ROLE sees either error,
                        # depending on when the winner committed.
                        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
                    ))
                    conn.execute(text(
                        f'DO $$ BEGIN GRANT "{role}" TO "{user}"; '
                        "EXCEPTION WHEN unique_violation THEN NULL; END $$"
                    ))
                    conn.execute(
                        text(f'CREATE SCHEMA IF NOT EXISTS "{context}" AUTHORIZATION "{role}"')
                    )
                    conn.execute(text(f'REVOKE ALL ON SCHEMA "{context}" FROM PUBLIC'))
        finally:
            admin.dispose()

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        self._sessionmakers.clear()


class HotSQL:
    """One statement on the exchange's hot path, run on a pooled DBAPI connection in
    autocommit mode without SQLAlchemy's per-statement machinery (it costs more than the
    database does at a thousand exchanges a second).

    ``sql`` uses ``:name`` placeholders; values must be what the driver takes natively
    (str, int, bool, bytes, None) or timezone-aware datetimes, which are stored exactly as
    ``UTCDateTime`` stores them, so ORM readers see the same values."""

    _NAME = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.pg_sql = self._NAME.sub(r"%(\1)s", sql)

    @staticmethod
    def _sqlite_value(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            # SQLAlchemy's SQLite DateTime storage format, in UTC.
            return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value


def _is_disconnect(engine: Engine, raw: Any, exc: BaseException) -> bool:
    dbapi = engine.dialect.loaded_dbapi
    if not isinstance(exc, dbapi.Error):
        return False
    return bool(engine.dialect.is_disconnect(exc, raw.dbapi_connection, None))


class HotConnections:
    """Hands out pooled DBAPI connections for :class:`HotSQL` statements."""

    def __init__(self, databases: Databases, context: str) -> None:
        self.databases = databases
        self.context = context

    @contextmanager
    def connection(self, *, autocommit: bool = False) -> Iterator[Any]:
        """A pooled connection whose statements commit together when the block ends.

        ``autocommit=True`` for a block of one statement (or of reads that need no common
        snapshot): on PostgreSQL each statement then commits by itself, which saves the
        ``BEGIN`` and ``COMMIT`` round trips (two of the three a one-statement transaction
        costs). SQLite is unchanged (its transactions cost no round trip)."""
        engine = self.databases.engine(self.context)
        raw = engine.raw_connection()
        driver = raw.driver_connection if autocommit and self.databases.is_postgres else None
        if driver is not None:
            driver.autocommit = True
        try:
            yield raw
            raw.commit()
        except BaseException as exc:
            if _is_disconnect(engine, raw, exc):
                # What SQLAlchemy does for its own connections, which these bypass: the
                # server went away (a restart, a failover), so every connection pooled
                # before now is dead too. Invalidate the whole pool, not just this
                # connection, so that one failure is all a restart costs, not one per
                # pooled connection.
                engine.pool._invalidate(raw, exc)
            else:
                raw.rollback()
            raise
        finally:
            if driver is not None and not driver.closed:
                driver.autocommit = False
            raw.close()  # back to the pool (an invalidated connection is discarded)

    def run(self, raw: Any, statement: HotSQL, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        cursor = raw.cursor()
        try:
            if self.databases.is_postgres:
                cursor.execute(statement.pg_sql, params)
            else:
                cursor.execute(statement.sql,
                               {k: HotSQL._sqlite_value(v) for k, v in params.items()})
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

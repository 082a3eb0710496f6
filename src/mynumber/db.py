"""Databases: one per bounded context.

Embedded mode: one SQLite file per context, ``DATA_DIR/<context>.sqlite3``.
PostgreSQL: one schema per context, and a role per context (``mynumber_<context>``) that the
context's engine switches to on connect, so a context can only ever touch its own tables.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from mynumber.keys.files import ensure_private_dir
from mynumber.settings import Settings

# Every context registers itself here, in dependency order (migrations run in this order).
CONTEXTS: tuple[str, ...] = ("auth", "registry", "jpki", "card", "network", "agencies", "portal")

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


def role_name(context: str) -> str:
    return f"mynumber_{context}"


class Databases:
    """Engines and session factories for every context."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engines: dict[str, Engine] = {}
        self._sessionmakers: dict[str, sessionmaker[Session]] = {}

    @property
    def is_postgres(self) -> bool:
        return self.settings.is_postgres

    def url_for(self, context: str) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        return f"sqlite:///{self.settings.data_dir / f'{context}.sqlite3'}"

    def engine(self, context: str) -> Engine:
        if context not in self._engines:
            self._engines[context] = self._create_engine(context)
        return self._engines[context]

    def _create_engine(self, context: str) -> Engine:
        if self.is_postgres:
            # No pre-ping: it costs a round trip per checkout, and the exchange path checks out
            # several connections per request. Connections are recycled after 30 minutes.
            engine = create_engine(
                self.url_for(context), pool_pre_ping=False, pool_recycle=1800, pool_size=10,
                max_overflow=10,
            )
            schema, role = context, role_name(context)

            @event.listens_for(engine, "connect")
            def _scope(dbapi_conn: Any, _record: Any) -> None:
                # The role and search path confine this engine to its context's schema.
                with dbapi_conn.cursor() as cur:
                    cur.execute(f'SET search_path TO "{schema}"')
                    cur.execute(
                        "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
                    )
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
        """Create each context's schema and role (idempotent; needs CREATEROLE)."""
        if not self.is_postgres:
            return
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
                        "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
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


class HotConnections:
    """Hands out pooled DBAPI connections for :class:`HotSQL` statements."""

    def __init__(self, databases: Databases, context: str) -> None:
        self.databases = databases
        self.context = context

    @contextmanager
    def connection(self) -> Iterator[Any]:
        raw = self.databases.engine(self.context).raw_connection()
        try:
            yield raw
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()  # back to the pool

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

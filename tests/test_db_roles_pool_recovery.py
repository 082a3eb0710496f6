"""After PostgreSQL drops every connection (a restart, a failover), a context's pool recovers
after one failed statement, not one per pooled connection: the engines run without pre-ping, so
the first statement on a dead connection fails, and that failure must invalidate the whole pool
-- for SQLAlchemy's connections and for the hot path's raw ones alike. (Retrying that one
statement is the callers' business.)"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mynumber.db import Databases, HotConnections, HotSQL
from mynumber.settings import Settings

PG_URL = os.environ.get("MYNUMBER_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(
    not PG_URL, reason="a server dropping connections is PostgreSQL's: run under bin/with-postgres")

POOLED = 6


def _drop_every_connection(database: str) -> None:
    """What a restart does to the pool: every backend of ``database`` goes away."""
    admin = create_engine(PG_URL or "", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": database})
            for _ in range(200):
                left = conn.execute(text("SELECT count(*) FROM pg_stat_activity "
                                         "WHERE datname = :d"), {"d": database}).scalar_one()
                if left == 0:
                    return
                time.sleep(0.02)
            raise AssertionError("backends did not go away")
    finally:
        admin.dispose()


def _fill_pool(databases: Databases, context: str) -> None:
    engine = databases.engine(context)
    held = [engine.raw_connection() for _ in range(POOLED)]
    for raw in held:
        raw.close()
    assert engine.pool.checkedin() == POOLED  # type: ignore[attr-defined]


def _failures(attempt: Callable[[], None]) -> int:
    failures = 0
    for _ in range(POOLED + 2):
        try:
            attempt()
        except DBAPIError:
            failures += 1
        except Exception as exc:  # the hot path sees the driver's own exception
            if not type(exc).__module__.startswith("psycopg"):
                raise
            failures += 1
    return failures


def test_sqlalchemy_connections_recover_after_one_failure(settings: Settings) -> None:
    databases = Databases(settings)
    try:
        _fill_pool(databases, "registry")
        _drop_every_connection(make_url(settings.database_url or "").database or "")

        def query() -> None:
            with databases.engine("registry").connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1

        assert _failures(query) == 1
    finally:
        databases.dispose()


def test_hot_path_connections_recover_after_one_failure(settings: Settings) -> None:
    databases = Databases(settings)
    hot = HotConnections(databases, "network")
    statement = HotSQL("SELECT :one")
    try:
        _fill_pool(databases, "network")
        _drop_every_connection(make_url(settings.database_url or "").database or "")

        def query() -> None:
            with hot.connection() as raw:
                assert hot.run(raw, statement, {"one": 1}) == [(1,)]

        assert _failures(query) == 1
        # And the search path (the context's schema) is set again on the new connections.
        with hot.connection() as raw:
            assert hot.run(raw, HotSQL("SELECT current_schema()"), {}) == [("network",)]
    finally:
        databases.dispose()

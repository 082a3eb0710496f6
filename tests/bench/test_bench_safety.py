"""Benchmarks never write to a production database or token (issue 11): their settings come
from nothing in the environment, and a PostgreSQL URL is used only under the benchmark rule."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from mynumber.bench import (
    BenchOptions,
    BenchRefused,
    bench_settings,
    import_,
    postgres_database,
    postgres_url,
)
from mynumber.cli import app
from mynumber.settings import Mode, Settings
from tests.conftest import PG_URL

runner = CliRunner()
needs_postgres = pytest.mark.skipif(not PG_URL, reason="needs MYNUMBER_TEST_DATABASE_URL")

PRODUCTION_ENV = {
    "MYNUMBER_MODE": "production",
    "MYNUMBER_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/production",
    "MYNUMBER_PKCS11_TOKEN": "production",
    "MYNUMBER_PKCS11_PIN": "0000",
    "MYNUMBER_JPKI_KEY_PASSPHRASE": "the production passphrase 0123456789",
}


def test_bench_settings_read_nothing_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MYNUMBER_PKCS11_LIBRARY", str(tmp_path / "libsofthsm2.so"))
    monkeypatch.setenv("MYNUMBER_KEY_DIR", str(tmp_path / "production-keys"))
    monkeypatch.setenv("MYNUMBER_TLS_DIR", str(tmp_path / "tls"))
    settings = bench_settings(tmp_path / "data", tmp_path / "keys", None)
    assert settings.mode is Mode.EMBEDDED
    assert settings.pkcs11_library is None and settings.pkcs11_pin is None
    assert settings.keys_path == tmp_path / "keys" and settings.database_url is None
    assert settings.tls_dir is None and settings.jpki_key_passphrase is None
    assert Settings().pkcs11_library is not None  # the environment really says otherwise


def test_a_workload_on_a_production_host_uses_neither_its_token_nor_its_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench import` builds the whole container (JPKI CA included): with the host's
    PKCS#11 and key settings in the environment it must still use only its own temp keys."""
    monkeypatch.setenv("MYNUMBER_PKCS11_LIBRARY", str(tmp_path / "libsofthsm2.so"))
    monkeypatch.setenv("MYNUMBER_PKCS11_TOKEN", "production")
    monkeypatch.setenv("MYNUMBER_PKCS11_PIN", "0000")
    monkeypatch.setenv("MYNUMBER_KEY_DIR", str(tmp_path / "production-keys"))
    monkeypatch.setenv("MYNUMBER_DATA_DIR", str(tmp_path / "production-data"))
    monkeypatch.delenv("MYNUMBER_BENCH_DATABASE_URL", raising=False)
    import mynumber.app

    built: list[Settings] = []
    real = mynumber.app.build_container

    def recording(settings: Settings | None = None, *args: object, **kwargs: object) -> object:
        assert settings is not None  # never the environment's settings
        built.append(settings)
        return real(settings, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mynumber.app, "build_container", recording)
    figures = import_.run(BenchOptions(count=30))
    assert figures["sqlite_stored"] == 30
    assert built and all(s.pkcs11_library is None and s.mode is Mode.EMBEDDED for s in built)
    assert all("mynumber-bench-import-" in str(s.keys_path) for s in built)
    assert not (tmp_path / "production-keys").exists()
    assert not (tmp_path / "production-data").exists()


def test_only_postgresql_urls_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYNUMBER_BENCH_DATABASE_URL", raising=False)
    assert postgres_url(BenchOptions()) is None
    assert postgres_url(BenchOptions(database_url="postgres://u@h/bench")) \
        == "postgresql+psycopg://u@h/bench"
    with pytest.raises(BenchRefused, match="PostgreSQL"):
        postgres_url(BenchOptions(database_url="sqlite:////var/lib/mynumber/registry.sqlite3"))


def test_cli_reports_a_refused_target_as_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "log", "--count", "5", "--database-url",
                                 f"sqlite:///{tmp_path}/x.sqlite3"])
    assert result.exit_code == 2, result.output
    assert "PostgreSQL URL" in result.output
    assert not (tmp_path / "x.sqlite3").exists()


# --- the PostgreSQL rule ------------------------------------------------------------------


def _databases(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


@needs_postgres
def test_a_mynumber_database_is_refused_even_to_a_superuser(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.database_url is not None  # a migrated test database
    # Other test workers create and drop databases meanwhile, so the check is on the one
    # name this call would have created: the benchmark's random suffix is fixed here.
    fixed = uuid.UUID("0123456789abcdef0123456789abcdef")
    monkeypatch.setattr("mynumber.bench.uuid.uuid4", lambda: fixed)
    would_be = f"mn_bench_{fixed.hex[:10]}"
    created: list[str] = []
    real_engine = create_engine

    def spying_engine(url: str, **kwargs: object) -> object:
        engine = real_engine(url, **kwargs)  # type: ignore[arg-type]
        from sqlalchemy import event

        @event.listens_for(engine, "before_cursor_execute")
        def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            if "CREATE DATABASE" in statement.upper():
                created.append(statement)

        return engine

    monkeypatch.setattr("sqlalchemy.create_engine", spying_engine)
    with pytest.raises(BenchRefused, match="holds mynumber schemas"):
        with postgres_database(settings.database_url):
            pytest.fail("must not be reached")
    assert created == []
    assert would_be not in _databases(settings.database_url)
    result = runner.invoke(app, ["bench", "log", "--count", "5", "--database-url",
                                 settings.database_url])
    assert result.exit_code == 2 and "holds mynumber schemas" in result.output


@needs_postgres
def test_a_role_with_createdb_gets_its_own_database_dropped_afterwards() -> None:
    assert PG_URL is not None

    def benchmark_databases() -> set[str]:
        # Only the benchmarks' own: other test workers create and drop theirs meanwhile.
        return {d for d in _databases(PG_URL or "") if d.startswith("mn_bench_")}

    before = benchmark_databases()
    with postgres_database(PG_URL) as target:
        name = make_url(target).database
        assert name is not None and name.startswith("mn_bench_") and name not in before
        assert name in benchmark_databases()
    assert benchmark_databases() == before


@pytest.fixture
def limited_role() -> Iterator[tuple[str, str]]:
    """A LOGIN role without CREATEDB (and its name), dropped afterwards with its databases."""
    assert PG_URL is not None
    role = f"mn_nocreate_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOCREATEDB NOCREATEROLE'))
    url = make_url(PG_URL).set(username=role).render_as_string(hide_password=False)
    yield role, url
    with admin.connect() as conn:
        for (name,) in conn.execute(text(
                "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                "WHERE r.rolname = :r"), {"r": role}):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


def _database_for(role: str, name: str) -> str:
    assert PG_URL is not None
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{role}"'))
    admin.dispose()
    return make_url(PG_URL).set(username=role, database=name).render_as_string(
        hide_password=False)


@needs_postgres
def test_without_createdb_a_database_not_named_for_benchmarks_is_refused(
        limited_role: tuple[str, str]) -> None:
    role, _ = limited_role
    url = _database_for(role, f"mn_app_{uuid.uuid4().hex[:6]}")
    with pytest.raises(BenchRefused, match="no CREATEDB"):
        with postgres_database(url):
            pytest.fail("must not be reached")


@needs_postgres
def test_without_createdb_an_empty_bench_database_is_used_and_emptied_again(
        limited_role: tuple[str, str]) -> None:
    role, _ = limited_role
    url = _database_for(role, f"mn_{uuid.uuid4().hex[:6]}_bench")
    engine = create_engine(url)
    with postgres_database(url) as target:
        assert target == url
        with engine.begin() as conn:  # what a benchmark leaves behind
            conn.execute(text('CREATE SCHEMA "network"'))
            conn.execute(text('CREATE TABLE "network".entries (id int)'))
    with engine.connect() as conn:
        assert conn.execute(text(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'network'")).scalar_one() == 0
    # ... and one holding a table is refused.
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE public.other (id int)"))
    engine.dispose()
    with pytest.raises(BenchRefused, match="holds tables"):
        with postgres_database(url):
            pytest.fail("must not be reached")

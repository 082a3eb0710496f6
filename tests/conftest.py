"""Shared fixtures: a fresh, migrated database for every test, on SQLite or PostgreSQL.

``MYNUMBER_TEST_DATABASE_URL`` (set by ``bin/with-postgres``) switches the whole suite to
PostgreSQL. Migrations run once per worker into a template; each test gets a copy of it
(a copied SQLite directory, or ``CREATE DATABASE … TEMPLATE``), so tests never see each other.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mynumber import migrations
from mynumber.app import Container, build_container
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.db import Databases
from mynumber.registry.interfaces import NewResident, Sex
from mynumber.registry.services import load_municipalities
from mynumber.settings import Settings

PG_URL = os.environ.get("MYNUMBER_TEST_DATABASE_URL")
SHINJUKU = "131041"
SHIBUYA = "131130"


def pytest_report_header() -> str:
    return f"mynumber database backend: {'PostgreSQL' if PG_URL else 'SQLite'}"


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One set of development keys for the whole run (generated on first use)."""
    return tmp_path_factory.mktemp("keys")


def _admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, key_dir: Path) -> Iterator[str]:
    """A migrated database with the municipalities loaded: a directory or a database name."""
    if PG_URL:
        name = f"mn_tpl_{uuid.uuid4().hex[:10]}"
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        settings = Settings(database_url=url, data_dir=tmp_path_factory.mktemp("pgdata"),
                            key_dir=key_dir)
        databases = Databases(settings)
        migrations.upgrade(databases)
        load_municipalities(databases)
        databases.dispose()
        _sync_directory(settings)
        yield name
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        directory = tmp_path_factory.mktemp("template")
        settings = Settings(data_dir=directory, key_dir=key_dir)
        databases = Databases(settings)
        migrations.upgrade(databases)
        load_municipalities(databases)
        databases.dispose()
        _sync_directory(settings)
        yield str(directory)


def _sync_directory(settings: Settings) -> None:
    from mynumber.app import sync_directory

    built = build_container(settings)
    try:
        sync_directory(built)
    finally:
        built.close()


_counter = itertools.count()


@pytest.fixture
def settings(template: str, tmp_path: Path, key_dir: Path) -> Iterator[Settings]:
    """Settings pointing at a private copy of the template database."""
    if PG_URL:
        name = f"mn_t_{os.getpid()}_{next(_counter)}"
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        # Events are delivered where a test asks (container.events.drain()), not by a
        # background thread racing the test's own set-up.
        yield Settings(database_url=url, data_dir=tmp_path / "data", key_dir=key_dir,
                       event_dispatcher=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        data = tmp_path / "data"
        shutil.copytree(template, data)
        yield Settings(data_dir=data, key_dir=key_dir, event_dispatcher=False)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    built = build_container(settings)
    yield built
    built.close()


STAFF_PASSWORD = "correct horse battery staple"


def make_staff(container: Container, username: str, municipality: str,
               role: StaffRole) -> StaffPrincipal:
    """Create a real staff account and return its principal."""
    container.staff_auth.create_staff(username, username, municipality, role, STAFF_PASSWORD)
    principal = container.staff_auth.find_staff(username)
    assert principal is not None
    return principal


@pytest.fixture
def clerk(container: Container) -> StaffPrincipal:
    """A clerk of 新宿区."""
    return make_staff(container, "shinjuku-clerk", SHINJUKU, StaffRole.CLERK)


@pytest.fixture
def supervisor(container: Container) -> StaffPrincipal:
    return make_staff(container, "shinjuku-supervisor", SHINJUKU, StaffRole.SUPERVISOR)


@pytest.fixture
def shibuya_clerk(container: Container) -> StaffPrincipal:
    return make_staff(container, "shibuya-clerk", SHIBUYA, StaffRole.CLERK)


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `mynumber` command run by a test needs to reach these settings'
    databases and keys."""
    env = {"MYNUMBER_DATA_DIR": str(settings.data_dir),
           "MYNUMBER_KEY_DIR": str(settings.keys_path), **extra}
    if settings.database_url:
        env["MYNUMBER_DATABASE_URL"] = settings.database_url
    return env


def new_resident(**overrides: object) -> NewResident:
    """A valid registration of a 新宿区 resident; override any field."""
    values: dict[str, object] = {
        "family_name": "山田",
        "given_name": "太郎",
        "family_name_kana": "ヤマダ",
        "given_name_kana": "タロウ",
        "birth_date": dt.date(1990, 4, 1),
        "sex": Sex.MALE,
        "municipality_code": SHINJUKU,
        "address": "東京都新宿区西新宿二丁目8番1号",
        "postal_code": "1638001",
    }
    values.update(overrides)
    return NewResident(**values)  # type: ignore[arg-type]

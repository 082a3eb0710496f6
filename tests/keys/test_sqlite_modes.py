"""The embedded databases are readable by their owner only: DATA_DIR 0700, every SQLite file
(with its -wal and -shm) 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from mynumber.app import build_container
from mynumber.db import CONTEXTS, Databases
from mynumber.settings import Settings


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_container_creates_private_sqlite_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    container = build_container(Settings(data_dir=data, key_dir=tmp_path / "keys"))
    try:
        for context in CONTEXTS:
            with container.databases.engine(context).begin() as conn:
                conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
                conn.execute(text("INSERT INTO probe VALUES (1)"))
            files = list(data.glob(f"{context}.sqlite3*"))
            names = {f.name for f in files}
            assert {f"{context}.sqlite3", f"{context}.sqlite3-wal",
                    f"{context}.sqlite3-shm"} <= names, names
            for file in files:
                assert _mode(file) == 0o600, file.name
        assert _mode(data) == 0o700
    finally:
        container.close()


@pytest.mark.usefixtures("umask_022")
def test_loose_files_of_an_older_version_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    for suffix in ("", "-wal", "-shm"):
        (data / f"registry.sqlite3{suffix}").touch(mode=0o644)
    databases = Databases(Settings(data_dir=data, key_dir=tmp_path / "keys"))
    try:
        with databases.engine("registry").connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        databases.dispose()
    assert _mode(data) == 0o700
    for suffix in ("", "-wal", "-shm"):
        assert _mode(data / f"registry.sqlite3{suffix}") == 0o600

"""CLI errors name the database's own message and a hint, without a traceback (issue 11);
MYNUMBER_DEBUG=1 shows the traceback instead."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from typer.testing import CliRunner

from mynumber.cli import app
from mynumber.cli.common import database_error_text

runner = CliRunner()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"MYNUMBER_DATA_DIR": str(tmp_path / "data"),
            "MYNUMBER_KEY_DIR": str(tmp_path / "keys"), **extra}


def _unmigrated(tmp_path: Path) -> None:
    """A data directory with database files but no tables (never migrated)."""
    (tmp_path / "data").mkdir()
    sqlite3.connect(tmp_path / "data" / "registry.sqlite3").close()


def test_a_directory_without_a_database_says_where_it_looked_and_creates_nothing(
        tmp_path: Path) -> None:
    result = runner.invoke(app, ["network", "agencies"], env=_env(tmp_path))
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"no mynumber database in {(tmp_path / 'data').resolve()}" in text
    assert "MYNUMBER_DATA_DIR" in text and "mynumber db upgrade" in text
    assert not (tmp_path / "data").exists() and not (tmp_path / "keys").exists()


def test_a_command_inside_the_repository_finds_its_var(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from mynumber.settings import Settings

    (tmp_path / "var").mkdir()
    sqlite3.connect(tmp_path / "var" / "registry.sqlite3").close()
    (tmp_path / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "src" / "deep")
    monkeypatch.delenv("MYNUMBER_DATA_DIR", raising=False)
    assert Settings().data_dir == tmp_path / "var"
    assert Settings(data_dir=Path("elsewhere")).data_dir == Path("elsewhere")


def test_an_unmigrated_database_names_the_missing_table_and_the_fix(tmp_path: Path) -> None:
    _unmigrated(tmp_path)
    result = runner.invoke(app, ["network", "agencies"], env=_env(tmp_path))
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "the database refused the command (OperationalError): no such table" in text
    assert "run `mynumber db upgrade`" in text
    assert "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_an_unreachable_server_names_the_connection_error(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/mynumber"
    result = runner.invoke(app, ["network", "agencies"],
                           env=_env(tmp_path, MYNUMBER_DATABASE_URL=url))
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "(OperationalError): connection" in text and "127.0.0.1" in text
    assert "Hint: check MYNUMBER_DATABASE_URL" in text


def test_debug_lets_the_error_through(tmp_path: Path) -> None:
    _unmigrated(tmp_path)
    result = runner.invoke(app, ["network", "agencies"],
                           env=_env(tmp_path, MYNUMBER_DEBUG="1"))
    assert isinstance(result.exception, OperationalError)


def test_only_the_first_line_and_no_long_numbers_are_shown() -> None:
    orig = Exception('invalid input value "123456789018" for column\n'
                     "DETAIL: Key (name)=(山田太郎) already exists.")
    text = database_error_text(ProgrammingError("SELECT 1", {}, orig))
    assert text is not None
    assert "123456789018" not in text and "山田" not in text and "DETAIL" not in text
    assert text.startswith("the database refused the command (ProgrammingError): invalid")


def test_a_missing_privilege_points_at_provisioning() -> None:
    orig = Exception("permission denied for schema registry")
    text = database_error_text(ProgrammingError("SELECT 1", {}, orig))
    assert text is not None and "mynumber db provision" in text


def test_other_database_errors_are_not_described() -> None:
    """An IntegrityError's message can carry row values: it stays a bare type name."""
    assert database_error_text(IntegrityError("INSERT", {}, Exception("dup (x)=(1)"))) is None
    assert database_error_text(ValueError("x")) is None

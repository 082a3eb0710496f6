"""Test and demo tools refuse production (issue 11): `card issue-test`, `seed`, `bench` and the
demo OIDC client stop with exit code 2 before they open a database or read a key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mynumber.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _production_env(tmp_path: Path) -> dict[str, str]:
    """A production configuration whose every resource would fail loudly if touched."""
    return {
        "MYNUMBER_MODE": "production",
        "MYNUMBER_DATA_DIR": str(tmp_path / "data"),
        "MYNUMBER_KEY_DIR": str(tmp_path / "keys"),
        "MYNUMBER_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/production",
        "MYNUMBER_PKCS11_LIBRARY": str(tmp_path / "no-such-pkcs11.so"),
        "MYNUMBER_PKCS11_TOKEN": "production",
        "MYNUMBER_PKCS11_PIN": "0000",
    }


@pytest.mark.parametrize("command", [
    ["card", "issue-test", "--out", "OUT"],
    ["seed", "--residents", "3"],
    ["bench", "log", "--count", "10"],
    ["bench", "exchange", "--count", "10", "--seconds", "0.2"],
    ["portal", "proxy", "register", "--principal", "1", "--proxy", "2", "--kind",
     "adult_guardian"],
    ["portal", "proxy", "revoke", "1"],
    ["portal", "notice", "send", "--agency", "mhlw", "--address-number", "A1", "--kind",
     "information", "--title", "t", "--body", "b"],
])
def test_refused_in_production_before_any_database_or_key(tmp_path: Path,
                                                         command: list[str]) -> None:
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    result = runner.invoke(app, args, env=_production_env(tmp_path))
    assert result.exit_code == 2, result.output
    assert "production mode refuses it" in result.output
    assert "MYNUMBER_MODE=production" in result.output
    # Nothing was created: no key directory, no data directory, no card output.
    assert not (tmp_path / "keys").exists()
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "out").exists()


def test_the_mode_is_read_case_insensitively_by_name(tmp_path: Path) -> None:
    env = _production_env(tmp_path)
    env["mynumber_mode"] = env.pop("MYNUMBER_MODE")
    result = runner.invoke(app, ["seed", "--residents", "1"], env=env)
    assert result.exit_code == 2, result.output


def test_an_invalid_mode_is_a_usage_error_not_a_run(tmp_path: Path) -> None:
    env = _production_env(tmp_path) | {"MYNUMBER_MODE": "prod"}
    result = runner.invoke(app, ["card", "issue-test", "--out", str(tmp_path / "out")],
                           env=env)
    assert result.exit_code == 2
    assert "mode" in result.output and not (tmp_path / "keys").exists()


def test_card_issue_test_still_runs_in_embedded_mode(tmp_path: Path) -> None:
    """The refusal is production's only: the development tool keeps working."""
    from mynumber import migrations
    from mynumber.db import Databases
    from mynumber.registry.services import load_municipalities
    from mynumber.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "keys")
    databases = Databases(settings)
    migrations.upgrade(databases)
    load_municipalities(databases)
    databases.dispose()
    env = {"MYNUMBER_DATA_DIR": str(settings.data_dir), "MYNUMBER_KEY_DIR": str(tmp_path / "keys")}
    result = runner.invoke(app, ["card", "issue-test", "--out", str(tmp_path / "card")], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "card" / "card.json").exists()


def test_demo_oidc_client_refuses_production() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYNUMBER_")}
    env["MYNUMBER_MODE"] = "production"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "oidc_client.py"),
                           "client", "secret"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "production mode refuses it" in done.stderr
    assert "open:" not in done.stdout  # it never built an authorization request


def test_bench_all_refuses_production() -> None:
    env = dict(os.environ, MYNUMBER_MODE="production")
    done = subprocess.run([str(ROOT / "bin" / "bench-all")], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "production mode refuses it" in done.stderr
    assert done.stdout == ""

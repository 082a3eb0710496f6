"""The command line as users call it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mynumber.cli import app
from mynumber.keys import FileKeyProvider
from mynumber.settings import Settings
from tests.conftest import cli_env

runner = CliRunner()


_env = cli_env


def test_number_check_accepts_a_valid_number_without_printing_it() -> None:
    result = runner.invoke(app, ["number", "check", "621498320257", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"kind": "individual", "valid": True}
    assert "621498320257" not in result.stdout


def test_number_check_rejects_a_bad_check_digit_with_a_stable_code() -> None:
    result = runner.invoke(app, ["number", "check", "123456789019", "--json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["valid"] is False and body["code"] == "invalid_checksum"
    assert "123456789019" not in result.output


@pytest.mark.parametrize(("kind", "value"), [
    ("resident", "24727059608"), ("corporate", "5835678256246"), ("municipality", "131041"),
])
def test_number_check_other_kinds(kind: str, value: str) -> None:
    assert runner.invoke(app, ["number", "check", value, "--kind", kind]).exit_code == 0


def test_number_check_unknown_kind_is_a_usage_error() -> None:
    result = runner.invoke(app, ["number", "check", "1", "--kind", "passport"])
    assert result.exit_code == 2
    assert "unknown kind" in result.output


def test_db_check_passes_on_a_migrated_database(settings: Settings) -> None:
    result = runner.invoke(app, ["db", "check"], env=_env(settings))
    assert result.exit_code == 0, result.output
    assert "agree" in result.output


def test_seed_refuses_production_mode(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path / "keys", create_missing=False, development=False)
    from mynumber.app import NETWORK_KEYS

    for purpose in ("registry.resident_code_pool", "registry.numbering", "registry.number_index",
                    *NETWORK_KEYS):
        keys.write_key(purpose, bytes(32), development=False)
    env = {"MYNUMBER_MODE": "production", "MYNUMBER_KEY_DIR": str(tmp_path / "keys"),
           "MYNUMBER_DATA_DIR": str(tmp_path),
           "MYNUMBER_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
           "MYNUMBER_JPKI_KEY_PASSPHRASE": "synthetic production passphrase 0123"}
    result = runner.invoke(app, ["seed", "--residents", "5"], env=env)
    assert result.exit_code == 2
    assert "production mode refuses" in result.output


def test_unknown_benchmark_is_a_usage_error() -> None:
    result = runner.invoke(app, ["bench", "nothing"])
    assert result.exit_code == 2
    assert "unknown benchmark" in result.output


def test_a_settings_error_names_the_setting_and_never_its_value(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MYNUMBER_")}
    env.update({"MYNUMBER_MODE": "production", "MYNUMBER_PKCS11_PIN": "975310",
                "MYNUMBER_PKCS11_PIN_FILE": str(tmp_path / "missing-pin")})
    done = subprocess.run([sys.executable, "-m", "mynumber", "keys", "check"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: settings:" in done.stderr and "Traceback" not in done.stderr
    assert "975310" not in done.stdout + done.stderr

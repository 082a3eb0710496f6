"""The service files in deploy/systemd stay true to the code: every `mynumber` command line in
them parses, and every MYNUMBER_* variable in the example environment files is a setting."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mynumber.cli import app
from mynumber.settings import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "systemd"
UNITS = sorted(DEPLOY.glob("*.service"))
ENVS = sorted(DEPLOY.glob("*.env.example"))


def _commands(unit: Path) -> list[list[str]]:
    text = unit.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        match = re.match(r"^Exec\w*=(.*)$", line.strip())
        if match:
            words = shlex.split(match.group(1))
            assert words[0].endswith("/mynumber"), line
            found.append(words[1:])
    return found


def test_there_is_a_unit_per_role() -> None:
    roles = {word for unit in UNITS for cmd in _commands(unit)
             for i, word in enumerate(cmd) if i and cmd[i - 1] == "--role"}
    assert roles == {"core", "intermediate", "portal"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_every_command_line_in_a_unit_parses(unit: Path) -> None:
    for args in _commands(unit):
        # With --help the command runs nothing, but every option before it is parsed first:
        # an unknown option or a bad value fails.
        result = CliRunner().invoke(app, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
        assert "Usage:" in result.output and args[0] in result.output
    # The control: a misspelt option is caught this way.
    assert CliRunner().invoke(app, ["serve", "--infra-prot", "1", "--help"]).exit_code == 2


@pytest.mark.parametrize("env_file", ENVS, ids=lambda p: p.name)
def test_every_variable_in_an_example_environment_is_a_setting(env_file: Path) -> None:
    fields = {f"MYNUMBER_{name.upper()}" for name in Settings.model_fields}
    names = [line.split("=", 1)[0] for line in env_file.read_text().splitlines()
             if line and not line.startswith("#")]
    assert names and all(n in fields or not n.startswith("MYNUMBER_") for n in names), names
    assert "MYNUMBER_PKCS11_PIN" not in names  # the PIN comes from a file, never this file

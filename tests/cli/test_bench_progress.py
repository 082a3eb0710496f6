"""`mynumber bench` runs show progress (issue 13): on standard error, phase by phase, without
a terminal a line at each phase's start and end and now and then in between; with --json
nothing but the one JSON object."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from mynumber.bench import BenchOptions, NoProgress
from mynumber.cli.bench import LongWorkProgress
from mynumber.cli.main import app


def test_a_bench_run_without_a_terminal_prints_its_phases_on_stderr() -> None:
    result = CliRunner().invoke(app, ["bench", "jpki-verify", "--count", "40"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "bench jpki-verify: creating a throwaway PKI (16 holders) ..." in lines
    assert "bench jpki-verify: verifications ..." in lines
    # A counted phase ends with its count, out of its total.
    assert any(line.startswith("bench jpki-verify: verifications: 40 / 40 (100%), ")
               and line.endswith(" (done)") for line in lines), lines
    assert any(line.startswith("bench jpki-verify: verifications without the chain cache: "
                               "10 / 10 (100%), ") for line in lines), lines
    # The figures themselves stay on standard output.
    assert "bench jpki-verify: " not in result.stdout
    assert "per_second" in result.stdout


def test_with_json_stdout_is_one_json_object_and_stderr_has_no_progress() -> None:
    result = CliRunner().invoke(app, ["bench", "jpki-verify", "--count", "40", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["benchmark"] == "jpki-verify"
    assert figures["count"] == 40
    assert result.stderr == ""


def test_a_long_phase_gets_lines_in_between(capsys: pytest.CaptureFixture[str]) -> None:
    progress = LongWorkProgress("demo", tick=0.01, every=0.0)
    with progress.phase("numbering", total=1000) as report:
        report(250)
        time.sleep(0.2)  # the ticker, not the workload, writes the line
        report(1000)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "bench demo: numbering ..."
    assert any(line.startswith("bench demo: numbering: 250 / 1,000 (25%), ")
               for line in lines), lines
    assert lines[-1].startswith("bench demo: numbering: 1,000 / 1,000 (100%), ")
    assert lines[-1].endswith(" (done)")


def test_reporting_writes_nothing_itself(capsys: pytest.CaptureFixture[str]) -> None:
    """A report from the workload stores the count; output comes from the ticker at most once
    per tick, however often the workload reports."""
    progress = LongWorkProgress("demo", tick=3600.0, every=0.0)
    with progress.phase("enqueueing", total=100_000) as report:
        for done in range(1, 100_001):
            report(done)
        assert capsys.readouterr().err == "bench demo: enqueueing ...\n"
    assert capsys.readouterr().err.startswith("bench demo: enqueueing: 100,000 / 100,000")


def test_quiet_progress_and_the_default_show_nothing(
        capsys: pytest.CaptureFixture[str]) -> None:
    for progress in (LongWorkProgress("demo", quiet=True, tick=0.01, every=0.0),
                     BenchOptions().progress):
        with progress.phase("importing", total=10) as report:
            report(5)
            time.sleep(0.05)
            report(10)
    assert isinstance(BenchOptions().progress, NoProgress)
    assert capsys.readouterr().err == ""

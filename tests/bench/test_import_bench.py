"""`mynumber bench import`: the figures' shape and that every generated line was imported
(speed is measured by the benchmark, not judged here)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mynumber.bench import BenchOptions
from mynumber.bench import import_ as bench
from mynumber.cli.main import app
from mynumber.registry.importer import FIELDS
from tests.conftest import PG_URL

KEYS = {
    "per_second", "sqlite_per_second", "postgres_per_second", "count", "batch_size",
    "goal_per_second",
}


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    return bench.run(BenchOptions(count=3000, database_url=PG_URL,
                                  extra={"batch_size": 1000}))


def test_figures_have_the_issue_shape(figures: dict[str, Any]) -> None:
    assert KEYS <= figures.keys()
    assert figures["count"] == 3000 and figures["batch_size"] == 1000
    assert figures["goal_per_second"] == 50_000
    assert figures["sqlite_stored"] == 3000
    assert figures["sqlite_per_second"] > 0
    if PG_URL:
        assert figures["postgres_stored"] == 3000
        assert figures["per_second"] == figures["postgres_per_second"] > 0
        assert figures["measured_on"] == "postgresql"
    else:
        assert figures["postgres_per_second"] is None
        assert figures["per_second"] == figures["sqlite_per_second"]
    assert figures["per_second"] == pytest.approx(figures["count"] / (
        figures["postgres_seconds"] or figures["sqlite_seconds"]), rel=0.01)
    json.dumps(figures)


def test_generated_lines_are_valid_and_in_households(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    bench.generate_csv(path, 500)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == 500 and tuple(rows[0]) == FIELDS
    households = {r["household_key"] for r in rows}
    assert 500 / 4 <= len(households) < 500
    assert bench.generate_csv.__doc__


def test_cli_prints_one_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYNUMBER_BENCH_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["bench", "import", "--count", "300", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["benchmark"] == "import" and figures["sqlite_stored"] == 300
    assert figures["postgres_per_second"] is None and "machine" in figures

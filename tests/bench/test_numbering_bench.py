"""`mynumber bench numbering`: the figures' shape, and that the uniqueness check is real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from mynumber.bench import BenchOptions
from mynumber.bench import numbering as bench
from mynumber.cli.main import app
from mynumber.registry.numbering import Numbering

KEYS = {
    "per_second", "count", "workers", "seconds", "nation_seconds_extrapolated",
    "peak_memory_mb", "baseline_per_second", "ratio", "distinct", "goal",
}


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    return bench.run(BenchOptions(count=200_000, workers=2, extra={"baseline_sample": 2000}))


def test_figures_have_the_issue_shape(figures: dict[str, Any]) -> None:
    assert KEYS <= figures.keys()
    assert figures["count"] == 200_000
    assert figures["workers"] == 2
    assert figures["chunks"] >= 2  # both workers had work
    assert figures["distinct"] is True
    assert figures["duplicates"] == 0
    assert figures["goal"] == {"nation_seconds": 30, "peak_memory_mb": 2000, "ratio": 100}
    assert figures["per_second"] > 0 and figures["baseline_per_second"] > 0
    assert figures["ratio"] == pytest.approx(
        figures["per_second"] / figures["baseline_per_second"]
    )
    assert figures["nation_seconds_extrapolated"] == pytest.approx(
        125_000_000 / figures["per_second"]
    )
    assert figures["peak_memory_mb"] >= figures["memory_mb"]["parent"]
    # One figure per pool process that took a chunk: two processes, though on a busy machine
    # one of them may take every chunk.
    assert 1 <= len(figures["memory_mb"]["workers"]) <= 2
    assert figures["baseline_matches_vector"] is True
    assert figures["check_digits_valid"] is True
    json.dumps(figures)


def test_chunks_join_up_to_the_whole_range() -> None:
    keys = bench.throwaway_keys()
    numbering = Numbering(bench.MemoryKeys(keys))
    whole = bench.number_range(numbering, 0, 30_000)
    parts = np.concatenate([bench.number_range(numbering, a, a + 10_000)
                            for a in (0, 10_000, 20_000)])
    assert np.array_equal(whole, parts)
    assert np.array_equal(whole, bench.number_range(numbering, 0, 30_000, block=4096))


def _spill(
    scratch: Path, index: int, values: list[int], bounds: tuple[int, ...]
) -> tuple[int, ...]:
    array = np.sort(np.array(values, dtype=np.uint64))
    np.save(scratch / f"chunk-{index:06d}.npy", array)
    cuts = np.searchsorted(array, np.array(bounds, dtype=np.uint64), side="left")
    return (0, *(int(c) for c in cuts))


def test_bucket_check_finds_a_duplicate_across_chunks(tmp_path: Path) -> None:
    bounds = tuple(int(b) for b in bench.bucket_bounds(4))
    shared = 987_654_321_098
    first = _spill(tmp_path, 0, [5, 300_000_000_000, shared], bounds)
    second = _spill(tmp_path, 1, [7, shared, 999_999_999_999], bounds)
    found = 0
    total = 0
    for b in range(4):
        task = bench.BucketTask(b, str(tmp_path), ((0, first[b], first[b + 1]),
                                                   (1, second[b], second[b + 1])))
        result = bench._check_bucket(task)
        found += result.duplicates
        total += result.count
    assert total == 6
    assert found == 1


def test_cli_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["bench", "numbering", "--count", "5000", "--workers", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["benchmark"] == "numbering"
    assert figures["count"] == 5_000
    assert figures["distinct"] is True
    assert "machine" in figures

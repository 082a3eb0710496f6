"""`mynumber bench jpki-verify` and `mynumber bench ocsp`: the figures' shape, and that both
OCSP responders really answered (and agree)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from typer.testing import CliRunner

from mynumber.bench import WORKLOADS, BenchOptions, jpki_verify, ocsp
from mynumber.cli.main import app
from mynumber.jpki.revocation import GOOD, revoked

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def test_workloads_are_registered() -> None:
    assert WORKLOADS["jpki-verify"] == "mynumber.bench.jpki_verify"
    assert WORKLOADS["ocsp"] == "mynumber.bench.ocsp"


@pytest.fixture(scope="module")
def verify_figures() -> dict[str, Any]:
    return jpki_verify.run(BenchOptions(count=50, extra={"holders": 3}))


def test_jpki_verify_shape(verify_figures: dict[str, Any]) -> None:
    f = verify_figures
    assert {"per_second", "baseline_per_second", "ratio", "count", "goal_ratio",
            "status_source"} <= f.keys()
    assert f["count"] == 50
    assert f["goal_ratio"] == 0.3
    assert f["per_second"] > 0 and f["baseline_per_second"] > 0
    assert f["ratio"] == pytest.approx(f["per_second"] / f["baseline_per_second"])
    assert "callable" in f["status_source"]
    assert f["ocsp_requests"] == 3  # one real OCSP answer per holder, then the cache
    assert f["distinct_pairwise_ids"] == 3
    json.dumps(f)


@pytest.fixture(scope="module")
def ocsp_figures() -> dict[str, Any]:
    return ocsp.run(BenchOptions(count=50, extra={"serials": 20, "rounds": 2}))


def test_ocsp_shape_and_both_responders_answer_correctly(ocsp_figures: dict[str, Any]) -> None:
    f = ocsp_figures
    assert {"per_second", "baseline_per_second", "ratio", "count", "goal_ratio",
            "cached_responses"} <= f.keys()
    assert f["count"] == 50
    assert f["goal_ratio"] == 1.0
    assert f["cached_responses"] is True
    assert f["per_second"] > 0 and f["baseline_per_second"] > 0 and f["uncached_per_second"] > 0
    assert f["ratio"] == pytest.approx(f["per_second"] / f["baseline_per_second"])
    # every response of every responder parsed and matched the expected status
    assert f["all_correct"] == {"openssl": True, "ours": True, "ours_uncached": True}
    assert f["agree"] is True
    assert f["revoked_example"] == {"openssl": "REVOKED", "ours": "REVOKED",
                                    "ours_uncached": "REVOKED"}
    assert f["revoked_serials"] == 2
    json.dumps(f)


def test_no_responder_is_left_running(ocsp_figures: dict[str, Any]) -> None:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True,
                         check=True).stdout
    assert "mynumber-bench-ocsp-" not in out


def test_index_lines_are_what_openssl_reads() -> None:
    expires = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert ocsp.index_line(0x0ABC, expires, GOOD) == (
        "V\t310102030405Z\t\t0ABC\tunknown\t/C=JP/CN=0ABC\n"
    )
    line = ocsp.index_line(
        0xFF, expires, revoked(dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
                               x509.ReasonFlags.key_compromise)
    )
    assert line == "R\t310102030405Z\t260506070809Z,keyCompromise\tFF\tunknown\t/C=JP/CN=FF\n"


def test_fixture_statuses_round_trip(tmp_path: Path) -> None:
    fixture = ocsp.write_fixture(tmp_path, 11)
    assert ocsp.load_statuses(tmp_path) == fixture["statuses"]
    assert len((tmp_path / "index.txt").read_text().splitlines()) == 11


def test_cli_json() -> None:
    result = CliRunner().invoke(app, ["bench", "jpki-verify", "--count", "20", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["benchmark"] == "jpki-verify"
    assert figures["count"] == 20

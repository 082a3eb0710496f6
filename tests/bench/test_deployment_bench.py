"""`mynumber bench exchange-deployment` (`bench exchange --deployment`): the production path
(requester -> core -> intermediate server as `mynumber serve` processes over mutual TLS, on
PostgreSQL) at a tiny size, the refusal of SQLite, and bin/with-postgres's durable cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mynumber.bench import WORKLOADS, BenchOptions, BenchRefused, deployment
from mynumber.cli import app as cli
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
needs_pg = pytest.mark.skipif(not PG_URL, reason="the deployment bench measures PostgreSQL "
                              "(run under bin/with-postgres)")


@needs_pg
def test_a_tiny_deployment_run_crosses_both_services_and_loses_nothing() -> None:
    assert WORKLOADS["exchange-deployment"] == "mynumber.bench.deployment"
    figures = deployment.run(BenchOptions(
        count=30, workers=1, database_url=PG_URL,
        extra={"seconds": 1.5, "rate": 20, "concurrency": 2, "in_process_seconds": 1.0}))
    sustained, at_rate, check = (figures["sustained"], figures["at_20_per_second"],
                                 figures["nothing_lost"])
    assert figures["per_second"] == sustained["per_second"] > 0
    assert sustained["errors"] == at_rate["errors"] == 0, (sustained, at_rate)
    assert sustained["warm_up_errors"] == at_rate["warm_up_errors"] == 0
    assert at_rate["exchanges"] == 30  # 20/s offered for 1.5 s
    assert at_rate["p99_ms"] >= at_rate["p50_ms"] > 0
    assert figures["p99_ms_at_20_per_second"] == at_rate["p99_ms"]
    # The in-process figure of the same run, on the same database.
    assert figures["in_process_per_second"] == figures["in_process"]["per_second"] > 0
    assert figures["in_process"]["not_provided"] == 0
    # Every answer the requesters got was recorded once by the core, integrated into the
    # log, and the log verifies; the services stopped cleanly.
    answered = (sustained["recorded"] + sustained["warm_up"] + at_rate["recorded"]
                + at_rate["warm_up"])
    assert check["recorded_by_the_deployment"] == check["answered_with_a_serial"] == answered
    assert check["unacknowledged"] == check["transport_errors"] == 0
    assert check["log_size"] == check["exchange_rows"] > answered  # + the in-process run's
    assert check["log_verifies"] and check["ok"]
    assert check["services_exit_status"] == {"core": 0, "intermediate": 0}
    # The server's durability is read and reported; bin/with-postgres's default cluster has
    # fsync off, which the figures must say.
    durability = figures["postgresql"]
    assert {"fsync", "synchronous_commit", "full_page_writes"} <= durability.keys()
    if durability["fsync"] == "off":
        assert any("fsync is off" in w for w in figures["warnings"])
    else:
        assert not any("fsync is off" in w for w in figures.get("warnings", []))


def test_sqlite_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYNUMBER_BENCH_DATABASE_URL", raising=False)
    with pytest.raises(BenchRefused, match="PostgreSQL"):
        deployment.run(BenchOptions(count=5, workers=1, extra={"seconds": 0.1}))


def test_the_cli_maps_deployment_to_the_workload_and_refuses_it_elsewhere(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYNUMBER_BENCH_DATABASE_URL", raising=False)
    monkeypatch.delenv("MYNUMBER_MODE", raising=False)
    result = runner.invoke(cli, ["bench", "exchange", "--deployment", "--seconds", "0.1"])
    assert result.exit_code == 2, result.output
    assert "exchange-deployment measures the production path on PostgreSQL" in " ".join(
        result.output.split())
    result = runner.invoke(cli, ["bench", "log", "--deployment"])
    assert result.exit_code == 2 and "--deployment applies to the exchange" in result.output


def _pg_binaries() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


@pytest.mark.skipif(not _pg_binaries(), reason="needs the PostgreSQL binaries")
@pytest.mark.parametrize(("durable", "expected"), [("1", "on on on"), ("", "off off off")])
def test_with_postgres_starts_a_durable_cluster_on_request(durable: str, expected: str) -> None:
    show = ("import os, psycopg; url = os.environ['MYNUMBER_TEST_DATABASE_URL'].replace("
            "'postgresql+psycopg', 'postgresql'); c = psycopg.connect(url); print(' '.join("
            "c.execute(f'SHOW {n}').fetchone()[0] for n in ('fsync', 'synchronous_commit', "
            "'full_page_writes')))")
    env = {**os.environ, "MYNUMBER_PG_DURABLE": durable}
    done = subprocess.run([str(ROOT / "bin" / "with-postgres"), sys.executable, "-c", show],
                          env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == expected

"""`mynumber bench NAME`: run one workload and print its figures (one JSON object with --json)."""

from __future__ import annotations

import importlib
import json
from typing import Annotated

import typer
from rich.table import Table

from mynumber.bench import WORKLOADS, BenchOptions, BenchRefused, machine
from mynumber.cli.common import console, database_errors, fail, refuse_in_production


def bench(
    name: Annotated[str, typer.Argument(help=f"one of: {', '.join(WORKLOADS)}")],
    count: Annotated[int | None, typer.Option(help="how many items to process")] = None,
    workers: Annotated[int | None, typer.Option(help="processes to use (default: all cores)")]
    = None,
    database_url: Annotated[str | None, typer.Option(
        help="PostgreSQL URL for database workloads (default: a throwaway SQLite, and "
             "MYNUMBER_BENCH_DATABASE_URL if set). The role needs CREATEDB (a database is "
             "created and dropped), or the URL names an EMPTY database named for benchmarks "
             "(e.g. mynumber_bench); a database holding mynumber schemas is refused")] = None,
    seconds: Annotated[float | None, typer.Option(
        help="how long to apply load, for load workloads (exchange)")] = None,
    rate: Annotated[int | None, typer.Option(
        help="offered rate per second for the latency measurement (exchange)")] = None,
    concurrency: Annotated[int | None, typer.Option(
        help="requests in flight per requester process (exchange-deployment)")] = None,
    deployment: Annotated[bool, typer.Option(
        "--deployment", help="with exchange: measure the production path instead "
        "(exchange-deployment: core and intermediate server as services over mutual TLS, "
        "PostgreSQL only)")] = False,
    residents: Annotated[int | None, typer.Option(
        help="people in the copy (juki; 1,000,000 at full size)")] = None,
    municipalities: Annotated[int | None, typer.Option(
        help="municipalities the burst's residents live in (events; default 20, 0 = all)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Measure one of the figures the issues name (see docs/benchmarks.md). Development and
    test machines only: production mode refuses it, and each run uses its own temporary keys
    and databases whatever the MYNUMBER_* settings say."""
    refuse_in_production("`mynumber bench`", "Run benchmarks on a development machine or a "
                         "throwaway cluster (bin/with-postgres).")
    if deployment:
        if name not in ("exchange", "exchange-deployment"):
            fail("--deployment applies to the exchange benchmark only", code=2)
        name = "exchange-deployment"
    module_name = WORKLOADS.get(name)
    if module_name is None:
        fail(f"unknown benchmark {name!r}; choose from {', '.join(WORKLOADS)}", code=2)
    module = importlib.import_module(module_name)
    options = (("seconds", seconds), ("rate", rate), ("concurrency", concurrency),
               ("residents", residents), ("municipalities", municipalities))
    extra = {k: v for k, v in options if v is not None}
    try:
        with database_errors():
            result = module.run(BenchOptions(count=count, workers=workers,
                                             database_url=database_url, extra=extra))
    except BenchRefused as exc:
        fail(str(exc), code=2)
    result = {"benchmark": name, **result, "machine": machine()}
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    table = Table(title=f"mynumber bench {name}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key != "machine":
            table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else str(value))
    console.print(table)

"""`mynumber bench NAME`: run one workload and print its figures (one JSON object with --json)."""

from __future__ import annotations

import importlib
import json
from typing import Annotated

import typer
from rich.table import Table

from mynumber.bench import WORKLOADS, BenchOptions, machine
from mynumber.cli.common import console, fail


def bench(
    name: Annotated[str, typer.Argument(help=f"one of: {', '.join(WORKLOADS)}")],
    count: Annotated[int | None, typer.Option(help="how many items to process")] = None,
    workers: Annotated[int | None, typer.Option(help="processes to use (default: all cores)")]
    = None,
    database_url: Annotated[str | None, typer.Option(
        help="PostgreSQL URL for database workloads (default: a throwaway SQLite, and "
             "MYNUMBER_BENCH_DATABASE_URL if set)")] = None,
    seconds: Annotated[float | None, typer.Option(
        help="how long to apply load, for load workloads (exchange)")] = None,
    rate: Annotated[int | None, typer.Option(
        help="offered rate per second for the latency measurement (exchange)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Measure one of the figures the issues name (see docs/benchmarks.md)."""
    module_name = WORKLOADS.get(name)
    if module_name is None:
        fail(f"unknown benchmark {name!r}; choose from {', '.join(WORKLOADS)}", code=2)
    module = importlib.import_module(module_name)
    extra = {k: v for k, v in (("seconds", seconds), ("rate", rate)) if v is not None}
    result = module.run(BenchOptions(count=count, workers=workers, database_url=database_url,
                                     extra=extra))
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

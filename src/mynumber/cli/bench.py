"""`mynumber bench NAME`: run one workload and print its figures (one JSON object with --json)."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from mynumber.bench import WORKLOADS, BenchOptions, BenchRefused, Report, machine
from mynumber.cli.common import (
    LongWork,
    console,
    database_errors,
    fail,
    refuse_in_production,
)


class _Count:
    """A phase's latest count. Reporting stores two numbers and nothing else, so that a
    workload may report between the blocks of a timed loop without changing its figure."""

    def __init__(self, total: int | None) -> None:
        self.done = 0
        self.total = total
        self.reported = False

    def __call__(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total:
            self.total = total
        self.reported = True


class LongWorkProgress:
    """The bench's phases shown through :class:`LongWork` (a bar on a terminal, a line now and
    then elsewhere, nothing when ``quiet``). A ticker thread hands the latest count to
    LongWork once per ``tick`` seconds: the workload's own threads never format, lock or
    write anything for progress, and output stays throttled however often they report."""

    def __init__(self, name: str, *, quiet: bool = False, tick: float = 1.0,
                 every: float = 5.0) -> None:
        self.name = name
        self.quiet = quiet
        self.tick = tick
        self.every = every

    @contextmanager
    def phase(self, description: str, total: int | None = None, *, in_bytes: bool = False
              ) -> Iterator[Report]:
        count = _Count(total)
        if self.quiet:  # --json: machine output only, so not even a ticker
            yield count
            return
        with LongWork(f"bench {self.name}: {description}", total=total, in_bytes=in_bytes,
                      every=self.every) as work:
            stop = threading.Event()

            def ticker() -> None:
                # A phase that reports no count still gets its bar (elapsed time) on a
                # terminal; in a log its start and end lines say enough.
                while not stop.wait(self.tick):
                    if count.reported or work.terminal:
                        work(count.done, count.total)

            thread = threading.Thread(target=ticker, name="bench-progress", daemon=True)
            thread.start()
            try:
                yield count
            finally:
                stop.set()
                thread.join()
            if count.reported:
                work(count.done, count.total)


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
    as_json: Annotated[bool, typer.Option(
        "--json", help="print one JSON object (and no progress)")] = False,
) -> None:
    """Measure one of the figures the issues name (see docs/benchmarks.md). Development and
    test machines only: production mode refuses it, and each run uses its own temporary keys
    and databases whatever the MYNUMBER_* settings say. Progress goes to standard error: a
    bar on a terminal, a line every few seconds elsewhere, nothing with --json."""
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
            result = module.run(BenchOptions(
                count=count, workers=workers, database_url=database_url, extra=extra,
                progress=LongWorkProgress(name, quiet=as_json)))
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

"""`mynumber registry …`: bulk import and export (format: docs/import-format.md)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mynumber.cli.common import LongWork, console, container_from_env, fail

app = typer.Typer(help="The resident registry: bulk import and export.", no_args_is_help=True)

# Exit codes: 1 the file or the database refused (nothing of the failing batch stored),
# 3 the reconciliation failed (read != stored + rejected).
EXIT_FATAL = 1
EXIT_UNRECONCILED = 3
REJECTIONS_SHOWN = 20


def _actor(command: str) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{command}:{user}"[:80]


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV (with header) or JSON Lines file")],
    batch_size: Annotated[int, typer.Option(help="lines per all-or-nothing batch")] = 5000,
    file_format: Annotated[str | None, typer.Option(
        "--format", help="csv or jsonl (default: from the file name)")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print only the report, as one JSON object")] = False,
) -> None:
    """Import residents; re-run the same file to resume after a crash (nothing twice)."""
    from mynumber.registry.importer import BatchFailed, Importer, ImportFileError

    container = container_from_env()
    try:
        with LongWork("importing", in_bytes=True, quiet=as_json) as progress:
            importer = Importer(container.registry, batch_size=batch_size,
                                actor=_actor("import"), on_progress=progress)
            report = importer.run(file, file_format)
    except ImportFileError as exc:
        stored = "" if exc.extra.get("partial") else "; nothing was stored"
        fail(f"{file}: {exc.detail}{stored}", code=EXIT_FATAL)
    except BatchFailed as exc:
        fail(str(exc), code=EXIT_FATAL)
    finally:
        container.close()

    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        table = Table(title=f"import of {file.name}", show_header=False)
        table.add_column("figure")
        table.add_column("value", justify="right")
        for label, value in (
            ("read", report.read), ("stored", report.stored), ("rejected", report.rejected),
            ("batches", report.batches), ("resumed batches", report.resumed_batches),
            ("run", report.run_id), ("file SHA-256", report.file_sha256[:16] + "…"),
        ):
            table.add_row(label, str(value))
        console.print(table)
        for rejection in report.rejections[:REJECTIONS_SHOWN]:
            where = f" [{rejection.field}]" if rejection.field else ""
            console.print(f"line {rejection.line}{where}: {rejection.reason}", markup=False)
        if report.rejected > REJECTIONS_SHOWN:
            console.print(f"… and {report.rejected - REJECTIONS_SHOWN} more rejections "
                          "(--json lists them all)")
    if not report.reconciled:
        Console(stderr=True).print(
            f"[red]error:[/red] reconciliation failed: read {report.read} != stored "
            f"{report.stored} + rejected {report.rejected}"
        )
        raise typer.Exit(EXIT_UNRECONCILED)


@app.command("export")
def export(
    file: Annotated[Path, typer.Argument(help="the file to write (.csv or .jsonl)")],
    municipality: Annotated[str | None, typer.Option(
        help="only this municipality's residents (6-digit code, or 5 without check digit)")]
    = None,
    file_format: Annotated[str | None, typer.Option(
        "--format", help="csv or jsonl (default: from the file name)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Export current residents in the import format (with 住民票コード, never a 個人番号)."""
    from mynumber.errors import DomainError
    from mynumber.registry.exporter import export_residents

    container = container_from_env()
    try:
        with LongWork("exporting", quiet=as_json) as progress:
            result = export_residents(container.registry, file, file_format=file_format,
                                      municipality=municipality, actor=_actor("export"),
                                      on_progress=progress)
    except DomainError as exc:
        fail(exc.detail)
    except OSError as exc:
        fail(f"cannot write {file}: {exc.strerror or exc}")
    finally:
        container.close()
    if as_json:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    console.print(f"exported {result.exported} residents to {result.file} ({result.format})")
    if result.replaced_control_characters:
        console.print(f"{result.replaced_control_characters} values had line breaks or other "
                      "control characters, written as spaces")

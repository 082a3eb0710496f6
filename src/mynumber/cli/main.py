"""Top-level Typer app and the small command groups."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from mynumber.cli import accounts as accounts_cli
from mynumber.cli import agencies as agencies_cli
from mynumber.cli import api_clients as api_clients_cli
from mynumber.cli import bench as bench_cli
from mynumber.cli import card as card_cli
from mynumber.cli import db as db_cli
from mynumber.cli import events as events_cli
from mynumber.cli import insurance as insurance_cli
from mynumber.cli import juki as juki_cli
from mynumber.cli import keys as keys_cli
from mynumber.cli import log as log_cli
from mynumber.cli import network as network_cli
from mynumber.cli import oidc as oidc_cli
from mynumber.cli import portal as portal_cli
from mynumber.cli import registry as registry_cli
from mynumber.cli import seed as seed_cli
from mynumber.cli import serve as serve_cli
from mynumber.cli import staff as staff_cli
from mynumber.cli import tls as tls_cli
from mynumber.cli.common import console, fail
from mynumber.codes import corporate_number, individual_number, local_government_code, resident_code
from mynumber.codes.exceptions import ValidationError

app = typer.Typer(help="mynumber: Japan's individual number system, runnable.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
number_app = typer.Typer(help="Check numbers and codes.", no_args_is_help=True)
app.add_typer(db_cli.app, name="db")
app.add_typer(number_app, name="number")
app.add_typer(registry_cli.app, name="registry")
app.add_typer(card_cli.app, name="card")
app.add_typer(log_cli.app, name="log")
app.add_typer(events_cli.app, name="events")
app.add_typer(network_cli.app, name="network")
app.add_typer(juki_cli.app, name="juki")
app.add_typer(accounts_cli.app, name="accounts")
app.add_typer(insurance_cli.app, name="insurance")
app.add_typer(agencies_cli.app, name="agencies")
app.add_typer(portal_cli.app, name="portal")
app.add_typer(api_clients_cli.app, name="api-clients")
app.add_typer(oidc_cli.app, name="oidc")
app.add_typer(tls_cli.app, name="tls")
app.add_typer(staff_cli.app, name="staff")
app.add_typer(keys_cli.app, name="keys")
app.command(name="serve")(serve_cli.serve)
app.command(name="bench")(bench_cli.bench)
app.command(name="seed")(seed_cli.seed)


CHECKERS = {
    "individual": individual_number,
    "resident": resident_code,
    "corporate": corporate_number,
    "municipality": local_government_code,
}


@number_app.command("check")
def number_check(
    value: Annotated[str, typer.Argument(help="the number or code; use - to read standard input")],
    kind: Annotated[str, typer.Option(help="individual | resident | corporate | municipality")]
    = "individual",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Validate a number or code (the value itself is never printed back)."""
    module = CHECKERS.get(kind)
    if module is None:
        fail(f"unknown kind {kind!r}; choose from {', '.join(CHECKERS)}", code=2)
    if value == "-":
        value = sys.stdin.readline().strip()
    try:
        module.validate(value)
        result = {"kind": kind, "valid": True}
    except ValidationError as exc:
        result = {"kind": kind, "valid": False, "code": exc.code, "reason": str(exc)}
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    elif result["valid"]:
        console.print(f"[green]valid[/green] {kind}")
    else:
        Console(stderr=True).print(f"[red]invalid[/red] {kind}: {result['reason']}")
    if not result["valid"]:
        raise typer.Exit(1)



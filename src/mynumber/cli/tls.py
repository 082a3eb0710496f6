"""`mynumber tls …`: the infrastructure CA for mutual TLS between services (mynumber.tls)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mynumber.cli.common import console, err_console, fail

app = typer.Typer(help="Mutual TLS between services: the project's own infrastructure CA.",
                  no_args_is_help=True)


def _ca_dir() -> Path:
    from mynumber.settings import get_settings
    from mynumber.tls import ca_directory

    return ca_directory(get_settings().keys_path)


@app.command("init-ca")
def init_ca(
    common_name: Annotated[str, typer.Option(help="the CA certificate's common name")]
    = "mynumber infrastructure CA",
    days: Annotated[int, typer.Option(min=1, max=10_000, help="validity")] = 3650,
) -> None:
    """Create the CA under KEY_DIR/tls-ca (kept if it exists). The CA key is a software key
    file (0600): production should hold it on the HSM, which is not implemented yet."""
    from mynumber.tls import TlsError
    from mynumber.tls import init_ca as create

    directory = _ca_dir()
    try:
        created = create(directory, common_name=common_name, days=days)
    except TlsError as exc:
        fail(str(exc))
    if created:
        console.print(f"created the infrastructure CA in {directory}")
        err_console.print("[yellow]note:[/yellow] the CA key is a software key file; keep "
                          f"{directory} off shared disks (an HSM-held CA key is not supported "
                          "yet)")
    else:
        console.print(f"the infrastructure CA in {directory} exists; kept it")


@app.command("issue")
def issue(
    name: Annotated[str, typer.Argument(help="the service's name, e.g. core, intermediate")],
    out: Annotated[Path, typer.Option(help="directory for ca.pem, cert.pem and key.pem")],
    dns: Annotated[list[str] | None, typer.Option(help="DNS name for the SAN (repeatable)")]
    = None,
    ip: Annotated[list[str] | None, typer.Option(help="IP address for the SAN (repeatable)")]
    = None,
    days: Annotated[int, typer.Option(min=1, max=3650, help="validity")] = 397,
    force: Annotated[bool, typer.Option(help="replace an existing certificate in --out")]
    = False,
) -> None:
    """Issue a certificate (serverAuth and clientAuth) for one service."""
    from mynumber.tls import TlsError
    from mynumber.tls import issue as do_issue

    try:
        issued = do_issue(_ca_dir(), name, out, dns=dns or (), ips=ip or (), days=days,
                          overwrite=force)
    except TlsError as exc:
        fail(str(exc))
    console.print(f"issued {name} (serial {issued.serial:x}, valid until "
                  f"{issued.not_after:%Y-%m-%d}) into {issued.directory}")

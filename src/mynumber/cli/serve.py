"""`mynumber serve`: the web UI and API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mynumber.cli.common import console, container_from_env, fail


def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    role: Annotated[str, typer.Option(
        help="all (everything in one process) | core (the network core, registry, JPKI, "
        "cards) | intermediate (an intermediate server only)")] = "all",
    tls_dir: Annotated[Path | None, typer.Option(
        help="serve HTTPS with DIR/cert.pem and DIR/key.pem, requiring a client certificate "
        "from DIR/ca.pem (mutual TLS; see `mynumber tls`)")] = None,
) -> None:
    """Serve the web UI and API (run `mynumber db upgrade` first)."""
    import uvicorn

    from mynumber import logs
    from mynumber.app import create_app
    from mynumber.web.assemble import ROLES

    if role not in ROLES:
        fail(f"unknown role {role!r}; choose from {', '.join(ROLES)}", code=2)
    tls: dict[str, Any] = {}
    if tls_dir is not None:
        from mynumber.tls import TlsError, uvicorn_options

        try:
            tls = uvicorn_options(tls_dir)
        except TlsError as exc:
            fail(str(exc))
    container = container_from_env()
    logs.configure(container.settings.log_level)
    application = create_app(container=container, role=role)
    scheme = "https" if tls else "http"
    what = "" if role == "all" else f" the {role} role,"
    console.print(f"serving{what} on {scheme}://{host}:{port} "
                  f"(public URL {container.settings.public_url})"
                  + (" with mutual TLS" if tls else ""))
    uvicorn.run(application, host=host, port=port, log_config=None, access_log=True, **tls)

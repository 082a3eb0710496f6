"""`mynumber serve`: the web UI and API, on one listener (embedded) or two (public and
infrastructure) in one process.

- Embedded mode without TLS settings: one plain-HTTP listener on ``--host``/``--port`` serving
  everything the role serves (``make run``).
- With ``MYNUMBER_TLS_DIR`` or ``MYNUMBER_PUBLIC_TLS_DIR`` set, in production mode, or when
  ``--public-port``/``--infra-port`` is given: a public listener (server-authenticated HTTPS
  with ``MYNUMBER_PUBLIC_TLS_DIR``) and an infrastructure listener (mutual TLS with
  ``MYNUMBER_TLS_DIR``), each opened only when the role has routes for it, as two uvicorn
  servers on one event loop. Which route goes where: ``mynumber.web.assemble.PLACEMENTS``.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mynumber.cli.common import console, err_console, fail

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mynumber.app import Container
    from mynumber.settings import Settings
    from mynumber.web.health import ListenerTls

DEFAULT_PUBLIC_PORT = 8443
DEFAULT_INFRA_PORT = 9443


class ServeError(ValueError):
    """The settings and options do not make a configuration `serve` can start."""


@dataclass
class Listener:
    name: str  # public | infrastructure | both
    host: str
    port: int
    tls: ListenerTls
    options: dict[str, Any] = field(default_factory=dict)  # uvicorn's ssl_* settings

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.tls.scheme}://{host}:{self.port}"


def plan_listeners(settings: Settings, role: str, *, host: str, port: int,
                   public_host: str | None, public_port: int | None,
                   infra_host: str | None, infra_port: int | None,
                   public_plain_http: bool) -> list[Listener]:
    """The listeners ``role`` opens under these settings, or :class:`ServeError`."""
    from mynumber.settings import Mode
    from mynumber.tls import TlsError, public_uvicorn_options, uvicorn_options
    from mynumber.web.assemble import INFRASTRUCTURE, PUBLIC, ROLE_LISTENERS
    from mynumber.web.health import PLAIN, ListenerTls

    production = settings.mode is Mode.PRODUCTION
    if public_plain_http and settings.public_tls_dir is not None:
        raise ServeError("--public-plain-http contradicts MYNUMBER_PUBLIC_TLS_DIR: unset one")
    two = (production or settings.tls_dir is not None or settings.public_tls_dir is not None
           or public_port is not None or infra_port is not None or public_plain_http)
    if not two:
        return [Listener("both", host, port, PLAIN)]
    listeners: list[Listener] = []
    problems: list[str] = []  # every missing setting at once, not one per attempt
    for name in ROLE_LISTENERS[role]:
        try:
            if name == INFRASTRUCTURE:
                if settings.tls_dir is not None:
                    tls, options = (ListenerTls("mutual", settings.tls_dir),
                                    uvicorn_options(settings.tls_dir))
                elif production:
                    problems.append(
                        "production mode serves the infrastructure listener only with mutual "
                        "TLS: set MYNUMBER_TLS_DIR to a directory holding ca.pem, cert.pem and "
                        "key.pem (`mynumber tls issue`)")
                    continue
                else:
                    tls, options = PLAIN, {}
                listeners.append(Listener(name, infra_host or host,
                                          infra_port or DEFAULT_INFRA_PORT, tls, options))
            else:
                assert name == PUBLIC
                if settings.public_tls_dir is not None:
                    tls, options = (ListenerTls("server", settings.public_tls_dir),
                                    public_uvicorn_options(settings.public_tls_dir))
                elif public_plain_http:
                    tls, options = ListenerTls("proxy"), {}
                elif production:
                    problems.append(
                        "production mode serves the public listener over HTTPS: set "
                        "MYNUMBER_PUBLIC_TLS_DIR to a directory holding its cert.pem and "
                        "key.pem, or pass --public-plain-http when a TLS-terminating proxy is "
                        "in front")
                    continue
                else:
                    tls, options = PLAIN, {}
                listeners.append(Listener(name, public_host or host,
                                          public_port or DEFAULT_PUBLIC_PORT, tls, options))
        except TlsError as exc:
            setting = "MYNUMBER_TLS_DIR" if name == INFRASTRUCTURE else "MYNUMBER_PUBLIC_TLS_DIR"
            problems.append(f"{setting}: {exc}")
    if problems:
        raise ServeError("; ".join(problems))
    if len({(listener.host, listener.port) for listener in listeners}) < len(listeners):
        raise ServeError("the public and the infrastructure listener need different ports "
                         "(--public-port, --infra-port)")
    return listeners


def check_remote_endpoints(container: Container, role: str) -> None:
    """Refuse to start a process that would call remote intermediate servers with no client
    certificate (each such call would fail as ``provider_tls``): every role that runs the
    network in process, the portal included (its self-information exchanges)."""
    if role == "intermediate" or container.settings.tls_dir is not None:
        return
    remote = sorted(agency.agency_id for agency in container.network.agencies()
                    if agency.endpoint is not None)
    if remote:
        named = ", ".join(remote[:5]) + (f" and {len(remote) - 5} more" if len(remote) > 5
                                        else "")
        raise ServeError(
            f"the directory names a remote intermediate server for {named}, but no client "
            "certificate is configured: set MYNUMBER_TLS_DIR to this service's directory "
            "(ca.pem, cert.pem, key.pem; `mynumber tls issue`), or clear the endpoints with "
            "`mynumber network set-endpoint AGENCY --clear`")


def _build_container(settings: Settings, role: str) -> Container:
    """The role's container, after the start-up checks ``create_app`` makes too
    (:func:`mynumber.app.check_startup`: the JPKI CA keys, and in production each context's
    database role isolated)."""
    from mynumber.app import ConfigurationError, build_container, check_startup
    from mynumber.cli.common import database_errors

    try:
        with database_errors():
            container = build_container(settings, role)
            try:
                check_startup(container, role)
            except ConfigurationError:
                container.close()
                raise
            return container
    except ConfigurationError as exc:
        fail(str(exc))


def _bind(listener: Listener) -> socket.socket:
    """Bind before any server starts, so a port in use is an error, not half a service."""
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    try:
        return socket.create_server((listener.host, listener.port), family=family,
                                    backlog=2048)
    except OSError as exc:
        raise ServeError(f"cannot listen on {listener.host}:{listener.port} for the "
                         f"{listener.name} listener: {exc.strerror or exc}") from None


def serve(
    host: Annotated[str, typer.Option(help="interface to bind (both listeners unless "
                                      "--public-host/--infra-host)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port of the single plain-HTTP listener "
                                      "(embedded mode without TLS settings)")] = 8000,
    role: Annotated[str, typer.Option(
        help="all (everything in one process) | core (the network core, registry, JPKI, "
        "cards, portal) | intermediate (an intermediate server only) | portal (the portal "
        "and OpenID Provider only)")] = "all",
    public_host: Annotated[str | None, typer.Option(
        help="interface of the public listener [default: --host]")] = None,
    public_port: Annotated[int | None, typer.Option(
        help=f"port of the public listener [default: {DEFAULT_PUBLIC_PORT}]")] = None,
    infra_host: Annotated[str | None, typer.Option(
        help="interface of the infrastructure listener [default: --host]")] = None,
    infra_port: Annotated[int | None, typer.Option(
        help=f"port of the infrastructure listener [default: {DEFAULT_INFRA_PORT}]")] = None,
    public_plain_http: Annotated[bool, typer.Option(
        "--public-plain-http",
        help="serve the public listener over plain HTTP behind a TLS-terminating proxy "
        "(production without MYNUMBER_PUBLIC_TLS_DIR)")] = False,
    tls_dir: Annotated[Path | None, typer.Option(hidden=True)] = None,
) -> None:
    """Serve the web UI and API (run `mynumber db upgrade` first). One plain-HTTP listener
    in embedded mode; with MYNUMBER_TLS_DIR / MYNUMBER_PUBLIC_TLS_DIR or in production a
    public listener (--public-port) and an infrastructure listener (--infra-port, mutual
    TLS)."""
    from mynumber import logs
    from mynumber.cli.common import database_errors
    from mynumber.settings import get_settings
    from mynumber.web.assemble import ROLES

    if tls_dir is not None:
        fail("--tls-dir was removed: set MYNUMBER_TLS_DIR to the directory holding ca.pem, "
             "cert.pem and key.pem instead (it serves the infrastructure listener with mutual "
             "TLS and is the certificate the core presents to intermediate servers); the "
             "public listener's certificate is MYNUMBER_PUBLIC_TLS_DIR")
    if role not in ROLES:
        fail(f"unknown role {role!r}; choose from {', '.join(ROLES)}", code=2)
    settings = get_settings()
    try:
        listeners = plan_listeners(
            settings, role, host=host, port=port, public_host=public_host,
            public_port=public_port, infra_host=infra_host, infra_port=infra_port,
            public_plain_http=public_plain_http)
    except ServeError as exc:
        fail(str(exc))
    container = _build_container(settings, role)
    logs.configure(container.settings.log_level)
    try:
        with database_errors():
            check_remote_endpoints(container, role)
        if listeners[0].name == "both":
            _serve_one(container, role, listeners[0])
        else:
            _serve_many(container, role, listeners)
    except ServeError as exc:
        container.close()
        fail(str(exc))


def _serve_one(container: Container, role: str, listener: Listener) -> None:
    """Embedded mode: everything the role serves on one plain-HTTP listener."""
    import uvicorn

    from mynumber.web.assemble import assemble

    application = assemble(container, role)
    what = "" if role == "all" else f" the {role} role,"
    console.print(f"serving{what} on {listener.url} "
                  f"(public URL {container.settings.public_url})")
    uvicorn.run(application, host=listener.host, port=listener.port, log_config=None,
                access_log=True)


def _serve_many(container: Container, role: str, listeners: list[Listener]) -> None:
    from mynumber.web.assemble import assemble_listeners

    sockets = []
    try:
        for listener in listeners:
            sockets.append(_bind(listener))
    except ServeError:
        for sock in sockets:
            sock.close()
        raise
    apps = assemble_listeners(container, role, {each.name: each.tls for each in listeners})
    for listener in listeners:
        if listener.tls.mode == "plain":
            err_console.print(f"[yellow]note:[/yellow] the {listener.name} listener is plain "
                              "HTTP (embedded mode)")
        console.print(f"serving the {role} role's {listener.name} listener on {listener.url} "
                      f"({listener.tls.describe()})")
    console.print(f"public URL {container.settings.public_url}")
    asyncio.run(_run_servers([(apps[each.name], each, sock)
                              for each, sock in zip(listeners, sockets, strict=True)]))


def _server(config: Any) -> Any:
    """A uvicorn server that leaves signals to :func:`_run_servers` (uvicorn's own handler
    would stop only the server that installed it last)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config)


async def _run_servers(entries: list[tuple[FastAPI, Listener, socket.socket]]) -> None:
    """Serve every listener on this event loop until SIGINT/SIGTERM or one of them stops;
    then stop them all (each app's lifespan ends; the shared lifecycle closes once)."""
    import uvicorn

    servers = []
    for app, listener, _sock in entries:
        config = uvicorn.Config(app, host=listener.host, port=listener.port, log_config=None,
                                access_log=True, **listener.options)
        servers.append(_server(config))

    def stop(sig: int) -> None:
        for server in servers:
            if server.should_exit and sig == signal.SIGINT:
                server.force_exit = True
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    tasks = [asyncio.create_task(server.serve(sockets=[sock]))
             for server, (_app, _listener, sock) in zip(servers, entries, strict=True)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for server in servers:  # one stopped (an error, or a signal): stop the others
            server.should_exit = True
        await asyncio.gather(*tasks)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

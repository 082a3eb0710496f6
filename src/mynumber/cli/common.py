"""Helpers shared by the command groups."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

if TYPE_CHECKING:
    from mynumber.app import Container

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # an error stays one line (logs, grep)

#: Exit code of a command refused because of the configured mode (a usage error).
REFUSED = 2


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def debug() -> bool:
    """MYNUMBER_DEBUG=1: let unexpected errors through with their traceback (development only:
    a traceback may show personal data)."""
    return os.environ.get("MYNUMBER_DEBUG") == "1"


def production_mode() -> bool:
    """Whether the environment's settings say MYNUMBER_MODE=production. Reads the settings
    only: no database is opened and no key is read."""
    from pydantic import ValidationError

    from mynumber.settings import Mode, get_settings

    try:
        return get_settings().mode is Mode.PRODUCTION
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else "settings"
        message = errors[0]["msg"] if errors else "invalid"
        fail(f"the MYNUMBER_* settings are not valid ({where or 'settings'}: {message})",
             code=REFUSED)


def refuse_in_production(what: str, instead: str = "") -> None:
    """Stop a test or demo tool at once (exit code 2) when MYNUMBER_MODE=production, before it
    touches any database or key."""
    if production_mode():
        fail(f"{what} is a test/demo tool and production mode refuses it "
             f"(MYNUMBER_MODE=production); nothing was read or written."
             + (f" {instead}" if instead else ""), code=REFUSED)


# --- database errors ------------------------------------------------------------------------

_LONG_DIGITS = re.compile(r"[0-9０-９]{10,}")


def _database_hint(kind: str, message: str) -> str:
    lower = message.lower()
    if kind == "OperationalError":
        if "password" in lower or "authentication" in lower:
            return ("check the user and password in MYNUMBER_DATABASE_URL (or the service "
                    "file / .pgpass it names)")
        if "does not exist" in lower and "database" in lower:
            return "create the database (docs/deployment.md), then run `mynumber db upgrade`"
        if "no such table" in lower:
            return "run `mynumber db upgrade` to create or update the tables"
        return ("check MYNUMBER_DATABASE_URL (host, port, database) and that the database "
                "server is running and reachable")
    if "permission denied" in lower or "must be owner" in lower or "must be superuser" in lower \
            or "privilege" in lower:
        return ("the database role lacks a privilege: the schemas, roles and grants are set up "
                "once by an administrator with `mynumber db provision` (docs/deployment.md); "
                "check the role in MYNUMBER_DATABASE_URL")
    if "does not exist" in lower or "no such table" in lower or "undefined" in lower:
        return "run `mynumber db upgrade` to create or update the schemas and tables"
    return "check MYNUMBER_DATABASE_URL and run `mynumber db check`"


def database_error_text(exc: BaseException) -> str | None:
    """For a connection or schema error (sqlalchemy OperationalError or ProgrammingError):
    the database's own message, its first line only (PostgreSQL puts row values in DETAIL
    lines), with long digit runs removed, and a hint. None for any other error."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    if not isinstance(exc, OperationalError | ProgrammingError):
        return None
    kind = type(exc).__name__
    original = exc.orig if exc.orig is not None else exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    first = lines[0] if lines else type(original).__name__
    first = _LONG_DIGITS.sub("…", first)[:300]
    return f"the database refused the command ({kind}): {first}. Hint: " \
           f"{_database_hint(kind, first)}. Set MYNUMBER_DEBUG=1 to see the traceback."


@contextmanager
def database_errors() -> Iterator[None]:
    """Report a database connection or schema error as the database's message and a hint,
    without a traceback (unless MYNUMBER_DEBUG=1). Usable as ``with`` block or decorator."""
    try:
        yield
    except Exception as exc:
        text = database_error_text(exc)
        if text is None or debug():
            raise
        fail(text)


class CliGroup(TyperGroup):
    """A command group whose every command reports database errors through
    :func:`database_errors` (``typer.Typer(cls=CliGroup)``)."""

    def invoke(self, ctx: Any) -> Any:  # a click.Context (typer may vendor click)
        with database_errors():
            return super().invoke(ctx)


def container_from_env(*, create: bool = False) -> Container:
    """The container for a CLI command. Embedded mode: the databases must exist already
    (``create`` only for the command that makes them), so that a command run in the wrong
    directory says where it looked instead of making a new, empty system there."""
    from mynumber.app import ConfigurationError, build_container
    from mynumber.settings import DATABASE_MARKER, get_settings

    settings = get_settings()
    if (not create and settings.database_url is None
            and not (settings.data_dir / DATABASE_MARKER).is_file()):
        fail(f"no mynumber database in {settings.data_dir.resolve()}: run `mynumber db "
             "upgrade` (or `make run`) there first, or set MYNUMBER_DATA_DIR to the directory "
             "that holds the databases (a command run inside the repository finds its ./var)")

    # The CLI's operator commands (directory, enrolment, 副本, log, API clients) run on the
    # core host in production: the core role (no in-process intermediate server, whose agency
    # keys live on the agencies' own hosts). Embedded mode builds everything, as `make run`.
    role = "core" if production_mode() else "all"
    try:
        with database_errors():
            return build_container(role=role)
    except ConfigurationError as exc:
        fail(str(exc))


class LongWork:
    """How a command shows long work (one place): a Rich bar on a terminal, appearing once the
    work has taken a second; elsewhere (``make run`` in a log, CI) one line every ``every``
    seconds and one at the end, on standard error, e.g. ``seeding residents: 3,000 / 10,000
    (30%), 12 s``. Call it with ``(done)`` or ``(done, total)``; thread-safe. ``quiet`` (a
    command asked for machine output, ``--json``) shows nothing."""

    def __init__(self, description: str, *, total: int | None = None, in_bytes: bool = False,
                 every: float = 5.0, stream: Any = None, quiet: bool = False) -> None:
        import sys
        import threading
        import time

        self.description = description
        self.total = total
        self.done = 0
        self.in_bytes = in_bytes
        self.every = every
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.quiet = quiet
        self._time = time.monotonic
        self.started = self._time()
        self.last_line = self.started
        self._bar: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int | None = None) -> None:
        with self._lock:
            self.done = done
            if total:
                self.total = total
            now = self._time()
            if self.quiet:
                return
            if self.terminal:
                self._draw(now)
            elif now - self.last_line >= self.every:
                self.last_line = now
                self._line(now)

    def _draw(self, now: float) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        if self._bar is None:
            if now - self.started < 1.0:
                return
            counter = DownloadColumn() if self.in_bytes else MofNCompleteColumn()
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), counter,
                                 TimeElapsedColumn(), console=Console(file=self.stream),
                                 transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        self._bar.update(self._task, completed=self.done, total=self.total)

    def _line(self, now: float, end: str = "") -> None:
        if self.in_bytes:
            amount = f"{self.done / 1e6:,.1f} MB"
            if self.total:
                amount += f" / {self.total / 1e6:,.1f} MB"
        else:
            amount = f"{self.done:,}" + (f" / {self.total:,}" if self.total else "")
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        # Work that counts nothing (a warm-up, a wait) shows only its time, never a bare "0".
        counted = f"{amount}{share}, " if self.done or self.total else ""
        print(f"{self.description}: {counted}{now - self.started:,.0f} s{end}",
              file=self.stream, flush=True)

    def __enter__(self) -> LongWork:
        if not self.terminal and not self.quiet:
            print(f"{self.description} ...", file=self.stream, flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        if not self.terminal and not self.quiet and exc[0] is None:
            self._line(self._time(), " (done)")

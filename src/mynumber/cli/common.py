"""Helpers shared by the command groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from mynumber.app import Container

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def container_from_env() -> Container:
    from mynumber.app import ConfigurationError, build_container

    try:
        return build_container()
    except ConfigurationError as exc:
        fail(str(exc))

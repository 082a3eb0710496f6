"""The ``mynumber`` command line: one module per command group; it assembles, holds no rules."""

from __future__ import annotations

from mynumber.cli.main import app


def main() -> None:
    app()


__all__ = ["app", "main"]

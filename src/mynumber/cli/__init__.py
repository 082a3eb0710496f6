"""The ``mynumber`` command line: one module per command group; it assembles, holds no rules."""

from __future__ import annotations

import os
import sys

from mynumber.cli.main import app


def main() -> None:
    """Run the CLI. A user never sees a stack trace: errors they can cause are reported by the
    commands themselves; anything else is reported by type only (its text may carry personal
    data), unless MYNUMBER_DEBUG=1."""
    from pydantic import ValidationError

    from mynumber.errors import DomainError

    try:
        app(standalone_mode=True)
    except DomainError as exc:
        print(f"error: {exc.detail} [{exc.code}]", file=sys.stderr)
        raise SystemExit(1) from None
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        # The MYNUMBER_* settings: each problem by name, never the values (a PIN may be one).
        for error in exc.errors(include_input=False, include_url=False):
            name = "_".join(str(part) for part in error["loc"]).upper()
            where = f"MYNUMBER_{name}: " if name else ""
            print(f"error: settings: {where}{error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as exc:
        if os.environ.get("MYNUMBER_DEBUG") == "1":
            raise
        from mynumber.cli.common import database_error_text

        text = database_error_text(exc)
        if text is not None:  # the database's own message, with a hint
            print(f"error: {text}", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"error: the command failed ({type(exc).__name__}); a change in progress was "
              "rolled back. Set MYNUMBER_DEBUG=1 to see details.", file=sys.stderr)
        raise SystemExit(1) from None


__all__ = ["app", "main"]

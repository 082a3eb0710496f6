"""`mynumber staff …`: staff accounts (mynumber.auth): create, current TOTP (demo), unlock."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from mynumber.cli.common import console, container_from_env, fail

app = typer.Typer(help="Staff accounts.", no_args_is_help=True)


def _actor(command: str) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{command}:{user}"[:80]


@app.command("create")
def create(
    username: str,
    municipality: Annotated[str, typer.Option(help="6-digit municipality code")],
    role: Annotated[str, typer.Option(help="clerk | supervisor | admin")] = "clerk",
    display_name: Annotated[str, typer.Option()] = "",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True)] = "",
) -> None:
    """Create a staff account; prints the TOTP secret to enrol in an authenticator app."""
    from mynumber.auth.interfaces import StaffRole
    from mynumber.errors import DomainError

    container = container_from_env()
    try:
        secret = container.staff_auth.create_staff(
            username, display_name or username, municipality, StaffRole(role), password
        )
    except (DomainError, ValueError) as exc:
        fail(str(exc))
    console.print(f"created {username}; TOTP secret (enrol it now): {secret}")


@app.command("totp")
def totp(username: str) -> None:
    """Print a staff member's current one-time code (embedded mode only: a demo convenience)."""
    from mynumber.settings import Mode

    container = container_from_env()
    if container.settings.mode is not Mode.EMBEDDED:
        fail("only in the embedded (development) mode")
    code = container.staff_auth.current_totp(username)
    if code is None:
        fail(f"no staff account {username!r}")
    print(code)


@app.command("unlock")
def unlock(username: str) -> None:
    """End a login throttle after repeated failures and reset the failure count (audited)."""
    from mynumber.errors import DomainError

    container = container_from_env()
    try:
        container.staff_auth.unlock(username, _actor("staff-unlock"))
    except DomainError as exc:
        fail(f"{exc.detail} ({exc.code})")
    console.print(f"unlocked {username}")

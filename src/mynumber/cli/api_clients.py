"""`mynumber api-clients …`: register, vet and watch the self-information API's clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from mynumber.cli.common import console, container_from_env, fail

if TYPE_CHECKING:
    from mynumber.portal.oauth import ApiClientsImpl

app = typer.Typer(help="自己情報取得API: API clients (register, approve, suspend, retire, "
                  "monitoring) and the OIDC signing key.", no_args_is_help=True)

Reason = Annotated[str, typer.Option("--reason", help="why (recorded with the change)")]
Actor = Annotated[str, typer.Option("--actor", help="who decides (recorded)")]


T = TypeVar("T")


def _call(action: Callable[[ApiClientsImpl], T]) -> T:
    """Run ``action`` on the environment's API clients; a domain error is reported."""
    from mynumber.errors import DomainError

    container = container_from_env()
    try:
        return action(container.api_clients)
    except DomainError as exc:
        fail(str(exc))
    finally:
        container.close()


def _print(record: object) -> None:
    for key, value in vars(record).items():
        if value is None:
            continue
        if isinstance(value, tuple):
            value = ", ".join(value)
        console.print(f"{key}: {value}")


@app.command("register")
def register(
    name: Annotated[str, typer.Option(help="the service's name shown to residents")],
    redirect_uri: Annotated[list[str], typer.Option(
        "--redirect-uri", help="exact redirect URI (repeat; https, or http on loopback)")],
    scope: Annotated[list[str], typer.Option("--scope", help="item scope (repeat)")],
    organisation: Annotated[str, typer.Option(help="operator")] = "",
    contact: Annotated[str, typer.Option(help="contact address")] = "",
) -> None:
    """Apply for a client (state applied); prints the client secret once."""
    record = _call(lambda clients: clients.register(name, organisation or name, contact or "-",
                                                    redirect_uri, scope))
    _print(record)
    console.print("[yellow]the client secret is shown only now[/yellow]")


@app.command("rotate-secret")
def rotate_secret(client: str, reason: Reason = "secret lost or exposed",
                  actor: Actor = "cli") -> None:
    """Give the client a new secret (printed once); the old one stops working at once."""
    record = _call(lambda clients: clients.rotate_secret(actor, client, reason))
    console.print(f"client_id: {record.client_id}")
    console.print(f"client_secret: {record.client_secret}")
    console.print("[yellow]the client secret is shown only now; the old one no longer "
                  "works[/yellow]")


def _set_state(client_id: str, state: str, reason: str, actor: str) -> None:
    from mynumber.portal.interfaces import ClientState

    record = _call(lambda clients: clients.set_state(actor, client_id, ClientState(state),
                                                     reason))
    console.print(f"{record.client_id}: {record.state.value} ({record.state_reason})")


@app.command("approve")
def approve(client: str, reason: Reason, actor: Actor = "cli") -> None:
    """applied|suspended -> approved."""
    _set_state(client, "approved", reason, actor)


@app.command("suspend")
def suspend(client: str, reason: Reason, actor: Actor = "cli") -> None:
    """approved -> suspended: its tokens stop working at once."""
    _set_state(client, "suspended", reason, actor)


@app.command("retire")
def retire(client: str, reason: Reason, actor: Actor = "cli") -> None:
    """Retire (reversible only by `reactivate`, which needs a new approval)."""
    _set_state(client, "retired", reason, actor)


@app.command("reactivate")
def reactivate(client: str, reason: Reason, actor: Actor = "cli") -> None:
    """retired -> suspended (approve it again to let it serve); recorded with the reason."""
    record = _call(lambda clients: clients.reactivate(actor, client, reason))
    console.print(f"{record.client_id}: {record.state.value} ({record.state_reason})")


@app.command("rate-limit")
def rate_limit(client: str, per_minute: int, actor: Actor = "cli") -> None:
    """Set the client's requests a minute."""
    record = _call(lambda clients: clients.set_rate_limit(actor, client, per_minute))
    console.print(f"{record.client_id}: {record.rate_limit_per_minute}/min")


@app.command("list")
def list_clients(state: Annotated[str | None, typer.Option(
        help="applied | approved | suspended | retired")] = None) -> None:
    """List clients."""
    from mynumber.portal.interfaces import ClientState

    try:
        wanted = ClientState(state) if state else None
    except ValueError:
        fail(f"unknown state {state!r}", code=2)
    for r in _call(lambda clients: clients.clients(wanted)):
        console.print(f"{r.client_id}  {r.state.value:<9}  {r.rate_limit_per_minute:>7}/min  "
                      f"{r.name} ({r.organisation})  scopes: {' '.join(r.scopes)}")


@app.command("monitoring")
def monitoring(client: str) -> None:
    """Requests, releases, refusals, rate-limited calls, anomalies of one client."""
    _print(_call(lambda clients: clients.monitoring(client)))


@app.command("signing-key")
def signing_key(production: Annotated[bool, typer.Option(
        help="mark the key as a production key")] = False) -> None:
    """Create the first RSA key ID tokens are signed with (production mode never creates it
    implicitly); `mynumber oidc rotate-keys` rotates it."""
    from mynumber.portal.oauth import SIGNING_KEY_FILE, provision_signing_key
    from mynumber.settings import get_settings

    settings = get_settings()
    if (settings.keys_path / SIGNING_KEY_FILE).exists():
        fail(f"{settings.keys_path / SIGNING_KEY_FILE} exists already")
    path = provision_signing_key(settings.keys_path, development=not production)
    console.print(f"created {path}")

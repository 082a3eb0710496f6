"""`mynumber events …`: the registry's event delivery (the transactional outbox)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mynumber.cli.common import console, container_from_env, fail

app = typer.Typer(help="Registry events: delivery to the intermediate servers, JPKI, the card, "
                  "the portal and 住基ネット (docs/events.md).", no_args_is_help=True)


@app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Each subscriber's position, what is waiting, how old the oldest waiting event is, and
    its last failure. Exit status 1 when a subscriber is failing."""
    container = container_from_env()
    if not container.has("events"):
        fail("this role delivers no events (run it where the core runs)")
    statuses = container.events.status()
    failing = [s for s in statuses if s.last_error]
    if as_json:
        console.print_json(json.dumps({"subscribers": [s.as_dict() for s in statuses],
                                       "unsequenced": container.registry.outbox.unsequenced()}))
    else:
        for s in statuses:
            state = "ok"
            if s.last_error and s.failing_since:
                state = (f"FAILING since {s.failing_since:%Y-%m-%d %H:%M:%S}Z "
                         f"({s.attempts} attempts): {s.last_error}")
            console.print(f"{s.name}: position {s.position} of {s.head}, {s.pending} waiting "
                          f"(oldest {s.oldest_pending_seconds:.1f} s), {state}")
    if failing:
        raise typer.Exit(1)


@app.command("deliver")
def deliver() -> None:
    """Deliver every waiting event now (what the serving process does in the background; for
    a timer when MYNUMBER_EVENT_DISPATCHER=false). Exit status 1 if a subscriber failed."""
    container = container_from_env()
    if not container.has("events"):
        fail("this role delivers no events (run it where the core runs)")
    moved = container.events.drain()
    failing = [s for s in container.events.status() if s.last_error]
    console.print(f"delivered {moved} event positions; "
                  + (f"{len(failing)} subscriber(s) failing: "
                     + ", ".join(f"{s.name} ({s.last_error})" for s in failing)
                     if failing else "every subscriber is up to date"))
    if failing:
        raise typer.Exit(1)

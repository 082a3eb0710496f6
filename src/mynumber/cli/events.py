"""`mynumber events …`: event delivery (the transactional outboxes): the registry's and the
accounts context's, each delivered by its own dispatcher, named by its context."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from mynumber.cli.common import console, container_from_env, fail

if TYPE_CHECKING:
    from mynumber.app import Container
    from mynumber.kernel.events import Dispatcher


def dispatcher_name(dispatcher: Dispatcher) -> str:
    from mynumber.app import dispatcher_name as name

    return name(dispatcher)

app = typer.Typer(help="Event delivery: the registry's events to the intermediate servers, "
                  "JPKI, the card, the portal, 住基ネット and 公金受取口座; the accounts "
                  "context's to デジタル庁's codes and the portal's notices (docs/events.md).",
                  no_args_is_help=True)

OutboxOption = Annotated[str | None, typer.Option(
    "--outbox", help="only this outbox (registry, accounts); default: every one")]


def _dispatchers(container: Container, outbox: str | None) -> list[Dispatcher]:
    if not container.dispatchers:
        fail("this role delivers no events (run it where the core runs)")
    chosen = [d for d in container.dispatchers if outbox in (None, dispatcher_name(d))]
    if not chosen:
        names = ", ".join(dispatcher_name(d) for d in container.dispatchers)
        fail(f"no outbox named {outbox!r}; choose from {names}")
    return chosen


@app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    outbox: OutboxOption = None,
) -> None:
    """Each outbox's subscribers: position, what is waiting, how old the oldest waiting event
    is, and the last failure. Exit status 1 when a subscriber is failing."""
    container = container_from_env()
    outboxes = [(dispatcher_name(d), d.status(), d.outbox.unsequenced())
                for d in _dispatchers(container, outbox)]
    failing = [s for _, statuses, _ in outboxes for s in statuses if s.last_error]
    if as_json:
        console.print_json(json.dumps({
            "subscribers": [{"outbox": name, **s.as_dict()}
                            for name, statuses, _ in outboxes for s in statuses],
            "unsequenced": {name: unsequenced for name, _, unsequenced in outboxes}}))
    else:
        for name, statuses, _ in outboxes:
            for s in statuses:
                state = "ok"
                if s.last_error and s.failing_since:
                    state = (f"FAILING since {s.failing_since:%Y-%m-%d %H:%M:%S}Z "
                             f"({s.attempts} attempts): {s.last_error}")
                console.print(f"{name} {s.name}: position {s.position} of {s.head}, "
                              f"{s.pending} waiting (oldest {s.oldest_pending_seconds:.1f} s), "
                              f"{state}")
    if failing:
        raise typer.Exit(1)


@app.command("deliver")
def deliver(outbox: OutboxOption = None) -> None:
    """Deliver every waiting event of every outbox now (what the serving process does in the
    background; for a timer when MYNUMBER_EVENT_DISPATCHER=false). The registry's first: its
    events may make the accounts context publish. Exit status 1 if a subscriber failed."""
    container = container_from_env()
    failed = False
    for dispatcher in _dispatchers(container, outbox):
        name = dispatcher_name(dispatcher)
        moved = dispatcher.drain()
        failing = [s for s in dispatcher.status() if s.last_error]
        failed = failed or bool(failing)
        console.print(f"{name}: delivered {moved} event positions; "
                      + (f"{len(failing)} subscriber(s) failing: "
                         + ", ".join(f"{s.name} ({s.last_error})" for s in failing)
                         if failing else "every subscriber is up to date"))
    if failed:
        raise typer.Exit(1)

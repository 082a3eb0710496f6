"""公金受取口座 as a subscriber of the registry's events (``registry.resident.<kind>``).

- A name change (or a correction, which may change the reading) compares each registered
  holder name with the person's *current* reading, read through the registry's interface: a
  holder name that no longer matches flags the registration for re-check (the nightly audit
  lists it); one that matches again clears the flag.
- A death deletes the registration, with a history row saying so (never silently).

Idempotent, as the dispatcher requires: the flag is set from the current state and only
written when it changes; a deletion finds nothing the second time. Wiring::

    Subscriber("accounts", accounts_events.handler(accounts, registry), accounts_events.TYPES)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from mynumber.accounts.interfaces import SUBSCRIBER, AccountsService, RegistryReader
from mynumber.kernel.events import Event, Subscriber
from mynumber.registry.interfaces import EVENT_PREFIX, ResidentStatus

log = logging.getLogger("mynumber.accounts.events")

ACTOR = "accounts:registry-events"
NAME_KINDS = frozenset({"name_change", "correction"})
TYPES = frozenset(EVENT_PREFIX + kind for kind in (*NAME_KINDS, "death"))


def handler(accounts: AccountsService,
            registry: RegistryReader) -> Callable[[Sequence[Event]], None]:
    def handle(events: Sequence[Event]) -> None:
        names: set[int] = set()
        deaths: set[int] = set()
        for event in events:
            kind = event.payload.get("kind") or event.type.rsplit(".", 1)[-1]
            raw = event.payload.get("resident_id")
            if raw is None:
                log.warning("accounts: event %s names no resident; skipped", event.seq)
                continue
            if kind == "death":
                deaths.add(int(raw))
            elif kind in NAME_KINDS:
                names.add(int(raw))
        for rid in sorted(deaths):
            accounts.delete_for_death(rid, ACTOR)
        wanted = sorted(names - deaths)
        if wanted:
            records = registry.residents_by_ids(wanted)
            readings = {rid: r.name_kana for rid, r in records.items()
                        if r.status is not ResidentStatus.DECEASED}
            accounts.recheck_holder_names(readings, ACTOR)

    return handle


def subscriber(accounts: AccountsService, registry: RegistryReader) -> Subscriber:
    """The dispatcher's subscriber for 公金受取口座 (name changes, corrections, deaths)."""
    return Subscriber(SUBSCRIBER, handler(accounts, registry), TYPES)

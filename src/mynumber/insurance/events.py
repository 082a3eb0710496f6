"""The insurer side as a subscriber of the registry's events (``registry.resident.death``).

A recorded death ends the person's open qualification: 資格喪失日 (``lost_on``) is the day after
the death (``occurred_on`` of the event), reason ``death``, and its current document ends with
it. Idempotent, as the dispatcher requires: the qualification is closed by ``UPDATE … WHERE
lost_on IS NULL``, so a batch delivered again finds nothing open. Only linked records are
concerned (an unlinked record names nobody the registry knows). Wiring::

    insurance_events.subscriber(insurer_service)   # in app.registry_subscribers
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from mynumber.kernel.events import Event, Subscriber
from mynumber.registry.interfaces import EVENT_PREFIX

log = logging.getLogger("mynumber.insurance.events")

#: The subscriber name (it keys the dispatcher's checkpoint).
SUBSCRIBER = "insurance"
ACTOR = "insurance:registry-events"
TYPES = frozenset({EVENT_PREFIX + "death"})


class DeathEnds(Protocol):
    """What the handler needs of the insurer service (``InsurerServiceImpl`` has it)."""

    def end_for_death(self, resident_id: int, died_on: dt.date, actor: str = ...) -> list[int]:
        ...


def handler(insurers: DeathEnds) -> Callable[[Sequence[Event]], None]:
    def handle(events: Sequence[Event]) -> None:
        deaths: dict[int, dt.date] = {}
        for event in events:
            if event.type not in TYPES:
                continue
            try:
                rid = int(event.payload["resident_id"])
                died_on = dt.date.fromisoformat(str(event.payload["occurred_on"])[:10])
            except (KeyError, TypeError, ValueError):
                log.warning("insurance: event %s has no usable payload; skipped", event.seq)
                continue
            deaths[rid] = min(died_on, deaths.get(rid, died_on))
        for rid, died_on in sorted(deaths.items()):
            insurers.end_for_death(rid, died_on, ACTOR)

    return handle


def subscriber(insurers: DeathEnds) -> Subscriber:
    """The dispatcher's subscriber for the insurer side (deaths only)."""
    return Subscriber(SUBSCRIBER, handler(insurers), TYPES)

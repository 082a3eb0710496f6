"""The card context's subscriber to the registry's events (``registry.resident.<kind>``).

A death ends the holder's cards: every active or suspended card becomes ``ended`` (失効, shown
at the counter) and its smartphone credentials inactive (JPKI's own subscriber revokes the
certificates). Idempotent: a card already ended is passed over, so an event delivered again
changes nothing. A move, abroad included, leaves the card as it is (the signing certificate is
JPKI's business; the card face is rewritten at the counter with ``renew_certificates``).
Wiring::

    Subscriber("card", card_events.handler(container.card), types=card_events.TYPES)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from mynumber.kernel.events import Event

ACTOR = "card:registry-events"
TYPES = frozenset({"registry.resident.death"})


class CardsForEvents(Protocol):
    def end_cards_of(self, resident_id: int, actor: str, reason: str = ...) -> list[str]: ...


def apply(cards: CardsForEvents, event: Event) -> list[str]:
    """The card ids this one event ended now (empty when nothing or done before)."""
    kind = event.payload.get("kind") or event.type.rsplit(".", 1)[-1]
    raw = event.payload.get("resident_id")
    if kind != "death" or raw is None:
        return []
    return cards.end_cards_of(int(raw), ACTOR, "death")


def handler(cards: CardsForEvents) -> Callable[[Sequence[Event]], None]:
    def handle(events: Sequence[Event]) -> None:
        for event in events:
            apply(cards, event)

    return handle

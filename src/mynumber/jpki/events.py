"""JPKI's subscriber to the registry's events (``registry.resident.<kind>``).

- A change of any of the 4 basic items (``basic_four_changed``: a move, an address or a name
  change, a correction of those items) revokes the holder's signing certificates
  (affiliationChanged): they carry the old items.
- A death revokes every certificate (signing and user authentication, card and smartphone;
  cessationOfOperation); a move abroad (``move_out`` with ``abroad``) revokes the
  user-authentication certificates (and the signing ones, whose address is gone).

Delivered at least once: every revocation is limited to certificates issued before the event
was recorded (``issued_before=event.recorded_at``), so an event delivered again after the
holder got new certificates at the counter never revokes them, and a certificate already
revoked is passed over. Wiring::

    Subscriber("jpki", jpki_events.handler(container.jpki), types=jpki_events.TYPES)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from mynumber.jpki.interfaces import CertificateKind, JpkiService, RevocationReason
from mynumber.kernel.events import Event

ACTOR = "jpki:registry-events"
KINDS = ("birth", "move_in", "move_out", "name_change", "address_change", "death",
         "correction", "number_reissue", "import")
#: The event types this handler acts on (a birth or an import needs nothing, but is harmless).
TYPES = frozenset(f"registry.resident.{k}" for k in KINDS)
BOTH = (CertificateKind.SIGNING, CertificateKind.AUTH)


def _kind(event: Event) -> str:
    kind = event.payload.get("kind")
    return str(kind) if kind else event.type.rsplit(".", 1)[-1]


def apply(jpki: JpkiService, event: Event) -> list[int]:
    """Revoke what this one event ends; the serials revoked now (empty when done before)."""
    if not event.type.startswith("registry.resident."):
        return []
    raw = event.payload.get("resident_id")
    if raw is None:
        return []
    resident_id = int(raw)
    kind = _kind(event)
    at = event.recorded_at
    revoked: list[int] = []
    if kind == "death":
        revoked += jpki.revoke_for_resident(resident_id, BOTH, RevocationReason.CESSATION,
                                            ACTOR, issued_before=at)
        return revoked
    if event.payload.get("basic_four_changed"):
        revoked += jpki.revoke_for_resident(resident_id, (CertificateKind.SIGNING,),
                                            RevocationReason.BASIC_ITEM_CHANGED, ACTOR,
                                            issued_before=at)
    if kind == "move_out" and event.payload.get("abroad"):
        revoked += jpki.revoke_for_resident(resident_id, BOTH, RevocationReason.CESSATION,
                                            ACTOR, issued_before=at)
    return revoked


def handler(jpki: JpkiService) -> Callable[[Sequence[Event]], None]:
    """The subscriber's handler (idempotent, see the module text): what a batch ends, in one
    transaction per kind of revocation. For each holder the latest event of the batch that
    ends a certificate sets the moment: everything issued before it goes (as applying the
    events one by one would)."""

    def handle(events: Sequence[Event]) -> None:
        signing: dict[int, dt.datetime] = {}  # basic four changed
        both: dict[int, dt.datetime] = {}  # death, emigration
        for event in events:
            if not event.type.startswith("registry.resident."):
                continue
            raw = event.payload.get("resident_id")
            if raw is None:
                continue
            resident_id, kind, at = int(raw), _kind(event), event.recorded_at
            if kind == "death" or (kind == "move_out" and event.payload.get("abroad")):
                both[resident_id] = max(at, both.get(resident_id, at))
            elif event.payload.get("basic_four_changed"):
                signing[resident_id] = max(at, signing.get(resident_id, at))
        jpki.revoke_for_residents(both, BOTH, RevocationReason.CESSATION, ACTOR)
        jpki.revoke_for_residents(signing, (CertificateKind.SIGNING,),
                                  RevocationReason.BASIC_ITEM_CHANGED, ACTOR)

    return handle

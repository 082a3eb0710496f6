"""公金受取口座 and events: a subscriber of the registry's events, and the publisher of its own.

**Registry events** (``registry.resident.<kind>``) this context hears:

- A name change (or a correction, which may change the reading) compares each registered
  holder name with the person's *current* reading, read through the registry's interface: a
  holder name that no longer matches flags the registration for re-check (the nightly audit
  lists it); one that matches again clears the flag.
- A death deletes the registration, with a history row saying so (never silently).

Idempotent, as the dispatcher requires: the flag is set from the current state and only
written when it changes; a deletion finds nothing the second time. Wiring::

    Subscriber("accounts", accounts_events.handler(accounts, registry), accounts_events.TYPES)

**This context's own events** (its outbox, in the accounts database, written in the change's
transaction): ``accounts.registration.registered`` / ``changed`` / ``deleted`` / ``migrated``,
subject ``resident:<id>``, payload ``resident_id``, ``route``, ``bank_code``,
``branch_code`` (``reason`` for a deletion; ``from_…``/``to_…`` codes for a migration), never
the account number. Their subscribers (a second dispatcher, :func:`account_subscribers`):

- ``digital_agency_codes``: デジタル庁 obtains its 機関別符号 for each registrant, so agencies'
  network look-ups find the account. Idempotent: a person already enrolled is looked up, not
  enrolled again; a person who is no longer a resident (died, moved away) before delivery is
  passed over (the death deletes the registration anyway).
- ``notices``: a bank merger's migration sends the resident an お知らせ from デジタル庁
  through the portal, once per event (keyed ``accounts:<seq>``; the portal's
  ``source_event`` is unique).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from mynumber.accounts.banks import Bank, BankDirectory, Branch
from mynumber.accounts.interfaces import (
    DIGITAL_AGENCY,
    MIGRATED_EVENT,
    REGISTERED_EVENT,
    SUBSCRIBER,
    AccountsService,
    RegistryReader,
)
from mynumber.kernel.events import Event, Subscriber
from mynumber.portal.interfaces import EventNotice
from mynumber.registry.interfaces import EVENT_PREFIX, ResidentNotFound, ResidentStatus

log = logging.getLogger("mynumber.accounts.events")

ACTOR = "accounts:registry-events"
#: The subscribers of this context's outbox (their checkpoints, in the accounts database).
CODES_SUBSCRIBER = "digital_agency_codes"
NOTICES_SUBSCRIBER = "notices"
#: Who enrols a registrant with デジタル庁 (the event, never a person's session).
CODES_ACTOR = "accounts:registration-events"
NOTICE_KIND = "public_fund_account_migrated"
NAME_KINDS = frozenset({"name_change", "correction"})
TYPES = frozenset(EVENT_PREFIX + kind for kind in (*NAME_KINDS, "death"))


def handler(accounts: AccountsService,
            registry: RegistryReader) -> Callable[[Sequence[Event]], None]:
    def handle(events: Sequence[Event]) -> None:
        names: set[int] = set()
        deaths: set[int] = set()
        for event, rid in _resident_ids(events):
            kind = event.payload.get("kind") or event.type.rsplit(".", 1)[-1]
            if kind == "death":
                deaths.add(rid)
            elif kind in NAME_KINDS:
                names.add(rid)
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


# -- this context's own events ---------------------------------------------------------------


class DigitalAgencyEnrolment(Protocol):
    """デジタル庁's enrolment of a registrant (AccountProvision.enrol): idempotent, returns
    デジタル庁's 機関別符号 for the person."""

    def enrol(self, resident_id: int, actor: str) -> str: ...


class MigrationNotices(Protocol):
    """What the portal offers for notices sent because of an event (portal.interfaces)."""

    def send_event_notices(self, notices: Sequence[EventNotice]) -> int: ...


def _resident_ids(events: Sequence[Event]) -> list[tuple[Event, int]]:
    found = []
    for event in events:
        raw = event.payload.get("resident_id")
        if raw is None:
            log.warning("accounts: event %s names no resident; skipped", event.seq)
            continue
        found.append((event, int(raw)))
    return found


def _enrolled(codes: DigitalAgencyEnrolment, resident_id: int) -> str | None:
    """デジタル庁's code for the person (enrolling them when not yet known), or None when the
    person is no longer a resident (passed over: nothing to look up for them)."""
    try:
        return codes.enrol(resident_id, CODES_ACTOR)
    except ResidentNotFound:
        log.warning("accounts: resident %s is no longer a resident; not enrolled with "
                    "デジタル庁", resident_id)
        return None


def codes_handler(codes: DigitalAgencyEnrolment) -> Callable[[Sequence[Event]], None]:
    def handle(events: Sequence[Event]) -> None:
        for rid in sorted({rid for _, rid in _resident_ids(events)}):
            _enrolled(codes, rid)

    return handle


def _migration_text(payload: Mapping[str, Any], names: Names,
                    recorded: dt.date) -> tuple[str, str]:
    effective = str(payload.get("effective_on", ""))
    try:
        on = dt.date.fromisoformat(effective)
    except ValueError:
        on = recorded

    def place(bank: str, branch: str, ended: bool) -> str:
        found = names(bank, branch, on, ended)
        shown = f"金融機関コード {bank}・店番 {branch}"
        return f"{found[0]} {found[1]}（{shown}）" if found else shown

    before = place(str(payload.get("from_bank_code", "")),
                   str(payload.get("from_branch_code", "")), True)
    after = place(str(payload.get("to_bank_code", "")), str(payload.get("to_branch_code", "")),
                  False)
    title = "公金受取口座の金融機関・支店の表示を変更しました"
    body = (f"金融機関の合併・店舗の統合により、登録されている公金受取口座の金融機関・支店の"
            f"表示を {effective} 付けで {before} から {after} に変更しました。口座番号と"
            "口座名義は変わりません。お手続きは不要です。登録内容はマイナポータルの"
            "「公金受取口座」でご確認いただけます。")
    return title, body


def notices_handler(codes: DigitalAgencyEnrolment, portal: MigrationNotices,
                    names: Names) -> Callable[[Sequence[Event]], None]:
    def handle(events: Sequence[Event]) -> None:
        notices = []
        for event, rid in _resident_ids(events):
            code = _enrolled(codes, rid)
            if code is None:
                continue
            title, body = _migration_text(event.payload, names, event.recorded_at.date())
            notices.append(EventNotice(DIGITAL_AGENCY, code, NOTICE_KIND, title, body,
                                       f"accounts:{event.seq}"))
        if notices:
            portal.send_event_notices(notices)

    return handle


Names = Callable[[str, str, dt.date, bool], tuple[str, str] | None]


def _pick(records: Sequence[Bank] | Sequence[Branch], on: dt.date,
          ended: bool) -> Bank | Branch | None:
    if ended:  # the codes a merger moved away from: the record that ended before ``on``
        gone = [r for r in records if r.valid_to is not None and r.valid_to < on]
        if gone:
            return max(gone, key=lambda r: r.valid_from)
    valid = [r for r in records if r.valid_on(on)]
    return valid[0] if valid else None


def directory_names(directory: Callable[[], BankDirectory]) -> Names:
    """A bank's and a branch's names for their codes: those valid on ``on``, or with
    ``ended`` those that ended before it (a merged bank's codes are no longer valid, or were
    reused for another branch, but the resident knows it by its name); None if unknown."""
    def names(bank_code: str, branch_code: str, on: dt.date,
              ended: bool) -> tuple[str, str] | None:
        found = directory()
        bank = _pick([b for b in found.banks if b.code == bank_code], on, ended)
        branch = _pick([b for b in found.branches
                        if (b.bank_code, b.code) == (bank_code, branch_code)], on, ended)
        if bank is None or branch is None:
            return None
        return bank.name, branch.name

    return names


def account_subscribers(codes: DigitalAgencyEnrolment, portal: MigrationNotices,
                        names: Names) -> list[Subscriber]:
    """Who hears of this context's own events, in delivery order (the enrolment first: the
    notice is addressed by デジタル庁's code). ``names`` gives a bank's and a branch's name for
    their codes (None if unknown) for the notice's text."""
    return [
        Subscriber(CODES_SUBSCRIBER, codes_handler(codes), frozenset({REGISTERED_EVENT})),
        Subscriber(NOTICES_SUBSCRIBER, notices_handler(codes, portal, names),
                   frozenset({MIGRATED_EVENT})),
    ]

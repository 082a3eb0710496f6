"""The municipalities' 副本 follow the registry: a registry event subscriber.

A municipality's 既存住基システム registers its 住民票関係情報 with its intermediate server
(中間サーバー) whenever a resident's record changes. Here that is an event subscriber (named
``intermediate.resident_record``): for every registry event it reads the *current* record of
the resident and of everyone in the resident's household (a birth changes the parents'
household listing too) through the registry's interface and puts the 副本 ``resident_record``
with the mayor of the resident's municipality (for a 行政区 the city's mayor).

- A person the mayor has not yet enrolled (a newborn, someone who moved in) is enrolled first:
  a 取得番号 from the registry, the 機関別符号 from the core, never the 個人番号.
- A resident who moved out or died keeps a 副本 at the municipality that held it, with the
  status (``moved_out`` / ``deceased``) and the date; the new municipality enrols the person
  when the move-in event arrives.
- Idempotent: the copy written is the current state whatever the event said, so an event
  delivered again, or late, writes the same thing again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError

from mynumber.agencies.interfaces import (
    AgenciesService,
    AgencyKeysNotRegistered,
    CopyInput,
    PersonNotEnrolled,
    resident_record_copy,
)
from mynumber.errors import DomainError
from mynumber.kernel.events import Event, Subscriber
from mynumber.portal.interfaces import EventNotice
from mynumber.registry.interfaces import (
    EVENT_PREFIX,
    RegistryChange,
    RegistryService,
    ResidentNotFound,
    ResidentRecord,
    ResidentStatus,
    every_resident,
)

log = logging.getLogger("mynumber.agencies.events")

SUBSCRIBER = "intermediate.resident_record"
ITEM = "resident_record"
#: (agency, resident id) -> the agency's 宛名番号, remembered in this process.
CACHE_SIZE = 200_000


def municipal_address_number(resident_id: int) -> str:
    """The 宛名番号 a municipality gives a resident it enrols from a registry event: its own
    record number (a municipality numbers its people its own way; no other agency shares it)."""
    return f"J{resident_id:012d}"


class MunicipalCopies:
    def __init__(self, agencies: AgenciesService, registry: RegistryService,
                 mayor_of: Callable[[str], str | None]) -> None:
        self.agencies = agencies
        self.registry = registry
        self.mayor_of = mayor_of
        self._numbers: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._registered: set[str] = set()
        #: Records not written per mayor without registered keys, since this process started.
        self.waiting: dict[str, int] = {}

    def _remember(self, agency_id: str, resident_id: int, number: str) -> None:
        self._numbers[(agency_id, resident_id)] = number
        if len(self._numbers) > CACHE_SIZE:
            self._numbers.popitem(last=False)

    def _remember_all(self, agency_id: str,
                      items: list[tuple[ResidentRecord, dict[str, Any]]]) -> None:
        for record, _ in items:
            self._remember(agency_id, record.id, self._address_number(agency_id, record.id))

    def _address_number(self, agency_id: str, resident_id: int) -> str:
        return self._numbers.get((agency_id, resident_id)) or municipal_address_number(
            resident_id)

    def _enrol(self, agency_id: str, resident_id: int) -> str | None:
        """Enrol a person with the mayor; its 宛名番号 (an earlier enrolment's, if any)."""
        try:
            grant = self.registry.issue_acquisition_number_for_resident(
                agency_id, resident_id, f"events:{SUBSCRIBER}")
        except ResidentNotFound:
            return None  # not a current resident: never enrolled there, nothing to update
        number = self.agencies.enrol_with_acquisition_number(
            agency_id, municipal_address_number(resident_id), grant.acquisition_number)
        self._remember(agency_id, resident_id, number)
        return number

    def __call__(self, events: Sequence[Event]) -> None:
        changes = [RegistryChange.of(e.payload) for e in events]
        ids = {c.resident_id for c in changes}
        households = {c.household_id for c in changes if c.household_id is not None}
        member_lists = (self.registry.household_members(sorted(households))
                        if households else {})
        for members in member_lists.values():
            ids.update(m.id for m in members)
        records = self.registry.residents_by_ids(sorted(ids))
        for agency, items in self._copies(records.values(), member_lists).items():
            self._put(agency, items)

    def _copies(self, records: Iterable[ResidentRecord],
                member_lists: dict[int, list[ResidentRecord]]
                ) -> dict[str, list[tuple[ResidentRecord, dict[str, Any]]]]:
        """Each mayor's 副本 of these records (households not in ``member_lists`` are read)."""
        records = list(records)
        missing = {r.household_id for r in records
                   if r.household_id is not None and r.household_id not in member_lists}
        if missing:  # a household the events did not name (their state moved on since)
            member_lists.update(self.registry.household_members(sorted(missing)))
        by_agency: dict[str, list[tuple[ResidentRecord, dict[str, Any]]]] = {}
        for record in records:
            agency = self.mayor_of(record.municipality_code)
            if agency is None:
                continue
            household = member_lists.get(record.household_id, []) if (
                record.status is ResidentStatus.RESIDENT and record.household_id is not None
            ) else []
            payload = resident_record_copy(record, household)
            payload["status"] = record.status.value
            by_agency.setdefault(agency, []).append((record, payload))
        return by_agency

    def _put(self, agency: str, items: list[tuple[ResidentRecord, dict[str, Any]]]) -> None:
        if agency not in self._registered:
            # The mayor's intermediate server must have joined the network (its public keys
            # with the core) to be asked, and its 副本 are encrypted to its key. The embedded
            # mode holds every agency's keys and registers them here, once per process; in
            # production the keys live with the agency and the operator registered them (a
            # keyring without them refuses, and the put below says whether they are there).
            try:
                self.agencies.ensure_registered(agency)
            except Exception as exc:
                log.debug("%s not registered from here: %s", agency, type(exc).__name__)
            self._registered.add(agency)
        try:
            self._put_once(agency, items)
        except AgencyKeysNotRegistered:
            # The municipality's intermediate server has not joined the network: nothing can
            # be encrypted to it, and failing the batch would hold every other municipality
            # back. When it joins, its initial load (`mynumber agencies load-copies`, the
            # 初期移行) writes the current record of everyone it holds: what these events
            # would have left.
            self.waiting[agency] = self.waiting.get(agency, 0) + len(items)
            log.warning("副本 of %d records not written for %s: it has no registered keys "
                        "(`mynumber network register-keys`, then `mynumber agencies "
                        "load-copies %s`)", len(items), agency, agency)

    def load(self, agency_id: str, *, chunk: int = 1000, empty_chunks: int = 20) -> int:
        """初期移行: write the current 副本 of every record the mayor holds (its residents and
        its 除票), for an intermediate server that joins the network after its residents
        changed. Walks the registry's ids in chunks until ``empty_chunks`` chunks in a row hold
        nobody; idempotent. Raises AgencyKeysNotRegistered while the agency has no keys."""
        written = 0
        for records in every_resident(self.registry.residents_by_ids, chunk=chunk,
                                      empty_chunks=empty_chunks):
            own = [r for r in records if self.mayor_of(r.municipality_code) == agency_id]
            if own:
                items = self._copies(own, {}).get(agency_id, [])
                self._put_once(agency_id, items)
                written += len(items)
        self.waiting.pop(agency_id, None)
        return written

    def _put_once(self, agency: str, items: list[tuple[ResidentRecord, dict[str, Any]]]
                  ) -> None:
        copies = [CopyInput(self._address_number(agency, r.id), ITEM, p) for r, p in items]
        if all((agency, r.id) in self._numbers for r, _ in items):
            try:
                self.agencies.put_copies(agency, copies)
                return
            except PersonNotEnrolled:
                pass  # enrolled elsewhere meanwhile (the cache is this process's only)
        # Someone is new to this municipality (or to this process: the enrolment of those
        # already enrolled is a look-up).
        # In bulk: the current residents not yet known here get 取得番号 and 機関別符号 in one
        # go (the registry allows a mayor its own residents only).
        # 除票 included: the mayor writes the record it holds (the registry checks it is the
        # municipality's own).
        fresh = {r.id: municipal_address_number(r.id) for r, _ in items
                 if (agency, r.id) not in self._numbers}
        if fresh:
            try:
                self.agencies.enrol_known_residents(agency, fresh)
                self.agencies.put_copies(agency, copies)
                self._remember_all(agency, items)
                return
            except AgencyKeysNotRegistered:
                raise
            except (DomainError, IntegrityError) as exc:  # e.g. enrolled under another 宛名番号
                log.info("bulk enrolment with %s fell back to one by one: %s", agency,
                         type(exc).__name__)
        for record, payload in items:
            number = self._address_number(agency, record.id)
            try:
                self.agencies.put_copy(agency, number, ITEM, payload)
                self._remember(agency, record.id, number)
                continue
            except PersonNotEnrolled:
                pass
            enrolled = self._enrol(agency, record.id)
            if enrolled is not None:
                self.agencies.put_copy(agency, enrolled, ITEM, payload)


def subscriber(agencies: AgenciesService, registry: RegistryService,
               mayor_of: Callable[[str], str | None]) -> Subscriber:
    handler = MunicipalCopies(agencies, registry, mayor_of)
    kinds = ("birth", "move_in", "move_out", "name_change", "address_change", "death",
             "correction", "import")
    return Subscriber(SUBSCRIBER, handler, frozenset(EVENT_PREFIX + k for k in kinds))


NOTICE_SUBSCRIBER = "portal.change_notices"
NOTICE_KIND = "resident_record_change"
_SIGNING = ("マイナンバーカードの署名用電子証明書は、基本4情報（氏名・住所・生年月日・性別）の"
            "変更により失効しました。新しい署名用電子証明書は、カードと暗証番号をお持ちのうえ"
            "お住まいの市区町村の窓口で発行を受けられます。利用者証明用電子証明書"
            "（マイナポータルへのログインなどに使うもの）はそのままお使いいただけます。")
#: What the municipality tells the resident after each kind of change (title, body).
NOTICES: dict[str, tuple[str, str]] = {
    "address_change": ("住所の変更を住民票に記録しました",
                       "住所の変更届を受け付け、住民票に記録しました。" + _SIGNING),
    "move_in": ("転入届を受け付けました",
                "転入届を受け付け、住民票に記録しました。マイナンバーカードをお持ちの方は、"
                "転入届の日から90日以内に窓口でカードの継続利用の手続きをしてください。"
                + _SIGNING),
    "name_change": ("氏名の変更を住民票に記録しました",
                    "氏名の変更を住民票に記録しました。" + _SIGNING),
    "correction": ("住民票の記載を訂正しました",
                   "住民票の記載事項を訂正しました。訂正の内容は窓口でご確認いただけます。"),
    "move_out": ("転出届を受け付けました",
                 "転出届を受け付けました。転入先の市区町村で、転入した日から14日以内に"
                 "転入届をしてください。マイナンバーカードは転入届の際にお持ちください。"),
    "number_reissue": ("個人番号を変更しました",
                       "個人番号を変更しました。新しい個人番号の通知書をお送りします。"
                       "マイナンバーカードをお持ちの方は、窓口でカードの再交付を"
                       "申請してください。"),
    "birth": ("出生届を受け付けました",
              "世帯に新しく生まれたお子さんの出生届を受け付け、住民票に記録しました。"
              "児童手当は、出生の翌日から15日以内に認定請求をしてください"
              "（マイナポータルから申請できます）。"),
}


class EventNotices(Protocol):
    """What the portal offers for notices sent because of an event (portal.interfaces)."""

    def send_event_notices(self, notices: Sequence[EventNotice]) -> int: ...


class ChangeNotices:
    """The municipality tells the resident what changed and what to do next, as an お知らせ
    in the portal (once per event and recipient: the notice is keyed on the event's
    position)."""

    def __init__(self, copies: MunicipalCopies, portal: EventNotices) -> None:
        self.copies = copies
        self.portal = portal

    def __call__(self, events: Sequence[Event]) -> None:
        changes = [(e, RegistryChange.of(e.payload)) for e in events]
        births = [c.household_id for _, c in changes
                  if c.kind.value == "birth" and c.household_id is not None]
        households = self.copies.registry.household_members(births) if births else {}
        wanted: list[tuple[str, int, tuple[str, str], str]] = []  # agency, rid, text, key
        for event, change in changes:
            text = NOTICES.get(change.kind.value)
            if text is None:
                continue
            if change.kind.value == "correction" and not change.basic_four_changed:
                continue
            if change.kind.value == "move_in" and change.previous_municipality_code is None:
                continue  # from abroad: a new record, nobody to tell yet
            if change.kind.value == "birth":
                # The newborn has no portal account: the household head hears of it.
                recipients = [m.id for m in households.get(change.household_id or -1, [])
                              if m.relationship == "世帯主" and m.id != change.resident_id]
            else:
                recipients = [change.resident_id]
            # After a move-out the record stays with the old municipality: it writes.
            agency = self.copies.mayor_of(change.municipality_code)
            if agency is None:
                continue
            wanted += [(agency, rid, text, f"registry:{event.seq}:{rid}") for rid in recipients]
        by_agency: dict[str, set[int]] = {}
        for agency, rid, _, _ in wanted:
            by_agency.setdefault(agency, set()).add(rid)
        codes = {agency: self._codes(agency, rids) for agency, rids in by_agency.items()}
        notices = [EventNotice(agency, codes[agency][rid], NOTICE_KIND, title, body, key)
                   for agency, rid, (title, body), key in wanted if rid in codes[agency]]
        if notices:
            self.portal.send_event_notices(notices)

    def _codes(self, agency: str, resident_ids: set[int]) -> dict[int, str]:
        """The mayor's 機関別符号 of each resident (enrolling who is not yet known)."""
        numbers = {rid: self.copies._address_number(agency, rid) for rid in resident_ids}
        try:
            by_number = self.copies.agencies.enrol_known_residents(agency, numbers)
            return {rid: by_number[n] for rid, n in numbers.items() if n in by_number}
        except (DomainError, IntegrityError):
            pass  # someone is enrolled under another 宛名番号, or no longer a resident
        result: dict[int, str] = {}
        for rid, number in numbers.items():
            try:
                result[rid] = self.copies.agencies.agency_code(agency, number)
            except PersonNotEnrolled:
                enrolled = self.copies._enrol(agency, rid)
                if enrolled is not None:
                    result[rid] = self.copies.agencies.agency_code(agency, enrolled)
        return result


def notice_subscriber(copies_subscriber: Subscriber, portal: EventNotices) -> Subscriber:
    copies = copies_subscriber.handle
    assert isinstance(copies, MunicipalCopies)
    return Subscriber(NOTICE_SUBSCRIBER, ChangeNotices(copies, portal),
                      frozenset(EVENT_PREFIX + k for k in NOTICES))

"""What 住基ネット (the J-LIS copy of every resident's 本人確認情報) offers the web layer, the CLI,
the benchmark and other contexts: value types, the service protocol and its errors. Other
contexts import this module only.

Vocabulary (docs/glossary.md): 本人確認情報 -> ``identity`` (氏名・ふりがな, 住所, 生年月日, 性別,
住民票コード and the latest change: 異動事由 -> ``change_kind``, 異動年月日 -> ``changed_on``);
住基法別表 -> the permitted uses (``permitted_uses.csv``); 本人確認情報の提供状況の開示 ->
``disclosure``. 住基ネット never holds a 個人番号.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mynumber.errors import Conflict, Forbidden, InvalidInput, NotFound
from mynumber.registry.interfaces import ResidentRecord

#: The subscriber name the event dispatcher keys 住基ネット's checkpoint on.
SUBSCRIBER = "juki"


class QueryKind(StrEnum):
    BY_CODE = "by_code"  # 住民票コードによる照会
    SEARCH = "search"  # 基本4情報による検索


class QueryOutcome(StrEnum):
    ANSWERED = "answered"  # exactly one person: their 本人確認情報 was provided
    NOT_FOUND = "not_found"  # nobody matched
    AMBIGUOUS = "ambiguous"  # more than one person matched: nobody was provided
    REFUSED = "refused"  # refused (see the refusal code)


@dataclass(frozen=True)
class PermittedUse:
    """One row of the permitted-use table (住基法 第30条の9以下・別表): an agency kind and the
    事務 for which it may receive 本人確認情報."""

    use_id: str
    agency_kind: str
    purpose: str
    basis: str
    note: str = ""


@dataclass(frozen=True)
class Identity:
    """本人確認情報 as 住基ネット holds and provides it (never a 個人番号)."""

    resident_code: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: dt.date
    sex: str  # "male" / "female"
    address: str
    municipality_code: str
    status: str  # "resident" / "moved_out" / "deceased"
    change_kind: str  # the registry's life-event kind of the latest change
    changed_on: dt.date

    @property
    def name(self) -> str:
        return f"{self.family_name} {self.given_name}"

    @property
    def name_kana(self) -> str:
        return f"{self.family_name_kana} {self.given_name_kana}"


@dataclass(frozen=True)
class QueryResult:
    """The answer to one query; ``query_id`` names its record (always recorded)."""

    query_id: int
    outcome: QueryOutcome
    identity: Identity | None


@dataclass(frozen=True)
class SearchItems:
    """A four-item search: a name (kanji ``name`` and/or ``name_kana``), ``birth_date``
    (YYYY-MM-DD), ``sex`` (male/female, 男/女, 1/2) and ``address``. Empty means missing."""

    name: str = ""
    name_kana: str = ""
    birth_date: str = ""
    sex: str = ""
    address: str = ""


@dataclass(frozen=True)
class DisclosureEntry:
    """One query about the resident, as the resident sees it (提供状況の開示)."""

    query_id: int
    at: dt.datetime
    agency_id: str
    agency_name: str
    use_id: str
    purpose: str
    kind: QueryKind
    outcome: QueryOutcome


@dataclass(frozen=True)
class CopyUpdate:
    """The current record of one resident after event ``seq``. ``change_kind``/``changed_on``
    are the latest change of 本人確認情報; ``None`` keeps the change the copy has (an event
    that changes none of it, e.g. a number reissue)."""

    record: ResidentRecord
    seq: int
    change_kind: str | None
    changed_on: dt.date | None


class RegistryReader(Protocol):
    """What 住基ネット reads of the registry (its current state, after an event)."""

    def resident_by_code(self, code: str) -> ResidentRecord: ...


class BulkRegistryReader(RegistryReader, Protocol):
    def residents_by_ids(self, ids: Sequence[int]) -> dict[int, ResidentRecord]: ...


class PortalPersonResolver(Protocol):
    """Who a live portal session is, for 住基ネット's disclosure: the registry id of the holder
    of the card the session was opened with (J-LIS runs JPKI, so it knows its holders). The
    assembler provides it (``mynumber.web.juki_portal``)."""

    def resident_id(self, token: str) -> int:
        """Raises the portal's SessionExpired for no live session, DisclosureUnavailable when
        the session acts for someone else (a proxy) or has no card certificate."""
        ...


class JukiService(Protocol):
    """住基ネット. Every query (answered, not found, ambiguous or refused once the agency is
    authenticated) is recorded with the agency, the use, the time and the persons concerned."""

    def permitted_uses(self) -> Sequence[PermittedUse]: ...

    def apply(self, updates: Sequence[CopyUpdate]) -> int:
        """Write current registry records into the copy. An update whose ``seq`` is not newer
        than what the copy already reflects for that person is ignored (at-least-once delivery,
        out-of-order batches). Returns how many rows changed."""
        ...

    def applied_seqs(self, resident_ids: Sequence[int]) -> dict[int, int]: ...

    def by_code(self, agency_id: str, use_id: str, resident_code: str) -> QueryResult:
        """(a) 住民票コードによる照会. Refusals raise after the query is recorded."""
        ...

    def search(self, agency_id: str, use_id: str, items: SearchItems) -> QueryResult:
        """(b) 基本4情報による検索: all four items are required (FourItemsRequired), matched
        after normalisation; more than one match provides nobody (AMBIGUOUS)."""
        ...

    def disclosure(self, resident_id: int) -> list[DisclosureEntry]:
        """Every query that concerned the resident, newest first."""
        ...

    def identity_of(self, resident_id: int) -> Identity | None: ...


# --- errors ----------------------------------------------------------------------------------


class FourItemsRequired(InvalidInput):
    """住基ネット's search rule: all four basic items (name, birth date, sex, address)."""

    code = "juki_four_items_required"
    title = "A search must carry all four basic items (name, birth date, sex, address)"


class InvalidJukiInput(InvalidInput):
    code = "juki_invalid_input"
    title = "Invalid input"


class AgencyNotPermitted(Forbidden):
    """The agency's kind is not in the permitted-use table (住基法 別表)."""

    code = "juki_agency_not_permitted"
    title = "This agency may not receive 本人確認情報"


class UseNotPermitted(Forbidden):
    """The named use is not one the agency's kind has in the permitted-use table."""

    code = "juki_use_not_permitted"
    title = "This use is not permitted for this agency"


class IdentityNotFound(NotFound):
    code = "juki_not_found"
    title = "No person matches"


class AmbiguousMatch(Conflict):
    """More than one person matches a search: nobody is provided."""

    code = "juki_ambiguous_match"
    title = "More than one person matches: no one is provided"


class StaleRequest(Forbidden):
    code = "stale_request"
    title = "Request too old or from the future"


class DisclosureUnavailable(Forbidden):
    code = "juki_disclosure_unavailable"
    title = "The disclosure is not available for this session"

"""What 公金受取口座 (public-fund receiving accounts) offers the web layer, the CLI and other
contexts: value types, the service protocol and its errors. Other contexts import this module
only.

Vocabulary (docs/glossary.md): 公金受取口座 -> ``registration``; 口座名義 -> ``holder_name`` (in
the 全銀 character set); 預金種目 -> ``deposit_type``; 金融機関コード・店番 -> ``bank_code`` /
``branch_code``; 登録経路 -> ``route``; 年金受給者の特例 -> the pension ``proposal``;
不同意 -> ``objection``; 名義確認 -> ``name_check``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mynumber.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
)
from mynumber.network.interfaces import RoutedQuery, SealedAnswer
from mynumber.registry.interfaces import ResidentRecord

#: The subscriber name the event dispatcher keys this context's checkpoint on.
SUBSCRIBER = "accounts"
#: How long a card authentication may be used to register (the shared-terminal incident: a
#: session left open is not an authentication for the next person).
AUTHENTICATION_MAX_AGE = dt.timedelta(minutes=5)
#: 年金受給者の特例: without a 不同意 within this many days the pension account is registered.
PENSION_OBJECTION_DAYS = 45
#: The event a bank merger's migration publishes (for the portal's notice).
MIGRATED_EVENT = "accounts.registration.migrated"


class Route(StrEnum):
    """登録経路."""

    PORTAL = "portal"  # マイナポータル, card login
    BANK = "bank"  # a bank counter or its app, card authentication
    TAX_RETURN = "tax_return"  # 確定申告 (an agency route)
    PENSION = "pension"  # 年金受給者の特例 (an agency route, through a proposal only)

    @property
    def needs_card(self) -> bool:
        return self in (Route.PORTAL, Route.BANK)


class DepositType(StrEnum):
    """預金種目 (the 全銀 file codes them 1, 2, 4)."""

    ORDINARY = "ordinary"  # 普通
    CURRENT = "current"  # 当座
    SAVINGS = "savings"  # 貯蓄

    @property
    def zengin_code(self) -> int:
        return {"ordinary": 1, "current": 2, "savings": 4}[self.value]


class NameCheck(StrEnum):
    OK = "ok"
    RECHECK = "recheck"  # the holder name no longer matches the registrant's reading


class ProposalState(StrEnum):
    PENDING = "pending"
    OBJECTED = "objected"  # 不同意
    REGISTERED = "registered"
    SKIPPED = "skipped"  # not registered; see ``skip_reason``


@dataclass(frozen=True)
class Account:
    """An account as submitted: validated and normalised by the service (codes as digits,
    ``holder_name`` converted to the 全銀 set)."""

    bank_code: str
    branch_code: str
    deposit_type: DepositType | str
    account_number: str
    holder_name: str


@dataclass(frozen=True)
class CardAuthentication:
    """A JPKI user authentication (利用者証明用電子証明書) the portal or a bank verified just now,
    for the person it names. ``authentication_id`` is unique per authentication: it makes one
    change only."""

    resident_id: int
    certificate_serial: str
    authentication_id: str
    authenticated_at: dt.datetime


@dataclass(frozen=True)
class Registration:
    resident_id: int
    bank_code: str
    branch_code: str
    deposit_type: DepositType
    account_number: str
    holder_name: str
    route: Route
    known_on: dt.date
    actor: str
    authentication_id: str | None
    certificate_serial: str | None
    name_check: NameCheck
    name_check_reason: str | None
    registered_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class HistoryEntry:
    """One action on a person's registration, with the account as it left it (a deletion:
    the account deleted)."""

    id: int
    action: str  # registered, changed, migrated, flagged, cleared, deleted
    at: dt.datetime
    actor: str
    route: Route
    bank_code: str
    branch_code: str
    deposit_type: DepositType
    account_number: str
    holder_name: str
    known_on: dt.date
    reason: str | None


@dataclass(frozen=True)
class PensionProposal:
    id: int
    resident_id: int
    account: Account
    proposed_on: dt.date
    deadline: dt.date
    state: ProposalState
    objected_at: dt.datetime | None
    skip_reason: str | None


@dataclass(frozen=True)
class PensionFinalisation:
    """What one ``finalize_pensions`` run did: the persons registered, and those skipped with
    the reason (``holder_name_<reason>``, ``former_name``, ``first_transfer_bounced``,
    ``registrant_unavailable``, ``already_registered``, ``branch_closed``)."""

    registered: list[int]
    skipped: list[tuple[int, str]]


@dataclass(frozen=True)
class MovedRegistration:
    """A registration a bank merger moved: what the resident is told."""

    resident_id: int
    from_bank_code: str
    from_branch_code: str
    to_bank_code: str
    to_branch_code: str
    effective_on: dt.date


@dataclass(frozen=True)
class MergerReport:
    moved: list[MovedRegistration]
    #: Registrations whose branch closed without a successor: left as they are (never
    #: silently deleted) for the resident to register again.
    closed: list[int]


@dataclass(frozen=True)
class SharedAccount:
    bank_code: str
    branch_code: str
    account_number: str
    resident_ids: list[int]


@dataclass(frozen=True)
class AuditReport:
    """The nightly audit: one account registered to more than one person, and registrations
    whose holder name no longer matches (``(resident_id, reason)``)."""

    shared_accounts: list[SharedAccount]
    rechecks: list[tuple[int, str | None]]


class RegistryReader(Protocol):
    """What the accounts context reads of the registry: current records (the registrant's
    reading, 氏名のフリガナ, and status)."""

    def residents_by_ids(self, resident_ids: Sequence[int]) -> dict[int, ResidentRecord]: ...


class AccountsService(Protocol):
    """公金受取口座. Each state change is one transaction with its history row and audit
    record. Every route runs the holder-name check against the registrant's reading; the
    portal and bank routes need a fresh, unused card authentication of the registrant."""

    def register(self, resident_id: int, account: Account, route: Route | str, *,
                 authentication: CardAuthentication | None = None,
                 actor: str | None = None) -> Registration:
        """Register (one per person: AlreadyRegistered if there is one). Portal and bank:
        ``authentication`` required; tax return: an agency ``actor`` required. The pension
        route registers through :meth:`propose_pension` only."""
        ...

    def change(self, resident_id: int, account: Account, route: Route | str, *,
               authentication: CardAuthentication | None = None,
               actor: str | None = None) -> Registration: ...

    def delete(self, resident_id: int, route: Route | str, *,
               authentication: CardAuthentication | None = None,
               actor: str | None = None) -> None: ...

    def registration(self, resident_id: int) -> Registration | None: ...

    def history(self, resident_id: int) -> list[HistoryEntry]: ...

    def propose_pension(self, resident_id: int, account: Account, proposed_on: dt.date, *,
                        actor: str, former_name: bool = False,
                        first_transfer_bounced: bool = False) -> PensionProposal:
        """日本年金機構 writes to the recipient; the deadline is ``proposed_on`` + 45 days.
        ``former_name``: the agency's record says the account is under the recipient's 旧氏
        (the registry offers no former names to check it here)."""
        ...

    def object_pension(self, resident_id: int, on: dt.date) -> PensionProposal:
        """不同意, up to the deadline: the proposal is never registered."""
        ...

    def mark_bounced(self, resident_id: int) -> PensionProposal:
        """The pending proposal's first transfer bounced: it will not be registered."""
        ...

    def proposals(self, resident_id: int) -> list[PensionProposal]: ...

    def finalize_pensions(self, today: dt.date) -> PensionFinalisation:
        """Register every pending proposal past its deadline, or skip it with a reason; each
        exactly once, even when two runs overlap."""
        ...

    def apply_mergers(self, today: dt.date) -> MergerReport:
        """Move registrations whose branch a merger superseded to the codes valid ``today``,
        with history and an event (MIGRATED_EVENT) per move."""
        ...

    def audit_report(self) -> AuditReport: ...

    def recheck_holder_names(self, readings: Mapping[int, str], actor: str) -> list[int]:
        """Compare each person's holder name with their current reading; flag (or clear) the
        name check. Returns the persons whose state changed."""
        ...

    def delete_for_death(self, resident_id: int, actor: str) -> bool:
        """Delete a deceased person's registration (with history); False if none."""
        ...


# --- errors ----------------------------------------------------------------------------------


class InvalidAccount(InvalidInput):
    code = "accounts_invalid_account"
    title = "The account details are not valid"


class UnknownBranchCode(InvalidInput):
    code = "accounts_unknown_branch"
    title = "No such bank or branch today"


class HolderNameMismatch(InvalidInput):
    """The account's holder name is not the registrant's name: ``reason`` (a
    HolderNameReason value) says what differed; nothing is stored."""

    code = "accounts_holder_name_mismatch"
    title = "The account holder is not the registrant"


class CardAuthenticationRequired(NotAuthenticated):
    code = "accounts_card_authentication_required"
    title = "This route needs the registrant's card authentication"


class CardAuthenticationOtherPerson(Forbidden):
    code = "accounts_card_authentication_other_person"
    title = "The card authentication is another person's"


class CardAuthenticationStale(Forbidden):
    code = "accounts_card_authentication_stale"
    title = "The card authentication is too old"


class CardAuthenticationUsed(Conflict):
    code = "accounts_card_authentication_used"
    title = "This card authentication was already used"


class AgencyActorRequired(Forbidden):
    code = "accounts_agency_actor_required"
    title = "This route is an agency route"


class RouteNotPermitted(Forbidden):
    code = "accounts_route_not_permitted"
    title = "This route cannot make this change"


class RegistrantUnavailable(NotFound):
    code = "accounts_registrant_unavailable"
    title = "No living registrant with this id"


class AlreadyRegistered(Conflict):
    code = "accounts_already_registered"
    title = "A public-fund account is already registered (change it instead)"


class NotRegistered(NotFound):
    code = "accounts_not_registered"
    title = "No public-fund account is registered"


class ProposalNotFound(NotFound):
    code = "accounts_pension_proposal_not_found"
    title = "No pending pension proposal"


class ProposalClosed(Conflict):
    code = "accounts_pension_proposal_closed"
    title = "The pension proposal's objection period is over"


# --- provision to agencies through the network (情報提供) --------------------------------------
# デジタル庁 provides 公金受取口座情報 through the information provision network: an agency asks
# by its own 機関別符号 for a task the legal table permits (data/additional_provisions.csv);
# the core records and logs the exchange (so the resident sees it in やりとり履歴) and routes
# the query here with デジタル庁's own code for the person. Implementation: provision.py.

#: The provider agency (agencies.csv) and the information item (items.csv).
DIGITAL_AGENCY = "digital_agency"
PUBLIC_FUND_ACCOUNT_ITEM = "public_fund_account"


@dataclass(frozen=True)
class ScanningAlert:
    """A burst of look-ups for people with no registered account from one agency: more than
    ``threshold`` misses within ``window_seconds`` (possible scanning for who has an account)."""

    id: int
    agency_id: str
    misses: int
    threshold: int
    window_seconds: int
    flagged_at: dt.datetime


class AgencyCodes(Protocol):
    """デジタル庁's own 機関別符号 for registrants (held by its intermediate server, the agencies
    context): the provider maps the code a routed query carries to the registrant."""

    def resident_for_code(self, agency_code: str) -> int | None: ...

    def enrol(self, resident_id: int, actor: str) -> str:
        """Obtain デジタル庁's code for a registrant identified without the number (the card
        authentication of a registration: ``actor``); idempotent. Returns the code."""
        ...


class AccountProvision(Protocol):
    """デジタル庁's answer to routed queries for ``public_fund_account`` (the network core's
    ``IntermediateServer``), with per-agency rate limits and scanning detection."""

    def answer(self, query: RoutedQuery) -> SealedAnswer:
        """Check the core's signature and freshness, the requesting agency's token bucket
        (LookupRateLimited when empty: nothing is read or disclosed), then seal the person's
        account for the requester, or answer "not held" (a miss, counted for scanning)."""
        ...

    def enrol(self, resident_id: int, actor: str) -> str: ...

    def scanning_alerts(self, agency_id: str | None = None) -> list[ScanningAlert]: ...


class LookupRateLimited(DomainError):
    """The requesting agency's look-up budget is spent for now (token bucket)."""

    code = "accounts_lookup_rate_limited"
    status = 429
    title = "Too many public-fund account look-ups; retry later"


class RoutedQueryNotAccepted(Forbidden):
    """A routed query whose core signature does not verify, that is stale, or that is not
    for デジタル庁's public_fund_account."""

    code = "accounts_routed_query_not_accepted"
    title = "Routed query not accepted"

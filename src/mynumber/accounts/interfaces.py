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
#: This context's own events (its outbox). A registration, change or deletion on any route:
REGISTERED_EVENT = "accounts.registration.registered"
CHANGED_EVENT = "accounts.registration.changed"
DELETED_EVENT = "accounts.registration.deleted"
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
class BankAccount:
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
class RegistrationChange:
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
    account: BankAccount
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

    def register(self, resident_id: int, account: BankAccount, route: Route | str, *,
                 authentication: CardAuthentication | None = None,
                 actor: str | None = None) -> Registration:
        """Register (one per person: AlreadyRegistered if there is one). Portal and bank:
        ``authentication`` required; tax return: an agency ``actor`` required. The pension
        route registers through :meth:`propose_pension` only."""
        ...

    def change(self, resident_id: int, account: BankAccount, route: Route | str, *,
               authentication: CardAuthentication | None = None,
               actor: str | None = None) -> Registration: ...

    def delete(self, resident_id: int, route: Route | str, *,
               authentication: CardAuthentication | None = None,
               actor: str | None = None, expected_bank_code: str | None = None) -> None:
        """Delete the person's registration. ``expected_bank_code`` (the bank route): only
        when the registered account is at this 金融機関コード, checked in the deleting
        transaction (else BankCodeNotOwn, nothing deleted)."""
        ...

    def registration(self, resident_id: int) -> Registration | None: ...

    def history(self, resident_id: int) -> list[RegistrationChange]: ...

    def propose_pension(self, resident_id: int, account: BankAccount, proposed_on: dt.date, *,
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


# --- 預貯金口座付番 (deposit-account numbering) and 預金保険機構 look-ups ------------------------
# Implementation: deposit.py. A resident consents, once per bank, that their accounts at the
# banks they choose be linked to their 個人番号; the number is sealed for each bank (HPKE with
# the bank's X25519 key) and held as a delivery for it, never stored in clear. 預金保険機構
# (the Deposit Insurance Corporation, ``dic``) then tells an heir with the documents, or a
# resident after a declared disaster, which banks hold the numbered accounts.

#: The fee an heir pays 預金保険機構 for an inheritance look-up (相続時の照会), in yen.
INHERITANCE_LOOKUP_FEE_YEN = 5060


class BankKeys(Protocol):
    """The banks' public keys for receiving 個人番号 (the bank-clients part implements it)."""

    def sealing_key(self, bank_code: str) -> tuple[str, bytes] | None:
        """Whom a delivery for the bank is sealed for (a bank client id: only that client
        collects it) and their raw X25519 public key (32 bytes); None when the bank has no
        active client."""
        ...


class DeliveryState(StrEnum):
    PENDING = "pending"  # consent recorded; the number is not sealed yet (no key, no numbering)
    SEALED = "sealed"  # sealed for the bank, waiting for the bank to collect it
    DELIVERED = "delivered"  # the bank acknowledged it; the sealed bytes are dropped


class LookupKind(StrEnum):
    INHERITANCE = "inheritance"  # 相続時: an heir asks about a deceased person
    DISASTER = "disaster"  # 災害時: a resident asks about themselves, free of charge


class LookupOutcome(StrEnum):
    ANSWERED = "answered"
    REFUSED = "refused"


class DocumentKind(StrEnum):
    """What an heir presents to 預金保険機構 (its clerk records the reference, e.g. of the
    戸籍謄本)."""

    DEATH = "death"  # 死亡の事実 (e.g. 除籍謄本, 死亡診断書の写し)
    HEIR_RELATION = "heir_relation"  # 相続人であること (e.g. 戸籍謄本, 法定相続情報一覧図)


REQUIRED_DOCUMENTS = frozenset({DocumentKind.DEATH, DocumentKind.HEIR_RELATION})


@dataclass(frozen=True)
class HeirDocument:
    kind: DocumentKind | str
    reference: str  # the 機構's clerk record of the document (1-64 printable characters)


@dataclass(frozen=True)
class NumberingRequest:
    """One bank a resident asked to link their accounts at to their number (never the
    number itself)."""

    id: int
    resident_id: int
    bank_code: str
    route: Route
    actor: str
    requested_at: dt.datetime
    state: DeliveryState
    sealed_at: dt.datetime | None
    delivered_at: dt.datetime | None


@dataclass(frozen=True)
class SealedNumber:
    """A delivery for a bank: the 個人番号 and what identifies the customer, signed by
    デジタル庁 and sealed with ``envelope.seal`` for the bank's key. ``info`` is
    :func:`deposit_info` of the bank and the request."""

    request_id: int
    bank_code: str
    sealed: bytes
    sealed_at: dt.datetime


def deposit_info(bank_code: str, request_id: int) -> bytes:
    """The HPKE ``info`` binding a sealed number to its bank and request."""
    return f"mynumber-deposit-numbering/v1/{bank_code}/{request_id}".encode()


@dataclass(frozen=True)
class DisasterDeclaration:
    """災害救助法の適用: the municipalities and the period in which residents may ask for free."""

    id: int
    name: str
    municipality_codes: list[str]
    starts_on: dt.date
    ends_on: dt.date
    declared_by: str
    declared_at: dt.datetime


@dataclass(frozen=True)
class DicLookup:
    """One 預金保険機構 look-up as recorded (answered or refused)."""

    id: int
    kind: LookupKind
    outcome: LookupOutcome
    subject_resident_id: int  # whose accounts (the deceased, or the resident themselves)
    requester_resident_id: int  # the heir, or the resident themselves
    bank_codes: list[str]  # what was answered (empty when refused)
    fee_yen: int
    declaration_id: int | None
    actor: str
    at: dt.datetime


class DepositNumberingService(Protocol):
    """預貯金口座付番 with consent and 預金保険機構's look-ups (deposit.py)."""

    def request_numbering(self, resident_id: int, bank_codes: Sequence[str],
                          route: Route | str, *,
                          authentication: CardAuthentication | None = None,
                          actor: str | None = None) -> list[NumberingRequest]:
        """Consent, once per bank, to link the person's accounts at ``bank_codes`` (banks of
        the dataset today) to their number. Routes ``portal`` and ``bank`` with a fresh card
        authentication of the person (spent once). All banks or none: a bank asked before is
        NumberingAlreadyRequested (the database's unique key decides under concurrency)."""
        ...

    def numbering_requests(self, resident_id: int) -> list[NumberingRequest]: ...

    def seal_pending(self, limit: int = 1000) -> int:
        """Seal the pending deliveries whose bank now has a key; returns how many."""
        ...

    def deliveries(self, bank_code: str, limit: int = 100, *,
                   recipient: str | None = None) -> list[SealedNumber]:
        """The sealed numbers waiting for ``bank_code`` (the bank API collects them), only
        those sealed for ``recipient`` (a bank client id) when given."""
        ...

    def acknowledge(self, bank_code: str, request_ids: Sequence[int], *,
                    recipient: str | None = None) -> int:
        """The bank stored these: mark them delivered and drop the sealed bytes (only those
        sealed for ``recipient`` when given)."""
        ...

    def heir_lookup(self, deceased_id: int, heir_id: int, documents: Sequence[HeirDocument],
                    *, actor: str) -> DicLookup:
        """相続時の照会 by 預金保険機構's clerk (``actor``). Answered (fee recorded) only with
        both documents and the death recorded in the registry; otherwise LookupRefused, the
        same error whatever the deceased's state or accounts."""
        ...

    def disaster_lookup(self, resident_id: int, *, actor: str) -> DicLookup:
        """災害時の照会: free, for a resident of a municipality under a declaration in force
        today; NoDisasterDeclaration otherwise."""
        ...

    def lookups_for(self, resident_id: int) -> list[DicLookup]:
        """The look-ups concerning a person: about them, or made by them as heir."""
        ...

    def declare_disaster(self, name: str, municipality_codes: Sequence[str],
                         starts_on: dt.date, ends_on: dt.date, *,
                         actor: str) -> DisasterDeclaration: ...

    def declarations(self) -> list[DisasterDeclaration]: ...


class UnknownBank(InvalidInput):
    code = "accounts_unknown_bank"
    title = "No such bank today"


class NumberingAlreadyRequested(Conflict):
    """A bank the person has already asked (once per bank); ``bank_codes`` names them."""

    code = "accounts_deposit_numbering_already_requested"
    title = "Numbering was already requested at this bank"


class LookupRefused(Forbidden):
    """An inheritance look-up without what it needs. Always raised with the same detail, so
    the answer says nothing about the deceased or their accounts."""

    code = "accounts_dic_lookup_refused"
    title = "The look-up cannot be answered without the required documents"


class NoDisasterDeclaration(Forbidden):
    code = "accounts_no_disaster_declaration"
    title = "No disaster declaration covers your municipality today"


class InvalidDeclaration(InvalidInput):
    code = "accounts_invalid_disaster_declaration"
    title = "The disaster declaration is not valid"


# --- the bank route's clients (accounts/bank_clients.py) --------------------------------------
# A bank's counter or app is a client of this context: it signs its API requests with its own
# Ed25519 key, and its counter staff sign in on /bank with the client's secret. The person a
# bank registers for is whoever the card names; the bank registers accounts at its own code.
# ``BankClientsImpl`` implements ``BankKeys`` (above): the newest active client and its
# X25519 key; a delivery sealed for a client is collected and acknowledged by it only.

#: A bank's signed request older (or further in the future) than this is refused.
BANK_REQUEST_MAX_AGE = dt.timedelta(minutes=5)


class BankClientStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class BankClient:
    client_id: str
    bank_code: str
    name: str
    signing_public_key: bytes  # Ed25519, 32 bytes
    encryption_public_key: bytes  # X25519, 32 bytes
    status: BankClientStatus
    created_at: dt.datetime

    @property
    def actor(self) -> str:
        """Who made a change through this client, as history and audit record it."""
        return f"bank:{self.bank_code}:{self.client_id}"


class BankClientNotFound(NotFound):
    code = "accounts_bank_client_not_found"
    title = "No such bank client"


class InvalidBankClient(InvalidInput):
    code = "accounts_invalid_bank_client"
    title = "The bank client's details are not valid"


class BankRequestBadSignature(Forbidden):
    """Unknown client, or the signature does not verify with its key (one code for both:
    a caller learns nothing about which clients exist)."""

    code = "accounts_bank_bad_signature"
    title = "The request is not signed by a registered bank client"


class BankRequestStale(Forbidden):
    code = "accounts_bank_request_stale"
    title = "The signed request is too old or from the future"


class BankRequestReplayed(Conflict):
    code = "accounts_bank_request_replayed"
    title = "This nonce was already used by the bank client"


class BankClientSuspended(Forbidden):
    code = "accounts_bank_client_suspended"
    title = "The bank client is suspended"


class BankCodeNotOwn(Forbidden):
    code = "accounts_bank_code_not_own"
    title = "A bank registers accounts at its own bank code only"


class BankLoginFailed(NotAuthenticated):
    code = "accounts_bank_login_failed"
    title = "Client id or secret is wrong, or the client is suspended"


class BankSessionExpired(NotAuthenticated):
    code = "accounts_bank_session_expired"
    title = "The bank counter's session has ended: sign in again"

"""What the portal (マイナポータル) offers the web layer, the CLI, the benchmark and later
contexts (oversight reads client monitoring through here): value types, service protocols and
the portal's errors. Other contexts import this module only.

Vocabulary (docs/glossary.md): 利用者 -> ``account`` (keyed by ``subject``, the JPKI pairwise id
the portal gets as an auth verifier; never the 個人番号, never a certificate serial);
わたしの情報 -> ``my_information``; やりとり履歴 -> ``history``; お知らせ -> ``notice``;
代理人 -> ``proxy`` (法定代理人 ``legal_representative``, 成年後見人 ``adult_guardian``);
自己情報取得API -> the self-information API; API利用者 -> ``client``; 同意 -> ``grant``.

Who acts: a :class:`PortalSession` has an ``account_id`` (who logged in with their card) and an
``acting_for`` (whose data is shown: the account itself, or a principal the logged-in person is a
registered proxy of). Every action is recorded with both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from mynumber.auth.interfaces import StaffPrincipal
from mynumber.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
)
from mynumber.network.interfaces import AccessRecord

PORTAL_AGENCY = "mynaportal"
SESSION_COOKIE = "mn_portal"  # the portal session cookie (HttpOnly, SameSite=Lax, path /)
SELF_INFORMATION_TASK = "extra-portal-self-information"
CHILD_ALLOWANCE_TASK = "bekkyo2-74"  # 児童手当・特例給付の支給 (the municipality's task)
# ``InformationSource.provider`` for items the resident's own municipality holds: the mayor
# agency serving the account's municipality answers (the portal and the OIDC side resolve it).
MUNICIPALITY = "municipality"
# Signed お知らせ: how far ``requested_at`` may be from the portal's clock (the HTTP API checks
# it; the service remembers nonces for twice that, so a replay inside the window is refused).
NOTICE_CLOCK_SKEW = dt.timedelta(minutes=5)


# --- login and sessions ------------------------------------------------------------------------


#: The purpose of a portal session's challenge. Other procedures name their own (``accounts``,
#: ``bank:<client id>``): a challenge is accepted only by the procedure it was issued for.
LOGIN_PURPOSE = "login"
#: A purpose: lower-case letters, digits and ``_-.:``, at most 80 characters.
PURPOSE_PATTERN = r"[a-z][a-z0-9_.:-]{0,79}"


@dataclass(frozen=True)
class LoginChallenge:
    """What the card signs: 32 random bytes, one use, a short life."""

    challenge_id: str
    challenge: bytes
    expires_at: dt.datetime


@dataclass(frozen=True)
class PortalSession:
    """One transaction on a (possibly shared) terminal. ``token`` is shown once, to the
    browser cookie or the CLI; the portal keeps only its hash."""

    token: str
    session_id: str
    account_id: int
    acting_for: int  # == account_id unless acting as a proxy
    proxy_kind: ProxyKind | None
    started_at: dt.datetime
    expires_at: dt.datetime  # absolute end
    idle_until: dt.datetime
    csrf_token: str


@dataclass(frozen=True)
class Account:
    account_id: int
    display_name: str  # from the municipality's 住民票関係情報 when fetched, else ""
    municipality_code: str
    created_at: dt.datetime
    last_login_at: dt.datetime | None


# --- わたしの情報 ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InformationSource:
    """One item the portal can fetch about the resident, and from which agency."""

    scope: str  # e.g. "basic_four", "income", "pension" (also the OIDC scope name)
    item_code: str  # network item, e.g. "resident_record", "local_tax"
    label_ja: str
    label_en: str
    provider: str  # "municipality" (the resident's mayor) or an agency id


@dataclass(frozen=True)
class InformationResult:
    scope: str
    item_code: str
    provider_id: str
    provider_name: str
    outcome: str  # network Outcome value: provided / not_held / refused
    data: dict[str, Any] | None
    serial: str  # the exchange's 処理通番 (it is in やりとり履歴)
    fetched_at: dt.datetime


# --- やりとり履歴 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    """An exchange about the resident, with releases to API clients that used it."""

    record: AccessRecord
    released_to: tuple[str, ...] = ()  # client names the data went to (self-information API)
    by_proxy: str | None = None  # "adult_guardian" when a proxy's action caused the exchange


@dataclass(frozen=True)
class RecordVerification:
    """The result of 'verify': the record's log entry is in the tree the signed head commits to."""

    serial: str
    verified: bool
    leaf_index: int | None
    tree_size: int
    root_hash: str  # hex
    checkpoint: str  # the signed note the proof was checked against
    proof: tuple[str, ...]  # hex audit path
    reason: str = ""  # why not verified (e.g. "not yet integrated")


@dataclass(frozen=True)
class Activity:
    """Something done in the portal for a resident (by them or by a proxy)."""

    at: dt.datetime
    action: str  # e.g. "login", "view_information", "answer_notice", "submit_application"
    actor_account_id: int
    subject_account_id: int
    proxy_kind: ProxyKind | None
    detail: str


# --- お知らせ and applications ----------------------------------------------------------------


class NoticeState(StrEnum):
    UNREAD = "unread"
    READ = "read"
    ANSWERED = "answered"


@dataclass(frozen=True)
class EventNotice:
    """A notice an agency sends because of an event: addressed by the agency's own code
    for the person, keyed by ``source_event`` (sent once)."""

    agency_id: str
    agency_code: str
    kind: str
    title: str
    body: str
    source_event: str


@dataclass(frozen=True)
class Notice:
    notice_id: int
    sender_id: str  # agency id
    sender_name: str
    kind: str  # e.g. "child_allowance_status_report", "information"
    title: str
    body: str
    created_at: dt.datetime
    state: NoticeState
    read_at: dt.datetime | None
    answered_at: dt.datetime | None
    application_id: int | None  # the application that answered it


class ApplicationState(StrEnum):
    SUBMITTED = "submitted"


@dataclass(frozen=True)
class ChildAllowanceForm:
    """児童手当 現況届, filled in from network data when the resident lets the portal fetch it.
    ``prefilled_serials`` name the exchanges that fetched the data."""

    applicant_name: str
    address: str
    taxable_income: int | None
    insurance_status: str | None
    children: tuple[dict[str, str], ...]  # name, birth_date
    prefilled_serials: tuple[str, ...]


# Attached documents (添付書類) of an application made without the number: what is accepted.
# The content decides the type (its first bytes); the type the browser declares is not trusted.
ATTACHMENT_TYPES = ("application/pdf", "image/jpeg", "image/png")
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024  # per file: a scanned certificate fits with room
MAX_ATTACHMENTS = 5  # per application: the three required documents and two others
# The 現況届 without the number: a file for each required document, others optional.
REQUIRED_DOCUMENTS = ("tax_certificate", "health_insurance_copy", "child_resident_record")
OPTIONAL_DOCUMENTS = ("other",)


@dataclass(frozen=True)
class DocumentUpload:
    """A file the resident attaches, as received. ``field`` is the form input it came from
    (a refusal names it), ``kind`` the document (``tax_certificate`` ...), ``filename`` the
    name the browser sent (sanitised before it is stored), ``content`` the bytes (at most
    MAX_ATTACHMENT_BYTES + 1 are read: one more says "too large")."""

    field: str
    kind: str
    filename: str
    content: bytes


@dataclass(frozen=True)
class Attachment:
    """An attached document as stored with its application (its bytes are read separately)."""

    attachment_id: int
    application_id: int
    kind: str
    filename: str  # sanitised; its extension matches ``content_type``
    content_type: str  # one of ATTACHMENT_TYPES, from the content
    size: int
    sha256: str
    uploaded_at: dt.datetime


@dataclass(frozen=True)
class ApplicationRecord:
    application_id: int
    kind: str  # "child_allowance_status_report"
    agency_id: str  # the municipality it went to
    state: ApplicationState
    uses_number: bool  # False: the resident declined; documents attached instead
    documents: tuple[str, ...]  # the kinds of the documents attached
    data: dict[str, Any]
    submitted_at: dt.datetime
    by_proxy: ProxyKind | None
    declined_serial: str | None  # the core's record of the declined linkage
    attachments: tuple[Attachment, ...] = ()
    application_ref: str = ""


# --- proxies ---------------------------------------------------------------------------------


class ProxyKind(StrEnum):
    LEGAL_REPRESENTATIVE = "legal_representative"  # 法定代理人 (parent of a minor)
    ADULT_GUARDIAN = "adult_guardian"  # 成年後見人


@dataclass(frozen=True)
class ProxyRecord:
    proxy_id: int
    principal_account_id: int
    proxy_account_id: int
    kind: ProxyKind
    registered_by: str  # staff actor
    registered_at: dt.datetime
    valid_until: dt.date | None
    revoked_at: dt.datetime | None
    principal_name: str = ""


# --- the self-information API (OIDC) ---------------------------------------------------------


class ClientState(StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"
    SUSPENDED = "suspended"
    RETIRED = "retired"


@dataclass(frozen=True)
class ClientRecord:
    client_id: str
    name: str
    organisation: str
    contact: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]  # item scopes it may ask for
    state: ClientState
    rate_limit_per_minute: int
    created_at: dt.datetime
    state_changed_at: dt.datetime
    state_reason: str
    client_secret: str | None = None  # only in the answer to registration


@dataclass(frozen=True)
class GrantRecord:
    """A resident's consent to one client for some item scopes."""

    grant_id: int
    client_id: str
    client_name: str
    scopes: tuple[str, ...]
    granted_at: dt.datetime
    revoked_at: dt.datetime | None
    actor_account_id: int | None = None  # who consented: the resident, or their proxy
    proxy_kind: ProxyKind | None = None  # set when a proxy consented


@dataclass(frozen=True)
class Release:
    """One release of data to a client (also shown in やりとり履歴 against its exchange)."""

    client_id: str
    client_name: str
    scope: str
    serial: str  # the network exchange that fetched the data
    released_at: dt.datetime


@dataclass(frozen=True)
class ClientMonitoring:
    """Per-client figures the oversight body reads (seed 003: monitoring of API users)."""

    client_id: str
    state: ClientState
    requests: int
    releases: int
    refusals: int
    rate_limited: int
    anomalies: int
    distinct_subjects: int
    last_request_at: dt.datetime | None
    recent_anomalies: tuple[str, ...] = field(default_factory=tuple)


# --- protocols -------------------------------------------------------------------------------


class PortalService(Protocol):
    """The resident-facing portal. Every method that acts for a resident takes the session and
    records an :class:`Activity` (with the proxy when one acts)."""

    # login (the card signs the challenge with its user-authentication key after the PIN)
    def begin_login(self, purpose: str = LOGIN_PURPOSE) -> LoginChallenge:
        """A one-use challenge for the card to sign, for ``purpose`` only (the login's by
        default; see :data:`LOGIN_PURPOSE`)."""
        ...

    def complete_login(
        self, challenge_id: str, signature: bytes, certificate_pem: str,
        previous_token: str | None = None,
    ) -> PortalSession:
        """Verify chain, revocation and signature (of a challenge issued for
        :data:`LOGIN_PURPOSE` only); find or link the account; start a NEW session.
        ``previous_token`` (the cookie the terminal still had) is ended first: a new login
        never inherits anything from it."""
        ...

    def verify_card(self, challenge_id: str, signature: bytes, certificate_pem: str, *,
                    purpose: str) -> int:
        """A fresh card authentication for a procedure (the challenge, which must have been
        issued for exactly ``purpose``, is spent; no session is opened): the authentication
        certificate's serial."""
        ...

    def session(self, token: str) -> PortalSession:
        """The live session for ``token`` (touching its idle timer), else SessionExpired."""
        ...

    def logout(self, token: str) -> None: ...

    def act_for(self, token: str, principal_account_id: int | None) -> PortalSession:
        """Switch whose data the session shows: a principal the account is a registered proxy
        of, or back to the account itself (None)."""
        ...

    def account(self, account_id: int) -> Account: ...

    # わたしの情報 and やりとり履歴
    def sources(self) -> Sequence[InformationSource]: ...

    def my_information(self, session: PortalSession, scope: str) -> InformationResult:
        """Fetch one item through the network with the portal's own agency code."""
        ...

    def history(self, session: PortalSession) -> list[HistoryEntry]: ...

    def verify_record(self, session: PortalSession, serial: str) -> RecordVerification:
        """Check the record's inclusion proof against the latest signed tree head."""
        ...

    def activities(self, session: PortalSession) -> list[Activity]: ...

    # お知らせ
    def send_notice(
        self, agency_id: str, agency_code: str, kind: str, title: str, body: str
    ) -> Notice:
        """An agency addresses a resident by its own agency code; the core routes it to the
        portal's code. The agency never learns the portal's code."""
        ...

    def certificate_serial(self, token: str) -> int | None:
        """The card certificate serial a live session was opened with (sealed under the
        session's token: only a request bearing it can open it); None otherwise. For 住基ネット's
        disclosure page, which asks JPKI who holds it."""
        ...

    def send_event_notices(self, notices: Sequence[EventNotice]) -> int:
        """Notices agencies send because of events (e.g. a registry change), in one
        transaction: each stored once per ``source_event`` (e.g. ``registry:42:7``) however
        often its event is delivered. Returns how many were new."""

    def notices(self, session: PortalSession) -> list[Notice]: ...

    def read_notice(self, session: PortalSession, notice_id: int) -> Notice: ...

    # applications
    def child_allowance_form(self, session: PortalSession, notice_id: int,
                             use_number: bool) -> ChildAllowanceForm:
        """The 現況届 for an open notice; with ``use_number`` it is filled in from the
        network, without it it is blank and documents must be attached."""
        ...

    def submit_child_allowance(
        self, session: PortalSession, notice_id: int, use_number: bool,
        form: ChildAllowanceForm, documents: Sequence[DocumentUpload],
    ) -> ApplicationRecord:
        """Submit; the notice becomes answered. Without the number the documents are files
        (every one of REQUIRED_DOCUMENTS, PDF/JPEG/PNG by content, at most
        MAX_ATTACHMENT_BYTES each and MAX_ATTACHMENTS in all), stored with the application in
        the same transaction, and the municipality records a declined linkage naming them
        (never a refusal of the benefit). A refused file (InvalidAttachment, its ``field`` the
        input) leaves nothing stored. With the number no documents are taken."""
        ...

    def applications(self, session: PortalSession) -> list[ApplicationRecord]: ...

    # the municipality's side: what its staff received through the portal
    def received_applications(self, staff: StaffPrincipal) -> list[ApplicationRecord]:
        """Applications sent to the staff member's municipality, newest first, with their
        attachments' descriptions (not their bytes). The read is audited."""
        ...

    def attachment_content(self, staff: StaffPrincipal,
                           attachment_id: int) -> tuple[Attachment, bytes]:
        """One attached document's bytes, for staff of the municipality the application went
        to; anyone else gets AttachmentNotFound (nothing says it exists). Audited."""
        ...

    # proxies (registered at the counter by staff who verified both people)
    def register_proxy(
        self, staff_actor: str, principal_resident_id: int, proxy_resident_id: int,
        kind: ProxyKind, valid_until: dt.date | None = None,
    ) -> ProxyRecord: ...

    def revoke_proxy(self, staff_actor: str, proxy_id: int) -> ProxyRecord: ...

    def principals(self, session: PortalSession) -> list[ProxyRecord]:
        """Whom the logged-in account may act for."""
        ...

    # for the OIDC side, with a resident's portal session
    def acting_subject(self, session: PortalSession) -> tuple[int, ProxyKind | None]:
        """Whom the session acts for, re-checked now: (account id, proxy kind or None).
        SessionExpired when the session has ended; NotAProxy when the relation is gone."""
        ...

    def record_activity(self, session: PortalSession, action: str, detail: str = "") -> None:
        """Record an :class:`Activity` (actor: the logged-in account; subject: whom it acts
        for, with the re-checked proxy kind)."""
        ...

    # for the self-information API (the OIDC side calls this with a valid access token)
    def fetch_for_client(self, account_id: int, scope: str, client_id: str,
                         client_name: str, *, grant_id: int | None = None
                         ) -> InformationResult:
        """Fetch one item for a client the resident consented to under ``grant_id``; the
        activity and, when data was provided, the :class:`Release` are recorded in one
        transaction."""
        ...


class SelfInformationApi(Protocol):
    """The resident's side of the OIDC provider: consents (grants) and releases."""

    def grants(self, account_id: int) -> list[GrantRecord]:
        """Live and revoked grants of the account, newest first."""
        ...

    def revoke_grant(self, account_id: int, grant_id: int, actor_account_id: int) -> GrantRecord:
        """Revoke at once: every token issued under the grant stops working."""
        ...

    def releases(self, account_id: int) -> list[Release]: ...


class ApiClients(Protocol):
    """API client registration, vetting and monitoring (operated by デジタル庁 staff)."""

    def register(self, name: str, organisation: str, contact: str,
                 redirect_uris: Sequence[str], scopes: Sequence[str]) -> ClientRecord:
        """A client applies: state ``applied``; the secret is returned here only."""
        ...

    def set_state(self, actor: str, client_id: str, state: ClientState,
                  reason: str) -> ClientRecord: ...

    def set_rate_limit(self, actor: str, client_id: str, per_minute: int) -> ClientRecord: ...

    def client(self, client_id: str) -> ClientRecord: ...

    def clients(self, state: ClientState | None = None) -> list[ClientRecord]: ...

    def monitoring(self, client_id: str) -> ClientMonitoring: ...


class CardReader(Protocol):
    """The embedded mode's virtual card reader: drives a virtual card held by this process
    (a test card issued at the counter) to sign a login challenge after its PIN."""

    def cards(self) -> list[str]:
        """Card ids whose chips are held here."""
        ...

    def sign_challenge(self, card_id: str, pin: str, challenge: bytes) -> tuple[bytes, str]:
        """(signature, auth certificate PEM); a wrong PIN counts down as on the card."""
        ...


# --- errors ----------------------------------------------------------------------------------


class PortalError(InvalidInput):
    code = "portal_invalid_input"
    title = "Invalid input"


class InvalidAttachment(PortalError):
    """A refused attached document; ``field`` names the form input it came from."""

    code = "invalid_attachment"
    title = "Attached document refused"


class AttachmentMissing(InvalidAttachment):
    code = "invalid_attachment_missing"
    title = "A required document is not attached"


class AttachmentEmpty(InvalidAttachment):
    code = "invalid_attachment_empty"
    title = "The attached file is empty"


class AttachmentWrongType(InvalidAttachment):
    code = "invalid_attachment_type"
    title = "Only PDF, JPEG and PNG files can be attached"


class AttachmentTooLarge(InvalidAttachment):
    code = "invalid_attachment_size"
    title = "The attached file is too large"


class TooManyAttachments(InvalidAttachment):
    code = "invalid_attachment_count"
    title = "Too many attached files"


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"
    title = "No such attached document"


class LoginFailed(NotAuthenticated):
    """Challenge unknown/used/expired, or the certificate/signature did not verify (``reason``
    in the problem names which: a stable verification reason)."""

    code = "portal_login_failed"
    title = "Login failed"


class SessionExpired(NotAuthenticated):
    code = "portal_session_expired"
    title = "Session ended"


class NotAProxy(Forbidden):
    code = "portal_not_a_proxy"
    title = "Not a registered proxy of this person"


class NoticeNotFound(NotFound):
    code = "notice_not_found"
    title = "No such notice"


class RecordNotFound(NotFound):
    code = "access_record_not_found"
    title = "No such record in your history"


class UnknownScope(InvalidInput):
    code = "unknown_scope"
    title = "Unknown information item"


class NoticeAlreadyAnswered(Conflict):
    code = "notice_already_answered"
    title = "The notice is already answered"


class ProxyNotFound(NotFound):
    code = "proxy_not_found"
    title = "No such proxy registration"


class GrantNotFound(NotFound):
    code = "grant_not_found"
    title = "No such grant"


class ClientNotFound(NotFound):
    code = "client_not_found"
    title = "No such API client"


class InvalidClient(InvalidInput):
    """Registration input refused (e.g. a redirect URI that breaks the rules)."""

    code = "invalid_client_registration"
    title = "Client registration refused"


class ClientStateConflict(Conflict):
    code = "client_state_conflict"
    title = "Not allowed in the client's current state"


class RateLimited(DomainError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"


class CardReaderUnavailable(Forbidden):
    code = "card_reader_unavailable"
    title = "The virtual card reader exists only in the embedded mode"

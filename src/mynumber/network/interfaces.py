"""What the network core offers agencies, the portal, the web layer and the CLI: value types,
the service protocols and the network's errors. Other contexts import this module only.

Vocabulary (docs/glossary.md): 機関別符号 -> ``agency_code``; 処理通番 -> ``serial``;
情報提供等記録 -> ``access_record``; 副本 -> ``copy``; 宛名番号 -> ``address_number``;
事務 -> ``task``; 特定個人情報の項目 -> ``item``; 別表第二 -> the legal table.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from mynumber.codes import number_scan
from mynumber.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound

# Re-exported: other contexts catch the 503 an exchange raises from here.
from mynumber.kernel.retry import InfrastructureUnavailable as InfrastructureUnavailable


class AgencyStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class AgencyRecord:
    """One concrete agency (機関): a ministry, 日本年金機構, a municipality's mayor, a health
    insurer... ``number`` is the stable 32-bit number the agency code cipher binds to."""

    agency_id: str  # e.g. "mhlw", "municipality-131041"
    number: int
    name: str
    kind: str  # an agency kind of the legal table, e.g. "municipal_mayor"
    status: AgencyStatus
    municipality_code: str | None = None
    signing_key: bytes | None = None  # raw Ed25519 public key (32 bytes)
    encryption_key: bytes | None = None  # raw X25519 public key (32 bytes)
    endpoint: str | None = None  # the intermediate server's URL in production; None: in-process


@dataclass(frozen=True)
class InformationItem:
    """特定個人情報: a kind of information a provider may give (e.g. 地方税関係情報)."""

    code: str  # e.g. "local_tax"
    label: str  # the statute's wording


@dataclass(frozen=True)
class Task:
    """事務: a task an agency performs under one item (項) of the table."""

    task_id: str  # e.g. "bekkyo2-1"
    item_no: str  # 項, e.g. "1", "56-2"
    title: str


@dataclass(frozen=True)
class Provision:
    """One row of the legal table, with its agency groups resolved to agency kinds."""

    provision_id: str  # e.g. "bekkyo2-1-2" (item 1, its 2nd row)
    task_id: str
    requester_kinds: frozenset[str]
    provider_kinds: frozenset[str]
    items: tuple[str, ...]  # information item codes
    legal_reference: str  # e.g. "番号法別表第二 第1項"
    source: str
    requester_text: str
    provider_text: str
    information_text: str
    # Restricted provisions (e.g. criminal investigation): logged like any other, shown to
    # the resident only after the configured deferral.
    restricted: bool = False


@dataclass(frozen=True)
class NumberUse:
    """One use of 番号法 別表第一 (data/number_use.csv): agencies of ``kind`` may use the
    個人番号 for ``task_id``. Only an agency with a use obtains a 機関別符号."""

    kind: str
    task_id: str  # a task of the legal table ("bekkyo2-1", "extra-..."), "juki-..." or an
    #               item of 別表第一 itself ("bekkyo1-38")
    title: str
    basis: str  # the legal basis, e.g. "番号法第9条第1項・別表第一（…）"
    derived_from: str  # bekkyo2_requester | delegated | additional_provision |
    #                    resident_register | bekkyo1_item


class LegalTable(Protocol):
    """The table of permitted exchanges: data in the repository, reviewed like code."""

    def provisions(self) -> Sequence[Provision]: ...

    def tasks(self) -> Sequence[Task]: ...

    def items(self) -> Sequence[InformationItem]: ...

    def agency_kinds(self) -> dict[str, str]:
        """kind code -> Japanese label."""
        ...

    def find(
        self, requester_kind: str, task_id: str, provider_kind: str, item_code: str
    ) -> Provision | None:
        """The provision that permits this exchange, or None when the table does not."""
        ...


class Outcome(StrEnum):
    PROVIDED = "provided"  # the provider answered with data
    NOT_HELD = "not_held"  # permitted, but the provider holds no such copy for the person
    REFUSED = "refused"  # the core refused the query (see RefusalReason)
    DECLINED = "declined"  # the resident gave no number: no exchange, documents instead


class RefusalReason(StrEnum):
    NOT_IN_LEGAL_TABLE = "not_in_legal_table"
    UNKNOWN_AGENCY = "unknown_agency"
    UNKNOWN_TASK = "unknown_task"
    UNKNOWN_ITEM = "unknown_item"
    UNKNOWN_AGENCY_CODE = "unknown_agency_code"
    REQUESTER_SUSPENDED = "requester_suspended"
    PROVIDER_SUSPENDED = "provider_suspended"
    BAD_SIGNATURE = "bad_signature"
    STALE_REQUEST = "stale_request"
    REPLAYED = "replayed_request"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    # The provider's 副本 carries a 個人番号: its intermediate server refused to provide it.
    INDIVIDUAL_NUMBER_IN_COPY = "individual_number_in_copy"
    # The requester or the provider has no use of the number (番号法 別表第一, number_use.csv).
    NO_NUMBER_USE = "no_number_use"
    # Only for requests refused before the requester is authenticated (rejection counter).
    MALFORMED_REQUEST = "malformed_request"


#: Refusals decided before the requester is authenticated. They are never recorded as
#: exchanges nor written to the public log (anyone could fill it, or a resident's やりとり履歴,
#: with them); they only count in the bounded rejection counter (``NetworkService.rejections``).
UNAUTHENTICATED_REFUSALS = frozenset({
    RefusalReason.UNKNOWN_AGENCY, RefusalReason.BAD_SIGNATURE, RefusalReason.STALE_REQUEST,
    RefusalReason.REPLAYED, RefusalReason.MALFORMED_REQUEST,
})


class Operation(StrEnum):
    """The signed network operations the rejection counter counts refusals of (a fixed set:
    the counter's key space is Operation x reason x hour)."""

    EXCHANGE = "exchange"
    AGENCY_CODE = "agency_code"
    DECLINED_APPLICATION = "declined_application"
    ACCESS_RECORDS = "access_records"


@dataclass(frozen=True)
class RejectionCount:
    """How many requests of one operation were refused for one reason, before authentication,
    in the hour starting at ``hour``."""

    operation: Operation
    reason: RefusalReason
    hour: dt.datetime
    count: int


class InfrastructureFailure(StrEnum):
    """Why an operation could not be carried out for want of infrastructure. Such a failure is
    no refusal: nothing is recorded against anybody, no log entry is written; the caller gets
    ``InfrastructureUnavailable`` (HTTP 503 ``infrastructure_unavailable`` with Retry-After) and
    the operators' counter (``NetworkService.infrastructure_failures``) one more in the hour's
    (operation, reason) bucket."""

    CORE_DATABASE = "core_database"  # the core's own database, after retries
    REQUESTER_DATABASE = "requester_database"  # the requesting agency's (in-process) database
    PROVIDER_DATABASE = "provider_database"  # the provider's intermediate server's database
    PROVIDER_UNREACHABLE = "provider_unreachable"  # no connection to its endpoint
    PROVIDER_TLS = "provider_tls"  # TLS failed: certificates, client certificate missing...
    PROVIDER_TIMEOUT = "provider_timeout"  # no answer in time
    PROVIDER_FAILED = "provider_failed"  # HTTP 5xx, a malformed answer or an unexpected error
    PROVIDER_REJECTED = "provider_rejected"  # it refused the core's routed query (4xx)


@dataclass(frozen=True)
class InfrastructureFailureCount:
    """How many operations failed for one infrastructure reason in the hour from ``hour``."""

    operation: Operation
    reason: InfrastructureFailure
    hour: dt.datetime
    count: int


# The one 個人番号 scan lives with the number's rules (codes); the network and the portal
# refuse to carry what it finds (番号法 第19条).
contains_individual_number = number_scan.contains_individual_number
text_contains_individual_number = number_scan.text_contains_individual_number


def canonical_json(value: Any) -> bytes:
    """The one byte form every signature and log leaf is computed over."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def signed_request_bytes(kind: str, fields: dict[str, Any]) -> bytes:
    """What an agency signs for a non-exchange call (network or portal API): the request's
    fields (without the signature), ``requested_at`` in UTC ISO form, and a type tag naming
    the operation."""
    body = {k: v for k, v in fields.items() if k != "signature"}
    if isinstance(body.get("requested_at"), dt.datetime):
        body["requested_at"] = body["requested_at"].astimezone(dt.UTC).isoformat()
    body["type"] = f"mynumber.{kind}.v1"
    return canonical_json(body)


def mayor_lookup(agencies: Sequence[AgencyRecord]) -> Callable[[str], str | None]:
    """The mayor agency holding a municipality's 住民票関係情報, by 団体コード: a ward (行政区) of
    a designated city is no agency, its city's mayor is."""
    by_code = {a.municipality_code: a.agency_id for a in agencies
               if a.municipality_code and a.kind.endswith("_mayor")}
    by_prefix = {a.municipality_code[:4]: a.agency_id for a in agencies
                 if a.municipality_code and a.kind == "designated_city_mayor"}

    def mayor(code: str) -> str | None:
        return by_code.get(code) or by_prefix.get(code[:4])

    return mayor


@dataclass(frozen=True)
class ExchangeQuery:
    """A requester's query: who asks, for which task, of whom, which item, about whom (by the
    requester's own agency code). Signed with the requester's Ed25519 key."""

    requester_id: str
    task_id: str
    provider_id: str
    item_code: str
    subject_code: str
    requested_at: dt.datetime
    nonce: str
    signature: bytes = b""

    def signed_fields(self) -> dict[str, str]:
        return {
            "type": "mynumber.exchange-query.v1",
            "requester": self.requester_id,
            "task": self.task_id,
            "provider": self.provider_id,
            "item": self.item_code,
            "subject": self.subject_code,
            "requested_at": self.requested_at.astimezone(dt.UTC).isoformat(),
            "nonce": self.nonce,
        }

    def signed_bytes(self) -> bytes:
        return canonical_json(self.signed_fields())


@dataclass(frozen=True)
class RoutedQuery:
    """What the core sends the provider's intermediate server, signed by the core: the
    provider's own code for the person, and the key to seal the answer for the requester."""

    serial: str  # 処理通番
    requester_id: str
    task_id: str
    provider_id: str
    item_code: str
    subject_code: str  # the provider's agency code
    requester_encryption_key: bytes
    routed_at: dt.datetime
    signature: bytes = b""

    def signed_fields(self) -> dict[str, str]:
        return {
            "type": "mynumber.routed-query.v1",
            "serial": self.serial,
            "requester": self.requester_id,
            "task": self.task_id,
            "provider": self.provider_id,
            "item": self.item_code,
            "subject": self.subject_code,
            "requester_key": self.requester_encryption_key.hex(),
            "routed_at": self.routed_at.astimezone(dt.UTC).isoformat(),
        }

    def signed_bytes(self) -> bytes:
        return canonical_json(self.signed_fields())


@dataclass(frozen=True)
class SealedAnswer:
    """The provider's answer: ``sealed`` is an envelope (``mynumber.envelope``) signed by the
    provider and encrypted for the requester; the core routes it without reading it."""

    serial: str
    held: bool
    sealed: bytes | None


@dataclass(frozen=True)
class ExchangeResult:
    serial: str  # 処理通番, assigned by the core
    outcome: Outcome
    reason: RefusalReason | None = None
    sealed: bytes | None = None
    provision_id: str | None = None


#: The most subjects one batch exchange may carry (``NetworkService.exchange_batch``).
MAX_BATCH = 10_000
#: A batch query's nonce: each recipient's exchange row carries ``<nonce>#<i>`` under the
#: (requester, nonce) unique index, so the nonce is shorter than a single query's.
MAX_BATCH_NONCE = 40


@dataclass(frozen=True)
class BatchExchangeQuery:
    """One signed query about many persons (a payout run's recipients): the same requester,
    task, provider and item for every subject (each by the requester's own agency code).
    Verified once; each subject becomes its own exchange, recorded and logged as one."""

    requester_id: str
    task_id: str
    provider_id: str
    item_code: str
    subject_codes: tuple[str, ...]
    requested_at: dt.datetime
    nonce: str
    signature: bytes = b""

    def signed_fields(self) -> dict[str, Any]:
        return {
            "type": "mynumber.exchange-batch.v1",
            "requester": self.requester_id,
            "task": self.task_id,
            "provider": self.provider_id,
            "item": self.item_code,
            "subjects": list(self.subject_codes),
            "requested_at": self.requested_at.astimezone(dt.UTC).isoformat(),
            "nonce": self.nonce,
        }

    def signed_bytes(self) -> bytes:
        return canonical_json(self.signed_fields())


@dataclass(frozen=True)
class RoutedBatch:
    """What the core sends a provider for a batch, signed once by the core: per recipient
    the exchange's 処理通番 and the provider's own code for the person."""

    batch_id: str
    requester_id: str
    task_id: str
    provider_id: str
    item_code: str
    entries: tuple[tuple[str, str], ...]  # (serial, the provider's agency code)
    requester_encryption_key: bytes
    routed_at: dt.datetime
    signature: bytes = b""

    def signed_fields(self) -> dict[str, Any]:
        return {
            "type": "mynumber.routed-batch.v1",
            "batch": self.batch_id,
            "requester": self.requester_id,
            "task": self.task_id,
            "provider": self.provider_id,
            "item": self.item_code,
            "entries": [list(entry) for entry in self.entries],
            "requester_key": self.requester_encryption_key.hex(),
            "routed_at": self.routed_at.astimezone(dt.UTC).isoformat(),
        }

    def signed_bytes(self) -> bytes:
        return canonical_json(self.signed_fields())


@dataclass(frozen=True)
class SealedBatchAnswer:
    """The provider's answer to a routed batch: the serials it holds data for, and one
    envelope (signed by the provider, encrypted for the requester, ``info_for(batch_id)``)
    whose body is ``{"batch", "provider", "item", "answers": {serial: {"data", "as_of",
    "version"}}}``, or None when it holds nothing."""

    batch_id: str
    held: frozenset[str]
    sealed: bytes | None


@dataclass(frozen=True)
class BatchExchangeResult:
    """Per subject, in the query's order, the core's result (``sealed`` None on each when the
    provider answered as a batch: then ``sealed`` here is its one envelope, bound to
    ``batch_id``). ``reason``: a refusal of the whole batch (then each result carries it)."""

    batch_id: str
    results: tuple[ExchangeResult, ...]
    sealed: bytes | None = None
    reason: RefusalReason | None = None


@dataclass(frozen=True)
class AccessRecord:
    """情報提供等記録 as a resident sees it."""

    serial: str
    occurred_at: dt.datetime
    requester_id: str
    requester_name: str
    task_id: str
    task_title: str
    provider_id: str
    provider_name: str
    item_code: str
    item_label: str
    outcome: Outcome
    reason: RefusalReason | None
    restricted: bool
    disclosed_at: dt.datetime | None  # when a restricted record became visible
    log_index: int | None  # None until the log has integrated the entry
    # False when the record does not match its entry in the signed log (or has none): the
    # portal shows it as 検証できません, never its fields as fact. ``mynumber log verify``
    # fails on such a record, naming its serial.
    verified: bool = True


@dataclass(frozen=True)
class RecordMismatch:
    """One exchange record the log does not vouch for (``NetworkService.verify_records``)."""

    serial: str
    problem: str  # "missing_from_log" | "no_exchange_record" | "differs" | "unreadable_entry"
    fields: tuple[str, ...] = ()  # for "differs": the fields that disagree


@dataclass(frozen=True)
class RecordsReport:
    """Exchange records against log entries, both ways."""

    ok: bool
    exchanges_checked: int
    entries_checked: int
    mismatches: list[RecordMismatch] = field(default_factory=list)
    # Entries written before this check existed (v1) commit to the person in a way only the
    # portal can check; for them "subject" is compared as present/absent only.
    v1_entries: int = 0


@dataclass(frozen=True)
class SignedTreeHead:
    size: int
    root_hash: bytes
    timestamp: dt.datetime
    checkpoint: str  # C2SP tlog-checkpoint signed note (text)


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    path: tuple[bytes, ...]  # RFC 6962 section 2.1.1 audit path, leaf side first


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    path: tuple[bytes, ...]  # RFC 6962 section 2.1.2


@dataclass(frozen=True)
class LogEntry:
    index: int
    serial: str
    entry: bytes  # canonical JSON of the public record
    leaf_hash: bytes  # SHA-256(0x00 || entry)


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    tree_size: int
    heads_checked: int
    first_bad_index: int | None = None
    problems: list[str] = field(default_factory=list)


class AccessLog(Protocol):
    """The append-only access-record log: a Merkle tree per RFC 6962 with signed tree heads.

    Writers enqueue inside their own transaction (an entry is durable when the exchange is);
    the sequencer integrates queued entries in batches and signs a new tree head."""

    key_name: str
    """The tlog-checkpoint key name its tree heads are signed under (readers such as the
    portal check a checkpoint's signature with it and :attr:`public_key`)."""
    public_key: bytes
    """The raw Ed25519 public key that signs the tree heads."""

    def enqueue(self, session: Session | Connection, serial: str, entry: bytes) -> None: ...

    def enqueue_hot(self, hot: Any, raw: Any, serial: str, entry: bytes) -> None:
        """The same on a hot-path driver connection (``mynumber.db.HotConnections``)."""
        ...

    def enqueue_hot_many(self, hot: Any, raw: Any, entries: Sequence[tuple[str, bytes]]
                         ) -> None:
        """Many (serial, entry) at once on a hot-path connection, in the caller's
        transaction (a batch exchange)."""
        ...

    def integrate(self, max_batch: int = 10_000) -> int:
        """Sequence queued entries into the tree; returns how many were integrated."""
        ...

    def latest_head(self) -> SignedTreeHead: ...

    def index_of(self, serial: str) -> int | None: ...

    def logged(self, serials: Sequence[str]) -> dict[str, tuple[int | None, bytes]]:
        """For each of ``serials`` that the log holds: (its index, or None while it is only
        queued, and its entry bytes). Serials the log does not hold are absent."""
        ...

    def entries(self, start: int, end: int) -> list[LogEntry]:
        """Entries with start <= index < end (at most 1,000)."""
        ...

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof: ...

    def consistency_proof(self, first: int, second: int) -> ConsistencyProof: ...

    def verify(self) -> VerifyReport:
        """Recompute the tree from the stored records and check every signed head."""
        ...


class IntermediateServer(Protocol):
    """An agency's 中間サーバー as the core sees it (in-process or over mutual TLS)."""

    def answer(self, query: RoutedQuery) -> SealedAnswer: ...


class BatchIntermediateServer(Protocol):
    """An intermediate server that also answers a routed batch at once (optional: the core
    falls back to one routed query per recipient for a server without ``answer_batch``)."""

    def answer_batch(self, batch: RoutedBatch) -> SealedBatchAnswer: ...


class NetworkService(Protocol):
    def legal_table(self) -> LegalTable: ...

    def agency(self, agency_id: str) -> AgencyRecord: ...

    def agencies(self, kind: str | None = None) -> list[AgencyRecord]: ...

    def core_public_key(self) -> bytes:
        """The raw Ed25519 key intermediate servers check routed queries against."""
        ...

    def register_agency_keys(
        self, agency_id: str, signing_key: bytes, encryption_key: bytes
    ) -> AgencyRecord: ...

    def set_agency_status(
        self, actor: str, agency_id: str, status: AgencyStatus, reason: str
    ) -> AgencyRecord: ...

    def set_agency_endpoint(self, agency_id: str, endpoint: str | None) -> AgencyRecord: ...

    def number_uses(self, kind: str | None = None) -> Sequence[NumberUse]:
        """番号法 別表第一 as data: every use, or a kind's (empty: the kind has no use)."""
        ...

    def issue_agency_code(self, agency_id: str, acquisition_number: str) -> str:
        """Redeem a one-time 取得番号 from the registry for this agency's code for the person.
        ``NoNumberUse`` (403) when the agency's kind has no use in 別表第一 (the 取得番号 is
        not spent)."""
        ...

    def issue_agency_codes(
        self, agency_id: str, acquisition_numbers: Sequence[str]
    ) -> list[str]:
        """Many at once, in order; all or none (one bad 取得番号 refuses the batch;
        ``NoNumberUse`` refuses it before any is spent)."""
        ...

    def verify_records(self) -> RecordsReport:
        """Compare every exchange record with its log entry (queued or integrated) and every
        log entry with its exchange record, in every field the resident sees."""
        ...

    def exchange(self, query: ExchangeQuery) -> ExchangeResult:
        """Route one query. Once the requester is authenticated (known agency, signature,
        clock), the exchange is recorded and logged, permitted or refused. A query refused
        before that (``UNAUTHENTICATED_REFUSALS``) is only counted (``rejections``) and its
        result carries no serial (``""``): nothing was recorded.

        Raises ``InfrastructureUnavailable`` (503, ``reason`` an ``InfrastructureFailure``)
        when the core's database or the provider's intermediate server failed: no refusal,
        nothing recorded or logged, no answer released, counted in
        ``infrastructure_failures``. The caller may send the query again (with a new nonce)."""
        ...

    def exchange_batch(self, query: BatchExchangeQuery) -> BatchExchangeResult:
        """Route one signed batch (1 to ``MAX_BATCH`` subjects): verified once, the legal
        table checked once, then for every subject its code opened and one exchange row and
        one log entry written, all in one transaction before any answer is released, exactly
        as ``exchange`` records one (refusals included: each subject's refusal is recorded).
        Unauthenticated: nothing recorded, only counted. A replayed nonce: one refusal
        recorded, linked to nobody. ``InfrastructureUnavailable`` as for ``exchange``."""
        ...

    def record_declined(
        self,
        agency_id: str,
        task_id: str,
        application_ref: str,
        documents: Sequence[str],
        *,
        nonce: str | None = None,
    ) -> ExchangeResult:
        """A resident applied without giving the number: no linkage, no exchange; the
        attached documents are recorded instead. Never a reason to refuse the benefit.
        ``nonce`` (a signed request's) is accepted once per agency: RequestReplayed after."""
        ...

    def count_rejection(self, operation: Operation, reason: RefusalReason) -> None:
        """Count one request refused before its sender was authenticated (atomic upsert of
        the (operation, reason, hour) bucket; old buckets are pruned)."""
        ...

    def rejections(self, since: dt.datetime | None = None) -> list[RejectionCount]:
        """The rejection counter for monitoring: every bucket from ``since`` on."""
        ...

    def count_infrastructure_failure(
        self, operation: Operation, reason: InfrastructureFailure
    ) -> None:
        """Count one operation that failed for want of infrastructure (not a refusal). Never
        raises: while the core's database is down the count is kept in memory and written
        with the next one that can be."""
        ...

    def infrastructure_failures(
        self, since: dt.datetime | None = None
    ) -> list[InfrastructureFailureCount]:
        """The operators' infrastructure-failure counter: every bucket from ``since`` on
        (counts still held in memory included)."""
        ...

    def access_records(
        self, agency_id: str, subject_code: str, *, now: dt.datetime | None = None
    ) -> list[AccessRecord]:
        """Every exchange about the person ``subject_code`` names (in ``agency_id``'s codes),
        restricted ones only once their deferral has ended. Only the portal may ask."""
        ...

    def portal_code(self, agency_id: str, subject_code: str) -> tuple[str, str]:
        """For delivering an お知らせ: the portal agency's id and its 機関別符号 for the person
        an active agency names by its own code (NotPermitted for an unknown code). Each call
        is audited; the two codes are never stored side by side."""
        ...

    def portal_codes(self, agency_id: str, subject_codes: Sequence[str]
                     ) -> tuple[str, list[str | None]]:
        """``portal_code`` for many codes of one agency at once (None for a code that is not
        the agency's), with one audit record."""
        ...


class NetworkError(InvalidInput):
    code = "network_error"


class UnknownAgency(NotFound):
    code = "unknown_agency"
    title = "Unknown agency"


class UnknownTask(NotFound):
    code = "unknown_task"
    title = "Unknown task"


class AcquisitionNumberRejected(Forbidden):
    code = "acquisition_number_rejected"
    title = "Acquisition number not accepted"


class AgencySuspended(Forbidden):
    code = "agency_suspended"
    title = "Agency suspended"


class NotPermitted(Forbidden):
    code = "not_permitted"
    title = "Not permitted"


class NoNumberUse(Forbidden):
    """The agency's kind has no use of the 個人番号 in 番号法 別表第一 (number_use.csv)."""

    code = "no_number_use"
    title = "The agency has no use of the individual number (番号法 別表第一)"


class BadSignature(Forbidden):
    code = "bad_signature"
    title = "Signature does not verify"


class RequestReplayed(Conflict):
    """A signed request whose (agency, nonce) was already accepted."""

    code = "replayed_request"
    title = "This signed request was already received"


class IndividualNumberInCopy(InvalidInput):
    """A 副本 that carries a 個人番号: the intermediate server neither stores nor provides it."""

    code = "individual_number_in_copy"
    title = "A copy must not contain an individual number"


class IndividualNumberInAnswer(DomainError):
    """An answer (a provider's sealed data, or what the portal would show or release) that
    carries a 個人番号: refused, and the number never reaches the caller."""

    code = "individual_number_in_answer"
    status = 502
    title = "The answer contained an individual number and was withheld"


class LogIndexOutOfRange(NotFound):
    code = "log_index_out_of_range"
    title = "No such log entry or tree size"

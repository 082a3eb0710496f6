"""The network core: agency directory, 機関別符号 issuance, routing of exchanges under the legal
table, and the access records every exchange leaves.

The hot path (``exchange``) reads nothing from the database: agencies are cached, the legal
table is in memory, codes are checked by deciphering them. It writes one row and one log
queue entry in a single transaction, after the provider answered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mynumber import audit
from mynumber.db import Databases, HotConnections, HotSQL, utcnow
from mynumber.envelope import raw_public
from mynumber.errors import DomainError
from mynumber.kernel.retry import (
    RETRY_AFTER_SECONDS,
    InfrastructureUnavailable,
    database_unavailable,
    retrying,
)
from mynumber.kernel.retry import unit_of_work as retried_unit_of_work
from mynumber.keys import BlockCipher
from mynumber.network import models as m
from mynumber.network.agency_codes import make_code, make_codes, open_code, open_codes
from mynumber.network.interfaces import (
    MAX_BATCH,
    MAX_BATCH_NONCE,
    AccessLog,
    AccessRecord,
    AgencyRecord,
    AgencyStatus,
    BatchExchangeQuery,
    BatchExchangeResult,
    ExchangeQuery,
    ExchangeResult,
    IndividualNumberInCopy,
    InfrastructureFailure,
    InfrastructureFailureCount,
    IntermediateServer,
    LegalTable,
    NetworkError,
    NetworkService,
    NoNumberUse,
    NotPermitted,
    NumberUse,
    Operation,
    Outcome,
    Provision,
    RecordMismatch,
    RecordsReport,
    RefusalReason,
    RejectionCount,
    RequestReplayed,
    RoutedBatch,
    RoutedQuery,
    SealedAnswer,
    SealedBatchAnswer,
    UnknownAgency,
    UnknownTask,
    canonical_json,
)
from mynumber.network.log import hot_insert_many
from mynumber.network.number_use import NumberUseTable, load_number_use
from mynumber.registry.interfaces import RegistryService

CONTEXT = "network"
log = logging.getLogger(__name__)

# A signed query older (or newer) than this is refused: it bounds replays with a fresh nonce.
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
# How long a process trusts its cached copy of the directory (status, keys, endpoints).
DIRECTORY_TTL_SECONDS = 5.0
PORTAL_KIND = "portal"
# The rejection counter keeps hourly buckets this long, pruned at most this often per process.
REJECTION_RETENTION = dt.timedelta(days=90)
REJECTION_PRUNE_SECONDS = 3600.0
# Infrastructure-failure counts that could not be written (the core's database was down) wait
# in memory for the next write; past this many buckets the oldest are dropped (and logged).
MAX_PENDING_FAILURE_BUCKETS = 1_000
# Retry-After for a provider that failed (a restart takes seconds) and for a deployment fault
# that needs an operator (the provider refusing the core's routed queries).
PROVIDER_RETRY_AFTER_SECONDS = 5
# The access-record log entry's format: 1 until issue 12, 2 since (see _record_exchange).
ENTRY_VERSION = 2
# Exchange records compared with their log entries per query in ``verify_records``.
RECORDS_BATCH = 2_000
CONFIGURATION_RETRY_AFTER_SECONDS = 60


_EXCHANGE_RECORDED = HotSQL("SELECT 1 FROM exchanges WHERE serial = :serial")
_INSERT_EXCHANGE = HotSQL(
    "INSERT INTO exchanges (serial, occurred_at, requester_id, task_id, provider_id, item_code, "
    "provision_id, outcome, reason, restricted, disclose_after, subject_key, nonce, "
    "application_ref, documents) VALUES (:serial, :occurred_at, :requester_id, :task_id, "
    ":provider_id, :item_code, :provision_id, :outcome, :reason, :restricted, :disclose_after, "
    ":subject_key, :nonce, :application_ref, :documents)")


_EXCHANGE_COLUMNS: tuple[tuple[str, type], ...] = (
    ("serial", str), ("occurred_at", dt.datetime), ("requester_id", str), ("task_id", str),
    ("provider_id", str), ("item_code", str), ("provision_id", str), ("outcome", str),
    ("reason", str), ("restricted", bool), ("disclose_after", dt.datetime),
    ("subject_key", bytes), ("nonce", str), ("application_ref", str), ("documents", str))


def new_serial(now: dt.datetime) -> str:
    """処理通番: 13 digits of milliseconds since the epoch, then 19 random hex digits.

    Time-ordered for readers, unique without a database round trip (76 random bits)."""
    return f"{int(now.timestamp() * 1000):013d}{secrets.token_hex(10)[:19]}"


class _Replayed(Exception):
    """The exchange's (requester, nonce) is already recorded."""


def _is_unique_violation(exc: Exception) -> bool:
    """A duplicate key from either driver (the replay guard is a unique index)."""
    import sqlite3

    if isinstance(exc, sqlite3.IntegrityError):
        return True
    return getattr(exc, "sqlstate", None) == "23505"


def _clip(value: str, length: int = 64) -> str:
    return value[:length]


_FAILURE_CODES = frozenset(f.value for f in InfrastructureFailure)


def _provider_failure(exc: BaseException) -> InfrastructureFailure:
    """What kind of infrastructure failure an exception of an intermediate server is. A
    transport names it (``infrastructure`` in the error's extra); an in-process server's
    database error is its database; a 4xx refusal of the core's routed query is a deployment
    fault (the core's key, the clock, the routing), never the resident's refusal."""
    if isinstance(exc, DomainError):
        named = exc.extra.get("infrastructure")
        if isinstance(named, str) and named in _FAILURE_CODES:
            return InfrastructureFailure(named)
        if isinstance(exc, InfrastructureUnavailable):
            return InfrastructureFailure.PROVIDER_DATABASE
        if 400 <= exc.status < 500:
            return InfrastructureFailure.PROVIDER_REJECTED
        return InfrastructureFailure.PROVIDER_FAILED
    if database_unavailable(exc):
        return InfrastructureFailure.PROVIDER_DATABASE
    return InfrastructureFailure.PROVIDER_FAILED


def _retry_after(failure: InfrastructureFailure) -> int:
    if failure is InfrastructureFailure.PROVIDER_REJECTED:
        return CONFIGURATION_RETRY_AFTER_SECONDS
    if failure in (InfrastructureFailure.CORE_DATABASE,
                   InfrastructureFailure.REQUESTER_DATABASE):
        return RETRY_AFTER_SECONDS
    return PROVIDER_RETRY_AFTER_SECONDS


class NetworkServiceImpl:
    def __init__(
        self,
        databases: Databases,
        registry: RegistryService,
        table: LegalTable,
        cipher: BlockCipher,
        core_key: ed25519.Ed25519PrivateKey,
        subject_secret: bytes,
        access_log: AccessLog,
        servers: Callable[[AgencyRecord], IntermediateServer],
        *,
        restricted_disclosure_days: int = 365,
        clock: Callable[[], dt.datetime] = utcnow,
        number_use: NumberUseTable | None = None,
    ) -> None:
        # The clock is replaceable so the seeder can lay down a history in the past.
        self.clock = clock
        self.databases = databases
        self.registry = registry
        self.table = table
        # 番号法 別表第一: only agencies of a kind with a use hold 機関別符号.
        self.number_use = number_use if number_use is not None else load_number_use()
        self.cipher = cipher
        self.core_key = core_key
        self._core_public = raw_public(core_key.public_key())
        self.subject_secret = subject_secret
        self.log = access_log
        self.servers = servers
        self.restricted_deferral = dt.timedelta(days=restricted_disclosure_days)
        self._tasks = {t.task_id: t for t in table.tasks()}
        self._items = {i.code: i for i in table.items()}
        self._hot = HotConnections(databases, CONTEXT)
        self._directory: dict[str, AgencyRecord] = {}
        self._directory_loaded = 0.0
        self._directory_version: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        self._rejections_pruned: float | None = None
        self._failures_pruned: float | None = None
        self._failures_pending: dict[tuple[str, str, dt.datetime], int] = {}
        self._failures_lock = threading.Lock()

    # -- directory ---------------------------------------------------------------------------
    @staticmethod
    def _record(row: m.Agency) -> AgencyRecord:
        return AgencyRecord(
            agency_id=row.agency_id, number=row.number, name=row.name, kind=row.kind,
            status=AgencyStatus(row.status), municipality_code=row.municipality_code,
            signing_key=row.signing_key, encryption_key=row.encryption_key,
            endpoint=row.endpoint,
        )

    def _load_directory(self) -> dict[str, AgencyRecord]:
        now = time.monotonic()
        if self._directory and now - self._directory_loaded < DIRECTORY_TTL_SECONDS:
            return self._directory
        with self._lock:
            def load(session: Any) -> None:
                # Every change touches updated_at: reload the 3,763 rows only when it moved.
                version = tuple(session.execute(
                    select(func.count(), func.max(m.Agency.updated_at))
                ).one())
                if version != self._directory_version or not self._directory:
                    rows = session.scalars(select(m.Agency))
                    self._directory = {row.agency_id: self._record(row) for row in rows}
                    self._directory_version = version

            # A read: repeated after a lost connection (a restarted database), whenever it broke.
            retried_unit_of_work(self.databases, CONTEXT, load, read_only=True,
                                 what="network directory")
            self._directory_loaded = time.monotonic()
            return self._directory

    def _invalidate(self) -> None:
        self._directory_loaded = 0.0
        self._directory_version = None

    def sync_directory(self, specs: Sequence[Any]) -> int:
        """Add the agencies of ``specs`` (legal_table.AgencySpec) that are missing."""
        with self.databases.unit_of_work(CONTEXT) as session:
            known = set(session.scalars(select(m.Agency.agency_id)))
            rows = [
                {"agency_id": s.agency_id, "number": s.number, "name": s.name, "kind": s.kind,
                 "municipality_code": s.municipality_code, "status": AgencyStatus.ACTIVE.value,
                 "updated_at": utcnow()}
                for s in specs if s.agency_id not in known
            ]
            if rows:
                session.execute(insert(m.Agency), rows)
                audit.record(session, m.AuditEvent, "network:directory:sync", actor="system",
                             subject="agencies", added=len(rows))
        self._invalidate()
        return len(rows)

    def legal_table(self) -> LegalTable:
        return self.table

    def agency(self, agency_id: str) -> AgencyRecord:
        found = self._load_directory().get(agency_id)
        if found is None:
            raise UnknownAgency("no agency with this id", field="agency_id")
        return found

    def agencies(self, kind: str | None = None) -> list[AgencyRecord]:
        return sorted(
            (a for a in self._load_directory().values() if kind is None or a.kind == kind),
            key=lambda a: a.agency_id,
        )

    def core_public_key(self) -> bytes:
        return self._core_public

    def _update_agency(self, agency_id: str, tag: str, actor: str, reason: str | None,
                       **values: Any) -> AgencyRecord:
        with self.databases.unit_of_work(CONTEXT) as session:
            row = session.get(m.Agency, agency_id)
            if row is None:
                raise UnknownAgency("no agency with this id", field="agency_id")
            for key, value in values.items():
                setattr(row, key, value)
            audit.record(session, m.AuditEvent, tag, actor=actor, subject=f"agency:{agency_id}",
                         reason=reason, **{k: (v.hex() if isinstance(v, bytes) else v)
                                           for k, v in values.items()})
            session.flush()
            record = self._record(row)
        with self._lock:
            if self._directory:
                # This process knows the change: patch its copy of the directory instead of
                # reloading all 3,763 rows (other processes see updated_at move and reload).
                self._directory = {**self._directory, agency_id: record}
            else:
                self._invalidate()
        return record

    def register_agency_keys(
        self, agency_id: str, signing_key: bytes, encryption_key: bytes
    ) -> AgencyRecord:
        if len(signing_key) != 32 or len(encryption_key) != 32:
            raise NetworkError("keys must be raw 32-byte Ed25519 and X25519 public keys",
                               field="keys")
        return self._update_agency(agency_id, "network:agency:keys", f"agency:{agency_id}",
                                   None, signing_key=signing_key, encryption_key=encryption_key)

    def set_agency_status(
        self, actor: str, agency_id: str, status: AgencyStatus, reason: str
    ) -> AgencyRecord:
        if not reason.strip():
            raise NetworkError("a reason is required", field="reason")
        return self._update_agency(agency_id, "network:agency:status", actor, reason[:200],
                                   status=AgencyStatus(status).value)

    def set_agency_endpoint(self, agency_id: str, endpoint: str | None) -> AgencyRecord:
        if endpoint is not None and not endpoint.startswith(("https://", "http://")):
            raise NetworkError("the endpoint must be an http(s) URL", field="endpoint")
        return self._update_agency(agency_id, "network:agency:endpoint", "operator", None,
                                   endpoint=endpoint)

    # -- 機関別符号 ----------------------------------------------------------------------------
    def number_uses(self, kind: str | None = None) -> Sequence[NumberUse]:
        return self.number_use.uses(kind)

    def _require_use(self, agency: AgencyRecord, what: str) -> None:
        """Refuse (and audit) a code for an agency whose kind has no 別表第一 use."""
        if self.number_use.permits(agency.kind):
            return
        with self.databases.unit_of_work(CONTEXT) as session:
            audit.record(session, m.AuditEvent, "network:agency_code:refused",
                         actor=f"agency:{agency.agency_id}",
                         subject=f"agency:{agency.agency_id}",
                         reason=RefusalReason.NO_NUMBER_USE.value, kind=agency.kind, what=what)
        log.warning("agency code refused: %s (kind %s) has no number use (別表第一)",
                    agency.agency_id, agency.kind)
        raise NoNumberUse(
            f"agency {agency.agency_id} ({agency.kind}) has no use of the individual number "
            "in 番号法 別表第一 (number_use.csv), so it obtains no agency code",
            field="agency_id")

    def issue_agency_code(self, agency_id: str, acquisition_number: str) -> str:
        agency = self.agency(agency_id)
        if agency.status is not AgencyStatus.ACTIVE:
            raise NotPermitted("the agency is suspended", field="agency_id")
        # Before the 取得番号 is redeemed: a refused agency does not spend it.
        self._require_use(agency, "issue")
        # The registry checks the 取得番号 belongs to this agency and marks it used.
        resident_code = self.registry.redeem_acquisition_number(agency_id, acquisition_number)
        code = make_code(self.cipher, agency.number, resident_code)
        with self.databases.unit_of_work(CONTEXT) as session:
            audit.record(session, m.AuditEvent, "network:agency_code:issue",
                         actor=f"agency:{agency_id}", subject=f"agency:{agency_id}")
        return code

    def issue_agency_codes(
        self, agency_id: str, acquisition_numbers: Sequence[str]
    ) -> list[str]:
        agency = self.agency(agency_id)
        if agency.status is not AgencyStatus.ACTIVE:
            raise NotPermitted("the agency is suspended", field="agency_id")
        self._require_use(agency, "issue_bulk")
        residents = self.registry.redeem_acquisition_numbers(agency_id, acquisition_numbers)
        codes = make_codes(self.cipher, [(agency.number, code) for code in residents])
        with self.databases.unit_of_work(CONTEXT) as session:
            audit.record(session, m.AuditEvent, "network:agency_code:issue",
                         actor=f"agency:{agency_id}", subject=f"agency:{agency_id}",
                         count=len(codes))
        return codes

    # -- subject keys ------------------------------------------------------------------------
    def _subject_key(self, resident_code: str) -> bytes:
        return hmac.new(self.subject_secret, b"subject\n" + resident_code.encode(),
                        hashlib.sha256).digest()[:16]

    def _commitment(self, resident_code: str, serial: str) -> str:
        """Log entries v1: commits to the person by 住民票コード (only the portal, which knows
        the person, can check it)."""
        message = b"commitment\n" + resident_code.encode() + b"\n" + serial.encode()
        return hmac.new(self.subject_secret, message, hashlib.sha256).hexdigest()[:32]

    def _key_commitment(self, subject_key: bytes, serial: str) -> str:
        """Log entries v2: commits to the person through the record's subject key, so that
        ``verify_records`` can check it against the exchange row as well as the portal
        against the person. Keyed and per serial: log readers still cannot link records."""
        message = b"commitment-v2\n" + subject_key + b"\n" + serial.encode()
        return hmac.new(self.subject_secret, message, hashlib.sha256).hexdigest()[:32]

    # -- the exchange --------------------------------------------------------------------------
    def exchange(self, query: ExchangeQuery) -> ExchangeResult:
        try:
            return self._exchange(query)
        except InfrastructureUnavailable:
            raise
        except Exception as exc:
            # The core's own database, after the retries: the directory, the rejection counter
            # or the record. No refusal, nothing recorded: the caller may ask again.
            if not database_unavailable(exc):
                raise
            raise self._infrastructure(Operation.EXCHANGE, InfrastructureFailure.CORE_DATABASE,
                                       exc, query=query) from None

    def _infrastructure(
        self, operation: Operation, failure: InfrastructureFailure, exc: BaseException | None,
        *, query: ExchangeQuery | BatchExchangeQuery | None = None,
        serial: str | None = None, discarded: bool = False,
    ) -> InfrastructureUnavailable:
        """Log an infrastructure failure for operators (agencies, task, item, 処理通番, the
        error's type: never a code or a number), count it, and make the caller's 503."""
        what = (f"{query.requester_id} -> {query.provider_id} ({query.task_id}, "
                f"{query.item_code})" if query is not None else operation.value)
        log.warning(
            "infrastructure failure %s: %s %s%s not carried out (%s)%s; not a refusal, "
            "nothing recorded", failure.value, operation.value, what,
            f" serial {serial}" if serial else "", type(exc).__name__ if exc else "-",
            "; the provider's answer was discarded" if discarded else "")
        self.count_infrastructure_failure(operation, failure)
        return InfrastructureUnavailable(
            f"the {operation.value} could not be carried out ({failure.value}); nothing was "
            "recorded; send it again later", reason=failure.value,
            retry_after=_retry_after(failure))

    def _exchange(self, query: ExchangeQuery) -> ExchangeResult:
        now = self.clock()
        serial = new_serial(now)
        directory = self._load_directory()
        requester = directory.get(query.requester_id)
        provider = directory.get(query.provider_id)
        provision: Provision | None = None
        reason: RefusalReason | None = None
        answer_sealed: bytes | None = None
        outcome = Outcome.REFUSED

        # Authentication first. Until it succeeds the query is anyone's: it is only counted,
        # never recorded or logged (the public log and a resident's やりとり履歴 hold only what
        # an authenticated agency did), and its subject code is not even opened.
        if requester is None:
            unauthenticated: RefusalReason | None = RefusalReason.UNKNOWN_AGENCY
        elif not self._signature_ok(requester, query):
            unauthenticated = RefusalReason.BAD_SIGNATURE
        elif (query.requested_at.tzinfo is None
              or abs(now - query.requested_at) > MAX_CLOCK_SKEW):
            # A signature that old proves nothing about now (the nonce guard relies on it).
            unauthenticated = RefusalReason.STALE_REQUEST
        else:
            unauthenticated = None
        if requester is None or unauthenticated is not None:
            refused = unauthenticated or RefusalReason.UNKNOWN_AGENCY
            self.count_rejection(Operation.EXCHANGE, refused)
            return ExchangeResult(serial="", outcome=Outcome.REFUSED, reason=refused)

        resident_code = open_code(self.cipher, requester.number, query.subject_code)
        reason = self._standing_refusal(requester, provider, query.task_id, query.item_code)
        if reason is None and resident_code is None:
            reason = RefusalReason.UNKNOWN_AGENCY_CODE
        elif reason is None and provider is not None:
            provision, reason = self._provision(requester, provider, query.task_id,
                                                query.item_code)
        if reason is None and provider is not None and resident_code:
            routed = self._routed(serial, query, provider, requester, resident_code, now)
            try:
                server = self.servers(provider)
            except Exception as exc:  # e.g. the core's TLS client files cannot be loaded
                failure = (InfrastructureFailure.PROVIDER_TLS if isinstance(exc, OSError)
                           else InfrastructureFailure.PROVIDER_FAILED)
                raise self._infrastructure(Operation.EXCHANGE, failure, exc, query=query,
                                           serial=serial) from None
            try:
                answer = server.answer(routed)
            except IndividualNumberInCopy:
                # The provider's server would not hand out a 副本 carrying a 個人番号.
                log.warning("intermediate server of %s withheld a copy carrying an individual "
                            "number for %s", provider.agency_id, serial)
                reason = RefusalReason.INDIVIDUAL_NUMBER_IN_COPY
            except Exception as exc:
                # Unreachable, TLS, timeout, its database, a 5xx...: infrastructure, never the
                # resident's refusal. Nothing moved, so nothing is recorded.
                raise self._infrastructure(Operation.EXCHANGE, _provider_failure(exc), exc,
                                           query=query, serial=serial) from None
            else:
                if answer.serial != serial:
                    raise self._infrastructure(Operation.EXCHANGE,
                                               InfrastructureFailure.PROVIDER_FAILED, None,
                                               query=query, serial=serial)
                outcome = Outcome.PROVIDED if answer.held else Outcome.NOT_HELD
                answer_sealed = answer.sealed if answer.held else None
        if reason is not None:
            outcome = Outcome.REFUSED
            answer_sealed = None
        try:
            self._record_exchange(
                serial=serial, now=now, requester_id=query.requester_id, task_id=query.task_id,
                provider_id=query.provider_id, item_code=query.item_code, provision=provision,
                outcome=outcome, reason=reason, resident_code=resident_code,
                nonce=_clip(query.nonce),  # the signature binds the nonce to the requester
            )
        except _Replayed:
            # The same signed query seen twice: refuse the replay and record it, but linked to
            # no person: a copy of a signed query proves nothing about who sent it now, so it
            # must not add a line to the resident's やりとり履歴.
            outcome, reason, answer_sealed = Outcome.REFUSED, RefusalReason.REPLAYED, None
            self._record_exchange(
                serial=serial, now=now, requester_id=query.requester_id, task_id=query.task_id,
                provider_id=query.provider_id, item_code=query.item_code, provision=provision,
                outcome=outcome, reason=reason, resident_code=None, nonce=None,
            )
        except Exception as exc:
            # Not recorded (after the retries), so not released: an answer leaves the core
            # only once its record and log entry are committed.
            if not database_unavailable(exc):
                raise
            raise self._infrastructure(Operation.EXCHANGE, InfrastructureFailure.CORE_DATABASE,
                                       exc, query=query, serial=serial,
                                       discarded=answer_sealed is not None) from None
        if self._failures_pending:
            self._flush_failures()
        return ExchangeResult(
            serial=serial, outcome=outcome, reason=reason, sealed=answer_sealed,
            provision_id=provision.provision_id if provision else None,
        )

    # -- the batch exchange (a payout run's look-ups) ---------------------------------------
    def exchange_batch(self, query: BatchExchangeQuery) -> BatchExchangeResult:
        try:
            return self._exchange_batch(query)
        except InfrastructureUnavailable:
            raise
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            raise self._infrastructure(Operation.EXCHANGE, InfrastructureFailure.CORE_DATABASE,
                                       exc, query=query) from None

    def _exchange_batch(self, query: BatchExchangeQuery) -> BatchExchangeResult:
        count = len(query.subject_codes)
        if not 0 < count <= MAX_BATCH:
            raise NetworkError(f"a batch carries 1 to {MAX_BATCH:,} subjects",
                               field="subject_codes")
        if not 0 < len(query.nonce) <= MAX_BATCH_NONCE:
            raise NetworkError(f"nonce: 1 to {MAX_BATCH_NONCE} characters", field="nonce")
        now = self.clock()
        batch_id = new_serial(now)
        directory = self._load_directory()
        requester = directory.get(query.requester_id)
        provider = directory.get(query.provider_id)
        # Authentication once for the batch, as for one query: until it succeeds nothing is
        # recorded or logged and no subject code is opened.
        if requester is None:
            unauthenticated: RefusalReason | None = RefusalReason.UNKNOWN_AGENCY
        elif not self._signature_ok(requester, query):
            unauthenticated = RefusalReason.BAD_SIGNATURE
        elif (query.requested_at.tzinfo is None
              or abs(now - query.requested_at) > MAX_CLOCK_SKEW):
            unauthenticated = RefusalReason.STALE_REQUEST
        else:
            unauthenticated = None
        if requester is None or unauthenticated is not None:
            refused = unauthenticated or RefusalReason.UNKNOWN_AGENCY
            self.count_rejection(Operation.EXCHANGE, refused)
            return BatchExchangeResult(
                batch_id="", reason=refused,
                results=tuple(ExchangeResult(serial="", outcome=Outcome.REFUSED,
                                             reason=refused) for _ in range(count)))

        serials = [new_serial(now) for _ in range(count)]
        resident_codes = open_codes(self.cipher, requester.number, query.subject_codes)
        provision: Provision | None = None
        # The whole batch's refusal; the legal table once: every subject has the same
        # requester, task, provider and item.
        reason = self._standing_refusal(requester, provider, query.task_id, query.item_code)
        if reason is None and provider is not None:
            provision, reason = self._provision(requester, provider, query.task_id,
                                                query.item_code)
        reasons: list[RefusalReason | None] = [
            reason if reason is not None
            else (RefusalReason.UNKNOWN_AGENCY_CODE if code is None else None)
            for code in resident_codes]
        outcomes = [Outcome.REFUSED] * count
        sealed_batch: bytes | None = None
        sealed_each: list[bytes | None] = [None] * count
        routed_at = [i for i in range(count) if reasons[i] is None]
        if routed_at and provider is not None:
            sealed_batch = self._route_batch(query, batch_id, now, requester, provider,
                                             serials, resident_codes, routed_at, reasons,
                                             outcomes, sealed_each)
        for i in range(count):
            if reasons[i] is not None:
                outcomes[i] = Outcome.REFUSED
                sealed_each[i] = None
        if all(r is not None for r in reasons):
            sealed_batch = None
        try:
            self._record_batch(serials=serials, now=now, query=query, provision=provision,
                               outcomes=outcomes, reasons=reasons,
                               resident_codes=resident_codes)
        except _Replayed:
            # The same signed batch seen twice: one refusal recorded, linked to no person
            # (a copy of a signed query proves nothing about who sends it now).
            serial = serials[0]
            self._record_exchange(
                serial=serial, now=now, requester_id=query.requester_id, task_id=query.task_id,
                provider_id=query.provider_id, item_code=query.item_code, provision=provision,
                outcome=Outcome.REFUSED, reason=RefusalReason.REPLAYED, resident_code=None,
                nonce=None)
            return BatchExchangeResult(
                batch_id=batch_id, reason=RefusalReason.REPLAYED,
                results=tuple(ExchangeResult(serial=serial, outcome=Outcome.REFUSED,
                                             reason=RefusalReason.REPLAYED)
                              for _ in range(count)))
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            raise self._infrastructure(Operation.EXCHANGE, InfrastructureFailure.CORE_DATABASE,
                                       exc, query=query, serial=serials[0],
                                       discarded=sealed_batch is not None) from None
        if self._failures_pending:
            self._flush_failures()
        provision_id = provision.provision_id if provision else None
        return BatchExchangeResult(
            batch_id=batch_id, sealed=sealed_batch, reason=reason,
            results=tuple(ExchangeResult(serial=serials[i], outcome=outcomes[i],
                                         reason=reasons[i], sealed=sealed_each[i],
                                         provision_id=provision_id)
                          for i in range(count)))

    def _route_batch(
        self, query: BatchExchangeQuery, batch_id: str, now: dt.datetime,
        requester: AgencyRecord, provider: AgencyRecord, serials: list[str],
        resident_codes: list[str | None], routed_at: list[int],
        reasons: list[RefusalReason | None], outcomes: list[Outcome],
        sealed_each: list[bytes | None],
    ) -> bytes | None:
        """Ask the provider about the subjects at ``routed_at``: one routed batch signed once
        (a server with ``answer_batch``), else one routed query per subject. Fills
        ``outcomes`` / ``reasons`` / ``sealed_each`` (one routed query per subject); returns
        the batch's one envelope (or None). Infrastructure failures raise: nothing
        is recorded for any subject."""
        assert requester.encryption_key is not None
        codes = make_codes(self.cipher, [(provider.number, resident_codes[i] or "")
                                         for i in routed_at])
        try:
            server = self.servers(provider)
        except Exception as exc:
            failure = (InfrastructureFailure.PROVIDER_TLS if isinstance(exc, OSError)
                       else InfrastructureFailure.PROVIDER_FAILED)
            raise self._infrastructure(Operation.EXCHANGE, failure, exc, query=query,
                                       serial=batch_id) from None
        answer_batch = getattr(server, "answer_batch", None)
        if answer_batch is None:
            for i, code in zip(routed_at, codes, strict=True):
                unsigned = RoutedQuery(
                    serial=serials[i], requester_id=requester.agency_id,
                    task_id=query.task_id, provider_id=provider.agency_id,
                    item_code=query.item_code, subject_code=code,
                    requester_encryption_key=requester.encryption_key, routed_at=now)
                routed = RoutedQuery(**{**unsigned.__dict__,
                                        "signature": self.core_key.sign(
                                            unsigned.signed_bytes())})
                try:
                    one: SealedAnswer = server.answer(routed)
                except IndividualNumberInCopy:
                    reasons[i] = RefusalReason.INDIVIDUAL_NUMBER_IN_COPY
                    continue
                except Exception as exc:
                    raise self._infrastructure(Operation.EXCHANGE, _provider_failure(exc), exc,
                                               query=query, serial=serials[i]) from None
                if one.serial != serials[i]:
                    raise self._infrastructure(Operation.EXCHANGE,
                                               InfrastructureFailure.PROVIDER_FAILED, None,
                                               query=query, serial=serials[i])
                outcomes[i] = Outcome.PROVIDED if one.held else Outcome.NOT_HELD
                sealed_each[i] = one.sealed if one.held else None
            return None
        unsigned_batch = RoutedBatch(
            batch_id=batch_id, requester_id=requester.agency_id, task_id=query.task_id,
            provider_id=provider.agency_id, item_code=query.item_code,
            entries=tuple((serials[i], code) for i, code in zip(routed_at, codes, strict=True)),
            requester_encryption_key=requester.encryption_key, routed_at=now)
        batch = RoutedBatch(**{**unsigned_batch.__dict__,
                               "signature": self.core_key.sign(unsigned_batch.signed_bytes())})
        try:
            answer: SealedBatchAnswer = answer_batch(batch)
        except IndividualNumberInCopy:
            log.warning("intermediate server of %s withheld a batch carrying an individual "
                        "number for %s", provider.agency_id, batch_id)
            for i in routed_at:
                reasons[i] = RefusalReason.INDIVIDUAL_NUMBER_IN_COPY
            return None
        except Exception as exc:
            raise self._infrastructure(Operation.EXCHANGE, _provider_failure(exc), exc,
                                       query=query, serial=batch_id) from None
        routed_serials = {serials[i] for i in routed_at}
        if answer.batch_id != batch_id or not answer.held <= routed_serials or (
                answer.held and answer.sealed is None):
            raise self._infrastructure(Operation.EXCHANGE,
                                       InfrastructureFailure.PROVIDER_FAILED, None,
                                       query=query, serial=batch_id)
        for i in routed_at:
            outcomes[i] = Outcome.PROVIDED if serials[i] in answer.held else Outcome.NOT_HELD
        return answer.sealed if answer.held else None

    def _record_batch(
        self, *, serials: list[str], now: dt.datetime, query: BatchExchangeQuery,
        provision: Provision | None, outcomes: list[Outcome],
        reasons: list[RefusalReason | None], resident_codes: list[str | None],
    ) -> None:
        """One exchange row and one log entry per subject, exactly as ``_record_exchange``
        writes them, in one transaction (two ``executemany``). Each row carries the batch's
        nonce with its position (``<nonce>#<i>``): a replayed batch hits the unique
        (requester, nonce) index on its first row and the whole transaction rolls back."""
        restricted = bool(provision and provision.restricted)
        disclose_after = now + self.restricted_deferral if restricted else None
        requester_id, task_id = _clip(query.requester_id), _clip(query.task_id)
        provider_id, item_code = _clip(query.provider_id), _clip(query.item_code)
        provision_id = provision.provision_id if provision else None
        legal_reference = provision.legal_reference if provision else None
        time_text = now.isoformat()
        disclose_text = disclose_after.isoformat() if disclose_after else None
        rows: list[dict[str, Any]] = []
        entries: list[tuple[str, bytes]] = []
        for i, serial in enumerate(serials):
            resident_code = resident_codes[i]
            subject_key = self._subject_key(resident_code) if resident_code else None
            reason = reasons[i]
            outcome = outcomes[i]
            entries.append((serial, canonical_json({
                "v": ENTRY_VERSION, "serial": serial, "time": time_text,
                "requester": requester_id, "task": task_id, "provider": provider_id,
                "item": item_code, "provision": provision_id,
                "legal_reference": legal_reference, "outcome": outcome.value,
                "reason": reason.value if reason else None, "restricted": restricted,
                "disclose_after": disclose_text,
                "subject": self._key_commitment(subject_key, serial) if subject_key else None,
            })))
            rows.append({
                "serial": serial, "occurred_at": now, "requester_id": requester_id,
                "task_id": task_id, "provider_id": provider_id, "item_code": item_code,
                "provision_id": provision_id, "outcome": outcome.value,
                "reason": reason.value if reason else None, "restricted": restricted,
                "disclose_after": disclose_after, "subject_key": subject_key,
                "nonce": f"{query.nonce}#{i}", "application_ref": None, "documents": None,
            })

        def attempt(number: int) -> None:
            if number and self._exchange_recorded(serials[0]):
                return  # the COMMIT that failed did land: every row is there
            with self._hot.connection() as raw:
                try:
                    hot_insert_many(self._hot, raw, "exchanges", _EXCHANGE_COLUMNS, rows)
                except Exception as exc:
                    if _is_unique_violation(exc):
                        raise _Replayed from exc
                    raise
                self.log.enqueue_hot_many(self._hot, raw, entries)

        retrying(attempt, what=f"batch exchange {serials[0]} (+{len(serials) - 1})")

    def _standing_refusal(self, requester: AgencyRecord, provider: AgencyRecord | None,
                          task_id: str, item_code: str) -> RefusalReason | None:
        """What refuses an authenticated query whoever it is about: either side suspended or
        unknown, no use of the number, an unknown task or item."""
        if requester.status is not AgencyStatus.ACTIVE:
            return RefusalReason.REQUESTER_SUSPENDED
        if provider is None:
            return RefusalReason.UNKNOWN_AGENCY
        if provider.status is not AgencyStatus.ACTIVE:
            return RefusalReason.PROVIDER_SUSPENDED
        if not (self.number_use.permits(requester.kind)
                and self.number_use.permits(provider.kind)):
            # 別表第一: the core makes no code for, and routes nothing to or from, an agency
            # without a use of the number (e.g. one whose use an amendment ended).
            return RefusalReason.NO_NUMBER_USE
        if task_id not in self._tasks:
            return RefusalReason.UNKNOWN_TASK
        if item_code not in self._items:
            return RefusalReason.UNKNOWN_ITEM
        return None

    def _provision(self, requester: AgencyRecord, provider: AgencyRecord, task_id: str,
                   item_code: str) -> tuple[Provision | None, RefusalReason | None]:
        """The legal table's row for the query, or the refusal: none, or one side has not
        joined the network (no keys registered: a standing state of the directory, decided
        before anything is routed and recorded as a refusal; only a failure of infrastructure
        that was there is not one)."""
        provision = self.table.find(requester.kind, task_id, provider.kind, item_code)
        if provision is None:
            return None, RefusalReason.NOT_IN_LEGAL_TABLE
        if provider.encryption_key is None or requester.encryption_key is None:
            return provision, RefusalReason.PROVIDER_UNAVAILABLE
        return provision, None

    @staticmethod
    def _signature_ok(requester: AgencyRecord,
                      query: ExchangeQuery | BatchExchangeQuery) -> bool:
        if requester.signing_key is None:
            return False
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(requester.signing_key).verify(
                query.signature, query.signed_bytes()
            )
        except (InvalidSignature, ValueError):
            return False
        return True

    def _routed(
        self, serial: str, query: ExchangeQuery, provider: AgencyRecord,
        requester: AgencyRecord, resident_code: str, now: dt.datetime,
    ) -> RoutedQuery:
        assert requester.encryption_key is not None
        unsigned = RoutedQuery(
            serial=serial, requester_id=requester.agency_id, task_id=query.task_id,
            provider_id=provider.agency_id, item_code=query.item_code,
            subject_code=make_code(self.cipher, provider.number, resident_code),
            requester_encryption_key=requester.encryption_key, routed_at=now,
        )
        return RoutedQuery(**{**unsigned.__dict__,
                              "signature": self.core_key.sign(unsigned.signed_bytes())})

    def _record_exchange(
        self, *, serial: str, now: dt.datetime, requester_id: str, task_id: str,
        provider_id: str | None, item_code: str | None, provision: Provision | None,
        outcome: Outcome, reason: RefusalReason | None, resident_code: str | None,
        nonce: str | None, application_ref: str | None = None,
        documents: Sequence[str] | None = None,
    ) -> None:
        restricted = bool(provision and provision.restricted)
        disclose_after = now + self.restricted_deferral if restricted else None
        subject_key = self._subject_key(resident_code) if resident_code else None
        # v2 (this change): "subject" commits through the subject key (``_key_commitment``);
        # every other field as in v1. Entries already in the log stay v1 and stay valid.
        entry: dict[str, Any] = {
            "v": ENTRY_VERSION,
            "serial": serial,
            "time": now.isoformat(),
            "requester": _clip(requester_id),
            "task": _clip(task_id),
            "provider": _clip(provider_id) if provider_id else None,
            "item": _clip(item_code) if item_code else None,
            "provision": provision.provision_id if provision else None,
            "legal_reference": provision.legal_reference if provision else None,
            "outcome": outcome.value,
            "reason": reason.value if reason else None,
            "restricted": restricted,
            "disclose_after": disclose_after.isoformat() if disclose_after else None,
            "subject": self._key_commitment(subject_key, serial) if subject_key else None,
        }
        if documents is not None:
            entry["application"] = application_ref
            entry["documents"] = list(documents)
        params = {
            "serial": serial, "occurred_at": now, "requester_id": _clip(requester_id),
            "task_id": _clip(task_id), "provider_id": _clip(provider_id) if provider_id else None,
            "item_code": _clip(item_code) if item_code else None,
            "provision_id": provision.provision_id if provision else None,
            "outcome": outcome.value, "reason": reason.value if reason else None,
            "restricted": restricted, "disclose_after": disclose_after,
            "subject_key": subject_key,
            "nonce": nonce, "application_ref": application_ref,
            "documents": json.dumps(list(documents), ensure_ascii=False)
            if documents is not None else None,
        }
        logged = canonical_json(entry)

        def attempt(number: int) -> None:
            # A repeat after a lost connection first looks for the record: if the COMMIT that
            # failed did land, the 処理通番 (unique) is there and the exchange is recorded.
            if number and self._exchange_recorded(serial):
                return
            # Hot path: one short transaction straight on the driver.
            with self._hot.connection() as raw:
                try:
                    self._hot.run(raw, _INSERT_EXCHANGE, params)
                except Exception as exc:
                    if _is_unique_violation(exc):
                        raise _Replayed from exc
                    raise
                # In the same transaction: the record is durable exactly when the exchange is.
                self.log.enqueue_hot(self._hot, raw, serial, logged)

        # A lost connection makes HotConnections invalidate the whole pool: the repeat gets a
        # fresh connection.
        retrying(attempt, what=f"exchange {serial}")

    def _exchange_recorded(self, serial: str) -> bool:
        with self._hot.connection() as raw:
            return bool(self._hot.run(raw, _EXCHANGE_RECORDED, {"serial": serial}))

    # -- the resident's refusal ------------------------------------------------------------------
    def record_declined(
        self, agency_id: str, task_id: str, application_ref: str, documents: Sequence[str],
        *, nonce: str | None = None,
    ) -> ExchangeResult:
        self.agency(agency_id)
        if task_id not in self._tasks:
            raise UnknownTask("no task with this id", field="task_id")
        if not application_ref.strip() or len(application_ref) > 64:
            raise NetworkError("application_ref: 1 to 64 characters", field="application_ref")
        cleaned = [d.strip()[:100] for d in documents if d.strip()]
        if not cleaned:
            raise NetworkError(
                "documents: name at least one attached document (the application proceeds "
                "on documents when no number is given)", field="documents")
        if nonce is not None and not 0 < len(nonce) <= 64:
            raise NetworkError("nonce: 1 to 64 characters", field="nonce")
        now = self.clock()
        serial = new_serial(now)
        try:
            # The nonce goes into the row under the (requester, nonce) unique index that
            # guards exchanges: of any number of concurrent copies of one signed request the
            # database lets exactly one insert through, with its log entry.
            self._record_exchange(
                serial=serial, now=now, requester_id=agency_id, task_id=task_id,
                provider_id=None, item_code=None, provision=None, outcome=Outcome.DECLINED,
                reason=None, resident_code=None, nonce=nonce,
                application_ref=application_ref.strip(), documents=cleaned,
            )
        except _Replayed:
            self.count_rejection(Operation.DECLINED_APPLICATION, RefusalReason.REPLAYED)
            raise RequestReplayed("this signed request was already received",
                                  field="nonce") from None
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            raise self._infrastructure(Operation.DECLINED_APPLICATION,
                                       InfrastructureFailure.CORE_DATABASE, exc,
                                       serial=serial) from None
        return ExchangeResult(serial=serial, outcome=Outcome.DECLINED)

    # -- the rejection counter -------------------------------------------------------------------
    def count_rejection(self, operation: Operation, reason: RefusalReason) -> None:
        operation, reason = Operation(operation), RefusalReason(reason)  # the fixed key space
        now = self.clock()
        hour = now.replace(minute=0, second=0, microsecond=0)
        table = cast(Table, m.Rejection.__table__)
        insert_ = pg_insert if self.databases.is_postgres else sqlite_insert
        statement = insert_(table).values(
            operation=operation.value, reason=reason.value, hour=hour, count=1)
        # One atomic statement: concurrent refusals in any process all count.
        statement = statement.on_conflict_do_update(
            index_elements=["operation", "reason", "hour"],
            set_={"count": table.c.count + 1})
        prune = (self._rejections_pruned is None
                 or time.monotonic() - self._rejections_pruned > REJECTION_PRUNE_SECONDS)

        def count(session: Any) -> None:
            session.execute(statement)
            if prune:
                session.execute(delete(m.Rejection).where(
                    m.Rejection.hour < hour - REJECTION_RETENTION))

        # Repeated only when the connection broke before COMMIT (a count is not idempotent).
        retried_unit_of_work(self.databases, CONTEXT, count, what="rejection counter")
        if prune:
            self._rejections_pruned = time.monotonic()

    def rejections(self, since: dt.datetime | None = None) -> list[RejectionCount]:
        query = select(m.Rejection).order_by(m.Rejection.hour, m.Rejection.operation,
                                              m.Rejection.reason)
        if since is not None:
            query = query.where(m.Rejection.hour >= since.replace(minute=0, second=0,
                                                                  microsecond=0))
        return retried_unit_of_work(
            self.databases, CONTEXT, lambda session: [
                RejectionCount(Operation(r.operation), RefusalReason(r.reason), r.hour,
                               int(r.count)) for r in session.scalars(query)],
            read_only=True, what="rejection counter")

    # -- the infrastructure-failure counter ----------------------------------------------------
    def count_infrastructure_failure(
        self, operation: Operation, reason: InfrastructureFailure
    ) -> None:
        operation, reason = Operation(operation), InfrastructureFailure(reason)
        hour = self.clock().replace(minute=0, second=0, microsecond=0)
        with self._failures_lock:
            key = (operation.value, reason.value, hour)
            self._failures_pending[key] = self._failures_pending.get(key, 0) + 1
            if len(self._failures_pending) > MAX_PENDING_FAILURE_BUCKETS:
                oldest = min(self._failures_pending, key=lambda k: k[2])
                lost = self._failures_pending.pop(oldest)
                log.error("infrastructure failure counter: %d counts of %s dropped (the "
                          "database has been unavailable too long)", lost, oldest[1])
        if reason is InfrastructureFailure.CORE_DATABASE:
            return  # written with the next count or record that reaches the database
        self._flush_failures()

    def _flush_failures(self) -> None:
        """Write the counts held in memory (one atomic upsert per bucket); on failure keep
        them for the next time. Never raises: counting must not fail an operation."""
        with self._failures_lock:
            pending, self._failures_pending = self._failures_pending, {}
        if not pending:
            return
        table = cast(Table, m.InfrastructureFailureBucket.__table__)
        insert_ = pg_insert if self.databases.is_postgres else sqlite_insert
        prune = (self._failures_pruned is None
                 or time.monotonic() - self._failures_pruned > REJECTION_PRUNE_SECONDS)
        newest = max(key[2] for key in pending)

        def write(session: Any) -> None:
            for (operation, reason, hour), number in sorted(pending.items()):
                statement = insert_(table).values(operation=operation, reason=reason,
                                                  hour=hour, count=number)
                session.execute(statement.on_conflict_do_update(
                    index_elements=["operation", "reason", "hour"],
                    set_={"count": table.c.count + number}))
            if prune:
                session.execute(delete(m.InfrastructureFailureBucket).where(
                    m.InfrastructureFailureBucket.hour < newest - REJECTION_RETENTION))

        try:
            # Not repeated on a failed COMMIT: a count written twice would be wrong.
            retried_unit_of_work(self.databases, CONTEXT, write, delays=(),
                                 what="infrastructure failure counter")
        except Exception as exc:
            with self._failures_lock:
                for key, number in pending.items():
                    self._failures_pending[key] = self._failures_pending.get(key, 0) + number
            log.warning("infrastructure failure counter not written (%s); kept in memory",
                        type(exc).__name__)
            return
        if prune:
            self._failures_pruned = time.monotonic()

    def infrastructure_failures(
        self, since: dt.datetime | None = None
    ) -> list[InfrastructureFailureCount]:
        self._flush_failures()
        bucket = m.InfrastructureFailureBucket
        query = select(bucket)
        start = since.replace(minute=0, second=0, microsecond=0) if since else None
        if start is not None:
            query = query.where(bucket.hour >= start)
        totals: dict[tuple[str, str, dt.datetime], int] = {}
        try:
            rows = retried_unit_of_work(
                self.databases, CONTEXT,
                lambda session: [(r.operation, r.reason, r.hour, int(r.count))
                                 for r in session.scalars(query)],
                read_only=True, what="infrastructure failure counter")
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            rows = []  # what this process still holds is all there is to show
        for operation, reason, hour, number in rows:
            totals[(operation, reason, hour)] = number
        with self._failures_lock:
            for key, number in self._failures_pending.items():
                if start is None or key[2] >= start:
                    totals[key] = totals.get(key, 0) + number
        return [InfrastructureFailureCount(Operation(operation), InfrastructureFailure(reason),
                                           hour, number)
                for (operation, reason, hour), number in sorted(
                    totals.items(), key=lambda item: (item[0][2], item[0][0], item[0][1]))]

    # -- the resident's view -----------------------------------------------------------------------
    def portal_codes(self, agency_id: str, subject_codes: Sequence[str]
                     ) -> tuple[str, list[str | None]]:
        """Many at once (notices sent because of events): the portal agency and, per code,
        the portal's code for the same person (None for a code that is not this agency's).
        One audit record for the batch."""
        agency = self.agency(agency_id)
        if agency.status is not AgencyStatus.ACTIVE:
            raise NotPermitted("the agency is suspended", field="agency_id")
        self._require_use(agency, "portal_code")
        portals = [a for a in self._load_directory().values() if a.kind == PORTAL_KIND]
        if len(portals) != 1:
            raise NotPermitted("no portal agency is registered", field="agency_id")
        portal = portals[0]
        codes: list[str | None] = []
        for subject_code in subject_codes:
            resident_code = open_code(self.cipher, agency.number, subject_code)
            codes.append(None if resident_code is None
                         else make_code(self.cipher, portal.number, resident_code))
        with self.databases.unit_of_work(CONTEXT) as session:
            audit.record(session, m.AuditEvent, "network:notice:route",
                         actor=f"agency:{agency_id}", subject=f"agency:{portal.agency_id}",
                         count=len(codes))
        return portal.agency_id, codes

    def portal_code(self, agency_id: str, subject_code: str) -> tuple[str, str]:
        portal_agency, (code,) = self.portal_codes(agency_id, [subject_code])
        if code is None:
            raise NotPermitted("unknown agency code", field="subject_code")
        return portal_agency, code

    def access_records(
        self, agency_id: str, subject_code: str, *, now: dt.datetime | None = None
    ) -> list[AccessRecord]:
        agency = self.agency(agency_id)
        if agency.kind != PORTAL_KIND:
            raise NotPermitted("only the portal may list a resident's access records",
                               field="agency_id")
        resident_code = open_code(self.cipher, agency.number, subject_code)
        if resident_code is None:
            raise NotPermitted("unknown agency code", field="subject_code")
        now = now or self.clock()
        key = self._subject_key(resident_code)
        rows: list[m.Exchange] = retried_unit_of_work(
            self.databases, CONTEXT, lambda session: list(session.scalars(
                select(m.Exchange).where(m.Exchange.subject_key == key)
                .order_by(m.Exchange.occurred_at.desc(), m.Exchange.id.desc())
            )), read_only=True, what="access records")
        directory = self._load_directory()
        logged = self.log.logged([row.serial for row in rows])
        records = []
        for row in rows:
            # A record is vouched for when the signed log (or its queue, written in the same
            # transaction) holds an entry that describes it field for field and commits to
            # this person. Any other record (edited, or without an entry) is still listed, as
            # unverifiable: never hidden, never shown as true.
            index, entry = logged.get(row.serial, (None, b""))
            fields = _entry_fields(entry, row.serial)
            verified = fields is not None and not self._differences(
                fields, row, resident_code=resident_code, subject_key=key)
            if not verified:
                log.warning("exchange %s does not match its log entry; shown as unverifiable",
                            row.serial)
            # The deferral of a restricted record follows the log when it has a readable
            # entry: editing the row cannot hide a record nor reveal one early.
            restricted, disclose_after = row.restricted, row.disclose_after
            if fields is not None:
                restricted = fields.get("restricted") is True
                disclose_after = _parse_time(fields.get("disclose_after"))
            if restricted and disclose_after and disclose_after > now:
                continue  # deferred, never dropped: it appears once the deferral ends
            requester = directory.get(row.requester_id)
            provider = directory.get(row.provider_id or "")
            task = self._tasks.get(row.task_id)
            item = self._items.get(row.item_code or "")
            records.append(AccessRecord(
                serial=row.serial, occurred_at=row.occurred_at, requester_id=row.requester_id,
                requester_name=requester.name if requester else row.requester_id,
                task_id=row.task_id, task_title=task.title if task else row.task_id,
                provider_id=row.provider_id or "",
                provider_name=provider.name if provider else (row.provider_id or ""),
                item_code=row.item_code or "", item_label=item.label if item else "",
                outcome=_outcome(row.outcome),
                reason=_reason(row.reason),
                restricted=row.restricted,
                disclosed_at=row.disclose_after if row.restricted else None,
                log_index=index, verified=verified,
            ))
        return records

    def _differences(
        self, fields: dict[str, Any], row: Any, *, resident_code: str | None = None,
        subject_key: bytes | None = None,
    ) -> list[str]:
        """The resident-facing fields in which a log entry and an exchange row disagree.

        ``subject``: v2 entries commit through the subject key (the portal passes the key it
        derives from the person, ``verify_records`` the row's own); v1 entries through the
        住民票コード, which only the portal has: without it only present/absent is compared."""
        out = []

        def same(name: str, logged: Any, stored: Any) -> None:
            if logged != stored:
                out.append(name)

        same("requester", fields.get("requester"), row.requester_id)
        same("task", fields.get("task"), row.task_id)
        same("provider", fields.get("provider"), row.provider_id)
        same("item", fields.get("item"), row.item_code)
        same("provision", fields.get("provision"), row.provision_id)
        same("outcome", fields.get("outcome"), row.outcome)
        same("reason", fields.get("reason"), row.reason)
        same("restricted", fields.get("restricted"), bool(row.restricted))
        same("time", _parse_time(fields.get("time")), row.occurred_at)
        same("disclose_after", _parse_time(fields.get("disclose_after")), row.disclose_after)
        if "application" in fields or row.application_ref is not None:
            same("application", fields.get("application"), row.application_ref)
            try:
                documents = json.loads(row.documents) if row.documents is not None else None
            except ValueError:
                documents = "unreadable"
            same("documents", fields.get("documents"), documents)
        committed = fields.get("subject")
        key = subject_key if subject_key is not None else row.subject_key
        if fields.get("v") == 1:
            if resident_code is not None:
                expected: str | None = self._commitment(resident_code, row.serial)
            else:
                expected = committed if (committed is None) == (key is None) else "absent"
        else:
            expected = self._key_commitment(bytes(key), row.serial) if key else None
        if not (isinstance(committed, str) and isinstance(expected, str)
                and hmac.compare_digest(committed, expected)) and not (
                committed is None and expected is None):
            out.append("subject")
        return out

    # -- the log vouches for every record ----------------------------------------------------------
    def verify_records(self) -> RecordsReport:
        """Every exchange record against its log entry (queued or in the tree), and every log
        entry against its exchange record. Streaming, by 処理通番; memory is O(batch)."""
        from mynumber.network.log_models import LogLeaf, LogQueue

        mismatches: list[RecordMismatch] = []
        exchanges = entries = v1 = 0
        engine = self.databases.engine(CONTEXT)
        columns = [m.Exchange.serial, m.Exchange.occurred_at, m.Exchange.requester_id,
                   m.Exchange.task_id, m.Exchange.provider_id, m.Exchange.item_code,
                   m.Exchange.provision_id, m.Exchange.outcome, m.Exchange.reason,
                   m.Exchange.restricted, m.Exchange.disclose_after, m.Exchange.subject_key,
                   m.Exchange.application_ref, m.Exchange.documents]
        with engine.connect() as conn:
            last = ""
            while True:
                rows = conn.execute(select(*columns).where(m.Exchange.serial > last)
                                    .order_by(m.Exchange.serial).limit(RECORDS_BATCH)).all()
                if not rows:
                    break
                last = rows[-1].serial
                exchanges += len(rows)
                logged = self.log.logged([row.serial for row in rows])
                for row in rows:
                    found = logged.get(row.serial)
                    if found is None:
                        mismatches.append(RecordMismatch(row.serial, "missing_from_log"))
                        continue
                    fields = _entry_fields(found[1], row.serial)
                    if fields is None:
                        mismatches.append(RecordMismatch(row.serial, "unreadable_entry"))
                        continue
                    v1 += fields.get("v") == 1
                    differing = self._differences(fields, row)
                    if differing:
                        mismatches.append(RecordMismatch(row.serial, "differs",
                                                         tuple(differing)))
            # The other way: log entries (in the tree, then still queued) without a record.
            for table, order in ((LogLeaf, LogLeaf.idx), (LogQueue, LogQueue.id)):
                after = -1
                while True:
                    batch = conn.execute(select(order, table.serial).where(order > after)
                                         .order_by(order).limit(RECORDS_BATCH)).all()
                    if not batch:
                        break
                    after = int(batch[-1][0])
                    serials = [serial for _, serial in batch]
                    if table is LogQueue:
                        # Integrated meanwhile (or both at once): counted with the tree.
                        done = set(conn.execute(select(LogLeaf.serial).where(
                            LogLeaf.serial.in_(serials))).scalars())
                        serials = [serial for serial in serials if serial not in done]
                    entries += len(serials)
                    recorded = set(conn.execute(select(m.Exchange.serial).where(
                        m.Exchange.serial.in_(serials))).scalars()) if serials else set()
                    mismatches.extend(RecordMismatch(serial, "no_exchange_record")
                                      for serial in serials if serial not in recorded)
        mismatches.sort(key=lambda mm: mm.serial)
        return RecordsReport(not mismatches, exchanges, entries, mismatches, v1)


def _entry_fields(entry: bytes, serial: str) -> dict[str, Any] | None:
    """A log entry's fields, or None when it is unreadable or describes another serial."""
    try:
        fields = json.loads(entry) if entry else None
    except ValueError:
        return None
    if (not isinstance(fields, dict) or fields.get("serial") != serial
            or fields.get("v") not in (1, ENTRY_VERSION)):
        return None
    return fields


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _outcome(value: str) -> Outcome:
    try:
        return Outcome(value)
    except ValueError:  # an edited row: shown as unverifiable, with the refusal wording
        return Outcome.REFUSED


def _reason(value: str | None) -> RefusalReason | None:
    if not value:
        return None
    try:
        return RefusalReason(value)
    except ValueError:
        return None


_contract: type[NetworkService] = NetworkServiceImpl

"""デジタル庁's provision of 公金受取口座情報 through the information provision network.

An agency asks the core, by its own 機関別符号, for ``public_fund_account`` under a task the
legal table permits (data/additional_provisions.csv: emergency benefits, 児童手当, pensions).
The core checks the table, records and logs the exchange (the resident's やりとり履歴 shows it)
and routes the query here with デジタル庁's own code for the person. This module answers it from
the accounts context's registrations; the network never reads accounts tables, and this
module reads the agencies context only through its interface (the codes).

Rate limits and scanning (docs: accounts-network):
- Token buckets per requesting agency, **per process** (in memory, one lock): a bucket holds
  ``burst`` tokens and refills at ``rate`` per second. A process running the core enforces its
  own buckets, so k core processes allow k times the rate; the limit protects the provider
  from one runaway or abusive caller, it is not a quota. The lock makes a bucket exact under
  parallel requests in one process whatever the database.
- Batches (a payout run, ``answer_batch``): one token **per recipient**, from a second
  per-agency bucket for batch look-ups (``batch_rate`` per second, default 10,000, holding
  ``batch_burst``, default 20,000: two full batches). A batch larger than the tokens left is
  refused whole (``LookupRateLimited``: nothing read). The interactive bucket stays at 20/s;
  a payout, planned and signed as one batch, does not drain it, and a runaway caller is still
  bounded at the batch rate.
- A miss is a look-up for a person with no registered account (one per recipient of a batch
  too). More than ``miss_threshold``
  misses from one agency within ``miss_window`` are flagged once as scanning: an audit event
  ``accounts:lookup:scanning`` in the accounts database (``mynumber accounts scanning``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select

from mynumber import audit, envelope
from mynumber.accounts import models as m
from mynumber.accounts.interfaces import (
    DIGITAL_AGENCY,
    PUBLIC_FUND_ACCOUNT_ITEM,
    AccountProvision,
    AccountsService,
    AgencyCodes,
    LookupRateLimited,
    Registration,
    RoutedQueryNotAccepted,
    ScanningAlert,
)
from mynumber.agencies.interfaces import AgenciesService, PersonNotEnrolled
from mynumber.db import Databases, in_chunk, utcnow
from mynumber.network.interfaces import (
    RoutedBatch,
    RoutedQuery,
    SealedAnswer,
    SealedBatchAnswer,
    contains_individual_number,
    text_contains_individual_number,
)
from mynumber.registry.interfaces import RegistryService

log = logging.getLogger(__name__)

CONTEXT = m.CONTEXT
SCANNING_TAG = "accounts:lookup:scanning"
#: A routed query older than this is refused (the core signs it just before routing).
ROUTED_QUERY_MAX_AGE = dt.timedelta(minutes=5)
#: Defaults: 20 look-ups a second per agency with bursts of 200 (a payout run resolves its
#: list in batches); more than 50 misses in 10 minutes is flagged.
DEFAULT_RATE = 20.0
DEFAULT_BURST = 200
DEFAULT_MISS_THRESHOLD = 50
DEFAULT_MISS_WINDOW = dt.timedelta(minutes=10)
#: Batch look-ups (payout runs): tokens per second and bucket size, one token per recipient.
DEFAULT_BATCH_RATE = 10_000.0
DEFAULT_BATCH_BURST = 20_000


_REGISTRATIONS = ("SELECT resident_id, bank_code, branch_code, deposit_type, account_number, "
                  "holder_name, name_check, updated_at FROM registrations WHERE resident_id")


def _address_number(resident_id: int) -> str:
    # デジタル庁's own number for a registrant in its intermediate server (宛名番号).
    return f"pfa-{resident_id}"


class AgencyCodesThroughAgencies:
    """:class:`AgencyCodes` on the agencies context's interface: デジタル庁 is enrolled there like
    any agency, under address numbers derived from the registry's resident id."""

    def __init__(self, agencies: AgenciesService, registry: RegistryService,
                 agency_id: str = DIGITAL_AGENCY) -> None:
        self.agencies = agencies
        self.registry = registry
        self.agency_id = agency_id

    def resident_for_code(self, agency_code: str) -> int | None:
        try:
            address = self.agencies.address_number_for_code(self.agency_id, agency_code)
        except PersonNotEnrolled:
            return None
        prefix = "pfa-"
        if not address.startswith(prefix) or not address[len(prefix):].isdigit():
            return None
        return int(address[len(prefix):])

    def residents_for_codes(self, agency_codes: list[str]) -> dict[str, int]:
        """Many codes at once (a batch): code -> resident id, unknown codes left out."""
        prefix = "pfa-"
        out: dict[str, int] = {}
        for code, address in self.agencies.address_numbers_for_codes(
                self.agency_id, agency_codes).items():
            if address.startswith(prefix) and address[len(prefix):].isdigit():
                out[code] = int(address[len(prefix):])
        return out

    def enrol(self, resident_id: int, actor: str) -> str:
        address = _address_number(resident_id)
        # Idempotent: a person デジタル庁 knows already is looked up, not enrolled again (no
        # second 取得番号, no second code issue: an event delivered twice changes nothing).
        try:
            return self.agencies.agency_code(self.agency_id, address)
        except PersonNotEnrolled:
            pass
        grant = self.registry.issue_acquisition_number_for_resident(
            self.agency_id, resident_id, actor)
        enrolled = self.agencies.enrol_with_acquisition_number(
            self.agency_id, address, grant.acquisition_number)
        return self.agencies.agency_code(self.agency_id, enrolled)


class TokenBuckets:
    """One token bucket per key, in this process (see the module docstring)."""

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, count: int = 1) -> bool:
        # Concurrency: read-refill-take under one lock, so N parallel requests on a full
        # bucket of B tokens get exactly min(N, B) grants. ``count`` tokens at once or none.
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
            if tokens < float(count):
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - float(count), now)
            return True


@dataclass
class _Misses:
    times: deque[tuple[dt.datetime, int]]  # (when, how many misses then)
    total: int = 0
    flagged_until: dt.datetime | None = None


class AccountProvisionServer:
    """デジタル庁's intermediate server for ``public_fund_account`` (implements the network's
    ``IntermediateServer`` and :class:`AccountProvision`)."""

    def __init__(
        self,
        databases: Databases,
        accounts: AccountsService,
        codes: AgencyCodes,
        core_public_key: bytes,
        signer: Callable[[], ed25519.Ed25519PrivateKey],
        *,
        agency_id: str = DIGITAL_AGENCY,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        miss_threshold: int = DEFAULT_MISS_THRESHOLD,
        miss_window: dt.timedelta = DEFAULT_MISS_WINDOW,
        batch_rate: float = DEFAULT_BATCH_RATE,
        batch_burst: int = DEFAULT_BATCH_BURST,
        clock: Callable[[], dt.datetime] = utcnow,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.databases = databases
        self.accounts = accounts
        self.codes = codes
        self._core = ed25519.Ed25519PublicKey.from_public_bytes(core_public_key)
        self._signer = signer
        self.agency_id = agency_id
        self.clock = clock
        self.buckets = TokenBuckets(rate, burst, monotonic or time.monotonic)
        self.batch_buckets = TokenBuckets(batch_rate, batch_burst, monotonic or time.monotonic)
        self.miss_threshold = miss_threshold
        self.miss_window = miss_window
        self._misses: dict[str, _Misses] = {}
        self._misses_lock = threading.Lock()

    # -- the network's IntermediateServer ----------------------------------------------------
    def _accept(self, routed: RoutedQuery | RoutedBatch, what: str) -> dt.datetime:
        """Check a routed query or batch before anything is read: the core's signature, its
        freshness, and that it asks デジタル庁 for public_fund_account. Returns now."""
        try:
            self._core.verify(routed.signature, routed.signed_bytes())
        except (InvalidSignature, ValueError, TypeError, OverflowError):
            raise RoutedQueryNotAccepted("the core's signature does not verify",
                                         field="signature") from None
        now = self.clock()
        if routed.routed_at.tzinfo is None or abs(now - routed.routed_at) > ROUTED_QUERY_MAX_AGE:
            raise RoutedQueryNotAccepted(f"the routed {what} is stale", field="routed_at")
        if routed.provider_id != self.agency_id or routed.item_code != PUBLIC_FUND_ACCOUNT_ITEM:
            raise RoutedQueryNotAccepted("this server provides public_fund_account only",
                                         field="item_code")
        return now

    def answer(self, query: RoutedQuery) -> SealedAnswer:
        now = self._accept(query, "query")
        if not self.buckets.take(query.requester_id):
            # Nothing read, nothing disclosed. The core reports the refusal to the requester
            # as a 503 with Retry-After and records no exchange (nothing was looked up).
            log.warning("public_fund_account look-up rate limit reached for %s",
                        query.requester_id)
            raise LookupRateLimited("the look-up rate limit for this agency is reached; "
                                    "retry later", agency=query.requester_id)
        resident_id = self.codes.resident_for_code(query.subject_code)
        registration = (self.accounts.registration(resident_id)
                        if resident_id is not None else None)
        if registration is None:
            self._miss(query.requester_id, now)
            return SealedAnswer(serial=query.serial, held=False, sealed=None)
        data = _payload(registration)
        if contains_individual_number(data):  # defence in depth: never carried
            raise RoutedQueryNotAccepted("the answer would carry an individual number")
        body = {
            "serial": query.serial, "provider": self.agency_id, "item": query.item_code,
            "as_of": registration.updated_at.isoformat(), "data": data, "version": 1,
        }
        try:
            sealed = envelope.seal(body, self._signer(), query.requester_encryption_key,
                                   envelope.info_for(query.serial))
        except ValueError:
            raise RoutedQueryNotAccepted("the requester's encryption key is not usable",
                                         field="requester_encryption_key") from None
        return SealedAnswer(serial=query.serial, held=True, sealed=sealed)

    def answer_batch(self, batch: RoutedBatch) -> SealedBatchAnswer:
        """A routed batch (a payout run): the same checks once, one token per recipient from
        the batch bucket, the codes and registrations read in bulk, one envelope sealed for
        the requester (``{"batch", "provider", "item", "answers": {serial: {"data",
        "as_of", "version"}}}``, info bound to the batch id). Each recipient without an
        account is a miss."""
        now = self._accept(batch, "batch")
        if not self.batch_buckets.take(batch.requester_id, len(batch.entries)):
            log.warning("public_fund_account batch look-up rate limit reached for %s (%d "
                        "recipients)", batch.requester_id, len(batch.entries))
            raise LookupRateLimited("the batch look-up rate limit for this agency is reached; "
                                    "retry later", agency=batch.requester_id)
        codes = [code for _, code in batch.entries]
        bulk = getattr(self.codes, "residents_for_codes", None)
        if bulk is not None:
            residents: dict[str, int] = bulk(codes)
        else:
            residents = {code: rid for code in codes
                         if (rid := self.codes.resident_for_code(code)) is not None}
        rows = self._registrations(sorted(set(residents.values())))
        answers: dict[str, dict[str, Any]] = {}
        for serial, code in batch.entries:
            rid = residents.get(code)
            row = rows.get(rid) if rid is not None else None
            if row is None:
                continue
            bank, branch, deposit, number, holder, name_check, updated = row
            if isinstance(updated, str):  # SQLite keeps UTC text without the offset
                updated = dt.datetime.fromisoformat(updated)
            if updated.tzinfo is None:
                updated = updated.replace(tzinfo=dt.UTC)
            answers[serial] = {
                "data": {"bank_code": bank, "branch_code": branch, "deposit_type": deposit,
                         "account_number": number, "holder_name": holder,
                         "name_check": name_check},
                "as_of": updated.isoformat(), "version": 1,
            }
        misses = len(batch.entries) - len(answers)
        if misses:
            self._miss(batch.requester_id, now, misses)
        if not answers:
            return SealedBatchAnswer(batch_id=batch.batch_id, held=frozenset(), sealed=None)
        # Defence in depth: never carried (the data only: a 処理通番 is digits too).
        # One pass over the JSON text of every recipient's data (text_contains_individual_number).
        if text_contains_individual_number(json.dumps(
                [a["data"] for a in answers.values()], ensure_ascii=False)):
            raise RoutedQueryNotAccepted("the answer would carry an individual number")
        body = {"batch": batch.batch_id, "provider": self.agency_id, "item": batch.item_code,
                "answers": answers, "version": 1}
        try:
            sealed = envelope.seal(body, self._signer(), batch.requester_encryption_key,
                                   envelope.info_for(batch.batch_id))
        except ValueError:
            raise RoutedQueryNotAccepted("the requester's encryption key is not usable",
                                         field="requester_encryption_key") from None
        return SealedBatchAnswer(batch_id=batch.batch_id, held=frozenset(answers),
                                 sealed=sealed)

    def _registrations(self, resident_ids: list[int]) -> dict[int, tuple[Any, ...]]:
        """The registrations of many persons, read in bulk straight on the driver (this
        context's own table): resident id -> (bank_code, branch_code, deposit_type,
        account_number, holder_name, name_check, updated_at)."""
        postgres = self.databases.is_postgres
        found: dict[int, tuple[Any, ...]] = {}
        engine = self.databases.engine(CONTEXT)
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            step = in_chunk(postgres)
            for start in range(0, len(resident_ids), step):
                chunk = resident_ids[start:start + step]
                if postgres:
                    cursor.execute(_REGISTRATIONS + " = ANY(%s)", (chunk,))
                else:
                    cursor.execute(_REGISTRATIONS + f" IN ({', '.join('?' * len(chunk))})",
                                   chunk)
                for row in cursor.fetchall():
                    found[int(row[0])] = tuple(row[1:])
            cursor.close()
            raw.commit()
        finally:
            raw.close()
        return found

    # -- enrolment ---------------------------------------------------------------------------
    def enrol(self, resident_id: int, actor: str) -> str:
        return self.codes.enrol(resident_id, actor)

    # -- scanning ----------------------------------------------------------------------------
    def _miss(self, agency_id: str, now: dt.datetime, misses: int = 1) -> None:
        with self._misses_lock:
            state = self._misses.setdefault(agency_id, _Misses(deque()))
            state.times.append((now, misses))
            state.total += misses
            start = now - self.miss_window
            while state.times and state.times[0][0] < start:
                state.total -= state.times.popleft()[1]
            count = state.total
            if count <= self.miss_threshold:
                return
            if state.flagged_until is not None and now < state.flagged_until:
                return  # flagged once per window
            state.flagged_until = now + self.miss_window
        log.warning("possible scanning: %s made %d public_fund_account look-ups without a "
                    "registered account in %s", agency_id, count, self.miss_window)
        with self.databases.unit_of_work(CONTEXT) as session:
            audit.record(session, m.AuditEvent, SCANNING_TAG, actor=f"agency:{agency_id}",
                         subject=f"agency:{agency_id}", reason="misses_above_threshold",
                         misses=count, threshold=self.miss_threshold,
                         window_seconds=int(self.miss_window.total_seconds()))

    def scanning_alerts(self, agency_id: str | None = None) -> list[ScanningAlert]:
        with self.databases.unit_of_work(CONTEXT) as session:
            stmt = select(m.AuditEvent).where(m.AuditEvent.tag == SCANNING_TAG)
            if agency_id is not None:
                stmt = stmt.where(m.AuditEvent.subject == f"agency:{agency_id}")
            rows = session.scalars(stmt.order_by(m.AuditEvent.id)).all()
            return [_alert(row) for row in rows]


def _payload(r: Registration) -> dict[str, Any]:
    return {
        "bank_code": r.bank_code, "branch_code": r.branch_code,
        "deposit_type": r.deposit_type.value, "account_number": r.account_number,
        "holder_name": r.holder_name, "name_check": r.name_check.value,
    }


def _alert(row: Any) -> ScanningAlert:
    details = row.details or {}
    at = row.occurred_at
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return ScanningAlert(
        id=row.id, agency_id=row.subject.removeprefix("agency:"),
        misses=int(details.get("misses", 0)), threshold=int(details.get("threshold", 0)),
        window_seconds=int(details.get("window_seconds", 0)), flagged_at=at,
    )


# mypy checks the implementation against its published protocol.
_contract: type[AccountProvision] = AccountProvisionServer

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
- A miss is a look-up for a person with no registered account. More than ``miss_threshold``
  misses from one agency within ``miss_window`` are flagged once as scanning: an audit event
  ``accounts:lookup:scanning`` in the accounts database (``mynumber accounts scanning``).
"""

from __future__ import annotations

import datetime as dt
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
from mynumber.db import Databases, utcnow
from mynumber.network.interfaces import RoutedQuery, SealedAnswer, contains_individual_number
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

    def take(self, key: str) -> bool:
        # Concurrency: read-refill-take under one lock, so N parallel requests on a full
        # bucket of B tokens get exactly min(N, B) grants.
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True


@dataclass
class _Misses:
    times: deque[dt.datetime]
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
        self.miss_threshold = miss_threshold
        self.miss_window = miss_window
        self._misses: dict[str, _Misses] = {}
        self._misses_lock = threading.Lock()

    # -- the network's IntermediateServer ----------------------------------------------------
    def answer(self, query: RoutedQuery) -> SealedAnswer:
        try:
            self._core.verify(query.signature, query.signed_bytes())
        except (InvalidSignature, ValueError, TypeError, OverflowError):
            raise RoutedQueryNotAccepted("the core's signature does not verify",
                                         field="signature") from None
        now = self.clock()
        if query.routed_at.tzinfo is None or abs(now - query.routed_at) > ROUTED_QUERY_MAX_AGE:
            raise RoutedQueryNotAccepted("the routed query is stale", field="routed_at")
        if query.provider_id != self.agency_id or query.item_code != PUBLIC_FUND_ACCOUNT_ITEM:
            raise RoutedQueryNotAccepted("this server provides public_fund_account only",
                                         field="item_code")
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

    # -- enrolment ---------------------------------------------------------------------------
    def enrol(self, resident_id: int, actor: str) -> str:
        return self.codes.enrol(resident_id, actor)

    # -- scanning ----------------------------------------------------------------------------
    def _miss(self, agency_id: str, now: dt.datetime) -> None:
        with self._misses_lock:
            state = self._misses.setdefault(agency_id, _Misses(deque()))
            state.times.append(now)
            start = now - self.miss_window
            while state.times and state.times[0] < start:
                state.times.popleft()
            count = len(state.times)
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

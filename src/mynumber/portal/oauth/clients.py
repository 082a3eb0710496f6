"""API clients (API利用者) of the self-information API: registration and its redirect-URI
rules, vetting states with actor and reason in the audit table, reactivation of a retired
client, rate limits and monitoring."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable, Sequence
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update

from mynumber.audit import record as audit
from mynumber.db import Databases, utcnow
from mynumber.portal.interfaces import (
    ClientMonitoring,
    ClientNotFound,
    ClientRecord,
    ClientState,
    ClientStateConflict,
    InvalidClient,
)
from mynumber.portal.models import AuditEvent
from mynumber.portal.oauth.common import hash_secret
from mynumber.portal.oauth.ratelimit import Counters
from mynumber.portal.oauth_models import ApiClient, ClientAnomaly, ReleaseRecord

log = logging.getLogger("mynumber.portal.oidc")

DEFAULT_RATE_LIMIT = 600
MAX_REDIRECT_URIS = 10

# applied -> approved|retired, approved -> suspended|retired, suspended -> approved|retired.
# ``retired`` is final for set_state; only ``ApiClientsImpl.reactivate`` (an explicit, audited
# admin act) brings a retired client back, to ``suspended``, so that one call can never make
# a client unrecoverable and a second deliberate approval is needed before it serves again.
TRANSITIONS: dict[ClientState, frozenset[ClientState]] = {
    ClientState.APPLIED: frozenset({ClientState.APPROVED, ClientState.RETIRED}),
    ClientState.APPROVED: frozenset({ClientState.SUSPENDED, ClientState.RETIRED}),
    ClientState.SUSPENDED: frozenset({ClientState.APPROVED, ClientState.RETIRED}),
    ClientState.RETIRED: frozenset(),
}


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def validate_redirect_uri(uri: str) -> str:
    """Absolute https URLs, or http on a loopback host only (RFC 8252 §7.3); no fragment, no
    user information, no wildcard."""
    if len(uri) > 500 or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        raise InvalidClient("a redirect URI is too long or has spaces or control characters",
                            field="redirect_uris")
    if "*" in uri:
        raise InvalidClient("redirect URIs may not contain wildcards", field="redirect_uris")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise InvalidClient("a redirect URI is not a URL", field="redirect_uris") from None
    del port
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidClient("redirect URIs must be absolute https URLs", field="redirect_uris")
    if parts.fragment or "#" in uri:
        raise InvalidClient("redirect URIs may not have a fragment", field="redirect_uris")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidClient("redirect URIs may not carry user information",
                            field="redirect_uris")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise InvalidClient("http redirect URIs are allowed on the loopback interface only "
                            "(127.0.0.1, [::1], localhost)", field="redirect_uris")
    return uri


def _record_of(row: ApiClient, secret: str | None = None) -> ClientRecord:
    return ClientRecord(
        client_id=row.client_id, name=row.name, organisation=row.organisation,
        contact=row.contact, redirect_uris=tuple(row.redirect_uris), scopes=tuple(row.scopes),
        state=ClientState(row.state), rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=row.created_at, state_changed_at=row.state_changed_at,
        state_reason=row.state_reason, client_secret=secret,
    )


class ApiClientsImpl:
    """Registration, vetting (state changes with actor and reason in the audit table),
    rate limits and monitoring of API clients."""

    def __init__(self, databases: Databases, *,
                 known_scopes: Callable[[], Sequence[str]]) -> None:
        self.databases = databases
        self.counters = Counters(databases)
        # The item scopes the portal offers (given at wiring: the portal's information sources).
        self.known_scopes = known_scopes

    def register(self, name: str, organisation: str, contact: str,
                 redirect_uris: Sequence[str], scopes: Sequence[str]) -> ClientRecord:
        for value, label in ((name, "name"), (organisation, "organisation"),
                             (contact, "contact")):
            if not value.strip() or len(value) > 200:
                raise InvalidClient(f"{label} must be 1 to 200 characters", field=label)
        uris = list(dict.fromkeys(validate_redirect_uri(u) for u in redirect_uris))
        if not uris:
            raise InvalidClient("at least one redirect URI is needed", field="redirect_uris")
        if len(uris) > MAX_REDIRECT_URIS:
            raise InvalidClient(f"at most {MAX_REDIRECT_URIS} redirect URIs",
                                field="redirect_uris")
        known = set(self.known_scopes())
        wanted = list(dict.fromkeys(s for s in scopes if s != "openid"))
        unknown = [s for s in wanted if s not in known]
        if unknown or not wanted:
            raise InvalidClient("scopes must be item scopes the portal offers "
                                f"({', '.join(sorted(known))})", field="scopes")
        client_id = "mnc_" + secrets.token_urlsafe(18)
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        row = ApiClient(
            client_id=client_id, secret_hash=hash_secret(secret), name=name.strip(),
            organisation=organisation.strip(), contact=contact.strip(), redirect_uris=uris,
            scopes=wanted, state=ClientState.APPLIED.value,
            rate_limit_per_minute=DEFAULT_RATE_LIMIT, created_at=now, state_changed_at=now,
            state_reason="applied", requests=0, refusals=0, rate_limited=0,
        )
        with self.databases.unit_of_work("portal") as session:
            session.add(row)
            audit(session, AuditEvent, "portal:client:apply", actor="applicant",
                  subject=client_id, name=row.name, scopes=wanted)
        return _record_of(row, secret)

    def rotate_secret(self, actor: str, client_id: str, reason: str) -> ClientRecord:
        """A new client secret (shown once, as at registration); the old one stops working at
        once. For an operator who lost the secret or fears it leaked."""
        secret = secrets.token_urlsafe(32)
        with self.databases.unit_of_work("portal") as session:
            row = self._row(session, client_id)
            row.secret_hash = hash_secret(secret)
            audit(session, AuditEvent, "portal:client:secret", actor=actor, subject=client_id,
                  reason=reason[:200])
            session.flush()
            return _record_of(row, secret)

    def _row(self, session: Any, client_id: str) -> ApiClient:
        row: ApiClient | None = session.scalars(
            select(ApiClient).where(ApiClient.client_id == client_id)).first()
        if row is None:
            raise ClientNotFound("no API client with this id", field="client_id")
        return row

    def _move(self, session: Any, client_id: str, current: ClientState, state: ClientState,
              reason: str) -> ApiClient:
        # Compare-and-set in the database: two concurrent changes of one client (say an
        # approval racing a retirement) cannot both pass the transition check.
        now = utcnow()
        moved = session.execute(
            update(ApiClient).where(ApiClient.client_id == client_id,
                                    ApiClient.state == current.value)
            .values(state=state.value, state_changed_at=now, state_reason=reason[:500])
        ).rowcount
        if moved != 1:
            raise ClientStateConflict("the client's state changed meanwhile; look again",
                                      field="state")
        row = self._row(session, client_id)
        session.refresh(row)
        return row

    def set_state(self, actor: str, client_id: str, state: ClientState,
                  reason: str) -> ClientRecord:
        state = ClientState(state)
        with self.databases.unit_of_work("portal") as session:
            current = ClientState(self._row(session, client_id).state)
            if state not in TRANSITIONS[current]:
                raise ClientStateConflict(
                    f"a client in state {current.value} cannot become {state.value}",
                    field="state", current=current.value)
            row = self._move(session, client_id, current, state, reason)
            audit(session, AuditEvent, "portal:client:state", actor=actor, subject=client_id,
                  reason=reason[:200], from_state=current.value, to_state=state.value)
            return _record_of(row)

    def reactivate(self, actor: str, client_id: str, reason: str) -> ClientRecord:
        """Bring a retired client back, to ``suspended`` (an admin must then approve it again):
        retirement is never a one-way door that a single call can shut (issue 10). Audited as
        ``portal:client:reactivate`` with the actor and the reason."""
        with self.databases.unit_of_work("portal") as session:
            current = ClientState(self._row(session, client_id).state)
            if current is not ClientState.RETIRED:
                raise ClientStateConflict(
                    f"only a retired client can be reactivated (this one is {current.value})",
                    field="state", current=current.value)
            row = self._move(session, client_id, current, ClientState.SUSPENDED, reason)
            audit(session, AuditEvent, "portal:client:reactivate", actor=actor,
                  subject=client_id, reason=reason[:200], from_state=current.value,
                  to_state=ClientState.SUSPENDED.value)
            return _record_of(row)

    def set_rate_limit(self, actor: str, client_id: str, per_minute: int) -> ClientRecord:
        if not 1 <= per_minute <= 1_000_000:
            raise InvalidClient("the rate limit must be 1 to 1,000,000 a minute",
                                field="per_minute")
        with self.databases.unit_of_work("portal") as session:
            row = self._row(session, client_id)
            previous = row.rate_limit_per_minute
            row.rate_limit_per_minute = per_minute
            audit(session, AuditEvent, "portal:client:rate_limit", actor=actor,
                  subject=client_id, previous=previous, per_minute=per_minute)
            return _record_of(row)

    def client(self, client_id: str) -> ClientRecord:
        with self.databases.unit_of_work("portal") as session:
            return _record_of(self._row(session, client_id))

    def clients(self, state: ClientState | None = None) -> list[ClientRecord]:
        with self.databases.unit_of_work("portal") as session:
            query = select(ApiClient).order_by(ApiClient.id)
            if state is not None:
                query = query.where(ApiClient.state == ClientState(state).value)
            return [_record_of(r) for r in session.scalars(query)]

    def record_anomaly(self, client_id: str, kind: str) -> None:
        log.warning("api client anomaly %s", kind)
        with self.databases.unit_of_work("portal") as session:
            session.add(ClientAnomaly(client_id=client_id, kind=kind, occurred_at=utcnow()))

    def monitoring(self, client_id: str) -> ClientMonitoring:
        self.counters.flush()
        with self.databases.unit_of_work("portal") as session:
            row = self._row(session, client_id)
            releases, subjects = session.execute(
                select(func.count(ReleaseRecord.id),
                       func.count(func.distinct(ReleaseRecord.account_id)))
                .where(ReleaseRecord.client_id == client_id)).one()
            anomalies = session.scalar(select(func.count(ClientAnomaly.id))
                                       .where(ClientAnomaly.client_id == client_id)) or 0
            recent = session.execute(
                select(ClientAnomaly.occurred_at, ClientAnomaly.kind)
                .where(ClientAnomaly.client_id == client_id)
                .order_by(ClientAnomaly.id.desc()).limit(10)).all()
            return ClientMonitoring(
                client_id=client_id, state=ClientState(row.state), requests=row.requests,
                releases=releases, refusals=row.refusals, rate_limited=row.rate_limited,
                anomalies=anomalies, distinct_subjects=subjects,
                last_request_at=row.last_request_at,
                recent_anomalies=tuple(f"{at.isoformat(timespec='seconds')} {kind}"
                                       for at, kind in recent),
            )


DEMO_CLIENT_NAME = "家計簿アプリ（サンプル）"
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"


def demo_client_id(clients: ApiClientsImpl) -> str | None:
    """The demo client's id once it exists (its secret was shown only when it was created:
    ``mynumber api-clients rotate-secret`` gives a new one)."""
    return next((c.client_id for c in clients.clients() if c.name == DEMO_CLIENT_NAME), None)


def seed_demo_client(clients: ApiClientsImpl) -> ClientRecord | None:
    """The embedded mode's demo client, approved; None when it exists already (its secret was
    shown when it was created)."""
    if demo_client_id(clients) is not None:
        return None
    record = clients.register(DEMO_CLIENT_NAME, "デモ事業者", "demo@example.invalid",
                              [DEMO_REDIRECT_URI], ["basic_four", "income", "pension"])
    approved = clients.set_state("seed", record.client_id, ClientState.APPROVED,
                                 "demo client (embedded mode)")
    return dataclasses.replace(approved, client_secret=record.client_secret)

"""Bank clients: how a bank's counter or app is authenticated on the bank route.

Decisions, in one place:

- **A client belongs to one bank** (金融機関コード, which must exist today in the bank dataset).
  It has an Ed25519 signing public key (its API requests), an X25519 encryption public key
  (what is sealed for the bank, e.g. a 個人番号 for 預貯金口座付番: :meth:`encryption_key`), a
  status (``active`` / ``suspended``) and a secret for its counter staff's sign-in on /bank.
  The secret (32 random bytes, ``secrets.token_urlsafe``) is shown once at registration and
  kept as its SHA-256 (``sha256:<hex>``), compared in constant time: it is random, not a
  password, so a slow hash would add nothing but a CPU and memory cost per attempt on the
  public listener. A suspended client can neither call the API nor sign in.
- **A signed request is accepted once.** :meth:`authenticate` checks the signature over
  ``network.interfaces.signed_request_bytes`` (canonical JSON), the client's status, the
  freshness (5 minutes either way; a ``requested_at`` too far for UTC arithmetic, e.g. year 1
  or 9999, is stale too) and then claims the nonce for ``bank:<client id>`` in the accounts
  database's one nonce store (accounts/nonces.py, ``request_nonces``), whose primary key
  refuses the second claim: two processes or threads receiving the same request cannot both
  pass.
- **Counter sign-in is throttled per client in the database**, as staff sign-in is
  (``auth.services``): a refused sign-in (wrong secret, suspended, throttled) counts
  ``failed_logins = failed_logins + 1`` in SQL; from :data:`THROTTLE_AFTER` refusals in a
  row the client is throttled (``locked_until``: 1 s doubling, at most 15 minutes, only ever
  extended); while throttled the secret is not checked. A successful sign-in resets the count
  in the same statement that re-checks the throttle and the status. Unknown client ids are
  refused alike (nothing to count). ``mynumber accounts bank-client activate`` ends a
  throttle.
- **Counter sessions** live in ``bank_sessions`` (the token's SHA-256 only), 15 minutes idle
  and 8 hours at most; logout deletes the row (the /bank sign-in ends the terminal's previous
  session first). Every registration, suspension, sign-in and refused sign-in is audited
  (``accounts:bank_client:*``), never with the secret.
- **Suspension** ends the client's counter sessions and turns the 預貯金口座付番 deliveries
  sealed for its key that no one has acknowledged back to pending (the sealed bytes dropped):
  the next ``seal-pending`` seals them for the bank's current key (accounts/deposit.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from sqlalchemy import delete, or_, select, update

from mynumber import audit
from mynumber.accounts import models as m
from mynumber.accounts.banks import BankDirectory
from mynumber.accounts.interfaces import (
    BANK_REQUEST_MAX_AGE,
    BankClient,
    BankClientNotFound,
    BankClientStatus,
    BankClientSuspended,
    BankCodeNotOwn,
    BankLoginFailed,
    BankRequestBadSignature,
    BankRequestReplayed,
    BankRequestStale,
    BankSessionExpired,
    DeliveryState,
    InvalidBankClient,
)
from mynumber.accounts.nonces import NonceStore
from mynumber.db import Databases, utcnow
from mynumber.kernel.localtime import in_japan
from mynumber.network.interfaces import signed_request_bytes

CONTEXT = m.CONTEXT
SESSION_IDLE = dt.timedelta(minutes=15)
SESSION_MAX = dt.timedelta(hours=8)
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
CLIENT_ID = re.compile(r"bc_[0-9a-f]{16}")
SECRET_MAX = 200  # longest secret looked at
#: Counter sign-in throttle (as staff sign-in's defaults): from this many refusals in a row,
#: 1 s doubling at each further refusal, at most 15 minutes.
THROTTLE_AFTER = 5
BACKOFF_BASE = dt.timedelta(seconds=1)
BACKOFF_MAX = dt.timedelta(minutes=15)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _secret_hash(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def backoff(failures: int) -> dt.timedelta | None:
    """How long a client is throttled after ``failures`` refused sign-ins in a row."""
    if failures < THROTTLE_AFTER:
        return None
    return min(BACKOFF_BASE * (1 << min(failures - THROTTLE_AFTER, 30)), BACKOFF_MAX)


def _key(value: bytes, kind: str, field: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidBankClient(f"{field}: a raw {kind} public key of 32 bytes", field=field)
    try:
        if kind == "Ed25519":
            Ed25519PublicKey.from_public_bytes(value)
        else:
            X25519PublicKey.from_public_bytes(value)
    except ValueError:
        raise InvalidBankClient(f"{field}: not an {kind} public key", field=field) from None
    return value


def _client(row: m.BankClient) -> BankClient:
    return BankClient(
        client_id=row.client_id, bank_code=row.bank_code, name=row.name,
        signing_public_key=bytes.fromhex(row.signing_public_key),
        encryption_public_key=bytes.fromhex(row.encryption_public_key),
        status=BankClientStatus(row.status), created_at=row.created_at)


class BankClientsImpl:
    """The bank route's clients, in the ``accounts`` database; implements ``BankKeys``."""

    def __init__(self, databases: Databases,
                 directory: Callable[[], BankDirectory]) -> None:
        self.databases = databases
        self._directory = directory
        self._nonces = NonceStore(databases)
        self.clock: Callable[[], dt.datetime] = utcnow

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        return self._clock

    @clock.setter
    def clock(self, value: Callable[[], dt.datetime]) -> None:
        self._clock = value
        self._nonces.clock = value

    def _audit(self, session: Any, action: str, actor: str, client_id: str,
               reason: str | None = None, **details: Any) -> None:
        audit.record(session, m.AuditEvent, f"accounts:bank_client:{action}", actor=actor,
                     subject=f"bank_client:{client_id}"[:80], reason=reason, **details)

    # -- administration (CLI) ---------------------------------------------------------------------
    def register(self, bank_code: str, name: str, signing_public_key: bytes,
                 encryption_public_key: bytes, *, actor: str) -> tuple[BankClient, str]:
        """A new active client; returns it and its secret (shown once, kept hashed)."""
        code = (bank_code or "").strip()
        today = in_japan(self.clock()).date()
        if not re.fullmatch(r"[0-9]{4}", code) or self._directory().bank(code, today) is None:
            raise InvalidBankClient("bank_code: no bank has this 金融機関コード today",
                                    field="bank_code")
        label = " ".join((name or "").split())
        if not label or len(label) > 100 or not label.isprintable():
            raise InvalidBankClient("name: 1-100 printable characters", field="name")
        signing = _key(signing_public_key, "Ed25519", "signing_public_key")
        encryption = _key(encryption_public_key, "X25519", "encryption_public_key")
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        row = m.BankClient(
            client_id="bc_" + secrets.token_hex(8), bank_code=code, name=label,
            signing_public_key=signing.hex(), encryption_public_key=encryption.hex(),
            secret_hash=_secret_hash(secret), status=BankClientStatus.ACTIVE.value,
            created_by=actor[:80], created_at=now, updated_at=now)
        with self.databases.unit_of_work(CONTEXT) as session:
            session.add(row)
            session.flush()
            self._audit(session, "registered", actor, row.client_id, bank_code=code)
            return _client(row), secret

    def clients(self, bank_code: str | None = None) -> list[BankClient]:
        c = m.BankClient
        stmt = select(c).order_by(c.bank_code, c.created_at, c.client_id)
        if bank_code:
            stmt = stmt.where(c.bank_code == bank_code)
        with self.databases.unit_of_work(CONTEXT) as session:
            return [_client(row) for row in session.scalars(stmt)]

    def client(self, client_id: str) -> BankClient:
        with self.databases.unit_of_work(CONTEXT) as session:
            row = session.get(m.BankClient, client_id) if CLIENT_ID.fullmatch(
                client_id or "") else None
            if row is None:
                raise BankClientNotFound("no bank client has this id", field="client_id")
            return _client(row)

    def set_status(self, client_id: str, status: BankClientStatus, *, actor: str) -> BankClient:
        """Suspend (or reactivate) a client. Suspending also ends its counter sessions and
        turns the deliveries sealed for its key, not yet acknowledged, back to pending (their
        sealed bytes dropped; the next ``seal-pending`` seals them for the bank's current
        key). Reactivating ends a sign-in throttle."""
        with self.databases.unit_of_work(CONTEXT) as session:
            row = session.get(m.BankClient, client_id) if CLIENT_ID.fullmatch(
                client_id or "") else None
            if row is None:
                raise BankClientNotFound("no bank client has this id", field="client_id")
            row.status, row.updated_at = status.value, self.clock()
            resealed = 0
            if status is BankClientStatus.SUSPENDED:
                session.execute(delete(m.BankSession).where(m.BankSession.client_id == client_id))
                d = m.DepositNumberingRequest
                resealed = int(session.execute(
                    update(d).where(d.sealed_for == client_id,
                                    d.state == DeliveryState.SEALED.value)
                    .values(state=DeliveryState.PENDING.value, sealed_for=None,
                            sealed_number=None, sealed_at=None)
                    .execution_options(synchronize_session=False)
                ).rowcount)  # type: ignore[attr-defined]
            else:
                row.failed_logins, row.locked_until = 0, None
            self._audit(session, "suspended" if status is BankClientStatus.SUSPENDED
                        else "activated", actor, client_id, None,
                        **({"deliveries_to_reseal": resealed} if resealed else {}))
            return _client(row)

    def suspend(self, client_id: str, *, actor: str) -> BankClient:
        return self.set_status(client_id, BankClientStatus.SUSPENDED, actor=actor)

    # -- BankKeys ---------------------------------------------------------------------------------
    def sealing_key(self, bank_code: str) -> tuple[str, bytes] | None:
        """The client a delivery for ``bank_code`` is sealed for, and its X25519 key: the
        bank's newest active client (only that client collects the deliveries sealed for it)."""
        c = m.BankClient
        with self.databases.unit_of_work(CONTEXT) as session:
            found = session.execute(
                select(c.client_id, c.encryption_public_key)
                .where(c.bank_code == bank_code, c.status == BankClientStatus.ACTIVE.value)
                .order_by(c.created_at.desc(), c.client_id.desc())).first()
        return (found.client_id, bytes.fromhex(found.encryption_public_key)) if found else None

    def encryption_key(self, bank_code: str) -> bytes | None:
        """The X25519 key of :meth:`sealing_key` alone."""
        found = self.sealing_key(bank_code)
        return found[1] if found else None

    # -- the API: signed, fresh, once -------------------------------------------------------------
    def authenticate(self, client_id: str, kind: str, fields: Mapping[str, Any],
                     signature: bytes) -> BankClient:
        """The client, once ``fields`` (``client_id``, ``requested_at``, ``nonce`` and the
        operation's own) are proven to be its request: signed over
        ``signed_request_bytes(kind, fields)``, the client active, ``requested_at`` within 5
        minutes, the nonce never used by this client (claimed in the database)."""
        row_client: BankClient | None = None
        if CLIENT_ID.fullmatch(client_id or ""):
            with self.databases.unit_of_work(CONTEXT) as session:
                row = session.get(m.BankClient, client_id)
                row_client = _client(row) if row is not None else None
        if row_client is None:
            raise BankRequestBadSignature("client_id: not a registered bank client, or the "
                                          "signature does not verify", field="signature")
        try:
            signed = signed_request_bytes(kind, dict(fields))
        except OverflowError:
            # requested_at cannot even be written in UTC (year 1, year 9999): far from now.
            raise BankRequestStale("requested_at: more than 5 minutes from the server's "
                                   "clock", field="requested_at") from None
        try:
            Ed25519PublicKey.from_public_bytes(row_client.signing_public_key).verify(
                signature, signed)
        except (InvalidSignature, ValueError, TypeError):
            raise BankRequestBadSignature("the signature does not verify with the client's "
                                          "key", field="signature") from None
        # After the signature: only the client itself learns that it is suspended.
        if row_client.status is not BankClientStatus.ACTIVE:
            raise BankClientSuspended("this bank client is suspended")
        requested_at = fields.get("requested_at")
        now = self.clock()
        if not isinstance(requested_at, dt.datetime) or requested_at.tzinfo is None \
                or abs(now - requested_at) > BANK_REQUEST_MAX_AGE:
            raise BankRequestStale("requested_at: more than 5 minutes from the server's clock",
                                   field="requested_at")
        self.claim_nonce(client_id, str(fields.get("nonce", "")), kind)
        return row_client

    def claim_nonce(self, client_id: str, nonce: str, kind: str = "") -> None:
        """Accept ``nonce`` once for the client (issuer ``bank:<client id>`` in the one nonce
        store): the insert's primary key decides (one of two parallel claims gets
        BankRequestReplayed)."""
        if not NONCE.fullmatch(nonce):
            raise InvalidBankClient("nonce: 16-64 of A-Za-z0-9_-", field="nonce")
        if not self._nonces.claim(f"bank:{client_id}", nonce, kind):
            raise BankRequestReplayed("this nonce was already used by the bank client",
                                      field="nonce")

    @staticmethod
    def check_own_bank(client: BankClient, bank_code: str) -> None:
        """A bank registers (or changes to) accounts at its own bank code only."""
        code = "".join((bank_code or "").split())
        if code != client.bank_code:
            raise BankCodeNotOwn("bank_code: a bank registers accounts at its own 金融機関コード "
                                 "only", field="bank_code")

    # -- the counter's sign-in (/bank) ------------------------------------------------------------
    def _refuse(self, client_id: str, reason: str, now: dt.datetime) -> None:
        """Count a refused sign-in and throttle if needed, atomically, with its audit record
        (the pattern of ``auth.services``: the count is ``failed_logins + 1`` in SQL, the
        throttle is only ever extended)."""
        c = m.BankClient
        with self.databases.unit_of_work(CONTEXT) as session:
            failures = session.execute(
                update(c).where(c.client_id == client_id)
                .values(failed_logins=c.failed_logins + 1)
                .returning(c.failed_logins)
                .execution_options(synchronize_session=False)
            ).scalar_one()
            self._audit(session, "login_refused", f"bank_client:{client_id}", client_id,
                        reason=reason, failures=failures)
            wait = backoff(failures)
            if wait is None:
                return
            until = now + wait
            extended = session.execute(
                update(c).where(c.client_id == client_id,
                                or_(c.locked_until.is_(None), c.locked_until < until))
                .values(locked_until=until)
                .returning(c.client_id)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none()
            if extended is not None:
                self._audit(session, "throttle", "system", client_id, failures=failures,
                            until=until.isoformat())

    def login(self, client_id: str, secret: str) -> tuple[str, BankClient]:
        """A new counter session's token (shown once to the cookie) and its client."""
        refused = BankLoginFailed("client id or secret is wrong, or the client is suspended")
        secret = (secret or "")[:SECRET_MAX]
        row = None
        if CLIENT_ID.fullmatch(client_id or ""):
            with self.databases.unit_of_work(CONTEXT) as session:
                row = session.get(m.BankClient, client_id)
                if row is not None:
                    client, hashed = _client(row), row.secret_hash
                    locked_until = row.locked_until
        if row is None:
            raise refused
        now = self.clock()
        if locked_until is not None and locked_until > now:
            self._refuse(client_id, "throttled", now)  # the secret is not even looked at
            raise refused
        if not hmac.compare_digest(hashed.encode(), _secret_hash(secret).encode()):
            self._refuse(client_id, "wrong_secret", now)
            raise refused
        if client.status is not BankClientStatus.ACTIVE:
            self._refuse(client_id, "suspended", now)
            raise refused
        token = secrets.token_urlsafe(32)
        c = m.BankClient
        with self.databases.unit_of_work(CONTEXT) as session:
            # The same statement re-checks the status and the throttle (either may have been
            # set since the read) and resets the count.
            signed_in = session.execute(
                update(c).where(c.client_id == client_id,
                                c.status == BankClientStatus.ACTIVE.value,
                                or_(c.locked_until.is_(None), c.locked_until <= now))
                .values(failed_logins=0, locked_until=None)
                .returning(c.client_id)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none() is not None
            if signed_in:
                session.add(m.BankSession(token_hash=_token_hash(token), client_id=client_id,
                                          created_at=now, expires_at=now + SESSION_IDLE))
                self._audit(session, "login", f"bank_client:{client_id}", client_id)
        if not signed_in:
            self._refuse(client_id, "throttled", now)
            raise refused
        return token, client

    def session(self, token: str) -> BankClient:
        """The live session's client (its idle timer touched), else BankSessionExpired."""
        if not token or len(token) > 100:
            raise BankSessionExpired("sign in first")
        now = self.clock()
        s = m.BankSession
        with self.databases.unit_of_work(CONTEXT) as session:
            row = session.get(s, _token_hash(token))
            client_row = session.get(m.BankClient, row.client_id) if row is not None else None
            if row is None or client_row is None or row.expires_at <= now \
                    or client_row.status != BankClientStatus.ACTIVE.value:
                if row is not None:
                    session.delete(row)
                raise_expired = True
            else:
                raise_expired = False
                session.execute(update(s).where(s.token_hash == row.token_hash).values(
                    expires_at=min(now + SESSION_IDLE, row.created_at + SESSION_MAX)))
                client = _client(client_row)
        if raise_expired:
            raise BankSessionExpired("the session has ended: sign in again")
        return client

    def logout(self, token: str) -> None:
        if not token or len(token) > 100:
            return
        with self.databases.unit_of_work(CONTEXT) as session:
            row = session.get(m.BankSession, _token_hash(token))
            if row is not None:
                self._audit(session, "logout", f"bank_client:{row.client_id}", row.client_id)
                session.delete(row)

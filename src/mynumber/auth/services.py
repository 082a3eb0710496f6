"""Staff sign-in: password (argon2id) + TOTP (RFC 6238), server-side sessions, throttling.

Rules that must hold under parallel requests are enforced by the database, never by a read
followed by a write in Python (``SELECT ... FOR UPDATE`` does nothing on SQLite):

- a one-time code is consumed by ``UPDATE staff SET last_totp_step = :step WHERE id = :id
  AND last_totp_step < :step``; only the request whose update touched the row logs in;
- refused attempts are counted with ``failed_logins = failed_logins + 1`` in SQL;
- after ``throttle_after`` consecutive refusals the account is throttled with exponential
  backoff, capped (``locked_until``): there is no permanent lock anyone could trigger, and
  ``unlock`` (``mynumber staff unlock``) ends a throttle at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Callable, Collection
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber import audit
from mynumber.auth import models as m
from mynumber.auth.interfaces import (
    InvalidStaffData,
    LoginFailed,
    SessionExpired,
    StaffAuthService,
    StaffExists,
    StaffMunicipalityUnknown,
    StaffNotFound,
    StaffPrincipal,
    StaffRole,
)
from mynumber.db import Databases, utcnow

CONTEXT = "auth"
USERNAME_MAX = 40
PASSWORD_MIN = 12
# One message for every refusal: it must not say which factor failed, nor whether the account
# exists or is throttled.
LOGIN_FAILED = "user name, password or one-time code is wrong, or the account is locked"


def session_token_hash(token: str) -> str:
    """What is stored of a session token (a leaked table gives no usable session)."""
    return hashlib.sha256(token.encode()).hexdigest()


def username_digest(username: str) -> str:
    """What the audit trail keeps of a user name that matched no account: a truncated hash,
    never the text (people type passwords into the user name field)."""
    return hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()[:16]


class StaffAuthImpl:
    """Accounts, two-factor login, sessions; backed by the ``auth`` database."""

    def __init__(
        self,
        databases: Databases,
        idle_minutes: int = 15,
        *,
        municipality_exists: Callable[[str], bool] | None = None,
        throttle_after: int = 5,
        backoff_base: dt.timedelta = dt.timedelta(seconds=1),
        backoff_max: dt.timedelta = dt.timedelta(minutes=15),
    ) -> None:
        self.databases = databases
        self.idle = dt.timedelta(minutes=idle_minutes)
        self.hasher = PasswordHasher()
        # Auth does not depend on the registry: the composition root injects the check.
        self.municipality_exists = municipality_exists
        self.throttle_after = throttle_after
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    # -- helpers ---------------------------------------------------------------------------
    def _dummy(self) -> str:
        # Made on first use, not in __init__: hashing costs tens of milliseconds and most
        # containers (tests, CLI commands) never see a login.
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(24))
            return self._dummy_hash

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def backoff(self, failures: int) -> dt.timedelta | None:
        """How long the account is throttled after ``failures`` consecutive refusals."""
        if failures < self.throttle_after:
            return None
        exponent = min(failures - self.throttle_after, 30)  # 2**30 s is far beyond the cap
        return min(self.backoff_base * (1 << exponent), self.backoff_max)

    @staticmethod
    def _principal(staff: m.Staff) -> StaffPrincipal:
        return StaffPrincipal(staff.id, staff.username, staff.display_name,
                              staff.municipality_code, StaffRole(staff.role))

    @staticmethod
    def _audit(session: Session, tag: str, *, actor: str, subject: str,
               reason: str | None = None, **details: Any) -> None:
        audit.record(session, m.AuditEvent, f"auth:staff:{tag}", actor=actor, subject=subject,
                     reason=reason, **details)

    # -- accounts --------------------------------------------------------------------------
    def create_staff(
        self, username: str, display_name: str, municipality_code: str, role: StaffRole,
        password: str, totp_secret: str | None = None,
    ) -> str:
        """Create an account; returns the TOTP secret to enrol in an authenticator app."""
        if not username or len(username) > USERNAME_MAX or not username.isprintable():
            raise InvalidStaffData(f"the user name must be 1-{USERNAME_MAX} printable "
                                   "characters", field="username")
        if len(password) < PASSWORD_MIN:
            raise InvalidStaffData(f"password must have at least {PASSWORD_MIN} characters",
                                   field="password")
        if self.municipality_exists is not None and not self.municipality_exists(
            municipality_code
        ):
            raise StaffMunicipalityUnknown("no municipality has this code",
                                           field="municipality_code")
        secret = totp_secret or pyotp.random_base32()
        password_hash = self.hasher.hash(password)
        try:
            with self.databases.unit_of_work(CONTEXT) as session:
                staff = m.Staff(
                    username=username, display_name=display_name,
                    municipality_code=municipality_code, role=StaffRole(role).value,
                    password_hash=password_hash, totp_secret=secret,
                )
                session.add(staff)
                session.flush()
                self._audit(session, "create", actor="system", subject=f"staff:{staff.id}",
                            role=staff.role)
        except IntegrityError:
            # The unique constraint decides between two concurrent creations.
            raise StaffExists("a staff account with this user name exists",
                              field="username") from None
        return secret

    def find_staff(self, username: str) -> StaffPrincipal | None:
        with self.databases.unit_of_work(CONTEXT) as session:
            staff = session.scalars(
                select(m.Staff).where(m.Staff.username == username)
            ).first()
            return None if staff is None else self._principal(staff)

    def staff_names(self, staff_ids: Collection[int]) -> dict[int, str]:
        ids = sorted({int(i) for i in staff_ids})
        if not ids:
            return {}
        with self.databases.unit_of_work(CONTEXT) as session:
            return {int(i): str(name) for i, name in session.execute(
                select(m.Staff.id, m.Staff.display_name).where(m.Staff.id.in_(ids)))}

    def unlock(self, username: str, actor: str) -> None:
        with self.databases.unit_of_work(CONTEXT) as session:
            staff_id = session.execute(
                update(m.Staff).where(m.Staff.username == username)
                .values(failed_logins=0, locked_until=None)
                .returning(m.Staff.id)
            ).scalar_one_or_none()
            if staff_id is None:
                raise StaffNotFound("no staff account has this user name", field="username")
            self._audit(session, "unlock", actor=actor, subject=f"staff:{staff_id}")

    def current_totp(self, username: str) -> str | None:
        """The current one-time code of an account (the CLI offers it in embedded mode only)."""
        with self.databases.unit_of_work(CONTEXT) as session:
            secret = session.scalars(
                select(m.Staff.totp_secret).where(m.Staff.username == username)
            ).first()
        return None if secret is None else pyotp.TOTP(secret).now()

    # -- login -----------------------------------------------------------------------------
    def login(self, username: str, password: str, totp_code: str) -> str:
        now = utcnow()
        staff = None
        if username and len(username) <= USERNAME_MAX and username.isprintable():
            with self.databases.unit_of_work(CONTEXT) as session:
                staff = session.scalars(
                    select(m.Staff).where(m.Staff.username == username)
                ).first()
        if staff is None or not staff.active:
            # Same argon2 work as for a real account, so timing does not reveal accounts.
            self._verify(self._dummy(), password)
            if staff is None:
                self._refuse_unknown(username)
            else:
                self._refuse(staff.id, "inactive", now)
            raise LoginFailed(LOGIN_FAILED)
        if staff.locked_until is not None and staff.locked_until > now:
            # Throttled: the password is not checked (no guess is tested), but the same hash
            # work is done so that a throttled account does not answer faster.
            self._verify(self._dummy(), password)
            self._refuse(staff.id, "throttled", now)
            raise LoginFailed(LOGIN_FAILED)
        if not self._verify(staff.password_hash, password):
            self._refuse(staff.id, "wrong_password", now)
            raise LoginFailed(LOGIN_FAILED)
        step = self._matching_step(staff.totp_secret, totp_code, now)
        if step is None or step <= staff.last_totp_step:
            # A code is good once: a replay of a seen code fails.
            self._refuse(staff.id, "wrong_code" if step is None else "code_used", now)
            raise LoginFailed(LOGIN_FAILED)
        token = secrets.token_urlsafe(32)
        with self.databases.unit_of_work(CONTEXT) as session:
            # Consume the code: of concurrent requests with the same code, only the one whose
            # update touched the row wins. The same statement re-checks the throttle (it may
            # have been set since the read) and resets the failure count.
            consumed = session.execute(
                update(m.Staff)
                .where(m.Staff.id == staff.id, m.Staff.last_totp_step < step,
                       m.Staff.active.is_(True),
                       or_(m.Staff.locked_until.is_(None), m.Staff.locked_until <= now))
                .values(last_totp_step=step, failed_logins=0, locked_until=None)
                .returning(m.Staff.id)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none() is not None
            if consumed:
                session.add(m.StaffSession(token_hash=session_token_hash(token),
                                           staff_id=staff.id))
                self._audit(session, "login", actor=f"staff:{staff.id}",
                            subject=f"staff:{staff.id}")
        if not consumed:
            self._refuse(staff.id, "code_used", now)
            raise LoginFailed(LOGIN_FAILED)
        return token

    @staticmethod
    def _matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
        """The time step whose code this is (one step of clock drift each way), or None."""
        code = (code or "").strip()
        if not (code.isdigit() and len(code) == 6):
            return None
        totp = pyotp.TOTP(secret)
        current = int(now.timestamp()) // totp.interval
        found = None
        for step in (current - 1, current, current + 1):
            # No early exit: the work does not depend on which step matched.
            if secrets.compare_digest(totp.at(step * totp.interval), code):
                found = step
        return found

    def _refuse(self, staff_id: int, reason: str, now: dt.datetime) -> None:
        """Count a refused attempt and throttle if needed, atomically, with its audit record."""
        with self.databases.unit_of_work(CONTEXT) as session:
            failures = session.execute(
                update(m.Staff).where(m.Staff.id == staff_id)
                .values(failed_logins=m.Staff.failed_logins + 1)
                .returning(m.Staff.failed_logins)
                .execution_options(synchronize_session=False)
            ).scalar_one()
            self._audit(session, "login_failed", actor=f"staff:{staff_id}",
                        subject=f"staff:{staff_id}", reason=reason, failures=failures)
            wait = self.backoff(failures)
            if wait is None:
                return
            until = now + wait
            # Only ever extend a throttle (a slower concurrent refusal must not shorten it).
            extended = session.execute(
                update(m.Staff)
                .where(m.Staff.id == staff_id,
                       or_(m.Staff.locked_until.is_(None), m.Staff.locked_until < until))
                .values(locked_until=until)
                .returning(m.Staff.id)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none()
            if extended is not None:
                self._audit(session, "throttle", actor="system", subject=f"staff:{staff_id}",
                            failures=failures, until=until.isoformat())

    def _refuse_unknown(self, username: str) -> None:
        with self.databases.unit_of_work(CONTEXT) as session:
            self._audit(session, "login_failed", actor="anonymous",
                        subject=f"username:{username_digest(username)}", reason="unknown_user")

    # -- sessions --------------------------------------------------------------------------
    def authenticate(self, token: str) -> StaffPrincipal:
        if not token:
            raise SessionExpired("log in first")
        with self.databases.unit_of_work(CONTEXT) as session:
            row = session.get(m.StaffSession, session_token_hash(token))
            now = utcnow()
            if row is None or row.ended_at is not None:
                raise SessionExpired("log in first")
            if now - row.last_seen_at > self.idle:
                row.ended_at = now
                expired = True
            else:
                row.last_seen_at = now
                expired = False
            staff = session.get(m.Staff, row.staff_id)
        if expired or staff is None or not staff.active:
            raise SessionExpired("your session ended after inactivity; log in again")
        return self._principal(staff)

    def logout(self, token: str) -> None:
        with self.databases.unit_of_work(CONTEXT) as session:
            row = session.get(m.StaffSession, session_token_hash(token or ""))
            if row is not None and row.ended_at is None:
                row.ended_at = utcnow()
                self._audit(session, "logout", actor=f"staff:{row.staff_id}",
                            subject=f"staff:{row.staff_id}")


def current_totp(databases: Databases, username: str) -> str | None:
    """The current one-time code of an account (the CLI offers it in embedded mode only)."""
    return StaffAuthImpl(databases).current_totp(username)


# mypy checks here that the implementation offers every method of the published protocol.
_staff_contract: type[StaffAuthService] = StaffAuthImpl

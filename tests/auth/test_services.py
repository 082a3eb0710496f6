"""Staff sign-in (mynumber.auth): once-only rules under real concurrency, throttling with
backoff instead of a permanent lock, an audit record for every refusal, uniform hash cost."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from mynumber.app import Container
from mynumber.auth import models as m
from mynumber.auth.interfaces import (
    LoginFailed,
    StaffExists,
    StaffMunicipalityUnknown,
    StaffNotFound,
    StaffRole,
)
from mynumber.auth.services import StaffAuthImpl, username_digest
from tests.conftest import SHINJUKU, STAFF_PASSWORD


@pytest.fixture(autouse=True)
def cheap_hashes(container: Container) -> None:
    """argon2 with small parameters: these tests are about the rules, not the hash cost
    (hashes carry their parameters, so verification is cheap too)."""
    assert isinstance(container.staff_auth, StaffAuthImpl)
    container.staff_auth.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def account(container: Container, username: str = "clerk") -> str:
    secret = pyotp.random_base32()
    container.staff_auth.create_staff(username, username, SHINJUKU, StaffRole.CLERK,
                                      STAFF_PASSWORD, totp_secret=secret)
    return secret


def row(container: Container, username: str = "clerk") -> m.Staff:
    with container.databases.unit_of_work("auth") as session:
        staff: m.Staff = session.scalars(select(m.Staff).where(m.Staff.username == username)
                                         ).one()
        return staff


def audit(container: Container, tag: str) -> list[Any]:
    with container.databases.unit_of_work("auth") as session:
        return list(session.scalars(select(m.AuditEvent).where(m.AuditEvent.tag == tag)
                                    .order_by(m.AuditEvent.id)))


def in_parallel(count: int, attempt: Callable[[], object]) -> list[object]:
    """Run ``attempt`` on ``count`` threads released together; results or exceptions."""
    barrier = threading.Barrier(count)

    def run() -> object:
        barrier.wait()
        try:
            return attempt()
        except LoginFailed as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: run(), range(count)))


def test_one_code_logs_in_once_under_concurrent_requests(container: Container) -> None:
    secret = account(container)
    code = pyotp.TOTP(secret).now()
    results = in_parallel(8, lambda: container.staff_auth.login("clerk", STAFF_PASSWORD, code))
    tokens = [r for r in results if isinstance(r, str)]
    assert len(tokens) == 1, results
    assert all(isinstance(r, LoginFailed) for r in results if not isinstance(r, str))
    assert [e.reason for e in audit(container, "auth:staff:login_failed")] == ["code_used"] * 7


def test_concurrent_failures_are_all_counted(container: Container) -> None:
    account(container)
    results = in_parallel(30, lambda: container.staff_auth.login("clerk", "wrong password!!",
                                                                 "000000"))
    assert all(isinstance(r, LoginFailed) for r in results)
    assert row(container).failed_logins == 30
    assert len(audit(container, "auth:staff:login_failed")) == 30


def test_backoff_grows_and_is_capped() -> None:
    auth = StaffAuthImpl(None, throttle_after=5)  # type: ignore[arg-type]
    assert [auth.backoff(n) for n in (0, 4)] == [None, None]
    assert [auth.backoff(n) for n in (5, 6, 9)] == [
        dt.timedelta(seconds=1), dt.timedelta(seconds=2), dt.timedelta(seconds=16)]
    assert auth.backoff(15) == auth.backoff(10_000) == dt.timedelta(minutes=15)


def test_throttle_refuses_without_checking_then_expires_and_success_resets(
    container: Container,
) -> None:
    secret = account(container)
    auth = container.staff_auth
    for _ in range(5):
        with pytest.raises(LoginFailed):
            auth.login("clerk", "wrong password!!", "000000")
    throttled = row(container)
    assert throttled.failed_logins == 5 and throttled.locked_until is not None
    assert len(audit(container, "auth:staff:throttle")) == 1
    # While throttled even the right password and code are refused, and the code is not used.
    code = pyotp.TOTP(secret).now()
    with pytest.raises(LoginFailed):
        auth.login("clerk", STAFF_PASSWORD, code)
    assert audit(container, "auth:staff:login_failed")[-1].reason == "throttled"
    assert row(container).last_totp_step == 0
    # The throttle ends by itself (never a permanent lock); a success resets the count.
    with container.databases.unit_of_work("auth") as session:
        session.execute(update(m.Staff).values(
            locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert auth.authenticate(auth.login("clerk", STAFF_PASSWORD, code)).username == "clerk"
    after = row(container)
    assert (after.failed_logins, after.locked_until) == (0, None)


def test_unlock_ends_a_throttle_and_is_audited(container: Container) -> None:
    secret = account(container)
    with container.databases.unit_of_work("auth") as session:
        session.execute(update(m.Staff).values(
            failed_logins=12, locked_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)))
    container.staff_auth.unlock("clerk", "cli:staff-unlock:tester")
    assert (row(container).failed_logins, row(container).locked_until) == (0, None)
    (event,) = audit(container, "auth:staff:unlock")
    assert event.actor == "cli:staff-unlock:tester"
    assert container.staff_auth.login("clerk", STAFF_PASSWORD, pyotp.TOTP(secret).now())
    with pytest.raises(StaffNotFound):
        container.staff_auth.unlock("nobody", "cli:staff-unlock:tester")


def test_unknown_user_names_are_audited_as_a_hash(container: Container) -> None:
    typed = "correct horse battery staple"  # a password typed into the user name field
    with pytest.raises(LoginFailed) as refused:
        container.staff_auth.login(typed, STAFF_PASSWORD, "123456")
    (event,) = audit(container, "auth:staff:login_failed")
    assert (event.reason, event.subject) == ("unknown_user", f"username:{username_digest(typed)}")
    assert typed not in repr((event.actor, event.subject, event.reason, event.details))
    assert STAFF_PASSWORD not in repr((event.actor, event.subject, event.reason, event.details))
    # The same message as for a wrong password.
    account(container)
    with pytest.raises(LoginFailed) as wrong:
        container.staff_auth.login("clerk", "wrong password!!", "123456")
    assert refused.value.detail == wrong.value.detail


@pytest.mark.parametrize("case", ["unknown", "inactive", "throttled", "wrong_password"])
def test_every_refusal_costs_one_hash_check(container: Container, case: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Timing must not tell whether an account exists, is disabled or is throttled."""
    account(container)
    if case == "inactive":
        with container.databases.unit_of_work("auth") as session:
            session.execute(update(m.Staff).values(active=False))
    if case == "throttled":
        with container.databases.unit_of_work("auth") as session:
            session.execute(update(m.Staff).values(
                failed_logins=6, locked_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)))
    auth = container.staff_auth
    assert isinstance(auth, StaffAuthImpl)
    calls: list[str] = []
    real = auth.hasher

    class Counting:
        def hash(self, password: str) -> str:
            return real.hash(password)

        def verify(self, hash_: str, password: str) -> bool:
            calls.append(hash_)
            return real.verify(hash_, password)

    monkeypatch.setattr(auth, "hasher", Counting())
    started = time.perf_counter()
    with pytest.raises(LoginFailed):
        auth.login("nobody" if case == "unknown" else "clerk", "wrong password!!", "123456")
    assert len(calls) == 1, case
    assert time.perf_counter() - started < 5


def test_create_staff_checks_the_municipality_and_the_name(container: Container) -> None:
    with pytest.raises(StaffMunicipalityUnknown):
        container.staff_auth.create_staff("x", "x", "999999", StaffRole.CLERK, STAFF_PASSWORD)
    account(container, "taken")
    with pytest.raises(StaffExists):
        account(container, "taken")

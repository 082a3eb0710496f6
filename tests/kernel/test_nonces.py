"""The kernel's nonce store, over any context's nonce table: once per issuer, in the database,
across threads; refused requests never reach it; old rows are pruned."""

from __future__ import annotations

import datetime as dt
import secrets
import threading

import pytest
from sqlalchemy import select

from mynumber.accounts import models as accounts_models
from mynumber.accounts.nonces import NonceStore as AccountsNonceStore
from mynumber.app import Container
from mynumber.db import utcnow
from mynumber.insurance import models as insurance_models
from mynumber.kernel.nonces import KEEP, NonceStore

CONTEXTS = [("insurance", insurance_models.RequestNonce),
            ("accounts", accounts_models.RequestNonce)]


def _issuers(container: Container, context: str, model: type, nonce: str) -> list[str]:
    with container.databases.unit_of_work(context) as session:
        return sorted(session.scalars(select(model.issuer).where(model.nonce == nonce)))


@pytest.mark.parametrize(("context", "model"), CONTEXTS)
def test_a_nonce_is_claimed_once_per_issuer(container: Container, context: str,
                                            model: type) -> None:
    store = NonceStore(container.databases, context, model)
    nonce = secrets.token_urlsafe(18)
    assert store.claim("terminal:a", nonce, "check")
    assert not store.claim("terminal:a", nonce, "check")
    assert not store.claim("terminal:a", nonce, "another kind")
    assert store.claim("terminal:b", nonce)
    assert _issuers(container, context, model, nonce) == ["terminal:a", "terminal:b"]


@pytest.mark.parametrize(("context", "model"), CONTEXTS)
def test_parallel_claims_of_one_nonce_succeed_once(container: Container, context: str,
                                                   model: type) -> None:
    store = NonceStore(container.databases, context, model)
    nonce = secrets.token_urlsafe(18)
    n = 8
    barrier = threading.Barrier(n)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait(30)
        ok = store.claim("terminal:t", nonce, "check")
        with lock:
            outcomes.append(ok)

    threads = [threading.Thread(target=attempt) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == [False] * (n - 1) + [True]


def test_old_nonces_are_pruned_by_later_claims(container: Container) -> None:
    model = insurance_models.RequestNonce
    now = utcnow()
    store = NonceStore(container.databases, "insurance", model, clock=lambda: now)
    old = secrets.token_urlsafe(18)
    assert store.claim("terminal:t", old)
    store.clock = lambda: now + KEEP + dt.timedelta(seconds=1)
    assert store.claim("terminal:t", secrets.token_urlsafe(18))
    assert _issuers(container, "insurance", model, old) == []


def test_lengths_and_models_are_checked(container: Container) -> None:
    store = NonceStore(container.databases, "insurance", insurance_models.RequestNonce)
    for issuer, nonce in (("", "n"), ("i" * 81, "n"), ("i", ""), ("i", "n" * 65)):
        with pytest.raises(ValueError, match="wrong length"):
            store.claim(issuer, nonce)
    assert store.claim("i" * 80, "n" * 64, "k" * 100)  # the kind is cut to its column
    with pytest.raises(TypeError):
        NonceStore(container.databases, "insurance", insurance_models.VisitRow)


def test_the_accounts_store_is_the_kernel_store_over_its_table(container: Container) -> None:
    store = AccountsNonceStore(container.databases)
    assert isinstance(store, NonceStore)
    assert (store.context, store.model) == ("accounts", accounts_models.RequestNonce)
    nonce = secrets.token_urlsafe(18)
    assert store.claim("bank:bc_0", nonce) and not store.claim("bank:bc_0", nonce)
    assert _issuers(container, "accounts", accounts_models.RequestNonce, nonce) == ["bank:bc_0"]
    assert _issuers(container, "insurance", insurance_models.RequestNonce, nonce) == []

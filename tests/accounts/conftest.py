"""公金受取口座 fixtures: real residents in the registry, card authentications as the portal
hands them over, and accounts in the synthetic bank dataset."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable

import pytest

from mynumber.accounts.events import subscriber
from mynumber.accounts.interfaces import BankAccount, CardAuthentication
from mynumber.accounts.services import AccountsServiceImpl
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.kernel.events import Dispatcher
from mynumber.registry.interfaces import ResidentRecord
from tests.conftest import new_resident

TODAY = dt.date(2025, 6, 2)
NOW = dt.datetime(2025, 6, 2, 3, 0, tzinfo=dt.UTC)  # 12:00 in Japan
PENSION = "agency:japan_pension_service"
TAX = "agency:national_tax_agency"

_births = itertools.count(1)


@pytest.fixture
def accounts(container: Container) -> AccountsServiceImpl:
    service = container.accounts
    service.clock = lambda: NOW
    return service


Person = Callable[..., ResidentRecord]


@pytest.fixture
def person(container: Container, clerk: StaffPrincipal) -> Person:
    def make(family: str = "山田", given: str = "太郎", family_kana: str = "ヤマダ",
             given_kana: str = "タロウ") -> ResidentRecord:
        born = dt.date(1950, 1, 1) + dt.timedelta(days=next(_births))
        return container.registry.register_birth(
            clerk, new_resident(family_name=family, given_name=given,
                                family_name_kana=family_kana, given_name_kana=given_kana,
                                birth_date=born), born)
    return make


def card(resident_id: int, *, at: dt.datetime = NOW, auth_id: str | None = None
         ) -> CardAuthentication:
    return CardAuthentication(resident_id, f"serial-{resident_id}",
                              auth_id or uuid.uuid4().hex, at)


def account(holder: str = "ﾔﾏﾀﾞ ﾀﾛｳ", *, bank: str = "8001", branch: str = "101",
            number: str = "1234567", deposit: str = "ordinary") -> BankAccount:
    return BankAccount(bank, branch, deposit, number, holder)


class Feed:
    """Registry events delivered to this context alone."""

    def __init__(self, container: Container) -> None:
        self.dispatcher = Dispatcher(container.registry.outbox,
                                     [subscriber(container.accounts, container.registry)],
                                     owner="accounts-tests")

    def deliver(self) -> int:
        return self.dispatcher.drain()


@pytest.fixture
def feed(container: Container) -> Feed:
    return Feed(container)

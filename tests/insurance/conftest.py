"""Insurer-side fixtures: the insurer service of the ``container`` fixture (built here on the
container's databases, 住基ネット, network directory and registry when the container does not
wire one), real residents made through the registry with 住基ネット's copy fed by the
registry's real events, and insurers registered in the network directory's agencies.

Shared with the other insurance tests: ``insurer_service``, ``feed``, ``person``,
``insurers`` and the helpers :func:`items_of` and :func:`enrol`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.codes.insurer_number import with_check_digit
from mynumber.insurance.adapters import JpkiCardUsability, RegistryLinks
from mynumber.insurance.events import subscriber as insurance_subscriber
from mynumber.insurance.interfaces import (
    InsuredKind,
    InsurerKind,
    NewInsuredPerson,
    PersonItems,
    Qualification,
)
from mynumber.insurance.services import InsurerServiceImpl
from mynumber.juki.events import subscriber as juki_subscriber
from mynumber.kernel.events import Dispatcher
from mynumber.registry.interfaces import ResidentRecord
from tests.conftest import new_resident

TODAY = dt.date(2025, 6, 2)
NOW = dt.datetime(2025, 6, 2, 3, 0, tzinfo=dt.UTC)  # 12:00 in Japan
STAFF = "insurer:staff-1"

KYOKAI = "01130012"  # 協会けんぽ 東京支部 (01 + 13 + 001 + 2)
SOCIETY = with_check_digit("0613001")  # 日立健康保険組合 (synthetic number)
NHI_SOCIETY = with_check_digit("13300")  # 東京都医師国民健康保険組合 (synthetic number)
SHINJUKU_NHI = "131045"  # 新宿区 国民健康保険 (13 + 104 + 5)
SHIBUYA_NHI = with_check_digit("13113")  # 渋谷区 国民健康保険
TOKYO_LATE = "39131008"  # 東京都後期高齢者医療広域連合 (39 + 13 + 100 + 8)

INSURERS = {
    KYOKAI: ("全国健康保険協会 東京支部", InsurerKind.KYOKAI, "kyokai_kenpo"),
    SOCIETY: ("日立健康保険組合", InsurerKind.SOCIETY, "kenpo-hitachi"),
    NHI_SOCIETY: ("東京都医師国民健康保険組合", InsurerKind.NHI_SOCIETY, "kokuho-tokyo-ishi"),
    SHINJUKU_NHI: ("新宿区国民健康保険", InsurerKind.MUNICIPAL_NHI, "municipality-131041"),
    SHIBUYA_NHI: ("渋谷区国民健康保険", InsurerKind.MUNICIPAL_NHI, "municipality-131130"),
    TOKYO_LATE: ("東京都後期高齢者医療広域連合", InsurerKind.LATE_ELDERLY,
                 "prefecture-13-elderly-medical-union"),
}

_births = itertools.count(1)
_numbers = itertools.count(1)


def build_insurer_service(container: Container) -> InsurerServiceImpl:
    """The insurer service on the container's parts (the container's own when it has one)."""
    if container.has("insurance"):
        return container.insurance
    return InsurerServiceImpl(container.databases, container.juki, container.network,
                              RegistryLinks(container.registry),
                              cards=JpkiCardUsability(container.jpki))


@pytest.fixture
def insurer_service(container: Container) -> InsurerServiceImpl:
    service = build_insurer_service(container)
    service.clock = lambda: NOW
    return service


class Feed:
    """Registry events delivered to 住基ネット and the insurer side alone."""

    def __init__(self, container: Container, service: InsurerServiceImpl) -> None:
        self.dispatcher = Dispatcher(
            container.registry.outbox,
            [juki_subscriber(container.juki, container.registry),
             insurance_subscriber(service)], owner="insurance-tests")

    def deliver(self) -> int:
        return self.dispatcher.drain()


@pytest.fixture
def feed(container: Container, insurer_service: InsurerServiceImpl) -> Feed:
    return Feed(container, insurer_service)


Person = Callable[..., ResidentRecord]


@pytest.fixture
def person(container: Container, clerk: StaffPrincipal, feed: Feed) -> Person:
    """A 新宿区 resident registered by birth (any field of ``new_resident`` overridable);
    住基ネット's copy holds them when this returns."""
    def make(**overrides: object) -> ResidentRecord:
        born = overrides.pop("birth_date", None) or (
            dt.date(1960, 1, 1) + dt.timedelta(days=next(_births)))
        assert isinstance(born, dt.date)
        record = container.registry.register_birth(
            clerk, new_resident(birth_date=born, **overrides), born)
        feed.deliver()
        return record
    return make


@dataclass(frozen=True)
class Insurers:
    kyokai: str = KYOKAI
    society: str = SOCIETY
    nhi_society: str = NHI_SOCIETY
    shinjuku: str = SHINJUKU_NHI
    shibuya: str = SHIBUYA_NHI
    late: str = TOKYO_LATE


@pytest.fixture
def insurers(insurer_service: InsurerServiceImpl) -> Insurers:
    """Every insurer of :data:`INSURERS`, registered in the directory's agencies."""
    for number, (name, kind, agency) in INSURERS.items():
        insurer_service.register_insurer(number, name, kind, agency, STAFF)
    return Insurers()


def items_of(record: ResidentRecord, **overrides: str) -> PersonItems:
    """The four items as the registry holds them (an insurer's correct record)."""
    values = {"name": record.name, "name_kana": record.name_kana,
              "birth_date": record.birth_date.isoformat(), "sex": record.sex.value,
              "address": record.address}
    values.update(overrides)
    return PersonItems(**values)


def new_person(items: PersonItems, *, acquired_on: dt.date = dt.date(2020, 4, 1),
               kind: InsuredKind = InsuredKind.INSURED, branch: str = "00",
               symbol: str | None = None, number: str | None = None,
               copay_percent: int = 30) -> NewInsuredPerson:
    return NewInsuredPerson(
        symbol=symbol if symbol is not None else f"{secrets.randbelow(9000) + 1000}",
        number=number if number is not None else f"{next(_numbers):06d}",
        branch=branch, insured_kind=kind, acquired_on=acquired_on,
        copay_percent=copay_percent, items=items)


def enrol(service: InsurerServiceImpl, insurer: str, items: PersonItems,
          **kwargs: object) -> Qualification:
    """Enrol a record (unlinked) at ``insurer``."""
    return service.enrol(insurer, new_person(items, **kwargs), STAFF)  # type: ignore[arg-type]

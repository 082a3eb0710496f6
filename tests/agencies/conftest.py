"""Fixtures for the intermediate servers: a small fake network core (the real core has its own
tests; the lead's integration tests join the two), the real registry, real keys and envelopes.

``FakeNetwork`` implements :class:`~mynumber.network.interfaces.NetworkService` closely enough
for the agencies' side: it redeems 取得番号 at the real registry, derives per-agency codes,
checks requesters' signatures, routes to the providers' intermediate servers with a routed
query signed by its own core key, and returns their sealed answers unread."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from mynumber.agencies.keyring import DerivedKeyring
from mynumber.agencies.services import AgenciesServiceImpl, IntermediateServerImpl
from mynumber.app import Container
from mynumber.envelope import raw_public
from mynumber.network.interfaces import (
    AccessRecord,
    AgencyRecord,
    AgencyStatus,
    ExchangeQuery,
    ExchangeResult,
    IntermediateServer,
    LegalTable,
    Outcome,
    RefusalReason,
    RoutedQuery,
    UnknownAgency,
)
from mynumber.registry.interfaces import RegistryService, ResidentRecord
from mynumber.registry.services import RegistryServiceImpl
from tests.conftest import new_resident

CITY = "municipality-131041"
PENSION = "jpo"
TASK = "bekkyo2-1"
ITEM = "local_tax"


class FakeNetwork:
    def __init__(self, registry: RegistryService) -> None:
        self.registry = registry
        self.core_key = ed25519.Ed25519PrivateKey.generate()
        self._secret = secrets.token_bytes(32)
        self._records: dict[str, AgencyRecord] = {}
        self._residents: dict[tuple[str, str], str] = {}  # (agency, code) -> 住民票コード
        self.servers: dict[str, IntermediateServer] = {}
        self.permitted: set[tuple[str, str, str, str]] = set()
        self.exchanges: list[ExchangeQuery] = []
        self.routed: list[RoutedQuery] = []
        self.key_registrations = 0
        self._serials = itertools.count(1)
        for number, agency_id in enumerate((CITY, PENSION, "mhlw"), start=1):
            self._records[agency_id] = AgencyRecord(
                agency_id, number, agency_id, "municipal_mayor", AgencyStatus.ACTIVE)

    # -- agencies --------------------------------------------------------------------------
    def legal_table(self) -> LegalTable:
        raise NotImplementedError

    def agency(self, agency_id: str) -> AgencyRecord:
        if agency_id not in self._records:
            raise UnknownAgency("no such agency", field="agency_id")
        return self._records[agency_id]

    def agencies(self, kind: str | None = None) -> list[AgencyRecord]:
        return [r for r in self._records.values() if kind is None or r.kind == kind]

    def core_public_key(self) -> bytes:
        return raw_public(self.core_key.public_key())

    def register_agency_keys(self, agency_id: str, signing_key: bytes,
                             encryption_key: bytes) -> AgencyRecord:
        self.key_registrations += 1
        record = dataclasses.replace(self.agency(agency_id), signing_key=signing_key,
                                     encryption_key=encryption_key)
        self._records[agency_id] = record
        return record

    def set_agency_status(self, actor: str, agency_id: str, status: AgencyStatus,
                          reason: str) -> AgencyRecord:
        raise NotImplementedError

    def set_agency_endpoint(self, agency_id: str, endpoint: str | None) -> AgencyRecord:
        raise NotImplementedError

    # -- codes -----------------------------------------------------------------------------
    def _code(self, agency_id: str, resident_code: str) -> str:
        digest = hmac.new(self._secret, f"{agency_id}/{resident_code}".encode(),
                          hashlib.sha256).hexdigest()
        code = digest[:26].upper()
        self._residents[(agency_id, code)] = resident_code
        return code

    def issue_agency_code(self, agency_id: str, acquisition_number: str) -> str:
        self.agency(agency_id)
        resident_code = self.registry.redeem_acquisition_number(agency_id, acquisition_number)
        return self._code(agency_id, resident_code)

    def issue_agency_codes(self, agency_id: str, acquisition_numbers: Sequence[str]) -> list[str]:
        self.agency(agency_id)
        residents = self.registry.redeem_acquisition_numbers(agency_id, acquisition_numbers)
        return [self._code(agency_id, code) for code in residents]

    # -- exchange --------------------------------------------------------------------------
    def _serial(self) -> str:
        return f"S{next(self._serials):012d}"

    def exchange(self, query: ExchangeQuery) -> ExchangeResult:
        self.exchanges.append(query)
        serial = self._serial()
        requester = self.agency(query.requester_id)
        try:
            assert requester.signing_key is not None
            ed25519.Ed25519PublicKey.from_public_bytes(requester.signing_key).verify(
                query.signature, query.signed_bytes())
        except (AssertionError, InvalidSignature):
            return ExchangeResult(serial, Outcome.REFUSED, RefusalReason.BAD_SIGNATURE)
        key = (query.requester_id, query.task_id, query.provider_id, query.item_code)
        if key not in self.permitted:
            return ExchangeResult(serial, Outcome.REFUSED, RefusalReason.NOT_IN_LEGAL_TABLE)
        resident_code = self._residents.get((query.requester_id, query.subject_code))
        if resident_code is None:
            return ExchangeResult(serial, Outcome.REFUSED, RefusalReason.UNKNOWN_AGENCY_CODE)
        assert requester.encryption_key is not None
        routed = RoutedQuery(
            serial=serial, requester_id=query.requester_id, task_id=query.task_id,
            provider_id=query.provider_id, item_code=query.item_code,
            subject_code=self._code(query.provider_id, resident_code),
            requester_encryption_key=requester.encryption_key,
            routed_at=dt.datetime.now(dt.UTC),
        )
        routed = dataclasses.replace(routed, signature=self.core_key.sign(routed.signed_bytes()))
        self.routed.append(routed)
        answer = self.servers[query.provider_id].answer(routed)
        if not answer.held:
            return ExchangeResult(serial, Outcome.NOT_HELD)
        return ExchangeResult(serial, Outcome.PROVIDED, sealed=answer.sealed)

    def record_declined(self, agency_id: str, task_id: str, application_ref: str,
                        documents: Sequence[str]) -> ExchangeResult:
        self.agency(agency_id)
        self.declined = (agency_id, task_id, application_ref, tuple(documents))
        return ExchangeResult(self._serial(), Outcome.DECLINED)

    def access_records(self, agency_id: str, subject_code: str, *,
                       now: dt.datetime | None = None) -> list[AccessRecord]:
        raise NotImplementedError


@dataclass
class Setup:
    container: Container
    network: FakeNetwork
    keyring: DerivedKeyring
    agencies: AgenciesServiceImpl
    server: IntermediateServerImpl
    registry: RegistryServiceImpl


@pytest.fixture
def setup(container: Container) -> Setup:
    # The registry refuses seeding 取得番号 unless told it may (embedded mode only).
    registry = RegistryServiceImpl(container.databases, container.registry.numbering,
                                   seeding_allowed=True)
    network = FakeNetwork(registry)
    keyring = DerivedKeyring.from_provider(container.keys, development=True)
    server = IntermediateServerImpl(container.databases, keyring, network.core_public_key())
    for agency_id in (CITY, PENSION, "mhlw"):
        network.servers[agency_id] = server
    agencies = AgenciesServiceImpl(container.databases, network, registry, keyring)
    for agency_id in (CITY, PENSION, "mhlw"):
        agencies.ensure_registered(agency_id)
    return Setup(container, network, keyring, agencies, server, registry)


def register_resident(setup: Setup, clerk_actor: object, **overrides: object
                      ) -> tuple[ResidentRecord, str]:
    """A real resident of the registry and their 個人番号."""
    resident = setup.container.registry.register_move_in(
        clerk_actor, new_resident(**overrides), dt.date.today())  # type: ignore[arg-type]
    number = setup.container.registry.numbering.individual_number(resident.resident_code)
    return resident, number

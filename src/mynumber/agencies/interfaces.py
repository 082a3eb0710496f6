"""What an agency's 中間サーバー (intermediate server) offers the web layer, the CLI, the seeder
and the benchmark: value types, the service protocol and its errors. Other contexts import this
module only.

Vocabulary (docs/glossary.md): 宛名番号 -> ``address_number`` (the agency's own number for a
person); 機関別符号 -> ``agency_code``; 副本 -> ``copy``; 処理通番 -> ``serial``.
The 個人番号 passes through :meth:`AgenciesService.enrol_person` only and is never kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mynumber.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from mynumber.network.interfaces import (
    AgencyRecord,
    ExchangeResult,
    IndividualNumberInAnswer,
    IndividualNumberInCopy,
    Outcome,
    RefusalReason,
)
from mynumber.registry.interfaces import ResidentRecord

# The network's errors for a 副本 carrying a 個人番号 (put_copy, put_copies, query raise them).
__all__ = ["IndividualNumberInAnswer", "IndividualNumberInCopy"]


@dataclass(frozen=True)
class CopyInput:
    """One 副本 to register (bulk seeding)."""

    address_number: str
    item_code: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class CopyRecord:
    """A 副本 as the agency holds it, under its own 機関別符号 for the person."""

    agency_id: str
    address_number: str
    item_code: str
    payload: dict[str, Any]
    version: int
    updated_at: dt.datetime


@dataclass(frozen=True)
class QueryResult:
    """The requester's view of one exchange: the core's outcome and, when provided, the data
    the provider sealed for this requester (already decrypted and its signature checked)."""

    serial: str
    outcome: Outcome
    reason: RefusalReason | None
    data: dict[str, Any] | None
    version: int | None = None
    as_of: dt.datetime | None = None


class AgenciesService(Protocol):
    """The agencies' side of the network. Each method is one transaction in the ``agencies``
    database with its record (audit event, or the sent/answered query row)."""

    def ensure_registered(self, agency_id: str) -> AgencyRecord:
        """Register the agency's public keys with the network unless it already has them."""
        ...

    def enrol_person(self, agency_id: str, address_number: str, individual_number: str) -> str:
        """Obtain the agency's 機関別符号 for a person whose number it lawfully holds: 取得番号
        from the registry, code from the network. Idempotent per address number. The number
        is used for this call only: never stored, logged or put in an error."""
        ...

    def enrol_known_residents(
        self, agency_id: str, address_numbers_by_resident: Mapping[int, str]
    ) -> dict[str, str]:
        """Seeding only: codes for residents (registry ids) the agency is taken to know, under
        the given address numbers. Returns address number -> agency code."""
        ...

    def agency_code(self, agency_id: str, address_number: str) -> str:
        """The agency's code for the person it knows by ``address_number``."""
        ...

    def enrol_with_acquisition_number(
        self, agency_id: str, address_number: str, acquisition_number: str
    ) -> str:
        """Obtain the agency's code with a 取得番号 the agency got without the number (JPKI
        利用者登録, or the counter). Returns the address number the person is enrolled under:
        ``address_number``, or the one the agency already knows the person by."""
        ...

    def address_number_for_code(self, agency_id: str, agency_code: str) -> str:
        """The agency's address number for one of its own codes (PersonNotEnrolled if none)."""
        ...

    def put_copy(
        self, agency_id: str, address_number: str, item_code: str, payload: Mapping[str, Any]
    ) -> CopyRecord:
        """Register or update a 副本; each update increments its version. A payload carrying
        a 個人番号 anywhere is refused (IndividualNumberInCopy) and nothing is written."""
        ...

    def put_copies(self, agency_id: str, copies: Sequence[CopyInput]) -> int:
        """Bulk form of :meth:`put_copy` for seeding; returns how many were written."""
        ...

    def copy(self, agency_id: str, address_number: str, item_code: str) -> CopyRecord:
        ...

    def query(
        self, agency_id: str, address_number: str, task_id: str, provider_id: str, item_code: str
    ) -> QueryResult:
        """情報照会: ask ``provider_id`` for ``item_code`` about the person, through the core.
        An answer carrying a 個人番号 is withheld (IndividualNumberInAnswer)."""
        ...

    def agency_codes(self, agency_id: str, address_numbers: Sequence[str]) -> dict[str, str]:
        """The agency's codes for many of its address numbers at once: address number ->
        code, numbers it has no person enrolled under left out."""
        ...

    def address_numbers_for_codes(self, agency_id: str, agency_codes: Sequence[str]
                                  ) -> dict[str, str]:
        """The agency's address numbers for many of its own codes at once: code -> address
        number, codes it does not know left out."""
        ...

    def query_batch(
        self, agency_id: str, address_numbers: Sequence[str], task_id: str, provider_id: str,
        item_code: str,
    ) -> list[QueryResult | None]:
        """情報照会 for many persons at once (a payout run): one signed batch through the core
        (``NetworkService.exchange_batch``: each person's exchange recorded and logged as a
        single one is), one sealed answer opened, the requester's records written in one
        transaction. Per address number, in order: its result, or None for a number the
        agency has no person enrolled under (no exchange was made for it). At most
        ``mynumber.network.interfaces.MAX_BATCH`` numbers."""
        ...

    def record_declined(
        self, agency_id: str, task_id: str, application_ref: str, documents: Sequence[str]
    ) -> ExchangeResult:
        """An application without the number: recorded by the core, no person linkage."""
        ...


# --- errors -------------------------------------------------------------------------------


class InvalidAgencyInput(InvalidInput):
    code = "invalid_agency_input"
    title = "Invalid input"


class PersonNotEnrolled(NotFound):
    code = "person_not_enrolled"
    title = "No agency code for this address number"


class CopyNotFound(NotFound):
    code = "copy_not_found"
    title = "No such copy"


class PersonAlreadyEnrolled(Conflict):
    code = "person_already_enrolled"
    title = "The person is already enrolled under another address number"


class RoutedQueryRejected(Forbidden):
    """A routed query whose core signature does not verify, or that is stale."""

    code = "routed_query_rejected"
    title = "Routed query not accepted"


class AgencyNotServed(Forbidden):
    code = "agency_not_served"
    title = "This intermediate server does not serve that agency"


class AnswerRejected(DomainError):
    """The provider's sealed answer could not be opened, or does not belong to this query."""

    code = "answer_rejected"
    status = 502
    title = "Answer not accepted"


class CopyNotEncrypted(DomainError):
    """A 副本 still in plaintext (written before the agencies migration 0002): never provided
    until ``mynumber agencies encrypt-copies`` has encrypted it under its agency's key."""

    code = "copy_not_encrypted"
    status = 503
    title = "Copy not yet encrypted"


class CopyUnreadable(DomainError):
    """A 副本 that does not decrypt with its agency's key: moved to another agency, person or
    item, tampered with, or encrypted for keys this server no longer holds."""

    code = "copy_unreadable"
    status = 500
    title = "Copy cannot be decrypted"


class AgencyKeysNotRegistered(Conflict):
    """A 副本 is encrypted to its agency's public key: none is registered nor held here."""

    code = "agency_keys_not_registered"
    title = "The agency has no registered encryption key"


class IntermediateServerUnavailable(DomainError):
    code = "intermediate_server_unavailable"
    status = 503
    title = "Intermediate server unavailable"


# Agencies the demo data and the portal's information sources name by id.
MHLW = "mhlw"
PENSION = "japan_pension_service"
KYOKAI = "kyokai_kenpo"


def resident_record_copy(r: ResidentRecord, household: Iterable[ResidentRecord]
                         ) -> dict[str, Any]:
    """住民票関係情報 as the municipality holds it: the 4 basic items and the household (the
    other members of ``household``)."""
    return {
        "name": r.name, "name_kana": r.name_kana, "birth_date": r.birth_date.isoformat(),
        "sex": r.sex.value, "address": r.address,
        "household": [
            {"name": o.name, "birth_date": o.birth_date.isoformat(),
             "relationship": o.relationship}
            for o in household if o.id != r.id
        ],
        "household_relationship": r.relationship, "moved_in": False,
        "municipality_code": r.municipality_code,
    }

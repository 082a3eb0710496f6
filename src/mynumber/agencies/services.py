"""Agencies' intermediate servers (中間サーバー), backed by the ``agencies`` database.

Two roles, one database (logical separation by ``agency_id``, as on J-LIS's platform):

- :class:`AgenciesServiceImpl`, the agency's own systems' side: enrol persons (宛名番号 ->
  機関別符号, via a one-time 取得番号 from the registry), keep 副本, and send queries through the
  core (:class:`~mynumber.network.interfaces.NetworkService`), opening the sealed answers.
- :class:`IntermediateServerImpl`, the provider's side the core calls
  (:class:`~mynumber.network.interfaces.IntermediateServer`): check the core's signature, look up
  the copy, decrypt it, seal it for the requester. This is the hot path of the exchange
  benchmark, so it is Core SQL, one indexed SELECT and one INSERT, with keys (and the agencies'
  unwrapped data keys) cached per agency.

Each agency's 副本 are encrypted under its own key (:mod:`mynumber.agencies.copy_encryption`):
writers need the agency's public key only, readers its private key.

The 個人番号 passes through :meth:`AgenciesServiceImpl.enrol_person` to the registry and is
neither stored, logged nor put in an error here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Table, and_, bindparam, func, insert, null, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber import audit, envelope
from mynumber.agencies import models as m
from mynumber.agencies.copy_encryption import (
    CopyDecryptionError,
    DataKey,
    DataKeyCache,
    encode_payload,
    new_data_key,
    unwrap_data_key,
)
from mynumber.agencies.interfaces import (
    AgenciesService,
    AgencyKeysNotRegistered,
    AgencyNotServed,
    AnswerRejected,
    CopyInput,
    CopyNotEncrypted,
    CopyNotFound,
    CopyRecord,
    CopyUnreadable,
    InvalidAgencyInput,
    PersonAlreadyEnrolled,
    PersonNotEnrolled,
    QueryResult,
    RoutedQueryRejected,
)
from mynumber.agencies.keyring import AGENCY_ID, AgencyKeyError, AgencyKeyring
from mynumber.db import Databases, HotConnections, HotSQL, in_chunk, one_of, utcnow
from mynumber.kernel.retry import (
    InfrastructureUnavailable,
    database_unavailable,
    retrying,
)
from mynumber.network.interfaces import (
    MAX_BATCH,
    AgencyRecord,
    BatchExchangeQuery,
    BatchExchangeResult,
    ExchangeQuery,
    ExchangeResult,
    IndividualNumberInAnswer,
    IndividualNumberInCopy,
    InfrastructureFailure,
    IntermediateServer,
    NetworkService,
    Operation,
    Outcome,
    RoutedQuery,
    SealedAnswer,
    UnknownAgency,
    contains_individual_number,
    text_contains_individual_number,
)
from mynumber.registry.interfaces import RegistryService

CONTEXT = "agencies"
log = logging.getLogger(__name__)
ADDRESS_NUMBER = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,39}$")
CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: A 副本's payload, as canonical JSON, may not exceed this.
MAX_PAYLOAD_BYTES = 64 * 1024
#: A routed query older (or further in the future) than this is refused as a replay.
ROUTED_QUERY_MAX_AGE = dt.timedelta(minutes=5)
BATCH = 2_000


def _check(pattern: re.Pattern[str], value: object, field: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidAgencyInput(f"{field}: not valid", field=field)
    return value


def check_agency_id(agency_id: object) -> str:
    return _check(AGENCY_ID, agency_id, "agency_id")


def check_address_number(address_number: object) -> str:
    return _check(ADDRESS_NUMBER, address_number, "address_number")


def _encoded_payload(payload: Mapping[str, Any]) -> bytes:
    """A 副本's payload checked (a JSON object within the size limit, no 個人番号) and encoded
    the one way it is sealed (``encode_payload``)."""
    if not isinstance(payload, Mapping):
        raise InvalidAgencyInput("payload: must be a JSON object", field="payload")
    try:
        encoded = encode_payload(dict(payload))
    except (TypeError, ValueError):
        raise InvalidAgencyInput("payload: not representable as JSON", field="payload") from None
    if len(encoded) > MAX_PAYLOAD_BYTES:
        raise InvalidAgencyInput(f"payload: larger than {MAX_PAYLOAD_BYTES} bytes",
                                 field="payload")
    # One pass over the text; the walk only confirms when the text has a candidate.
    text = encoded.decode()
    if text_contains_individual_number(text) and contains_individual_number(json.loads(text)):
        # 番号法: a 副本 is exchanged under the agency's code, never with the number. The
        # number itself is not repeated in the error (nor logged).
        raise IndividualNumberInCopy("payload: contains an individual number (a 12-digit "
                                     "value with a valid check digit)", field="payload")
    return encoded


def _check_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(_encoded_payload(payload))
    return result


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- the agency's own side ------------------------------------------------------------------


# The exchange's hot path runs these directly on the driver (mynumber.db.HotSQL).
_FIND_CODE = HotSQL("SELECT agency_code FROM persons "
                    "WHERE agency_id = :agency_id AND address_number = :address_number")
_RECORD_SENT = HotSQL(
    "INSERT INTO sent_queries (serial, agency_id, provider_id, task_id, item_code, "
    "address_number, outcome, reason, sent_at) VALUES (:serial, :agency_id, :provider_id, "
    ":task_id, :item_code, :address_number, :outcome, :reason, :sent_at)")
# A payout run's bulk reads of the agency's persons (the column's condition is appended).
_PERSONS_BY = {
    "address_number": "SELECT address_number, agency_code FROM persons "
                      "WHERE agency_id = %s AND address_number",
    "agency_code": "SELECT address_number, agency_code FROM persons "
                   "WHERE agency_id = %s AND agency_code",
}
_SENT_COLUMNS = ("serial", "agency_id", "provider_id", "task_id", "item_code",
                 "address_number", "outcome", "reason", "sent_at")
_RECORD_SENT_MANY = f"COPY sent_queries ({', '.join(_SENT_COLUMNS)}) FROM STDIN"
_HOT_FIND_COPY = HotSQL(
    "SELECT payload, sealed, key_id, version, updated_at FROM copies "
    "WHERE agency_id = :agency_id AND agency_code = :agency_code AND item_code = :item_code")
_HOT_FIND_DATA_KEY = HotSQL("SELECT agency_id, wrapped FROM copy_keys WHERE id = :id")
_HOT_RECORD_ANSWER = HotSQL(
    "INSERT INTO answered_queries (serial, agency_id, requester_id, task_id, item_code, held, "
    "answered_at) VALUES (:serial, :agency_id, :requester_id, :task_id, :item_code, :held, "
    ":answered_at)")
_SENT_RECORDED = HotSQL("SELECT 1 FROM sent_queries WHERE agency_id = :agency_id "
                        "AND serial = :serial")
_ANSWER_RECORDED = HotSQL("SELECT 1 FROM answered_queries WHERE agency_id = :agency_id "
                          "AND serial = :serial")
CODE_CACHE_SIZE = 100_000


@dataclasses.dataclass(frozen=True)
class EncryptionReport:
    """What ``encrypt_plaintext_copies`` did: rows encrypted per agency, plaintext discarded
    beside an existing encrypted copy, and agencies skipped (no public key: the reason)."""

    encrypted: dict[str, int]
    discarded: int
    skipped: dict[str, str]


class _Vault:
    """The agencies' data keys as one process uses them (:mod:`.copy_encryption`)."""

    def __init__(self, databases: Databases, keyring: AgencyKeyring, hot: HotConnections,
                 clock: Callable[[], dt.datetime]) -> None:
        self.databases = databases
        self.keyring = keyring
        self.hot = hot
        self.clock = clock
        self.cache = DataKeyCache()

    def writing_key(self, agency_id: str, public_key: bytes) -> DataKey:
        """This process's data key for ``agency_id`` (made and stored wrapped on first use)."""
        found = self.cache.writing(agency_id, public_key)
        if found is not None:
            return found
        key, wrapped = new_data_key(agency_id, public_key)
        with self.databases.unit_of_work(CONTEXT) as session:
            row = m.CopyKey(agency_id=agency_id, wrapped=wrapped, created_at=self.clock())
            session.add(row)
            session.flush()
            key_id = row.id
            audit.record(session, m.AuditEvent, "agencies:copy_key:create",
                         actor=f"agency:{agency_id}", subject=f"agency:{agency_id}",
                         key_id=key_id)
        return self.cache.set_writing(public_key, DataKey(agency_id, key_id, AESGCM(key)))

    def reading_key(self, agency_id: str, key_id: int, raw: Any = None) -> DataKey:
        """The data key ``key_id`` of ``agency_id``, unwrapped with the agency's private key
        (:class:`CopyUnreadable` when it is another agency's, or does not open)."""
        found = self.cache.get(key_id)
        if found is None:
            if raw is None:
                with self.hot.connection(autocommit=True) as own:
                    rows = self.hot.run(own, _HOT_FIND_DATA_KEY, {"id": key_id})
            else:
                rows = self.hot.run(raw, _HOT_FIND_DATA_KEY, {"id": key_id})
            if not rows or rows[0][0] != agency_id:
                raise self._unreadable(agency_id)
            try:
                private = self.keyring.keys(agency_id).encryption
                key = unwrap_data_key(agency_id, rows[0][1], private)
            except CopyDecryptionError:
                raise self._unreadable(agency_id) from None
            found = self.cache.put(DataKey(agency_id, key_id, AESGCM(key)))
        if found.agency_id != agency_id:
            raise self._unreadable(agency_id)
        return found

    def open(self, agency_id: str, agency_code: str, item_code: str, sealed: bytes | None,
             key_id: int | None, raw: Any = None) -> dict[str, Any]:
        if sealed is None or key_id is None:
            raise self._unreadable(agency_id)
        try:
            return self.reading_key(agency_id, key_id, raw).decrypt(agency_code, item_code,
                                                                    sealed)
        except CopyDecryptionError:
            raise self._unreadable(agency_id) from None

    @staticmethod
    def _unreadable(agency_id: str) -> CopyUnreadable:
        # Moved, tampered or for keys no longer held: an operator's matter, never the data.
        log.warning("a copy of agency %s does not decrypt with its key (moved, tampered with, "
                    "or encrypted for keys this server does not hold)", agency_id)
        return CopyUnreadable("the copy does not decrypt with its agency's key",
                              field="item_code")


def _legacy_payload(payload: Any) -> dict[str, Any] | None:
    """The plaintext payload of a row written before encryption (None: there is none)."""
    if isinstance(payload, str | bytes):  # SQLite hands JSON back as text
        payload = json.loads(payload)
    return payload if isinstance(payload, dict) else None


class AgenciesServiceImpl:
    def __init__(
        self,
        databases: Databases,
        network: NetworkService,
        registry: RegistryService,
        keyring: AgencyKeyring,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.databases = databases
        self.network = network
        self.registry = registry
        self.keyring = keyring
        self.clock = clock
        self._provider_keys: dict[str, bytes] = {}
        self._codes: dict[tuple[str, str], str] = {}
        self._hot = HotConnections(databases, CONTEXT)
        self._vault = _Vault(databases, keyring, self._hot, clock)

    # -- keys --------------------------------------------------------------------------------
    def ensure_registered(self, agency_id: str) -> AgencyRecord:
        check_agency_id(agency_id)
        keys = self.keyring.keys(agency_id)
        record = self.network.agency(agency_id)
        if (record.signing_key == keys.signing_public
                and record.encryption_key == keys.encryption_public):
            return record
        record = self.network.register_agency_keys(
            agency_id, keys.signing_public, keys.encryption_public
        )
        with self.databases.unit_of_work(CONTEXT) as session:
            audit.record(session, m.AuditEvent, "agencies:keys:register",
                         actor=f"agency:{agency_id}", subject=f"agency:{agency_id}",
                         signing_key=keys.signing_public.hex(),
                         encryption_key=keys.encryption_public.hex())
        return record

    # -- persons -----------------------------------------------------------------------------
    @staticmethod
    def _code_of(session: Session, agency_id: str, address_number: str) -> str | None:
        return session.scalar(
            select(m.Person.agency_code).where(m.Person.agency_id == agency_id,
                                               m.Person.address_number == address_number)
        )

    @staticmethod
    def _number_of(session: Session, agency_id: str, agency_code: str) -> str | None:
        return session.scalar(
            select(m.Person.address_number).where(m.Person.agency_id == agency_id,
                                                  m.Person.agency_code == agency_code)
        )

    def agency_code(self, agency_id: str, address_number: str) -> str:
        check_agency_id(agency_id)
        check_address_number(address_number)
        with self.databases.unit_of_work(CONTEXT) as session:
            code = self._code_of(session, agency_id, address_number)
        if code is None:
            raise PersonNotEnrolled("no person is enrolled under this address number",
                                    field="address_number")
        return code

    def _add_person(self, agency_id: str, address_number: str, code: str, via: str) -> None:
        with self.databases.unit_of_work(CONTEXT) as session:
            session.add(m.Person(agency_id=agency_id, address_number=address_number,
                                 agency_code=code, created_at=self.clock()))
            audit.record(session, m.AuditEvent, "agencies:person:enrol",
                         actor=f"agency:{agency_id}", subject=f"agency:{agency_id}",
                         address_number=address_number, via=via)

    def address_number_for_code(self, agency_id: str, agency_code: str) -> str:
        check_agency_id(agency_id)
        if not agency_code or len(agency_code) > 64:
            raise PersonNotEnrolled("no person has this agency code", field="agency_code")
        with self.databases.unit_of_work(CONTEXT) as session:
            number = self._number_of(session, agency_id, agency_code)
        if number is None:
            raise PersonNotEnrolled("no person has this agency code", field="agency_code")
        return number

    def enrol_with_acquisition_number(
        self, agency_id: str, address_number: str, acquisition_number: str
    ) -> str:
        check_agency_id(agency_id)
        check_address_number(address_number)
        code = self.network.issue_agency_code(agency_id, acquisition_number)
        with self.databases.unit_of_work(CONTEXT) as session:
            known = self._number_of(session, agency_id, code)
            if known is not None:
                return known
        try:
            self._add_person(agency_id, address_number, code, via="acquisition_number")
        except IntegrityError:
            with self.databases.unit_of_work(CONTEXT) as session:
                known = self._number_of(session, agency_id, code)
            if known is not None:  # enrolled concurrently
                return known
            raise PersonAlreadyEnrolled(
                "another person is enrolled under this address number", field="address_number"
            ) from None
        return address_number

    def enrol_person(self, agency_id: str, address_number: str, individual_number: str) -> str:
        check_agency_id(agency_id)
        check_address_number(address_number)
        with self.databases.unit_of_work(CONTEXT) as session:
            known = self._code_of(session, agency_id, address_number)
        if known is not None:
            return known
        # The number goes to the registry and nowhere else; only the 取得番号 travels on.
        acquisition = self.registry.issue_acquisition_number(agency_id, individual_number)
        del individual_number
        code = self.network.issue_agency_code(agency_id, acquisition)
        try:
            self._add_person(agency_id, address_number, code, via="individual_number")
        except IntegrityError:
            with self.databases.unit_of_work(CONTEXT) as session:
                known = self._code_of(session, agency_id, address_number)
                if known is not None:  # a concurrent enrolment of the same address number
                    return known
                other = session.scalar(select(m.Person.address_number).where(
                    m.Person.agency_id == agency_id, m.Person.agency_code == code))
            raise PersonAlreadyEnrolled(
                "this person is already enrolled under another address number",
                field="address_number", existing_address_number=other,
            ) from None
        return code

    def _issue_codes(self, agency_id: str, tokens: Sequence[str]) -> list[str]:
        return self.network.issue_agency_codes(agency_id, list(tokens))

    def enrol_known_residents(
        self, agency_id: str, address_numbers_by_resident: Mapping[int, str]
    ) -> dict[str, str]:
        check_agency_id(agency_id)
        for address_number in address_numbers_by_resident.values():
            check_address_number(address_number)
        wanted = dict(address_numbers_by_resident)
        if len(set(wanted.values())) != len(wanted):
            raise InvalidAgencyInput("address_number: the same address number given twice",
                                     field="address_number")
        result: dict[str, str] = {}
        pg = self.databases.is_postgres
        with self.databases.unit_of_work(CONTEXT) as session:
            for chunk in _chunks(list(wanted.values()), in_chunk(pg)):
                for address_number, code in session.execute(
                    select(m.Person.address_number, m.Person.agency_code).where(
                        m.Person.agency_id == agency_id,
                        one_of(m.Person.address_number, chunk, postgres=pg))
                ):
                    result[address_number] = code
        todo = [(rid, number) for rid, number in wanted.items() if number not in result]
        if not todo:
            return result
        now = self.clock()
        with self.databases.unit_of_work(CONTEXT) as session:
            for chunk in _chunks(todo):
                tokens = self.registry.acquisition_numbers_for_residents(
                    agency_id, [rid for rid, _ in chunk]
                )
                codes = self._issue_codes(agency_id, [tokens[rid] for rid, _ in chunk])
                rows = [{"agency_id": agency_id, "address_number": number,
                         "agency_code": code, "created_at": now}
                        for (_, number), code in zip(chunk, codes, strict=True)]
                session.execute(insert(cast(Table, m.Person.__table__)), rows)  # Core: no ORM work
                result.update((row["address_number"], row["agency_code"]) for row in rows)
            audit.record(session, m.AuditEvent, "agencies:person:seed",
                         actor="seed", subject=f"agency:{agency_id}", count=len(todo))
        return result

    # -- 副本 --------------------------------------------------------------------------------
    def _required_code(self, session: Session, agency_id: str, address_number: str) -> str:
        code = self._code_of(session, agency_id, address_number)
        if code is None:
            raise PersonNotEnrolled("no person is enrolled under this address number",
                                    field="address_number")
        return code

    def put_copy(
        self, agency_id: str, address_number: str, item_code: str, payload: Mapping[str, Any]
    ) -> CopyRecord:
        check_agency_id(agency_id)
        check_address_number(address_number)
        _check(CODE, item_code, "item_code")
        data = _check_payload(payload)
        key = self._vault.writing_key(agency_id, self._public_key(agency_id))
        for attempt in (1, 2):
            try:
                with self.databases.unit_of_work(CONTEXT) as session:
                    code = self._required_code(session, agency_id, address_number)
                    now = self.clock()
                    sealed = key.encrypt(code, item_code, data)
                    row = session.scalars(
                        select(m.Copy).where(m.Copy.agency_id == agency_id,
                                             m.Copy.agency_code == code,
                                             m.Copy.item_code == item_code).with_for_update()
                    ).first()
                    if row is None:
                        row = m.Copy(agency_id=agency_id, agency_code=code,
                                     item_code=item_code, payload=None, key_id=key.key_id,
                                     sealed=sealed, version=1, updated_at=now)
                        session.add(row)
                    else:
                        row.payload = None
                        row.key_id = key.key_id
                        row.sealed = sealed
                        row.version += 1
                        row.updated_at = now
                    session.flush()
                    audit.record(session, m.AuditEvent, "agencies:copy:put",
                                 actor=f"agency:{agency_id}", subject=f"agency:{agency_id}",
                                 address_number=address_number, item=item_code,
                                 version=row.version)
                    return CopyRecord(agency_id, address_number, item_code, data, row.version,
                                      now)
            except IntegrityError:  # a concurrent first registration: update it instead
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def put_copies(self, agency_id: str, copies: Sequence[CopyInput]) -> int:
        check_agency_id(agency_id)
        checked = []
        for given in copies:
            check_address_number(given.address_number)
            _check(CODE, given.item_code, "item_code")
            checked.append((given.address_number, given.item_code,
                            _encoded_payload(given.payload)))
        key = self._vault.writing_key(agency_id, self._public_key(agency_id))
        now = self.clock()
        pg = self.databases.is_postgres
        with self.databases.unit_of_work(CONTEXT) as session:
            codes: dict[str, str] = {}
            numbers = sorted({number for number, _, _ in checked})
            for chunk in _chunks(numbers, in_chunk(pg)):
                for number, code in session.execute(
                    select(m.Person.address_number, m.Person.agency_code).where(
                        m.Person.agency_id == agency_id,
                        one_of(m.Person.address_number, chunk, postgres=pg))
                ):
                    codes[number] = code
            missing = [number for number in numbers if number not in codes]
            if missing:
                raise PersonNotEnrolled(
                    f"{len(missing)} address numbers have no enrolled person",
                    field="address_number")
            latest: dict[tuple[str, str], bytes] = {}
            for number, item_code, data in checked:  # the last one given for a key wins
                latest[(codes[number], item_code)] = data
            # Per item, the codes among those given (an IN on (code, item) pairs is not
            # searched through the index on SQLite: it would read all of the agency's copies).
            by_item: dict[str, list[str]] = {}
            for code, item in latest:
                by_item.setdefault(item, []).append(code)
            existing: set[tuple[str, str]] = set()
            for item, item_codes in by_item.items():
                for chunk in _chunks(item_codes, in_chunk(pg)):
                    for (code,) in session.execute(
                        select(m.Copy.agency_code).where(
                            m.Copy.agency_id == agency_id, m.Copy.item_code == item,
                            one_of(m.Copy.agency_code, chunk, postgres=pg))
                    ):
                        existing.add((code, item))
            new = [{"agency_id": agency_id, "agency_code": code, "item_code": item,
                    "payload": None, "key_id": key.key_id,
                    "sealed": key.seal(code, item, data), "version": 1, "updated_at": now}
                   for (code, item), data in latest.items() if (code, item) not in existing]
            for chunk in _chunks(new):
                session.execute(insert(cast(Table, m.Copy.__table__)), list(chunk))
            changed = [{"a": agency_id, "c": code, "i": item, "k": key.key_id,
                        "s": key.seal(code, item, data), "t": now}
                       for (code, item), data in latest.items() if (code, item) in existing]
            if changed:
                table = cast(Table, m.Copy.__table__)
                session.connection().execute(
                    update(table).where(and_(
                        table.c.agency_id == bindparam("a"), table.c.agency_code == bindparam("c"),
                        table.c.item_code == bindparam("i"),
                    )).values(payload=null(), key_id=bindparam("k"), sealed=bindparam("s"),
                              version=table.c.version + 1, updated_at=bindparam("t")),
                    changed,
                )
            audit.record(session, m.AuditEvent, "agencies:copy:bulk_put",
                         actor=f"agency:{agency_id}", subject=f"agency:{agency_id}",
                         inserted=len(new), updated=len(changed))
        return len(latest)

    def copy(self, agency_id: str, address_number: str, item_code: str) -> CopyRecord:
        check_agency_id(agency_id)
        check_address_number(address_number)
        _check(CODE, item_code, "item_code")
        with self.databases.unit_of_work(CONTEXT) as session:
            code = self._required_code(session, agency_id, address_number)
            row = session.scalars(select(m.Copy).where(
                m.Copy.agency_id == agency_id, m.Copy.agency_code == code,
                m.Copy.item_code == item_code)).first()
            if row is None:
                raise CopyNotFound("this agency holds no such copy for the person",
                                   field="item_code")
            legacy = _legacy_payload(row.payload)
            sealed, key_id, version, updated_at = (row.sealed, row.key_id, row.version,
                                                   row.updated_at)
        if legacy is not None:  # not yet encrypted: the agency reads its own plaintext
            data = legacy
        else:
            try:
                data = self._vault.open(agency_id, code, item_code, sealed, key_id)
            except AgencyKeyError as exc:
                raise AgencyNotServed(f"this process does not hold the keys of {agency_id}; "
                                      f"its copies are read on its intermediate server ({exc})",
                                      field="agency_id") from None
        return CopyRecord(agency_id, address_number, item_code, data, version, updated_at)

    # -- encryption of the 副本 --------------------------------------------------------------
    def _public_key(self, agency_id: str) -> bytes:
        """The agency's X25519 public key its copies are encrypted to: the half of the keys
        this process holds for it, else the network directory's registered key."""
        try:
            return self.keyring.keys(agency_id).encryption_public
        except AgencyKeyError:
            pass
        key = self.network.agency(agency_id).encryption_key
        if key is None:
            raise AgencyKeysNotRegistered(
                f"{agency_id} has no registered encryption key, and its copies are encrypted "
                "to it: register the agency's public keys first (`mynumber network "
                "register-keys`)", field="agency_id")
        return key

    def plaintext_copies(self) -> dict[str, int]:
        """Rows per agency still holding a plaintext payload (written before encryption)."""
        with self.databases.unit_of_work(CONTEXT) as session:
            return {agency: count for agency, count in session.execute(
                select(m.Copy.agency_id, func.count()).where(m.Copy.payload.is_not(None))
                .group_by(m.Copy.agency_id).order_by(m.Copy.agency_id))}

    def encrypt_plaintext_copies(self, agency_ids: Collection[str] | None = None, *,
                                 batch: int = BATCH) -> EncryptionReport:
        """Encrypt every plaintext 副本 (of ``agency_ids``, default all) under its agency's
        key, in batches of one transaction each; resumable and idempotent. A row that also
        has an encrypted copy (its plaintext written around this service) keeps the encrypted
        one and loses the plaintext. Needs the agencies' public keys only."""
        wanted = sorted(self.plaintext_copies())
        if agency_ids is not None:
            wanted = [a for a in wanted if a in set(agency_ids)]
        table = cast(Table, m.Copy.__table__)
        encrypted: dict[str, int] = {}
        skipped: dict[str, str] = {}
        discarded = 0
        for agency_id in wanted:
            try:
                key = self._vault.writing_key(agency_id, self._public_key(agency_id))
            except (AgencyKeysNotRegistered, UnknownAgency) as exc:
                skipped[agency_id] = exc.detail
                continue
            done = 0
            with self.databases.unit_of_work(CONTEXT) as session:
                result = cast(CursorResult[Any], session.execute(
                    update(table).where(table.c.agency_id == agency_id,
                                        table.c.payload.is_not(None),
                                        table.c.sealed.is_not(None))
                    .values(payload=null())))
                discarded += int(result.rowcount or 0)
            while True:
                with self.databases.unit_of_work(CONTEXT) as session:
                    rows = session.execute(
                        select(table.c.id, table.c.agency_code, table.c.item_code,
                               table.c.payload)
                        .where(table.c.agency_id == agency_id, table.c.payload.is_not(None),
                               table.c.sealed.is_(None))
                        .order_by(table.c.id).limit(batch).with_for_update()).all()
                    if not rows:
                        break
                    values = []
                    for row_id, code, item, payload in rows:
                        data = _legacy_payload(payload)
                        values.append({"i": row_id, "k": key.key_id,
                                       "s": key.encrypt(code, item, data or {})})
                    session.connection().execute(
                        update(table).where(table.c.id == bindparam("i"),
                                            table.c.sealed.is_(None))
                        .values(payload=null(), key_id=bindparam("k"), sealed=bindparam("s")),
                        values)
                    audit.record(session, m.AuditEvent, "agencies:copy:encrypt",
                                 actor="operator", subject=f"agency:{agency_id}",
                                 count=len(values), key_id=key.key_id)
                    done += len(values)
            encrypted[agency_id] = done
        return EncryptionReport(encrypted, discarded, skipped)

    # -- 情報照会 ------------------------------------------------------------------------------
    def _provider_signing_key(self, provider_id: str, *, refresh: bool = False) -> bytes:
        key = None if refresh else self._provider_keys.get(provider_id)
        if key is None:
            key = self.network.agency(provider_id).signing_key
            if key is None:
                raise AnswerRejected("the provider has no registered signing key")
            self._provider_keys[provider_id] = key
        return key

    def _open(self, agency_id: str, provider_id: str, item_code: str,
              result: ExchangeResult) -> dict[str, Any]:
        assert result.sealed is not None
        recipient = self.keyring.keys(agency_id).encryption
        info = envelope.info_for(result.serial)
        try:
            body = envelope.open_sealed(result.sealed, recipient,
                                        self._provider_signing_key(provider_id), info)
        except envelope.EnvelopeError:
            # The provider may have rotated its keys since we cached them: ask once more.
            try:
                body = envelope.open_sealed(
                    result.sealed, recipient,
                    self._provider_signing_key(provider_id, refresh=True), info)
            except envelope.EnvelopeError as exc:
                raise AnswerRejected(f"the provider's answer cannot be accepted: {exc}") from None
        if (body.get("serial") != result.serial or body.get("item") != item_code
                or body.get("provider") != provider_id or not isinstance(body.get("data"), dict)):
            raise AnswerRejected("the provider's answer belongs to another exchange")
        if contains_individual_number(body["data"]):
            # Defence in depth: a provider that stored such a copy anyway is not believed.
            raise IndividualNumberInAnswer("the provider's answer carries an individual number "
                                           "and was withheld")
        return body

    def _record_sent(self, agency_id: str, address_number: str, query: ExchangeQuery,
                     result: ExchangeResult, outcome: str, reason: str | None) -> None:
        # The sent_queries row is the requester's record of the exchange (the core keeps the
        # authoritative one in its log); one Core insert keeps the hot path short.
        params = {
            "serial": result.serial, "agency_id": agency_id,
            "provider_id": query.provider_id, "task_id": query.task_id,
            "item_code": query.item_code, "address_number": address_number,
            "outcome": outcome, "reason": reason, "sent_at": query.requested_at,
        }
        committing = False

        def attempt(number: int) -> None:
            nonlocal committing
            if number and committing:
                # The COMMIT that failed may have landed: a 処理通番 tells (a refusal before
                # authentication has none, and is then not written twice).
                if not result.serial or self._sent_recorded(agency_id, result.serial):
                    return
            # One statement, committed as it runs (no BEGIN/COMMIT round trips): from the
            # moment it is sent, its outcome may be unknown.
            committing = True
            with self._hot.connection(autocommit=True) as raw:
                self._hot.run(raw, _RECORD_SENT, params)

        try:
            retrying(attempt, what=f"sent query {result.serial}")
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # Not recorded here, so not released: the core's record stands (docs: operators
            # reconcile by the 処理通番 in this line).
            log.warning("infrastructure failure requester_database: the answer to exchange %s "
                        "was not released to %s (%s)", result.serial or "-", agency_id,
                        type(exc).__name__)
            raise self._unavailable(InfrastructureFailure.REQUESTER_DATABASE) from None

    def _sent_recorded(self, agency_id: str, serial: str) -> bool:
        with self._hot.connection() as raw:
            return bool(self._hot.run(raw, _SENT_RECORDED,
                                      {"agency_id": agency_id, "serial": serial}))

    def _unavailable(self, failure: InfrastructureFailure) -> InfrastructureUnavailable:
        try:
            self.network.count_infrastructure_failure(Operation.EXCHANGE, failure)
        except Exception as exc:  # counting must not hide the failure being reported
            log.warning("infrastructure failure not counted (%s)", type(exc).__name__)
        return InfrastructureUnavailable(
            f"the exchange could not be completed ({failure.value}); send it again later",
            reason=failure.value)

    def _find_code(self, agency_id: str, address_number: str) -> str | None:
        def attempt(_: int) -> list[tuple[Any, ...]]:
            with self._hot.connection() as raw:
                return self._hot.run(raw, _FIND_CODE, {"agency_id": agency_id,
                                                       "address_number": address_number})

        try:  # a read: repeated after a lost connection whenever it broke
            rows = retrying(attempt, what="agency code")
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log.warning("infrastructure failure requester_database: no exchange for %s (%s)",
                        agency_id, type(exc).__name__)
            raise self._unavailable(InfrastructureFailure.REQUESTER_DATABASE) from None
        return rows[0][0] if rows else None

    def query(
        self, agency_id: str, address_number: str, task_id: str, provider_id: str, item_code: str
    ) -> QueryResult:
        check_agency_id(agency_id)
        check_address_number(address_number)
        _check(CODE, task_id, "task_id")
        check_agency_id(provider_id)
        _check(CODE, item_code, "item_code")
        # A person's code never changes once enrolled, so it may be cached.
        code = self._codes.get((agency_id, address_number))
        if code is None:
            code = self._find_code(agency_id, address_number)
            if code is not None:
                if len(self._codes) >= CODE_CACHE_SIZE:
                    self._codes.clear()
                self._codes[(agency_id, address_number)] = code
        if code is None:
            raise PersonNotEnrolled("no person is enrolled under this address number",
                                    field="address_number")
        keys = self.keyring.keys(agency_id)
        unsigned = ExchangeQuery(
            requester_id=agency_id, task_id=task_id, provider_id=provider_id,
            item_code=item_code, subject_code=code, requested_at=self.clock(),
            nonce=secrets.token_urlsafe(16),
        )
        query = dataclasses.replace(unsigned,
                                    signature=keys.signing.sign(unsigned.signed_bytes()))
        # InfrastructureUnavailable (503) passes through: nothing moved, nothing to record.
        result = self.network.exchange(query)
        body: dict[str, Any] | None = None
        if result.sealed is not None:
            try:
                body = self._open(agency_id, provider_id, item_code, result)
            except (AnswerRejected, IndividualNumberInAnswer) as exc:
                self._record_sent(agency_id, address_number, query, result,
                                  result.outcome.value, exc.code)
                raise
        self._record_sent(agency_id, address_number, query, result, result.outcome.value,
                          None if result.reason is None else result.reason.value)
        if body is None:
            return QueryResult(result.serial, result.outcome, result.reason, None)
        as_of = body.get("as_of")
        return QueryResult(
            result.serial, result.outcome, result.reason, body["data"],
            version=body.get("version") if isinstance(body.get("version"), int) else None,
            as_of=dt.datetime.fromisoformat(as_of) if isinstance(as_of, str) else None,
        )

    # -- 情報照会 in batches (a payout run) -------------------------------------------------
    def _persons(self, agency_id: str, column: str, values: Sequence[str]
                 ) -> list[tuple[str, str]]:
        """(address number, agency code) of the agency's persons whose ``column``
        (``address_number`` or ``agency_code``) is one of ``values``: straight on the driver
        (a payout run reads thousands per batch)."""
        assert column in ("address_number", "agency_code")
        wanted = sorted(set(values))
        postgres = self.databases.is_postgres
        found: list[tuple[str, str]] = []

        def attempt(_: int) -> None:
            found.clear()
            with self._hot.connection(autocommit=True) as raw:
                cursor = raw.cursor()
                try:
                    for chunk in _chunks(wanted, in_chunk(postgres)):
                        if postgres:
                            cursor.execute(_PERSONS_BY[column] + " = ANY(%s)",
                                           (agency_id, list(chunk)))
                        else:
                            marks = ", ".join("?" * len(chunk))
                            cursor.execute(
                                _PERSONS_BY[column].replace("%s", "?") + f" IN ({marks})",
                                (agency_id, *chunk))
                        found.extend((str(a), str(c)) for a, c in cursor.fetchall())
                finally:
                    cursor.close()

        try:  # a read: repeated after a lost connection
            retrying(attempt, what="agency codes")
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            raise self._unavailable(InfrastructureFailure.REQUESTER_DATABASE) from None
        return found

    def agency_codes(self, agency_id: str, address_numbers: Sequence[str]) -> dict[str, str]:
        check_agency_id(agency_id)
        for number in address_numbers:
            check_address_number(number)
        return dict(self._persons(agency_id, "address_number", address_numbers))

    def address_numbers_for_codes(self, agency_id: str, agency_codes: Sequence[str]
                                  ) -> dict[str, str]:
        check_agency_id(agency_id)
        codes = [c for c in agency_codes if isinstance(c, str) and 0 < len(c) <= 64]
        return {code: number for number, code in
                self._persons(agency_id, "agency_code", codes)}

    def query_batch(
        self, agency_id: str, address_numbers: Sequence[str], task_id: str, provider_id: str,
        item_code: str,
    ) -> list[QueryResult | None]:
        check_agency_id(agency_id)
        _check(CODE, task_id, "task_id")
        check_agency_id(provider_id)
        _check(CODE, item_code, "item_code")
        if not 0 < len(address_numbers) <= MAX_BATCH:
            raise InvalidAgencyInput(f"a batch holds 1 to {MAX_BATCH:,} address numbers",
                                     field="address_numbers")
        for number in address_numbers:
            check_address_number(number)
        codes = {a: c for a, c in
                 self._persons(agency_id, "address_number", address_numbers)}
        asked = [n for n in address_numbers if n in codes]
        out: list[QueryResult | None] = [None] * len(address_numbers)
        if not asked:
            return out
        keys = self.keyring.keys(agency_id)
        unsigned = BatchExchangeQuery(
            requester_id=agency_id, task_id=task_id, provider_id=provider_id,
            item_code=item_code, subject_codes=tuple(codes[n] for n in asked),
            requested_at=self.clock(), nonce=secrets.token_urlsafe(16))
        query = dataclasses.replace(unsigned,
                                    signature=keys.signing.sign(unsigned.signed_bytes()))
        # InfrastructureUnavailable (503) passes through: nothing moved, nothing recorded.
        batch = self.network.exchange_batch(query)
        if len(batch.results) != len(asked):
            raise AnswerRejected("the core's answer does not match the batch")
        answers: dict[str, dict[str, Any]] = {}
        try:
            if batch.sealed is not None:
                answers = self._open_batch(agency_id, provider_id, item_code, batch)
            for result in batch.results:
                if result.sealed is not None:  # a provider that answered one by one
                    answers[result.serial] = self._open(agency_id, provider_id, item_code,
                                                        result)
        except (AnswerRejected, IndividualNumberInAnswer) as exc:
            self._record_sent_many(agency_id, asked, query, batch, exc.code)
            raise
        self._record_sent_many(agency_id, asked, query, batch, None)
        positions: dict[str, list[int]] = {}
        for i, number in enumerate(address_numbers):
            positions.setdefault(number, []).append(i)
        for number, result in zip(asked, batch.results, strict=True):
            body = answers.get(result.serial) if result.outcome is Outcome.PROVIDED else None
            as_of = body.get("as_of") if body else None
            version = body.get("version") if body else None
            answer = QueryResult(
                result.serial, result.outcome, result.reason,
                body["data"] if body else None,
                version=version if isinstance(version, int) else None,
                as_of=dt.datetime.fromisoformat(as_of) if isinstance(as_of, str) else None)
            out[positions[number].pop(0)] = answer
        return out

    def _open_batch(self, agency_id: str, provider_id: str, item_code: str,
                    batch: BatchExchangeResult) -> dict[str, dict[str, Any]]:
        """The provider's one envelope for the batch: serial -> {data, as_of, version}, each
        answer checked to belong to a provided exchange of this batch."""
        assert batch.sealed is not None
        recipient = self.keyring.keys(agency_id).encryption
        info = envelope.info_for(batch.batch_id)
        try:
            body = envelope.open_sealed(batch.sealed, recipient,
                                        self._provider_signing_key(provider_id), info)
        except envelope.EnvelopeError:
            try:
                body = envelope.open_sealed(
                    batch.sealed, recipient,
                    self._provider_signing_key(provider_id, refresh=True), info)
            except envelope.EnvelopeError as exc:
                raise AnswerRejected(f"the provider's answer cannot be accepted: {exc}") from None
        answers = body.get("answers")
        provided = {r.serial for r in batch.results if r.outcome is Outcome.PROVIDED}
        if (body.get("batch") != batch.batch_id or body.get("provider") != provider_id
                or body.get("item") != item_code or not isinstance(answers, dict)
                or set(answers) != provided
                or not all(isinstance(a, dict) and isinstance(a.get("data"), dict)
                           for a in answers.values())):
            raise AnswerRejected("the provider's answer belongs to another exchange")
        if text_contains_individual_number(json.dumps(
                [a["data"] for a in answers.values()], ensure_ascii=False)):
            raise IndividualNumberInAnswer("the provider's answer carries an individual number "
                                           "and was withheld")
        return answers

    def _record_sent_many(self, agency_id: str, address_numbers: Sequence[str],
                          query: BatchExchangeQuery, batch: BatchExchangeResult,
                          error: str | None) -> None:
        """The requester's record of every exchange of the batch, in one transaction."""
        rows = [{
            "serial": result.serial, "agency_id": agency_id,
            "provider_id": query.provider_id, "task_id": query.task_id,
            "item_code": query.item_code, "address_number": number,
            "outcome": result.outcome.value,
            "reason": error if error and result.outcome is Outcome.PROVIDED
            else (None if result.reason is None else result.reason.value),
            "sent_at": query.requested_at,
        } for number, result in zip(address_numbers, batch.results, strict=True)]
        committing = False

        def attempt(number: int) -> None:
            nonlocal committing
            if number and committing:
                first = batch.results[0].serial
                if not first or self._sent_recorded(agency_id, first):
                    return
            committing = True
            with self._hot.connection() as raw:
                cursor = raw.cursor()
                try:
                    if self.databases.is_postgres:
                        # One COPY stream (psycopg formats the rows in C).
                        with cursor.copy(_RECORD_SENT_MANY) as copy:
                            for row in rows:
                                copy.write_row([row[name] for name in _SENT_COLUMNS])
                    else:  # one sent_at for the batch: converted once
                        sent_at = HotSQL._sqlite_value(query.requested_at)
                        cursor.executemany(_RECORD_SENT.sql,
                                           [{**row, "sent_at": sent_at} for row in rows])
                finally:
                    cursor.close()

        try:
            retrying(attempt, what=f"sent batch {batch.batch_id}")
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log.warning("infrastructure failure requester_database: the answers to batch %s "
                        "were not released to %s (%s)", batch.batch_id or "-", agency_id,
                        type(exc).__name__)
            raise self._unavailable(InfrastructureFailure.REQUESTER_DATABASE) from None

    def record_declined(
        self, agency_id: str, task_id: str, application_ref: str, documents: Sequence[str]
    ) -> ExchangeResult:
        check_agency_id(agency_id)
        _check(CODE, task_id, "task_id")
        result = self.network.record_declined(agency_id, task_id, application_ref,
                                              list(documents))
        with self.databases.unit_of_work(CONTEXT) as session:
            audit.record(session, m.AuditEvent, "agencies:application:declined",
                         actor=f"agency:{agency_id}", subject=f"agency:{agency_id}",
                         serial=result.serial, task=task_id, documents=len(documents))
        return result


# --- the provider's side: what the core calls -------------------------------------------------




class IntermediateServerImpl:
    """The 中間サーバー the core routes queries to. ``agencies`` names the agencies it serves;
    None serves every agency in this database (the platform's router)."""

    def __init__(
        self,
        databases: Databases,
        keyring: AgencyKeyring,
        core_public_key: bytes,
        agencies: Collection[str] | None = None,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        max_age: dt.timedelta = ROUTED_QUERY_MAX_AGE,
    ) -> None:
        self.databases = databases
        self.keyring = keyring
        self._core = ed25519.Ed25519PublicKey.from_public_bytes(core_public_key)
        self.agencies = None if agencies is None else frozenset(agencies)
        self.clock = clock
        self.max_age = max_age
        self._hot = HotConnections(databases, CONTEXT)
        self._vault = _Vault(databases, keyring, self._hot, clock)

    def serves(self, agency_id: str) -> bool:
        if self.agencies is None:
            return bool(AGENCY_ID.match(agency_id))
        return agency_id in self.agencies

    def answer(self, query: RoutedQuery) -> SealedAnswer:
        try:
            self._core.verify(query.signature, query.signed_bytes())
        except (InvalidSignature, ValueError, TypeError, OverflowError):
            raise RoutedQueryRejected("the core's signature does not verify",
                                      field="signature") from None
        now = self.clock()
        if query.routed_at.tzinfo is None or abs(now - query.routed_at) > self.max_age:
            raise RoutedQueryRejected("the routed query is stale", field="routed_at")
        if not self.serves(query.provider_id):
            raise AgencyNotServed("this intermediate server does not serve the provider",
                                  field="provider_id")
        try:
            keys = self.keyring.keys(query.provider_id)
        except AgencyKeyError:
            raise AgencyNotServed("this intermediate server holds no keys for the provider",
                                  field="provider_id") from None
        committing = [False]  # set once the statements ran: a failure then is the COMMIT's

        def attempt(number: int) -> SealedAnswer:
            # A repeat after a COMMIT that failed: if it landed, the answer is recorded already
            # (the 処理通番 is unique per routed query); answer again without a second row.
            record = not (number and committing[0] and self._answer_recorded(query))
            committing[0] = False
            return self._answer(query, keys, now, record=record, committing=committing)

        try:
            return retrying(attempt, what=f"routed query {query.serial}")
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            raise InfrastructureUnavailable(
                "the intermediate server's database is unavailable; retry later",
                reason="provider_database", infrastructure="provider_database") from None

    def _answer_recorded(self, query: RoutedQuery) -> bool:
        with self._hot.connection() as raw:
            return bool(self._hot.run(raw, _ANSWER_RECORDED,
                                      {"agency_id": query.provider_id, "serial": query.serial}))

    def _answer(self, query: RoutedQuery, keys: Any, now: dt.datetime, *,
                record: bool, committing: list[bool]) -> SealedAnswer:
        # Two statements on the driver, each committed as it runs (a read of the copy and
        # the answer's record need no common snapshot; this saves the BEGIN and COMMIT
        # round trips).
        with self._hot.connection(autocommit=True) as raw:
            rows = self._hot.run(raw, _HOT_FIND_COPY, {
                "agency_id": query.provider_id, "agency_code": query.subject_code,
                "item_code": query.item_code,
            })
            found = rows[0] if rows else None
            sealed = None
            if found is not None:
                legacy, stored, key_id, version, updated_at = found
                legacy = _legacy_payload(legacy)
                if legacy is not None:
                    # Plaintext (written before encryption, or around put_copy): never
                    # provided. One carrying a number is named as such (the core records it).
                    if contains_individual_number(legacy):
                        raise IndividualNumberInCopy(
                            "the copy contains an individual number and is not provided",
                            field="item_code")
                    raise CopyNotEncrypted(
                        "the copy is not encrypted yet and is not provided: run `mynumber "
                        "agencies encrypt-copies`", field="item_code")
                payload = self._vault.open(query.provider_id, query.subject_code,
                                           query.item_code, stored, key_id, raw)
                if isinstance(updated_at, str):
                    updated_at = dt.datetime.fromisoformat(updated_at)
                if updated_at.tzinfo is None:  # SQLite keeps UTC without the offset
                    updated_at = updated_at.replace(tzinfo=dt.UTC)
                if contains_individual_number(payload):
                    # Stored before this check existed, or written around it: never provided.
                    raise IndividualNumberInCopy(
                        "the copy contains an individual number and is not provided",
                        field="item_code")
                body = {
                    "serial": query.serial, "provider": query.provider_id,
                    "item": query.item_code, "as_of": updated_at.isoformat(),
                    "data": payload, "version": version,
                }
                try:
                    sealed = envelope.seal(body, keys.signing, query.requester_encryption_key,
                                           envelope.info_for(query.serial))
                except ValueError:
                    raise RoutedQueryRejected("the requester's encryption key is not usable",
                                              field="requester_encryption_key") from None
            if record:
                committing[0] = True  # from here the record may have landed
                self._hot.run(raw, _HOT_RECORD_ANSWER, {
                    "serial": query.serial, "agency_id": query.provider_id,
                    "requester_id": query.requester_id, "task_id": query.task_id,
                    "item_code": query.item_code, "held": found is not None,
                    "answered_at": now,
                })
            committing[0] = True
        return SealedAnswer(serial=query.serial, held=found is not None, sealed=sealed)


# mypy checks each implementation against its published protocol.
_agencies_contract: type[AgenciesService] = AgenciesServiceImpl
_server_contract: type[IntermediateServer] = IntermediateServerImpl

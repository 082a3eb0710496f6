"""What the eligibility-side tests share: residents holding real cards (the registry, the card
context and JPKI of the ``container`` fixture; the chip signs after its PIN), the service built
on them, medical institutions' terminals with their own Ed25519 keys, and insurance data.

Insurers, qualifications and documents are written straight into the insurance tables here:
the insurer side's service (``InsurerServiceImpl``, another helper's work) did not exist when
these tests were written, and these tests are about what the institution sees of such rows,
not about how an insurer makes them.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.chip import VirtualCard
from mynumber.card.interfaces import CardRecord, IdentityCheck, IssuedPins
from mynumber.db import Databases, utcnow
from mynumber.insurance import models as m
from mynumber.insurance.eligibility import EligibilityServiceImpl
from mynumber.insurance.face import DeterministicStandInMatcher
from mynumber.insurance.interfaces import (
    ConfirmationMethod,
    CoverageDocumentKind,
    EligibilityResult,
    FaceMatcher,
    InsuredKind,
    LinkState,
    Terminal,
)
from mynumber.jpki.interfaces import JpkiService
from mynumber.network.interfaces import signed_request_bytes
from mynumber.registry.interfaces import ResidentRecord
from tests.conftest import new_resident

PINS = IssuedPins("ABC123", "1234", "5678", "2468")
AUTH_PIN = PINS.user_auth_pin
INSURER = "06130018"
INSURER_NAME = "テスト健康保険組合"
OTHER_INSURER = "01130012"
OTHER_INSURER_NAME = "全国健康保険協会 東京支部"
CLINIC = ("1312345678", "新宿テストクリニック")
OTHER_CLINIC = ("1398765432", "渋谷テスト病院")
CARD_PHOTO = b"\xff\xd8\xff\xe0 card photo of the holder" + b"\x00" * 64

_T = TypeVar("_T")


@dataclass
class Holder:
    resident: ResidentRecord
    record: CardRecord
    chip: VirtualCard

    @property
    def certificate(self) -> str:
        return self.chip.certificate("auth").decode()

    @property
    def serial(self) -> int:
        assert self.record.auth_serial is not None
        return self.record.auth_serial

    def sign(self, challenge: bytes, pin: str = AUTH_PIN) -> bytes:
        return self.chip.sign("auth", pin, challenge)


def issue_holder(container: Container, clerk: StaffPrincipal, **overrides: object) -> Holder:
    """A resident of 新宿区 with an issued card (auth certificate on the chip)."""
    details = new_resident(**overrides)
    resident = container.registry.register_birth(clerk, details, details.birth_date)
    number = container.registry.reveal_number(clerk, resident.id, "test")
    application = container.card.apply(clerk, resident.id)
    record, chip = container.card.issue(
        clerk, application.application_id,
        IdentityCheck(number, "notification_letter", ("drivers_license",)), PINS)
    return Holder(resident, record, chip)


class JpkiHolders:
    """The HolderResolver the assembler gives: J-LIS names the holder of a certificate."""

    def __init__(self, jpki: JpkiService) -> None:
        self.jpki = jpki

    def resident_of_certificate(self, serial: int) -> int:
        return self.jpki.standing(serial).resident_id


def make_service(container: Container, matcher: FaceMatcher | None = None, *,
                 face: bool = True) -> EligibilityServiceImpl:
    return EligibilityServiceImpl(
        container.databases, container.jpki, JpkiHolders(container.jpki),
        matcher if matcher is not None else (DeterministicStandInMatcher() if face else None))


# --- terminals ---------------------------------------------------------------------------------


@dataclass
class TerminalKey:
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    pem: str

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(data)
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


def terminal_key(*, ecdsa: bool = False, not_before: dt.datetime | None = None,
                 not_after: dt.datetime | None = None) -> TerminalKey:
    """A terminal's key and its self-signed certificate (the operator's registration is what
    makes it trusted)."""
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey = (
        ec.generate_private_key(ec.SECP256R1()) if ecdsa else ed25519.Ed25519PrivateKey.generate())
    now = utcnow()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "資格確認端末 (test)")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before or now - dt.timedelta(days=1))
               .not_valid_after(not_after or now + dt.timedelta(days=365)))
    certificate = builder.sign(key, hashes.SHA256() if ecdsa else None)
    return TerminalKey(key, certificate.public_bytes(serialization.Encoding.PEM).decode())


def register(service: EligibilityServiceImpl, clinic: tuple[str, str] = CLINIC, *,
             ecdsa: bool = False) -> tuple[Terminal, TerminalKey]:
    key = terminal_key(ecdsa=ecdsa)
    return service.register_terminal(clinic[0], clinic[1], key.pem, "admin:test"), key


@dataclass
class SignedRequest:
    terminal_id: str
    kind: str
    fields: dict[str, object]
    signature: bytes
    nonce: str
    requested_at: dt.datetime

    def send(self, service: EligibilityServiceImpl) -> Terminal:
        return service.authenticate_terminal(self.terminal_id, self.kind, self.fields,
                                             self.signature, self.nonce, self.requested_at)


def signed(terminal: Terminal, key: TerminalKey, kind: str = "eligibility-check",
           fields: dict[str, object] | None = None, *, nonce: str | None = None,
           requested_at: dt.datetime | None = None) -> SignedRequest:
    """A request signed as a terminal signs it: ``signed_request_bytes(kind, body)`` where the
    body carries the fields and ``terminal_id``, ``nonce`` and ``requested_at``."""
    fields = dict(fields or {"challenge_id": "abc"})
    nonce = nonce or secrets.token_urlsafe(24)
    requested_at = requested_at or utcnow()
    body = {**fields, "terminal_id": terminal.id, "nonce": nonce, "requested_at": requested_at}
    return SignedRequest(terminal.id, kind, fields, key.sign(signed_request_bytes(kind, body)),
                         nonce, requested_at)


# --- insurance data, straight into the tables ---------------------------------------------------


def add_insurer(databases: Databases, number: str = INSURER, name: str = INSURER_NAME) -> str:
    with databases.unit_of_work("insurance") as session:
        if session.get(m.InsurerRow, number) is None:
            session.add(m.InsurerRow(number=number, name=name, kind="health_insurance_society",
                                     agency_id=f"insurer-{number}", created_at=utcnow()))
    return number


def add_qualification(databases: Databases, resident: ResidentRecord | None, *,
                      insurer: str = INSURER, acquired_on: dt.date = dt.date(2020, 4, 1),
                      lost_on: dt.date | None = None,
                      link_state: LinkState = LinkState.LINKED,
                      number: str | None = None, birth_date: dt.date | None = None) -> int:
    """A qualification of ``resident`` (None: a record linked to no one)."""
    add_insurer(databases, insurer, INSURER_NAME if insurer == INSURER else OTHER_INSURER_NAME)
    now = utcnow()
    linked = resident is not None and link_state is not LinkState.UNLINKED
    born = birth_date or (resident.birth_date if resident else dt.date(1980, 1, 1))
    row = m.QualificationRow(
        insurer_number=insurer, symbol="12", number=number or secrets.token_hex(4),
        branch="00", insured_kind=InsuredKind.INSURED.value, acquired_on=acquired_on,
        lost_on=lost_on, loss_reason="retirement" if lost_on else None, copay_percent=30,
        elderly_recipient=False, limit_category=None,
        name=resident.name if resident else "", name_kana=resident.name_kana if resident else "",
        birth_date=born.isoformat(), sex=resident.sex.value if resident else "",
        address=resident.address if resident else "", link_state=link_state.value,
        resident_id=resident.id if linked and resident else None,
        resident_code=resident.resident_code if linked and resident else None,
        link_route="search" if linked else None, linked_at=now if linked else None,
        created_at=now, updated_at=now)
    with databases.unit_of_work("insurance") as session:
        session.add(row)
        session.flush()
        return row.id


def set_link_state(databases: Databases, qualification_id: int, state: LinkState) -> None:
    with databases.unit_of_work("insurance") as session:
        row = session.get(m.QualificationRow, qualification_id)
        assert row is not None
        row.link_state = state.value


def add_document(databases: Databases, qualification_id: int, *,
                 issued_on: dt.date = dt.date(2024, 12, 2),
                 valid_until: dt.date = dt.date(2029, 12, 1),
                 kind: CoverageDocumentKind = CoverageDocumentKind.CONFIRMATION_CERTIFICATE,
                 ended_at: dt.datetime | None = None) -> str:
    number = f"D{secrets.randbelow(10**12):012d}"
    with databases.unit_of_work("insurance") as session:
        session.add(m.DocumentRow(kind=kind.value, qualification_id=qualification_id,
                                  document_number=number, issued_on=issued_on,
                                  valid_until=valid_until, ended_at=ended_at))
    return number


def rows(databases: Databases, model: type[Any], **where: object) -> list[Any]:
    from sqlalchemy import select

    with databases.unit_of_work("insurance") as session:
        query = select(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return list(session.scalars(query))


# --- flows ---------------------------------------------------------------------------------------


def activate_at(service: EligibilityServiceImpl, terminal: Terminal, holder: Holder) -> None:
    challenge = service.challenge(terminal)
    service.activate(challenge.challenge_id, holder.certificate, holder.sign(challenge.challenge),
                     terminal=terminal)


def check_pin(service: EligibilityServiceImpl, terminal: Terminal, holder: Holder, *,
              today: dt.date | None = None) -> EligibilityResult:
    challenge = service.challenge(terminal)
    return service.check_card(terminal, challenge.challenge_id, holder.certificate,
                              method=ConfirmationMethod.CARD_PIN,
                              signature=holder.sign(challenge.challenge), today=today)


def in_parallel(n: int, attempt: Callable[[int], _T]) -> list[_T | BaseException]:
    """Run ``attempt(i)`` in ``n`` threads released together; each result or exception."""
    barrier = threading.Barrier(n)
    outcomes: list[_T | BaseException] = [RuntimeError("did not finish")] * n

    def run(i: int) -> None:
        barrier.wait(30)
        try:
            outcomes[i] = attempt(i)
        except BaseException as exc:  # collected for the test to judge
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes

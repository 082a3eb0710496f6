"""Portal fixtures: a resident of 新宿区 holding a virtual card (chip in the card store), and a
helper that logs in with it the way the card reader does (challenge signed with the
user-authentication key after the 4-digit PIN)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.chip import VirtualCard
from mynumber.card.interfaces import CardRecord, IdentityCheck, IssuedPins
from mynumber.portal.interfaces import DocumentUpload, PortalSession
from mynumber.registry.interfaces import ResidentRecord
from tests.conftest import new_resident

PINS = IssuedPins("ABC123", "1234", "5678", "2468")
AUTH_PIN = PINS.user_auth_pin


@dataclass
class CardHolder:
    resident: ResidentRecord
    number: str  # only for enrolling test agencies; the portal never sees it
    record: CardRecord
    chip: VirtualCard

    @property
    def card_id(self) -> str:
        return self.record.card_id


def issue_card_holder(container: Container, clerk: StaffPrincipal,
                      **overrides: object) -> CardHolder:
    details = new_resident(**overrides)
    resident = container.registry.register_birth(clerk, details, details.birth_date)
    number = container.registry.reveal_number(clerk, resident.id, "test")
    application = container.card.apply(clerk, resident.id)
    record, chip = container.card.issue(
        clerk, application.application_id,
        IdentityCheck(number, "notification_letter", ("drivers_license",)), PINS)
    return CardHolder(resident, number, record, chip)


@pytest.fixture
def card_holder(container: Container, clerk: StaffPrincipal) -> CardHolder:
    return issue_card_holder(container, clerk)


def login(container: Container, holder: CardHolder, *, pin: str = AUTH_PIN,
          previous_token: str | None = None) -> PortalSession:
    """Log in as the card reader does: challenge -> PIN + signature on the card -> verify."""
    challenge = container.portal.begin_login()
    signature = holder.chip.sign("auth", pin, challenge.challenge)
    certificate = holder.chip.certificate("auth").decode()
    return container.portal.complete_login(challenge.challenge_id, signature, certificate,
                                           previous_token=previous_token)


# --- network helpers: what agencies hold about a card holder ------------------------------------

CITY = "municipality-131041"  # 新宿区長
KYOKAI = "kyokai_kenpo"
MHLW = "mhlw"
POLICE = "prefecture-13-police"


def hold(container: Container, number: str, agency: str, item: str,
         payload: dict[str, object], address_number: str) -> str:
    """Enrol the person (by number, as the agency lawfully may) and register a 副本."""
    container.agencies.ensure_registered(agency)
    container.agencies.enrol_person(agency, address_number, number)
    container.agencies.put_copy(agency, address_number, item, payload)
    return address_number


def resident_record(holder: CardHolder, household: list[dict[str, str]] | None = None
                    ) -> dict[str, object]:
    r = holder.resident
    return {"name": r.name, "name_kana": r.name_kana, "birth_date": r.birth_date.isoformat(),
            "sex": r.sex.value, "address": r.address, "household": household or [],
            "household_relationship": r.relationship, "municipality_code": r.municipality_code}


PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40


def documents() -> list[DocumentUpload]:
    """A file for each document the 現況届 without the number needs (PDF, PNG, JPEG)."""
    return [DocumentUpload("document_tax_certificate", "tax_certificate", "課税証明書.pdf", PDF),
            DocumentUpload("document_health_insurance_copy", "health_insurance_copy",
                           "hoken.png", PNG),
            DocumentUpload("document_child_resident_record", "child_resident_record",
                           "juminhyo.jpg", JPEG)]

"""Card fixtures: a numbered adult resident of 新宿区 and a clerk ready to issue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.interfaces import (
    IdentityCheck,
    IssuedPins,
    SmartphoneCredential,
    smartphone_enrolment_message,
)
from mynumber.registry.interfaces import ResidentRecord
from tests.conftest import new_resident

PINS = IssuedPins("ABC123", "1234", "5678", "2468")


@dataclass
class Holder:
    resident: ResidentRecord
    number: str

    def check(self, *documents: str) -> IdentityCheck:
        return IdentityCheck(self.number, "notification_letter",
                             documents or ("drivers_license",))


def make_holder(container: Container, clerk: StaffPrincipal, **overrides: object) -> Holder:
    details = new_resident(**overrides)
    resident = container.registry.register_birth(clerk, details, details.birth_date)
    number = container.registry.reveal_number(clerk, resident.id, "test")
    return Holder(resident, number)


@pytest.fixture
def holder(container: Container, clerk: StaffPrincipal) -> Holder:
    return make_holder(container, clerk)


def phone_keys() -> tuple[list[rsa.RSAPrivateKey], list[str], list[bytes]]:
    """A phone's own two key pairs (signing, user authentication): the keys, their public
    halves as PEM and as DER."""
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]
    pems = [k.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            for k in keys]
    ders = [k.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
            for k in keys]
    return keys, pems, ders


def enrol_smartphone(container: Container, card_id: str, chip: Any) -> SmartphoneCredential:
    """A phone's own two key pairs certified on the card's signature (as the holder's app
    does it): the credential with its two certificates."""
    _, pems, ders = phone_keys()
    message = smartphone_enrolment_message(card_id, *ders)
    return container.card.issue_smartphone(
        card_id, pems[0], pems[1], chip.sign("signing", PINS.signing_password, message))


def ocsp_status(client: TestClient, container: Container, serial: int | None,
                kind: str) -> ocsp.OCSPCertStatus:
    """What JPKI's OCSP responder answers over HTTP for this certificate (``kind``: signing
    or auth), as a relying party asks it."""
    assert serial is not None
    cert = x509.load_pem_x509_certificate(container.jpki.certificate(serial).pem.encode())
    chain = client.get(f"/jpki/ca/{kind}.pem")
    assert chain.status_code == 200, chain.text
    issuer = x509.load_pem_x509_certificates(chain.content)[0]
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    label = "sign" if kind == "signing" else "auth"
    answer = client.post(f"/jpki/ocsp/{label}",
                         content=request.public_bytes(serialization.Encoding.DER),
                         headers={"Content-Type": "application/ocsp-request"})
    assert answer.status_code == 200
    response = ocsp.load_der_ocsp_response(answer.content)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.serial_number == serial
    return response.certificate_status

"""The JPKI JSON API: relying parties (administrators) and the serial-link look-up."""

from __future__ import annotations

import base64
import datetime as dt

import pyotp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffRole
from mynumber.jpki.interfaces import CertificateKind, RevocationReason
from mynumber.registry.interfaces import SYSTEM
from tests.conftest import SHINJUKU, new_resident
from tests.jpki.test_service import _KEY, CARD_EXPIRY, public_pem, sign


def _login(container: Container, username: str, role: StaffRole) -> dict[str, str]:
    secret = pyotp.random_base32()
    container.staff_auth.create_staff(username, username, SHINJUKU, role, "pw-" + username,
                                      totp_secret=secret)
    token = container.staff_auth.login(username, "pw-" + username, pyotp.TOTP(secret).now())
    return {"Authorization": f"Bearer {token}"}


def _proof(client: TestClient, rp: dict[str, str], pem: str,
           key: rsa.RSAPrivateKey = _KEY) -> dict[str, str]:
    issued = client.post("/api/v1/jpki/user-challenges", headers=rp)
    assert issued.status_code == 201, issued.text
    challenge = base64.b64decode(issued.json()["challenge"])
    return {"challenge": issued.json()["challenge"], "certificate_pem": pem,
            "signature": base64.b64encode(sign(challenge, key)).decode()}


def test_relying_party_lifecycle_and_serial_lookup(container: Container) -> None:
    client = TestClient(create_app(container=container))
    admin = _login(container, "jpki-admin", StaffRole.ADMIN)
    clerk = _login(container, "jpki-clerk", StaffRole.CLERK)
    body = {"name": "e-Tax", "kinds": ["signing"]}
    refused = client.post("/api/v1/jpki/relying-parties", json=body, headers=clerk)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    created = client.post("/api/v1/jpki/relying-parties", json=body, headers=admin)
    assert created.status_code == 201, created.text
    party, key = created.json()["relying_party"], created.json()["api_key"]

    resident = container.registry.register_birth(SYSTEM, new_resident(), dt.date(1990, 4, 1))
    jpki = container.jpki
    old = jpki.issue_certificate(resident.id, CertificateKind.SIGNING, public_pem(), CARD_EXPIRY)
    new = jpki.issue_certificate(resident.id, CertificateKind.SIGNING, public_pem(), CARD_EXPIRY)

    rp = {"X-Relying-Party-Key": key}
    lookup = {"serial": str(old.serial)}
    assert client.post("/api/v1/jpki/serial-links/lookup", json=lookup).status_code == 401
    assert client.post("/api/v1/jpki/serial-links/lookup", json=lookup,
                       headers=rp).status_code == 404  # not yet its user
    # The holder presents the old certificate and signs the party's challenge.
    assert client.post("/api/v1/jpki/users", json=_proof(client, rp, old.pem),
                       headers=rp).status_code == 204
    jpki.revoke(old.serial, RevocationReason.SUPERSEDED, "test")
    jpki.link_serials(old.serial, new.serial)
    found = client.post("/api/v1/jpki/serial-links/lookup", json=lookup, headers=rp)
    assert found.json() == {"serial": str(new.serial)}
    assert client.post(f"/api/v1/jpki/relying-parties/{party['id']}/retire",
                       headers=admin).status_code == 204
    gone = client.post("/api/v1/jpki/serial-links/lookup", json=lookup, headers=rp)
    assert gone.status_code == 403 and gone.json()["code"] == "relying_party_not_registered"
    assert client.get(f"/api/v1/jpki/relying-parties/{party['id']}",
                      headers=admin).json()["active"] is False
    # Not in the OpenAPI document: the standard protocols (docs/api.md).
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/jpki/serial-links/lookup" in paths
    assert not any(p.startswith("/jpki/") for p in paths)


def _admin_party(container: Container, client: TestClient) -> dict[str, str]:
    admin = _login(container, "jpki-admin", StaffRole.ADMIN)
    created = client.post("/api/v1/jpki/relying-parties",
                          json={"name": "e-Tax", "kinds": ["signing"]}, headers=admin)
    return {"X-Relying-Party-Key": created.json()["api_key"]}


def test_naming_another_persons_serial_records_nothing(container: Container) -> None:
    """Issue 10: POST /users took any serial; the look-up then followed that person's
    certificates across renewals. A serial, or someone else's certificate, is refused."""
    client = TestClient(create_app(container=container))
    rp = _admin_party(container, client)
    jpki = container.jpki
    their_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    resident = container.registry.register_birth(SYSTEM, new_resident(), dt.date(1990, 4, 1))
    theirs = jpki.issue_certificate(resident.id, CertificateKind.SIGNING,
                                    public_pem(their_key), CARD_EXPIRY)
    lookup = {"serial": str(theirs.serial)}
    named = client.post("/api/v1/jpki/users", json=lookup, headers=rp)
    assert named.status_code == 422
    presented = client.post("/api/v1/jpki/users", json=_proof(client, rp, theirs.pem),
                            headers=rp)  # their certificate, the party's own signature
    assert presented.status_code == 422 and presented.json()["code"] == "verification_failed"
    assert client.post("/api/v1/jpki/serial-links/lookup", json=lookup,
                       headers=rp).status_code == 404  # still not its user
    assert client.post("/api/v1/jpki/users", json=_proof(client, rp, theirs.pem, their_key),
                       headers=rp).status_code == 204  # the holder's own proof
    assert client.post("/api/v1/jpki/serial-links/lookup", json=lookup,
                       headers=rp).json() == {"serial": str(theirs.serial)}


def _ocsp_request(container: Container, nonce: bytes) -> bytes:
    resident = container.registry.register_birth(SYSTEM, new_resident(), dt.date(1990, 4, 1))
    issued = container.jpki.issue_certificate(resident.id, CertificateKind.SIGNING, public_pem(),
                                              CARD_EXPIRY)
    cert = x509.load_pem_x509_certificate(issued.pem.encode())
    issuer = x509.load_pem_x509_certificates(
        container.jpki.ca_chain_pem(CertificateKind.SIGNING).encode())[0]
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    request = builder.add_extension(x509.OCSPNonce(nonce), critical=False).build()
    return request.public_bytes(serialization.Encoding.DER)


def test_ocsp_nonce_of_0_or_1000_bytes_is_a_malformed_request_over_http(
        container: Container) -> None:
    """RFC 9654: a nonce is 1-32 octets. Over HTTP the answer stays 200 (RFC 6960 A.1) with
    the OCSP status malformedRequest in the body."""
    client = TestClient(create_app(container=container))
    for size, status in ((0, ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
                         (1000, ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
                         (32, ocsp.OCSPResponseStatus.SUCCESSFUL)):
        der = _ocsp_request(container, b"\x01" * size)
        posted = client.post("/jpki/ocsp/sign", content=der,
                             headers={"Content-Type": "application/ocsp-request"})
        encoded = base64.b64encode(der).decode().replace("/", "%2F").replace("+", "%2B")
        fetched = client.get(f"/jpki/ocsp/sign/{encoded}")
        for answer in (posted, fetched):
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/ocsp-response"
            assert ocsp.load_der_ocsp_response(answer.content).response_status is status, size

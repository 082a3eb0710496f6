"""The JPKI JSON API: relying parties (administrators) and the serial-link look-up."""

from __future__ import annotations

import datetime as dt

import pyotp
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.jpki.interfaces import CertificateKind, RevocationReason
from mynumber.registry.interfaces import SYSTEM, StaffRole
from tests.conftest import SHINJUKU, new_resident
from tests.jpki.test_service import CARD_EXPIRY, public_pem


def _login(container: Container, username: str, role: StaffRole) -> dict[str, str]:
    secret = pyotp.random_base32()
    container.staff_auth.create_staff(username, username, SHINJUKU, role, "pw-" + username,
                                      totp_secret=secret)
    token = container.staff_auth.login(username, "pw-" + username, pyotp.TOTP(secret).now())
    return {"Authorization": f"Bearer {token}"}


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
    jpki.revoke(old.serial, RevocationReason.SUPERSEDED, "test")
    jpki.link_serials(old.serial, new.serial)

    rp = {"X-Relying-Party-Key": key}
    lookup = {"serial": str(old.serial)}
    assert client.post("/api/v1/jpki/serial-links/lookup", json=lookup).status_code == 401
    assert client.post("/api/v1/jpki/serial-links/lookup", json=lookup,
                       headers=rp).status_code == 404  # not yet its user
    assert client.post("/api/v1/jpki/users", json=lookup, headers=rp).status_code == 204
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

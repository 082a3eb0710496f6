"""Production-shaped wiring: the JPKI CA keys on a PKCS#11 token (SoftHSM2), end to end."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from mynumber.app import build_container
from mynumber.jpki.interfaces import CertificateKind
from mynumber.registry.interfaces import SYSTEM
from mynumber.settings import Settings
from tests.conftest import new_resident
from tests.jpki.test_keyproviders import SoftHSM, softhsm  # noqa: F401  (fixture)


def test_ca_keys_live_on_the_token_and_certificates_verify(
    settings: Settings, softhsm: SoftHSM, tmp_path: Path  # noqa: F811
) -> None:
    # Own key directory: the suite shares one between tests, and this one must stay empty.
    hsm_settings = settings.model_copy(update={
        "key_dir": tmp_path / "keys",
        "pkcs11_library": softhsm.library, "pkcs11_token": softhsm.token_label,
        "pkcs11_pin": SecretStr(softhsm.user_pin),
    })
    container = build_container(hsm_settings)
    try:
        resident = container.registry.register_birth(
            SYSTEM, new_resident(birth_date=dt.date(1985, 5, 5)), dt.date(1985, 5, 5))
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        issued = container.jpki.issue_certificate(
            resident.id, CertificateKind.AUTH, pem, dt.date.today() + dt.timedelta(days=3650))
        chain = container.jpki.ca_chain_pem(CertificateKind.AUTH)
    finally:
        container.close()
    # No software CA key was written: the keys are on the token.
    assert not list((hsm_settings.keys_path / "jpki").glob("*.key.pem"))
    (tmp_path / "chain.pem").write_text(chain)
    (tmp_path / "cert.pem").write_text(issued.pem)
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "chain.pem"), str(tmp_path / "cert.pem")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    cert = x509.load_pem_x509_certificate(issued.pem.encode())
    assert cert.serial_number == issued.serial

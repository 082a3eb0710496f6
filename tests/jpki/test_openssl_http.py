"""CRL and OCSP over real HTTP on loopback, checked by the OpenSSL command line."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from mynumber.app import Container, build_container, create_app
from mynumber.jpki.interfaces import CertificateKind, RevocationReason
from mynumber.registry.interfaces import SYSTEM
from mynumber.settings import Settings
from tests.conftest import new_resident
from tests.jpki.test_service import CARD_EXPIRY, public_pem

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[Container, str]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    container = build_container(settings.model_copy(update={"public_url": base}))
    config = uvicorn.Config(create_app(container=container), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield container, base
    server.should_exit = True
    thread.join(10)
    container.close()


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return done.stdout + done.stderr


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_openssl_verify_crl_and_ocsp_over_http(served: tuple[Container, str],
                                               tmp_path: Path) -> None:
    container, base = served
    jpki = container.jpki
    resident = container.registry.register_birth(SYSTEM, new_resident(), dt.date(1990, 4, 1))
    good = jpki.issue_certificate(resident.id, CertificateKind.AUTH, public_pem(), CARD_EXPIRY)
    bad = jpki.issue_certificate(resident.id, CertificateKind.AUTH, public_pem(), CARD_EXPIRY)
    jpki.revoke(bad.serial, RevocationReason.LOST, "test")
    chain_pem = urllib.request.urlopen(f"{base}/jpki/ca/auth.pem", timeout=10).read().decode()
    assert chain_pem == jpki.ca_chain_pem(CertificateKind.AUTH)
    chain = _write(tmp_path / "chain.pem", chain_pem)
    issuing = _write(tmp_path / "issuing.pem",
                     x509.load_pem_x509_certificates(chain_pem.encode())[0]
                     .public_bytes(serialization.Encoding.PEM).decode())
    good_pem = _write(tmp_path / "good.pem", good.pem)
    bad_pem = _write(tmp_path / "bad.pem", bad.pem)

    # CRL: openssl downloads it from the certificate's CRL distribution point.
    out = _run("openssl", "verify", "-crl_check", "-crl_download", "-CAfile", chain, good_pem)
    assert f"{good_pem}: OK" in out, out
    out = _run("openssl", "verify", "-crl_check", "-crl_download", "-CAfile", chain, bad_pem)
    assert "certificate revoked" in out, out
    with urllib.request.urlopen(f"{base}/jpki/crl/auth.crl", timeout=10) as response:
        assert response.headers["Content-Type"] == "application/pkix-crl"
        crl = x509.load_der_x509_crl(response.read())
    assert crl.get_revoked_certificate_by_serial_number(bad.serial) is not None

    # OCSP: good, revoked, unknown, each with a verified response.
    url = f"{base}/jpki/ocsp/auth"
    common = ("openssl", "ocsp", "-issuer", issuing, "-url", url, "-CAfile", chain)
    out = _run(*common, "-cert", good_pem)
    assert f"{good_pem}: good" in out and "Response verify OK" in out, out
    out = _run(*common, "-cert", bad_pem)
    assert f"{bad_pem}: revoked" in out and "Response verify OK" in out, out
    assert "keyCompromise" in out, out
    out = _run(*common, "-serial", str(good.serial + 1))
    assert ": unknown" in out and "Response verify OK" in out, out


def test_ocsp_get_form_and_malformed_requests(served: tuple[Container, str]) -> None:
    container, base = served
    resident = container.registry.register_birth(SYSTEM, new_resident(), dt.date(1990, 4, 1))
    issued = container.jpki.issue_certificate(resident.id, CertificateKind.SIGNING, public_pem(),
                                              CARD_EXPIRY)
    cert = x509.load_pem_x509_certificate(issued.pem.encode())
    issuer = x509.load_pem_x509_certificates(
        container.jpki.ca_chain_pem(CertificateKind.SIGNING).encode())[0]
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
    quoted = urllib.request.quote(encoded, safe="")
    with urllib.request.urlopen(f"{base}/jpki/ocsp/sign/{quoted}", timeout=10) as response:
        assert response.headers["Content-Type"] == "application/ocsp-response"
        answer = ocsp.load_der_ocsp_response(response.read())
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD

    post = urllib.request.Request(f"{base}/jpki/ocsp/sign", data=b"\x30\x03not ocsp",
                                  headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(post, timeout=10) as response:
        assert response.status == 200
        answer = ocsp.load_der_ocsp_response(response.read())
    assert answer.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    with urllib.request.urlopen(f"{base}/jpki/ocsp/sign/%%%not-base64", timeout=10) as response:
        answer = ocsp.load_der_ocsp_response(response.read())
    assert answer.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    # Asking the signing responder about an auth certificate's issuer: unauthorized.
    with urllib.request.urlopen(f"{base}/jpki/ocsp/auth/{quoted}", timeout=10) as response:
        answer = ocsp.load_der_ocsp_response(response.read())
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def _pem_crl(der: bytes) -> str:
    return x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM).decode()


def test_crl_check_all_with_the_roots_arl(served: tuple[Container, str], tmp_path: Path) -> None:
    """Issue 10: the CA certificates had no revocation information, so `openssl verify
    -crl_check_all` failed. The issuing CAs name the root's ARL as their CRL DP."""
    container, base = served
    jpki = container.jpki
    resident = container.registry.register_birth(SYSTEM, new_resident(), dt.date(1990, 4, 1))
    signing = jpki.issue_certificate(resident.id, CertificateKind.SIGNING, public_pem(),
                                     CARD_EXPIRY)
    auth = jpki.issue_certificate(resident.id, CertificateKind.AUTH, public_pem(), CARD_EXPIRY)
    revoked = jpki.issue_certificate(resident.id, CertificateKind.AUTH, public_pem(),
                                     CARD_EXPIRY)
    jpki.revoke(revoked.serial, RevocationReason.LOST, "test")

    def fetch(path: str) -> bytes:
        with urllib.request.urlopen(f"{base}{path}", timeout=10) as response:
            assert response.headers["Content-Type"] == "application/pkix-crl"
            return bytes(response.read())

    arl = x509.load_der_x509_crl(fetch("/jpki/crl/root.crl"))
    idp = arl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    assert idp.critical and idp.value.only_contains_ca_certs
    crls = _write(tmp_path / "crls.pem", "".join(
        _pem_crl(fetch(f"/jpki/crl/{label}.crl")) for label in ("root", "sign", "auth")))
    chains = {kind: x509.load_pem_x509_certificates(jpki.ca_chain_pem(kind).encode())
              for kind in (CertificateKind.SIGNING, CertificateKind.AUTH)}
    root = chains[CertificateKind.AUTH][1]
    root_pem = _write(tmp_path / "root.pem", root.public_bytes(serialization.Encoding.PEM).decode())
    for kind, chain in chains.items():
        points = chain[0].extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert [n.value for p in points for n in p.full_name or ()] == [f"{base}/jpki/crl/root.crl"]
        assert chain[1] == root

    def verify(kind: CertificateKind, pem: str, name: str) -> tuple[str, str]:
        issuing = _write(tmp_path / f"{kind.value}-ca.pem",
                         chains[kind][0].public_bytes(serialization.Encoding.PEM).decode())
        leaf = _write(tmp_path / f"{name}.pem", pem)
        return _run("openssl", "verify", "-crl_check_all", "-CAfile", root_pem,
                    "-untrusted", issuing, "-CRLfile", crls, leaf), leaf

    for kind, issued, name in ((CertificateKind.SIGNING, signing, "signing"),
                               (CertificateKind.AUTH, auth, "auth")):
        out, leaf = verify(kind, issued.pem, name)
        assert f"{leaf}: OK" in out, out
    out, _ = verify(CertificateKind.AUTH, revoked.pem, "revoked")
    assert "certificate revoked" in out, out
    # The leaf CRL downloaded from the leaf's distribution point; the ARL given as a file (the
    # self-signed root names no distribution point, as roots do not).
    arl_pem = _write(tmp_path / "arl.pem", _pem_crl(fetch("/jpki/crl/root.crl")))
    chain_pem = _write(tmp_path / "chain.pem", jpki.ca_chain_pem(CertificateKind.SIGNING))
    leaf = _write(tmp_path / "signing-dl.pem", signing.pem)
    out = _run("openssl", "verify", "-crl_check_all", "-crl_download", "-CAfile", chain_pem,
               "-CRLfile", arl_pem, leaf)
    assert f"{leaf}: OK" in out, out


def test_pyhanko_validator_requiring_revocation_info(served: tuple[Container, str]) -> None:
    """pyHanko's validator with revocation_mode="require" needs a CRL for every certificate
    on the path below the root: the ARL for the issuing CA, the issuing CA's CRL for the leaf."""
    certvalidator = pytest.importorskip("pyhanko_certvalidator")
    from asn1crypto import crl as asn1_crl
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator.errors import PathValidationError, RevokedError

    container, base = served
    jpki = container.jpki
    resident = container.registry.register_birth(SYSTEM, new_resident(), dt.date(1990, 4, 1))
    issued = {
        "signing": jpki.issue_certificate(resident.id, CertificateKind.SIGNING, public_pem(),
                                          CARD_EXPIRY),
        "auth": jpki.issue_certificate(resident.id, CertificateKind.AUTH, public_pem(),
                                       CARD_EXPIRY),
        "revoked": jpki.issue_certificate(resident.id, CertificateKind.AUTH, public_pem(),
                                          CARD_EXPIRY),
    }
    jpki.revoke(issued["revoked"].serial, RevocationReason.LOST, "test")
    crls = [asn1_crl.CertificateList.load(
        urllib.request.urlopen(f"{base}/jpki/crl/{label}.crl", timeout=10).read())
        for label in ("root", "sign", "auth")]

    def der(cert: x509.Certificate) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    def validate(name: str) -> None:
        kind = CertificateKind.SIGNING if name == "signing" else CertificateKind.AUTH
        issuing, root = x509.load_pem_x509_certificates(jpki.ca_chain_pem(kind).encode())
        context = certvalidator.ValidationContext(
            trust_roots=[der(root)], crls=crls, revocation_mode="require", allow_fetching=False)
        leaf = x509.load_pem_x509_certificate(issued[name].pem.encode())
        validator = certvalidator.CertificateValidator(
            der(leaf), intermediate_certs=[der(issuing)], validation_context=context)
        asyncio.run(validator.async_validate_usage({"digital_signature"}))

    validate("signing")
    validate("auth")
    with pytest.raises(RevokedError):
        validate("revoked")
    crls = crls[1:]  # without the ARL the issuing CA has no revocation information
    with pytest.raises(PathValidationError, match=r"revocation|CRL"):
        validate("auth")

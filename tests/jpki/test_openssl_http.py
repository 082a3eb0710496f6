"""CRL and OCSP over real HTTP on loopback, checked by the OpenSSL command line."""

from __future__ import annotations

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

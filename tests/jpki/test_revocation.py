"""CRLs and the OCSP responder core, checked with the OpenSSL command line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from mynumber.jpki.revocation import (
    GOOD,
    UNKNOWN,
    CertificateStatus,
    MalformedOcspRequest,
    RevokedEntry,
    UnsupportedOcspRequest,
    build_crl,
    build_response,
    malformed_response,
    parse_request,
    revoked,
    unauthorized_response,
)
from tests.jpki.test_profiles import Pki, make_pki, openssl

REVOKED_AT = dt.datetime(2026, 1, 5, 3, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("jpki-revocation"))


def _crl(pki: Pki, entries: list[RevokedEntry], number: int = 7) -> bytes:
    return build_crl(
        pki.sign_ca,
        pki.sign_ca_key,
        entries,
        this_update=pki.now - dt.timedelta(hours=1),
        next_update=pki.now + dt.timedelta(days=1),
        crl_number=number,
    )


@pytest.fixture(scope="module")
def crl_path(pki: Pki) -> Path:
    der = _crl(
        pki,
        [
            RevokedEntry(
                pki.signing_revoked.serial_number, REVOKED_AT, x509.ReasonFlags.key_compromise
            ),
            RevokedEntry(12345, REVOKED_AT, None),
            RevokedEntry(67890, REVOKED_AT, x509.ReasonFlags.unspecified),
        ],
    )
    path = pki.dir / "sign.crl.pem"
    path.write_bytes(x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM))
    return path


# --- CRL ------------------------------------------------------------------------------------------


def _verify_with_crl(pki: Pki, crl: Path, leaf: str) -> str:
    result = openssl(
        "verify",
        "-crl_check",
        "-CRLfile",
        crl,
        "-CAfile",
        pki.path("root"),
        "-untrusted",
        pki.path("sign_ca"),
        pki.path(leaf),
    )
    return result.stdout + result.stderr


def test_crl_good_certificate_verifies(pki: Pki, crl_path: Path) -> None:
    assert _verify_with_crl(pki, crl_path, "signing").strip().endswith(": OK")


def test_crl_revoked_certificate_is_refused(pki: Pki, crl_path: Path) -> None:
    output = _verify_with_crl(pki, crl_path, "signing_revoked")
    assert "certificate revoked" in output
    assert ": OK" not in output


def test_crl_contents(pki: Pki, crl_path: Path) -> None:
    text = openssl("crl", "-in", crl_path, "-noout", "-text").stdout
    assert "X509v3 CRL Number: \n                7" in text or "CRL Number" in text
    assert "X509v3 Authority Key Identifier" in text
    assert "Key Compromise" in text
    assert "Unspecified" not in text  # RFC 5280: leave the reason out instead
    crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    assert crl.is_signature_valid(pki.sign_ca.public_key())
    assert len(crl) == 3
    entry = crl.get_revoked_certificate_by_serial_number(pki.signing_revoked.serial_number)
    assert entry is not None and entry.revocation_date_utc == REVOKED_AT
    for serial in (12345, 67890):
        plain = crl.get_revoked_certificate_by_serial_number(serial)
        assert plain is not None and len(plain.extensions) == 0
    assert openssl("crl", "-in", crl_path, "-noout", "-CAfile", pki.path("chain")).returncode == 0


def test_crl_refuses_bad_input(pki: Pki) -> None:
    with pytest.raises(ValueError, match="twice"):
        _crl(pki, [RevokedEntry(1, REVOKED_AT), RevokedEntry(1, REVOKED_AT)])
    with pytest.raises(ValueError, match="delta"):
        _crl(pki, [RevokedEntry(1, REVOKED_AT, x509.ReasonFlags.remove_from_crl)])
    with pytest.raises(ValueError, match="cRLSign"):
        build_crl(pki.responder, pki.responder_key, [], pki.now, pki.now + dt.timedelta(1), 1)
    with pytest.raises(ValueError):
        build_crl(pki.sign_ca, pki.sign_ca_key, [], pki.now, pki.now, 1)


# --- OCSP -----------------------------------------------------------------------------------------


def _status_of(pki: Pki):
    table = {
        pki.signing.serial_number: GOOD,
        pki.signing_revoked.serial_number: revoked(REVOKED_AT, x509.ReasonFlags.key_compromise),
    }
    return lambda serial: table.get(serial, UNKNOWN)


UNLISTED_SERIAL = "0x1234ABCD"  # a serial the signing CA never issued


def _target(pki: Pki, leaf: str) -> tuple[list[str | Path], str]:
    """openssl arguments naming the certificate asked about, and how openssl labels it."""
    if leaf == "unlisted":
        return ["-serial", UNLISTED_SERIAL], UNLISTED_SERIAL
    return ["-cert", pki.path(leaf)], str(pki.path(leaf))


def _request(pki: Pki, leaf: str, *extra: str, issuer: str = "sign_ca") -> bytes:
    out = pki.dir / f"req-{leaf}-{'-'.join(extra)}.der"
    target, _ = _target(pki, leaf)
    # options such as -sha256 must come before -cert
    result = openssl("ocsp", *extra, "-issuer", pki.path(issuer), *target, "-reqout", out)
    assert result.returncode == 0, result.stderr
    return out.read_bytes()


def _respond_and_check(pki: Pki, leaf: str, request: bytes) -> str:
    """Answer ``request``; have openssl verify the answer and print the status of ``leaf``.

    ``-no_nonce`` here only stops openssl inventing a nonce for the request it rebuilds from
    ``-cert`` (it cannot compare against ours with -respin); the echo is checked separately.
    """
    response = build_response(
        request, _status_of(pki), pki.responder, pki.responder_key, pki.sign_ca, pki.now
    )
    resp_path = pki.dir / f"resp-{leaf}.der"
    resp_path.write_bytes(response)
    target, _ = _target(pki, leaf)
    result = openssl(
        "ocsp",
        "-no_nonce",
        "-respin",
        resp_path,
        "-issuer",
        pki.path("sign_ca"),
        "-CAfile",
        pki.path("chain"),
        *target,
        "-resp_text",
    )
    return result.stdout + result.stderr


@pytest.mark.parametrize("nonce", [False, True])
@pytest.mark.parametrize(
    ("leaf", "expected"),
    [("signing", "good"), ("signing_revoked", "revoked"), ("unlisted", "unknown")],
)
def test_ocsp_statuses_verify_with_openssl(pki: Pki, leaf: str, expected: str, nonce: bool) -> None:
    request = _request(pki, leaf, *([] if nonce else ["-no_nonce"]))
    output = _respond_and_check(pki, leaf, request)
    _, label = _target(pki, leaf)
    assert "Response verify OK" in output, output
    assert f"{label}: {expected}" in output, output
    assert "OCSP Response Status: successful" in output
    assert "WARNING" not in output, output  # nonce, and thisUpdate/nextUpdate in range
    if expected == "revoked":
        assert "Reason: keyCompromise" in output
        assert "Revocation Time: Jan  5 03:00:00 2026 GMT" in output
    request_nonce = ocsp.load_der_ocsp_request(request).extensions
    if nonce:
        value = request_nonce.get_extension_for_class(x509.OCSPNonce).value.nonce
        assert "OCSP Nonce" in output
        assert value.hex().upper() in output.replace("\n", "")
    else:
        assert len(request_nonce) == 0
        assert "OCSP Nonce" not in output


def test_ocsp_nonce_is_echoed(pki: Pki) -> None:
    request = _request(pki, "signing")
    nonce = ocsp.load_der_ocsp_request(request).extensions.get_extension_for_class(x509.OCSPNonce)
    response = ocsp.load_der_ocsp_response(
        build_response(
            request, _status_of(pki), pki.responder, pki.responder_key, pki.sign_ca, pki.now
        )
    )
    echoed = response.extensions.get_extension_for_class(x509.OCSPNonce)
    assert echoed.value.nonce == nonce.value.nonce
    assert response.responder_key_hash is not None
    assert response.certificates == [pki.responder]
    assert response.next_update_utc == pki.now + dt.timedelta(hours=24)


def test_ocsp_sha256_cert_id(pki: Pki) -> None:
    request = _request(pki, "signing_revoked", "-no_nonce", "-sha256")  # digest before -cert
    (asked,) = parse_request(request)
    assert isinstance(asked.hash_algorithm, hashes.SHA256)
    output = _respond_and_check(pki, "signing_revoked", request)
    assert "Response verify OK" in output and ": revoked" in output


def test_parse_request(pki: Pki) -> None:
    (asked,) = parse_request(_request(pki, "signing", "-no_nonce"))
    assert asked.serial == pki.signing.serial_number
    assert isinstance(asked.hash_algorithm, hashes.SHA1)  # openssl's default CertID hash
    digest = hashes.Hash(hashes.SHA1())
    digest.update(pki.sign_ca.subject.public_bytes())
    assert asked.issuer_name_hash == digest.finalize()
    assert len(asked.issuer_key_hash) == 20


@pytest.mark.parametrize("junk", [b"", b"junk", b"\x30\x03\x02\x01\x01", b"\x30" + b"\xff" * 40])
def test_junk_is_a_malformed_request(pki: Pki, junk: bytes) -> None:
    with pytest.raises(MalformedOcspRequest):
        parse_request(junk)
    response = ocsp.load_der_ocsp_response(
        build_response(
            junk, _status_of(pki), pki.responder, pki.responder_key, pki.sign_ca, pki.now
        )
    )
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_several_certificates_in_one_request_are_unsupported(pki: Pki) -> None:
    out = pki.dir / "multi.der"
    assert (
        openssl(
            "ocsp",
            "-issuer",
            pki.path("sign_ca"),
            "-cert",
            pki.path("signing"),
            "-cert",
            pki.path("signing_revoked"),
            "-reqout",
            out,
        ).returncode
        == 0
    )
    with pytest.raises(UnsupportedOcspRequest):
        parse_request(out.read_bytes())


def test_another_issuer_is_unauthorized(pki: Pki) -> None:
    # a certificate of the auth CA, asked of the signing CA's responder
    request = _request(pki, "auth", "-no_nonce", issuer="auth_ca")
    response = ocsp.load_der_ocsp_response(
        build_response(
            request, _status_of(pki), pki.responder, pki.responder_key, pki.sign_ca, pki.now
        )
    )
    assert response.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize(
    ("der", "status"),
    [(malformed_response(), "malformedrequest (1)"), (unauthorized_response(), "unauthorized (6)")],
)
def test_unsuccessful_helpers_parse_with_openssl(pki: Pki, der: bytes, status: str) -> None:
    path = pki.dir / f"{status[:5]}.der"
    path.write_bytes(der)
    result = openssl("ocsp", "-respin", path, "-resp_text", "-noverify")
    assert f"Responder Error: {status}" in result.stdout


def test_status_values_are_consistent() -> None:
    with pytest.raises(ValueError):
        CertificateStatus(ocsp.OCSPCertStatus.REVOKED)
    with pytest.raises(ValueError):
        CertificateStatus(ocsp.OCSPCertStatus.GOOD, REVOKED_AT)
    with pytest.raises(ValueError):
        CertificateStatus(ocsp.OCSPCertStatus.GOOD, None, x509.ReasonFlags.key_compromise)


def _request_with_nonce(pki: Pki, nonce: bytes) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(pki.signing, pki.sign_ca, hashes.SHA1())
    request = builder.add_extension(x509.OCSPNonce(nonce), critical=False).build()
    return request.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("size", [0, 33, 1000])
def test_ocsp_nonce_outside_1_to_32_octets_is_malformed(pki: Pki, size: int) -> None:
    """RFC 9654 §2.1: Nonce ::= OCTET STRING(SIZE(1..32))."""
    response = ocsp.load_der_ocsp_response(build_response(
        _request_with_nonce(pki, b"\x07" * size), _status_of(pki), pki.responder,
        pki.responder_key, pki.sign_ca, pki.now,
    ))
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.parametrize("size", [1, 32])
def test_ocsp_nonce_of_1_and_32_octets_is_echoed(pki: Pki, size: int) -> None:
    nonce = bytes(range(1, size + 1))
    response = ocsp.load_der_ocsp_response(build_response(
        _request_with_nonce(pki, nonce), _status_of(pki), pki.responder, pki.responder_key,
        pki.sign_ca, pki.now,
    ))
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce

"""JPKI revocation: CRLs and the core of an OCSP responder (RFC 5280, RFC 6960).

Pure functions over DER bytes and :mod:`cryptography` objects. The caller supplies the clock
(``now``, ``this_update``) and the status lookup; storage and HTTP belong elsewhere.

Limitation: cryptography parses and answers only single-certificate OCSP requests. A request
listing several certificates (``openssl ocsp -cert a -cert b``) raises
:class:`UnsupportedOcspRequest` (a :class:`MalformedOcspRequest`) and :func:`build_response`
answers it with ``malformedRequest``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

from mynumber.jpki.profiles import sign_with

__all__ = [
    "GOOD",
    "UNKNOWN",
    "CertificateStatus",
    "MalformedOcspRequest",
    "RequestedCertificate",
    "RevokedEntry",
    "UnsupportedOcspRequest",
    "build_crl",
    "build_response",
    "internal_error_response",
    "malformed_response",
    "parse_request",
    "revoked",
    "unauthorized_response",
]

DEFAULT_OCSP_VALIDITY = dt.timedelta(hours=24)
# RFC 9654 §2.1: Nonce ::= OCTET STRING(SIZE(1..32)). A responder must not echo a nonce outside
# this range (an empty one defeats replay protection; a long one is a response-size amplifier),
# and answering such a request at all is refused: it is not a valid OCSP request.
MIN_NONCE_OCTETS = 1
MAX_NONCE_OCTETS = 32


# ---------------------------------------------------------------------------------------------
# CRL


class RevokedEntry(NamedTuple):
    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags | None = None


def build_crl(
    issuer_cert: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    revoked: Iterable[tuple[int, dt.datetime, x509.ReasonFlags | None]],
    this_update: dt.datetime,
    next_update: dt.datetime,
    crl_number: int,
    *,
    authority_only: bool = False,
) -> bytes:
    """A full CRL (DER) with CRLNumber and AuthorityKeyIdentifier; reason codes per entry.

    A reason of ``None`` or ``unspecified`` is left out, as RFC 5280 §5.3.1 asks.
    ``removeFromCRL`` belongs to delta CRLs only and is refused. ``authority_only`` makes an
    ARL: a critical IssuingDistributionPoint with onlyContainsCACerts (RFC 5280 §5.2.5), so no
    validator takes it as the status of an end-entity certificate. It names no distribution
    point: OpenSSL then also accepts it for the self-signed root, which has no CRL DP.
    """
    if this_update.tzinfo is None or next_update.tzinfo is None:
        raise ValueError("CRL times must be timezone-aware")
    if next_update <= this_update:
        raise ValueError("next_update must be after this_update")
    if crl_number < 0:
        raise ValueError("crl_number must be non-negative")
    usage = issuer_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    if not usage.crl_sign:
        raise ValueError("the issuer certificate does not allow cRLSign")
    ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    if authority_only:
        builder = builder.add_extension(
            x509.IssuingDistributionPoint(
                full_name=None, relative_name=None, only_contains_user_certs=False,
                only_contains_ca_certs=True, only_some_reasons=None, indirect_crl=False,
                only_contains_attribute_certs=False,
            ),
            critical=True,
        )
    seen: set[int] = set()
    for serial, revoked_at, reason in revoked:
        if serial in seen:
            raise ValueError(f"serial {serial:x} listed twice")
        seen.add(serial)
        if revoked_at.tzinfo is None:
            raise ValueError("revocation times must be timezone-aware")
        if reason is x509.ReasonFlags.remove_from_crl:
            raise ValueError("removeFromCRL is for delta CRLs")
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
        if reason is not None and reason is not x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    crl: x509.CertificateRevocationList = sign_with(issuer_key, builder)
    return crl.public_bytes(serialization.Encoding.DER)


# ---------------------------------------------------------------------------------------------
# OCSP


class MalformedOcspRequest(ValueError):
    """The bytes are not an OCSP request we can read."""


class UnsupportedOcspRequest(MalformedOcspRequest):
    """A well-formed request we cannot answer (several certificates, an unknown hash)."""


class RequestedCertificate(NamedTuple):
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    hash_algorithm: hashes.HashAlgorithm


@dataclass(frozen=True)
class CertificateStatus:
    """What :func:`build_response`'s ``lookup`` returns for a serial."""

    state: ocsp.OCSPCertStatus
    revoked_at: dt.datetime | None = None
    reason: x509.ReasonFlags | None = None

    def __post_init__(self) -> None:
        is_revoked = self.state is ocsp.OCSPCertStatus.REVOKED
        if is_revoked != (self.revoked_at is not None):
            raise ValueError("revoked_at is required for, and only for, a revoked certificate")
        if self.reason is not None and not is_revoked:
            raise ValueError("only a revoked certificate has a reason")


GOOD = CertificateStatus(ocsp.OCSPCertStatus.GOOD)
UNKNOWN = CertificateStatus(ocsp.OCSPCertStatus.UNKNOWN)


def revoked(revoked_at: dt.datetime, reason: x509.ReasonFlags | None = None) -> CertificateStatus:
    return CertificateStatus(ocsp.OCSPCertStatus.REVOKED, revoked_at, reason)


def _load(der: bytes) -> ocsp.OCSPRequest:
    try:
        return ocsp.load_der_ocsp_request(der)
    except NotImplementedError as exc:  # "contains more than one request"
        raise UnsupportedOcspRequest(str(exc)) from exc
    except (ValueError, TypeError) as exc:
        raise MalformedOcspRequest(str(exc)) from exc


def parse_request(der: bytes) -> list[RequestedCertificate]:
    """The certificates an OCSP request asks about (always one; see the module docstring)."""
    request = _load(der)
    try:
        algorithm = request.hash_algorithm
    except UnsupportedAlgorithm as exc:
        raise UnsupportedOcspRequest(str(exc)) from exc
    return [
        RequestedCertificate(
            request.issuer_name_hash, request.issuer_key_hash, request.serial_number, algorithm
        )
    ]


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _issued_by(requested: RequestedCertificate, issuer_cert: x509.Certificate) -> bool:
    """Whether the CertID names ``issuer_cert`` (RFC 6960 §4.1.1)."""
    public_key = issuer_cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    # The hash of the subjectPublicKey BIT STRING's contents = the PKCS#1 RSAPublicKey DER.
    key_bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    algorithm = requested.hash_algorithm
    return (
        _digest(algorithm, issuer_cert.subject.public_bytes()) == requested.issuer_name_hash
        and _digest(algorithm, key_bytes) == requested.issuer_key_hash
    )


def _nonce(request: ocsp.OCSPRequest) -> x509.OCSPNonce | None:
    """The request's nonce; :class:`MalformedOcspRequest` unless it is 1-32 octets (RFC 9654)."""
    try:
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # an extension that does not parse
        raise MalformedOcspRequest(str(exc)) from exc
    if not MIN_NONCE_OCTETS <= len(nonce.nonce) <= MAX_NONCE_OCTETS:
        raise MalformedOcspRequest(
            f"the nonce must be {MIN_NONCE_OCTETS}-{MAX_NONCE_OCTETS} octets (RFC 9654)"
        )
    return nonce


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def malformed_response() -> bytes:
    return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)


def unauthorized_response() -> bytes:
    return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)


def internal_error_response() -> bytes:
    return _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)


def build_response(
    request_der: bytes,
    lookup: Callable[[int], CertificateStatus],
    responder_cert: x509.Certificate,
    responder_key: rsa.RSAPrivateKey,
    issuer_cert: x509.Certificate,
    now: dt.datetime,
    *,
    validity: dt.timedelta = DEFAULT_OCSP_VALIDITY,
) -> bytes:
    """A signed OCSP response (DER) for ``request_der``, answered by a delegated responder.

    * unreadable or multi-certificate request, or a nonce that is not 1-32 octets (RFC 9654)
      -> ``malformedRequest``;
    * a CertID naming another issuer than ``issuer_cert`` -> ``unauthorized``;
    * otherwise ``successful`` with good / revoked (time, reason) / unknown from ``lookup``,
      thisUpdate ``now``, nextUpdate ``now + validity``, the request's nonce echoed, the
      responder named by key hash and its certificate included.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if responder_cert.issuer != issuer_cert.subject:
        raise ValueError("the responder certificate is not issued by issuer_cert")
    try:
        (requested,) = parse_request(request_der)
        nonce = _nonce(_load(request_der))
    except MalformedOcspRequest:
        return malformed_response()
    if not _issued_by(requested, issuer_cert):
        return unauthorized_response()
    status = lookup(requested.serial)
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=requested.issuer_name_hash,
            issuer_key_hash=requested.issuer_key_hash,
            serial_number=requested.serial,
            algorithm=requested.hash_algorithm,
            cert_status=status.state,
            this_update=now,
            next_update=now + validity,
            revocation_time=status.revoked_at,
            revocation_reason=status.reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder_cert)
        .certificates([responder_cert])
    )
    if nonce is not None:
        builder = builder.add_extension(nonce, critical=False)
    response: ocsp.OCSPResponse = sign_with(responder_key, builder)
    return response.public_bytes(serialization.Encoding.DER)

"""The relying-party verification library (署名検証者 / 利用者証明検証者 side of JPKI).

A :class:`RelyingPartyVerifier` checks, in this order, and refuses with
:class:`~mynumber.jpki.interfaces.VerificationFailed` whose ``extra["reason"]`` is one of
:data:`REASONS`:

1. the relying party is registered and active for this certificate kind (when a JPKI service is
   given) — ``unregistered_relying_party``;
2. the certificate parses and is of the kind asked for (policy OID, presence of the basic-items
   subjectAltName) — ``malformed_certificate``, ``wrong_kind``;
3. the RSASSA-PKCS1-v1_5 / SHA-256 signature over the data or challenge — ``bad_signature``
   (skipped by :meth:`RelyingPartyVerifier.verify_certificate`, which checks an auth
   certificate whose holder's presence someone else attests: a face match, a visual check);
4. the certificate's validity at ``now`` — ``expired``, ``not_yet_valid``;
5. the chain up to one of the trust anchors: every signature issuer by issuer, validity, CA basic
   constraints, keyCertSign, path length — ``untrusted_chain``;
6. revocation status from a :class:`StatusSource` — ``revoked``, ``status_unknown``;

and returns only what the certificate type allows: the 4 basic items for a signing certificate
(:class:`SigningVerification`), only a pairwise identifier from the JPKI service for an auth
certificate (:class:`AuthVerification`; never the serial — without a JPKI service there is no
identifier to give, so auth verification is refused with ``no_identifier``).

The chain is checked by hand rather than with ``cryptography.x509.verification``: its client
verifier applies the Web PKI profile (a leaf SAN, EKU clientAuth), which the 署名用 certificate
(no EKU) and the 利用者証明用 certificate (no SAN) do not follow.

Caching: the path from each issuing CA up to its anchor is validated once and kept with the
earliest ``not_after`` on it; a validated end-entity certificate is kept (keyed by its exact PEM
text, for ``chain_cache_seconds``, bounded in size) so that a repeat caller does not pay for
parsing it and for the issuer's signature check again. Validity at ``now`` and revocation status
are checked on every call (the status source may cache answers until their nextUpdate).

Status sources: :class:`CallableStatusSource` (in-process lookup by serial, the same callable
``revocation.build_response`` takes), :class:`OcspStatusSource` (RFC 6960 over HTTP, verifies the
delegated responder and caches good and revoked answers until nextUpdate) and
:class:`CrlStatusSource` (fetches, verifies and caches the issuer's CRL until nextUpdate).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from mynumber.jpki.interfaces import (
    AuthVerification,
    CertificateKind,
    HolderProof,
    RelyingParty,
    RelyingPartyNotRegistered,
    SigningVerification,
    VerificationFailed,
)
from mynumber.jpki.profiles import AUTH_POLICY_OID, BASIC_ITEM_OIDS, SIGNING_POLICY_OID
from mynumber.jpki.revocation import GOOD, UNKNOWN, CertificateStatus, revoked

# The status types a StatusSource returns are part of this library's API (a relying party that
# knows the status in-process, such as the portal, builds them).
__all__ = [
    "GOOD",
    "REASONS",
    "UNKNOWN",
    "CallableStatusSource",
    "CertificateStatus",
    "CrlStatusSource",
    "OcspStatusSource",
    "Refusal",
    "RelyingPartyVerifier",
    "StatusSource",
    "StatusUnavailable",
    "VerifierJpki",
    "certificate_kind",
    "read_basic_items",
    "revoked",
]

REASONS = (
    "unregistered_relying_party",
    "malformed_certificate",
    "wrong_kind",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "untrusted_chain",
    "revoked",
    "status_unknown",
    "basic_items_mismatch",
    "no_identifier",
)

_T = TypeVar("_T")
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


# ---------------------------------------------------------------------------------------------
# What the verifier needs from JPKI (JpkiService satisfies this)


class VerifierJpki(Protocol):
    def relying_party(self, relying_party_id: int) -> RelyingParty: ...

    def basic_items(self, relying_party_id: int, serial: int) -> SigningVerification: ...

    def pairwise_id(self, relying_party_id: int, serial: int) -> str: ...

    def record_user(self, relying_party_id: int, proof: HolderProof) -> None: ...


@dataclass(frozen=True)
class Refusal:
    """Handed to ``on_refused`` (e.g. to write an audit record) before the error is raised."""

    reason: str
    detail: str
    operation: str  # "signature", "authentication" or "certificate" (no signature)
    relying_party_id: int
    serial: int | None  # for the audit trail only; never returned to the relying party
    issuer: str | None


# ---------------------------------------------------------------------------------------------
# Revocation status sources


class StatusUnavailable(Exception):
    """No trustworthy status could be obtained (network error, bad or stale response)."""


class StatusSource(Protocol):
    def status(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
    ) -> CertificateStatus:
        """good / revoked / unknown, or raise :class:`StatusUnavailable`."""
        ...


class CallableStatusSource:
    """In-process status: ``lookup(serial)`` (the callable ``revocation.build_response`` takes)."""

    def __init__(self, lookup: Callable[[int], CertificateStatus]) -> None:
        self._lookup = lookup

    def status(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
    ) -> CertificateStatus:
        return self._lookup(certificate.serial_number)


def _aia_ocsp_url(certificate: x509.Certificate) -> str:
    try:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound as exc:
        raise StatusUnavailable("the certificate names no OCSP responder") from exc
    for description in aia.value:
        if description.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
            description.access_location, x509.UniformResourceIdentifier
        ):
            return description.access_location.value
    raise StatusUnavailable("the certificate names no OCSP responder")


def _crl_url(certificate: x509.Certificate) -> str:
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound as exc:
        raise StatusUnavailable("the certificate names no CRL distribution point") from exc
    for point in points.value:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier):
                return name.value
    raise StatusUnavailable("the certificate names no CRL distribution point")


def _key_hash(certificate: x509.Certificate) -> bytes:
    der = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    return hashlib.sha1(der, usedforsecurity=False).digest()


def _verify_rsa(public_key: object, signature: bytes, data: bytes,
                algorithm: hashes.HashAlgorithm | None) -> bool:
    if not isinstance(public_key, rsa.RSAPublicKey) or algorithm is None:
        return False
    try:
        public_key.verify(signature, data, _PKCS1, algorithm)
    except InvalidSignature:
        return False
    return True


def _valid_at(certificate: x509.Certificate, now: dt.datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def _status_from_single(single: ocsp.OCSPSingleResponse | ocsp.OCSPResponse) -> CertificateStatus:
    state = single.certificate_status
    if state is ocsp.OCSPCertStatus.GOOD:
        return CertificateStatus(state)
    if state is ocsp.OCSPCertStatus.REVOKED:
        return CertificateStatus(state, single.revocation_time_utc, single.revocation_reason)
    return UNKNOWN


class OcspStatusSource:
    """RFC 6960 over HTTP POST.

    ``url_for(certificate)`` picks the responder (default: the certificate's AIA OCSP URL);
    ``client`` is an ``httpx.Client`` (tests pass one with a ``MockTransport``). The response
    must be signed by the issuer itself or by a delegated responder certificate included in the
    response, issued directly by the issuer, with EKU id-kp-OCSPSigning and valid at ``now``;
    its CertID must match the request; thisUpdate must not lie in the future (beyond ``skew``)
    and nextUpdate not in the past. Good and revoked answers are cached until nextUpdate; with
    ``use_nonce`` each request carries a nonce that must be echoed (and nothing is cached).
    """

    def __init__(
        self,
        url_for: Callable[[x509.Certificate], str] | None = None,
        client: httpx.Client | None = None,
        *,
        use_nonce: bool = False,
        skew: dt.timedelta = dt.timedelta(minutes=5),
        timeout: float = 5.0,
        max_cache: int = 100_000,
    ) -> None:
        self._url_for = url_for or _aia_ocsp_url
        self._client = client or httpx.Client(timeout=timeout)
        self._use_nonce = use_nonce
        self._skew = skew
        self._max_cache = max_cache
        self._cache: dict[tuple[bytes, int], tuple[dt.datetime, CertificateStatus]] = {}
        self._lock = threading.Lock()
        self.requests_sent = 0

    def status(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
    ) -> CertificateStatus:
        key = (_key_hash(issuer), certificate.serial_number)
        cached = self._cache.get(key)
        if cached is not None and now <= cached[0]:
            return cached[1]
        nonce = None
        # CertID hashes are SHA-1 as RFC 5019 asks (names, not a security use).
        builder = ocsp.OCSPRequestBuilder().add_certificate(
            certificate, issuer, hashes.SHA1()  # noqa: S303
        )
        if self._use_nonce:
            nonce = secrets.token_bytes(16)
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        request = builder.build()
        body = request.public_bytes(serialization.Encoding.DER)
        url = self._url_for(certificate)
        try:
            reply = self._client.post(
                url, content=body, headers={"Content-Type": "application/ocsp-request"}
            )
        except httpx.HTTPError as exc:
            raise StatusUnavailable(f"OCSP responder unreachable: {type(exc).__name__}") from exc
        self.requests_sent += 1
        if reply.status_code != 200:
            raise StatusUnavailable(f"OCSP responder answered HTTP {reply.status_code}")
        status, next_update = self._check_response(
            reply.content, request, certificate, issuer, now, nonce
        )
        if status.state is not ocsp.OCSPCertStatus.UNKNOWN and nonce is None:
            with self._lock:
                if len(self._cache) >= self._max_cache:
                    self._cache.clear()
                self._cache[key] = (next_update, status)
        return status

    def _check_response(
        self,
        der: bytes,
        request: ocsp.OCSPRequest,
        certificate: x509.Certificate,
        issuer: x509.Certificate,
        now: dt.datetime,
        nonce: bytes | None,
    ) -> tuple[CertificateStatus, dt.datetime]:
        try:
            response = ocsp.load_der_ocsp_response(der)
        except ValueError as exc:
            raise StatusUnavailable("unreadable OCSP response") from exc
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise StatusUnavailable(f"OCSP response status {response.response_status.name}")
        signer = self._response_signer(response, issuer, now)
        if not _verify_rsa(signer.public_key(), response.signature,
                           response.tbs_response_bytes, response.signature_hash_algorithm):
            raise StatusUnavailable("bad OCSP response signature")
        singles = [
            single for single in response.responses
            if single.serial_number == certificate.serial_number
            and single.issuer_key_hash == request.issuer_key_hash
            and single.issuer_name_hash == request.issuer_name_hash
        ]
        if len(singles) != 1:
            raise StatusUnavailable("the OCSP response does not answer the request")
        single = singles[0]
        if single.this_update_utc > now + self._skew:
            raise StatusUnavailable("OCSP response from the future")
        next_update = single.next_update_utc
        if next_update is None or next_update < now:
            raise StatusUnavailable("stale OCSP response")
        if nonce is not None:
            try:
                echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            except x509.ExtensionNotFound:
                echoed = None
            if echoed != nonce:
                raise StatusUnavailable("OCSP nonce not echoed")
        return _status_from_single(single), next_update

    @staticmethod
    def _response_signer(
        response: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime
    ) -> x509.Certificate:
        issuer_key_hash = _key_hash(issuer)
        if response.responder_key_hash == issuer_key_hash or response.responder_name == (
            issuer.subject
        ):
            return issuer
        for candidate in response.certificates:
            named = (
                response.responder_key_hash == _key_hash(candidate)
                if response.responder_key_hash is not None
                else response.responder_name == candidate.subject
            )
            if not named:
                continue
            try:
                candidate.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature) as exc:
                raise StatusUnavailable("OCSP responder not issued by the CA") from exc
            try:
                eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound as exc:
                raise StatusUnavailable("OCSP responder lacks id-kp-OCSPSigning") from exc
            if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                raise StatusUnavailable("OCSP responder lacks id-kp-OCSPSigning")
            if not _valid_at(candidate, now):
                raise StatusUnavailable("OCSP responder certificate not valid now")
            return candidate
        raise StatusUnavailable("OCSP response signed by an unknown responder")


class CrlStatusSource:
    """Fetches the issuer's CRL (DER over HTTP; default URL from the certificate's CRL DP),
    verifies it against the issuer and caches it until its nextUpdate."""

    def __init__(
        self,
        url_for: Callable[[x509.Certificate], str] | None = None,
        client: httpx.Client | None = None,
        *,
        timeout: float = 5.0,
    ) -> None:
        self._url_for = url_for or _crl_url
        self._client = client or httpx.Client(timeout=timeout)
        self._cache: dict[str, x509.CertificateRevocationList] = {}
        self.fetches = 0

    def _crl(self, url: str, issuer: x509.Certificate, now: dt.datetime
             ) -> x509.CertificateRevocationList:
        crl = self._cache.get(url)
        if crl is not None and crl.next_update_utc is not None and now <= crl.next_update_utc:
            return crl
        try:
            reply = self._client.get(url)
        except httpx.HTTPError as exc:
            raise StatusUnavailable(f"CRL unreachable: {type(exc).__name__}") from exc
        self.fetches += 1
        if reply.status_code != 200:
            raise StatusUnavailable(f"CRL server answered HTTP {reply.status_code}")
        try:
            crl = x509.load_der_x509_crl(reply.content)
        except ValueError as exc:
            raise StatusUnavailable("unreadable CRL") from exc
        public_key = issuer.public_key()
        if crl.issuer != issuer.subject or not isinstance(public_key, rsa.RSAPublicKey):
            raise StatusUnavailable("CRL from another issuer")
        if not crl.is_signature_valid(public_key):
            raise StatusUnavailable("bad CRL signature")
        if crl.next_update_utc is None or crl.next_update_utc < now:
            raise StatusUnavailable("stale CRL")
        if crl.last_update_utc > now + dt.timedelta(minutes=5):
            raise StatusUnavailable("CRL from the future")
        self._cache[url] = crl
        return crl

    def status(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
    ) -> CertificateStatus:
        crl = self._crl(self._url_for(certificate), issuer, now)
        entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is None:
            return CertificateStatus(ocsp.OCSPCertStatus.GOOD)
        try:
            reason: x509.ReasonFlags | None = entry.extensions.get_extension_for_class(
                x509.CRLReason
            ).value.reason
        except x509.ExtensionNotFound:
            reason = None
        return CertificateStatus(ocsp.OCSPCertStatus.REVOKED, entry.revocation_date_utc, reason)


# ---------------------------------------------------------------------------------------------
# Certificate contents


def _der_string_value(der: bytes) -> str:
    """The text of a DER UTF8String (or Printable/IA5 string) otherName value."""
    if len(der) < 2 or der[0] not in (0x0C, 0x13, 0x16):
        raise ValueError("not a string")
    length = der[1]
    offset = 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            raise ValueError("bad DER length")
        length = int.from_bytes(der[2 : 2 + count], "big")
        offset = 2 + count
    if len(der) != offset + length:
        raise ValueError("bad DER length")
    return der[offset:].decode("utf-8")


def read_basic_items(certificate: x509.Certificate) -> dict[str, str]:
    """The basic-items otherNames of a signing certificate, by name (see profiles.BASIC_ITEM_OIDS);
    empty when the certificate carries none."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {}
    by_oid = {oid: name for name, oid in BASIC_ITEM_OIDS.items()}
    items: dict[str, str] = {}
    for other in san.get_values_for_type(x509.OtherName):
        name = by_oid.get(other.type_id)
        if name is not None:
            items[name] = _der_string_value(other.value)
    return items


def _policies(certificate: x509.Certificate) -> set[x509.ObjectIdentifier]:
    try:
        ext = certificate.extensions.get_extension_for_class(x509.CertificatePolicies)
    except x509.ExtensionNotFound:
        return set()
    return {policy.policy_identifier for policy in ext.value}


def certificate_kind(
    certificate: x509.Certificate,
    signing_policy: x509.ObjectIdentifier = SIGNING_POLICY_OID,
    auth_policy: x509.ObjectIdentifier = AUTH_POLICY_OID,
) -> CertificateKind | None:
    """SIGNING (signing policy OID and the basic items), AUTH (auth policy OID, no basic items),
    or None for anything else (including a certificate claiming both, or one whose key usage
    does not allow digitalSignature)."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not usage.digital_signature:
        return None
    policies = _policies(certificate)
    has_items = bool(read_basic_items(certificate))
    if signing_policy in policies and auth_policy not in policies and has_items:
        return CertificateKind.SIGNING
    if auth_policy in policies and signing_policy not in policies and not has_items:
        return CertificateKind.AUTH
    return None


def _iso_birth_date(value: str) -> str:
    """``EYYYYMMDD`` (era digit + Gregorian date) or ``YYYY-MM-DD`` -> ``YYYY-MM-DD``."""
    if len(value) == 9 and value.isdigit():
        return dt.date(int(value[1:5]), int(value[5:7]), int(value[7:9])).isoformat()
    return dt.date.fromisoformat(value).isoformat()


# ---------------------------------------------------------------------------------------------
# The verifier


@dataclass(frozen=True)
class _Leaf:
    certificate: x509.Certificate
    public_key: rsa.RSAPublicKey
    kind: CertificateKind | None
    issuer: x509.Certificate
    not_before: dt.datetime
    not_after: dt.datetime
    chain_not_after: dt.datetime  # earliest not_after on the path from the issuer to the anchor
    chain_not_before: dt.datetime
    cached_until: float  # time.monotonic()


class _Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class RelyingPartyVerifier:
    """Verify signatures and authentication challenges for one relying party.

    ``trust_anchors`` are the roots, ``intermediates`` the issuing CAs (any order). ``jpki`` is
    the JPKI service (or anything with the :class:`VerifierJpki` methods); without it the
    relying party's registration cannot be checked, signing verification returns the basic
    items read from the certificate, and authentication verification is refused
    (``no_identifier``). ``now`` is a clock (default: the system clock, UTC).
    """

    def __init__(
        self,
        trust_anchors: list[x509.Certificate],
        intermediates: list[x509.Certificate],
        status: StatusSource,
        relying_party_id: int,
        jpki: VerifierJpki | None = None,
        *,
        on_refused: Callable[[Refusal], None] | None = None,
        now: Callable[[], dt.datetime] | None = None,
        signing_policy: x509.ObjectIdentifier = SIGNING_POLICY_OID,
        auth_policy: x509.ObjectIdentifier = AUTH_POLICY_OID,
        chain_cache_seconds: float = 300.0,
        chain_cache_size: int = 10_000,
        max_path_length: int = 4,
    ) -> None:
        if not trust_anchors:
            raise ValueError("at least one trust anchor is needed")
        self._anchors = {a.public_bytes(serialization.Encoding.DER): a for a in trust_anchors}
        self._by_subject: dict[bytes, list[x509.Certificate]] = {}
        for cert in [*intermediates, *trust_anchors]:
            # Only CA certificates allowed to sign certificates can be issuers on a path.
            if _is_ca(cert) and _may_sign_certificates(cert):
                self._by_subject.setdefault(cert.subject.public_bytes(), []).append(cert)
        self._status = status
        self._rp = relying_party_id
        self._jpki = jpki
        self._on_refused = on_refused
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._signing_policy = signing_policy
        self._auth_policy = auth_policy
        self._cache_seconds = chain_cache_seconds
        self._cache_size = chain_cache_size
        self._max_path = max_path_length
        self._leaves: OrderedDict[str, _Leaf] = OrderedDict()
        # issuing CA DER -> (path not_before, path not_after) of a validated path to an anchor
        self._paths: dict[bytes, tuple[dt.datetime, dt.datetime]] = {}
        self._lock = threading.Lock()

    # -- public API ----------------------------------------------------------------------------

    def verify_signature(
        self, data: bytes, signature: bytes, certificate_pem: str | bytes
    ) -> SigningVerification:
        """Verify a signature made with a 署名用 certificate; return its 4 basic items."""
        return self._guarded("signature", CertificateKind.SIGNING, data, signature,
                             certificate_pem, self._signing_result)

    def verify_authentication(
        self, challenge: bytes, signature: bytes, certificate_pem: str | bytes
    ) -> AuthVerification:
        """Verify a challenge signed with a 利用者証明用 certificate; return a pairwise id."""
        return self._guarded("authentication", CertificateKind.AUTH, challenge, signature,
                             certificate_pem, self._auth_result)

    def verify_certificate(self, certificate_pem: str | bytes) -> AuthVerification:
        """Check a 利用者証明用 certificate without a signature (relying party, kind, validity,
        chain, revocation: every step but the signature); return the pairwise id.

        For a relying party that reads the card's certificate while someone else attests that
        its holder is present (a medical institution's terminal after a face match or its
        staff's visual check). The certificate is public: this proves nothing about who holds
        the card, only that the certificate is JPKI's, valid now and not revoked."""
        return self._guarded("certificate", CertificateKind.AUTH, b"", None,
                             certificate_pem, self._auth_result)

    # -- steps ---------------------------------------------------------------------------------

    def _guarded(
        self,
        operation: str,
        kind: CertificateKind,
        data: bytes,
        signature: bytes | None,
        certificate_pem: str | bytes,
        result: Callable[[_Leaf, HolderProof], _T],
    ) -> _T:
        """Every step in order; ``signature`` None (``verify_certificate`` only) skips the
        signature check and nothing else."""
        leaf: _Leaf | None = None
        try:
            self._check_relying_party(kind)
            leaf = self._leaf(certificate_pem)
            if leaf.kind is not kind:
                raise _Refused("wrong_kind", f"not a {kind.value} certificate")
            if signature is not None and not _verify_rsa(leaf.public_key, signature, data,
                                                         _SHA256):
                raise _Refused("bad_signature", "the signature does not verify")
            now = self._now()
            if now < leaf.not_before:
                raise _Refused("not_yet_valid", "the certificate is not yet valid")
            if now > leaf.not_after:
                raise _Refused("expired", "the certificate has expired")
            if not leaf.chain_not_before <= now <= leaf.chain_not_after:
                raise _Refused("untrusted_chain", "a CA certificate on the path is not valid now")
            self._check_status(leaf, now)
            pem = certificate_pem if isinstance(certificate_pem, str) else \
                certificate_pem.decode("ascii", "replace")
            return result(leaf, HolderProof(pem, bytes(data), bytes(signature or b"")))
        except _Refused as refused:
            cert = leaf.certificate if leaf is not None else None
            if self._on_refused is not None:
                self._on_refused(Refusal(
                    refused.reason, refused.detail, operation, self._rp,
                    cert.serial_number if cert is not None else None,
                    cert.issuer.rfc4514_string() if cert is not None else None,
                ))
            raise VerificationFailed(refused.detail, reason=refused.reason) from None

    def _check_relying_party(self, kind: CertificateKind) -> None:
        if self._jpki is None:
            return
        try:
            party = self._jpki.relying_party(self._rp)
        except RelyingPartyNotRegistered:
            raise _Refused("unregistered_relying_party",
                           "the relying party is not registered") from None
        if not party.active or kind not in party.kinds:
            raise _Refused("unregistered_relying_party",
                           f"the relying party is not registered for {kind.value} certificates")

    def _check_status(self, leaf: _Leaf, now: dt.datetime) -> None:
        try:
            status = self._status.status(leaf.certificate, leaf.issuer, now)
        except StatusUnavailable as exc:
            raise _Refused("status_unknown", f"revocation status unavailable: {exc}") from None
        if status.state is ocsp.OCSPCertStatus.REVOKED:
            raise _Refused("revoked", "the certificate has been revoked")
        if status.state is not ocsp.OCSPCertStatus.GOOD:
            raise _Refused("status_unknown", "the certificate's status is unknown")

    def _signing_result(self, leaf: _Leaf, proof: HolderProof) -> SigningVerification:
        serial = leaf.certificate.serial_number
        items = read_basic_items(leaf.certificate)
        try:
            from_cert = SigningVerification(
                serial, items["name"], _iso_birth_date(items["birth_date"]), items["sex"],
                items["address"],
            )
        except (KeyError, ValueError):
            raise _Refused("malformed_certificate", "unreadable basic items") from None
        if self._jpki is None:
            return from_cert
        registered = self._jpki.basic_items(self._rp, serial)
        try:
            registered_birth = _iso_birth_date(registered.birth_date)
        except ValueError:
            registered_birth = registered.birth_date
        if (registered.serial, registered.name, registered_birth, registered.sex,
                registered.address) != (from_cert.serial, from_cert.name, from_cert.birth_date,
                                        from_cert.sex, from_cert.address):
            raise _Refused("basic_items_mismatch",
                           "the certificate's basic items differ from JPKI's record")
        # JPKI records the user on the holder's proof (it checks the signature again), never on
        # the serial alone: a serial is no evidence that the holder came to this party.
        self._jpki.record_user(self._rp, proof)
        return from_cert

    def _auth_result(self, leaf: _Leaf, proof: HolderProof) -> AuthVerification:
        if self._jpki is None:
            raise _Refused("no_identifier",
                           "an auth certificate yields an identifier only through JPKI")
        return AuthVerification(self._jpki.pairwise_id(self._rp, leaf.certificate.serial_number))

    # -- certificates and chains ---------------------------------------------------------------

    def _leaf(self, certificate_pem: str | bytes) -> _Leaf:
        key = certificate_pem if isinstance(certificate_pem, str) else certificate_pem.decode(
            "ascii", "replace")
        clock = time.monotonic()
        leaf = self._leaves.get(key)
        if leaf is not None and clock < leaf.cached_until:
            return leaf
        leaf = self._build_leaf(key, clock)
        with self._lock:
            self._leaves[key] = leaf
            while len(self._leaves) > self._cache_size:
                self._leaves.popitem(last=False)
        return leaf

    def _build_leaf(self, pem: str, clock: float) -> _Leaf:
        try:
            certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
            public_key = certificate.public_key()
            kind = certificate_kind(certificate, self._signing_policy, self._auth_policy)
        except (ValueError, UnicodeEncodeError):
            raise _Refused("malformed_certificate", "not a readable certificate") from None
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise _Refused("malformed_certificate", "not an RSA certificate")
        if _is_ca(certificate):
            raise _Refused("wrong_kind", "a CA certificate cannot sign as a holder")
        issuer = self._issuer_of(certificate)
        if issuer is None:
            raise _Refused("untrusted_chain", "the issuer is not a known CA")
        path_not_before, path_not_after = self._path_from(issuer, depth=0)
        return _Leaf(
            certificate, public_key, kind, issuer,
            certificate.not_valid_before_utc, certificate.not_valid_after_utc,
            path_not_after, path_not_before, clock + self._cache_seconds,
        )

    def _issuer_of(self, certificate: x509.Certificate) -> x509.Certificate | None:
        """The known CA that signed ``certificate`` (name match and a verified signature)."""
        for candidate in self._by_subject.get(certificate.issuer.public_bytes(), ()):
            try:
                certificate.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return candidate
        return None

    def _path_from(self, ca: x509.Certificate, depth: int) -> tuple[dt.datetime, dt.datetime]:
        """Validate the path from CA ``ca`` up to an anchor (cached per CA): the earliest
        not_after and latest not_before on it. ``depth`` = CAs below ``ca`` on the path."""
        der = ca.public_bytes(serialization.Encoding.DER)
        cached = self._paths.get(der)
        if cached is not None:
            return cached
        if depth > self._max_path:
            raise _Refused("untrusted_chain", "the path is too long")
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.path_length is not None and depth > constraints.path_length:
            raise _Refused("untrusted_chain", "a CA's path length constraint is exceeded")
        window = (ca.not_valid_before_utc, ca.not_valid_after_utc)
        if der in self._anchors:
            result = window
        else:
            parent = self._issuer_of(ca)
            if parent is None or parent.public_bytes(serialization.Encoding.DER) == der:
                raise _Refused("untrusted_chain", "the path does not reach a trust anchor")
            above = self._path_from(parent, depth + 1)
            result = (max(window[0], above[0]), min(window[1], above[1]))
        self._paths[der] = result
        return result


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _may_sign_certificates(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    except x509.ExtensionNotFound:
        return True

"""JPKI certificate profiles: CAs, 署名用 and 利用者証明用 certificates, the OCSP responder.

Pure functions over :mod:`cryptography` objects — no database, no clock, no I/O. Every date is
passed in; every serial is random (:func:`cryptography.x509.random_serial_number`, 159 bits) and
is *not* an identifier of the holder.

Signing and HSMs
----------------
Every function takes the issuer's key as an ``rsa.RSAPrivateKey``. That may be a real software
key or a :class:`CallbackRSAPrivateKey`, which holds only the public key and hands the bytes to be
signed to a callback (an HSM, a PKCS#11 session, a remote signer). cryptography's builders accept
such a subclass: they call ``key.sign(tbs, PKCS1v15(), SHA256())`` through the Python ABC, so the
private key never has to be in this process. Every signature goes through :func:`sign_with`.

What is and isn't known about the real J-LIS profile
----------------------------------------------------
* ``subjectAltName`` otherName OIDs 1.2.392.200149.8.5.5.1-.6 (name, name substitute positions,
  sex, date of birth, address, address substitute positions): as in the blueprint. Public
  third-party readers of real cards agree on .1-.4; one older OID table swaps .5 and .6, a
  reader tested against a real (test) card has .5 = address, .6 = address substitutes, which is
  what we use. Values are UTF8String.
* Date of birth: ``EYYYYMMDD`` — an era digit (1 明治, 2 大正, 3 昭和, 4 平成, 5 令和, 0 unknown)
  followed by the *Gregorian* date, e.g. ``419900102`` for 1990-01-02 (平成2年). This comes
  from public third-party code that reads real cards, not from the J-LIS specification itself.
* Sex: one JIS X 0303 (= ISO 5218) digit: 1 male, 2 female, 9 not applicable, 0 unknown.
* Substitute positions: one ``0``/``1`` per character of the name/address, ``1`` where the
  character on the certificate is a substitute for one outside the repertoire.
* Policy OIDs: the brief proposed ``1.2.392.200149.8.5.1.1.10`` / ``…1.3.10``. Public
  third-party code names ``1.2.392.200149.8.5.1.1.20`` (signing, "class 20") and
  ``1.2.392.200149.8.5.1.3.30`` (authentication, "class 30"), with ``…1.0.20`` for the J-LIS test
  environment. We default to the .20/.30 values; they are NOT verified against the J-LIS CP/CPS
  text. Both are parameters.
* The real JPKI subject DN of an end-entity certificate is a non-identifying value (an issue
  number plus locality), never the name and never the 個人番号. We use ``C=JP, CN=<opaque>``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from mynumber.kernel import localtime

__all__ = [
    "AUTH_POLICY_OID",
    "BASIC_ITEM_OIDS",
    "JST",
    "POOLED_KEY_MARKER",
    "SIGNING_POLICY_OID",
    "BasicFourItems",
    "CallbackRSAPrivateKey",
    "RevocationEndpoints",
    "Signer",
    "auth_certificate",
    "ca_certificate",
    "certificate_validity",
    "encode_birth_date",
    "may_hold_signing_certificate",
    "ocsp_responder_certificate",
    "opaque_subject_cn",
    "sign_with",
    "signing_certificate",
]

JST = localtime.JST

_ARC = "1.2.392.200149.8.5"
SIGNING_POLICY_OID = x509.ObjectIdentifier(f"{_ARC}.1.1.20")
AUTH_POLICY_OID = x509.ObjectIdentifier(f"{_ARC}.1.3.30")
BASIC_ITEM_OIDS = {
    "name": x509.ObjectIdentifier(f"{_ARC}.5.1"),
    "name_substitutes": x509.ObjectIdentifier(f"{_ARC}.5.2"),
    "sex": x509.ObjectIdentifier(f"{_ARC}.5.3"),
    "birth_date": x509.ObjectIdentifier(f"{_ARC}.5.4"),
    "address": x509.ObjectIdentifier(f"{_ARC}.5.5"),
    "address_substitutes": x509.ObjectIdentifier(f"{_ARC}.5.6"),
}

END_ENTITY_KEY_BITS = 2048
#: Subject OU of every certificate issued on a pooled test key (``mynumber seed`` only): many
#: seeded cards share a few key pairs, which no real issuance would allow.
POOLED_KEY_MARKER = "POOLED-TEST-KEY-SEED-ONLY"
SIGNING_MIN_AGE = 15
CERTIFICATE_BIRTHDAYS = 5

# ---------------------------------------------------------------------------------------------
# Signing: software keys and callbacks (HSM)

Signer = Callable[[bytes], bytes]
"""Returns the RSASSA-PKCS1-v1_5 / SHA-256 signature of the given bytes (not of a digest)."""


class CallbackRSAPrivateKey(rsa.RSAPrivateKey):
    """An RSA "private key" that only knows its public half and signs through ``signer``.

    Accepted by cryptography's Certificate/CRL/OCSP builders (checked with cryptography 50):
    they dispatch on the ``RSAPrivateKey`` ABC and call :meth:`sign` with the full TBS bytes.
    Only PKCS#1 v1.5 with SHA-256 is offered; anything needing the private numbers raises.
    With a :mod:`mynumber.keys` provider::

        CallbackRSAPrivateKey(public_key, lambda tbs: provider.sign(label, tbs))
    """

    def __init__(self, public_key: rsa.RSAPublicKey, signer: Signer) -> None:
        self._public_key = public_key
        self._signer = signer

    def sign(self, data: bytes, padding: Any, algorithm: Any) -> bytes:
        if not isinstance(padding, _PKCS1v15) or not isinstance(algorithm, hashes.SHA256):
            raise ValueError("the callback signer only does sha256WithRSAEncryption")
        return self._signer(bytes(data))

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public_key

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def decrypt(self, ciphertext: bytes, padding: Any) -> bytes:
        raise NotImplementedError("a callback key cannot decrypt")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise NotImplementedError("a callback key has no private numbers")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        raise NotImplementedError("a callback key cannot be exported")

    def __copy__(self) -> CallbackRSAPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> CallbackRSAPrivateKey:
        return self


_PKCS1v15 = padding.PKCS1v15


@overload
def sign_with(key: rsa.RSAPrivateKey, builder: x509.CertificateBuilder) -> x509.Certificate: ...
@overload
def sign_with(
    key: rsa.RSAPrivateKey, builder: x509.CertificateRevocationListBuilder
) -> x509.CertificateRevocationList: ...
@overload
def sign_with(key: rsa.RSAPrivateKey, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse: ...
def sign_with(
    key: rsa.RSAPrivateKey,
    builder: x509.CertificateBuilder
    | x509.CertificateRevocationListBuilder
    | ocsp.OCSPResponseBuilder,
) -> x509.Certificate | x509.CertificateRevocationList | ocsp.OCSPResponse:
    """The one place a JPKI object gets signed: sha256WithRSAEncryption by ``key``.

    ``key`` is a software key or a :class:`CallbackRSAPrivateKey` (HSM).
    """
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("JPKI keys are RSA")
    return builder.sign(key, hashes.SHA256())


# ---------------------------------------------------------------------------------------------
# Validity and eligibility


def _anniversary(birth: dt.date, year: int, *, feb29_as: tuple[int, int]) -> dt.date:
    try:
        return birth.replace(year=year)
    except ValueError:  # 29 February in a common year
        return dt.date(year, *feb29_as)


def age_on(birth_date: dt.date, on: dt.date) -> int:
    """Completed years on ``on``, counting a birthday from the morning of the day.

    29 February births become a year older on 1 March in common years (the legal moment under
    年齢計算ニ関スル法律 / 民法143条 is the end of 28 February, i.e. the start of 1 March).
    """
    if on < birth_date:
        raise ValueError("not born yet")
    years = on.year - birth_date.year
    if on < _anniversary(birth_date, on.year, feb29_as=(3, 1)):
        years -= 1
    return years


def may_hold_signing_certificate(birth_date: dt.date, on: dt.date, adult_ward: bool) -> bool:
    """No 署名用電子証明書 under 15, nor for an adult ward (成年被後見人)."""
    return not adult_ward and age_on(birth_date, on) >= SIGNING_MIN_AGE


def _end_of_day_jst(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), JST).astimezone(dt.UTC)


def certificate_validity(
    birth_date: dt.date, issued_on: dt.date | dt.datetime, card_expiry: dt.date
) -> tuple[dt.datetime, dt.datetime]:
    """``(not_before, not_after)`` in UTC for a certificate issued on ``issued_on``.

    Valid through the holder's 5th birthday *after* the day of issue (issued on a birthday, that
    birthday does not count), or through ``card_expiry`` if that is earlier; both end at
    23:59:59 JST. A date ``issued_on`` starts at 00:00 JST; an aware datetime is taken as is.
    29 February births: in a common year the "birthday" is taken as 28 February, so the
    certificate never outlives the fifth anniversary (an assumption; J-LIS's rule is not public
    to us).
    """
    if isinstance(issued_on, dt.datetime):
        if issued_on.tzinfo is None:
            raise ValueError("issued_on must be timezone-aware")
        not_before = issued_on.astimezone(dt.UTC)
        issue_day = issued_on.astimezone(JST).date()
    else:
        not_before = dt.datetime.combine(issued_on, dt.time(0, 0), JST).astimezone(dt.UTC)
        issue_day = issued_on
    if birth_date > issue_day:
        raise ValueError("issued before birth")
    if card_expiry < issue_day:
        raise ValueError("the card has already expired")
    # The first birthday strictly after the day of issue.
    first = _anniversary(birth_date, issue_day.year, feb29_as=(2, 28))
    first_year = issue_day.year if first > issue_day else issue_day.year + 1
    fifth = _anniversary(birth_date, first_year + CERTIFICATE_BIRTHDAYS - 1, feb29_as=(2, 28))
    return not_before, _end_of_day_jst(min(fifth, card_expiry))


# ---------------------------------------------------------------------------------------------
# Holder data


@dataclass(frozen=True)
class BasicFourItems:
    """基本4情報 as written into a signing certificate.

    ``sex`` is a JIS X 0303 digit ("1" male, "2" female, "9" not applicable, "0" unknown).
    ``*_substitutes`` are one "0"/"1" per character (default: all "0").
    """

    name: str
    birth_date: dt.date
    sex: str
    address: str
    name_substitutes: str | None = None
    address_substitutes: str | None = None

    def __post_init__(self) -> None:
        if not self.name.strip() or not self.address.strip():
            raise ValueError("name and address are required")
        if self.sex not in {"0", "1", "2", "9"}:
            raise ValueError("sex must be a JIS X 0303 digit: 0, 1, 2 or 9")
        for text, flags in (
            (self.name, self.name_substitutes),
            (self.address, self.address_substitutes),
        ):
            if flags is not None and (len(flags) != len(text) or set(flags) - {"0", "1"}):
                raise ValueError("substitute flags need one 0/1 per character")


# Era start dates (first day of each era). Before 大正 everything is 明治 (era digit 1).
_ERAS = (
    (dt.date(2019, 5, 1), "5"),  # 令和
    (dt.date(1989, 1, 8), "4"),  # 平成
    (dt.date(1926, 12, 25), "3"),  # 昭和
    (dt.date(1912, 7, 30), "2"),  # 大正
)


def encode_birth_date(birth_date: dt.date) -> str:
    """``EYYYYMMDD``: era digit + Gregorian date (see the module docstring)."""
    era = next((digit for start, digit in _ERAS if birth_date >= start), "1")
    return era + birth_date.strftime("%Y%m%d")


def _der_utf8string(value: str) -> bytes:
    """DER ``UTF8String`` (tag 12). cryptography has no public encoder for an otherName value."""
    body = value.encode("utf-8")
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return b"\x0c" + length + body


def _basic_items_san(items: BasicFourItems) -> x509.SubjectAlternativeName:
    values = {
        "name": items.name,
        "name_substitutes": items.name_substitutes or "0" * len(items.name),
        "sex": items.sex,
        "birth_date": encode_birth_date(items.birth_date),
        "address": items.address,
        "address_substitutes": items.address_substitutes or "0" * len(items.address),
    }
    return x509.SubjectAlternativeName(
        [x509.OtherName(BASIC_ITEM_OIDS[k], _der_utf8string(v)) for k, v in values.items()]
    )


# ---------------------------------------------------------------------------------------------
# Profiles


@dataclass(frozen=True)
class RevocationEndpoints:
    """Where relying parties fetch the CRL and ask the OCSP responder for one issuing CA.
    ``ocsp_url`` is None for a CA certificate checked by the root's ARL only (no responder)."""

    crl_url: str
    ocsp_url: str | None

    @classmethod
    def from_base_url(cls, base_url: str, ca_label: str) -> RevocationEndpoints:
        """``("https://x.jp", "sign")`` -> ``…/jpki/crl/sign.crl`` and ``…/jpki/ocsp/sign``."""
        base = base_url.rstrip("/")
        return cls(
            crl_url=f"{base}/jpki/crl/{ca_label}.crl", ocsp_url=f"{base}/jpki/ocsp/{ca_label}"
        )


def opaque_subject_cn() -> str:
    """A random, non-identifying subject CN for an end-entity certificate."""
    return secrets.token_hex(16).upper()


def _name(cn: str, organization: str | None = None, unit: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "JP")]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attributes)


def _check_times(not_before: dt.datetime, not_after: dt.datetime) -> None:
    if not_before.tzinfo is None or not_after.tzinfo is None:
        raise ValueError("validity times must be timezone-aware")
    if not_after <= not_before:
        raise ValueError("not_after must be after not_before")


def _aki(issuer_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _base_builder(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer_cert: x509.Certificate,
    serial: int | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    _check_times(not_before, not_after)
    if (
        not issuer_cert.not_valid_before_utc <= not_before
        or not_after > issuer_cert.not_valid_after_utc
    ):
        raise ValueError("validity must lie within the issuer's validity")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_aki(issuer_cert), critical=False)
    )


def _end_entity_key(public_key: object) -> rsa.RSAPublicKey:
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size != END_ENTITY_KEY_BITS:
        raise ValueError("JPKI end-entity keys are RSA-2048")
    return public_key


def _key_usage(**flags: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names})


def _revocation_pointers(
    builder: x509.CertificateBuilder, endpoints: RevocationEndpoints
) -> x509.CertificateBuilder:
    dp = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(endpoints.crl_url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    builder = builder.add_extension(x509.CRLDistributionPoints([dp]), critical=False)
    if endpoints.ocsp_url is None:
        return builder
    aia = x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP,
        x509.UniformResourceIdentifier(endpoints.ocsp_url),
    )
    return builder.add_extension(x509.AuthorityInformationAccess([aia]), critical=False)


def ca_certificate(
    subject_cn: str,
    public_key: rsa.RSAPublicKey,
    *,
    issuer: x509.Certificate | None = None,
    issuer_key: rsa.RSAPrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    path_length: int | None = None,
    serial: int | None = None,
    organization: str = "JPKI",
    endpoints: RevocationEndpoints | None = None,
) -> x509.Certificate:
    """A root (``issuer=None``: self-signed by ``issuer_key``) or an issuing CA under ``issuer``.

    JPKI runs separate issuing CAs for signing and for user-authentication certificates; call
    this once per CA. ``endpoints`` (CRL DP + AIA of the *parent*) only make sense for a
    subordinate CA: its CRL DP names the root's ARL (the CRL over the CA certificates the root
    issued), so ``openssl verify -crl_check_all`` and validators that require revocation
    information for every certificate on the path find it.
    """
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < END_ENTITY_KEY_BITS:
        raise ValueError("CA keys are RSA, at least 2048 bits")
    subject = _name(subject_cn, organization)
    if issuer is None:
        if issuer_key.public_key().public_numbers() != public_key.public_numbers():
            raise ValueError("a root is signed by its own key")
        _check_times(not_before, not_after)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public_key)
            .serial_number(serial if serial is not None else x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
            )
        )
    else:
        builder = _base_builder(subject, public_key, issuer, serial, not_before, not_after)
        if endpoints is not None:
            builder = _revocation_pointers(builder, endpoints)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=path_length), critical=True
    ).add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
    return sign_with(issuer_key, builder)


def signing_certificate(
    public_key: rsa.RSAPublicKey,
    holder: BasicFourItems,
    *,
    issuer: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    endpoints: RevocationEndpoints,
    subject_cn: str | None = None,
    serial: int | None = None,
    policy_oid: x509.ObjectIdentifier = SIGNING_POLICY_OID,
    subject_unit: str | None = None,
) -> x509.Certificate:
    """署名用電子証明書: the 基本4情報 in subjectAltName otherNames, non-repudiation key usage.

    Eligibility (:func:`may_hold_signing_certificate`) and the validity period
    (:func:`certificate_validity`) are the caller's to decide; this only draws the certificate.
    ``subject_unit`` adds a subject OU (used only for :data:`POOLED_KEY_MARKER`).
    """
    key = _end_entity_key(public_key)
    builder = _base_builder(
        _name(subject_cn or opaque_subject_cn(), unit=subject_unit), key, issuer, serial,
        not_before, not_after,
    )
    builder = (
        builder.add_extension(
            _key_usage(digital_signature=True, content_commitment=True), critical=True
        )
        .add_extension(_basic_items_san(holder), critical=False)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(policy_oid, None)]), critical=True
        )
    )
    return sign_with(issuer_key, _revocation_pointers(builder, endpoints))


def auth_certificate(
    public_key: rsa.RSAPublicKey,
    *,
    issuer: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    endpoints: RevocationEndpoints,
    subject_cn: str | None = None,
    serial: int | None = None,
    policy_oid: x509.ObjectIdentifier = AUTH_POLICY_OID,
    subject_unit: str | None = None,
) -> x509.Certificate:
    """利用者証明用電子証明書: proves "it is this card's holder" and nothing else.

    No basic items at all — no name in the subject, no subjectAltName.
    """
    key = _end_entity_key(public_key)
    builder = _base_builder(
        _name(subject_cn or opaque_subject_cn(), unit=subject_unit), key, issuer, serial,
        not_before, not_after,
    )
    builder = (
        builder.add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(policy_oid, None)]), critical=True
        )
    )
    return sign_with(issuer_key, _revocation_pointers(builder, endpoints))


def ocsp_responder_certificate(
    public_key: rsa.RSAPublicKey,
    *,
    issuer: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    subject_cn: str,
    serial: int | None = None,
) -> x509.Certificate:
    """A delegated OCSP responder (RFC 6960 §4.2.2.2) for one issuing CA.

    EKU id-kp-OCSPSigning and id-pkix-ocsp-nocheck, so keep it short-lived.
    """
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < END_ENTITY_KEY_BITS:
        raise ValueError("responder keys are RSA, at least 2048 bits")
    builder = (
        _base_builder(_name(subject_cn, "JPKI"), public_key, issuer, serial, not_before, not_after)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
    )
    return sign_with(issuer_key, builder)

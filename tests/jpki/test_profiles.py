"""JPKI certificate profiles, checked with cryptography and with the OpenSSL command line."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from mynumber.jpki.profiles import (
    AUTH_POLICY_OID,
    BASIC_ITEM_OIDS,
    SIGNING_POLICY_OID,
    BasicFourItems,
    CallbackRSAPrivateKey,
    RevocationEndpoints,
    age_on,
    auth_certificate,
    ca_certificate,
    certificate_validity,
    encode_birth_date,
    may_hold_signing_certificate,
    ocsp_responder_certificate,
    signing_certificate,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

BASE_URL = "https://jpki.example.jp"
HOLDER = BasicFourItems(
    name="山田　太郎",
    birth_date=dt.date(1990, 1, 2),
    sex="1",
    address="東京都新宿区西新宿二丁目８番１号",
    name_substitutes="00000",
)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, check=False, timeout=60
    )


@dataclass
class Pki:
    """Root -> (signing CA, auth CA); OCSP responder under the signing CA; three holders."""

    dir: Path
    now: dt.datetime
    root_key: rsa.RSAPrivateKey
    root: x509.Certificate
    sign_ca_key: rsa.RSAPrivateKey  # a CallbackRSAPrivateKey: the "HSM" path
    sign_ca: x509.Certificate
    auth_ca_key: rsa.RSAPrivateKey
    auth_ca: x509.Certificate
    responder_key: rsa.RSAPrivateKey  # also a callback key
    responder: x509.Certificate
    signing: x509.Certificate
    signing_revoked: x509.Certificate
    auth: x509.Certificate
    hsm_calls: list[int] = field(default_factory=list)

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.pem"


def make_pki(directory: Path) -> Pki:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_from, ca_to = now - dt.timedelta(days=1), now + dt.timedelta(days=365 * 20)
    calls: list[int] = []

    root_key = _key()
    root = ca_certificate(
        "JPKI Root CA (test)",
        root_key.public_key(),
        issuer_key=root_key,
        not_before=ca_from,
        not_after=ca_to,
        path_length=1,
    )

    real_sign_ca_key = _key()

    def hsm(data: bytes) -> bytes:  # stands in for a PKCS#11 C_Sign
        calls.append(len(data))
        return real_sign_ca_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    sign_ca_key = CallbackRSAPrivateKey(real_sign_ca_key.public_key(), hsm)
    root_endpoints = RevocationEndpoints.from_base_url(BASE_URL, "root")
    sign_ca = ca_certificate(
        "JPKI Signing CA (test)",
        sign_ca_key.public_key(),
        issuer=root,
        issuer_key=root_key,
        not_before=ca_from,
        not_after=ca_to,
        path_length=0,
        endpoints=root_endpoints,
    )
    auth_ca_key = _key()
    auth_ca = ca_certificate(
        "JPKI User Authentication CA (test)",
        auth_ca_key.public_key(),
        issuer=root,
        issuer_key=root_key,
        not_before=ca_from,
        not_after=ca_to,
        path_length=0,
    )

    real_responder_key = _key()
    responder_key = CallbackRSAPrivateKey(
        real_responder_key.public_key(),
        lambda data: real_responder_key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
    )
    responder = ocsp_responder_certificate(
        responder_key.public_key(),
        issuer=sign_ca,
        issuer_key=sign_ca_key,
        not_before=ca_from,
        not_after=now + dt.timedelta(days=30),
        subject_cn="JPKI Signing CA OCSP responder (test)",
    )

    not_before, not_after = certificate_validity(
        HOLDER.birth_date, now, card_expiry=(now + dt.timedelta(days=3650)).date()
    )
    sign_endpoints = RevocationEndpoints.from_base_url(BASE_URL, "sign")
    signing, signing_revoked = (
        signing_certificate(
            _key().public_key(),
            HOLDER,
            issuer=sign_ca,
            issuer_key=sign_ca_key,
            not_before=not_before,
            not_after=not_after,
            endpoints=sign_endpoints,
        )
        for _ in range(2)
    )
    auth = auth_certificate(
        _key().public_key(),
        issuer=auth_ca,
        issuer_key=auth_ca_key,
        not_before=not_before,
        not_after=not_after,
        endpoints=RevocationEndpoints.from_base_url(BASE_URL, "auth"),
    )
    pki = Pki(
        directory,
        now,
        root_key,
        root,
        sign_ca_key,
        sign_ca,
        auth_ca_key,
        auth_ca,
        responder_key,
        responder,
        signing,
        signing_revoked,
        auth,
        calls,
    )
    for name in ("root", "sign_ca", "auth_ca", "responder", "signing", "signing_revoked", "auth"):
        _pem(pki.path(name), getattr(pki, name))
    pki.path("chain").write_bytes(pki.path("root").read_bytes() + pki.path("sign_ca").read_bytes())
    return pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("jpki"))


# --- the chain ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leaf", "ca"),
    [("signing", "sign_ca"), ("auth", "auth_ca"), ("responder", "sign_ca")],
)
def test_openssl_verifies_the_chain(pki: Pki, leaf: str, ca: str) -> None:
    result = openssl(
        "verify", "-CAfile", pki.path("root"), "-untrusted", pki.path(ca), pki.path(leaf)
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip().endswith(": OK")


def test_a_certificate_from_the_other_issuing_ca_does_not_verify(pki: Pki) -> None:
    result = openssl(
        "verify", "-CAfile", pki.path("root"), "-untrusted", pki.path("sign_ca"), pki.path("auth")
    )
    assert result.returncode != 0


def test_the_hsm_callback_signed_everything_under_the_signing_ca(pki: Pki) -> None:
    # responder + two signing certificates, each one call with the whole TBSCertificate
    assert len(pki.hsm_calls) == 3
    # The two signing certificates were made in order: `signing`, then `signing_revoked`
    # (their random serials can differ in DER length, so compare each with its own call).
    assert pki.hsm_calls[1:] == [len(pki.signing.tbs_certificate_bytes),
                                 len(pki.signing_revoked.tbs_certificate_bytes)]


def test_ca_extensions(pki: Pki) -> None:
    for ca in (pki.root, pki.sign_ca, pki.auth_ca):
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        ku = ca.extensions.get_extension_for_class(x509.KeyUsage)
        assert bc.critical and bc.value.ca
        assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
        assert not ku.value.digital_signature
    assert pki.root.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1
    assert (
        pki.sign_ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    )
    ski = pki.root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = pki.sign_ca.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert pki.sign_ca.issuer == pki.root.subject != pki.sign_ca.subject


# --- the signing certificate --------------------------------------------------------------------


def test_signing_certificate_text_shows_basic_items_and_policy(pki: Pki) -> None:
    text = openssl("x509", "-in", pki.path("signing"), "-noout", "-text").stdout
    assert "sha256WithRSAEncryption" in text
    assert "Public-Key: (2048 bit)" in text
    assert "X509v3 Subject Alternative Name" in text
    for oid in BASIC_ITEM_OIDS.values():
        assert oid.dotted_string in text
    assert SIGNING_POLICY_OID.dotted_string in text
    assert "Digital Signature, Non Repudiation" in text
    assert f"URI:{BASE_URL}/jpki/crl/sign.crl" in text
    assert f"OCSP - URI:{BASE_URL}/jpki/ocsp/sign" in text


def test_signing_certificate_basic_items_decode(pki: Pki) -> None:
    san = pki.signing.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    values = {}
    for other in san.get_values_for_type(x509.OtherName):
        assert other.value[0] == 0x0C  # UTF8String
        values[other.type_id] = other.value[2 if other.value[1] < 0x80 else 3 :].decode()
    assert values == {
        BASIC_ITEM_OIDS["name"]: "山田　太郎",
        BASIC_ITEM_OIDS["name_substitutes"]: "00000",
        BASIC_ITEM_OIDS["sex"]: "1",
        BASIC_ITEM_OIDS["birth_date"]: "419900102",
        BASIC_ITEM_OIDS["address"]: "東京都新宿区西新宿二丁目８番１号",
        BASIC_ITEM_OIDS["address_substitutes"]: "0" * 16,
    }
    # the subject names nobody
    assert "山田" not in pki.signing.subject.rfc4514_string()
    assert [a.oid for a in pki.signing.subject] == [
        x509.NameOID.COUNTRY_NAME,
        x509.NameOID.COMMON_NAME,
    ]
    policies = pki.signing.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [SIGNING_POLICY_OID]
    assert pki.signing.serial_number != pki.signing_revoked.serial_number
    assert pki.signing.serial_number.bit_length() > 64


def test_long_address_uses_long_form_der_length(tmp_path: Path) -> None:
    ca_key = _key()
    now = dt.datetime.now(dt.UTC)
    ca = ca_certificate(
        "CA",
        ca_key.public_key(),
        issuer_key=ca_key,
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=3650),
    )
    address = "北海道" + "字" * 120
    cert = signing_certificate(
        _key().public_key(),
        BasicFourItems("甲", dt.date(2000, 1, 1), "2", address),
        issuer=ca,
        issuer_key=ca_key,
        not_before=now,
        not_after=now + dt.timedelta(days=1),
        endpoints=RevocationEndpoints.from_base_url(BASE_URL, "sign"),
    )
    assert address.encode() in cert.public_bytes(serialization.Encoding.DER)
    text = openssl("x509", "-in", _pem(tmp_path / "long.pem", cert), "-noout", "-text").stdout
    assert "Subject Alternative Name" in text
    assert BASIC_ITEM_OIDS["address"].dotted_string in text


# --- the auth certificate -----------------------------------------------------------------------


def test_auth_certificate_carries_no_basic_items(pki: Pki) -> None:
    text = openssl("x509", "-in", pki.path("auth"), "-noout", "-text").stdout
    assert "Subject Alternative Name" not in text
    assert "1.2.392.200149.8.5.5" not in text
    assert "山田" not in text
    assert AUTH_POLICY_OID.dotted_string in text
    assert SIGNING_POLICY_OID.dotted_string not in text
    assert "TLS Web Client Authentication" in text
    assert "Non Repudiation" not in text
    with pytest.raises(x509.ExtensionNotFound):
        pki.auth.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    ku = pki.auth.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.content_commitment
    eku = pki.auth.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_responder_certificate(pki: Pki) -> None:
    text = openssl("x509", "-in", pki.path("responder"), "-noout", "-text").stdout
    assert "OCSP Signing" in text
    assert "OCSP No Check" in text


def test_end_entity_keys_must_be_rsa_2048(pki: Pki) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="RSA-2048"):
        auth_certificate(
            small.public_key(),
            issuer=pki.auth_ca,
            issuer_key=pki.auth_ca_key,
            not_before=pki.now,
            not_after=pki.now + dt.timedelta(days=1),
            endpoints=RevocationEndpoints.from_base_url(BASE_URL, "auth"),
        )


def test_validity_must_lie_within_the_issuer(pki: Pki) -> None:
    with pytest.raises(ValueError, match="issuer's validity"):
        auth_certificate(
            _key().public_key(),
            issuer=pki.auth_ca,
            issuer_key=pki.auth_ca_key,
            not_before=pki.now,
            not_after=pki.now + dt.timedelta(days=365 * 30),
            endpoints=RevocationEndpoints.from_base_url(BASE_URL, "auth"),
        )


def test_callback_key_refuses_other_algorithms() -> None:
    key = CallbackRSAPrivateKey(_key().public_key(), lambda data: b"")
    with pytest.raises(ValueError):
        key.sign(b"x", padding.PKCS1v15(), hashes.SHA1())
    with pytest.raises(NotImplementedError):
        key.private_numbers()


# --- holder data ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "encoded"),
    [
        (dt.date(1912, 7, 29), "119120729"),
        (dt.date(1912, 7, 30), "219120730"),
        (dt.date(1926, 12, 25), "319261225"),
        (dt.date(1980, 2, 17), "319800217"),
        (dt.date(1989, 1, 7), "319890107"),
        (dt.date(1989, 1, 8), "419890108"),
        (dt.date(2019, 4, 30), "420190430"),
        (dt.date(2019, 5, 1), "520190501"),
    ],
)
def test_birth_date_encoding(born: dt.date, encoded: str) -> None:
    assert encode_birth_date(born) == encoded


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sex": "M"},
        {"name": " "},
        {"name_substitutes": "0"},
        {"address_substitutes": "2" * 16},
    ],
)
def test_basic_items_are_validated(kwargs: dict[str, str]) -> None:
    fields = {
        "name": HOLDER.name,
        "birth_date": HOLDER.birth_date,
        "sex": "1",
        "address": HOLDER.address,
        **kwargs,
    }
    with pytest.raises(ValueError):
        BasicFourItems(**fields)  # type: ignore[arg-type]


# --- validity and eligibility ---------------------------------------------------------------------

JST = dt.timezone(dt.timedelta(hours=9))
FAR = dt.date(2099, 1, 1)


def _end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), JST).astimezone(dt.UTC)


def test_valid_to_the_fifth_birthday_after_issue() -> None:
    nb, na = certificate_validity(dt.date(1990, 6, 15), dt.date(2025, 3, 1), FAR)
    assert nb == dt.datetime(2025, 3, 1, tzinfo=JST)
    assert na == _end(dt.date(2029, 6, 15))  # birthdays 2025, 26, 27, 28, 29


def test_birthday_later_in_the_year_of_issue() -> None:
    _, na = certificate_validity(dt.date(1990, 2, 1), dt.date(2025, 3, 1), FAR)
    assert na == _end(dt.date(2030, 2, 1))


def test_issued_on_a_birthday_that_birthday_does_not_count() -> None:
    _, na = certificate_validity(dt.date(1990, 3, 1), dt.date(2025, 3, 1), FAR)
    assert na == _end(dt.date(2030, 3, 1))
    # issued at 20:00 UTC on 28 Feb = 05:00 JST on 1 March, the birthday: the same
    issued = dt.datetime(2025, 2, 28, 20, 0, tzinfo=dt.UTC)
    nb, na = certificate_validity(dt.date(1990, 3, 1), issued, FAR)
    assert (nb, na) == (issued, _end(dt.date(2030, 3, 1)))


def test_card_expiry_caps_the_certificate() -> None:
    _, na = certificate_validity(dt.date(1990, 6, 15), dt.date(2025, 3, 1), dt.date(2027, 6, 15))
    assert na == _end(dt.date(2027, 6, 15))


def test_february_29_births() -> None:
    # 5th birthday after 2025-03-01 falls in 2029 (common year): 28 February
    _, na = certificate_validity(dt.date(2000, 2, 29), dt.date(2025, 3, 1), FAR)
    assert na == _end(dt.date(2030, 2, 28))
    # issued 2023-03-01: birthdays 2024-02-29, 2025-02-28, 26, 27, 2028-02-29
    _, na = certificate_validity(dt.date(2000, 2, 29), dt.date(2023, 3, 1), FAR)
    assert na == _end(dt.date(2028, 2, 29))
    # age: a year older on 1 March in common years
    assert age_on(dt.date(2008, 2, 29), dt.date(2023, 2, 28)) == 14
    assert age_on(dt.date(2008, 2, 29), dt.date(2023, 3, 1)) == 15
    assert not may_hold_signing_certificate(dt.date(2008, 2, 29), dt.date(2023, 2, 28), False)
    assert may_hold_signing_certificate(dt.date(2008, 2, 29), dt.date(2023, 3, 1), False)


def test_validity_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        certificate_validity(dt.date(2030, 1, 1), dt.date(2025, 1, 1), FAR)
    with pytest.raises(ValueError):
        certificate_validity(dt.date(1990, 1, 1), dt.date(2025, 1, 1), dt.date(2024, 1, 1))
    with pytest.raises(ValueError):
        certificate_validity(dt.date(1990, 1, 1), dt.datetime(2025, 1, 1), FAR)


def test_no_signing_certificate_under_15_or_for_an_adult_ward() -> None:
    born = dt.date(2010, 4, 2)
    assert not may_hold_signing_certificate(born, dt.date(2025, 4, 1), adult_ward=False)
    assert may_hold_signing_certificate(born, dt.date(2025, 4, 2), adult_ward=False)
    assert not may_hold_signing_certificate(born, dt.date(2025, 4, 2), adult_ward=True)
    assert not may_hold_signing_certificate(dt.date(1950, 1, 1), dt.date(2025, 1, 1), True)
    assert may_hold_signing_certificate(dt.date(1950, 1, 1), dt.date(2025, 1, 1), False)

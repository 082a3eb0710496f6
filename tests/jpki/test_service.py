"""The JPKI service: issuance, automatic revocation, relying parties, serial links."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import inspect, text

from mynumber.app import ConfigurationError, Container, build_container
from mynumber.jpki import profiles
from mynumber.jpki.interfaces import (
    AlreadyRevoked,
    CertificateKind,
    CertificateNotFound,
    CertificateRefused,
    CertificateState,
    RelyingPartyNotRegistered,
    RevocationReason,
)
from mynumber.jpki.keyproviders import SoftwareKeyProvider
from mynumber.keys import FileKeyProvider
from mynumber.registry.interfaces import SYSTEM
from mynumber.settings import Mode, Settings
from tests.conftest import new_resident

CARD_EXPIRY = dt.date.today() + dt.timedelta(days=3650)
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey = _KEY) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def adult(container: Container, **overrides: object) -> int:
    values: dict[str, object] = {"birth_date": dt.date(1990, 4, 1)}
    values.update(overrides)
    record = container.registry.register_birth(
        SYSTEM, new_resident(**values), values["birth_date"])  # type: ignore[arg-type]
    return record.id


def test_signing_cert_carries_the_four_items_and_auth_none(container: Container) -> None:
    resident_id = adult(container)
    jpki = container.jpki
    signing = jpki.issue_certificate(resident_id, CertificateKind.SIGNING, public_pem(),
                                     CARD_EXPIRY)
    auth = jpki.issue_certificate(resident_id, CertificateKind.AUTH, public_pem(), CARD_EXPIRY)
    cert = x509.load_pem_x509_certificate(signing.pem.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    oids = {o.type_id for o in san.get_values_for_type(x509.OtherName)}
    assert set(profiles.BASIC_ITEM_OIDS.values()) <= oids
    values = b"".join(o.value for o in san.get_values_for_type(x509.OtherName))
    assert "山田 太郎".encode() in values
    auth_cert = x509.load_pem_x509_certificate(auth.pem.encode())
    with pytest.raises(x509.ExtensionNotFound):
        auth_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "山田" not in auth_cert.subject.rfc4514_string()
    # CRL DP and AIA point under the public URL.
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp[0].full_name[0].value == f"{container.settings.public_url}/jpki/crl/sign.crl"
    # Chains: issuing CA first, root last.
    chain = container.jpki.ca_chain_pem(CertificateKind.AUTH)
    certs = x509.load_pem_x509_certificates(chain.encode())
    assert auth_cert.issuer == certs[0].subject and certs[1].issuer == certs[1].subject
    assert signing.serial > 2**64 and jpki.state(signing.serial) is CertificateState.GOOD


def test_no_signing_certificate_under_15_or_for_an_adult_ward(container: Container) -> None:
    child = adult(container, given_name="花子",
                  birth_date=dt.date.today() - dt.timedelta(days=14 * 365))
    with pytest.raises(CertificateRefused):
        container.jpki.issue_certificate(child, CertificateKind.SIGNING, public_pem(),
                                         CARD_EXPIRY)
    container.jpki.issue_certificate(child, CertificateKind.AUTH, public_pem(), CARD_EXPIRY)
    grown = adult(container, given_name="次郎")
    with pytest.raises(CertificateRefused):
        container.jpki.issue_certificate(grown, CertificateKind.SIGNING, public_pem(),
                                         CARD_EXPIRY, adult_ward=True)


def test_name_change_revokes_the_signing_cert_not_the_auth_cert(container: Container) -> None:
    resident_id = adult(container)
    jpki = container.jpki
    signing = jpki.issue_certificate(resident_id, CertificateKind.SIGNING, public_pem(),
                                     CARD_EXPIRY)
    auth = jpki.issue_certificate(resident_id, CertificateKind.AUTH, public_pem(), CARD_EXPIRY)
    container.registry.change_name(SYSTEM, resident_id, "佐藤", "太郎", "サトウ", "タロウ",
                                   dt.date.today())
    assert jpki.state(signing.serial) is CertificateState.REVOKED
    assert jpki.state(auth.serial) is CertificateState.GOOD
    with pytest.raises(AlreadyRevoked):
        jpki.revoke(signing.serial, RevocationReason.LOST, "test")
    container.registry.register_death(SYSTEM, resident_id, dt.date.today())
    assert jpki.state(auth.serial) is CertificateState.REVOKED


def test_serial_links_only_for_own_users_while_registered(container: Container) -> None:
    resident_id = adult(container)
    other_id = adult(container, given_name="次郎")
    jpki = container.jpki
    old = jpki.issue_certificate(resident_id, CertificateKind.SIGNING, public_pem(), CARD_EXPIRY)
    stranger = jpki.issue_certificate(other_id, CertificateKind.SIGNING, public_pem(),
                                      CARD_EXPIRY)
    rp = jpki.register_relying_party("e-Tax", (CertificateKind.SIGNING,))
    jpki.record_user(rp.id, old.serial)
    assert jpki.current_serial(rp.id, old.serial) == old.serial
    jpki.revoke(old.serial, RevocationReason.SUPERSEDED, "test")
    assert jpki.current_serial(rp.id, old.serial) is None
    middle = jpki.issue_certificate(resident_id, CertificateKind.SIGNING, public_pem(),
                                    CARD_EXPIRY)
    new = jpki.issue_certificate(resident_id, CertificateKind.SIGNING, public_pem(),
                                 CARD_EXPIRY)
    jpki.link_serials(old.serial, middle.serial)
    jpki.link_serials(middle.serial, new.serial)
    assert jpki.current_serial(rp.id, old.serial) == new.serial
    with pytest.raises(CertificateNotFound):  # not this party's user
        jpki.current_serial(rp.id, stranger.serial)
    with pytest.raises(CertificateRefused):  # another holder
        jpki.link_serials(stranger.serial, new.serial)
    items = jpki.basic_items(rp.id, new.serial)
    assert (items.name, items.birth_date, items.sex) == ("山田 太郎", "1990-04-01", "1")
    jpki.retire_relying_party(rp.id)
    with pytest.raises(RelyingPartyNotRegistered):
        jpki.current_serial(rp.id, old.serial)


def test_pairwise_ids_differ_per_party_and_survive_renewal(container: Container) -> None:
    resident_id = adult(container)
    jpki = container.jpki
    first = jpki.issue_certificate(resident_id, CertificateKind.AUTH, public_pem(), CARD_EXPIRY)
    renewed = jpki.issue_certificate(resident_id, CertificateKind.AUTH, public_pem(),
                                     CARD_EXPIRY)
    a = jpki.register_relying_party("bank", (CertificateKind.AUTH,))
    b = jpki.register_relying_party("portal", (CertificateKind.AUTH,))
    assert jpki.pairwise_id(a.id, first.serial) == jpki.pairwise_id(a.id, renewed.serial)
    assert jpki.pairwise_id(a.id, first.serial) != jpki.pairwise_id(b.id, first.serial)
    assert str(first.serial) not in jpki.pairwise_id(a.id, first.serial)
    signer = jpki.register_relying_party("signer only", (CertificateKind.SIGNING,))
    with pytest.raises(RelyingPartyNotRegistered):
        jpki.pairwise_id(signer.id, first.serial)


def test_jpki_tables_hold_no_individual_number_nor_basic_items(container: Container) -> None:
    resident_id = adult(container)
    jpki = container.jpki
    jpki.issue_certificate(resident_id, CertificateKind.SIGNING, public_pem(), CARD_EXPIRY)
    number = container.registry.reveal_number(SYSTEM, resident_id, reason="test")
    engine = container.databases.engine("jpki")
    tables = inspect(engine).get_table_names()
    assert {"certificates", "certificate_authorities", "serial_links"} <= set(tables)
    forbidden = {"individual_number", "number", "name", "family_name", "given_name",
                 "birth_date", "sex", "address"}
    for table in tables:
        columns = {c["name"] for c in inspect(engine).get_columns(table)}
        if table == "relying_parties":
            columns.discard("name")  # the relying party's own name
        assert not columns & forbidden, table
    with engine.connect() as conn:
        for table in tables:
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    assert number not in str(value)
                    # The 4 items appear only inside the signing certificate's PEM.
                    assert "山田" not in str(value) and "西新宿" not in str(value)


def test_production_mode_refuses_development_ca_keys(tmp_path: Path) -> None:
    provider = FileKeyProvider(tmp_path / "keys", create_missing=False, development=False)
    for purpose in ("registry.resident_code_pool", "registry.numbering", "registry.number_index"):
        provider.write_key(purpose, bytes(range(32)), development=False)
    SoftwareKeyProvider(tmp_path / "keys" / "jpki", development=True).generate_rsa("dev-ca")
    settings = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, key_dir=tmp_path / "keys",
                        database_url="postgresql+psycopg://unused@127.0.0.1:1/none")
    with pytest.raises(ConfigurationError, match="development keys"):
        build_container(settings)
    with pytest.raises(ConfigurationError, match="PKCS11_TOKEN"):
        build_container(settings.model_copy(update={"pkcs11_library": "/nonexistent.so"}))


def _refusals(container: Container) -> list[tuple[str, str]]:
    with container.databases.unit_of_work("jpki") as session:
        return [tuple(r) for r in session.execute(text(
            "SELECT tag, subject FROM audit_events WHERE tag LIKE '%refused' ORDER BY id"
        ))]


def test_every_refused_verification_leaves_an_audit_record(container: Container) -> None:
    resident_id = adult(container)
    other_id = adult(container, given_name="次郎")
    jpki = container.jpki
    signing = jpki.issue_certificate(resident_id, CertificateKind.SIGNING, public_pem(),
                                     CARD_EXPIRY)
    stranger = jpki.issue_certificate(other_id, CertificateKind.SIGNING, public_pem(),
                                      CARD_EXPIRY)
    signer = jpki.register_relying_party("e-Tax", (CertificateKind.SIGNING,))
    with pytest.raises(CertificateNotFound):  # not this party's user
        jpki.current_serial(signer.id, stranger.serial)
    with pytest.raises(RelyingPartyNotRegistered):  # registered for signing only
        jpki.pairwise_id(signer.id, signing.serial)
    jpki.retire_relying_party(signer.id)
    with pytest.raises(RelyingPartyNotRegistered):
        jpki.basic_items(signer.id, signing.serial)
    refusals = _refusals(container)
    assert ("jpki:serial:lookup_refused", f"certificate:{stranger.serial}") in refusals
    assert [tag for tag, _ in refusals].count("jpki:verification:refused") == 2

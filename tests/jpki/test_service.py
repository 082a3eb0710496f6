"""The JPKI service: issuance, automatic revocation, relying parties, serial links."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import inspect, text

from mynumber.app import ConfigurationError, Container, build_container
from mynumber.jpki import profiles
from mynumber.jpki.interfaces import (
    AlreadyRevoked,
    CertificateKind,
    CertificateNotFound,
    CertificateRefused,
    CertificateState,
    HolderProof,
    IssuedCertificate,
    RelyingPartyNotRegistered,
    RevocationReason,
    VerificationFailed,
)
from mynumber.keys import FileKeyProvider, SoftwareKeyProvider
from mynumber.registry.interfaces import SYSTEM
from mynumber.settings import Mode, Settings
from tests.conftest import new_resident

CARD_EXPIRY = dt.date.today() + dt.timedelta(days=3650)
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey = _KEY) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def sign(data: bytes, key: rsa.RSAPrivateKey = _KEY) -> bytes:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def proof(issued: IssuedCertificate, data: bytes = b"document",
          key: rsa.RSAPrivateKey = _KEY) -> HolderProof:
    """The holder's proof: the certificate and a signature by its key (``key``) over ``data``."""
    return HolderProof(issued.pem, data, sign(data, key))


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
    deliver(container)
    assert jpki.state(signing.serial) is CertificateState.REVOKED
    assert jpki.state(auth.serial) is CertificateState.GOOD
    with pytest.raises(AlreadyRevoked):
        jpki.revoke(signing.serial, RevocationReason.LOST, "test")
    container.registry.register_death(SYSTEM, resident_id, dt.date.today())
    deliver(container)
    assert jpki.state(auth.serial) is CertificateState.REVOKED


def deliver(container: Container) -> None:
    """The registry's events reach JPKI through jpki.events (as the dispatcher delivers them;
    delivered twice here, as at-least-once delivery may)."""
    from mynumber.jpki import events as jpki_events

    outbox = container.registry.outbox
    outbox.sequence()
    for _ in range(2):
        jpki_events.handler(container.jpki)(outbox.read(0, 10_000))


def test_serial_links_only_for_own_users_while_registered(container: Container) -> None:
    resident_id = adult(container)
    other_id = adult(container, given_name="次郎")
    jpki = container.jpki
    old = jpki.issue_certificate(resident_id, CertificateKind.SIGNING, public_pem(), CARD_EXPIRY)
    stranger = jpki.issue_certificate(other_id, CertificateKind.SIGNING, public_pem(),
                                      CARD_EXPIRY)
    rp = jpki.register_relying_party("e-Tax", (CertificateKind.SIGNING,))
    jpki.record_user(rp.id, proof(old))
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


def _users(container: Container) -> int:
    with container.databases.unit_of_work("jpki") as session:
        return int(session.execute(text("SELECT count(*) FROM relying_party_users")).scalar_one())


def test_a_relying_party_cannot_claim_another_holders_serial(container: Container) -> None:
    """Issue 10: recording a user took a serial on trust, after which the serial-link look-up
    followed that person's certificates. Now only the holder's proof records a user."""
    jpki = container.jpki
    mine = jpki.issue_certificate(adult(container), CertificateKind.SIGNING, public_pem(),
                                  CARD_EXPIRY)
    their_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    theirs = jpki.issue_certificate(adult(container, given_name="次郎"), CertificateKind.SIGNING,
                                    public_pem(their_key), CARD_EXPIRY)
    rp = jpki.register_relying_party("e-Tax", (CertificateKind.SIGNING,))
    jpki.record_user(rp.id, proof(mine))
    assert _users(container) == 1

    # The other person's certificate, with a signature the party made itself.
    with pytest.raises(VerificationFailed) as refused:
        jpki.record_user(rp.id, HolderProof(theirs.pem, b"document", sign(b"document")))
    assert refused.value.extra["reason"] == "bad_signature"
    # A certificate of the party's own making that carries the other person's serial.
    forged = _self_signed(serial=theirs.serial)
    with pytest.raises(VerificationFailed) as refused:
        jpki.record_user(rp.id, HolderProof(forged, b"document", sign(b"document")))
    assert refused.value.extra["reason"] == "untrusted_chain"
    # Over HTTP the signed data must be a challenge JPKI gave this very party.
    other = jpki.register_relying_party("bank", (CertificateKind.SIGNING,))
    foreign = jpki.user_challenge(other.id).challenge
    with pytest.raises(VerificationFailed) as refused:
        jpki.record_user_by_challenge(rp.id, foreign, sign(foreign, their_key), theirs.pem)
    assert refused.value.extra["reason"] == "bad_challenge"
    with pytest.raises(VerificationFailed):
        jpki.record_user_by_challenge(rp.id, b"x" * 53, sign(b"x" * 53, their_key), theirs.pem)

    assert _users(container) == 1  # nothing changed
    with pytest.raises(CertificateNotFound):
        jpki.current_serial(rp.id, theirs.serial)
    refusals = _refusals(container)
    assert refusals.count(("jpki:relying_party:record_user_refused",
                           f"relying_party:{rp.id}")) == 4
    # The holder's own proof over the party's challenge works, and only once per holder.
    challenge = jpki.user_challenge(rp.id).challenge
    jpki.record_user_by_challenge(rp.id, challenge, sign(challenge, their_key), theirs.pem)
    jpki.record_user_by_challenge(rp.id, challenge, sign(challenge, their_key), theirs.pem)
    assert _users(container) == 2
    assert jpki.current_serial(rp.id, theirs.serial) == theirs.serial


def _self_signed(serial: int) -> str:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "forged")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(_KEY.public_key()).serial_number(serial)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(_KEY, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


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


def test_a_certificate_revoked_by_many_at_once_is_revoked_once(container: Container) -> None:
    """Once means once: of callers racing to revoke one certificate (a loss report, the
    counter, an event) exactly one revokes it and writes the audit record; the others are told
    it is already revoked (real threads, on SQLite and PostgreSQL; several rounds, as a race
    shows only now and then)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import select

    from mynumber.jpki import models as m

    jpki = container.jpki
    threads = 8
    for _round in range(8):
        resident_id = adult(container)
        auth = jpki.issue_certificate(resident_id, CertificateKind.AUTH, public_pem(),
                                      CARD_EXPIRY)
        barrier = threading.Barrier(threads)

        def revoke(i: int, serial: int = auth.serial, holder: int = resident_id,
                   start: threading.Barrier = barrier) -> str:
            start.wait()
            try:
                if i % 2:
                    jpki.revoke(serial, RevocationReason.LOST, f"caller:{i}")
                    return "revoked"
                done = jpki.revoke_for_resident(holder, (CertificateKind.AUTH,),
                                                RevocationReason.LOST, f"caller:{i}")
                return "revoked" if done else "nothing"
            except AlreadyRevoked:
                return "already"

        with ThreadPoolExecutor(threads) as pool:
            outcomes = list(pool.map(revoke, range(threads)))
        assert outcomes.count("revoked") == 1, outcomes
        assert jpki.state(auth.serial) is CertificateState.REVOKED
        with container.databases.unit_of_work("jpki") as session:
            audits = session.scalars(select(m.AuditEvent).where(
                m.AuditEvent.tag == "jpki:certificate:revoke",
                m.AuditEvent.subject == f"certificate:{auth.serial}")).all()
        assert len(audits) == 1

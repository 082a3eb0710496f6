"""The relying-party verification library: signatures, kinds, chains, validity, revocation."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynumber.jpki.interfaces import (
    AuthVerification,
    CertificateKind,
    HolderProof,
    RelyingParty,
    RelyingPartyNotRegistered,
    SigningVerification,
    VerificationFailed,
)
from mynumber.jpki.profiles import (
    BasicFourItems,
    RevocationEndpoints,
    auth_certificate,
    ca_certificate,
    ocsp_responder_certificate,
    signing_certificate,
)
from mynumber.jpki.revocation import (
    GOOD,
    UNKNOWN,
    CertificateStatus,
    build_crl,
    build_response,
    revoked,
)
from mynumber.jpki.verify import (
    CallableStatusSource,
    CrlStatusSource,
    OcspStatusSource,
    Refusal,
    RelyingPartyVerifier,
    StatusSource,
    certificate_kind,
)

BASE_URL = "https://jpki.test"
HOLDER = BasicFourItems(
    name="山田　太郎",
    birth_date=dt.date(1990, 1, 2),
    sex="1",
    address="東京都新宿区西新宿二丁目８番１号",
)
CHALLENGE = b"relying-party challenge 0123456789"
DOCUMENT = "申請書 — 転入届".encode()


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Holder:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return _pem(self.cert)


@dataclass
class Hierarchy:
    now: dt.datetime
    root: x509.Certificate
    sign_ca: x509.Certificate
    sign_ca_key: rsa.RSAPrivateKey
    auth_ca: x509.Certificate
    auth_ca_key: rsa.RSAPrivateKey
    auth_responder: x509.Certificate
    auth_responder_key: rsa.RSAPrivateKey
    signing: Holder
    auth: Holder
    auth_revoked: Holder
    auth_expired: Holder
    auth_future: Holder
    foreign_auth: Holder  # under a second root with look-alike names
    foreign_responder: x509.Certificate  # issued by the foreign auth CA, same subject names
    foreign_responder_key: rsa.RSAPrivateKey


def _cas(now: dt.datetime, tag: str) -> tuple[x509.Certificate, x509.Certificate,
                                              rsa.RSAPrivateKey, x509.Certificate,
                                              rsa.RSAPrivateKey]:
    ca_from, ca_to = now - dt.timedelta(days=3 * 365), now + dt.timedelta(days=20 * 365)
    root_key = _key()
    root = ca_certificate(f"JPKI Root CA ({tag})", root_key.public_key(), issuer_key=root_key,
                          not_before=ca_from, not_after=ca_to, path_length=1)
    cas = []
    for cn in ("JPKI Signing CA (test)", "JPKI User Authentication CA (test)"):
        key = _key()
        cert = ca_certificate(cn, key.public_key(), issuer=root, issuer_key=root_key,
                              not_before=ca_from, not_after=ca_to, path_length=0)
        cas.append((cert, key))
    return root, cas[0][0], cas[0][1], cas[1][0], cas[1][1]


def _auth_holder(ca: x509.Certificate, ca_key: rsa.RSAPrivateKey, not_before: dt.datetime,
                 not_after: dt.datetime) -> Holder:
    key = _key()
    return Holder(key, auth_certificate(
        key.public_key(), issuer=ca, issuer_key=ca_key, not_before=not_before,
        not_after=not_after, endpoints=RevocationEndpoints.from_base_url(BASE_URL, "auth"),
    ))


def _responder(ca: x509.Certificate, ca_key: rsa.RSAPrivateKey, now: dt.datetime
               ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _key()
    cert = ocsp_responder_certificate(
        key.public_key(), issuer=ca, issuer_key=ca_key, not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=30), subject_cn="JPKI Auth CA OCSP responder (test)",
    )
    return cert, key


@pytest.fixture(scope="module")
def pki() -> Hierarchy:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    root, sign_ca, sign_ca_key, auth_ca, auth_ca_key = _cas(now, "test")
    valid = (now - dt.timedelta(days=1), now + dt.timedelta(days=365 * 4))
    signing_key = _key()
    signing = Holder(signing_key, signing_certificate(
        signing_key.public_key(), HOLDER, issuer=sign_ca, issuer_key=sign_ca_key,
        not_before=valid[0], not_after=valid[1],
        endpoints=RevocationEndpoints.from_base_url(BASE_URL, "sign"),
    ))
    responder, responder_key = _responder(auth_ca, auth_ca_key, now)
    _, _, _, foreign_ca, foreign_ca_key = _cas(now, "test")  # same names, other keys
    foreign_responder, foreign_responder_key = _responder(foreign_ca, foreign_ca_key, now)
    return Hierarchy(
        now, root, sign_ca, sign_ca_key, auth_ca, auth_ca_key, responder, responder_key,
        signing,
        _auth_holder(auth_ca, auth_ca_key, *valid),
        _auth_holder(auth_ca, auth_ca_key, *valid),
        _auth_holder(auth_ca, auth_ca_key, now - dt.timedelta(days=400),
                     now - dt.timedelta(days=1)),
        _auth_holder(auth_ca, auth_ca_key, now + dt.timedelta(days=1),
                     now + dt.timedelta(days=30)),
        _auth_holder(foreign_ca, foreign_ca_key, *valid),
        foreign_responder, foreign_responder_key,
    )


@dataclass
class FakeJpki:
    """Stands in for JpkiService: registered parties, pairwise ids, basic items."""

    parties: dict[int, RelyingParty]
    items: dict[int, SigningVerification] = field(default_factory=dict)
    secret: bytes = b"pairwise-secret"
    users: list[tuple[int, int]] = field(default_factory=list)

    def relying_party(self, relying_party_id: int) -> RelyingParty:
        party = self.parties.get(relying_party_id)
        if party is None or not party.active:
            raise RelyingPartyNotRegistered("not registered")
        return party

    def basic_items(self, relying_party_id: int, serial: int) -> SigningVerification:
        self.relying_party(relying_party_id)
        return self.items[serial]

    def pairwise_id(self, relying_party_id: int, serial: int) -> str:
        self.relying_party(relying_party_id)
        message = f"{relying_party_id}:{serial}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def record_user(self, relying_party_id: int, proof: HolderProof) -> None:
        serial = x509.load_pem_x509_certificate(proof.certificate_pem.encode()).serial_number
        self.users.append((relying_party_id, serial))


def _jpki(pki: Hierarchy) -> FakeJpki:
    both = (CertificateKind.SIGNING, CertificateKind.AUTH)
    return FakeJpki(
        parties={
            1: RelyingParty(1, "Bank", both, True),
            2: RelyingParty(2, "Shop", both, True),
            3: RelyingParty(3, "Retired", both, False),
            4: RelyingParty(4, "Auth only", (CertificateKind.AUTH,), True),
        },
        items={pki.signing.cert.serial_number: SigningVerification(
            pki.signing.cert.serial_number, HOLDER.name, "419900102", HOLDER.sex, HOLDER.address,
        )},
    )


def _statuses(pki: Hierarchy) -> dict[int, CertificateStatus]:
    return {pki.auth_revoked.cert.serial_number: revoked(pki.now - dt.timedelta(hours=1),
                                                         x509.ReasonFlags.key_compromise)}


def _lookup(pki: Hierarchy) -> Callable[[int], CertificateStatus]:
    table = _statuses(pki)
    return lambda serial: table.get(serial, GOOD)


def _verifier(
    pki: Hierarchy,
    status: StatusSource | None = None,
    rp: int = 1,
    jpki: FakeJpki | None = None,
    refusals: list[Refusal] | None = None,
    anchors: list[x509.Certificate] | None = None,
) -> RelyingPartyVerifier:
    return RelyingPartyVerifier(
        anchors or [pki.root],
        [pki.sign_ca, pki.auth_ca],
        status or CallableStatusSource(_lookup(pki)),
        rp,
        jpki if jpki is not None else _jpki(pki),
        on_refused=refusals.append if refusals is not None else None,
    )


def _refused(reason: str, call: Callable[[], object]) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as caught:
        call()
    assert caught.value.extra["reason"] == reason, caught.value.detail
    return caught.value


# -- signatures and kinds ---------------------------------------------------------------------


def test_kinds_are_told_apart(pki: Hierarchy) -> None:
    assert certificate_kind(pki.signing.cert) is CertificateKind.SIGNING
    assert certificate_kind(pki.auth.cert) is CertificateKind.AUTH
    assert certificate_kind(pki.auth_ca) is None


def test_signature_yields_the_four_basic_items(pki: Hierarchy) -> None:
    jpki = _jpki(pki)
    verifier = _verifier(pki, jpki=jpki)
    result = verifier.verify_signature(DOCUMENT, _sign(pki.signing.key, DOCUMENT), pki.signing.pem)
    assert result == SigningVerification(
        pki.signing.cert.serial_number, HOLDER.name, "1990-01-02", "1", HOLDER.address
    )
    assert jpki.users == [(1, pki.signing.cert.serial_number)]


def test_signature_without_jpki_reads_the_certificate(pki: Hierarchy) -> None:
    verifier = RelyingPartyVerifier([pki.root], [pki.sign_ca, pki.auth_ca],
                                    CallableStatusSource(_lookup(pki)), 1, None)
    result = verifier.verify_signature(DOCUMENT, _sign(pki.signing.key, DOCUMENT), pki.signing.pem)
    assert (result.name, result.birth_date, result.address) == (
        HOLDER.name, "1990-01-02", HOLDER.address)


def test_basic_items_must_agree_with_jpki(pki: Hierarchy) -> None:
    jpki = _jpki(pki)
    serial = pki.signing.cert.serial_number
    jpki.items[serial] = SigningVerification(serial, "山田　花子", "419900102", "2", HOLDER.address)
    _refused("basic_items_mismatch", lambda: _verifier(pki, jpki=jpki).verify_signature(
        DOCUMENT, _sign(pki.signing.key, DOCUMENT), pki.signing.pem))


def test_tampered_data_is_refused_and_audited(pki: Hierarchy) -> None:
    refusals: list[Refusal] = []
    verifier = _verifier(pki, refusals=refusals)
    signature = _sign(pki.signing.key, DOCUMENT)
    _refused("bad_signature", lambda: verifier.verify_signature(DOCUMENT + b"!", signature,
                                                                pki.signing.pem))
    _refused("bad_signature", lambda: verifier.verify_authentication(
        CHALLENGE, _sign(pki.auth.key, b"another challenge"), pki.auth.pem))
    assert [(r.reason, r.operation, r.relying_party_id) for r in refusals] == [
        ("bad_signature", "signature", 1), ("bad_signature", "authentication", 1)]
    assert refusals[0].serial == pki.signing.cert.serial_number


def test_wrong_kind_is_refused(pki: Hierarchy) -> None:
    verifier = _verifier(pki)
    _refused("wrong_kind", lambda: verifier.verify_signature(
        DOCUMENT, _sign(pki.auth.key, DOCUMENT), pki.auth.pem))
    _refused("wrong_kind", lambda: verifier.verify_authentication(
        CHALLENGE, _sign(pki.signing.key, CHALLENGE), pki.signing.pem))
    _refused("wrong_kind", lambda: verifier.verify_authentication(
        CHALLENGE, b"x", _pem(pki.auth_ca)))


def test_garbage_certificate_is_refused(pki: Hierarchy) -> None:
    _refused("malformed_certificate", lambda: _verifier(pki).verify_authentication(
        CHALLENGE, b"x", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))


# -- authentication: only a pairwise identifier -----------------------------------------------


def test_authentication_yields_only_a_pairwise_id(pki: Hierarchy) -> None:
    jpki = _jpki(pki)
    signature = _sign(pki.auth.key, CHALLENGE)
    first = _verifier(pki, rp=1, jpki=jpki).verify_authentication(CHALLENGE, signature,
                                                                  pki.auth.pem)
    again = _verifier(pki, rp=1, jpki=jpki).verify_authentication(CHALLENGE, signature,
                                                                  pki.auth.pem)
    other = _verifier(pki, rp=2, jpki=jpki).verify_authentication(CHALLENGE, signature,
                                                                  pki.auth.pem)
    assert isinstance(first, AuthVerification)
    assert first == again
    assert first.pairwise_id != other.pairwise_id
    serial = pki.auth.cert.serial_number
    for result in (first, other):
        assert str(serial) not in result.pairwise_id
        assert f"{serial:x}" not in result.pairwise_id
    assert vars(first) == {"pairwise_id": first.pairwise_id}


def test_authentication_without_jpki_cannot_identify(pki: Hierarchy) -> None:
    verifier = RelyingPartyVerifier([pki.root], [pki.auth_ca],
                                    CallableStatusSource(_lookup(pki)), 1, None)
    _refused("no_identifier", lambda: verifier.verify_authentication(
        CHALLENGE, _sign(pki.auth.key, CHALLENGE), pki.auth.pem))


@pytest.mark.parametrize("rp", [3, 99])
def test_unregistered_relying_party_is_refused(pki: Hierarchy, rp: int) -> None:
    refusals: list[Refusal] = []
    _refused("unregistered_relying_party", lambda: _verifier(pki, rp=rp, refusals=refusals)
             .verify_authentication(CHALLENGE, _sign(pki.auth.key, CHALLENGE), pki.auth.pem))
    assert refusals[0].serial is None  # refused before the certificate was looked at


def test_relying_party_registered_for_another_kind_is_refused(pki: Hierarchy) -> None:
    _refused("unregistered_relying_party", lambda: _verifier(pki, rp=4).verify_signature(
        DOCUMENT, _sign(pki.signing.key, DOCUMENT), pki.signing.pem))


# -- chain and validity -----------------------------------------------------------------------


def test_unknown_ca_is_refused(pki: Hierarchy) -> None:
    # Same issuer name as our auth CA, but another key under another root.
    assert pki.foreign_auth.cert.issuer == pki.auth_ca.subject
    _refused("untrusted_chain", lambda: _verifier(pki).verify_authentication(
        CHALLENGE, _sign(pki.foreign_auth.key, CHALLENGE), pki.foreign_auth.pem))


def test_an_intermediate_is_not_a_trust_anchor(pki: Hierarchy) -> None:
    # Without the root among the anchors the issuing CA alone does not make a trusted path.
    other_root = ca_certificate("Other root", (k := _key()).public_key(), issuer_key=k,
                                not_before=pki.now - dt.timedelta(days=1),
                                not_after=pki.now + dt.timedelta(days=10))
    _refused("untrusted_chain", lambda: _verifier(pki, anchors=[other_root])
             .verify_authentication(CHALLENGE, _sign(pki.auth.key, CHALLENGE), pki.auth.pem))


def test_expired_and_not_yet_valid(pki: Hierarchy) -> None:
    verifier = _verifier(pki)
    _refused("expired", lambda: verifier.verify_authentication(
        CHALLENGE, _sign(pki.auth_expired.key, CHALLENGE), pki.auth_expired.pem))
    _refused("not_yet_valid", lambda: verifier.verify_authentication(
        CHALLENGE, _sign(pki.auth_future.key, CHALLENGE), pki.auth_future.pem))


def test_the_clock_is_checked_on_every_call_even_when_cached(pki: Hierarchy) -> None:
    clock = [pki.now]
    verifier = RelyingPartyVerifier([pki.root], [pki.auth_ca], CallableStatusSource(_lookup(pki)),
                                    1, _jpki(pki), now=lambda: clock[0])
    signature = _sign(pki.auth.key, CHALLENGE)
    verifier.verify_authentication(CHALLENGE, signature, pki.auth.pem)
    clock[0] = pki.auth.cert.not_valid_after_utc + dt.timedelta(seconds=1)
    _refused("expired", lambda: verifier.verify_authentication(CHALLENGE, signature,
                                                               pki.auth.pem))


# -- revocation -------------------------------------------------------------------------------


def test_revoked_via_callable_status(pki: Hierarchy) -> None:
    refusals: list[Refusal] = []
    verifier = _verifier(pki, refusals=refusals)
    _refused("revoked", lambda: verifier.verify_authentication(
        CHALLENGE, _sign(pki.auth_revoked.key, CHALLENGE), pki.auth_revoked.pem))
    assert refusals[0].reason == "revoked"
    unknown = _verifier(pki, status=CallableStatusSource(lambda serial: UNKNOWN))
    _refused("status_unknown", lambda: unknown.verify_authentication(
        CHALLENGE, _sign(pki.auth.key, CHALLENGE), pki.auth.pem))


def _ocsp_transport(
    pki: Hierarchy, calls: list[str], responder: x509.Certificate | None = None,
    responder_key: rsa.RSAPrivateKey | None = None,
) -> httpx.MockTransport:
    lookup = _lookup(pki)

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        assert request.headers["content-type"] == "application/ocsp-request"
        body = build_response(
            request.content, lookup, responder or pki.auth_responder,
            responder_key or pki.auth_responder_key, pki.auth_ca, dt.datetime.now(dt.UTC),
        )
        return httpx.Response(200, content=body,
                              headers={"Content-Type": "application/ocsp-response"})

    return httpx.MockTransport(handle)


def test_revoked_via_ocsp_and_good_answers_are_cached(pki: Hierarchy) -> None:
    calls: list[str] = []
    source = OcspStatusSource(client=httpx.Client(transport=_ocsp_transport(pki, calls)))
    verifier = _verifier(pki, status=source)
    signature = _sign(pki.auth.key, CHALLENGE)
    verifier.verify_authentication(CHALLENGE, signature, pki.auth.pem)
    verifier.verify_authentication(CHALLENGE, signature, pki.auth.pem)
    assert calls == [f"{BASE_URL}/jpki/ocsp/auth"]  # the AIA URL, asked once
    _refused("revoked", lambda: verifier.verify_authentication(
        CHALLENGE, _sign(pki.auth_revoked.key, CHALLENGE), pki.auth_revoked.pem))
    assert len(calls) == 2


def test_ocsp_with_nonce(pki: Hierarchy) -> None:
    calls: list[str] = []
    source = OcspStatusSource(client=httpx.Client(transport=_ocsp_transport(pki, calls)),
                              use_nonce=True)
    verifier = _verifier(pki, status=source)
    signature = _sign(pki.auth.key, CHALLENGE)
    verifier.verify_authentication(CHALLENGE, signature, pki.auth.pem)
    verifier.verify_authentication(CHALLENGE, signature, pki.auth.pem)
    assert len(calls) == 2  # nothing cached with nonces


def test_ocsp_from_a_forged_responder_is_not_trusted(pki: Hierarchy) -> None:
    # Same names as the real responder and CA, issued by the look-alike CA.
    calls: list[str] = []
    transport = _ocsp_transport(pki, calls, pki.foreign_responder, pki.foreign_responder_key)
    verifier = _verifier(pki, status=OcspStatusSource(client=httpx.Client(transport=transport)))
    _refused("status_unknown", lambda: verifier.verify_authentication(
        CHALLENGE, _sign(pki.auth.key, CHALLENGE), pki.auth.pem))
    assert calls


@pytest.mark.parametrize("reply", [
    httpx.Response(500), httpx.Response(200, content=b"not ocsp"),
])
def test_ocsp_failures_mean_status_unknown(pki: Hierarchy, reply: httpx.Response) -> None:
    transport = httpx.MockTransport(lambda request: reply)
    verifier = _verifier(pki, status=OcspStatusSource(client=httpx.Client(transport=transport)))
    _refused("status_unknown", lambda: verifier.verify_authentication(
        CHALLENGE, _sign(pki.auth.key, CHALLENGE), pki.auth.pem))


def test_revoked_via_crl(pki: Hierarchy) -> None:
    now = dt.datetime.now(dt.UTC)
    crl = build_crl(
        pki.auth_ca, pki.auth_ca_key,
        [(pki.auth_revoked.cert.serial_number, now - dt.timedelta(hours=1),
          x509.ReasonFlags.key_compromise)],
        now - dt.timedelta(minutes=1), now + dt.timedelta(days=1), 1,
    )
    fetched: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, content=crl)

    source = CrlStatusSource(client=httpx.Client(transport=httpx.MockTransport(handle)))
    verifier = _verifier(pki, status=source)
    verifier.verify_authentication(CHALLENGE, _sign(pki.auth.key, CHALLENGE), pki.auth.pem)
    _refused("revoked", lambda: verifier.verify_authentication(
        CHALLENGE, _sign(pki.auth_revoked.key, CHALLENGE), pki.auth_revoked.pem))
    assert fetched == [f"{BASE_URL}/jpki/crl/auth.crl"]  # fetched once, cached to nextUpdate


def test_crl_signed_by_another_key_is_not_trusted(pki: Hierarchy) -> None:
    now = dt.datetime.now(dt.UTC)
    forged = build_crl(pki.auth_ca, _key(), [], now - dt.timedelta(minutes=1),
                       now + dt.timedelta(days=1), 1)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=forged))
    verifier = _verifier(pki, status=CrlStatusSource(client=httpx.Client(transport=transport)))
    _refused("status_unknown", lambda: verifier.verify_authentication(
        CHALLENGE, _sign(pki.auth.key, CHALLENGE), pki.auth.pem))

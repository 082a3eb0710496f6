"""``RelyingPartyVerifier.verify_certificate``: every step of an authentication but the
signature (for a terminal that attests the holder's presence by a face match or a visual
check): relying party, kind, validity, chain, revocation; the result is the pairwise id."""

from __future__ import annotations

import datetime as dt

import pytest

from mynumber.jpki.interfaces import VerificationFailed
from mynumber.jpki.revocation import UNKNOWN
from mynumber.jpki.verify import CallableStatusSource, Refusal, RelyingPartyVerifier
from tests.jpki import test_verify as tv

pki = tv.pki  # the module's hierarchy fixture


def _refused(reason: str, call: object) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as caught:
        call()  # type: ignore[operator]
    assert caught.value.extra["reason"] == reason, caught.value.detail
    return caught.value


def test_a_good_certificate_yields_the_same_pairwise_id_as_an_authentication(
        pki: tv.Hierarchy) -> None:
    verifier = tv._verifier(pki)
    by_certificate = verifier.verify_certificate(pki.auth.pem)
    by_signature = verifier.verify_authentication(
        tv.CHALLENGE, tv._sign(pki.auth.key, tv.CHALLENGE), pki.auth.pem)
    assert by_certificate == by_signature
    assert vars(by_certificate) == {"pairwise_id": by_certificate.pairwise_id}
    assert verifier.verify_certificate(pki.auth.pem.encode()) == by_certificate


def test_revoked_expired_and_not_yet_valid_certificates_fail(pki: tv.Hierarchy) -> None:
    refusals: list[Refusal] = []
    verifier = tv._verifier(pki, refusals=refusals)
    _refused("revoked", lambda: verifier.verify_certificate(pki.auth_revoked.pem))
    _refused("expired", lambda: verifier.verify_certificate(pki.auth_expired.pem))
    _refused("not_yet_valid", lambda: verifier.verify_certificate(pki.auth_future.pem))
    assert [(r.reason, r.operation) for r in refusals] == [
        ("revoked", "certificate"), ("expired", "certificate"), ("not_yet_valid", "certificate")]
    assert refusals[0].serial == pki.auth_revoked.cert.serial_number
    unknown = tv._verifier(pki, status=CallableStatusSource(lambda serial: UNKNOWN))
    _refused("status_unknown", lambda: unknown.verify_certificate(pki.auth.pem))


def test_the_clock_is_checked_on_every_call(pki: tv.Hierarchy) -> None:
    clock = [pki.now]
    verifier = RelyingPartyVerifier([pki.root], [pki.auth_ca],
                                    CallableStatusSource(tv._lookup(pki)), 1, tv._jpki(pki),
                                    now=lambda: clock[0])
    verifier.verify_certificate(pki.auth.pem)
    clock[0] = pki.auth.cert.not_valid_after_utc + dt.timedelta(seconds=1)
    _refused("expired", lambda: verifier.verify_certificate(pki.auth.pem))


def test_only_a_trusted_authentication_certificate_passes(pki: tv.Hierarchy) -> None:
    verifier = tv._verifier(pki)
    _refused("wrong_kind", lambda: verifier.verify_certificate(pki.signing.pem))
    _refused("wrong_kind", lambda: verifier.verify_certificate(tv._pem(pki.auth_ca)))
    _refused("untrusted_chain", lambda: verifier.verify_certificate(pki.foreign_auth.pem))
    _refused("malformed_certificate", lambda: verifier.verify_certificate(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))


def test_the_relying_party_must_be_registered_and_jpki_must_name_the_holder(
        pki: tv.Hierarchy) -> None:
    _refused("unregistered_relying_party",
             lambda: tv._verifier(pki, rp=3).verify_certificate(pki.auth.pem))
    without_jpki = RelyingPartyVerifier([pki.root], [pki.auth_ca],
                                        CallableStatusSource(tv._lookup(pki)), 1, None)
    _refused("no_identifier", lambda: without_jpki.verify_certificate(pki.auth.pem))


def test_the_signature_is_still_checked_by_verify_authentication(pki: tv.Hierarchy) -> None:
    # verify_certificate skips the signature; verify_authentication still refuses a bad one.
    verifier = tv._verifier(pki)
    verifier.verify_certificate(pki.auth.pem)
    _refused("bad_signature", lambda: verifier.verify_authentication(
        tv.CHALLENGE, tv._sign(pki.auth.key, b"another"), pki.auth.pem))

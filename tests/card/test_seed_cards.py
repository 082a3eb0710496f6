"""Seeded cards (``mynumber seed``): share, no signing certificate under 15, valid chains, the
pooled-test-key marker, and refusal outside the embedded mode."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card import models as cm
from mynumber.card.interfaces import CardNotFound
from mynumber.card.seed import SEED_ACTOR, PooledKeysRefused, seed_cards
from mynumber.jpki import profiles
from mynumber.jpki.interfaces import CertificateKind, CertificateRefused, SeedCertificateRequest
from mynumber.registry.seed import current_residents, seed_population
from mynumber.settings import Mode
from tests.card.conftest import PINS, Holder


def _units(cert: x509.Certificate) -> list[str]:
    return [str(a.value)
            for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]


def _chain(container: Container, kind: CertificateKind) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates(container.jpki.ca_chain_pem(kind).encode()))


def _verifies(cert: x509.Certificate, chain: tuple[x509.Certificate, ...]) -> None:
    issuing, root = chain
    cert.verify_directly_issued_by(issuing)
    issuing.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)


def test_seed_cards_share_ages_chains_and_marker(container: Container) -> None:
    seed_population(container, 300)
    residents = current_residents(container.databases)
    result = seed_cards(container, residents, pool_size=2, batch_size=64)
    assert result.eligible == 300
    assert 0.65 <= result.cards / result.eligible <= 0.85
    assert result.auth_certificates == result.cards
    with container.databases.unit_of_work("card") as session:
        cards = session.scalars(select(cm.Card)).all()
        rows = [(c.card_id, c.resident_id, c.signing_serial, c.auth_serial or "")
                for c in cards]
        audits = session.scalars(select(cm.AuditEvent).where(
            cm.AuditEvent.tag == "card:card:issue")).all()
        assert {a.actor for a in audits} == {SEED_ACTOR}
        assert all(a.details["pooled_test_key"] for a in audits)
    assert len(rows) == result.cards
    births = {r.id: r.birth_date for r in residents}
    today = dt.date.today()
    under_15 = 0
    chains = {kind: _chain(container, kind) for kind in CertificateKind}
    for card_id, resident_id, signing_serial, auth_serial in rows:
        young = not profiles.may_hold_signing_certificate(births[resident_id], today, False)
        under_15 += young
        assert (signing_serial is None) == young
        serials = [(CertificateKind.AUTH, auth_serial)]
        if signing_serial is not None:
            serials.append((CertificateKind.SIGNING, signing_serial))
        for kind, serial in serials:
            issued = container.jpki.certificate(int(serial))
            assert issued.resident_id == resident_id and issued.kind is kind
            cert = x509.load_pem_x509_certificate(issued.pem.encode())
            _verifies(cert, chains[kind])
            assert _units(cert) == [profiles.POOLED_KEY_MARKER]
        with pytest.raises(CardNotFound):  # no chip file: the resident took the card home
            container.card.open_card(card_id)
    assert under_15 > 0  # about 12% of the population is under 15
    # Running again gives nobody a second card.
    again = seed_cards(container, residents, pool_size=1)
    assert again.cards <= again.eligible == 300 - result.cards


def test_counter_issued_certificates_carry_no_marker(
    container: Container, clerk: StaffPrincipal, holder: Holder,
) -> None:
    application = container.card.apply(clerk, holder.resident.id)
    record, _ = container.card.issue(clerk, application.application_id, holder.check(), PINS)
    for kind, serial in ((CertificateKind.SIGNING, record.signing_serial),
                         (CertificateKind.AUTH, record.auth_serial)):
        assert serial is not None
        cert = x509.load_pem_x509_certificate(container.jpki.certificate(serial).pem.encode())
        _verifies(cert, _chain(container, kind))
        assert _units(cert) == []


def test_seed_cards_refused_in_production_mode(container: Container) -> None:
    production = SimpleNamespace(
        settings=container.settings.model_copy(update={"mode": Mode.PRODUCTION}),
        databases=container.databases, jpki=container.jpki,
    )
    with pytest.raises(PooledKeysRefused):
        seed_cards(production, [])


def test_jpki_refuses_pooled_issuance_with_production_keys(
    container: Container, holder: Holder, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(container.jpki, "keys", SimpleNamespace(is_development=False))
    request = SeedCertificateRequest(holder.resident, CertificateKind.AUTH, "unused",
                                     dt.date.today() + dt.timedelta(days=3650))
    with pytest.raises(CertificateRefused):
        container.jpki.issue_pooled_seed_certificates([request], SEED_ACTOR)

"""The card context's flows on the real registry and JPKI services."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy import select

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card import models as m
from mynumber.card.chip import PinKind, PinLocked, VirtualCard, WrongPin
from mynumber.card.interfaces import (
    CardState,
    CardStateConflict,
    IdentityNotVerified,
    InvalidApplicationId,
    LossReportNotMatched,
    smartphone_enrolment_message,
)
from mynumber.card.services import card_expiry, months_before
from mynumber.codes import application_id
from mynumber.jpki.interfaces import CertificateKind, CertificateState, HolderProof
from tests.card.conftest import PINS, Holder, make_holder, phone_keys


def audit_tags(container: Container, tag: str) -> list[m.AuditEvent]:
    with container.databases.unit_of_work("card") as session:
        return list(session.scalars(select(m.AuditEvent).where(m.AuditEvent.tag == tag)).all())


def issue(container: Container, clerk: StaffPrincipal, holder: Holder):  # type: ignore[no-untyped-def]
    application = container.card.apply(clerk, holder.resident.id)
    return container.card.issue(clerk, application.application_id, holder.check(), PINS)


def test_card_expiry_rules() -> None:
    assert card_expiry(dt.date(1990, 4, 1), dt.date(2026, 11, 23)) == dt.date(2036, 4, 1)
    assert card_expiry(dt.date(1990, 11, 23), dt.date(2026, 11, 23)) == dt.date(2036, 11, 23)
    assert card_expiry(dt.date(2015, 1, 10), dt.date(2026, 11, 23)) == dt.date(2031, 1, 10)
    assert card_expiry(dt.date(2000, 2, 29), dt.date(2027, 3, 1)) == dt.date(2037, 2, 28)
    assert months_before(dt.date(2036, 5, 31), 3) == dt.date(2036, 2, 29)


def test_application_id_is_checked(container: Container, clerk: StaffPrincipal,
                                   holder: Holder) -> None:
    application = container.card.apply(clerk, holder.resident.id)
    assert application_id.is_valid(application.application_id)
    assert container.card.application(application.application_id) == application
    number = application.application_id
    typo = number[:5] + str((int(number[5]) + 1) % 10) + number[6:]
    swapped = number[:-3] + number[-2] + number[-3] + number[-1]
    for wrong in {typo, swapped} - {number}:
        with pytest.raises(InvalidApplicationId):
            container.card.application(wrong)


def test_issue_after_identity_verification(container: Container, clerk: StaffPrincipal,
                                           holder: Holder) -> None:
    application = container.card.apply(clerk, holder.resident.id)
    wrong = Holder(holder.resident, "123456789018")
    with pytest.raises(IdentityNotVerified):
        container.card.issue(clerk, application.application_id, wrong.check(), PINS)
    with pytest.raises(IdentityNotVerified):  # no photo ID: low assurance
        container.card.issue(clerk, application.application_id,
                             holder.check("health_insurance_card", "pension_book"), PINS)
    record, card = container.card.issue(clerk, application.application_id, holder.check(),
                                        PINS)
    assert record.state is CardState.ACTIVE
    assert record.signing_serial is not None and record.auth_serial is not None
    assert record.expires_on == card_expiry(holder.resident.birth_date, record.issued_on)
    assert container.jpki.state(record.signing_serial) is CertificateState.GOOD
    assert card.read_card_info("2468").individual_number == holder.number
    path = container.settings.data_dir / "cards" / f"{record.card_id}.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert container.card.open_card(record.card_id).certificate("auth")
    with pytest.raises(CardStateConflict):  # one card per application
        container.card.issue(clerk, application.application_id, holder.check(), PINS)


def test_child_gets_no_signing_certificate(container: Container, clerk: StaffPrincipal) -> None:
    child = make_holder(container, clerk, birth_date=dt.date(2016, 6, 1), given_name="次郎",
                        given_name_kana="ジロウ")
    record, _ = issue(container, clerk, child)
    assert record.signing_serial is None and record.auth_serial is not None
    assert record.expires_on == card_expiry(dt.date(2016, 6, 1), record.issued_on)
    assert record.expires_on.year - record.issued_on.year <= 5


def test_failed_pins_are_audited_and_reset_at_counter(
    container: Container, clerk: StaffPrincipal, holder: Holder
) -> None:
    record, _ = issue(container, clerk, holder)
    card = container.card.open_card(record.card_id)
    for _ in range(3):
        with pytest.raises(WrongPin):
            card.sign("auth", "0000", b"challenge")
    with pytest.raises(PinLocked):
        card.sign("auth", "1234", b"challenge")
    container.card.store.save(card)
    events = audit_tags(container, "card:pin:failed")
    assert len(events) == 4
    assert events[-1].details["was_locked"] is True
    assert events[2].details["remaining"] == 0
    with pytest.raises(IdentityNotVerified):
        container.card.reset_pin(clerk, record.card_id, PinKind.USER_AUTH, "4321",
                                 Holder(holder.resident, "123456789018").check())
    assert container.card.open_card(record.card_id).is_locked(PinKind.USER_AUTH)
    container.card.reset_pin(clerk, record.card_id, PinKind.USER_AUTH, "4321", holder.check())
    card = container.card.open_card(record.card_id)
    assert card.sign("auth", "4321", b"challenge")
    assert audit_tags(container, "card:pin:reset")


def _holder_proof(chip: VirtualCard, slot: str) -> HolderProof:
    """The holder signs with the card, as for a relying party (which then records the user)."""
    pin = PINS.signing_password if slot == "signing" else PINS.user_auth_pin
    pem = chip.certificate(slot, pin if slot == "signing" else None).decode()
    return HolderProof(pem, b"challenge", chip.sign(slot, pin, b"challenge"))


def test_loss_report_revokes_both_certificates(container: Container, clerk: StaffPrincipal,
                                              holder: Holder) -> None:
    record, chip = issue(container, clerk, holder)
    rp = container.jpki.register_relying_party("test rp", (CertificateKind.AUTH,))
    container.jpki.record_user(rp.id, _holder_proof(chip, "auth"))
    birth = holder.resident.birth_date
    for identifier, kana, day in (
        (record.card_id, "スズキ タロウ", birth),
        (record.card_id, holder.resident.name_kana, birth + dt.timedelta(days=1)),
        ("0" * 16, holder.resident.name_kana, birth),
    ):
        with pytest.raises(LossReportNotMatched) as info:
            container.card.report_lost(identifier, kana, day)
        assert "card" in info.value.detail
    assert container.card.card(record.card_id).state is CardState.ACTIVE
    report = container.card.report_lost(record.card_id.lower(), "ﾔﾏﾀﾞ ﾀﾛｳ", birth)
    assert report.state is CardState.SUSPENDED
    assert set(report.revoked_serials) == {record.signing_serial, record.auth_serial}
    assert record.signing_serial is not None and record.auth_serial is not None
    assert container.jpki.state(record.signing_serial) is CertificateState.REVOKED
    assert container.jpki.state(record.auth_serial) is CertificateState.REVOKED
    again = container.card.report_lost(record.application_id, holder.resident.name_kana, birth)
    assert again.state is CardState.SUSPENDED and again.revoked_serials == ()

    new, _ = container.card.reissue(clerk, record.card_id, holder.check(), PINS)
    assert new.card_id != record.card_id and new.state is CardState.ACTIVE
    old = container.card.card(record.card_id)
    assert old.state is CardState.REVOKED and old.replaced_by == new.card_id
    assert new.auth_serial is not None
    assert container.jpki.state(new.auth_serial) is CertificateState.GOOD
    assert container.jpki.current_serial(rp.id, record.auth_serial) == new.auth_serial


def test_renewal_window_and_links(container: Container, clerk: StaffPrincipal,
                                  holder: Holder) -> None:
    record, chip = issue(container, clerk, holder)
    rp = container.jpki.register_relying_party("renewal rp", (CertificateKind.SIGNING,))
    container.jpki.record_user(rp.id, _holder_proof(chip, "signing"))
    with pytest.raises(CardStateConflict):
        container.card.renew(clerk, record.card_id, holder.check(), PINS)
    with container.databases.unit_of_work("card") as session:
        row = session.get(m.Card, record.card_id)
        assert row is not None
        row.expires_on = dt.date.today() + dt.timedelta(days=60)
    new, _ = container.card.renew(clerk, record.card_id, holder.check(), PINS)
    assert new.card_id != record.card_id
    assert record.signing_serial is not None and new.signing_serial is not None
    assert container.jpki.state(record.signing_serial) is CertificateState.REVOKED
    assert container.jpki.state(new.signing_serial) is CertificateState.GOOD
    assert container.jpki.current_serial(rp.id, record.signing_serial) == new.signing_serial
    assert container.card.card(record.card_id).state is CardState.REVOKED


def test_smartphone_certificates_revocable_alone(container: Container, clerk: StaffPrincipal,
                                                 holder: Holder) -> None:
    record, card = issue(container, clerk, holder)
    keys, pems, ders = phone_keys()
    message = smartphone_enrolment_message(record.card_id, *ders)
    forged = keys[0].sign(message, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(IdentityNotVerified):
        container.card.issue_smartphone(record.card_id, pems[0], pems[1], forged)
    proof = card.sign("signing", PINS.signing_password, message)
    phone = container.card.issue_smartphone(record.card_id, pems[0], pems[1], proof)
    assert phone.signing_serial is not None and phone.auth_serial is not None
    assert container.jpki.state(phone.signing_serial) is CertificateState.GOOD
    revoked = container.card.revoke_smartphone(phone.id, "holder")
    assert set(revoked) == {phone.signing_serial, phone.auth_serial}
    assert container.jpki.state(phone.auth_serial) is CertificateState.REVOKED
    assert record.signing_serial is not None
    assert container.jpki.state(record.signing_serial) is CertificateState.GOOD


def test_free_area(container: Container, clerk: StaffPrincipal, holder: Holder) -> None:
    record, _ = issue(container, clerk, holder)
    entry = container.card.register_app(clerk, record.card_id, "seal_registration")
    container.card.register_app(clerk, record.card_id, "library_card")
    with pytest.raises(CardStateConflict):
        container.card.register_app(clerk, record.card_id, "seal_registration")
    assert [e.app_id for e in container.card.free_area(record.card_id)] == [
        "seal_registration", "library_card"]
    assert entry.issuer == clerk.municipality_code
    container.card.remove_app(clerk, record.card_id, "seal_registration")
    assert [e.app_id for e in container.card.free_area(record.card_id)] == ["library_card"]

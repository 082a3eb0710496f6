"""The card's whole certificate life: new certificates after a move (checked by OpenSSL, OCSP
and the serial link), a signing certificate at 15, renewal from 3 months before expiry, a
found card resumed only after identity verification, smartphone certificates revoked on their
own, free-area rules, the registry's events (death, move abroad), once-only renewal."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import update

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.card import events as card_events
from mynumber.card.interfaces import (
    CardState,
    CardStateConflict,
    FreeAreaRefused,
    IdentityNotVerified,
    PinRefused,
    RenewalNotOpen,
    smartphone_enrolment_message,
)
from mynumber.errors import DomainError
from mynumber.jpki import events as jpki_events
from mynumber.jpki import models as jm
from mynumber.jpki.interfaces import CertificateKind, CertificateState, HolderProof
from mynumber.kernel.events import Event
from tests.card.conftest import PINS, Holder, enrol_smartphone, make_holder
from tests.conftest import SHINJUKU, make_staff
from tests.jpki.test_openssl_http import _run, _write, served  # noqa: F401 - the fixture

NEW_ADDRESS = "東京都新宿区西新宿一丁目1番1号"


def issue(container: Container, clerk: StaffPrincipal, holder: Holder):  # type: ignore[no-untyped-def]
    application = container.card.apply(clerk, holder.resident.id)
    return container.card.issue(clerk, application.application_id, holder.check(), PINS)


def proof(chip, slot: str) -> HolderProof:  # type: ignore[no-untyped-def]
    pin = PINS.signing_password if slot == "signing" else PINS.user_auth_pin
    pem = chip.certificate(slot, pin if slot == "signing" else None).decode()
    return HolderProof(pem, b"challenge", chip.sign(slot, pin, b"challenge"))


def deliver(container: Container, *handlers) -> list[Event]:  # type: ignore[no-untyped-def]
    """The registry's published events, handed to the given handlers (as the dispatcher
    would)."""
    outbox = container.registry.outbox
    outbox.sequence()
    events = outbox.read(0, 10_000)
    for handle in handlers:
        handle(events)
    return events


def san_address(pem: str) -> str:
    from mynumber.jpki.services import _basic_items

    return _basic_items(pem)["address"]


def test_after_a_move_new_signing_certificate_openssl_ocsp_and_link(
    served: tuple[Container, str], tmp_path: Path,  # noqa: F811 - the fixture
) -> None:
    container, base = served
    clerk = make_staff(container, "move-clerk", SHINJUKU, StaffRole.CLERK)
    holder = make_holder(container, clerk)
    record, chip = issue(container, clerk, holder)
    assert record.signing_serial is not None
    old_pem = chip.certificate("signing", PINS.signing_password).decode()
    creds = container.jpki.register_relying_party_with_key("shop", (CertificateKind.SIGNING,))
    container.jpki.record_user(creds.relying_party.id, proof(chip, "signing"))

    container.registry.change_address(clerk, holder.resident.id, NEW_ADDRESS, "1600023",
                                      dt.date.today())
    deliver(container, jpki_events.handler(container.jpki), card_events.handler(container.card))
    assert container.jpki.state(record.signing_serial) is CertificateState.REVOKED

    with pytest.raises(PinRefused):  # the holder sets the new signing password
        container.card.renew_certificates(clerk, record.card_id, holder.check())
    result = container.card.renew_certificates(clerk, record.card_id, holder.check(),
                                               signing_password="NEWPASS1")
    assert set(result.issued) == {"signing"}  # the auth certificate carries no address
    new_serial = result.card.signing_serial
    assert new_serial is not None and new_serial != record.signing_serial
    assert result.links == {record.signing_serial: new_serial}
    assert result.card.auth_serial == record.auth_serial

    chip = container.card.open_card(record.card_id)
    new_pem = chip.certificate("signing", "NEWPASS1").decode()
    assert new_pem == result.issued["signing"]
    assert san_address(new_pem) == NEW_ADDRESS and san_address(old_pem) != NEW_ADDRESS
    assert chip.read_card_info(PINS.card_info_pin).address == NEW_ADDRESS  # the card face
    signature = chip.sign("signing", "NEWPASS1", b"after the move")
    key = x509.load_pem_x509_certificate(new_pem.encode()).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, b"after the move", padding.PKCS1v15(), hashes.SHA256())

    # OpenSSL: the new certificate verifies; OCSP says the old one is revoked, the new good.
    chain_pem = container.jpki.ca_chain_pem(CertificateKind.SIGNING)
    chain = _write(tmp_path / "chain.pem", chain_pem)
    issuing = _write(tmp_path / "issuing.pem",
                     x509.load_pem_x509_certificates(chain_pem.encode())[0]
                     .public_bytes(serialization.Encoding.PEM).decode())
    new_file = _write(tmp_path / "new.pem", new_pem)
    old_file = _write(tmp_path / "old.pem", old_pem)
    out = _run("openssl", "verify", "-CAfile", chain, new_file)
    assert f"{new_file}: OK" in out, out
    text = _run("openssl", "x509", "-in", new_file, "-noout", "-serial")
    assert f"{new_serial:X}" in text.upper(), text
    common = ("openssl", "ocsp", "-issuer", issuing, "-url", f"{base}/jpki/ocsp/sign",
              "-CAfile", chain)
    out = _run(*common, "-cert", old_file)
    assert f"{old_file}: revoked" in out and "Response verify OK" in out, out
    assert "affiliationChanged" in out, out
    out = _run(*common, "-cert", new_file)
    assert f"{new_file}: good" in out, out

    # The relying party follows its user from the old serial to the new one.
    request = urllib.request.Request(
        f"{base}/api/v1/jpki/serial-links/lookup",
        data=json.dumps({"serial": str(record.signing_serial)}).encode(),
        headers={"Content-Type": "application/json", "X-Relying-Party-Key": creds.api_key})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["serial"] == str(new_serial)

    # Delivered again: the event revokes nothing issued after it.
    deliver(container, jpki_events.handler(container.jpki))
    assert container.jpki.state(new_serial) is CertificateState.GOOD
    with pytest.raises(RenewalNotOpen):  # nothing left to renew
        container.card.renew_certificates(clerk, record.card_id, holder.check(),
                                          signing_password="NEWPASS1", user_auth_pin="1234")


def test_found_card_works_again_only_after_identity_verification(
    container: Container, clerk: StaffPrincipal, holder: Holder,
) -> None:
    record, chip = issue(container, clerk, holder)
    report = container.card.report_lost(record.card_id, holder.resident.name_kana,
                                        holder.resident.birth_date)
    assert report.state is CardState.SUSPENDED
    # Found. Until the counter verifies identity, the card does nothing.
    assert container.card.card(record.card_id).state is CardState.SUSPENDED
    with pytest.raises(CardStateConflict):
        container.card.renew_certificates(clerk, record.card_id, holder.check(),
                                          signing_password="ABC123", user_auth_pin="1234")
    message = smartphone_enrolment_message(record.card_id, b"x", b"y")
    with pytest.raises(DomainError):
        container.card.issue_smartphone(record.card_id, "a", "b",
                                        chip.sign("signing", PINS.signing_password, message))
    with pytest.raises(IdentityNotVerified):  # a wrong number: refused, still suspended
        container.card.lift_suspension(clerk, record.card_id,
                                       Holder(holder.resident, "123456789018").check(),
                                       signing_password="FOUND1", user_auth_pin="4321")
    with pytest.raises(IdentityNotVerified):  # no photo ID
        container.card.lift_suspension(clerk, record.card_id,
                                       holder.check("health_insurance_card", "pension_book"),
                                       signing_password="FOUND1", user_auth_pin="4321")
    assert container.card.card(record.card_id).state is CardState.SUSPENDED
    assert record.auth_serial is not None
    assert container.jpki.state(record.auth_serial) is CertificateState.REVOKED

    result = container.card.lift_suspension(clerk, record.card_id, holder.check(),
                                            signing_password="FOUND1", user_auth_pin="4321")
    assert result.card.state is CardState.ACTIVE
    assert set(result.issued) == {"signing", "auth"}
    assert result.links == {record.signing_serial: result.card.signing_serial,
                            record.auth_serial: result.card.auth_serial}
    assert result.card.auth_serial is not None
    assert container.jpki.state(result.card.auth_serial) is CertificateState.GOOD
    assert container.jpki.state(record.auth_serial) is CertificateState.REVOKED  # for good
    chip = container.card.open_card(record.card_id)
    rp = container.jpki.register_relying_party("login", (CertificateKind.AUTH,))
    pem = chip.certificate("auth").decode()
    container.jpki.record_user(rp.id, HolderProof(pem, b"c", chip.sign("auth", "4321", b"c")))
    with pytest.raises(CardStateConflict):  # not suspended any more
        container.card.lift_suspension(clerk, record.card_id, holder.check(),
                                       signing_password="FOUND1", user_auth_pin="4321")


def test_signing_certificate_added_at_15(container: Container, clerk: StaffPrincipal) -> None:
    today = dt.date.today()
    birth = dt.date(today.year - 15, today.month, 1)
    if birth > today - dt.timedelta(days=15 * 365 + 3):
        birth -= dt.timedelta(days=40)
    teen = make_holder(container, clerk, birth_date=birth, given_name="三郎",
                       given_name_kana="サブロウ")
    container.card._today = lambda: birth.replace(year=birth.year + 15) - dt.timedelta(days=1)
    record, _ = issue(container, clerk, teen)
    assert record.signing_serial is None  # issued the day before the 15th birthday
    container.card._today = lambda: dt.date.today()
    result = container.card.renew_certificates(clerk, record.card_id, teen.check(),
                                               signing_password="TEEN15")
    assert set(result.issued) == {"signing"} and result.links == {}
    assert result.card.signing_serial is not None
    assert container.jpki.state(result.card.signing_serial) is CertificateState.GOOD
    chip = container.card.open_card(record.card_id)
    assert chip.sign("signing", "TEEN15", b"x")


def test_certificate_renewal_window(container: Container, clerk: StaffPrincipal,
                                   holder: Holder) -> None:
    record, _ = issue(container, clerk, holder)
    status = container.card.certificate_status(record.card_id)
    opens = status.certificates[1].renewal_opens_on
    assert opens is not None and opens > dt.date.today()
    with pytest.raises(RenewalNotOpen) as info:
        container.card.renew_certificates(clerk, record.card_id, holder.check(),
                                          signing_password="ABC123", user_auth_pin="1234")
    assert opens.isoformat() in info.value.detail
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)  # the certificates expire first
    with container.databases.unit_of_work("jpki") as session:
        session.execute(update(jm.Certificate).where(jm.Certificate.resident_id
                                                     == holder.resident.id).values(not_after=soon))
    result = container.card.renew_certificates(clerk, record.card_id, holder.check(),
                                               signing_password="RENEW1", user_auth_pin="9876")
    assert set(result.issued) == {"signing", "auth"}
    assert set(result.revoked) == {record.signing_serial, record.auth_serial}
    new = container.jpki.standing(result.card.auth_serial or 0)
    assert new.not_after > soon + dt.timedelta(days=365)
    assert result.card.expires_on == record.expires_on  # the same card


def test_renewal_runs_once_for_two_clerks_at_once(container: Container, clerk: StaffPrincipal,
                                                  holder: Holder) -> None:
    record, _ = issue(container, clerk, holder)
    container.registry.change_address(clerk, holder.resident.id, NEW_ADDRESS, "1600023",
                                      dt.date.today())
    results: list[object] = []
    barrier = threading.Barrier(2)

    def renew() -> None:
        barrier.wait()
        try:
            results.append(container.card.renew_certificates(
                clerk, record.card_id, holder.check(), signing_password="TWICE1"))
        except DomainError as exc:
            results.append(exc)

    threads = [threading.Thread(target=renew) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [r for r in results if isinstance(r, DomainError)]
    assert len(results) == 2 and len(errors) == 1, results
    assert isinstance(errors[0], RenewalNotOpen | CardStateConflict)
    with container.databases.unit_of_work("jpki") as session:
        from sqlalchemy import func, select
        good = session.scalar(select(func.count()).select_from(jm.Certificate).where(
            jm.Certificate.resident_id == holder.resident.id, jm.Certificate.kind == "signing",
            jm.Certificate.state == "good"))
    assert good == 1


def test_smartphone_revoked_through_24_hour_channel_alone(
    container: Container, clerk: StaffPrincipal, holder: Holder,
) -> None:
    record, chip = issue(container, clerk, holder)
    phone = enrol_smartphone(container, record.card_id, chip)
    report = container.card.report_smartphone_lost(record.card_id, holder.resident.name_kana,
                                                   holder.resident.birth_date)
    assert set(report.revoked_serials) == {phone.signing_serial, phone.auth_serial}
    assert report.state is CardState.ACTIVE
    assert container.jpki.state(record.signing_serial or 0) is CertificateState.GOOD
    assert container.jpki.state(record.auth_serial or 0) is CertificateState.GOOD
    assert not container.card.smartphones_of(record.card_id)[0].active


def test_free_area_rules(container: Container, clerk: StaffPrincipal,
                         shibuya_clerk: StaffPrincipal, holder: Holder) -> None:
    record, _ = issue(container, clerk, holder)
    with pytest.raises(FreeAreaRefused):  # 印鑑登録証: only where the holder lives
        container.card.register_app(shibuya_clerk, record.card_id, "seal_registration")
    library = container.card.register_app(shibuya_clerk, record.card_id, "library_card")
    assert library.issuer == shibuya_clerk.municipality_code
    seal = container.card.register_app(clerk, record.card_id, "seal_registration")
    assert seal.issuer == clerk.municipality_code
    with pytest.raises(DomainError):  # not an application the free area accepts
        container.card.register_app(clerk, record.card_id, "anything")
    with pytest.raises(FreeAreaRefused):  # only its writer removes it
        container.card.remove_app(clerk, record.card_id, "library_card")
    container.card.remove_app(shibuya_clerk, record.card_id, "library_card")
    assert [e.app_id for e in container.card.free_area(record.card_id)] == ["seal_registration"]


def test_death_ends_the_card_and_revokes_everything_once(
    container: Container, clerk: StaffPrincipal, holder: Holder,
) -> None:
    record, _ = issue(container, clerk, holder)
    container.registry.register_death(clerk, holder.resident.id, dt.date.today())
    handlers = (jpki_events.handler(container.jpki), card_events.handler(container.card))
    deliver(container, *handlers)
    assert container.card.card(record.card_id).state is CardState.ENDED
    for serial in (record.signing_serial, record.auth_serial):
        assert container.jpki.state(serial or 0) is CertificateState.REVOKED
    deliver(container, *handlers)  # delivered again: nothing changes, nothing fails
    assert container.card.card(record.card_id).state is CardState.ENDED
    with pytest.raises(CardStateConflict):
        container.card.renew_certificates(clerk, record.card_id, holder.check(),
                                          signing_password="ABC123", user_auth_pin="1234")


def test_move_abroad_revokes_the_auth_certificate(container: Container, clerk: StaffPrincipal,
                                                  holder: Holder) -> None:
    record, _ = issue(container, clerk, holder)
    event = Event(1, "registry.resident.move_out", f"resident:{holder.resident.id}",
                  {"resident_id": holder.resident.id, "kind": "move_out", "abroad": True,
                   "basic_four_changed": False},
                  dt.datetime.now(dt.UTC))
    revoked = jpki_events.apply(container.jpki, event)
    assert record.auth_serial in revoked
    assert jpki_events.apply(container.jpki, event) == []  # idempotent
    assert container.card.card(record.card_id).state is CardState.ACTIVE
    earlier = Event(2, "registry.resident.move_out", "resident:1",
                    {"resident_id": holder.resident.id, "kind": "move_out", "abroad": True},
                    dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert jpki_events.apply(container.jpki, earlier) == []

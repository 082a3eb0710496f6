"""初回登録: the card's user-authentication certificate tied to its holder (JPKI's pairwise id,
never a serial), once; from a terminal, a card reader or the portal. The card's status and
the relying party registered once."""

from __future__ import annotations

import datetime as dt

import pytest

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.insurance import models as m
from mynumber.insurance.eligibility import RELYING_PARTY_SETTING, EligibilityServiceImpl
from mynumber.insurance.interfaces import (
    AccessAction,
    AlreadyActivated,
    CardRefused,
    CardStatus,
    ChallengeRefused,
    ConfirmationMethod,
    CoverageDocumentKind,
    Terminal,
    Validity,
)
from mynumber.jpki.interfaces import RevocationReason
from tests.insurance.support_eligibility import (
    OTHER_INSURER,
    Holder,
    activate_at,
    add_document,
    add_qualification,
    check_pin,
    in_parallel,
    issue_holder,
    make_service,
    register,
    rows,
)


@pytest.fixture
def service(container: Container) -> EligibilityServiceImpl:
    return make_service(container)


@pytest.fixture
def clinic(service: EligibilityServiceImpl) -> Terminal:
    return register(service)[0]


@pytest.fixture
def taro(container: Container, clerk: StaffPrincipal) -> Holder:
    return issue_holder(container, clerk)


def test_activation_at_a_terminal_ties_the_pairwise_id_once(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    qid = add_qualification(container.databases, taro.resident)
    before = service.card_status(taro.resident.id)
    assert (before.activated, before.activated_at) == (False, None)
    assert before.current is not None and before.current.id == qid  # the insurer, not the card
    challenge = service.challenge(clinic)
    status = service.activate(challenge.challenge_id, taro.certificate,
                              taro.sign(challenge.challenge), terminal=clinic)
    assert status.activated and status.activated_at is not None
    assert status.current is not None and status.current.id == qid
    activation = rows(container.databases, m.ActivationRow)[0]
    assert (activation.resident_id, activation.via) == (taro.resident.id,
                                                        f"terminal:{clinic.id}")
    # The id is JPKI's pairwise id for this relying party, never the certificate's serial.
    rp = service.relying_party_id()
    assert activation.pairwise_id == container.jpki.pairwise_id(rp, taro.serial)
    assert str(taro.serial) not in activation.pairwise_id
    assert f"{taro.serial:x}" not in activation.pairwise_id
    entries = service.access_entries(taro.resident.id)
    assert [(e.action, e.institution_code) for e in entries] == [
        (AccessAction.ACTIVATION, clinic.institution_code)]
    with pytest.raises(AlreadyActivated):
        activate_at(service, clinic, taro)
    assert len(rows(container.databases, m.ActivationRow)) == 1


def test_activation_in_parallel_succeeds_once(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    # A cold service: the relying party is registered and the verifier built in the race too.
    challenges = [service.challenge(clinic) for _ in range(4)]
    signatures = [taro.sign(c.challenge) for c in challenges]
    outcomes = in_parallel(4, lambda i: service.activate(
        challenges[i].challenge_id, taro.certificate, signatures[i], terminal=clinic))
    done = [o for o in outcomes if isinstance(o, CardStatus)]
    refused = [o for o in outcomes if isinstance(o, AlreadyActivated)]
    assert len(done) == 1 and len(refused) == 3, outcomes
    assert len(rows(container.databases, m.ActivationRow)) == 1
    assert [e.action for e in service.access_entries(taro.resident.id)] == [
        AccessAction.ACTIVATION]


def test_a_revoked_card_cannot_be_activated(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    container.jpki.revoke(taro.serial, RevocationReason.LOST, "test:lost-card")
    with pytest.raises(CardRefused) as refused:
        activate_at(service, clinic, taro)
    assert refused.value.extra["reason"] == "revoked"
    with pytest.raises(CardRefused) as portal:
        service.activate_for_resident(taro.resident.id, taro.serial)
    assert portal.value.extra["reason"] == "revoked"
    assert rows(container.databases, m.ActivationRow) == []


def test_activation_by_a_card_reader_without_a_terminal(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    add_qualification(container.databases, taro.resident)
    challenge = service.challenge(None)
    # A terminal cannot use a reader's challenge for a check.
    with pytest.raises(ChallengeRefused) as refused:
        service.check_card(clinic, challenge.challenge_id, taro.certificate,
                           method=ConfirmationMethod.CARD_PIN,
                           signature=taro.sign(challenge.challenge))
    assert refused.value.extra["reason"] == "other_terminal"
    status = service.activate(challenge.challenge_id, taro.certificate,
                              taro.sign(challenge.challenge))
    assert status.activated
    assert rows(container.databases, m.ActivationRow)[0].via == "card_reader"
    entry = service.access_entries(taro.resident.id)[0]
    assert (entry.action, entry.institution_name) == (AccessAction.ACTIVATION, "マイナポータル")
    assert check_pin(service, clinic, taro).validity is Validity.VALID


def test_activation_from_the_portal_checks_the_holder(
        container: Container, clerk: StaffPrincipal, service: EligibilityServiceImpl,
        clinic: Terminal, taro: Holder) -> None:
    hanako = issue_holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    with pytest.raises(CardRefused) as refused:
        service.activate_for_resident(hanako.resident.id, taro.serial)
    assert refused.value.extra["reason"] == "holder_mismatch"
    status = service.activate_for_resident(taro.resident.id, taro.serial)
    assert status.activated
    assert rows(container.databases, m.ActivationRow)[0].via == "portal"
    with pytest.raises(AlreadyActivated):
        service.activate_for_resident(taro.resident.id, taro.serial)
    # The card the portal activated is the card the reception checks.
    with pytest.raises(AlreadyActivated):
        activate_at(service, clinic, taro)
    assert check_pin(service, clinic, taro).validity is Validity.NOT_FOUND


def test_card_status_names_the_current_insurer_and_documents(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    db = container.databases
    today = service.clock().date()
    old = add_qualification(db, taro.resident, acquired_on=dt.date(2015, 4, 1),
                            lost_on=today - dt.timedelta(days=30))
    add_document(db, old, kind=CoverageDocumentKind.QUALIFICATION_NOTICE,
                 ended_at=service.clock())
    new = add_qualification(db, taro.resident, insurer=OTHER_INSURER,
                            acquired_on=today - dt.timedelta(days=30))
    notice = add_document(db, new, kind=CoverageDocumentKind.QUALIFICATION_NOTICE)
    activate_at(service, clinic, taro)
    status = service.card_status(taro.resident.id)
    assert status.current is not None and status.current.id == new
    assert status.current.insurer_number == OTHER_INSURER
    assert [d.document_number for d in status.documents] == [notice]
    assert service.card_status(999_999) == CardStatus(False, None, None, ())


def test_the_relying_party_is_registered_once_and_remembered(
        container: Container, service: EligibilityServiceImpl, taro: Holder) -> None:
    first = service.relying_party_id()
    assert rows(container.databases, m.SettingRow, key=RELYING_PARTY_SETTING)[0].value \
        == str(first)
    party = container.jpki.relying_party(first)
    assert party.active and [k.value for k in party.kinds] == ["auth"]
    again = make_service(container)  # another process
    assert again.relying_party_id() == first
    assert len(rows(container.databases, m.AuditEvent,
                    tag="insurance:relying_party:register")) == 1

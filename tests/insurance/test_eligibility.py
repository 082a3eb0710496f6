"""Eligibility at the reception: the card (PIN, face, visual), 資格有効性, the 資格確認書, and the
one-use challenge. Real cards: the registry, card and JPKI of the ``container`` fixture."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.insurance import models as m
from mynumber.insurance.eligibility import EligibilityServiceImpl
from mynumber.insurance.face import stand_in_live_photo
from mynumber.insurance.interfaces import (
    CHALLENGE_TTL,
    AccessAction,
    CardRefused,
    ChallengeRefused,
    ConfirmationMethod,
    ConsentItem,
    CoverageDocumentKind,
    DocumentNotFound,
    EligibilityResult,
    FaceMatchUnavailable,
    InvalidInsuranceInput,
    LinkState,
    NotActivated,
    Terminal,
    Validity,
)
from mynumber.jpki.interfaces import RevocationReason
from tests.insurance.support_eligibility import (
    CARD_PHOTO,
    OTHER_CLINIC,
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
    set_link_state,
)

TODAY = dt.date(2025, 6, 2)


@pytest.fixture
def service(container: Container) -> EligibilityServiceImpl:
    return make_service(container)


@pytest.fixture
def clinic(service: EligibilityServiceImpl) -> Terminal:
    return register(service)[0]


@pytest.fixture
def taro(container: Container, clerk: StaffPrincipal, service: EligibilityServiceImpl,
         clinic: Terminal) -> Holder:
    """An activated card holder (初回登録 done at the clinic's terminal)."""
    holder = issue_holder(container, clerk)
    activate_at(service, clinic, holder)
    return holder


def _check(service: EligibilityServiceImpl, terminal: Terminal, holder: Holder,
           method: ConfirmationMethod, **kwargs: object) -> EligibilityResult:
    challenge = service.challenge(terminal)
    if method is ConfirmationMethod.CARD_PIN:
        kwargs.setdefault("signature", holder.sign(challenge.challenge))
    return service.check_card(terminal, challenge.challenge_id, holder.certificate,
                              method=method, **kwargs)  # type: ignore[arg-type]


# --- 資格有効性 by the card ------------------------------------------------------------------


def test_card_and_pin_shows_the_current_qualification_and_records_the_visit(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    qid = add_qualification(container.databases, taro.resident)
    result = check_pin(service, clinic, taro, today=TODAY)
    assert result.validity is Validity.VALID
    assert result.method is ConfirmationMethod.CARD_PIN
    assert result.qualification is not None and result.qualification.id == qid
    assert result.qualification.insurer_name == "テスト健康保険組合"
    assert result.consentable == tuple(ConsentItem)
    visit = rows(container.databases, m.VisitRow, id=result.visit_id)[0]
    assert (visit.terminal_id, visit.institution_code, visit.resident_id, visit.qualification_id,
            visit.method, visit.validity, visit.confirmed_by) == (
        clinic.id, clinic.institution_code, taro.resident.id, qid, "card_pin", "valid", None)
    entries = service.access_entries(taro.resident.id)
    assert [(e.action, e.method, e.validity, e.institution_name) for e in entries] == [
        (AccessAction.ELIGIBILITY, ConfirmationMethod.CARD_PIN, Validity.VALID,
         clinic.institution_name),
        (AccessAction.ACTIVATION, None, None, clinic.institution_name)]


def test_validity_follows_the_linked_qualifications_only(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    db = container.databases
    # A record in review or blocked is never shown: nothing is linked.
    add_qualification(db, taro.resident, link_state=LinkState.REVIEW,
                      acquired_on=dt.date(2010, 4, 1), lost_on=dt.date(2011, 4, 1))
    add_qualification(db, taro.resident, link_state=LinkState.BLOCKED,
                      acquired_on=dt.date(2012, 4, 1), lost_on=dt.date(2013, 4, 1))
    result = check_pin(service, clinic, taro, today=TODAY)
    assert (result.validity, result.qualification, result.consentable) == (
        Validity.NOT_FOUND, None, ())
    # Linked, but ended: 無効, with the latest qualification.
    old = add_qualification(db, taro.resident, acquired_on=dt.date(2015, 4, 1),
                            lost_on=dt.date(2020, 4, 1))
    result = check_pin(service, clinic, taro, today=TODAY)
    assert result.validity is Validity.INVALID and result.qualification is not None
    assert result.qualification.id == old and result.consentable == ()
    # One covering today: 有効.
    ending = add_qualification(db, taro.resident, acquired_on=dt.date(2020, 4, 1),
                               lost_on=dt.date(2026, 4, 1))
    result = check_pin(service, clinic, taro, today=TODAY)
    assert result.validity is Validity.VALID and result.qualification is not None
    assert result.qualification.id == ending
    # Two covering today: 複数該当, and none is picked for the reception.
    add_qualification(db, taro.resident, insurer=OTHER_INSURER, acquired_on=dt.date(2025, 1, 1))
    result = check_pin(service, clinic, taro, today=TODAY)
    assert (result.validity, result.qualification, result.consentable) == (
        Validity.MULTIPLE, None, ())
    visits = rows(db, m.VisitRow, resident_id=taro.resident.id)
    assert sorted(v.validity for v in visits) == ["invalid", "multiple", "not_found", "valid"]


def test_a_job_change_leaves_no_gap_and_no_overlap_at_the_reception(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    db = container.databases
    change = dt.date(2025, 4, 1)
    old = add_qualification(db, taro.resident, acquired_on=dt.date(2019, 4, 1), lost_on=change)
    new = add_qualification(db, taro.resident, insurer=OTHER_INSURER, acquired_on=change)
    for day, expected in ((change - dt.timedelta(days=1), old), (change, new),
                          (change + dt.timedelta(days=1), new)):
        result = check_pin(service, clinic, taro, today=day)
        assert result.validity is Validity.VALID, day
        assert result.qualification is not None and result.qualification.id == expected


def test_namesakes_never_see_each_others_qualification(
        container: Container, clerk: StaffPrincipal, service: EligibilityServiceImpl,
        clinic: Terminal, taro: Holder) -> None:
    # Same kana name, birth date and sex, another address: the 2021-2023 mislinks.
    namesake = issue_holder(container, clerk, family_name="山田", given_name="太朗",
                            address="東京都新宿区歌舞伎町一丁目4番1号")
    assert (namesake.resident.name_kana, namesake.resident.birth_date, namesake.resident.sex) \
        == (taro.resident.name_kana, taro.resident.birth_date, taro.resident.sex)
    activate_at(service, clinic, namesake)
    mine = add_qualification(container.databases, taro.resident)
    theirs = check_pin(service, clinic, namesake, today=TODAY)
    assert (theirs.validity, theirs.qualification) == (Validity.NOT_FOUND, None)
    own = check_pin(service, clinic, taro, today=TODAY)
    assert own.qualification is not None and own.qualification.id == mine
    assert [e.validity for e in service.access_entries(namesake.resident.id)
            if e.action is AccessAction.ELIGIBILITY] == [Validity.NOT_FOUND]


def test_a_card_not_registered_for_insurance_use_is_refused(
        container: Container, clerk: StaffPrincipal, service: EligibilityServiceImpl,
        clinic: Terminal) -> None:
    hanako = issue_holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    add_qualification(container.databases, hanako.resident)
    with pytest.raises(NotActivated):
        check_pin(service, clinic, hanako)
    assert rows(container.databases, m.VisitRow) == []


# --- the certificate: revoked, expired, badly signed --------------------------------------------


@pytest.mark.parametrize("method", [ConfirmationMethod.CARD_PIN, ConfirmationMethod.FACE,
                                    ConfirmationMethod.VISUAL])
def test_a_revoked_authentication_certificate_fails(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal, taro: Holder,
        method: ConfirmationMethod) -> None:
    add_qualification(container.databases, taro.resident)
    assert check_pin(service, clinic, taro).validity is Validity.VALID
    container.jpki.revoke(taro.serial, RevocationReason.LOST, "test:lost-card")
    extra: dict[str, object] = {
        ConfirmationMethod.FACE: {"card_photo": CARD_PHOTO,
                                  "live_photo": stand_in_live_photo(CARD_PHOTO)},
        ConfirmationMethod.VISUAL: {"staff": "受付 佐藤"},
    }.get(method, {})
    with pytest.raises(CardRefused) as refused:
        _check(service, clinic, taro, method, **extra)
    assert refused.value.extra["reason"] == "revoked"
    assert len(rows(container.databases, m.VisitRow)) == 1  # only the check before
    events = rows(container.databases, m.AuditEvent, tag="insurance:card:refused")
    assert [(e.reason, e.actor) for e in events] == [("revoked", f"terminal:{clinic.id}")]


def test_an_expired_certificate_fails(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    add_qualification(container.databases, taro.resident)
    not_after = x509.load_pem_x509_certificate(taro.certificate.encode()).not_valid_after_utc
    service.clock = lambda: not_after + dt.timedelta(days=1)
    with pytest.raises(CardRefused) as refused:
        check_pin(service, clinic, taro)
    assert refused.value.extra["reason"] == "expired"


def test_a_signature_over_another_challenge_fails_and_spends_the_challenge(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    challenge = service.challenge(clinic)
    with pytest.raises(CardRefused) as refused:
        service.check_card(clinic, challenge.challenge_id, taro.certificate,
                           method=ConfirmationMethod.CARD_PIN,
                           signature=taro.sign(b"another challenge"))
    assert refused.value.extra["reason"] == "bad_signature"
    with pytest.raises(ChallengeRefused) as again:
        service.check_card(clinic, challenge.challenge_id, taro.certificate,
                           method=ConfirmationMethod.CARD_PIN,
                           signature=taro.sign(challenge.challenge))
    assert again.value.extra["reason"] == "used"


def test_a_certificate_that_is_not_a_card_certificate_fails(
        service: EligibilityServiceImpl, clinic: Terminal, taro: Holder) -> None:
    challenge = service.challenge(clinic)
    with pytest.raises(CardRefused) as refused:
        service.check_card(clinic, challenge.challenge_id, clinic.certificate_pem,
                           method=ConfirmationMethod.VISUAL, staff="受付 佐藤")
    assert refused.value.extra["reason"] == "malformed_certificate"


# --- face and visual -------------------------------------------------------------------------


def test_face_match_with_the_stand_in_matcher(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    add_qualification(container.databases, taro.resident)
    result = _check(service, clinic, taro, ConfirmationMethod.FACE, card_photo=CARD_PHOTO,
                    live_photo=stand_in_live_photo(CARD_PHOTO, b" camera frame"), today=TODAY)
    assert (result.validity, result.method) == (Validity.VALID, ConfirmationMethod.FACE)
    visit = rows(container.databases, m.VisitRow, id=result.visit_id)[0]
    assert visit.confirmed_by == "face:deterministic-stand-in (not face recognition)"
    with pytest.raises(CardRefused) as refused:
        _check(service, clinic, taro, ConfirmationMethod.FACE, card_photo=CARD_PHOTO,
               live_photo=b"\xff\xd8 someone else's face")
    assert refused.value.extra["reason"] == "face_mismatch"
    assert [e.reason for e in rows(container.databases, m.AuditEvent,
                                   tag="insurance:card:refused")] == ["face_mismatch"]


def test_face_match_unavailable_without_a_matcher_keeps_the_challenge(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    add_qualification(container.databases, taro.resident)
    without = make_service(container, face=False)
    challenge = without.challenge(clinic)
    with pytest.raises(FaceMatchUnavailable):
        without.check_card(clinic, challenge.challenge_id, taro.certificate,
                           method=ConfirmationMethod.FACE, card_photo=CARD_PHOTO,
                           live_photo=CARD_PHOTO)
    result = without.check_card(clinic, challenge.challenge_id, taro.certificate,
                                method=ConfirmationMethod.CARD_PIN,
                                signature=taro.sign(challenge.challenge))
    assert result.validity is Validity.VALID


def test_visual_check_names_the_staff(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    add_qualification(container.databases, taro.resident)
    for staff in (None, "", "a\nb", "x" * 101):
        with pytest.raises(InvalidInsuranceInput):
            _check(service, clinic, taro, ConfirmationMethod.VISUAL, staff=staff)
    result = _check(service, clinic, taro, ConfirmationMethod.VISUAL, staff="受付 佐藤")
    assert result.validity is Validity.VALID
    visit = rows(container.databases, m.VisitRow, id=result.visit_id)[0]
    assert (visit.method, visit.confirmed_by) == ("visual", "staff:受付 佐藤")
    with pytest.raises(InvalidInsuranceInput):
        _check(service, clinic, taro, ConfirmationMethod.DOCUMENT)


# --- the challenge ---------------------------------------------------------------------------


def test_challenge_refusals(service: EligibilityServiceImpl, clinic: Terminal,
                            taro: Holder) -> None:
    other, _ = register(service, OTHER_CLINIC)

    def use(terminal: Terminal, challenge_id: str, challenge: bytes) -> EligibilityResult:
        return service.check_card(terminal, challenge_id, taro.certificate,
                                  method=ConfirmationMethod.CARD_PIN,
                                  signature=taro.sign(challenge))

    def reason(call: object) -> str:
        with pytest.raises(ChallengeRefused) as refused:
            call()  # type: ignore[operator]
        return str(refused.value.extra["reason"])

    assert reason(lambda: use(clinic, "no-such-challenge", b"x")) == "unknown"
    assert reason(lambda: use(clinic, "x" * 65, b"x")) == "unknown"
    mine = service.challenge(clinic)
    assert mine.expires_at - service.clock() <= CHALLENGE_TTL
    # Another terminal cannot use it, and trying does not spend it.
    assert reason(lambda: use(other, mine.challenge_id, mine.challenge)) == "other_terminal"
    assert reason(lambda: service.activate(mine.challenge_id, taro.certificate,
                                           taro.sign(mine.challenge))) == "other_terminal"
    use(clinic, mine.challenge_id, mine.challenge)
    assert reason(lambda: use(clinic, mine.challenge_id, mine.challenge)) == "used"
    late = service.challenge(clinic)
    start = service.clock()
    service.clock = lambda: start + CHALLENGE_TTL + dt.timedelta(seconds=1)
    assert reason(lambda: use(clinic, late.challenge_id, late.challenge)) == "expired"


def test_a_challenge_used_in_parallel_is_accepted_once(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal,
        taro: Holder) -> None:
    add_qualification(container.databases, taro.resident)
    check_pin(service, clinic, taro)  # a warm server: the verifier is built before the race
    challenge = service.challenge(clinic)
    signature = taro.sign(challenge.challenge)
    outcomes = in_parallel(6, lambda _: service.check_card(
        clinic, challenge.challenge_id, taro.certificate, method=ConfirmationMethod.CARD_PIN,
        signature=signature))
    accepted = [o for o in outcomes if isinstance(o, EligibilityResult)]
    refused = [o for o in outcomes if isinstance(o, ChallengeRefused)]
    assert len(accepted) == 1 and len(refused) == 5, outcomes
    assert {r.extra["reason"] for r in refused} == {"used"}
    assert len(rows(container.databases, m.VisitRow)) == 2


# --- 資格確認書 --------------------------------------------------------------------------------


def test_a_confirmation_certificate_is_checked_with_the_birth_date(
        container: Container, clerk: StaffPrincipal, service: EligibilityServiceImpl,
        clinic: Terminal) -> None:
    jiro = issue_holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    qid = add_qualification(container.databases, jiro.resident)
    number = add_document(container.databases, qid)
    result = service.check_document(clinic, number, jiro.resident.birth_date, today=TODAY)
    assert (result.validity, result.method) == (Validity.VALID, ConfirmationMethod.DOCUMENT)
    assert result.qualification is not None and result.qualification.id == qid
    assert result.consentable == tuple(ConsentItem)
    assert [(e.action, e.method) for e in service.access_entries(jiro.resident.id)] == [
        (AccessAction.ELIGIBILITY, ConfirmationMethod.DOCUMENT)]
    # No oracle: an unknown number, a wrong birth date and a 資格情報のお知らせ are one answer.
    notice = add_document(container.databases, add_qualification(
        container.databases, None, birth_date=jiro.resident.birth_date),
        kind=CoverageDocumentKind.QUALIFICATION_NOTICE)
    codes = set()
    for args in ((number, jiro.resident.birth_date + dt.timedelta(days=1)),
                 ("D000000000000", jiro.resident.birth_date),
                 (notice, jiro.resident.birth_date), ("' OR 1=1 --", jiro.resident.birth_date)):
        with pytest.raises(DocumentNotFound) as missing:
            service.check_document(clinic, *args, today=TODAY)  # type: ignore[arg-type]
        codes.add((missing.value.code, missing.value.detail))
    assert len(codes) == 1
    assert len(rows(container.databases, m.VisitRow)) == 1


def test_an_ended_or_expired_confirmation_certificate_is_invalid(
        container: Container, clerk: StaffPrincipal, service: EligibilityServiceImpl,
        clinic: Terminal) -> None:
    db = container.databases
    jiro = issue_holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    born = jiro.resident.birth_date
    change = dt.date(2025, 4, 1)
    old = add_qualification(db, jiro.resident, acquired_on=dt.date(2019, 4, 1), lost_on=change)
    ended = add_document(db, old, ended_at=dt.datetime(2025, 4, 1, tzinfo=dt.UTC))
    expired = add_document(db, add_qualification(db, None, birth_date=born),
                           issued_on=dt.date(2019, 4, 1), valid_until=dt.date(2024, 3, 31))
    result = service.check_document(clinic, expired, born, today=TODAY)
    assert result.validity is Validity.INVALID and result.consentable == ()
    # The old insurer's document after a job change: 無効・新資格あり, with the new one.
    new = add_qualification(db, jiro.resident, insurer=OTHER_INSURER, acquired_on=change)
    result = service.check_document(clinic, ended, born, today=TODAY)
    assert result.validity is Validity.INVALID_NEW_QUALIFICATION
    assert result.qualification is not None and result.qualification.id == new
    # A document still current on paper whose qualification was lost: the same answer.
    lost_doc = add_document(db, add_qualification(
        db, jiro.resident, acquired_on=dt.date(2010, 4, 1), lost_on=dt.date(2019, 4, 1)))
    result = service.check_document(clinic, lost_doc, born, today=TODAY)
    assert result.validity is Validity.INVALID_NEW_QUALIFICATION
    # Before the change the old document was 有効.
    result = service.check_document(clinic, ended, born, today=dt.date(2025, 3, 1))
    assert result.validity is Validity.INVALID  # ended is ended, whatever the day


def test_a_document_of_an_unlinked_record_names_no_person(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal) -> None:
    born = dt.date(1975, 5, 5)
    qid = add_qualification(container.databases, None, birth_date=born)
    number = add_document(container.databases, qid)
    result = service.check_document(clinic, number, born, today=TODAY)
    assert result.validity is Validity.VALID and result.consentable == ()
    visit = rows(container.databases, m.VisitRow, id=result.visit_id)[0]
    assert visit.resident_id is None
    assert rows(container.databases, m.AccessRecordRow) == []


@pytest.mark.parametrize("state", [LinkState.REVIEW, LinkState.BLOCKED])
def test_a_document_of_a_held_record_is_invalid_and_shows_nothing(
        container: Container, clerk: StaffPrincipal, service: EligibilityServiceImpl,
        clinic: Terminal, state: LinkState) -> None:
    """A REVIEW or BLOCKED record (its link in doubt) is never shown at a terminal: its
    資格確認書, current on paper and covering today, answers 無効 with no qualification, no
    person and nothing to consent to (the reception asks the insurer); audited."""
    jiro = issue_holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    born = jiro.resident.birth_date
    qid = add_qualification(container.databases, jiro.resident)
    number = add_document(container.databases, qid)
    assert service.check_document(clinic, number, born, today=TODAY).validity \
        is Validity.VALID  # while LINKED
    set_link_state(container.databases, qid, state)
    result = service.check_document(clinic, number, born, today=TODAY)
    assert (result.validity, result.qualification, result.consentable) == (
        Validity.INVALID, None, ())
    visit = rows(container.databases, m.VisitRow, id=result.visit_id)[0]
    assert (visit.resident_id, visit.qualification_id, visit.validity) == (
        None, None, "invalid")
    # Only the check while LINKED is in the person's やりとり履歴.
    assert len(service.access_entries(jiro.resident.id)) == 1
    held = rows(container.databases, m.AuditEvent, tag="insurance:document:held")
    assert [(e.actor, e.subject, e.details) for e in held] == [
        (f"terminal:{clinic.id}", f"qualification:{qid}", {"link_state": state.value})]
    # The same for a record that never had a person (a near-miss before any link).
    other = add_qualification(container.databases, None, birth_date=born)
    set_link_state(container.databases, other, state)
    result = service.check_document(clinic, add_document(container.databases, other), born,
                                    today=TODAY)
    assert (result.validity, result.qualification) == (Validity.INVALID, None)


def test_junk_from_a_client_is_a_domain_error_never_a_crash(
        service: EligibilityServiceImpl, clinic: Terminal, taro: Holder) -> None:
    from mynumber.errors import DomainError

    challenge = service.challenge(clinic)
    good = {"challenge_id": challenge.challenge_id, "certificate_pem": taro.certificate,
            "method": ConfirmationMethod.CARD_PIN, "signature": b"x" * 256}
    junk: list[dict[str, object]] = [
        {"method": "telepathy"}, {"certificate_pem": None}, {"certificate_pem": "x" * 20_000},
        {"certificate_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
        {"signature": "text"}, {"signature": b""}, {"signature": b"x" * 2000},
        {"challenge_id": None}, {"challenge_id": 12}, {"today": "2025-01-01"},
    ]
    for change in junk:
        with pytest.raises(DomainError):
            service.check_card(clinic, **{**good, **change})  # type: ignore[arg-type]
    for resident in ("1", -1, None, 2**70, True):
        with pytest.raises(InvalidInsuranceInput):
            service.card_status(resident)  # type: ignore[arg-type]
        with pytest.raises(InvalidInsuranceInput):
            service.access_entries(resident)  # type: ignore[arg-type]
    for number, born in ((None, dt.date(1990, 1, 1)), ("D1", "1990-01-01"), ("D" * 40, None)):
        with pytest.raises(DomainError):
            service.check_document(clinic, number, born)  # type: ignore[arg-type]

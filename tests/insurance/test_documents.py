"""Documents issued without application: a 資格確認書 (valid up to 5 years) for each current
insured person without a usable card, a 資格情報のお知らせ for each with one (activated *and* a
user-authentication certificate JPKI reports good now: a revoked or expired card gets the
資格確認書 back); nothing for a record in review or blocked; one current document per
qualification, never both at once (the partial unique index
``uq_documents_current_qualification``), even when runs overlap."""

from __future__ import annotations

import datetime as dt
import functools
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.codes import insurer_number
from mynumber.db import utcnow
from mynumber.insurance import models as m
from mynumber.insurance.interfaces import (
    CoverageDocumentKind,
    InvalidInsuranceInput,
    LinkState,
    LossReason,
    QualificationNotFound,
)
from mynumber.insurance.services import InsurerServiceImpl, is_document_number
from mynumber.jpki import models as jpki_models
from mynumber.jpki.interfaces import CertificateKind, RevocationReason
from tests.insurance.conftest import (
    NOW,
    STAFF,
    TODAY,
    Feed,
    Insurers,
    Person,
    enrol,
    items_of,
)
from tests.insurance.support_eligibility import issue_holder

CERT = CoverageDocumentKind.CONFIRMATION_CERTIFICATE
NOTICE = CoverageDocumentKind.QUALIFICATION_NOTICE


@functools.cache
def _public_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def auth_certificate(container: Container, resident_id: int) -> int:
    """A user-authentication certificate JPKI issues the resident (as on a new card); its
    serial."""
    issued = container.jpki.issue_certificate(resident_id, CertificateKind.AUTH,
                                              _public_key_pem(), dt.date(2035, 1, 1))
    return issued.serial


def activate(container: Container, resident_id: int, *, card: bool = True) -> None:
    """初回登録 as the eligibility side records it (a row of ``activations``), for a person
    holding a good user-authentication certificate (``card=False``: none at all)."""
    if card:
        auth_certificate(container, resident_id)
    with container.databases.unit_of_work("insurance") as session:
        session.add(m.ActivationRow(pairwise_id=f"pairwise-{resident_id}",
                                    resident_id=resident_id, activated_at=NOW, via="portal"))


def current(service: InsurerServiceImpl, qid: int) -> list[tuple[CoverageDocumentKind, dt.date]]:
    return [(d.kind, d.valid_until) for d in service.documents(qid) if d.ended_at is None]


def linked(service: InsurerServiceImpl, insurer: str, items: object, **kwargs: object) -> int:
    q = enrol(service, insurer, items, **kwargs)  # type: ignore[arg-type]
    service.link_by_search(insurer, q.id, STAFF)
    return q.id


def test_each_current_person_gets_the_document_for_their_card(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    card_holder, no_card, unlinked_person = person(), person(), person()
    activate(container, card_holder.id)
    q_card = linked(insurer_service, insurers.kyokai, items_of(card_holder))
    q_plain = linked(insurer_service, insurers.kyokai, items_of(no_card))
    q_unlinked = enrol(insurer_service, insurers.kyokai, items_of(unlinked_person)).id
    q_future = enrol(insurer_service, insurers.kyokai, items_of(no_card, name="x"),
                     acquired_on=TODAY + dt.timedelta(days=1)).id
    q_ended = enrol(insurer_service, insurers.kyokai, items_of(no_card, name="y"),
                    acquired_on=dt.date(2010, 4, 1)).id
    insurer_service.lose(insurers.kyokai, q_ended, TODAY, LossReason.RETIREMENT, STAFF)

    counts = insurer_service.issue_documents(today=TODAY)
    assert counts == {CERT: 2, NOTICE: 1}
    five_years = dt.date(2030, 6, 1)  # the day before the fifth anniversary
    assert current(insurer_service, q_card) == [(NOTICE, five_years)]
    assert current(insurer_service, q_plain) == [(CERT, five_years)]
    assert current(insurer_service, q_unlinked) == [(CERT, five_years)]
    assert insurer_service.documents(q_future) == []
    assert insurer_service.documents(q_ended) == []
    # Run again: everyone already holds the right document.
    assert insurer_service.issue_documents(today=TODAY) == {CERT: 0, NOTICE: 0}
    with pytest.raises(QualificationNotFound):
        insurer_service.documents(10_000_000)


def test_activating_the_card_replaces_the_certificate_with_the_notice(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    taro = person()
    qid = linked(insurer_service, insurers.kyokai, items_of(taro))
    insurer_service.issue_documents(today=TODAY, years=3)
    assert current(insurer_service, qid) == [(CERT, dt.date(2028, 6, 1))]
    activate(container, taro.id)
    assert insurer_service.issue_documents(today=TODAY + dt.timedelta(days=30)) == {
        CERT: 0, NOTICE: 1}
    docs = insurer_service.documents(qid)
    assert [(d.kind, d.ended_at is None) for d in docs] == [(CERT, False), (NOTICE, True)]
    assert docs[0].document_number != docs[1].document_number


def test_an_expired_certificate_is_renewed_and_validity_is_capped(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person) -> None:
    taro, jiro = person(), person()
    q1 = linked(insurer_service, insurers.kyokai, items_of(taro))
    q2 = linked(insurer_service, insurers.society, items_of(jiro))
    insurer_service.lose(insurers.society, q2, dt.date(2026, 4, 1), LossReason.RETIREMENT,
                         STAFF)
    insurer_service.issue_documents(today=TODAY, years=1)
    assert current(insurer_service, q1) == [(CERT, dt.date(2026, 6, 1))]
    # Not beyond the known end of the qualification.
    assert current(insurer_service, q2) == [(CERT, dt.date(2026, 3, 31))]
    later = dt.date(2026, 6, 2)
    assert insurer_service.issue_documents(insurers.kyokai, today=later, years=1)[CERT] == 1
    assert current(insurer_service, q1) == [(CERT, dt.date(2027, 6, 1))]
    assert len(insurer_service.documents(q1)) == 2


@pytest.mark.parametrize("years", [0, 6, -1])
def test_validity_is_at_most_five_years(insurer_service: InsurerServiceImpl,
                                        years: int) -> None:
    with pytest.raises(InvalidInsuranceInput) as caught:
        insurer_service.issue_documents(today=TODAY, years=years)
    assert caught.value.field == "years"


def test_document_numbers_carry_a_check_digit(insurer_service: InsurerServiceImpl,
                                              insurers: Insurers, person: Person) -> None:
    ids = [enrol(insurer_service, insurers.kyokai, items_of(person())).id for _ in range(5)]
    insurer_service.issue_documents(today=TODAY)
    numbers = [insurer_service.documents(qid)[0].document_number for qid in ids]
    assert len(set(numbers)) == 5
    for number in numbers:
        assert len(number) == 16 and number.isdigit()
        assert insurer_number.calc_check_digit(number[:-1]) == number[-1]
        assert is_document_number(number)
        assert not is_document_number(number[:-1] + str((int(number[-1]) + 1) % 10))


def test_the_database_refuses_two_current_documents(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    qid = enrol(insurer_service, insurers.kyokai, items_of(person())).id
    insurer_service.issue_documents(today=TODAY)
    with pytest.raises(IntegrityError):
        with container.databases.unit_of_work("insurance") as session:
            session.add(m.DocumentRow(kind=NOTICE.value, qualification_id=qid,
                                      document_number="1234567890123452", issued_on=TODAY,
                                      valid_until=TODAY, ended_at=None))


def test_parallel_runs_leave_one_current_document_each(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    people = [person() for _ in range(8)]
    for p in people[:4]:
        activate(container, p.id)
    ids = [linked(insurer_service, insurers.kyokai, items_of(p)) for p in people]
    runs = 4
    barrier = threading.Barrier(runs)
    totals: list[dict[CoverageDocumentKind, int] | Exception] = []

    def run() -> None:
        barrier.wait()
        try:
            totals.append(insurer_service.issue_documents(today=TODAY))
        except Exception as exc:  # pragma: no cover - shown in the assertion
            totals.append(exc)

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(t, dict) for t in totals), totals
    # Every document issued once in all: the runs that came second found them issued.
    assert sum(t[CERT] for t in totals) == 4  # type: ignore[index]
    assert sum(t[NOTICE] for t in totals) == 4  # type: ignore[index]
    with container.databases.unit_of_work("insurance") as session:
        per_qualification = dict(session.execute(
            select(m.DocumentRow.qualification_id, func.count())
            .where(m.DocumentRow.ended_at.is_(None))
            .group_by(m.DocumentRow.qualification_id)).all())
    assert per_qualification == dict.fromkeys(ids, 1)


def test_a_revoked_card_gets_the_confirmation_certificate_back(
        container: Container, clerk: StaffPrincipal, insurer_service: InsurerServiceImpl,
        insurers: Insurers, feed: Feed) -> None:
    """A real card: issued by the card context, activated through the eligibility service,
    then reported lost (JPKI revokes its certificates)."""
    holder = issue_holder(container, clerk)
    feed.deliver()
    qid = linked(insurer_service, insurers.kyokai, items_of(holder.resident))
    container.eligibility.activate_for_resident(holder.resident.id, holder.serial)
    assert insurer_service.issue_documents(insurers.kyokai, today=TODAY) == {CERT: 0, NOTICE: 1}
    container.jpki.revoke(holder.serial, RevocationReason.LOST, "test:lost-card")
    later = TODAY + dt.timedelta(days=1)
    assert insurer_service.issue_documents(insurers.kyokai, today=later) == {CERT: 1, NOTICE: 0}
    docs = insurer_service.documents(qid)
    assert [(d.kind, d.ended_at is None) for d in docs] == [(NOTICE, False), (CERT, True)]
    # Nothing more to do on the next run.
    assert insurer_service.issue_documents(insurers.kyokai, today=later) == {CERT: 0, NOTICE: 0}


def test_an_expired_or_missing_certificate_is_no_usable_card(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    expired, never, good = person(), person(), person()
    activate(container, good.id)
    activate(container, never.id, card=False)  # an activation, but no certificate at all
    serial = auth_certificate(container, expired.id)
    activate(container, expired.id, card=False)
    q_expired, q_never, q_good = (linked(insurer_service, insurers.kyokai, items_of(p))
                                  for p in (expired, never, good))
    assert insurer_service.issue_documents(today=TODAY) == {CERT: 1, NOTICE: 2}
    assert current(insurer_service, q_never)[0][0] is CERT
    # The certificate's validity ends (no renewal): JPKI reports it expired.
    with container.databases.unit_of_work("jpki") as session:
        session.execute(update(jpki_models.Certificate)
                        .where(jpki_models.Certificate.serial == str(serial))
                        .values(not_after=utcnow() - dt.timedelta(minutes=1)))
    assert insurer_service.issue_documents(today=TODAY) == {CERT: 1, NOTICE: 0}
    assert current(insurer_service, q_expired)[0][0] is CERT
    assert current(insurer_service, q_good)[0][0] is NOTICE


def test_records_in_review_or_blocked_get_no_document(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    """The insurer resolves them first: nothing new, nothing renewed, nothing replaced."""
    taro, hanako = person(), person(given_name="花子", given_name_kana="ハナコ")
    activate(container, taro.id)
    blocked = linked(insurer_service, insurers.kyokai, items_of(taro))
    insurer_service.issue_documents(today=TODAY, years=1)
    (notice,) = insurer_service.documents(blocked)
    assert notice.kind is NOTICE
    with container.databases.unit_of_work("insurance") as session:
        session.execute(update(m.QualificationRow).where(m.QualificationRow.id == blocked)
                        .values(birth_date="1901-01-01"))
    assert insurer_service.recheck().blocked_ids == (blocked,)
    review = enrol(insurer_service, insurers.society,
                   items_of(hanako, address="東京都新宿区どこにもない町1番")).id
    assert insurer_service.link_by_search(insurers.society, review, STAFF
                                          ).state is LinkState.REVIEW
    later = dt.date(2026, 6, 2)  # the notice has expired: it would be renewed
    assert insurer_service.issue_documents(today=later) == {CERT: 0, NOTICE: 0}
    assert insurer_service.documents(review) == []
    assert insurer_service.documents(blocked) == [notice]

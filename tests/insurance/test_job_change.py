"""Job changes: a new insurer's qualification replaces the old one without a gap or an overlap,
one open qualification per person even when insurers link at once (the partial unique index
``uq_qualifications_open_resident``), loss of qualification, and a death recorded in the
registry ending the open qualification. Only a *linked* record is the person's: a blocked one
(the re-check distrusts its link) is never closed by the person's job change or death, and
does not stand in the way of their next link."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.insurance import models as m
from mynumber.insurance.interfaces import (
    CoverageDocumentKind,
    InvalidInsuranceInput,
    LinkState,
    LossReason,
    OverlappingQualification,
    Qualification,
    ReviewResolution,
)
from mynumber.insurance.services import InsurerServiceImpl
from mynumber.registry.interfaces import ResidentRecord
from tests.insurance.conftest import STAFF, TODAY, Feed, Insurers, Person, enrol, items_of


def assert_no_gap_no_overlap(history: list[Qualification]) -> None:
    """The person's qualifications, oldest first: each ends where the next starts, and only
    the last is open."""
    assert history, "no qualification at all"
    for before, after in itertools.pairwise(history):
        assert before.lost_on == after.acquired_on, (before, after)
    assert history[-1].lost_on is None
    assert sum(q.lost_on is None for q in history) == 1


def test_a_job_change_leaves_no_gap_and_no_overlap(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person) -> None:
    taro = person()
    first = enrol(insurer_service, insurers.kyokai, items_of(taro),
                  acquired_on=dt.date(2015, 4, 1))
    insurer_service.link_by_search(insurers.kyokai, first.id, STAFF)
    second = enrol(insurer_service, insurers.society, items_of(taro),
                   acquired_on=dt.date(2021, 10, 1))
    result = insurer_service.link_by_search(insurers.society, second.id, STAFF)
    assert result.state is LinkState.LINKED and result.replaced_qualification_id == first.id
    third = enrol(insurer_service, insurers.shinjuku, items_of(taro),
                  acquired_on=dt.date(2024, 7, 16))
    assert insurer_service.link_by_search(insurers.shinjuku, third.id, STAFF
                                          ).replaced_qualification_id == second.id

    history = insurer_service.history(taro.id)
    assert [q.id for q in history] == [first.id, second.id, third.id]
    assert_no_gap_no_overlap(history)
    assert history[0].lost_on == dt.date(2021, 10, 1)
    assert history[0].loss_reason is LossReason.NEW_QUALIFICATION
    # On the day of the change exactly one qualification covers the person, the new one.
    for day in (dt.date(2021, 9, 30), dt.date(2021, 10, 1), dt.date(2024, 7, 15),
                dt.date(2024, 7, 16)):
        assert len([q for q in history if q.covers(day)]) == 1
    assert [q.id for q in history if q.covers(dt.date(2021, 10, 1))] == [second.id]


@pytest.mark.parametrize("acquired_on", [dt.date(2015, 4, 1), dt.date(2010, 1, 1)])
def test_a_new_qualification_starting_on_or_before_the_old_one_is_refused(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container, acquired_on: dt.date) -> None:
    taro = person()
    first = enrol(insurer_service, insurers.kyokai, items_of(taro),
                  acquired_on=dt.date(2015, 4, 1))
    insurer_service.link_by_search(insurers.kyokai, first.id, STAFF)
    other = enrol(insurer_service, insurers.society, items_of(taro), acquired_on=acquired_on)
    with pytest.raises(OverlappingQualification):
        insurer_service.link_by_search(insurers.society, other.id, STAFF)
    (only,) = insurer_service.history(taro.id)
    assert only.id == first.id and only.lost_on is None
    with container.databases.unit_of_work("insurance") as session:
        refused = session.scalars(select(m.AuditEvent.reason).where(
            m.AuditEvent.tag == "insurance:qualification:link_refused")).all()
    assert refused == ["insurance_overlapping_qualification"]


def test_an_ended_record_that_overlaps_the_history_is_refused(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person) -> None:
    taro = person()
    old = enrol(insurer_service, insurers.kyokai, items_of(taro), acquired_on=dt.date(2010, 4, 1))
    insurer_service.lose(insurers.kyokai, old.id, dt.date(2016, 4, 1), LossReason.RETIREMENT,
                         STAFF)
    insurer_service.link_by_search(insurers.kyokai, old.id, STAFF)
    now = enrol(insurer_service, insurers.society, items_of(taro),
                acquired_on=dt.date(2015, 4, 1))  # starts while the old one still ran
    with pytest.raises(OverlappingQualification):
        insurer_service.link_by_search(insurers.society, now.id, STAFF)
    later = enrol(insurer_service, insurers.shinjuku, items_of(taro),
                  acquired_on=dt.date(2016, 4, 1))
    assert insurer_service.link_by_search(insurers.shinjuku, later.id, STAFF
                                          ).state is LinkState.LINKED
    assert_no_gap_no_overlap(insurer_service.history(taro.id))


def test_the_database_refuses_a_second_open_qualification(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    taro = person()
    first = enrol(insurer_service, insurers.kyokai, items_of(taro))
    insurer_service.link_by_search(insurers.kyokai, first.id, STAFF)
    second = enrol(insurer_service, insurers.society, items_of(taro),
                   acquired_on=dt.date(2022, 1, 1))
    # Bypassing the service: the partial unique index alone stops it.
    with pytest.raises(IntegrityError):
        with container.databases.unit_of_work("insurance") as session:
            row = session.get(m.QualificationRow, second.id)
            assert row is not None
            row.resident_id, row.link_state = taro.id, "linked"
    # Once the first has ended, the second may be open.
    with container.databases.unit_of_work("insurance") as session:
        for qid, values in ((first.id, {"lost_on": dt.date(2022, 1, 1)}),
                            (second.id, {"resident_id": taro.id, "link_state": "linked"})):
            row = session.get(m.QualificationRow, qid)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)
            session.flush()


def _race(work: list[Callable[[], object]]) -> list[object]:
    barrier = threading.Barrier(len(work))
    results: list[object] = [None] * len(work)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work[i]()
        except Exception as exc:  # the refusal is the result
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("person_lock", [True, False], ids=["locked", "index-only"])
@pytest.mark.parametrize("round_", range(3))
def test_parallel_links_of_one_person_leave_one_open_and_no_gap(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        monkeypatch: pytest.MonkeyPatch, person_lock: bool, round_: int) -> None:
    """Several insurers link the same person at once. Without the per-person lock (the
    ``index-only`` case) the partial unique index and the single retry still leave exactly one
    open qualification, with the intervals neither overlapping nor leaving a gap."""
    if not person_lock:
        monkeypatch.setattr(insurer_service, "_lock_person", lambda session, rid: None)
    taro = person()
    old = enrol(insurer_service, insurers.kyokai, items_of(taro), acquired_on=dt.date(2015, 4, 1))
    insurer_service.link_by_search(insurers.kyokai, old.id, STAFF)
    starts = [dt.date(2025, 4, 1), dt.date(2025, 5, 1), dt.date(2025, 5, 1),
              dt.date(2025, 6, 1)]
    numbers = [insurers.society, insurers.shinjuku, insurers.nhi_society, insurers.shibuya]
    records = [enrol(insurer_service, n, items_of(taro), acquired_on=s)
               for n, s in zip(numbers, starts, strict=True)]
    results = _race([
        (lambda n=n, q=q: insurer_service.link_by_search(n, q.id, STAFF))
        for n, q in zip(numbers, records, strict=True)])
    for r in results:
        assert not isinstance(r, Exception) or isinstance(r, OverlappingQualification), r
    history = insurer_service.history(taro.id)
    assert history[0].id == old.id
    assert_no_gap_no_overlap(history)
    # Whatever the order, the latest start won (it can always replace an earlier one).
    assert history[-1].acquired_on == dt.date(2025, 6, 1)
    assert len(insurer_service.open_qualifications(taro.id)) == 1


def test_two_insurers_link_a_newcomer_at_once(insurer_service: InsurerServiceImpl,
                                              insurers: Insurers, person: Person,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """No open qualification yet: both try to take the person's one open slot."""
    monkeypatch.setattr(insurer_service, "_lock_person", lambda session, rid: None)
    for _ in range(3):
        hanako = person()
        a = enrol(insurer_service, insurers.kyokai, items_of(hanako),
                  acquired_on=dt.date(2025, 4, 1))
        b = enrol(insurer_service, insurers.society, items_of(hanako),
                  acquired_on=dt.date(2025, 4, 1))
        results = _race([lambda: insurer_service.link_by_search(insurers.kyokai, a.id, STAFF),
                         lambda: insurer_service.link_by_search(insurers.society, b.id,
                                                                STAFF)])
        assert sum(isinstance(r, OverlappingQualification) for r in results) == 1, results
        assert len(insurer_service.history(hanako.id)) == 1


def test_lose_ends_the_qualification_and_its_document(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person) -> None:
    taro = person()
    q = enrol(insurer_service, insurers.kyokai, items_of(taro), acquired_on=dt.date(2020, 4, 1))
    insurer_service.link_by_search(insurers.kyokai, q.id, STAFF)
    insurer_service.issue_documents(insurers.kyokai, today=TODAY)
    (doc,) = insurer_service.documents(q.id)
    assert doc.kind is CoverageDocumentKind.CONFIRMATION_CERTIFICATE and doc.ended_at is None
    with pytest.raises(InvalidInsuranceInput):
        insurer_service.lose(insurers.kyokai, q.id, dt.date(2020, 4, 1), LossReason.RETIREMENT,
                             STAFF)
    lost = insurer_service.lose(insurers.kyokai, q.id, dt.date(2025, 7, 1),
                                LossReason.RETIREMENT, STAFF)
    assert (lost.lost_on, lost.loss_reason) == (dt.date(2025, 7, 1), LossReason.RETIREMENT)
    assert insurer_service.documents(q.id)[0].ended_at is not None
    assert insurer_service.open_qualifications(taro.id) == []
    with pytest.raises(InvalidInsuranceInput) as caught:
        insurer_service.lose(insurers.kyokai, q.id, dt.date(2025, 8, 1), LossReason.OTHER,
                             STAFF)
    assert caught.value.extra["rule"] == "already_lost"


def test_a_recorded_death_ends_the_open_qualification(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person, feed: Feed,
        container: Container, clerk: StaffPrincipal) -> None:
    taro, jiro = person(), person(given_name="次郎", given_name_kana="ジロウ")
    q = enrol(insurer_service, insurers.kyokai, items_of(taro), acquired_on=dt.date(2020, 4, 1))
    other = enrol(insurer_service, insurers.kyokai, items_of(jiro))
    insurer_service.link_by_search(insurers.kyokai, q.id, STAFF)
    insurer_service.link_by_search(insurers.kyokai, other.id, STAFF)
    container.registry.register_death(clerk, taro.id, dt.date(2025, 5, 20))
    feed.deliver()
    (ended,) = insurer_service.history(taro.id)
    assert ended.lost_on == dt.date(2025, 5, 21)  # 資格喪失日: the day after the death
    assert ended.loss_reason is LossReason.DEATH
    assert insurer_service.open_qualifications(jiro.id)[0].id == other.id
    # Delivered again (at least once): nothing changes.
    assert insurer_service.end_for_death(taro.id, dt.date(2025, 5, 20)) == []
    assert insurer_service.history(taro.id) == [ended]


def _blocked(service: InsurerServiceImpl, insurer: str, container: Container,
             record: ResidentRecord, **values: str) -> int:
    """A record linked on four items, then changed by the insurer so that the re-check blocks
    it (as if it had been a mislink all along)."""
    q = enrol(service, insurer, items_of(record), acquired_on=dt.date(2020, 4, 1))
    assert service.link_by_search(insurer, q.id, STAFF).state is LinkState.LINKED
    with container.databases.unit_of_work("insurance") as session:
        session.execute(update(m.QualificationRow).where(m.QualificationRow.id == q.id)
                        .values(**values))
    assert service.recheck().blocked_ids == (q.id,)
    return q.id


def test_a_job_change_never_closes_a_blocked_record_that_belongs_to_someone_else(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    """The reviewer's case: 協会けんぽ's record linked to Taro is really Jiro's. Taro's new job
    links Taro's new record without touching it; resolved to Jiro, Jiro's qualification is
    still open (he never left 協会けんぽ)."""
    taro, jiro = person(), person(given_name="次郎", given_name_kana="ジロウ")
    suspect = _blocked(insurer_service, insurers.kyokai, container, taro,
                       name="山田 次郎", name_kana="ヤマダ ジロウ")
    assert insurer_service.open_qualifications(taro.id) == []
    assert insurer_service.history(taro.id) == []
    new = enrol(insurer_service, insurers.society, items_of(taro),
                acquired_on=dt.date(2025, 4, 1))
    result = insurer_service.link_by_search(insurers.society, new.id, STAFF)
    assert result.state is LinkState.LINKED and result.replaced_qualification_id is None
    (mine,) = insurer_service.history(taro.id)
    assert mine.id == new.id and mine.lost_on is None
    with container.databases.unit_of_work("insurance") as session:
        row = session.get(m.QualificationRow, suspect)
        assert row is not None
        assert (row.link_state, row.lost_on, row.loss_reason) == ("blocked", None, None)
    (item,) = insurer_service.reviews(insurers.kyokai)
    insurer_service.resolve_review(insurers.kyokai, item.id, ReviewResolution.CORRECTED, STAFF,
                                   corrected=items_of(jiro))
    (moved,) = insurer_service.open_qualifications(jiro.id)
    assert (moved.id, moved.link_state, moved.lost_on) == (suspect, LinkState.LINKED, None)
    assert [q.id for q in insurer_service.open_qualifications(taro.id)] == [new.id]


def test_a_death_never_ends_a_blocked_record(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person, feed: Feed,
        container: Container, clerk: StaffPrincipal) -> None:
    taro, jiro = person(), person(given_name="次郎", given_name_kana="ジロウ")
    suspect = _blocked(insurer_service, insurers.kyokai, container, taro,
                       name="山田 次郎", name_kana="ヤマダ ジロウ")
    container.registry.register_death(clerk, taro.id, dt.date(2025, 5, 1))
    feed.deliver()  # the insurer side's subscriber calls end_for_death
    assert insurer_service.end_for_death(taro.id, dt.date(2025, 5, 1)) == []
    (item,) = insurer_service.reviews(insurers.kyokai)
    insurer_service.resolve_review(insurers.kyokai, item.id, ReviewResolution.CORRECTED, STAFF,
                                   corrected=items_of(jiro))
    (moved,) = insurer_service.open_qualifications(jiro.id)
    assert (moved.id, moved.lost_on, moved.loss_reason) == (suspect, None, None)


def test_a_blocked_record_confirmed_after_a_job_change_ends_where_the_new_one_begins(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    """The record was the person's after all (a typo the insurer corrects), but the person
    changed jobs while it was blocked: linked again, it ends where the new one starts."""
    taro = person()
    old = _blocked(insurer_service, insurers.kyokai, container, taro, birth_date="1901-01-01")
    new = enrol(insurer_service, insurers.society, items_of(taro),
                acquired_on=dt.date(2025, 4, 1))
    assert insurer_service.link_by_search(insurers.society, new.id, STAFF
                                          ).state is LinkState.LINKED
    (item,) = insurer_service.reviews(insurers.kyokai)
    insurer_service.resolve_review(insurers.kyokai, item.id, ReviewResolution.CORRECTED, STAFF,
                                   corrected=items_of(taro))
    history = insurer_service.history(taro.id)
    assert [q.id for q in history] == [old, new.id]
    assert_no_gap_no_overlap(history)
    assert (history[0].link_state, history[0].loss_reason) == (
        LinkState.LINKED, LossReason.NEW_QUALIFICATION)
    with container.databases.unit_of_work("insurance") as session:
        tags = session.scalars(select(m.AuditEvent.tag).where(
            m.AuditEvent.subject == f"qualification:{old}")).all()
    assert "insurance:qualification:unblock" in tags


def test_the_index_counts_linked_records_only(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    """Bypassing the service: an open blocked record naming the person and an open linked one
    may coexist; unblocking the first is then refused by the index itself."""
    taro = person()
    blocked = _blocked(insurer_service, insurers.kyokai, container, taro,
                       birth_date="1901-01-01")
    other = enrol(insurer_service, insurers.society, items_of(taro),
                  acquired_on=dt.date(2022, 1, 1))
    with container.databases.unit_of_work("insurance") as session:
        row = session.get(m.QualificationRow, other.id)
        assert row is not None
        row.resident_id, row.link_state = taro.id, "linked"
    with pytest.raises(IntegrityError):
        with container.databases.unit_of_work("insurance") as session:
            row = session.get(m.QualificationRow, blocked)
            assert row is not None
            row.link_state = "linked"

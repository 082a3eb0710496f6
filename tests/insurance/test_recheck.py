"""The mass re-check: every linked record compared with 住基ネット by its 住民票コード on all
four items, in batches; a mismatch blocks the record and opens a ``recheck_mismatch`` review
item naming the items, until the insurer resolves it. A 住民票コード 住基ネット does not know
blocks too; no answer at all (the insurer's agency refused, an outage) blocks nothing: the
record is counted ``unavailable``."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.codes import resident_code
from mynumber.insurance import models as m
from mynumber.insurance.interfaces import (
    InvalidInsuranceInput,
    LinkBlocked,
    LinkState,
    ReviewReason,
    ReviewResolution,
)
from mynumber.insurance.services import InsurerServiceImpl
from mynumber.juki.interfaces import QueryResult
from mynumber.network.interfaces import AgencyStatus
from mynumber.registry.interfaces import ResidentRecord
from tests.insurance.conftest import STAFF, Feed, Insurers, Person, enrol, items_of

MOVED_TO = "東京都新宿区高田馬場三丁目3番3号"


def linked(service: InsurerServiceImpl, insurer: str, record: ResidentRecord,
           **kwargs: object) -> int:
    q = enrol(service, insurer, items_of(record), **kwargs)  # type: ignore[arg-type]
    assert service.link_by_search(insurer, q.id, STAFF).state is LinkState.LINKED
    return q.id


def state(service: InsurerServiceImpl, insurer: str, qid: int) -> LinkState:
    (q,) = [x for x in service.qualifications(insurer, limit=1000) if x.id == qid]
    return q.link_state


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_recheck_blocks_records_that_no_longer_match(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person, feed: Feed,
        container: Container, clerk: StaffPrincipal, batch: int) -> None:
    people = [person() for _ in range(4)]
    ids = [linked(insurer_service, insurers.kyokai, p) for p in people[:3]]
    other = linked(insurer_service, insurers.society, people[3])
    # One person moves (the insurer's record still has the old address); another record was
    # linked and then mistyped by the insurer (its birth date now differs).
    container.registry.change_address(clerk, people[0].id, MOVED_TO, "1690075",
                                      dt.date(2025, 5, 1))
    feed.deliver()
    with container.databases.unit_of_work("insurance") as session:
        session.execute(update(m.QualificationRow).where(m.QualificationRow.id == ids[1])
                        .values(birth_date="1901-01-01"))

    report = insurer_service.recheck(batch=batch)
    assert (report.checked, report.still_matching, report.blocked) == (4, 2, 2)
    assert sorted(report.blocked_ids) == sorted([ids[0], ids[1]])
    assert state(insurer_service, insurers.kyokai, ids[0]) is LinkState.BLOCKED
    assert state(insurer_service, insurers.kyokai, ids[2]) is LinkState.LINKED
    assert state(insurer_service, insurers.society, other) is LinkState.LINKED
    reviews = {r.qualification_id: r for r in insurer_service.reviews(insurers.kyokai)}
    assert reviews[ids[0]].reason is ReviewReason.RECHECK_MISMATCH
    assert reviews[ids[0]].differing == ("address",)
    assert reviews[ids[1]].differing == ("birth_date",)
    # Run again: blocked records are not linked any more, nothing new is blocked.
    again = insurer_service.recheck(batch=batch)
    assert (again.checked, again.blocked) == (2, 0)


def test_recheck_of_one_insurer(insurer_service: InsurerServiceImpl, insurers: Insurers,
                                person: Person, feed: Feed, container: Container,
                                clerk: StaffPrincipal) -> None:
    a, b = person(), person()
    qa = linked(insurer_service, insurers.kyokai, a)
    qb = linked(insurer_service, insurers.society, b)
    for who in (a, b):
        container.registry.change_address(clerk, who.id, MOVED_TO, "1690075",
                                          dt.date(2025, 5, 1))
    feed.deliver()
    report = insurer_service.recheck(insurers.society)
    assert (report.checked, report.blocked, report.blocked_ids) == (1, 1, (qb,))
    assert state(insurer_service, insurers.kyokai, qa) is LinkState.LINKED
    with pytest.raises(InvalidInsuranceInput):
        insurer_service.recheck(batch=0)


def test_a_blocked_record_waits_for_its_review(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person, feed: Feed,
        container: Container, clerk: StaffPrincipal) -> None:
    taro = person()
    qid = linked(insurer_service, insurers.kyokai, taro)
    container.registry.change_address(clerk, taro.id, MOVED_TO, "1690075", dt.date(2025, 5, 1))
    feed.deliver()
    insurer_service.recheck()
    with pytest.raises(LinkBlocked):
        insurer_service.link_by_search(insurers.kyokai, qid, STAFF)
    (item,) = insurer_service.reviews(insurers.kyokai)
    # Corrected with a wrong address again: still blocked, a new review item.
    insurer_service.resolve_review(insurers.kyokai, item.id, ReviewResolution.CORRECTED, STAFF,
                                   corrected=items_of(taro, address="東京都新宿区どこか1番"))
    assert state(insurer_service, insurers.kyokai, qid) is LinkState.BLOCKED
    (item,) = insurer_service.reviews(insurers.kyokai)
    assert item.reason is ReviewReason.NOT_FOUND
    # Corrected with the new address: linked again, to the same person.
    moved = dataclasses.replace(taro, address=MOVED_TO)
    insurer_service.resolve_review(insurers.kyokai, item.id, ReviewResolution.CORRECTED, STAFF,
                                   corrected=items_of(moved))
    assert state(insurer_service, insurers.kyokai, qid) is LinkState.LINKED
    assert insurer_service.open_qualifications(taro.id)[0].id == qid
    assert insurer_service.recheck().blocked == 0


def test_a_blocked_record_dismissed_leaves_the_person(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person, feed: Feed,
        container: Container, clerk: StaffPrincipal) -> None:
    taro = person()
    qid = linked(insurer_service, insurers.kyokai, taro)
    container.registry.change_address(clerk, taro.id, MOVED_TO, "1690075", dt.date(2025, 5, 1))
    feed.deliver()
    insurer_service.recheck()
    (item,) = insurer_service.reviews(insurers.kyokai)
    insurer_service.resolve_review(insurers.kyokai, item.id, ReviewResolution.DISMISSED, STAFF)
    assert state(insurer_service, insurers.kyokai, qid) is LinkState.UNLINKED
    assert insurer_service.open_qualifications(taro.id) == []
    # The person's slot is free: another insurer links them.
    moved = dataclasses.replace(taro, address=MOVED_TO)
    assert insurer_service.link_by_search(
        insurers.society,
        enrol(insurer_service, insurers.society, items_of(moved)).id, STAFF
    ).state is LinkState.LINKED


def test_a_blocked_record_corrected_to_someone_else_moves_to_them(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    taro, jiro = person(), person(given_name="次郎", given_name_kana="ジロウ")
    qid = linked(insurer_service, insurers.kyokai, taro)
    with container.databases.unit_of_work("insurance") as session:
        session.execute(update(m.QualificationRow).where(m.QualificationRow.id == qid)
                        .values(name="山田 次郎"))
    assert insurer_service.recheck().blocked_ids == (qid,)
    (item,) = insurer_service.reviews(insurers.kyokai)
    assert item.differing == ("name",)
    insurer_service.resolve_review(insurers.kyokai, item.id, ReviewResolution.CORRECTED, STAFF,
                                   corrected=items_of(jiro))
    assert insurer_service.open_qualifications(taro.id) == []
    assert insurer_service.open_qualifications(jiro.id)[0].id == qid


def test_no_answer_from_juki_blocks_nothing(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container) -> None:
    """The insurer's agency suspended in the network directory: 住基ネット refuses (and records)
    every query; the records are not judged, and are checked again once it answers."""
    a, b = person(), person()
    qa = linked(insurer_service, insurers.kyokai, a)
    qb = linked(insurer_service, insurers.society, b)
    container.network.set_agency_status("test:operator", "kyokai_kenpo",
                                        AgencyStatus.SUSPENDED, "test: suspended")
    container.juki._agencies.clear()  # 住基ネット keeps directory entries for a minute
    report = insurer_service.recheck()
    assert (report.checked, report.still_matching, report.blocked, report.unavailable) == (
        2, 1, 0, 1)
    assert state(insurer_service, insurers.kyokai, qa) is LinkState.LINKED
    assert insurer_service.reviews(insurers.kyokai) == []
    with container.databases.unit_of_work("insurance") as session:
        run = session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.tag == "insurance:recheck:run")).one()
    assert run.details["unavailable"] == 1
    container.network.set_agency_status("test:operator", "kyokai_kenpo",
                                        AgencyStatus.ACTIVE, "test: back")
    container.juki._agencies.clear()
    again = insurer_service.recheck()
    assert (again.checked, again.still_matching, again.unavailable) == (2, 2, 0)
    assert state(insurer_service, insurers.society, qb) is LinkState.LINKED


class _Down:
    """住基ネット unreachable: a stand-in whose query fails as a lost database connection
    does (the real service's behaviour when its database is down)."""

    def __init__(self, real: object) -> None:
        self.real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)

    def by_code(self, agency_id: str, use_id: str, resident_code: str) -> QueryResult:
        raise OperationalError("SELECT 1", {}, ConnectionError("connection refused"))


def test_an_outage_blocks_nothing(insurer_service: InsurerServiceImpl, insurers: Insurers,
                                  person: Person) -> None:
    ids = [linked(insurer_service, insurers.kyokai, person()) for _ in range(2)]
    real = insurer_service.juki
    insurer_service.juki = _Down(real)  # type: ignore[assignment]
    try:
        report = insurer_service.recheck(batch=1)
    finally:
        insurer_service.juki = real
    assert (report.checked, report.blocked, report.unavailable) == (2, 0, 2)
    assert all(state(insurer_service, insurers.kyokai, q) is LinkState.LINKED for q in ids)


def test_a_code_juki_does_not_know_blocks(insurer_service: InsurerServiceImpl,
                                          insurers: Insurers, person: Person,
                                          container: Container) -> None:
    qid = linked(insurer_service, insurers.kyokai, person())
    unknown = "9" * 9 + "0"
    unknown += resident_code.calc_check_digit(unknown)
    with container.databases.unit_of_work("insurance") as session:
        session.execute(update(m.QualificationRow).where(m.QualificationRow.id == qid)
                        .values(resident_code=unknown))
    report = insurer_service.recheck()
    assert (report.blocked_ids, report.unavailable) == ((qid,), 0)
    (item,) = insurer_service.reviews(insurers.kyokai)
    assert item.differing == ("name", "birth_date", "sex", "address")

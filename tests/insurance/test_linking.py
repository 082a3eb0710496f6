"""Linking a record to the resident only on all four items: by 住基ネット's four-item search, or
by the number the insured person gave checked against the four items. Near-misses go to the
review queue with a reason, never to a link; kana + birth date + sex alone is refused by the
API itself."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.codes import individual_number
from mynumber.insurance import models as m
from mynumber.insurance.interfaces import (
    AlreadyLinked,
    FourItemsRequired,
    InvalidInsuranceInput,
    LinkRoute,
    LinkState,
    PersonItems,
    ReviewNotFound,
    ReviewReason,
    ReviewResolution,
)
from mynumber.insurance.services import InsurerServiceImpl, differing_items, reason_for
from mynumber.registry.interfaces import ResidentRecord, Sex
from tests.insurance.conftest import (
    STAFF,
    Feed,
    Insurers,
    Person,
    enrol,
    items_of,
    new_person,
)

BORN = dt.date(1985, 7, 7)


def resident_of(container: Container, qualification_id: int) -> int | None:
    with container.databases.unit_of_work("insurance") as session:
        row = session.get(m.QualificationRow, qualification_id)
        assert row is not None
        return row.resident_id


def juki_queries(container: Container) -> int:
    return len(container.juki.queries(limit=10_000))


def number_of(container: Container, clerk: StaffPrincipal, record: ResidentRecord) -> str:
    return container.registry.reveal_number(clerk, record.id, "test: the number the person gave")


@pytest.fixture
def twins(person: Person) -> tuple[ResidentRecord, ResidentRecord]:
    """Two different people with the same kanji and kana name, birth date and sex, at
    different addresses: the 2021-2023 mislink pattern."""
    a = person(family_name="佐藤", given_name="翔太", family_name_kana="サトウ",
               given_name_kana="ショウタ", birth_date=BORN, sex=Sex.MALE,
               address="東京都新宿区西新宿二丁目8番1号")
    b = person(family_name="佐藤", given_name="翔太", family_name_kana="サトウ",
               given_name_kana="ショウタ", birth_date=BORN, sex=Sex.MALE,
               address="東京都新宿区四谷一丁目5番3号")
    return a, b


def test_search_links_on_all_four_items(insurer_service: InsurerServiceImpl,
                                        insurers: Insurers, person: Person,
                                        container: Container) -> None:
    taro = person()
    # Written as people write: full-width digits, kanji numbers, spaces, 男.
    q = enrol(insurer_service, insurers.kyokai, items_of(
        taro, name="山田　太郎", name_kana="やまだ たろう", sex="男",
        address="東京都新宿区西新宿２丁目８番１号"))
    result = insurer_service.link_by_search(insurers.kyokai, q.id, STAFF)
    assert result.state is LinkState.LINKED and result.route is LinkRoute.SEARCH
    assert result.reason is None and result.replaced_qualification_id is None
    assert resident_of(container, q.id) == taro.id
    assert insurer_service.open_qualifications(taro.id)[0].id == q.id
    # 住基ネット recorded the insurer's query; the resident sees it in the disclosure.
    entries = container.juki.disclosure(taro.id)
    assert [(e.agency_id, e.use_id) for e in entries] == [
        ("kyokai_kenpo", "health-insurance-kyokai")]
    with pytest.raises(AlreadyLinked):
        insurer_service.link_by_search(insurers.kyokai, q.id, STAFF)


@pytest.mark.parametrize("insurer_attr", ["shinjuku", "society", "nhi_society", "late"])
def test_each_insurer_kind_asks_under_its_permitted_use(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        insurer_attr: str) -> None:
    someone = person(birth_date=dt.date(1940, 3, 3))
    q = enrol(insurer_service, getattr(insurers, insurer_attr), items_of(someone))
    result = insurer_service.link_by_search(getattr(insurers, insurer_attr), q.id, STAFF)
    assert result.state is LinkState.LINKED


@pytest.mark.parametrize("items", [
    # kana + birth date + sex: exactly what mislinked people in 2021-2023
    PersonItems(name_kana="サトウ ショウタ", birth_date=BORN.isoformat(), sex="male"),
    PersonItems(name="佐藤 翔太", name_kana="サトウ ショウタ", birth_date=BORN.isoformat(),
                sex="male"),
    PersonItems(birth_date=BORN.isoformat(), sex="male", address="東京都新宿区西新宿二丁目8番1号"),
    PersonItems(name_kana="サトウ ショウタ", sex="male", address="東京都新宿区西新宿二丁目8番1号"),
    PersonItems(name_kana="サトウ ショウタ", birth_date=BORN.isoformat(),
                address="東京都新宿区西新宿二丁目8番1号"),
])
def test_a_three_item_search_is_refused_before_asking(
        insurer_service: InsurerServiceImpl, insurers: Insurers, container: Container,
        twins: tuple[ResidentRecord, ResidentRecord], clerk: StaffPrincipal,
        items: PersonItems) -> None:
    q = enrol(insurer_service, insurers.kyokai, items)
    asked = juki_queries(container)
    with pytest.raises(FourItemsRequired) as caught:
        insurer_service.link_by_search(insurers.kyokai, q.id, STAFF)
    assert caught.value.code == "insurance_four_items_required"
    # Nor through the number: the record still lacks an item.
    with pytest.raises(FourItemsRequired):
        insurer_service.link_by_number(insurers.kyokai, q.id,
                                       number_of(container, clerk, twins[0]), STAFF)
    assert juki_queries(container) == asked  # 住基ネット was never asked
    assert resident_of(container, q.id) is None
    assert insurer_service.find(insurers.kyokai, *_key(insurer_service, insurers.kyokai,
                                                       q.id)).link_state is LinkState.UNLINKED
    with container.databases.unit_of_work("insurance") as session:
        refused = session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.tag == "insurance:qualification:link_refused")).all()
    assert {r.reason for r in refused} == {"insurance_four_items_required"}


def _key(service: InsurerServiceImpl, insurer: str, qid: int) -> tuple[str, str, str]:
    (q,) = [x for x in service.qualifications(insurer, limit=1000) if x.id == qid]
    return q.symbol, q.number, q.branch


def test_same_kana_birth_and_sex_are_never_linked_to_each_other_through_any_route(
        insurer_service: InsurerServiceImpl, insurers: Insurers, container: Container,
        clerk: StaffPrincipal, twins: tuple[ResidentRecord, ResidentRecord]) -> None:
    a, b = twins
    a_number, b_number = number_of(container, clerk, a), number_of(container, clerk, b)

    # Search: each record finds its own person (the address tells them apart).
    qa = enrol(insurer_service, insurers.kyokai, items_of(a))
    qb = enrol(insurer_service, insurers.society, items_of(b))
    assert insurer_service.link_by_search(insurers.kyokai, qa.id, STAFF).state is LinkState.LINKED
    assert insurer_service.link_by_search(insurers.society, qb.id, STAFF).state is \
        LinkState.LINKED
    assert resident_of(container, qa.id) == a.id and resident_of(container, qb.id) == b.id

    # A's record, given B's number: three items agree, the address does not -> review only.
    qa2 = enrol(insurer_service, insurers.shinjuku, items_of(a), acquired_on=dt.date(2024, 4, 1))
    result = insurer_service.link_by_number(insurers.shinjuku, qa2.id, b_number, STAFF)
    assert result.state is LinkState.REVIEW and result.reason is ReviewReason.ADDRESS_DIFFERS
    (review,) = insurer_service.reviews(insurers.shinjuku)
    assert review.differing == ("address",) and review.qualification_id == qa2.id
    assert resident_of(container, qa2.id) is None

    # B's record given A's number: the same.
    qb2 = enrol(insurer_service, insurers.shibuya, items_of(b), acquired_on=dt.date(2024, 4, 1))
    result = insurer_service.link_by_number(insurers.shibuya, qb2.id, a_number, STAFF)
    assert result.reason is ReviewReason.ADDRESS_DIFFERS and resident_of(container, qb2.id) is None

    # A record with A's kana, birth date and sex at an address neither lives at: not found.
    qx = enrol(insurer_service, insurers.nhi_society, items_of(
        a, name="", address="東京都新宿区百人町一丁目1番1号"))
    result = insurer_service.link_by_search(insurers.nhi_society, qx.id, STAFF)
    assert result.reason is ReviewReason.NOT_FOUND and resident_of(container, qx.id) is None

    # Kana only (no kanji) with A's address: all four items, so A, and only A.
    qa3 = enrol(insurer_service, insurers.late, items_of(a, name=""),
                acquired_on=dt.date(2025, 4, 1))
    assert insurer_service.link_by_search(insurers.late, qa3.id, STAFF).state is LinkState.LINKED
    assert resident_of(container, qa3.id) == a.id

    # Nothing of A's ever points at B, nor the reverse.
    for qid in (qa.id, qa2.id, qx.id, qa3.id):
        assert resident_of(container, qid) in (a.id, None)
    for qid in (qb.id, qb2.id):
        assert resident_of(container, qid) in (b.id, None)
    # The numbers were never written into the insurance database.
    with container.databases.engine("insurance").connect() as conn:
        dumped = "\n".join(str(row) for table in m.Base.metadata.sorted_tables
                           for row in conn.execute(select(table)))
    assert a_number not in dumped and b_number not in dumped


def test_the_number_route_links_on_all_four_items(
        insurer_service: InsurerServiceImpl, insurers: Insurers, container: Container,
        clerk: StaffPrincipal, person: Person) -> None:
    hanako = person(family_name="髙橋", given_name="惠子", family_name_kana="タカハシ",
                    given_name_kana="ケイコ", sex=Sex.FEMALE)
    q = enrol(insurer_service, insurers.kyokai, items_of(
        hanako, name="高橋 恵子", name_kana="ﾀｶﾊｼ ｹｲｺ", sex="女",
        address="東京都新宿区西新宿2-8-1"))
    result = insurer_service.link_by_number(insurers.kyokai, q.id,
                                            number_of(container, clerk, hanako), STAFF)
    assert result.state is LinkState.LINKED and result.route is LinkRoute.NUMBER
    assert resident_of(container, q.id) == hanako.id
    # The registry recorded who resolved a number, and why; never the number.
    with container.databases.unit_of_work("registry") as session:
        from mynumber.registry import models as rm
        resolved = session.scalars(select(rm.AuditEvent).where(
            rm.AuditEvent.tag == "registry:number:resolve")).all()
    assert [(r.actor, r.reason, r.subject) for r in resolved] == [
        (STAFF, "health_insurance_link", f"resident:{hanako.id}")]


@pytest.mark.parametrize(("change", "reason", "differing"), [
    ({"name": "山田 次郎"}, ReviewReason.NAME_DIFFERS, ("name",)),
    ({"name_kana": "ヤマダ ジロウ"}, ReviewReason.NAME_DIFFERS, ("name",)),
    ({"birth_date": "1990-04-02"}, ReviewReason.BIRTH_DATE_DIFFERS, ("birth_date",)),
    ({"sex": "female"}, ReviewReason.SEX_DIFFERS, ("sex",)),
    ({"birth_date": "1990-04-02", "address": "東京都渋谷区道玄坂一丁目1番1号"},
     ReviewReason.BIRTH_DATE_DIFFERS, ("birth_date", "address")),
])
def test_the_number_route_names_what_differs(
        insurer_service: InsurerServiceImpl, insurers: Insurers, container: Container,
        clerk: StaffPrincipal, person: Person, change: dict[str, str], reason: ReviewReason,
        differing: tuple[str, ...]) -> None:
    taro = person(birth_date=dt.date(1990, 4, 1))
    q = enrol(insurer_service, insurers.kyokai, items_of(taro, **change))
    result = insurer_service.link_by_number(insurers.kyokai, q.id,
                                            number_of(container, clerk, taro), STAFF)
    assert (result.state, result.reason) == (LinkState.REVIEW, reason)
    assert insurer_service.reviews(insurers.kyokai)[0].differing == differing
    assert resident_of(container, q.id) is None


def test_an_unknown_or_malformed_number_is_never_echoed(
        insurer_service: InsurerServiceImpl, insurers: Insurers, container: Container,
        person: Person) -> None:
    taro = person()
    q = enrol(insurer_service, insurers.kyokai, items_of(taro))
    unknown = "12345678901" + individual_number.calc_check_digit("12345678901")
    result = insurer_service.link_by_number(insurers.kyokai, q.id, unknown, STAFF)
    assert result.reason is ReviewReason.NUMBER_UNKNOWN and result.state is LinkState.REVIEW
    with pytest.raises(InvalidInsuranceInput) as caught:
        insurer_service.link_by_number(insurers.kyokai, q.id, "123456789019", STAFF)
    assert "123456789019" not in str(caught.value.problem())
    with container.databases.engine("insurance").connect() as conn:
        dumped = "\n".join(str(row) for table in m.Base.metadata.sorted_tables
                           for row in conn.execute(select(table)))
    assert unknown not in dumped and "123456789019" not in dumped


def test_several_matches_link_nobody(insurer_service: InsurerServiceImpl, insurers: Insurers,
                                     person: Person, container: Container) -> None:
    one = person(birth_date=dt.date(1970, 1, 1))
    two = person(birth_date=dt.date(1970, 1, 1))  # the same four items, another person
    q = enrol(insurer_service, insurers.kyokai, items_of(one))
    result = insurer_service.link_by_search(insurers.kyokai, q.id, STAFF)
    assert result.reason is ReviewReason.AMBIGUOUS and result.state is LinkState.REVIEW
    assert resident_of(container, q.id) is None
    assert two.id != one.id


def test_a_deceased_person_is_not_linked(insurer_service: InsurerServiceImpl,
                                         insurers: Insurers, person: Person, feed: Feed,
                                         container: Container, clerk: StaffPrincipal) -> None:
    gone = person()
    container.registry.register_death(clerk, gone.id, dt.date(2025, 5, 1))
    feed.deliver()
    q = enrol(insurer_service, insurers.kyokai, items_of(gone))
    result = insurer_service.link_by_search(insurers.kyokai, q.id, STAFF)
    assert result.reason is ReviewReason.NOT_FOUND and resident_of(container, q.id) is None


def test_a_later_attempt_supersedes_the_open_review(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container, clerk: StaffPrincipal) -> None:
    taro = person()
    q = enrol(insurer_service, insurers.kyokai, items_of(taro, address="東京都新宿区旧住所1番"))
    first = insurer_service.link_by_search(insurers.kyokai, q.id, STAFF)
    second = insurer_service.link_by_search(insurers.kyokai, q.id, STAFF)
    assert first.review_id != second.review_id
    assert [r.id for r in insurer_service.reviews(insurers.kyokai)] == [second.review_id]
    assert len(insurer_service.reviews(insurers.kyokai, open_only=False)) == 2


def test_resolving_reviews(insurer_service: InsurerServiceImpl, insurers: Insurers,
                           person: Person, container: Container) -> None:
    taro, jiro = person(), person(given_name="次郎", given_name_kana="ジロウ")
    stale = items_of(taro, address="東京都新宿区四谷九丁目9番9号")

    # Dismissed: not this person, stays unlinked.
    q1 = enrol(insurer_service, insurers.kyokai, stale)
    r1 = insurer_service.link_by_search(insurers.kyokai, q1.id, STAFF)
    assert r1.review_id is not None
    done = insurer_service.resolve_review(insurers.kyokai, r1.review_id,
                                          ReviewResolution.DISMISSED, STAFF)
    assert done.resolution is ReviewResolution.DISMISSED and done.resolved_at is not None
    assert insurer_service.qualifications(insurers.kyokai)[0].link_state is LinkState.UNLINKED
    with pytest.raises(ReviewNotFound):
        insurer_service.resolve_review(insurers.kyokai, r1.review_id,
                                       ReviewResolution.DISMISSED, STAFF)

    # Corrected, but still not matching: a new review item, no link.
    r2 = insurer_service.link_by_search(insurers.kyokai, q1.id, STAFF)
    assert r2.review_id is not None
    insurer_service.resolve_review(insurers.kyokai, r2.review_id, ReviewResolution.CORRECTED,
                                   STAFF, corrected=dataclasses.replace(
                                       stale, address="東京都新宿区四谷八丁目8番8号"))
    (open_item,) = insurer_service.reviews(insurers.kyokai)
    assert open_item.id != r2.review_id and open_item.reason is ReviewReason.NOT_FOUND
    assert resident_of(container, q1.id) is None

    # Corrected with items missing: refused, nothing changes.
    with pytest.raises(FourItemsRequired):
        insurer_service.resolve_review(insurers.kyokai, open_item.id,
                                       ReviewResolution.CORRECTED, STAFF,
                                       corrected=dataclasses.replace(stale, address=""))
    with pytest.raises(InvalidInsuranceInput):
        insurer_service.resolve_review(insurers.kyokai, open_item.id,
                                       ReviewResolution.CORRECTED, STAFF)

    # Corrected to the right items: linked by a new four-item search.
    resolved = insurer_service.resolve_review(insurers.kyokai, open_item.id,
                                              ReviewResolution.CORRECTED, STAFF,
                                              corrected=items_of(taro))
    assert resolved.resolution is ReviewResolution.CORRECTED
    assert resident_of(container, q1.id) == taro.id
    assert insurer_service.items_of(insurers.kyokai, q1.id).address == taro.address
    assert insurer_service.reviews(insurers.kyokai) == []
    # Another insurer's review item is not this insurer's to resolve.
    q2 = enrol(insurer_service, insurers.society, items_of(jiro, address="どこか"))
    r3 = insurer_service.link_by_search(insurers.society, q2.id, STAFF)
    assert r3.review_id is not None
    with pytest.raises(ReviewNotFound):
        insurer_service.resolve_review(insurers.kyokai, r3.review_id,
                                       ReviewResolution.DISMISSED, STAFF)


def test_comparison_helpers() -> None:
    from mynumber.juki.interfaces import Identity

    identity = Identity("12345678903", "渡邊", "一郞", "ワタナベ", "イチロウ", dt.date(1980, 1, 2),
                        "male", "東京都千代田区霞が関1丁目2番3号", "131016", "resident",
                        "import", dt.date(2020, 1, 1))
    same = PersonItems("渡辺 一郎", "わたなべ いちろう", "1980-01-02", "男",
                       "東京都千代田区霞ヶ関一丁目2番3号")
    assert differing_items(same, identity) == ()
    assert differing_items(dataclasses.replace(same, name=""), identity) == ()
    assert differing_items(PersonItems(), identity) == ("name", "birth_date", "sex", "address")
    assert reason_for(("sex", "address")) is ReviewReason.SEX_DIFFERS
    assert reason_for(("address",)) is ReviewReason.ADDRESS_DIFFERS


def test_many_records_at_once_follow_the_same_rules(
        insurer_service: InsurerServiceImpl, insurers: Insurers, person: Person,
        container: Container, twins: tuple[ResidentRecord, ResidentRecord]) -> None:
    a, b = twins
    one = person(birth_date=dt.date(1970, 1, 1))
    person(birth_date=dt.date(1970, 1, 1))  # the same four items as ``one``
    earlier = person()
    first = enrol(insurer_service, insurers.society, items_of(earlier),
                  acquired_on=dt.date(2020, 4, 1))
    insurer_service.link_by_search(insurers.society, first.id, STAFF)
    made = insurer_service.enrol_many(insurers.kyokai, [
        new_person(items_of(a)), new_person(items_of(b)),
        new_person(items_of(a, address="東京都新宿区百人町一丁目1番1号")),
        new_person(items_of(one)),
        new_person(items_of(earlier), acquired_on=dt.date(2019, 4, 1)),  # before the open one
    ], STAFF)
    results = insurer_service.link_many_by_search(insurers.kyokai, [q.id for q in made], STAFF)
    assert [(r.qualification_id, r.state, r.reason) for r in results] == [
        (made[0].id, LinkState.LINKED, None), (made[1].id, LinkState.LINKED, None),
        (made[2].id, LinkState.REVIEW, ReviewReason.NOT_FOUND),
        (made[3].id, LinkState.REVIEW, ReviewReason.AMBIGUOUS),
        (made[4].id, LinkState.REVIEW, ReviewReason.ALREADY_LINKED)]
    assert resident_of(container, made[0].id) == a.id
    assert resident_of(container, made[1].id) == b.id
    assert insurer_service.open_qualifications(earlier.id)[0].id == first.id
    # A batch holding a record that lacks an item is refused before anything is asked.
    short = insurer_service.enrol_many(insurers.kyokai, [
        new_person(items_of(person())), new_person(items_of(a, address=""))], STAFF)
    asked = juki_queries(container)
    with pytest.raises(FourItemsRequired) as caught:
        insurer_service.link_many_by_search(insurers.kyokai, [q.id for q in short], STAFF)
    assert caught.value.extra["qualification_id"] == short[1].id
    assert juki_queries(container) == asked
    with pytest.raises(AlreadyLinked):
        insurer_service.link_many_by_search(insurers.kyokai, [made[0].id], STAFF)

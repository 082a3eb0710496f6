"""Insurers and enrolment: 保険者番号 checked (length for the kind, check digit), the agency in
the network's directory, the insured person's record as the insurer gives it, and one record
per 記号・番号・枝番 even when enrolments race."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
from sqlalchemy import select

from mynumber.app import Container
from mynumber.codes.insurer_number import with_check_digit
from mynumber.insurance import models as m
from mynumber.insurance.interfaces import (
    AlreadyEnrolled,
    InsuredKind,
    InsurerAlreadyRegistered,
    InsurerKind,
    InsurerNotFound,
    InvalidInsuranceInput,
    InvalidInsurerNumber,
    LimitCategory,
    LinkState,
    PersonItems,
    QualificationNotFound,
)
from mynumber.insurance.services import InsurerServiceImpl
from tests.insurance.conftest import (
    KYOKAI,
    SHINJUKU_NHI,
    STAFF,
    Insurers,
    enrol,
    new_person,
)

ITEMS = PersonItems("山田 太郎", "ヤマダ タロウ", "1980-05-06", "male",
                    "東京都新宿区西新宿二丁目8番1号")


def test_register_and_read_back(insurer_service: InsurerServiceImpl) -> None:
    insurer = insurer_service.register_insurer("0113-0012", "全国健康保険協会 東京支部",
                                               InsurerKind.KYOKAI, "kyokai_kenpo", STAFF)
    assert insurer.number == KYOKAI
    assert insurer_service.insurer(KYOKAI) == insurer
    assert insurer_service.insurers() == [insurer]
    # The same registration again changes nothing; another one for the number is refused.
    assert insurer_service.register_insurer(KYOKAI, insurer.name, InsurerKind.KYOKAI,
                                            "kyokai_kenpo", STAFF) == insurer
    with pytest.raises(InsurerAlreadyRegistered):
        insurer_service.register_insurer(KYOKAI, "別の名前", InsurerKind.KYOKAI,
                                         "kyokai_kenpo", STAFF)
    with pytest.raises(InsurerNotFound):
        insurer_service.insurer("01130020")


@pytest.mark.parametrize(("number", "kind", "agency"), [
    ("01130013", InsurerKind.KYOKAI, "kyokai_kenpo"),  # check digit
    ("0113001", InsurerKind.KYOKAI, "kyokai_kenpo"),  # length
    ("131045", InsurerKind.KYOKAI, "kyokai_kenpo"),  # 6 digits for a non-国保 kind
    (KYOKAI, InsurerKind.MUNICIPAL_NHI, "municipality-131041"),  # 8 digits for 国保
    (with_check_digit("27100"), InsurerKind.MUNICIPAL_NHI,
     "municipality-131041"),  # 大阪 prefecture for 新宿区
])
def test_invalid_insurer_numbers_are_refused(insurer_service: InsurerServiceImpl, number: str,
                                             kind: InsurerKind, agency: str) -> None:
    with pytest.raises(InvalidInsurerNumber) as caught:
        insurer_service.register_insurer(number, "x", kind, agency, STAFF)
    assert number not in caught.value.detail
    assert insurer_service.insurers() == []


def test_agency_must_exist_and_fit_the_kind(insurer_service: InsurerServiceImpl) -> None:
    with pytest.raises(InvalidInsuranceInput) as caught:
        insurer_service.register_insurer(KYOKAI, "x", InsurerKind.KYOKAI, "no-such-agency",
                                         STAFF)
    assert caught.value.extra["rule"] == "agency_exists"
    with pytest.raises(InvalidInsuranceInput) as caught:  # 日本年金機構 is not an insurer
        insurer_service.register_insurer(KYOKAI, "x", InsurerKind.KYOKAI,
                                         "japan_pension_service", STAFF)
    assert caught.value.extra["rule"] == "agency_kind"
    insurer_service.register_insurer(SHINJUKU_NHI, "新宿区国民健康保険",
                                     InsurerKind.MUNICIPAL_NHI, "municipality-131041", STAFF)


def test_enrol_stores_the_record_unlinked(insurer_service: InsurerServiceImpl,
                                          insurers: Insurers, container: Container) -> None:
    q = enrol(insurer_service, insurers.kyokai, dataclasses.replace(ITEMS, sex="男",
                                                                     birth_date="1980/5/6"),
              symbol="1234", number="５６７", branch="01")
    assert (q.symbol, q.number, q.branch) == ("1234", "567", "01")
    assert q.link_state is LinkState.UNLINKED and q.lost_on is None
    assert q.insurer_name == "全国健康保険協会 東京支部"
    assert insurer_service.find(insurers.kyokai, "1234", "567", "01") == q
    assert insurer_service.items_of(insurers.kyokai, q.id) == dataclasses.replace(
        ITEMS, sex="male", birth_date="1980-05-06")
    assert insurer_service.qualifications(insurers.kyokai, state=LinkState.UNLINKED) == [q]
    assert insurer_service.qualifications(insurers.kyokai, state=LinkState.LINKED) == []
    with pytest.raises(QualificationNotFound):
        insurer_service.find(insurers.kyokai, "1234", "567", "02")
    with container.databases.unit_of_work("insurance") as session:
        tags = session.scalars(select(m.AuditEvent.tag)).all()
    assert "insurance:qualification:enrol" in tags


def test_an_incomplete_record_may_be_enrolled(insurer_service: InsurerServiceImpl,
                                              insurers: Insurers) -> None:
    q = enrol(insurer_service, insurers.kyokai, PersonItems(name_kana="ヤマダ タロウ",
                                                            birth_date="1980-05-06", sex="2"))
    assert insurer_service.items_of(insurers.kyokai, q.id).address == ""


def test_insured_numbers_are_stored_normalised(insurer_service: InsurerServiceImpl,
                                                insurers: Insurers) -> None:
    """記号・番号・枝番 are kept as NFKC makes them (and looked up the same way); a kanji 記号
    (国保) is allowed."""
    q = enrol(insurer_service, insurers.shinjuku, ITEMS, symbol="中", number="①②-ア",
              branch="０１")
    assert (q.symbol, q.number, q.branch) == ("中", "12-ア", "01")
    assert insurer_service.find(insurers.shinjuku, "中", "12-ｱ", "01").id == q.id
    # Exactly 20 characters once normalised is still accepted.
    long = enrol(insurer_service, insurers.kyokai, ITEMS, symbol="１" * 20, number="2" * 20)
    assert (long.symbol, long.number) == ("1" * 20, "2" * 20)


@pytest.mark.parametrize(("change", "field"), [
    ({"branch": "1"}, "branch"),
    ({"branch": "ab"}, "branch"),
    ({"copay_percent": 40}, "copay_percent"),
    ({"symbol": "x" * 21}, "symbol"),
    ({"number": ""}, "number"),
    ({"number": "1" * 21}, "number"),
    ({"items": dataclasses.replace(ITEMS, birth_date="1980-13-01")}, "birth_date"),
    ({"items": dataclasses.replace(ITEMS, sex="unknown")}, "sex"),
    ({"items": dataclasses.replace(ITEMS, address="x" * 301)}, "address"),
    ({"limit_category": LimitCategory.GENERAL}, "limit_category"),  # 70+ category at 39
    # Normalised (NFKC) before the length check: 20 characters that become 80 (「㍿」 is
    # 「株式会社」, 「㌀」 is 「アパート」) never reach the VARCHAR(20) column (a 500 on
    # PostgreSQL before).
    ({"number": "㍿" * 20}, "number"),
    ({"symbol": "㌀" * 20}, "symbol"),
    ({"number": "㍿" * 5 + "1"}, "number"),
    ({"branch": "㍿"}, "branch"),
    # Only what a card carries: digits, letters, kana, kanji and a hyphen.
    ({"number": "12 34"}, "number"),
    ({"symbol": "12/34"}, "symbol"),
    ({"number": "1;2"}, "number"),
])
def test_enrol_refuses_bad_input(insurer_service: InsurerServiceImpl, insurers: Insurers,
                                 change: dict[str, object], field: str) -> None:
    person = dataclasses.replace(new_person(ITEMS, acquired_on=dt.date(2020, 4, 1)), **change)
    with pytest.raises(InvalidInsuranceInput) as caught:
        insurer_service.enrol(insurers.kyokai, person, STAFF)
    assert caught.value.field == field
    assert insurer_service.qualifications(insurers.kyokai) == []


def test_limit_category_follows_the_age_band(insurer_service: InsurerServiceImpl,
                                             insurers: Insurers) -> None:
    old = dataclasses.replace(ITEMS, birth_date="1950-01-01")
    q = insurer_service.enrol(insurers.kyokai, dataclasses.replace(
        new_person(old), limit_category=LimitCategory.ACTIVE_1, elderly_recipient=True,
        copay_percent=20), STAFF)
    assert q.limit_category is LimitCategory.ACTIVE_1 and q.elderly_recipient
    with pytest.raises(InvalidInsuranceInput):
        insurer_service.enrol(insurers.kyokai, dataclasses.replace(
            new_person(old), limit_category=LimitCategory.A), STAFF)


def test_national_health_insurance_has_no_dependants(insurer_service: InsurerServiceImpl,
                                                     insurers: Insurers) -> None:
    with pytest.raises(InvalidInsuranceInput) as caught:
        enrol(insurer_service, insurers.shinjuku, ITEMS, kind=InsuredKind.DEPENDENT)
    assert caught.value.extra["rule"] == "no_dependants"
    dependant = enrol(insurer_service, insurers.kyokai, ITEMS, kind=InsuredKind.DEPENDENT,
                      branch="01")
    assert dependant.insured_kind is InsuredKind.DEPENDENT


def test_the_insured_number_is_unique_at_an_insurer(insurer_service: InsurerServiceImpl,
                                                    insurers: Insurers) -> None:
    enrol(insurer_service, insurers.kyokai, ITEMS, symbol="10", number="20", branch="00")
    with pytest.raises(AlreadyEnrolled):
        enrol(insurer_service, insurers.kyokai, ITEMS, symbol="10", number="20", branch="00")
    # Another branch, or another insurer, is another record.
    enrol(insurer_service, insurers.kyokai, ITEMS, symbol="10", number="20", branch="01")
    enrol(insurer_service, insurers.society, ITEMS, symbol="10", number="20", branch="00")


def test_parallel_enrolments_of_one_number_exactly_one_wins(
        insurer_service: InsurerServiceImpl, insurers: Insurers) -> None:
    threads = 6
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            enrol(insurer_service, insurers.kyokai, ITEMS, symbol="77", number="88",
                  branch="00")
            result = "enrolled"
        except AlreadyEnrolled:
            result = "refused"
        except Exception as exc:  # pragma: no cover - shown in the assertion
            result = repr(exc)
        with lock:
            outcomes.append(result)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(outcomes) == ["enrolled"] + ["refused"] * (threads - 1)
    assert len(insurer_service.qualifications(insurers.kyokai)) == 1


def test_listing_pages_and_limits(insurer_service: InsurerServiceImpl,
                                  insurers: Insurers) -> None:
    made = [enrol(insurer_service, insurers.kyokai, ITEMS).id for _ in range(3)]
    assert [q.id for q in insurer_service.qualifications(insurers.kyokai, limit=2)] == made[:2]
    assert [q.id for q in insurer_service.qualifications(insurers.kyokai, limit=2,
                                                         offset=2)] == made[2:]
    with pytest.raises(InvalidInsuranceInput):
        insurer_service.qualifications(insurers.kyokai, limit=0)


def test_enrol_many_is_all_or_nothing(insurer_service: InsurerServiceImpl,
                                      insurers: Insurers) -> None:
    good = [new_person(ITEMS, symbol="5", number=str(n)) for n in range(3)]
    made = insurer_service.enrol_many(insurers.kyokai, good, STAFF)
    assert [q.number for q in made] == ["0", "1", "2"]
    assert [q.id for q in insurer_service.qualifications(insurers.kyokai)] == [q.id for q in made]
    bad = [new_person(ITEMS, symbol="6", number="1"),
           dataclasses.replace(new_person(ITEMS, symbol="6", number="2"), branch="x")]
    with pytest.raises(InvalidInsuranceInput) as caught:
        insurer_service.enrol_many(insurers.kyokai, bad, STAFF)
    assert caught.value.extra["index"] == 1
    twice = [new_person(ITEMS, symbol="7", number="1"), new_person(ITEMS, symbol="7", number="1")]
    with pytest.raises(AlreadyEnrolled):
        insurer_service.enrol_many(insurers.kyokai, twice, STAFF)
    assert len(insurer_service.qualifications(insurers.kyokai)) == 3


def test_the_demo_seed_links_everyone_on_four_items_and_queues_the_near_misses(
        container: Container, insurer_service: InsurerServiceImpl,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mynumber.insurance import seed as insurance_seed
    from mynumber.insurance.seed import seed_insurance
    from mynumber.insurance.services import differing_items

    # 00:30 on 1 June 2025 in Japan, still 31 May in UTC: the seed's "today" is Japan's.
    monkeypatch.setattr(insurance_seed, "utcnow",
                        lambda: dt.datetime(2025, 5, 31, 15, 30, tzinfo=dt.UTC))
    from mynumber.registry.seed import current_residents, run_seed

    run_seed(container, 120, seed=7, as_of=dt.date(2025, 6, 1))
    container.events.drain()  # 住基ネット's copy (and the other subscribers)
    residents = current_residents(container.databases)
    result = seed_insurance(
        insurer_service, container.network, container.settings, residents,
        number_of=lambda rid: container.registry.number_for_purpose(rid, "test", "system:seed"),
        seed=7, batch=40, record_clinical=container.eligibility.record_clinical)
    assert result.enrolled == len(residents) and result.refused == 0
    # Everyone enrolled has synthetic clinical lines, stored through the service, dated
    # within the last 12 months.
    assert result.clinical_people == len(residents) and result.clinical_lines > 0
    with container.databases.unit_of_work("insurance") as session:
        lines = session.execute(select(m.ClinicalRecordRow.resident_id,
                                       m.ClinicalRecordRow.on)).all()
    assert len(lines) == result.clinical_lines
    assert {rid for rid, _ in lines} <= {r.id for r in residents}
    assert all(dt.date(2024, 6, 1) <= on <= dt.date(2025, 6, 1) for _, on in lines)
    assert result.near_misses >= 3
    assert result.linked + result.in_review == len(residents)
    assert result.in_review == result.near_misses  # only the deliberate ones wait
    assert set(result.reasons) <= {"not_found", "address_differs"}
    kinds = {i.kind for i in insurer_service.insurers()}
    assert {InsurerKind.KYOKAI, InsurerKind.SOCIETY, InsurerKind.MUNICIPAL_NHI,
            InsurerKind.NHI_SOCIETY, InsurerKind.LATE_ELDERLY} <= kinds
    # Every linked record agrees with 住基ネット on all four items; one per person.
    by_person: dict[int, int] = {}
    with container.databases.unit_of_work("insurance") as session:
        rows = session.scalars(select(m.QualificationRow)).all()
    for row in rows:
        if row.resident_id is None:
            assert row.link_state == "review"
            continue
        identity = container.juki.identity_of(row.resident_id)
        assert identity is not None
        assert differing_items(PersonItems(row.name, row.name_kana, row.birth_date, row.sex,
                                           row.address), identity) == ()
        by_person[row.resident_id] = by_person.get(row.resident_id, 0) + 1
        age = (dt.date(2025, 6, 1) - identity.birth_date).days // 365.25
        assert (row.insurer_number.startswith("39")) == (age >= 75)
    assert set(by_person.values()) == {1}
    assert any(row.insured_kind == "dependent" for row in rows)
    # Seeding again enrols nobody twice.
    assert seed_insurance(insurer_service, container.network, container.settings, residents,
                          seed=7).skipped

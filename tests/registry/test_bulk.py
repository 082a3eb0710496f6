"""Bulk registration (registry.bulk): the fast path stores exactly what one registration
stores, never gives a 住民票コード or a 個人番号 twice, and keeps one audit event per batch."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from mynumber.app import Container
from mynumber.codes import individual_number, resident_code
from mynumber.registry import bulk
from mynumber.registry import models as m
from mynumber.registry.bulk import BulkResident, allocate_codes, store_residents
from mynumber.registry.interfaces import (
    SYSTEM,
    InvalidResidentData,
    InvalidTransition,
    LetterStatus,
    LifeEventKind,
    ResidentStatus,
    Sex,
)
from mynumber.registry.services import validate_new_resident
from tests.conftest import SHIBUYA, SHINJUKU, new_resident

TODAY = dt.date.today()


def item(**overrides: Any) -> BulkResident:
    resident_fields = {k: overrides.pop(k) for k in list(overrides)
                       if k in {f.name for f in dataclasses.fields(new_resident())}}
    resident = validate_new_resident(new_resident(**resident_fields), TODAY)
    return BulkResident(resident=resident, **overrides)


def store(container: Container, items: list[BulkResident], **kwargs: Any) -> list[int]:
    with container.databases.unit_of_work("registry") as session:
        return store_residents(container.registry, session, items, "test:bulk", **kwargs)


def count(container: Container, model: Any, *where: Any) -> int:
    with container.databases.unit_of_work("registry") as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_stores_residents_with_everything_a_registration_has(container: Container) -> None:
    items = [
        item(given_name=f"太郎{i}", given_name_kana="たろう", household_key="a",
             event=LifeEventKind.IMPORT, occurred_on=dt.date(2024, 1, 2), import_run_id=7,
             import_line=i + 2)
        for i in range(3)
    ] + [item(family_name="佐藤", family_name_kana="サトウ", municipality_code=SHIBUYA,
              event=LifeEventKind.BIRTH, birth_date=dt.date(2024, 3, 3),
              occurred_on=dt.date(2024, 3, 3))]
    ids = store(container, items)
    assert len(ids) == 4 and ids == sorted(ids) and len(set(ids)) == 4

    with container.databases.unit_of_work("registry") as session:
        rows = session.scalars(select(m.Resident).where(m.Resident.id.in_(ids))
                               .order_by(m.Resident.id)).all()
        assert [r.given_name for r in rows] == ["太郎0", "太郎1", "太郎2", "太郎"]
        # 住民票コード: valid and distinct; the household key groups the first three.
        assert all(resident_code.is_valid(r.resident_code) for r in rows)
        assert len({r.resident_code for r in rows}) == 4
        assert len({r.household_id for r in rows[:3]}) == 1
        assert rows[3].household_id != rows[0].household_id
        household = session.get(m.Household, rows[3].household_id)
        assert household is not None and household.municipality_code == SHIBUYA
        assert rows[0].given_name_kana == "タロウ"
        assert rows[0].name_kana_key == "ヤマダタロウ"
        assert (rows[0].import_run_id, rows[0].import_line) == (7, 2)
        assert rows[3].import_run_id is None and rows[3].import_line is None
        assert all(r.number_generation == 0 and r.status == "resident" for r in rows)
        assert rows[0].birth_date == dt.date(1990, 4, 1) and rows[0].sex == "male"
        # Timestamps read back through the ORM like any other row's.
        assert rows[0].created_at.tzinfo is not None
        assert abs((rows[0].created_at - dt.datetime.now(dt.UTC)).total_seconds()) < 120

        events = session.scalars(select(m.LifeEvent).where(m.LifeEvent.resident_id.in_(ids))
                                 .order_by(m.LifeEvent.resident_id)).all()
        assert [(e.kind, e.occurred_on) for e in events] == [
            ("import", dt.date(2024, 1, 2))] * 3 + [("birth", dt.date(2024, 3, 3))]
        assert events[3].municipality_code == SHIBUYA and events[0].actor == "test:bulk"
        assert all(e.details == {} for e in events)

        letters = session.scalars(select(m.NotificationLetter)
                                  .where(m.NotificationLetter.resident_id.in_(ids))).all()
        assert len(letters) == 4
        assert all(x.status == "created" and x.number_generation == 0 for x in letters)
        assert all(x.history[0]["status"] == "created" for x in letters)
        assert count(container, m.IssuedNumber, m.IssuedNumber.resident_id.in_(ids)) == 4

        audits = session.scalars(select(m.AuditEvent)
                                 .where(m.AuditEvent.tag == "registry:import:batch")).all()
        assert len(audits) == 1
        assert audits[0].details["count"] == 4 and audits[0].actor == "test:bulk"

    # The services see the residents like registered ones: numbers, letters, history.
    registry = container.registry
    record = registry.get_resident(SYSTEM, ids[0], "test")
    number = registry.reveal_number(SYSTEM, ids[0], "test")
    assert individual_number.is_valid(number)
    assert number == registry.numbering.individual_number(record.resident_code, 0)
    assert registry.find_by_number(SYSTEM, number, "test").id == ids[0]
    letter = registry.letters(SYSTEM, ids[0])[0]
    assert registry.update_letter(SYSTEM, letter.id, LetterStatus.SENT).status is LetterStatus.SENT
    assert [e.kind for e in registry.history(SYSTEM, ids[3])] == [LifeEventKind.BIRTH]


def test_numbers_match_the_scalar_derivation(container: Container) -> None:
    ids = store(container, [item(given_name=f"名{i}") for i in range(50)])
    numbering = container.registry.numbering
    with container.databases.unit_of_work("registry") as session:
        for resident in session.scalars(select(m.Resident).where(m.Resident.id.in_(ids))):
            issued = session.scalars(select(m.IssuedNumber)
                                     .where(m.IssuedNumber.resident_id == resident.id)).one()
            expected = numbering.individual_number(resident.resident_code, 0)
            assert issued.number_index == numbering.index(expected)


def test_codes_follow_the_pool_like_single_registrations(container: Container) -> None:
    registry = container.registry
    first = registry.register_birth(SYSTEM, new_resident(birth_date=dt.date(2024, 1, 1)),
                                    dt.date(2024, 1, 1))
    ids = store(container, [item(given_name=f"名{i}") for i in range(3)])
    after = registry.register_birth(SYSTEM, new_resident(birth_date=dt.date(2024, 1, 1)),
                                    dt.date(2024, 1, 1))
    codes = [registry.numbering.resident_code(c) for c in range(5)]
    with container.databases.unit_of_work("registry") as session:
        bulk_codes = [session.get(m.Resident, i).resident_code for i in ids]  # type: ignore[union-attr]
    assert [first.resident_code, *bulk_codes, after.resident_code] == codes


def test_households_carry_over_between_calls(container: Container) -> None:
    households: dict[str, int] = {}
    first = store(container, [item(household_key="h1")], households=households)
    second = store(container, [item(household_key="h1", given_name="花子"),
                               item(household_key="h2")], households=households)
    with container.databases.unit_of_work("registry") as session:
        hh = [session.get(m.Resident, i).household_id for i in first + second]  # type: ignore[union-attr]
    assert hh[0] == hh[1] != hh[2]
    assert households == {"h1": hh[0], "h2": hh[2]}


def test_a_given_resident_code_is_kept_checked_and_never_doubled(container: Container) -> None:
    code = container.registry.numbering.resident_code(123_456)
    (rid,) = store(container, [item(resident_code=code)])
    record = container.registry.get_resident(SYSTEM, rid, "test")
    assert record.resident_code == code

    with pytest.raises(InvalidResidentData) as info:
        store(container, [item(resident_code=code)])
    assert info.value.field == "resident_code" and code not in str(info.value)
    bad = code[:-1] + str((int(code[-1]) + 1) % 10)
    with pytest.raises(InvalidResidentData) as info:
        store(container, [item(resident_code=bad)])
    assert info.value.field == "resident_code" and bad not in str(info.value)
    other = container.registry.numbering.resident_code(654_321)
    with pytest.raises(InvalidResidentData):
        store(container, [item(resident_code=other), item(resident_code=other)])
    assert count(container, m.Resident) == 1


def test_pool_skips_codes_that_migrated_residents_hold(container: Container) -> None:
    numbering = container.registry.numbering
    # A migrated resident holds the codes the pool would hand out next (counters 0 and 1).
    store(container, [item(resident_code=numbering.resident_code(0)),
                      item(resident_code=numbering.resident_code(1), given_name="花子")])
    ids = store(container, [item(given_name="次郎")])
    with container.databases.unit_of_work("registry") as session:
        new = session.get(m.Resident, ids[0])
        assert new is not None and new.resident_code == numbering.resident_code(2)
        assert session.get(m.ResidentCodePool, 1).next_counter == 3  # type: ignore[union-attr]
        # allocate_codes alone, over a longer run of taken codes.
        store_residents(container.registry, session,
                        [item(resident_code=numbering.resident_code(c)) for c in range(3, 40)],
                        "test")
        codes = allocate_codes(numbering, session, 5)
    assert len(set(codes)) == 5
    assert not set(codes) & {numbering.resident_code(c) for c in range(40)}


def test_a_number_issued_before_moves_the_newcomer_to_the_next_generation(
    container: Container,
) -> None:
    numbering = container.registry.numbering
    (holder,) = store(container, [item(given_name="先住")])
    # Pretend a replacement number given earlier equals the next code's first number.
    next_code = numbering.resident_code(1)
    clash = numbering.index(numbering.individual_number(next_code, 0))
    with container.databases.unit_of_work("registry") as session:
        session.add(m.IssuedNumber(number_index=clash, resident_id=holder, generation=5))
    (rid,) = store(container, [item(given_name="新住")])
    with container.databases.unit_of_work("registry") as session:
        row = session.get(m.Resident, rid)
        assert row is not None and row.resident_code == next_code
        assert row.number_generation == 1
        letter = session.scalars(select(m.NotificationLetter)
                                 .where(m.NotificationLetter.resident_id == rid)).one()
        assert letter.number_generation == 1
    number = container.registry.reveal_number(SYSTEM, rid, "test")
    assert number == numbering.individual_number(next_code, 1)


def test_unchecked_mode_leaves_collisions_to_the_unique_indexes(container: Container) -> None:
    numbering = container.registry.numbering
    store(container, [item(resident_code=numbering.resident_code(0))])
    rows = [bulk._row(item(given_name="次郎"))]
    with pytest.raises(Exception) as info, \
            container.databases.unit_of_work("registry") as session:
        bulk.store_rows(numbering, session, rows, "test", checked=False)
    assert bulk_is_integrity(info.value)
    assert count(container, m.Resident) == 1


def bulk_is_integrity(exc: BaseException) -> bool:
    from mynumber.registry.importer import _is_integrity_error

    return _is_integrity_error(exc)


def test_a_given_generation_keeps_the_number_and_retires_the_older_ones(
    container: Container,
) -> None:
    numbering = container.registry.numbering
    code = numbering.resident_code(777)
    (rid,) = store(container, [item(resident_code=code, number_generation=2)])
    registry = container.registry
    current = registry.reveal_number(SYSTEM, rid, "test")
    assert current == numbering.individual_number(code, 2)
    for old in (0, 1):
        with pytest.raises(InvalidTransition):
            registry.find_by_number(SYSTEM, numbering.individual_number(code, old), "test")
    # A reissue moves on past every generation ever issued.
    assert registry.reissue_number(SYSTEM, rid, "leaked").resident_code == code
    assert registry.reveal_number(SYSTEM, rid, "test") == numbering.individual_number(code, 3)


def test_the_whole_batch_rolls_back_with_its_transaction(
    container: Container, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bulk._PostgresWriter, "events", boom)
    monkeypatch.setattr(bulk._SQLiteWriter, "events", boom)
    with pytest.raises(RuntimeError):
        store(container, [item(given_name=f"名{i}", household_key="x") for i in range(10)])
    for model in (m.Resident, m.Household, m.IssuedNumber, m.NotificationLetter, m.LifeEvent):
        assert count(container, model) == 0
    assert count(container, m.AuditEvent, m.AuditEvent.tag == "registry:import:batch") == 0


def test_empty_batch_stores_nothing(container: Container) -> None:
    assert store(container, []) == []
    assert count(container, m.AuditEvent, m.AuditEvent.tag == "registry:import:batch") == 0


def test_residents_from_bulk_behave_like_registered_ones(container: Container) -> None:
    (rid,) = store(container, [item(municipality_code=SHINJUKU, sex=Sex.FEMALE)])
    registry = container.registry
    moved = registry.register_move_out(SYSTEM, rid, SHIBUYA, TODAY)
    assert moved.status is ResidentStatus.MOVED_OUT
    back = registry.register_move_in(
        SYSTEM, new_resident(municipality_code=SHIBUYA, sex=Sex.FEMALE), TODAY,
        resident_code=moved.resident_code)
    assert back.id == rid and back.municipality_code == SHIBUYA


def test_values_that_need_escaping_in_copy_are_stored_as_given(container: Container) -> None:
    (rid,) = store(container, [item(family_name="山\\田", address="東京都\\N 新宿区",
                                    nationality="US", residence_status="永住者\t(特別)")])
    (row,) = [r for r in [container.registry.get_resident(SYSTEM, rid, "test")]]
    assert row.family_name == "山\\田" and row.address == "東京都\\N 新宿区"
    assert row.residence_status == "永住者\t(特別)"

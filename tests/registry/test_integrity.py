"""What the schema no longer enforces, checked through the code that writes it.

``issued_numbers``, ``notification_letters``, ``life_events`` and ``residents.household_id``
carry no foreign-key constraint (models.py says why): the services and the importer must not
leave an orphan. ``issued_numbers.number_index`` is a 64-bit MAC: a look-up by number must
never return the holder of another number that shares its index.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.codes import individual_number
from mynumber.registry import models as m
from mynumber.registry.importer import FIELDS, Importer
from mynumber.registry.interfaces import InvalidTransition, ResidentNotFound
from tests.conftest import SHINJUKU, new_resident

BIRTH = dt.date(2024, 5, 1)


def orphans(container: Container) -> dict[str, int]:
    found: dict[str, int] = {}
    with container.databases.unit_of_work("registry") as session:
        for model in (m.IssuedNumber, m.NotificationLetter, m.LifeEvent):
            found[model.__tablename__] = int(session.scalar(
                select(func.count()).select_from(model)
                .outerjoin(m.Resident, m.Resident.id == model.resident_id)
                .where(m.Resident.id.is_(None))
            ) or 0)
        for model in (m.Resident, m.Household):
            found[f"{model.__tablename__}.municipality_code"] = int(session.scalar(
                select(func.count()).select_from(model)
                .outerjoin(m.Municipality, m.Municipality.code == model.municipality_code)
                .where(m.Municipality.code.is_(None))
            ) or 0)
        found["residents.household_id"] = int(session.scalar(
            select(func.count()).select_from(m.Resident)
            .outerjoin(m.Household, m.Household.id == m.Resident.household_id)
            .where(m.Resident.household_id.is_not(None), m.Household.id.is_(None))
        ) or 0)
    return found


def test_services_and_import_leave_no_orphan(
    container: Container, clerk: StaffPrincipal, supervisor: StaffPrincipal, tmp_path: Path,
) -> None:
    registry = container.registry
    record = registry.register_birth(clerk, new_resident(birth_date=BIRTH), BIRTH)
    registry.change_name(clerk, record.id, "佐藤", "花子", "サトウ", "ハナコ", BIRTH)
    registry.reissue_number(supervisor, record.id, "漏えいのおそれ")
    registry.register_death(clerk, record.id, dt.date.today())
    registry.register_move_in(clerk, new_resident(given_name="次郎"), dt.date.today())

    path = tmp_path / "r.csv"
    values = {"family_name": "山田", "given_name": "一郎", "family_name_kana": "ヤマダ",
              "given_name_kana": "イチロウ", "birth_date": "1990-01-01", "sex": "male",
              "municipality_code": SHINJUKU, "address": "東京都新宿区一丁目"}
    lines = [",".join(FIELDS)] + [
        ",".join({**values, "household_key": f"H{i // 2}"}.get(f, "") for f in FIELDS)
        for i in range(7)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = Importer(registry, batch_size=3).run(path)
    assert report.stored == 7 and report.reconciled

    assert orphans(container) == {
        "issued_numbers": 0, "notification_letters": 0, "life_events": 0,
        "residents.household_id": 0, "residents.municipality_code": 0,
        "households.municipality_code": 0,
    }
    with container.databases.unit_of_work("registry") as session:
        assert session.scalar(select(func.count()).select_from(m.IssuedNumber)) == 2 + 1 + 7


def _other_number(taken: str) -> str:
    for body in range(10**10, 10**10 + 100):
        candidate = f"{body:011d}"
        candidate += individual_number.calc_check_digit(candidate)
        if candidate != taken:
            return candidate
    raise AssertionError("unreachable")


@pytest.mark.parametrize("retired", [False, True])
def test_a_shared_index_never_finds_the_wrong_person(
    container: Container, clerk: StaffPrincipal, supervisor: StaffPrincipal,
    monkeypatch: pytest.MonkeyPatch, retired: bool,
) -> None:
    registry = container.registry
    record = registry.register_birth(clerk, new_resident(birth_date=BIRTH), BIRTH)
    number = registry.reveal_number(clerk, record.id, "確認")
    if retired:
        registry.reissue_number(supervisor, record.id, "漏えいのおそれ")
    other = _other_number(number)
    numbering = registry.numbering
    real = numbering.index
    # Pretend ``other`` has the same 64-bit index as the resident's (first) number.
    monkeypatch.setattr(numbering, "index",
                        lambda n: real(number) if n == other else real(n))
    with pytest.raises(ResidentNotFound):
        registry.find_by_number(clerk, other, "照会")
    if retired:
        with pytest.raises(InvalidTransition):
            registry.find_by_number(clerk, number, "照会")
    else:
        assert registry.find_by_number(clerk, number, "照会").id == record.id


def test_bulk_refuses_unknown_municipalities_and_households(container: Container) -> None:
    from mynumber.registry.bulk import BulkResident, store_residents
    from mynumber.registry.interfaces import InvalidResidentData
    from mynumber.registry.services import validate_new_resident

    good = validate_new_resident(new_resident(), dt.date.today())
    unknown = dataclasses.replace(good, municipality_code="999999")
    homeless = dataclasses.replace(good, household_id=10**9)
    for resident, field in ((unknown, "municipality_code"), (homeless, "household_id")):
        with (pytest.raises(InvalidResidentData) as info,
              container.databases.unit_of_work("registry") as session):
            store_residents(container.registry, session, [BulkResident(resident)], "test")
        assert info.value.field == field
    with container.databases.unit_of_work("registry") as session:
        assert session.scalar(select(func.count()).select_from(m.Resident)) == 0


def test_households_across_overlapping_batches_and_a_retried_batch(
    container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Households span batch boundaries while batches are stored two at a time (PostgreSQL),
    and one batch is retried with look-ups (as after a unique-index collision): every key
    still ends up with exactly one household, which exists, and nothing is orphaned."""
    from sqlalchemy.exc import IntegrityError

    from mynumber.registry import bulk

    values = {"family_name": "山田", "family_name_kana": "ヤマダ", "given_name_kana": "タロウ",
              "birth_date": "1990-01-01", "sex": "male", "municipality_code": SHINJUKU,
              "address": "東京都新宿区一丁目"}
    lines = [",".join(FIELDS)] + [
        ",".join({**values, "household_key": f"H{i // 3}", "given_name": f"太郎{i}"}
                 .get(f, "") for f in FIELDS)
        for i in range(40)
    ]
    path = tmp_path / "h.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    real = bulk.store_rows
    calls = {"n": 0}

    def collide_once(*args: object, **kwargs: object) -> list[int]:
        calls["n"] += 1
        if calls["n"] == 4 and not kwargs.get("checked", True):
            on_households = kwargs.get("on_households")
            real(*args, **kwargs)  # type: ignore[arg-type]
            assert on_households is not None
            raise IntegrityError("INSERT", {}, Exception("duplicate key"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("mynumber.registry.importer.store_rows", collide_once)
    report = Importer(container.registry, batch_size=4).run(path)
    assert report.stored == 40 and report.reconciled and calls["n"] == 11

    with container.databases.unit_of_work("registry") as session:
        pairs = session.execute(select(m.Resident.given_name, m.Resident.household_id)).all()
        by_key: dict[int, set[int]] = {}
        for name, household_id in pairs:
            by_key.setdefault(int(name.removeprefix("太郎")) // 3, set()).add(household_id)
        assert all(len(ids) == 1 for ids in by_key.values()) and len(by_key) == 14
        assert len({next(iter(ids)) for ids in by_key.values()}) == 14
        assert session.scalar(select(func.count()).select_from(m.Household)) == 14
    assert set(orphans(container).values()) == {0}

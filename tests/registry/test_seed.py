"""`mynumber seed`: a synthetic population with the shape, the hard cases and the demo staff."""

from __future__ import annotations

import base64
import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from mynumber.app import Container
from mynumber.auth import models as auth_models
from mynumber.auth.interfaces import LoginFailed, StaffRole
from mynumber.cli.main import app
from mynumber.codes import individual_number, kana, resident_code
from mynumber.registry import models as m
from mynumber.registry import seed as seeding
from mynumber.settings import Mode, Settings

AS_OF = dt.date(2025, 10, 1)
COUNT = 300
RELATIONSHIPS = {"世帯主", "妻", "夫", "子", "父", "母"}


@pytest.fixture
def seeded(container: Container) -> seeding.SeedResult:
    return seeding.run_seed(container, COUNT, seed=7, as_of=AS_OF)


def _residents(container: Container) -> list[m.Resident]:
    with container.databases.unit_of_work("registry") as session:
        rows = list(session.scalars(select(m.Resident).order_by(m.Resident.id)))
        session.expunge_all()
    return rows


def _age(birth: dt.date, on: dt.date = AS_OF) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def test_seed_registers_numbered_residents(container: Container, seeded: seeding.SeedResult
                                          ) -> None:
    assert seeded.created == COUNT and not seeded.skipped
    rows = _residents(container)
    assert len(rows) == COUNT
    codes = [r.resident_code for r in rows]
    assert len(set(codes)) == COUNT
    assert all(resident_code.is_valid(c) for c in codes)
    assert all(r.number_generation == 0 for r in rows)
    # Every number can be derived, validates, and is unique.
    numbers = {container.registry.numbering.individual_number(c) for c in codes}
    assert len(numbers) == COUNT
    assert all(individual_number.is_valid(n) for n in numbers)
    with container.databases.unit_of_work("registry") as session:
        issued = session.scalar(select(func.count()).select_from(m.IssuedNumber))
        letters = Counter(session.scalars(select(m.NotificationLetter.resident_id)))
    assert issued == COUNT
    assert sorted(letters) == sorted(r.id for r in rows)
    assert set(letters.values()) == {1}


def test_households_and_relationships(container: Container, seeded: seeding.SeedResult) -> None:
    rows = _residents(container)
    households: dict[int | None, list[m.Resident]] = {}
    for row in rows:
        households.setdefault(row.household_id, []).append(row)
    assert None not in households
    assert seeded.households == len(households)
    sizes = Counter(len(members) for members in households.values())
    assert sizes[1] > 0 and sum(n for size, n in sizes.items() if size > 1) > 0
    assert {r.relationship for r in rows} <= RELATIONSHIPS
    assert {"世帯主", "妻", "子"} <= {r.relationship for r in rows}
    for members in households.values():
        heads = [r for r in members if r.relationship == "世帯主"]
        assert len(heads) == 1
        assert len({(r.address, r.municipality_code, r.postal_code) for r in members}) == 1
        parents = [r for r in members if r.relationship in ("世帯主", "妻", "夫")]
        for child in (r for r in members if r.relationship == "子"):
            for parent in parents:
                gap = (child.birth_date - parent.birth_date).days / 365.2425
                assert 20 <= gap <= 45
        japanese = {(r.family_name, r.family_name_kana) for r in members if r.nationality == "JP"}
        assert len(japanese) <= 1  # a household shares its surname
    # Addresses belong to the municipality they are registered in.
    names = {c: (p, n) for c, p, n in _municipality_names(container)}
    for row in rows:
        prefecture, name = names[row.municipality_code]
        assert row.address.startswith(prefecture + name)
        assert len(row.postal_code) == 7 and row.postal_code.isdigit()


def _municipality_names(container: Container) -> list[tuple[str, str, str]]:
    with container.databases.unit_of_work("registry") as session:
        return [tuple(r) for r in session.execute(  # type: ignore[misc]
            select(m.Municipality.code, m.Municipality.prefecture, m.Municipality.name)
        )]


def test_age_structure_and_events(container: Container, seeded: seeding.SeedResult) -> None:
    rows = _residents(container)
    ages = [_age(r.birth_date) for r in rows]
    old = sum(a >= 65 for a in ages) / len(ages)
    young = sum(a < 15 for a in ages) / len(ages)
    assert 0.22 <= old <= 0.36, old
    assert 0.07 <= young <= 0.17, young
    assert max(ages) >= 90 and min(ages) <= 4
    with container.databases.unit_of_work("registry") as session:
        events = {e.resident_id: e for e in session.scalars(select(m.LifeEvent))}
    assert set(events) == {r.id for r in rows}
    born_since = AS_OF - dt.timedelta(days=365)
    for row in rows:
        event = events[row.id]
        if row.birth_date > born_since:
            assert (event.kind, event.occurred_on) == ("birth", row.birth_date)
        else:
            assert (event.kind, event.occurred_on) == ("import", AS_OF)
    newborns = any(r.birth_date > born_since for r in rows)
    assert any(e.kind == "birth" for e in events.values()) == newborns


def test_foreign_residents(container: Container, seeded: seeding.SeedResult) -> None:
    foreign = [r for r in _residents(container) if r.nationality != "JP"]
    assert len(foreign) >= 3
    for row in foreign:
        assert row.residence_status
        for text in (row.family_name, row.given_name, row.family_name_kana):
            assert all("\u30a0" <= ch <= "\u30ff" for ch in text), text
    japanese = [r for r in _residents(container) if r.nationality == "JP"]
    assert all(r.residence_status == "" for r in japanese)


def test_same_kana_birth_and_sex_at_different_addresses(
    container: Container, seeded: seeding.SeedResult
) -> None:
    rows = _residents(container)
    groups: dict[tuple[str, dt.date, str], list[m.Resident]] = {}
    for row in rows:
        groups.setdefault((row.name_kana_key, row.birth_date, row.sex), []).append(row)
    lookalikes = [g for g in groups.values() if len({r.address for r in g}) > 1]
    assert len(lookalikes) >= 2
    planted = [c for c in seeded.hard_cases if c.kind == "same_kana_birth_sex"]
    assert len(planted) >= 2
    assert any(c.people[0].family_name != c.people[1].family_name for c in planted)
    assert any(c.people[0].family_name == c.people[1].family_name for c in planted)
    for case in planted:
        a, b = (_find(rows, p) for p in case.people)
        assert a.id != b.id and a.resident_code != b.resident_code
        assert a.name_kana_key == b.name_kana_key
        assert (a.birth_date, a.sex) == (b.birth_date, b.sex)
        assert kana.normalize_address(a.address) != kana.normalize_address(b.address)
        assert a.household_id != b.household_id


def test_kanji_variants_on_different_people(container: Container,
                                            seeded: seeding.SeedResult) -> None:
    rows = _residents(container)
    planted = [c for c in seeded.hard_cases if c.kind == "kanji_variant"]
    assert {c.note for c in planted} == {"髙橋/高橋", "齋藤/斎藤", "渡邊/渡辺", "山﨑/山崎"}
    for case in planted:
        a, b = (_find(rows, p) for p in case.people)
        assert a.family_name != b.family_name
        assert kana.normalize_name(a.family_name + a.given_name) == kana.normalize_name(
            b.family_name + b.given_name)
        assert a.id != b.id and a.birth_date != b.birth_date and a.address != b.address
    surnames = {r.family_name for r in rows}
    assert {"髙橋", "高橋", "齋藤", "斎藤", "渡邊", "渡辺", "山﨑", "山崎"} <= surnames


def _find(rows: list[m.Resident], person: seeding.PersonRef) -> m.Resident:
    found = [r for r in rows if (r.family_name, r.given_name, r.birth_date, r.sex, r.address)
             == (person.family_name, person.given_name, person.birth_date, person.sex.value,
                 person.address)]
    assert len(found) == 1, person
    return found[0]


def test_if_empty_is_a_no_op_the_second_time(container: Container) -> None:
    first = seeding.run_seed(container, 60, seed=3, if_empty=True, as_of=AS_OF)
    assert first.created == 60 and not first.skipped
    assert sorted(first.staff_created) == ["demo-clerk", "demo-shibuya", "demo-supervisor"]
    before = _residents(container)
    second = seeding.run_seed(container, 60, seed=3, if_empty=True, as_of=AS_OF)
    assert second.skipped and second.created == 0 and second.existing == 60
    assert second.staff_created == []
    assert [r.resident_code for r in _residents(container)] == [r.resident_code for r in before]
    with container.databases.unit_of_work("auth") as session:
        assert session.scalar(select(func.count()).select_from(auth_models.Staff)) == 3


def test_demo_staff_log_in_with_password_and_totp(container: Container) -> None:
    assert sorted(seeding.ensure_demo_staff(container)) == [
        "demo-clerk", "demo-shibuya", "demo-supervisor"]
    assert seeding.ensure_demo_staff(container) == []  # idempotent
    expected = {
        "demo-clerk": (StaffRole.CLERK, "131041"),
        "demo-supervisor": (StaffRole.SUPERVISOR, "131041"),
        "demo-shibuya": (StaffRole.CLERK, "131130"),
    }
    for demo in seeding.DEMO_STAFF:
        base64.b32decode(demo.totp_secret)  # valid base32
        assert len(demo.totp_secret) == 32
        code = pyotp.TOTP(demo.totp_secret).now()
        token = container.staff_auth.login(demo.username, seeding.DEMO_PASSWORD, code)
        principal = container.staff_auth.authenticate(token)
        assert (principal.role, principal.municipality_code) == expected[demo.username]
    with pytest.raises(LoginFailed):
        container.staff_auth.login("demo-clerk", "wrong-password-2026",
                                   pyotp.TOTP(seeding.DEMO_CLERK_TOTP_SECRET).now())


@dataclass
class _Target:
    settings: Settings
    databases: Any
    registry: Any
    staff_auth: Any


def test_no_demo_staff_in_production_mode(container: Container) -> None:
    production = container.settings.model_copy(update={"mode": Mode.PRODUCTION})
    target = _Target(production, container.databases, container.registry, container.staff_auth)
    assert seeding.ensure_demo_staff(target) == []
    result = seeding.run_seed(target, 20, seed=1, as_of=AS_OF)
    assert result.created == 20 and result.staff_created == []
    with container.databases.unit_of_work("auth") as session:
        assert session.scalar(select(func.count()).select_from(auth_models.Staff)) == 0


def _people(population: seeding.Population) -> list[tuple[Any, ...]]:
    return [(p.family_name, p.given_name, p.family_name_kana, p.given_name_kana, p.birth_date,
             p.sex, p.relationship, h.address) for h in population.households for p in h.members]


def test_deterministic_for_a_seed(container: Container, seeded: seeding.SeedResult) -> None:
    again = seeding.generate_population(COUNT, seed=7, as_of=AS_OF)
    assert _people(again) == _people(seeding.generate_population(COUNT, seed=7, as_of=AS_OF))
    assert _people(again) != _people(seeding.generate_population(COUNT, seed=8, as_of=AS_OF))
    stored = sorted((r.family_name, r.given_name, r.birth_date, r.address)
                    for r in _residents(container))
    assert stored == sorted((p[0], p[1], p[4], p[7]) for p in _people(again))
    assert again.hard_cases == seeded.hard_cases


def test_census_shape_at_scale() -> None:
    population = seeding.generate_population(10_000, seed=11, as_of=AS_OF)
    people = [p for h in population.households for p in h.members]
    assert len(people) == 10_000
    ages = [_age(p.birth_date) for p in people]
    assert sum(a >= 65 for a in ages) / len(ages) == pytest.approx(0.29, abs=0.02)
    assert sum(a < 15 for a in ages) / len(ages) == pytest.approx(0.12, abs=0.02)
    assert len([c for c in population.hard_cases if c.kind == "same_kana_birth_sex"]) == 10
    assert any(p.birth_date > AS_OF - dt.timedelta(days=365) for p in people)  # births
    assert sum(p.nationality != "JP" for p in people) == 250


def test_cli_seed_if_empty(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYNUMBER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MYNUMBER_KEY_DIR", str(settings.key_dir))
    if settings.database_url:
        monkeypatch.setenv("MYNUMBER_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    first = runner.invoke(app, ["seed", "--residents", "40", "--if-empty", "--seed", "5",
                                "--as-of", AS_OF.isoformat()])
    assert first.exit_code == 0, first.output
    assert "seeded 40 residents" in first.output
    second = runner.invoke(app, ["seed", "--if-empty"])
    assert second.exit_code == 0, second.output
    assert "nothing seeded" in second.output
    # デジタル庁 can answer 公金受取口座 look-ups in the seeded network: its keys are registered.
    from mynumber.accounts.interfaces import DIGITAL_AGENCY
    from mynumber.app import build_container

    container = build_container(settings)
    try:
        agency = container.network.agency(DIGITAL_AGENCY)
        assert agency.signing_key and agency.encryption_key
    finally:
        container.close()

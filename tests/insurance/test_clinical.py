"""The synthetic 薬剤情報 / 特定健診情報 / 診療・手術情報 generator: deterministic for a seed,
特定健診 only at ages 40-74, every line within the window."""

from __future__ import annotations

import datetime as dt
import random
import re
import threading

import pytest

from mynumber.insurance.clinical import (
    CHECKUP_MAX_AGE,
    CHECKUP_MIN_AGE,
    synthetic_records,
)
from mynumber.insurance.interfaces import ClinicalRecord, ConsentItem

TODAY = dt.date(2026, 3, 31)


def records(seed: int, age: int, *, today: dt.date = TODAY, months: int = 36
            ) -> list[ClinicalRecord]:
    return synthetic_records(random.Random(seed), today=today, age=age, months=months)


def of(lines: list[ClinicalRecord], item: ConsentItem) -> list[ClinicalRecord]:
    return [r for r in lines if r.item is item]


def test_the_same_seed_gives_the_same_lines() -> None:
    assert records(7, 58) == records(7, 58)
    assert records(7, 58) != records(8, 58)
    # Faker's own global state does not leak in: another Faker use between calls changes
    # nothing.
    from faker import Faker
    first = records(11, 66)
    Faker("ja_JP").name()
    Faker.seed(12345)
    assert records(11, 66) == first


def test_deterministic_across_threads() -> None:
    expected = {seed: records(seed, 50 + seed) for seed in range(8)}
    got: dict[int, list[ClinicalRecord]] = {}

    def work(seed: int) -> None:
        for _ in range(5):
            got[seed] = records(seed, 50 + seed)
            assert got[seed] == expected[seed]

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


@pytest.mark.parametrize(("months", "start"), [
    (1, dt.date(2026, 2, 28)),  # 31 February does not exist: the month's last day
    (6, dt.date(2025, 9, 30)),
    (36, dt.date(2023, 3, 31)),
])
def test_every_line_is_within_the_window_and_newest_first(months: int, start: dt.date) -> None:
    for seed in range(30):
        lines = records(seed, 20 + seed * 2, months=months)
        assert all(start <= line.on <= TODAY for line in lines)
        assert [r.on for r in lines] == sorted((r.on for r in lines), reverse=True)


def test_the_window_start_clamps_to_the_month_end() -> None:
    lines = [r for seed in range(20) for r in records(seed, 60, today=dt.date(2026, 5, 31),
                                                       months=3)]
    assert lines
    assert min(r.on for r in lines) >= dt.date(2026, 2, 28)


@pytest.mark.parametrize("age", [0, 5, 18, 30, 39, 40])
def test_no_checkups_before_forty(age: int) -> None:
    # A 40-year-old may have turned 40 yesterday: no check-up is certain to have fallen at 40.
    for seed in range(40):
        assert of(records(seed, age), ConsentItem.CHECKUPS) == []


@pytest.mark.parametrize("age", [75, 76, 80, 95])
def test_no_checkups_after_seventy_four(age: int) -> None:
    for seed in range(40):
        lines = of(records(seed, age), ConsentItem.CHECKUPS)
        for line in lines:
            years_back = TODAY.year - line.on.year - (
                (TODAY.month, TODAY.day) < (line.on.month, line.on.day))
            assert age - years_back <= CHECKUP_MAX_AGE
    # At 78 today, three years back was 75 at least: nothing.
    assert all(of(records(seed, 78), ConsentItem.CHECKUPS) == [] for seed in range(40))


@pytest.mark.parametrize("age", [45, 60, 70])
def test_checkups_each_year_from_forty_to_seventy_four(age: int) -> None:
    for seed in range(20):
        lines = of(records(seed, age), ConsentItem.CHECKUPS)
        days = sorted({r.on for r in lines})
        assert 2 <= len(days) <= 4  # one a year over three years
        assert len({d.year for d in days}) == len(days)
        for day in days:
            years_back = TODAY.year - day.year - ((TODAY.month, TODAY.day) < (day.month,
                                                                            day.day))
            assert age - years_back - 1 >= CHECKUP_MIN_AGE
            assert age - years_back <= CHECKUP_MAX_AGE
            labels = {r.label for r in lines if r.on == day}
            assert {"BMI", "腹囲", "収縮期血圧", "拡張期血圧", "HbA1c(NGSP)",
                    "LDLコレステロール", "HDLコレステロール", "中性脂肪"} <= labels


def test_checkup_values_are_plausible() -> None:
    units = {"BMI": "kg/m²", "腹囲": "cm", "収縮期血圧": "mmHg", "拡張期血圧": "mmHg",
             "HbA1c(NGSP)": "%", "LDLコレステロール": "mg/dL"}
    ranges = {"BMI": (15, 40), "腹囲": (55, 140), "収縮期血圧": (85, 200),
              "拡張期血圧": (50, 130), "HbA1c(NGSP)": (4.0, 9.5), "LDLコレステロール": (40, 250)}
    for seed in range(30):
        for line in of(records(seed, 55), ConsentItem.CHECKUPS):
            if line.label in units:
                number, unit = line.value.split(" ")
                assert unit == units[line.label]
                low, high = ranges[line.label]
                assert low <= float(number) <= high, line
            assert line.source.endswith("健診センター")


def test_drug_lines_name_a_generic_drug_dose_and_days() -> None:
    lines = [r for seed in range(20) for r in of(records(seed, 68), ConsentItem.DRUGS)]
    assert lines
    pattern = re.compile(r"^1回[0-9.]+(錠|g|枚) .+ ([0-9]+日分|[0-9]+回分)$")
    for line in lines:
        assert pattern.match(line.value), line.value
        assert re.search(r"(錠|細粒|DS|テープ)[0-9.]*(mg|μg|%)?", line.label), line.label
        assert line.source.endswith(("薬局", "店", "クリニック"))
    # Long-term prescriptions repeat.
    names = [r.label for r in lines]
    assert any(names.count(n) >= 5 for n in set(names))


def test_children_get_paediatric_forms_only() -> None:
    for seed in range(30):
        for line in of(records(seed, 4), ConsentItem.DRUGS):
            assert any(form in line.label for form in ("細粒", "DS", "テープ")), line.label


def test_treatments_name_department_and_setting() -> None:
    lines = [r for seed in range(30) for r in of(records(seed, 64), ConsentItem.TREATMENTS)]
    assert any(r.label == "初診料" for r in lines)
    assert any("入院" in r.value for r in lines)
    for line in lines:
        assert re.match(r"^\S+ (外来|入院[0-9]+日)$", line.value), line.value
        assert line.source.endswith(("クリニック", "病院", "医院"))


def test_a_first_visit_comes_before_the_repeat_visits() -> None:
    for seed in range(40):
        lines = sorted(of(records(seed, 60), ConsentItem.TREATMENTS), key=lambda r: r.on)
        first_seen: dict[tuple[str, str], dt.date] = {}
        for line in lines:
            key = (line.source, line.value)
            if line.label == "初診料":
                assert key not in first_seen, line
                first_seen[key] = line.on
            elif line.label == "再診料":
                assert key in first_seen and first_seen[key] <= line.on, line


def test_institutions_are_faker_ja_jp_names_that_vary_by_seed() -> None:
    sources = {r.source for seed in range(20) for r in records(seed, 60)}
    assert len(sources) > 20
    assert all(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", s) for s in sources)


def test_every_item_appears_for_an_adult_in_range() -> None:
    items = {r.item for seed in range(10) for r in records(seed, 55)}
    assert items == set(ConsentItem)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        records(1, -1)
    with pytest.raises(ValueError):
        records(1, 50, months=0)

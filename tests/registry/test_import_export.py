"""`mynumber registry import/export`: the format, the rejections (named by line, field and
reason, never by value), all-or-nothing batches, resuming, reconciliation and the round trip."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import random
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from mynumber.app import Container, build_container
from mynumber.cli.main import app
from mynumber.codes import individual_number, local_government_code
from mynumber.registry import bulk
from mynumber.registry import models as m
from mynumber.registry.exporter import ExportError, export_residents
from mynumber.registry.importer import (
    FIELDS,
    BatchFailed,
    Importer,
    ImportFileError,
    ImportReport,
    LineParser,
    _LineError,
)
from mynumber.registry.interfaces import SYSTEM, InvalidResidentData, NewResident, Sex
from mynumber.registry.services import load_municipality_rows, validate_new_resident
from mynumber.settings import Settings
from tests.conftest import PG_URL, SHIBUYA, SHINJUKU

NUMBER = "123456789018"  # a valid 個人番号 check digit (synthetic)
TODAY = dt.date.today()


def line(**overrides: Any) -> dict[str, str]:
    values = {
        "household_key": "", "family_name": "山田", "given_name": "太郎",
        "family_name_kana": "ヤマダ", "given_name_kana": "タロウ", "birth_date": "1990-04-01",
        "sex": "male", "municipality_code": SHINJUKU, "address": "東京都新宿区西新宿二丁目8番1号",
        "postal_code": "163-8001", "relationship": "", "nationality": "", "residence_status": "",
        "resident_code": "", "number_generation": "", "event": "", "occurred_on": "",
    }
    values.update({k: str(v) for k, v in overrides.items()})
    return values


def write_csv(path: Path, rows: list[dict[str, str]], fields: tuple[str, ...] = FIELDS) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def run_import(container: Container, path: Path, **kwargs: Any) -> ImportReport:
    return Importer(container.registry, actor="test:import", **kwargs).run(path)


def residents(container: Container, *where: Any) -> list[m.Resident]:
    with container.databases.unit_of_work("registry") as session:
        return list(session.scalars(select(m.Resident).where(*where).order_by(m.Resident.id)))


def count(container: Container, model: Any, *where: Any) -> int:
    with container.databases.unit_of_work("registry") as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def by_line(container: Container, report: ImportReport, line_no: int) -> list[m.Resident]:
    return residents(container, m.Resident.import_run_id == report.run_id,
                     m.Resident.import_line == line_no)


# --- the happy path --------------------------------------------------------------------------


def test_csv_import_stores_every_line_and_reconciles(container: Container, tmp_path: Path) -> None:
    rows = [
        line(household_key="A", given_name="太郎"),
        line(household_key="A", given_name="花子", given_name_kana="はなこ", sex="女",
             relationship="妻"),
        line(household_key="B", municipality_code=SHIBUYA[:5], sex="2", family_name="佐藤",
             family_name_kana="ｻﾄｳ", postal_code="1500002", address="東京都渋谷区渋谷1-1"),
        line(given_name="赤子", given_name_kana="アカコ", birth_date="2024-05-01",
             event="birth"),
        line(given_name="移住", given_name_kana="イジュウ", event="move_in",
             occurred_on="2023-01-15", nationality="us", residence_status="永住者"),
    ]
    path = write_csv(tmp_path / "people.csv", rows)
    progress: list[tuple[int, int]] = []
    report = run_import(container, path, batch_size=2,
                        on_progress=lambda d, t: progress.append((d, t)))
    assert (report.read, report.stored, report.rejected) == (5, 5, 0)
    assert report.reconciled and report.batches == 3 and report.resumed_batches == 0
    assert progress and progress[-1] == (path.stat().st_size, path.stat().st_size)

    stored = [by_line(container, report, n)[0] for n in range(2, 7)]
    a1, a2, b, baby, mover = stored
    # A household key spans batches (batch size 2): one household.
    assert a1.household_id == a2.household_id != b.household_id
    assert a2.given_name_kana == "ハナコ" and a2.sex == "female" and a2.relationship == "妻"
    assert b.municipality_code == SHIBUYA and b.sex == "female" and b.family_name_kana == "サトウ"
    assert a1.postal_code == "1638001" and a1.relationship == "世帯主" and a1.nationality == "JP"
    assert mover.nationality == "US" and mover.residence_status == "永住者"
    with container.databases.unit_of_work("registry") as session:
        kinds = {e.resident_id: (e.kind, e.occurred_on) for e in session.scalars(
            select(m.LifeEvent).where(m.LifeEvent.resident_id.in_([r.id for r in stored])))}
        assert kinds[a1.id] == ("import", TODAY)
        assert kinds[baby.id] == ("birth", dt.date(2024, 5, 1))
        assert kinds[mover.id] == ("move_in", dt.date(2023, 1, 15))
        batches = session.scalars(select(m.ImportBatch).order_by(m.ImportBatch.batch_no)).all()
        assert [(x.batch_no, x.first_line, x.last_line, x.stored) for x in batches] == [
            (1, 2, 3, 2), (2, 4, 5, 2), (3, 6, 6, 1)]
        run = session.scalars(select(m.ImportRun)).one()
        assert run.finished_at is not None and run.lines_read == 5 and run.file_format == "csv"
        audits = session.scalars(select(m.AuditEvent)
                                 .where(m.AuditEvent.tag == "registry:import:batch")).all()
        assert len(audits) == 3 and audits[0].actor == "test:import"
    assert count(container, m.NotificationLetter) == 5
    assert count(container, m.IssuedNumber) == 5


def test_jsonl_import(container: Container, tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {k: v for k, v in line(given_name=f"太郎{i}").items() if v} for i in range(3)
    ]
    rows[1]["number_generation"] = None
    path = write_jsonl(tmp_path / "people.jsonl", rows)
    report = run_import(container, path)
    assert (report.read, report.stored, report.rejected) == (3, 3, 0)
    assert [r.given_name for r in residents(container)] == ["太郎0", "太郎1", "太郎2"]


def test_a_finished_run_run_again_stores_nothing_and_reports_the_same(
    container: Container, tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "p.csv", [line(given_name=f"名{i}") for i in range(7)]
                     + [line(birth_date="1990-13-01")])
    first = run_import(container, path, batch_size=3)
    again = run_import(container, path, batch_size=3)
    assert first.as_dict() | {"resumed_batches": 3} == again.as_dict()
    assert first.resumed_batches == 0 and again.resumed_batches == 3
    assert count(container, m.Resident) == 7 and count(container, m.ImportRejection) == 1
    assert count(container, m.ImportRun) == 1


# --- rejections -----------------------------------------------------------------------------


def unknown_but_valid_municipality() -> str:
    known = {row["code"] for row in load_municipality_rows()}
    for body in range(47990, 10000, -1):
        code = f"{body:05d}" + local_government_code.calc_check_digit(f"{body:05d}")
        if code not in known and local_government_code.is_valid(code):
            return code
    raise AssertionError("no free code")


BAD_LINES: list[tuple[dict[str, str], str, str]] = [
    # (overrides, field named, a word of the reason)
    ({"birth_date": "1990/04/01"}, "birth_date", "YYYY-MM-DD"),
    ({"birth_date": "1990-02-30"}, "birth_date", "calendar"),
    ({"birth_date": "2999-01-01"}, "birth_date", "future"),
    ({"municipality_code": "131042"}, "municipality_code", "check digit"),
    ({"given_name_kana": "Taro"}, "given_name_kana", "kana"),
    ({"family_name": ""}, "family_name", "required"),
    ({"sex": "x"}, "sex", "male"),
    ({"postal_code": "12345"}, "postal_code", "7 digits"),
    ({"nationality": "USA"}, "nationality", "ISO"),
    ({"nationality": "US"}, "residence_status", "residence_status"),
    ({"event": "death"}, "event", "birth"),
    ({"event": "birth", "occurred_on": "2020-01-01"}, "occurred_on", "birth date"),
    ({"occurred_on": "1980-01-01"}, "occurred_on", "before"),
    ({"resident_code": "12345678904"}, "resident_code", "check digit"),
    ({"number_generation": "2"}, "number_generation", "resident_code"),
    ({"number_generation": "-1"}, "number_generation", "whole number"),
    ({"address": f"東京都新宿区 {NUMBER}"}, "address", "個人番号"),
    ({"household_key": "1234-5678-9018"}, "household_key", "個人番号"),
    ({"residence_status": "１２３４ ５６７８ ９０１８"}, "residence_status", "個人番号"),
    ({"given_name": "太\x07郎"}, "given_name", "control"),
    ({"address": "x" * 201}, "address", "longer"),
    ({"residence_status": "y" * 41}, "residence_status", "longer"),
]


def test_bad_lines_are_rejected_by_field_and_nothing_of_them_is_stored(
    container: Container, tmp_path: Path,
) -> None:
    unknown = unknown_but_valid_municipality()
    cases = [*BAD_LINES, ({"municipality_code": unknown}, "municipality_code", "no municipality")]
    rows = [line(given_name="善"), *(line(**over) for over, _, _ in cases), line(given_name="良")]
    path = write_csv(tmp_path / "bad.csv", rows)
    report = run_import(container, path, batch_size=4)
    assert report.read == len(rows) and report.stored == 2
    assert report.rejected == len(cases) and report.reconciled
    got = {r.line: r for r in report.rejections}
    for offset, (over, field, word) in enumerate(cases):
        rejection = got[offset + 3]  # header is line 1, the good line is line 2
        assert rejection.field == field, (over, rejection)
        assert word.lower() in rejection.reason.lower(), (over, rejection)
        for value in over.values():
            if len(value) >= 4 and value not in ("birth", "death"):  # values, not keywords
                assert value not in rejection.reason
        assert NUMBER not in rejection.reason
        assert by_line(container, report, offset + 3) == []
    assert [r.given_name for r in residents(container)] == ["善", "良"]
    # Rejections are stored with the batch: a later run reports them from the database.
    assert count(container, m.ImportRejection) == len(cases)


def test_malformed_lines_in_either_format(container: Container, tmp_path: Path) -> None:
    good = line()
    values = [good[f] for f in FIELDS]
    record = ",".join(values).encode()
    raw_lines = [
        ",".join(FIELDS).encode(),                                        # 1 header
        record,                                                           # 2 fine
        ",".join(values[:-1]).encode(),                                   # 3 a field short
        ",".join([values[0], '"山田', *values[2:]]).encode(),             # 4 unbalanced quote
        record.replace("山田".encode(), b"\xe5\xb1\xff"),                  # 5 not UTF-8
        b"",                                                              # 6 blank: no record
        record.replace("太郎".encode(), '"太,郎"'.encode()),               # 7 quoted comma: fine
        record.replace("タロウ".encode(), "タ\x85ロウ".encode()),           # 8 a C1 control
    ]
    path = tmp_path / "m.csv"
    path.write_bytes(b"\r\n".join(raw_lines) + b"\r\n")
    report = run_import(container, path)
    reasons = {r.line: (r.field, r.reason) for r in report.rejections}
    assert report.read == 6 and report.reconciled
    assert reasons[3] == (None, "the line has 16 fields, the header has 17")
    assert reasons[4][0] is None and "quotes" in reasons[4][1]
    assert reasons[5][0] == "family_name" and "UTF-8" in reasons[5][1]
    assert reasons[8][0] == "given_name_kana" and "control" in reasons[8][1]
    assert set(reasons) == {3, 4, 5, 8}
    assert sorted(r.given_name for r in residents(container)) == ["太,郎", "太郎"]

    jsonl = tmp_path / "m.jsonl"
    body = {k: v for k, v in line(given_name="次郎", given_name_kana="ジロウ").items() if v}
    jsonl.write_text("\n".join([
        json.dumps(body, ensure_ascii=False),
        '{"family_name": "山田", ',  # wrong JSON
        "[1, 2]",
        json.dumps(body | {"individual_number": NUMBER}),
        json.dumps(body | {"個人番号": NUMBER}, ensure_ascii=False),
        json.dumps(body | {"colour": "red"}),
        json.dumps(body | {NUMBER: "x"}),
        json.dumps(body | {"birth_date": 19900401}),
        json.dumps({k: v for k, v in body.items() if k != "birth_date"}, ensure_ascii=False),
        json.dumps(body | {"postal_code": NUMBER}),
    ]) + "\n", encoding="utf-8")
    report = run_import(container, jsonl)
    reasons = {r.line: (r.field, r.reason) for r in report.rejections}
    assert report.read == 10 and report.stored == 1 and report.reconciled
    assert reasons[2] == (None, "the line is not valid JSON")
    assert reasons[3] == (None, "the line is not a JSON object")
    assert reasons[4][0] == "individual_number" and reasons[5][0] == "individual_number"
    assert reasons[6] == ("colour", "unknown field")
    assert reasons[7] == (None, "unknown field")
    assert reasons[8] == ("birth_date", "birth_date must be a string")
    assert reasons[9] == ("birth_date", "birth_date is required")
    assert reasons[10][0] == "postal_code" and "個人番号" in reasons[10][1]
    assert all(NUMBER not in reason for _, reason in reasons.values())


def test_given_resident_codes_checked_against_the_file_and_the_database(
    container: Container, tmp_path: Path,
) -> None:
    numbering = container.registry.numbering
    existing = container.registry.register_birth(
        SYSTEM, validate_new_resident(NewResident(
            "既存", "者", "キゾン", "シャ", dt.date(2024, 1, 1), Sex.MALE, SHINJUKU, "住所"),
            TODAY), dt.date(2024, 1, 1))
    mine = numbering.resident_code(500)
    rows = [
        line(resident_code=mine, given_name="一"),
        line(resident_code=mine, given_name="二"),  # same code again in the file
        line(resident_code=existing.resident_code, given_name="三"),
        line(given_name="四"),
    ]
    report = run_import(container, write_csv(tmp_path / "c.csv", rows), batch_size=10)
    reasons = {r.line: (r.field, r.reason) for r in report.rejections}
    assert reasons == {
        3: ("resident_code", "resident_code appears on an earlier line of this file"),
        4: ("resident_code", "resident_code is already registered"),
    }
    assert by_line(container, report, 2)[0].resident_code == mine
    assert by_line(container, report, 5)[0].resident_code not in (mine, existing.resident_code)


def test_household_key_of_another_municipality_is_rejected(
    container: Container, tmp_path: Path,
) -> None:
    rows = [line(household_key="H"), line(household_key="H", municipality_code=SHIBUYA),
            line(household_key="H", given_name="花子")]
    report = run_import(container, write_csv(tmp_path / "h.csv", rows), batch_size=1)
    assert [(r.line, r.field) for r in report.rejections] == [(3, "household_key")]
    stored = residents(container)
    assert len(stored) == 2 and stored[0].household_id == stored[1].household_id


@pytest.mark.parametrize("header, needle", [
    ("individual_number," + ",".join(FIELDS), "individual number"),
    ("My-Number," + ",".join(FIELDS), "individual number"),
    (",".join(FIELDS) + ",colour", "unknown columns"),
    (",".join(f for f in FIELDS if f != "birth_date"), "lacks required columns: birth_date"),
    (",".join(FIELDS) + ",sex", "repeats columns: sex"),
])
def test_a_bad_header_is_fatal_and_stores_nothing(
    container: Container, tmp_path: Path, header: str, needle: str,
) -> None:
    path = tmp_path / "h.csv"
    path.write_text(header + "\n" + "1,2,3\n", encoding="utf-8")
    with pytest.raises(ImportFileError) as info:
        run_import(container, path)
    assert needle in info.value.detail
    assert count(container, m.ImportRun) == 0 and count(container, m.Resident) == 0


def test_unreadable_empty_and_unknown_files_are_fatal(container: Container, tmp_path: Path) -> None:
    for path, needle in [
        (tmp_path / "missing.csv", "no such file"),
        (tmp_path, "format"),
        (tmp_path / "people.txt", "format"),
    ]:
        with pytest.raises(ImportFileError) as info:
            run_import(container, path)
        assert needle in info.value.detail
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ImportFileError, match="empty"):
        run_import(container, empty)
    only_header = write_csv(tmp_path / "only.csv", [])
    with pytest.raises(ImportFileError, match="no records"):
        run_import(container, only_header)
    assert count(container, m.ImportRun) == 0


# --- atomicity and resume ---------------------------------------------------------------------


def test_a_failing_batch_rolls_back_whole_and_the_rerun_completes(
    container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [line(given_name=f"名{i}", household_key=f"H{i // 2}") for i in range(9)]
    rows[4] = line(birth_date="bad")  # a rejection inside the failing batch
    path = write_csv(tmp_path / "f.csv", rows)
    real = bulk._SQLiteWriter.letters, bulk._PostgresWriter.letters
    calls = {"n": 0}

    def flaky(real_method: Any) -> Any:
        def letters(self: Any, *args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("connection lost")
            real_method(self, *args, **kwargs)
        return letters

    monkeypatch.setattr(bulk._SQLiteWriter, "letters", flaky(real[0]))
    monkeypatch.setattr(bulk._PostgresWriter, "letters", flaky(real[1]))
    with pytest.raises(BatchFailed) as info:
        run_import(container, path, batch_size=3)
    assert "batch 2 (lines 5-7)" in str(info.value)
    # Batch 1 stands; of batch 2 nothing: no resident, household, rejection or batch row.
    assert count(container, m.Resident) == 3
    assert count(container, m.Household) == 2
    assert count(container, m.ImportRejection) == 0
    assert count(container, m.ImportBatch) == 1
    for model in (m.IssuedNumber, m.NotificationLetter, m.LifeEvent):
        assert count(container, model) == 3

    monkeypatch.setattr(bulk._SQLiteWriter, "letters", real[0])
    monkeypatch.setattr(bulk._PostgresWriter, "letters", real[1])
    report = run_import(container, path, batch_size=3)
    assert (report.read, report.stored, report.rejected) == (9, 8, 1)
    assert report.resumed_batches == 1 and report.batches == 3
    keys = [(r.import_run_id, r.import_line) for r in residents(container)]
    assert len(keys) == len(set(keys)) == 8
    # Households spanning the failed batch were resolved from the committed one.
    hh = {r.given_name: r.household_id for r in residents(container)}
    assert hh["名2"] == hh["名3"] and hh["名5"] == hh["名4"] if "名4" in hh else True
    assert hh["名6"] == hh["名7"]


def test_resume_with_another_batch_size_stores_each_line_once(
    container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [line(given_name=f"名{i}") for i in range(20)]
    path = write_csv(tmp_path / "r.csv", rows)
    original = Importer._store_batch
    state = {"n": 0}

    def stop_after_two(self: Importer, batch: Any) -> None:
        state["n"] += 1
        if state["n"] > 2:
            raise RuntimeError("killed")
        original(self, batch)

    monkeypatch.setattr(Importer, "_store_batch", stop_after_two)
    with pytest.raises(BatchFailed):
        run_import(container, path, batch_size=3)
    monkeypatch.setattr(Importer, "_store_batch", original)
    assert count(container, m.Resident) == 6
    report = run_import(container, path, batch_size=7)
    assert (report.read, report.stored, report.rejected, report.resumed_batches) == (20, 20, 0, 2)
    names = sorted(r.given_name for r in residents(container))
    assert names == sorted(f"名{i}" for i in range(20))


def test_collisions_found_by_the_unique_indexes_are_retried_with_lookups(
    container: Container, tmp_path: Path,
) -> None:
    numbering = container.registry.numbering
    # A migrated resident holds the code the pool hands out next …
    first = run_import(container, write_csv(tmp_path / "a.csv",
                                            [line(resident_code=numbering.resident_code(0))]))
    assert first.stored == 1
    # … so the next import's fast path collides on residents.resident_code, and recovers.
    report = run_import(container, write_csv(tmp_path / "b.csv",
                                             [line(given_name=f"名{i}") for i in range(5)]))
    assert report.stored == 5 and report.rejected == 0
    codes = [r.resident_code for r in residents(container)]
    assert len(set(codes)) == 6


def test_a_second_import_of_the_same_file_at_the_same_time_is_refused(
    container: Container, tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "x.csv", [line()])
    holder = Importer(container.registry)
    holder.sha256 = "ab" * 32
    other = Importer(container.registry)
    other.sha256 = holder.sha256
    with holder._exclusive():
        with pytest.raises(ImportFileError, match="another import"):
            with other._exclusive():
                pass
    with other._exclusive():
        pass
    assert run_import(container, path).stored == 1


def test_a_file_imported_as_one_format_cannot_resume_as_another(
    container: Container, tmp_path: Path,
) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{k: v for k, v in line().items() if v}])
    run_import(container, path)
    with pytest.raises(ImportFileError, match="imported as jsonl"):
        Importer(container.registry).run(path, "csv")


# --- the fast validation path agrees with services.validate_new_resident ---------------------

_text = st.text(st.sampled_from(list("山田太郎 ｱｲ やまだ ヤマダー・abc\t\x85　-1２")), max_size=6)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    family=_text, given_=_text, family_kana=_text, given_kana=_text,
    birth=st.dates(dt.date(1870, 1, 1), dt.date(2100, 1, 1)),
    sex=st.sampled_from(["male", "female"]),
    muni=st.sampled_from([SHINJUKU, SHIBUYA, "13104", "131042", "479999", "x"]),
    address=_text, postal=st.sampled_from(["", "1638001", "163-8001", "12", "１２３４５６７"]),
    relationship=st.sampled_from(["", "妻", " 子 ", "x" * 21]),
    nationality=st.sampled_from(["", "JP", "us", "USA", "１２", " jp "]),
    status=st.sampled_from(["", "永住者"]),
)
def test_fast_validation_agrees_with_validate_new_resident(
    family: str, given_: str, family_kana: str, given_kana: str, birth: dt.date, sex: str,
    muni: str, address: str, postal: str, relationship: str, nationality: str, status: str,
) -> None:
    known = {SHINJUKU, SHIBUYA}
    parser = LineParser(TODAY, known)
    values = tuple(line(family_name=family, given_name=given_, family_name_kana=family_kana,
                        given_name_kana=given_kana, municipality_code=muni, address=address,
                        postal_code=postal, relationship=relationship,
                        nationality=nationality)[f] for f in FIELDS)
    outcomes = []
    for _ in range(2):  # the second time the memo tables answer
        try:
            outcomes.append(parser._validate(values, birth, sex, status))
        except _LineError as exc:
            outcomes.append((exc.field, exc.reason))
    assert outcomes[0] == outcomes[1]
    try:
        expected = validate_new_resident(NewResident(
            family, given_, family_kana, given_kana, birth, Sex(sex),
            local_government_code.validate(muni) if local_government_code.is_valid(muni)
            else muni, address, postal, None, relationship, nationality or "JP",
            status), TODAY)
    except InvalidResidentData as exc:
        assert outcomes[0] == (exc.field, exc.detail)
        return
    if expected.municipality_code not in known:
        assert outcomes[0] == ("municipality_code", "no municipality has this code")
        return
    assert outcomes[0] == (
        expected.family_name, expected.given_name, expected.family_name_kana,
        expected.given_name_kana, expected.birth_date, Sex(expected.sex).value,
        expected.municipality_code, expected.address, expected.postal_code,
        expected.relationship, expected.nationality, expected.residence_status)


# --- export and the round trip ------------------------------------------------------------


@pytest.fixture
def fresh_container(template: str, tmp_path: Path, key_dir: Path) -> Iterator[Container]:
    """A second, empty registry database with the same keys (another copy of the template)."""
    if PG_URL:
        name = f"mn_t2_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        built = build_container(Settings(database_url=url, data_dir=tmp_path / "d2",
                                         key_dir=key_dir))
        yield built
        built.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        data = tmp_path / "data2"
        shutil.copytree(template, data)
        built = build_container(Settings(data_dir=data, key_dir=key_dir))
        yield built
        built.close()


FIELDS_COMPARED = ("resident_code", "family_name", "given_name", "family_name_kana",
                   "given_name_kana", "birth_date", "sex", "municipality_code", "address",
                   "postal_code", "relationship", "nationality", "residence_status",
                   "number_generation")


def snapshot(container: Container) -> list[tuple[Any, ...]]:
    return sorted(tuple(getattr(r, f) for f in FIELDS_COMPARED) for r in residents(container))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_export_then_import_reproduces_the_residents_and_their_numbers(
    container: Container, fresh_container: Container, tmp_path: Path, suffix: str,
) -> None:
    rng = random.Random(7)
    rows = [line(given_name=f"名{i}", household_key=f"H{i // 3}",
                 birth_date=f"19{rng.randint(30, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                 sex=rng.choice(["male", "female"]), address=f'東京都新宿区1-{i}, "棟"')
            for i in range(12)]
    rows.append(line(given_name="外国", nationality="KR", residence_status="特別永住者"))
    run_import(container, write_csv(tmp_path / "src.csv", rows), batch_size=5)
    registry = container.registry
    first = residents(container)[0]
    registry.reissue_number(SYSTEM, first.id, "leaked")  # generation 1 now
    moved = residents(container)[1]
    registry.register_move_out(SYSTEM, moved.id, SHIBUYA, TODAY)

    out = tmp_path / f"export{suffix}"
    result = export_residents(registry, out)
    assert result.exported == 12 and out.exists()
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob(".export*"))  # no partial file left behind
    content = out.read_text(encoding="utf-8")
    numbers = {registry.reveal_number(SYSTEM, r.id, "t") for r in residents(container)}
    assert not any(n in content for n in numbers)
    assert "individual_number" not in content

    report = run_import(fresh_container, out)
    assert report.stored == 12 and report.rejected == 0
    source = [s for s in snapshot(container) if s[0] != moved.resident_code]
    assert snapshot(fresh_container) == source
    # The same 住民票コード under the same keys: the same 個人番号, the leaked one retired.
    for original in residents(container):
        if original.id == moved.id:
            continue
        (copy,) = residents(fresh_container, m.Resident.resident_code == original.resident_code)
        assert (fresh_container.registry.reveal_number(SYSTEM, copy.id, "t")
                == registry.reveal_number(SYSTEM, original.id, "t"))
    old = fresh_container.registry.numbering.individual_number(first.resident_code, 0)
    with pytest.raises(Exception, match="replaced"):
        fresh_container.registry.find_by_number(SYSTEM, old, "t")
    # Households survive the trip.
    groups: dict[int | None, set[str]] = {}
    for r in residents(fresh_container):
        groups.setdefault(r.household_id, set()).add(r.given_name)
    assert {"名0", "名2"} in groups.values()  # 名1 moved out: not exported
    # A new registration after the trip gets a fresh code, not one the import brought in.
    born = fresh_container.registry.register_birth(
        SYSTEM, validate_new_resident(NewResident(
            "新", "生", "シン", "セイ", TODAY, Sex.MALE, SHINJUKU, "住所"), TODAY), TODAY)
    imported = {r.resident_code for r in residents(container) if r.id != moved.id}
    assert born.resident_code not in imported
    assert len({r.resident_code for r in residents(fresh_container)}) == 13


def test_export_of_one_municipality_and_bad_requests(
    container: Container, tmp_path: Path,
) -> None:
    run_import(container, write_csv(tmp_path / "s.csv", [
        line(), line(municipality_code=SHIBUYA, given_name="渋谷")]))
    out = tmp_path / "shibuya.csv"
    result = export_residents(container.registry, out, municipality=SHIBUYA[:5])
    assert result.exported == 1 and result.municipality == SHIBUYA
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["given_name"] for r in rows] == ["渋谷"]
    assert tuple(rows[0]) == FIELDS
    with pytest.raises(ExportError):
        export_residents(container.registry, tmp_path / "x.csv", municipality="131042")
    with pytest.raises(Exception, match="no municipality"):
        export_residents(container.registry, tmp_path / "x.csv",
                         municipality=unknown_but_valid_municipality())
    with pytest.raises(ExportError):
        export_residents(container.registry, tmp_path / "x.txt")
    with pytest.raises(ExportError):
        export_residents(container.registry, tmp_path / "nodir" / "x.csv")
    with container.databases.unit_of_work("registry") as session:
        audits = session.scalars(select(m.AuditEvent)
                                 .where(m.AuditEvent.tag == "registry:residents:export")).all()
        assert [a.subject for a in audits] == [f"municipality:{SHIBUYA}"]
        assert audits[0].details["count"] == 1


# --- the command line ----------------------------------------------------------------------


def cli_env(settings: Settings) -> dict[str, str]:
    env = {"MYNUMBER_DATA_DIR": str(settings.data_dir),
           "MYNUMBER_KEY_DIR": str(settings.keys_path)}
    env["MYNUMBER_DATABASE_URL"] = settings.database_url or ""
    return env


def test_cli_import_json_and_export(settings: Settings, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [line(), line(sex="?")])
    runner = CliRunner()
    result = runner.invoke(app, ["registry", "import", str(path), "--json"],
                           env=cli_env(settings))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"read", "stored", "rejected", "rejections", "batches",
                           "resumed_batches", "run_id", "file_sha256"}
    assert (report["read"], report["stored"], report["rejected"]) == (2, 1, 1)
    assert report["rejections"] == [{"line": 3, "field": "sex",
                                     "reason": "sex must be male or female (also 男/女 or 1/2)"}]

    human = runner.invoke(app, ["registry", "import", str(path)], env=cli_env(settings))
    assert human.exit_code == 0 and "line 3 [sex]" in human.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("individual_number,family_name\n" + NUMBER + ",山田\n")
    failed = runner.invoke(app, ["registry", "import", str(bad), "--json"], env=cli_env(settings))
    assert failed.exit_code == 1 and failed.stdout == ""
    assert "nothing was stored" in failed.stderr and NUMBER not in failed.stderr

    out = tmp_path / "out.jsonl"
    exported = runner.invoke(app, ["registry", "export", str(out), "--json"],
                             env=cli_env(settings))
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["exported"] == 1
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])["family_name"] == "山田"
    wrong = runner.invoke(app, ["registry", "export", str(out), "--municipality", "99"],
                          env=cli_env(settings))
    assert wrong.exit_code == 1 and "municipality" in wrong.stderr


def test_no_number_in_any_rejection_even_when_it_is_everywhere(
    container: Container, tmp_path: Path,
) -> None:
    numbers = [n for n in (f"{i:011d}" for i in range(10**10, 10**10 + 200))
               if individual_number.is_valid(n + "0")][:3]
    rows = [line(**{f: NUMBER}) for f in FIELDS if f != "household_key"]
    rows += [line(address=f"{n[:4]}-{n[4:8]}-{n[8:]}0") for n in numbers]
    report = run_import(container, write_csv(tmp_path / "n.csv", rows))
    assert report.stored == 0 and report.rejected == len(rows)
    dumped = json.dumps(report.as_dict(), ensure_ascii=False)
    assert NUMBER not in dumped and "1234 5678" not in dumped


def test_a_record_gone_missing_fails_the_reconciliation(settings: Settings, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [line(given_name=f"名{i}") for i in range(3)])
    runner = CliRunner()
    first = runner.invoke(app, ["registry", "import", str(path), "--json"], env=cli_env(settings))
    assert first.exit_code == 0, first.output
    # Someone deletes an imported resident behind the registry's back …
    container = build_container(settings)
    try:
        with container.databases.unit_of_work("registry") as session:
            victim = session.scalars(select(m.Resident.id).order_by(m.Resident.id)).first()
            for model in (m.IssuedNumber, m.NotificationLetter, m.LifeEvent):
                session.execute(model.__table__.delete().where(model.resident_id == victim))
            session.execute(m.Resident.__table__.delete().where(m.Resident.id == victim))
    finally:
        container.close()
    # … and the next run of the same file says so and fails.
    again = runner.invoke(app, ["registry", "import", str(path), "--json"], env=cli_env(settings))
    assert again.exit_code == 3
    report = json.loads(again.stdout)
    assert (report["read"], report["stored"], report["rejected"]) == (3, 2, 0)
    assert "reconciliation failed" in again.stderr

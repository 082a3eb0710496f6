"""The J-LIS incident, replayed: an import killed with SIGKILL in the middle of its work loses
and duplicates nothing; run again, it ends with every line stored exactly once (or rejected
exactly once) and the reconciliation adds up. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from mynumber.db import Databases
from mynumber.registry import models as m
from mynumber.registry.importer import FIELDS
from mynumber.settings import Settings
from tests.conftest import SHIBUYA, SHINJUKU

LINES = 30_000
BATCH = 1_000
# line number -> (the field named, what is wrong)
BAD = {
    1_502: ("birth_date", "1990-02-30"),
    15_003: ("address", "東京都新宿区 1234 5678 9018"),  # a 個人番号-shaped value
    29_504: ("municipality_code", "131042"),
}
FAMILIES = [("山田", "ヤマダ"), ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ")]


def write_file(path: Path) -> None:
    rows = [",".join(FIELDS)]
    for line_no in range(2, LINES + 2):
        family, kana = FAMILIES[line_no % len(FAMILIES)]
        values = {
            "household_key": f"H{line_no // 3}", "family_name": family,
            "given_name": f"太郎{line_no}", "family_name_kana": kana,
            "given_name_kana": "タロウ",
            "birth_date": f"19{50 + line_no % 50}-0{1 + line_no % 9}-1{line_no % 10}",
            "sex": "male" if line_no % 2 else "female",
            "municipality_code": SHINJUKU if (line_no // 3) % 2 else SHIBUYA,
            "address": f"東京都一丁目{line_no // 3}番", "postal_code": "1600023",
        }
        if line_no in BAD:
            field, value = BAD[line_no]
            values[field] = value
        rows.append(",".join(values.get(f, "") for f in FIELDS))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYNUMBER_")}
    env.update(MYNUMBER_DATA_DIR=str(settings.data_dir), MYNUMBER_KEY_DIR=str(settings.keys_path))
    if settings.database_url:
        env["MYNUMBER_DATABASE_URL"] = settings.database_url
    return env


def command(path: Path) -> list[str]:
    return [sys.executable, "-m", "mynumber", "registry", "import", str(path),
            "--batch-size", str(BATCH), "--json"]


def committed_batches(databases: Databases) -> int:
    with databases.unit_of_work("registry") as session:
        return int(session.scalar(select(func.count()).select_from(m.ImportBatch)) or 0)


def test_killed_import_resumes_with_every_record_exactly_once(
    settings: Settings, tmp_path: Path,
) -> None:
    path = tmp_path / "residents.csv"
    write_file(path)
    databases = Databases(settings)
    env = cli_env(settings)

    process = subprocess.Popen(command(path), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while committed_batches(databases) < 1:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no batch committed in time"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL

    with databases.unit_of_work("registry") as session:
        batches = session.scalars(select(m.ImportBatch)).all()
        stored_then = int(session.scalar(select(func.count()).select_from(m.Resident)) or 0)
    # Killed half way: some batches committed, not all, and not one resident more than the
    # committed batches account for (the batch in flight left nothing behind).
    assert 1 <= len(batches) < LINES // BATCH
    assert stored_then == sum(b.stored for b in batches)

    finished = subprocess.run(command(path), env=env, capture_output=True, text=True,
                              timeout=600, check=False)
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert report["read"] == LINES
    assert report["read"] == report["stored"] + report["rejected"]
    assert report["rejected"] == len(BAD) and report["stored"] == LINES - len(BAD)
    assert report["resumed_batches"] == len(batches)
    assert report["batches"] == LINES // BATCH
    assert [(r["line"], r["field"]) for r in report["rejections"]] == [
        (line_no, field) for line_no, (field, _) in sorted(BAD.items())
    ]
    assert all("9018" not in r["reason"] for r in report["rejections"])

    with databases.unit_of_work("registry") as session:
        # Every good line exactly once, by the line each resident records …
        lines = dict(session.execute(
            select(m.Resident.import_line, func.count()).group_by(m.Resident.import_line)
        ).all())
        assert lines == {n: 1 for n in range(2, LINES + 2) if n not in BAD}
        assert {r for (r,) in session.execute(select(m.Resident.import_run_id).distinct())} == {
            report["run_id"]
        }
        # … and by the names the lines carry.
        names = session.execute(
            select(m.Resident.given_name, func.count()).group_by(m.Resident.given_name)
            .having(func.count() > 1)
        ).all()
        assert names == []
        assert int(session.scalar(select(func.count(func.distinct(m.Resident.given_name))))
                   or 0) == LINES - len(BAD)
        # Each bad line rejected once.
        rejected = session.execute(
            select(m.ImportRejection.line_no, func.count()).group_by(m.ImportRejection.line_no)
        ).all()
        assert sorted(rejected) == [(n, 1) for n in sorted(BAD)]
        # Everything that hangs off a resident is there once too.
        for model in (m.IssuedNumber, m.NotificationLetter, m.LifeEvent):
            assert int(session.scalar(select(func.count()).select_from(model)) or 0) == (
                LINES - len(BAD))
        assert int(session.scalar(
            select(func.count(func.distinct(m.Resident.household_id)))) or 0) == len(
            {n // 3 for n in range(2, LINES + 2) if n not in BAD})
        run = session.scalars(select(m.ImportRun)).one()
        assert run.finished_at is not None and run.lines_read == LINES

    # A third run stores nothing and reports the same.
    again = subprocess.run(command(path), env=env, capture_output=True, text=True,
                           timeout=600, check=False)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) | {"resumed_batches": 0} == report | {"resumed_batches": 0}
    databases.dispose()

"""`mynumber bench import`: residents per second through `mynumber registry import`.

Generates ``count`` synthetic, valid CSV lines (default 200,000), then imports the file into a
throwaway SQLite data directory and, when a PostgreSQL URL is given (``--database-url`` or
``MYNUMBER_BENCH_DATABASE_URL``), into a throwaway database created on that server and dropped
afterwards. The time measured is the whole import: hashing the file, parsing, validating,
numbering and storing, with the final reconciliation. ``per_second`` is the PostgreSQL figure
when measured, else the SQLite one; the goal is 50,000/s into PostgreSQL.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mynumber.bench import (
    BenchOptions,
    BenchProgress,
    bench_settings,
    migrated_container,
    postgres_database,
    postgres_url,
)

DEFAULT_COUNT = 200_000
BATCH_SIZE = 5000
GOAL_PER_SECOND = 50_000

_FAMILY = [
    ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"),
    ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"),
    ("小林", "コバヤシ"), ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山田", "ヤマダ"),
    ("佐々木", "ササキ"), ("山口", "ヤマグチ"), ("松本", "マツモト"), ("井上", "イノウエ"),
    ("木村", "キムラ"), ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ"),
]
_GIVEN = [
    ("翔太", "ショウタ", "male"), ("蓮", "レン", "male"), ("大翔", "ヒロト", "male"),
    ("太郎", "タロウ", "male"), ("健", "ケン", "male"), ("一郎", "イチロウ", "male"),
    ("陽菜", "ヒナ", "female"), ("結衣", "ユイ", "female"), ("花子", "ハナコ", "female"),
    ("美咲", "ミサキ", "female"), ("さくら", "サクラ", "female"), ("恵子", "ケイコ", "female"),
]
_RELATIONSHIPS = ["世帯主", "妻", "子", "子", "母"]


def generate_csv(path: Path, count: int, seed: int = 20240101,
                 municipalities: list[str] | None = None) -> None:
    """``count`` valid import lines, in households of 1-4 people, in every municipality (or
    in ``municipalities``)."""
    from mynumber.registry.importer import FIELDS
    from mynumber.registry.services import load_municipality_rows

    rng = random.Random(seed)
    municipalities = municipalities or [row["code"] for row in load_municipality_rows()]
    header = ",".join(FIELDS)
    lines = [header]
    household = 0
    left = 0
    muni = address = postal = family = family_kana = ""
    for _ in range(count):
        if left == 0:
            household += 1
            left = rng.randint(1, 4)
            muni = rng.choice(municipalities)
            address = f"本町{rng.randint(1, 9)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
            postal = f"{rng.randint(0, 9_999_999):07d}"
            family, family_kana = rng.choice(_FAMILY)
            member = 0
        given, given_kana, sex = rng.choice(_GIVEN)
        birth = f"{rng.randint(1935, 2022)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        relationship = _RELATIONSHIPS[min(member, len(_RELATIONSHIPS) - 1)]
        lines.append(
            f"B{household},{family},{given},{family_kana},{given_kana},{birth},{sex},{muni},"
            f"{address},{postal},{relationship},JP,,,,,"
        )
        member += 1
        left -= 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _import(settings: Any, csv_path: Path, batch_size: int, progress: BenchProgress,
            database: str) -> tuple[float, Any]:
    from mynumber.registry.importer import Importer

    with progress.phase(f"{database}: creating the databases"):
        container = migrated_container(settings)
    try:
        # The importer reports once per batch (bytes of the file done).
        with progress.phase(f"{database}: importing", in_bytes=True) as done:
            start = time.perf_counter()
            report = Importer(container.registry, batch_size=batch_size,
                              actor="bench:import", on_progress=done).run(csv_path)
            seconds = time.perf_counter() - start
    finally:
        container.close()
    return seconds, report


def run(options: BenchOptions) -> dict[str, Any]:
    count = options.count or DEFAULT_COUNT
    url = postgres_url(options)  # refused before any work if it is not PostgreSQL
    batch_size = int(options.extra.get("batch_size", BATCH_SIZE))
    work = Path(tempfile.mkdtemp(prefix="mynumber-bench-import-"))
    try:
        csv_path = work / "residents.csv"
        with options.progress.phase(f"generating {count:,} residents"):
            generate_csv(csv_path, count)
        keys = work / "keys"
        sqlite = bench_settings(work / "sqlite", keys, None)
        sqlite_seconds, sqlite_report = _import(sqlite, csv_path, batch_size, options.progress,
                                                "sqlite")
        result: dict[str, Any] = {
            "count": count,
            "batch_size": batch_size,
            "sqlite_per_second": round(count / sqlite_seconds, 1),
            "sqlite_seconds": round(sqlite_seconds, 3),
            "sqlite_stored": sqlite_report.stored,
            "postgres_per_second": None,
            "postgres_seconds": None,
            "postgres_stored": None,
        }
        if url:
            with postgres_database(url) as target:
                postgres = bench_settings(work / "pg", keys, target)
                pg_seconds, pg_report = _import(postgres, csv_path, batch_size,
                                                options.progress, "postgresql")
                result.update(
                    postgres_per_second=round(count / pg_seconds, 1),
                    postgres_seconds=round(pg_seconds, 3),
                    postgres_stored=pg_report.stored,
                )
        per_second = result["postgres_per_second"] or result["sqlite_per_second"]
        return {
            "per_second": per_second,
            **result,
            "goal_per_second": GOAL_PER_SECOND,
            "measured_on": "postgresql" if result["postgres_per_second"] else "sqlite",
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""`mynumber bench juki`: 住基ネット identity queries per second, (a) by 住民票コード and (b) by
the four basic items, with ``--residents N`` people in the copy (1,000,000 at full size).

Setup (not measured): a fresh database (a temporary SQLite directory, or ``--database-url``
for PostgreSQL: the goals are for PostgreSQL), every context migrated and the agency directory
synchronised, then the 住基ネット copy loaded **directly** (a documented shortcut: the rows are
what the event handler writes for a registry record, built with the same ``copy_row``
normalisation, but bulk-inserted with COPY on PostgreSQL instead of registering a million
births and delivering their events). The synthetic people share names and birth dates on
purpose: kana name + birth date + sex collide often; the address tells them apart.

Measured: ``--workers`` threads (default 4) call the service function the HTTP route calls
(``JukiServiceImpl.by_code`` / ``search``) for ``--seconds`` each phase (default 5); every call
reads the copy and records the query and its subject in one transaction, as in production.
Search queries are written the way agencies write them (hiragana or half-width kana, kanji
numbers in the address, 男/女), so normalisation is part of the cost. Every answered search
must return the person it was made from (``wrong`` counts any other answer).
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from mynumber.bench import (
    BenchOptions,
    BenchProgress,
    NoProgress,
    Report,
    bench_settings,
    migrated_container,
    postgres_database,
    postgres_url,
)

GOAL_BY_CODE = 2000
GOAL_SEARCH = 500
AGENCY = "japan_pension_service"
USE = "pension-benefits"

FAMILY = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"),
          ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"),
          ("小林", "コバヤシ"), ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山田", "ヤマダ"),
          ("佐々木", "ササキ"), ("山口", "ヤマグチ"), ("松本", "マツモト"), ("井上", "イノウエ"),
          ("木村", "キムラ"), ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ")]
GIVEN = [("太郎", "タロウ", "male"), ("一郎", "イチロウ", "male"), ("健", "ケン", "male"),
         ("翔", "ショウ", "male"), ("大輔", "ダイスケ", "male"), ("誠", "マコト", "male"),
         ("蓮", "レン", "male"), ("悠真", "ユウマ", "male"), ("花子", "ハナコ", "female"),
         ("恵子", "ケイコ", "female"), ("陽子", "ヨウコ", "female"), ("美咲", "ミサキ", "female"),
         ("結衣", "ユイ", "female"), ("陽菜", "ヒナ", "female"), ("愛", "アイ", "female"),
         ("真由美", "マユミ", "female")]
TOWNS = [("131041", "東京都新宿区", t) for t in ("西新宿", "歌舞伎町", "高田馬場", "大久保")] + [
    ("131130", "東京都渋谷区", t) for t in ("宇田川町", "神宮前", "恵比寿", "代々木")] + [
    ("271004", "大阪府大阪市", t) for t in ("北区梅田", "中央区難波", "天王寺区上本町")] + [
    ("011002", "北海道札幌市", t) for t in ("中央区大通西", "北区北七条西")]
KANJI_DIGITS = "〇一二三四五六七八九"


def _kanji(n: int) -> str:
    if n < 10:
        return KANJI_DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else KANJI_DIGITS[tens]) + "十" + (KANJI_DIGITS[ones] if ones else "")


def _hiragana(kana: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in kana)


def synthetic_people(count: int, seed: int = 12) -> list[dict[str, Any]]:
    """``count`` synthetic people (dicts with the registry record's fields), reproducible."""
    from mynumber.codes.resident_code import calc_check_digit

    rng = random.Random(seed)
    start = dt.date(1935, 1, 1).toordinal()
    days = dt.date(2020, 12, 31).toordinal() - start
    people = []
    for i in range(count):
        family, family_kana = FAMILY[rng.randrange(len(FAMILY))]
        given, given_kana, sex = GIVEN[rng.randrange(len(GIVEN))]
        muni, prefix, town = TOWNS[rng.randrange(len(TOWNS))]
        chome, ban, go = rng.randint(1, 9), rng.randint(1, 30), rng.randint(1, 25)
        body = f"{9_000_000_000 + i:010d}"
        people.append({
            "resident_id": i + 1, "resident_code": body + calc_check_digit(body),
            "family_name": family, "given_name": given, "family_name_kana": family_kana,
            "given_name_kana": given_kana,
            "birth_date": dt.date.fromordinal(start + rng.randrange(days)), "sex": sex,
            "address": f"{prefix}{town}{chome}丁目{ban}番{go}号", "municipality_code": muni,
            "parts": (prefix, town, chome, ban, go),
        })
    return people


def _rows(people: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Copy rows, as ``services.copy_row`` builds them (normalised keys cached per value)."""
    from mynumber.juki.services import address_key, kana_key, name_key

    now = dt.datetime.now(dt.UTC)
    names: dict[tuple[str, str], str] = {}
    kanas: dict[tuple[str, str], str] = {}
    addresses: dict[str, str] = {}
    rows = []
    for p in people:
        n = (p["family_name"], p["given_name"])
        k = (p["family_name_kana"], p["given_name_kana"])
        if n not in names:
            names[n] = name_key(*n)
        if k not in kanas:
            kanas[k] = kana_key(*k)
        if p["address"] not in addresses:
            addresses[p["address"]] = address_key(p["address"])
        rows.append((p["resident_id"], p["resident_code"], p["family_name"], p["given_name"],
                     p["family_name_kana"], p["given_name_kana"], p["birth_date"], p["sex"],
                     p["address"], p["municipality_code"], "resident", "import",
                     dt.date(2025, 1, 1), names[n], kanas[k], addresses[p["address"]], 0, now))
    return rows


COLUMNS = ("resident_id", "resident_code", "family_name", "given_name", "family_name_kana",
           "given_name_kana", "birth_date", "sex", "address", "municipality_code", "status",
           "change_kind", "changed_on", "key_name", "key_kana", "key_address", "applied_seq",
           "updated_at")


def load_copy(databases: Any, people: list[dict[str, Any]], batch: int = 100_000,
              report: Report | None = None) -> None:
    """Bulk-insert the copy (COPY on PostgreSQL, executemany on SQLite), then ANALYZE;
    ``report`` hears the people loaded after each batch."""
    engine = databases.engine("juki")
    for start in range(0, len(people), batch):
        rows = _rows(people[start:start + batch])
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if databases.is_postgres:
                with cursor.copy(f"COPY identity_copies ({', '.join(COLUMNS)}) FROM STDIN"
                                 ) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" for _ in COLUMNS)
                cursor.executemany(
                    f"INSERT INTO identity_copies ({', '.join(COLUMNS)}) "  # noqa: S608
                    f"VALUES ({marks})",
                    [(*r[:6], r[6].isoformat(), *r[7:12], r[12].isoformat(), *r[13:17],
                      r[17].strftime("%Y-%m-%d %H:%M:%S.%f")) for r in rows])
            raw.commit()
        finally:
            raw.close()
        if report is not None:
            report(min(start + batch, len(people)))
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def search_items(p: dict[str, Any], rng: random.Random) -> Any:
    """The four items as an agency might type them: varied spellings of the same values."""
    from mynumber.juki.interfaces import SearchItems

    prefix, town, chome, ban, go = p["parts"]
    kana = f"{p['family_name_kana']} {p['given_name_kana']}"
    style = rng.randrange(3)
    if style == 0:
        address = f"{prefix}{town}{_kanji(chome)}丁目{_kanji(ban)}番{_kanji(go)}号"
        return SearchItems(name_kana=_hiragana(kana), birth_date=p["birth_date"].isoformat(),
                           sex="男" if p["sex"] == "male" else "女", address=address)
    if style == 1:
        address = f"{prefix}{town}{chome}-{ban}-{go}"
        return SearchItems(name=f"{p['family_name']}　{p['given_name']}",
                           birth_date=p["birth_date"].strftime("%Y/%m/%d"),
                           sex=p["sex"], address=address)
    address = f"{prefix}{town}{chome}丁目{ban}番地{go}"
    return SearchItems(name=f"{p['family_name']}{p['given_name']}", name_kana=kana,
                       birth_date=p["birth_date"].isoformat(), sex=p["sex"], address=address)


def _phase(call: Any, pool: list[Any], seconds: float, workers: int,
           report: Report | None = None) -> dict[str, Any]:
    counts = [0] * workers
    latencies: list[list[float]] = [[] for _ in range(workers)]
    errors = [0] * workers
    stop = threading.Event()
    gate = threading.Barrier(workers + 1)

    def worker(index: int) -> None:
        i = index
        gate.wait()
        while not stop.is_set():
            began = time.perf_counter()
            try:
                call(pool[i % len(pool)])
            except Exception:  # counted and reported
                errors[index] += 1
            latencies[index].append(time.perf_counter() - began)
            counts[index] += 1
            i += workers

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    gate.wait()
    began = time.perf_counter()
    end = began + seconds
    # This thread only sleeps through the window: it reads the workers' counters now and then
    # for the progress (the workers themselves do nothing more than before).
    while (left := end - time.perf_counter()) > 0:
        time.sleep(min(left, 0.5))
        if report is not None:
            report(sum(counts))
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    merged = sorted(x for part in latencies for x in part)
    total = sum(counts)

    def pct(q: float) -> float:
        return round(merged[min(len(merged) - 1, int(q * len(merged)))] * 1000, 2) if merged \
            else 0.0

    return {"per_second": round(total / elapsed, 1), "count": total, "errors": sum(errors),
            "p50_ms": pct(0.5), "p99_ms": pct(0.99)}


def _measure(settings: Any, residents: int, seconds: float, workers: int,
             progress: BenchProgress | None = None, database: str = "sqlite") -> dict[str, Any]:
    from mynumber.app import sync_directory
    from mynumber.juki.interfaces import QueryOutcome

    progress = progress or NoProgress()
    with progress.phase(f"{database}: creating the databases"):
        container = migrated_container(settings)
    try:
        sync_directory(container)
        with progress.phase(f"{database}: loading the copy", total=residents) as report:
            began = time.perf_counter()
            people = synthetic_people(residents)
            load_copy(container.databases, people, report=report)
            load_seconds = time.perf_counter() - began
        juki = container.juki
        rng = random.Random(7)
        sample = [people[rng.randrange(len(people))] for _ in range(min(5000, len(people)))]
        codes = [p["resident_code"] for p in sample]
        searches = [(p["resident_code"], search_items(p, rng)) for p in sample]
        wrong = [0]
        ambiguous = [0]

        def by_code(code: str) -> None:
            result = juki.by_code(AGENCY, USE, code)
            if result.outcome is not QueryOutcome.ANSWERED:
                raise RuntimeError("not answered")

        def search(item: tuple[str, Any]) -> None:
            code, items = item
            result = juki.search(AGENCY, USE, items)
            if result.outcome is QueryOutcome.AMBIGUOUS:
                ambiguous[0] += 1  # a true collision of all four items in the synthetic data
            elif result.identity is None or result.identity.resident_code != code:
                wrong[0] += 1

        juki.by_code(AGENCY, USE, codes[0])  # warm the agency cache and the pool
        with progress.phase(f"{database}: queries by 住民票コード for {seconds:g} s, "
                            f"{workers} threads") as report:
            code_phase = _phase(by_code, codes, seconds, workers, report)
        with progress.phase(f"{database}: searches by the four items for {seconds:g} s, "
                            f"{workers} threads") as report:
            search_phase = _phase(search, searches, seconds, workers, report)
        return {"by_code": code_phase, "search": search_phase,
                "search_wrong": wrong[0], "search_ambiguous": ambiguous[0],
                "load_seconds": round(load_seconds, 1), "copied": juki.copied()}
    finally:
        container.close()


def run(options: BenchOptions) -> dict[str, Any]:
    residents = int(options.extra.get("residents") or options.count or 100_000)
    seconds = float(options.extra.get("seconds") or 5.0)
    workers = options.workers or 4
    work_dir = Path(tempfile.mkdtemp(prefix="mynumber-bench-juki-"))
    keys = work_dir / "keys"
    try:
        url = postgres_url(options)
        if url:
            with postgres_database(url) as target:
                result = _measure(bench_settings(work_dir / "pg", keys, target), residents,
                                  seconds, workers, options.progress, "postgresql")
            database = "postgresql"
        else:
            result = _measure(bench_settings(work_dir / "sqlite", keys, None), residents,
                              seconds, workers, options.progress, "sqlite")
            database = "sqlite"
        return {
            "per_second": result["by_code"]["per_second"],
            "by_code_per_second": result["by_code"]["per_second"],
            "by_code_goal_per_second": GOAL_BY_CODE,
            "search_per_second": result["search"]["per_second"],
            "search_goal_per_second": GOAL_SEARCH,
            "residents": residents,
            "workers": workers,
            "database": database,
            "search_wrong": result["search_wrong"],
            "errors": result["by_code"]["errors"] + result["search"]["errors"],
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "detail": result,
        }
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


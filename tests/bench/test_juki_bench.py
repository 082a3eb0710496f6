"""`mynumber bench juki`: a small run loads the copy, answers every query by code, finds every
searched person (never another one), and has the figures' shape; on PostgreSQL too when the
suite runs there (COPY loading)."""

from __future__ import annotations

import os

from mynumber.bench import WORKLOADS, BenchOptions, juki


def test_juki_bench_smoke() -> None:
    assert WORKLOADS["juki"] == "mynumber.bench.juki"
    url = os.environ.get("MYNUMBER_TEST_DATABASE_URL")
    figures = juki.run(BenchOptions(workers=2, database_url=url,
                                    extra={"residents": 3000, "seconds": 0.5}))
    assert {"by_code_per_second", "search_per_second", "by_code_goal_per_second",
            "search_goal_per_second", "residents", "database", "errors"} <= figures.keys()
    assert figures["database"] == ("postgresql" if url else "sqlite")
    assert figures["residents"] == 3000 and figures["detail"]["copied"] == 3000
    assert figures["errors"] == 0 and figures["search_wrong"] == 0
    assert figures["by_code_per_second"] > 0 and figures["search_per_second"] > 0
    assert figures["by_code_goal_per_second"] == 2000 and figures["search_goal_per_second"] == 500


def test_synthetic_people_collide_on_kana_birth_and_sex() -> None:
    # The data must exercise the rule: people sharing kana, birth date and sex exist, and
    # only the address tells them apart.
    people = juki.synthetic_people(200_000)
    seen: dict[tuple[str, str, object, str], str] = {}
    collisions = 0
    for p in people:
        key = (p["family_name_kana"], p["given_name_kana"], p["birth_date"], p["sex"])
        if key in seen and seen[key] != p["address"]:
            collisions += 1
        seen[key] = p["address"]
    assert collisions > 10

"""`mynumber bench eligibility`, at a size for CI: every measured check really ran (a visit and
an access record for each valid one), the revoked card in the pool was refused every time it
was used and counted as a refusal, never as a success; on PostgreSQL too when the suite runs
there (SQLite is measured in the same run, as for every database workload)."""

from __future__ import annotations

import os

from mynumber.bench import WORKLOADS, BenchOptions
from mynumber.bench.eligibility import bench_insurers, run


def test_the_insurers_are_valid_and_in_the_directory_kinds() -> None:
    from mynumber.codes.insurer_number import is_valid

    insurers = bench_insurers()
    assert all(is_valid(i.number) for i in insurers)
    assert len({i.number for i in insurers}) == len(insurers)
    assert insurers[-1].kind == "late_elderly_medical_union"  # everyone 75 and over
    assert {len(i.number) for i in insurers if i.kind == "municipal_nhi"} == {6}


def test_the_eligibility_benchmark_makes_every_check_it_counts() -> None:
    assert WORKLOADS["eligibility"] == "mynumber.bench.eligibility"
    url = os.environ.get("MYNUMBER_TEST_DATABASE_URL")
    result = run(BenchOptions(count=2000, workers=2, database_url=url,
                              extra={"residents": 12, "seconds": 0.1, "rate": 40}))
    assert result["measured_on"] == ("postgresql" if url else "sqlite")
    assert result["goal_per_second"] == 1000 and result["goal_p99_ms"] == 50.0
    assert result["goal_met"] is False  # a small run is never the figure
    assert result["per_second"] > 0 and result["end_to_end_with_card_per_second"] > 0
    assert result["p99_ms_at_rate"] > 0 and result["nproc"] and result["loadavg_before"]
    for database in (["sqlite", "postgresql"] if url else ["sqlite"]):
        figures = result[database]
        assert figures["database"] == database
        assert figures["insured_persons"] == 2000
        assert figures["qualification_rows"] >= 2000  # + the job changes' lost qualifications
        assert figures["card_holders"] == 12 and figures["cards_revoked"] == 1
        assert figures["terminals"] == 2
        refused = 0
        valid = 1 + 1  # the workers' warm-up checks
        for phase in ("server_side", "at_40_per_second", "end_to_end_with_card"):
            measured = figures[phase]
            assert measured["unexpected"] == {}, (database, phase, measured["unexpected"])
            assert measured["checks"] == measured["valid"] + measured["refused_revoked"]
            assert measured["valid"] > 0 and measured["p99_ms"] >= measured["p50_ms"] > 0
            refused += measured["refused_revoked"]
            valid += measured["valid"]
        # The revoked card (one of six per worker, used in turn) was met and refused.
        assert figures["server_side"]["refused_revoked"] > 0
        assert figures["server_side"]["per_second"] > 0
        cpu = figures["server_side"]["cpu_ms_per_check"]
        assert cpu["workers"] > 0 and cpu["total"] >= cpu["workers"]
        if database == "postgresql":  # the throwaway cluster runs on this machine
            assert cpu["postgresql"] > 0
        assert figures["card"]["signatures"] > 0
        records = figures["records"]
        assert records["valid_checks_counted"] == valid
        assert records["refused_revoked_counted"] == refused > 0
        # Every valid check left its visit and its access record; a refusal left neither
        # (only the refusal's audit record).
        assert records["visits"] == records["valid_visits"] == valid
        assert records["eligibility_access_records"] == valid
        assert records["revoked_refusals_audited"] == refused
        assert records["every_valid_check_recorded"] is True

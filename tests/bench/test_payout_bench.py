"""`mynumber bench payout`, at a size for CI: every recipient is resolved through the batch
exchange and either paid in the file or reported and noticed; the log took every look-up."""

from __future__ import annotations

from mynumber.bench import WORKLOADS, BenchOptions
from mynumber.bench.payout import MISSING_EVERY, run


def test_the_payout_benchmark_resolves_and_writes_every_recipient() -> None:
    assert WORKLOADS["payout"] == "mynumber.bench.payout"
    result = run(BenchOptions(count=250))
    figures = result["sqlite"]
    assert figures["recipients"] == figures["residents"] == 250
    missing = figures["unpaid"]["no_account"]
    assert 250 // MISSING_EVERY <= missing <= 250 // MISSING_EVERY + 1  # one in MISSING_EVERY
    assert figures["unpaid"] == {"no_account": missing, "not_enrolled": 0, "refused": 0}
    assert figures["noticed"] == missing
    assert figures["paid"] == 250 - missing and figures["groups"] == 1
    assert figures["file_bytes"] == (figures["paid"] + 3) * 122
    assert figures["log_entries_integrated"] == 250  # one log entry per look-up
    assert result["per_second"] > 0 and result["peak_rss_mib"] > 0
    assert result["measured_on"] == "sqlite"

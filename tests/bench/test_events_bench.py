"""`mynumber bench events`, at a size for CI: the burst is delivered to every subscriber and
every change of the lag phase is accounted for."""

from __future__ import annotations

from mynumber.bench import BenchOptions
from mynumber.bench.events import run


def test_the_events_benchmark_delivers_everything_it_publishes() -> None:
    result = run(BenchOptions(count=300, workers=2,
                              extra={"seconds": 1, "rate": 40, "municipalities": 3}))
    burst = result["sqlite"]["burst"]
    assert burst["events"] == 300 and burst["municipalities"] == 3
    assert set(burst["subscribers"]) == {"jpki.certificates", "card.cards",
                                         "intermediate.resident_record",
                                         "portal.change_notices", "juki",
                                         "accounts", "insurance"}
    assert all(s == {"pending": 0, "failing": None} for s in burst["subscribers"].values())
    lag = result["sqlite"]["lag"]
    assert lag["errors"] == 0 and lag["changes"] > 0
    assert lag["delivered"] == lag["changes"]  # every change reached every subscriber
    assert result["per_second"] > 0 and result["p99_lag_seconds"] is not None

"""`mynumber bench portal-api`: a small run has the figures' shape, made every call through the
network, and left one release and one access-log entry per call."""

from __future__ import annotations

from mynumber.bench import WORKLOADS, BenchOptions, portal_api


def test_portal_api_bench_smoke() -> None:
    assert WORKLOADS["portal-api"] == "mynumber.bench.portal_api"
    figures = portal_api.run(BenchOptions(count=40, workers=2,
                                          extra={"residents": 3, "http_count": 10}))
    assert {"per_second", "p50_ms", "p99_ms", "goal_per_second", "count", "workers", "errors",
            "database"} <= figures.keys()
    assert figures["count"] == 40 and figures["workers"] == 2 and figures["errors"] == 0
    assert figures["database"] == "sqlite" and figures["goal_per_second"] == 300
    assert figures["per_second"] > 0 and figures["p99_ms"] >= figures["p50_ms"] > 0
    detail = figures["detail"]
    assert detail["http_route"]["count"] == 10 and detail["http_route"]["errors"] == 0
    calls = 40 + 10 + 2  # + one warm-up each
    assert detail["releases_recorded"] == calls == detail["client_requests"]
    assert detail["log_size"] >= calls

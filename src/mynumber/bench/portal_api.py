"""`mynumber bench portal-api`: self-information API calls per second.

One call is what a client's request costs the portal: the bearer token is looked up by its
hash together with its grant (revocation is checked on every call) and the client (its state),
the per-client rate limit is taken, the portal fetches the item through the information
provision network (a real exchange: agency codes, signed and sealed query and answer, the
exchange and its access-log entry written by the core), and the release is recorded.

Setup (not measured): a fresh database under a temporary directory (or ``--database-url`` for
PostgreSQL), residents with cards who log in to the portal with them, their 新宿区 地方税 副本,
one approved client, and a grant and access token per resident obtained through the provider's
own authorize -> consent -> token flow. Then ``--count`` calls run over ``--workers`` threads
on the function the HTTP route calls; a smaller run goes through the HTTP route itself
(FastAPI TestClient, in process). At the end the access log is integrated and its size
reported, and every provided call must have left one release.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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

GOAL_PER_SECOND = 300
CITY = "municipality-131041"  # 新宿区長
REDIRECT = "http://127.0.0.1:8765/callback"
SCOPE = "income"
PINS = ("ABC123", "1234", "5678", "2468")


def _settings(data_dir: Path, keys: Path, url: str | None) -> Any:
    return bench_settings(data_dir, keys, url)


def _clerk(container: Any) -> Any:
    from mynumber.auth.interfaces import StaffRole
    from mynumber.auth.services import current_totp

    password = secrets.token_urlsafe(16)
    container.staff_auth.create_staff("bench-clerk", "bench clerk", "131041", StaffRole.CLERK,
                                      password)
    token = container.staff_auth.login("bench-clerk", password,
                                       current_totp(container.databases, "bench-clerk"))
    return container.staff_auth.authenticate(token)


def _tokens(container: Any, client: Any, sessions: list[Any]) -> list[str]:
    """An access token per resident, through authorize -> consent -> token."""
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    from mynumber.portal.oauth import ConsentPage, HttpRequest

    oidc = container.oidc
    basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
    tokens = []
    for session in sessions:
        verifier = secrets.token_urlsafe(48)
        params = [("response_type", "code"), ("client_id", client.client_id),
                  ("redirect_uri", REDIRECT), ("scope", f"openid {SCOPE}"),
                  ("state", "bench"), ("code_challenge", create_s256_code_challenge(verifier)),
                  ("code_challenge_method", "S256")]
        page = oidc.authorize(HttpRequest.of("GET", "/oauth/authorize", params), session)
        if not isinstance(page, ConsentPage):
            raise RuntimeError(f"no consent page: {page!r}")
        answer = oidc.decide(session, page.consent_id, session.csrf_token, True, [SCOPE])
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        form = (("grant_type", "authorization_code"), ("code", code),
                ("redirect_uri", REDIRECT), ("code_verifier", verifier))
        response = oidc.token(HttpRequest("POST", "/oauth/token", (), form,
                                          {"Authorization": f"Basic {basic}"}))
        tokens.append(json.loads(response.body)["access_token"])
    return tokens


def _prepare(container: Any, residents: int, report: Report | None = None
             ) -> tuple[Any, list[str]]:
    from mynumber.app import sync_directory
    from mynumber.card.interfaces import IdentityCheck, IssuedPins
    from mynumber.portal.interfaces import ClientState
    from mynumber.registry.interfaces import NewResident, Sex

    sync_directory(container)
    clerk = _clerk(container)
    container.agencies.ensure_registered(CITY)
    sessions = []
    for i in range(residents):
        born = dt.date(1980, 1, 1) + dt.timedelta(days=37 * i)
        details = NewResident(
            municipality_code="131041", family_name="山田", given_name=f"太郎{i}",
            family_name_kana="ヤマダ", given_name_kana="タロウ", birth_date=born,
            sex=Sex.MALE, address=f"東京都新宿区西新宿二丁目{i + 1}番1号",
            postal_code="1638001")
        resident = container.registry.register_birth(clerk, details, born)
        number = container.registry.reveal_number(clerk, resident.id, "bench")
        application = container.card.apply(clerk, resident.id)
        _record, chip = container.card.issue(
            clerk, application.application_id,
            IdentityCheck(number, "notification_letter", ("drivers_license",)),
            IssuedPins(*PINS))
        address_number = f"B{i:07d}"
        container.agencies.enrol_person(CITY, address_number, number)
        container.agencies.put_copy(CITY, address_number, "local_tax", {
            "fiscal_year": 2025, "taxable_income": 3_000_000 + i, "municipal_tax": 180_000,
            "exempt": False})
        challenge = container.portal.begin_login()
        signature = chip.sign("auth", PINS[1], challenge.challenge)
        sessions.append(container.portal.complete_login(
            challenge.challenge_id, signature, chip.certificate("auth").decode()))
        if report is not None:
            report(i + 1)
    client = container.api_clients.register(
        "ベンチマーク家計簿", "bench", "bench@example.jp", [REDIRECT], ["basic_four", SCOPE])
    container.api_clients.set_state("bench", client.client_id, ClientState.APPROVED, "bench")
    container.api_clients.set_rate_limit("bench", client.client_id, 1_000_000)
    return client, _tokens(container, client, sessions)


def _load(call: Any, tokens: list[str], count: int, workers: int,
          report: Report | None = None) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    start_gate = threading.Barrier(workers + 1)
    # Each worker's own latency list, which this thread reads for the progress: the workers
    # do nothing more for it.
    timings: list[list[float]] = [[] for _ in range(workers)]

    def worker(index: int) -> None:
        nonlocal errors
        mine = timings[index]
        failed = 0
        start_gate.wait()
        for i in range(index, count, workers):
            began = time.perf_counter()
            try:
                ok = call(tokens[i % len(tokens)])
            except Exception:  # counted and reported
                ok = False
            mine.append(time.perf_counter() - began)
            failed += not ok
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)
            if report is not None:
                report(sum(len(t) for t in timings))
    seconds = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {"count": len(latencies), "seconds": round(seconds, 2),
            "per_second": round(len(latencies) / seconds, 1), "errors": errors,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 2)}


def _measure(settings: Any, residents: int, count: int, workers: int,
             http_count: int, progress: BenchProgress | None = None,
             database: str = "sqlite") -> dict[str, Any]:
    from mynumber.app import create_app

    progress = progress or NoProgress()
    with progress.phase(f"{database}: creating the databases"):
        container = migrated_container(settings)
    try:
        with progress.phase(f"{database}: {residents} residents with cards, logins and "
                            "tokens", total=residents) as report:
            setup_began = time.perf_counter()
            client, tokens = _prepare(container, residents, report)
            setup_seconds = time.perf_counter() - setup_began
        oidc = container.oidc

        def direct(token: str) -> bool:
            return bool(oidc.self_information(token, SCOPE).outcome == "provided")

        direct(tokens[0])  # warm caches and connections outside the window
        with progress.phase(f"{database}: calls, {workers} threads", total=count) as report:
            result = _load(direct, tokens, count, workers, report)
        if http_count:
            from fastapi.testclient import TestClient

            with TestClient(create_app(container=container)) as http:
                def over_http(token: str) -> bool:
                    response = http.get(f"/api/v1/portal/self-information/{SCOPE}",
                                        headers={"Authorization": f"Bearer {token}"})
                    return bool(response.status_code == 200)

                over_http(tokens[0])
                with progress.phase(f"{database}: calls through the HTTP route",
                                    total=http_count) as report:
                    result["http_route"] = _load(over_http, tokens, http_count, workers,
                                                 report)
        with progress.phase(f"{database}: integrating the access log"):
            integrate_began = time.perf_counter()
            while container.network_log.integrate() > 0:
                pass
            integrate_seconds = time.perf_counter() - integrate_began
        head = container.network_log.latest_head()
        watch = container.api_clients.monitoring(client.client_id)
        result.update({
            "setup_seconds": round(setup_seconds, 1),
            "log_integrate_seconds": round(integrate_seconds, 2),
            "log_size": head.size,
            "releases_recorded": watch.releases,
            "client_requests": watch.requests,
        })
        return result
    finally:
        container.close()


def run(options: BenchOptions) -> dict[str, Any]:
    count = options.count or 3000
    workers = options.workers or 4
    residents = int(options.extra.get("residents", 20))
    http_count = int(options.extra.get("http_count", max(count // 5, 0)))
    work_dir = Path(tempfile.mkdtemp(prefix="mynumber-bench-portal-api-"))
    keys = work_dir / "keys"
    try:
        url = postgres_url(options)
        if url:
            with postgres_database(url) as target:
                result = _measure(_settings(work_dir / "pg", keys, target), residents, count,
                                  workers, http_count, options.progress, "postgresql")
            database = "postgresql"
        else:
            result = _measure(_settings(work_dir / "sqlite", keys, None), residents, count,
                              workers, http_count, options.progress, "sqlite")
            database = "sqlite"
        return {
            "per_second": result["per_second"],
            "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"],
            "goal_per_second": GOAL_PER_SECOND,
            "count": result["count"],
            "workers": workers,
            "errors": result["errors"],
            "database": database,
            "residents": residents,
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "detail": result,
        }
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)



"""Requests refused before their sender is authenticated never reach the exchanges table, the
public log or a resident's やりとり履歴: they only count in the bounded rejection counter.
Signed declined-application requests are accepted once per nonce, also under concurrency."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, update

from mynumber.agencies.models import Copy
from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffRole
from mynumber.network import models as nm
from mynumber.network.interfaces import (
    Operation,
    Outcome,
    RefusalReason,
    signed_request_bytes,
)
from mynumber.network.log_models import LogLeaf, LogQueue
from mynumber.network.services import new_serial
from tests.conftest import SHINJUKU, make_staff, new_resident
from tests.network.test_exchange import (
    CITY,
    ITEM,
    MHLW,
    PORTAL,
    TASK,
    World,
    _first,
    _signed,
)

EXCHANGES = "/api/v1/network/exchanges"
DECLINED = "/api/v1/network/declined-applications"


@pytest.fixture
def world(container: Container) -> World:
    clerk = make_staff(container, "rejections-clerk", SHINJUKU, StaffRole.CLERK)
    numbers = {}
    for given, kana in (("太郎", "タロウ"), ("花子", "ハナコ")):
        details = new_resident(given_name=given, given_name_kana=kana)
        resident = container.registry.register_birth(clerk, details, details.birth_date)
        numbers[resident.id] = container.registry.reveal_number(clerk, resident.id, "test")
    for agency in (MHLW, CITY, PORTAL):
        container.agencies.ensure_registered(agency)
    return World(container, clerk, numbers)


def _log_and_exchange_rows(world: World) -> tuple[int, int]:
    with world.container.databases.unit_of_work("network") as session:
        exchanges = session.scalar(select(func.count()).select_from(nm.Exchange)) or 0
        logged = (session.scalar(select(func.count()).select_from(LogQueue)) or 0) + (
            session.scalar(select(func.count()).select_from(LogLeaf)) or 0)
    return exchanges, logged


def _counts(world: World) -> dict[tuple[Operation, RefusalReason], int]:
    totals: dict[tuple[Operation, RefusalReason], int] = {}
    for bucket in world.container.network.rejections():
        key = (bucket.operation, bucket.reason)
        totals[key] = totals.get(key, 0) + bucket.count
    return totals


def _mhlw_code(world: World) -> str:
    return world.container.agencies.agency_code(MHLW, world.enrol(MHLW, _first(world)))


def test_unauthenticated_queries_are_counted_not_recorded_or_logged(world: World) -> None:
    c = world.container
    base = {"requester_id": MHLW, "task_id": TASK, "provider_id": CITY, "item_code": ITEM,
            "subject_code": _mhlw_code(world)}
    world.enrol(CITY, _first(world))
    before = _log_and_exchange_rows(world)
    forged = _signed(world, CITY, **base)  # signed with another agency's key
    unsigned = dataclasses.replace(_signed(world, MHLW, **base), signature=b"\0" * 64)
    unknown = _signed(world, MHLW, **{**base, "requester_id": "no-such-agency"})
    stale = _signed(world, MHLW, **base)
    stale = dataclasses.replace(stale, requested_at=stale.requested_at - dt.timedelta(hours=1))
    stale = dataclasses.replace(
        stale, signature=c.agencies.keyring.keys(MHLW).signing.sign(stale.signed_bytes()))
    expected = [(forged, RefusalReason.BAD_SIGNATURE), (unsigned, RefusalReason.BAD_SIGNATURE),
                (unknown, RefusalReason.UNKNOWN_AGENCY), (stale, RefusalReason.STALE_REQUEST)]
    for query, reason in expected:
        result = c.network.exchange(query)
        assert (result.outcome, result.reason) == (Outcome.REFUSED, reason)
        assert result.serial == "" and result.sealed is None  # no 処理通番: nothing recorded
    assert _log_and_exchange_rows(world) == before
    assert c.network_log.integrate() == 0
    assert _counts(world) == {
        (Operation.EXCHANGE, RefusalReason.BAD_SIGNATURE): 2,
        (Operation.EXCHANGE, RefusalReason.UNKNOWN_AGENCY): 1,
        (Operation.EXCHANGE, RefusalReason.STALE_REQUEST): 1,
    }
    # An authenticated requester's refusal is still recorded and logged, as every exchange.
    outside = c.network.exchange(_signed(world, MHLW, **{**base, "task_id": "bekkyo2-999"}))
    assert outside.reason is RefusalReason.UNKNOWN_TASK and outside.serial
    assert c.network_log.integrate() == 1


def test_a_parallel_flood_of_forged_queries_counts_exactly_and_logs_nothing(
        world: World) -> None:
    c = world.container
    base = {"requester_id": MHLW, "task_id": TASK, "provider_id": CITY, "item_code": ITEM,
            "subject_code": _mhlw_code(world)}
    before = _log_and_exchange_rows(world)
    threads = 16
    barrier = threading.Barrier(threads)

    def forge(_: int) -> RefusalReason | None:
        query = _signed(world, CITY, **base)
        barrier.wait()
        return c.network.exchange(query).reason

    with ThreadPoolExecutor(threads) as pool:
        reasons = list(pool.map(forge, range(threads)))
    assert reasons == [RefusalReason.BAD_SIGNATURE] * threads
    assert _log_and_exchange_rows(world) == before
    # One bucket (fixed key space), counted atomically: not one refusal lost.
    buckets = c.network.rejections()
    assert len(buckets) == 1 and buckets[0].count == threads


def test_garbage_over_http_is_counted_and_never_logged(world: World) -> None:
    c = world.container
    client = TestClient(create_app(container=c))
    before = _log_and_exchange_rows(world)
    assert client.post(EXCHANGES, content=b"\xff not json",
                       headers={"content-type": "application/json"}).status_code == 400
    assert client.post(EXCHANGES, content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 422
    assert client.post(EXCHANGES, json={"requester_id": MHLW}).status_code == 422
    query = _signed(world, CITY, requester_id=MHLW, task_id=TASK, provider_id=CITY,
                    item_code=ITEM, subject_code="A" * 26)
    body = {**{k: v for k, v in dataclasses.asdict(query).items() if k != "signature"},
            "requested_at": query.requested_at.isoformat(),
            "signature": base64.b64encode(query.signature).decode()}
    refused = client.post(EXCHANGES, json=body)
    assert refused.status_code == 403
    assert refused.json()["reason"] == "bad_signature" and "serial" not in refused.json()
    unknown_declined = _declined_body(world, agency_id="no-such-agency")
    assert client.post(DECLINED, json=unknown_declined).status_code == 404
    assert _log_and_exchange_rows(world) == before
    assert c.network_log.integrate() == 0
    assert _counts(world) == {
        (Operation.EXCHANGE, RefusalReason.MALFORMED_REQUEST): 3,
        (Operation.EXCHANGE, RefusalReason.BAD_SIGNATURE): 1,
        (Operation.DECLINED_APPLICATION, RefusalReason.UNKNOWN_AGENCY): 1,
    }


def test_the_counter_keeps_no_old_buckets(world: World) -> None:
    c = world.container
    old = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - \
        dt.timedelta(days=400)
    with c.databases.unit_of_work("network") as session:
        session.execute(insert(nm.Rejection).values(operation="exchange",
                                                    reason="bad_signature", hour=old, count=7))
    c.network.count_rejection(Operation.EXCHANGE, RefusalReason.BAD_SIGNATURE)
    assert [b.count for b in c.network.rejections()] == [1]
    with pytest.raises(ValueError):  # only the fixed key space
        c.network.count_rejection("anything", RefusalReason.BAD_SIGNATURE)  # type: ignore[arg-type]


# --- やりとり履歴: only what an authenticated agency did -----------------------------------------


def test_a_forged_query_naming_a_person_never_enters_their_history(world: World) -> None:
    c, rid = world.container, _first(world)
    mhlw_code = _mhlw_code(world)
    world.enrol(CITY, rid)
    portal_code = c.agencies.agency_code(PORTAL, world.enrol(PORTAL, rid))
    base = {"requester_id": MHLW, "task_id": TASK, "provider_id": CITY, "item_code": ITEM,
            "subject_code": mhlw_code}
    # An outsider who learnt the ministry's code for the person, without the ministry's key.
    for _ in range(3):
        c.network.exchange(_signed(world, CITY, **base))
    genuine = c.network.exchange(_signed(world, MHLW, **base))
    assert c.network.access_records(PORTAL, portal_code)[0].serial == genuine.serial
    assert [r.serial for r in c.network.access_records(PORTAL, portal_code)] == [genuine.serial]


def test_a_row_the_signed_log_does_not_vouch_for_is_shown_as_unverifiable(world: World) -> None:
    """Issue 12: such a row is neither hidden nor shown as true: the portal lists it as
    検証できません (``verified`` false), and ``log verify`` names it."""
    c, rid = world.container, _first(world)
    portal_code = c.agencies.agency_code(PORTAL, world.enrol(PORTAL, rid))
    genuine = c.network.exchange(_signed(world, MHLW, requester_id=MHLW, task_id=TASK,
                                         provider_id=CITY, item_code=ITEM,
                                         subject_code=_mhlw_code(world)))
    with c.databases.unit_of_work("network") as session:
        key = session.scalar(select(nm.Exchange.subject_key)
                             .where(nm.Exchange.serial == genuine.serial))
        now = dt.datetime.now(dt.UTC)
        # Written straight into the table (no log entry), and one whose log entry commits to
        # another person.
        forged_serial = new_serial(now)
        session.execute(insert(nm.Exchange).values(
            serial=forged_serial, occurred_at=now, requester_id="prefecture-13-police",
            task_id=TASK, outcome="provided", restricted=False, subject_key=key))
    other_serial = new_serial(now)
    with c.databases.unit_of_work("network") as session:
        session.execute(insert(nm.Exchange).values(
            serial=other_serial, occurred_at=now, requester_id=MHLW, task_id=TASK,
            outcome="provided", restricted=False, subject_key=key))
        c.network_log.enqueue(session, other_serial, json.dumps(
            {"outcome": "provided", "requester": MHLW, "serial": other_serial,
             "subject": "0" * 32}).encode())
    records = {r.serial: r for r in c.network.access_records(PORTAL, portal_code)}
    assert set(records) == {genuine.serial, forged_serial, other_serial}
    assert records[genuine.serial].verified
    assert not records[forged_serial].verified and not records[other_serial].verified
    report = c.network.verify_records()
    assert not report.ok
    assert {(mm.serial, mm.problem) for mm in report.mismatches} == {
        (forged_serial, "missing_from_log"), (other_serial, "unreadable_entry")}


# --- declined applications: once per signed request --------------------------------------------


def _declined_body(world: World, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agency_id": CITY, "task_id": TASK, "application_ref": f"APP-{secrets.token_hex(4)}",
        "documents": ["課税証明書"], "requested_at": dt.datetime.now(dt.UTC),
        "nonce": secrets.token_urlsafe(16),
    }
    body.update(overrides)
    key = world.container.agencies.keyring.keys(CITY).signing
    body["signature"] = base64.b64encode(
        key.sign(signed_request_bytes("declined-application", body))).decode()
    body["requested_at"] = body["requested_at"].isoformat()
    return body


def test_parallel_replays_of_a_declined_application_record_it_once(world: World) -> None:
    c = world.container
    client = TestClient(create_app(container=c))
    body = _declined_body(world)
    threads = 12
    barrier = threading.Barrier(threads)

    def post(_: int) -> int:
        barrier.wait()
        return client.post(DECLINED, json=body).status_code

    with ThreadPoolExecutor(threads) as pool:
        statuses = sorted(pool.map(post, range(threads)))
    assert statuses == [200] + [409] * (threads - 1)
    with c.databases.unit_of_work("network") as session:
        recorded = session.scalar(select(func.count()).select_from(nm.Exchange).where(
            nm.Exchange.application_ref == body["application_ref"]))
    assert recorded == 1
    assert c.network_log.integrate() == 1
    assert _counts(world) == {
        (Operation.DECLINED_APPLICATION, RefusalReason.REPLAYED): threads - 1}
    # Later, sequentially, the same: a problem document, nothing recorded.
    again = client.post(DECLINED, json=body)
    assert again.status_code == 409 and again.json()["code"] == "replayed_request"
    assert c.network_log.integrate() == 0


# --- no 個人番号 carried -----------------------------------------------------------------------


def test_the_core_records_a_withheld_copy_with_its_reason(world: World) -> None:
    c, rid = world.container, _first(world)
    city_addr, mhlw_addr = world.enrol(CITY, rid), world.enrol(MHLW, rid)
    c.agencies.put_copy(CITY, city_addr, ITEM, {"taxable_income": 1})
    with c.databases.unit_of_work("agencies") as session:  # written around put_copy
        session.execute(update(Copy).where(Copy.agency_id == CITY)
                        .values(payload={"memo": world.numbers[rid]}))
    result = c.agencies.query(MHLW, mhlw_addr, TASK, CITY, ITEM)
    assert (result.outcome, result.reason, result.data) == (
        Outcome.REFUSED, RefusalReason.INDIVIDUAL_NUMBER_IN_COPY, None)
    assert c.network_log.integrate() == 1  # an authenticated exchange: recorded and logged

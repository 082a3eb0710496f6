"""The batch exchange (a payout run's look-ups): one signed query about many persons, verified
once, the legal table checked once, and per person one exchange row and one log entry, as a
single exchange leaves them, so each resident's やりとり履歴 shows their look-up. Real
registry, agency codes, signatures, envelopes and log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

import pytest
from sqlalchemy import func, select

from mynumber.app import Container
from mynumber.auth.interfaces import StaffRole
from mynumber.network import models as nm
from mynumber.network.interfaces import (
    MAX_BATCH,
    BatchExchangeQuery,
    NetworkError,
    Outcome,
    RefusalReason,
)
from tests.conftest import SHINJUKU, make_staff, new_resident
from tests.network.test_exchange import CITY, ITEM, MHLW, PORTAL, TASK, World


@pytest.fixture
def world(container: Container) -> World:
    clerk = make_staff(container, "batch-clerk", SHINJUKU, StaffRole.CLERK)
    numbers = {}
    for i, (given_name, kana) in enumerate([("太郎", "タロウ"), ("花子", "ハナコ"),
                                             ("次郎", "ジロウ")]):
        born = dt.date(1980 + i, 5, 1)
        r = container.registry.register_birth(
            clerk, new_resident(given_name=given_name, given_name_kana=kana,
                                birth_date=born), born)
        numbers[r.id] = container.registry.reveal_number(clerk, r.id, "test setup")
    for agency in (MHLW, CITY, PORTAL):
        container.agencies.ensure_registered(agency)
    return World(container, clerk, numbers)


def _ids(w: World) -> list[int]:
    return sorted(w.numbers)


def _exchanges(c: Container) -> int:
    with c.databases.unit_of_work("network") as session:
        return int(session.scalar(select(func.count()).select_from(nm.Exchange)) or 0)


def _queued(c: Container) -> int:
    from mynumber.network.log_models import LogQueue

    with c.databases.unit_of_work("network") as session:
        return int(session.scalar(select(func.count()).select_from(LogQueue)) or 0)


def _records(w: World, rid: int) -> list:
    c = w.container
    return c.network.access_records(PORTAL, c.agencies.agency_code(PORTAL, w.enrol(PORTAL, rid)))


def _signed(w: World, agency: str, codes: list[str], **fields: str) -> BatchExchangeQuery:
    base = {"requester_id": MHLW, "task_id": TASK, "provider_id": CITY, "item_code": ITEM}
    base.update(fields)
    q = BatchExchangeQuery(subject_codes=tuple(codes), requested_at=dt.datetime.now(dt.UTC),
                           nonce=secrets.token_urlsafe(16), **base)
    keys = w.container.agencies.keyring.keys(agency)
    return dataclasses.replace(q, signature=keys.signing.sign(q.signed_bytes()))


def test_a_batch_answers_each_person_and_each_resident_sees_their_exchange(world: World):
    c = world.container
    ids = _ids(world)
    addresses = [world.enrol(MHLW, rid) for rid in ids]
    # The city holds a 副本 for the first two; the third is "not held".
    for rid in ids[:2]:
        c.agencies.put_copy(CITY, world.enrol(CITY, rid), ITEM, {"taxable_income": rid})
    world.enrol(CITY, ids[2])

    results = c.agencies.query_batch(MHLW, [*addresses, "mhlw-unknown"], TASK, CITY, ITEM)

    assert results[-1] is None  # not enrolled with the requester: no exchange at all
    answered = [r for r in results if r is not None]
    assert [r.outcome for r in answered] == [Outcome.PROVIDED, Outcome.PROVIDED,
                                            Outcome.NOT_HELD]
    assert [r.data for r in answered] == [{"taxable_income": ids[0]},
                                         {"taxable_income": ids[1]}, None]
    assert len({r.serial for r in answered}) == 3
    assert _exchanges(c) == 3 and _queued(c) == 3  # one row and one log entry each
    c.network_log.integrate()
    for rid, result in zip(ids, answered, strict=True):
        records = _records(world, rid)
        assert [(r.serial, r.outcome) for r in records] == [(result.serial, result.outcome)]
        assert records[0].verified and records[0].log_index is not None
        assert records[0].requester_id == MHLW and records[0].provider_id == CITY
    assert c.network.verify_records().ok


def test_a_batch_not_in_the_legal_table_records_each_persons_refusal(world: World):
    c = world.container
    ids = _ids(world)
    addresses = [world.enrol(CITY, rid) for rid in ids]
    for rid in ids:
        world.enrol(MHLW, rid)
    # 新宿区長 asking 厚生労働大臣 for local_tax under bekkyo2-1: no row permits it.
    results = c.agencies.query_batch(CITY, addresses, TASK, MHLW, ITEM)
    assert all(r is not None and r.outcome is Outcome.REFUSED
               and r.reason is RefusalReason.NOT_IN_LEGAL_TABLE and r.data is None
               for r in results)
    assert _exchanges(c) == len(ids)
    c.network_log.integrate()
    for rid in ids:
        shown = _records(world, rid)
        assert [r.reason for r in shown] == [RefusalReason.NOT_IN_LEGAL_TABLE]


def test_a_bad_signature_records_nothing_and_a_replay_is_refused(world: World):
    c = world.container
    ids = _ids(world)
    codes = [c.agencies.agency_code(MHLW, world.enrol(MHLW, rid)) for rid in ids]
    for rid in ids:
        world.enrol(CITY, rid)
    forged = _signed(world, CITY, codes)  # signed with another agency's key
    refused = c.network.exchange_batch(forged)
    assert refused.reason is RefusalReason.BAD_SIGNATURE
    assert all(r.serial == "" and r.reason is RefusalReason.BAD_SIGNATURE
               for r in refused.results)
    assert _exchanges(c) == 0 and _queued(c) == 0  # nothing recorded, only counted
    assert any(r.reason is RefusalReason.BAD_SIGNATURE for r in c.network.rejections())

    good = _signed(world, MHLW, codes)
    first = c.network.exchange_batch(good)
    assert [r.outcome for r in first.results] == [Outcome.NOT_HELD] * len(ids)
    assert _exchanges(c) == len(ids)
    again = c.network.exchange_batch(good)
    assert again.reason is RefusalReason.REPLAYED
    assert all(r.reason is RefusalReason.REPLAYED for r in again.results)
    # The replay is one refusal, linked to nobody: no resident's history grows.
    assert _exchanges(c) == len(ids) + 1
    with c.databases.unit_of_work("network") as session:
        replay = session.scalars(select(nm.Exchange).where(
            nm.Exchange.reason == "replayed_request")).one()
        assert replay.subject_key is None
    c.network_log.integrate()
    for rid in ids:
        assert len(_records(world, rid)) == 1


def test_a_forged_code_in_a_batch_is_refused_for_that_person_only(world: World):
    c = world.container
    ids = _ids(world)
    good = c.agencies.agency_code(MHLW, world.enrol(MHLW, ids[0]))
    world.enrol(CITY, ids[0])
    forged = c.agencies.agency_code(CITY, world.enrol(CITY, ids[1]))  # another agency's code
    result = c.network.exchange_batch(_signed(world, MHLW, [good, forged]))
    assert [(r.outcome, r.reason) for r in result.results] == [
        (Outcome.NOT_HELD, None), (Outcome.REFUSED, RefusalReason.UNKNOWN_AGENCY_CODE)]
    assert _exchanges(c) == 2


def test_batch_size_and_nonce_are_bounded(world: World):
    c = world.container
    with pytest.raises(NetworkError):
        c.network.exchange_batch(_signed(world, MHLW, []))
    with pytest.raises(NetworkError):
        c.network.exchange_batch(_signed(world, MHLW, ["x"] * (MAX_BATCH + 1)))
    assert _exchanges(c) == 0


def test_one_signed_batch_sent_in_parallel_is_recorded_once(world: World):
    import threading

    c = world.container
    ids = _ids(world)
    codes = [c.agencies.agency_code(MHLW, world.enrol(MHLW, rid)) for rid in ids]
    for rid in ids:
        world.enrol(CITY, rid)
    query = _signed(world, MHLW, codes)
    results: list = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def send() -> None:
        try:
            start.wait()
            results.append(c.network.exchange_batch(query))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    accepted = [r for r in results if r.reason is not RefusalReason.REPLAYED]
    assert len(accepted) == 1 and len(results) == 4
    # The batch's rows once, and one person-less refusal per copy.
    assert _exchanges(c) == len(ids) + 3
    c.network_log.integrate()
    for rid in ids:
        assert len(_records(world, rid)) == 1

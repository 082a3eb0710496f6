"""The transactional outbox and its dispatcher (mynumber.kernel.events), on the registry's
outbox: order, at-least-once delivery, failures, leases, a process killed mid-delivery."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.kernel.events import Dispatcher, Event, EventPayloadRefused, Subscriber
from mynumber.registry import models as rm
from tests.conftest import new_resident

PG = bool(os.environ.get("MYNUMBER_TEST_DATABASE_URL"))


def _publish(container: Container, n: int, start: int = 0) -> None:
    outbox = container.registry.outbox
    with container.databases.unit_of_work("registry") as session:
        for i in range(start, start + n):
            outbox.publish(session, "test.thing.happened", f"thing:{i}", {"i": i})


def test_events_are_numbered_in_order_and_read_after_a_position(container: Container) -> None:
    _publish(container, 5)
    outbox = container.registry.outbox
    assert outbox.unsequenced() == 5
    assert outbox.sequence() == 5
    assert [e.payload["i"] for e in outbox.read(0, 10)] == [0, 1, 2, 3, 4]
    assert [e.seq for e in outbox.read(3, 10)] == [4, 5]
    assert outbox.sequence() == 0 and outbox.head() == 5


def test_an_event_never_carries_an_individual_number(
        container: Container, clerk: StaffPrincipal) -> None:
    resident = container.registry.register_birth(clerk, new_resident(), dt.date(1990, 4, 1))
    number = container.registry.reveal_number(clerk, resident.id, "test")
    with pytest.raises(EventPayloadRefused), \
            container.databases.unit_of_work("registry") as session:
        container.registry.outbox.publish(session, "test.x", "x", {"note": f"番号{number}"})


@pytest.mark.skipif(not PG, reason="two open writers need PostgreSQL (SQLite has one writer)")
def test_an_event_committed_late_is_not_passed_over(container: Container) -> None:
    """T1 inserts first (lower id) but commits after T2: numbering after commit gives T2's
    event seq 1 and T1's seq 2, so a reader at position 1 still gets T1's."""
    engine = container.databases.engine("registry")
    events = rm.outbox_events
    row = {"type": "test.late", "payload": {}, "recorded_at": dt.datetime.now(dt.UTC)}
    with engine.connect() as first:
        first.begin()
        first.execute(insert(events).values(subject="first", **row))
        with engine.begin() as second:
            second.execute(insert(events).values(subject="second", **row))
        outbox = container.registry.outbox
        assert outbox.sequence() == 1
        assert [e.subject for e in outbox.read(0, 10)] == ["second"]
        first.commit()
    assert outbox.sequence() == 1
    assert [e.subject for e in outbox.read(1, 10)] == ["first"]


def test_a_failing_subscriber_is_retried_and_holds_up_no_other(container: Container) -> None:
    _publish(container, 3)
    seen: list[int] = []
    attempts = Counter[str]()

    def flaky(events: Sequence[Event]) -> None:
        attempts["flaky"] += 1
        if attempts["flaky"] == 1:
            raise RuntimeError("the intermediate server is away\nsecond line")
        seen.extend(e.payload["i"] for e in events)

    other: list[int] = []
    dispatcher = Dispatcher(container.registry.outbox, [
        Subscriber("test.flaky", flaky),
        Subscriber("test.other", lambda events: other.extend(e.payload["i"] for e in events)),
    ])
    dispatcher.round(ignore_backoff=True)
    status = {s.name: s for s in dispatcher.status()}
    assert other == [0, 1, 2] and seen == []
    assert status["test.flaky"].pending == 3 and status["test.flaky"].attempts == 1
    assert status["test.flaky"].last_error == "RuntimeError: the intermediate server is away"
    assert status["test.other"].pending == 0
    # Backing off: a normal round skips it ...
    dispatcher.round()
    assert seen == []
    # ... and it catches up when tried again.
    dispatcher.drain()
    assert seen == [0, 1, 2] and other == [0, 1, 2]
    status = {s.name: s for s in dispatcher.status()}
    assert status["test.flaky"].last_error is None and status["test.flaky"].pending == 0


def test_types_filter_what_a_handler_gets_but_the_checkpoint_moves(
        container: Container, clerk: StaffPrincipal) -> None:
    _publish(container, 2)
    container.registry.register_birth(clerk, new_resident(), dt.date(1990, 4, 1))
    got: list[str] = []
    dispatcher = Dispatcher(container.registry.outbox, [Subscriber(
        "test.births", lambda events: got.extend(e.type for e in events),
        frozenset({"registry.resident.birth"}))])
    dispatcher.drain()
    assert got == ["registry.resident.birth"]
    assert dispatcher.status()[0].pending == 0


def test_two_dispatchers_in_parallel_deliver_each_event_once(container: Container) -> None:
    """Two processes' dispatchers (different owners), each in its own thread, while events
    keep coming: the lease lets only one deliver a subscriber's batches at a time."""
    delivered: list[int] = []
    lock = threading.Lock()

    def handle(events: Sequence[Event]) -> None:
        time.sleep(0.01)
        with lock:
            delivered.extend(e.seq for e in events)

    dispatchers = [Dispatcher(container.registry.outbox,
                              [Subscriber("test.once", handle, batch_size=7)], owner=f"p{i}")
                   for i in range(2)]
    stop = threading.Event()

    def run(d: Dispatcher) -> None:
        while not stop.is_set():
            d.round(ignore_backoff=True)

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for t in threads:
        t.start()
    for i in range(10):
        _publish(container, 10, start=i * 10)
    deadline = time.monotonic() + 30
    while len(set(delivered)) < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert sorted(delivered) == list(range(1, 101))  # every event, none twice


_CHILD = """
import sys, time
from mynumber.app import build_container
from mynumber.kernel.events import Dispatcher, Subscriber
from mynumber.settings import Settings
from sqlalchemy import text

settings = Settings.model_validate_json(sys.argv[1])
container = build_container(settings)
engine = container.databases.engine("registry")

def handle(events):
    # Idempotent as every handler must be: applying event n twice leaves one row n.
    for e in events:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO kill_test (seq) SELECT :s WHERE NOT EXISTS "
                              "(SELECT 1 FROM kill_test WHERE seq = :s)"), {"s": e.seq})
            conn.execute(text("UPDATE kill_test_applied SET n = n + 1"))
        time.sleep(0.02)

Dispatcher(container.registry.outbox, [Subscriber("test.killed", handle, batch_size=50)],
           owner="child").drain()
"""


def test_a_dispatcher_killed_mid_delivery_loses_and_duplicates_nothing(
        container: Container, tmp_path: Path) -> None:
    engine = container.databases.engine("registry")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE kill_test (seq BIGINT PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE kill_test_applied (n INTEGER)"))
        conn.execute(text("INSERT INTO kill_test_applied VALUES (0)"))
    _publish(container, 200)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, container.settings.model_dump_json()],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM kill_test")).scalar_one() >= 20:
                    break
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)  # mid-batch: applied, checkpoint not moved
    finally:
        child.wait(30)
    with engine.connect() as conn:
        done = conn.execute(text("SELECT count(*) FROM kill_test")).scalar_one()
    assert 20 <= done < 200

    # The lease the killed process held runs out; a new process takes over from there.
    cp = container.registry.outbox.checkpoints
    with engine.begin() as conn:
        position = conn.execute(text("SELECT position FROM outbox_checkpoints "
                                     "WHERE subscriber = 'test.killed'")).scalar_one()
        conn.execute(cp.update().values(lease_until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    assert position < done  # the batch in flight was applied but not checkpointed

    replayed: list[int] = []

    def handle(events: Sequence[Event]) -> None:
        for e in events:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO kill_test (seq) SELECT :s WHERE NOT EXISTS "
                                  "(SELECT 1 FROM kill_test WHERE seq = :s)"), {"s": e.seq})
            replayed.append(e.seq)

    Dispatcher(container.registry.outbox, [Subscriber("test.killed", handle)],
               owner="successor").drain()
    with engine.connect() as conn:
        seqs = list(conn.execute(text("SELECT seq FROM kill_test ORDER BY seq")).scalars())
    assert seqs == list(range(1, 201))  # nothing lost, nothing twice
    assert replayed[0] == position + 1  # it went on from the checkpoint

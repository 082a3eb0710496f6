"""The log vouches for every resident-facing record (issue 12, part 5): `mynumber log verify`
compares every exchange record with its log entry, both ways and field by field, and names the
処理通番 of each record it cannot vouch for; the portal lists such a record as unverifiable."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select, update
from typer.testing import CliRunner

from mynumber.app import Container, create_app
from mynumber.cli import app as cli_app
from mynumber.network import models as nm
from mynumber.network.interfaces import Outcome, canonical_json, signed_request_bytes
from mynumber.network.services import new_serial
from mynumber.settings import Settings
from tests.network.test_exchange import (
    CITY,
    ITEM,
    MHLW,
    POLICE,
    PORTAL,
    TASK,
    World,
    _first,
    _query,
)
from tests.network.test_exchange import world as world  # the fixture
from tests.test_cli import _env

runner = CliRunner()
LATER = dt.timedelta(days=400)  # past the restricted deferral (365 days by default)


@pytest.fixture
def history(world: World) -> Iterator[dict[str, Any]]:
    """A resident's history: an ordinary exchange, a restricted (police) one and an application
    taken without a number, all integrated into the signed log."""
    c, rid = world.container, _first(world)
    city_addr, mhlw_addr = world.enrol(CITY, rid), world.enrol(MHLW, rid)
    police_addr = world.enrol(POLICE, rid)
    c.agencies.put_copy(CITY, city_addr, ITEM, {"fiscal_year": 2025, "taxable_income": 1})
    c.agencies.put_copy(CITY, city_addr, "resident_record", {"address": "東京都新宿区"})
    ordinary = _query(world, MHLW, mhlw_addr, TASK, CITY, ITEM)
    police = _query(world, POLICE, police_addr, "extra-criminal-investigation", CITY,
                    "resident_record")
    declined = c.network.record_declined(CITY, TASK, "APP-0001", ["課税証明書"])
    assert ordinary.outcome is Outcome.PROVIDED and police.outcome is Outcome.PROVIDED
    while c.network_log.integrate():
        pass
    portal_code = c.agencies.agency_code(PORTAL, world.enrol(PORTAL, rid))
    yield {"ordinary": ordinary.serial, "police": police.serial, "declined": declined.serial,
           "portal_code": portal_code}


def _verify(settings: Settings) -> Any:
    return runner.invoke(cli_app, ["log", "verify"], env=_env(settings))


def _shown(container: Container, portal_code: str) -> dict[str, Any]:
    later = dt.datetime.now(dt.UTC) + LATER
    return {r.serial: r for r in container.network.access_records(PORTAL, portal_code,
                                                                   now=later)}


def _tamper(container: Container, statement: Any) -> None:
    with container.databases.unit_of_work("network") as session:
        session.execute(statement)


def test_untampered_records_verify_and_are_shown_as_verified(
        world: World, history: dict[str, Any], settings: Settings) -> None:
    c = world.container
    report = c.network.verify_records()
    assert report.ok and report.mismatches == []
    assert report.exchanges_checked == report.entries_checked == 3
    assert report.v1_entries == 0
    ok = _verify(settings)
    assert ok.exit_code == 0, ok.output
    assert "3 exchange records match their log entries" in ok.output
    shown = _shown(c, history["portal_code"])
    assert {history["ordinary"], history["police"]} <= set(shown)
    assert all(record.verified for record in shown.values())


def test_a_deleted_exchange_record_fails_log_verify_naming_it(
        world: World, history: dict[str, Any], settings: Settings) -> None:
    c, serial = world.container, history["ordinary"]
    _tamper(c, delete(nm.Exchange).where(nm.Exchange.serial == serial))
    failed = _verify(settings)
    assert failed.exit_code == 1
    assert f"record {serial}: log entry has no exchange record" in failed.output
    as_json = runner.invoke(cli_app, ["log", "verify", "--json"], env=_env(settings))
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["problems"] == []  # the tree itself is intact
    assert report["records"]["mismatches"] == [
        {"serial": serial, "problem": "no_exchange_record", "fields": []}]


def test_a_rewritten_requester_of_a_police_exchange_fails_and_is_shown_unverifiable(
        world: World, history: dict[str, Any], settings: Settings) -> None:
    c, serial = world.container, history["police"]
    before = _shown(c, history["portal_code"])[serial]
    assert before.verified and before.requester_id == POLICE and before.restricted
    # Someone with database access hides the police behind a harmless requester.
    _tamper(c, update(nm.Exchange).where(nm.Exchange.serial == serial)
            .values(requester_id=MHLW))
    failed = _verify(settings)
    assert failed.exit_code == 1
    assert f"record {serial}: differs from its log entry in: requester" in failed.output
    after = _shown(c, history["portal_code"])
    assert not after[serial].verified  # listed, as unverifiable: not hidden, not "true"
    assert after[history["ordinary"]].verified


def test_an_exchange_record_without_a_log_entry_fails_naming_it(
        world: World, history: dict[str, Any], settings: Settings) -> None:
    c = world.container
    with c.databases.unit_of_work("network") as session:
        row = session.scalars(select(nm.Exchange)
                              .where(nm.Exchange.serial == history["ordinary"])).one()
        forged = new_serial(dt.datetime.now(dt.UTC))
        session.execute(insert(nm.Exchange).values(
            serial=forged, occurred_at=row.occurred_at, requester_id=MHLW, task_id=TASK,
            provider_id=CITY, item_code=ITEM, outcome="provided", restricted=False,
            subject_key=row.subject_key))
    failed = _verify(settings)
    assert failed.exit_code == 1
    assert f"record {forged}: has no log entry" in failed.output
    shown = _shown(c, history["portal_code"])
    assert not shown[forged].verified and shown[history["ordinary"]].verified


@pytest.mark.parametrize(("column", "value", "field"), [
    ("provider_id", "kyokai_kenpo", "provider"),
    ("task_id", "bekkyo2-2", "task"),
    ("item_code", "resident_record", "item"),
    ("outcome", "refused", "outcome"),
    ("reason", "not_in_legal_table", "reason"),
    ("restricted", True, "restricted"),
    ("occurred_at", dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "time"),
    ("subject_key", b"\x00" * 16, "subject"),
])
def test_every_field_the_resident_sees_is_compared(
        world: World, history: dict[str, Any], column: str, value: Any, field: str) -> None:
    c, serial = world.container, history["ordinary"]
    _tamper(c, update(nm.Exchange).where(nm.Exchange.serial == serial).values({column: value}))
    report = c.network.verify_records()
    assert [(mm.serial, mm.problem) for mm in report.mismatches] == [(serial, "differs")]
    assert field in report.mismatches[0].fields
    if column != "subject_key":  # moved to nobody's history: the resident no longer finds it
        assert not _shown(c, history["portal_code"])[serial].verified


def test_a_police_record_made_to_look_deferred_is_still_listed_as_unverifiable(
        world: World, history: dict[str, Any]) -> None:
    """Editing the row cannot hide a record behind the restricted deferral: the deferral the
    portal applies is the signed log's."""
    c, serial = world.container, history["ordinary"]
    _tamper(c, update(nm.Exchange).where(nm.Exchange.serial == serial).values(
        restricted=True, disclose_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)))
    shown = _shown(c, history["portal_code"])
    assert serial in shown and not shown[serial].verified


def test_entries_written_before_this_check_still_verify(world: World,
                                                         history: dict[str, Any]) -> None:
    """Backward compatibility: a v1 entry (subject committed through the 住民票コード) is
    compared field by field, and its subject is checked by the portal."""
    c = world.container
    network: Any = c.network
    with c.databases.unit_of_work("network") as session:
        row = session.scalars(select(nm.Exchange)
                              .where(nm.Exchange.serial == history["ordinary"])).one()
        serial = new_serial(dt.datetime.now(dt.UTC))
        resident_code = c.registry.redeem_acquisition_number(
            PORTAL, c.registry.issue_acquisition_number(PORTAL, world.numbers[_first(world)]))
        session.execute(insert(nm.Exchange).values(
            serial=serial, occurred_at=row.occurred_at, requester_id=MHLW, task_id=TASK,
            provider_id=CITY, item_code=ITEM, provision_id=row.provision_id,
            outcome="not_held", restricted=False, subject_key=row.subject_key))
        c.network_log.enqueue(session, serial, canonical_json({
            "v": 1, "serial": serial, "time": row.occurred_at.isoformat(), "requester": MHLW,
            "task": TASK, "provider": CITY, "item": ITEM, "provision": row.provision_id,
            "legal_reference": "番号法別表第二 第1項", "outcome": "not_held", "reason": None,
            "restricted": False, "disclose_after": None,
            "subject": network._commitment(resident_code, serial)}))
    report = c.network.verify_records()
    assert report.ok, report.mismatches
    assert report.v1_entries == 1
    assert _shown(c, history["portal_code"])[serial].verified


def test_the_network_api_marks_the_unverifiable_record(
        world: World, history: dict[str, Any]) -> None:
    c, serial = world.container, history["ordinary"]
    _tamper(c, update(nm.Exchange).where(nm.Exchange.serial == serial)
            .values(provider_id="kyokai_kenpo"))
    at = dt.datetime.now(dt.UTC)
    body: dict[str, Any] = {"agency_id": PORTAL, "subject_code": history["portal_code"],
                            "requested_at": at, "nonce": secrets.token_urlsafe(16)}
    key = c.agencies.keyring.keys(PORTAL).signing
    body["signature"] = base64.b64encode(
        key.sign(signed_request_bytes("access-records-query", body))).decode()
    body["requested_at"] = at.isoformat()
    client = TestClient(create_app(container=c))
    answer = client.post("/api/v1/network/access-records/query", json=body)
    assert answer.status_code == 200, answer.text
    verified = {r["serial"]: r["verified"] for r in answer.json()["records"]}
    assert verified[serial] is False
    assert history["police"] not in verified  # restricted: deferred, not listed today
    assert all(v for s, v in verified.items() if s != serial)

"""番号法 別表第一 (issue 12, part 4): the number-use table as data, and only an agency with a
use obtains a 機関別符号 (single, bulk, over the API), refusals clear and recorded."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import secrets
from collections.abc import Iterator
from importlib import resources
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mynumber.app import create_app
from mynumber.network import models as nm
from mynumber.network.interfaces import (
    NoNumberUse,
    Outcome,
    RefusalReason,
    signed_request_bytes,
)
from mynumber.network.legal_table import (
    LegalTableDataError,
    build_directory,
    load_legal_table,
)
from mynumber.network.number_use import load_number_use, parse_number_use
from tests.network.test_exchange import CITY, ITEM, MHLW, PORTAL, TASK, World, _first, _query
from tests.network.test_exchange import world as world
from tests.network.test_legal_table import MUNICIPALITIES

DATA = resources.files("mynumber.network") / "data"
JASSO = "jasso"
MAYORS = {"designated_city_mayor", "health_center_city_mayor", "atomic_bomb_city_mayor",
          "city_mayor", "special_ward_mayor", "town_village_mayor"}


def _text() -> str:
    return (DATA / "number_use.csv").read_text(encoding="utf-8")


# -- the data -------------------------------------------------------------------------------------


def test_every_requester_of_the_legal_table_uses_the_number_for_its_own_task() -> None:
    table, uses = load_legal_table(), load_number_use()
    listed = {(u.kind, u.task_id) for u in uses.uses()}
    for provision in table.provisions():
        for kind in provision.requester_kinds:
            assert (kind, provision.task_id) in listed, provision.provision_id


def test_the_portal_the_municipalities_and_the_pension_service_have_their_uses() -> None:
    uses = load_number_use()
    assert [u.task_id for u in uses.uses("portal")] == ["extra-portal-self-information"]
    for mayor in MAYORS:
        assert "juki-resident-register" in {u.task_id for u in uses.uses(mayor)}
    # 日本年金機構 asks nothing in the 2015 table; it does 厚生労働大臣's pension work by law.
    pension = uses.uses("japan_pension_service")
    assert pension and {u.derived_from for u in pension} == {"delegated"}
    assert {"bekkyo2-35", "bekkyo2-47"} <= {u.task_id for u in pension}


def test_every_agency_of_the_shipped_directory_has_a_use() -> None:
    with MUNICIPALITIES.open(encoding="utf-8") as f:
        municipalities = [SimpleNamespace(**row) for row in csv.DictReader(f)]
    uses = load_number_use()
    assert {spec.kind for spec in build_directory(municipalities)} <= uses.kinds()


def _without(predicate: object) -> str:
    rows = list(csv.reader(io.StringIO(_text())))
    kept = [rows[0]] + [r for r in rows[1:] if not predicate(r)]  # type: ignore[operator]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(kept)
    return out.getvalue()


def test_the_table_refuses_to_load_when_it_does_not_cover_the_legal_table() -> None:
    table = load_legal_table()
    # A requester's task dropped: its queries would have no use behind them.
    with pytest.raises(LegalTableDataError, match="jasso asks under"):
        parse_number_use(_without(lambda r: r[0] == JASSO), table)
    # A provider without any use (日本年金機構 only provides in the 2015 table).
    with pytest.raises(LegalTableDataError, match="japan_pension_service provides"):
        parse_number_use(_without(lambda r: r[0] == "japan_pension_service"), table)
    header = "kind,task_id,title,basis,derived_from,note\n"
    with pytest.raises(LegalTableDataError, match="unknown agency kind"):
        parse_number_use(_text() + "tax_office,juki-x,税,番号法,resident_register,\n", table)
    with pytest.raises(LegalTableDataError, match="neither a task"):
        parse_number_use(_text() + "portal,tax-1,税,番号法,resident_register,\n", table)
    with pytest.raises(LegalTableDataError, match="duplicate use"):
        parse_number_use(_text() + _text().splitlines()[1] + "\n", table)
    with pytest.raises(LegalTableDataError, match="expected columns"):
        parse_number_use(header.replace("note", "remark") + _text().split("\n", 1)[1], table)


# -- the core hands codes only to agencies with a use -----------------------------------------


@pytest.fixture
def jasso_use_ended(world: World) -> Iterator[World]:
    """The shipped table gives every directory agency a use, so the refused agency is made by
    an amendment: the same service with 日本学生支援機構's uses removed from the table."""
    network = world.container.network
    shipped = network.number_use
    network.number_use = shipped.without("jasso")
    try:
        yield world
    finally:
        network.number_use = shipped


def _refusals(world: World) -> list[dict[str, object]]:
    with world.container.databases.unit_of_work("network") as session:
        rows = session.scalars(select(nm.AuditEvent).where(
            nm.AuditEvent.tag == "network:agency_code:refused"))
        return [{"actor": r.actor, "reason": r.reason, **(r.details or {})} for r in rows]


def test_an_agency_without_a_use_gets_no_agency_code_single_or_bulk(
        jasso_use_ended: World) -> None:
    world = jasso_use_ended
    c, rid = world.container, _first(world)
    numbers = [world.numbers[r] for r in sorted(world.numbers)]
    token = c.registry.issue_acquisition_number(JASSO, numbers[0])
    with pytest.raises(NoNumberUse) as single:
        c.network.issue_agency_code(JASSO, token)
    assert single.value.code == "no_number_use" and single.value.status == 403
    tokens = [c.registry.issue_acquisition_number(JASSO, n) for n in numbers]
    with pytest.raises(NoNumberUse):
        c.network.issue_agency_codes(JASSO, tokens)
    # Through the agencies' own path too (宛名番号の登録).
    with pytest.raises(NoNumberUse):
        world.enrol(JASSO, rid)
    refusals = _refusals(world)
    assert len(refusals) == 3
    assert {r["actor"] for r in refusals} == {"agency:jasso"}
    assert {r["reason"] for r in refusals} == {"no_number_use"}
    assert {r["what"] for r in refusals} == {"issue", "issue_bulk"}
    # Refused before redemption: the 取得番号 are not spent. With the use back they work.
    c.network.number_use = load_number_use()
    assert len(c.network.issue_agency_code(JASSO, token)) == 26
    assert len(c.network.issue_agency_codes(JASSO, tokens[1:])) == len(tokens) - 1


def test_an_agency_with_a_use_still_gets_its_code(jasso_use_ended: World) -> None:
    world = jasso_use_ended
    c, rid = world.container, _first(world)
    token = c.registry.issue_acquisition_number(MHLW, world.numbers[rid])
    assert len(c.network.issue_agency_code(MHLW, token)) == 26
    assert _refusals(world) == []


def _signed_code_request(world: World, agency: str, token: str) -> dict[str, object]:
    at = dt.datetime.now(dt.UTC)
    body: dict[str, object] = {"agency_id": agency, "acquisition_number": token,
                               "requested_at": at, "nonce": secrets.token_urlsafe(16)}
    key = world.container.agencies.keyring.keys(agency).signing
    body["signature"] = base64.b64encode(
        key.sign(signed_request_bytes("agency-code-request", body))).decode()
    body["requested_at"] = at.isoformat()
    return body


def test_the_api_refuses_an_agency_without_a_use_with_a_problem(jasso_use_ended: World) -> None:
    world = jasso_use_ended
    c, rid = world.container, _first(world)
    client = TestClient(create_app(container=c))
    c.agencies.ensure_registered(JASSO)
    token = c.registry.issue_acquisition_number(JASSO, world.numbers[rid])
    refused = client.post("/api/v1/network/agency-codes",
                          json=_signed_code_request(world, JASSO, token))
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["code"] == "no_number_use" and "別表第一" in problem["detail"]
    assert world.numbers[rid] not in refused.text and token not in refused.text
    mhlw_token = c.registry.issue_acquisition_number(MHLW, world.numbers[rid])
    granted = client.post("/api/v1/network/agency-codes",
                          json=_signed_code_request(world, MHLW, mhlw_token))
    assert granted.status_code == 200, granted.text
    assert len(granted.json()["agency_code"]) == 26


def test_a_query_from_an_agency_whose_use_ended_is_refused_and_recorded(world: World) -> None:
    """Codes issued before an amendment ended the use: the core routes nothing for them."""
    c, rid = world.container, _first(world)
    jasso_addr = world.enrol(JASSO, rid)
    world.enrol(CITY, rid)
    network = c.network
    shipped = network.number_use
    network.number_use = shipped.without("jasso")
    try:
        result = _query(world, JASSO, jasso_addr, TASK, CITY, ITEM)
    finally:
        network.number_use = shipped
    assert (result.outcome, result.reason) == (Outcome.REFUSED, RefusalReason.NO_NUMBER_USE)
    portal_code = c.agencies.agency_code(PORTAL, world.enrol(PORTAL, rid))
    shown = [r for r in c.network.access_records(PORTAL, portal_code)
             if r.serial == result.serial]
    assert shown and shown[0].reason is RefusalReason.NO_NUMBER_USE and shown[0].verified

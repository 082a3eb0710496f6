"""国税庁 in the network: a use of the number read from 番号法 別表第一 itself (第17項・第38項:
国税庁長官 neither asks nor provides in the 2015 別表第二), checked strictly against the shipped
別表第一, and a 機関別符号 for a resident like any other agency with a use."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mynumber.app import create_app
from mynumber.network import models as nm
from mynumber.network.interfaces import NoNumberUse
from mynumber.network.legal_table import (
    LegalTableDataError,
    load_legal_table,
    national_agencies,
)
from mynumber.network.number_use import (
    load_bekkyo1,
    load_number_use,
    parse_bekkyo1,
    parse_number_use,
)
from tests.network.test_exchange import MHLW, World, _first
from tests.network.test_exchange import world as world
from tests.network.test_legal_table import DATA, ROOT, data_text
from tests.network.test_number_use import _signed_code_request

NTA = "national_tax_agency"
JASSO = "jasso"
BEKKYO1_SOURCE = ROOT.parent / "shared" / "design" / "data" / "bekkyo1-2015.csv"
HEADER = "kind,task_id,title,basis,derived_from,note\n"


def _item(no: str) -> str:
    return load_bekkyo1()[no].task


def _row(kind: str, task_id: str, title: str, derived_from: str = "bekkyo1_item") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        [kind, task_id, title, "番号法第9条第1項・別表第一", derived_from, ""])
    return out.getvalue()


def _shipped_without_nta() -> str:
    return "".join(line for line in data_text("number_use.csv").splitlines(keepends=True)
                   if not line.startswith(f"{NTA},"))


# -- the data ----------------------------------------------------------------------------------


@pytest.mark.skipif(not BEKKYO1_SOURCE.exists(), reason="the design folder is not checked out")
def test_the_shipped_bekkyo1_is_the_statute_byte_for_byte() -> None:
    assert (DATA / "bekkyo1.csv").read_bytes() == Path(BEKKYO1_SOURCE).read_bytes()


def test_bekkyo1_has_every_item_of_2015() -> None:
    items = load_bekkyo1()
    assert len(items) == 99 and "36-2" in items and items["25"].deleted
    assert items["38"].user == items["17"].user == "国税庁長官"
    assert items["36-2"].reference == "番号法別表第一 第36の2項"


def test_the_national_tax_agency_is_an_agency_with_its_bekkyo1_uses() -> None:
    spec = next(s for s in national_agencies() if s.agency_id == NTA)
    assert (spec.number, spec.name, spec.kind) == (4, "国税庁", NTA)
    assert load_legal_table().agency_kinds()[NTA] == "国税庁長官"
    uses = load_number_use().uses(NTA)
    assert [(u.task_id, u.derived_from) for u in uses] == [
        ("bekkyo1-17", "bekkyo1_item"), ("bekkyo1-38", "bekkyo1_item")]
    # The title is the statute's 事務 word for word.
    assert [u.title for u in uses] == [_item("17"), _item("38")]
    assert uses[1].title.startswith("国税通則法その他の国税に関する法律による")
    assert all("別表第一" in u.basis for u in uses)


def test_the_loader_accepts_bekkyo1_rows_and_refuses_what_the_statute_does_not_say() -> None:
    table, base = load_legal_table(), _shipped_without_nta()
    # Accepted: the two rows as shipped, and another 国税庁長官 item added the same way.
    parsed = parse_number_use(base + _row(NTA, "bekkyo1-38", _item("38")), table)
    assert [u.task_id for u in parsed.uses(NTA)] == ["bekkyo1-38"]
    # An item 別表第一 does not have, or its deleted item 25: the load stops.
    with pytest.raises(LegalTableDataError, match="no such item of 別表第一"):
        parse_number_use(base + _row(NTA, "bekkyo1-99", _item("38")), table)
    with pytest.raises(LegalTableDataError, match="no such item of 別表第一"):
        parse_number_use(base + _row(NTA, "bekkyo1-25", "削除"), table)
    # The check is against the data: the same row fails when 別表第一 lacks the item.
    trimmed = {no: item for no, item in load_bekkyo1().items() if no != "38"}
    with pytest.raises(LegalTableDataError, match="no such item of 別表第一"):
        parse_number_use(base + _row(NTA, "bekkyo1-38", _item("38")), table, trimmed)
    # A paraphrased title, an item for another body, a mislabelled derivation.
    with pytest.raises(LegalTableDataError, match="title differs from 番号法別表第一 第38項"):
        parse_number_use(base + _row(NTA, "bekkyo1-38", "国税の賦課又は徴収に関する事務"),
                         table)
    with pytest.raises(LegalTableDataError, match="names '国税庁長官', not 独立行政法人日本学生"):
        parse_number_use(base + _row(JASSO, "bekkyo1-38", _item("38")), table)
    with pytest.raises(LegalTableDataError, match="derived_from bekkyo1_item"):
        parse_number_use(base + _row(NTA, "bekkyo1-38", _item("38"), "delegated"), table)
    bekkyo2_1 = next(t for t in table.tasks() if t.task_id == "bekkyo2-1")
    with pytest.raises(LegalTableDataError, match="derived_from bekkyo1_item"):
        parse_number_use(base + _row(NTA, "bekkyo2-1", bekkyo2_1.title), table)
    with pytest.raises(LegalTableDataError, match="duplicate use"):
        parse_number_use(data_text("number_use.csv") + _row(NTA, "bekkyo1-38", _item("38")),
                         table)


def test_a_malformed_bekkyo1_refuses_to_load() -> None:
    text = data_text("bekkyo1.csv")
    lines = text.splitlines(keepends=True)
    with pytest.raises(LegalTableDataError, match="duplicate item"):
        parse_bekkyo1(text + lines[1])
    with pytest.raises(LegalTableDataError, match="bad or duplicate item"):
        parse_bekkyo1(text + "38bis,国税庁長官,事務,x\n")
    with pytest.raises(LegalTableDataError, match="a user and a task"):
        parse_bekkyo1(text + "99,,国税の事務,x\n")
    with pytest.raises(LegalTableDataError, match="expected columns"):
        parse_bekkyo1(text.replace("item,user,task,source", "item,body,task,source", 1))


# -- 国税庁 obtains 機関別符号; an agency without a use still does not ---------------------------


@pytest.fixture
def jasso_use_ended(world: World) -> Iterator[World]:
    network = world.container.network
    shipped = network.number_use
    network.number_use = shipped.without(JASSO)
    try:
        yield world
    finally:
        network.number_use = shipped


def _refused_actors(world: World) -> list[str]:
    with world.container.databases.unit_of_work("network") as session:
        return [r.actor for r in session.scalars(select(nm.AuditEvent).where(
            nm.AuditEvent.tag == "network:agency_code:refused"))]


def test_the_national_tax_agency_gets_agency_codes_and_one_without_a_use_does_not(
        jasso_use_ended: World) -> None:
    world = jasso_use_ended
    c, rid = world.container, _first(world)
    numbers = [world.numbers[r] for r in sorted(world.numbers)]
    assert c.network.agency(NTA).name == "国税庁"  # in the directory the tests sync
    token = c.registry.issue_acquisition_number(NTA, numbers[0])
    code = c.network.issue_agency_code(NTA, token)
    assert len(code) == 26
    tokens = [c.registry.issue_acquisition_number(NTA, n) for n in numbers[1:]]
    assert len(set(c.network.issue_agency_codes(NTA, tokens)) | {code}) == len(numbers)
    # Through its intermediate server (宛名番号の登録), with keys registered like any agency's.
    address = world.enrol(NTA, rid)
    assert c.agencies.agency_code(NTA, address) == code
    mhlw = c.agencies.agency_code(MHLW, world.enrol(MHLW, rid))
    assert mhlw != code
    # 日本学生支援機構, its use ended, is still refused; 国税庁 was not.
    with pytest.raises(NoNumberUse):
        c.network.issue_agency_code(JASSO, c.registry.issue_acquisition_number(JASSO,
                                                                               numbers[0]))
    assert _refused_actors(world) == ["agency:jasso"]


def test_without_its_bekkyo1_uses_the_national_tax_agency_is_refused(world: World) -> None:
    c, rid = world.container, _first(world)
    network = c.network
    shipped = network.number_use
    network.number_use = shipped.without(NTA)
    try:
        with pytest.raises(NoNumberUse) as refused:
            network.issue_agency_code(
                NTA, c.registry.issue_acquisition_number(NTA, world.numbers[rid]))
    finally:
        network.number_use = shipped
    assert refused.value.code == "no_number_use"
    assert _refused_actors(world) == [f"agency:{NTA}"]


def test_the_national_tax_agency_asks_for_its_code_over_the_api(world: World) -> None:
    c, rid = world.container, _first(world)
    client = TestClient(create_app(container=c))
    c.agencies.ensure_registered(NTA)
    token = c.registry.issue_acquisition_number(NTA, world.numbers[rid])
    granted = client.post("/api/v1/network/agency-codes",
                          json=_signed_code_request(world, NTA, token))
    assert granted.status_code == 200, granted.text
    assert len(granted.json()["agency_code"]) == 26
    assert world.numbers[rid] not in granted.text

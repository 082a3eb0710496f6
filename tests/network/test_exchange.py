"""The network core end to end: real registry, real agency codes, real intermediate servers,
real signatures and envelopes, the real log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select, text

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.network import models as nm
from mynumber.network.interfaces import (
    AgencyStatus,
    ExchangeQuery,
    NotPermitted,
    Outcome,
    RefusalReason,
)
from tests.conftest import SHINJUKU, make_staff, new_resident

MHLW = "mhlw"  # 厚生労働大臣
CITY = "municipality-131041"  # 新宿区長
PENSION = "japan_pension_service"
PORTAL = "mynaportal"
POLICE = "prefecture-13-police"
TASK = "bekkyo2-1"  # 健康保険 (協会けんぽの適用・徴収) by 厚生労働大臣
ITEM = "local_tax"


@dataclasses.dataclass
class World:
    container: Container
    clerk: StaffPrincipal
    numbers: dict[int, str]  # resident id -> 個人番号 (test-side only)

    def enrol(self, agency: str, resident_id: int) -> str:
        address = f"{agency[:8]}-{resident_id:06d}"
        self.container.agencies.enrol_person(agency, address, self.numbers[resident_id])
        return address


@pytest.fixture
def world(container: Container) -> World:
    clerk = make_staff(container, "net-clerk", SHINJUKU, StaffRole.CLERK)
    numbers = {}
    names = [("太郎", "タロウ"), ("花子", "ハナコ"), ("次郎", "ジロウ")]
    for i, (given_name, kana) in enumerate(names):
        r = container.registry.register_birth(
            clerk, new_resident(given_name=given_name, given_name_kana=kana,
                                birth_date=dt.date(1980 + i, 5, 1)), dt.date(1980 + i, 5, 1))
        numbers[r.id] = container.registry.reveal_number(clerk, r.id, "test setup")
    for agency in (MHLW, CITY, PENSION, PORTAL, POLICE, "jasso"):
        container.agencies.ensure_registered(agency)
    return World(container, clerk, numbers)


def _first(world: World) -> int:
    return sorted(world.numbers)[0]


def test_permitted_exchange_returns_the_providers_copy_and_is_recorded(world: World):
    c, rid = world.container, _first(world)
    city_addr = world.enrol(CITY, rid)
    mhlw_addr = world.enrol(MHLW, rid)
    c.agencies.put_copy(CITY, city_addr, ITEM, {"taxable_income": 4_200_000, "year": 2025})

    result = c.agencies.query(MHLW, mhlw_addr, TASK, CITY, ITEM)

    assert result.outcome is Outcome.PROVIDED
    assert result.data == {"taxable_income": 4_200_000, "year": 2025}
    assert c.network_log.integrate() >= 1
    index = c.network_log.index_of(result.serial)
    assert index is not None
    entry = c.network_log.entries(index, index + 1)[0].entry.decode()
    assert '"outcome":"provided"' in entry and '"provision":"bekkyo2-1-2"' in entry
    # The public entry names no person: only a per-record commitment.
    assert c.agencies.agency_code(MHLW, mhlw_addr) not in entry

    portal_addr = world.enrol(PORTAL, rid)
    records = c.network.access_records(PORTAL, c.agencies.agency_code(PORTAL, portal_addr))
    assert [r.serial for r in records] == [result.serial]
    assert records[0].requester_name == "厚生労働大臣" and records[0].log_index == index


def test_permitted_but_not_held_is_not_held(world: World):
    c, rid = world.container, _first(world)
    world.enrol(CITY, rid)
    mhlw_addr = world.enrol(MHLW, rid)
    result = c.agencies.query(MHLW, mhlw_addr, TASK, CITY, ITEM)
    assert result.outcome is Outcome.NOT_HELD and result.data is None


def test_two_agencies_codes_for_one_resident_differ_and_no_agency_table_links_them(world: World):
    c, rid = world.container, _first(world)
    a, b = world.enrol(CITY, rid), world.enrol(MHLW, rid)
    code_a, code_b = c.agencies.agency_code(CITY, a), c.agencies.agency_code(MHLW, b)
    assert code_a != code_b
    # Outside the core, nothing ties the two rows together: every value of the city's row
    # other than the agency-independent ones differs from the ministry's row.
    with c.databases.unit_of_work("agencies") as session:
        rows = session.execute(text("SELECT * FROM persons")).mappings().all()
    row_a = next(r for r in rows if r["agency_id"] == CITY)
    row_b = next(r for r in rows if r["agency_id"] == MHLW)
    shared = {k for k in row_a.keys() if k not in ("id", "created_at") and row_a[k] == row_b[k]}
    assert shared == set()
    # And the network core keeps no table of codes at all.
    with c.databases.unit_of_work("network") as session:
        for table in inspect(session.connection()).get_table_names():
            dump = " ".join(str(v) for row in session.execute(text(f'SELECT * FROM "{table}"'))
                            for v in row)
            assert code_a not in dump and code_b not in dump


def _query(world: World, requester: str, address: str, task: str, provider: str, item: str):
    return world.container.agencies.query(requester, address, task, provider, item)


def test_query_outside_the_legal_table_is_refused_and_recorded(world: World):
    c, rid = world.container, _first(world)
    jasso_addr = world.enrol("jasso", rid)
    world.enrol(PENSION, rid)
    result = _query(world, "jasso", jasso_addr, TASK, PENSION, "pension")
    assert result.outcome is Outcome.REFUSED
    assert result.reason is RefusalReason.NOT_IN_LEGAL_TABLE
    portal_addr = world.enrol(PORTAL, rid)
    records = c.network.access_records(PORTAL, c.agencies.agency_code(PORTAL, portal_addr))
    assert [(r.serial, r.outcome) for r in records] == [(result.serial, Outcome.REFUSED)]


def test_suspended_agencies_are_refused_and_recorded(world: World):
    c, rid = world.container, _first(world)
    city_addr, mhlw_addr = world.enrol(CITY, rid), world.enrol(MHLW, rid)
    c.agencies.put_copy(CITY, city_addr, ITEM, {"x": 1})
    c.network.set_agency_status("oversight", CITY, AgencyStatus.SUSPENDED, "audit finding")
    assert _query(world, MHLW, mhlw_addr, TASK, CITY, ITEM).reason is (
        RefusalReason.PROVIDER_SUSPENDED)
    c.network.set_agency_status("oversight", CITY, AgencyStatus.ACTIVE, "resolved")
    c.network.set_agency_status("oversight", MHLW, AgencyStatus.SUSPENDED, "audit finding")
    assert _query(world, MHLW, mhlw_addr, TASK, CITY, ITEM).reason is (
        RefusalReason.REQUESTER_SUSPENDED)
    with c.databases.unit_of_work("network") as session:
        reasons = session.scalars(select(nm.Exchange.reason).order_by(nm.Exchange.id)).all()
    assert reasons == ["provider_suspended", "requester_suspended"]


def _signed(world: World, agency: str, **fields) -> ExchangeQuery:
    q = ExchangeQuery(requested_at=dt.datetime.now(dt.UTC), nonce=secrets.token_urlsafe(16),
                      **fields)
    keys = world.container.agencies.keyring.keys(agency)
    return dataclasses.replace(q, signature=keys.signing.sign(q.signed_bytes()))


def test_unknown_forged_and_foreign_codes_are_refused(world: World):
    c, rid = world.container, _first(world)
    city_addr = world.enrol(CITY, rid)
    c.agencies.put_copy(CITY, city_addr, ITEM, {"x": 1})
    city_code = c.agencies.agency_code(CITY, city_addr)
    base = {"requester_id": MHLW, "task_id": TASK, "provider_id": CITY, "item_code": ITEM}
    for code in ("A" * 26, city_code, "not-a-code"):
        result = c.network.exchange(_signed(world, MHLW, subject_code=code, **base))
        assert (result.outcome, result.reason) == (Outcome.REFUSED,
                                                   RefusalReason.UNKNOWN_AGENCY_CODE)
        assert result.sealed is None


def test_bad_signature_stale_and_replayed_queries_are_refused(world: World):
    c, rid = world.container, _first(world)
    mhlw_code = c.agencies.agency_code(MHLW, world.enrol(MHLW, rid))
    world.enrol(CITY, rid)
    base = {"requester_id": MHLW, "task_id": TASK, "provider_id": CITY, "item_code": ITEM,
            "subject_code": mhlw_code}
    forged = _signed(world, CITY, **base)  # signed with the wrong agency's key
    assert c.network.exchange(forged).reason is RefusalReason.BAD_SIGNATURE
    stale = dataclasses.replace(_signed(world, MHLW, **base),
                                requested_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    keys = c.agencies.keyring.keys(MHLW)
    stale = dataclasses.replace(stale, signature=keys.signing.sign(stale.signed_bytes()))
    assert c.network.exchange(stale).reason is RefusalReason.STALE_REQUEST
    good = _signed(world, MHLW, **base)
    assert c.network.exchange(good).outcome is Outcome.NOT_HELD
    assert c.network.exchange(good).reason is RefusalReason.REPLAYED
    with c.databases.unit_of_work("network") as session:
        assert session.scalar(select(nm.Exchange.id).where(
            nm.Exchange.reason == "replayed_request")) is not None


def test_resident_declining_the_number_is_recorded_with_documents_and_no_exchange(world: World):
    c = world.container
    result = c.agencies.record_declined(CITY, "bekkyo2-56-2" if any(
        t.task_id == "bekkyo2-56-2" for t in c.network.legal_table().tasks()) else TASK,
        "APP-2026-0001", ["課税証明書", "健康保険証の写し"])
    assert result.outcome is Outcome.DECLINED
    c.network_log.integrate()
    index = c.network_log.index_of(result.serial)
    entry = c.network_log.entries(index, index + 1)[0].entry.decode()
    assert '"documents":["課税証明書","健康保険証の写し"]' in entry
    assert '"subject":null' in entry and '"provider":null' in entry
    with c.databases.unit_of_work("agencies") as session:
        assert session.execute(text("SELECT count(*) FROM sent_queries")).scalar() == 0


def test_restricted_exchange_is_logged_at_once_and_disclosed_after_the_deferral(world: World):
    c, rid = world.container, _first(world)
    police_addr, city_addr = world.enrol(POLICE, rid), world.enrol(CITY, rid)
    c.agencies.put_copy(CITY, city_addr, "resident_record", {"address": "東京都新宿区"})
    result = _query(world, POLICE, police_addr, "extra-criminal-investigation", CITY,
                    "resident_record")
    assert result.outcome is Outcome.PROVIDED
    c.network_log.integrate()
    assert c.network_log.index_of(result.serial) is not None  # logged immediately
    portal_code = c.agencies.agency_code(PORTAL, world.enrol(PORTAL, rid))
    assert c.network.access_records(PORTAL, portal_code) == []  # deferred...
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=366)
    shown = c.network.access_records(PORTAL, portal_code, now=later)
    assert [r.serial for r in shown] == [result.serial]  # ...never omitted
    assert shown[0].restricted and shown[0].disclosed_at is not None


def test_only_the_portal_may_list_a_residents_records(world: World):
    c, rid = world.container, _first(world)
    code = c.agencies.agency_code(MHLW, world.enrol(MHLW, rid))
    with pytest.raises(NotPermitted):
        c.network.access_records(MHLW, code)


def test_acquisition_numbers_are_single_use_and_bound_to_their_agency(world: World):
    c, rid = world.container, _first(world)
    token = c.registry.issue_acquisition_number(CITY, world.numbers[rid])
    with pytest.raises(Exception) as foreign:
        c.network.issue_agency_code(MHLW, token)
    assert getattr(foreign.value, "code", "") == "acquisition_number_invalid"
    code = c.network.issue_agency_code(CITY, token)
    assert len(code) == 26
    with pytest.raises(Exception) as reused:
        c.network.issue_agency_code(CITY, token)
    assert getattr(reused.value, "code", "") == "acquisition_number_invalid"


# -- the property: everything outside the table is refused and recorded ---------------------------

REQUESTERS = [MHLW, CITY, PENSION, "jasso", POLICE, "kyokai_kenpo", "municipality-131130-boe"]
PROVIDERS = [CITY, PENSION, MHLW, "kyokai_kenpo", "jasso"]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_combination_outside_the_table_is_refused_and_recorded(world: World, data):
    c, rid = world.container, _first(world)
    table = c.network.legal_table()
    tasks = [t.task_id for t in table.tasks()]
    items = [i.code for i in table.items()]
    requester = data.draw(st.sampled_from(REQUESTERS))
    provider = data.draw(st.sampled_from(PROVIDERS))
    task = data.draw(st.sampled_from(tasks))
    item = data.draw(st.sampled_from(items))
    r_kind, p_kind = c.network.agency(requester).kind, c.network.agency(provider).kind
    permitted = table.find(r_kind, task, p_kind, item) is not None
    c.agencies.ensure_registered(requester)
    c.agencies.ensure_registered(provider)
    address = f"p-{rid:06d}"
    try:
        c.agencies.agency_code(requester, address)
    except Exception:
        c.agencies.enrol_person(requester, address, world.numbers[rid])
    result = c.agencies.query(requester, address, task, provider, item)
    with c.databases.unit_of_work("network") as session:
        row = session.scalars(select(nm.Exchange).where(nm.Exchange.serial == result.serial)).one()
    assert row.outcome == result.outcome.value
    if permitted:
        assert result.outcome in (Outcome.PROVIDED, Outcome.NOT_HELD)
    else:
        assert result.outcome is Outcome.REFUSED
        assert result.reason is RefusalReason.NOT_IN_LEGAL_TABLE
        assert row.subject_key is not None  # shown to the resident like any other

"""住基ネット: the copy follows the registry's events; agencies ask by 住民票コード or by all four
basic items; every query is recorded and the resident sees it. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.juki.events import make_handler
from mynumber.juki.interfaces import (
    AgencyNotPermitted,
    FourItemsRequired,
    QueryKind,
    QueryOutcome,
    SearchItems,
    UseNotPermitted,
)
from mynumber.juki.services import raise_for
from mynumber.kernel.events import Event
from mynumber.registry.interfaces import ResidentRecord, Sex
from tests.conftest import SHIBUYA, new_resident
from tests.juki.conftest import KYOKAI, PENSION, UNLISTED, Feed

TODAY = dt.date.today()
UNKNOWN_CODE = "12345678903"  # a well-formed 住民票コード nobody has


def birth(container: Container, clerk: StaffPrincipal, **overrides: object) -> ResidentRecord:
    details = new_resident(**overrides)
    return container.registry.register_birth(clerk, details, details.birth_date)


def test_copy_follows_birth_move_name_change_and_death(container: Container, feed: Feed,
                                                       clerk: StaffPrincipal) -> None:
    registry, juki = container.registry, container.juki
    born = birth(container, clerk)
    assert juki.identity_of(born.id) is None
    feed.deliver()
    copy = juki.identity_of(born.id)
    assert copy is not None
    assert (copy.resident_code, copy.name, copy.name_kana, copy.birth_date, copy.sex) == (
        born.resident_code, "山田 太郎", "ヤマダ タロウ", born.birth_date, "male")
    assert (copy.change_kind, copy.changed_on, copy.status) == (
        "birth", born.birth_date, "resident")

    registry.change_address(clerk, born.id, "東京都新宿区歌舞伎町一丁目4番1号", "1600021",
                            TODAY)
    registry.change_name(clerk, born.id, "佐藤", "太郎", "サトウ", "タロウ", TODAY)
    feed.deliver()
    copy = juki.identity_of(born.id)
    assert copy is not None
    assert copy.address == "東京都新宿区歌舞伎町一丁目4番1号"
    assert (copy.name, copy.change_kind) == ("佐藤 太郎", "name_change")

    registry.register_death(clerk, born.id, TODAY)
    feed.deliver()
    copy = juki.identity_of(born.id)
    assert copy is not None and (copy.status, copy.change_kind) == ("deceased", "death")
    # 住基ネット never holds the number.
    assert not hasattr(copy, "individual_number")


def test_duplicate_and_older_events_change_nothing(container: Container, feed: Feed,
                                                   clerk: StaffPrincipal) -> None:
    registry, juki = container.registry, container.juki
    person = birth(container, clerk, birth_date=TODAY - dt.timedelta(days=3))
    registry.change_address(clerk, person.id, "東京都新宿区西新宿二丁目8番2号", "", TODAY)
    feed.deliver()
    before = juki.identity_of(person.id)
    assert before is not None and before.change_kind == "address_change"

    handle = make_handler(juki, registry)
    payload = {"resident_id": person.id, "resident_code": person.resident_code,
               "kind": "birth", "occurred_on": (TODAY - dt.timedelta(days=3)).isoformat()}
    old = Event(1, "registry.resident.birth", f"resident:{person.id}", payload,
                dt.datetime.now(dt.UTC))
    handle([old])  # an at-least-once redelivery of the first event
    handle([old, old])
    assert juki.identity_of(person.id) == before

    # Everything delivered again, in order and backwards: the same state.
    events = container.registry.outbox.events
    with container.databases.engine("registry").connect() as conn:
        rows = conn.execute(select(events).where(events.c.seq.is_not(None))
                            .order_by(events.c.seq)).all()
    delivered = [Event(r.seq, r.type, r.subject, r.payload, r.recorded_at) for r in rows]
    assert len(delivered) == 2
    handle(delivered)
    for event in reversed(delivered):
        handle([event])
    assert juki.identity_of(person.id) == before
    assert juki.applied_seqs([person.id])[person.id] == delivered[-1].seq


def test_query_by_code_is_answered_and_recorded(container: Container, feed: Feed,
                                                clerk: StaffPrincipal) -> None:
    person = birth(container, clerk)
    feed.deliver()
    result = container.juki.by_code(PENSION, "pension-benefits", person.resident_code)
    assert result.outcome is QueryOutcome.ANSWERED
    assert result.identity is not None and result.identity.address == person.address
    missing = container.juki.by_code(PENSION, "pension-benefits", UNKNOWN_CODE)
    assert missing.outcome is QueryOutcome.NOT_FOUND and missing.identity is None
    entries = container.juki.disclosure(person.id)
    assert [(e.agency_id, e.kind, e.outcome) for e in entries] == [
        (PENSION, QueryKind.BY_CODE, QueryOutcome.ANSWERED)]
    assert entries[0].agency_name == "日本年金機構"
    assert entries[0].purpose.startswith("国民年金")


def test_four_item_search_matches_after_normalisation(container: Container, feed: Feed,
                                                      clerk: StaffPrincipal) -> None:
    person = birth(container, clerk, family_name="髙橋", given_name="惠子",
                   family_name_kana="タカハシ", given_name_kana="ケイコ", sex=Sex.FEMALE,
                   birth_date=dt.date(1975, 12, 1), address="東京都新宿区西新宿二丁目8番1号")
    feed.deliver()
    juki = container.juki
    variants = [
        SearchItems(name_kana="ﾀｶﾊｼ ｹｲｺ", birth_date="1975-12-01", sex="女",
                    address="東京都新宿区西新宿2-8-1"),
        SearchItems(name_kana="たかはし　けいこ", birth_date="１９７５／１２／１", sex="2",
                    address="東京都新宿区西新宿２丁目８番地の１"),
        SearchItems(name="高橋 恵子", birth_date="1975-12-01", sex="female",
                    address=" 東京都 新宿区 西新宿二丁目八番一号 "),
    ]
    for items in variants:
        result = juki.search(KYOKAI, "health-insurance-kyokai", items)
        assert result.outcome is QueryOutcome.ANSWERED, items
        assert result.identity is not None
        assert result.identity.resident_code == person.resident_code
    # A different name in kanji with the right kana is no match: both given, both must agree.
    result = juki.search(KYOKAI, "health-insurance-kyokai", SearchItems(
        name="高橋 恵美", name_kana="タカハシ ケイコ", birth_date="1975-12-01", sex="女",
        address="東京都新宿区西新宿2-8-1"))
    assert result.outcome is QueryOutcome.NOT_FOUND


@pytest.mark.parametrize("missing", ["name", "birth_date", "sex", "address"])
def test_three_item_search_is_refused_naming_the_rule(container: Container, feed: Feed,
                                                      clerk: StaffPrincipal,
                                                      missing: str) -> None:
    birth(container, clerk)
    feed.deliver()
    items = {"name_kana": "ヤマダ タロウ", "birth_date": "1990-04-01", "sex": "男",
             "address": "東京都新宿区西新宿二丁目8番1号"}
    items[{"name": "name_kana"}.get(missing, missing)] = ""
    with pytest.raises(FourItemsRequired) as refused:
        container.juki.search(KYOKAI, "health-insurance-kyokai", SearchItems(**items))
    problem = refused.value.problem()
    assert problem["status"] == 422 and problem["code"] == "juki_four_items_required"
    assert problem["rule"] == "four_basic_items" and "query_id" in problem
    assert "all four basic items" in problem["detail"]
    recorded = container.juki.queries(1)[0]
    assert (recorded["outcome"], recorded["refusal"]) == ("refused", "juki_four_items_required")


def test_search_matching_two_people_returns_no_one(container: Container, feed: Feed,
                                                   clerk: StaffPrincipal) -> None:
    # Two people whose kana, birth date, sex and address all agree (e.g. 斉藤/斎藤 in one
    # building): the search on kana cannot tell them apart and must provide neither.
    a = birth(container, clerk, family_name="斉藤", family_name_kana="サイトウ")
    b = birth(container, clerk, family_name="斎藤", family_name_kana="サイトウ")
    feed.deliver()
    items = SearchItems(name_kana="サイトウ タロウ", birth_date="1990-04-01", sex="男",
                        address="東京都新宿区西新宿二丁目8番1号")
    result = container.juki.search(KYOKAI, "health-insurance-kyokai", items)
    assert result.outcome is QueryOutcome.AMBIGUOUS and result.identity is None
    with pytest.raises(Exception) as ambiguous:
        raise_for(result)
    assert getattr(ambiguous.value, "code", "") == "juki_ambiguous_match"
    # Both can see that they were searched for and that nothing was provided.
    for person in (a, b):
        assert [(e.outcome, e.kind) for e in container.juki.disclosure(person.id)] == [
            (QueryOutcome.AMBIGUOUS, QueryKind.SEARCH)]
    # With the kanji name the search is unique again.
    exact = container.juki.search(KYOKAI, "health-insurance-kyokai", SearchItems(
        name="斎藤 太郎", name_kana="サイトウ タロウ", birth_date="1990-04-01", sex="男",
        address="東京都新宿区西新宿二丁目8番1号"))
    assert exact.identity is not None and exact.identity.resident_code == b.resident_code


def test_same_kana_birth_and_sex_at_different_addresses_are_never_confused(
        container: Container, feed: Feed, clerk: StaffPrincipal,
        shibuya_clerk: StaffPrincipal) -> None:
    here = birth(container, clerk)
    there = birth(container, shibuya_clerk, municipality_code=SHIBUYA,
                  address="東京都渋谷区宇田川町1番1号")
    feed.deliver()
    juki = container.juki
    for person, address in ((here, "東京都新宿区西新宿2-8-1"),
                            (there, "東京都渋谷区宇田川町一番一号")):
        result = juki.search(PENSION, "pension-benefits", SearchItems(
            name_kana="ヤマダ タロウ", birth_date="1990-04-01", sex="男", address=address))
        assert result.identity is not None
        assert result.identity.resident_code == person.resident_code
    # An address belonging to neither finds no one, never "the nearest".
    assert juki.search(PENSION, "pension-benefits", SearchItems(
        name_kana="ヤマダ タロウ", birth_date="1990-04-01", sex="男",
        address="東京都新宿区西新宿2-8-3")).outcome is QueryOutcome.NOT_FOUND
    # And kana + birth date + sex alone (how the 2023 mislinks happened) is refused.
    with pytest.raises(FourItemsRequired):
        juki.search(PENSION, "pension-benefits", SearchItems(
            name_kana="ヤマダ タロウ", birth_date="1990-04-01", sex="男"))


def test_unlisted_agency_and_unlisted_use_are_refused_and_recorded(
        container: Container, feed: Feed, clerk: StaffPrincipal) -> None:
    person = birth(container, clerk)
    feed.deliver()
    juki = container.juki
    with pytest.raises(AgencyNotPermitted) as refused:
        juki.by_code(UNLISTED, "pension-benefits", person.resident_code)
    assert refused.value.status == 403
    with pytest.raises(UseNotPermitted):  # a pension use asked by a health insurer
        juki.by_code(KYOKAI, "pension-benefits", person.resident_code)
    with pytest.raises(AgencyNotPermitted):
        juki.search(UNLISTED, "pension-benefits", SearchItems(
            name_kana="ヤマダ タロウ", birth_date="1990-04-01", sex="男",
            address="東京都新宿区西新宿二丁目8番1号"))
    entries = juki.disclosure(person.id)
    assert [(e.agency_id, e.outcome) for e in entries] == [
        (KYOKAI, QueryOutcome.REFUSED), (UNLISTED, QueryOutcome.REFUSED)]
    # The refused search named nobody it looked up (it was not run): recorded, no subject.
    latest = juki.queries(1)[0]
    assert (latest["agency_id"], latest["kind"], latest["outcome"], latest["matches"]) == (
        UNLISTED, "search", "refused", 0)


def test_parallel_queries_are_each_recorded(container: Container, feed: Feed,
                                            clerk: StaffPrincipal) -> None:
    person = birth(container, clerk)
    feed.deliver()
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            for _ in range(5):
                container.juki.by_code(PENSION, "pension-benefits", person.resident_code)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(container.juki.disclosure(person.id)) == 20

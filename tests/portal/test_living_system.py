"""What the counter records reaches the municipality's 副本, JPKI and the resident (issue 12):
through the registry's outbox and the event dispatcher, never by reading another context's
tables."""

from __future__ import annotations

import datetime as dt
import time

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.card.interfaces import CardState
from mynumber.jpki.interfaces import CertificateState
from mynumber.registry.interfaces import Sex
from mynumber.settings import Settings
from tests.conftest import SHIBUYA, new_resident
from tests.portal.conftest import CITY, CardHolder, login


def _deliver(container: Container) -> None:
    container.events.drain()
    failing = [s for s in container.events.status() if s.last_error]
    assert not failing, failing


def test_a_birth_at_the_counter_reaches_the_parents_information(
        container: Container, clerk: StaffPrincipal, card_holder: CardHolder) -> None:
    _deliver(container)
    session = login(container, card_holder)
    before = container.portal.my_information(session, "resident_record")
    assert before.data is not None and before.data["household"] == []

    child = new_resident(given_name="花子", given_name_kana="ハナコ", sex=Sex.FEMALE,
                         birth_date=dt.date.today() - dt.timedelta(days=3), relationship="子",
                         household_id=card_holder.resident.household_id)
    newborn = container.registry.register_birth(clerk, child, child.birth_date)
    _deliver(container)

    after = container.portal.my_information(session, "resident_record")
    assert after.data is not None
    assert [m["name"] for m in after.data["household"]] == [newborn.name]
    # The municipality's copy of the newborn exists too (enrolled from the event).
    notices = container.portal.notices(session)
    assert [n.title for n in notices] == ["出生届を受け付けました"]
    assert notices[0].sender_id == CITY


def test_an_address_change_reaches_basic_four_revokes_the_signing_certificate_and_tells(
        container: Container, clerk: StaffPrincipal, card_holder: CardHolder) -> None:
    _deliver(container)
    session = login(container, card_holder)
    signing, auth = card_holder.record.signing_serial, card_holder.record.auth_serial
    assert signing is not None and auth is not None
    assert container.jpki.state(signing) is CertificateState.GOOD

    container.registry.change_address(clerk, card_holder.resident.id,
                                      "東京都新宿区歌舞伎町一丁目4番1号", "1608484",
                                      dt.date.today())
    _deliver(container)

    info = container.portal.my_information(session, "basic_four")
    assert info.data is not None and info.data["address"] == "東京都新宿区歌舞伎町一丁目4番1号"
    assert container.jpki.state(signing) is CertificateState.REVOKED
    assert container.jpki.state(auth) is CertificateState.GOOD  # it carries no address
    assert [n.title for n in container.portal.notices(session)] == [
        "住所の変更を住民票に記録しました"]


def test_delivering_again_changes_nothing(
        container: Container, clerk: StaffPrincipal, card_holder: CardHolder) -> None:
    container.registry.change_name(clerk, card_holder.resident.id, "佐藤", "太郎", "サトウ",
                                   "タロウ", dt.date.today())
    _deliver(container)
    session = login(container, card_holder)
    first = (container.portal.my_information(session, "basic_four").data,
             [n.title for n in container.portal.notices(session)])
    # Every checkpoint back to the start: every event is delivered a second time.
    cp = container.registry.outbox.checkpoints
    with container.databases.engine("registry").begin() as conn:
        conn.execute(cp.update().values(position=0))
    _deliver(container)
    second = (container.portal.my_information(session, "basic_four").data,
              [n.title for n in container.portal.notices(session)])
    assert first == second
    assert second[1] == ["氏名の変更を住民票に記録しました"]


def test_a_move_reaches_the_new_municipality_juki_and_the_resident(
        container: Container, clerk: StaffPrincipal, shibuya_clerk: StaffPrincipal,
        card_holder: CardHolder) -> None:
    resident = card_holder.resident
    container.registry.register_move_out(clerk, resident.id, SHIBUYA, dt.date.today())
    moved = container.registry.register_move_in(
        shibuya_clerk, new_resident(municipality_code=SHIBUYA, address="東京都渋谷区宇田川町1番1号",
                                    postal_code="1508010"),
        dt.date.today(), resident_code=resident.resident_code)
    _deliver(container)

    # The new municipality (渋谷区長) holds the record now; 新宿区 keeps the moved-out one.
    session = login(container, card_holder)
    info = container.portal.my_information(session, "basic_four")
    assert info.provider_id == "municipality-131130"
    assert info.data is not None and info.data["address"] == "東京都渋谷区宇田川町1番1号"
    # 住基ネット answers with the new address and the latest change.
    identity = container.juki.identity_of(moved.id)
    assert identity is not None
    assert (identity.address, identity.municipality_code, identity.change_kind) == (
        "東京都渋谷区宇田川町1番1号", SHIBUYA, "move_in")
    # JPKI: the signing certificate (old address) is revoked; the resident was told, by both.
    assert container.jpki.state(card_holder.record.signing_serial or 0) is \
        CertificateState.REVOKED
    titles = [n.title for n in container.portal.notices(session)]
    assert sorted(titles) == sorted(["転出届を受け付けました", "転入届を受け付けました"])


def test_a_death_ends_the_card_the_certificates_and_reaches_juki(
        container: Container, clerk: StaffPrincipal, card_holder: CardHolder) -> None:
    resident = card_holder.resident
    _deliver(container)  # the municipality has known the resident for a while
    container.registry.register_death(clerk, resident.id, dt.date.today())
    _deliver(container)
    assert container.card.card(card_holder.card_id).state is CardState.ENDED
    assert container.jpki.state(card_holder.record.auth_serial or 0) is CertificateState.REVOKED
    identity = container.juki.identity_of(resident.id)
    assert identity is not None and (identity.status, identity.change_kind) == (
        "deceased", "death")
    # The municipality's copy says so too (read as the municipality's own intermediate
    # server would: through the agencies service that holds its keys).
    copy = container.agencies.copy(CITY, f"J{resident.id:012d}", "resident_record")
    assert copy.payload["status"] == "deceased"


def test_a_child_born_and_dead_before_delivery_still_gets_the_municipal_copy(
        container: Container, clerk: StaffPrincipal, card_holder: CardHolder) -> None:
    """Birth and death both committed before the subscriber ran: the record it reads is
    already a 除票. The municipality still writes it (its own removed record), so its 副本
    and the 住民票関係情報 it answers with are not missing a person who lived there."""
    _deliver(container)
    child = new_resident(given_name="花子", given_name_kana="ハナコ", sex=Sex.FEMALE,
                         birth_date=dt.date.today() - dt.timedelta(days=1), relationship="子",
                         household_id=card_holder.resident.household_id)
    newborn = container.registry.register_birth(clerk, child, child.birth_date)
    container.registry.register_death(clerk, newborn.id, dt.date.today())
    _deliver(container)
    copy = container.agencies.copy(CITY, f"J{newborn.id:012d}", "resident_record")
    assert copy.payload["status"] == "deceased"
    # The parent's household listing no longer names the child.
    session = login(container, card_holder)
    info = container.portal.my_information(session, "resident_record")
    assert info.data is not None and info.data["household"] == []


def test_the_serving_process_delivers_a_counter_change_within_seconds(
        settings: Settings) -> None:
    """With the serving process's dispatcher thread (MYNUMBER_EVENT_DISPATCHER, on by
    default): a name change recorded at the counter reaches the resident's self-information
    within seconds, with nobody calling drain()."""
    from fastapi.testclient import TestClient

    from mynumber.app import build_container, create_app
    from tests.conftest import make_staff
    from tests.portal.conftest import issue_card_holder

    container = build_container(settings.model_copy(update={"event_dispatcher": True}))
    clerk = make_staff(container, "thread-clerk", "131041", StaffRole.CLERK)
    holder = issue_card_holder(container, clerk)
    with TestClient(create_app(container=container)):
        session = login(container, holder)
        deadline = time.monotonic() + 10
        while container.portal.my_information(session, "basic_four").data is None:
            assert time.monotonic() < deadline, "the birth never reached the municipality"
            time.sleep(0.1)
        began = time.monotonic()
        container.registry.change_name(clerk, holder.resident.id, "佐藤", "太郎", "サトウ",
                                       "タロウ", dt.date.today())
        while (container.portal.my_information(session, "basic_four").data or {}).get(
                "name") != "佐藤 太郎":
            assert time.monotonic() - began < 5, "not visible within seconds"
            time.sleep(0.1)

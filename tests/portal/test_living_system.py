"""What the counter records reaches the municipality's 副本, JPKI and the resident (issue 12):
through the registry's outbox and the event dispatcher, never by reading another context's
tables."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mynumber.agencies.events import SUBSCRIBER, MunicipalCopies
from mynumber.agencies.keyring import FileKeyring, provision_agency_keys
from mynumber.agencies.services import AgenciesServiceImpl
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.card.interfaces import CardState
from mynumber.cli import app
from mynumber.errors import DomainError
from mynumber.jpki.interfaces import CertificateState
from mynumber.registry.interfaces import Sex
from mynumber.settings import Settings
from tests.conftest import SHIBUYA, cli_env, new_resident
from tests.portal.conftest import CITY, CardHolder, login

SHIBUYA_MAYOR = "municipality-131130"


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
    # The municipality's own copy of the newborn, and 住基ネット's 本人確認情報 with the birth.
    copy = container.agencies.copy(CITY, f"J{newborn.id:012d}", "resident_record")
    assert copy.payload["name"] == newborn.name and copy.payload["status"] == "resident"
    identity = container.juki.identity_of(newborn.id)
    assert identity is not None and identity.change_kind == "birth"
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


def test_a_municipality_not_yet_on_the_network_holds_no_one_back_and_loads_when_it_joins(
        container: Container, clerk: StaffPrincipal, shibuya_clerk: StaffPrincipal,
        tmp_path: Path) -> None:
    """As in production: the copies are written by a process that holds no agency's private
    keys, so a mayor whose keys are not registered with the core cannot be written to. Its
    residents' changes must not stop delivery to the others; when it joins, its initial load
    (`mynumber agencies load-copies`) writes the current state of everyone it holds."""
    copies = next(s.handle for s in container.events.subscribers if s.name == SUBSCRIBER)
    assert isinstance(copies, MunicipalCopies)
    copies.agencies = AgenciesServiceImpl(container.databases, container.network,
                                          container.registry, FileKeyring(tmp_path / "none"))
    container.agencies.ensure_registered(CITY)  # 新宿区 has joined; 渋谷区 has not
    shinjuku = container.registry.register_move_in(clerk, new_resident(), dt.date.today())
    shibuya = container.registry.register_move_in(
        shibuya_clerk, new_resident(given_name="次郎", given_name_kana="ジロウ",
                                    municipality_code=SHIBUYA,
                                    address="東京都渋谷区宇田川町1番1号", postal_code="1508010"),
        dt.date.today())
    _deliver(container)  # nobody fails
    assert container.agencies.copy(CITY, f"J{shinjuku.id:012d}", "resident_record")
    with pytest.raises(DomainError):
        container.agencies.copy(SHIBUYA_MAYOR, f"J{shibuya.id:012d}", "resident_record")
    assert copies.waiting == {SHIBUYA_MAYOR: 1}

    container.registry.change_address(shibuya_clerk, shibuya.id, "東京都渋谷区神南一丁目1番1号",
                                      "1500041", dt.date.today())
    _deliver(container)
    container.agencies.ensure_registered(SHIBUYA_MAYOR)  # `network register-keys`
    result = CliRunner().invoke(app, ["agencies", "load-copies", SHIBUYA_MAYOR],
                                env=cli_env(container.settings))
    assert result.exit_code == 0, result.output
    assert "1" in result.output
    copy = container.agencies.copy(SHIBUYA_MAYOR, f"J{shibuya.id:012d}", "resident_record")
    assert copy.payload["address"] == "東京都渋谷区神南一丁目1番1号"


def test_after_a_key_rotation_load_copies_reseals_the_records_to_the_new_key(
        container: Container, clerk: StaffPrincipal, tmp_path: Path) -> None:
    """docs/deployment.md, rotation: the city's new keys are registered; its records, sealed
    to the old key, are re-sealed to the new one by the initial load."""
    copies = next(s.handle for s in container.events.subscribers if s.name == SUBSCRIBER)
    assert isinstance(copies, MunicipalCopies)
    core_side = AgenciesServiceImpl(container.databases, container.network, container.registry,
                                    FileKeyring(tmp_path / "core"))  # no private key here
    copies.agencies = core_side
    container.agencies.ensure_registered(CITY)
    person = container.registry.register_move_in(clerk, new_resident(), dt.date.today())
    _deliver(container)
    number = f"J{person.id:012d}"
    # The city rotates: new keys on its server, the public half registered at the core.
    provision_agency_keys(tmp_path / "city", CITY)
    new_server = FileKeyring(tmp_path / "city")
    fresh = new_server.keys(CITY)
    container.network.register_agency_keys(CITY, fresh.signing_public, fresh.encryption_public)
    reader = AgenciesServiceImpl(container.databases, container.network, container.registry,
                                 new_server)
    with pytest.raises(DomainError):  # sealed to the old key
        reader.copy(CITY, number, "resident_record")
    assert copies.load(CITY) >= 1
    assert reader.copy(CITY, number, "resident_record").payload["name"] == person.name


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

"""Issue 12 item 6: each agency's 副本 is encrypted under that agency's own key. Database access
to the intermediate-server context does not let one agency read another's copies; a row moved
to another agency, person or item does not decrypt; plaintext rows from before the migration
are never provided and `mynumber agencies encrypt-copies` encrypts them; the exchange still
answers. Real keys, real registry, the fake core of tests/agencies/conftest.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from alembic import command
from cryptography.hazmat.primitives.asymmetric import x25519
from sqlalchemy import func, select, text, update
from typer.testing import CliRunner

from mynumber import envelope, migrations
from mynumber.agencies import models as m
from mynumber.agencies.copy_encryption import CopyDecryptionError, unwrap_data_key
from mynumber.agencies.interfaces import (
    AgencyKeysNotRegistered,
    AgencyNotServed,
    CopyInput,
    CopyNotEncrypted,
    CopyUnreadable,
)
from mynumber.agencies.keyring import FileKeyring
from mynumber.agencies.services import AgenciesServiceImpl, IntermediateServerImpl
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.cli import app as cli
from mynumber.network.interfaces import Outcome, RoutedQuery
from mynumber.settings import Settings
from tests.agencies.conftest import CITY, ITEM, PENSION, TASK, Setup, register_resident

PAYLOAD = {"income": 3_000_000, "name": "山田太郎", "note": "secret-marker-7731"}


def _routed(setup: Setup, subject_code: str, recipient: x25519.X25519PrivateKey, *,
            provider: str = CITY, item: str = ITEM, serial: str = "S000000000042"
            ) -> RoutedQuery:
    query = RoutedQuery(serial=serial, requester_id=PENSION, task_id=TASK, provider_id=provider,
                        item_code=item, subject_code=subject_code,
                        requester_encryption_key=envelope.raw_public(recipient.public_key()),
                        routed_at=dt.datetime.now(dt.UTC))
    return dataclasses.replace(query,
                               signature=setup.network.core_key.sign(query.signed_bytes()))


def _answer(setup: Setup, code: str, *, provider: str = CITY, item: str = ITEM,
            server: IntermediateServerImpl | None = None) -> dict[str, object]:
    recipient = x25519.X25519PrivateKey.generate()
    answer = (server or setup.server).answer(_routed(setup, code, recipient, provider=provider,
                                                     item=item))
    assert answer.held and answer.sealed is not None
    body = envelope.open_sealed(answer.sealed, recipient,
                                setup.keyring.keys(provider).signing_public,
                                envelope.info_for(answer.serial))
    return body


def _row(setup: Setup, agency_id: str, code: str, item: str = ITEM) -> m.Copy:
    with setup.container.databases.unit_of_work("agencies") as session:
        row = session.scalars(select(m.Copy).where(
            m.Copy.agency_id == agency_id, m.Copy.agency_code == code,
            m.Copy.item_code == item)).one()
        session.expunge(row)
        return row


@pytest.fixture
def two_people(setup: Setup, clerk: StaffPrincipal) -> tuple[str, str, str]:
    """Two residents enrolled with the city (A0001, A0002) and the first with the pension
    service (P-1); the city holds a 副本 of each. Returns the codes (city A, city B, pension A)."""
    _, first = register_resident(setup, clerk)
    _, second = register_resident(setup, clerk)
    city_a = setup.agencies.enrol_person(CITY, "A0001", first)
    city_b = setup.agencies.enrol_person(CITY, "A0002", second)
    pension_a = setup.agencies.enrol_person(PENSION, "P-1", first)
    setup.agencies.put_copy(CITY, "A0001", ITEM, PAYLOAD)
    setup.agencies.put_copy(CITY, "A0002", ITEM, {"income": 1_000, "name": "佐藤花子"})
    return city_a, city_b, pension_a


def test_a_stored_copy_holds_no_plaintext(setup: Setup, two_people: tuple[str, str, str]
                                          ) -> None:
    city_a, _, _ = two_people
    row = _row(setup, CITY, city_a)
    assert row.payload is None and row.sealed is not None and row.key_id is not None
    for needle in ("secret-marker-7731", "山田太郎", "3000000"):
        assert needle.encode() not in row.sealed
    with setup.container.databases.engine("agencies").connect() as conn:
        dumped = " ".join(str(v) for r in conn.execute(text("SELECT * FROM copies"))
                          for v in r)
        keys = " ".join(str(v) for r in conn.execute(text("SELECT * FROM copy_keys"))
                        for v in r)
    assert "secret-marker" not in dumped and "山田" not in dumped
    assert "secret-marker" not in keys
    # The agency itself reads it, and the exchange answers with it.
    assert setup.agencies.copy(CITY, "A0001", ITEM).payload == PAYLOAD
    assert _answer(setup, city_a)["data"] == PAYLOAD


def test_another_agencys_key_cannot_open_a_copy(setup: Setup,
                                                two_people: tuple[str, str, str]) -> None:
    city_a, _, _ = two_people
    row = _row(setup, CITY, city_a)
    with setup.container.databases.unit_of_work("agencies") as session:
        wrapped = session.scalars(select(m.CopyKey.wrapped).where(
            m.CopyKey.id == row.key_id)).one()
    # The city's private key opens its data key; the pension service's does not, neither
    # under the city's name nor under its own.
    assert unwrap_data_key(CITY, wrapped, setup.keyring.keys(CITY).encryption)
    other = setup.keyring.keys(PENSION).encryption
    for agency in (CITY, PENSION):
        with pytest.raises(CopyDecryptionError):
            unwrap_data_key(agency, wrapped, other)


def test_a_row_moved_to_another_agency_does_not_decrypt(
        setup: Setup, two_people: tuple[str, str, str]) -> None:
    city_a, _, pension_a = two_people
    # Someone with database access relabels the city's copy as the pension service's, for
    # the same person under the pension service's code, and its data key too.
    row = _row(setup, CITY, city_a)
    with setup.container.databases.unit_of_work("agencies") as session:
        session.execute(update(m.Copy).where(m.Copy.id == row.id)
                        .values(agency_id=PENSION, agency_code=pension_a))
    with pytest.raises(CopyUnreadable):
        _answer(setup, pension_a, provider=PENSION)
    with setup.container.databases.unit_of_work("agencies") as session:
        session.execute(update(m.CopyKey).where(m.CopyKey.id == row.key_id)
                        .values(agency_id=PENSION))
    fresh = IntermediateServerImpl(setup.container.databases, setup.keyring,
                                   setup.network.core_public_key())
    with pytest.raises(CopyUnreadable):
        _answer(setup, pension_a, provider=PENSION, server=fresh)
    assert fresh.answer(_routed(setup, city_a, x25519.X25519PrivateKey.generate())).held \
        is False  # the city no longer holds it


def test_a_row_moved_to_another_person_or_item_does_not_decrypt(
        setup: Setup, two_people: tuple[str, str, str]) -> None:
    city_a, city_b, _ = two_people
    a, b = _row(setup, CITY, city_a), _row(setup, CITY, city_b)
    with setup.container.databases.unit_of_work("agencies") as session:
        # Person B's row gets person A's ciphertext (same agency, same data key).
        session.execute(update(m.Copy).where(m.Copy.id == b.id)
                        .values(sealed=a.sealed, key_id=a.key_id))
        # And person A's copy is relabelled as another item.
        session.execute(update(m.Copy).where(m.Copy.id == a.id).values(item_code="pension"))
    with pytest.raises(CopyUnreadable):
        _answer(setup, city_b)
    with pytest.raises(CopyUnreadable):
        _answer(setup, city_a, item="pension")
    with pytest.raises(CopyUnreadable):
        setup.agencies.copy(CITY, "A0002", ITEM)
    # Nothing was recorded as answered for the refused rows.
    with setup.container.databases.unit_of_work("agencies") as session:
        assert session.scalar(select(func.count()).select_from(m.AnsweredQuery)) == 0


def test_the_exchange_still_answers_through_the_core(
        setup: Setup, two_people: tuple[str, str, str]) -> None:
    setup.network.permitted.add((PENSION, TASK, CITY, ITEM))
    result = setup.agencies.query(PENSION, "P-1", TASK, CITY, ITEM)
    assert result.outcome is Outcome.PROVIDED and result.data == PAYLOAD
    setup.agencies.put_copy(CITY, "A0001", ITEM, {"income": 1})
    again = setup.agencies.query(PENSION, "P-1", TASK, CITY, ITEM)
    assert again.data == {"income": 1} and again.version == 2


def test_a_writer_needs_only_the_agencys_public_key(
        setup: Setup, two_people: tuple[str, str, str], tmp_path: Path) -> None:
    """The core's operator commands (and event handlers) hold no agency's private key: they
    encrypt to the directory's registered public key; only the agency's server reads."""
    city_a, _, _ = two_people
    no_keys = FileKeyring(tmp_path / "agencies")  # holds no agency's keys
    writer = AgenciesServiceImpl(setup.container.databases, setup.network, setup.registry,
                                 no_keys)
    record = writer.put_copy(CITY, "A0001", ITEM, {"income": 7})
    assert record.version == 2 and record.payload == {"income": 7}
    assert writer.put_copies(CITY, [CopyInput("A0002", ITEM, {"income": 8})]) == 1
    # Another process without the city's keys cannot read what was written.
    stranger = AgenciesServiceImpl(setup.container.databases, setup.network, setup.registry,
                                   no_keys)
    with pytest.raises(AgencyNotServed, match="does not hold the keys"):
        stranger.copy(CITY, "A0001", ITEM)
    assert _answer(setup, city_a)["data"] == {"income": 7}
    assert setup.agencies.copy(CITY, "A0002", ITEM).payload == {"income": 8}
    # An agency with no registered key and none held here: refused, nothing written.
    unregistered = dataclasses.replace(setup.network.agency("mhlw"), encryption_key=None)
    setup.network._records["mhlw"] = unregistered
    with pytest.raises(AgencyKeysNotRegistered, match="register-keys"):
        writer.put_copy("mhlw", "A0001", ITEM, {"income": 9})


def test_concurrent_first_writes_of_one_agency_all_decrypt(
        setup: Setup, clerk: StaffPrincipal) -> None:
    addresses = [f"T{i:03d}" for i in range(8)]
    codes = {}
    for address in addresses:
        _, number = register_resident(setup, clerk)
        codes[address] = setup.agencies.enrol_person(CITY, address, number)
    # A new process (fresh caches) whose threads all need the city's data key at once.
    writer = AgenciesServiceImpl(setup.container.databases, setup.network, setup.registry,
                                 setup.keyring)
    barrier = threading.Barrier(len(addresses))
    errors: list[BaseException] = []

    def put(address: str) -> None:
        try:
            barrier.wait()
            writer.put_copy(CITY, address, ITEM, {"address": address})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(a,)) for a in addresses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reader = IntermediateServerImpl(setup.container.databases, setup.keyring,
                                    setup.network.core_public_key())
    for address in addresses:
        assert _answer(setup, codes[address], server=reader)["data"] == {"address": address}


# --- plaintext rows from before the migration ------------------------------------------------


def _insert_plaintext(setup: Setup, code: str, payload: dict[str, object],
                      item: str = ITEM) -> None:
    with setup.container.databases.engine("agencies").begin() as conn:
        conn.execute(text(
            "INSERT INTO copies (agency_id, agency_code, item_code, payload, version, "
            "updated_at) VALUES (:a, :c, :i, :p, 3, :t)"),
            {"a": CITY, "c": code, "i": item, "p": json.dumps(payload),
             "t": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})


def test_plaintext_rows_after_the_migration_are_encrypted_by_the_step(
        setup: Setup, two_people: tuple[str, str, str]) -> None:
    city_a, city_b, _ = two_people
    databases = setup.container.databases
    # Back to the schema before encryption (its downgrade drops encrypted rows), a plaintext
    # row as issue 11 wrote it, and forward again: the row survives the upgrade.
    with databases.engine("agencies").begin() as conn:
        command.downgrade(migrations.alembic_config(databases, "agencies", conn), "0001")
    _insert_plaintext(setup, city_a, PAYLOAD)
    with databases.engine("agencies").begin() as conn:
        command.upgrade(migrations.alembic_config(databases, "agencies", conn), "head")
    assert migrations.differences(databases, "agencies") == []
    # New processes after the upgrade (the data keys of the old ones went with the downgrade).
    setup.agencies = AgenciesServiceImpl(databases, setup.network, setup.registry,
                                         setup.keyring)
    setup.server = IntermediateServerImpl(databases, setup.keyring,
                                          setup.network.core_public_key())
    assert setup.agencies.plaintext_copies() == {CITY: 1}
    # Never provided in plaintext; the agency's own read still sees it.
    with pytest.raises(CopyNotEncrypted, match="encrypt-copies"):
        _answer(setup, city_a)
    assert setup.agencies.copy(CITY, "A0001", ITEM).payload == PAYLOAD
    # A plaintext payload written beside an encrypted copy (around put_copy).
    setup.agencies.put_copy(CITY, "A0002", ITEM, {"income": 5})
    with databases.unit_of_work("agencies") as session:
        session.execute(update(m.Copy).where(m.Copy.agency_code == city_b)
                        .values(payload={"forged": True}))
    with pytest.raises(CopyNotEncrypted):
        _answer(setup, city_b)

    report = setup.agencies.encrypt_plaintext_copies()
    assert report.encrypted == {CITY: 1} and report.discarded == 1 and report.skipped == {}
    assert setup.agencies.plaintext_copies() == {}
    body = _answer(setup, city_a)
    assert body["data"] == PAYLOAD and body["version"] == 3  # version kept
    assert _answer(setup, city_b)["data"] == {"income": 5}  # the encrypted copy stood
    again = setup.agencies.encrypt_plaintext_copies()
    assert again.encrypted == {} and again.discarded == 0


def test_encrypt_copies_command(settings: Settings, setup: Setup,
                                two_people: tuple[str, str, str]) -> None:
    city_a, _, _ = two_people
    with setup.container.databases.engine("agencies").begin() as conn:
        conn.execute(text("DELETE FROM copies"))
    _insert_plaintext(setup, city_a, PAYLOAD)
    runner = CliRunner()
    env = {"MYNUMBER_DATA_DIR": str(settings.data_dir),
           "MYNUMBER_KEY_DIR": str(settings.keys_path)}
    if settings.database_url:
        env["MYNUMBER_DATABASE_URL"] = settings.database_url
    # The CLI's own container registers the city's keys with the real directory first.
    setup.container.agencies.ensure_registered(CITY)
    checked = runner.invoke(cli, ["agencies", "encrypt-copies", "--check"], env=env)
    assert checked.exit_code == 1 and f"{CITY}: 1" in " ".join(checked.output.split())
    done = runner.invoke(cli, ["agencies", "encrypt-copies"], env=env)
    assert done.exit_code == 0, done.output
    assert f"{CITY}: 1 copies encrypted" in done.output
    assert "secret-marker" not in done.output
    assert runner.invoke(cli, ["agencies", "encrypt-copies", "--check"],
                         env=env).exit_code == 0
    assert setup.agencies.copy(CITY, "A0001", ITEM).payload == PAYLOAD
    assert _answer(setup, city_a)["data"] == PAYLOAD

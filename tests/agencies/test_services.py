"""The intermediate servers on the real registry, real keys and real envelopes, behind a fake
network core (tests/agencies/conftest.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from sqlalchemy import func, inspect, select, text, update

from mynumber import envelope
from mynumber.agencies import models as m
from mynumber.agencies.interfaces import (
    AgencyNotServed,
    AnswerRejected,
    CopyInput,
    IndividualNumberInAnswer,
    IndividualNumberInCopy,
    InvalidAgencyInput,
    PersonAlreadyEnrolled,
    PersonNotEnrolled,
    RoutedQueryRejected,
)
from mynumber.agencies.keyring import (
    AgencyKeyError,
    DerivedKeyring,
    FileKeyring,
    build_keyring,
    provision_agency_keys,
)
from mynumber.agencies.services import IntermediateServerImpl
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.errors import DomainError
from mynumber.keys import FileKeyProvider
from mynumber.network.interfaces import Outcome, RefusalReason, RoutedQuery, SealedAnswer
from mynumber.registry import seed as seeding
from tests.agencies.conftest import CITY, ITEM, PENSION, TASK, Setup, register_resident

# --- keyring ------------------------------------------------------------------------------


def test_derived_keys_are_deterministic_and_separate() -> None:
    master = bytes(range(32))
    one, again = DerivedKeyring(master), DerivedKeyring(master)
    a, b = one.keys("mhlw"), one.keys("jpo")
    assert a.signing_public == again.keys("mhlw").signing_public
    assert a.encryption_public == again.keys("mhlw").encryption_public
    assert len({a.signing_public, b.signing_public, a.encryption_public,
                b.encryption_public}) == 4
    other_master = DerivedKeyring(bytes(32)).keys("mhlw")
    assert other_master.signing_public != a.signing_public
    # The private keys belong to the public ones.
    signature = a.signing.sign(b"x")
    ed25519.Ed25519PublicKey.from_public_bytes(a.signing_public).verify(signature, b"x")
    assert envelope.raw_public(a.encryption.public_key()) == a.encryption_public
    with pytest.raises(AgencyKeyError):
        one.keys("../etc/passwd")


def test_production_refuses_derived_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    production = FileKeyProvider(tmp_path / "keys", create_missing=False, development=False)
    with pytest.raises(AgencyKeyError, match="development only"):
        DerivedKeyring.from_provider(production, development=False)
    keyring = build_keyring(production, development=False, key_dir=tmp_path / "keys")
    assert isinstance(keyring, FileKeyring)
    with pytest.raises(AgencyKeyError, match="no keys provisioned"):
        keyring.keys("mhlw")
    file = provision_agency_keys(tmp_path / "keys" / "agencies", "mhlw")
    assert file.stat().st_mode & 0o777 == 0o600
    keys = keyring.keys("mhlw")
    assert len(keys.signing_public) == 32
    # A development-marked file, a file for another agency, a world-readable file: refused.
    data = json.loads(file.read_text())
    for name, change in (("dev", {"development": True}), ("other", {"agency_id": "mhlw"})):
        path = tmp_path / "keys" / "agencies" / f"{name}.json"
        path.write_text(json.dumps({**data, "agency_id": name, **change}))
        path.chmod(0o600)
        with pytest.raises(AgencyKeyError):
            FileKeyring(tmp_path / "keys" / "agencies").keys(name)
    file.chmod(0o644)
    with pytest.raises(AgencyKeyError, match="0600"):
        FileKeyring(tmp_path / "keys" / "agencies").keys("mhlw")


def test_ensure_registered_only_when_keys_differ(setup: Setup) -> None:
    before = setup.network.key_registrations
    record = setup.agencies.ensure_registered(CITY)
    assert setup.network.key_registrations == before
    keys = setup.keyring.keys(CITY)
    assert (record.signing_key, record.encryption_key) == (keys.signing_public,
                                                           keys.encryption_public)
    setup.network.register_agency_keys(CITY, bytes(32), bytes(32))  # stale keys at the core
    setup.agencies.ensure_registered(CITY)
    assert setup.network.agency(CITY).signing_key == keys.signing_public


# --- persons ------------------------------------------------------------------------------


def _all_text(container: Container) -> str:
    """Every value of every table of the agencies database, as text."""
    engine = container.databases.engine("agencies")
    chunks = []
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                chunks.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(chunks)


def test_enrol_never_stores_the_number(setup: Setup, clerk: StaffPrincipal,
                                       caplog: pytest.LogCaptureFixture) -> None:
    resident, number = register_resident(setup, clerk)
    code = setup.agencies.enrol_person(CITY, "A0001", number)
    assert len(code) == 26
    assert setup.agencies.agency_code(CITY, "A0001") == code
    dump = _all_text(setup.container)
    assert code in dump and "A0001" in dump
    assert number not in dump
    assert resident.resident_code not in dump
    assert number not in caplog.text
    # The same person at another agency has an unrelated code.
    other = setup.agencies.enrol_person(PENSION, "P-77", number)
    assert other != code


def test_enrol_is_idempotent(setup: Setup, clerk: StaffPrincipal) -> None:
    _, number = register_resident(setup, clerk)
    code = setup.agencies.enrol_person(CITY, "A0001", number)
    assert setup.agencies.enrol_person(CITY, "A0001", number) == code
    with setup.container.databases.unit_of_work("agencies") as session:
        assert session.scalar(select(func.count()).select_from(m.Person)) == 1
        tags = list(session.scalars(select(m.AuditEvent.tag)))
    assert tags.count("agencies:person:enrol") == 1
    # The same person under a second address number of the same agency is a conflict.
    with pytest.raises(PersonAlreadyEnrolled):
        setup.agencies.enrol_person(CITY, "A0002", number)


def test_enrol_errors_do_not_echo_the_number(setup: Setup, clerk: StaffPrincipal) -> None:
    _, number = register_resident(setup, clerk)
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)  # bad check digit
    with pytest.raises(DomainError) as caught:
        setup.agencies.enrol_person(CITY, "A0001", wrong)
    assert wrong not in str(caught.value)
    with pytest.raises(InvalidAgencyInput):
        setup.agencies.enrol_person(CITY, "bad number!", number)
    with pytest.raises(PersonNotEnrolled):
        setup.agencies.agency_code(CITY, "A0001")


def test_enrol_known_residents_in_bulk(setup: Setup) -> None:
    seeding.run_seed(setup.container, 300, seed=3, as_of=dt.date(2025, 10, 1))
    residents = seeding.current_residents(setup.container.databases)
    wanted = {r.id: f"C{r.id:08d}" for r in residents}
    started = time.perf_counter()
    codes = setup.agencies.enrol_known_residents(CITY, wanted)
    elapsed = time.perf_counter() - started
    assert set(codes) == set(wanted.values())
    assert len(set(codes.values())) == len(codes)
    assert elapsed < 10
    # Again: nothing new, same codes.
    assert setup.agencies.enrol_known_residents(CITY, wanted) == codes
    # Consistent with a one-by-one enrolment of the same person.
    first = residents[0]
    number = setup.container.registry.numbering.individual_number(first.resident_code)
    assert setup.agencies.enrol_person(CITY, wanted[first.id], number) == codes[wanted[first.id]]


# --- 副本 ---------------------------------------------------------------------------------


def test_put_copy_versions(setup: Setup, clerk: StaffPrincipal) -> None:
    _, number = register_resident(setup, clerk)
    setup.agencies.enrol_person(CITY, "A0001", number)
    first = setup.agencies.put_copy(CITY, "A0001", ITEM, {"income": 3_000_000})
    second = setup.agencies.put_copy(CITY, "A0001", ITEM, {"income": 3_100_000})
    other = setup.agencies.put_copy(CITY, "A0001", "resident_tax", {"amount": 100})
    assert (first.version, second.version, other.version) == (1, 2, 1)
    stored = setup.agencies.copy(CITY, "A0001", ITEM)
    assert stored.payload == {"income": 3_100_000} and stored.version == 2
    with pytest.raises(PersonNotEnrolled):
        setup.agencies.put_copy(CITY, "A9999", ITEM, {"income": 1})
    with pytest.raises(InvalidAgencyInput):
        setup.agencies.put_copy(CITY, "A0001", ITEM, {"x": float("nan")})
    with pytest.raises(InvalidAgencyInput):
        setup.agencies.put_copy(CITY, "A0001", ITEM, {"x": "y" * 70_000})


def test_put_copies_bulk(setup: Setup) -> None:
    seeding.run_seed(setup.container, 50, seed=5, as_of=dt.date(2025, 10, 1))
    residents = seeding.current_residents(setup.container.databases)
    wanted = {r.id: f"C{r.id}" for r in residents}
    setup.agencies.enrol_known_residents(CITY, wanted)
    copies = [CopyInput(n, ITEM, {"income": i}) for i, n in enumerate(wanted.values())]
    assert setup.agencies.put_copies(CITY, copies) == len(copies)
    assert setup.agencies.put_copies(CITY, copies[:10]) == 10
    assert setup.agencies.copy(CITY, copies[0].address_number, ITEM).version == 2
    assert setup.agencies.copy(CITY, copies[20].address_number, ITEM).version == 1
    with pytest.raises(PersonNotEnrolled):
        setup.agencies.put_copies(CITY, [CopyInput("nobody", ITEM, {})])


# --- the provider's intermediate server -----------------------------------------------------


def _routed(setup: Setup, subject_code: str, recipient: x25519.X25519PrivateKey, *,
            provider: str = CITY, key: ed25519.Ed25519PrivateKey | None = None,
            serial: str = "S000000000042") -> RoutedQuery:
    query = RoutedQuery(serial=serial, requester_id=PENSION, task_id=TASK, provider_id=provider,
                        item_code=ITEM, subject_code=subject_code,
                        requester_encryption_key=envelope.raw_public(recipient.public_key()),
                        routed_at=dt.datetime.now(dt.UTC))
    signer = key or setup.network.core_key
    return dataclasses.replace(query, signature=signer.sign(query.signed_bytes()))


def _answered(setup: Setup) -> list[tuple[str, bool]]:
    with setup.container.databases.unit_of_work("agencies") as session:
        return list(session.execute(
            select(m.AnsweredQuery.serial, m.AnsweredQuery.held).order_by(m.AnsweredQuery.id)
        ))


@pytest.fixture
def held_code(setup: Setup, clerk: StaffPrincipal) -> str:
    _, number = register_resident(setup, clerk)
    code = setup.agencies.enrol_person(CITY, "A0001", number)
    setup.agencies.put_copy(CITY, "A0001", ITEM, {"income": 3_000_000, "name": "山田"})
    return code


def test_answer_held_is_sealed_for_the_requester(setup: Setup, held_code: str) -> None:
    recipient = x25519.X25519PrivateKey.generate()
    answer = setup.server.answer(_routed(setup, held_code, recipient))
    assert answer.held and answer.sealed is not None and answer.serial == "S000000000042"
    provider_key = setup.keyring.keys(CITY).signing_public
    body = envelope.open_sealed(answer.sealed, recipient, provider_key,
                                envelope.info_for("S000000000042"))
    assert body["data"] == {"income": 3_000_000, "name": "山田"}
    assert body["serial"] == "S000000000042" and body["provider"] == CITY
    assert body["item"] == ITEM and body["version"] == 1
    assert dt.datetime.fromisoformat(body["as_of"]).tzinfo is not None
    # Only the requester can open it, only for this serial, only with the provider's key.
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_sealed(answer.sealed, x25519.X25519PrivateKey.generate(), provider_key,
                             envelope.info_for("S000000000042"))
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_sealed(answer.sealed, recipient, provider_key, envelope.info_for("S1"))
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_sealed(answer.sealed, recipient, setup.keyring.keys(PENSION).signing_public,
                             envelope.info_for("S000000000042"))
    assert _answered(setup) == [("S000000000042", True)]


def test_answer_not_held(setup: Setup, held_code: str) -> None:
    recipient = x25519.X25519PrivateKey.generate()
    answer = setup.server.answer(_routed(setup, "UNKNOWNCODE", recipient))
    assert (answer.held, answer.sealed) == (False, None)
    # Another agency's code for the same person is not this agency's copy either.
    answer = setup.server.answer(_routed(setup, held_code, recipient, provider=PENSION,
                                         serial="S2"))
    assert not answer.held
    assert _answered(setup) == [("S000000000042", False), ("S2", False)]


def test_answer_refuses_a_bad_core_signature(setup: Setup, held_code: str) -> None:
    recipient = x25519.X25519PrivateKey.generate()
    forged = _routed(setup, held_code, recipient, key=ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(RoutedQueryRejected) as caught:
        setup.server.answer(forged)
    assert caught.value.status == 403
    genuine = _routed(setup, held_code, recipient)
    tampered = dataclasses.replace(genuine, item_code="pension")
    with pytest.raises(RoutedQueryRejected):
        setup.server.answer(tampered)
    old = dataclasses.replace(genuine, routed_at=genuine.routed_at - dt.timedelta(hours=1))
    with pytest.raises(RoutedQueryRejected):
        setup.server.answer(dataclasses.replace(
            old, signature=setup.network.core_key.sign(old.signed_bytes())))
    assert _answered(setup) == []


def test_answer_refuses_a_provider_not_served(setup: Setup, held_code: str) -> None:
    only_pension = IntermediateServerImpl(setup.container.databases, setup.keyring,
                                          setup.network.core_public_key(), agencies=[PENSION])
    recipient = x25519.X25519PrivateKey.generate()
    with pytest.raises(AgencyNotServed):
        only_pension.answer(_routed(setup, held_code, recipient))
    assert _answered(setup) == []
    assert only_pension.answer(_routed(setup, held_code, recipient, provider=PENSION)).held \
        is False


# --- 情報照会 end to end through the fake core -----------------------------------------------


def test_query_end_to_end(setup: Setup, clerk: StaffPrincipal) -> None:
    _, number = register_resident(setup, clerk)
    setup.agencies.enrol_person(CITY, "A0001", number)
    setup.agencies.enrol_person(PENSION, "P-1", number)
    setup.agencies.put_copy(CITY, "A0001", ITEM, {"income": 3_000_000})
    setup.network.permitted.add((PENSION, TASK, CITY, ITEM))

    result = setup.agencies.query(PENSION, "P-1", TASK, CITY, ITEM)
    assert result.outcome is Outcome.PROVIDED and result.reason is None
    assert result.data == {"income": 3_000_000} and result.version == 1
    assert result.as_of is not None
    sent = setup.network.exchanges[-1]
    assert sent.subject_code == setup.agencies.agency_code(PENSION, "P-1")
    assert sent.requester_id == PENSION and len(sent.nonce) >= 16
    # The routed query carried the provider's own code, not the requester's.
    assert setup.network.routed[-1].subject_code == setup.agencies.agency_code(CITY, "A0001")

    not_held = setup.agencies.query(PENSION, "P-1", TASK, CITY, "pension")
    assert not_held.outcome is Outcome.REFUSED
    assert not_held.reason is RefusalReason.NOT_IN_LEGAL_TABLE and not_held.data is None
    setup.network.permitted.add((PENSION, TASK, CITY, "pension"))
    not_held = setup.agencies.query(PENSION, "P-1", TASK, CITY, "pension")
    assert not_held.outcome is Outcome.NOT_HELD and not_held.data is None

    with setup.container.databases.unit_of_work("agencies") as session:
        rows = list(session.execute(select(
            m.SentQuery.serial, m.SentQuery.agency_id, m.SentQuery.outcome, m.SentQuery.reason,
            m.SentQuery.address_number).order_by(m.SentQuery.id)))
    assert rows == [
        (result.serial, PENSION, "provided", None, "P-1"),
        (rows[1][0], PENSION, "refused", "not_in_legal_table", "P-1"),
        (not_held.serial, PENSION, "not_held", None, "P-1"),
    ]


def test_query_unknown_person(setup: Setup) -> None:
    with pytest.raises(PersonNotEnrolled) as caught:
        setup.agencies.query(PENSION, "P-404", TASK, CITY, ITEM)
    assert caught.value.status == 404
    assert setup.network.exchanges == []


def test_query_rejects_an_answer_from_the_wrong_signer(setup: Setup,
                                                       clerk: StaffPrincipal) -> None:
    _, number = register_resident(setup, clerk)
    setup.agencies.enrol_person(CITY, "A0001", number)
    setup.agencies.enrol_person(PENSION, "P-1", number)
    setup.agencies.put_copy(CITY, "A0001", ITEM, {"income": 1})
    setup.network.permitted.add((PENSION, TASK, CITY, ITEM))
    # The core believes CITY's signing key is some other key: the answer must not be accepted.
    impostor = ed25519.Ed25519PrivateKey.generate()
    record = setup.network.agency(CITY)
    setup.network.register_agency_keys(CITY, envelope.raw_public(impostor.public_key()),
                                       record.encryption_key or b"")
    with pytest.raises(AnswerRejected):
        setup.agencies.query(PENSION, "P-1", TASK, CITY, ITEM)
    with setup.container.databases.unit_of_work("agencies") as session:
        reasons = list(session.scalars(select(m.SentQuery.reason)))
    assert reasons == ["answer_rejected"]


def test_record_declined(setup: Setup) -> None:
    result = setup.agencies.record_declined(CITY, TASK, "APP-1", ["課税証明書"])
    assert result.outcome is Outcome.DECLINED
    assert setup.network.declined == (CITY, TASK, "APP-1", ("課税証明書",))
    with setup.container.databases.unit_of_work("agencies") as session:
        assert session.scalar(select(func.count()).select_from(m.Person)) == 0
        tags = list(session.scalars(select(m.AuditEvent.tag)))
    assert "agencies:application:declined" in tags


# --- no 個人番号 in a 副本 -------------------------------------------------------------------

VALID_NUMBER = "123456789018"  # a synthetic 12-digit value with a valid check digit


def _number_payloads() -> list[dict[str, object]]:
    full_width = VALID_NUMBER.translate({ord("0") + i: 0xFF10 + i for i in range(10)})
    return [
        {"individual_number": VALID_NUMBER},
        {"note": f"番号 {VALID_NUMBER[:4]} {VALID_NUMBER[4:8]} {VALID_NUMBER[8:]} です"},
        {"note": f"{VALID_NUMBER[:4]}-{VALID_NUMBER[4:8]}-{VALID_NUMBER[8:]}"},
        {"note": full_width},  # full-width digits: caught after NFKC
        {"note": f"{full_width[:4]}\u3000{full_width[4:8]}\uff0d{full_width[8:]}"},
        {"household": [{"name": "山田", "ids": [1, {"x": int(VALID_NUMBER)}]}]},
        {VALID_NUMBER: "as a key"},
    ]


def test_put_copy_refuses_a_payload_carrying_an_individual_number(
        setup: Setup, clerk: StaffPrincipal, caplog: pytest.LogCaptureFixture) -> None:
    _, number = register_resident(setup, clerk)
    setup.agencies.enrol_person(CITY, "A0001", number)
    setup.agencies.put_copy(CITY, "A0001", ITEM, {"income": 1})
    for payload in [*_number_payloads(), {"income": number}]:
        with pytest.raises(IndividualNumberInCopy) as caught:
            setup.agencies.put_copy(CITY, "A0001", ITEM, payload)
        assert caught.value.code == "individual_number_in_copy" and caught.value.status == 422
        assert VALID_NUMBER not in str(caught.value) and number not in str(caught.value)
        with pytest.raises(IndividualNumberInCopy):
            setup.agencies.put_copies(CITY, [CopyInput("A0001", ITEM, payload)])
    # Nothing was written: the first copy stands at version 1.
    assert setup.agencies.copy(CITY, "A0001", ITEM).version == 1
    assert VALID_NUMBER not in caplog.text and number not in caplog.text
    # 12 digits without a valid check digit, and longer or shorter runs, are ordinary data.
    for fine in ({"x": "123456789019"}, {"x": 1234567890123}, {"tel": "03-1234-5678"}):
        setup.agencies.put_copy(CITY, "A0001", ITEM, fine)


def test_the_intermediate_server_never_provides_a_copy_carrying_a_number(
        setup: Setup, held_code: str) -> None:
    # A copy written around put_copy (e.g. before the check existed).
    with setup.container.databases.unit_of_work("agencies") as session:
        session.execute(update(m.Copy).where(m.Copy.agency_id == CITY)
                        .values(payload={"income": 1, "note": VALID_NUMBER}))
    recipient = x25519.X25519PrivateKey.generate()
    with pytest.raises(IndividualNumberInCopy):
        setup.server.answer(_routed(setup, held_code, recipient))
    assert _answered(setup) == []


def test_the_requester_withholds_an_answer_carrying_a_number(setup: Setup,
                                                             clerk: StaffPrincipal) -> None:
    """Defence in depth: a provider whose server seals a number anyway is not believed."""
    _, number = register_resident(setup, clerk)
    setup.agencies.enrol_person(CITY, "A0001", number)
    setup.agencies.enrol_person(PENSION, "P-1", number)
    setup.network.permitted.add((PENSION, TASK, CITY, ITEM))
    provider_keys = setup.keyring.keys(CITY)

    class Careless:
        def answer(self, query: RoutedQuery) -> SealedAnswer:
            body = {"serial": query.serial, "provider": CITY, "item": ITEM,
                    "as_of": dt.datetime.now(dt.UTC).isoformat(), "version": 1,
                    "data": {"note": number}}
            return SealedAnswer(query.serial, True, envelope.seal(
                body, provider_keys.signing, query.requester_encryption_key,
                envelope.info_for(query.serial)))

    setup.network.servers[CITY] = Careless()
    with pytest.raises(IndividualNumberInAnswer) as caught:
        setup.agencies.query(PENSION, "P-1", TASK, CITY, ITEM)
    assert number not in str(caught.value) and caught.value.status == 502
    with setup.container.databases.unit_of_work("agencies") as session:
        reasons = list(session.scalars(select(m.SentQuery.reason)))
    assert reasons == ["individual_number_in_answer"]

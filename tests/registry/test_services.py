"""The registry services: life events, numbering, jurisdiction, audited reads, letters,
identity verification and change notifications."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.codes import individual_number, local_government_code, resident_code
from mynumber.registry import models as m
from mynumber.registry.interfaces import (
    SYSTEM,
    AssuranceLevel,
    IdentityDocument,
    InvalidResidentData,
    InvalidTransition,
    LetterStatus,
    LifeEventKind,
    NumberConfirmation,
    OutsideJurisdiction,
    RegistryChange,
    ResidentNotFound,
    ResidentRecord,
    ResidentStatus,
    RoleRequired,
    Sex,
    UnknownMunicipality,
)
from mynumber.registry.services import LETTER_HOLD_DAYS, load_municipality_rows
from tests.conftest import SHIBUYA, SHINJUKU, new_resident

BIRTH = dt.date(2024, 5, 1)


def born(container: Container, actor: StaffPrincipal, **overrides: Any) -> ResidentRecord:
    values: dict[str, Any] = {"birth_date": BIRTH, **overrides}
    return container.registry.register_birth(actor, new_resident(**values), values["birth_date"])


def audit_events(container: Container, tag: str) -> list[Any]:
    with container.databases.unit_of_work("registry") as session:
        return list(session.scalars(
            select(m.AuditEvent).where(m.AuditEvent.tag == tag).order_by(m.AuditEvent.id)
        ).all())


def count(container: Container, model: Any) -> int:
    with container.databases.unit_of_work("registry") as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


ROW_MODELS = (m.Resident, m.Household, m.IssuedNumber, m.NotificationLetter, m.LifeEvent)


def row_counts(container: Container) -> dict[str, int]:
    return {model.__tablename__: count(container, model) for model in ROW_MODELS}


# --- life events ---------------------------------------------------------------------------


def test_birth_creates_record_code_number_letter_history_and_audit(
    container: Container, clerk: StaffPrincipal
) -> None:
    record = born(container, clerk)

    assert record.status is ResidentStatus.RESIDENT
    assert record.municipality_code == SHINJUKU
    assert record.numbered
    assert resident_code.is_valid(record.resident_code)
    number = container.registry.reveal_number(clerk, record.id, "出生届の確認")
    assert individual_number.is_valid(number)
    # 番号法 第8条: the number must not reveal the 住民票コード.
    assert record.resident_code not in number

    letters = container.registry.letters(clerk, record.id)
    assert [(x.status, x.number_generation) for x in letters] == [(LetterStatus.CREATED, 0)]
    history = container.registry.history(clerk, record.id)
    assert [(e.kind, e.occurred_on, e.actor) for e in history] == [
        (LifeEventKind.BIRTH, BIRTH, clerk.actor)
    ]
    births = audit_events(container, "registry:resident:birth")
    assert [(a.actor, a.subject) for a in births] == [(clerk.actor, f"resident:{record.id}")]


def test_birth_must_be_registered_on_the_birth_date(
    container: Container, clerk: StaffPrincipal
) -> None:
    with pytest.raises(InvalidResidentData) as info:
        container.registry.register_birth(clerk, new_resident(birth_date=BIRTH),
                                          BIRTH + dt.timedelta(days=1))
    assert info.value.field == "occurred_on"


def test_two_births_get_different_codes_and_numbers(
    container: Container, clerk: StaffPrincipal
) -> None:
    a, b = born(container, clerk), born(container, clerk)  # same 4 items: twins are two people
    assert a.resident_code != b.resident_code
    assert (container.registry.reveal_number(clerk, a.id, "確認")
            != container.registry.reveal_number(clerk, b.id, "確認"))


def test_move_out_then_move_in_elsewhere_keeps_resident_code_and_number(
    container: Container, clerk: StaffPrincipal, shibuya_clerk: StaffPrincipal
) -> None:
    registry = container.registry
    record = born(container, clerk)
    number = registry.reveal_number(clerk, record.id, "転出前の確認")

    moved = registry.register_move_out(clerk, record.id, SHIBUYA, dt.date(2025, 4, 1))
    assert moved.status is ResidentStatus.MOVED_OUT
    assert moved.destination_municipality_code == SHIBUYA

    arrival = new_resident(birth_date=BIRTH, municipality_code=SHIBUYA,
                           address="東京都渋谷区宇田川町1番1号", postal_code="150-8010")
    arrived = registry.register_move_in(shibuya_clerk, arrival, dt.date(2025, 4, 3),
                                        record.resident_code)

    assert arrived.id == record.id
    assert arrived.resident_code == record.resident_code
    assert arrived.municipality_code == SHIBUYA
    assert arrived.status is ResidentStatus.RESIDENT
    assert arrived.address == "東京都渋谷区宇田川町1番1号"
    assert registry.reveal_number(shibuya_clerk, record.id, "転入後の確認") == number
    kinds = [e.kind for e in registry.history(shibuya_clerk, record.id)]
    assert kinds == [LifeEventKind.BIRTH, LifeEventKind.MOVE_OUT, LifeEventKind.MOVE_IN]
    # The old municipality no longer sees the resident.
    with pytest.raises(OutsideJurisdiction):
        registry.get_resident(clerk, record.id, "確認")


def test_move_in_must_match_the_move_out_certificate(
    container: Container, clerk: StaffPrincipal, shibuya_clerk: StaffPrincipal
) -> None:
    registry = container.registry
    record = born(container, clerk)
    arrival = new_resident(birth_date=BIRTH, municipality_code=SHIBUYA, address="渋谷区1-1")

    # Not moved out yet: the record is still current in 新宿区.
    with pytest.raises(InvalidTransition):
        registry.register_move_in(shibuya_clerk, arrival, dt.date(2025, 4, 3),
                                  record.resident_code)
    registry.register_move_out(clerk, record.id, SHIBUYA, dt.date(2025, 4, 1))
    # Name + birth date + sex must agree with the record of that 住民票コード.
    other_person = new_resident(birth_date=BIRTH, municipality_code=SHIBUYA, address="渋谷区1-1",
                                family_name_kana="スズキ")
    with pytest.raises(InvalidResidentData) as info:
        registry.register_move_in(shibuya_clerk, other_person, dt.date(2025, 4, 3),
                                  record.resident_code)
    assert info.value.field == "resident_code"
    assert registry.get_resident(clerk, record.id, "確認").status is ResidentStatus.MOVED_OUT


def test_first_move_in_without_resident_code_numbers_a_new_resident(
    container: Container, clerk: StaffPrincipal
) -> None:
    arrival = new_resident(family_name="スミス", given_name="ジョン", family_name_kana="スミス",
                           given_name_kana="ジョン", nationality="US",
                           residence_status="技術・人文知識・国際業務")
    record = container.registry.register_move_in(clerk, arrival, dt.date(2025, 1, 10))
    assert record.numbered
    assert record.nationality == "US"
    assert [e.kind for e in container.registry.history(clerk, record.id)] == [
        LifeEventKind.MOVE_IN
    ]


def test_name_change_records_before_and_after(
    container: Container, clerk: StaffPrincipal
) -> None:
    record = born(container, clerk)
    changed = container.registry.change_name(clerk, record.id, "佐藤", "太郎", "さとう", "たろう",
                                             dt.date(2025, 6, 1))
    assert (changed.family_name, changed.family_name_kana) == ("佐藤", "サトウ")
    event = container.registry.history(clerk, record.id)[-1]
    assert event.kind is LifeEventKind.NAME_CHANGE
    assert event.details["before"]["family_name"] == "山田"
    assert event.details["after"]["family_name"] == "佐藤"
    # The new kana is searchable, the old one no longer finds the resident.
    assert [r.id for r in container.registry.search(clerk, "サトウ")] == [record.id]
    assert container.registry.search(clerk, "ヤマダ") == []


def test_address_change(container: Container, clerk: StaffPrincipal) -> None:
    record = born(container, clerk)
    changed = container.registry.change_address(clerk, record.id, "東京都新宿区歌舞伎町1-4-1",
                                                "160-8484", dt.date(2025, 7, 1))
    assert (changed.address, changed.postal_code) == ("東京都新宿区歌舞伎町1-4-1", "1608484")
    with pytest.raises(InvalidResidentData) as info:
        container.registry.change_address(clerk, record.id, "どこか", "12", dt.date(2025, 7, 2))
    assert info.value.field == "postal_code"
    assert container.registry.get_resident(clerk, record.id, "確認").address == changed.address


def test_death_ends_the_record(container: Container, clerk: StaffPrincipal) -> None:
    registry = container.registry
    record = born(container, clerk)
    with pytest.raises(InvalidResidentData) as info:
        registry.register_death(clerk, record.id, BIRTH - dt.timedelta(days=1))
    assert info.value.field == "occurred_on"

    dead = registry.register_death(clerk, record.id, dt.date(2025, 1, 1))
    assert dead.status is ResidentStatus.DECEASED
    with pytest.raises(InvalidTransition):
        registry.change_name(clerk, record.id, "佐藤", "太郎", "サトウ", "タロウ",
                             dt.date(2025, 2, 1))
    with pytest.raises(InvalidTransition):
        registry.register_death(clerk, record.id, dt.date(2025, 1, 2))


def test_correction_needs_a_supervisor(
    container: Container, clerk: StaffPrincipal, supervisor: StaffPrincipal
) -> None:
    registry = container.registry
    record = born(container, clerk)
    with pytest.raises(RoleRequired):
        registry.correct(clerk, record.id, {"given_name": "大郎"}, "入力誤り")
    assert registry.get_resident(clerk, record.id, "確認").given_name == "太郎"

    corrected = registry.correct(supervisor, record.id,
                                 {"given_name": "大郎", "birth_date": "2024-05-02"}, "入力誤り")
    assert corrected.given_name == "大郎"
    assert corrected.birth_date == dt.date(2024, 5, 2)
    event = registry.history(supervisor, record.id)[-1]
    assert event.kind is LifeEventKind.CORRECTION
    assert event.details["reason"] == "入力誤り"
    assert event.details["before"] == {"given_name": "太郎", "birth_date": "2024-05-01"}
    with pytest.raises(InvalidResidentData) as info:
        registry.correct(supervisor, record.id, {"resident_code": "12345678904"}, "変更")
    assert info.value.field == "resident_code"


def test_reissue_gives_a_new_number_and_retires_the_old_one(
    container: Container, clerk: StaffPrincipal, supervisor: StaffPrincipal
) -> None:
    registry = container.registry
    record = born(container, clerk)
    old = registry.reveal_number(clerk, record.id, "確認")
    with pytest.raises(RoleRequired):
        registry.reissue_number(clerk, record.id, "漏えい")

    registry.reissue_number(supervisor, record.id, "漏えいのおそれ")

    new = registry.reveal_number(clerk, record.id, "確認")
    assert new != old and individual_number.is_valid(new)
    with pytest.raises(InvalidTransition) as info:
        registry.find_by_number(clerk, old, "旧番号の照会")
    assert "replaced" in info.value.detail
    assert old not in info.value.detail
    assert registry.find_by_number(clerk, new, "新番号の照会").id == record.id
    # The old number's index stays, so it can never be issued again.
    old_index = container.registry.numbering.index(old)
    with container.databases.unit_of_work("registry") as session:
        issued = session.scalars(
            select(m.IssuedNumber).where(m.IssuedNumber.resident_id == record.id)
            .order_by(m.IssuedNumber.generation)
        ).all()
        assert [(i.generation, i.retired_at is not None) for i in issued] == [(0, True), (1, False)]
        assert issued[0].number_index == old_index
    letters = registry.letters(clerk, record.id)
    assert [x.number_generation for x in letters] == [0, 1]


# --- reads, jurisdiction, search -----------------------------------------------------------


def test_every_read_is_recorded_with_actor_and_reason(
    container: Container, clerk: StaffPrincipal, supervisor: StaffPrincipal
) -> None:
    record = born(container, clerk)
    container.registry.get_resident(clerk, record.id, "証明書交付")
    container.registry.get_resident(supervisor, record.id, "本人確認")

    reads = audit_events(container, "registry:resident:read")
    assert [(a.actor, a.subject, a.reason) for a in reads] == [
        (clerk.actor, f"resident:{record.id}", "証明書交付"),
        (supervisor.actor, f"resident:{record.id}", "本人確認"),
    ]


def test_a_read_without_reason_is_refused_and_not_served(
    container: Container, clerk: StaffPrincipal
) -> None:
    record = born(container, clerk)
    for reason in ("", "   "):
        with pytest.raises(InvalidResidentData) as info:
            container.registry.get_resident(clerk, record.id, reason)
        assert info.value.field == "reason"
    assert audit_events(container, "registry:resident:read") == []


def test_lookup_by_number_is_recorded_without_the_number(
    container: Container, clerk: StaffPrincipal
) -> None:
    record = born(container, clerk)
    number = container.registry.reveal_number(clerk, record.id, "確認")
    assert container.registry.find_by_number(clerk, number, "番号照会").id == record.id
    read = audit_events(container, "registry:resident:read")[-1]
    assert (read.reason, read.details) == ("番号照会", {"by": "individual_number"})
    with container.databases.unit_of_work("registry") as session:
        for event in session.scalars(select(m.AuditEvent)).all():
            assert number not in f"{event.subject} {event.reason} {event.details}"


def test_clerk_of_shibuya_cannot_touch_a_shinjuku_resident(
    container: Container, clerk: StaffPrincipal, shibuya_clerk: StaffPrincipal
) -> None:
    registry = container.registry
    record = born(container, clerk)
    number = registry.reveal_number(clerk, record.id, "確認")
    attempts: list[Callable[[], object]] = [
        lambda: registry.get_resident(shibuya_clerk, record.id, "確認"),
        lambda: registry.history(shibuya_clerk, record.id),
        lambda: registry.reveal_number(shibuya_clerk, record.id, "確認"),
        lambda: registry.letters(shibuya_clerk, record.id),
        lambda: registry.change_address(shibuya_clerk, record.id, "渋谷区", "",
                                        dt.date(2025, 1, 1)),
    ]
    for attempt in attempts:
        with pytest.raises(OutsideJurisdiction):
            attempt()
    # By number, the refusal reads exactly as "not found" (see test_jurisdiction.py).
    with pytest.raises(ResidentNotFound):
        registry.find_by_number(shibuya_clerk, number, "確認")
    assert registry.search(shibuya_clerk, "ヤマダ") == []
    assert registry.search(shibuya_clerk, record.resident_code) == []
    with pytest.raises(OutsideJurisdiction):  # nor register someone into another municipality
        born(container, shibuya_clerk)  # new_resident() lives in 新宿区
    assert registry.get_resident(clerk, record.id, "確認").address == record.address


@pytest.mark.parametrize("query", ["ヤマダ", "やまだ", "ﾔﾏﾀﾞ", "ヤマダタロウ", "山田", "山田太郎"])
def test_search_by_kana_or_kanji_prefix(
    container: Container, clerk: StaffPrincipal, query: str
) -> None:
    record = born(container, clerk)
    born(container, clerk, family_name="佐藤", family_name_kana="サトウ")
    assert [r.id for r in container.registry.search(clerk, query)] == [record.id]


def test_search_by_resident_code(container: Container, clerk: StaffPrincipal) -> None:
    record = born(container, clerk)
    born(container, clerk)
    assert [r.id for r in container.registry.search(clerk, record.resident_code)] == [record.id]


def test_search_never_accepts_an_individual_number(
    container: Container, clerk: StaffPrincipal
) -> None:
    record = born(container, clerk)
    number = container.registry.reveal_number(clerk, record.id, "確認")
    spaced = individual_number.format(number)
    for query in (number, spaced, "123456789018", "1234-5678-9018"):
        with pytest.raises(InvalidResidentData) as info:
            container.registry.search(clerk, query)
        assert info.value.field == "q"
        assert query not in info.value.detail
    assert audit_events(container, "registry:resident:search") == []


# --- invalid input leaves nothing behind ---------------------------------------------------


def _unlisted_municipality_code() -> str:
    listed = {row["code"] for row in load_municipality_rows()}
    code = "13999" + local_government_code.calc_check_digit("13999")
    assert local_government_code.is_valid(code) and code not in listed
    return code


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"birth_date": dt.date.today() + dt.timedelta(days=1)}, InvalidResidentData,
         "birth_date"),
        ({"family_name_kana": "yamada"}, InvalidResidentData, "family_name_kana"),
        ({"given_name_kana": "太郎"}, InvalidResidentData, "given_name_kana"),
        ({"family_name": ""}, InvalidResidentData, "family_name"),
        ({"address": " "}, InvalidResidentData, "address"),
        ({"postal_code": "12345"}, InvalidResidentData, "postal_code"),
        ({"sex": "x"}, InvalidResidentData, "sex"),
        ({"nationality": "USA"}, InvalidResidentData, "nationality"),
        ({"nationality": "US", "residence_status": ""}, InvalidResidentData,
         "residence_status"),
        ({"municipality_code": "131042"}, InvalidResidentData, "municipality_code"),
        ({"municipality_code": "unlisted"}, UnknownMunicipality, "municipality_code"),
        ({"household_id": 999}, InvalidResidentData, "household_id"),
    ],
)
def test_invalid_registration_names_the_field_and_leaves_no_row(
    container: Container, overrides: dict[str, Any], error: type[Exception], field: str
) -> None:
    if overrides.get("municipality_code") == "unlisted":
        overrides = {"municipality_code": _unlisted_municipality_code()}
    before = row_counts(container)
    resident = new_resident(**{"birth_date": BIRTH, **overrides})
    with pytest.raises(error) as info:
        # SYSTEM (the bulk importer's actor) may register anywhere, so only the data is judged.
        container.registry.register_birth(SYSTEM, resident, resident.birth_date)
    assert getattr(info.value, "field", None) == field
    assert row_counts(container) == before


def test_a_failed_change_leaves_the_record_as_it_was(
    container: Container, clerk: StaffPrincipal
) -> None:
    record = born(container, clerk)
    before = row_counts(container)
    with pytest.raises(InvalidResidentData) as info:
        container.registry.change_name(clerk, record.id, "佐藤", "太郎", "sato", "タロウ",
                                       dt.date(2025, 1, 1))
    assert info.value.field == "family_name_kana"
    assert row_counts(container) == before
    assert container.registry.get_resident(clerk, record.id, "確認").family_name == "山田"


def test_unknown_resident(container: Container, clerk: StaffPrincipal) -> None:
    with pytest.raises(ResidentNotFound):
        container.registry.get_resident(clerk, 424242, "確認")


# --- notification letters ------------------------------------------------------------------


def test_letter_goes_created_sent_returned_held_handed_over(
    container: Container, clerk: StaffPrincipal
) -> None:
    registry = container.registry
    record = born(container, clerk)
    other = born(container, clerk, family_name="佐藤", family_name_kana="サトウ")
    number = registry.reveal_number(clerk, record.id, "確認")
    (letter,) = registry.letters(clerk, record.id)

    with pytest.raises(InvalidTransition):
        registry.update_letter(clerk, letter.id, LetterStatus.DELIVERED)  # never sent
    assert registry.update_letter(clerk, letter.id, LetterStatus.SENT).status is LetterStatus.SENT
    registry.update_letter(clerk, letter.id, LetterStatus.RETURNED)
    held = registry.update_letter(clerk, letter.id, LetterStatus.HELD)
    today = dt.datetime.now(dt.UTC).date()
    assert held.hold_until == today + dt.timedelta(days=LETTER_HOLD_DAYS)
    assert LETTER_HOLD_DAYS == 90

    # Handing over needs an identity verification of this resident in which the number matched.
    with pytest.raises(InvalidTransition) as info:
        registry.update_letter(clerk, letter.id, LetterStatus.HANDED_OVER)
    assert info.value.field == "verification_id"
    someone_else = registry.verify_identity(
        clerk, other.id, "通知書交付", registry.reveal_number(clerk, other.id, "確認"),
        NumberConfirmation.NOTIFICATION_LETTER, [IdentityDocument.DRIVERS_LICENSE])
    wrong_number = registry.verify_identity(
        clerk, record.id, "通知書交付", "123456789018", NumberConfirmation.NOTIFICATION_LETTER,
        [IdentityDocument.DRIVERS_LICENSE])
    assert not wrong_number.number_matched
    for check in (someone_else, wrong_number):
        with pytest.raises(InvalidTransition):
            registry.update_letter(clerk, letter.id, LetterStatus.HANDED_OVER, check.id)

    good = registry.verify_identity(clerk, record.id, "通知書交付", number,
                                    NumberConfirmation.NOTIFICATION_LETTER,
                                    [IdentityDocument.DRIVERS_LICENSE])
    done = registry.update_letter(clerk, letter.id, LetterStatus.HANDED_OVER, good.id)
    assert done.status is LetterStatus.HANDED_OVER
    assert [h["status"] for h in done.history] == [
        "created", "sent", "returned", "held", "handed_over"
    ]
    with pytest.raises(InvalidTransition):
        registry.update_letter(clerk, letter.id, LetterStatus.DISCARDED)  # final
    tags = [a.tag for a in audit_events(container, "registry:letter:handed_over")]
    assert tags == ["registry:letter:handed_over"]


# --- identity verification -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("documents", "level"),
    [
        ([IdentityDocument.INDIVIDUAL_NUMBER_CARD], AssuranceLevel.HIGH),
        ([IdentityDocument.DRIVERS_LICENSE], AssuranceLevel.SUBSTANTIAL),
        ([IdentityDocument.PASSPORT, IdentityDocument.HEALTH_INSURANCE_CARD],
         AssuranceLevel.SUBSTANTIAL),
        ([IdentityDocument.HEALTH_INSURANCE_CARD, IdentityDocument.PENSION_BOOK],
         AssuranceLevel.LOW),
    ],
)
def test_identity_verification_assurance_level(
    container: Container, clerk: StaffPrincipal, documents: list[IdentityDocument],
    level: AssuranceLevel,
) -> None:
    record = born(container, clerk)
    number = container.registry.reveal_number(clerk, record.id, "確認")
    check = container.registry.verify_identity(
        clerk, record.id, "通知書交付", number, NumberConfirmation.CARD, documents)
    assert check.assurance_level is level
    assert check.number_matched
    assert [v.id for v in container.registry.verifications(clerk, record.id)] == [check.id]
    (event,) = audit_events(container, "registry:identity:verify")
    assert (event.actor, event.reason, event.details["level"]) == (
        clerk.actor, "通知書交付", level.value)


@pytest.mark.parametrize(
    "documents", [[IdentityDocument.HEALTH_INSURANCE_CARD], [IdentityDocument.OTHER_NON_PHOTO],
                  []],
)
def test_one_document_without_photo_is_not_enough(
    container: Container, clerk: StaffPrincipal, documents: list[IdentityDocument]
) -> None:
    record = born(container, clerk)
    number = container.registry.reveal_number(clerk, record.id, "確認")
    with pytest.raises(InvalidResidentData) as info:
        container.registry.verify_identity(clerk, record.id, "通知書交付", number,
                                           NumberConfirmation.CARD, documents)
    assert info.value.field == "identity_documents"
    assert container.registry.verifications(clerk, record.id) == []


def test_a_malformed_presented_number_is_refused_without_echo(
    container: Container, clerk: StaffPrincipal
) -> None:
    record = born(container, clerk)
    with pytest.raises(InvalidResidentData) as info:
        container.registry.verify_identity(clerk, record.id, "通知書交付", "123456789019",
                                           NumberConfirmation.CARD,
                                           [IdentityDocument.INDIVIDUAL_NUMBER_CARD])
    assert info.value.field == "individual_number"
    assert "123456789019" not in str(info.value)


# --- change notifications ------------------------------------------------------------------


def _published(container: Container) -> list[RegistryChange]:
    outbox = container.registry.outbox
    outbox.sequence()
    return [RegistryChange.of(e.payload) for e in outbox.read(0, 1000)]


def test_a_change_is_published_with_its_transaction_only(
    container: Container, clerk: StaffPrincipal
) -> None:
    record = born(container, clerk)
    assert [c.kind for c in _published(container)] == [LifeEventKind.BIRTH]

    with pytest.raises(InvalidResidentData):
        container.registry.change_name(clerk, record.id, "佐藤", "太郎", "sato", "タロウ",
                                       dt.date(2025, 1, 1))
    assert len(_published(container)) == 1  # the transaction failed: nothing published

    container.registry.change_name(clerk, record.id, "佐藤", "太郎", "サトウ", "タロウ",
                                   dt.date(2025, 1, 1))
    change = _published(container)[-1]
    assert (change.kind, change.resident_id, change.resident_code) == (
        LifeEventKind.NAME_CHANGE, record.id, record.resident_code)
    assert change.basic_four_changed is True
    assert change.municipality_code == record.municipality_code


def test_events_say_whether_the_basic_four_changed(
    container: Container, clerk: StaffPrincipal, supervisor: StaffPrincipal
) -> None:
    record = born(container, clerk)
    container.registry.change_address(clerk, record.id, "新宿区1-1", "", dt.date(2025, 1, 1))
    container.registry.correct(supervisor, record.id, {"relationship": "子"}, "入力誤り")
    container.registry.correct(supervisor, record.id, {"sex": Sex.FEMALE.value}, "入力誤り")
    container.registry.register_move_out(clerk, record.id, None, dt.date(2025, 2, 1))
    assert [(c.kind, c.basic_four_changed) for c in _published(container)] == [
        (LifeEventKind.BIRTH, False),
        (LifeEventKind.ADDRESS_CHANGE, True),
        (LifeEventKind.CORRECTION, False),
        (LifeEventKind.CORRECTION, True),
        (LifeEventKind.MOVE_OUT, False),
    ]
    assert _published(container)[-1].abroad is True


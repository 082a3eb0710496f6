"""Consent per visit, item by item, and the views it allows: without consent, after it expired,
after a refusal, or once the link is blocked nothing is shown and the refusal is recorded."""

from __future__ import annotations

import datetime as dt

import pytest

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.insurance import models as m
from mynumber.insurance.eligibility import CONSENT_WINDOW, EligibilityServiceImpl
from mynumber.insurance.interfaces import (
    CONSENT_TTL,
    AccessAction,
    ClinicalRecord,
    ConsentItem,
    ConsentRequired,
    EligibilityResult,
    InvalidInsuranceInput,
    LinkBlocked,
    LinkState,
    Terminal,
    Validity,
    VisitNotFound,
)
from tests.insurance.support_eligibility import (
    OTHER_CLINIC,
    Holder,
    activate_at,
    add_qualification,
    check_pin,
    issue_holder,
    make_service,
    register,
    rows,
    set_link_state,
)

DRUGS = [
    ClinicalRecord(ConsentItem.DRUGS, dt.date(2025, 5, 1), "アムロジピン錠5mg",
                   "1回1錠 1日1回 朝食後 28日分", "テスト薬局"),
    ClinicalRecord(ConsentItem.DRUGS, dt.date(2025, 3, 1), "ロスバスタチン錠2.5mg",
                   "1回1錠 1日1回 夕食後 28日分", "テスト薬局"),
]
CHECKUP = ClinicalRecord(ConsentItem.CHECKUPS, dt.date(2024, 10, 1), "HbA1c", "5.6 %",
                         "テスト健康保険組合")


@pytest.fixture
def service(container: Container) -> EligibilityServiceImpl:
    return make_service(container)


@pytest.fixture
def clinic(service: EligibilityServiceImpl) -> Terminal:
    return register(service)[0]


@pytest.fixture
def taro(container: Container, clerk: StaffPrincipal, service: EligibilityServiceImpl,
         clinic: Terminal) -> Holder:
    holder = issue_holder(container, clerk)
    activate_at(service, clinic, holder)
    add_qualification(container.databases, holder.resident)
    service.record_clinical(holder.resident.id, [*DRUGS, CHECKUP])
    return holder


@pytest.fixture
def visit(service: EligibilityServiceImpl, clinic: Terminal, taro: Holder) -> EligibilityResult:
    result = check_pin(service, clinic, taro)
    assert result.validity is Validity.VALID
    return result


def _actions(service: EligibilityServiceImpl, holder: Holder) -> list[tuple[str, str | None]]:
    """The patient's やりとり履歴 after the check, oldest first."""
    entries = reversed(service.access_entries(holder.resident.id))
    return [(e.action.value, e.item.value if e.item else None) for e in entries
            if e.action not in (AccessAction.ACTIVATION, AccessAction.ELIGIBILITY)]


def _consent_required(call: object) -> str:
    with pytest.raises(ConsentRequired) as refused:
        call()  # type: ignore[operator]
    return str(refused.value.extra["reason"])


def test_drug_data_without_consent_is_refused_and_the_refusal_recorded(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal, taro: Holder,
        visit: EligibilityResult) -> None:
    assert _consent_required(lambda: service.records(clinic, visit.visit_id,
                                                     ConsentItem.DRUGS)) == "none"
    # Recorded (and committed) although the call raised.
    assert _actions(service, taro) == [("view_refused", "drugs")]
    refused = rows(container.databases, m.AccessRecordRow, action="view_refused")
    assert [(r.visit_id, r.institution_code) for r in refused] == [
        (visit.visit_id, clinic.institution_code)]


def test_consent_item_by_item_shows_only_the_consented_item(
        service: EligibilityServiceImpl, clinic: Terminal, taro: Holder,
        visit: EligibilityResult) -> None:
    given = service.consent(clinic, visit.visit_id, {ConsentItem.DRUGS: True,
                                                     ConsentItem.CHECKUPS: False})
    assert [(c.item, c.granted) for c in given] == [(ConsentItem.DRUGS, True),
                                                    (ConsentItem.CHECKUPS, False)]
    assert given[0].expires_at == given[0].given_at + CONSENT_TTL
    assert given[1].expires_at is None
    assert service.records(clinic, visit.visit_id, ConsentItem.DRUGS) == DRUGS  # newest first
    assert _consent_required(lambda: service.records(clinic, visit.visit_id,
                                                     ConsentItem.CHECKUPS)) == "refused"
    assert _consent_required(lambda: service.records(clinic, visit.visit_id,
                                                     ConsentItem.TREATMENTS)) == "none"
    assert _actions(service, taro) == [
        ("consent_given", "drugs"), ("consent_refused", "checkups"), ("view", "drugs"),
        ("view_refused", "checkups"), ("view_refused", "treatments")]


def test_drug_data_after_the_consent_expired_is_refused_and_recorded(
        service: EligibilityServiceImpl, clinic: Terminal, taro: Holder,
        visit: EligibilityResult) -> None:
    given = service.consent(clinic, visit.visit_id, {ConsentItem.DRUGS: True})[0]
    assert given.expires_at is not None
    service.clock = lambda: given.expires_at - dt.timedelta(seconds=1)  # type: ignore[operator]
    assert service.records(clinic, visit.visit_id, ConsentItem.DRUGS) == DRUGS
    service.clock = lambda: given.expires_at  # type: ignore[return-value]
    assert _consent_required(lambda: service.records(clinic, visit.visit_id,
                                                     ConsentItem.DRUGS)) == "expired"
    assert _actions(service, taro) == [("consent_given", "drugs"), ("view", "drugs"),
                                       ("view_refused", "drugs")]


def test_a_later_choice_at_the_same_visit_replaces_the_earlier_one(
        service: EligibilityServiceImpl, clinic: Terminal, taro: Holder,
        visit: EligibilityResult) -> None:
    service.consent(clinic, visit.visit_id, {ConsentItem.DRUGS: True})
    service.consent(clinic, visit.visit_id, {ConsentItem.DRUGS: False})
    assert _consent_required(lambda: service.records(clinic, visit.visit_id,
                                                     ConsentItem.DRUGS)) == "refused"


def test_only_the_visits_institution_may_use_it(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal, taro: Holder,
        visit: EligibilityResult) -> None:
    service.consent(clinic, visit.visit_id, {ConsentItem.DRUGS: True})
    other, _ = register(service, OTHER_CLINIC)
    answers = set()
    with pytest.raises(VisitNotFound) as foreign_view:
        service.records(other, visit.visit_id, ConsentItem.DRUGS)
    with pytest.raises(VisitNotFound) as foreign_consent:
        service.consent(other, visit.visit_id, {ConsentItem.CHECKUPS: True})
    with pytest.raises(VisitNotFound) as unknown:
        service.records(clinic, "no-such-visit", ConsentItem.DRUGS)
    for refused in (foreign_view, foreign_consent, unknown):  # no oracle: one answer
        answers.add((type(refused.value), refused.value.code, refused.value.detail,
                     refused.value.field))
    assert len(answers) == 1 and answers.pop()[0] is VisitNotFound
    # Another terminal of the same institution may.
    colleague, _ = register(service)
    assert service.records(colleague, visit.visit_id, ConsentItem.DRUGS) == DRUGS
    assert _actions(service, taro) == [("consent_given", "drugs"), ("view", "drugs")]
    # The other institution's attempts are audited: the terminal, never the person.
    foreign = rows(container.databases, m.AuditEvent, tag="insurance:visit:foreign_access")
    assert [(e.actor, e.subject, e.details["operation"], e.details["institution_code"])
            for e in sorted(foreign, key=lambda e: e.id)] == [
        (f"terminal:{other.id}", f"visit:{visit.visit_id}", "records:drugs", OTHER_CLINIC[0]),
        (f"terminal:{other.id}", f"visit:{visit.visit_id}", "consent", OTHER_CLINIC[0])]
    for event in foreign:
        assert set(event.details) == {"institution_code", "operation"} and not event.reason
    # An unknown id is not audited as foreign (nobody's visit).
    assert all(e.subject != "visit:no-such-visit" for e in foreign)


def test_consent_needs_a_valid_visit_and_is_asked_at_the_visit(
        container: Container, clerk: StaffPrincipal, service: EligibilityServiceImpl,
        clinic: Terminal, taro: Holder, visit: EligibilityResult) -> None:
    hanako = issue_holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    activate_at(service, clinic, hanako)
    not_found = check_pin(service, clinic, hanako)
    assert not_found.validity is Validity.NOT_FOUND
    with pytest.raises(VisitNotFound):
        service.consent(clinic, not_found.visit_id, {ConsentItem.DRUGS: True})
    for bad in ({}, {"tobacco": True}, {ConsentItem.DRUGS: "yes"}):
        with pytest.raises(InvalidInsuranceInput):
            service.consent(clinic, visit.visit_id, bad)  # type: ignore[arg-type]
    start = service.clock()
    service.clock = lambda: start + CONSENT_WINDOW + dt.timedelta(minutes=1)
    with pytest.raises(VisitNotFound):
        service.consent(clinic, visit.visit_id, {ConsentItem.DRUGS: True})
    assert rows(container.databases, m.ConsentRow) == []


def test_a_blocked_link_stops_the_views_and_the_refusal_is_recorded(
        container: Container, service: EligibilityServiceImpl, clinic: Terminal, taro: Holder,
        visit: EligibilityResult) -> None:
    service.consent(clinic, visit.visit_id, {ConsentItem.DRUGS: True})
    assert visit.qualification is not None
    set_link_state(container.databases, visit.qualification.id, LinkState.BLOCKED)
    with pytest.raises(LinkBlocked):
        service.records(clinic, visit.visit_id, ConsentItem.DRUGS)
    with pytest.raises(LinkBlocked):
        service.consent(clinic, visit.visit_id, {ConsentItem.CHECKUPS: True})
    assert _actions(service, taro) == [("consent_given", "drugs"), ("view_refused", "drugs")]


def test_views_show_only_the_visits_person(
        container: Container, clerk: StaffPrincipal, service: EligibilityServiceImpl,
        clinic: Terminal, taro: Holder, visit: EligibilityResult) -> None:
    hanako = issue_holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    service.record_clinical(hanako.resident.id, [ClinicalRecord(
        ConsentItem.DRUGS, dt.date(2025, 5, 2), "ロキソプロフェン錠60mg", "頓用 10回分",
        "別の薬局")])
    service.consent(clinic, visit.visit_id, {ConsentItem.DRUGS: True})
    assert service.records(clinic, visit.visit_id, ConsentItem.DRUGS) == DRUGS
    assert service.access_entries(hanako.resident.id) == []


def test_clinical_records_are_checked_when_they_arrive(
        service: EligibilityServiceImpl) -> None:
    assert service.record_clinical(42, []) == 0
    bad_lines: list[object] = [
        ClinicalRecord(ConsentItem.DRUGS, dt.date(2025, 1, 1), "", "x", "y"),
        ClinicalRecord(ConsentItem.DRUGS, dt.date(2025, 1, 1), "x" * 121, "x", "y"),
        ClinicalRecord("tobacco", dt.date(2025, 1, 1), "x", "x", "y"),  # type: ignore[arg-type]
        ClinicalRecord(ConsentItem.DRUGS, "2025-01-01", "x", "x", "y"),  # type: ignore[arg-type]
        "a line",
    ]
    for line in bad_lines:
        with pytest.raises(InvalidInsuranceInput):
            service.record_clinical(42, [line])  # type: ignore[list-item]
    with pytest.raises(InvalidInsuranceInput):
        service.record_clinical(0, DRUGS)
    assert service.record_clinical(42, DRUGS) == 2

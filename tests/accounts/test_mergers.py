"""Bank mergers: registrations move to the codes valid today, with history and an event for
the resident's notice; nothing is dropped."""

from __future__ import annotations

import datetime as dt

from mynumber.accounts.interfaces import MIGRATED_EVENT, MovedRegistration, Route
from mynumber.accounts.services import AccountsServiceImpl
from tests.accounts.conftest import TAX, Person, account


def _at(accounts: AccountsServiceImpl, day: dt.date) -> None:
    moment = dt.datetime.combine(day, dt.time(3), dt.UTC)
    accounts.clock = lambda: moment


def test_a_merger_moves_the_registration_through_two_mergers(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    _at(accounts, dt.date(2018, 6, 1))
    accounts.register(taro.id, account(bank="8011", branch="101"), Route.TAX_RETURN, actor=TAX)
    today = dt.date(2025, 1, 6)
    _at(accounts, today)
    report = accounts.apply_mergers(today)
    assert report.moved == [MovedRegistration(taro.id, "8011", "101", "8013", "501", today)]
    now = accounts.registration(taro.id)
    assert now is not None and (now.bank_code, now.branch_code, now.known_on) == (
        "8013", "501", today)
    assert now.account_number == "1234567"
    history = accounts.history(taro.id)
    assert [(h.action, h.bank_code, h.branch_code, h.reason) for h in history] == [
        ("registered", "8011", "101", None), ("migrated", "8013", "501", "merger:8011-101")]
    accounts.outbox.sequence()
    [event] = [e for e in accounts.outbox.read(0, 10) if e.type == MIGRATED_EVENT]
    assert event.type == MIGRATED_EVENT and event.subject == f"resident:{taro.id}"
    assert event.payload["to_bank_code"] == "8013" and event.payload["from_branch_code"] == "101"
    assert accounts.apply_mergers(today).moved == []  # done once


def test_a_branch_consolidation_moves_only_registrations_of_the_old_branch(
        accounts: AccountsServiceImpl, person: Person) -> None:
    old, new = person(), person()
    _at(accounts, dt.date(2020, 1, 6))
    accounts.register(old.id, account(bank="8001", branch="113"), Route.TAX_RETURN, actor=TAX)
    _at(accounts, dt.date(2024, 5, 1))  # 8001-113 reused for a new branch from 2024-04-01
    accounts.register(new.id, account(bank="8001", branch="113"), Route.TAX_RETURN, actor=TAX)
    today = dt.date(2025, 1, 6)
    report = accounts.apply_mergers(today)
    assert [(m.resident_id, m.to_bank_code, m.to_branch_code) for m in report.moved] == [
        (old.id, "8001", "101")]
    unchanged = accounts.registration(new.id)
    assert unchanged is not None and unchanged.branch_code == "113"


def test_registrations_of_open_branches_are_left_alone(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    accounts.register(taro.id, account(), Route.TAX_RETURN, actor=TAX)
    assert accounts.apply_mergers(dt.date(2030, 1, 1)).moved == []
    assert [h.action for h in accounts.history(taro.id)] == ["registered"]

"""`mynumber accounts enrol-existing`: registrations made before their `registered` event
existed are enrolled with デジタル庁, so agencies' look-ups find them; idempotent, with counts."""

from __future__ import annotations

import datetime as dt
import json

from typer.testing import CliRunner

from mynumber.accounts.interfaces import DIGITAL_AGENCY, PUBLIC_FUND_ACCOUNT_ITEM
from mynumber.agencies.interfaces import PersonNotEnrolled
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.cli import app
from mynumber.network.interfaces import Outcome
from mynumber.settings import Settings
from tests.accounts.conftest import account, card
from tests.conftest import cli_env
from tests.portal.conftest import CITY, CardHolder, issue_card_holder

runner = CliRunner()
CHILD_ALLOWANCE = "extra-public-fund-child-allowance"


def _registered(container: Container, holder: CardHolder, name: str = "ﾔﾏﾀﾞ ﾀﾛｳ") -> None:
    """A registration whose event nobody delivers (as before the event existed)."""
    rid = holder.resident.id
    container.accounts.register(rid, account(name), "portal",
                                authentication=card(rid, at=container.accounts.clock()))


def _look_up(container: Container, holder: CardHolder) -> Outcome:
    address = f"city-{holder.resident.id:06d}"
    try:
        container.agencies.agency_code(CITY, address)
    except PersonNotEnrolled:
        container.agencies.enrol_person(CITY, address, holder.number)
    return container.agencies.query(CITY, address, CHILD_ALLOWANCE, DIGITAL_AGENCY,
                                    PUBLIC_FUND_ACCOUNT_ITEM).outcome


def test_earlier_registrations_are_enrolled_once_and_then_found(
    container: Container, settings: Settings, clerk: StaffPrincipal
) -> None:
    for agency in (CITY, DIGITAL_AGENCY):
        container.agencies.ensure_registered(agency)
    taro = issue_card_holder(container, clerk)
    hanako = issue_card_holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    _registered(container, taro)
    _registered(container, hanako, "ﾔﾏﾀﾞ ﾊﾅｺ")
    # 花子 died; the accounts context has not heard yet (its registration is still there).
    container.registry.register_death(clerk, hanako.resident.id, dt.date.today())
    assert _look_up(container, taro) is Outcome.NOT_HELD  # never enrolled

    first = runner.invoke(app, ["accounts", "enrol-existing"], env=cli_env(settings))
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"registrations": 2, "enrolled": 1,
                                        "passed_over": [hanako.resident.id]}
    code = container.agencies.agency_code(DIGITAL_AGENCY, f"pfa-{taro.resident.id}")
    assert _look_up(container, taro) is Outcome.PROVIDED

    again = runner.invoke(app, ["accounts", "enrol-existing"], env=cli_env(settings))
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["enrolled"] == 1
    # Looked up, not enrolled again: the same code (no second 取得番号).
    assert container.agencies.agency_code(DIGITAL_AGENCY, f"pfa-{taro.resident.id}") == code

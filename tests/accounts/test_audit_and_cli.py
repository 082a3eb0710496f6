"""The nightly audit and `mynumber accounts …`."""

from __future__ import annotations

import datetime as dt
import json

from typer.testing import CliRunner

from mynumber.accounts.interfaces import Route, SharedAccount
from mynumber.accounts.services import AccountsServiceImpl
from mynumber.cli import app
from mynumber.settings import Settings
from tests.accounts.conftest import PENSION, TAX, Person, account, card
from tests.conftest import cli_env

runner = CliRunner()


def test_the_audit_lists_one_account_registered_to_two_people(
        accounts: AccountsServiceImpl, person: Person) -> None:
    """Two people of the same reading pass the holder check with one account: the audit is
    what finds it."""
    first, second, third = person(), person(), person()
    accounts.register(first.id, account(), Route.PORTAL, authentication=card(first.id))
    accounts.register(second.id, account(), Route.TAX_RETURN, actor=TAX)
    accounts.register(third.id, account(number="7654321"), Route.TAX_RETURN, actor=TAX)
    report = accounts.audit_report()
    assert report.shared_accounts == [
        SharedAccount("8001", "101", "1234567", sorted([first.id, second.id]))]
    assert report.rechecks == []


def test_cli_show_audit_finalize_and_mergers(settings: Settings, accounts: AccountsServiceImpl,
                                             person: Person) -> None:
    env = cli_env(settings)
    taro, hanako = person(), person("山田", "花子", "ヤマダ", "ハナコ")
    accounts.clock = lambda: dt.datetime(2018, 6, 1, 3, tzinfo=dt.UTC)
    accounts.register(taro.id, account(bank="8011", branch="101"), Route.TAX_RETURN, actor=TAX)
    accounts.propose_pension(hanako.id, account("ﾔﾏﾀﾞ ﾊﾅｺ", number="0000001"),
                             dt.date(2025, 1, 6), actor=PENSION)

    shown = runner.invoke(app, ["accounts", "show", "--resident-id", str(taro.id),
                                "--history"], env=env)
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.stdout)
    assert body["registration"]["bank_code"] == "8011"
    assert [h["action"] for h in body["history"]] == ["registered"]
    missing = runner.invoke(app, ["accounts", "show", "--resident-id", str(hanako.id)], env=env)
    assert missing.exit_code == 1 and json.loads(missing.stdout)["registration"] is None

    merged = runner.invoke(app, ["accounts", "apply-mergers", "--today", "2025-01-06"], env=env)
    assert merged.exit_code == 0, merged.output
    assert json.loads(merged.stdout)["moved"][0]["to_bank_code"] == "8013"

    early = runner.invoke(app, ["accounts", "finalize-pensions", "--today", "2025-02-20"],
                          env=env)
    assert json.loads(early.stdout)["registered"] == []
    final = runner.invoke(app, ["accounts", "finalize-pensions", "--today", "2025-02-21"],
                          env=env)
    assert final.exit_code == 0, final.output
    assert json.loads(final.stdout)["registered"] == [hanako.id]

    clean = runner.invoke(app, ["accounts", "audit", "--json"], env=env)
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout) == {"shared_accounts": [], "rechecks": []}
    bad = runner.invoke(app, ["accounts", "finalize-pensions", "--today", "tomorrow"], env=env)
    assert bad.exit_code == 2

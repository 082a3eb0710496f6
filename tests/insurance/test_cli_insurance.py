"""`mynumber insurance …`: insurers, enrolment (one, and a CSV), linking (the 個人番号 only from
standard input, never an argument or an output), the review queue, the re-check, loss,
documents, and terminals (register, the demo keygen refused in production, list, suspend,
activate, operators)."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.cli import app
from mynumber.cli import insurance as cli_insurance
from mynumber.insurance.interfaces import LinkState
from mynumber.settings import Settings
from tests.conftest import cli_env
from tests.insurance.support_api import KYOKAI, feed, resident

runner = CliRunner()
HEADER = ("symbol,number,branch,insured_kind,acquired_on,copay_percent,name,name_kana,"
          "birth_date,sex,address\n")


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, ["insurance", *args], env=env, input=stdin)


def out(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def items_lines(record: Any, **items: str) -> str:
    """The personal items as ``enrol`` and ``reviews resolve`` read them: one a line."""
    values = {"name": record.name, "name_kana": record.name_kana,
              "birth_date": record.birth_date.isoformat(), "sex": record.sex.value,
              "address": record.address, **items}
    return "".join(f"{values[k]}\n" for k in ("name", "name_kana", "birth_date", "sex",
                                                "address"))


def row(record: Any, number: str, **items: str) -> str:
    values = {"name": record.name, "name_kana": record.name_kana,
              "birth_date": record.birth_date.isoformat(), "sex": record.sex.value,
              "address": record.address, **items}
    return (f"12,{number},00,insured,2020-04-01,30,{values['name']},{values['name_kana']},"
            f"{values['birth_date']},{values['sex']},{values['address']}\n")


def test_insurers_enrolment_linking_reviews_and_documents(
    settings: Settings, container: Container, clerk: StaffPrincipal, tmp_path: Path,
) -> None:
    env = cli_env(settings)
    registered = out(run(env, "insurer", "register", "--number", KYOKAI, "--name",
                         "全国健康保険協会 東京支部", "--kind", "kyokai_kenpo", "--agency-id",
                         "kyokai_kenpo"))
    assert registered["number"] == KYOKAI
    bad = run(env, "insurer", "register", "--number", "01130013", "--name", "x", "--kind",
              "kyokai_kenpo", "--agency-id", "kyokai_kenpo")
    assert bad.exit_code == 2 and "insurance_invalid_insurer_number" in bad.output
    assert [i["number"] for i in out(run(env, "insurer", "list"))] == [KYOKAI]

    taro = resident(container, clerk)
    hanako = resident(container, clerk, given_name="花子", given_name_kana="ハナコ")
    # One person: the personal items from standard input (one a line), never options.
    one = out(run(env, "enrol", "--insurer", KYOKAI, "--symbol", "12", "--number", "100",
                  "--branch", "00", "--acquired-on", "2020-04-01", stdin=items_lines(taro)))
    assert one["link_state"] == "unlinked"

    csv_file = tmp_path / "persons.csv"
    csv_file.write_text(HEADER + row(hanako, "200") + row(hanako, "100")
                        + "12,300,00,insured,2020-13-01,30,a,b,c,d,e\n", encoding="utf-8")
    many = run(env, "enrol", "--insurer", KYOKAI, "--csv", str(csv_file))
    assert many.exit_code == 1, many.output
    report = json.loads(many.stdout)
    assert report["enrolled"] == 1
    assert [(r["line"], r["code"]) for r in report["refused"]] == [
        (3, "insurance_already_enrolled"), (4, "insurance_invalid_input")]
    assert hanako.address not in many.stdout  # a refused row's values are never printed

    linked = out(run(env, "link", str(one["id"]), "--insurer", KYOKAI))
    assert linked["state"] == "linked"
    number = container.registry.reveal_number(clerk, hanako.id, "test: the person gave it")
    hanako_id = report["qualification_ids"][0]
    by_number = run(env, "link", str(hanako_id), "--insurer", KYOKAI, "--route", "number",
                    stdin=number + "\n")
    assert by_number.exit_code == 0, by_number.output
    assert json.loads(by_number.stdout)["state"] == "linked"
    assert number not in by_number.output
    persons = out(run(env, "persons", "--insurer", KYOKAI, "--state", "linked"))
    assert sorted(p["id"] for p in persons) == sorted([one["id"], hanako_id])

    # A near-miss: the review queue, resolved as not this person.
    far = out(run(env, "enrol", "--insurer", KYOKAI, "--symbol", "12", "--number", "400",
                  "--branch", "00", "--acquired-on", "2020-04-01",
                  stdin=items_lines(taro, address="東京都新宿区西新宿一丁目1番1号")))
    review = run(env, "link", str(far["id"]), "--insurer", KYOKAI)
    assert review.exit_code == 1 and json.loads(review.stdout)["state"] == "review"
    (item,) = out(run(env, "reviews", "list", "--insurer", KYOKAI))
    resolved = out(run(env, "reviews", "resolve", str(item["id"]), "--insurer", KYOKAI,
                       "--resolution", "dismissed"))
    assert resolved["resolution"] == "dismissed"
    assert out(run(env, "reviews", "list", "--insurer", KYOKAI)) == []
    # Another near-miss, resolved with the corrected items read from standard input: linked
    # by the four-item search on them.
    jiro = resident(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    near = out(run(env, "enrol", "--insurer", KYOKAI, "--symbol", "12", "--number", "500",
                   "--branch", "00", "--acquired-on", "2020-04-01",
                   stdin=items_lines(jiro, address="東京都新宿区西新宿一丁目1番1号")))
    assert run(env, "link", str(near["id"]), "--insurer", KYOKAI).exit_code == 1
    (item,) = out(run(env, "reviews", "list", "--insurer", KYOKAI))
    fixed = run(env, "reviews", "resolve", str(item["id"]), "--insurer", KYOKAI,
                "--resolution", "corrected", stdin=items_lines(jiro))
    assert out(fixed)["resolution"] == "corrected"
    assert jiro.address not in fixed.output and jiro.name not in fixed.output
    assert container.insurance.find(KYOKAI, "12", "500", "00").link_state is LinkState.LINKED

    assert out(run(env, "recheck", "--insurer", KYOKAI))["blocked"] == 0
    issued = out(run(env, "issue-documents", "--insurer", KYOKAI, "--years", "5"))
    # Every current record without an activated card (the unlinked one too) gets a 資格確認書.
    assert issued == {"confirmation_certificate": 4, "qualification_notice": 0}
    lost = out(run(env, "lose", str(one["id"]), "--insurer", KYOKAI, "--lost-on",
                   "2025-04-01", "--reason", "retirement"))
    assert lost["lost_on"] == "2025-04-01"
    assert container.insurance.find(KYOKAI, "12", "100", "00").link_state is LinkState.LINKED


def test_personal_items_are_never_options_and_ranges_are_the_services(
    settings: Settings, container: Container, clerk: StaffPrincipal,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = cli_env(settings)
    out(run(env, "insurer", "register", "--number", KYOKAI, "--name", "全国健康保険協会 東京支部",
            "--kind", "kyokai_kenpo", "--agency-id", "kyokai_kenpo"))
    base = ("--insurer", KYOKAI, "--symbol", "12", "--number", "700", "--branch", "00",
            "--acquired-on", "2020-04-01")
    for option in ("--name", "--name-kana", "--birth-date", "--sex", "--address"):
        refused = run(env, "enrol", *base, option, "x")
        assert refused.exit_code == 2 and "No such option" in refused.output, option
        refused = run(env, "reviews", "resolve", "1", "--insurer", KYOKAI, "--resolution",
                      "corrected", option, "x")
        assert refused.exit_code == 2 and "No such option" in refused.output, option
    # Fewer lines than items: the rest are missing (enrolled, but never linkable on them).
    partial = out(run(env, "enrol", *base, stdin="山田 花子\n"))
    assert partial["link_state"] == "unlinked"
    # On a terminal the items are asked one by one (prompts on standard error).
    monkeypatch.setattr(cli_insurance, "_interactive", lambda: True)
    taro = resident(container, clerk)
    asked = run(env, "enrol", "--insurer", KYOKAI, "--symbol", "12", "--number", "701",
                "--branch", "00",
                "--acquired-on", "2020-04-01", stdin=items_lines(taro))
    assert asked.exit_code == 0, asked.output
    assert "氏名" in asked.stderr and "住所" in asked.stderr
    # (CliRunner echoes the typed answers to stdout as a terminal would show them.)
    enrolled = json.loads(asked.stdout[asked.stdout.index("{"):])
    assert enrolled["link_state"] == "unlinked"
    linked = out(run(env, "link", str(enrolled["id"]), "--insurer", KYOKAI))
    assert linked["state"] == "linked"  # the four items arrived in their places
    # The service's ranges.
    assert run(env, "persons", "--insurer", KYOKAI, "--limit", "1000").exit_code == 0
    assert run(env, "persons", "--insurer", KYOKAI, "--limit", "1001").exit_code == 2
    assert run(env, "recheck", "--insurer", KYOKAI, "--batch", "10000").exit_code == 0
    assert run(env, "recheck", "--insurer", KYOKAI, "--batch", "10001").exit_code == 2


def test_the_number_is_never_an_argument(settings: Settings) -> None:
    env = cli_env(settings)
    refused = run(env, "link", "1", "--insurer", KYOKAI, "--route", "number",
                  "--individual-number", "123456789012")
    assert refused.exit_code == 2  # no such option
    empty = run(env, "link", "1", "--insurer", KYOKAI, "--route", "number", stdin="\n")
    assert empty.exit_code == 2 and "standard input" in empty.output


def test_terminals(settings: Settings, container: Container, tmp_path: Path) -> None:
    env = cli_env(settings)
    made = out(run(env, "terminal", "keygen", "--out-dir", str(tmp_path / "t1"),
                   "--institution-code", "1312345678", "--institution-name",
                   "新宿テストクリニック", "--register"))
    key = Path(made["private_key"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    terminal_id = made["terminal"]["id"]
    assert made["terminal"]["status"] == "active" and "certificate_pem" not in made["terminal"]
    again = run(env, "terminal", "keygen", "--out-dir", str(tmp_path / "t1"),
                "--institution-code", "1312345678", "--institution-name", "x")
    assert again.exit_code == 2

    # A certificate made elsewhere, registered on its own.
    other = out(run(env, "terminal", "keygen", "--out-dir", str(tmp_path / "t2"),
                    "--institution-code", "1398765432", "--institution-name", "渋谷テスト病院"))
    registered = out(run(env, "terminal", "register", "--institution-code", "1398765432",
                         "--institution-name", "渋谷テスト病院", "--certificate",
                         other["certificate"]))
    listed = out(run(env, "terminal", "list"))
    assert [t["id"] for t in listed] == [terminal_id, registered["id"]]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate", encoding="ascii")
    bad = run(env, "terminal", "register", "--institution-code", "1398765432",
              "--institution-name", "x", "--certificate", str(garbage))
    assert bad.exit_code == 2 and "insurance_invalid_input" in bad.output

    assert out(run(env, "terminal", "suspend", terminal_id))["status"] == "suspended"
    assert out(run(env, "terminal", "activate", terminal_id))["status"] == "active"
    unknown = run(env, "terminal", "suspend", "trm_0000000000000000")
    assert unknown.exit_code == 1 and "insurance_terminal_unknown" in unknown.output

    set_ = out(run(env, "terminal", "operators", terminal_id, "clinic-sato", "clinic-ito"))
    assert set_["operators"] == ["clinic-ito", "clinic-sato"]
    assert out(run(env, "terminal", "operators", terminal_id))["operators"] == [
        "clinic-ito", "clinic-sato"]
    listed = {t["id"]: t for t in out(run(env, "terminal", "list"))}
    assert listed[terminal_id]["operators"] == ["clinic-ito", "clinic-sato"]
    assert listed[registered["id"]]["operators"] == []
    assert [t.id for t in container.eligibility.terminals_for_operator("clinic-ito")] == [
        terminal_id]
    assert container.eligibility.terminals_for_operator("clinic") == []
    assert out(run(env, "terminal", "operators", terminal_id, "--clear"))["operators"] == []
    assert container.eligibility.terminal(terminal_id).operators == ()
    bad = run(env, "terminal", "operators", terminal_id, "bad name")
    assert bad.exit_code == 2 and "insurance_invalid_input" in bad.output
    too_many = run(env, "terminal", "operators", terminal_id, *[f"u{i}" for i in range(21)])
    assert too_many.exit_code == 2
    both = run(env, "terminal", "operators", terminal_id, "clinic-ito", "--clear")
    assert both.exit_code == 2
    for args in (("trm_0000000000000000", "clinic-ito"), ("trm_0000000000000000",)):
        unknown = run(env, "terminal", "operators", *args)
        assert unknown.exit_code == 1 and "insurance_terminal_unknown" in unknown.output
    assert out(run(env, "terminal", "operators", terminal_id))["operators"] == []


def test_keygen_is_refused_in_production(settings: Settings, tmp_path: Path) -> None:
    env = {**cli_env(settings), "MYNUMBER_MODE": "production"}
    refused = run(env, "terminal", "keygen", "--out-dir", str(tmp_path / "prod"),
                  "--institution-code", "1312345678", "--institution-name", "x")
    assert refused.exit_code == 2 and "production mode refuses it" in refused.output
    assert not (tmp_path / "prod").exists()


def test_a_death_in_the_registry_ends_the_qualification_through_the_events(
    container: Container, clerk: StaffPrincipal,
) -> None:
    """The container's registry dispatcher carries the insurer side's subscriber."""
    from tests.insurance.support_api import linked, register_insurers

    register_insurers(container)
    taro = resident(container, clerk)
    q = linked(container, taro)
    container.registry.register_death(clerk, taro.id, dt.date(2025, 6, 1))
    feed(container)
    container.dispatcher("registry").drain()
    ended = container.insurance.find(KYOKAI, q.symbol, q.number, q.branch)
    assert ended.lost_on is not None and ended.loss_reason is not None
    assert ended.loss_reason.value == "death"

"""預金保険機構's look-ups: an heir with the documents learns which banks hold the deceased's
numbered accounts (fee 5,060 yen recorded); an heir without them learns nothing, not even
whether accounts exist (the same refusal, compared byte for byte); after a declared disaster a
resident of an affected municipality asks free of charge, only there and then. Every look-up
is recorded and visible to the person it concerns and to the heir who asked."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mynumber.accounts.deposit import DepositNumberingServiceImpl
from mynumber.accounts.interfaces import (
    INHERITANCE_LOOKUP_FEE_YEN,
    HeirDocument,
    InvalidDeclaration,
    LookupKind,
    LookupOutcome,
    LookupRefused,
    NoDisasterDeclaration,
    Route,
)
from mynumber.accounts.services import AccountsServiceImpl
from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.cli import app as cli
from mynumber.settings import Settings
from tests.accounts.conftest import TODAY, Person, card
from tests.conftest import SHIBUYA, SHINJUKU, cli_env, new_resident
from tests.portal.conftest import issue_card_holder, login

CLERK = "dic:suzuki"
DOCUMENTS = [HeirDocument("death", "JOSEKI-2025-0042"),
             HeirDocument("heir_relation", "KOSEKI-2025-0043")]
runner = CliRunner()


@pytest.fixture
def deposit(container: Container, accounts: AccountsServiceImpl) -> DepositNumberingServiceImpl:
    return container.accounts_deposit  # no bank keys: the consents stay pending, that is enough


def _numbered(deposit: DepositNumberingServiceImpl, resident_id: int, *banks: str) -> None:
    deposit.request_numbering(resident_id, list(banks), Route.PORTAL,
                              authentication=card(resident_id))


def test_an_heir_with_the_documents_learns_the_banks_and_the_fee_is_recorded(
        container: Container, deposit: DepositNumberingServiceImpl, person: Person,
        clerk: StaffPrincipal) -> None:
    father, son = person("山田", "一郎", "ヤマダ", "イチロウ"), person()
    _numbered(deposit, father.id, "8005", "8001")
    container.registry.register_death(clerk, father.id, TODAY)
    lookup = deposit.heir_lookup(father.id, son.id, DOCUMENTS, actor=CLERK)
    assert lookup.outcome is LookupOutcome.ANSWERED and lookup.kind is LookupKind.INHERITANCE
    assert lookup.bank_codes == ["8001", "8005"]
    assert lookup.fee_yen == INHERITANCE_LOOKUP_FEE_YEN == 5060
    assert lookup.actor == CLERK
    # Visible to the heir who asked.
    assert deposit.lookups_for(son.id) == [lookup]


def _refusal(deposit: DepositNumberingServiceImpl, deceased: int, heir: int,
             documents: list[HeirDocument]) -> dict[str, Any]:
    with pytest.raises(LookupRefused) as caught:
        deposit.heir_lookup(deceased, heir, documents, actor=CLERK)
    return caught.value.problem()


def test_an_heir_without_the_documents_learns_nothing_the_refusal_is_identical(
        container: Container, deposit: DepositNumberingServiceImpl, person: Person,
        clerk: StaffPrincipal, settings: Settings) -> None:
    heir = person()
    with_accounts, without_accounts, living = person(), person(), person()
    _numbered(deposit, with_accounts.id, "8001")
    _numbered(deposit, living.id, "8001")
    container.registry.register_death(clerk, with_accounts.id, TODAY)
    container.registry.register_death(clerk, without_accounts.id, TODAY)
    unknown = 10_000_000
    partial = [DOCUMENTS[1]]  # the heir relation without the death
    cases = [(d, docs) for d in (with_accounts.id, without_accounts.id, living.id, unknown)
             for docs in ([], partial, [HeirDocument("death", " "), DOCUMENTS[1]])]
    problems = [_refusal(deposit, d, heir.id, docs) for d, docs in cases]
    assert all(p == problems[0] for p in problems), problems
    assert problems[0]["status"] == 403 and problems[0]["code"] == "accounts_dic_lookup_refused"
    assert set(problems[0]) == {"type", "title", "status", "detail", "code"}
    # With the documents, a living person or an unknown id is refused the same way too.
    assert _refusal(deposit, living.id, heir.id, DOCUMENTS) == problems[0]
    assert _refusal(deposit, unknown, heir.id, DOCUMENTS) == problems[0]

    # The operator's command prints the same refusal whatever the case.
    env = cli_env(settings)

    def cli_refusal(deceased: int) -> tuple[int, str]:
        out = runner.invoke(cli, ["accounts", "deposit", "heir-lookup", "--deceased-id",
                                  str(deceased), "--heir-id", str(heir.id), "--clerk", "suzuki",
                                  "--document", "heir_relation=KOSEKI-1"], env=env)
        return out.exit_code, out.stdout

    answers = [cli_refusal(d) for d in (with_accounts.id, without_accounts.id, living.id,
                                        unknown)]
    assert all(a == answers[0] for a in answers) and answers[0][0] == 1, answers
    assert json.loads(answers[0][1])["code"] == "accounts_dic_lookup_refused"

    # Every refusal is recorded (no banks, no fee) and visible to the heir.
    seen = deposit.lookups_for(heir.id)
    assert len(seen) == len(cases) + 2 + len(answers)
    assert all(x.outcome is LookupOutcome.REFUSED and x.bank_codes == [] and x.fee_yen == 0
               for x in seen)
    # The heir with the documents is answered.
    answered = deposit.heir_lookup(with_accounts.id, heir.id, DOCUMENTS, actor=CLERK)
    assert answered.bank_codes == ["8001"]


def test_the_cli_answers_an_heir_with_the_documents(
        container: Container, deposit: DepositNumberingServiceImpl, person: Person,
        clerk: StaffPrincipal, settings: Settings) -> None:
    father, son = person(), person()
    _numbered(deposit, father.id, "8006")
    container.registry.register_death(clerk, father.id, TODAY)
    out = runner.invoke(cli, ["accounts", "deposit", "heir-lookup", "--deceased-id",
                              str(father.id), "--heir-id", str(son.id), "--clerk", "suzuki",
                              "--document", "death=JOSEKI-1", "--document",
                              "heir_relation=KOSEKI-1"], env=cli_env(settings))
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert body["banks"] == [{"bank_code": "8006", "bank_name": "ことり銀行"}]
    assert body["fee_yen"] == 5060 and body["actor"] == "dic:suzuki"
    listed = runner.invoke(cli, ["accounts", "deposit", "lookups", "--resident-id",
                                 str(son.id)], env=cli_env(settings))
    assert [x["outcome"] for x in json.loads(listed.stdout)] == ["answered"]


def test_a_disaster_look_up_is_free_only_in_a_declared_municipality_and_period(
        container: Container, deposit: DepositNumberingServiceImpl, person: Person,
        clerk: StaffPrincipal, shibuya_clerk: StaffPrincipal) -> None:
    taro = person()  # 新宿区
    _numbered(deposit, taro.id, "8001")
    jiro = container.registry.register_birth(
        shibuya_clerk, new_resident(municipality_code=SHIBUYA, given_name="次郎",
                                    given_name_kana="ジロウ",
                                    birth_date=dt.date(1980, 1, 1)), dt.date(1980, 1, 1))
    with pytest.raises(NoDisasterDeclaration):
        deposit.disaster_lookup(taro.id, actor=f"resident:{taro.id}")
    # A declaration for 渋谷区 only, and one for 新宿区 that ended before today.
    deposit.declare_disaster("令和7年豪雨", [SHIBUYA], TODAY - dt.timedelta(days=3),
                             TODAY + dt.timedelta(days=30), actor="operator:test")
    deposit.declare_disaster("令和6年地震", [SHINJUKU], dt.date(2024, 1, 1),
                             TODAY - dt.timedelta(days=1), actor="operator:test")
    with pytest.raises(NoDisasterDeclaration) as caught:
        deposit.disaster_lookup(taro.id, actor=f"resident:{taro.id}")
    assert caught.value.status == 403
    jiros = deposit.disaster_lookup(jiro.id, actor=f"resident:{jiro.id}")
    assert jiros.outcome is LookupOutcome.ANSWERED and jiros.bank_codes == []
    assert jiros.fee_yen == 0
    # Now 新宿区 is declared, from today.
    current = deposit.declare_disaster("令和7年台風第10号", [SHINJUKU, SHIBUYA], TODAY,
                                       TODAY + dt.timedelta(days=60), actor="operator:test")
    found = deposit.disaster_lookup(taro.id, actor=f"resident:{taro.id}")
    assert found.outcome is LookupOutcome.ANSWERED and found.bank_codes == ["8001"]
    assert found.fee_yen == 0 and found.declaration_id == current.id
    # Each look-up recorded and visible to the resident, refused ones too, newest first.
    assert [(x.outcome, x.fee_yen) for x in deposit.lookups_for(taro.id)] == [
        (LookupOutcome.ANSWERED, 0), (LookupOutcome.REFUSED, 0), (LookupOutcome.REFUSED, 0)]
    assert deposit.lookups_for(jiro.id) == [jiros]


def test_declarations_are_checked(deposit: DepositNumberingServiceImpl) -> None:
    with pytest.raises(InvalidDeclaration) as bad_code:
        deposit.declare_disaster("x", ["131040"], TODAY, TODAY, actor="t")  # check digit
    assert bad_code.value.field == "municipality_codes"
    with pytest.raises(InvalidDeclaration) as backwards:
        deposit.declare_disaster("x", [SHINJUKU], TODAY, TODAY - dt.timedelta(days=1),
                                 actor="t")
    assert backwards.value.field == "ends_on"
    assert deposit.declarations() == []


def test_cli_declares_and_lists(settings: Settings, deposit: DepositNumberingServiceImpl
                                ) -> None:
    env = cli_env(settings)
    made = runner.invoke(cli, ["accounts", "disaster", "declare", "--name", "令和7年台風第10号",
                               "--municipality", SHINJUKU, "--municipality", SHIBUYA,
                               "--from", "2025-06-01", "--to", "2025-07-31"], env=env)
    assert made.exit_code == 0, made.output
    listed = json.loads(runner.invoke(cli, ["accounts", "disaster", "list"], env=env).stdout)
    assert [(d["name"], d["municipality_codes"]) for d in listed] == [
        ("令和7年台風第10号", sorted([SHINJUKU, SHIBUYA]))]
    bad = runner.invoke(cli, ["accounts", "disaster", "declare", "--name", "x",
                              "--municipality", "999999", "--from", "2025-06-01", "--to",
                              "2025-06-02"], env=env)
    assert bad.exit_code == 2


# --- the resident's API and pages ------------------------------------------------------------


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def test_api_disaster_look_up_and_the_list_concerning_me(
        container: Container, api: TestClient, deposit: DepositNumberingServiceImpl,
        clerk: StaffPrincipal, person: Person) -> None:
    holder = issue_card_holder(container, clerk)
    me = holder.resident.id
    bearer = {"Authorization": f"Bearer {login(container, holder).token}"}
    _numbered(deposit, me, "8001")
    refused = api.post("/api/v1/portal/me/deposit-numbering/disaster-lookup", headers=bearer)
    assert refused.status_code == 403
    assert refused.json()["code"] == "accounts_no_disaster_declaration"
    deposit.declare_disaster("令和7年台風第10号", [SHINJUKU], TODAY,
                             TODAY + dt.timedelta(days=10), actor="operator:test")
    found = api.post("/api/v1/portal/me/deposit-numbering/disaster-lookup", headers=bearer)
    assert found.status_code == 200, found.text
    assert found.json()["banks"] == [{"bank_code": "8001", "bank_name": "みらい銀行"}]
    assert found.json()["fee_yen"] == 0 and found.json()["kind"] == "disaster"
    # As an heir: the deceased's look-up shows in my list.
    father = person()
    _numbered(deposit, father.id, "8005")
    container.registry.register_death(clerk, father.id, TODAY)
    deposit.heir_lookup(father.id, me, DOCUMENTS, actor=CLERK)
    listed = api.get("/api/v1/portal/me/deposit-numbering/lookups", headers=bearer).json()
    assert [(x["kind"], x["outcome"], x["as_heir"], x["fee_yen"]) for x in listed["lookups"]] \
        == [("inheritance", "answered", True, 5060), ("disaster", "answered", False, 0),
            ("disaster", "refused", False, 0)]
    assert api.get("/api/v1/portal/me/deposit-numbering/lookups").status_code == 401


def test_pages_disaster_look_up_and_list(container: Container, deposit: DepositNumberingServiceImpl,
                                         clerk: StaffPrincipal, person: Person,
                                         api: TestClient) -> None:
    from tests.portal.test_views import Browser

    browser = Browser(api)
    holder = issue_card_holder(container, clerk)
    me = holder.resident.id
    assert browser.reader_login(holder).status_code == 303
    _numbered(deposit, me, "8001")
    page = browser.get("/portal/accounts/deposit/disaster")
    assert page.status_code == 200 and "災害時の口座照会" in page.text
    refused = browser.post("/portal/accounts/deposit/disaster", {})
    assert refused.status_code == 403
    assert "災害救助法が適用されていない" in refused.text
    deposit.declare_disaster("令和7年台風第10号", [SHINJUKU], TODAY,
                             TODAY + dt.timedelta(days=10), actor="operator:test")
    found = browser.post("/portal/accounts/deposit/disaster", {})
    assert found.status_code == 200 and "みらい銀行" in found.text and "無料" in found.text
    father = person()
    container.registry.register_death(clerk, father.id, TODAY)
    deposit.heir_lookup(father.id, me, DOCUMENTS, actor=CLERK)
    listed = browser.get("/portal/accounts/deposit/lookups")
    assert listed.status_code == 200
    assert "相続時の照会（あなたが相続人として）" in listed.text and "5,060円" in listed.text
    assert "お断りしました" in listed.text and "回答しました" in listed.text
    assert "accounts_" not in listed.text and "inheritance" not in listed.text.replace(
        'data-kind="inheritance"', "")

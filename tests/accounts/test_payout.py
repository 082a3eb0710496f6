"""A payout run: recipients resolved through the network in batches (every look-up in each
resident's やりとり履歴), a 全銀協 総合振込 file that parses back field by field with the
reader below (written here, independent of accounts.transfer_file), and recipients without an
account reported and sent a notice. Real registry, cards, portal, agency codes, signatures,
envelopes and log."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from mynumber.accounts import models as am
from mynumber.accounts.interfaces import DIGITAL_AGENCY, PUBLIC_FUND_ACCOUNT_ITEM
from mynumber.accounts.payout import NOTICE_KIND, PayoutError, PayoutService
from mynumber.accounts.services import AccountsServiceImpl
from mynumber.accounts.transfer_file import DepositType, Requester
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.cli import app
from mynumber.network.interfaces import Outcome
from mynumber.settings import Settings
from tests.accounts.conftest import NOW, account, card
from tests.conftest import cli_env
from tests.portal.conftest import CITY, CardHolder, issue_card_holder, login

runner = CliRunner()
EMERGENCY = "extra-public-fund-emergency-benefit"
PENSION_TASK = "extra-public-fund-pension"  # not a mayor's task: refused
PAY_DAY = dt.date(2026, 7, 10)
REQUESTER = Requester(code="1310410001", name="ｼﾝｼﾞﾕｸｸ", bank_code="8001", bank_name="ﾐﾗｲ",
                      branch_code="001", branch_name="ﾎﾝﾃﾝ",
                      deposit_type=DepositType.CURRENT, account_number="0000001")


# --- an independent reader of the 総合振込 file -------------------------------------------------

@dataclass
class Read:
    headers: list[dict[str, str]]
    data: list[dict[str, str]]
    trailers: list[dict[str, str]]
    kinds: str


def _half_width(raw: bytes) -> bool:
    """Every byte is ASCII or JIS X 0201 half-width katakana (0xA1-0xDF): one byte a char."""
    return all(0x20 <= b < 0x7F or 0xA1 <= b <= 0xDF for b in raw)


def read_zengin(content: bytes) -> Read:
    assert content.endswith(b"\r\n")
    lines = content.split(b"\r\n")[:-1]
    assert all(len(line) == 120 for line in lines)
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    headers, data, trailers = [], [], []
    kinds = ""

    def cut(raw: bytes, start: int, length: int) -> str:  # 1-based position as the layout
        part = raw[start - 1:start - 1 + length]
        assert _half_width(part)
        return part.decode("cp932")

    for line in lines:
        kind = chr(line[0])
        kinds += kind
        if kind == "1":
            headers.append({
                "type": cut(line, 2, 2), "code_kind": cut(line, 4, 1),
                "requester_code": cut(line, 5, 10), "requester_name": cut(line, 15, 40),
                "date": cut(line, 55, 4), "bank_code": cut(line, 59, 4),
                "bank_name": cut(line, 63, 15), "branch_code": cut(line, 78, 3),
                "branch_name": cut(line, 81, 15), "deposit_type": cut(line, 96, 1),
                "account_number": cut(line, 97, 7), "dummy": cut(line, 104, 17)})
        elif kind == "2":
            data.append({
                "bank_code": cut(line, 2, 4), "bank_name": cut(line, 6, 15),
                "branch_code": cut(line, 21, 3), "branch_name": cut(line, 24, 15),
                "clearing_house": cut(line, 39, 4), "deposit_type": cut(line, 43, 1),
                "account_number": cut(line, 44, 7), "name": cut(line, 51, 30),
                "amount": cut(line, 81, 10), "new_code": cut(line, 91, 1),
                "customer": cut(line, 92, 20), "kind": cut(line, 112, 1),
                "edi_marker": cut(line, 113, 1), "dummy": cut(line, 114, 7)})
        elif kind == "8":
            trailers.append({"count": cut(line, 2, 6), "total": cut(line, 8, 12),
                             "dummy": cut(line, 20, 101)})
        else:
            assert kind == "9" and cut(line, 2, 119) == " " * 119
    return Read(headers, data, trailers, kinds)


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    path = tmp_path / "payouts"
    path.mkdir()
    return path


@pytest.fixture
def payout(container: Container) -> PayoutService:
    for agency in (CITY, DIGITAL_AGENCY):
        container.agencies.ensure_registered(agency)
    accounts = container.accounts
    return PayoutService(container.databases, container.agencies, container.portal,
                         lambda: accounts.directory,
                         agency_name=lambda a: container.network.agency(a).name)


def _holder(c: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl, given: str,
            kana: str, holder: str | None, number: str) -> tuple[CardHolder, str]:
    person = issue_card_holder(c, clerk, given_name=given, given_name_kana=kana)
    rid = person.resident.id
    if holder is not None:
        accounts.register(rid, account(holder, number=number), "portal",
                          authentication=card(rid, at=NOW))
        c.accounts_provision.enrol(rid, f"jpki:certificate:serial-{rid}")
    address = f"shinjuku-{rid:06d}"
    c.agencies.enrol_person(CITY, address, person.number)
    return person, address


@pytest.fixture
def people(container: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl
           ) -> list[tuple[CardHolder, str]]:
    return [
        _holder(container, clerk, accounts, "太郎", "タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ", "1234567"),
        _holder(container, clerk, accounts, "花子", "ハナコ", "ﾔﾏﾀﾞ ﾊﾅｺ", "7654321"),
        _holder(container, clerk, accounts, "次郎", "ジロウ", None, ""),  # no account
        _holder(container, clerk, accounts, "三郎", "サブロウ", "ﾔﾏﾀﾞ ｻﾌﾞﾛｳ", "0000042"),
    ]


def test_the_transfer_file_parses_back_field_by_field_and_the_totals_match(
    container: Container, payout: PayoutService, people: list[tuple[CardHolder, str]],
    outdir: Path,
) -> None:
    c = container
    amounts = [100_000, 50_000, 70_000, 1]
    recipients = [(address, amount) for (_, address), amount in zip(people, amounts,
                                                                     strict=True)]
    out = outdir / "furikomi.txt"

    report = payout.run(CITY, EMERGENCY, "特別定額給付金", [*recipients, ("shinjuku-nobody", 5)],
                        PAY_DAY, REQUESTER, out, chunk=2)

    content = out.read_bytes()
    read = read_zengin(content)
    assert read.kinds == "122289"
    (header,) = read.headers
    assert header == {
        "type": "21", "code_kind": "0", "requester_code": "1310410001",
        "requester_name": "ｼﾝｼﾞﾕｸｸ".ljust(40), "date": "0710", "bank_code": "8001",
        "bank_name": "ﾐﾗｲ".ljust(15), "branch_code": "001", "branch_name": "ﾎﾝﾃﾝ".ljust(15),
        "deposit_type": "2", "account_number": "0000001", "dummy": " " * 17}
    expected = [("1234567", "ﾔﾏﾀﾞ ﾀﾛｳ", 100_000), ("7654321", "ﾔﾏﾀﾞ ﾊﾅｺ", 50_000),
                ("0000042", "ﾔﾏﾀﾞ ｻﾌﾞﾛｳ", 1)]
    for record, (number, name, amount) in zip(read.data, expected, strict=True):
        assert record == {
            "bank_code": "8001", "bank_name": "ﾐﾗｲ".ljust(15), "branch_code": "101",
            "branch_name": "ｴｷﾏｴ".ljust(15), "clearing_house": "0000", "deposit_type": "1",
            "account_number": number, "name": name.ljust(30), "amount": f"{amount:010d}",
            "new_code": "0", "customer": " " * 20, "kind": "7", "edi_marker": " ",
            "dummy": " " * 7}
    (trailer,) = read.trailers
    assert int(trailer["count"]) == len(read.data) == 3
    assert int(trailer["total"]) == sum(int(r["amount"]) for r in read.data) == 150_001
    assert trailer["dummy"] == " " * 101
    assert (report.paid, report.total_yen, report.groups) == (3, 150_001, 1)
    assert report.file_sha256 == hashlib.sha256(content).hexdigest()
    assert report.file_bytes == len(content) == 6 * 122
    assert [p.name for p in outdir.iterdir()] == ["furikomi.txt"]  # no partial file left
    # The run is recorded, without any person's data.
    with c.databases.unit_of_work("accounts") as session:
        run = session.get(am.PayoutRun, report.run_id)
        assert run is not None and run.state == "completed"
        assert (run.recipients, run.paid, run.total_yen, run.no_account, run.not_enrolled,
                run.noticed) == (5, 3, 150_001, 1, 1, 1)
        assert run.file_sha256 == report.file_sha256 and run.finished_at is not None


def test_recipients_without_an_account_are_reported_and_sent_a_notice(
    container: Container, payout: PayoutService, people: list[tuple[CardHolder, str]],
    outdir: Path,
) -> None:
    c = container
    recipients = [(address, 10_000) for _, address in people]
    report = payout.run(CITY, EMERGENCY, "特別定額給付金",
                        [*recipients, ("shinjuku-nobody", 10_000)], PAY_DAY, REQUESTER,
                        outdir / "out.txt")
    unpaid = {u.address_number: u for u in report.unpaid}
    missing_person, missing_address = people[2]
    assert unpaid[missing_address].reason == "no_account" and unpaid[missing_address].noticed
    assert unpaid["shinjuku-nobody"].reason == "not_enrolled"
    assert not unpaid["shinjuku-nobody"].noticed
    assert report.counts() == {"no_account": 1, "not_enrolled": 1, "refused": 0}
    # The notice, in the resident's portal, from the paying municipality.
    notices = c.portal.notices(login(c, missing_person))
    assert [n.kind for n in notices] == [NOTICE_KIND]
    assert notices[0].sender_id == CITY and "特別定額給付金" in notices[0].title
    assert "公金受取口座" in notices[0].body and "別のお受け取り方法" in notices[0].body
    # Those paid get none.
    assert c.portal.notices(login(c, people[0][0])) == []


def test_every_look_up_appears_in_each_residents_history(
    container: Container, payout: PayoutService, people: list[tuple[CardHolder, str]],
    outdir: Path,
) -> None:
    c = container
    payout.run(CITY, EMERGENCY, "特別定額給付金", [(a, 1000) for _, a in people], PAY_DAY,
               REQUESTER, outdir / "out.txt", chunk=3)
    c.network_log.integrate()
    for i, (person, _) in enumerate(people):
        history = [e.record for e in c.portal.history(login(c, person))
                   if e.record.item_code == PUBLIC_FUND_ACCOUNT_ITEM]
        assert len(history) == 1
        record = history[0]
        assert record.requester_id == CITY and record.provider_id == DIGITAL_AGENCY
        assert record.task_id == EMERGENCY and record.verified
        assert record.outcome is (Outcome.NOT_HELD if i == 2 else Outcome.PROVIDED)


def test_a_refused_run_or_bad_input_leaves_no_file_and_is_recorded_failed(
    container: Container, payout: PayoutService, people: list[tuple[CardHolder, str]],
    outdir: Path,
) -> None:
    c = container
    out = outdir / "out.txt"
    with pytest.raises(PayoutError):  # a mayor may not pay under the pension task
        payout.run(CITY, PENSION_TASK, "年金", [(people[0][1], 1000)], PAY_DAY, REQUESTER, out)
    with pytest.raises(PayoutError):  # the same recipient twice would be paid twice
        payout.run(CITY, EMERGENCY, "給付", [(people[0][1], 1000), (people[1][1], 5),
                                           (people[0][1], 1000)], PAY_DAY, REQUESTER, out,
                   chunk=1)
    with pytest.raises(PayoutError):
        payout.run(CITY, EMERGENCY, "給付", [(people[0][1], 0)], PAY_DAY, REQUESTER, out)
    assert list(outdir.iterdir()) == []  # no output, no partial file
    with c.databases.unit_of_work("accounts") as session:
        states = session.scalars(select(am.PayoutRun.state)).all()
    assert states == ["failed"] * 3


def test_a_batch_takes_one_token_per_recipient_and_an_empty_bucket_records_nothing(
    container: Container, payout: PayoutService, people: list[tuple[CardHolder, str]],
    outdir: Path,
) -> None:
    import time

    from mynumber.accounts.provision import TokenBuckets
    from mynumber.kernel.retry import InfrastructureUnavailable
    from mynumber.network import models as nm

    c = container
    c.accounts_provision.batch_buckets = TokenBuckets(0.001, 3, time.monotonic)
    waits: list[float] = []
    payout.sleep = waits.append
    with pytest.raises(InfrastructureUnavailable) as refused:
        payout.run(CITY, EMERGENCY, "給付", [(a, 1000) for _, a in people], PAY_DAY,
                   REQUESTER, outdir / "out.txt")
    assert refused.value.extra["reason"] == "provider_rejected"
    assert len(waits) == 2 and all(w > 0 for w in waits)  # asked again after Retry-After
    with c.databases.unit_of_work("network") as session:
        assert session.scalars(select(nm.Exchange)).all() == []  # nothing was looked up
    # Three tokens: a batch of three goes through, and takes them all.
    numbers = [a for _, a in people[:3]]
    assert all(r is not None for r in c.agencies.query_batch(
        CITY, numbers, EMERGENCY, DIGITAL_AGENCY, PUBLIC_FUND_ACCOUNT_ITEM))
    with pytest.raises(InfrastructureUnavailable):
        c.agencies.query_batch(CITY, numbers[:1], EMERGENCY, DIGITAL_AGENCY,
                               PUBLIC_FUND_ACCOUNT_ITEM)


def test_misses_in_a_batch_count_for_scanning(
    container: Container, payout: PayoutService, people: list[tuple[CardHolder, str]],
) -> None:
    c = container
    c.accounts_provision.miss_threshold = 0  # one miss is above it
    c.agencies.query_batch(CITY, [a for _, a in people], EMERGENCY, DIGITAL_AGENCY,
                           PUBLIC_FUND_ACCOUNT_ITEM)
    (alert,) = c.accounts_provision.scanning_alerts(CITY)
    assert alert.misses == 1


def test_when_nobody_has_an_account_no_file_is_written_but_everyone_is_noticed(
    container: Container, payout: PayoutService, people: list[tuple[CardHolder, str]],
    outdir: Path,
) -> None:
    missing_person, missing_address = people[2]
    report = payout.run(CITY, EMERGENCY, "給付", [(missing_address, 1000)], PAY_DAY, REQUESTER,
                        outdir / "out.txt")
    assert report.paid == 0 and report.file is None and list(outdir.iterdir()) == []
    assert report.noticed == 1 and report.unpaid[0].noticed
    assert [n.kind for n in container.portal.notices(login(container, missing_person))] == [
        NOTICE_KIND]


def test_the_cli_writes_the_file_and_the_report(
    container: Container, settings: Settings, people: list[tuple[CardHolder, str]],
    outdir: Path,
) -> None:
    for agency in (CITY, DIGITAL_AGENCY):
        container.agencies.ensure_registered(agency)
    recipients = outdir / "recipients.csv"
    recipients.write_text("address_number,amount\n" + "".join(
        f"{address},{1000 * (i + 1)}\n" for i, (_, address) in enumerate(people)),
        encoding="utf-8")
    out, report = outdir / "furikomi.txt", outdir / "unpaid.csv"
    result = runner.invoke(app, [
        "accounts", "payout", "--agency", CITY, "--task", EMERGENCY,
        "--recipients", str(recipients), "--out", str(out), "--transfer-date", "2026-07-10",
        "--benefit", "特別定額給付金", "--requester-code", "1310410001",
        "--requester-name", "ｼﾝｼﾞﾕｸｸ", "--bank-code", "8001", "--branch-code", "001",
        "--account-number", "0000001", "--report", str(report)], env=cli_env(settings))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["paid"], summary["total_yen"]) == (3, 1000 + 2000 + 4000)
    assert summary["unpaid"] == {"no_account": 1, "not_enrolled": 0, "refused": 0}
    read = read_zengin(out.read_bytes())
    assert read.kinds == "122289" and int(read.trailers[0]["total"]) == 7000
    assert summary["file_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert report.read_text(encoding="utf-8").splitlines() == [
        "address_number,amount,reason,noticed", f"{people[2][1]},3000,no_account,yes"]


def test_the_cli_names_a_header_field_it_cannot_write_and_leaves_no_file(
    container: Container, settings: Settings, people: list[tuple[CardHolder, str]],
    outdir: Path,
) -> None:
    for agency in (CITY, DIGITAL_AGENCY):
        container.agencies.ensure_registered(agency)
    recipients = outdir / "recipients.csv"
    recipients.write_text(f"address_number,amount\n{people[0][1]},1000\n", encoding="utf-8")
    out = outdir / "furikomi.txt"
    result = runner.invoke(app, [
        "accounts", "payout", "--agency", CITY, "--task", EMERGENCY,
        "--recipients", str(recipients), "--out", str(out), "--transfer-date", "2026-07-10",
        "--benefit", "特別定額給付金", "--requester-code", "1310410001",
        "--requester-name", "新宿区", "--bank-code", "8001", "--branch-code", "001",
        "--account-number", "0000001"], env=cli_env(settings))
    assert result.exit_code == 2, result.output
    assert "the transfer file cannot be written" in result.output
    assert "name" in result.output and "新宿区" not in result.output
    assert not out.exists()

"""`mynumber accounts payout`: a payout run (accounts/payout.py) from a CSV of recipients."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from mynumber.cli.common import container_from_env, fail


def _recipients(path: Path) -> Iterator[tuple[str, int]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"address_number", "amount"} <= set(
                reader.fieldnames):
            fail("--recipients: a CSV with the columns address_number,amount", code=2)
        for line, row in enumerate(reader, start=2):
            number = (row.get("address_number") or "").strip()
            amount = (row.get("amount") or "").strip()
            if not number or not amount.isdigit():
                fail(f"--recipients: line {line}: an address number and an amount in whole "
                     "yen are needed", code=2)
            yield number, int(amount)


def payout(
    agency: Annotated[str, typer.Option(help="the paying agency (e.g. municipality-131041)")],
    task: Annotated[str, typer.Option(help="the task it pays under, e.g. "
                                           "extra-public-fund-emergency-benefit")],
    recipients: Annotated[Path, typer.Option(help="CSV: address_number,amount (the agency's "
                                                  "宛名番号, whole yen)")],
    out: Annotated[Path, typer.Option(help="the 総合振込 file to write (appears only when "
                                           "complete)")],
    transfer_date: Annotated[str, typer.Option(help="振込指定日 (YYYY-MM-DD)")],
    benefit: Annotated[str, typer.Option(help="the benefit's name (in the notices)")],
    requester_code: Annotated[str, typer.Option(help="振込依頼人コード (from the bank)")],
    requester_name: Annotated[str, typer.Option(help="振込依頼人名 in half-width 全銀 kana")],
    bank_code: Annotated[str, typer.Option(help="the agency's bank (仕向銀行)")],
    branch_code: Annotated[str, typer.Option(help="the agency's branch (仕向支店)")],
    account_number: Annotated[str, typer.Option(help="the agency's account (7 digits)")],
    deposit_type: Annotated[str, typer.Option(help="ordinary or current")] = "current",
    report: Annotated[Path | None, typer.Option(
        help="write the recipients not paid (address_number,amount,reason,noticed) here")]
    = None,
    notify: Annotated[bool, typer.Option(help="send recipients without an account a notice "
                                              "through the portal")] = True,
    chunk: Annotated[int, typer.Option(help="recipients per batch look-up")] = 5_000,
) -> None:
    """Pay a benefit: resolve each recipient's 公金受取口座 through the network (each look-up in
    the resident's やりとり履歴), write the 全銀協 総合振込 file, report and notify those without
    an account. Prints the run's summary as JSON."""
    from mynumber.accounts.payout import PayoutService
    from mynumber.accounts.transfer_file import DepositType, InvalidTransfer, Requester

    try:
        day = dt.date.fromisoformat(transfer_date)
    except ValueError:
        fail("--transfer-date: write it as YYYY-MM-DD", code=2)
    kinds = {"ordinary": DepositType.ORDINARY, "current": DepositType.CURRENT}
    if deposit_type not in kinds:
        fail("--deposit-type: ordinary or current", code=2)
    container = container_from_env()
    directory = container.accounts.directory
    bank = directory.bank(bank_code, day)
    branch = directory.branch(bank_code, branch_code, day)
    if bank is None or branch is None:
        fail("--bank-code/--branch-code: no such bank branch on the transfer date", code=2)
    requester = Requester(code=requester_code, name=requester_name, bank_code=bank_code,
                          bank_name=bank.kana, branch_code=branch_code,
                          branch_name=branch.kana, deposit_type=kinds[deposit_type],
                          account_number=account_number)
    service = PayoutService(container.databases, container.agencies, container.portal,
                            lambda: container.accounts.directory,
                            agency_name=lambda a: container.network.agency(a).name)
    try:
        result = service.run(agency, task, benefit, _recipients(recipients), day, requester,
                             out, actor="cli", chunk=chunk, notify=notify)
    except InvalidTransfer as exc:
        # A header field (requester code or name, the agency's account) or a transfer that
        # cannot be written: named without its value; no file was left behind.
        fail(f"the transfer file cannot be written: {exc}", code=2)
    if report is not None:
        with report.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["address_number", "amount", "reason", "noticed"])
            for u in result.unpaid:
                writer.writerow([u.address_number, u.amount, u.reason,
                                 "yes" if u.noticed else "no"])
    print(json.dumps({
        "run_id": result.run_id, "agency": result.agency_id, "task": result.task_id,
        "recipients": result.recipients, "paid": result.paid, "total_yen": result.total_yen,
        "unpaid": result.counts(), "noticed": result.noticed, "groups": result.groups,
        "file": str(result.file) if result.file else None, "file_bytes": result.file_bytes,
        "file_sha256": result.file_sha256,
    }, ensure_ascii=False, indent=2))

"""`mynumber accounts …`: 公金受取口座 for operators and counter staff: a person's registration
and its history, the pension special case's daily finalisation, bank-merger migration and the
nightly audit. No 個人番号 is ever printed (the context holds none)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Annotated, Any

import typer

from mynumber.cli.common import CliGroup, console, container_from_env, fail

app = typer.Typer(cls=CliGroup, no_args_is_help=True,
                  help="公金受取口座: public-fund receiving accounts (registration, pension "
                       "special case, bank mergers, audit).")


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str, indent=2))


def _day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail("--today: write it as YYYY-MM-DD", code=2)


@app.command("show")
def show(
    resident_id: Annotated[int, typer.Option(help="the registry's resident id")],
    history: Annotated[bool, typer.Option(help="also print every change and deletion")] = False,
) -> None:
    """A person's registered account (staff use), with its history on request."""
    container = container_from_env()
    accounts = container.accounts
    registration = accounts.registration(resident_id)
    out: dict[str, Any] = {
        "resident_id": resident_id,
        "registration": dataclasses.asdict(registration) if registration else None,
    }
    if history:
        out["history"] = [dataclasses.asdict(h) for h in accounts.history(resident_id)]
    out["pension_proposals"] = [dataclasses.asdict(p) for p in accounts.proposals(resident_id)]
    _print(out)
    if registration is None and not history:
        raise typer.Exit(1)


@app.command("finalize-pensions")
def finalize_pensions(
    today: Annotated[str | None, typer.Option(help="the day to finalise for (YYYY-MM-DD); "
                                                   "default: today in Japan")] = None,
) -> None:
    """Register the pension accounts whose 45 days for a 不同意 have passed (from the 46th day; each
    once, even if two runs overlap); print who was registered and who was skipped, why."""
    container = container_from_env()
    day = _day(today) or container.accounts.today()
    result = container.accounts.finalize_pensions(day)
    _print({"on": day, "registered": result.registered,
            "skipped": [{"resident_id": r, "reason": why} for r, why in result.skipped]})


@app.command("apply-mergers")
def apply_mergers(
    today: Annotated[str | None, typer.Option(help="the day (YYYY-MM-DD); default: today")]
    = None,
) -> None:
    """Move registrations whose branch a bank merger superseded to the codes valid today
    (history kept; an accounts.registration.migrated event per move for the notice)."""
    container = container_from_env()
    day = _day(today) or container.accounts.today()
    report = container.accounts.apply_mergers(day)
    _print({"on": day, "moved": [dataclasses.asdict(m) for m in report.moved],
            "closed_without_successor": report.closed})


@app.command("audit")
def audit(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """The nightly audit: accounts registered to more than one person, and registrations
    whose holder name no longer matches the person's name. Exit status 1 if anything is
    listed."""
    container = container_from_env()
    report = container.accounts.audit_report()
    if as_json:
        _print(dataclasses.asdict(report))
    else:
        for shared in report.shared_accounts:
            console.print(f"shared account {shared.bank_code}-{shared.branch_code} "
                          f"{shared.account_number}: residents "
                          + ", ".join(str(r) for r in shared.resident_ids))
        for rid, reason in report.rechecks:
            console.print(f"recheck: resident {rid} ({reason})")
        if not report.shared_accounts and not report.rechecks:
            console.print("nothing to report")
    if report.shared_accounts or report.rechecks:
        raise typer.Exit(1)


@app.command("scanning")
def scanning(
    agency: Annotated[str | None, typer.Option(help="only this requesting agency's alerts")]
    = None,
) -> None:
    """Agencies flagged for scanning: bursts of public_fund_account look-ups for people with
    no registered account (more misses than the threshold within the window). Exit status 1
    if any is listed."""
    container = container_from_env()
    alerts = container.accounts_provision.scanning_alerts(agency)
    _print([dataclasses.asdict(a) for a in alerts])
    if alerts:
        raise typer.Exit(1)


# The bank route's clients (cli/accounts_bank.py).
from mynumber.cli import accounts_bank  # noqa: E402

app.add_typer(accounts_bank.app, name="bank-client")

# 預貯金口座付番 and 預金保険機構's look-ups (cli/accounts_deposit.py).
from mynumber.cli import accounts_deposit  # noqa: E402

app.add_typer(accounts_deposit.deposit, name="deposit")
app.add_typer(accounts_deposit.disaster, name="disaster")

# The payout run (cli/accounts_payout.py).
from mynumber.cli import accounts_payout  # noqa: E402

app.command("payout")(accounts_payout.payout)


@app.command("enrol-existing")
def enrol_existing() -> None:
    """Enrol with デジタル庁 every registration made before its `registered` event existed, so
    agencies' look-ups find it (idempotent: a person デジタル庁 knows already is looked up, not
    enrolled again). Prints the counts; registrants no longer residents are listed."""
    from mynumber.accounts.enrolment import enrol_existing as run

    container = container_from_env()
    report = run(container.accounts.databases, container.accounts_provision)
    _print({"registrations": report.registrations, "enrolled": report.enrolled,
            "passed_over": report.passed_over})

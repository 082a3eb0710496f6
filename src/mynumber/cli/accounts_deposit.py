"""`mynumber accounts deposit …` and `mynumber accounts disaster …`: 預貯金口座付番 and
預金保険機構's look-ups, for operators.

預金保険機構's clerk uses ``deposit heir-lookup`` on the host that runs the core (the way
デジタル庁's operators run `mynumber accounts …`): the host's access control is the clerk's
authentication, and ``--clerk`` names the clerk in the record. The answer goes to the heir
on paper and appears in the heir's portal; a refusal prints the same problem whatever the
deceased's state. No 個人番号 is printed (the context holds only sealed ones).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Annotated, Any

import typer

from mynumber.accounts.interfaces import HeirDocument, LookupRefused
from mynumber.cli.common import CliGroup, container_from_env, fail
from mynumber.errors import DomainError

deposit = typer.Typer(cls=CliGroup, no_args_is_help=True,
                      help="預貯金口座付番: consents, deliveries to banks, 預金保険機構's "
                           "inheritance look-ups.")
disaster = typer.Typer(cls=CliGroup, no_args_is_help=True,
                       help="災害救助法 declarations: where and when residents may ask "
                            "預金保険機構 for free.")


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str, indent=2))


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: write it as YYYY-MM-DD", code=2)


def _lookup(container: Any, lookup: Any) -> dict[str, Any]:
    accounts = container.accounts
    out = dataclasses.asdict(lookup)
    out["banks"] = [{"bank_code": c, "bank_name": getattr(
        accounts.directory.bank(c, accounts.today()), "name", "")} for c in lookup.bank_codes]
    return out


@deposit.command("list")
def list_requests(
    resident_id: Annotated[int, typer.Option(help="the registry's resident id")],
) -> None:
    """The banks a person asked to link their accounts at, and each delivery's state."""
    container = container_from_env()
    _print([dataclasses.asdict(r)
            for r in container.accounts_deposit.numbering_requests(resident_id)])


@deposit.command("seal-pending")
def seal_pending(
    limit: Annotated[int, typer.Option(help="at most this many deliveries")] = 1000,
) -> None:
    """Seal the deliveries still pending (the bank had no key yet, or the request was made on
    a portal-role host without numbering keys). Run it on the core."""
    container = container_from_env()
    _print({"sealed": container.accounts_deposit.seal_pending(limit)})


@deposit.command("heir-lookup")
def heir_lookup(
    deceased_id: Annotated[int, typer.Option(help="the deceased's resident id")],
    heir_id: Annotated[int, typer.Option(help="the heir's resident id")],
    clerk: Annotated[str, typer.Option(help="the 預金保険機構 clerk making the look-up")],
    document: Annotated[list[str] | None, typer.Option(
        help="KIND=REFERENCE, KIND death or heir_relation (both needed): the 機構's record "
             "of the document, e.g. heir_relation=KOSEKI-2025-0001")] = None,
) -> None:
    """相続時の照会: the banks holding a deceased person's numbered accounts, for an heir with
    the documents (fee 5,060 yen recorded). Without them: exit status 1 and the same refusal,
    whatever the deceased's state."""
    documents: list[HeirDocument] = []
    for item in document or []:
        kind, _, reference = item.partition("=")
        documents.append(HeirDocument(kind.strip(), reference))
    container = container_from_env()
    try:
        lookup = container.accounts_deposit.heir_lookup(
            deceased_id, heir_id, documents, actor=f"dic:{clerk.strip()[:60]}")
    except LookupRefused as exc:
        _print({"code": exc.code, "detail": exc.detail})
        raise typer.Exit(1) from None
    except DomainError as exc:
        fail(f"{exc.code}: {exc.detail}", code=2)
    _print(_lookup(container, lookup))


@deposit.command("lookups")
def lookups(
    resident_id: Annotated[int, typer.Option(help="the registry's resident id")],
) -> None:
    """Every 預金保険機構 look-up concerning a person (about them, or made by them as heir)."""
    container = container_from_env()
    _print([_lookup(container, x) for x in container.accounts_deposit.lookups_for(resident_id)])


@disaster.command("declare")
def declare(
    name: Annotated[str, typer.Option(help="the disaster, e.g. 令和7年台風第10号")],
    municipality: Annotated[list[str], typer.Option(
        help="a 6-digit 全国地方公共団体コード under 災害救助法 (repeat for each)")],
    starts_on: Annotated[str, typer.Option("--from", help="first day (YYYY-MM-DD)")],
    ends_on: Annotated[str, typer.Option("--to", help="last day (YYYY-MM-DD)")],
    operator: Annotated[str, typer.Option(help="who records the declaration")] = "operator",
) -> None:
    """Record a 災害救助法 declaration: its residents may ask for free within the period."""
    first, last = _date(starts_on, "--from"), _date(ends_on, "--to")
    container = container_from_env()
    try:
        made = container.accounts_deposit.declare_disaster(
            name, municipality, first, last, actor=f"operator:{operator.strip()[:60]}")
    except DomainError as exc:
        fail(f"{exc.code}: {exc.detail}", code=2)
    _print(dataclasses.asdict(made))


@disaster.command("list")
def list_declarations() -> None:
    """Every declaration, oldest first."""
    container = container_from_env()
    _print([dataclasses.asdict(d) for d in container.accounts_deposit.declarations()])


"""`mynumber juki …`: 住基ネット (本人確認情報): the permitted-use table, queries as a permitted
agency, a resident's 提供状況, and filling the copy from the registry."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer

from mynumber.cli.common import CliGroup, console, container_from_env, fail

app = typer.Typer(cls=CliGroup, no_args_is_help=True,
                  help="住基ネット: 本人確認情報 for permitted agencies (住基法 別表).")


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str, indent=2))


def _identity(result: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"query_id": result.query_id, "outcome": result.outcome.value}
    if result.identity is not None:
        out["identity"] = dataclasses.asdict(result.identity)
    return out


@app.command("uses")
def uses() -> None:
    """The permitted-use table: which agency kind may ask, for which 事務, on what basis."""
    from mynumber.juki.services import load_permitted_uses

    for use in load_permitted_uses():
        print(f"{use.use_id}\t{use.agency_kind}\t{use.purpose}\t({use.basis})")


@app.command("query")
def query(
    agency: Annotated[str, typer.Option(help="the asking agency's id, e.g. "
                                             "japan_pension_service")],
    use: Annotated[str, typer.Option(help="the use id (see `mynumber juki uses`)")],
    code: Annotated[str, typer.Option(help="住民票コード (11 digits)")],
) -> None:
    """(a) Ask as AGENCY for a person's 本人確認情報 by 住民票コード (recorded like any query)."""
    from mynumber.errors import DomainError
    from mynumber.juki.services import raise_for

    container = container_from_env()
    try:
        _print(_identity(raise_for(container.juki.by_code(agency, use, code))))
    except DomainError as exc:
        fail(f"{exc.code}: {exc.detail}")


@app.command("search")
def search(
    agency: Annotated[str, typer.Option(help="the asking agency's id")],
    use: Annotated[str, typer.Option(help="the use id (see `mynumber juki uses`)")],
    birth_date: Annotated[str, typer.Option(help="YYYY-MM-DD")] = "",
    sex: Annotated[str, typer.Option(help="male/female (男/女)")] = "",
    address: Annotated[str, typer.Option(help="住所, in full as on the 住民票")] = "",
    name: Annotated[str, typer.Option(help="氏名 (kanji)")] = "",
    kana: Annotated[str, typer.Option(help="氏名 (kana)")] = "",
) -> None:
    """(b) Search as AGENCY on all four basic items (a name, birth date, sex, address).
    Fewer items are refused; more than one match provides no one."""
    from mynumber.errors import DomainError
    from mynumber.juki.interfaces import SearchItems
    from mynumber.juki.services import raise_for

    container = container_from_env()
    items = SearchItems(name=name, name_kana=kana, birth_date=birth_date, sex=sex,
                        address=address)
    try:
        _print(_identity(raise_for(container.juki.search(agency, use, items))))
    except DomainError as exc:
        fail(f"{exc.code}: {exc.detail}")


@app.command("disclosure")
def disclosure(
    resident_id: Annotated[int, typer.Option(help="the registry's resident id")],
) -> None:
    """本人確認情報の提供状況 of one resident (what the portal shows them), newest first."""
    container = container_from_env()
    _print([{"at": e.at.isoformat(timespec="seconds"), "agency": e.agency_name,
             "use": e.use_id, "kind": e.kind.value, "outcome": e.outcome.value}
            for e in container.juki.disclosure(resident_id)])


@app.command("backfill")
def backfill_command() -> None:
    """Copy every registry resident into 住基ネット (once, for residents registered before the
    events existed); later events still win over what this writes."""
    from mynumber.juki.events import backfill

    container = container_from_env()
    written = backfill(container.juki, container.registry)
    console.print(f"copied {written} residents; 住基ネット holds {container.juki.copied()}")

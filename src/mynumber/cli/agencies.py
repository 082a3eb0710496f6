"""`mynumber agencies …`: an agency's intermediate server (中間サーバー) from its operator's
console: enrol a person (宛名番号 + 個人番号 -> 機関別符号) and register a 副本.

The 個人番号 is read from standard input (or a file), never from the command line (where
``ps`` and shell history would keep it), and is never printed: not on success, not in an error.
The agency's back-office systems use the HTTP API instead (``POST /agencies/v1/persons`` and
``/agencies/v1/copies`` on the intermediate server's mutual-TLS listener, signed with the
agency's key; see mynumber.agencies.api).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mynumber.cli.common import CliGroup, console, container_from_env, fail

app = typer.Typer(help="An agency's intermediate server: enrol persons, register 副本.",
                  no_args_is_help=True, cls=CliGroup)

AgencyArg = Annotated[str, typer.Argument(help="the agency, e.g. municipality-131041, mhlw")]
AddressArg = Annotated[str, typer.Argument(
    help="the agency's 宛名番号 for the person (1-40 of 0-9 A-Z a-z _ -)")]


def _read_number(number_file: Path | None) -> str:
    """The 個人番号 from ``number_file`` (``-`` or none: standard input, hidden when it is a
    terminal). Only the first line counts; spaces and hyphens are kept for the registry to
    judge."""
    if number_file is not None and str(number_file) != "-":
        try:
            text = number_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {number_file}: {getattr(exc, 'strerror', None) or 'not text'}",
                 code=2)
    elif sys.stdin.isatty():
        import getpass

        text = getpass.getpass("個人番号 (not shown): ")
    else:
        text = sys.stdin.readline()
    lines = text.strip().splitlines()
    number = lines[0].strip() if lines else ""
    if not number:
        fail("no individual number given: write it to standard input, or give --number-file",
             code=2)
    return number


@app.command("enrol")
def enrol(
    agency_id: AgencyArg,
    address_number: AddressArg,
    number_file: Annotated[Path | None, typer.Option(
        "--number-file", help="read the 個人番号 from this file (first line) instead of "
        "standard input; never give the number on the command line")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    print_code: Annotated[bool, typer.Option(
        "--print-code", help="also print the agency's 機関別符号 for the person (for the "
        "agency's own system that signs its queries; the code is the agency's secret)")]
    = False,
) -> None:
    """符号取得: enrol a person the agency lawfully holds the 個人番号 of, under its
    宛名番号. The number (from standard input or --number-file) goes to the registry for a
    one-time 取得番号 and is kept and printed nowhere. Idempotent per address number."""
    from mynumber.agencies.interfaces import PersonNotEnrolled
    from mynumber.errors import DomainError

    number = _read_number(number_file)
    container = container_from_env()
    try:
        try:
            code = container.agencies.agency_code(agency_id, address_number)
            already = True
        except PersonNotEnrolled:
            already = False
        if not already:
            code = container.agencies.enrol_person(agency_id, address_number, number)
    except DomainError as exc:
        fail(exc.detail + (f" [{exc.code}]" if exc.code else ""))
    finally:
        del number
        container.close()
    if as_json:
        answer: dict[str, object] = {"agency_id": agency_id,
                                     "address_number": address_number,
                                     "already_enrolled": already}
        if print_code:
            answer["agency_code"] = code
        print(json.dumps(answer, ensure_ascii=False))
        return
    if print_code:
        console.print(f"agency code: {code}")
    if already:
        console.print(f"{agency_id}: {address_number} was already enrolled (nothing changed)")
    else:
        console.print(f"{agency_id}: enrolled {address_number} (agency code obtained; the "
                      "individual number was not kept)")


def _read_payload(path: Path) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}",
             code=2)
    try:
        payload = json.loads(text)
    except ValueError as exc:
        # The message names the position only, never the content.
        fail(f"{path} is not JSON (line {getattr(exc, 'lineno', '?')}, column "
             f"{getattr(exc, 'colno', '?')})", code=2)
    if not isinstance(payload, dict):
        fail(f"{path} must hold one JSON object (the 副本's fields)", code=2)
    return payload


@app.command("put-copy")
def put_copy(
    agency_id: AgencyArg,
    address_number: AddressArg,
    item_code: Annotated[str, typer.Argument(
        help="the legal table's item, e.g. local_tax, resident_record")],
    json_file: Annotated[Path, typer.Option(
        "--json", help="the 副本 as one JSON object (a file, or - for standard input)")],
) -> None:
    """副本の登録: register or replace the copy of ITEM for the person enrolled under
    ADDRESS_NUMBER. A copy carrying a 個人番号 anywhere is refused and nothing is stored."""
    from mynumber.agencies.interfaces import InvalidAgencyInput
    from mynumber.errors import DomainError

    payload = _read_payload(json_file)
    container = container_from_env()
    try:
        has = getattr(container, "has", None)
        if has is None or has("network"):  # the legal table, where this process has it
            known = {i.code for i in container.network.legal_table().items()}
            if item_code not in known:
                raise InvalidAgencyInput(
                    f"item_code: {item_code[:64]!r} is not an item of the legal table "
                    "(別表第二)", field="item_code")
        record = container.agencies.put_copy(agency_id, address_number, item_code, payload)
    except DomainError as exc:
        fail(exc.detail + (f" [{exc.code}]" if exc.code else ""))
    finally:
        container.close()
    console.print(f"{agency_id}: 副本 {record.item_code} of {record.address_number} stored, "
                  f"version {record.version}")


@app.command("load-copies")
def load_copies(agency_id: AgencyArg) -> None:
    """初期移行: write the current 副本 (住民票関係情報) of every record a mayor holds, its
    residents and its 除票, to its intermediate server. Run it once the mayor's public keys are
    registered (`mynumber network register-keys`): until then the event subscriber cannot
    encrypt to it and passes it over without holding the other municipalities back.
    Idempotent. On the core's host (it reads the registry)."""
    from mynumber.agencies.events import SUBSCRIBER, MunicipalCopies
    from mynumber.errors import DomainError

    container = container_from_env()
    try:
        if not container.has("events"):
            fail("the registry's event subscribers run on the core: run this there", code=2)
        handler = next((s.handle for s in container.events.subscribers
                        if s.name == SUBSCRIBER), None)
        if not isinstance(handler, MunicipalCopies):
            fail(f"no {SUBSCRIBER} subscriber in this process", code=2)
        if not container.network.agency(agency_id).kind.endswith("_mayor"):
            fail(f"{agency_id} is not a municipality's mayor: only mayors hold 住民票関係情報",
                 code=2)
        written = handler.load(agency_id)
    except DomainError as exc:
        fail(exc.detail + (f" [{exc.code}]" if exc.code else ""))
    finally:
        container.close()
    console.print(f"{agency_id}: 副本 of {written:,} records written")


@app.command("encrypt-copies")
def encrypt_copies(
    agency: Annotated[list[str] | None, typer.Option(
        "--agency", help="only this agency (repeatable); default: every agency with "
        "plaintext copies")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="change nothing: exit 1 when any copy is still in plaintext (e.g. "
        "before starting an intermediate server)")] = False,
) -> None:
    """副本の暗号化: encrypt every 副本 still stored in plaintext (written before the agencies
    migration 0002) under its agency's key. Run once after `mynumber db upgrade`; resumable
    and idempotent. Needs each agency's registered public key only (not its private key), so
    it runs on the core's host. Until a copy is encrypted its intermediate server does not
    provide it."""
    from mynumber.errors import DomainError

    container = container_from_env()
    try:
        service = container.agencies
        if check:
            remaining = service.plaintext_copies()
            if agency:
                remaining = {a: n for a, n in remaining.items() if a in agency}
            if remaining:
                listed = ", ".join(f"{a}: {n:,}" for a, n in remaining.items())
                fail(f"copies still in plaintext ({listed}): run `mynumber agencies "
                     "encrypt-copies`")
            console.print("every copy is encrypted")
            return
        report = service.encrypt_plaintext_copies(agency or None)
    except DomainError as exc:
        fail(exc.detail + (f" [{exc.code}]" if exc.code else ""))
    finally:
        container.close()
    for agency_id, count in report.encrypted.items():
        console.print(f"{agency_id}: {count:,} copies encrypted")
    if report.discarded:
        console.print(f"{report.discarded:,} plaintext payloads beside an encrypted copy "
                      "discarded (the encrypted copy stands)")
    if not report.encrypted and not report.discarded:
        console.print("nothing to encrypt: every copy is encrypted")
    if report.skipped:
        for agency_id, reason in report.skipped.items():
            console.print(f"{agency_id}: skipped: {reason}")
        fail(f"{len(report.skipped)} agencies skipped: register their public keys "
             "(`mynumber network register-keys`) and run this again")

"""`mynumber network …`: the information provision network's directory of agencies (機関)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mynumber.cli.common import CliGroup, console, container_from_env, fail, production_mode

if TYPE_CHECKING:
    from mynumber.network.interfaces import AgencyRecord

app = typer.Typer(help="The information provision network: its directory of agencies.",
                  no_args_is_help=True, cls=CliGroup)


def _as_dict(a: AgencyRecord) -> dict[str, object]:
    return {
        "agency_id": a.agency_id, "name": a.name, "kind": a.kind, "status": a.status.value,
        "municipality_code": a.municipality_code,
        "signing_key": a.signing_key.hex() if a.signing_key else None,
        "encryption_key": a.encryption_key.hex() if a.encryption_key else None,
        "endpoint": a.endpoint,
    }


def _line(a: AgencyRecord) -> str:
    keys = "keys" if a.signing_key and a.encryption_key else "no-keys"
    return "\t".join([a.agency_id, a.kind, a.status.value, keys, a.endpoint or "in-process",
                      a.name])


def _operator() -> str:
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment
        return "operator"


@app.command("sync")
def sync() -> None:
    """Add every agency the legal table's data and the registry's municipalities define
    (`mynumber db upgrade` does this too). Existing agencies are left as they are."""
    from mynumber.app import sync_directory

    added = sync_directory(container_from_env())
    console.print(f"agencies added to the network directory: {added}")


@app.command("agencies")
def agencies(
    kind: Annotated[str | None, typer.Option(help="only agencies of this kind, e.g. "
                                             "special_ward_mayor")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """List the directory: id, kind, status, whether keys are registered, endpoint, name."""
    container = container_from_env()
    found = container.network.agencies(kind)
    if kind is not None and not found:
        known = container.network.legal_table().agency_kinds()
        if kind not in known:
            fail(f"unknown agency kind {kind!r}")
    for agency in found:
        if as_json:
            print(json.dumps(_as_dict(agency), ensure_ascii=False))
        else:
            print(_line(agency))


@app.command("set-endpoint")
def set_endpoint(
    agency_id: Annotated[str, typer.Argument(help="e.g. municipality-131041")],
    url: Annotated[str | None, typer.Argument(
        help="the agency's intermediate server, e.g. https://chukan.example.lg.jp")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="route to the in-process intermediate "
                                        "server again")] = False,
) -> None:
    """Where the core reaches the agency's intermediate server (over mutual TLS with the
    certificate in MYNUMBER_TLS_DIR). Running cores pick the change up within seconds."""
    from mynumber.errors import DomainError

    if (url is None) == (not clear):
        fail("give either a URL or --clear", code=2)
    container = container_from_env()
    try:
        record = container.network.set_agency_endpoint(agency_id, None if clear else url)
    except DomainError as exc:
        fail(exc.detail)
    console.print(f"{record.agency_id}: {record.endpoint or 'in-process'}")


@app.command("set-status")
def set_status(
    agency_id: Annotated[str, typer.Argument()],
    status: Annotated[str, typer.Argument(help="active | suspended")],
    reason: Annotated[str, typer.Option(help="why (recorded in the audit trail)")],
) -> None:
    """Suspend an agency (its queries, and queries to it, are refused and recorded) or
    reactivate it."""
    from mynumber.errors import DomainError
    from mynumber.network.interfaces import AgencyStatus

    try:
        wanted = AgencyStatus(status)
    except ValueError:
        fail("status must be active or suspended", code=2)
    container = container_from_env()
    try:
        record = container.network.set_agency_status(_operator(), agency_id, wanted, reason)
    except DomainError as exc:
        fail(exc.detail)
    console.print(f"{record.agency_id}: {record.status.value}")


@app.command("register-keys")
def register_keys(
    agency_id: Annotated[str, typer.Argument(help="e.g. mhlw, municipality-131041")],
    public_keys: Annotated[Path | None, typer.Option(
        "--public-keys", help="the agency's public keys, as written on its intermediate "
        "server by `mynumber keys agency-public ID --out FILE` (required in production)")]
    = None,
) -> None:
    """Register the agency's public keys (Ed25519 signing, X25519 encryption) with the core.

    With --public-keys FILE: the keys the agency exported on its own server (production: the
    core never holds an agency's private keys). Without it (embedded mode only): the keys of
    the local keyring (derived development keys). Compare the printed keys with the ones the
    agency's operator reads from the same file before accepting the registration."""
    from mynumber.agencies.keyring import AgencyKeyError, read_agency_public_keys
    from mynumber.errors import DomainError
    from mynumber.keys import KeyError_

    keys: tuple[bytes, bytes] | None = None
    if public_keys is not None:
        try:  # checked before any database is opened
            keys = read_agency_public_keys(public_keys, agency_id)
        except AgencyKeyError as exc:
            fail(str(exc), code=2)
    elif production_mode():
        fail("production mode registers an agency's keys only from the file the agency "
             "exported: run `mynumber keys agency-public ID --out FILE` on the agency's "
             "intermediate server, bring FILE here and give --public-keys FILE", code=2)
    container = container_from_env()
    try:
        before = container.network.agency(agency_id)
        if keys is None:
            record = container.agencies.ensure_registered(agency_id)
        else:
            record = container.network.register_agency_keys(agency_id, *keys)
    except (DomainError, KeyError_) as exc:
        fail(exc.detail if isinstance(exc, DomainError) else str(exc))
    finally:
        container.close()
    assert record.signing_key is not None and record.encryption_key is not None
    changed = (before.signing_key, before.encryption_key) != (record.signing_key,
                                                               record.encryption_key)
    state = ("registered" if before.signing_key is None
             else "replaced the previous keys" if changed else "already registered")
    console.print(f"{record.agency_id}: {state}; signing key {record.signing_key.hex()}, "
                  f"encryption key {record.encryption_key.hex()}")


@app.command("failures")
def failures(
    hours: Annotated[int, typer.Option(min=1, max=24 * 90, help="how far back, in hours")] = 24,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Infrastructure failures (a database or an intermediate server unavailable) per hour,
    operation and reason: what the core answered 503 for. They are not refusals and are not
    in any resident's log (docs/deployment.md, "Infrastructure failures")."""
    import datetime as dt

    container = container_from_env()
    try:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
        rows = container.network.infrastructure_failures(since)
    finally:
        container.close()
    for row in rows:
        if as_json:
            print(json.dumps({"hour": row.hour.isoformat(), "operation": str(row.operation),
                              "reason": str(row.reason), "count": row.count}))
        else:
            print("\t".join([row.hour.isoformat(timespec="minutes"), str(row.operation),
                             str(row.reason), str(row.count)]))
    if not as_json:
        console.print(f"{sum(r.count for r in rows)} failure(s) in the last {hours} h")

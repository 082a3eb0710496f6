"""Top-level Typer app and the small command groups."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from mynumber.cli import api_clients as api_clients_cli
from mynumber.cli import bench as bench_cli
from mynumber.cli import card as card_cli
from mynumber.cli import log as log_cli
from mynumber.cli import network as network_cli
from mynumber.cli import oidc as oidc_cli
from mynumber.cli import portal as portal_cli
from mynumber.cli import registry as registry_cli
from mynumber.cli import seed as seed_cli
from mynumber.cli import staff as staff_cli
from mynumber.cli import tls as tls_cli
from mynumber.cli.common import console, container_from_env, fail
from mynumber.codes import corporate_number, individual_number, local_government_code, resident_code
from mynumber.codes.exceptions import ValidationError

app = typer.Typer(help="mynumber: Japan's individual number system, runnable.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
number_app = typer.Typer(help="Check numbers and codes.", no_args_is_help=True)
keys_app = typer.Typer(help="Key material.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(number_app, name="number")
app.add_typer(registry_cli.app, name="registry")
app.add_typer(card_cli.app, name="card")
app.add_typer(log_cli.app, name="log")
app.add_typer(network_cli.app, name="network")
app.add_typer(portal_cli.app, name="portal")
app.add_typer(api_clients_cli.app, name="api-clients")
app.add_typer(oidc_cli.app, name="oidc")
app.add_typer(tls_cli.app, name="tls")
app.add_typer(staff_cli.app, name="staff")
app.add_typer(keys_app, name="keys")
app.command(name="bench")(bench_cli.bench)
app.command(name="seed")(seed_cli.seed)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    role: Annotated[str, typer.Option(
        help="all (everything in one process) | core (the network core, registry, JPKI, "
        "cards) | intermediate (an intermediate server only)")] = "all",
    tls_dir: Annotated[Path | None, typer.Option(
        help="serve HTTPS with DIR/cert.pem and DIR/key.pem, requiring a client certificate "
        "from DIR/ca.pem (mutual TLS; see `mynumber tls`)")] = None,
) -> None:
    """Serve the web UI and API (run `mynumber db upgrade` first)."""
    import uvicorn

    from mynumber import logs
    from mynumber.app import create_app
    from mynumber.web.assemble import ROLES

    if role not in ROLES:
        fail(f"unknown role {role!r}; choose from {', '.join(ROLES)}", code=2)
    tls: dict[str, Any] = {}
    if tls_dir is not None:
        from mynumber.tls import TlsError, uvicorn_options

        try:
            tls = uvicorn_options(tls_dir)
        except TlsError as exc:
            fail(str(exc))
    container = container_from_env()
    logs.configure(container.settings.log_level)
    application = create_app(container=container, role=role)
    scheme = "https" if tls else "http"
    what = "" if role == "all" else f" the {role} role,"
    console.print(f"serving{what} on {scheme}://{host}:{port} "
                  f"(public URL {container.settings.public_url})"
                  + (" with mutual TLS" if tls else ""))
    uvicorn.run(application, host=host, port=port, log_config=None, access_log=True, **tls)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate every context's database, and load reference data."""
    from mynumber import migrations
    from mynumber.registry.services import load_municipalities

    container = container_from_env()
    migrations.upgrade(container.databases)
    from mynumber.app import sync_directory

    loaded = load_municipalities(container.databases)
    agencies = sync_directory(container)
    where = "PostgreSQL" if container.settings.is_postgres else str(container.settings.data_dir)
    console.print(f"databases up to date ({where}); municipalities loaded: {loaded}; "
                  f"agencies added to the network directory: {agencies}")


@db_app.command("check")
def db_check() -> None:
    """Fail if the models and the migrated database disagree."""
    from mynumber import migrations
    from mynumber.db import CONTEXTS

    container = container_from_env()
    problems = {ctx: migrations.differences(container.databases, ctx) for ctx in CONTEXTS}
    bad = {ctx: diff for ctx, diff in problems.items() if diff}
    if bad:
        for ctx, diff in bad.items():
            console.print(f"[red]{ctx}[/red]: {diff}")
        raise typer.Exit(1)
    console.print("models and migrations agree")


CHECKERS = {
    "individual": individual_number,
    "resident": resident_code,
    "corporate": corporate_number,
    "municipality": local_government_code,
}


@number_app.command("check")
def number_check(
    value: Annotated[str, typer.Argument(help="the number or code; use - to read standard input")],
    kind: Annotated[str, typer.Option(help="individual | resident | corporate | municipality")]
    = "individual",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Validate a number or code (the value itself is never printed back)."""
    module = CHECKERS.get(kind)
    if module is None:
        fail(f"unknown kind {kind!r}; choose from {', '.join(CHECKERS)}", code=2)
    if value == "-":
        value = sys.stdin.readline().strip()
    try:
        module.validate(value)
        result = {"kind": kind, "valid": True}
    except ValidationError as exc:
        result = {"kind": kind, "valid": False, "code": exc.code, "reason": str(exc)}
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    elif result["valid"]:
        console.print(f"[green]valid[/green] {kind}")
    else:
        Console(stderr=True).print(f"[red]invalid[/red] {kind}: {result['reason']}")
    if not result["valid"]:
        raise typer.Exit(1)


@keys_app.command("init")
def keys_init(
    production: Annotated[bool, typer.Option(help="mark the keys as production keys")] = False,
) -> None:
    """Create any missing symmetric keys in MYNUMBER_KEY_DIR (or DATA_DIR/keys), and the
    agency-code key on the PKCS#11 token when one is configured. Production: run it first,
    then `mynumber db upgrade`, then `mynumber keys init-ca`."""
    import secrets

    from mynumber.app import CODE_KEY, NETWORK_KEYS, SERVICE_KEYS
    from mynumber.keys import FileKeyProvider, KeyError_, Pkcs11BlockCipher
    from mynumber.portal.oauth import PAIRWISE_KEY, SIGNING_KEY_FILE, provision_signing_key
    from mynumber.registry.numbering import INDEX_KEY, NUMBERING_KEY, POOL_KEY
    from mynumber.settings import Mode, get_settings

    settings = get_settings()
    if settings.mode is Mode.PRODUCTION and not production:
        fail("MYNUMBER_MODE is production: pass --production (development keys would be refused)")
    # The explicit provisioning step: keys are written here, never on first use in production.
    keys = FileKeyProvider(settings.keys_path, create_missing=False,
                           development=not production)
    on_token = bool(settings.pkcs11_library and settings.pkcs11_token and settings.pkcs11_pin)
    purposes = (POOL_KEY, NUMBERING_KEY, INDEX_KEY, *NETWORK_KEYS, PAIRWISE_KEY, *SERVICE_KEYS)
    try:
        for purpose in purposes:
            if on_token and purpose == CODE_KEY:
                continue  # the agency-code key lives on the token (below), not in a file
            if not keys.has_key(purpose):
                keys.write_key(purpose, secrets.token_bytes(32), development=not production)
                console.print(f"created {purpose}")
        if on_token:
            assert settings.pkcs11_library and settings.pkcs11_token and settings.pkcs11_pin
            cipher = Pkcs11BlockCipher(settings.pkcs11_library, settings.pkcs11_token,
                                       settings.pkcs11_pin.get_secret_value(),
                                       development=not production)
            with cipher.provisioning():
                cipher.ensure_key()
            console.print(f"agency-code key {Pkcs11BlockCipher.LABEL!r} present on the token")
    except KeyError_ as exc:
        fail(str(exc))
    if not (settings.keys_path / SIGNING_KEY_FILE).exists():
        provision_signing_key(settings.keys_path, development=not production)
        console.print(f"created {SIGNING_KEY_FILE}")
    if production:
        console.print("next: `mynumber db upgrade`, then `mynumber keys init-ca` (JPKI CA keys)")


@keys_app.command("init-ca")
def keys_init_ca() -> None:
    """Create the JPKI CA hierarchy and its keys (software or on the PKCS#11 token).

    Production never creates CA keys on first use: run this once after `mynumber db upgrade`.
    The embedded mode creates them on first use; this command is harmless there."""
    from sqlalchemy.exc import SQLAlchemyError

    from mynumber.keys import KeyError_

    container = container_from_env()
    try:
        with container.jpki.keys.provisioning():
            authorities = container.jpki.hierarchy()
    except KeyError_ as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"the JPKI database is not ready ({type(exc).__name__}): "
             "run `mynumber db upgrade` first")
    finally:
        container.close()
    for label in sorted(authorities):
        subject = authorities[label].certificate.subject.rfc4514_string()
        console.print(f"{label}: {subject}")


@keys_app.command("agency")
def keys_agency(agency_id: Annotated[str, typer.Argument(help="the agency's id")]) -> None:
    """Create an agency's own production keys (KEY_DIR/agencies/<id>.json, 0600), on the
    agency's intermediate server; then register them with `mynumber network register-keys`."""
    from mynumber.agencies.keyring import AgencyKeyError, provision_agency_keys
    from mynumber.settings import get_settings

    try:
        path = provision_agency_keys(get_settings().keys_path / "agencies", agency_id)
    except AgencyKeyError as exc:
        fail(str(exc))
    console.print(f"created {path}")

"""`mynumber keys`: key material."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mynumber.cli.common import console, container_from_env, fail

app = typer.Typer(help="Key material.", no_args_is_help=True)


ROLE_HELP = "all | core | intermediate | portal: the keys this host's role needs"


@app.command("init")
def keys_init(
    production: Annotated[bool, typer.Option(help="mark the keys as production keys")] = False,
    role: Annotated[str, typer.Option(help=ROLE_HELP)] = "all",
) -> None:
    """Create any missing keys the role needs: symmetric keys in MYNUMBER_KEY_DIR (or
    DATA_DIR/keys), the agency-code key on the PKCS#11 token when one is configured, the OIDC
    signing key and the portal's own agency keys. Production: run it first, then
    `mynumber db upgrade`, then `mynumber keys init-ca`. The intermediate role has no keys of
    its own here: `mynumber keys agency ID` and the core's public key file."""
    import secrets

    from mynumber.agencies.keyring import AgencyKeyError, provision_agency_keys
    from mynumber.app import CODE_KEY, ROLE_SYMMETRIC_KEYS, ROLES
    from mynumber.keys import FileKeyProvider, KeyError_, Pkcs11BlockCipher
    from mynumber.portal.interfaces import PORTAL_AGENCY
    from mynumber.portal.oauth import SIGNING_KEY_FILE, SIGNING_META_FILE, provision_signing_key
    from mynumber.settings import Mode, get_settings

    settings = get_settings()
    if role not in ROLES:
        fail(f"unknown role {role!r}; choose from {', '.join(ROLES)}", code=2)
    if settings.mode is Mode.PRODUCTION and not production:
        fail("MYNUMBER_MODE is production: pass --production (development keys would be refused)")
    if role == "intermediate":
        fail("the intermediate role holds only its agencies' keys (`mynumber keys agency ID`) "
             "and the core's public key (`mynumber keys export-core-public --out FILE` on the "
             "core, then MYNUMBER_CORE_PUBLIC_KEY_FILE)")
    # The explicit provisioning step: keys are written here, never on first use in production.
    keys = FileKeyProvider(settings.keys_path, create_missing=False,
                           development=not production)
    on_token = bool(settings.pkcs11_library)
    if on_token and not (settings.pkcs11_token and settings.pkcs11_pin):
        fail("MYNUMBER_PKCS11_LIBRARY needs MYNUMBER_PKCS11_TOKEN and MYNUMBER_PKCS11_PIN")
    try:
        for purpose in ROLE_SYMMETRIC_KEYS[role]:
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
    if not ((settings.keys_path / SIGNING_META_FILE).exists()
            or (settings.keys_path / SIGNING_KEY_FILE).exists()):
        provision_signing_key(settings.keys_path, development=not production)
        console.print(f"created {SIGNING_KEY_FILE}")
    if production and not (settings.keys_path / "agencies" / f"{PORTAL_AGENCY}.json").exists():
        try:
            provision_agency_keys(settings.keys_path / "agencies", PORTAL_AGENCY)
        except AgencyKeyError as exc:
            fail(str(exc))
        console.print(f"created the portal's agency keys ({PORTAL_AGENCY}); register them on "
                      f"the core: `mynumber network register-keys {PORTAL_AGENCY}`")
    if production:
        console.print("next: `mynumber db upgrade`, then `mynumber keys init-ca` (JPKI CA keys)")


@app.command("init-ca")
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


@app.command("agency")
def keys_agency(agency_id: Annotated[str, typer.Argument(help="the agency's id")]) -> None:
    """Create an agency's own production keys (KEY_DIR/agencies/<id>.json, 0600), on the
    agency's intermediate server; then register them with `mynumber network register-keys`."""
    from mynumber.agencies.keyring import AgencyKeyError, provision_agency_keys
    from mynumber.keys import ensure_private_dir
    from mynumber.settings import get_settings

    key_dir = get_settings().keys_path
    try:
        ensure_private_dir(key_dir)  # KEY_DIR itself 0700 too (start-up refuses it otherwise)
        path = provision_agency_keys(key_dir / "agencies", agency_id)
    except AgencyKeyError as exc:
        fail(str(exc))
    console.print(f"created {path}")


@app.command("agency-public")
def keys_agency_public(
    agency_id: Annotated[str, typer.Argument(help="the agency's id")],
    out: Annotated[Path, typer.Option(help="where to write the public keys (JSON)")],
) -> None:
    """Write an agency's PUBLIC keys (JSON: raw hex and PEM) for the core's operator, who
    registers them with `mynumber network register-keys ID --public-keys FILE`. Run on the
    agency's intermediate server; the private keys never leave it."""
    import json

    from mynumber.agencies.keyring import (
        DerivedKeyring,
        FileKeyring,
        check_agency_id,
        public_keys_document,
    )
    from mynumber.app import ConfigurationError, build_keys
    from mynumber.keys import KeyError_
    from mynumber.settings import Mode, get_settings

    settings = get_settings()
    try:
        check_agency_id(agency_id)
        if settings.mode is Mode.EMBEDDED:
            keys = DerivedKeyring.from_provider(build_keys(settings), development=True)
            agency = keys.keys(agency_id)
        else:
            agency = FileKeyring(settings.keys_path / "agencies").keys(agency_id)
    except (KeyError_, ConfigurationError) as exc:
        fail(str(exc))
    body = json.dumps(public_keys_document(agency), indent=1) + "\n"
    try:
        out.write_text(body)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    console.print(f"wrote the public keys of {agency_id} to {out}; on the core: "
                  f"`mynumber network register-keys {agency_id} --public-keys {out.name}`")


@app.command("export-core-public")
def keys_export_core_public(
    out: Annotated[Path, typer.Option(help="where to write the PEM")],
) -> None:
    """Write the network core's Ed25519 public signing key (PEM). Copy it to each
    intermediate server and point MYNUMBER_CORE_PUBLIC_KEY_FILE at it: that is how an
    intermediate server checks a routed query came from the core."""
    from mynumber.app import ConfigurationError, build_keys, core_public_key_pem
    from mynumber.keys import KeyError_
    from mynumber.settings import get_settings

    try:
        pem = core_public_key_pem(build_keys(get_settings()))
    except (KeyError_, ConfigurationError) as exc:
        fail(str(exc))
    try:
        out.write_bytes(pem)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    console.print(f"wrote the core's public signing key to {out}")


@app.command("check")
def keys_check(
    role: Annotated[str, typer.Option(help=ROLE_HELP)] = "all",
) -> None:
    """Run the start-up key checks of ROLE and print each key, where it lives (file or
    token label) and OK or its problem with the command creating it. Exit 1 on a problem."""
    from mynumber.app import (
        ROLES,
        ConfigurationError,
        build_container,
        check_ca,
        key_inventory,
    )
    from mynumber.settings import Mode, get_settings

    settings = get_settings()
    if role not in ROLES:
        fail(f"unknown role {role!r}; choose from {', '.join(ROLES)}", code=2)
    if settings.mode is Mode.EMBEDDED:
        console.print("embedded mode: development keys are created on first use; nothing to "
                      "check (MYNUMBER_MODE=production checks every key)")
        return
    statuses = key_inventory(settings, role)
    ca_checked = False
    if role != "intermediate" and all(s.ok for s in statuses):
        try:
            container = build_container(settings, role)
        except ConfigurationError as exc:
            fail(str(exc))
        try:
            statuses = [s for s in statuses if not s.key.startswith("JPKI CA keys")]
            statuses += check_ca(container)
            ca_checked = True
        finally:
            container.close()
    from rich.markup import escape

    for status in statuses:
        mark = "[green]OK[/green]" if status.ok else "[red]problem[/red]"
        text = f"{status.key}: {status.where}"
        if not status.ok:
            text += f"\n    {status.problem}\n    create: `{status.command}`"
        console.print(f"{mark} {escape(text)}", soft_wrap=True, highlight=False)
    if role != "intermediate" and not ca_checked:
        console.print("JPKI CA: not checked (fix the problems above first)")
    if not all(s.ok for s in statuses):
        raise typer.Exit(1)

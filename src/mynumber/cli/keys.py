"""`mynumber keys`: key material."""

from __future__ import annotations

from typing import Annotated

import typer

from mynumber.cli.common import console, container_from_env, fail

app = typer.Typer(help="Key material.", no_args_is_help=True)


@app.command("init")
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
    from mynumber.settings import get_settings

    try:
        path = provision_agency_keys(get_settings().keys_path / "agencies", agency_id)
    except AgencyKeyError as exc:
        fail(str(exc))
    console.print(f"created {path}")

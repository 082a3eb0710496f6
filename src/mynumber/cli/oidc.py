"""`mynumber oidc …`: the self-information API's OpenID Provider keys."""

from __future__ import annotations

from typing import Annotated

import typer

from mynumber.cli.common import console, fail

app = typer.Typer(help="自己情報取得API (OpenID Provider): ID token signing keys.",
                  no_args_is_help=True)


@app.command("rotate-keys")
def rotate_keys(production: Annotated[bool, typer.Option(
        help="mark a first key as a production key (required in production mode)")] = False,
) -> None:
    """Make a new RS256 key current (new kid). The previous key stays in the JWKS until every
    ID token it signed has expired, then a later rotation drops it. Without any key yet,
    this creates the first one (production mode never creates one otherwise)."""
    from mynumber.keys import KeyError_
    from mynumber.portal.oauth import rotate_signing_keys
    from mynumber.settings import Mode, get_settings

    settings = get_settings()
    if settings.mode is Mode.PRODUCTION and not production:
        fail("MYNUMBER_MODE is production: pass --production (development keys would be refused)")
    try:
        rotation = rotate_signing_keys(settings.keys_path, development=not production)
    except KeyError_ as exc:
        fail(str(exc))
    console.print(f"current key: {rotation.current}")
    if rotation.retired:
        console.print(f"previous key {rotation.retired} stays published until its ID tokens "
                      "have expired")
    for kid in rotation.dropped:
        console.print(f"dropped key {kid} (every ID token it signed has expired)")

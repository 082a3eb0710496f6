"""`mynumber accounts bank-client …`: the bank route's clients (a bank's counter or app).

``register`` prints the client's secret once (its counter staff sign in on /bank with the
client id and it); ``list``, ``suspend`` and ``activate`` administer them; ``keygen`` (a demo
tool, refused in production: a real bank makes its keys in its own HSM) writes an Ed25519
signing key pair and an X25519 encryption key pair as PEM files.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from mynumber.accounts.interfaces import BankClientStatus
from mynumber.cli.common import CliGroup, container_from_env, fail, refuse_in_production
from mynumber.errors import DomainError

app = typer.Typer(cls=CliGroup, no_args_is_help=True,
                  help="The bank route's clients: a bank's counter or app, with its signing "
                       "and encryption public keys and its counter sign-in secret.")

CLI_ACTOR = "operator:cli"
RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str, indent=2))


def _public_key(path: Path, kind: type[Any], option: str) -> bytes:
    """A public key file: PEM (SubjectPublicKeyInfo) or 64 hexadecimal digits."""
    try:
        text = path.read_bytes()
    except OSError:
        fail(f"{option}: cannot read the file", code=2)
    stripped = text.strip()
    if re.fullmatch(rb"[0-9a-fA-F]{64}", stripped):
        return bytes.fromhex(stripped.decode())
    try:
        key = serialization.load_pem_public_key(text)
    except ValueError:
        fail(f"{option}: not a PEM public key or 64 hex digits", code=2)
    if not isinstance(key, kind):
        fail(f"{option}: not an {kind.__name__.removesuffix('PublicKey')} public key", code=2)
    return key.public_bytes(*RAW)  # type: ignore[no-any-return]


def _out(client: Any) -> dict[str, Any]:
    return {"client_id": client.client_id, "bank_code": client.bank_code, "name": client.name,
            "status": client.status.value, "created_at": client.created_at,
            "signing_public_key": client.signing_public_key.hex(),
            "encryption_public_key": client.encryption_public_key.hex()}


@app.command("register")
def register(
    bank_code: Annotated[str, typer.Option(help="the bank's 金融機関コード (4 digits)")],
    name: Annotated[str, typer.Option(help="what the client is, e.g. 本店窓口")],
    signing_public_key: Annotated[Path, typer.Option(
        help="the bank's Ed25519 public key (PEM or hex): its API requests")],
    encryption_public_key: Annotated[Path, typer.Option(
        help="the bank's X25519 public key (PEM or hex): what is sealed for the bank")],
) -> None:
    """Register a bank client; prints its id and its secret (shown this once only)."""
    signing = _public_key(signing_public_key, Ed25519PublicKey, "--signing-public-key")
    encryption = _public_key(encryption_public_key, X25519PublicKey,
                             "--encryption-public-key")
    container = container_from_env()
    try:
        client, secret = container.bank_clients.register(bank_code, name, signing, encryption,
                                                         actor=CLI_ACTOR)
    except DomainError as exc:
        fail(f"{exc.code}: {exc.detail}", code=2)
    _print({**_out(client), "secret": secret,
            "note": "the secret is shown once: give it to the bank's counter staff"})


@app.command("list")
def list_clients(
    bank_code: Annotated[str | None, typer.Option(help="only this bank's clients")] = None,
) -> None:
    """Every bank client (never their secrets)."""
    _print([_out(c) for c in container_from_env().bank_clients.clients(bank_code)])


@app.command("suspend")
def suspend(client_id: Annotated[str, typer.Argument(help="the client id (bc_…)")]) -> None:
    """Suspend a client: its API requests and counter sign-ins are refused, its sessions end,
    and the deliveries sealed for its key that it has not acknowledged go back to pending
    (``mynumber accounts deposit seal-pending`` seals them for the bank's current key)."""
    try:
        client = container_from_env().bank_clients.suspend(client_id, actor=CLI_ACTOR)
    except DomainError as exc:
        fail(f"{exc.code}: {exc.detail}")
    _print(_out(client))


@app.command("activate")
def activate(client_id: Annotated[str, typer.Argument(help="the client id (bc_…)")]) -> None:
    """Reactivate a suspended client, or end a counter sign-in throttle."""
    try:
        client = container_from_env().bank_clients.set_status(
            client_id, BankClientStatus.ACTIVE, actor=CLI_ACTOR)
    except DomainError as exc:
        fail(f"{exc.code}: {exc.detail}")
    _print(_out(client))


@app.command("keygen")
def keygen(
    out_dir: Annotated[Path, typer.Option(help="where to write the four PEM files")],
) -> None:
    """Demo: write signing.key / signing.pub (Ed25519) and encryption.key / encryption.pub
    (X25519) into OUT_DIR (private keys unencrypted, mode 0600). Refused in production."""
    refuse_in_production("bank-client keygen",
                         "A bank generates its own keys and registers the public halves.")
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [out_dir / n for n in ("signing.key", "signing.pub", "encryption.key",
                                   "encryption.pub")]
    if any(p.exists() for p in names):
        fail(f"{out_dir}: key files exist already; choose another directory", code=2)
    pem = serialization.Encoding.PEM
    private_format = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    signing = Ed25519PrivateKey.generate()
    encryption = X25519PrivateKey.generate()
    for path, private in ((names[0], signing), (names[2], encryption)):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(private.private_bytes(pem, *private_format))
    names[1].write_bytes(signing.public_key().public_bytes(pem, spki))
    names[3].write_bytes(encryption.public_key().public_bytes(pem, spki))
    _print({"signing_private_key": str(names[0]), "signing_public_key": str(names[1]),
            "encryption_private_key": str(names[2]), "encryption_public_key": str(names[3])})

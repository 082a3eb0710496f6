"""Provisioning is explicit in production: the JPKI CA hierarchy, keys on a PKCS#11 token, and
the `mynumber keys` commands."""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from mynumber.app import build_container
from mynumber.cli.main import app
from mynumber.jpki.services import JpkiServiceImpl
from mynumber.keys import (
    KeyNotProvisioned,
    Pkcs11BlockCipher,
    Pkcs11KeyProvider,
    SoftwareKeyProvider,
)
from mynumber.settings import Mode, Settings
from tests.conftest import PG_URL
from tests.jpki.test_keyproviders import SoftHSM, softhsm  # noqa: F401  (fixture)

PASSPHRASE = "synthetic production passphrase 0123"
runner = CliRunner()


def test_production_jpki_hierarchy_is_created_only_by_provisioning(
    container, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    keys = SoftwareKeyProvider(tmp_path / "jpki", development=False,
                               passphrase=PASSPHRASE.encode())
    jpki = JpkiServiceImpl(container.databases, keys, container.registry,
                           container.settings.public_url)
    with pytest.raises(KeyNotProvisioned, match="mynumber keys init-ca"):
        jpki.hierarchy()
    assert not list((tmp_path / "jpki").glob("*.key.pem"))
    with keys.provisioning():
        authorities = jpki.hierarchy()
    assert {"root", "sign", "auth"} <= set(authorities)
    # A fresh service (a restart) loads them without creating anything.
    again = JpkiServiceImpl(container.databases,
                            SoftwareKeyProvider(tmp_path / "jpki", development=False,
                                                passphrase=PASSPHRASE.encode()),
                            container.registry, container.settings.public_url)
    assert set(again.hierarchy()) == set(authorities)
    assert not (tmp_path / "jpki" / "passphrase").exists()


def test_pkcs11_production_never_creates_keys_on_the_token(
    softhsm: SoftHSM,  # noqa: F811
) -> None:
    label = f"ca-{uuid.uuid4().hex[:12]}"
    provider = Pkcs11KeyProvider(softhsm.library, softhsm.token_label, softhsm.user_pin,
                                 development=False)
    with pytest.raises(KeyNotProvisioned, match="mynumber keys init-ca"):
        provider.generate_rsa(label)
    assert not provider.has_key(label)
    with provider.provisioning():
        provider.generate_rsa(label)
    assert provider.has_key(label)

    class Cipher(Pkcs11BlockCipher):
        LABEL = f"codes-{uuid.uuid4().hex[:12]}"

    production = Cipher(softhsm.library, softhsm.token_label, softhsm.user_pin,
                        development=False)
    with pytest.raises(KeyNotProvisioned, match="mynumber keys init --production"):
        production.encrypt_blocks(bytes(16))
    with production.provisioning():
        production.ensure_key()
    assert production.decrypt_blocks(production.encrypt_blocks(bytes(16))) == bytes(16)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_init_production_writes_marked_owner_only_keys(tmp_path: Path) -> None:
    env = {"MYNUMBER_MODE": "production", "MYNUMBER_KEY_DIR": str(tmp_path / "keys"),
           "MYNUMBER_DATA_DIR": str(tmp_path)}
    refused = runner.invoke(app, ["keys", "init"], env=env)
    assert refused.exit_code == 1
    assert not (tmp_path / "keys").exists()
    done = runner.invoke(app, ["keys", "init", "--production"], env=env)
    assert done.exit_code == 0, done.output
    files = list((tmp_path / "keys").glob("*.key.json"))
    assert len(files) >= 7
    for file in files:
        assert _mode(file) == 0o600
        assert json.loads(file.read_text())["development"] is False
    assert _mode(tmp_path / "keys") == 0o700
    assert "keys init-ca" in done.output
    # Idempotent: nothing is overwritten.
    before = {f.name: f.read_bytes() for f in files}
    assert runner.invoke(app, ["keys", "init", "--production"], env=env).exit_code == 0
    assert {f.name: f.read_bytes() for f in files} == before


def test_keys_agency_provisions_an_agency_once(tmp_path: Path) -> None:
    env = {"MYNUMBER_KEY_DIR": str(tmp_path / "keys"), "MYNUMBER_DATA_DIR": str(tmp_path)}
    done = runner.invoke(app, ["keys", "agency", "mhlw"], env=env)
    assert done.exit_code == 0, done.output
    file = tmp_path / "keys" / "agencies" / "mhlw.json"
    assert _mode(file) == 0o600
    assert json.loads(file.read_text())["development"] is False
    again = runner.invoke(app, ["keys", "agency", "mhlw"], env=env)
    assert again.exit_code == 1
    assert runner.invoke(app, ["keys", "agency", "../x"], env=env).exit_code == 1


@pytest.mark.skipif(not PG_URL, reason="production mode needs PostgreSQL")
def test_keys_init_ca_in_production(settings: Settings, tmp_path: Path) -> None:
    env = {"MYNUMBER_MODE": "production", "MYNUMBER_KEY_DIR": str(tmp_path / "keys"),
           "MYNUMBER_DATA_DIR": str(tmp_path), "MYNUMBER_DATABASE_URL": settings.database_url,
           "MYNUMBER_JPKI_KEY_PASSPHRASE": PASSPHRASE}
    assert runner.invoke(app, ["keys", "init", "--production"], env=env).exit_code == 0
    production = settings.model_copy(update={
        "mode": Mode.PRODUCTION, "key_dir": tmp_path / "keys",
        "jpki_key_passphrase": SecretStr(PASSPHRASE)})
    container = build_container(production)
    try:
        with pytest.raises(KeyNotProvisioned, match="mynumber keys init-ca"):
            container.jpki.hierarchy()
    finally:
        container.close()
    done = runner.invoke(app, ["keys", "init-ca"], env=env)
    assert done.exit_code == 0, done.output
    assert "root" in done.output
    jpki_dir = tmp_path / "keys" / "jpki"
    assert list(jpki_dir.glob("*.key.pem"))
    assert not (jpki_dir / "passphrase").exists()
    for file in jpki_dir.iterdir():
        assert _mode(file) == 0o600
    container = build_container(production)
    try:
        assert {"root", "sign", "auth"} <= set(container.jpki.hierarchy())
    finally:
        container.close()
    assert os.environ.get("MYNUMBER_MODE") != "production"  # the runner's env did not leak

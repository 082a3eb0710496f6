"""Issue 12 item 6: the intermediate-server role runs with its own keys only (its agencies'
keys and the core's PUBLIC key as a setting) and never creates or reads a core key."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mynumber.agencies.keyring import MASTER_PURPOSE, provision_agency_keys
from mynumber.app import ConfigurationError, build_container, key_inventory
from mynumber.envelope import raw_public
from mynumber.keys import FileKeyProvider
from mynumber.settings import Mode, Settings

PG_UNUSED = "postgresql+psycopg://unused@127.0.0.1:1/none"


def _files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*"))


def _core_pem(tmp_path: Path) -> tuple[Path, bytes]:
    core = ed25519.Ed25519PrivateKey.generate()
    pem = tmp_path / "core.pub.pem"
    pem.write_bytes(core.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pem, raw_public(core.public_key())


def test_embedded_intermediate_starts_without_any_core_key(settings: Settings,
                                                           tmp_path: Path) -> None:
    # Its key directory: the agencies' development master only, and the core's public key
    # as a setting. No network.*, registry.*, portal or JPKI key anywhere.
    keys = tmp_path / "intermediate-keys"
    keys.mkdir(mode=0o700)
    shutil.copy2(settings.keys_path / f"{MASTER_PURPOSE}.key.json", keys)
    pem, core_public = _core_pem(tmp_path)
    before = _files(keys)
    assert before == [f"{MASTER_PURPOSE}.key.json"]
    own = settings.model_copy(update={"key_dir": keys, "core_public_key_file": pem})
    container = build_container(own, role="intermediate")
    try:
        assert raw_public(container.agencies_server._core) == core_public
        assert container.agencies_server.keyring.keys("mhlw").signing_public
        assert not container.has("keys") and not container.has("network")
    finally:
        container.close()
    assert _files(keys) == before  # nothing created: no core key made or read


def test_embedded_intermediate_never_creates_a_core_key(settings: Settings,
                                                        tmp_path: Path) -> None:
    keys = tmp_path / "intermediate-keys"
    keys.mkdir(mode=0o700)
    shutil.copy2(settings.keys_path / f"{MASTER_PURPOSE}.key.json", keys)
    own = settings.model_copy(update={"key_dir": keys})
    with pytest.raises(ConfigurationError, match="MYNUMBER_CORE_PUBLIC_KEY_FILE"):
        build_container(own, role="intermediate")
    assert _files(keys) == [f"{MASTER_PURPOSE}.key.json"]


def _production(tmp_path: Path, keys: Path, pem: Path) -> Settings:
    return Settings(mode=Mode.PRODUCTION, data_dir=tmp_path / "data", key_dir=keys,
                    database_url=PG_UNUSED, core_public_key_file=pem)


def test_production_intermediate_refuses_a_key_directory_holding_core_keys(
        tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    provision_agency_keys(keys / "agencies", "mhlw")
    os.chmod(keys, 0o700)
    pem, _ = _core_pem(tmp_path)
    settings = _production(tmp_path, keys, pem)
    assert all(s.ok for s in key_inventory(settings, "intermediate"))
    build_container(settings, role="intermediate").close()

    FileKeyProvider(keys, create_missing=False, development=False).write_key(
        "network.core_signing", secrets.token_bytes(32), development=False)
    (keys / "jpki").mkdir(mode=0o700)
    (keys / "jpki" / "root.key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    problems = [s for s in key_inventory(settings, "intermediate") if not s.ok]
    assert [s.key for s in problems] == ["core keys"]
    assert "network.core_signing.key.json" in problems[0].line()
    assert "jpki/" in problems[0].line() and "move them off this host" in problems[0].line()
    with pytest.raises(ConfigurationError, match=r"network\.core_signing\.key\.json"):
        build_container(settings, role="intermediate")
    # The core's own check is not affected by this rule.
    assert not any(s.key == "core keys" for s in key_inventory(settings, "core"))

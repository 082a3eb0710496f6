"""Issue 11 item 5: each role holds only its keys. The intermediate server starts with its
agencies' keys and the core's public key only; the portal without the registry's numbering
keys."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import SecretStr
from typer.testing import CliRunner

from mynumber.agencies.keyring import (
    AgencyKeyError,
    FileKeyring,
    parse_public_keys,
    read_agency_public_keys,
)
from mynumber.app import (
    ConfigurationError,
    Container,
    RoleError,
    build_container,
    create_app,
)
from mynumber.cli.main import app as cli
from mynumber.envelope import raw_public
from mynumber.registry.interfaces import SYSTEM
from mynumber.registry.numbering import NumberingUnavailable
from mynumber.settings import Mode, Settings

PG_UNUSED = "postgresql+psycopg://unused@127.0.0.1:1/none"
runner = CliRunner()


def _env(keys: Path, data: Path, **extra: str) -> dict[str, str]:
    return {"MYNUMBER_MODE": "production", "MYNUMBER_KEY_DIR": str(keys),
            "MYNUMBER_DATA_DIR": str(data), "MYNUMBER_DATABASE_URL": PG_UNUSED, **extra}


def _core_public_pem(tmp_path: Path) -> tuple[Path, Path]:
    """A core's key ceremony (its own key directory) and its exported public key."""
    core_keys = tmp_path / "core-keys"
    env = _env(core_keys, tmp_path)
    assert runner.invoke(cli, ["keys", "init", "--production"], env=env).exit_code == 0
    pem = tmp_path / "core.pub.pem"
    done = runner.invoke(cli, ["keys", "export-core-public", "--out", str(pem)], env=env)
    assert done.exit_code == 0, done.output
    return core_keys, pem


def test_intermediate_starts_with_only_agency_keys_and_the_core_public_key(
    tmp_path: Path,
) -> None:
    core_keys, pem = _core_public_pem(tmp_path)
    keys = tmp_path / "intermediate-keys"
    env = _env(keys, tmp_path / "data")
    assert runner.invoke(cli, ["keys", "agency", "mhlw"], env=env).exit_code == 0
    # Nothing else in the key directory: no registry, network, portal or CA key.
    assert sorted(p.relative_to(keys).as_posix() for p in keys.rglob("*")) == [
        "agencies", "agencies/mhlw.json"]
    settings = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path / "data", key_dir=keys,
                        database_url=PG_UNUSED, core_public_key_file=pem)
    container = build_container(settings, role="intermediate")
    try:
        assert container.role == "intermediate"
        assert container.has("agencies_server") and not container.has("registry")
        with pytest.raises(RoleError, match="intermediate role does not run the registry"):
            _ = container.registry
        server = container.agencies_server
        assert server.serves("mhlw") and not server.serves("mof")
        core = json.loads((core_keys / "network.core_signing.key.json").read_text())
        core_private = ed25519.Ed25519PrivateKey.from_private_bytes(
            base64.b64decode(core["key"]))
        assert raw_public(server._core) == raw_public(core_private.public_key())
        # The intermediate role cannot be served by the full app.
        with pytest.raises(ConfigurationError, match="intermediate role cannot serve"):
            create_app(container=container, role="all")
    finally:
        container.close()
    assert sorted(p.relative_to(keys).as_posix() for p in keys.rglob("*")) == [
        "agencies", "agencies/mhlw.json"]  # the start created nothing
    # The full role refuses this key directory, naming what is missing.
    with pytest.raises(ConfigurationError, match=r"registry\.numbering"):
        build_container(settings)


def test_intermediate_refuses_without_the_core_public_key_or_agency_keys(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    settings = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, key_dir=keys,
                        database_url=PG_UNUSED)
    with pytest.raises(ConfigurationError) as refused:
        build_container(settings, role="intermediate")
    assert "mynumber keys export-core-public" in str(refused.value)
    assert "mynumber keys agency ID" in str(refused.value)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    runner.invoke(cli, ["keys", "agency", "mhlw"], env=_env(keys, tmp_path))
    with pytest.raises(ConfigurationError, match="not a PEM public key"):
        build_container(settings.model_copy(update={"core_public_key_file": bad}),
                        role="intermediate")


def test_intermediate_in_embedded_mode_derives_its_keys(settings: Settings) -> None:
    container = build_container(settings, role="intermediate")
    try:
        assert container.agencies_server.keyring.keys("mhlw").signing_public
        assert not container.has("network")
    finally:
        container.close()


def test_portal_role_starts_without_the_numbering_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert runner.invoke(cli, ["keys", "init", "--production", "--role", "portal"],
                         env=_env(keys, tmp_path)).exit_code == 0
    assert not list(keys.glob("registry.*"))
    settings = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, key_dir=keys,
                        database_url=PG_UNUSED,
                        jpki_key_passphrase=SecretStr("synthetic production passphrase 0123"))
    container = build_container(settings, role="portal")
    try:
        assert container.has("portal") and not container.has("agencies_server")
        with pytest.raises(NumberingUnavailable, match="core only"):
            container.registry.numbering.index("123456789018")
    finally:
        container.close()
    with pytest.raises(ConfigurationError, match=r"registry\.numbering.*not provisioned"):
        build_container(settings, role="core")


def test_portal_registry_works_without_numbering(settings: Settings) -> None:
    from tests.conftest import new_resident

    full = build_container(settings)
    try:
        born = dt.date(2001, 2, 3)
        resident = full.registry.register_birth(SYSTEM, new_resident(birth_date=born), born)
    finally:
        full.close()
    container = build_container(settings, role="portal")
    try:
        # What the portal uses works: residents by id, municipalities ...
        assert container.registry.get_resident(SYSTEM, resident.id, "test").id == resident.id
        assert container.registry.municipalities()
        # ... numbering raises a clear error instead of using a key it does not hold.
        with pytest.raises(NumberingUnavailable):
            container.registry.reveal_number(SYSTEM, resident.id, "test")
    finally:
        container.close()


def test_agency_public_keys_round_trip_and_tampering(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    env = _env(keys, tmp_path)
    assert runner.invoke(cli, ["keys", "agency", "mhlw"], env=env).exit_code == 0
    out = tmp_path / "mhlw.pub.json"
    done = runner.invoke(cli, ["keys", "agency-public", "mhlw", "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    document = json.loads(out.read_text())
    assert document["format"] == "mynumber-agency-public-keys/1"
    assert not {"signing_key_private", "key"} & set(document)
    private = FileKeyring(keys / "agencies").keys("mhlw")
    assert read_agency_public_keys(out, "mhlw") == (private.signing_public,
                                                    private.encryption_public)
    assert private.signing_public.hex() not in (keys / "agencies" / "mhlw.json").read_text()
    with pytest.raises(AgencyKeyError, match="not 'mof'"):
        read_agency_public_keys(out, "mof")
    swapped = dict(document, signing_key=document["encryption_key"])
    with pytest.raises(AgencyKeyError, match="does not match"):
        parse_public_keys(json.dumps(swapped).encode(), "mhlw")
    with pytest.raises(AgencyKeyError, match="format"):
        parse_public_keys(b'{"agency_id": "mhlw"}', "mhlw")
    with pytest.raises(AgencyKeyError, match="not JSON"):
        parse_public_keys(b"\xff", "mhlw")


def test_container_for_all_still_has_every_part(container: Container) -> None:
    for part in ("keys", "registry", "staff_auth", "jpki", "card", "network", "network_log",
                 "agencies", "agencies_server", "portal", "api_clients", "oidc"):
        assert container.has(part), part


def test_embedded_roles_share_one_key_directory(settings: Settings, tmp_path: Path) -> None:
    keys = tmp_path / "copy"
    shutil.copytree(settings.keys_path, keys)
    for role in ("core", "portal", "intermediate"):
        build_container(settings.model_copy(update={"key_dir": keys}), role=role).close()


def test_a_part_the_role_lacks_reads_as_absent(settings: Settings) -> None:
    container = build_container(settings, role="intermediate")
    try:
        assert getattr(container, "registry", None) is None
        assert not hasattr(container, "oidc")
    finally:
        container.close()

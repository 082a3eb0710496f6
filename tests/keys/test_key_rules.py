"""The one development-vs-production rule of mynumber.keys, for every kind of key.

Embedded mode: keys are created on first use and marked development. Production: no key is
ever created implicitly (the error names the provisioning command), and a key marked
development -- or carrying no marker -- is refused.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import SecretStr

from mynumber.agencies.keyring import (
    AgencyKeyError,
    FileKeyring,
    build_keyring,
    provision_agency_keys,
)
from mynumber.app import ConfigurationError, build_jpki_keys, build_keys
from mynumber.keys import (
    DevelopmentKeyRefused,
    FileKeyProvider,
    KeyError_,
    KeyFileError,
    KeyNotProvisioned,
    KeyProviderError,
    SoftwareKeyProvider,
    check_private,
    write_owner_only,
)
from mynumber.settings import Mode, Settings

PASSPHRASE = b"synthetic production passphrase 0123"
PG_UNUSED = "postgresql+psycopg://unused@127.0.0.1:1/none"


def _production(tmp_path: Path, **extra: object) -> Settings:
    return Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, key_dir=tmp_path / "keys",
                    database_url=PG_UNUSED, **extra)  # type: ignore[arg-type]


def _write_raw(path: Path, data: dict[str, object]) -> None:
    """A key file as an older version or an operator by hand might have left it (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(data))


# --- unmarked and development keys ---------------------------------------------------------


def test_unmarked_symmetric_key_is_refused_in_production(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    _write_raw(keys_dir / "registry.numbering.key.json",
               {"purpose": "registry.numbering", "key": base64.b64encode(bytes(32)).decode()})
    production = FileKeyProvider(keys_dir, create_missing=False, development=False)
    with pytest.raises(DevelopmentKeyRefused, match=r"registry\.numbering"):
        production.symmetric_key("registry.numbering")
    assert production.any_development_key_on_disk()
    with pytest.raises(ConfigurationError, match="development keys"):
        build_keys(_production(tmp_path))
    # The embedded mode uses it (as a development key).
    embedded = FileKeyProvider(keys_dir, create_missing=True, development=True)
    assert embedded.symmetric_key("registry.numbering") == bytes(32)
    assert embedded.is_development


def test_development_symmetric_key_is_refused_in_production(tmp_path: Path) -> None:
    FileKeyProvider(tmp_path / "keys", create_missing=True,
                    development=True).symmetric_key("network.subject")
    production = FileKeyProvider(tmp_path / "keys", create_missing=False, development=False)
    with pytest.raises(DevelopmentKeyRefused, match="production mode refuses"):
        production.symmetric_key("network.subject")


def test_production_key_is_accepted_in_production(tmp_path: Path) -> None:
    production = FileKeyProvider(tmp_path / "keys", create_missing=False, development=False)
    production.write_key("network.subject", bytes(range(32)), development=False)
    assert production.symmetric_key("network.subject") == bytes(range(32))
    assert not production.is_development
    assert not production.any_development_key_on_disk()


def test_unmarked_and_development_signing_keys_are_refused_in_production(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "jpki"
    SoftwareKeyProvider(directory, development=True).generate_rsa("dev-ca")
    SoftwareKeyProvider(directory, development=True).generate_rsa("unmarked-ca")
    (directory / "unmarked-ca.meta.json").unlink()
    production = SoftwareKeyProvider(directory, development=False, passphrase=PASSPHRASE)
    for label in ("dev-ca", "unmarked-ca"):
        with pytest.raises(DevelopmentKeyRefused, match=label):
            production.sign(label, b"x")
    assert production.any_development_key_on_disk()


def test_unmarked_agency_key_file_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "keys" / "agencies"
    file = provision_agency_keys(directory, "mhlw")
    data = json.loads(file.read_text())
    del data["development"]
    data["agency_id"] = "city"
    _write_raw(directory / "city.json", data)
    with pytest.raises(AgencyKeyError, match="not production keys"):
        FileKeyring(directory).keys("city")
    assert FileKeyring(directory).keys("mhlw").agency_id == "mhlw"


# --- production never creates a key ----------------------------------------------------------


def test_production_never_creates_a_symmetric_key(tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match="never creates keys implicitly"):
        FileKeyProvider(tmp_path / "keys", create_missing=True, development=False)
    production = FileKeyProvider(tmp_path / "keys", create_missing=False, development=False)
    with pytest.raises(KeyNotProvisioned, match="mynumber keys init --production"):
        production.symmetric_key("registry.numbering")
    assert not (tmp_path / "keys").exists()


def test_production_never_creates_a_signing_key(tmp_path: Path) -> None:
    directory = tmp_path / "jpki"
    production = SoftwareKeyProvider(directory, development=False, passphrase=PASSPHRASE)
    with pytest.raises(KeyNotProvisioned, match="mynumber keys init-ca"):
        production.generate_rsa("ca-root")
    assert not directory.exists() or not list(directory.iterdir())
    # Explicit provisioning creates it, marked production.
    with production.provisioning():
        production.generate_rsa("ca-root")
    meta = json.loads((directory / "ca-root.meta.json").read_text())
    assert meta["development"] is False
    with pytest.raises(KeyNotProvisioned):  # and only inside the provisioning block
        production.generate_rsa("ca-other")


def test_embedded_creates_marked_development_keys(tmp_path: Path) -> None:
    keys = build_keys(Settings(data_dir=tmp_path, key_dir=tmp_path / "keys"))
    keys.symmetric_key("registry.numbering")
    data = json.loads((tmp_path / "keys" / "registry.numbering.key.json").read_text())
    assert data["development"] is True
    signing = build_jpki_keys(Settings(data_dir=tmp_path, key_dir=tmp_path / "keys"))
    signing.generate_rsa("ca")
    meta = json.loads((tmp_path / "keys" / "jpki" / "ca.meta.json").read_text())
    assert meta["development"] is True


def test_production_never_creates_agency_keys(tmp_path: Path) -> None:
    production = FileKeyProvider(tmp_path / "keys", create_missing=False, development=False)
    keyring = build_keyring(production, development=False, key_dir=tmp_path / "keys")
    with pytest.raises(AgencyKeyError, match="mynumber keys agency mhlw"):
        keyring.keys("mhlw")
    assert not (tmp_path / "keys" / "agencies" / "mhlw.json").exists()


# --- permissions on load -----------------------------------------------------------------------


def test_group_readable_key_file_is_refused_in_production(tmp_path: Path) -> None:
    production = FileKeyProvider(tmp_path / "keys", create_missing=False, development=False)
    file = production.write_key("network.subject", bytes(32), development=False)
    os.chmod(file, 0o640)
    with pytest.raises(KeyFileError, match="accessible to other users"):
        FileKeyProvider(tmp_path / "keys", create_missing=False,
                        development=False).symmetric_key("network.subject")


def test_group_readable_key_directory_is_refused_in_production(tmp_path: Path) -> None:
    production = FileKeyProvider(tmp_path / "keys", create_missing=False, development=False)
    production.write_key("network.subject", bytes(32), development=False)
    os.chmod(tmp_path / "keys", 0o750)
    with pytest.raises(KeyFileError, match="0700"):
        FileKeyProvider(tmp_path / "keys", create_missing=False,
                        development=False).symmetric_key("network.subject")
    with pytest.raises(ConfigurationError, match="accessible to other users"):
        build_keys(_production(tmp_path))


def test_group_readable_key_is_only_warned_about_in_embedded_mode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    embedded = FileKeyProvider(tmp_path / "keys", create_missing=True, development=True)
    key = embedded.symmetric_key("network.subject")
    os.chmod(tmp_path / "keys" / "network.subject.key.json", 0o644)
    with caplog.at_level(logging.WARNING, logger="mynumber.keys"):
        again = FileKeyProvider(tmp_path / "keys", create_missing=True, development=True)
        assert again.symmetric_key("network.subject") == key
    assert any("accessible to other users" in r.getMessage() for r in caplog.records)


def test_signing_keys_readable_by_others_warned_in_embedded_refused_in_production(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dev_dir, prod_dir = tmp_path / "dev", tmp_path / "prod"
    SoftwareKeyProvider(dev_dir, development=True).generate_rsa("ca")
    os.chmod(dev_dir / "ca.key.pem", 0o644)
    with caplog.at_level(logging.WARNING, logger="mynumber.keys"):
        SoftwareKeyProvider(dev_dir, development=True).sign("ca", b"x")
    assert any("ca.key.pem" in r.getMessage() for r in caplog.records)
    production = SoftwareKeyProvider(prod_dir, development=False, passphrase=PASSPHRASE)
    with production.provisioning():
        production.generate_rsa("ca")
    os.chmod(prod_dir, 0o755)
    with pytest.raises(KeyFileError, match="accessible to other users"):
        SoftwareKeyProvider(prod_dir, development=False, passphrase=PASSPHRASE).sign("ca", b"x")


def test_world_readable_agency_key_is_refused(tmp_path: Path) -> None:
    file = provision_agency_keys(tmp_path / "agencies", "mhlw")
    os.chmod(file, 0o604)
    with pytest.raises(AgencyKeyError, match="0600"):
        FileKeyring(tmp_path / "agencies").keys("mhlw")


def test_check_private_on_a_directory_checks_only_the_directory(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)  # the parent of the key directory may be anything
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    os.chmod(directory, 0o700)
    check_private(directory, production=True)


# --- the writer ---------------------------------------------------------------------------------


@pytest.fixture
def umask_000():  # type: ignore[no-untyped-def]
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_000")
def test_writers_create_owner_only_files_under_umask_000(tmp_path: Path) -> None:
    written = write_owner_only(tmp_path / "a" / "secret.bin", b"secret")
    assert _mode(written) == 0o600 and _mode(written.parent) == 0o700
    keys = FileKeyProvider(tmp_path / "sym", create_missing=True, development=True)
    keys.symmetric_key("registry.numbering")
    assert _mode(tmp_path / "sym" / "registry.numbering.key.json") == 0o600
    assert _mode(tmp_path / "sym") == 0o700
    SoftwareKeyProvider(tmp_path / "jpki", development=True).generate_rsa("ca")
    for name in ("ca.key.pem", "ca.meta.json", "passphrase"):
        assert _mode(tmp_path / "jpki" / name) == 0o600, name
    assert _mode(tmp_path / "jpki") == 0o700
    agency = provision_agency_keys(tmp_path / "agencies", "mhlw")
    assert _mode(agency) == 0o600 and _mode(agency.parent) == 0o700
    # No temporary files are left behind.
    assert not [p for p in tmp_path.rglob(".*.tmp")]


def test_writer_never_overwrites(tmp_path: Path) -> None:
    path = write_owner_only(tmp_path / "k", b"one")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        write_owner_only(path, b"two")
    assert path.read_bytes() == b"one"


def test_concurrent_first_use_gives_every_thread_the_same_key(tmp_path: Path) -> None:
    """Many threads (each with its own provider) create a missing development key at once:
    one file is written, everybody gets its key, nobody fails."""
    threads = 16
    barrier = threading.Barrier(threads)

    def first_use(_: int) -> bytes:
        provider = FileKeyProvider(tmp_path / "keys", create_missing=True, development=True)
        barrier.wait()
        return provider.symmetric_key("network.subject")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        keys = list(pool.map(first_use, range(threads)))
    assert len(set(keys)) == 1
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["network.subject.key.json"]


# --- the JPKI CA key passphrase ------------------------------------------------------------------


def test_production_passphrase_is_never_written_beside_the_key(tmp_path: Path) -> None:
    settings = _production(tmp_path, jpki_key_passphrase=SecretStr(PASSPHRASE.decode()))
    provider = build_jpki_keys(settings)
    with provider.provisioning():
        provider.generate_rsa("ca")
    directory = tmp_path / "keys" / "jpki"
    assert sorted(p.name for p in directory.iterdir()) == ["ca.key.pem", "ca.meta.json"]
    from cryptography.hazmat.primitives import serialization

    # Encrypted under the passphrase from the settings.
    serialization.load_pem_private_key((directory / "ca.key.pem").read_bytes(), PASSPHRASE)
    assert build_jpki_keys(settings).sign("ca", b"x")


def test_production_refuses_to_start_without_a_passphrase(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="MYNUMBER_JPKI_KEY_PASSPHRASE"):
        build_jpki_keys(_production(tmp_path))
    with pytest.raises(KeyProviderError, match="passphrase"):
        SoftwareKeyProvider(tmp_path / "jpki", development=False)
    with pytest.raises(KeyProviderError, match="at least 16"):
        SoftwareKeyProvider(tmp_path / "jpki", development=False, passphrase=b"short")


def test_passphrase_file_must_be_outside_the_key_directory_and_private(tmp_path: Path) -> None:
    inside = tmp_path / "keys" / "jpki-passphrase"
    write_owner_only(inside, PASSPHRASE)
    with pytest.raises(ConfigurationError, match="inside the key directory"):
        build_jpki_keys(_production(tmp_path, jpki_key_passphrase_file=inside))
    outside = write_owner_only(tmp_path / "secrets" / "jpki-passphrase", PASSPHRASE + b"\n")
    provider = build_jpki_keys(_production(tmp_path, jpki_key_passphrase_file=outside))
    with provider.provisioning():
        provider.generate_rsa("ca")
    from cryptography.hazmat.primitives import serialization

    serialization.load_pem_private_key(
        (tmp_path / "keys" / "jpki" / "ca.key.pem").read_bytes(), PASSPHRASE)
    os.chmod(outside, 0o644)
    with pytest.raises(ConfigurationError, match="accessible to other users"):
        build_jpki_keys(_production(tmp_path, jpki_key_passphrase_file=outside))
    with pytest.raises(ConfigurationError, match="not both"):
        build_jpki_keys(_production(tmp_path, jpki_key_passphrase_file=outside,
                                    jpki_key_passphrase=SecretStr(PASSPHRASE.decode())))


def test_embedded_mode_keeps_its_generated_passphrase_file(tmp_path: Path) -> None:
    provider = build_jpki_keys(Settings(data_dir=tmp_path, key_dir=tmp_path / "keys"))
    provider.generate_rsa("ca")
    passphrase = tmp_path / "keys" / "jpki" / "passphrase"
    assert _mode(passphrase) == 0o600
    assert len(passphrase.read_bytes().strip()) >= 32

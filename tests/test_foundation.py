"""The platform's foundation: settings, keys, databases, migrations, logging."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from mynumber import logs, migrations
from mynumber.app import ConfigurationError, build_container, create_app
from mynumber.db import CONTEXTS, Databases
from mynumber.keys import FileKeyProvider, KeyError_
from mynumber.settings import Mode, Settings
from tests.conftest import PG_URL


def test_models_and_migrations_agree(settings: Settings) -> None:
    databases = Databases(settings)
    try:
        for context in CONTEXTS:
            assert migrations.differences(databases, context) == []
    finally:
        databases.dispose()


def test_each_context_has_its_own_sqlite_file(settings: Settings) -> None:
    if PG_URL:
        pytest.skip("embedded mode only")
    for context in CONTEXTS:
        assert (settings.data_dir / f"{context}.sqlite3").exists()


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only")
def test_postgres_context_runs_in_its_own_schema_and_role(settings: Settings) -> None:
    databases = Databases(settings)
    try:
        with databases.engine("registry").connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar_one() == "mynumber_registry"
            assert conn.execute(text("SELECT current_schema()")).scalar_one() == "registry"
            # The context role owns its schema and nothing is granted to PUBLIC there.
            owner = conn.execute(text(
                "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'registry'"
            )).scalar_one()
            assert owner == "mynumber_registry"
    finally:
        databases.dispose()


def test_production_mode_refuses_development_keys(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path / "keys", create_missing=True, development=True)
    keys.symmetric_key("registry.numbering")
    settings = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, key_dir=tmp_path / "keys",
                        database_url="postgresql+psycopg://unused@127.0.0.1:1/none")
    with pytest.raises(ConfigurationError, match="development keys"):
        build_container(settings)


def test_production_mode_never_creates_keys(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, key_dir=tmp_path / "keys",
                        database_url="postgresql+psycopg://unused@127.0.0.1:1/none")
    with pytest.raises(ConfigurationError, match="not provisioned"):
        build_container(settings)
    assert not list((tmp_path / "keys").glob("*.json")) if (tmp_path / "keys").exists() else True


def test_production_mode_accepts_provisioned_keys(tmp_path: Path) -> None:
    """Keys made by the ceremony (`mynumber keys init --production`) are what production
    accepts; the container then builds without connecting anywhere."""
    from typer.testing import CliRunner

    from mynumber.cli import app as cli

    url = "postgresql+psycopg://mynumber_{context}@127.0.0.1:1/none"
    env = {k: None for k in os.environ if k.startswith("MYNUMBER_")}
    env.update({"MYNUMBER_MODE": "production", "MYNUMBER_KEY_DIR": str(tmp_path / "keys"),
                "MYNUMBER_DATA_DIR": str(tmp_path), "MYNUMBER_DATABASE_URL": url})
    result = CliRunner().invoke(cli, ["keys", "init", "--production"], env=env)
    assert result.exit_code == 0, result.output
    settings = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, key_dir=tmp_path / "keys",
                        database_url=url,
                        jpki_key_passphrase=SecretStr("synthetic production passphrase 0123"))
    container = build_container(settings)  # builds without connecting anywhere
    container.close()


def test_key_files_are_private(tmp_path: Path) -> None:
    provider = FileKeyProvider(tmp_path / "k", create_missing=True, development=True)
    provider.symmetric_key("registry.numbering")
    file = tmp_path / "k" / "registry.numbering.key.json"
    assert file.stat().st_mode & 0o077 == 0


def test_wrong_key_length_is_refused(tmp_path: Path) -> None:
    provider = FileKeyProvider(tmp_path / "k", create_missing=False, development=True)
    provider.write_key("registry.numbering", b"short", development=True)
    with pytest.raises(KeyError_, match="expected 32"):
        provider.symmetric_key("registry.numbering")


def test_log_lines_never_carry_an_individual_number(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("mynumber.test")
    logger.addFilter(logs.RedactNumbers())
    with caplog.at_level(logging.INFO, logger="mynumber.test"):
        logger.info("looked up %s and 1234 5678 9018 and order 123456789019", "621498320257")
    message = caplog.records[-1].getMessage()
    assert "621498320257" not in message and "1234 5678 9018" not in message
    assert "123456789019" in message  # not a valid 個人番号: kept


def test_access_log_drops_query_strings() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1", "GET", "/api?q=secret", "1.1", 200), None)
    logs.DropQueryStrings().filter(record)
    assert "secret" not in record.getMessage()


def test_app_builds_without_touching_the_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "nothing-here")
    app = create_app(settings)
    assert app.openapi()["info"]["title"] == "mynumber"
    assert not (tmp_path / "nothing-here" / "registry.sqlite3").exists()


def test_the_pkcs11_pin_can_come_from_a_private_file(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("123456\n")
    pin_file.chmod(0o600)
    settings = Settings(pkcs11_pin_file=pin_file)
    assert settings.pkcs11_pin is not None and settings.pkcs11_pin.get_secret_value() == "123456"
    with pytest.raises(ValueError, match="not both"):
        Settings(pkcs11_pin_file=pin_file, pkcs11_pin=SecretStr("654321"))
    pin_file.chmod(0o644)  # readable by others: production refuses it
    with pytest.raises(ValueError, match="MYNUMBER_PKCS11_PIN_FILE"):
        Settings(mode=Mode.PRODUCTION, pkcs11_pin_file=pin_file)

"""Issue 11 item 2: keys only by ceremony. Production start-up refuses, naming the key and the
command creating it, every missing, development or misplaced (token vs file) key; nothing is
created at run time (a CA PEM request without a CA answers 503 and creates nothing)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from mynumber.app import (
    ROLE_SYMMETRIC_KEYS,
    ConfigurationError,
    Container,
    build_container,
    check_ca,
    create_app,
    require_keys,
)
from mynumber.cli.main import app as cli
from mynumber.jpki.services import JpkiServiceImpl
from mynumber.keys import FileKeyProvider, Pkcs11BlockCipher, SoftwareKeyProvider
from mynumber.portal.oauth import provision_signing_key
from mynumber.settings import Mode, Settings
from mynumber.web.assemble import assemble
from tests.conftest import PG_URL
from tests.jpki.test_keyproviders import SoftHSM, softhsm  # noqa: F401  (fixture)

PASSPHRASE = "synthetic production passphrase 0123"
PG_UNUSED = "postgresql+psycopg://unused@127.0.0.1:1/none"
runner = CliRunner()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"MYNUMBER_MODE": "production", "MYNUMBER_KEY_DIR": str(tmp_path / "keys"),
            "MYNUMBER_DATA_DIR": str(tmp_path), "MYNUMBER_DATABASE_URL": PG_UNUSED,
            "MYNUMBER_JPKI_KEY_PASSPHRASE": PASSPHRASE, **extra}


def _production(tmp_path: Path, **extra: object) -> Settings:
    return Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, key_dir=tmp_path / "keys",
                    database_url=PG_UNUSED, jpki_key_passphrase=SecretStr(PASSPHRASE),
                    **extra)  # type: ignore[arg-type]


def _ceremony(tmp_path: Path, **env: str) -> None:
    done = runner.invoke(cli, ["keys", "init", "--production"], env=_env(tmp_path, **env))
    assert done.exit_code == 0, done.output


def test_the_ceremony_gives_a_production_start(tmp_path: Path) -> None:
    _ceremony(tmp_path)
    build_container(_production(tmp_path)).close()  # builds without connecting anywhere
    assert (tmp_path / "keys" / "agencies" / "mynaportal.json").exists()


@pytest.mark.parametrize("purpose", ROLE_SYMMETRIC_KEYS["all"])
def test_start_refused_for_each_missing_symmetric_key(tmp_path: Path, purpose: str) -> None:
    _ceremony(tmp_path)
    (tmp_path / "keys" / f"{purpose}.key.json").unlink()
    with pytest.raises(ConfigurationError, match="not provisioned") as refused:
        build_container(_production(tmp_path))
    assert purpose in str(refused.value)
    assert "mynumber keys init --production" in str(refused.value)
    assert not (tmp_path / "keys" / f"{purpose}.key.json").exists()  # nothing created


def test_start_refused_for_a_development_symmetric_key(tmp_path: Path) -> None:
    _ceremony(tmp_path)
    file = tmp_path / "keys" / "web.csrf.key.json"
    data = json.loads(file.read_text())
    file.unlink()
    FileKeyProvider(tmp_path / "keys", create_missing=False, development=True).write_key(
        "web.csrf", bytes(32), development=True)
    assert data["development"] is False
    with pytest.raises(ConfigurationError, match="development keys"):
        build_container(_production(tmp_path))


def test_start_refused_without_or_with_a_development_oidc_key(tmp_path: Path) -> None:
    _ceremony(tmp_path)
    keys = tmp_path / "keys"
    for file in keys.glob("portal.oidc_signing*"):
        file.unlink()
    with pytest.raises(ConfigurationError, match=r"OIDC signing key.*oidc rotate-keys"):
        build_container(_production(tmp_path))
    # A development key is refused at start, not answered with a 500 later.
    provision_signing_key(keys, development=True)
    with pytest.raises(ConfigurationError, match=r"OIDC signing key.*development key"):
        build_container(_production(tmp_path))


def test_start_refused_without_the_portal_agency_keys(tmp_path: Path) -> None:
    _ceremony(tmp_path)
    (tmp_path / "keys" / "agencies" / "mynaportal.json").unlink()
    with pytest.raises(ConfigurationError, match="mynumber keys agency mynaportal"):
        build_container(_production(tmp_path))


def test_start_refused_with_a_passphrase_file_beside_the_ca_keys(tmp_path: Path) -> None:
    _ceremony(tmp_path)
    jpki = tmp_path / "keys" / "jpki"
    jpki.mkdir(mode=0o700)
    (jpki / SoftwareKeyProvider.PASSPHRASE_FILE).write_text("x" * 40)
    (jpki / SoftwareKeyProvider.PASSPHRASE_FILE).chmod(0o600)
    with pytest.raises(ConfigurationError, match=r"passphrase.*beside the CA keys"):
        build_container(_production(tmp_path))


# --- the PKCS#11 token ----------------------------------------------------------------------


@pytest.fixture
def code_label(monkeypatch: pytest.MonkeyPatch) -> str:
    """A label no other test made on the shared token: the token lacks the agency-code key."""
    label = f"codes-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(Pkcs11BlockCipher, "LABEL", label)
    return label


def _token_env(softhsm: SoftHSM) -> dict[str, str]:  # noqa: F811
    return {"MYNUMBER_PKCS11_LIBRARY": softhsm.library,
            "MYNUMBER_PKCS11_TOKEN": softhsm.token_label,
            "MYNUMBER_PKCS11_PIN": softhsm.user_pin}


def _on_token(tmp_path: Path, softhsm: SoftHSM) -> Settings:  # noqa: F811
    return _production(tmp_path, pkcs11_library=softhsm.library,
                       pkcs11_token=softhsm.token_label, pkcs11_pin=SecretStr(softhsm.user_pin))


def test_token_without_the_agency_code_key_refuses_and_creates_nothing(
    tmp_path: Path, softhsm: SoftHSM, code_label: str  # noqa: F811
) -> None:
    _ceremony(tmp_path)  # the files' ceremony: the agency-code key became a file
    (tmp_path / "keys" / "network.agency_codes.key.json").unlink()
    settings = _on_token(tmp_path, softhsm)
    with pytest.raises(ConfigurationError, match=code_label) as refused:
        build_container(settings)
    assert "mynumber keys init --production" in str(refused.value)
    probe = Pkcs11BlockCipher(softhsm.library, softhsm.token_label, softhsm.user_pin,
                              development=False)
    with pytest.raises(Exception, match="not provisioned"):
        probe.encrypt_blocks(bytes(16))  # still absent: the start created nothing
    # The ceremony creates it on the token; then the start goes through.
    done = runner.invoke(cli, ["keys", "init", "--production"],
                         env=_env(tmp_path, **_token_env(softhsm)))
    assert done.exit_code == 0, done.output
    assert not (tmp_path / "keys" / "network.agency_codes.key.json").exists()
    build_container(settings).close()


def test_key_file_for_a_token_key_is_refused(
    tmp_path: Path, softhsm: SoftHSM, code_label: str  # noqa: F811
) -> None:
    _ceremony(tmp_path, **_token_env(softhsm))  # the agency-code key on the token
    FileKeyProvider(tmp_path / "keys", create_missing=False, development=False).write_key(
        "network.agency_codes", bytes(32), development=False)
    with pytest.raises(ConfigurationError, match="never falls back to files"):
        build_container(_on_token(tmp_path, softhsm))


def test_software_ca_key_files_are_refused_when_the_ca_is_on_the_token(
    tmp_path: Path, softhsm: SoftHSM, code_label: str  # noqa: F811
) -> None:
    _ceremony(tmp_path, **_token_env(softhsm))
    provider = SoftwareKeyProvider(tmp_path / "keys" / "jpki", development=False,
                                   passphrase=PASSPHRASE.encode())
    with provider.provisioning():
        provider.generate_rsa("jpki-root-0000")
    with pytest.raises(ConfigurationError, match="CA key file"):
        build_container(_on_token(tmp_path, softhsm))


# --- the JPKI CA: created only by `keys init-ca` ----------------------------------------------


def test_ca_pem_without_a_ca_answers_503_and_creates_nothing(
    container: Container, tmp_path: Path
) -> None:
    # The production rule for the CA keys over this backend's database: a provider that may
    # not create keys outside `keys init-ca`.
    keys = SoftwareKeyProvider(tmp_path / "jpki", development=False,
                               passphrase=PASSPHRASE.encode())
    container._jpki = JpkiServiceImpl(container.databases, keys, container.registry,
                                      container.settings.public_url)
    with TestClient(assemble(container), raise_server_exceptions=False) as http:
        answer = http.get("/jpki/ca/auth.pem")
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "ca_not_provisioned"
    assert "mynumber keys init-ca" in answer.json()["detail"]
    assert not list((tmp_path / "jpki").glob("*")) if (tmp_path / "jpki").exists() else True
    assert container.jpki.ca_key_labels() is None


@pytest.mark.skipif(not PG_URL, reason="production mode needs PostgreSQL")
def test_production_serving_needs_the_ca_ceremony(settings: Settings, tmp_path: Path) -> None:
    env = _env(tmp_path, MYNUMBER_DATABASE_URL=str(settings.database_url))
    assert runner.invoke(cli, ["keys", "init", "--production"], env=env).exit_code == 0
    production = settings.model_copy(update={
        "mode": Mode.PRODUCTION, "key_dir": tmp_path / "keys",
        "jpki_key_passphrase": SecretStr(PASSPHRASE)})
    container = build_container(production)
    try:
        with pytest.raises(ConfigurationError, match=r"JPKI CA hierarchy.*keys init-ca"):
            create_app(container=container)
        with TestClient(assemble(container), raise_server_exceptions=False) as http:
            answer = http.get("/jpki/ca/auth.pem")
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "ca_not_provisioned"
        assert not (tmp_path / "keys" / "jpki").exists() or not list(
            (tmp_path / "keys" / "jpki").glob("*.key.pem"))
    finally:
        container.close()
    checked = runner.invoke(cli, ["keys", "check"], env=env)
    assert checked.exit_code == 1
    assert "keys init-ca" in checked.output
    done = runner.invoke(cli, ["keys", "init-ca"], env=env)
    assert done.exit_code == 0, done.output
    container = build_container(production)
    try:
        require_keys(check_ca(container), "all")  # the CA keys are there now
        # ...and serving still needs isolated database roles (this URL is one superuser).
        with pytest.raises(ConfigurationError, match=r"\{context\} placeholder"):
            create_app(container=container)
    finally:
        container.close()
    checked = runner.invoke(cli, ["keys", "check"], env=env)
    assert checked.exit_code == 0, checked.output
    assert "JPKI root" in checked.output and "problem" not in checked.output
    # A CA key deleted behind the database's back: refused at start.
    next((tmp_path / "keys" / "jpki").glob("jpki-auth-ocsp-*.key.pem")).unlink()
    container = build_container(production)
    try:
        with pytest.raises(ConfigurationError, match="JPKI auth-ocsp"):
            create_app(container=container)
    finally:
        container.close()


def test_keys_check_names_each_key_and_its_problem(tmp_path: Path) -> None:
    _ceremony(tmp_path)
    (tmp_path / "keys" / "registry.numbering.key.json").unlink()
    checked = runner.invoke(cli, ["keys", "check", "--role", "portal"], env=_env(tmp_path))
    # The portal does not need it (only the unreachable database is a problem here) ...
    assert "registry.numbering" not in checked.output
    assert "OK web.csrf" in checked.output
    checked = runner.invoke(cli, ["keys", "check", "--role", "core"], env=_env(tmp_path))
    assert checked.exit_code == 1  # ... the core does
    assert "registry.numbering" in checked.output
    assert "mynumber keys init --production" in checked.output
    assert "OK web.csrf" in checked.output

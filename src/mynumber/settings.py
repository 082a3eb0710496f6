"""Settings, read from ``MYNUMBER_*`` environment variables.

Nothing here connects or reads a key: the composition root (``create_app`` and the CLI) builds
a :class:`Settings` and hands it on.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The file that shows a directory holds the embedded databases.
DATABASE_MARKER = "registry.sqlite3"


def find_data_dir(start: Path) -> Path | None:
    """The nearest ``var`` directory holding the embedded databases, from ``start`` up."""
    for directory in (start, *start.parents):
        candidate = directory / "var"
        if (candidate / DATABASE_MARKER).is_file():
            return candidate
    return None


class Mode(StrEnum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MYNUMBER_", extra="ignore")

    mode: Mode = Mode.EMBEDDED
    data_dir: Path = Field(default=Path("./var"), description="embedded databases and dev keys")
    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset means one SQLite file per context"
    )
    public_url: str = "http://127.0.0.1:8000"
    key_dir: Path | None = Field(
        default=None, description="where key material lives; defaults to DATA_DIR/keys"
    )
    session_idle_minutes: int = 15
    portal_idle_minutes: int = 10
    portal_session_minutes: int = 30
    pkcs11_library: str | None = Field(
        default=None, description="PKCS#11 module for the JPKI CA keys; unset means software keys"
    )
    pkcs11_token: str | None = Field(default=None, description="PKCS#11 token label")
    pkcs11_pin: SecretStr | None = Field(default=None, description="PKCS#11 user PIN")
    pkcs11_pin_file: Path | None = Field(
        default=None, description="file (0600) holding the PKCS#11 user PIN, e.g. a systemd "
        "credential or secrets mount; read when the settings are built, instead of "
        "MYNUMBER_PKCS11_PIN",
    )
    jpki_key_passphrase: SecretStr | None = Field(
        default=None, description="passphrase of the software JPKI CA keys; production needs "
        "it (or jpki_key_passphrase_file) unless the CA keys are on a PKCS#11 token",
    )
    jpki_key_passphrase_file: Path | None = Field(
        default=None, description="file (0600, outside the key directory) holding the software "
        "JPKI CA key passphrase",
    )
    seed_residents: int = 10_000
    event_dispatcher: bool = Field(
        default=True, description="deliver the outboxes' events (the registry's, the accounts "
        "context's) in background threads of the serving process (core and all roles); off "
        "only where something else delivers them "
        "(tests, `mynumber events deliver` run by a timer)",
    )
    restricted_disclosure_days: int = Field(
        default=365, ge=0, le=3650,
        description="how long a restricted exchange (e.g. criminal investigation) stays "
        "hidden from the resident before it is disclosed (never omitted)",
    )
    log_origin: str | None = Field(
        default=None, description="origin line of the access-log checkpoint; "
        "defaults to <public_url host>/access-records",
    )
    tls_dir: Path | None = Field(
        default=None, description="production mutual TLS: this service's cert.pem, key.pem "
        "and the project CA's ca.pem; unset in embedded mode",
    )
    public_tls_dir: Path | None = Field(
        default=None, description="production public listener: its server cert.pem and "
        "key.pem (server-authenticated HTTPS, no client certificate asked); unset means plain "
        "HTTP (embedded mode, or behind a TLS-terminating proxy)",
    )
    core_public_key_file: Path | None = Field(
        default=None, description="intermediate server role: the network core's public "
        "signing key (PEM), exported on the core by `mynumber keys export-core-public`",
    )
    log_level: str = "INFO"
    oidc_issuer: str | None = Field(
        default=None, description="issuer of the self-information API's OpenID Provider; "
        "defaults to public_url",
    )
    oidc_require_par: bool = Field(
        default=False, description="refuse authorization requests not pushed first (RFC 9126)",
    )

    @model_validator(mode="after")
    def _pin_from_file(self) -> Settings:
        if self.pkcs11_pin_file is not None:
            if self.pkcs11_pin is not None:
                raise ValueError("set either MYNUMBER_PKCS11_PIN or MYNUMBER_PKCS11_PIN_FILE, "
                                 "not both")
            from mynumber.keys.errors import KeyError_
            from mynumber.keys.files import read_secret_file

            try:
                pin = read_secret_file(self.pkcs11_pin_file,
                                       production=self.mode is Mode.PRODUCTION)
            except KeyError_ as exc:  # reported as a settings error, naming the file
                raise ValueError(f"MYNUMBER_PKCS11_PIN_FILE: {exc}") from None
            self.pkcs11_pin = SecretStr(pin.decode().strip())
        return self

    @model_validator(mode="after")
    def _locate_data_dir(self) -> Settings:
        """Without MYNUMBER_DATA_DIR, the data directory is found the same way from any working
        directory: the nearest ``var`` holding the embedded databases, in this directory or
        one above it (a command run inside the repository finds ``make run``'s); else ./var."""
        if "data_dir" not in self.model_fields_set:
            found = find_data_dir(Path.cwd())
            if found is not None:
                self.data_dir = found
        return self

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def keys_path(self) -> Path:
        return self.key_dir if self.key_dir is not None else self.data_dir / "keys"

    @property
    def issuer(self) -> str:
        return (self.oidc_issuer or self.public_url).rstrip("/")

    @property
    def checkpoint_origin(self) -> str:
        if self.log_origin:
            return self.log_origin
        from urllib.parse import urlsplit

        return f"{urlsplit(self.public_url).netloc or 'mynumber.invalid'}/access-records"

    @property
    def is_postgres(self) -> bool:
        return bool(self.database_url) and self.database_url.startswith("postgresql")  # type: ignore[union-attr]


def get_settings(**overrides: object) -> Settings:
    """Read settings from the environment (call it in the composition root, not at import)."""
    return Settings(**overrides)  # type: ignore[arg-type]

"""The composition root: settings -> databases, keys, services -> the FastAPI app.

Nothing connects or reads a key at import; everything happens in :func:`build_container`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import FastAPI

from mynumber.card.services import CardServiceImpl, CardStore
from mynumber.db import Databases
from mynumber.jpki.keyproviders import (
    Pkcs11KeyProvider,
    SigningKeyProvider,
    SoftwareKeyProvider,
)
from mynumber.jpki.services import JpkiServiceImpl
from mynumber.keys import FileKeyProvider, KeyError_
from mynumber.registry.numbering import Numbering
from mynumber.registry.services import (
    RegistryServiceImpl,
    StaffAuthImpl,
)
from mynumber.settings import Mode, Settings, get_settings


class ConfigurationError(RuntimeError):
    """The settings cannot be used (e.g. production mode with development keys)."""


@dataclass
class Container:
    settings: Settings
    databases: Databases
    keys: FileKeyProvider
    registry: RegistryServiceImpl
    staff_auth: StaffAuthImpl
    jpki: JpkiServiceImpl
    card: CardServiceImpl

    def close(self) -> None:
        self.databases.dispose()


def build_keys(settings: Settings) -> FileKeyProvider:
    development = settings.mode is Mode.EMBEDDED
    keys = FileKeyProvider(settings.keys_path, create_missing=development,
                           development=development)
    if not development and keys.any_development_key_on_disk():
        raise ConfigurationError(
            f"production mode refuses to start: {settings.keys_path} holds development keys"
        )
    return keys


def build_jpki_keys(settings: Settings) -> SigningKeyProvider:
    """The JPKI CA keys: on a PKCS#11 token when MYNUMBER_PKCS11_LIBRARY is set (token and PIN
    then required), else software keys under KEY_DIR/jpki (development keys in embedded mode;
    production mode refuses any development key found there)."""
    if settings.pkcs11_library:
        if not settings.pkcs11_token or settings.pkcs11_pin is None:
            raise ConfigurationError(
                "MYNUMBER_PKCS11_LIBRARY needs MYNUMBER_PKCS11_TOKEN and MYNUMBER_PKCS11_PIN"
            )
        return Pkcs11KeyProvider(settings.pkcs11_library, settings.pkcs11_token,
                                 settings.pkcs11_pin.get_secret_value(),
                                 development=settings.mode is Mode.EMBEDDED)
    directory = settings.keys_path / "jpki"
    development = settings.mode is Mode.EMBEDDED
    if not development:
        for meta in sorted(directory.glob("*.meta.json")) if directory.is_dir() else []:
            if json.loads(meta.read_text()).get("development") is not False:
                raise ConfigurationError(
                    f"production mode refuses to start: {directory} holds development keys"
                )
    return SoftwareKeyProvider(directory, development=development)


def build_container(settings: Settings | None = None) -> Container:
    settings = settings or get_settings()
    if settings.mode is Mode.PRODUCTION and not settings.database_url:
        raise ConfigurationError("production mode needs MYNUMBER_DATABASE_URL (PostgreSQL)")
    keys = build_keys(settings)
    try:
        numbering = Numbering(keys)
    except KeyError_ as exc:
        raise ConfigurationError(str(exc)) from None
    databases = Databases(settings)
    registry = RegistryServiceImpl(databases, numbering)
    staff_auth = StaffAuthImpl(databases, settings.session_idle_minutes)
    jpki = JpkiServiceImpl(databases, build_jpki_keys(settings), registry, settings.public_url)
    registry.subscribe(jpki.on_registry_change)
    card = CardServiceImpl(databases, registry, jpki, CardStore(settings.data_dir / "cards"))
    return Container(settings, databases, keys, registry, staff_auth, jpki, card=card)


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """Build the web app. Routers come from each context; the web package only assembles."""
    from mynumber.web.assemble import assemble

    container = container or build_container(settings)
    return assemble(container)

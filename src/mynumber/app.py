"""The composition root: settings -> databases, keys, services -> the FastAPI app.

Nothing connects or reads a key at import; everything happens in :func:`build_container`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from mynumber.db import Databases
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
    return Container(settings, databases, keys, registry, staff_auth)


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """Build the web app. Routers come from each context; the web package only assembles."""
    from mynumber.web.assemble import assemble

    container = container or build_container(settings)
    return assemble(container)

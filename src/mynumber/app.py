"""The composition root: settings -> databases, keys, services -> the FastAPI app.

Nothing connects or reads a key at import; everything happens in :func:`build_container`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from mynumber.agencies.keyring import build_keyring
from mynumber.agencies.services import AgenciesServiceImpl, IntermediateServerImpl
from mynumber.agencies.transport import HttpIntermediateServer
from mynumber.auth.services import StaffAuthImpl
from mynumber.card.services import CHIP_SEALING_KEY, CardServiceImpl, CardStore
from mynumber.db import Databases
from mynumber.jpki.services import JpkiServiceImpl
from mynumber.kernel.csrf import KEY_PURPOSE as CSRF_KEY
from mynumber.keys import (
    BlockCipher,
    FileKeyProvider,
    KeyError_,
    Pkcs11BlockCipher,
    Pkcs11KeyProvider,
    SigningKeyProvider,
    SoftwareBlockCipher,
    SoftwareKeyProvider,
)
from mynumber.keys.signing import load_passphrase
from mynumber.network.interfaces import AgencyRecord, IntermediateServer
from mynumber.network.legal_table import build_directory, load_legal_table
from mynumber.network.log import SIGNING_KEY_PURPOSE, MerkleAccessLog, log_signing_key
from mynumber.network.services import NetworkServiceImpl
from mynumber.portal.oauth import ApiClientsImpl, OpenIdProvider
from mynumber.portal.services import PortalServiceImpl
from mynumber.registry.numbering import Numbering
from mynumber.registry.services import RegistryServiceImpl
from mynumber.settings import Mode, Settings, get_settings

# The network core's symmetric keys (``mynumber keys init`` provisions them for production).
CODE_KEY = "network.agency_codes"
CORE_SIGNING_KEY = "network.core_signing"
SUBJECT_KEY = "network.subject"
NETWORK_KEYS = (CODE_KEY, CORE_SIGNING_KEY, SUBJECT_KEY, SIGNING_KEY_PURPOSE)
# Further symmetric keys `mynumber keys init` provisions: the chip files' sealing key and the
# web kernel's CSRF key.
SERVICE_KEYS = (CHIP_SEALING_KEY, CSRF_KEY)


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
    network: NetworkServiceImpl
    network_log: MerkleAccessLog
    agencies: AgenciesServiceImpl
    agencies_server: IntermediateServerImpl
    portal: PortalServiceImpl
    api_clients: ApiClientsImpl
    oidc: OpenIdProvider

    def close(self) -> None:
        self.databases.dispose()


def build_keys(settings: Settings) -> FileKeyProvider:
    """The symmetric keys (mynumber.keys rule: created on first use only in embedded mode)."""
    development = settings.mode is Mode.EMBEDDED
    keys = FileKeyProvider(settings.keys_path, create_missing=development,
                           development=development)
    try:
        keys.check_directory()  # refused in production when others can enter it
    except KeyError_ as exc:
        raise ConfigurationError(str(exc)) from None
    if not development and keys.any_development_key_on_disk():
        raise ConfigurationError(
            f"production mode refuses to start: {settings.keys_path} holds development keys "
            "(or keys without a production marker)"
        )
    return keys


def build_jpki_keys(settings: Settings) -> SigningKeyProvider:
    """The JPKI CA keys: on a PKCS#11 token when MYNUMBER_PKCS11_LIBRARY is set (token and PIN
    then required), else software keys under KEY_DIR/jpki (development keys in embedded mode;
    production mode refuses any development key found there and needs the passphrase from
    MYNUMBER_JPKI_KEY_PASSPHRASE(_FILE)). Production creates CA keys only in
    ``mynumber keys init-ca``."""
    development = settings.mode is Mode.EMBEDDED
    if settings.pkcs11_library:
        if not settings.pkcs11_token or settings.pkcs11_pin is None:
            raise ConfigurationError(
                "MYNUMBER_PKCS11_LIBRARY needs MYNUMBER_PKCS11_TOKEN and MYNUMBER_PKCS11_PIN"
            )
        return Pkcs11KeyProvider(settings.pkcs11_library, settings.pkcs11_token,
                                 settings.pkcs11_pin.get_secret_value(),
                                 development=development)
    directory = settings.keys_path / "jpki"
    try:
        if not development:
            # Checked before the passphrase: development keys are the worse mistake.
            probe = SoftwareKeyProvider(directory, development=True)
            if probe.any_development_key_on_disk():
                raise ConfigurationError(
                    f"production mode refuses to start: {directory} holds development keys"
                )
            if (directory / SoftwareKeyProvider.PASSPHRASE_FILE).exists():
                logging.getLogger("mynumber.keys").warning(
                    "%s is ignored in production (the passphrase comes from the settings); "
                    "delete it", directory / SoftwareKeyProvider.PASSPHRASE_FILE)
        secret = settings.jpki_key_passphrase
        passphrase = load_passphrase(
            secret.get_secret_value() if secret is not None else None,
            settings.jpki_key_passphrase_file, key_directory=settings.keys_path,
            production=not development,
        )
        return SoftwareKeyProvider(directory, development=development, passphrase=passphrase)
    except KeyError_ as exc:
        raise ConfigurationError(str(exc)) from None


def build_code_cipher(settings: Settings, keys: FileKeyProvider) -> BlockCipher:
    """The 機関別符号 key: on the PKCS#11 token when one is configured, else a key file."""
    if settings.pkcs11_library and settings.pkcs11_token and settings.pkcs11_pin is not None:
        return Pkcs11BlockCipher(settings.pkcs11_library, settings.pkcs11_token,
                                 settings.pkcs11_pin.get_secret_value(),
                                 development=settings.mode is Mode.EMBEDDED)
    return SoftwareBlockCipher(keys.symmetric_key(CODE_KEY, 32))


class _Servers:
    """How the core reaches an agency's intermediate server: in-process, or over mutual TLS
    at the endpoint the directory names (production)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.local: IntermediateServer | None = None
        self._remote: dict[str, HttpIntermediateServer] = {}

    def __call__(self, agency: AgencyRecord) -> IntermediateServer:
        if agency.endpoint is None:
            if self.local is None:
                raise ConfigurationError("no in-process intermediate server is wired")
            return self.local
        remote = self._remote.get(agency.endpoint)
        if remote is None:
            tls = self.settings.tls_dir
            remote = self._remote[agency.endpoint] = HttpIntermediateServer(
                agency.endpoint,
                client_cert=tls / "cert.pem" if tls else None,
                client_key=tls / "key.pem" if tls else None,
                ca_bundle=tls / "ca.pem" if tls else None,
            )
        return remote


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
    registry = RegistryServiceImpl(databases, numbering,
                                   seeding_allowed=settings.mode is Mode.EMBEDDED)
    # Staff sign-in does not depend on the registry: it is handed the municipality check.
    staff_auth = StaffAuthImpl(databases, settings.session_idle_minutes,
                               municipality_exists=registry.municipality_exists)
    jpki = JpkiServiceImpl(databases, build_jpki_keys(settings), registry, settings.public_url)
    registry.subscribe(jpki.on_registry_change)
    card = CardServiceImpl(databases, registry, jpki, CardStore(settings.data_dir / "cards", keys))
    try:
        access_log = MerkleAccessLog(databases, log_signing_key(keys), settings.checkpoint_origin)
        core_key = Ed25519PrivateKey.from_private_bytes(keys.symmetric_key(CORE_SIGNING_KEY, 32))
        servers = _Servers(settings)
        network = NetworkServiceImpl(
            databases, registry, load_legal_table(), build_code_cipher(settings, keys), core_key,
            keys.symmetric_key(SUBJECT_KEY, 32), access_log, servers,
            restricted_disclosure_days=settings.restricted_disclosure_days,
        )
        keyring = build_keyring(keys, development=settings.mode is Mode.EMBEDDED,
                                key_dir=settings.keys_path)
    except KeyError_ as exc:
        raise ConfigurationError(str(exc)) from None
    agencies_server = IntermediateServerImpl(databases, keyring, network.core_public_key())
    servers.local = agencies_server
    agencies = AgenciesServiceImpl(databases, network, registry, keyring)
    portal = PortalServiceImpl(databases, settings, jpki=jpki, agencies=agencies,
                               network=network, access_log=access_log, card=card)
    api_clients = ApiClientsImpl(
        databases, known_scopes=lambda: [source.scope for source in portal.sources()])
    oidc = OpenIdProvider(databases, keys, settings, portal=portal, clients=api_clients,
                          municipalities=registry.municipalities, network=network)
    return Container(settings, databases, keys, registry, staff_auth, jpki, card=card,
                     network=network, network_log=access_log, agencies=agencies,
                     agencies_server=agencies_server, portal=portal, api_clients=api_clients,
                     oidc=oidc)


def sync_directory(container: Container) -> int:
    """Add every agency the legal table's data and the registry's municipalities define."""
    return container.network.sync_directory(build_directory(container.registry.municipalities()))


def create_app(settings: Settings | None = None, container: Container | None = None,
               role: str = "all") -> FastAPI:
    """Build the web app. Routers come from each context; the web package only assembles.
    ``role``: all | core | intermediate (docs/deployment.md)."""
    from mynumber.web.assemble import assemble

    container = container or build_container(settings)
    return assemble(container, role)

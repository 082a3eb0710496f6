"""The composition root: settings -> databases, keys, services -> the FastAPI app.

Nothing connects or reads a key at import; everything happens in :func:`build_container`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar, overload

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.exc import SQLAlchemyError

from mynumber.accounts import events as accounts_events
from mynumber.accounts.bank_clients import BankClientsImpl
from mynumber.accounts.deposit import DepositNumberingServiceImpl
from mynumber.accounts.interfaces import DIGITAL_AGENCY
from mynumber.accounts.provision import AccountProvisionServer, AgencyCodesThroughAgencies
from mynumber.accounts.services import AccountsServiceImpl
from mynumber.agencies import events as agencies_events
from mynumber.agencies.keyring import (
    AGENCY_PROVISION_COMMAND,
    AgencyKeyring,
    DerivedKeyring,
    FileKeyring,
    build_keyring,
    provisioned_agencies,
)
from mynumber.agencies.services import AgenciesServiceImpl, IntermediateServerImpl
from mynumber.agencies.transport import HttpIntermediateServer
from mynumber.auth.services import StaffAuthImpl
from mynumber.card import events as card_events
from mynumber.card.services import CHIP_SEALING_KEY, CardServiceImpl, CardStore
from mynumber.db import CONTEXTS, Databases
from mynumber.envelope import raw_public
from mynumber.insurance import events as insurance_events
from mynumber.insurance.adapters import JpkiCardUsability, RegistryLinks
from mynumber.insurance.eligibility import EligibilityServiceImpl
from mynumber.insurance.face import DeterministicStandInMatcher
from mynumber.insurance.interfaces import FaceMatcher
from mynumber.insurance.services import InsurerServiceImpl
from mynumber.jpki import events as jpki_events
from mynumber.jpki.services import JpkiServiceImpl
from mynumber.juki import events as juki_events
from mynumber.juki.services import JukiServiceImpl
from mynumber.kernel.csrf import KEY_PURPOSE as CSRF_KEY
from mynumber.kernel.events import Dispatcher, Subscriber
from mynumber.keys import (
    CA_PROVISION_COMMAND,
    PROVISION_COMMAND,
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
from mynumber.network.interfaces import AgencyRecord, IntermediateServer, mayor_lookup
from mynumber.network.legal_table import build_directory, load_legal_table
from mynumber.network.log import SIGNING_KEY_PURPOSE, MerkleAccessLog, log_signing_key
from mynumber.network.services import NetworkServiceImpl
from mynumber.portal.interfaces import PORTAL_AGENCY
from mynumber.portal.oauth import PAIRWISE_KEY, ApiClientsImpl, OpenIdProvider, load_signing_key
from mynumber.portal.oauth.keys import ROTATE_COMMAND
from mynumber.portal.services import PortalServiceImpl
from mynumber.registry.numbering import INDEX_KEY, NUMBERING_KEY, POOL_KEY, NoNumbering, Numbering
from mynumber.registry.services import RegistryServiceImpl
from mynumber.settings import Mode, Settings, get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

# The network core's symmetric keys (``mynumber keys init`` provisions them for production).
CODE_KEY = "network.agency_codes"
CORE_SIGNING_KEY = "network.core_signing"
SUBJECT_KEY = "network.subject"
NETWORK_KEYS = (CODE_KEY, CORE_SIGNING_KEY, SUBJECT_KEY, SIGNING_KEY_PURPOSE)
# Further symmetric keys `mynumber keys init` provisions: the chip files' sealing key and the
# web kernel's CSRF key.
SERVICE_KEYS = (CHIP_SEALING_KEY, CSRF_KEY)
# The registry's numbering keys (J-LIS): only the core holds them.
REGISTRY_KEYS = (POOL_KEY, NUMBERING_KEY, INDEX_KEY)

#: The roles a process can run (web/assemble.py serves the same names).
ROLES = ("all", "core", "intermediate", "portal")
# The context databases each role's process connects (readiness, the database-role check).
# The portal builds every context but the intermediate server, as the core does.
ROLE_CONTEXTS: dict[str, tuple[str, ...]] = {
    "all": CONTEXTS, "core": CONTEXTS, "portal": CONTEXTS, "intermediate": ("agencies",),
}
#: The symmetric keys (KEY_DIR/<purpose>.key.json) each role needs; the intermediate server
#: needs none (its agencies' keys and the core's public key only).
ROLE_SYMMETRIC_KEYS: dict[str, tuple[str, ...]] = {
    "all": (*REGISTRY_KEYS, *NETWORK_KEYS, PAIRWISE_KEY, *SERVICE_KEYS),
    "core": (*REGISTRY_KEYS, *NETWORK_KEYS, PAIRWISE_KEY, *SERVICE_KEYS),
    "portal": (*NETWORK_KEYS, PAIRWISE_KEY, *SERVICE_KEYS),
    "intermediate": (),
}
EXPORT_CORE_PUBLIC_COMMAND = "mynumber keys export-core-public --out FILE"


class ConfigurationError(RuntimeError):
    """The settings cannot be used (e.g. production mode with development keys)."""


class RoleError(ConfigurationError, AttributeError):
    """A part of the container this process's role does not build (and holds no keys for).
    An AttributeError too: ``getattr(container, "registry", None)`` gives ``None``."""


# -- the key inventory: what each role needs, where it lives, and whether it is usable -----


@dataclass(frozen=True)
class KeyStatus:
    """One key a role needs: where it lives (a file path or a token label) and its problem
    (``None``: usable). ``command`` creates it."""

    key: str
    where: str
    problem: str | None = None
    command: str = PROVISION_COMMAND

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        if self.ok:
            return f"{self.key} ({self.where}): OK"
        hint = "" if self.command in (self.problem or "") else f" (run `{self.command}`)"
        return f"{self.key} ({self.where}): {self.problem}{hint}"


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigurationError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    return role


def _on_token(settings: Settings) -> bool:
    return bool(settings.pkcs11_library)


def _token_where(settings: Settings, label: str) -> str:
    return f"PKCS#11 token {settings.pkcs11_token!r}, label {label!r}"


def _pkcs11_problem(settings: Settings) -> str | None:
    if settings.pkcs11_library and (not settings.pkcs11_token or settings.pkcs11_pin is None):
        return "MYNUMBER_PKCS11_LIBRARY needs MYNUMBER_PKCS11_TOKEN and MYNUMBER_PKCS11_PIN"
    return None


def load_core_public_key(path: Path) -> bytes:
    """The core's raw Ed25519 public signing key from its PEM (settings.core_public_key_file,
    written on the core by ``mynumber keys export-core-public``)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise ConfigurationError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(f"{path} is not an Ed25519 public key (the core's signing key)")
    return raw_public(key)


def core_public_key_pem(keys: FileKeyProvider) -> bytes:
    """The core's Ed25519 public signing key as PEM (``mynumber keys export-core-public``)."""
    private = Ed25519PrivateKey.from_private_bytes(keys.symmetric_key(CORE_SIGNING_KEY, 32))
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


def key_inventory(settings: Settings, role: str = "all", *,
                  jpki: JpkiServiceImpl | None = None) -> list[KeyStatus]:
    """Every production key ``role`` needs, where it lives, and its problem if any. Creates
    nothing. The JPKI CA keys are checked only with ``jpki`` (their labels are in the jpki
    database): ``mynumber keys check`` and :func:`create_app` pass it, ``build_container``
    does not (``db upgrade`` and ``keys init-ca`` run before the CA exists)."""
    _check_role(role)
    development = settings.mode is Mode.EMBEDDED
    found: list[KeyStatus] = []
    key_dir = settings.keys_path
    keys = FileKeyProvider(key_dir, create_missing=False, development=development)
    try:
        keys.check_directory()
    except KeyError_ as exc:
        found.append(KeyStatus("key directory", str(key_dir), str(exc), f"chmod 700 {key_dir}"))
    if not development and keys.any_development_key_on_disk():
        found.append(KeyStatus(
            "key directory", str(key_dir),
            f"production mode refuses to start: {key_dir} holds development keys (or keys "
            "without a production marker); move them away and provision production keys",
        ))
    pkcs11_problem = _pkcs11_problem(settings)
    if pkcs11_problem:
        found.append(KeyStatus("PKCS#11 settings", str(settings.pkcs11_library), pkcs11_problem,
                               "set MYNUMBER_PKCS11_TOKEN and MYNUMBER_PKCS11_PIN"))
    on_token = _on_token(settings)
    for purpose in ROLE_SYMMETRIC_KEYS[role]:
        if purpose == CODE_KEY and on_token:
            continue  # below
        where = str(key_dir / f"{purpose}.key.json")
        try:
            keys.symmetric_key(purpose, 32)
        except KeyError_ as exc:
            found.append(KeyStatus(purpose, where, str(exc)))
        else:
            found.append(KeyStatus(purpose, where))
    if role != "intermediate":
        found.extend(_code_key_status(settings, keys))
        found.extend(_jpki_status(settings, jpki))
        found.append(_oidc_status(settings))
    found.extend(_agency_status(settings, role))
    if role == "intermediate":
        found.append(_core_public_status(settings))
        if not development:
            found.extend(_foreign_key_status(settings))
    return found


def _foreign_key_status(settings: Settings) -> list[KeyStatus]:
    """Production intermediate server: a key directory holding any key of the core or the
    portal (symmetric keys, the OIDC or JPKI CA keys) is refused. It runs with its agencies'
    keys and the core's public key only, so a compromise of it exposes neither."""
    directory = settings.keys_path
    if not directory.is_dir():
        return []
    foreign = sorted(f.name for f in directory.iterdir()
                     if f.is_file() and (f.name.endswith(".key.json")
                                         or f.name.startswith("portal.oidc_signing")))
    jpki = directory / "jpki"
    if jpki.is_dir() and any(f.is_file() for f in jpki.iterdir()):
        foreign.append("jpki/")
    if not foreign:
        return []
    shown = ", ".join(foreign[:6]) + (f" and {len(foreign) - 6} more" if len(foreign) > 6
                                      else "")
    return [KeyStatus(
        "core keys", str(directory),
        f"an intermediate server holds its agencies' keys and the core's public key only, but "
        f"this key directory also holds {shown}: move them off this host",
        "move the files away")]


def _code_key_status(settings: Settings, keys: FileKeyProvider) -> list[KeyStatus]:
    if not _on_token(settings):
        return []  # a key file, checked with the other symmetric keys
    file = keys.path / f"{CODE_KEY}.key.json"
    statuses = []
    if file.exists():
        statuses.append(KeyStatus(
            f"{CODE_KEY} (file)", str(file),
            "the agency-code key is configured on the PKCS#11 token but a key file exists; "
            "production never falls back to files: verify the token holds the key in use, "
            "then move the file off this host", "move the file away"))
    where = _token_where(settings, Pkcs11BlockCipher.LABEL)
    if _pkcs11_problem(settings):
        return statuses
    assert settings.pkcs11_library and settings.pkcs11_token and settings.pkcs11_pin
    try:
        cipher = Pkcs11BlockCipher(settings.pkcs11_library, settings.pkcs11_token,
                                   settings.pkcs11_pin.get_secret_value(),
                                   development=settings.mode is Mode.EMBEDDED)
        cipher.ensure_key()  # finds it; never creates it in production
    except KeyError_ as exc:
        statuses.append(KeyStatus(CODE_KEY, where, str(exc)))
    else:
        statuses.append(KeyStatus(CODE_KEY, where))
    return statuses


def _jpki_status(settings: Settings, jpki: JpkiServiceImpl | None) -> list[KeyStatus]:
    directory = settings.keys_path / "jpki"
    statuses = []
    if _on_token(settings):
        files = sorted(directory.glob("*.key.pem")) if directory.is_dir() else []
        if files:
            statuses.append(KeyStatus(
                "JPKI CA keys (files)", str(directory),
                f"the CA keys are configured on the PKCS#11 token but {len(files)} software "
                f"CA key file(s) lie in {directory}; production never falls back to files: "
                "move them off this host", "move the files away"))
    else:
        if (directory / SoftwareKeyProvider.PASSPHRASE_FILE).exists():
            statuses.append(KeyStatus(
                "JPKI CA passphrase", str(directory / SoftwareKeyProvider.PASSPHRASE_FILE),
                "a passphrase file lies beside the CA keys; production takes the passphrase "
                "from MYNUMBER_JPKI_KEY_PASSPHRASE(_FILE) only: delete it",
                "delete the file"))
        try:
            build_jpki_keys(settings)
        except ConfigurationError as exc:
            statuses.append(KeyStatus("JPKI CA keys", str(directory), str(exc),
                                      CA_PROVISION_COMMAND))
    if jpki is None:
        return statuses
    try:
        labels = jpki.ca_key_labels()
    except SQLAlchemyError as exc:  # reported by its type only
        statuses.append(KeyStatus("JPKI CA hierarchy", "jpki database",
                                  f"cannot read the CA table ({type(exc).__name__}): run "
                                  "`mynumber db upgrade` first", CA_PROVISION_COMMAND))
        return statuses
    if labels is None:
        statuses.append(KeyStatus("JPKI CA hierarchy", "jpki database",
                                  "not created (production never creates it on first use)",
                                  CA_PROVISION_COMMAND))
        return statuses
    for ca_label, key_label in sorted(labels.items()):
        where = (_token_where(settings, key_label) if _on_token(settings)
                 else str(directory / f"{key_label}.key.pem"))
        try:
            jpki.keys.public_key(key_label)  # loads it: the marker and passphrase are checked
        except KeyError_ as exc:
            statuses.append(KeyStatus(f"JPKI {ca_label}", where, str(exc), CA_PROVISION_COMMAND))
        else:
            statuses.append(KeyStatus(f"JPKI {ca_label}", where, None, CA_PROVISION_COMMAND))
    return statuses


def _oidc_status(settings: Settings) -> KeyStatus:
    where = str(settings.keys_path / "portal.oidc_signing.meta.json")
    try:
        load_signing_key(settings.keys_path, development=settings.mode is Mode.EMBEDDED)
    except (KeyError_, OSError, ValueError) as exc:
        return KeyStatus("OIDC signing key", where, str(exc), ROTATE_COMMAND)
    return KeyStatus("OIDC signing key", where, None, ROTATE_COMMAND)


def _agency_status(settings: Settings, role: str) -> list[KeyStatus]:
    directory = settings.keys_path / "agencies"
    wanted = provisioned_agencies(directory)
    if role != "intermediate" and PORTAL_AGENCY not in wanted:
        wanted.insert(0, PORTAL_AGENCY)  # the portal is itself an agency (自己情報)
    statuses = []
    if not wanted:
        statuses.append(KeyStatus(
            "agency keys", str(directory),
            "no agency's keys are provisioned: an intermediate server serves at least one",
            AGENCY_PROVISION_COMMAND.format(agency_id="ID")))
    keyring = FileKeyring(directory)
    for agency_id in wanted:
        command = AGENCY_PROVISION_COMMAND.format(agency_id=agency_id)
        try:
            keyring.keys(agency_id)
        except KeyError_ as exc:
            statuses.append(KeyStatus(f"agency {agency_id}", str(keyring.path_for(agency_id)),
                                      str(exc), command))
        else:
            statuses.append(KeyStatus(f"agency {agency_id}", str(keyring.path_for(agency_id)),
                                      None, command))
    return statuses


def _core_public_status(settings: Settings) -> KeyStatus:
    path = settings.core_public_key_file
    if path is None:
        return KeyStatus("core public key", "MYNUMBER_CORE_PUBLIC_KEY_FILE",
                         "not set: the intermediate server verifies the core's signature with "
                         "it; export it on the core and copy it here",
                         EXPORT_CORE_PUBLIC_COMMAND)
    try:
        load_core_public_key(path)
    except ConfigurationError as exc:
        return KeyStatus("core public key", str(path), str(exc), EXPORT_CORE_PUBLIC_COMMAND)
    return KeyStatus("core public key", str(path), None, EXPORT_CORE_PUBLIC_COMMAND)


def require_keys(statuses: list[KeyStatus], role: str) -> None:
    """Refuse to start when any key has a problem, naming each and its command."""
    problems = [s for s in statuses if not s.ok]
    if problems:
        lines = "\n".join(f"- {s.line()}" for s in problems)
        raise ConfigurationError(
            f"production mode refuses to start the {role} role; keys are created only by "
            f"explicit commands, never at run time:\n{lines}")


# -- builders --------------------------------------------------------------------------------


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
    production mode refuses any development key found there, any passphrase file beside the
    keys, and needs the passphrase from MYNUMBER_JPKI_KEY_PASSPHRASE(_FILE)). Production
    creates CA keys only in ``mynumber keys init-ca``."""
    development = settings.mode is Mode.EMBEDDED
    if settings.pkcs11_library:
        problem = _pkcs11_problem(settings)
        if problem:
            raise ConfigurationError(problem)
        assert settings.pkcs11_token and settings.pkcs11_pin is not None
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
            passphrase_file = directory / SoftwareKeyProvider.PASSPHRASE_FILE
            if passphrase_file.exists():
                raise ConfigurationError(
                    f"production mode refuses to start: {passphrase_file} lies beside the CA "
                    "keys; the passphrase comes from MYNUMBER_JPKI_KEY_PASSPHRASE(_FILE) only: "
                    "delete the file")
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
    """The 機関別符号 key: on the PKCS#11 token when one is configured, else a key file. Never
    created here in production (``mynumber keys init --production`` does it)."""
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
        #: In-process providers that are not an agencies' intermediate server (デジタル庁's
        #: public_fund_account answers from the accounts context), by agency id.
        self.providers: dict[str, IntermediateServer] = {}
        self._remote: dict[str, HttpIntermediateServer] = {}

    def __call__(self, agency: AgencyRecord) -> IntermediateServer:
        provider = self.providers.get(agency.agency_id)
        if provider is not None and agency.endpoint is None:
            return provider
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


# -- the container ---------------------------------------------------------------------------

_T = TypeVar("_T")


class _Part(Generic[_T]):
    """A part of the container: read it, and :class:`RoleError` when the role did not build
    it; set it (tests swap a service)."""

    name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Part[_T]: ...

    @overload
    def __get__(self, obj: Container, owner: type | None = None) -> _T: ...

    def __get__(self, obj: Container | None, owner: type | None = None) -> _T | _Part[_T]:
        if obj is None:
            return self
        value: _T | None = obj.__dict__.get(f"_{self.name}")
        if value is None:
            raise RoleError(f"the {obj.role} role does not run the {self.name} part "
                            "(and holds none of its keys)")
        return value

    def __set__(self, obj: Container, value: _T | None) -> None:
        obj.__dict__[f"_{self.name}"] = value


class Container:
    """The services of one process. ``role`` says which were built: ``all`` every part;
    ``core`` every part but ``agencies_server`` (the intermediate server); ``portal`` the same
    as ``core`` with a registry holding no numbering keys (its numbering operations raise
    ``NumberingUnavailable``); ``intermediate`` only ``agencies_server`` (and ``keyring``).
    Reading a part the role did not build raises :class:`RoleError` (never ``None`` by
    surprise); assemblers ask :meth:`has` first."""

    def __init__(
        self, settings: Settings, databases: Databases, *, role: str = "all",
        keys: FileKeyProvider | None = None, registry: RegistryServiceImpl | None = None,
        staff_auth: StaffAuthImpl | None = None, jpki: JpkiServiceImpl | None = None,
        card: CardServiceImpl | None = None, network: NetworkServiceImpl | None = None,
        network_log: MerkleAccessLog | None = None, agencies: AgenciesServiceImpl | None = None,
        agencies_server: IntermediateServerImpl | None = None,
        portal: PortalServiceImpl | None = None, api_clients: ApiClientsImpl | None = None,
        oidc: OpenIdProvider | None = None, keyring: AgencyKeyring | None = None,
        events: Dispatcher | None = None, juki: JukiServiceImpl | None = None,
        accounts: AccountsServiceImpl | None = None,
        accounts_provision: AccountProvisionServer | None = None,
        bank_clients: BankClientsImpl | None = None,
        accounts_deposit: DepositNumberingServiceImpl | None = None,
        insurance: InsurerServiceImpl | None = None,
        eligibility: EligibilityServiceImpl | None = None,
        dispatchers: Sequence[Dispatcher] = (),
    ) -> None:
        self.settings = settings
        self._events = events
        #: Every event dispatcher this process runs, one per publishing context's outbox
        #: (the registry's first, then the accounts context's); named by the outbox's
        #: context (:func:`dispatcher_name`). Empty for roles that deliver no events.
        self.dispatchers: list[Dispatcher] = list(dispatchers)
        if events is not None and events not in self.dispatchers:
            self.dispatchers.insert(0, events)
        self.databases = databases
        self.role = _check_role(role)
        self.keyring = keyring
        self._keys = keys
        self._registry = registry
        self._staff_auth = staff_auth
        self._jpki = jpki
        self._card = card
        self._network = network
        self._network_log = network_log
        self._agencies = agencies
        self._agencies_server = agencies_server
        self._portal = portal
        self._api_clients = api_clients
        self._oidc = oidc
        self._juki = juki
        self._accounts = accounts
        self._accounts_provision = accounts_provision
        self._bank_clients = bank_clients
        self._accounts_deposit = accounts_deposit
        self._insurance = insurance
        self._eligibility = eligibility

    keys: _Part[FileKeyProvider] = _Part()
    registry: _Part[RegistryServiceImpl] = _Part()
    staff_auth: _Part[StaffAuthImpl] = _Part()
    jpki: _Part[JpkiServiceImpl] = _Part()
    card: _Part[CardServiceImpl] = _Part()
    network: _Part[NetworkServiceImpl] = _Part()
    network_log: _Part[MerkleAccessLog] = _Part()
    agencies: _Part[AgenciesServiceImpl] = _Part()
    agencies_server: _Part[IntermediateServerImpl] = _Part()
    portal: _Part[PortalServiceImpl] = _Part()
    api_clients: _Part[ApiClientsImpl] = _Part()
    oidc: _Part[OpenIdProvider] = _Part()
    juki: _Part[JukiServiceImpl] = _Part()  # 住基ネット (本人確認情報)
    accounts: _Part[AccountsServiceImpl] = _Part()  # 公金受取口座
    #: デジタル庁's answer to agencies' look-ups of 公金受取口座情報 through the network.
    accounts_provision: _Part[AccountProvisionServer] = _Part()
    #: The bank route's clients (a bank's counter or app; BankKeys for sealing to a bank).
    bank_clients: _Part[BankClientsImpl] = _Part()
    #: 預貯金口座付番 (consent, sealed deliveries to banks) and 預金保険機構's look-ups.
    accounts_deposit: _Part[DepositNumberingServiceImpl] = _Part()
    #: オンライン資格確認, the insurers' side: insurers, enrolment, linking on all four items
    #: through 住基ネット, the review queue, the re-check, documents.
    insurance: _Part[InsurerServiceImpl] = _Part()
    #: オンライン資格確認, the institutions' side: terminals, the card (or 資格確認書) at the
    #: reception, consent per visit, the views it allows; the resident's 初回登録 and history.
    eligibility: _Part[EligibilityServiceImpl] = _Part()
    #: The registry's event dispatcher (core and all roles): delivers every registry change to
    #: the intermediate servers, JPKI, the card, the portal and 住基ネット.
    events: _Part[Dispatcher] = _Part()

    def dispatcher(self, name: str) -> Dispatcher:
        """The dispatcher of the outbox of context ``name`` (``registry``, ``accounts``)."""
        for dispatcher in self.dispatchers:
            if dispatcher_name(dispatcher) == name:
                return dispatcher
        raise RoleError(f"the {self.role} role runs no {name} event dispatcher")

    def has(self, part: str) -> bool:
        """Whether this container built ``part`` (e.g. ``"registry"``)."""
        return getattr(self, f"_{part}", None) is not None

    def close(self) -> None:
        self.databases.dispose()


def dispatcher_name(dispatcher: Dispatcher) -> str:
    """A dispatcher's name: the context whose outbox it delivers (``registry``,
    ``accounts``); what /metrics and ``mynumber events`` label it with."""
    return dispatcher.outbox.context


def build_container(settings: Settings | None = None, role: str = "all") -> Container:
    """Wire the services ``role`` runs (:data:`ROLES`). Production mode first checks every
    key the role needs (:func:`key_inventory`, all but the JPKI CA, which :func:`create_app`
    checks) and refuses to start, naming each bad key and the command creating it."""
    settings = settings or get_settings()
    _check_role(role)
    if settings.mode is Mode.PRODUCTION and not settings.database_url:
        raise ConfigurationError("production mode needs MYNUMBER_DATABASE_URL (PostgreSQL)")
    development = settings.mode is Mode.EMBEDDED
    if not development:
        require_keys(key_inventory(settings, role), role)
    if role == "intermediate":
        return _build_intermediate(settings)
    keys = build_keys(settings)
    try:
        numbering: Numbering = NoNumbering() if role == "portal" else Numbering(keys)
    except KeyError_ as exc:
        raise ConfigurationError(str(exc)) from None
    databases = Databases(settings)
    registry = RegistryServiceImpl(databases, numbering, seeding_allowed=development)
    # Staff sign-in does not depend on the registry: it is handed the municipality check.
    staff_auth = StaffAuthImpl(databases, settings.session_idle_minutes,
                               municipality_exists=registry.municipality_exists)
    jpki = JpkiServiceImpl(databases, build_jpki_keys(settings), registry, settings.public_url)
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
        keyring = build_keyring(keys, development=development, key_dir=settings.keys_path)
    except KeyError_ as exc:
        raise ConfigurationError(str(exc)) from None
    agencies_server = None
    if role == "all":
        agencies_server = IntermediateServerImpl(databases, keyring, network.core_public_key())
        servers.local = agencies_server
    agencies = AgenciesServiceImpl(databases, network, registry, keyring)
    portal = PortalServiceImpl(databases, settings, jpki=jpki, agencies=agencies,
                               network=network, access_log=access_log, card=card)
    api_clients = ApiClientsImpl(
        databases, known_scopes=lambda: [source.scope for source in portal.sources()])
    oidc = OpenIdProvider(databases, keys, settings, portal=portal, clients=api_clients,
                          municipalities=registry.municipalities, network=network)
    # 住基ネット: its copy is fed by the registry's events; the portal's session names the person
    # for the disclosure page through the web assembler's link.
    from mynumber.web.juki_portal import PortalJukiLink

    juki = JukiServiceImpl(databases, network)
    juki.portal_person = PortalJukiLink(portal, jpki)
    # 公金受取口座: reads registrants through the registry's interface; hears of name changes
    # and deaths through the registry's events.
    accounts = AccountsServiceImpl(databases, registry)
    # デジタル庁 answers public_fund_account queries in process from the accounts context (its
    # codes held by the agencies context, like any agency's); the core routes them here.
    accounts_provision = AccountProvisionServer(
        databases, accounts, AgencyCodesThroughAgencies(agencies, registry),
        network.core_public_key(), lambda: keyring.keys(DIGITAL_AGENCY).signing)
    servers.providers[DIGITAL_AGENCY] = accounts_provision
    # オンライン資格確認 (the roles that run 公金受取口座 run it too: all, core, portal). The
    # insurers' side links through 住基ネット (the four items) or the number the insured
    # person gave (the registry resolves it, audited there); the institutions' side verifies
    # cards with JPKI, J-LIS naming a certificate's holder (web/insurance_links.py).
    from mynumber.web.insurance_links import JpkiHolders

    insurance = InsurerServiceImpl(databases, juki, network, RegistryLinks(registry),
                                   cards=JpkiCardUsability(jpki))
    eligibility = EligibilityServiceImpl(databases, jpki, JpkiHolders(jpki),
                                         face_matcher(settings))
    events = None
    dispatchers: list[Dispatcher] = []
    if role in ("all", "core"):
        events = Dispatcher(registry.outbox, registry_subscribers(
            registry=registry, jpki=jpki, card=card, agencies=agencies, portal=portal,
            network=network, juki=juki, accounts=accounts, insurance=insurance))
        # The accounts context's own outbox (registrations, mergers): デジタル庁's enrolment
        # of each registrant and the merger notice (docs/events.md).
        dispatchers = [events, Dispatcher(accounts.outbox, accounts_events.account_subscribers(
            accounts_provision, portal,
            accounts_events.directory_names(lambda: accounts.directory)))]
    # The bank route's clients (signed API requests, the /bank counter's sign-in).
    bank_clients = BankClientsImpl(databases, lambda: accounts.directory)
    # 預貯金口座付番 and 預金保険機構's look-ups: the number sealed for each bank's key (the bank
    # clients' BankKeys), signed by デジタル庁.
    accounts_deposit = DepositNumberingServiceImpl(
        databases, registry, accounts, bank_keys=bank_clients,
        signer=lambda: keyring.keys(DIGITAL_AGENCY).signing)
    return Container(settings, databases, role=role, keys=keys, registry=registry,
                     staff_auth=staff_auth, jpki=jpki, card=card, network=network,
                     network_log=access_log, agencies=agencies,
                     agencies_server=agencies_server, portal=portal, api_clients=api_clients,
                     oidc=oidc, keyring=keyring, events=events, juki=juki,
                     accounts=accounts, accounts_provision=accounts_provision,
                     bank_clients=bank_clients, accounts_deposit=accounts_deposit,
                     insurance=insurance, eligibility=eligibility,
                     dispatchers=dispatchers)


def face_matcher(settings: Settings) -> FaceMatcher | None:
    """The face matcher of オンライン資格確認 (顔認証 at the reception). Embedded mode: the
    deterministic stand-in (``insurance.face``), named as such, so the flow runs end to end.
    Production: none (face confirmation answers ``insurance_face_match_unavailable``; card +
    PIN and the staff's visual check work): the stand-in is trivially satisfiable and must
    never confirm a real patient. A deployment with a certified matcher plugs it in through
    the :class:`~mynumber.insurance.interfaces.FaceMatcher` protocol
    (``container.eligibility.matcher``)."""
    if settings.mode is Mode.EMBEDDED:
        return DeterministicStandInMatcher()
    return None


class _MayorLookup:
    """The mayor agency of a municipality, from the network's directory (read when first
    needed, and again at most once a minute when a municipality is not found: the directory
    is synchronised after the container is built)."""

    def __init__(self, network: NetworkServiceImpl) -> None:
        self.network = network
        self._lookup: Callable[[str], str | None] | None = None
        self._loaded_at = 0.0

    def __call__(self, municipality_code: str) -> str | None:
        now = time.monotonic()
        if self._lookup is None:
            self._lookup, self._loaded_at = mayor_lookup(self.network.agencies()), now
        found = self._lookup(municipality_code)
        if found is None and now - self._loaded_at > 60:
            self._lookup, self._loaded_at = mayor_lookup(self.network.agencies()), now
            found = self._lookup(municipality_code)
        return found


def registry_subscribers(*, registry: RegistryServiceImpl, jpki: JpkiServiceImpl,
                         card: CardServiceImpl, agencies: AgenciesServiceImpl,
                         portal: PortalServiceImpl, network: NetworkServiceImpl,
                         juki: JukiServiceImpl,
                         accounts: AccountsServiceImpl,
                         insurance: InsurerServiceImpl | None = None) -> list[Subscriber]:
    """Who hears of every registry change, in delivery order (docs/events.md)."""
    mayor_of = _MayorLookup(network)
    registry.permit_own_residents(mayor_of)  # the mayors' 副本 need their residents' codes
    copies = agencies_events.subscriber(agencies, registry, mayor_of)
    return [
        Subscriber("jpki.certificates", jpki_events.handler(jpki), jpki_events.TYPES),
        Subscriber("card.cards", card_events.handler(card), card_events.TYPES),
        copies,
        agencies_events.notice_subscriber(copies, portal),
        juki_events.subscriber(juki, registry),
        accounts_events.subscriber(accounts, registry),
        # オンライン資格確認: a death ends the person's open qualification (資格喪失).
        *([insurance_events.subscriber(insurance)] if insurance is not None else []),
    ]


def _development_core_public_key(keys: FileKeyProvider) -> bytes:
    """Embedded mode without MYNUMBER_CORE_PUBLIC_KEY_FILE only: the public half of the
    development core key in the shared development key directory. Never created here (the
    intermediate server makes no core key): the core (or ``mynumber keys init``) makes it."""
    if not keys.has_key(CORE_SIGNING_KEY):
        raise ConfigurationError(
            "the intermediate server needs the core's public signing key: set "
            f"MYNUMBER_CORE_PUBLIC_KEY_FILE (`{EXPORT_CORE_PUBLIC_COMMAND}` on the core), or "
            "in a development key directory shared with the core start the core once first")
    private = Ed25519PrivateKey.from_private_bytes(keys.symmetric_key(CORE_SIGNING_KEY, 32))
    return raw_public(private.public_key())


def _build_intermediate(settings: Settings) -> Container:
    """The intermediate server (中間サーバー): its agencies' keys and the core's public key,
    nothing else; it never creates or reads a core key when MYNUMBER_CORE_PUBLIC_KEY_FILE is
    set (production always). Embedded mode derives the agencies' keys from the development
    master (``agencies.master``) and, without the setting, takes the core's public key from
    the development core key of a key directory shared with the core."""
    keyring: AgencyKeyring
    agencies: list[str] | None = None
    if settings.mode is Mode.EMBEDDED:
        keys = build_keys(settings)
        try:
            keyring = DerivedKeyring.from_provider(keys, development=True)
            if settings.core_public_key_file is not None:
                core_public = load_core_public_key(settings.core_public_key_file)
            else:
                core_public = _development_core_public_key(keys)
        except KeyError_ as exc:
            raise ConfigurationError(str(exc)) from None
    else:
        assert settings.core_public_key_file is not None  # checked by key_inventory
        directory = settings.keys_path / "agencies"
        keyring = FileKeyring(directory)
        agencies = provisioned_agencies(directory)  # serves exactly the agencies it has keys of
        core_public = load_core_public_key(settings.core_public_key_file)
    databases = Databases(settings)
    server = IntermediateServerImpl(databases, keyring, core_public, agencies)
    return Container(settings, databases, role="intermediate", agencies_server=server,
                     keyring=keyring)


def check_ca(container: Container) -> list[KeyStatus]:
    """The JPKI CA keys of a built container (reads the jpki database); nothing for a role
    without JPKI or in embedded mode (created on first use there)."""
    if container.settings.mode is Mode.EMBEDDED or not container.has("jpki"):
        return []
    return [s for s in _jpki_status(container.settings, container.jpki)
            if s.key.startswith("JPKI ") and s.key != "JPKI CA keys (files)"]


def sync_directory(container: Container) -> int:
    """Add every agency the legal table's data and the registry's municipalities define."""
    return container.network.sync_directory(build_directory(container.registry.municipalities()))


def create_app(settings: Settings | None = None, container: Container | None = None,
               role: str = "all") -> FastAPI:
    """Build the web app. Routers come from each context; the web package only assembles.
    ``role``: all | core | intermediate | portal (docs/deployment.md). Production refuses to
    serve a role whose JPKI CA has not been created (``mynumber keys init-ca``)."""
    from mynumber.web.assemble import assemble

    container = container or build_container(settings, role)
    if container.role not in (role, "all"):
        raise ConfigurationError(f"a container built for the {container.role} role cannot "
                                 f"serve the {role} role")
    check_startup(container, role)
    return assemble(container, role)


def check_startup(container: Container, role: str) -> None:
    """What a service checks before it serves, beyond what ``build_container`` checked without
    connecting: the JPKI CA keys (recorded in the jpki database) and, in production, that each
    context's database role is isolated (``mynumber db provision``). Raises
    :class:`ConfigurationError` naming the problem and the command that fixes it."""
    from mynumber.db import DatabaseRoleError

    require_keys(check_ca(container), role)
    try:
        container.databases.check_production_roles(ROLE_CONTEXTS[role])
    except DatabaseRoleError as exc:
        raise ConfigurationError(str(exc)) from None

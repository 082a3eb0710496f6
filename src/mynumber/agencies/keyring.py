"""Each agency's own keys: an Ed25519 key that signs its queries and answers, and an X25519 key
answers are sealed to (``mynumber.envelope``).

Two sources:

- **Embedded (development) mode**: :class:`DerivedKeyring` derives both keys of every agency
  from one development master secret (the key provider's ``agencies.master``) with
  HKDF-SHA256, info ``mynumber agencies/<agency_id>/sign`` resp. ``.../encrypt``. 4,000 agencies
  then need no key files, and restarts give the same keys. Anyone holding the master can
  impersonate every agency, which is why production mode refuses it.
- **Production**: :class:`FileKeyring` reads keys provisioned per agency (by the agency, on its
  own intermediate server) under ``KEY_DIR/agencies/<agency_id>.json``, mode 0600::

      {"agency_id": "mhlw", "development": false,
       "signing_key": "<base64 of the raw 32-byte Ed25519 private key>",
       "encryption_key": "<base64 of the raw 32-byte X25519 private key>"}

  :func:`provision_agency_keys` (``mynumber keys agency <agency_id>``) writes such a file with
  fresh random keys. A file marked ``"development": true`` (or unmarked), readable by group or
  others, or for another agency is refused; a missing file is never created implicitly.

Files are written and read through :mod:`mynumber.keys.files`, under the rule of
:mod:`mynumber.keys.errors`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mynumber.envelope import raw_public
from mynumber.keys import (
    KeyError_,
    KeyFileError,
    KeyProvider,
    check_marker,
    read_secret_file,
    write_owner_only,
)

MASTER_PURPOSE = "agencies.master"
AGENCY_PROVISION_COMMAND = "mynumber keys agency {agency_id}"
AGENCY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class AgencyKeyError(KeyError_):
    """An agency's keys are missing or unacceptable for the configured mode."""


@dataclass(frozen=True)
class AgencyKeys:
    agency_id: str
    signing: ed25519.Ed25519PrivateKey
    encryption: x25519.X25519PrivateKey
    signing_public: bytes  # raw, 32 bytes
    encryption_public: bytes  # raw, 32 bytes

    @classmethod
    def from_raw(cls, agency_id: str, signing: bytes, encryption: bytes) -> AgencyKeys:
        sign = ed25519.Ed25519PrivateKey.from_private_bytes(signing)
        enc = x25519.X25519PrivateKey.from_private_bytes(encryption)
        return cls(agency_id, sign, enc, raw_public(sign.public_key()),
                   raw_public(enc.public_key()))


class AgencyKeyring(Protocol):
    def keys(self, agency_id: str) -> AgencyKeys: ...


def check_agency_id(agency_id: str) -> str:
    if not isinstance(agency_id, str) or not AGENCY_ID.match(agency_id):
        raise AgencyKeyError("not a valid agency id")
    return agency_id


class _Cached:
    def __init__(self) -> None:
        self._cache: dict[str, AgencyKeys] = {}
        self._lock = threading.Lock()

    def keys(self, agency_id: str) -> AgencyKeys:
        found = self._cache.get(agency_id)
        if found is not None:
            return found
        check_agency_id(agency_id)
        loaded = self._load(agency_id)
        with self._lock:
            return self._cache.setdefault(agency_id, loaded)

    def _load(self, agency_id: str) -> AgencyKeys:  # pragma: no cover - abstract
        raise NotImplementedError


class DerivedKeyring(_Cached):
    """Development keys derived from one master secret (embedded mode only)."""

    def __init__(self, master: bytes) -> None:
        super().__init__()
        if len(master) < 32:
            raise AgencyKeyError("the agencies master secret must have at least 32 bytes")
        self._master = master

    @classmethod
    def from_provider(cls, provider: KeyProvider, *, development: bool) -> DerivedKeyring:
        if not development:
            raise AgencyKeyError(
                "derived agency keys are for development only; production mode needs keys "
                "provisioned per agency under KEY_DIR/agencies/<agency_id>.json"
            )
        return cls(provider.symmetric_key(MASTER_PURPOSE, 32))

    def _derive(self, agency_id: str, purpose: str) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None,
            info=f"mynumber agencies/{agency_id}/{purpose}".encode(),
        ).derive(self._master)

    def _load(self, agency_id: str) -> AgencyKeys:
        return AgencyKeys.from_raw(
            agency_id, self._derive(agency_id, "sign"), self._derive(agency_id, "encrypt")
        )


class FileKeyring(_Cached):
    """Per-agency keys provisioned as files (production)."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def path_for(self, agency_id: str) -> Path:
        return self.directory / f"{check_agency_id(agency_id)}.json"

    def _load(self, agency_id: str) -> AgencyKeys:
        file = self.path_for(agency_id)
        if not file.exists():
            # Never created here: an agency's keys are provisioned on its own server.
            command = AGENCY_PROVISION_COMMAND.format(agency_id=agency_id)
            raise AgencyKeyError(
                f"no keys provisioned for agency {agency_id!r} in {self.directory}; production "
                f"mode never creates keys implicitly: run `{command}` on the agency's server"
            )
        try:
            data = json.loads(read_secret_file(file, production=True))
        except KeyFileError as exc:
            raise AgencyKeyError(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise AgencyKeyError(f"cannot read the keys of agency {agency_id!r}: {exc}") from None
        if not isinstance(data, dict):
            raise AgencyKeyError(f"the keys of agency {agency_id!r} are malformed")
        try:
            check_marker(data.get("development"), development=False,
                         what=f"the keys of agency {agency_id!r}")
        except KeyError_ as exc:
            raise AgencyKeyError(f"the keys of agency {agency_id!r} are not production keys: "
                                 f"{exc}") from None
        if data.get("agency_id") != agency_id:
            raise AgencyKeyError(f"{file} holds the keys of another agency")
        try:
            signing = base64.b64decode(data["signing_key"], validate=True)
            encryption = base64.b64decode(data["encryption_key"], validate=True)
            return AgencyKeys.from_raw(agency_id, signing, encryption)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise AgencyKeyError(f"the keys of agency {agency_id!r} are malformed") from None


def provision_agency_keys(directory: Path, agency_id: str) -> Path:
    """Write fresh production keys for one agency (0600; refuses to overwrite)."""
    check_agency_id(agency_id)
    body = json.dumps({
        "agency_id": agency_id,
        "development": False,
        "signing_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "encryption_key": base64.b64encode(secrets.token_bytes(32)).decode(),
    })
    try:
        return write_owner_only(directory / f"{agency_id}.json", body.encode())
    except KeyFileError as exc:
        raise AgencyKeyError(str(exc)) from None


def provisioned_agencies(directory: Path) -> list[str]:
    """The agency ids with a key file under ``directory`` (KEY_DIR/agencies), sorted."""
    if not directory.is_dir():
        return []
    return sorted(f.name.removesuffix(".json") for f in directory.glob("*.json")
                  if AGENCY_ID.match(f.name.removesuffix(".json")))


# -- the public half, handed to the core's operator ------------------------------------------

PUBLIC_FORMAT = "mynumber-agency-public-keys/1"


def _pem(key: ed25519.Ed25519PublicKey | x25519.X25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_keys_document(keys: AgencyKeys) -> dict[str, str]:
    """An agency's public keys as ``mynumber keys agency-public`` writes them (JSON object):
    raw keys as hex (what ``network register-keys`` registers) and the same keys as PEM."""
    return {
        "format": PUBLIC_FORMAT,
        "agency_id": keys.agency_id,
        "signing_key": keys.signing_public.hex(),
        "encryption_key": keys.encryption_public.hex(),
        "signing_key_pem": _pem(keys.signing.public_key()),
        "encryption_key_pem": _pem(keys.encryption.public_key()),
    }


def parse_public_keys(data: bytes, agency_id: str) -> tuple[bytes, bytes]:
    """The raw (Ed25519 signing, X25519 encryption) public keys of ``agency_id`` from a
    document written by :func:`public_keys_document`; :class:`AgencyKeyError` when it is not
    one, names another agency, or its PEM and hex disagree."""
    check_agency_id(agency_id)
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise AgencyKeyError("the public-key file is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != PUBLIC_FORMAT:
        raise AgencyKeyError(f"the public-key file is not in the {PUBLIC_FORMAT} format "
                             "(write it with `mynumber keys agency-public ID --out FILE`)")
    if document.get("agency_id") != agency_id:
        raise AgencyKeyError(f"the public-key file holds the keys of agency "
                             f"{str(document.get('agency_id'))[:64]!r}, not {agency_id!r}")
    found: list[bytes] = []
    for name, kind in (("signing_key", ed25519.Ed25519PublicKey),
                       ("encryption_key", x25519.X25519PublicKey)):
        value = document.get(name)
        try:
            raw = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise AgencyKeyError(f"{name}: expected 64 hex characters (a raw 32-byte key)")
        pem = document.get(f"{name}_pem")
        if pem is not None:
            try:
                loaded = serialization.load_pem_public_key(str(pem).encode())
            except (ValueError, TypeError):
                raise AgencyKeyError(f"{name}_pem is not a PEM public key") from None
            if not isinstance(loaded, kind) or raw_public(loaded) != raw:
                raise AgencyKeyError(f"{name}_pem does not match {name}")
        found.append(raw)
    return found[0], found[1]


def read_agency_public_keys(path: Path, agency_id: str) -> tuple[bytes, bytes]:
    """:func:`parse_public_keys` of a file (``network register-keys ID --public-keys FILE``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AgencyKeyError(f"cannot read {path}: {exc.strerror}") from None
    return parse_public_keys(data, agency_id)


def build_keyring(provider: KeyProvider, *, development: bool, key_dir: Path) -> AgencyKeyring:
    """Derived development keys in embedded mode; provisioned files under
    ``key_dir/agencies`` in production."""
    if development:
        return DerivedKeyring.from_provider(provider, development=True)
    return FileKeyring(key_dir / "agencies")

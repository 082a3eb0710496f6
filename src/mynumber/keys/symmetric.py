"""Symmetric keys: secret bytes by purpose (FF1 keys, MAC keys, seeds of other keys), and the
AES block cipher of the network's agency codes.

:class:`FileKeyProvider` keeps each key as a small JSON file ``<purpose>.key.json`` (0600, in a
0700 directory) that says whether it is a development key::

    {"purpose": "registry.numbering", "development": false, "key": "<base64>"}

The development/production rule is :mod:`mynumber.keys.errors`'; files are written and read only
through :mod:`mynumber.keys.files`.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mynumber.keys.errors import (
    PROVISION_COMMAND,
    KeyError_,
    check_marker,
    is_development_marker,
    not_provisioned,
)
from mynumber.keys.files import KeyFileError, check_private, read_secret_file, write_owner_only


class KeyProvider(Protocol):
    @property
    def is_development(self) -> bool:
        """True when any key handed out so far is a development key."""
        ...

    def symmetric_key(self, purpose: str, length: int = 32) -> bytes:
        """The secret key for ``purpose`` (e.g. ``registry.numbering``)."""
        ...


class FileKeyProvider:
    """Keys as small JSON files in a directory with owner-only permissions.

    ``development`` is the mode: development keys are accepted (and, with ``create_missing``,
    created on first use) only when it is true. Production (``development=False``) never
    creates a key implicitly, so ``create_missing`` is refused there."""

    def __init__(self, path: Path, *, create_missing: bool, development: bool) -> None:
        if create_missing and not development:
            raise KeyError_(
                "production mode never creates keys implicitly "
                f"(create_missing needs development=True); run `{PROVISION_COMMAND}`"
            )
        self.path = path
        self.create_missing = create_missing
        self.development = development
        self._cache: dict[str, bytes] = {}
        self._saw_development = False
        self._lock = threading.Lock()

    @property
    def is_development(self) -> bool:
        return self._saw_development

    def _file(self, purpose: str) -> Path:
        if not purpose.replace(".", "").replace("_", "").replace("-", "").isalnum():
            raise KeyError_(f"bad key purpose {purpose!r}")
        return self.path / f"{purpose}.key.json"

    def has_key(self, purpose: str) -> bool:
        return self._file(purpose).exists()

    def symmetric_key(self, purpose: str, length: int = 32) -> bytes:
        cached = self._cache.get(purpose)
        if cached is not None:
            return cached
        file = self._file(purpose)
        if not file.exists():
            if not self.create_missing:
                raise not_provisioned(f"key {purpose!r}", self.path)
            try:
                self.write_key(purpose, secrets.token_bytes(length), development=True)
            except KeyFileError:
                if not file.exists():
                    raise
                # another thread or process created it first: use theirs
        try:
            data = json.loads(read_secret_file(file, production=not self.development))
            key = base64.b64decode(data["key"], validate=True)
        except (ValueError, TypeError, KeyError, binascii.Error):
            raise KeyError_(f"key file {file} is malformed") from None
        if check_marker(data.get("development"), development=self.development,
                        what=f"key {purpose!r}"):
            with self._lock:
                self._saw_development = True
        if len(key) != length:
            raise KeyError_(f"key {purpose!r} has {len(key)} bytes, expected {length}")
        self._cache[purpose] = key
        return key

    def write_key(self, purpose: str, key: bytes, *, development: bool) -> Path:
        """Provision one key (the explicit path: ``mynumber keys init``); never overwrites."""
        body = json.dumps(
            {"purpose": purpose, "development": development,
             "key": base64.b64encode(key).decode()}
        )
        return write_owner_only(self._file(purpose), body.encode())

    def check_directory(self) -> None:
        """Refuse (production) or warn about (embedded) a key directory others can enter."""
        if self.path.exists():
            check_private(self.path, production=not self.development)

    def any_development_key_on_disk(self) -> bool:
        """Whether any key file here is a development key (unmarked counts as development)."""
        if not self.path.exists():
            return False
        for file in self.path.glob("*.key.json"):
            try:
                marker = json.loads(file.read_text()).get("development")
            except (OSError, ValueError, AttributeError):
                return True  # unreadable or not an object: not a production key
            if is_development_marker(marker):
                return True
        return False


class BlockCipher(Protocol):
    """AES-256 over whole 16-byte blocks (ECB), keyed by the core's agency-code key."""

    def encrypt_blocks(self, data: bytes) -> bytes: ...

    def decrypt_blocks(self, data: bytes) -> bytes: ...


class SoftwareBlockCipher:
    """The agency-code cipher with the key in memory (from a :class:`FileKeyProvider`)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the agency-code key must be 32 bytes (AES-256)")
        # ECB is right here: one block per value, see mynumber.network.agency_codes.
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305

    def encrypt_blocks(self, data: bytes) -> bytes:
        encryptor = self._cipher.encryptor()
        return encryptor.update(data) + encryptor.finalize()

    def decrypt_blocks(self, data: bytes) -> bytes:
        decryptor = self._cipher.decryptor()
        return decryptor.update(data) + decryptor.finalize()

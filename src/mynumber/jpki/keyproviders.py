"""Signing-key providers for the JPKI CAs: RSA private keys that never leave the provider.

A :class:`SigningKeyProvider` creates RSA key pairs under a *label*, hands out the public key and
signs with RSASSA-PKCS1-v1_5 / SHA-256 (sha256WithRSAEncryption, the JPKI algorithm). No method
returns private key material.

Two implementations:

* :class:`SoftwareKeyProvider` -- keys made with ``cryptography`` and kept in a directory as
  encrypted PKCS#8 PEM files (owner-only, ``0600``), under a random passphrase kept in a ``0600``
  file in the same directory (created on first use). Each key has a small ``<label>.meta.json``
  saying whether it is a development key. For the embedded mode (``development=True``: its keys
  are marked development) and for tests. With ``development=False`` it refuses to use a key that
  is marked development (or has no marker), like :mod:`mynumber.keys`.
* :class:`Pkcs11KeyProvider` -- keys generated *on* a PKCS#11 token (SoftHSM2 in tests, a hardware
  HSM in production) through python-pkcs11, stored on the token with ``SENSITIVE=True`` and
  ``EXTRACTABLE=False``; signing is ``CKM_SHA256_RSA_PKCS`` on the token.

How settings should choose (for whoever wires this into :mod:`mynumber.app`):

* ``MYNUMBER_PKCS11_LIBRARY`` set (path of the PKCS#11 module, e.g.
  ``/usr/lib/softhsm/libsofthsm2.so``) -> ``Pkcs11KeyProvider(library_path=...,
  token_label=MYNUMBER_PKCS11_TOKEN, user_pin=MYNUMBER_PKCS11_PIN)``; the token and the PIN are
  then required and there is no fallback to software keys.
* otherwise, in the embedded mode -> ``SoftwareKeyProvider(<key_dir>/jpki, development=True)``.
* otherwise (production without a token) -> refuse to start, or, when the operator explicitly
  provisions software CA keys, ``SoftwareKeyProvider(<key_dir>/jpki, development=False)``.

The PIN is a secret: read it from the environment or a secrets file, never log it.

PKCS#11 notes: a process has one login state per token (logging in twice fails with
``CKR_USER_ALREADY_LOGGED_IN``, logging out ends every session), so all providers for the same
library and token in a process share one lazily opened, logged-in session, used under a lock
(the library is initialised without OS locking, so calls into it are serialised). A forked child
re-initialises the library before its first use. Nothing is opened at import time.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import pkcs11
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.util.rsa import encode_rsa_public_key

from mynumber.tokens import KeyProviderError, shared_session

__all__ = [
    "KeyExistsError",
    "KeyProviderError",
    "Pkcs11KeyProvider",
    "PublicKeyHandle",
    "SigningAlgorithm",
    "SigningKeyProvider",
    "SoftwareKeyProvider",
    "UnknownKeyError",
]

SigningAlgorithm = Literal["sha256"]

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MIN_BITS = 2048
_T = TypeVar("_T")


class UnknownKeyError(KeyProviderError, LookupError):
    """No key with this label in the provider."""


class KeyExistsError(KeyProviderError):
    """A key with this label already exists; keys are never overwritten."""


@dataclass(frozen=True)
class PublicKeyHandle:
    """The public half of a key pair kept in a provider, and the label that names it."""

    label: str
    public_key: rsa.RSAPublicKey


class SigningKeyProvider(Protocol):
    """Where the CA private keys live. Keys never leave the provider."""

    @property
    def is_development(self) -> bool:
        """True when the keys are development keys (embedded mode), not production keys."""
        ...

    def generate_rsa(self, label: str, bits: int = 2048) -> PublicKeyHandle:
        """Create a non-extractable RSA key pair named ``label``; return its public half.

        Raises :class:`KeyExistsError` when ``label`` is taken.
        """
        ...

    def public_key(self, label: str) -> rsa.RSAPublicKey:
        """The public key of ``label``; :class:`UnknownKeyError` when there is none."""
        ...

    def sign(self, label: str, data: bytes, algorithm: SigningAlgorithm = "sha256") -> bytes:
        """RSASSA-PKCS1-v1_5 signature over ``data`` with SHA-256 (sha256WithRSAEncryption)."""
        ...

    def has_key(self, label: str) -> bool:
        """Whether a key named ``label`` exists."""
        ...


def _check_label(label: str) -> str:
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise KeyProviderError(
            f"bad key label {label!r}: use 1-64 of A-Z a-z 0-9 . _ - (not starting with . _ -)"
        )
    return label


def _check_bits(bits: int) -> int:
    if bits < _MIN_BITS or bits % 256:
        raise KeyProviderError(
            f"RSA key size {bits} refused: at least {_MIN_BITS}, a multiple of 256"
        )
    return bits


def _check_algorithm(algorithm: str) -> None:
    if algorithm != "sha256":
        raise KeyProviderError(f"unsupported signing algorithm {algorithm!r}; only 'sha256'")


def _write_new_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``path`` atomically with ``mode`` from the start; never replace an existing file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails with FileExistsError instead of overwriting
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Software keys


class SoftwareKeyProvider:
    """RSA keys in a directory, as passphrase-encrypted PKCS#8 PEM files with mode 0600."""

    PASSPHRASE_FILE = "passphrase"  # noqa: S105 - a file name

    def __init__(self, directory: Path, development: bool) -> None:
        self.directory = Path(directory)
        self.development = development
        self._lock = threading.RLock()
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._passphrase: bytes | None = None

    @property
    def is_development(self) -> bool:
        return self.development

    def __repr__(self) -> str:
        return f"SoftwareKeyProvider({str(self.directory)!r}, development={self.development})"

    # files

    def _key_file(self, label: str) -> Path:
        return self.directory / f"{_check_label(label)}.key.pem"

    def _meta_file(self, label: str) -> Path:
        return self.directory / f"{_check_label(label)}.meta.json"

    def _ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    def _load_passphrase(self, *, create: bool) -> bytes:
        if self._passphrase is not None:
            return self._passphrase
        file = self.directory / self.PASSPHRASE_FILE
        if not file.exists():
            if not create:
                raise KeyProviderError(f"no passphrase file {file}: the key store is damaged")
            self._ensure_directory()
            try:
                _write_new_file(file, secrets.token_urlsafe(48).encode() + b"\n")
            except FileExistsError:
                pass  # another process created it first: use theirs
        mode = file.stat().st_mode
        if mode & 0o077:
            raise KeyProviderError(
                f"{file} is readable by others (mode {oct(mode & 0o777)}); chmod 600 it"
            )
        passphrase = file.read_bytes().strip()
        if not passphrase:
            raise KeyProviderError(f"{file} is empty")
        self._passphrase = passphrase
        return passphrase

    def _is_development_key(self, label: str) -> bool:
        try:
            meta = json.loads(self._meta_file(label).read_text())
        except (OSError, ValueError):
            return True  # no marker: assume the worst
        return meta.get("development") is not False

    # the provider

    def has_key(self, label: str) -> bool:
        return self._key_file(label).exists()

    def generate_rsa(self, label: str, bits: int = 2048) -> PublicKeyHandle:
        _check_bits(bits)
        key_file = self._key_file(label)
        with self._lock:
            if key_file.exists():
                raise KeyExistsError(f"key {label!r} already exists in {self.directory}")
            passphrase = self._load_passphrase(create=True)
            private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
            pem = private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(passphrase),
            )
            meta = {
                "label": label,
                "algorithm": "RSA",
                "bits": bits,
                "development": self.development,
            }
            try:
                _write_new_file(key_file, pem)
            except FileExistsError:
                raise KeyExistsError(f"key {label!r} already exists in {self.directory}") from None
            meta_file = self._meta_file(label)
            meta_file.unlink(missing_ok=True)  # a stale marker from an interrupted run
            _write_new_file(meta_file, json.dumps(meta).encode())
            self._keys[label] = private
            return PublicKeyHandle(label, private.public_key())

    def _private(self, label: str) -> rsa.RSAPrivateKey:
        key_file = self._key_file(label)
        with self._lock:
            if label in self._keys:
                return self._keys[label]
            if not key_file.exists():
                raise UnknownKeyError(f"no key {label!r} in {self.directory}")
            if not self.development and self._is_development_key(label):
                raise KeyProviderError(
                    f"key {label!r} is a development key; production mode refuses it"
                )
            mode = key_file.stat().st_mode
            if mode & 0o077:
                raise KeyProviderError(
                    f"{key_file} is readable by others (mode {oct(mode & 0o777)}); chmod 600 it"
                )
            passphrase = self._load_passphrase(create=False)
            try:
                private = serialization.load_pem_private_key(key_file.read_bytes(), passphrase)
            except (ValueError, TypeError) as exc:
                raise KeyProviderError(f"cannot decrypt key {label!r} in {self.directory}") from exc
            if not isinstance(private, rsa.RSAPrivateKey):
                raise KeyProviderError(f"key {label!r} is not an RSA key")
            self._keys[label] = private
            return private

    def public_key(self, label: str) -> rsa.RSAPublicKey:
        return self._private(label).public_key()

    def sign(self, label: str, data: bytes, algorithm: SigningAlgorithm = "sha256") -> bytes:
        _check_algorithm(algorithm)
        return self._private(label).sign(data, padding.PKCS1v15(), hashes.SHA256())


# --------------------------------------------------------------------------------------------
# PKCS#11 tokens


class Pkcs11KeyProvider:
    """RSA keys generated and kept on a PKCS#11 token; signing happens on the token."""

    def __init__(
        self, library_path: str, token_label: str, user_pin: str, *, development: bool = False
    ) -> None:
        if not library_path or not token_label or not user_pin:
            raise KeyProviderError(
                "a PKCS#11 provider needs a library path, a token label and a PIN"
            )
        self.library_path = library_path
        self.token_label = token_label
        self.development = development
        self._token = shared_session(library_path, token_label, user_pin)

    @property
    def is_development(self) -> bool:
        return self.development

    def __repr__(self) -> str:  # never shows the PIN
        return f"Pkcs11KeyProvider({self.library_path!r}, token={self.token_label!r})"

    @staticmethod
    def _find(session: pkcs11.Session, object_class: Any, label: str) -> Any:
        try:
            return session.get_key(object_class=object_class, key_type=KeyType.RSA, label=label)
        except p11e.NoSuchKey:
            raise UnknownKeyError(
                f"no RSA key {label!r} on token {session.token.label!r}"
            ) from None
        except p11e.MultipleObjectsReturned:
            raise KeyProviderError(f"more than one RSA key {label!r} on the token") from None

    def has_key(self, label: str) -> bool:
        _check_label(label)
        try:
            self._token.run(lambda s: self._find(s, ObjectClass.PRIVATE_KEY, label))
        except UnknownKeyError:
            return False
        return True

    def generate_rsa(self, label: str, bits: int = 2048) -> PublicKeyHandle:
        _check_label(label)
        _check_bits(bits)

        def generate(session: pkcs11.Session) -> rsa.RSAPublicKey:
            try:
                self._find(session, ObjectClass.PRIVATE_KEY, label)
            except UnknownKeyError:
                pass
            else:
                raise KeyExistsError(f"key {label!r} already exists on token {self.token_label!r}")
            public, _private = session.generate_keypair(
                KeyType.RSA,
                bits,
                id=secrets.token_bytes(16),
                label=label,
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={
                    Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01",
                    Attribute.VERIFY: True,
                    Attribute.ENCRYPT: False,
                    Attribute.WRAP: False,
                    Attribute.MODIFIABLE: False,
                },
                private_template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.DECRYPT: False,
                    Attribute.UNWRAP: False,
                    Attribute.DERIVE: False,
                    Attribute.MODIFIABLE: False,
                },
            )
            return _to_cryptography(public)

        return PublicKeyHandle(label, self._token.run(generate))

    def public_key(self, label: str) -> rsa.RSAPublicKey:
        _check_label(label)
        return self._token.run(
            lambda s: _to_cryptography(self._find(s, ObjectClass.PUBLIC_KEY, label))
        )

    def sign(self, label: str, data: bytes, algorithm: SigningAlgorithm = "sha256") -> bytes:
        _check_label(label)
        _check_algorithm(algorithm)

        def sign(session: pkcs11.Session) -> bytes:
            key = self._find(session, ObjectClass.PRIVATE_KEY, label)
            return bytes(key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))

        return self._token.run(sign)


def _to_cryptography(public: Any) -> rsa.RSAPublicKey:
    # encode_rsa_public_key gives PKCS#1 RSAPublicKey DER, which load_der_public_key accepts.
    key = serialization.load_der_public_key(encode_rsa_public_key(public))
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyProviderError("the token returned a public key that is not RSA")
    return key

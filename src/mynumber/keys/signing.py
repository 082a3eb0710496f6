"""RSA signing-key providers (the JPKI CAs): private keys that never leave the provider.

A :class:`SigningKeyProvider` creates RSA key pairs under a *label*, hands out the public key and
signs with RSASSA-PKCS1-v1_5 / SHA-256 (sha256WithRSAEncryption, the JPKI algorithm). No method
returns private key material.

Two implementations:

* :class:`SoftwareKeyProvider` -- keys made with ``cryptography`` and kept in a directory as
  encrypted PKCS#8 PEM files (owner-only, ``0600``, written by :mod:`mynumber.keys.files`).
  Each key has a small ``<label>.meta.json`` saying whether it is a development key.
  The passphrase: in the embedded mode (``development=True``) a random one kept in a ``0600``
  file beside the keys, created on first use, unless one is given. In production it must be
  given (``MYNUMBER_JPKI_KEY_PASSPHRASE`` or a file outside the key directory,
  ``MYNUMBER_JPKI_KEY_PASSPHRASE_FILE``): a passphrase beside the key it protects protects
  nothing once the directory leaks, so production never writes or reads one there.
* :class:`Pkcs11KeyProvider` -- keys generated *on* a PKCS#11 token (SoftHSM2 in tests, a hardware
  HSM in production) through python-pkcs11, stored on the token with ``SENSITIVE=True`` and
  ``EXTRACTABLE=False``; signing is ``CKM_SHA256_RSA_PKCS`` on the token. No passphrase: the
  token's PIN guards it.

The development/production rule (:mod:`mynumber.keys.errors`) holds for both: in production
(``development=False``) a key is created only inside :meth:`provisioning`
(``mynumber keys init-ca``), never on first use; the software provider refuses a key marked
development or with no marker. ``mynumber.app.build_jpki_keys`` chooses the provider from the
settings. The PIN and the passphrase are secrets: never logged, never in a ``repr``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pkcs11
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.util.rsa import encode_rsa_public_key

from mynumber.keys.errors import (
    KeyExistsError,
    KeyProviderError,
    UnknownKeyError,
    check_marker,
    not_provisioned,
)
from mynumber.keys.files import (
    KeyFileError,
    check_private,
    ensure_private_dir,
    read_secret_file,
    write_owner_only,
)
from mynumber.keys.pkcs11 import shared_session

__all__ = [
    "CA_PROVISION_COMMAND",
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

#: Creates the JPKI CA hierarchy (its keys) in production, after ``mynumber db upgrade``.
CA_PROVISION_COMMAND = "mynumber keys init-ca"
#: The shortest passphrase production accepts for software CA keys.
MIN_PASSPHRASE_LENGTH = 16

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MIN_BITS = 2048


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

    def provisioning(self) -> AbstractContextManager[None]:
        """A context manager inside which production mode may create keys (the explicit
        provisioning step); outside it :meth:`generate_rsa` raises :class:`KeyNotProvisioned`."""
        ...


class _Provisioning:
    """The one rule for creating signing keys: always in development, in production only
    inside :meth:`provisioning` (never on first use)."""

    development: bool
    provision_command: str

    def _init_provisioning(self, development: bool, provision_command: str) -> None:
        self.development = development
        self.provision_command = provision_command
        self._provisioning = 0
        self._provisioning_lock = threading.Lock()

    @property
    def is_development(self) -> bool:
        return self.development

    @contextmanager
    def provisioning(self) -> Iterator[None]:
        with self._provisioning_lock:
            self._provisioning += 1
        try:
            yield
        finally:
            with self._provisioning_lock:
                self._provisioning -= 1

    def _check_may_create(self, label: str, where: object) -> None:
        if not (self.development or self._provisioning):
            raise not_provisioned(f"signing key {label!r}", where, self.provision_command)


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


# --------------------------------------------------------------------------------------------
# Software keys


def load_passphrase(
    value: str | None, file: Path | None, *, key_directory: Path, production: bool
) -> bytes | None:
    """The software CA key passphrase from the settings: the value itself, or a file.

    The file must lie outside ``key_directory`` (a passphrase beside the keys it encrypts adds
    nothing) and be readable by its owner only (refused in production, warned in embedded).
    ``None`` when neither is set: the embedded mode then keeps its generated file."""
    if value is not None and file is not None:
        raise KeyProviderError(
            "set either MYNUMBER_JPKI_KEY_PASSPHRASE or MYNUMBER_JPKI_KEY_PASSPHRASE_FILE, not both"
        )
    if value is not None:
        return value.encode()
    if file is None:
        return None
    if file.resolve().is_relative_to(key_directory.resolve()):
        raise KeyProviderError(
            f"the CA key passphrase file {file} lies inside the key directory {key_directory}; "
            "keep it elsewhere (e.g. a secrets mount), or the passphrase protects nothing"
        )
    return read_secret_file(file, production=production)



class SoftwareKeyProvider(_Provisioning):
    """RSA keys in a directory, as passphrase-encrypted PKCS#8 PEM files with mode 0600."""

    PASSPHRASE_FILE = "passphrase"  # noqa: S105 - a file name (embedded mode only)

    def __init__(
        self,
        directory: Path,
        development: bool,
        *,
        passphrase: bytes | None = None,
        provision_command: str = CA_PROVISION_COMMAND,
    ) -> None:
        self._init_provisioning(development, provision_command)
        self.directory = Path(directory)
        self._lock = threading.RLock()
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        if passphrase is not None:
            passphrase = passphrase.strip()
            if len(passphrase) < (1 if development else MIN_PASSPHRASE_LENGTH):
                raise KeyProviderError(
                    f"the CA key passphrase must have at least {MIN_PASSPHRASE_LENGTH} characters"
                )
        elif not development:
            raise KeyProviderError(
                "production mode refuses to start: software CA keys need a passphrase from the "
                "settings: set MYNUMBER_JPKI_KEY_PASSPHRASE, or MYNUMBER_JPKI_KEY_PASSPHRASE_FILE "
                "(a file outside the key directory); or keep the CA keys on a PKCS#11 token "
                "(MYNUMBER_PKCS11_LIBRARY). Production never keeps the passphrase beside the keys"
            )
        self._passphrase = passphrase

    def __repr__(self) -> str:  # never shows the passphrase
        return f"SoftwareKeyProvider({str(self.directory)!r}, development={self.development})"

    # files

    def _key_file(self, label: str) -> Path:
        return self.directory / f"{_check_label(label)}.key.pem"

    def _meta_file(self, label: str) -> Path:
        return self.directory / f"{_check_label(label)}.meta.json"

    def _load_passphrase(self, *, create: bool) -> bytes:
        if self._passphrase is not None:
            return self._passphrase
        # Only the embedded mode gets here (production must be given its passphrase).
        file = self.directory / self.PASSPHRASE_FILE
        if not file.exists():
            if not create:
                raise KeyProviderError(f"no passphrase file {file}: the key store is damaged")
            try:
                write_owner_only(file, secrets.token_urlsafe(48).encode() + b"\n")
            except KeyFileError:
                if not file.exists():
                    raise  # not the race with another process: a real failure
        passphrase = read_secret_file(file, production=not self.development).strip()
        if not passphrase:
            raise KeyProviderError(f"{file} is empty")
        self._passphrase = passphrase
        return passphrase

    def any_development_key_on_disk(self) -> bool:
        """Whether any key here is a development key (a key without a marker counts as one)."""
        if not self.directory.is_dir():
            return False
        for key_file in self.directory.glob("*.key.pem"):
            meta = key_file.with_name(key_file.name.removesuffix(".key.pem") + ".meta.json")
            try:
                marker = json.loads(meta.read_text()).get("development")
            except (OSError, ValueError, AttributeError):
                return True
            if marker is not False:
                return True
        return False

    def _is_development_key(self, label: str) -> bool:
        try:
            marker = json.loads(self._meta_file(label).read_text()).get("development")
        except (OSError, ValueError, AttributeError):
            marker = None  # no readable marker: treated as development
        return check_marker(marker, development=self.development, what=f"key {label!r}")

    # the provider

    def has_key(self, label: str) -> bool:
        return self._key_file(label).exists()

    def generate_rsa(self, label: str, bits: int = 2048) -> PublicKeyHandle:
        _check_bits(bits)
        key_file = self._key_file(label)
        with self._lock:
            if key_file.exists():
                raise KeyExistsError(f"key {label!r} already exists in {self.directory}")
            self._check_may_create(label, self.directory)
            ensure_private_dir(self.directory)
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
                write_owner_only(key_file, pem)
            except KeyFileError:
                if key_file.exists():
                    raise KeyExistsError(
                        f"key {label!r} already exists in {self.directory}"
                    ) from None
                raise
            # overwrite: a stale marker from an interrupted run must not survive.
            write_owner_only(self._meta_file(label), json.dumps(meta).encode(), overwrite=True)
            self._keys[label] = private
            return PublicKeyHandle(label, private.public_key())

    def _private(self, label: str) -> rsa.RSAPrivateKey:
        key_file = self._key_file(label)
        with self._lock:
            if label in self._keys:
                return self._keys[label]
            if not key_file.exists():
                raise UnknownKeyError(f"no key {label!r} in {self.directory}")
            self._is_development_key(label)  # refuses a development key in production
            check_private(key_file, production=not self.development)
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


class Pkcs11KeyProvider(_Provisioning):
    """RSA keys generated and kept on a PKCS#11 token; signing happens on the token."""

    def __init__(
        self, library_path: str, token_label: str, user_pin: str, *, development: bool,
        provision_command: str = CA_PROVISION_COMMAND,
    ) -> None:
        if not library_path or not token_label or not user_pin:
            raise KeyProviderError(
                "a PKCS#11 provider needs a library path, a token label and a PIN"
            )
        self._init_provisioning(development, provision_command)
        self.library_path = library_path
        self.token_label = token_label
        self._token = shared_session(library_path, token_label, user_pin)

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
            self._check_may_create(label, f"PKCS#11 token {self.token_label!r}")
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

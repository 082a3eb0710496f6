"""Each agency's 副本 encrypted under that agency's own key (envelope encryption).

- A **data key** (32 random bytes, AES-256-GCM) encrypts the copies. It is stored only
  *wrapped*, in ``copy_keys``: sealed with HPKE (RFC 9180, the suite of
  :mod:`mynumber.envelope`) to the agency's X25519 **public** encryption key, ``info`` =
  ``mynumber-agencies-copy-key/v1/<agency_id>``. Only the agency's private key (held by its
  intermediate server's keyring: derived from the development master in embedded mode, the
  provisioned key file in production) unwraps it.
- A writer needs the agency's public key only (the network directory's registered key, or the
  keyring's when it holds the agency's keys), so the core's operator commands and the registry's
  event handler can register a 副本 for an agency without holding its private key. Each writer
  process makes one data key per agency (and per public key of the agency) and reuses it.
- A copy row stores ``nonce (12 bytes) || ciphertext+tag`` of the canonical JSON payload and the
  id of its data key. The associated data binds the row to its agency, the agency's code for the
  person (機関別符号) and the item: a row copied to another agency, person or item does not
  decrypt. Rows still holding a plaintext ``payload`` (written before the agencies migration
  0002) are never provided; ``mynumber agencies encrypt-copies`` encrypts them.

Nothing here logs or raises with the payload.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mynumber.envelope import SUITE

NONCE_LENGTH = 12
DATA_KEY_LENGTH = 32
ROW_FORMAT = b"mynumber-agencies-copy/v1"


class CopyDecryptionError(ValueError):
    """A data key or a copy does not open with this agency's key (wrong agency, person, item,
    or a tampered row)."""


def wrap_info(agency_id: str) -> bytes:
    return b"mynumber-agencies-copy-key/v1/" + agency_id.encode()


def associated_data(agency_id: str, agency_code: str, item_code: str) -> bytes:
    # Agency ids, codes and item codes are restricted to [A-Za-z0-9_-]: NUL separates them.
    return b"\x00".join((ROW_FORMAT, agency_id.encode(), agency_code.encode(),
                         item_code.encode()))


def encode_payload(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode()


def new_data_key(agency_id: str, public_key: bytes) -> tuple[bytes, bytes]:
    """A fresh data key and its wrapping for the agency's raw X25519 public key."""
    key = secrets.token_bytes(DATA_KEY_LENGTH)
    recipient = x25519.X25519PublicKey.from_public_bytes(public_key)
    return key, SUITE.encrypt(key, recipient, wrap_info(agency_id))


def unwrap_data_key(agency_id: str, wrapped: bytes,
                    private_key: x25519.X25519PrivateKey) -> bytes:
    try:
        key = SUITE.decrypt(bytes(wrapped), private_key, wrap_info(agency_id))
    except (InvalidTag, ValueError) as exc:
        raise CopyDecryptionError("the copy's data key does not open with this agency's "
                                  "key") from exc
    if len(key) != DATA_KEY_LENGTH:
        raise CopyDecryptionError("the copy's data key is malformed")
    return key


@dataclass(frozen=True)
class DataKey:
    """An unwrapped data key: ``key_id`` is its row in ``copy_keys``."""

    agency_id: str
    key_id: int
    aead: AESGCM

    def encrypt(self, agency_code: str, item_code: str, payload: dict[str, Any]) -> bytes:
        return self.seal(agency_code, item_code, encode_payload(payload))

    def seal(self, agency_code: str, item_code: str, encoded: bytes) -> bytes:
        """Encrypt a payload already encoded with :func:`encode_payload`."""
        nonce = secrets.token_bytes(NONCE_LENGTH)
        return nonce + self.aead.encrypt(
            nonce, encoded, associated_data(self.agency_id, agency_code, item_code))

    def decrypt(self, agency_code: str, item_code: str, sealed: bytes) -> dict[str, Any]:
        sealed = bytes(sealed)
        try:
            plain = self.aead.decrypt(sealed[:NONCE_LENGTH], sealed[NONCE_LENGTH:],
                                      associated_data(self.agency_id, agency_code, item_code))
        except (InvalidTag, ValueError) as exc:
            raise CopyDecryptionError("the copy does not open for this agency, person and "
                                      "item") from exc
        payload: dict[str, Any] = json.loads(plain)
        return payload


class DataKeyCache:
    """Unwrapped data keys by id (readers) and the current writing key per agency and public
    key (writers), per process. Thread-safe; bounded by the number of data keys, which grows
    by one per writer process and agency."""

    def __init__(self) -> None:
        self._by_id: dict[int, DataKey] = {}
        self._writing: dict[tuple[str, bytes], DataKey] = {}
        self._lock = threading.Lock()

    def get(self, key_id: int) -> DataKey | None:
        return self._by_id.get(key_id)

    def put(self, key: DataKey) -> DataKey:
        with self._lock:
            return self._by_id.setdefault(key.key_id, key)

    def writing(self, agency_id: str, public_key: bytes) -> DataKey | None:
        return self._writing.get((agency_id, public_key))

    def set_writing(self, public_key: bytes, key: DataKey) -> DataKey:
        with self._lock:
            self._by_id.setdefault(key.key_id, key)
            return self._writing.setdefault((key.agency_id, public_key), key)

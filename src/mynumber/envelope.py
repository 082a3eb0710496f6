"""Signed and encrypted payloads between agencies: sign with the sender's Ed25519 key
(RFC 8032), then seal for the receiver with HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256),
HKDF-SHA256, AES-256-GCM), both from ``cryptography``. The core routes envelopes unread.

Layout of the sealed bytes: ``enc || ciphertext`` as HPKE returns them; the plaintext is
``signature (64 bytes) || canonical JSON body``. ``info`` binds an envelope to its exchange
(the 処理通番), so an answer cannot be replayed into another exchange.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
SIGNATURE_LENGTH = 64


class EnvelopeError(ValueError):
    """The envelope cannot be opened or its signature does not verify."""


def raw_public(key: ed25519.Ed25519PublicKey | x25519.X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def info_for(serial: str) -> bytes:
    return b"mynumber-exchange-answer/v1/" + serial.encode()


def seal(
    body: dict[str, Any],
    signer: ed25519.Ed25519PrivateKey,
    recipient: bytes,
    info: bytes,
) -> bytes:
    """Sign ``body`` and encrypt it for the raw X25519 public key ``recipient``."""
    message = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    signature = signer.sign(info + message)
    public = x25519.X25519PublicKey.from_public_bytes(recipient)
    return SUITE.encrypt(signature + message, public, info)


def open_sealed(
    sealed: bytes,
    recipient: x25519.X25519PrivateKey,
    sender: bytes,
    info: bytes,
) -> dict[str, Any]:
    """Decrypt with the recipient's key and check the sender's raw Ed25519 signature."""
    try:
        plaintext = SUITE.decrypt(sealed, recipient, info)
    except (InvalidTag, ValueError) as exc:
        raise EnvelopeError("the envelope cannot be decrypted with this key") from exc
    signature, message = plaintext[:SIGNATURE_LENGTH], plaintext[SIGNATURE_LENGTH:]
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(sender).verify(signature, info + message)
    except (InvalidSignature, ValueError) as exc:
        raise EnvelopeError("the envelope's signature does not verify") from exc
    body: dict[str, Any] = json.loads(message)
    return body

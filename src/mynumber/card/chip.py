"""A virtual My Number Card IC chip (個人番号カードのICチップ), for development and tests.

The model follows the behaviour of the real chip as seen from outside:

* Four PIN-protected applications, each with its own retry counter:

  =====================  ============================================  =====
  :class:`PinKind`       rule                                          tries
  =====================  ============================================  =====
  ``SIGNING``            署名用電子証明書の暗証番号: 6-16 characters,   5
                         upper-case A-Z and digits 0-9 only
  ``USER_AUTH``          利用者証明用電子証明書の暗証番号: 4 digits      3
  ``RESIDENCE``          住民基本台帳用の暗証番号: 4 digits              3
  ``CARD_INFO``          券面事項入力補助用の暗証番号: 4 digits          3
  =====================  ============================================  =====

  A correct entry restores the full count; a wrong one decrements it; at 0 the PIN is locked
  and every further attempt fails WITHOUT the PIN being compared (the right PIN is refused
  too).  Only :meth:`VirtualCard.counter_reset`, with an authorization from the counter
  service (窓口), unlocks it.  A malformed PIN (wrong length or characters) is rejected with
  :class:`PinFormatError` before it "reaches the chip" and does not consume a try, as the
  official client software does.

* Two key slots, ``"signing"`` (署名用) and ``"auth"`` (利用者証明用), each holding an RSA-2048
  key pair generated inside the card object.  No public method returns private key material;
  :meth:`VirtualCard.sign` produces RSASSA-PKCS1-v1_5 / SHA-256 signatures after the slot's
  PIN (signing password for ``"signing"``, user-authentication PIN for ``"auth"``).

* Certificates per slot.  The user-authentication certificate carries no personal data and is
  readable freely; the signing certificate carries the 基本4情報, so reading it requires the
  signing password (as on the real card).

* The 券面事項入力補助AP: the 個人番号 and the 基本4情報, revealed only with the card-info PIN.

* Every failed PIN entry (wrong PIN, or any attempt on a locked PIN) is reported to the
  ``on_failed_pin`` callback as a :class:`FailedPinEvent`, so the calling service can write an
  audit record.  The callback runs after the counter has been updated; if it raises, its
  exception propagates instead of the PIN error (an audit failure must not go unnoticed).

What this is NOT: a secure element.  A real chip keeps keys and PIN comparison inside
tamper-resistant hardware, so neither the private keys nor the PIN reference data ever leave it
and the retry counter cannot be rolled back.  Here everything lives in the Python process and,
after :meth:`VirtualCard.save`, in a file.  PINs are stored only as scrypt hashes with a per-card
random salt, but a 4-digit PIN hash can be brute-forced offline in minutes by anyone who can
decrypt the file; and anyone who can write the file can restore an old copy to undo a lock.  Use
virtual cards for development and tests only.

Key at rest (the file written by :meth:`VirtualCard.save`): all card contents (PIN hashes,
counters, private keys, certificates, card-face data) are sealed as one AES-256-GCM blob under a
random 256-bit per-card *card key*; the header (format, version, card id) is authenticated as
associated data.  The card key is either wrapped under a caller-supplied 32-byte
``storage_key`` kept elsewhere — the system's card store uses the key kernel's
``card.chip_sealing`` key, so a copied card file opens nowhere else — or, for a standalone test
card handed to a developer, stored in the file in the clear (marked ``"protection": "none"``:
confidentiality then rests on the file's 0600 permissions only).  Keys are deliberately NOT
encrypted under a PIN-derived key: a counter reset sets a new PIN without knowing the old one,
which would make the old encryption unopenable, and a key derived from a 4-digit PIN adds little
against an offline attacker anyway.

>>> import datetime
>>> card = VirtualCard.issue(
...     individual_number="123456789018", name="番号 太郎", address="東京都千代田区千代田1-1",
...     date_of_birth=datetime.date(1980, 1, 2), sex="男",
...     signing_password="ABC123", user_auth_pin="1234", residence_pin="5678",
...     card_info_pin="2468")
>>> card.remaining_tries(PinKind.USER_AUTH)
3
>>> card.verify_pin(PinKind.USER_AUTH, "0000")
Traceback (most recent call last):
    ...
mynumber.card.chip.WrongPin: wrong PIN (user_auth); 2 tries remaining
>>> card.verify_pin(PinKind.USER_AUTH, "1234")
>>> card.remaining_tries(PinKind.USER_AUTH)
3
>>> card.read_card_info("2468").individual_number
'123456789018'
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, NoReturn

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mynumber.codes import individual_number as _individual_number

__all__ = [
    "FILE_FORMAT",
    "CardError",
    "CardFileError",
    "CardInfo",
    "CertificateMismatch",
    "FailedPinEvent",
    "NoSuchKey",
    "PinFormatError",
    "PinKind",
    "PinLocked",
    "ResetAuthorizer",
    "ResetNotAuthorized",
    "Slot",
    "UnsealedCardFile",
    "VirtualCard",
    "WrongPin",
]

FILE_FORMAT = "mynumber.virtual-card"
_FILE_VERSION = 1
_WARNING = (
    "TEST CARD - NOT A SECURE ELEMENT. Software model of a My Number Card chip for development "
    "and tests; never use it for real identities or signatures."
)

# scrypt cost: ~50 ms per PIN check; the parameters are stored with the card.
_KDF_N = 2**14
_KDF_R = 8
_KDF_P = 1
_RSA_BITS = 2048


class PinKind(StrEnum):
    """The four PINs of the card."""

    SIGNING = "signing"  # 署名用電子証明書 暗証番号 (signing password)
    USER_AUTH = "user_auth"  # 利用者証明用電子証明書 暗証番号
    RESIDENCE = "residence"  # 住民基本台帳用 暗証番号
    CARD_INFO = "card_info"  # 券面事項入力補助用 暗証番号


#: Key slots: ``"signing"`` (署名用) and ``"auth"`` (利用者証明用).
Slot = Literal["signing", "auth"]
_SLOTS: tuple[Slot, ...] = ("signing", "auth")
_SLOT_PIN: dict[str, PinKind] = {"signing": PinKind.SIGNING, "auth": PinKind.USER_AUTH}


@dataclass(frozen=True)
class _PinRule:
    pattern: re.Pattern[str]
    tries: int
    description: str


_FOUR_DIGITS = _PinRule(re.compile(r"[0-9]{4}"), 3, "the PIN must be exactly 4 digits (0-9)")
_RULES: dict[PinKind, _PinRule] = {
    PinKind.SIGNING: _PinRule(
        re.compile(r"[A-Z0-9]{6,16}"),
        5,
        "the signing password must be 6 to 16 characters, upper-case letters A-Z and digits 0-9",
    ),
    PinKind.USER_AUTH: _FOUR_DIGITS,
    PinKind.RESIDENCE: _FOUR_DIGITS,
    PinKind.CARD_INFO: _FOUR_DIGITS,
}


# --------------------------------------------------------------------------- exceptions


class CardError(Exception):
    """Base class of every error raised by the virtual card."""


class PinFormatError(CardError, ValueError):
    """The PIN breaks the format rule of its kind.  The message names the rule, never the PIN."""

    def __init__(self, pin_kind: PinKind, rule: str) -> None:
        self.pin_kind = pin_kind
        super().__init__(f"{rule} ({pin_kind.value})")


class WrongPin(CardError):
    """The PIN was wrong; ``remaining`` tries are left (0 means the PIN is now locked)."""

    def __init__(self, pin_kind: PinKind, remaining: int) -> None:
        self.pin_kind = pin_kind
        self.remaining = remaining
        tail = "the PIN is now locked" if remaining == 0 else f"{remaining} tries remaining"
        super().__init__(f"wrong PIN ({pin_kind.value}); {tail}")


class PinLocked(CardError):
    """The PIN is locked; only a counter reset at the municipal counter unlocks it."""

    def __init__(self, pin_kind: PinKind) -> None:
        self.pin_kind = pin_kind
        super().__init__(f"PIN locked ({pin_kind.value}); reset it at the municipal counter")


class NoSuchKey(CardError, LookupError):
    """The slot is unknown, or holds no key / certificate yet."""


class ResetNotAuthorized(CardError):
    """:meth:`VirtualCard.counter_reset` was called without a valid authorization."""


class CertificateMismatch(CardError, ValueError):
    """The certificate is unreadable or does not belong to the slot's key pair."""


class CardFileError(CardError, ValueError):
    """A saved card file is malformed, tampered with, or the storage key is wrong."""


class UnsealedCardFile(CardFileError):
    """A storage key was given but the file keeps its card key in the clear (an old file)."""


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class CardInfo:
    """Contents of the 券面事項入力補助AP: the 個人番号 and the 基本4情報.

    ``repr`` masks the 個人番号 so the object can be logged by accident without leaking it.
    """

    individual_number: str = field(repr=False)
    name: str
    address: str
    date_of_birth: datetime.date
    sex: str


@dataclass(frozen=True)
class FailedPinEvent:
    """Passed to ``on_failed_pin``.  Carries no PIN, only which PIN failed and the outcome."""

    card_id: str
    pin_kind: PinKind
    #: Tries left after this failure (0 when locked).
    remaining: int
    #: True when the PIN was already locked, so the entry was refused without comparison.
    was_locked: bool


#: Authorization for :meth:`VirtualCard.counter_reset`.  The counter service supplies it after
#: verifying the holder's identity; the card calls it with ``(card_id, pin_kind)`` and proceeds
#: only if it returns exactly ``True``.  On a real card this is secure messaging with a key held
#: by the municipality's terminal; a callable is the seam where the service plugs that check in.
ResetAuthorizer = Callable[[str, PinKind], bool]


@dataclass
class _PinState:
    digest: bytes
    remaining: int


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(data: Any) -> bytes:
    if not isinstance(data, str):
        raise CardFileError("card file field is not base64 text")
    try:
        return base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise CardFileError("card file field is not valid base64") from exc


def _pin_kind(kind: PinKind | str) -> PinKind:
    try:
        return PinKind(kind)
    except ValueError:
        raise NoSuchKey("unknown PIN kind") from None


def _slot(slot: str) -> Slot:
    if slot == "signing":
        return "signing"
    if slot == "auth":
        return "auth"
    raise NoSuchKey("unknown key slot; expected 'signing' or 'auth'")


# --------------------------------------------------------------------------- the card


class VirtualCard:
    """A software model of the My Number Card chip.  Create with :meth:`issue` or :meth:`load`.

    Private state is kept in underscore attributes; Python cannot enforce that, so treat the
    object as if it were the chip: use only the public methods.  Instances refuse to be pickled
    or copied, so private keys do not leak through those paths by accident.
    """

    on_failed_pin: Callable[[FailedPinEvent], None] | None

    def __init__(
        self,
        *,
        card_id: str,
        salt: bytes,
        kdf: Mapping[str, int],
        pins: dict[PinKind, _PinState],
        keys: dict[str, rsa.RSAPrivateKey],
        certificates: dict[str, bytes],
        card_info: CardInfo,
        card_key: bytes,
        on_failed_pin: Callable[[FailedPinEvent], None] | None = None,
    ) -> None:
        """Internal: use :meth:`issue` or :meth:`load`."""
        self._card_id = card_id
        self._salt = salt
        self._kdf = {"n": int(kdf["n"]), "r": int(kdf["r"]), "p": int(kdf["p"])}
        self._pins = pins
        self._keys = keys
        self._certs = certificates
        self._card_info = card_info
        self._card_key = card_key
        self._lock = threading.RLock()
        self.on_failed_pin = on_failed_pin

    # ------------------------------------------------------------------ issuance

    @classmethod
    def issue(
        cls,
        *,
        individual_number: str,
        name: str,
        address: str,
        date_of_birth: datetime.date,
        sex: str,
        signing_password: str,
        user_auth_pin: str,
        residence_pin: str,
        card_info_pin: str,
        card_id: str | None = None,
        on_failed_pin: Callable[[FailedPinEvent], None] | None = None,
    ) -> VirtualCard:
        """Create a card with its four PINs set and the card-face data written.

        The 個人番号 is validated (check digit).  No key pairs exist yet: call
        :meth:`generate_key` for each slot, then :meth:`install_certificate`.
        """
        number = _individual_number.validate(individual_number)
        given = {
            PinKind.SIGNING: signing_password,
            PinKind.USER_AUTH: user_auth_pin,
            PinKind.RESIDENCE: residence_pin,
            PinKind.CARD_INFO: card_info_pin,
        }
        for kind, pin in given.items():
            _check_format(kind, pin)
        card = cls(
            card_id=card_id if card_id is not None else secrets.token_hex(8).upper(),
            salt=secrets.token_bytes(32),
            kdf={"n": _KDF_N, "r": _KDF_R, "p": _KDF_P},
            pins={},
            keys={},
            certificates={},
            card_info=CardInfo(number, name, address, date_of_birth, sex),
            card_key=secrets.token_bytes(32),
            on_failed_pin=on_failed_pin,
        )
        for kind, pin in given.items():
            card._pins[kind] = _PinState(card._hash_pin(kind, pin), _RULES[kind].tries)
        return card

    @property
    def card_id(self) -> str:
        """The card's serial (not secret)."""
        return self._card_id

    def __repr__(self) -> str:
        return f"VirtualCard(card_id={self._card_id!r})"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("VirtualCard cannot be pickled or copied; use save()/load()")

    # ------------------------------------------------------------------ PINs

    def _hash_pin(self, kind: PinKind, pin: str) -> bytes:
        return hashlib.scrypt(
            pin.encode("ascii"),
            salt=self._salt + b"|" + kind.value.encode("ascii"),
            n=self._kdf["n"],
            r=self._kdf["r"],
            p=self._kdf["p"],
            dklen=32,
        )

    def remaining_tries(self, pin_kind: PinKind | str) -> int:
        """Tries left for the PIN (readable without the PIN, as on the real card)."""
        with self._lock:
            return self._pins[_pin_kind(pin_kind)].remaining

    def is_locked(self, pin_kind: PinKind | str) -> bool:
        """Whether the PIN is locked."""
        return self.remaining_tries(pin_kind) == 0

    def verify_pin(self, pin_kind: PinKind | str, pin: str) -> None:
        """Check a PIN; raise :class:`WrongPin`, :class:`PinLocked` or :class:`PinFormatError`."""
        kind = _pin_kind(pin_kind)
        event: FailedPinEvent | None = None
        error: CardError
        with self._lock:
            state = self._pins[kind]
            if state.remaining == 0:
                event = FailedPinEvent(self._card_id, kind, 0, was_locked=True)
                error = PinLocked(kind)
            else:
                _check_format(kind, pin)
                if hmac.compare_digest(self._hash_pin(kind, pin), state.digest):
                    state.remaining = _RULES[kind].tries
                    return
                state.remaining -= 1
                event = FailedPinEvent(self._card_id, kind, state.remaining, was_locked=False)
                error = WrongPin(kind, state.remaining)
        if self.on_failed_pin is not None:
            self.on_failed_pin(event)
        raise error

    def change_pin(self, pin_kind: PinKind | str, old_pin: str, new_pin: str) -> None:
        """Change a PIN the holder knows (the old PIN is verified and counted as usual)."""
        kind = _pin_kind(pin_kind)
        _check_format(kind, new_pin)
        with self._lock:
            self.verify_pin(kind, old_pin)
            self._pins[kind] = _PinState(self._hash_pin(kind, new_pin), _RULES[kind].tries)

    def counter_reset(
        self, pin_kind: PinKind | str, new_pin: str, authorization: ResetAuthorizer
    ) -> None:
        """Set a new PIN and restore the full try count (初期化, at the municipal counter).

        ``authorization`` is the counter service's token (see :data:`ResetAuthorizer`); it is
        called with ``(card_id, pin_kind)`` and must return exactly ``True``, otherwise
        :class:`ResetNotAuthorized` is raised and nothing changes.  The old PIN is not needed.
        """
        kind = _pin_kind(pin_kind)
        _check_format(kind, new_pin)
        if not callable(authorization) or authorization(self._card_id, kind) is not True:
            raise ResetNotAuthorized("counter reset requires the counter service's authorization")
        with self._lock:
            self._pins[kind] = _PinState(self._hash_pin(kind, new_pin), _RULES[kind].tries)

    # ------------------------------------------------------------------ keys and certificates

    def generate_key(self, slot: Slot | str) -> rsa.RSAPublicKey:
        """Generate a new RSA-2048 key pair in ``slot`` and return its public key.

        An existing key in the slot is replaced and that slot's certificate removed (it no
        longer matches).  On the real card this happens at issuance or renewal at the counter.
        """
        name = _slot(slot)
        key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
        with self._lock:
            self._keys[name] = key
            self._certs.pop(name, None)
        return key.public_key()

    def _key(self, slot: Slot) -> rsa.RSAPrivateKey:
        try:
            return self._keys[slot]
        except KeyError:
            raise NoSuchKey(f"no key pair in slot {slot!r}") from None

    def public_key(self, slot: Slot | str) -> rsa.RSAPublicKey:
        """The slot's public key (no PIN needed)."""
        return self._key(_slot(slot)).public_key()

    def sign(self, slot: Slot | str, pin: str, data: bytes) -> bytes:
        """Sign ``data`` with RSASSA-PKCS1-v1_5 and SHA-256 after checking the slot's PIN.

        ``"signing"`` needs the signing password, ``"auth"`` the user-authentication PIN.
        """
        name = _slot(slot)
        key = self._key(name)
        self.verify_pin(_SLOT_PIN[name], pin)
        return key.sign(bytes(data), padding.PKCS1v15(), hashes.SHA256())

    def install_certificate(self, slot: Slot | str, pem: bytes | str) -> None:
        """Store the issued certificate for ``slot``; it must certify the slot's public key."""
        name = _slot(slot)
        data = pem.encode("ascii") if isinstance(pem, str) else bytes(pem)
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError as exc:
            raise CertificateMismatch("not a PEM X.509 certificate") from exc
        with self._lock:
            ours = self._key(name).public_key().public_numbers()
            theirs = cert.public_key()
            if not isinstance(theirs, rsa.RSAPublicKey) or theirs.public_numbers() != ours:
                raise CertificateMismatch(f"certificate does not match the {name!r} key pair")
            self._certs[name] = cert.public_bytes(serialization.Encoding.PEM)

    def certificate(self, slot: Slot | str, pin: str | None = None) -> bytes:
        """Return the slot's certificate as PEM.

        The ``"auth"`` certificate is readable freely.  The ``"signing"`` certificate carries the
        基本4情報, so it needs the signing password (checked and counted like any entry).
        """
        name = _slot(slot)
        if name not in self._certs:
            raise NoSuchKey(f"no certificate in slot {name!r}")
        if name == "signing":
            if pin is None:
                raise PinFormatError(PinKind.SIGNING, "the signing password is required")
            self.verify_pin(PinKind.SIGNING, pin)
        return self._certs[name]

    # ------------------------------------------------------------------ card-face AP

    def read_card_info(self, pin: str) -> CardInfo:
        """Return the 個人番号 and the 基本4情報 after checking the card-info PIN."""
        self.verify_pin(PinKind.CARD_INFO, pin)
        return self._card_info

    def counter_update_card_info(
        self, name: str, address: str, authorization: ResetAuthorizer
    ) -> None:
        """Rewrite the name and address of the 券面事項入力補助AP after a move or a name change
        (at the municipal counter, with the same authorization as :meth:`counter_reset`, asked
        for the card-info PIN's application).  The 個人番号, birth date and sex stay."""
        if not name.strip() or not address.strip():
            raise CardError("name and address are required")
        if not callable(authorization) or authorization(
                self._card_id, PinKind.CARD_INFO) is not True:
            raise ResetNotAuthorized("the card-face update requires the counter's authorization")
        with self._lock:
            info = self._card_info
            self._card_info = CardInfo(info.individual_number, name, address,
                                       info.date_of_birth, info.sex)

    # ------------------------------------------------------------------ persistence

    def _header(self) -> dict[str, Any]:
        return {"format": FILE_FORMAT, "version": _FILE_VERSION, "card_id": self._card_id}

    def save(self, path: str | os.PathLike[str], *, storage_key: bytes | None = None) -> None:
        """Write the card to a JSON file (mode 0600, replaced atomically).

        Without ``storage_key`` the random card key is stored in the file, so anyone who can
        read the file can open it.  With a 32-byte ``storage_key`` the card key is wrapped
        under it and :meth:`load` needs the same key.
        """
        header = self._header()
        aad = _canonical(header)
        with self._lock:
            payload = {
                "salt": _b64(self._salt),
                "kdf": {"name": "scrypt", **self._kdf},
                "pins": {
                    kind.value: {"hash": _b64(st.digest), "remaining": st.remaining}
                    for kind, st in self._pins.items()
                },
                "keys": {
                    slot: _b64(
                        key.private_bytes(
                            serialization.Encoding.DER,
                            serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption(),
                        )
                    )
                    for slot, key in self._keys.items()
                },
                "certificates": {slot: pem.decode("ascii") for slot, pem in self._certs.items()},
                "card_info": {
                    "individual_number": self._card_info.individual_number,
                    "name": self._card_info.name,
                    "address": self._card_info.address,
                    "date_of_birth": self._card_info.date_of_birth.isoformat(),
                    "sex": self._card_info.sex,
                },
            }
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._card_key).encrypt(nonce, _canonical(payload), aad)
        if storage_key is None:
            card_key: dict[str, str] = {"protection": "none", "key": _b64(self._card_key)}
        else:
            wrap_nonce = secrets.token_bytes(12)
            wrapped = _aead(storage_key).encrypt(wrap_nonce, self._card_key, aad + b"|card-key")
            card_key = {
                "protection": "storage-key",
                "nonce": _b64(wrap_nonce),
                "wrapped": _b64(wrapped),
            }
        document = {
            **header,
            "warning": _WARNING,
            "card_key": card_key,
            "sealed": {"alg": "AES-256-GCM", "nonce": _b64(nonce), "ciphertext": _b64(sealed)},
        }
        _write_private(Path(path), json.dumps(document, indent=2).encode("utf-8") + b"\n")

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        storage_key: bytes | None = None,
        on_failed_pin: Callable[[FailedPinEvent], None] | None = None,
        allow_unsealed: bool = False,
    ) -> VirtualCard:
        """Read a card written by :meth:`save`; counters (and locks) are as they were saved.

        With a ``storage_key``, a file whose card key is stored in the clear is refused with
        :class:`UnsealedCardFile` unless ``allow_unsealed`` (a caller that re-seals it at once):
        whoever expects a sealed card must not silently accept one anybody could have written.
        """
        try:
            document = json.loads(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise CardFileError("cannot read the card file") from exc
        try:
            if document.get("format") != FILE_FORMAT or document.get("version") != _FILE_VERSION:
                raise CardFileError("not a virtual card file of a supported version")
            header = {k: document[k] for k in ("format", "version", "card_id")}
            aad = _canonical(header)
            protection = document["card_key"]["protection"]
            if protection == "none":
                if storage_key is not None and not allow_unsealed:
                    raise UnsealedCardFile("this card file is not sealed under the storage key")
                card_key = _unb64(document["card_key"]["key"])
            elif protection == "storage-key":
                if storage_key is None:
                    raise CardFileError("this card file needs its storage key")
                card_key = _aead(storage_key).decrypt(
                    _unb64(document["card_key"]["nonce"]),
                    _unb64(document["card_key"]["wrapped"]),
                    aad + b"|card-key",
                )
            else:
                raise CardFileError("unknown card key protection")
            payload = json.loads(
                _aead(card_key).decrypt(
                    _unb64(document["sealed"]["nonce"]),
                    _unb64(document["sealed"]["ciphertext"]),
                    aad,
                )
            )
            keys: dict[str, rsa.RSAPrivateKey] = {}
            for slot, der in payload["keys"].items():
                # The payload is authenticated (AES-GCM above): these are the bytes the chip
                # itself generated and saved, so the costly RSA consistency check (~70 ms a key,
                # paid on every PIN entry) adds nothing.
                key = serialization.load_der_private_key(
                    _unb64(der), password=None, unsafe_skip_rsa_key_validation=True
                )
                if not isinstance(key, rsa.RSAPrivateKey):
                    raise CardFileError("card file holds a non-RSA key")
                keys[_slot(slot)] = key
            info = payload["card_info"]
            return cls(
                card_id=str(header["card_id"]),
                salt=_unb64(payload["salt"]),
                kdf=payload["kdf"],
                pins={
                    PinKind(kind): _PinState(_unb64(st["hash"]), int(st["remaining"]))
                    for kind, st in payload["pins"].items()
                },
                keys=keys,
                certificates={
                    _slot(slot): pem.encode("ascii")
                    for slot, pem in payload["certificates"].items()
                },
                card_info=CardInfo(
                    individual_number=str(info["individual_number"]),
                    name=str(info["name"]),
                    address=str(info["address"]),
                    date_of_birth=datetime.date.fromisoformat(info["date_of_birth"]),
                    sex=str(info["sex"]),
                ),
                card_key=card_key,
                on_failed_pin=on_failed_pin,
            )
        except CardFileError:
            raise
        except InvalidTag as exc:
            raise CardFileError("card file was tampered with or the storage key is wrong") from exc
        except (KeyError, TypeError, ValueError, AttributeError, LookupError) as exc:
            raise CardFileError("malformed card file") from exc


def _check_format(kind: PinKind, pin: object) -> None:
    rule = _RULES[kind]
    if not isinstance(pin, str) or rule.pattern.fullmatch(pin) is None:
        raise PinFormatError(kind, rule.description)


def _aead(key: bytes) -> AESGCM:
    if not isinstance(key, bytes) or len(key) != 32:
        raise CardFileError("the storage key must be 32 bytes")
    return AESGCM(key)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

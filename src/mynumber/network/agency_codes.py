"""機関別符号: each agency's own code for a person, derived inside the core.

A code is one AES-256 block, enciphered under a key that never leaves the core's key
provider (a PKCS#11 token in production, a development key file in embedded mode; the ciphers
are :class:`mynumber.keys.BlockCipher` implementations)::

    block = version (1 byte) || agency number (4 bytes) || 住民票コード (5 bytes) || zeros (6 bytes)
    code  = base32(AES-256-ECB(key, block))                      # 26 characters

Why this shape:
- AES is a permutation, so two agencies' codes for one person are unrelated to anyone without
  the key, and codes never collide (distinct blocks give distinct codes).
- The core maps a requester's code to the provider's by deciphering and re-enciphering: it
  needs no table linking codes, so no such table exists anywhere.
- The agency number and the 48 zero bits make a code checkable: a code presented by another
  agency, or forged, deciphers to the wrong number or to non-zero padding (1 in 2^56 chance).
- Only one block is ever enciphered per value, so ECB's weakness (equal blocks show) does
  not apply: equal blocks *are* the same agency and person, which the code is meant to say.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from mynumber.codes import resident_code as resident_code_format
from mynumber.codes.exceptions import ValidationError
from mynumber.keys import BlockCipher

VERSION = 1
CODE_LENGTH = 26
_PADDING = bytes(6)


def _block(agency_number: int, resident_code: str) -> bytes:
    if not 0 < agency_number < 2**32:
        raise ValueError("agency number out of range")
    return (
        bytes([VERSION]) + agency_number.to_bytes(4, "big")
        + int(resident_code).to_bytes(5, "big") + _PADDING
    )


def _encode(block: bytes) -> str:
    return base64.b32encode(block).decode().rstrip("=")


def _decode(code: str) -> bytes | None:
    if len(code) != CODE_LENGTH or not code.isascii() or not code.isalnum():
        return None
    try:
        raw = base64.b32decode(code.upper() + "======")
    except ValueError:
        return None
    return raw if len(raw) == 16 else None


def make_codes(
    cipher: BlockCipher, pairs: Sequence[tuple[int, str]]
) -> list[str]:
    """The codes for (agency number, 住民票コード) pairs, in one cipher call."""
    if not pairs:
        return []
    plain = b"".join(_block(number, code) for number, code in pairs)
    sealed = cipher.encrypt_blocks(plain)
    return [_encode(sealed[i : i + 16]) for i in range(0, len(sealed), 16)]


def make_code(cipher: BlockCipher, agency_number: int, resident_code: str) -> str:
    return make_codes(cipher, [(agency_number, resident_code)])[0]


def open_code(cipher: BlockCipher, agency_number: int, code: str) -> str | None:
    """The 住民票コード behind ``code`` if it is a code this agency was given, else None."""
    raw = _decode(code)
    if raw is None:
        return None
    return _resident(cipher.decrypt_blocks(raw), agency_number)


def open_codes(cipher: BlockCipher, agency_number: int, codes: Sequence[str]
               ) -> list[str | None]:
    """:func:`open_code` for many codes of one agency, in one cipher call."""
    raws = [_decode(code) for code in codes]
    valid = b"".join(raw for raw in raws if raw is not None)
    plain = cipher.decrypt_blocks(valid) if valid else b""
    out: list[str | None] = []
    at = 0
    for raw in raws:
        if raw is None:
            out.append(None)
            continue
        out.append(_resident(plain[at:at + 16], agency_number))
        at += 16
    return out


def _resident(block: bytes, agency_number: int) -> str | None:
    if (
        block[0] != VERSION
        or int.from_bytes(block[1:5], "big") != agency_number
        or block[10:] != _PADDING
    ):
        return None
    value = f"{int.from_bytes(block[5:10], 'big'):011d}"
    try:
        return resident_code_format.validate(value)
    except ValidationError:
        return None


def translate_code(
    cipher: BlockCipher, from_agency: int, code: str, to_agency: int
) -> str | None:
    """The provider's code for the person the requester's code names (None if invalid)."""
    resident = open_code(cipher, from_agency, code)
    return None if resident is None else make_code(cipher, to_agency, resident)

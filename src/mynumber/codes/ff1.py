"""FF1 format-preserving encryption (NIST SP 800-38G Rev. 1, §5.1) over AES.

FF1 is a keyed permutation of the strings of a given length over an alphabet of ``radix``
characters: an 11-digit decimal string encrypts to another 11-digit decimal string.  The
bulk numbering of 個人番号 uses it to turn a sequence number into an unpredictable, collision-free
11-digit base number.

This implementation follows SP 800-38G Rev. 1: ``radix ** minlen >= 1_000_000`` (so at least
six decimal digits) and ten Feistel rounds, with the AES-CBC-MAC PRF of Algorithm 6.  Digits for
radix ≤ 36 are ``0-9a-z`` (lower case, as in the NIST samples).  ``maxlen`` is 4096, an
implementation choice allowed by §5.2 that keeps conversions below CPython's int/str limit.

:meth:`FF1.encrypt_digits` / :meth:`FF1.decrypt_digits` are a vectorised radix-10 path over
numpy arrays that gives bit-for-bit the same results as the scalar methods.

NIST FF1 sample 1 (AES-128, radix 10, empty tweak):

>>> key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
>>> FF1(key, 10).encrypt("0123456789")
'2433477484'
>>> FF1(key, 10).decrypt("2433477484")
'0123456789'
>>> import numpy as np
>>> FF1(key, 10).encrypt_digits(np.array([123456789], dtype=np.uint64), 10).tolist()
[2433477484]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from mynumber.codes._util import as_uint64_array
from mynumber.codes.exceptions import InvalidComponent, InvalidFormat, InvalidLength

__all__ = ["FF1"]

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_ROUNDS = 10
MAX_LEN = 4096
# Largest length for the vector path: v = 9 digits gives b = 4 and d = 8, so y is the first
# eight bytes of one AES block and every intermediate fits in uint64.
MAX_VECTOR_LEN = 18
# Numbers per pass of the vector path: big enough to amortise per-call overhead, small enough
# that the working set (about 80 bytes per number) stays in the CPU cache.
_CHUNK = 1 << 14

_BE_U64 = np.dtype(">u8")


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _cbc_mac(enc: CipherContext, data: bytes, state: bytes = bytes(16)) -> bytes:
    """CBC-MAC (the PRF of SP 800-38G Algorithm 6), continuing from ``state``."""
    for j in range(0, len(data), 16):
        state = enc.update(_xor(state, data[j : j + 16]))
    return state


def _as_tweak(tweak: object) -> bytes:
    if not isinstance(tweak, bytes | bytearray | memoryview):
        raise InvalidFormat("FF1 tweak must be bytes")
    tweak = bytes(tweak)
    if len(tweak) >= 2**32:
        raise InvalidLength("FF1 tweak is too long")
    return tweak


class FF1:
    """FF1 with AES-128/192/256 over the alphabet ``0-9a-z`` truncated to ``radix`` characters."""

    def __init__(self, key: bytes, radix: int = 10) -> None:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise InvalidFormat("FF1 key must be bytes")
        if len(key) not in (16, 24, 32):
            raise InvalidLength("FF1 key must be 16, 24 or 32 bytes")
        if isinstance(radix, bool) or not isinstance(radix, int) or not 2 <= radix <= 36:
            raise InvalidComponent("FF1 radix must be an integer from 2 to 36")
        # ECB here is only the raw block cipher CIPH_K of SP 800-38G, not a mode of operation
        # for data: FF1's PRF (CBC-MAC) and the extension of R are built on top of it.
        self._cipher = Cipher(algorithms.AES(bytes(key)), modes.ECB())  # noqa: S305
        self.radix = radix
        self.alphabet = _ALPHABET[:radix]
        self._index = {c: i for i, c in enumerate(self.alphabet)}
        minlen = 2
        while radix**minlen < 1_000_000:
            minlen += 1
        self.minlen = minlen
        self.maxlen = MAX_LEN

    def __repr__(self) -> str:
        # Never show the key.
        return f"FF1(radix={self.radix})"

    # -- scalar path: a literal transcription of Algorithms 7 and 8 --------------------------

    def _num(self, text: str) -> int:
        if not isinstance(text, str):
            raise InvalidFormat("FF1 input must be a string")
        if not self.minlen <= len(text) <= self.maxlen:
            raise InvalidLength(
                f"FF1 input must have {self.minlen} to {self.maxlen} characters for radix "
                f"{self.radix}"
            )
        value = 0
        for ch in text:
            digit = self._index.get(ch)
            if digit is None:
                raise InvalidFormat(f"FF1 input contains a character outside radix {self.radix}")
            value = value * self.radix + digit
        return value

    def _str(self, value: int, length: int) -> str:
        out = []
        for _ in range(length):
            value, digit = divmod(value, self.radix)
            out.append(self.alphabet[digit])
        return "".join(reversed(out))

    def _params(self, n: int, t: int) -> tuple[int, int, int, int, bytes]:
        u = n // 2
        v = n - u
        # b = ceil(ceil(v * log2(radix)) / 8), computed exactly with integers.
        b = ((self.radix**v - 1).bit_length() + 7) // 8
        d = 4 * ((b + 3) // 4) + 4
        p = (
            bytes([1, 2, 1])
            + self.radix.to_bytes(3, "big")
            + bytes([10, u % 256])
            + n.to_bytes(4, "big")
            + t.to_bytes(4, "big")
        )
        return u, v, b, d, p

    def _round_y(self, enc: CipherContext, p_q: bytes, d: int) -> int:
        r = _cbc_mac(enc, p_q)
        s = r
        j = 1
        while len(s) < d:
            s += enc.update(_xor(r, j.to_bytes(16, "big")))
            j += 1
        return int.from_bytes(s[:d], "big")

    def _crypt(self, text: str, tweak: bytes, decrypt: bool) -> str:
        tweak = _as_tweak(tweak)
        value = self._num(text)  # validates length and alphabet
        n, t = len(text), len(tweak)
        u, v, b, d, p = self._params(n, t)
        a, bb = divmod(value, self.radix**v)
        pad = bytes((-t - b - 1) % 16)
        enc = self._cipher.encryptor()
        rounds = range(_ROUNDS - 1, -1, -1) if decrypt else range(_ROUNDS)
        for i in rounds:
            m = u if i % 2 == 0 else v
            modulus = self.radix**m
            feed = a if decrypt else bb
            q = tweak + pad + bytes([i]) + feed.to_bytes(b, "big")
            y = self._round_y(enc, p + q, d)
            if decrypt:
                a, bb = (bb - y) % modulus, a
            else:
                a, bb = bb, (a + y) % modulus
        return self._str(a, u) + self._str(bb, v)

    def encrypt(self, text: str, tweak: bytes = b"") -> str:
        """Encrypt ``text`` (characters of ``self.alphabet``) under ``tweak``."""
        return self._crypt(text, tweak, decrypt=False)

    def decrypt(self, text: str, tweak: bytes = b"") -> str:
        """Decrypt ``text``; the inverse of :meth:`encrypt` for the same tweak."""
        return self._crypt(text, tweak, decrypt=True)

    # -- vector path (radix 10) ---------------------------------------------------------------

    def encrypt_digits(
        self, values: npt.NDArray[np.uint64] | Any, length: int, tweak: bytes = b""
    ) -> npt.NDArray[np.uint64]:
        """Encrypt many zero-padded decimal strings of ``length`` digits at once.

        ``values`` holds integers below ``10**length``; element ``x`` stands for the string
        ``f"{x:0{length}d}"``.  The result has the same shape, and element for element equals
        ``int(self.encrypt(f"{x:0{length}d}", tweak))``.  Requires radix 10 and
        ``minlen <= length <= 18``.
        """
        return self._crypt_digits(values, length, tweak, decrypt=False)

    def decrypt_digits(
        self, values: npt.NDArray[np.uint64] | Any, length: int, tweak: bytes = b""
    ) -> npt.NDArray[np.uint64]:
        """Vectorised :meth:`decrypt`; the inverse of :meth:`encrypt_digits`."""
        return self._crypt_digits(values, length, tweak, decrypt=True)

    def _crypt_digits(
        self, values: object, length: int, tweak: bytes, decrypt: bool
    ) -> npt.NDArray[np.uint64]:
        if self.radix != 10:
            raise InvalidComponent("FF1 vector path requires radix 10")
        if isinstance(length, bool) or not isinstance(length, int):
            raise InvalidFormat("FF1 length must be an integer")
        if not self.minlen <= length <= MAX_VECTOR_LEN:
            raise InvalidLength(f"FF1 vector length must be {self.minlen} to {MAX_VECTOR_LEN}")
        tweak = _as_tweak(tweak)
        arr = as_uint64_array(values, length, "FF1 input")
        flat = np.ascontiguousarray(arr).reshape(-1)
        out = np.empty(flat.shape, dtype=np.uint64)

        u, v, b, d, p = self._params(length, len(tweak))
        assert d == 8 and b <= 4  # guaranteed by MAX_VECTOR_LEN
        # Q = T || 0^pad || [i] || [NUM(B)]_b.  Only the final block of P || Q depends on the
        # round or the number, so the CBC-MAC state before that block is computed once.
        q_template = tweak + bytes((-len(tweak) - b - 1) % 16) + bytes(1 + b)
        enc = self._cipher.encryptor()
        state = _cbc_mac(enc, p + q_template[:-16])
        x = _xor(state, q_template[-16:])
        hi = np.uint64(int.from_bytes(x[:8], "big"))
        lo0 = int.from_bytes(x[8:], "big")
        # The round number sits in the byte just before the b bytes of NUM(B).
        lo = [np.uint64(lo0 ^ (i << (8 * b))) for i in range(_ROUNDS)]
        moduli = [np.uint64(10 ** (u if i % 2 == 0 else v)) for i in range(_ROUNDS)]
        pow_v = np.uint64(10**v)

        chunk = min(_CHUNK, flat.size) or 1
        # AES input and output live in bytearrays (what cryptography accepts) with numpy views
        # of them as pairs of big-endian 64-bit words.
        cipher_in = bytearray(chunk * 16)
        block_bytes = memoryview(cipher_in)
        blocks = np.frombuffer(cipher_in, dtype=_BE_U64).reshape(chunk, 2)
        blocks[:, 0] = hi  # the high half of the block never changes
        cipher_out = bytearray(chunk * 16 + 15)  # update_into wants block_size - 1 spare bytes
        ys = np.frombuffer(cipher_out, dtype=_BE_U64, count=2 * chunk).reshape(chunk, 2)[:, 0]
        a_buf = np.empty(chunk, dtype=np.uint64)
        b_buf = np.empty(chunk, dtype=np.uint64)
        c_buf = np.empty(chunk, dtype=np.uint64)
        t_buf = np.empty(chunk, dtype=np.uint64)
        rounds = range(_ROUNDS - 1, -1, -1) if decrypt else range(_ROUNDS)

        for start in range(0, flat.size, chunk):
            k = min(chunk, flat.size - start)
            a, bb, c, tmp = a_buf[:k], b_buf[:k], c_buf[:k], t_buf[:k]
            blk, y = blocks[:k], ys[:k]
            np.floor_divide(flat[start : start + k], pow_v, out=a)
            np.remainder(flat[start : start + k], pow_v, out=bb)
            for i in rounds:
                modulus = moduli[i]
                # Encryption feeds B into the PRF, decryption feeds A.
                np.bitwise_xor(a if decrypt else bb, lo[i], out=tmp)
                blk[:, 1] = tmp  # converts to big-endian
                enc.update_into(block_bytes[: 16 * k], cipher_out)
                # y mod 10^m: y (the first 8 bytes of R) is < 2^64, so this is exact in uint64.
                np.remainder(y, modulus, out=tmp)
                if decrypt:
                    # c = (B - y) mod M = B + (M - y mod M), then reduce once.
                    np.subtract(modulus, tmp, out=tmp)
                    np.add(bb, tmp, out=c)
                else:
                    np.add(a, tmp, out=c)  # A < M and y mod M < M: no overflow
                # c < 2M; min(c, c - M) is c - M when c >= M, else c (c - M wraps to huge).
                np.subtract(c, modulus, out=tmp)
                np.minimum(c, tmp, out=c)
                if decrypt:
                    a, bb, c = c, a, bb
                else:
                    a, bb, c = bb, c, a
            np.multiply(a, pow_v, out=tmp)
            np.add(tmp, bb, out=out[start : start + k])
        return out.reshape(arr.shape)

"""The portal's own check of an access record's inclusion proof (RFC 6962 / RFC 9162) and of
the signed checkpoint it was checked against. Pure functions, deliberately independent of the
network's log implementation: the portal re-computes what the log claims."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ED25519_SIGNATURE_TYPE = 0x01


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(
    leaf: bytes, index: int, tree_size: int, path: Sequence[bytes]
) -> bytes | None:
    """The root hash ``path`` implies for leaf hash ``leaf`` at ``index`` of a tree of
    ``tree_size`` leaves (RFC 9162 section 2.1.3.2), or None when the path cannot be a proof
    for that position (wrong length)."""
    if index < 0 or index >= tree_size:
        return None
    fn, sn = index, tree_size - 1
    r = leaf
    for p in path:
        if len(p) != 32 or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    entry: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """True when ``path`` proves that ``entry`` is leaf ``index`` of the tree ``root``."""
    computed = root_from_inclusion_proof(leaf_hash(entry), index, tree_size, path)
    return computed is not None and hmac.compare_digest(computed, root)


def _key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519_SIGNATURE_TYPE])
                          + public_key).digest()[:4]


def checkpoint_matches(note: str, key_name: str, public_key: bytes, tree_size: int,
                       root: bytes) -> bool:
    """True when the signed note (c2sp.org/tlog-checkpoint) carries a valid Ed25519 signature
    by ``key_name``/``public_key`` and its body commits to ``tree_size`` and ``root``."""
    if not note.endswith("\n") or "\n\n" not in note:
        return False
    split = note.rfind("\n\n")
    body, signatures = note[: split + 1], note[split + 2:]
    lines = body.split("\n")
    if len(lines) < 4 or lines[1] != str(tree_size):
        return False
    try:
        if base64.b64decode(lines[2], validate=True) != root:
            return False
        key = Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError:
        return False
    want = _key_id(key_name, public_key)
    for line in signatures.splitlines():
        fields = line.removeprefix("\u2014 ").split(" ")
        if len(fields) != 2 or fields[0] != key_name:
            continue
        try:
            raw = base64.b64decode(fields[1], validate=True)
        except ValueError:
            return False
        if raw[:4] != want:
            continue
        try:
            key.verify(raw[4:], body.encode())
        except InvalidSignature:
            return False
        return True
    return False

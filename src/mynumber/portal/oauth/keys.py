"""The ID token signing keys: one current RS256 key, earlier keys kept in the JWKS until the
last ID token they signed has expired, then dropped (``mynumber oidc rotate-keys``).

On disk (``KEY_DIR``), every file written by :func:`mynumber.keys.write_owner_only` (0600)
and read with :func:`mynumber.keys.read_secret_file` (refused in production when others can
read it):

* ``portal.oidc_signing.meta.json`` -- the manifest: the ``development`` marker, the current
  ``kid`` and every key still published, each with its file, creation and retirement time.
  It is replaced atomically (rename), so a reader always sees one consistent generation.
* ``portal.oidc_signing.pem`` (the first key) and ``portal.oidc_signing.<kid>.pem`` (each
  later one): PKCS#8 RSA 3072 keys, never rewritten.

A manifest written before rotation existed (no ``keys`` list) is read as one current key.
The embedded mode creates a development key on first use; production mode never creates one
implicitly and refuses a development key (mynumber.keys rule).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey

from mynumber.db import utcnow
from mynumber.keys import (
    KeyFileError,
    check_marker,
    ensure_private_dir,
    not_provisioned,
    read_secret_file,
    write_owner_only,
)
from mynumber.portal.oauth.common import ID_TOKEN_SECONDS

SIGNING_KEY_FILE = "portal.oidc_signing.pem"
SIGNING_META_FILE = "portal.oidc_signing.meta.json"
LOCK_FILE = ".portal.oidc_signing.lock"
PURPOSE = "portal.oidc_signing"
ROTATE_COMMAND = "mynumber oidc rotate-keys --production"
KEY_BITS = 3072
# A retired key stays published as long as an ID token it signed can still be valid, plus a
# minute for clocks that disagree.
KEEP_RETIRED = dt.timedelta(seconds=ID_TOKEN_SECONDS + 60)


@dataclass(frozen=True)
class KeyEntry:
    kid: str
    file: str
    created_at: dt.datetime | None
    retired_at: dt.datetime | None

    def published(self, now: dt.datetime) -> bool:
        return self.retired_at is None or self.retired_at + KEEP_RETIRED > now

    def as_json(self) -> dict[str, Any]:
        return {"kid": self.kid, "file": self.file,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "retired_at": self.retired_at.isoformat() if self.retired_at else None}


@dataclass(frozen=True)
class Manifest:
    development: bool
    current: str
    keys: tuple[KeyEntry, ...]

    def as_bytes(self) -> bytes:
        return json.dumps({"purpose": PURPOSE, "alg": "RS256", "development": self.development,
                           "current": self.current,
                           "keys": [k.as_json() for k in self.keys]}, indent=1).encode()


@dataclass(frozen=True)
class Rotation:
    current: str  # the new kid
    retired: str | None  # the previous current kid (still published for a while)
    dropped: tuple[str, ...]  # kids whose tokens have all expired: removed


def _when(value: object) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


def _read_manifest(key_dir: Path, *, development: bool) -> Manifest | None:
    meta = key_dir / SIGNING_META_FILE
    if not meta.exists():
        return None
    data = json.loads(read_secret_file(meta, production=not development))
    marked_development = check_marker(data.get("development"), development=development,
                                      what="the OIDC signing key")
    if "keys" not in data:  # written before rotation existed: the one key is current
        key = _load_pem(key_dir / SIGNING_KEY_FILE, development=development)
        kid = key.kid or ""
        return Manifest(marked_development, kid, (KeyEntry(kid, SIGNING_KEY_FILE, None, None),))
    keys = tuple(KeyEntry(str(k["kid"]), str(k["file"]), _when(k.get("created_at")),
                          _when(k.get("retired_at"))) for k in data["keys"])
    return Manifest(marked_development, str(data["current"]), keys)


def _load_pem(path: Path, *, development: bool) -> RSAKey:
    key = RSAKey.import_key(read_secret_file(path, production=not development))
    key.ensure_kid()  # the RFC 7638 thumbprint
    return key


def _new_key(key_dir: Path, file_for: Callable[[str], str]) -> tuple[RSAKey, str]:
    key = RSAKey.generate_key(KEY_BITS, private=True)
    key.ensure_kid()
    kid = key.kid or ""
    name = file_for(kid)
    write_owner_only(key_dir / name, key.as_pem(private=True))
    return key, name


@contextmanager
def _locked(key_dir: Path) -> Iterator[None]:
    """One rotation at a time across processes (an advisory lock beside the keys)."""
    ensure_private_dir(key_dir)
    with open(key_dir / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def provision_signing_key(key_dir: Path, *, development: bool) -> Path:
    """Create the first ID token key and its manifest (``mynumber oidc rotate-keys``,
    ``mynumber keys init``; the embedded mode on first use). An existing key is an error."""
    with _locked(key_dir):
        if (key_dir / SIGNING_META_FILE).exists() or (key_dir / SIGNING_KEY_FILE).exists():
            raise KeyFileError(f"{key_dir / SIGNING_KEY_FILE} exists already")
        key, name = _new_key(key_dir, lambda kid: SIGNING_KEY_FILE)
        entry = KeyEntry(key.kid or "", name, utcnow(), None)
        write_owner_only(key_dir / SIGNING_META_FILE,
                         Manifest(development, entry.kid, (entry,)).as_bytes())
    return key_dir / SIGNING_KEY_FILE


def rotate_signing_keys(key_dir: Path, *, development: bool,
                        now: dt.datetime | None = None) -> Rotation:
    """Make a new key current; keep the previous one published until every ID token it
    signed has expired; drop keys retired longer ago than that. Without any key yet, this
    creates the first one."""
    now = now or utcnow()
    if _read_manifest(key_dir, development=development) is None:
        try:
            provision_signing_key(key_dir, development=development)
        except KeyFileError:
            pass  # created meanwhile by another process: rotate that one
        else:
            manifest = _read_manifest(key_dir, development=development)
            assert manifest is not None
            return Rotation(manifest.current, None, ())
    with _locked(key_dir):
        manifest = _read_manifest(key_dir, development=development)
        assert manifest is not None
        key, name = _new_key(key_dir, lambda kid: f"portal.oidc_signing.{kid}.pem")
        kept: list[KeyEntry] = [KeyEntry(key.kid or "", name, now, None)]
        dropped: list[KeyEntry] = []
        for entry in manifest.keys:
            if entry.kid == manifest.current:
                entry = KeyEntry(entry.kid, entry.file, entry.created_at, now)
            (kept if entry.published(now) else dropped).append(entry)
        # The manifest marker is never downgraded: a production set stays production.
        write_owner_only(key_dir / SIGNING_META_FILE,
                         Manifest(manifest.development, kept[0].kid, tuple(kept)).as_bytes(),
                         overwrite=True)
        for entry in dropped:  # only after the new manifest no longer names them
            (key_dir / entry.file).unlink(missing_ok=True)
    return Rotation(kept[0].kid, manifest.current, tuple(e.kid for e in dropped))


class SigningKeys:
    """The provider's signing keys: the current key and the published set, re-read when the
    manifest changes on disk (``rotate-keys`` in another process takes effect at once)."""

    def __init__(self, key_dir: Path, *, development: bool,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.key_dir = key_dir
        self.development = development
        self.clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._current: RSAKey | None = None
        self._keys: list[tuple[KeyEntry, RSAKey]] = []

    def _refresh(self) -> None:
        meta = self.key_dir / SIGNING_META_FILE
        if not meta.exists():
            if not self.development:
                raise not_provisioned("the OIDC signing key", self.key_dir, ROTATE_COMMAND)
            try:
                provision_signing_key(self.key_dir, development=True)
            except KeyFileError:  # another process created it meanwhile
                pass
        info = meta.stat()
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp == self._stamp:
            return
        manifest = _read_manifest(self.key_dir, development=self.development)
        assert manifest is not None
        loaded: list[tuple[KeyEntry, RSAKey]] = []
        current: RSAKey | None = None
        for entry in manifest.keys:
            key = _load_pem(self.key_dir / entry.file, development=self.development)
            loaded.append((entry, key))
            if entry.kid == manifest.current:
                current = key
        if current is None:
            raise KeyFileError(f"{meta} names no current key")
        self._current, self._keys, self._stamp = current, loaded, stamp

    def current(self) -> RSAKey:
        with self._lock:
            self._refresh()
            assert self._current is not None
            return self._current

    def jwks(self) -> dict[str, Any]:
        """The current key and every retired key an unexpired ID token may name."""
        with self._lock:
            self._refresh()
            now = self.clock()
            keys = []
            for entry, key in self._keys:
                if entry.published(now):
                    public: dict[str, Any] = dict(key.as_dict(private=False))
                    public.update({"use": "sig", "alg": "RS256", "kid": key.kid})
                    keys.append(public)
            return {"keys": keys}


def load_signing_key(key_dir: Path, *, development: bool) -> RSAKey:
    """The current ID token key. The embedded mode creates a development key on first use;
    production mode refuses a development key and never creates one."""
    return SigningKeys(key_dir, development=development).current()

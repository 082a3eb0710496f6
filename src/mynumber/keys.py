"""Key providers: where the system's secret keys come from.

The embedded mode creates development keys on first use and marks them as such; production
mode refuses any key so marked and never creates one silently (keys are provisioned with
``mynumber keys init --production`` or, for CA keys, live in a PKCS#11 token).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Protocol


class KeyError_(RuntimeError):
    """A key is missing or unacceptable for the configured mode."""


class KeyProvider(Protocol):
    @property
    def is_development(self) -> bool:
        """True when any key handed out so far is a development key."""
        ...

    def symmetric_key(self, purpose: str, length: int = 32) -> bytes:
        """The secret key for ``purpose`` (e.g. ``registry.numbering``)."""
        ...


class FileKeyProvider:
    """Keys as small JSON files in a directory with owner-only permissions."""

    def __init__(self, path: Path, *, create_missing: bool, development: bool) -> None:
        self.path = path
        self.create_missing = create_missing
        self.development = development
        self._cache: dict[str, bytes] = {}
        self._saw_development = False

    @property
    def is_development(self) -> bool:
        return self._saw_development

    def _file(self, purpose: str) -> Path:
        if not purpose.replace(".", "").replace("_", "").replace("-", "").isalnum():
            raise KeyError_(f"bad key purpose {purpose!r}")
        return self.path / f"{purpose}.key.json"

    def symmetric_key(self, purpose: str, length: int = 32) -> bytes:
        if purpose in self._cache:
            return self._cache[purpose]
        file = self._file(purpose)
        if not file.exists():
            if not self.create_missing:
                raise KeyError_(
                    f"key {purpose!r} is not provisioned in {self.path}; "
                    "run `mynumber keys init` for this mode"
                )
            self.write_key(purpose, secrets.token_bytes(length), development=self.development)
        data = json.loads(file.read_text())
        if data.get("development"):
            self._saw_development = True
            if not self.development:
                raise KeyError_(
                    f"key {purpose!r} is a development key; production mode refuses it"
                )
        key = base64.b64decode(data["key"])
        if len(key) != length:
            raise KeyError_(f"key {purpose!r} has {len(key)} bytes, expected {length}")
        self._cache[purpose] = key
        return key

    def write_key(self, purpose: str, key: bytes, *, development: bool) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        file = self._file(purpose)
        body = json.dumps(
            {"purpose": purpose, "development": development, "key": base64.b64encode(key).decode()}
        )
        # Create with 0600 from the start: a key must never be world-readable, even briefly.
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(body)
        return file

    def any_development_key_on_disk(self) -> bool:
        if not self.path.exists():
            return False
        for file in self.path.glob("*.key.json"):
            try:
                if json.loads(file.read_text()).get("development"):
                    return True
            except (OSError, ValueError):
                continue
        return False

"""The one owner-only file writer and reader for key material.

Every key, passphrase or sealing secret the system keeps on disk goes through these functions,
so there is one rule: directories 0700, files 0600 from the moment they exist, and on load a
file (or its directory) that other local users can read is refused in production and warned
about in the embedded mode.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from mynumber.keys.errors import KeyProviderError

log = logging.getLogger("mynumber.keys")


class KeyFileError(KeyProviderError):
    """A key file is missing, unsafe, or cannot be written."""


def ensure_private_dir(directory: Path) -> Path:
    """Create ``directory`` (and parents) and make it owner-only (0700)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    return directory


def write_owner_only(path: Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` readable by its owner only (0600 from creation on).

    The data goes to a temporary file created with ``O_EXCL`` and mode 0600, is synced, then
    renamed into place: a reader never sees a half-written key, and the key is never readable
    by others, not even for an instant. Without ``overwrite`` an existing file is an error
    (keys are never replaced silently)."""
    ensure_private_dir(path.parent)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} exists; refusing to overwrite key material")
    # A random suffix: two threads (or processes) writing the same key never share a tmp file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() fails if another process created the file meanwhile: no silent overwrite.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeyFileError(f"{path} exists; refusing to overwrite key material") from None
            finally:
                os.unlink(tmp)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    return path


def exposed_to_others(path: Path) -> bool:
    """True when group or other users have any permission on ``path``."""
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def check_private(path: Path, *, production: bool) -> None:
    """Refuse (production) or warn about (embedded) a key file or directory others can read.

    For a file, its directory is checked too (a readable directory lets others list and,
    with a loose file mode, read the keys); for a directory, only the directory itself."""
    targets = (path,) if path.is_dir() else (path, path.parent)
    for target in targets:
        if target.exists() and exposed_to_others(target):
            mode = oct(target.stat().st_mode & 0o777)
            want = "0700" if target.is_dir() else "0600"
            message = (f"{target} is accessible to other users (mode {mode}; it must be {want}); "
                       f"run: chmod {want[1:]} {target}")
            if production:
                raise KeyFileError(message)
            # The embedded mode only warns: a developer's checkout must keep working.
            log.warning("%s", message)


def read_secret_file(path: Path, *, production: bool) -> bytes:
    """Read a key file after checking that only its owner can read it."""
    if not path.is_file():
        raise KeyFileError(f"{path} does not exist")
    check_private(path, production=production)
    return path.read_bytes()

"""PKCS#11 tokens: the session every token-backed key in the process shares (the JPKI CA keys,
the network's agency-code key), and the agency-code cipher whose AES key lives on the token.

A process has one login state per token (logging in twice fails with
``CKR_USER_ALREADY_LOGGED_IN``, logging out ends every session), so all providers for the same
library and token share one lazily opened, logged-in session, used under a lock (the library is
initialised without OS locking, so calls into it are serialised). A forked child re-initialises
the library before its first use. Nothing is opened at import time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11e

from mynumber.keys.errors import KeyProviderError, not_provisioned

_T = TypeVar("_T")


class TokenSession:
    """One logged-in session on one token, shared by every provider for it in this process."""

    def __init__(self, library_path: str, token_label: str, user_pin: str) -> None:
        self.library_path = library_path
        self.token_label = token_label
        self.user_pin = user_pin
        self.lock = threading.RLock()
        self._session: Any = None
        self._pid = 0

    def _open(self) -> Any:
        try:
            lib = pkcs11.lib(self.library_path)
        except (OSError, RuntimeError, p11e.PKCS11Error) as exc:
            raise KeyProviderError(
                f"cannot load the PKCS#11 library {self.library_path!r}: {exc}"
            ) from exc
        if _LIBRARY_PIDS.get(self.library_path, os.getpid()) != os.getpid():
            # A forked child must call C_Initialize again before using the library.
            with contextlib.suppress(p11e.PKCS11Error):
                lib.finalize()
            lib.initialize()
        _LIBRARY_PIDS[self.library_path] = os.getpid()
        try:
            token = lib.get_token(token_label=self.token_label)
        except p11e.NoSuchToken as exc:
            raise KeyProviderError(
                f"no PKCS#11 token labelled {self.token_label!r} in {self.library_path}"
            ) from exc
        except p11e.MultipleTokensReturned as exc:
            raise KeyProviderError(
                f"more than one PKCS#11 token labelled {self.token_label!r}"
            ) from exc
        try:
            return token.open(rw=True, user_pin=self.user_pin)
        except p11e.UserAlreadyLoggedIn:
            # Someone else in this process logged in to the token; the login is shared.
            return token.open(rw=True)
        except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange) as exc:
            raise KeyProviderError(
                f"PKCS#11 login to token {self.token_label!r} failed: wrong PIN"
            ) from exc
        except p11e.PinLocked as exc:
            raise KeyProviderError(f"the user PIN of token {self.token_label!r} is locked") from exc

    @contextmanager
    def session(self) -> Iterator[pkcs11.Session]:
        with self.lock:
            if self._session is None or self._pid != os.getpid():
                self._session = self._open()
                self._pid = os.getpid()
            yield self._session

    def run(self, operation: Callable[[pkcs11.Session], _T]) -> _T:
        """Run ``operation`` with the session; reopen it once if the token dropped it."""
        stale = (
            p11e.SessionClosed,
            p11e.SessionHandleInvalid,
            p11e.DeviceRemoved,
            p11e.TokenNotPresent,
            p11e.UserNotLoggedIn,
        )
        with self.lock:
            try:
                with self.session() as session:
                    return operation(session)
            except stale:
                self._session = None
                with self.session() as session:
                    return operation(session)


_LIBRARY_PIDS: dict[str, int] = {}
_SHARED: dict[tuple[str, str], TokenSession] = {}
_SHARED_LOCK = threading.Lock()


def shared_session(library_path: str, token_label: str, user_pin: str) -> TokenSession:
    with _SHARED_LOCK:
        shared = _SHARED.get((library_path, token_label))
        if shared is None:
            shared = _SHARED[(library_path, token_label)] = TokenSession(
                library_path, token_label, user_pin
            )
        elif not secrets.compare_digest(shared.user_pin.encode(), user_pin.encode()):
            raise KeyProviderError(
                f"token {token_label!r} is already in use in this process with another PIN"
            )
        return shared


class Pkcs11BlockCipher:
    """The agency-code AES key lives on a PKCS#11 token, created there (sensitive, never
    extractable). The embedded mode creates it on first use; production only inside
    :meth:`provisioning` (``mynumber keys init --production``)."""

    LABEL = "network-agency-codes"

    def __init__(
        self, library_path: str, token_label: str, user_pin: str, *, development: bool
    ) -> None:
        self.development = development
        self._token = shared_session(library_path, token_label, user_pin)
        self._provisioning = 0
        self._lock = threading.Lock()

    @contextmanager
    def provisioning(self) -> Iterator[None]:
        """Allow creating the key (the explicit provisioning step of production mode)."""
        with self._lock:
            self._provisioning += 1
        try:
            yield
        finally:
            with self._lock:
                self._provisioning -= 1

    def ensure_key(self) -> None:
        """Find the key, or create it where that is allowed (see the class doc)."""
        self._token.run(self._key)

    def _key(self, session: Any) -> Any:
        found = list(session.get_objects(
            {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: self.LABEL}
        ))
        if found:
            return found[0]
        if not (self.development or self._provisioning):
            raise not_provisioned(f"the agency-code key {self.LABEL!r}",
                                  f"PKCS#11 token {self._token.token_label!r}")
        return session.generate_key(
            KeyType.AES, 256, label=self.LABEL, store=True,
            template={
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.ENCRYPT: True,
                Attribute.DECRYPT: True,
            },
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
        )

    def encrypt_blocks(self, data: bytes) -> bytes:
        return self._token.run(
            lambda session: bytes(self._key(session).encrypt(data, mechanism=Mechanism.AES_ECB))
        )

    def decrypt_blocks(self, data: bytes) -> bytes:
        return self._token.run(
            lambda session: bytes(self._key(session).decrypt(data, mechanism=Mechanism.AES_ECB))
        )

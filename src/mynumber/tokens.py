"""PKCS#11 token sessions shared by every key provider in the process (JPKI CA keys, the
network's agency-code key). One logged-in session per token; reopened after a fork."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pkcs11
from pkcs11 import exceptions as p11e

from mynumber.keys import KeyError_

_T = TypeVar("_T")


class KeyProviderError(KeyError_):
    """A signing key or its provider is missing, misconfigured or unusable."""



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
            try:
                lib.finalize()
            except p11e.PKCS11Error:
                pass
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

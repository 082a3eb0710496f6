"""The nonces of agencies' signed requests to the accounts context's agency routes
(確定申告, 日本年金機構: ``web/accounts_agency_api.py``): the accounts database's one nonce
store (accounts/nonces.py, table ``request_nonces``) with the issuer ``agency:<agency id>``.
The rules (once per issuer by the primary key, across threads and processes; spent before
the change it carries; pruned after :data:`KEEP`) are that module's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from mynumber.accounts.nonces import KEEP, NonceStore
from mynumber.db import Databases, utcnow

__all__ = ["KEEP", "AgencyNonces"]


class AgencyNonces:
    def __init__(self, databases: Databases,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._store = NonceStore(databases, clock)

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        return self._store.clock

    @clock.setter
    def clock(self, value: Callable[[], dt.datetime]) -> None:
        self._store.clock = value

    def claim(self, agency_id: str, nonce: str, kind: str) -> bool:
        """True the first time ``agency_id`` presents ``nonce``; False ever after (within
        :data:`KEEP`; an older request is refused for its age before its nonce is claimed)."""
        if not 0 < len(agency_id) <= 64 or not 0 < len(nonce) <= 64:
            return False  # never a valid agency request (the route checks the forms first)
        return self._store.claim(f"agency:{agency_id}", nonce, kind)

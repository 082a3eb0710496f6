"""The accounts database's nonce store (``request_nonces``): the bank route's clients
(accounts/bank_clients.py) and the agencies' routes (確定申告, 日本年金機構:
``web/accounts_agency_api.py`` through accounts/agency_nonces.py), issuers ``bank:<client id>``
and ``agency:<agency id>``.

The kernel's store (``mynumber.kernel.nonces``) over this context's table: a nonce is accepted
once per issuer, decided by the primary key ``(issuer, nonce)`` across threads and processes,
spent before the change it carries, pruned after :data:`KEEP` (see that module).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from mynumber.accounts import models as m
from mynumber.db import Databases, utcnow
from mynumber.kernel.nonces import ISSUER_MAX, KEEP, NONCE_MAX
from mynumber.kernel.nonces import NonceStore as _KernelNonceStore

__all__ = ["ISSUER_MAX", "KEEP", "NONCE_MAX", "NonceStore"]


class NonceStore(_KernelNonceStore):
    """``claim(issuer, nonce, kind)``: True the first time, False ever after."""

    def __init__(self, databases: Databases,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        super().__init__(databases, m.CONTEXT, m.RequestNonce, clock)

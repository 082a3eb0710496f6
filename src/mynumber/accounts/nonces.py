"""The one store of signed requests' nonces in the accounts database (``request_nonces``):
the bank route's clients (accounts/bank_clients.py) and the agencies' routes (確定申告,
日本年金機構: ``web/accounts_agency_api.py`` through accounts/agency_nonces.py).

A nonce is accepted once per **issuer** (``bank:<client id>``, ``agency:<agency id>``): the
primary key ``(issuer, nonce)`` decides. Each claim inserts its row and flushes in its own
transaction; of two requests carrying one nonce, in two threads or two processes, exactly one
insert succeeds (PostgreSQL makes the second wait for the first's commit, then raises the
unique violation; SQLite has one writer at a time). A nonce is spent when it is claimed,
before the change it carries: a refused change does not make its request replayable.

Rows older than :data:`KEEP` are deleted after later claims, in their own transaction
(housekeeping: a purge that fails is left to the next claim). Every caller refuses a request
more than 5 minutes from the server's clock before it claims the nonce, so a nonce older
than :data:`KEEP` can never be replayed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mynumber.accounts import models as m
from mynumber.db import Databases, utcnow

#: How long a claimed nonce is kept: three times the 5-minute freshness window of a signed
#: request (it is fresh 5 minutes either way of the server's clock, plus a margin).
KEEP = dt.timedelta(minutes=15)
ISSUER_MAX = 80
NONCE_MAX = 64


class NonceStore:
    """``claim(issuer, nonce, kind)``: True the first time, False ever after."""

    def __init__(self, databases: Databases,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.databases = databases
        self.clock = clock

    def claim(self, issuer: str, nonce: str, kind: str = "") -> bool:
        """True the first time ``issuer`` presents ``nonce``; False ever after (within
        :data:`KEEP`). ``issuer`` and ``nonce`` must fit their columns (80 and 64): the
        callers validate the nonce's form first; nothing is truncated here, so two nonces
        can never collide by their prefix."""
        if not 0 < len(issuer) <= ISSUER_MAX or not 0 < len(nonce) <= NONCE_MAX:
            raise ValueError("issuer (1-80) or nonce (1-64) of the wrong length")
        now = self.clock()
        try:
            with self.databases.unit_of_work(m.CONTEXT) as session:
                session.add(m.RequestNonce(issuer=issuer, nonce=nonce, kind=kind[:40],
                                           seen_at=now))
                session.flush()
        except IntegrityError:
            return False
        try:  # housekeeping only: a purge that loses a race is left to the next claim
            with self.databases.unit_of_work(m.CONTEXT) as session:
                session.execute(delete(m.RequestNonce).where(m.RequestNonce.seen_at
                                                             < now - KEEP))
        except SQLAlchemyError:
            pass
        return True

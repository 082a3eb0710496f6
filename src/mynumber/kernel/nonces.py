"""The one store of signed requests' nonces, for any context that accepts signed requests:
each context keeps its own table (its own database), a model with the columns ``issuer``,
``nonce`` (together the primary key), ``kind`` and ``seen_at``, and hands its class here
(``accounts.models.RequestNonce`` for the bank and agency routes, ``insurance.models.
RequestNonce`` for the medical institutions' terminals).

A nonce is accepted once per **issuer** (``bank:<client id>``, ``agency:<agency id>``,
``terminal:<terminal id>``): the primary key ``(issuer, nonce)`` decides. Each claim inserts
its row and flushes in its own transaction; of two requests carrying one nonce, in two threads
or two processes, exactly one insert succeeds (PostgreSQL makes the second wait for the
first's commit, then raises the unique violation; SQLite has one writer at a time). A nonce is
spent when it is claimed, before the change it carries: a refused change does not make its
request replayable.

Rows older than :data:`KEEP` are deleted after later claims, in their own transaction
(housekeeping: a purge that fails is left to the next claim). Every caller refuses a request
more than 5 minutes from the server's clock before it claims the nonce, so a nonce older than
:data:`KEEP` can never be replayed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mynumber.db import Databases, utcnow

#: How long a claimed nonce is kept: three times the 5-minute freshness window of a signed
#: request (it is fresh 5 minutes either way of the server's clock, plus a margin).
KEEP = dt.timedelta(minutes=15)
ISSUER_MAX = 80
NONCE_MAX = 64
KIND_MAX = 40


class NonceStore:
    """``claim(issuer, nonce, kind)``: True the first time, False ever after.

    ``context`` names the database (``Databases.unit_of_work``), ``model`` the context's nonce
    model class (columns ``issuer``, ``nonce``, ``kind``, ``seen_at``)."""

    def __init__(self, databases: Databases, context: str, model: type[Any],
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        for column in ("issuer", "nonce", "kind", "seen_at"):
            if not hasattr(model, column):
                raise TypeError(f"{model.__name__} has no {column} column")
        self.databases = databases
        self.context = context
        self.model = model
        self.clock = clock

    def claim(self, issuer: str, nonce: str, kind: str = "") -> bool:
        """True the first time ``issuer`` presents ``nonce``; False ever after (within
        :data:`KEEP`). ``issuer`` and ``nonce`` must fit their columns (80 and 64): the
        callers validate the nonce's form first; nothing is truncated here, so two nonces
        can never collide by their prefix."""
        if not 0 < len(issuer) <= ISSUER_MAX or not 0 < len(nonce) <= NONCE_MAX:
            raise ValueError("issuer (1-80) or nonce (1-64) of the wrong length")
        now = self.clock()
        model = self.model
        try:
            with self.databases.unit_of_work(self.context) as session:
                session.add(model(issuer=issuer, nonce=nonce, kind=kind[:KIND_MAX],
                                  seen_at=now))
                session.flush()
        except IntegrityError:
            return False
        try:  # housekeeping only: a purge that loses a race is left to the next claim
            with self.databases.unit_of_work(self.context) as session:
                session.execute(delete(model).where(model.seen_at < now - KEEP))
        except SQLAlchemyError:
            pass
        return True

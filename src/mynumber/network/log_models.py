"""Tables of the access-record log (情報提供等記録), an RFC 6962 Merkle tree.

* ``log_queue``: entries written by exchanges in their own transaction, not yet in the tree.
* ``log_leaves``: the tree's leaves in index order (the record bytes, their leaf hash, and a
  keyed MAC that lets ``verify`` name an edited leaf even when its leaf hash was edited too).
* ``log_nodes``: the hash of every COMPLETE subtree above the leaves: level ``l`` index ``i``
  covers leaves ``[i * 2**l, (i + 1) * 2**l)``. Proofs read O(log n) of these rows.
* ``log_heads``: every signed tree head (a C2SP checkpoint), one per integration.
* ``log_state``: one row (id 1): current size and the right-edge frontier; integrators lock it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mynumber.db import UTCDateTime, utcnow
from mynumber.network.models import Base, BigId


class LogQueue(Base):
    __tablename__ = "log_queue"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    enqueued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LogLeaf(Base):
    __tablename__ = "log_leaves"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    mac: Mapped[bytes] = mapped_column(LargeBinary(16))
    integrated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # 情報提供等記録 are kept for 7 years (no pruning yet; see docs/log.md).
    retain_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class LogNode(Base):
    __tablename__ = "log_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogHead(Base):
    __tablename__ = "log_heads"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    checkpoint: Mapped[str] = mapped_column(Text)


class LogState(Base):
    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)  # 32-byte hashes, largest subtree first

"""The access-record log (情報提供等記録): an append-only Merkle tree per RFC 6962 with signed
tree heads published as C2SP tlog-checkpoints (signed notes, Ed25519).

Hashes (RFC 6962 section 2.1): leaf ``SHA-256(0x00 || entry)``, node
``SHA-256(0x01 || left || right)``, empty tree ``SHA-256("")``.

Writers :meth:`MerkleAccessLog.enqueue` inside their own transaction; :meth:`integrate` (any
number of processes at once) moves queued entries into the tree under a lock on the single
``log_state`` row, stores every newly completed subtree hash, and signs a new head. Proofs
read O(log n) stored hashes. :meth:`verify` rebuilds the whole tree from the stored entry bytes
in a single streaming pass and checks every stored hash and every signed head.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber.db import Databases, HotConnections, HotSQL, utcnow
from mynumber.errors import InvalidInput, NotFound
from mynumber.network.interfaces import (
    AccessLog,
    ConsistencyProof,
    InclusionProof,
    LogEntry,
    LogIndexOutOfRange,
    SignedTreeHead,
    VerifyReport,
)
from mynumber.network.log_models import LogHead, LogLeaf, LogNode, LogQueue, LogState

CONTEXT = "network"
SIGNING_KEY_PURPOSE = "network.log_signing"
MAX_ENTRIES = 1000
RETENTION_YEARS = 7
VERIFY_BATCH = 10_000
ED25519_SIGNATURE_TYPE = 0x01
EMPTY_ROOT = hashlib.sha256(b"").digest()
_STATE_ID = 1

log = logging.getLogger(__name__)


class LogHashNotFound(NotFound):
    code = "log_hash_not_found"
    title = "No entry with this leaf hash in the tree"


class BadLogParameter(InvalidInput):
    code = "bad_log_parameter"
    title = "Invalid log request"


# --- hashing -------------------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The complete subtrees (level, index) whose hashes fold (right to left) into the RFC 6962
    hash of leaves ``[start, end)``. ``start`` must be aligned as in the RFC's recursion: a
    multiple of the largest power of two not above ``end - start`` ... or of any larger one."""
    out: list[tuple[int, int]] = []
    while start < end:
        width = end - start
        level = width.bit_length() - 1
        while start % (1 << level):
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 hash of consecutive complete subtrees, largest (leftmost) first."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for h in reversed(hashes[:-1]):
        root = node_hash(h, root)
    return root


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, straight from RFC 6962 section 2.1 (reference; O(n))."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _largest_power_of_two_below(n)
    return node_hash(merkle_root(leaf_hashes[:k]), merkle_root(leaf_hashes[k:]))


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 6962 section 2.1.1 PATH(m, D[n]) as leaf ranges, leaf side first."""
    out: list[tuple[int, int]] = []

    def path(m: int, start: int, n: int) -> None:
        if n <= 1:
            return
        k = _largest_power_of_two_below(n)
        if m < k:
            path(m, start, k)
            out.append((start + k, start + n))
        else:
            path(m - k, start + k, n - k)
            out.append((start, start + k))

    path(index, 0, size)
    return out


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """RFC 6962 section 2.1.2 PROOF(m, D[n]) as leaf ranges (empty for m == 0 or m == n)."""
    out: list[tuple[int, int]] = []
    if first == 0 or first == second:
        return out

    def subproof(m: int, start: int, n: int, whole: bool) -> None:
        if m == n:
            if not whole:
                out.append((start, start + n))
            return
        k = _largest_power_of_two_below(n)
        if m <= k:
            subproof(m, start, k, whole)
            out.append((start + k, start + n))
        else:
            subproof(m - k, start + k, n - k, False)
            out.append((start, start + k))

    subproof(first, 0, second, True)
    return out


# --- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) ----------------------------------------


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """True when ``path`` proves leaf hash ``leaf`` is at ``index`` of the tree ``root``."""
    if index < 0 or index >= tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> bool:
    """True when ``path`` proves the tree ``second_root`` (size ``second``) extends
    ``first_root`` (size ``first``)."""
    if first < 0 or first > second:
        return False
    if first == second:
        return not path and hmac.compare_digest(first_root, second_root)
    if first == 0:
        return not path and hmac.compare_digest(first_root, EMPTY_ROOT)
    if not path:
        return False
    nodes = list(path)
    if first & (first - 1) == 0:
        nodes.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return (
        sn == 0 and hmac.compare_digest(fr, first_root) and hmac.compare_digest(sr, second_root)
    )


# --- signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint) -------------------------------


def _check_key_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise ValueError("a note key name must be non-empty, without spaces or '+'")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519_SIGNATURE_TYPE])
                          + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """The verifier key string of golang.org/x/mod/sumdb/note: name+hexid+base64(0x01||key)."""
    _check_key_name(name)
    return (f"{name}+{key_id(name, public_key).hex()}+"
            f"{base64.b64encode(bytes([ED25519_SIGNATURE_TYPE]) + public_key).decode()}")


def parse_verifier_key(vkey: str) -> tuple[str, bytes]:
    """(name, raw Ed25519 public key) from a verifier key string; ValueError when malformed."""
    parts = vkey.split("+", 2)  # the base64 key may itself contain "+"
    if len(parts) != 3:
        raise ValueError("verifier key must be name+hash+key")
    name, hex_id, b64 = parts
    _check_key_name(name)
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != ED25519_SIGNATURE_TYPE:
        raise ValueError("not an Ed25519 verifier key")
    if len(hex_id) != 8 or bytes.fromhex(hex_id) != key_id(name, raw[1:]):
        raise ValueError("verifier key hash does not match")
    return name, raw[1:]


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_note(body: str, name: str, key: Ed25519PrivateKey) -> str:
    public = key.public_key().public_bytes_raw()
    signature = key.sign(body.encode())
    encoded = base64.b64encode(key_id(name, public) + signature).decode()
    return f"{body}\n\u2014 {name} {encoded}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes


def open_checkpoint(note: str, vkey: str) -> Checkpoint:
    """Parse a checkpoint and check it carries a valid signature by ``vkey``; ValueError if not.
    Signatures by other keys are ignored, as the signed-note spec requires."""
    name, public = parse_verifier_key(vkey)
    if not note.endswith("\n") or "\n\n" not in note:
        raise ValueError("not a signed note")
    split = note.rfind("\n\n")
    body, signatures = note[: split + 1], note[split + 2 :]
    want_id = key_id(name, public)
    verified = False
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            raise ValueError("malformed signature line")
        fields = line[2:].split(" ")
        if len(fields) != 2:
            raise ValueError("malformed signature line")
        raw = base64.b64decode(fields[1], validate=True)
        if fields[0] != name or raw[:4] != want_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], body.encode())
        except InvalidSignature:
            raise ValueError("checkpoint signature does not verify") from None
        verified = True
    if not verified:
        raise ValueError("no signature by the expected key")
    lines = body.split("\n")
    if len(lines) < 4 or not lines[1].isdigit() or (lines[1].startswith("0") and lines[1] != "0"):
        raise ValueError("malformed checkpoint body")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise ValueError("malformed root hash")
    return Checkpoint(lines[0], int(lines[1]), root)


def log_signing_key(keys: object) -> Ed25519PrivateKey:
    """The log's Ed25519 key, from a 32-byte seed held by the key provider."""
    seed: bytes = keys.symmetric_key(SIGNING_KEY_PURPOSE, 32)  # type: ignore[attr-defined]
    return Ed25519PrivateKey.from_private_bytes(seed)


_PENDING = "mynumber.access_log.pending"
_HOOKED = "mynumber.access_log.hooked"


_QUEUE_INSERT = insert(LogQueue)
_HOT_QUEUE_INSERT = HotSQL(
    "INSERT INTO log_queue (serial, entry, enqueued_at) VALUES (:serial, :entry, :enqueued_at)")


def hot_insert_many(hot: HotConnections, raw: Any, table: str,
                    columns: Sequence[tuple[str, type]], rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts over ``columns``: (name, Python type)) on a hot-path connection
    in the caller's transaction: on PostgreSQL one ``COPY … FROM STDIN``, on SQLite one
    ``executemany``."""
    if not rows:
        return
    names = [name for name, _ in columns]
    if hot.databases.is_postgres:
        # COPY: psycopg formats the rows in C, one stream; a duplicate key still raises
        # (23505) and rolls the transaction back.
        cursor = raw.cursor()
        try:
            with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[name] for name in names])
        finally:
            cursor.close()
        return
    statement = HotSQL(f"INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608
                       f"VALUES ({', '.join(':' + n for n in names)})")
    hot_executemany(hot, raw, statement, rows)


def hot_executemany(hot: HotConnections, raw: Any, statement: HotSQL,
                    rows: Sequence[dict[str, Any]]) -> None:
    """``statement`` for every row in one driver ``executemany`` on a hot-path connection
    (psycopg pipelines it; sqlite3 prepares it once)."""
    if not rows:
        return
    cursor = raw.cursor()
    try:
        if hot.databases.is_postgres:
            cursor.executemany(statement.pg_sql, rows)
        else:
            # Datetimes as UTCDateTime stores them; each distinct value converted once (a
            # batch's rows share their times).
            converted: dict[Any, Any] = {}

            def value(v: Any) -> Any:
                if not isinstance(v, dt.datetime):
                    return v
                out = converted.get(v)
                if out is None:
                    out = converted[v] = HotSQL._sqlite_value(v)
                return out

            times = [k for k, v in rows[0].items() if isinstance(v, dt.datetime) or v is None]
            cursor.executemany(statement.sql, [
                {**row, **{k: value(row[k]) for k in times}} for row in rows])
    finally:
        cursor.close()


def _write_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.execute(insert(LogQueue), pending)


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _retain_until(now: dt.datetime) -> dt.datetime:
    try:
        return now.replace(year=now.year + RETENTION_YEARS)
    except ValueError:  # 29 February
        return now.replace(year=now.year + RETENTION_YEARS, day=28)


# --- the log -------------------------------------------------------------------------------------


class MerkleAccessLog:
    """:class:`~mynumber.network.interfaces.AccessLog` over the network context's database."""

    def __init__(self, databases: Databases, signing_key: Ed25519PrivateKey, origin: str) -> None:
        _check_key_name(origin)
        self.databases = databases
        self.origin = origin
        self.key_name = origin  # tlog-checkpoint: the key name SHOULD match the origin
        self._key = signing_key
        self.public_key = signing_key.public_key().public_bytes_raw()
        self.vkey = verifier_key(self.key_name, self.public_key)
        # Keyed per-leaf MAC: lets verify() name an edited leaf even if its hash was edited too.
        self._mac_key = hashlib.sha256(
            b"mynumber access log leaf mac\n" + signing_key.private_bytes_raw()
        ).digest()

    # -- writing --

    def enqueue(self, session: Session | Connection, serial: str, entry: bytes) -> None:
        """Queue one entry in the caller's transaction. On a Connection (the exchange's hot
        path) the row is written at once; on a Session, rows are written in one batch just
        before the session commits. Either way they commit, or roll back, with the caller."""
        if isinstance(session, Connection):
            session.execute(_QUEUE_INSERT, {"serial": serial, "entry": entry,
                                            "enqueued_at": utcnow()})
            return
        pending: list[dict[str, object]] | None = session.info.get(_PENDING)
        if pending is None:
            pending = session.info[_PENDING] = []
            session.connection()  # make sure the caller's transaction has begun
            if not session.info.get(_HOOKED):
                event.listen(session, "before_commit", _write_pending)
                event.listen(session, "after_rollback", _drop_pending)
                session.info[_HOOKED] = True
        pending.append({"serial": serial, "entry": entry, "enqueued_at": utcnow()})

    def enqueue_hot(self, hot: HotConnections, raw: Any, serial: str, entry: bytes) -> None:
        """Queue one entry on a hot-path driver connection (``mynumber.db.HotSQL``), in the
        caller's transaction."""
        hot.run(raw, _HOT_QUEUE_INSERT, {"serial": serial, "entry": entry,
                                         "enqueued_at": utcnow()})

    def enqueue_hot_many(self, hot: HotConnections, raw: Any,
                         entries: Sequence[tuple[str, bytes]]) -> None:
        """Queue many entries on a hot-path driver connection in one ``executemany``, in the
        caller's transaction (a batch exchange)."""
        now = utcnow()
        hot_insert_many(hot, raw, "log_queue",
                        (("serial", str), ("entry", bytes), ("enqueued_at", dt.datetime)),
                        [{"serial": serial, "entry": entry, "enqueued_at": now}
                         for serial, entry in entries])

    def _mac(self, index: int, digest: bytes) -> bytes:
        return hmac.digest(self._mac_key, struct.pack(">Q", index) + digest, "sha256")[:16]

    def _begin(self, conn: Connection) -> None:
        if conn.dialect.name == "sqlite":
            # Take the write lock first: two deferred transactions that both read and then
            # write would fail instead of waiting.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def _lock_state(self, conn: Connection) -> tuple[int, bytes]:
        stmt = select(LogState.size, LogState.frontier).where(LogState.id == _STATE_ID)
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            values = {"id": _STATE_ID, "size": 0, "frontier": b""}
            if conn.dialect.name == "postgresql":
                conn.execute(pg_insert(LogState).values(values).on_conflict_do_nothing())
            else:
                conn.execute(sqlite_insert(LogState).values(values).on_conflict_do_nothing())
            row = conn.execute(stmt).one()
        return int(row.size), bytes(row.frontier)

    def integrate(self, max_batch: int = 10_000) -> int:
        """Sequence up to ``max_batch`` queued entries (oldest first) and sign a new head."""
        if max_batch < 1:
            raise ValueError("max_batch must be positive")
        while True:
            try:
                return self._integrate(max_batch)
            except IntegrityError:
                # A serial already in the tree (or twice in one batch): drop the duplicates
                # from the queue and try again. Never happens with core-made serials.
                if not self._drop_duplicates(max_batch):
                    raise

    def _integrate(self, max_batch: int) -> int:
        engine = self.databases.engine(CONTEXT)
        with engine.connect() as conn:
            self._begin(conn)
            size, frontier_bytes = self._lock_state(conn)
            queued = conn.execute(
                select(LogQueue.id, LogQueue.serial, LogQueue.entry)
                .order_by(LogQueue.id).limit(max_batch)
            ).all()
            if not queued:
                conn.rollback()
                return 0
            frontier = [frontier_bytes[i : i + 32] for i in range(0, len(frontier_bytes), 32)]
            now = utcnow()
            retain = _retain_until(now)
            sha256 = hashlib.sha256
            leaves = []
            nodes = []
            index = size
            for _qid, serial, entry in queued:
                entry = bytes(entry)
                h = sha256(b"\x00" + entry).digest()
                leaves.append({"idx": index, "serial": serial, "entry": entry, "leaf_hash": h,
                               "mac": self._mac(index, h), "integrated_at": now,
                               "retain_until": retain})
                level = 0
                while (index >> level) & 1:
                    h = sha256(b"\x01" + frontier.pop() + h).digest()
                    level += 1
                    nodes.append({"level": level, "idx": index >> level, "hash": h})
                frontier.append(h)
                index += 1
            conn.execute(insert(LogLeaf), leaves)
            if nodes:
                conn.execute(insert(LogNode), nodes)
            self._delete_queued(conn, [row[0] for row in queued])
            root = fold(frontier)
            checkpoint = sign_note(checkpoint_body(self.origin, index, root), self.key_name,
                                   self._key)
            conn.execute(insert(LogHead).values(size=index, root_hash=root, timestamp=now,
                                                checkpoint=checkpoint))
            conn.execute(update(LogState).where(LogState.id == _STATE_ID)
                         .values(size=index, frontier=b"".join(frontier)))
            conn.commit()
            return len(queued)

    @staticmethod
    def _delete_queued(conn: Connection, ids: list[int]) -> None:
        # By id, never by range: on PostgreSQL a lower id may commit after we read.
        if conn.dialect.name == "postgresql":
            conn.execute(text("DELETE FROM log_queue WHERE id = ANY(:ids)"), {"ids": ids})
            return
        stmt = delete(LogQueue).where(LogQueue.id.in_(bindparam("ids", expanding=True)))
        for i in range(0, len(ids), 5000):
            conn.execute(stmt, {"ids": ids[i : i + 5000]})

    def _drop_duplicates(self, max_batch: int) -> int:
        engine = self.databases.engine(CONTEXT)
        with engine.connect() as conn:
            self._begin(conn)
            self._lock_state(conn)
            queued = conn.execute(
                select(LogQueue.id, LogQueue.serial).order_by(LogQueue.id).limit(max_batch)
            ).all()
            serials = [row.serial for row in queued]
            existing: set[str] = set()
            for i in range(0, len(serials), 1000):
                existing.update(conn.execute(
                    select(LogLeaf.serial).where(LogLeaf.serial.in_(serials[i : i + 1000]))
                ).scalars())
            drop = [row.id for row in queued if row.serial in existing]
            if drop:
                self._delete_queued(conn, drop)
                log.warning("access log: dropped %d queued entries already in the tree",
                            len(drop))
            conn.commit()
            return len(drop)

    # -- reading --

    def _head_row(self, conn: Connection) -> LogHead | None:
        row = conn.execute(
            select(LogHead.size, LogHead.root_hash, LogHead.timestamp, LogHead.checkpoint)
            .order_by(LogHead.size.desc()).limit(1)
        ).first()
        return row  # type: ignore[return-value]

    def latest_head(self) -> SignedTreeHead:
        with self.databases.engine(CONTEXT).connect() as conn:
            row = self._head_row(conn)
        if row is None:
            body = checkpoint_body(self.origin, 0, EMPTY_ROOT)
            return SignedTreeHead(0, EMPTY_ROOT, utcnow(),
                                  sign_note(body, self.key_name, self._key))
        return SignedTreeHead(int(row.size), bytes(row.root_hash), row.timestamp,
                              row.checkpoint)

    def _current_size(self, conn: Connection) -> int:
        size = conn.execute(select(func.max(LogHead.size))).scalar()
        return int(size or 0)

    def index_of(self, serial: str) -> int | None:
        with self.databases.engine(CONTEXT).connect() as conn:
            value = conn.execute(select(LogLeaf.idx).where(LogLeaf.serial == serial)).scalar()
        return None if value is None else int(value)

    def logged(self, serials: Sequence[str]) -> dict[str, tuple[int | None, bytes]]:
        wanted = list(dict.fromkeys(serials))
        found: dict[str, tuple[int | None, bytes]] = {}
        with self.databases.engine(CONTEXT).connect() as conn:
            for start in range(0, len(wanted), MAX_ENTRIES):
                chunk = wanted[start:start + MAX_ENTRIES]
                # The queue first, then the leaves: an entry integrated in between is still
                # found (in the leaves), and a leaf wins over its queued copy.
                for serial, entry in conn.execute(
                        select(LogQueue.serial, LogQueue.entry).where(LogQueue.serial.in_(chunk))):
                    found[serial] = (None, bytes(entry))
                for serial, idx, entry in conn.execute(
                        select(LogLeaf.serial, LogLeaf.idx, LogLeaf.entry)
                        .where(LogLeaf.serial.in_(chunk))):
                    found[serial] = (int(idx), bytes(entry))
        return found

    def index_of_hash(self, digest: bytes, tree_size: int | None = None) -> int:
        with self.databases.engine(CONTEXT).connect() as conn:
            size = self._current_size(conn) if tree_size is None else tree_size
            value = conn.execute(
                select(func.min(LogLeaf.idx))
                .where(LogLeaf.leaf_hash == digest, LogLeaf.idx < size)
            ).scalar()
        if value is None:
            raise LogHashNotFound("no entry with this leaf hash in the tree of that size",
                                  field="hash")
        return int(value)

    def entries(self, start: int, end: int) -> list[LogEntry]:
        if start < 0 or end < start:
            raise BadLogParameter("need 0 <= start <= end", field="start")
        end = min(end, start + MAX_ENTRIES)
        with self.databases.engine(CONTEXT).connect() as conn:
            rows = conn.execute(
                select(LogLeaf.idx, LogLeaf.serial, LogLeaf.entry, LogLeaf.leaf_hash)
                .where(LogLeaf.idx >= start, LogLeaf.idx < end).order_by(LogLeaf.idx)
            ).all()
        return [LogEntry(int(r.idx), r.serial, bytes(r.entry), bytes(r.leaf_hash)) for r in rows]

    def _subtree_hashes(
        self, conn: Connection, ranges: Sequence[tuple[int, int]]
    ) -> list[bytes]:
        """The RFC 6962 hash of each leaf range, from stored complete-subtree hashes."""
        plans = [perfect_subtrees(a, b) for a, b in ranges]
        wanted = {node for plan in plans for node in plan}
        leaf_ids = [i for level, i in wanted if level == 0]
        node_ids = [(level, i) for level, i in wanted if level > 0]
        found: dict[tuple[int, int], bytes] = {}
        if leaf_ids:
            for idx, digest in conn.execute(
                select(LogLeaf.idx, LogLeaf.leaf_hash).where(LogLeaf.idx.in_(leaf_ids))
            ):
                found[(0, int(idx))] = bytes(digest)
        if node_ids:
            by_level: dict[int, list[int]] = {}
            for level, idx in node_ids:
                by_level.setdefault(level, []).append(idx)
            # One index range per level (an IN over row values would scan on SQLite).
            for level, idx, digest in conn.execute(
                select(LogNode.level, LogNode.idx, LogNode.hash).where(or_(*[
                    and_(LogNode.level == level, LogNode.idx.in_(ids))
                    for level, ids in by_level.items()]))
            ):
                found[(int(level), int(idx))] = bytes(digest)
        missing = wanted - found.keys()
        if missing:
            raise RuntimeError(f"access log: {len(missing)} stored hashes missing; run verify")
        return [fold([found[node] for node in plan]) for plan in plans]

    def root_at(self, tree_size: int) -> bytes:
        """The root hash of the tree's first ``tree_size`` entries (from stored hashes)."""
        with self.databases.engine(CONTEXT).connect() as conn:
            current = self._current_size(conn)
            if tree_size < 0 or tree_size > current:
                raise LogIndexOutOfRange(f"tree size must be between 0 and {current}",
                                         field="tree_size")
            return self._subtree_hashes(conn, [(0, tree_size)])[0]

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof:
        with self.databases.engine(CONTEXT).connect() as conn:
            current = self._current_size(conn)
            size = current if tree_size is None else tree_size
            if size < 1 or size > current:
                raise LogIndexOutOfRange(f"tree size must be between 1 and {current}",
                                         field="tree_size")
            if index < 0 or index >= size:
                raise LogIndexOutOfRange("leaf index must be below the tree size",
                                         field="index")
            path = self._subtree_hashes(conn, inclusion_ranges(index, size))
        return InclusionProof(index, size, tuple(path))

    def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        with self.databases.engine(CONTEXT).connect() as conn:
            current = self._current_size(conn)
            if second < 0 or second > current:
                raise LogIndexOutOfRange(f"second must be between 0 and {current}",
                                         field="second")
            if first < 0 or first > second:
                raise LogIndexOutOfRange("first must be between 0 and second", field="first")
            path = self._subtree_hashes(conn, consistency_ranges(first, second))
        return ConsistencyProof(first, second, tuple(path))

    # -- auditing --

    def verify(self) -> VerifyReport:
        """Rebuild the tree from the stored entry bytes and check every stored leaf hash, leaf
        MAC, complete-subtree hash and signed head (streaming; memory is O(batch))."""
        problems: list[str] = []
        bad: list[int] = []
        engine = self.databases.engine(CONTEXT)
        node_bad: list[int] = []
        with engine.connect() as conn:
            heads = conn.execute(
                select(LogHead.size, LogHead.root_hash, LogHead.checkpoint)
                .order_by(LogHead.size)
            ).all()
            head_at = 0
            frontier: list[bytes] = []
            expected = 0
            gap: int | None = None
            head_roots: dict[int, bytes] = {0: EMPTY_ROOT}
            wanted_heads = {int(h.size) for h in heads}
            for batch in self._leaf_batches(conn):
                recomputed_nodes: dict[tuple[int, int], bytes] = {}
                for idx, entry, stored_hash, mac in batch:
                    if idx != expected:
                        gap = expected
                        problems.append(f"entry {expected} is missing (next stored index {idx})")
                        bad.append(expected)
                        break
                    h = leaf_hash(bytes(entry))
                    if not hmac.compare_digest(h, bytes(stored_hash)):
                        problems.append(f"entry {idx}: leaf hash does not match the entry bytes")
                        bad.append(idx)
                    elif not hmac.compare_digest(self._mac(idx, h), bytes(mac)):
                        problems.append(f"entry {idx}: leaf MAC does not match (entry and leaf "
                                        "hash were both changed)")
                        bad.append(idx)
                    level = 0
                    while (idx >> level) & 1:
                        h = node_hash(frontier.pop(), h)
                        level += 1
                        recomputed_nodes[(level, idx >> level)] = h
                    frontier.append(h)
                    expected = idx + 1
                    if expected in wanted_heads:
                        head_roots[expected] = fold(frontier)
                self._check_nodes(conn, recomputed_nodes, problems, node_bad)
                if gap is not None:
                    break
            size = expected
            claimed = max([int(h.size) for h in heads] + [
                int(conn.execute(select(func.coalesce(func.max(LogState.size), 0))).scalar()
                    or 0)])
            if gap is None and size < claimed:
                # Entries at the end were removed: the heads (or the state) say there were more.
                problems.append(f"entry {size} is missing (the signed heads cover "
                                f"{claimed} entries)")
                bad.append(size)
            if gap is None:
                stored_nodes = conn.execute(select(func.count()).select_from(LogNode)).scalar()
                want = size - bin(size).count("1")
                if stored_nodes != want:
                    problems.append(f"{stored_nodes} subtree hashes stored, {want} expected")
                state = conn.execute(select(LogState.size, LogState.frontier)).first()
                if state is not None and (int(state.size) != size
                                          or bytes(state.frontier) != b"".join(frontier)):
                    problems.append("the integration state does not match the stored entries")
            for head in heads:
                head_at = int(head.size)
                try:
                    checkpoint = open_checkpoint(head.checkpoint, self.vkey)
                except ValueError as exc:
                    problems.append(f"head {head_at}: {exc}")
                    continue
                if (checkpoint.origin != self.origin or checkpoint.size != head_at
                        or checkpoint.root_hash != bytes(head.root_hash)):
                    problems.append(f"head {head_at}: checkpoint does not match the stored head")
                if head_at not in head_roots:
                    problems.append(f"head {head_at}: covers entries that are not stored")
                elif not hmac.compare_digest(head_roots[head_at], checkpoint.root_hash):
                    problems.append(f"head {head_at}: root does not match the stored entries")
        first_bad = min(bad) if bad else (min(node_bad) if node_bad else None)
        return VerifyReport(not problems, size, len(heads), first_bad, problems)

    def _leaf_batches(
        self, conn: Connection
    ) -> Iterator[Sequence[tuple[int, bytes, bytes, bytes]]]:
        last = -1
        while True:
            rows = conn.execute(
                select(LogLeaf.idx, LogLeaf.entry, LogLeaf.leaf_hash, LogLeaf.mac)
                .where(LogLeaf.idx > last).order_by(LogLeaf.idx).limit(VERIFY_BATCH)
            ).all()
            if not rows:
                return
            last = int(rows[-1][0])
            yield [(int(r[0]), r[1], r[2], r[3]) for r in rows]

    @staticmethod
    def _check_nodes(
        conn: Connection,
        recomputed: dict[tuple[int, int], bytes],
        problems: list[str],
        bad: list[int],
    ) -> None:
        """Compare recomputed complete-subtree hashes with the stored ones."""
        if not recomputed:
            return
        by_level: dict[int, list[int]] = {}
        for level, idx in recomputed:
            by_level.setdefault(level, []).append(idx)
        stored: dict[tuple[int, int], bytes] = {}
        for level, ids in by_level.items():
            for idx, digest in conn.execute(
                select(LogNode.idx, LogNode.hash)
                .where(LogNode.level == level, LogNode.idx >= min(ids), LogNode.idx <= max(ids))
            ):
                stored[(level, int(idx))] = bytes(digest)
        for (level, idx), digest in sorted(recomputed.items(), key=lambda kv: kv[0][1] << kv[0][0]):
            got = stored.get((level, idx))
            first_leaf = idx << level
            if got is None:
                problems.append(f"subtree hash level {level} index {idx} is missing")
                bad.append(first_leaf)
            elif not hmac.compare_digest(got, digest):
                problems.append(f"subtree hash level {level} index {idx} (entries {first_leaf}"
                                f"..{((idx + 1) << level) - 1}) does not match")
                bad.append(first_leaf)


_contract: type[AccessLog] = MerkleAccessLog

"""The access-record log: RFC 6962 roots and proofs checked against pymerkle (an independent,
maintained implementation), RFC 9162 verifiers, concurrent integration, tamper detection,
C2SP checkpoints, and `mynumber log verify`."""

from __future__ import annotations

import base64
import random
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pymerkle import InmemoryTree
from sqlalchemy import text
from typer.testing import CliRunner

from mynumber.app import Container
from mynumber.cli import app as cli_app
from mynumber.network.interfaces import AccessLog, LogIndexOutOfRange, canonical_json
from mynumber.network.log import (
    EMPTY_ROOT,
    MerkleAccessLog,
    checkpoint_body,
    key_id,
    leaf_hash,
    log_signing_key,
    open_checkpoint,
    parse_verifier_key,
    verify_consistency,
    verify_inclusion,
)
from mynumber.settings import Settings
from tests.test_cli import _env

ORIGIN = "test.invalid/access-records"


def entry_for(i: int) -> bytes:
    return canonical_json({"serial": f"s{i:08d}", "requester": "mhlw", "task": "bekkyo2-1",
                           "provider": "municipality-131041", "item": "local_tax",
                           "outcome": "provided", "commitment": f"{i:064x}"})


def append(log: MerkleAccessLog, container: Container, start: int, count: int) -> None:
    with container.databases.unit_of_work("network") as session:
        for i in range(start, start + count):
            log.enqueue(session, f"s{i:08d}", entry_for(i))


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def alog(container: Container, key: Ed25519PrivateKey) -> MerkleAccessLog:
    return MerkleAccessLog(container.databases, key, ORIGIN)


def reference(count: int) -> InmemoryTree:
    tree = InmemoryTree(algorithm="sha256")  # security=True: RFC 6962 0x00 / 0x01 prefixes
    for i in range(count):
        tree.append_entry(entry_for(i))
    return tree


def sql(container: Container, statement: str, **params: object) -> None:
    with container.databases.engine("network").begin() as conn:
        conn.execute(text(statement), params)


def test_implements_the_protocol(alog: MerkleAccessLog) -> None:
    log: AccessLog = alog
    assert log is alog


def test_empty_log_has_a_signed_head_of_size_zero(alog: MerkleAccessLog) -> None:
    head = alog.latest_head()
    assert head.size == 0 and head.root_hash == EMPTY_ROOT
    assert head.root_hash.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    opened = open_checkpoint(head.checkpoint, alog.vkey)
    assert (opened.origin, opened.size, opened.root_hash) == (ORIGIN, 0, EMPTY_ROOT)
    assert alog.integrate() == 0
    report = alog.verify()
    assert report.ok and report.tree_size == 0 and report.heads_checked == 0


def test_sizes_1_to_70_agree_with_pymerkle(alog: MerkleAccessLog, container: Container) -> None:
    """One entry per integration: a signed head at every size 1..70. Every root, every audit
    path (all index/size pairs) equals pymerkle's; every consistency proof verifies between
    pymerkle's roots."""
    n_max = 70
    tree = reference(n_max)
    for i in range(n_max):
        append(alog, container, i, 1)
        assert alog.integrate() == 1
    with container.databases.engine("network").connect() as conn:
        heads = {int(s): bytes(r) for s, r in conn.execute(
            text("SELECT size, root_hash FROM log_heads"))}
    assert sorted(heads) == list(range(1, n_max + 1))
    for n in range(1, n_max + 1):
        assert heads[n] == tree.get_root(n), n
        assert alog.root_at(n) == heads[n]
        for m in range(n):
            ours = alog.inclusion_proof(m, n)
            theirs = tree.prove_inclusion(m + 1, n)  # pymerkle counts from one
            # pymerkle's path is the leaf hash followed by the RFC 6962 audit path.
            assert theirs.path[0] == leaf_hash(entry_for(m))
            assert list(ours.path) == theirs.path[1:], (m, n)
            assert verify_inclusion(leaf_hash(entry_for(m)), m, n, ours.path, heads[n])
        for m in range(0, n + 1):
            proof = alog.consistency_proof(m, n)
            first_root = EMPTY_ROOT if m == 0 else tree.get_root(m)
            assert verify_consistency(m, n, first_root, tree.get_root(n), proof.path), (m, n)
    assert alog.verify().ok


def test_random_larger_trees_agree_with_pymerkle(
    alog: MerkleAccessLog, container: Container
) -> None:
    rng = random.Random(6962)
    total = 0
    sizes = []
    while total < 1500:
        batch = rng.randint(1, 300)
        append(alog, container, total, batch)
        while alog.integrate(max_batch=rng.randint(1, 200)):
            pass
        total += batch
        sizes.append(total)
    tree = reference(total)
    assert alog.latest_head().size == total
    assert alog.latest_head().root_hash == tree.get_root()
    for _ in range(150):
        n = rng.choice([*sizes, rng.randint(1, total)])
        m = rng.randrange(n)
        proof = alog.inclusion_proof(m, n)
        assert list(proof.path) == tree.prove_inclusion(m + 1, n).path[1:]
        first = rng.randint(1, n)
        cproof = alog.consistency_proof(first, n)
        assert verify_consistency(first, n, tree.get_root(first), tree.get_root(n), cproof.path)
    report = alog.verify()
    assert report.ok, report.problems
    assert report.tree_size == total and report.heads_checked == len(
        {h for h in range(1, total + 1)} & set(_head_sizes(container)))


def _head_sizes(container: Container) -> list[int]:
    with container.databases.engine("network").connect() as conn:
        return [int(s) for s in conn.execute(text("SELECT size FROM log_heads")).scalars()]


def test_verifiers_reject_altered_proofs() -> None:
    tree = reference(37)
    root = tree.get_root()
    for m in (0, 5, 31, 32, 36):
        path = tree.prove_inclusion(m + 1, 37).path[1:]
        leaf = leaf_hash(entry_for(m))
        assert verify_inclusion(leaf, m, 37, path, root)
        assert not verify_inclusion(leaf_hash(b"other"), m, 37, path, root)
        # The size is bound through the path's shape (the root binds it via the signed head):
        # a size giving another shape must fail.
        assert not verify_inclusion(leaf, m, 100, path, root)
        if m < 20:
            assert not verify_inclusion(leaf, m, 20, path, root)
        assert not verify_inclusion(leaf, (m + 1) % 37, 37, path, root)
        assert not verify_inclusion(leaf, m, 37, path[:-1], root)
        assert not verify_inclusion(leaf, m, 37, [*path, root], root)
        flipped = list(path)
        flipped[0] = bytes([flipped[0][0] ^ 1]) + flipped[0][1:]
        assert not verify_inclusion(leaf, m, 37, flipped, root)
        assert not verify_inclusion(leaf, 37, 37, path, root)


def test_consistency_verifier_rejects_altered_proofs(
    alog: MerkleAccessLog, container: Container
) -> None:
    append(alog, container, 0, 37)
    alog.integrate()
    tree = reference(37)
    for first in (1, 4, 5, 16, 20, 36):
        path = list(alog.consistency_proof(first, 37).path)
        old, new = tree.get_root(first), tree.get_root(37)
        assert verify_consistency(first, 37, old, new, path)
        assert not verify_consistency(first, 37, new, new, path)
        assert not verify_consistency(first, 37, old, old, path)
        assert not verify_consistency(first + 1, 37, old, new, path)
        assert not verify_consistency(first, 37, old, new, path[:-1])
        assert not verify_consistency(first, 37, old, new, [])
        altered = list(path)
        altered[-1] = bytes(32)
        assert not verify_consistency(first, 37, old, new, altered)


def test_proof_ranges_are_checked(alog: MerkleAccessLog, container: Container) -> None:
    with pytest.raises(LogIndexOutOfRange):
        alog.inclusion_proof(0)  # empty tree
    append(alog, container, 0, 5)
    alog.integrate()
    for index, size in ((5, None), (-1, None), (0, 6), (3, 3), (0, 0)):
        with pytest.raises(LogIndexOutOfRange):
            alog.inclusion_proof(index, size)
    for first, second in ((0, 6), (4, 3), (-1, 2)):
        with pytest.raises(LogIndexOutOfRange):
            alog.consistency_proof(first, second)
    assert alog.consistency_proof(5, 5).path == ()
    assert alog.consistency_proof(0, 5).path == ()


def test_index_and_entries(alog: MerkleAccessLog, container: Container) -> None:
    append(alog, container, 0, 12)
    assert alog.index_of("s00000003") is None  # queued, not yet integrated
    alog.integrate(max_batch=10)
    assert alog.index_of("s00000003") == 3
    assert alog.index_of("s00000011") is None
    alog.integrate()
    assert alog.index_of("s00000011") == 11
    got = alog.entries(2, 5)
    assert [e.index for e in got] == [2, 3, 4]
    assert got[0].entry == entry_for(2) and got[0].leaf_hash == leaf_hash(entry_for(2))
    assert alog.index_of_hash(leaf_hash(entry_for(7))) == 7
    assert len(alog.entries(0, 5000)) == 12


def test_integrate_is_in_queue_order_and_drops_nothing(
    alog: MerkleAccessLog, container: Container
) -> None:
    append(alog, container, 0, 25)
    assert alog.integrate(max_batch=10) == 10
    assert alog.latest_head().size == 10
    assert [e.serial for e in alog.entries(0, 10)] == [f"s{i:08d}" for i in range(10)]
    assert alog.integrate() == 15
    assert alog.integrate() == 0
    assert alog.latest_head().size == 25
    with container.databases.engine("network").connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM log_queue")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM log_heads")).scalar() == 2


def test_a_duplicate_serial_is_dropped_not_integrated_twice(
    alog: MerkleAccessLog, container: Container
) -> None:
    append(alog, container, 0, 3)
    alog.integrate()
    append(alog, container, 1, 3)  # s1, s2 are already in the tree; s3 is new
    assert alog.integrate() == 1
    assert [e.serial for e in alog.entries(0, 10)] == [f"s{i:08d}" for i in range(4)]
    assert alog.verify().ok


def test_rollback_of_the_callers_transaction_leaves_nothing(
    alog: MerkleAccessLog, container: Container
) -> None:
    with pytest.raises(RuntimeError), container.databases.unit_of_work("network") as session:
        alog.enqueue(session, "rolled-back", b"{}")
        raise RuntimeError("exchange failed")
    assert alog.integrate() == 0


def test_concurrent_integrators_lose_and_duplicate_nothing(
    container: Container, key: Ed25519PrivateKey
) -> None:
    total = 600
    writer = MerkleAccessLog(container.databases, key, ORIGIN)
    errors: list[BaseException] = []
    done = threading.Event()

    def enqueue_all() -> None:
        try:
            for start in range(0, total, 20):
                append(writer, container, start, 20)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def integrate_loop() -> None:
        log = MerkleAccessLog(container.databases, key, ORIGIN)
        try:
            while not done.is_set() or log.integrate(max_batch=7):
                log.integrate(max_batch=7)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=enqueue_all)] + [
        threading.Thread(target=integrate_loop) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    while writer.integrate():
        pass
    entries = [e for start in range(0, total, 1000) for e in writer.entries(start, start + 1000)]
    assert [e.index for e in entries] == list(range(total))
    assert sorted(e.serial for e in entries) == [f"s{i:08d}" for i in range(total)]
    report = writer.verify()
    assert report.ok, report.problems
    # Tree order is integration order; the root must match the stored order exactly.
    ordered = InmemoryTree(algorithm="sha256")
    for e in entries:
        ordered.append_entry(e.entry)
    assert writer.latest_head().root_hash == ordered.get_root()


# --- tampering -----------------------------------------------------------------------------------


@pytest.fixture
def filled(alog: MerkleAccessLog, container: Container) -> MerkleAccessLog:
    append(alog, container, 0, 40)
    alog.integrate(max_batch=16)
    alog.integrate(max_batch=16)
    alog.integrate()
    assert alog.verify().ok
    return alog


@pytest.mark.parametrize("victim", [0, 5, 21, 39])
def test_edited_entry_is_named(filled: MerkleAccessLog, container: Container,
                               victim: int) -> None:
    sql(container, "UPDATE log_leaves SET entry = :e WHERE idx = :i",
        e=entry_for(victim).replace(b"provided", b"refused!"), i=victim)
    report = filled.verify()
    assert not report.ok and report.first_bad_index == victim
    assert any(f"entry {victim}" in p for p in report.problems)


@pytest.mark.parametrize("victim", [0, 5, 21, 39])
def test_edited_entry_and_leaf_hash_is_named(filled: MerkleAccessLog, container: Container,
                                             victim: int) -> None:
    forged = entry_for(victim).replace(b"provided", b"refused!")
    sql(container, "UPDATE log_leaves SET entry = :e, leaf_hash = :h WHERE idx = :i",
        e=forged, h=leaf_hash(forged), i=victim)
    report = filled.verify()
    assert not report.ok and report.first_bad_index == victim
    # The tree and the heads disagree too, independently of the leaf MAC.
    assert any("subtree hash" in p or "root does not match" in p for p in report.problems)
    assert any("root does not match" in p for p in report.problems)


@pytest.mark.parametrize("victim", [0, 17, 39])
def test_deleted_entry_is_named(filled: MerkleAccessLog, container: Container,
                                victim: int) -> None:
    sql(container, "DELETE FROM log_leaves WHERE idx = :i", i=victim)
    report = filled.verify()
    assert not report.ok and report.first_bad_index == victim
    assert any(f"entry {victim} is missing" in p for p in report.problems)


def test_edited_subtree_hash_is_detected(filled: MerkleAccessLog, container: Container) -> None:
    sql(container, "UPDATE log_nodes SET hash = :h WHERE level = 2 AND idx = 3", h=bytes(32))
    report = filled.verify()
    assert not report.ok and report.first_bad_index == 12


def test_forged_head_signature_fails(filled: MerkleAccessLog, container: Container) -> None:
    head = filled.latest_head()
    body, sig_line = head.checkpoint.split("\n\n")
    name, sig = sig_line.rstrip("\n").split(" ")[1:]
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 0x01
    forged = f"{body}\n\n\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
    sql(container, "UPDATE log_heads SET checkpoint = :c WHERE size = :s", c=forged, s=head.size)
    report = filled.verify()
    assert not report.ok
    assert any(f"head {head.size}" in p and "signature" in p for p in report.problems)


def test_head_signed_by_another_key_fails(filled: MerkleAccessLog, container: Container) -> None:
    other = Ed25519PrivateKey.generate()
    head = filled.latest_head()
    from mynumber.network.log import sign_note

    forged = sign_note(checkpoint_body(ORIGIN, head.size, head.root_hash), ORIGIN, other)
    sql(container, "UPDATE log_heads SET checkpoint = :c WHERE size = :s", c=forged, s=head.size)
    report = filled.verify()
    assert not report.ok and any("no signature by the expected key" in p
                                 for p in report.problems)


def test_rewritten_history_with_a_forged_root_fails(filled: MerkleAccessLog,
                                                    container: Container) -> None:
    sql(container, "UPDATE log_heads SET root_hash = :r WHERE size = 16", r=bytes(32))
    report = filled.verify()
    assert not report.ok and any("head 16" in p for p in report.problems)


# --- checkpoint format ---------------------------------------------------------------------------


def test_checkpoint_is_a_c2sp_signed_note(filled: MerkleAccessLog, key: Ed25519PrivateKey) -> None:
    head = filled.latest_head()
    lines = head.checkpoint.split("\n")
    assert lines[0] == ORIGIN and lines[1] == "40"
    assert base64.b64decode(lines[2]) == head.root_hash
    assert lines[3] == "" and lines[4].startswith("\u2014 " + ORIGIN + " ") and lines[5] == ""
    raw = base64.b64decode(lines[4].split(" ")[2])
    public = key.public_key().public_bytes_raw()
    assert len(raw) == 4 + 64 and raw[:4] == key_id(ORIGIN, public)
    key.public_key().verify(raw[4:], "\n".join(lines[:3]).encode() + b"\n")
    name, vkey_public = parse_verifier_key(filled.vkey)
    assert name == ORIGIN and vkey_public == public
    opened = open_checkpoint(head.checkpoint, filled.vkey)
    assert opened.size == 40 and opened.root_hash == head.root_hash
    with pytest.raises(ValueError):
        open_checkpoint(head.checkpoint.replace("\n40\n", "\n41\n"), filled.vkey)


def test_vkey_matches_go_sumdb_note_vector() -> None:
    """The example key of golang.org/x/mod/sumdb/note's documentation."""
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    name, public = parse_verifier_key(vkey)
    assert name == "PeterNeumann"
    from mynumber.network.log import verifier_key

    assert verifier_key(name, public) == vkey


def test_checkpoint_verifies_with_openssl(filled: MerkleAccessLog, key: Ed25519PrivateKey,
                                          tmp_path: Path) -> None:
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    note = filled.latest_head().checkpoint
    body, signatures = note.split("\n\n")
    (tmp_path / "body").write_bytes((body + "\n").encode())
    sig = base64.b64decode(signatures.split(" ")[2])[4:]
    (tmp_path / "sig").write_bytes(sig)
    (tmp_path / "pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    result = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
         "-rawin", "-in", str(tmp_path / "body"), "-sigfile", str(tmp_path / "sig")],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "Signature Verified Successfully" in result.stdout


def test_origin_must_be_a_key_name(container: Container, key: Ed25519PrivateKey) -> None:
    for bad in ("", "has space", "a+b"):
        with pytest.raises(ValueError):
            MerkleAccessLog(container.databases, key, bad)


# --- CLI -----------------------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_log(container: Container) -> Iterator[MerkleAccessLog]:
    """The log as the CLI builds it: the key from the key provider, the settings' origin."""
    yield MerkleAccessLog(container.databases, log_signing_key(container.keys),
                          container.settings.checkpoint_origin)


def test_cli_log_verify(cli_log: MerkleAccessLog, container: Container,
                        settings: Settings) -> None:
    env = _env(settings)
    append(cli_log, container, 0, 30)  # queued only: the CLI integrates first
    # These entries were written straight to the log: no exchange record stands behind them,
    # which the full check names, record by record.
    unbacked = runner.invoke(cli_app, ["log", "verify"], env=env)
    assert unbacked.exit_code == 1
    assert "record s00000007: log entry has no exchange record" in unbacked.output
    ok = runner.invoke(cli_app, ["log", "verify", "--no-records"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "OK: 30 entries, 1 signed heads" in ok.output
    checkpoint = runner.invoke(cli_app, ["log", "checkpoint"], env=env)
    vkey = runner.invoke(cli_app, ["log", "checkpoint", "--vkey"], env=env)
    assert open_checkpoint(checkpoint.stdout, vkey.stdout.strip()).size == 30
    prove = runner.invoke(cli_app, ["log", "prove", "7"], env=env)
    assert prove.exit_code == 0 and '"verified": true' in prove.stdout

    append(cli_log, container, 30, 5)
    sql(container, "UPDATE log_leaves SET entry = :e WHERE idx = 4", e=b"{}")
    bad = runner.invoke(cli_app, ["log", "verify", "--no-integrate", "--json", "--no-records"],
                        env=env)
    assert bad.exit_code == 1
    assert '"first_bad_index": 4' in bad.stdout and '"tree_size": 30' in bad.stdout
    bad_text = runner.invoke(cli_app, ["log", "verify", "--no-records"], env=env)
    assert bad_text.exit_code == 1 and "first bad entry 4" in bad_text.output
    assert cli_log.latest_head().size == 35


# --- bench ---------------------------------------------------------------------------------------


def test_bench_log_figures() -> None:
    """`mynumber bench log`: its figures' shape, and that every entry was integrated and every
    sampled proof verified (speed is measured by the benchmark, not judged here)."""
    from mynumber.bench import BenchOptions
    from mynumber.bench import log as bench
    from tests.conftest import PG_URL

    figures = bench.run(BenchOptions(count=2500, database_url=PG_URL))
    assert figures["goal_per_second"] == 10_000 and figures["count"] == 2500
    for prefix in ("sqlite", "postgres") if PG_URL else ("sqlite",):
        assert figures[f"{prefix}_stored"] == 2500
        assert figures[f"{prefix}_proofs_verified"] is True
        assert figures[f"{prefix}_verify_ok"] is True
        assert 350 <= figures[f"{prefix}_entry_bytes_mean"] <= 600
        assert figures[f"{prefix}_inclusion_proof_ms_p99"] >= figures[
            f"{prefix}_inclusion_proof_ms_mean"] > 0
    assert figures["per_second"] == figures[
        "postgres_end_to_end_per_second" if PG_URL else "sqlite_end_to_end_per_second"]

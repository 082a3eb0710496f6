"""`mynumber log …`: integrate, verify and inspect the access-record log (情報提供等記録)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Annotated

import typer

from mynumber.cli.common import LongWork, console, container_from_env, err_console, fail

if TYPE_CHECKING:
    from mynumber.app import Container
    from mynumber.network.interfaces import RecordMismatch
    from mynumber.network.log import MerkleAccessLog

app = typer.Typer(help="The access-record log (情報提供等記録): a signed Merkle tree.",
                  no_args_is_help=True)


def access_log(container: Container) -> MerkleAccessLog:
    """The container's log (``network_log``), or one built the same way from its keys."""
    from mynumber.network.log import MerkleAccessLog, log_signing_key

    existing = getattr(container, "network_log", None)
    if isinstance(existing, MerkleAccessLog):
        return existing
    return MerkleAccessLog(container.databases, log_signing_key(container.keys),
                           container.settings.checkpoint_origin)


def _integrate_all(log: MerkleAccessLog, batch: int) -> int:
    total = 0
    while True:
        done = log.integrate(batch)
        total += done
        if done < batch:
            return total


@app.command("integrate")
def integrate(
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="entries per signed head")]
    = 10_000,
) -> None:
    """Sequence every queued entry into the tree and sign new tree heads."""
    container = container_from_env()
    log = access_log(container)
    total = _integrate_all(log, batch)
    head = log.latest_head()
    console.print(f"integrated {total}; tree size {head.size}")


@app.command("verify")
def verify(
    integrate_first: Annotated[bool, typer.Option(
        "--integrate/--no-integrate", help="integrate queued entries before verifying")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    records_check: Annotated[bool, typer.Option(
        "--records/--no-records",
        help="also compare every exchange record with its log entry (--no-records: the tree "
             "only, e.g. for a log filled by a benchmark)")] = True,
) -> None:
    """Rebuild the tree from the stored records; check every hash and every signed head; then
    check that the log vouches for every exchange record a resident sees (both ways, field by
    field). Exit code 1 when anything does not match, naming the record (処理通番)."""
    from mynumber.network.interfaces import RecordsReport

    container = container_from_env()
    log = access_log(container)
    if integrate_first:
        _integrate_all(log, 10_000)
    with LongWork("verifying the log", quiet=as_json):
        report = log.verify()
    with LongWork("checking the exchange records against the log", quiet=as_json):
        records = (container.network.verify_records() if records_check
                   else RecordsReport(True, 0, 0))
    ok = report.ok and records.ok
    record_problems = [_describe(mm) for mm in records.mismatches]
    if as_json:
        print(json.dumps({"ok": ok, "tree_size": report.tree_size,
                          "heads_checked": report.heads_checked,
                          "first_bad_index": report.first_bad_index,
                          "problems": report.problems,
                          "records": None if not records_check else {
                              "ok": records.ok,
                              "exchanges_checked": records.exchanges_checked,
                              "entries_checked": records.entries_checked,
                              "v1_entries": records.v1_entries,
                              "mismatches": [
                                  {"serial": mm.serial, "problem": mm.problem,
                                   "fields": list(mm.fields)}
                                  for mm in records.mismatches]}},
                         ensure_ascii=False))
    elif ok:
        console.print(f"OK: {report.tree_size} entries, {report.heads_checked} signed heads "
                      "checked" + (f"; {records.exchanges_checked} exchange records match "
                                   "their log entries" if records_check else ""),
                      soft_wrap=True)
    else:
        if not report.ok:
            err_console.print(f"[red]FAILED[/red]: first bad entry {report.first_bad_index}")
            for problem in report.problems[:50]:
                err_console.print(f"  {problem}")
            if len(report.problems) > 50:
                err_console.print(f"  … and {len(report.problems) - 50} more")
        if not records.ok:
            err_console.print(f"[red]FAILED[/red]: {len(records.mismatches)} exchange records "
                              "the log does not vouch for (the portal shows them as "
                              "検証できません)")
            for problem in record_problems[:50]:
                err_console.print(f"  {problem}", markup=False, soft_wrap=True)
            if len(record_problems) > 50:
                err_console.print(f"  … and {len(record_problems) - 50} more")
    if not ok:
        raise typer.Exit(1)


def _describe(mismatch: RecordMismatch) -> str:
    what = {
        "missing_from_log": "has no log entry",
        "no_exchange_record": "log entry has no exchange record (the record was deleted?)",
        "unreadable_entry": "log entry is unreadable or describes another record",
        "differs": "differs from its log entry in: " + ", ".join(mismatch.fields),
    }.get(mismatch.problem, mismatch.problem)
    return f"record {mismatch.serial}: {what}"


@app.command("checkpoint")
def checkpoint(
    vkey: Annotated[bool, typer.Option("--vkey", help="print the verifier key instead")] = False,
) -> None:
    """Print the latest signed checkpoint (C2SP tlog-checkpoint), or the verifier key."""
    log = access_log(container_from_env())
    if vkey:
        print(log.vkey)
    else:
        print(log.latest_head().checkpoint, end="")


@app.command("prove")
def prove(
    index: Annotated[int, typer.Argument(min=0, help="leaf index")],
    tree_size: Annotated[int | None, typer.Option(min=1, help="default: the latest head")]
    = None,
) -> None:
    """Print an inclusion proof (JSON, base64 hashes) and check it against the head."""
    from mynumber.errors import DomainError
    from mynumber.network.log import verify_inclusion

    log = access_log(container_from_env())
    try:
        proof = log.inclusion_proof(index, tree_size)
        entry = log.entries(index, index + 1)[0]
    except DomainError as exc:
        fail(exc.detail)
    root = log.root_at(proof.tree_size)
    ok = verify_inclusion(entry.leaf_hash, index, proof.tree_size, proof.path, root)
    print(json.dumps({
        "leaf_index": index, "tree_size": proof.tree_size,
        "leaf_hash": base64.b64encode(entry.leaf_hash).decode(),
        "root_hash": base64.b64encode(root).decode(),
        "audit_path": [base64.b64encode(p).decode() for p in proof.path],
        "verified": ok,
    }))
    if not ok:
        raise typer.Exit(1)

"""`mynumber log …`: integrate, verify and inspect the access-record log (情報提供等記録)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Annotated

import typer

from mynumber.cli.common import console, container_from_env, err_console, fail

if TYPE_CHECKING:
    from mynumber.app import Container
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
) -> None:
    """Rebuild the tree from the stored records; check every hash and every signed head.
    Exit code 1 when anything does not match."""
    container = container_from_env()
    log = access_log(container)
    if integrate_first:
        _integrate_all(log, 10_000)
    report = log.verify()
    if as_json:
        print(json.dumps({"ok": report.ok, "tree_size": report.tree_size,
                          "heads_checked": report.heads_checked,
                          "first_bad_index": report.first_bad_index,
                          "problems": report.problems}, ensure_ascii=False))
    elif report.ok:
        console.print(f"OK: {report.tree_size} entries, {report.heads_checked} signed heads "
                      "checked")
    else:
        err_console.print(f"[red]FAILED[/red]: first bad entry {report.first_bad_index}")
        for problem in report.problems[:50]:
            err_console.print(f"  {problem}")
        if len(report.problems) > 50:
            err_console.print(f"  … and {len(report.problems) - 50} more")
    if not report.ok:
        raise typer.Exit(1)


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

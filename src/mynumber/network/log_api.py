"""The access-record log over HTTP, for outside auditors (docs/log.md).

Shapes follow RFC 6962 section 4 (``/log/v1/get-sth`` …), except that the tree head is signed
as a C2SP tlog-checkpoint (Ed25519 signed note, ``GET /log/checkpoint``) rather than a TLS
DigitallySigned struct, and ``get-entries`` returns the record bytes as JSON text.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from mynumber.network.interfaces import LogIndexOutOfRange
from mynumber.network.log import MAX_ENTRIES, BadLogParameter, MerkleAccessLog

MAX_INDEX = 2**62  # far above any size; keeps every value inside a 64-bit column


def get_log(request: Request) -> MerkleAccessLog:
    log: MerkleAccessLog = request.app.state.container.network_log
    return log


LogDep = Annotated[MerkleAccessLog, Depends(get_log)]

# The app documents the 4xx problem responses of every operation (web.problems).
router = APIRouter(prefix="/log", tags=["access-log"])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


B64Hash = Annotated[str, Field(description="SHA-256 hash, standard base64 (44 characters)")]


class SignedTreeHeadOut(BaseModel):
    tree_size: int = Field(ge=0)
    timestamp: int = Field(ge=0, description="milliseconds since the epoch when the head was "
                           "made (informational: not covered by the signature)")
    sha256_root_hash: B64Hash
    checkpoint: str = Field(description="the C2SP tlog-checkpoint signed note")


class ConsistencyOut(BaseModel):
    consistency: list[B64Hash] = Field(description="RFC 6962 section 2.1.2 proof")


class InclusionOut(BaseModel):
    leaf_index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    audit_path: list[B64Hash] = Field(description="RFC 6962 section 2.1.1, leaf side first")


class EntryOut(BaseModel):
    index: int = Field(ge=0)
    serial: str = Field(description="処理通番")
    entry: str = Field(description="the record: canonical JSON (UTF-8 text of the leaf bytes)")
    leaf_hash: B64Hash = Field(description="SHA-256(0x00 || entry bytes)")


class EntriesOut(BaseModel):
    entries: list[EntryOut]


class VerifierKeyOut(BaseModel):
    origin: str
    vkey: str = Field(description="golang.org/x/mod/sumdb/note verifier key: "
                      "name+hex key id+base64(0x01 || Ed25519 public key)")


@router.get("/checkpoint", operation_id="log_checkpoint", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "the latest C2SP tlog-checkpoint"}})
def checkpoint(log: LogDep) -> PlainTextResponse:
    """The latest signed checkpoint (c2sp.org/tlog-checkpoint, signed with Ed25519)."""
    return PlainTextResponse(log.latest_head().checkpoint,
                             media_type="text/plain; charset=utf-8",
                             headers={"Cache-Control": "no-cache"})


@router.get("/v1/get-sth", operation_id="log_get_sth", response_model=SignedTreeHeadOut)
def get_sth(log: LogDep) -> SignedTreeHeadOut:
    """The latest signed tree head (RFC 6962 section 4.3, signed as a checkpoint)."""
    head = log.latest_head()
    return SignedTreeHeadOut(tree_size=head.size,
                             timestamp=int(head.timestamp.timestamp() * 1000),
                             sha256_root_hash=_b64(head.root_hash), checkpoint=head.checkpoint)


@router.get("/v1/get-sth-consistency", operation_id="log_get_sth_consistency",
            response_model=ConsistencyOut)
def get_sth_consistency(
    log: LogDep,
    first: Annotated[int, Query(ge=0, le=MAX_INDEX, description="the older tree size")],
    second: Annotated[int, Query(ge=0, le=MAX_INDEX, description="the newer tree size")],
) -> ConsistencyOut:
    """Consistency proof between two tree sizes (RFC 6962 section 4.4); empty when
    ``first`` is 0 or equals ``second``."""
    proof = log.consistency_proof(first, second)
    return ConsistencyOut(consistency=[_b64(p) for p in proof.path])


@router.get("/v1/get-proof-by-hash", operation_id="log_get_proof_by_hash",
            response_model=InclusionOut)
def get_proof_by_hash(
    log: LogDep,
    leaf: Annotated[str, Query(alias="hash", pattern=r"^[A-Za-z0-9+/]{43}=$",
                               description="leaf hash: SHA-256, standard base64")],
    tree_size: Annotated[int | None, Query(ge=1, le=MAX_INDEX,
                                           description="default: the latest head")] = None,
) -> InclusionOut:
    """Inclusion proof for a leaf hash (RFC 6962 section 4.5)."""
    try:
        digest = base64.b64decode(leaf, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise BadLogParameter("hash must be a base64 SHA-256 hash", field="hash")
    size = tree_size if tree_size is not None else log.latest_head().size
    # Check the size first so an out-of-range size is a 404 for the size, not the hash.
    if size < 1 or size > log.latest_head().size:
        log.inclusion_proof(0, size)  # raises LogIndexOutOfRange with the allowed range
    index = log.index_of_hash(digest, size)
    proof = log.inclusion_proof(index, size)
    return InclusionOut(leaf_index=index, tree_size=proof.tree_size,
                        audit_path=[_b64(p) for p in proof.path])


@router.get("/v1/get-proof-by-index", operation_id="log_get_proof_by_index",
            response_model=InclusionOut)
def get_proof_by_index(
    log: LogDep,
    index: Annotated[int, Query(ge=0, le=MAX_INDEX, description="leaf index")],
    tree_size: Annotated[int | None, Query(ge=1, le=MAX_INDEX,
                                           description="default: the latest head")] = None,
) -> InclusionOut:
    """Inclusion proof for a leaf index (as RFC 9162 / Trillian's get-proof-by-index)."""
    proof = log.inclusion_proof(index, tree_size)
    return InclusionOut(leaf_index=index, tree_size=proof.tree_size,
                        audit_path=[_b64(p) for p in proof.path])


@router.get("/v1/get-entries", operation_id="log_get_entries", response_model=EntriesOut)
def get_entries(
    log: LogDep,
    start: Annotated[int, Query(ge=0, le=MAX_INDEX, description="first index")],
    end: Annotated[int, Query(ge=0, le=MAX_INDEX,
                              description="last index, inclusive (RFC 6962 section 4.6)")],
) -> EntriesOut:
    """Entries ``start..end`` inclusive; at most 1,000 per call (fewer may be returned, as
    RFC 6962 allows: ask again from the next index)."""
    if end < start:
        raise BadLogParameter("end must not be below start", field="end")
    size = log.latest_head().size
    if start >= size:
        raise LogIndexOutOfRange(f"start must be below the tree size {size}", field="start")
    last = min(end + 1, size, start + MAX_ENTRIES)
    return EntriesOut(entries=[
        EntryOut(index=e.index, serial=e.serial, entry=e.entry.decode("utf-8", "replace"),
                 leaf_hash=_b64(e.leaf_hash))
        for e in log.entries(start, last)])


@router.get("/v1/verifier-key", operation_id="log_verifier_key", response_model=VerifierKeyOut)
def verifier_key(log: LogDep) -> VerifierKeyOut:
    """The origin and the key to verify checkpoints with (e.g. Go's sumdb/note)."""
    return VerifierKeyOut(origin=log.origin, vkey=log.vkey)

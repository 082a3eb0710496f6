"""Wire shapes of the intermediate server's HTTP face (core -> 中間サーバー).

Bytes travel as standard base64 (RFC 4648 section 4, with padding); timestamps as RFC 3339
with an offset. The core's signature covers ``RoutedQuery.signed_bytes()``, which is rebuilt
from these fields, so the JSON form itself need not be canonical.
"""

from __future__ import annotations

import base64
import binascii

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from mynumber.network.interfaces import RoutedQuery, SealedAnswer

ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
CODE = r"^[A-Za-z0-9_-]{1,64}$"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode(value: str, length: int | None, what: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} must be base64") from None
    if length is not None and len(raw) != length:
        raise ValueError(f"{what} must encode {length} bytes")
    return raw


class RoutedQueryIn(BaseModel):
    """A query the core routes to a provider, signed by the core (Ed25519). Unknown fields
    are refused; every text field has a pattern, so no control characters get in."""

    model_config = ConfigDict(extra="forbid")

    serial: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="処理通番")
    requester_id: str = Field(pattern=ID, description="requesting agency")
    task_id: str = Field(pattern=CODE, description="事務 of the legal table")
    provider_id: str = Field(pattern=ID, description="providing agency (served here)")
    item_code: str = Field(pattern=CODE, description="特定個人情報の項目")
    subject_code: str = Field(pattern=r"^[A-Za-z0-9_=-]{1,32}$",
                              description="the provider's 機関別符号 for the person")
    requester_encryption_key: str = Field(
        min_length=44, max_length=44, description="raw X25519 public key, base64 (32 bytes)")
    routed_at: AwareDatetime = Field(description="when the core routed the query (RFC 3339)")
    signature: str = Field(min_length=88, max_length=88,
                           description="the core's Ed25519 signature, base64 (64 bytes)")

    @field_validator("requester_encryption_key")
    @classmethod
    def _key(cls, value: str) -> str:
        _decode(value, 32, "requester_encryption_key")
        return value

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str) -> str:
        _decode(value, 64, "signature")
        return value

    def to_query(self) -> RoutedQuery:
        return RoutedQuery(
            serial=self.serial, requester_id=self.requester_id, task_id=self.task_id,
            provider_id=self.provider_id, item_code=self.item_code,
            subject_code=self.subject_code,
            requester_encryption_key=_decode(self.requester_encryption_key, 32, "key"),
            routed_at=self.routed_at, signature=_decode(self.signature, 64, "signature"),
        )

    @classmethod
    def from_query(cls, query: RoutedQuery) -> dict[str, str]:
        """The JSON body for ``query`` (what :class:`HttpIntermediateServer` posts)."""
        return {
            "serial": query.serial, "requester_id": query.requester_id,
            "task_id": query.task_id, "provider_id": query.provider_id,
            "item_code": query.item_code, "subject_code": query.subject_code,
            "requester_encryption_key": b64(query.requester_encryption_key),
            "routed_at": query.routed_at.isoformat(), "signature": b64(query.signature),
        }


class SealedAnswerOut(BaseModel):
    serial: str = Field(description="処理通番 of the query answered")
    held: bool = Field(description="false: the provider holds no such copy for the person")
    sealed: str | None = Field(
        description="base64 envelope (mynumber.envelope) signed by the provider and sealed "
        "for the requester; null when not held")

    @classmethod
    def from_answer(cls, answer: SealedAnswer) -> SealedAnswerOut:
        return cls(serial=answer.serial, held=answer.held,
                   sealed=None if answer.sealed is None else b64(answer.sealed))

    def to_answer(self) -> SealedAnswer:
        sealed = None if self.sealed is None else _decode(self.sealed, None, "sealed")
        return SealedAnswer(serial=self.serial, held=self.held, sealed=sealed)

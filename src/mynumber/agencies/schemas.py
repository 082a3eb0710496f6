"""Wire shapes of the intermediate server's HTTP face: core -> 中間サーバー (routed queries),
and the agency's back office -> its 中間サーバー (enrolment, 副本).

Bytes travel as standard base64 (RFC 4648 section 4, with padding); timestamps as RFC 3339
with an offset. The core's signature covers ``RoutedQuery.signed_bytes()``, which is rebuilt
from these fields, so the JSON form itself need not be canonical.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

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


# --- the agency's back office -> its intermediate server ----------------------------------

ADDRESS_NUMBER = r"^[0-9A-Za-z][0-9A-Za-z_-]{0,39}$"
NONCE = r"^[A-Za-z0-9_-]{16,64}$"
#: The type tags (``signed_request_bytes``) of the back office's signed requests.
ENROL_KIND = "agency-person-enrolment"
COPY_KIND = "agency-copy"


class _SignedIn(BaseModel):
    """A back-office request, signed with the agency's own Ed25519 signing key over
    ``mynumber.network.interfaces.signed_request_bytes(kind, fields)``: the canonical JSON
    (sorted keys, no spaces, UTF-8) of every field but ``signature``, ``requested_at`` in UTC
    ISO form, plus ``"type": "mynumber.<kind>.v1"``."""

    model_config = ConfigDict(extra="forbid")

    agency_id: str = Field(pattern=ID, description="the agency, served by this server")
    requested_at: AwareDatetime = Field(
        description="RFC 3339 with an offset; refused when more than 5 minutes off")
    nonce: str = Field(pattern=NONCE, description="random, never reused (16-64 of A-Za-z0-9_-)")
    signature: str = Field(min_length=88, max_length=88,
                           description="the agency's Ed25519 signature, base64 (64 bytes)")

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str) -> str:
        _decode(value, 64, "signature")
        return value

    def signature_bytes(self) -> bytes:
        return _decode(self.signature, 64, "signature")

    def signed_fields(self) -> dict[str, object]:
        return self.model_dump(exclude={"signature"})


#: The public name of the signed-request base (web/accounts_agency_api.py signs the same way).
SignedIn = _SignedIn


class EnrolPersonIn(_SignedIn):
    """宛名番号 -> 機関別符号: enrol a person the agency lawfully holds the 個人番号 of. The
    number is used for this request only: never stored, logged or echoed in an answer or
    error. Idempotent per address number."""

    address_number: str = Field(pattern=ADDRESS_NUMBER, description="the agency's 宛名番号")
    individual_number: str = Field(pattern=r"^[0-9]{12}$",
                                   description="個人番号 (12 digits); used once, never kept")


class EnrolPersonOut(BaseModel):
    agency_id: str
    address_number: str
    already_enrolled: bool = Field(description="true: the address number was enrolled before "
                                   "(nothing changed)")


class PutCopyIn(_SignedIn):
    """副本: register or replace the copy of one item for a person enrolled under
    ``address_number``. A payload carrying a 個人番号 anywhere is refused."""

    address_number: str = Field(pattern=ADDRESS_NUMBER, description="the agency's 宛名番号")
    item_code: str = Field(pattern=CODE, description="特定個人情報の項目 (legal-table item)")
    payload: dict[str, Any] = Field(description="the copy: a JSON object, at most 64 KiB")


class CopyOut(BaseModel):
    agency_id: str
    address_number: str
    item_code: str
    version: int = Field(description="1 for the first copy, +1 on each replacement")
    updated_at: AwareDatetime

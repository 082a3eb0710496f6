"""JSON shapes of the network API. Binary values (keys, signatures, sealed answers, hashes)
travel as standard base64."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer

from mynumber.network.interfaces import AgencyStatus, Outcome, RefusalReason


def _b64decode(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be standard base64") from None


B64 = Annotated[
    bytes,
    BeforeValidator(_b64decode),
    PlainSerializer(lambda v: base64.b64encode(v).decode(), return_type=str),
    Field(json_schema_extra={"type": "string", "format": "byte"}),
]

AgencyId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$",
                                description="agency id, e.g. `mhlw`, `municipality-131041`")]
Nonce = Annotated[str, Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class AgencyPublic(BaseModel):
    """機関: a concrete agency and the public keys of its intermediate server."""

    agency_id: str
    name: str = Field(description="名称")
    kind: str = Field(description="機関の種別 (legal-table agency kind)")
    status: AgencyStatus
    municipality_code: str | None = None
    signing_key: B64 | None = Field(default=None, description="raw Ed25519 public key")
    encryption_key: B64 | None = Field(default=None, description="raw X25519 public key")


class TaskPublic(BaseModel):
    task_id: str
    item_no: str = Field(description="別表第二の項")
    title: str = Field(description="事務")


class ItemPublic(BaseModel):
    code: str
    label: str = Field(description="特定個人情報の名称")


class ProvisionPublic(BaseModel):
    provision_id: str
    task_id: str
    requester_kinds: list[str]
    provider_kinds: list[str]
    items: list[str]
    legal_reference: str
    requester_text: str = Field(description="情報照会者 (the statute's wording)")
    provider_text: str = Field(description="情報提供者 (the statute's wording)")
    information_text: str = Field(description="特定個人情報 (the statute's wording)")
    restricted: bool


class ExchangeQueryIn(BaseModel):
    """情報照会: signed by the requester over the canonical JSON of these fields
    (`ExchangeQuery.signed_bytes`, see docs/network.md)."""

    requester_id: AgencyId
    task_id: str = Field(min_length=1, max_length=64)
    provider_id: AgencyId
    item_code: str = Field(min_length=1, max_length=64)
    subject_code: str = Field(min_length=1, max_length=64, description="the requester's 機関別符号")
    requested_at: dt.datetime
    nonce: Nonce
    signature: B64


class ExchangeResultOut(BaseModel):
    serial: str = Field(description="処理通番")
    outcome: Outcome
    reason: RefusalReason | None = None
    provision_id: str | None = None
    sealed: B64 | None = Field(
        default=None, description="the provider's answer: HPKE-sealed for the requester, "
        "signed by the provider (mynumber.envelope)")


class AgencyCodeIn(BaseModel):
    """Redeem a 取得番号 for the agency's 機関別符号 (signed by the agency)."""

    agency_id: AgencyId
    acquisition_number: str = Field(min_length=1, max_length=64)
    requested_at: dt.datetime
    nonce: Nonce
    signature: B64


class AgencyCodeOut(BaseModel):
    agency_code: str = Field(description="機関別符号")


class DeclinedIn(BaseModel):
    """An application taken without a number (番号の提供を拒否): recorded, no exchange."""

    agency_id: AgencyId
    task_id: str = Field(min_length=1, max_length=64)
    application_ref: str = Field(min_length=1, max_length=64)
    documents: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=20, description="添付書類: the documents attached instead")
    requested_at: dt.datetime
    nonce: Nonce
    signature: B64


class AccessRecordsIn(BaseModel):
    """The portal asks for one resident's records, naming them by its own code."""

    agency_id: AgencyId
    subject_code: str = Field(min_length=1, max_length=64)
    requested_at: dt.datetime
    nonce: Nonce
    signature: B64


class InclusionProofOut(BaseModel):
    leaf_index: int
    tree_size: int
    audit_path: list[B64]


class AccessRecordOut(BaseModel):
    serial: str = Field(description="処理通番")
    occurred_at: dt.datetime
    requester_id: str
    requester_name: str
    task_id: str
    task_title: str
    provider_id: str
    provider_name: str
    item_code: str
    item_label: str
    outcome: Outcome
    reason: RefusalReason | None
    restricted: bool
    disclosed_at: dt.datetime | None
    log_index: int | None
    verified: bool = Field(default=True, description=(
        "false: the record does not match its entry in the signed log (or has none); show it "
        "as 検証できません, never its fields as fact"))
    entry: str | None = Field(default=None, description="the log entry (canonical JSON)")
    inclusion_proof: InclusionProofOut | None = None


class AccessRecordsOut(BaseModel):
    checkpoint: str = Field(description="C2SP tlog-checkpoint the proofs are against")
    records: list[AccessRecordOut]

"""JSON shapes of the portal API (``/api/v1/portal``). Binary values (challenges, signatures)
travel as standard base64; times are ISO 8601 in UTC."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer

from mynumber.kernel.schemas import MAX_ID
from mynumber.network.interfaces import AccessRecord, Outcome
from mynumber.portal.interfaces import (
    ApplicationState,
    NoticeState,
    ProxyKind,
)


def _b64decode(value: object, limit: int) -> bytes:
    if isinstance(value, bytes):
        raw = value
    elif not isinstance(value, str) or len(value) > (limit + 2) // 3 * 4:
        raise ValueError(f"must be a base64 string of at most {limit} bytes")
    else:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be standard base64") from None
    if len(raw) > limit:
        raise ValueError(f"at most {limit} bytes")
    return raw


def _b64encode(value: bytes) -> str:
    return base64.b64encode(value).decode()


B64Signature = Annotated[
    bytes,
    BeforeValidator(lambda v: _b64decode(v, 1024)),
    PlainSerializer(_b64encode, return_type=str),
    Field(json_schema_extra={"type": "string", "format": "byte"}),
]
B64Challenge = Annotated[
    bytes,
    BeforeValidator(lambda v: _b64decode(v, 64)),
    PlainSerializer(_b64encode, return_type=str),
    Field(json_schema_extra={"type": "string", "format": "byte"}),
]
Token = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
AccountId = Annotated[int, Field(ge=1, le=MAX_ID)]
ResidentId = Annotated[int, Field(ge=1, le=MAX_ID, description="registry resident id")]
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"


# --- login -------------------------------------------------------------------------------------


class ChallengeOut(BaseModel):
    """What the card signs with its user-authentication key (after the 4-digit PIN)."""

    challenge_id: str
    challenge: B64Challenge = Field(description="32 random bytes, base64")
    expires_at: dt.datetime


class LoginIn(BaseModel):
    challenge_id: Token
    signature: B64Signature = Field(description="RSASSA-PKCS1-v1_5/SHA-256 over the "
                                                "challenge, base64")
    certificate: str = Field(min_length=1, max_length=16384, pattern=r"^[\x09\x0a\x0d\x20-\x7e]*$",
                             description="the card's user-authentication certificate (PEM)")
    previous_token: Token | None = Field(
        default=None, description="the session the terminal still holds: ended first")


class SessionOut(BaseModel):
    """A new session. ``token`` is shown only here: send it as ``Authorization: Bearer``."""

    token: str
    session_id: str
    account_id: int
    acting_for: int
    proxy_kind: ProxyKind | None
    started_at: dt.datetime
    expires_at: dt.datetime
    idle_until: dt.datetime
    csrf_token: str


class SessionInfo(BaseModel):
    session_id: str
    account_id: int
    acting_for: int
    proxy_kind: ProxyKind | None
    started_at: dt.datetime
    expires_at: dt.datetime
    idle_until: dt.datetime


class AccountOut(BaseModel):
    account_id: int
    display_name: str
    municipality_code: str
    created_at: dt.datetime
    last_login_at: dt.datetime | None


class MeOut(BaseModel):
    account: AccountOut = Field(description="who logged in")
    acting_for: AccountOut = Field(description="whose data the session shows")
    session: SessionInfo


class ActForIn(BaseModel):
    principal_account_id: AccountId | None = Field(
        default=None, description="a principal you are a registered proxy of; null: yourself")


# --- わたしの情報 and やりとり履歴 ----------------------------------------------------------------


class SourceOut(BaseModel):
    scope: str
    item_code: str
    label_ja: str
    label_en: str
    provider: str


class InformationOut(BaseModel):
    scope: str
    item_code: str
    provider_id: str
    provider_name: str
    outcome: Outcome
    data: dict[str, Any] | None
    serial: str = Field(description="処理通番 of the exchange (it is in your history)")
    fetched_at: dt.datetime


class HistoryEntryOut(BaseModel):
    record: AccessRecord = Field(description=(
        "`record.verified` false: the record does not match its entry in the signed log (or "
        "has none); its fields are not confirmed and must not be shown as fact"))
    released_to: list[str] = Field(description="API clients the data went to")
    by_proxy: str | None = Field(description="set when a proxy's action caused the exchange")
    verification_ja: str | None = Field(
        default=None, description="検証できません (with why) when the record is unverifiable")
    verification_en: str | None = Field(
        default=None, description="the same in English")


class VerificationOut(BaseModel):
    serial: str
    verified: bool
    leaf_index: int | None
    tree_size: int
    root_hash: str = Field(description="hex")
    checkpoint: str = Field(description="the signed note the proof was checked against")
    proof: list[str] = Field(description="hex audit path, leaf side first")
    reason: str


class ActivityOut(BaseModel):
    at: dt.datetime
    action: str
    actor_account_id: int
    subject_account_id: int
    proxy_kind: ProxyKind | None
    detail: str


# --- お知らせ and applications ------------------------------------------------------------------


class NoticeOut(BaseModel):
    notice_id: int
    sender_id: str
    sender_name: str
    kind: str
    title: str
    body: str
    created_at: dt.datetime
    state: NoticeState
    read_at: dt.datetime | None
    answered_at: dt.datetime | None
    application_id: int | None


class NoticeIn(BaseModel):
    """An agency's お知らせ to a person it names by its own 機関別符号, signed by the agency:
    Ed25519 over the canonical JSON of the other fields plus
    ``"type": "mynumber.portal-notice.v1"`` (as the network API's signed requests)."""

    agency_id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    agency_code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    kind: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$",
                      description="e.g. `child_allowance_status_report`, `information`")
    title: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL)
    body: str = Field(min_length=1, max_length=4000)
    requested_at: dt.datetime
    nonce: str = Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    signature: B64Signature


class NoticeAccepted(BaseModel):
    """The agency learns only that the notice was accepted (never the portal's code)."""

    notice_id: int
    accepted_at: dt.datetime


class AttachmentOut(BaseModel):
    """添付ファイル: a document attached to an application made without the number (its
    description; the bytes go to the municipality only)."""

    attachment_id: int
    kind: str = Field(description="書類の種類 (tax_certificate, health_insurance_copy, "
                                  "child_resident_record, other)")
    filename: str = Field(description="ファイル名 (sanitised)")
    content_type: str = Field(description="種類 (read from the content: PDF, JPEG or PNG)")
    size: int = Field(description="大きさ (bytes)")
    uploaded_at: dt.datetime


class ApplicationOut(BaseModel):
    application_id: int
    kind: str
    agency_id: str
    state: ApplicationState
    uses_number: bool
    documents: list[str]
    data: dict[str, Any]
    submitted_at: dt.datetime
    by_proxy: ProxyKind | None
    declined_serial: str | None
    attachments: list[AttachmentOut] = Field(default_factory=list)


# --- proxies ----------------------------------------------------------------------------------


class ProxyIn(BaseModel):
    """Staff register a proxy after verifying both people at the counter."""

    principal_resident_id: ResidentId
    proxy_resident_id: ResidentId
    kind: ProxyKind
    valid_until: dt.date | None = None


class ProxyOut(BaseModel):
    proxy_id: int
    principal_account_id: int
    proxy_account_id: int
    kind: ProxyKind
    registered_by: str
    registered_at: dt.datetime
    valid_until: dt.date | None
    revoked_at: dt.datetime | None
    principal_name: str

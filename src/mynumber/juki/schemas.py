"""住基ネット's HTTP bodies. Agencies sign every query (``mynumber.<kind>.v1`` over the canonical
JSON of the body without ``signature``, as on the network API)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field

from mynumber.kernel.schemas import Strict

BY_CODE_KIND = "juki-identity-by-code"
SEARCH_KIND = "juki-identity-search"



def _b64decode(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be standard base64") from None


# The network API's shapes (agency id, nonce, base64 signature), restated here: contexts
# share interfaces only.
B64 = Annotated[bytes, BeforeValidator(_b64decode),
                Field(json_schema_extra={"type": "string", "format": "byte"})]
AgencyId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$",
                                description="agency id, e.g. `japan_pension_service`")]
Nonce = Annotated[str, Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
UseId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$",
                             description="the use (事務) of the permitted-use table")]
Item = Annotated[str, Field(max_length=200)]


class ByCodeIn(Strict):
    """(a) 住民票コードによる本人確認情報の照会."""

    agency_id: AgencyId
    use_id: UseId
    resident_code: str = Field(min_length=1, max_length=20, description="住民票コード (11桁)")
    requested_at: dt.datetime
    nonce: Nonce
    signature: B64


class SearchIn(Strict):
    """(b) 基本4情報による検索: a name (``name`` and/or ``name_kana``), ``birth_date``,
    ``sex`` and ``address`` are all required; a search with fewer is refused (422
    ``juki_four_items_required``)."""

    agency_id: AgencyId
    use_id: UseId
    name: Item = Field(default="", description="氏名 (漢字)")
    name_kana: Item = Field(default="", description="氏名 (ふりがな; 全角・半角・ひらがな可)")
    birth_date: Item = Field(default="", description="生年月日 YYYY-MM-DD")
    sex: Item = Field(default="", description="性別: male/female, 男/女, 1/2")
    address: Item = Field(default="", description="住所 (住民票の記載どおり、都道府県から)")
    requested_at: dt.datetime
    nonce: Nonce
    signature: B64


class LatestChange(BaseModel):
    kind: str = Field(description="異動事由: birth 出生, move_in 転入, move_out 転出, "
                      "address_change 転居, name_change 氏名の変更, death 死亡, "
                      "correction 職権修正, import 移行")
    date: dt.date = Field(description="異動年月日")


class IdentityOut(BaseModel):
    """本人確認情報 (no 個人番号)."""

    resident_code: str = Field(description="住民票コード")
    name: str = Field(description="氏名")
    name_kana: str = Field(description="氏名 (ふりがな)")
    birth_date: dt.date = Field(description="生年月日")
    sex: str = Field(description="性別 (male/female)")
    address: str = Field(description="住所")
    municipality_code: str = Field(description="住所地の団体コード")
    status: str = Field(description="resident (住民) / moved_out (転出) / deceased (死亡)")
    latest_change: LatestChange


class QueryOut(BaseModel):
    query_id: int = Field(description="this query's record (the resident sees it)")
    outcome: str
    identity: IdentityOut


class PermittedUseOut(BaseModel):
    use_id: str
    agency_kind: str
    purpose: str = Field(description="事務")
    basis: str = Field(description="根拠 (住基法・番号法)")


class DisclosureOut(BaseModel):
    """本人確認情報の提供状況: one query that concerned the resident."""

    at: dt.datetime
    agency_id: str
    agency_name: str = Field(description="照会した機関")
    purpose: str = Field(description="事務")
    kind: str = Field(description="by_code (住民票コード) / search (基本4情報)")
    outcome: str = Field(description="answered / not_found / ambiguous / refused")
    provided: bool = Field(description="whether 本人確認情報 was provided")

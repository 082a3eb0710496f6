"""API shapes for the registry (English identifiers, Japanese labels in descriptions)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from mynumber.kernel.schemas import Strict
from mynumber.registry.interfaces import (
    AssuranceLevel,
    IdentityDocument,
    LetterStatus,
    LifeEventKind,
    NumberConfirmation,
    ResidentStatus,
    Sex,
)


class ResidentCreate(Strict):
    family_name: str = Field(min_length=1, max_length=40, description="氏")
    given_name: str = Field(min_length=1, max_length=40, description="名")
    family_name_kana: str = Field(min_length=1, max_length=80, description="氏(フリガナ)")
    given_name_kana: str = Field(min_length=1, max_length=80, description="名(フリガナ)")
    birth_date: dt.date = Field(description="生年月日")
    sex: Sex = Field(description="性別")
    address: str = Field(min_length=1, max_length=200, description="住所")
    postal_code: str = Field(default="", max_length=8, description="郵便番号")
    household_id: int | None = Field(default=None, ge=1, le=2**63 - 1,
                                     description="世帯 (省略時は新しい世帯)")
    relationship: str = Field(default="世帯主", max_length=20, description="続柄")
    nationality: str = Field(default="JP", max_length=2, description="国籍 (ISO 3166-1)")
    residence_status: str = Field(default="", max_length=40, description="在留資格")


class BirthRequest(ResidentCreate):
    """出生届."""


class MoveInRequest(ResidentCreate):
    """転入届: with ``resident_code`` from the 転出証明書, or without it for a first entry."""

    occurred_on: dt.date = Field(description="異動日")
    resident_code: str | None = Field(default=None, max_length=13, description="住民票コード")


class MoveOutRequest(Strict):
    occurred_on: dt.date = Field(description="異動日")
    destination_municipality_code: str | None = Field(
        default=None, max_length=6, description="転出先団体コード (国外は省略)"
    )


class NameChangeRequest(Strict):
    occurred_on: dt.date
    family_name: str = Field(min_length=1, max_length=40)
    given_name: str = Field(min_length=1, max_length=40)
    family_name_kana: str = Field(min_length=1, max_length=80)
    given_name_kana: str = Field(min_length=1, max_length=80)


class AddressChangeRequest(Strict):
    occurred_on: dt.date
    address: str = Field(min_length=1, max_length=200)
    postal_code: str = Field(default="", max_length=8)


class DeathRequest(Strict):
    occurred_on: dt.date = Field(description="死亡日")


class CorrectionRequest(Strict):
    changes: dict[str, str] = Field(description="field -> corrected value (職権修正)")
    reason: str = Field(min_length=1, max_length=200)


class ReasonRequest(Strict):
    reason: str = Field(min_length=1, max_length=200, description="閲覧・処理の理由")


class NumberLookupRequest(Strict):
    individual_number: str = Field(min_length=1, max_length=20, description="個人番号")
    reason: str = Field(min_length=1, max_length=200)


class IdentityVerificationRequest(Strict):
    purpose: str = Field(min_length=1, max_length=100, description="事務")
    individual_number: str = Field(min_length=1, max_length=20, description="提示された個人番号")
    number_confirmation: NumberConfirmation = Field(description="番号確認の方法")
    identity_documents: list[IdentityDocument] = Field(
        min_length=1, max_length=5, description="身元確認書類"
    )


class LetterUpdateRequest(Strict):
    status: LetterStatus
    verification_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


class ResidentPublic(BaseModel):
    """A resident record as staff see it. The 個人番号 is never part of it."""

    id: int
    resident_code: str = Field(description="住民票コード")
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: dt.date
    sex: Sex
    municipality_code: str
    address: str
    postal_code: str
    household_id: int | None
    relationship: str
    nationality: str
    residence_status: str
    status: ResidentStatus
    destination_municipality_code: str | None
    numbered: bool = Field(description="個人番号が指定済み")


class ResidentList(BaseModel):
    items: list[ResidentPublic]


class LifeEventPublic(BaseModel):
    id: int
    kind: LifeEventKind
    occurred_on: dt.date
    recorded_at: dt.datetime
    municipality_code: str
    actor: str
    details: dict[str, Any]


class HistoryPublic(BaseModel):
    items: list[LifeEventPublic]


class NumberReveal(BaseModel):
    individual_number: str = Field(description="個人番号 (閲覧は記録される)")


class LetterPublic(BaseModel):
    id: int
    resident_id: int
    number_generation: int
    status: LetterStatus
    created_at: dt.datetime
    status_changed_at: dt.datetime
    hold_until: dt.date | None
    history: list[dict[str, Any]]


class LetterList(BaseModel):
    items: list[LetterPublic]


class VerificationPublic(BaseModel):
    id: int
    resident_id: int
    purpose: str
    number_confirmation: NumberConfirmation
    identity_documents: list[IdentityDocument]
    assurance_level: AssuranceLevel
    number_matched: bool
    verified_at: dt.datetime


class MunicipalityPublic(BaseModel):
    code: str = Field(description="全国地方公共団体コード")
    prefecture: str
    name: str
    name_kana: str
    kind: str


class MunicipalityList(BaseModel):
    items: list[MunicipalityPublic]


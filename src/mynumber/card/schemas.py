"""API shapes for the card context."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from mynumber.card.interfaces import CardState
from mynumber.kernel.schemas import Strict


class LossReportRequest(Strict):
    """紛失・盗難の届出 (24 hours a day): all three items must match the card's holder."""

    card_id: str = Field(
        min_length=1, max_length=32, pattern=r"^[0-9A-Za-z \-]+$",
        description="カードID (16 hex characters) or the 23-digit 申請書ID",
    )
    name_kana: str = Field(min_length=1, max_length=80, description="氏名フリガナ")
    birth_date: dt.date = Field(description="生年月日")


class LossReportResponse(BaseModel):
    card_id: str
    state: CardState = Field(description="suspended: both certificates are revoked")
    revoked_certificates: int = Field(description="certificates revoked by this report")

"""Card JSON API. The loss report is open to residents and the call centre (no staff login):
it answers only "suspended" or a generic mismatch, never whether a card exists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from mynumber.card import schemas as s
from mynumber.card.services import CardServiceImpl


def get_cards(request: Request) -> CardServiceImpl:
    cards: CardServiceImpl = request.app.state.cards
    return cards


CardsDep = Annotated[CardServiceImpl, Depends(get_cards)]

router = APIRouter(prefix="/api/v1/card", tags=["card"])


@router.post("/loss-reports", operation_id="report_lost_card",
             response_model=s.LossReportResponse)
def report_lost_card(body: s.LossReportRequest, cards: CardsDep) -> s.LossReportResponse:
    """紛失・盗難による一時利用停止: suspends the card and revokes both of its certificates.
    A mismatch of any item gives the same 422 `loss_report_not_matched`."""
    report = cards.report_lost(body.card_id, body.name_kana, body.birth_date, "api")
    return s.LossReportResponse(card_id=report.card_id, state=report.state,
                                revoked_certificates=len(report.revoked_serials))

"""Card JSON API.

- ``router`` (public listener): the loss report is open to residents and the call centre (no
  staff login): it answers only "suspended" or a generic mismatch, never whether a card exists.
  ``device: smartphone`` revokes only the smartphone certificates (24 hours a day).
- ``holder`` (public listener): smartphone certificates on the strength of the card's signature.
- ``counter`` (infrastructure listener, staff sign-in): a card's status, new certificates on a
  valid card (move, name change, turned 15, renewal), lifting a suspension, reissue, the free
  area and revoking a smartphone credential.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from mynumber.card import schemas as s
from mynumber.card.interfaces import CardService, CardStatus, IdentityCheck, IssuedPins
from mynumber.errors import InvalidInput, NotFound
from mynumber.kernel.schemas import MAX_ID
from mynumber.kernel.signin import CurrentStaff


def get_cards(request: Request) -> CardService:
    cards: CardService = request.app.state.cards
    return cards


CardsDep = Annotated[CardService, Depends(get_cards)]
CardId = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[0-9A-Fa-f]+$")]

router = APIRouter(prefix="/api/v1/card", tags=["card"])


@router.post("/loss-reports", operation_id="report_lost_card",
             response_model=s.LossReportResponse)
def report_lost_card(body: s.LossReportRequest, cards: CardsDep) -> s.LossReportResponse:
    """紛失・盗難による一時利用停止: suspends the card and revokes both of its certificates;
    with ``device: smartphone`` only the smartphone certificates are revoked and the card
    stays valid. A mismatch of any item gives the same 422 `loss_report_not_matched`."""
    if body.device is s.Device.SMARTPHONE:
        report = cards.report_smartphone_lost(body.card_id, body.name_kana, body.birth_date,
                                              "api")
    else:
        report = cards.report_lost(body.card_id, body.name_kana, body.birth_date, "api")
    return s.LossReportResponse(card_id=report.card_id, state=report.state,
                                revoked_certificates=len(report.revoked_serials),
                                reference=report.reference)


# --- the holder: smartphone certificates ------------------------------------------------------

holder = APIRouter(prefix="/api/v1/card", tags=["card"])


@holder.post("/smartphone-credentials", operation_id="issue_smartphone_certificates",
             status_code=201, response_model=s.SmartphoneIssued)
def issue_smartphone(body: s.SmartphoneRequest, cards: CardsDep) -> s.SmartphoneIssued:
    """スマホ用電子証明書の発行: certificates for the phone's own keys, on the card's signature
    (made with the signing password) over the enrolment message. A phone enrolled before is
    superseded: its certificates are revoked and linked to the new ones."""
    try:
        proof = base64.b64decode(body.proof, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("proof is not valid base64", field="proof") from None
    cred = cards.issue_smartphone(body.card_id.upper(), body.signing_public_key_pem,
                                  body.auth_public_key_pem, proof)
    return s.SmartphoneIssued(id=cred.id, signing_certificate=cred.certificates[0],
                              auth_certificate=cred.certificates[1])


# --- the counter (staff) --------------------------------------------------------------------

counter = APIRouter(prefix="/api/v1/card/cards", tags=["card"])


def _check(identity: s.Identity) -> IdentityCheck:
    return IdentityCheck(identity.individual_number, identity.number_confirmation.value,
                         tuple(d.value for d in identity.identity_documents))


def _text(serial: int | None) -> str | None:
    return None if serial is None else str(serial)


def card_public(status: CardStatus) -> s.CardPublic:
    card = status.card
    return s.CardPublic(
        card_id=card.card_id, state=card.state, issued_on=card.issued_on,
        expires_on=card.expires_on, replaced_by=card.replaced_by,
        certificates=[s.CertificatePublic(
            kind=c.kind, serial=_text(c.serial), state=c.state, not_after=c.not_after,
            revocation_reason=c.revocation_reason, renewal_opens_on=c.renewal_opens_on,
        ) for c in status.certificates],
        smartphones=[s.SmartphonePublic(id=p.id, active=p.active,
                                        signing_serial=_text(p.signing_serial),
                                        auth_serial=_text(p.auth_serial))
                     for p in status.smartphones],
        free_area=[s.FreeAreaPublic(app_id=e.app_id, issuer=e.issuer,
                                    registered_at=e.registered_at) for e in status.free_area],
    )


@counter.get("/{card_id}", operation_id="get_card", response_model=s.CardPublic)
def get_card(card_id: CardId, staff: CurrentStaff, cards: CardsDep) -> s.CardPublic:
    """A card's state, its certificates (state, expiry, when renewal opens), smartphone
    credentials and free-area applications."""
    status = cards.certificate_status(card_id)
    cards.registry.get_resident(staff, status.card.resident_id, "個人番号カードの照会")
    return card_public(status)


def _issued(cards: CardService, renewal_card_id: str,
            issued: dict[str, str], links: dict[int, int],
            revoked: tuple[int, ...]) -> s.CertificatesIssued:
    return s.CertificatesIssued(
        card=card_public(cards.certificate_status(renewal_card_id)), certificates=issued,
        serial_links={str(k): str(v) for k, v in links.items()},
        revoked=[str(r) for r in revoked])


@counter.post("/{card_id}/certificates", operation_id="renew_card_certificates",
              status_code=201, response_model=s.CertificatesIssued)
def renew_certificates(card_id: CardId, body: s.NewCertificatesRequest, staff: CurrentStaff,
                       cards: CardsDep) -> s.CertificatesIssued:
    """電子証明書の発行・更新 on a valid card after identity verification: a new signing
    certificate after a move or a name change, one added at 15, renewal from 3 months before
    the certificates expire. 409 ``renewal_not_open`` names the day renewal opens."""
    result = cards.renew_certificates(
        staff, card_id, _check(body.identity), signing_password=body.signing_password,
        user_auth_pin=body.user_auth_pin, adult_ward=body.adult_ward)
    return _issued(cards, result.card.card_id, result.issued, result.links, result.revoked)


@counter.post("/{card_id}/lift-suspension", operation_id="lift_card_suspension",
              response_model=s.CertificatesIssued)
def lift_suspension(card_id: CardId, body: s.NewCertificatesRequest, staff: CurrentStaff,
                    cards: CardsDep) -> s.CertificatesIssued:
    """一時利用停止の解除 (a lost card was found): identity verification, new certificates with
    new PINs; the card is active again only after that."""
    result = cards.lift_suspension(
        staff, card_id, _check(body.identity), signing_password=body.signing_password,
        user_auth_pin=body.user_auth_pin, adult_ward=body.adult_ward)
    return _issued(cards, result.card.card_id, result.issued, result.links, result.revoked)


@counter.post("/{card_id}/reissue", operation_id="reissue_card", status_code=201,
              response_model=s.CardIssued)
def reissue(card_id: CardId, body: s.ReissueRequest, staff: CurrentStaff,
            cards: CardsDep) -> s.CardIssued:
    """再交付: a new card (new keys and certificates, the old serials linked) for a card
    reported lost or damaged; the old card is revoked."""
    pins = IssuedPins(body.signing_password, body.user_auth_pin, body.residence_pin,
                      body.card_info_pin)
    record, _ = cards.reissue(staff, card_id, _check(body.identity), pins,
                              adult_ward=body.adult_ward)
    return s.CardIssued(card_id=record.card_id, expires_on=record.expires_on,
                        replaces=card_id.upper())


@counter.post("/{card_id}/free-area", operation_id="register_free_area_app", status_code=201,
              response_model=s.FreeAreaPublic)
def register_app(card_id: CardId, body: s.FreeAreaRequest, staff: CurrentStaff,
                 cards: CardsDep) -> s.FreeAreaPublic:
    """Write an application in the free area (空き領域); 403 ``free_area_refused`` when the
    staff member's municipality may not write it."""
    entry = cards.register_app(staff, card_id, body.app_id)
    return s.FreeAreaPublic(app_id=entry.app_id, issuer=entry.issuer,
                            registered_at=entry.registered_at)


@counter.delete("/{card_id}/free-area/{app_id}", operation_id="remove_free_area_app",
                status_code=204)
def remove_app(card_id: CardId, app_id: Annotated[str, Path(pattern=r"^[a-z_]{1,40}$")],
               staff: CurrentStaff, cards: CardsDep) -> None:
    cards.remove_app(staff, card_id, app_id)


@counter.post("/{card_id}/smartphone-credentials/{credential_id}/revoke",
              operation_id="revoke_smartphone_credential", response_model=list[str])
def revoke_smartphone(card_id: CardId, credential_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                      staff: CurrentStaff, cards: CardsDep) -> list[str]:
    """Revoke one smartphone credential's certificates; the card's stay valid."""
    owned = {c.id for c in cards.smartphones_of(card_id)}
    if credential_id not in owned:
        raise NotFound("no such smartphone credential on this card", field="credential_id")
    status = cards.certificate_status(card_id)
    cards.registry.get_resident(staff, status.card.resident_id, "スマホ用電子証明書の失効")
    return [str(x) for x in cards.revoke_smartphone(credential_id, staff.actor)]

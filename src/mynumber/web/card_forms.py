"""The card pieces the portal's procedures share (公金受取口座, 預貯金口座付番, マイナ保険証,
本人確認情報の提供状況の開示): who a portal session's card holder is, and the card form.

- :func:`session_holder`: the person a portal session was opened for, named by JPKI from the
  card serial the session keeps sealed under its token. A proxy's session and one not opened
  with a card are refused with the errors the calling procedure names (each context has its own
  codes and sentences).
- :func:`signed_form`: the (challenge id, signature, certificate) a card form carries: the
  embedded mode's virtual reader signs the challenge now with the card after its PIN, or the
  signature and certificate were pasted (``mynumber card auth``, the CLI way);
  :func:`verified_holder` verifies them (the portal's ``verify_card``, the challenge spent
  once) and names the card's holder.
- :func:`card_context` and :func:`card_error`: what a page with a card form shows (a fresh
  challenge and the reader's cards; the error box with the PIN tries left).

It lives in the web assembler: it joins the portal's and JPKI's interfaces.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.datastructures import FormData

from mynumber.errors import DomainError, InvalidInput
from mynumber.jpki.interfaces import CertificateNotFound
from mynumber.kernel import forms
from mynumber.kernel.errors import error_box
from mynumber.portal import views as portal_views
from mynumber.portal.interfaces import LoginFailed, PortalSession
from mynumber.portal.reader import PortalCardReader, ReaderWrongPin
from mynumber.settings import Mode

MISSING = "the card authentication is missing; start again"
NO_CARD = "this session was not opened with a card"


def session_holder(portal: Any, jpki: Any, session: PortalSession, *, not_own: DomainError,
                   no_card: DomainError) -> int:
    """The registry's resident id of the card holder the portal ``session`` was opened for.
    ``not_own`` is raised for a session acting as a proxy, ``no_card`` for one not opened with
    a card (or whose certificate J-LIS does not know)."""
    if session.acting_for != session.account_id:
        raise not_own
    serial = portal.certificate_serial(session.token)
    if serial is None:
        raise no_card
    try:
        return int(jpki.certificate(serial).resident_id)
    except CertificateNotFound:
        raise no_card from None


def verified_holder(portal: Any, jpki: Any, challenge_id: str, signature: bytes,
                    certificate: str, *, purpose: str) -> tuple[int, int]:
    """(certificate serial, the holder's resident id) of a card's signature over the portal
    challenge ``challenge_id`` issued for ``purpose``: the portal's ``verify_card`` checks it
    (chain, revocation, signature; the challenge is spent) and JPKI names the holder. A
    certificate J-LIS does not know is a refused card (``LoginFailed``, never a 500)."""
    serial = int(portal.verify_card(challenge_id, signature, certificate, purpose=purpose))
    try:
        return serial, int(jpki.certificate(serial).resident_id)
    except CertificateNotFound:
        raise LoginFailed("the card was not accepted", reason="refused") from None


def signed_form(request: Request, form: FormData, *,
                missing: type[DomainError]) -> tuple[str, bytes, str]:
    """(challenge id, signature, certificate PEM) the card form carries: the virtual reader
    signs the challenge now (card and PIN), or the signature and certificate were pasted. A
    form without its challenge raises ``missing`` (the context's card-authentication-required
    error); a bad PIN, signature or certificate field raises ``InvalidInput`` (the reader's own
    errors pass through)."""
    challenge_id = forms.value(form, "challenge_id", 100)
    if not challenge_id:
        raise missing(MISSING, field="challenge_id")
    card_id = forms.value(form, "card_id", 32)
    if card_id:
        reader = PortalCardReader(request.app.state.container)
        reader.check_available()
        challenge = portal_views._hex_challenge(forms.value(form, "challenge", 128))
        if challenge is None:
            raise missing(MISSING, field="challenge_id")
        pin = form.get("pin")
        if not isinstance(pin, str) or not pin:
            raise InvalidInput("enter the PIN", field="pin")
        signature, certificate = reader.sign_challenge(card_id, pin, challenge)
        return challenge_id, signature, certificate
    text = re.sub(r"\s+", "", forms.value(form, "signature", 4096))
    try:
        signature = bytes.fromhex(text)
    except ValueError:
        raise InvalidInput("the signature must be hexadecimal", field="signature") from None
    certificate = forms.value(form, "certificate", 10000)
    if not signature:
        raise InvalidInput("choose your card, or paste the signature", field="card_id")
    if "BEGIN CERTIFICATE" not in certificate:
        raise InvalidInput("paste the authentication certificate (PEM)", field="certificate")
    return challenge_id, signature, certificate


def card_context(request: Request, purpose: str) -> dict[str, Any]:
    """A fresh one-use portal challenge for ``purpose``, and the reader's cards in the
    embedded mode."""
    container = request.app.state.container
    challenge = container.portal.begin_login(purpose)
    cards: list[str] = []
    if container.settings.mode is Mode.EMBEDDED:
        cards = PortalCardReader(container).cards()
    return {"challenge_id": challenge.challenge_id, "challenge_hex": challenge.challenge.hex(),
            "cards": cards}


def card_error(request: Request, exc: DomainError,
               prefixes: tuple[str, ...]) -> dict[str, Any]:
    """The error box beside a card form: the catalogue's words, and the PIN tries left after a
    wrong PIN (the reader's errors are DomainErrors)."""
    error = error_box(request, exc, prefixes=prefixes)
    if isinstance(exc, ReaderWrongPin):
        error["remaining"] = exc.remaining
    return error

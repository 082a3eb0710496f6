"""How オンライン資格確認 learns who a card's holder is, and who a portal session is.

The insurance context knows residents only by the registry's id on its links; J-LIS, running
JPKI, knows the holder of every user-authentication certificate. Two joins live here, in the
web assembler, because each joins two contexts' interfaces (as ``web/juki_portal.py`` does for
住基ネット and ``web/accounts_portal.py`` for 公金受取口座):

- :class:`JpkiHolders`: the context's :class:`~mynumber.insurance.interfaces.HolderResolver`
  (JPKI's ``certificate(serial).resident_id``), used for 初回登録 and at the reception, after
  the eligibility service verified the certificate (chain, revocation, signature).
- :func:`session_resident` and :func:`activate_with_card`: the resident's 初回登録 from the
  portal (JSON API and pages). The card signs a portal challenge issued for the purpose
  :data:`INSURANCE_PURPOSE` only (a login challenge is refused, and this one opens no
  session); the portal verifies it (chain, revocation, signature, the challenge spent once),
  JPKI names the holder, and the holder must be the person the session was opened for (the
  shared-terminal rule: another person's card left in the reader activates nothing).
"""

from __future__ import annotations

from typing import Any

from mynumber.errors import Forbidden, NotAuthenticated
from mynumber.insurance.interfaces import CardRefused, CardStatus
from mynumber.jpki.interfaces import CertificateNotFound
from mynumber.jpki.services import JpkiServiceImpl
from mynumber.portal.interfaces import PortalSession
from mynumber.web.card_forms import NO_CARD, session_holder, verified_holder

#: The purpose of the portal challenge a card signs for 初回登録 (a login challenge, or another
#: procedure's, is refused for it: ``PortalService.verify_card``).
INSURANCE_PURPOSE = "insurance"


class ForSelfOnly(Forbidden):
    code = "insurance_for_self_only"
    title = "Only the person themselves can do this"


class CardAuthenticationRequired(NotAuthenticated):
    code = "insurance_card_authentication_required"
    title = "A card authentication is required"


class OtherPersonsCard(Forbidden):
    code = "insurance_card_other_person"
    title = "The card is not the logged-in person's"


class JpkiHolders:
    """The :class:`~mynumber.insurance.interfaces.HolderResolver` over JPKI: the registry's
    resident id of a certificate's holder. An unknown serial is a refused card (never a 500:
    the certificate verified, but J-LIS does not know it, e.g. another CA's)."""

    def __init__(self, jpki: JpkiServiceImpl) -> None:
        self.jpki = jpki

    def resident_of_certificate(self, serial: int) -> int:
        try:
            return int(self.jpki.certificate(serial).resident_id)
        except CertificateNotFound:
            raise CardRefused("the card's certificate is not known to J-LIS",
                              reason="untrusted_chain") from None


def session_resident(container: Any, session: PortalSession) -> int:
    """The person the portal session was opened for, named by JPKI from the card serial the
    session keeps sealed under its token. A session acting as a proxy is refused: insurance
    use is the person's own."""
    return session_holder(
        container.portal, container.jpki, session,
        not_own=ForSelfOnly("the insurance card is the person's own: switch back to yourself"),
        no_card=CardAuthenticationRequired(NO_CARD))


def activate_with_card(container: Any, session: PortalSession, challenge_id: str,
                       signature: bytes, certificate: str) -> CardStatus:
    """初回登録 from the portal: the card's signature over a challenge issued for
    :data:`INSURANCE_PURPOSE` (spent here), by the session's own person."""
    resident_id = session_resident(container, session)
    serial, holder = verified_holder(container.portal, container.jpki, challenge_id, signature,
                                     certificate, purpose=INSURANCE_PURPOSE)
    if holder != resident_id:
        raise OtherPersonsCard("this is not the card of the person logged in: log in with "
                               "this card to register it")
    status: CardStatus = container.eligibility.activate_for_resident(resident_id, serial)
    return status

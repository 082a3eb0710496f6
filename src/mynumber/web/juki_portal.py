"""How 住基ネット learns who a portal session is (for 本人確認情報の提供状況の開示).

The portal knows a resident only by its own account; 住基ネット (J-LIS) knows 住民票コード and,
running JPKI, the holder of every card certificate. A session was opened with the card's
user-authentication certificate, whose serial the portal keeps sealed under the session's
bearer token: with the token (the request itself) the serial is opened and JPKI names its
holder. Nothing is stored that links the portal account to the person.

It lives in the web assembler: it joins two contexts' interfaces (the portal's
``certificate_serial`` and JPKI's ``certificate``).
"""

from __future__ import annotations

from mynumber.jpki.services import JpkiServiceImpl
from mynumber.juki.interfaces import DisclosureUnavailable
from mynumber.portal.interfaces import PortalService
from mynumber.web.card_forms import NO_CARD, session_holder


class PortalJukiLink:
    def __init__(self, portal: PortalService, jpki: JpkiServiceImpl) -> None:
        self.portal = portal
        self.jpki = jpki

    def resident_id(self, token: str) -> int:
        session = self.portal.session(token)  # SessionExpired when it has ended
        return session_holder(
            self.portal, self.jpki, session,
            not_own=DisclosureUnavailable(
                "the disclosure shows your own 本人確認情報 only: switch back to yourself "
                "(a proxy asks at the municipality's counter)"),
            no_card=DisclosureUnavailable(NO_CARD))

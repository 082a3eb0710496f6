"""The portal service (マイナポータル): card login and sessions, わたしの情報, やりとり履歴 with
inclusion proofs, お知らせ, the 児童手当 現況届 application, proxies. See interfaces.py.

How the portal knows a person (docs/portal.md):

* It is a JPKI relying party for user-authentication certificates (registered once; its id is
  kept in ``portal_settings`` because the pairwise ids depend on it). A login yields only the
  pairwise id; the account is keyed by it.
* It is also the network agency ``mynaportal``. On the first login (or when counter staff
  register a proxy) JPKI issues a 取得番号 for the holder; the portal enrols with it under a
  fresh 宛名番号 (or the one it already knows the person by) and keeps that 宛名番号 and its own
  機関別符号 on the account. No 個人番号 and no certificate serial is stored.

Layout: one module per subject (``sessions``, ``information``, ``notices``, ``proxies``), each a
class over :class:`~mynumber.portal.services.core.PortalCore`, which holds the shared state
(collaborators, caches, transactions, activity rows, accounts and linking, the proxy rule).
:class:`PortalServiceImpl` combines them; it is the one object the app wires.
"""

from __future__ import annotations

from mynumber.portal.interfaces import PortalService
from mynumber.portal.services.core import (
    AccountNotFound,
    open_serial,
    seal_serial,
)
from mynumber.portal.services.information import SOURCES
from mynumber.portal.services.notices import NoticeReplayed, Notices, NumberInNotice
from mynumber.portal.services.proxies import Proxies, ProxyAlreadyRegistered
from mynumber.portal.services.sessions import Sessions

__all__ = [
    "SOURCES",
    "AccountNotFound",
    "NoticeReplayed",
    "NumberInNotice",
    "PortalServiceImpl",
    "ProxyAlreadyRegistered",
    "open_serial",
    "seal_serial",
]


class PortalServiceImpl(Sessions, Notices, Proxies):
    """The portal service: one object over the subject services, which share
    :class:`PortalCore`'s state (collaborators, caches, ``clock``, ``access_log``)."""


_contract: type[PortalService] = PortalServiceImpl

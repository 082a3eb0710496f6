"""What the provider answers the web layer: outcomes of the authorization endpoint (an error
page, a login, a consent page) and the errors of the resource side (RFC 6750)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mynumber.errors import Forbidden, NotAuthenticated
from mynumber.portal.interfaces import ClientRecord, PortalSession

# --- errors of the resource side (bearer tokens, RFC 6750) ---------------------------------------


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    title = "The access token is missing, expired or revoked"


class InsufficientScope(Forbidden):
    code = "insufficient_scope"
    title = "The grant does not cover this item"


class ClientNotApproved(Forbidden):
    code = "client_not_approved"
    title = "The API client is not approved"


@dataclass(frozen=True)
class AuthorizationProblem:
    """Shown as an HTML page, never sent to a redirect URI (unknown client or URI...)."""

    error: str
    description: str
    status: int = 400


SESSION_ENDED = AuthorizationProblem(
    "login_required", "Your portal session ended. Go back to the service and start again.",
    status=401)
NO_LONGER_A_PROXY = AuthorizationProblem(
    "access_denied", "You are no longer a registered proxy of the person you were acting "
    "for, so you cannot consent for them. Go back to the portal.", status=403)


@dataclass(frozen=True)
class LoginRequired:
    next_url: str  # relative authorize URL to come back to


@dataclass(frozen=True)
class ConsentItem:
    scope: str
    label_ja: str
    label_en: str
    provider_id: str
    provider_name: str


@dataclass(frozen=True)
class ConsentPage:
    consent_id: str
    client: ClientRecord
    items: tuple[ConsentItem, ...]
    openid: bool
    session: PortalSession


@dataclass(frozen=True)
class SelfInformation:
    scope: str
    provider: str
    provider_name: str
    outcome: str
    data: dict[str, Any] | None
    serial: str
    fetched_at: dt.datetime


@dataclass
class TokenInfo:
    account_id: int
    grant_id: int
    scopes: frozenset[str]
    client_id: str
    client_name: str

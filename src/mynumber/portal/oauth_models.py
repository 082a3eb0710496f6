"""OIDC provider tables (clients, grants, codes, tokens, releases, monitoring).

Secrets, codes and tokens are stored only as SHA-256 hashes (they are 256-bit random values,
so a fast hash is enough). No table holds a 個人番号 or a certificate serial: a resident is the
portal ``account_id``, and the subject a client sees is derived (pairwise) when it is issued.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mynumber.db import UTCDateTime, utcnow
from mynumber.portal.models import Base, BigId


class ApiClient(Base):
    """An API client (API利用者) and its vetting state. The counters are flushed in batches
    from the hot path (see ``oauth.ratelimit.Counters``)."""

    __tablename__ = "oidc_clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    state_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    state_reason: Mapped[str] = mapped_column(String(500), default="")
    requests: Mapped[int] = mapped_column(Integer, default=0)
    refusals: Mapped[int] = mapped_column(Integer, default=0)
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)
    last_request_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ClientAnomaly(Base):
    """Something a client did that the oversight body should see (redirect URI mismatch, PKCE
    failure, code replay, token after revocation, a request while suspended)."""

    __tablename__ = "oidc_client_anomalies"
    __table_args__ = (Index("ix_oidc_client_anomalies_client", "client_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PushedRequest(Base):
    """A pushed authorization request (RFC 9126): one use, a short life."""

    __tablename__ = "oidc_pushed_requests"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # hash of the uri
    client_id: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ConsentRequest(Base):
    """A validated authorization request waiting for the resident's decision on the consent
    page, bound to the portal session that saw it."""

    __tablename__ = "oidc_consent_requests"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # hash of the id
    session_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Grant(Base):
    """A resident's consent (同意) to one client for some item scopes. ``actor_account_id``
    differs from ``account_id`` when a proxy consented for the principal."""

    __tablename__ = "oidc_grants"
    __table_args__ = (Index("ix_oidc_grants_account", "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigId)
    actor_account_id: Mapped[int] = mapped_column(BigId)
    proxy_kind: Mapped[str | None] = mapped_column(String(32))
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    scopes: Mapped[str] = mapped_column(String(500))  # space separated item scopes
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[int | None] = mapped_column(BigId)


class AuthorizationCode(Base):
    """One use, 60 seconds, bound to the client, redirect URI, PKCE challenge and nonce."""

    __tablename__ = "oidc_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    grant_id: Mapped[int] = mapped_column(BigId)
    account_id: Mapped[int] = mapped_column(BigId)
    redirect_uri: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(String(500))
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    auth_time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Set when a second redemption was seen: the tokens of the first are revoked, and a token
    # not yet stored by a racing first redemption is refused (``OpenIdProvider.save_token``).
    replayed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AccessToken(Base):
    """An opaque bearer token (10 minutes), bound to a grant; no refresh tokens exist."""

    __tablename__ = "oidc_access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[int] = mapped_column(BigId, index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(BigId)
    scope: Mapped[str] = mapped_column(String(500))
    code_hash: Mapped[str] = mapped_column(String(64), index=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ReleaseRecord(Base):
    """Data released to a client, against the exchange (処理通番) that fetched it."""

    __tablename__ = "oidc_releases"
    __table_args__ = (
        Index("ix_oidc_releases_account", "account_id", "id"),
        Index("ix_oidc_releases_client", "client_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigId)
    grant_id: Mapped[int] = mapped_column(BigId)
    client_id: Mapped[str] = mapped_column(String(64))
    client_name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(32))
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

"""JSON shapes of the self-information API, its discovery documents and the client admin API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mynumber.portal.interfaces import ClientState

NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
SCOPE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


class Discovery(BaseModel):
    """OpenID Provider metadata (OpenID Connect Discovery 1.0, RFC 8414, RFC 9126)."""

    model_config = ConfigDict(extra="allow")

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    pushed_authorization_request_endpoint: str
    require_pushed_authorization_requests: bool
    response_types_supported: list[str]
    response_modes_supported: list[str]
    grant_types_supported: list[str]
    code_challenge_methods_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    scopes_supported: list[str]
    claims_supported: list[str]
    request_parameter_supported: bool
    request_uri_parameter_supported: bool
    prompt_values_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]


class Jwk(BaseModel):
    model_config = ConfigDict(extra="allow")

    kty: str
    kid: str
    use: str
    alg: str
    n: str
    e: str


class Jwks(BaseModel):
    keys: list[Jwk]


class SelfInformationOut(BaseModel):
    scope: str
    provider: str = Field(description="the agency that provided the data")
    provider_name: str
    outcome: str = Field(description="provided / not_held / refused")
    data: dict[str, Any] | None
    serial: str = Field(description="処理通番 of the network exchange (in the resident's "
                        "やりとり履歴)")
    fetched_at: dt.datetime


class Address(BaseModel):
    """The Address Claim (OIDC Core 5.1.1)."""

    formatted: str = Field(description="the 住所 as registered")
    country: str = Field(description='always "JP"')
    region: str | None = Field(None, description="都道府県")
    locality: str | None = Field(None, description="市区町村 (with 郡 when there is one)")
    street_address: str | None = Field(None, description="the rest of the 住所")
    postal_code: str | None = Field(None, description="never sent: the 住民票 has none")


class UserInfo(BaseModel):
    """UserInfo claims (OIDC Core 5.1): the 基本4情報 as standard claims."""

    model_config = ConfigDict(extra="allow")

    sub: str = Field(description="pairwise subject: differs for every client")
    name: str | None = None
    birthdate: str | None = Field(None, description="YYYY-MM-DD")
    gender: str | None = Field(None, description='"male" or "female"')
    address: Address | None = None


class ClientApplication(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL)
    organisation: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL)
    contact: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL)
    redirect_uris: list[str] = Field(min_length=1, max_length=10)
    scopes: list[str] = Field(min_length=1, max_length=20)


class ClientOut(BaseModel):
    client_id: str
    name: str
    organisation: str
    contact: str
    redirect_uris: list[str]
    scopes: list[str]
    state: ClientState
    rate_limit_per_minute: int
    created_at: dt.datetime
    state_changed_at: dt.datetime
    state_reason: str


class ClientRegistered(ClientOut):
    client_secret: str = Field(description="shown once; the portal keeps only its hash")


class ClientList(BaseModel):
    items: list[ClientOut]


class StateChange(BaseModel):
    state: ClientState
    reason: str = Field(min_length=1, max_length=500, pattern=NO_CONTROL)


class Reactivation(BaseModel):
    reason: str = Field(min_length=1, max_length=500, pattern=NO_CONTROL)


class RateLimitChange(BaseModel):
    per_minute: int = Field(ge=1, le=1_000_000)


class MonitoringOut(BaseModel):
    client_id: str
    state: ClientState
    requests: int
    releases: int
    refusals: int
    rate_limited: int
    anomalies: int
    distinct_subjects: int
    last_request_at: dt.datetime | None
    recent_anomalies: list[str]

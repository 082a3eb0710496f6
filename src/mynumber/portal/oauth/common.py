"""Lifetimes, names and small helpers shared by the modules of the OpenID Provider."""

from __future__ import annotations

from mynumber.portal.common import hash_secret

__all__ = [
    "ACTIVITY_CONSENT",
    "ACTIVITY_CONSENT_DENIED",
    "ACTIVITY_GRANT_REVOKED",
    "AUTH_METHODS",
    "CODE_SECONDS",
    "CONSENT_SECONDS",
    "ID_TOKEN_SECONDS",
    "PAIRWISE_KEY",
    "PAR_SECONDS",
    "REQUEST_URI_PREFIX",
    "TOKEN_SECONDS",
    "detail",
    "hash_secret",
]

CODE_SECONDS = 60
TOKEN_SECONDS = 600
PAR_SECONDS = 60
CONSENT_SECONDS = 600
ID_TOKEN_SECONDS = 600
PAIRWISE_KEY = "portal.pairwise"
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
AUTH_METHODS = ("client_secret_basic", "client_secret_post")

# Portal activity names of the self-information API (the activities page shows them).
ACTIVITY_CONSENT = "api_consent"
ACTIVITY_CONSENT_DENIED = "api_consent_denied"
ACTIVITY_GRANT_REVOKED = "api_grant_revoked"


def detail(text: str) -> str:
    """An activity's detail: one line, no control characters, at most 500 characters."""
    return "".join(" " if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 else c for c in text)[:500]

"""Small rules shared by the portal service and its OpenID Provider (neither imports the
other for them)."""

from __future__ import annotations

import hashlib


def hash_secret(secret: str) -> str:
    """How the portal keeps any bearer secret (session, access token, code, client secret)."""
    return hashlib.sha256(secret.encode()).hexdigest()

"""Pieces every context's HTTP API shares: the request-body base and the identifier range."""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

# Identifiers are 63-bit integers in every database; larger ones are a 422, not an overflow.
MAX_ID = 2**63 - 1


def _has_control_characters(value: Any) -> bool:
    if isinstance(value, str):
        return any(unicodedata.category(c) == "Cc" for c in value)
    if isinstance(value, dict):
        return any(_has_control_characters(k) or _has_control_characters(v)
                   for k, v in value.items())
    if isinstance(value, list):
        return any(_has_control_characters(v) for v in value)
    return False


class Strict(BaseModel):
    """Request bodies: unknown fields and control characters (NUL, …) are refused."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_control_characters(self) -> Strict:
        for name in type(self).model_fields:
            if _has_control_characters(getattr(self, name)):
                raise ValueError(f"{name} contains control characters")
        return self

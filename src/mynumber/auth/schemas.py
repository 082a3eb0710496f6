"""API shapes for staff sign-in."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mynumber.auth.interfaces import StaffRole

# No control characters (C0, DEL, C1) in any field.
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=40, pattern=NO_CONTROL, description="職員ID")
    password: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL,
                          description="パスワード")
    totp_code: str = Field(min_length=1, max_length=10, pattern=NO_CONTROL,
                           description="ワンタイムコード (TOTP)")


class StaffPublic(BaseModel):
    id: int
    username: str
    display_name: str
    municipality_code: str = Field(description="所属団体コード")
    role: StaffRole


class LoginResponse(BaseModel):
    token: str = Field(description="Bearer token for the Authorization header")
    staff: StaffPublic

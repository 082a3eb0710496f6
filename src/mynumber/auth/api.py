"""Staff sign-in over HTTP: the JSON login/logout/me routes (thin: parse, call the service,
shape the answer). The dependency other contexts' APIs use is ``mynumber.kernel.signin``."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from mynumber.auth import schemas as s
from mynumber.kernel.routes import secure_cookies as cookie_secure
from mynumber.kernel.signin import STAFF_COOKIE, CurrentStaff, StaffAuthDep, staff_token

# Mounted under /api/v1/registry: the paths the registry published first; clients and the
# OpenAPI keep them.
PREFIX = "/api/v1/registry"
router = APIRouter(prefix="/staff", tags=["staff"])


@router.post("/login", operation_id="staff_login", response_model=s.LoginResponse)
def staff_login(body: s.LoginRequest, auth: StaffAuthDep, request: Request,
                response: Response) -> s.LoginResponse:
    """職員ログイン: password + one-time code (two factors)."""
    token = auth.login(body.username, body.password, body.totp_code)
    staff = auth.authenticate(token)
    # HttpOnly: no script reads it; SameSite=Strict: no cross-site request carries it;
    # Secure under https, so it never travels in clear text.
    response.set_cookie(STAFF_COOKIE, token, httponly=True, samesite="strict",
                        secure=cookie_secure(request))
    return s.LoginResponse(token=token, staff=s.StaffPublic(**dataclasses.asdict(staff)))


@router.post("/logout", operation_id="staff_logout", status_code=204)
def staff_logout(token: Annotated[str, Depends(staff_token)], auth: StaffAuthDep,
                 request: Request, response: Response) -> None:
    auth.logout(token)
    response.delete_cookie(STAFF_COOKIE, httponly=True, samesite="strict",
                           secure=cookie_secure(request))


@router.get("/me", operation_id="staff_me", response_model=s.StaffPublic)
def staff_me(staff: CurrentStaff) -> s.StaffPublic:
    return s.StaffPublic(**dataclasses.asdict(staff))

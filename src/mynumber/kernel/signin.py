"""Staff sign-in for every context's HTTP API: one cookie name, one token rule, one dependency.

``CurrentStaff`` is what a staff-only API route declares; it accepts the session token as a
bearer header (API clients) or the HttpOnly ``mn_staff`` cookie (the counter's browser), and
answers 401 (``SessionExpired``, problem JSON) without one. The counter's HTML pages use
:mod:`mynumber.kernel.counter`, which redirects to the login page instead. The accounts, the
two factors and the sessions themselves are the ``auth`` context's (``StaffAuthService``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mynumber.auth.interfaces import SessionExpired, StaffAuthService, StaffPrincipal

STAFF_COOKIE = "mn_staff"
bearer = HTTPBearer(auto_error=False, description="staff session token from /staff/login")


def staff_auth(request: Request) -> StaffAuthService:
    auth: StaffAuthService = request.app.state.container.staff_auth
    return auth


StaffAuthDep = Annotated[StaffAuthService, Depends(staff_auth)]


def staff_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    if credentials is not None:
        return credentials.credentials
    return request.cookies.get(STAFF_COOKIE, "")


def current_staff(token: Annotated[str, Depends(staff_token)],
                  auth: StaffAuthDep) -> StaffPrincipal:
    if not token:
        raise SessionExpired("log in first")
    return auth.authenticate(token)


CurrentStaff = Annotated[StaffPrincipal, Depends(current_staff)]

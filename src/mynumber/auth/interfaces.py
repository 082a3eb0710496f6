"""What staff sign-in offers other contexts and the web layer: the principal, roles, the
service protocol and its errors. Other contexts import this module, never ``models``."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mynumber.errors import Conflict, InvalidInput, NotAuthenticated, NotFound


class StaffRole(StrEnum):
    CLERK = "clerk"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


@dataclass(frozen=True)
class StaffPrincipal:
    """An authenticated municipal staff member."""

    id: int
    username: str
    display_name: str
    municipality_code: str
    role: StaffRole

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"


# --- errors -------------------------------------------------------------------------------


class LoginFailed(NotAuthenticated):
    code = "login_failed"
    title = "Login failed"


class SessionExpired(NotAuthenticated):
    code = "session_expired"
    title = "Session ended"


class InvalidStaffData(InvalidInput):
    code = "invalid_staff_data"
    title = "Invalid staff account data"


class StaffMunicipalityUnknown(NotFound):
    code = "unknown_municipality"
    title = "Unknown municipality"


class StaffExists(Conflict):
    code = "staff_exists"
    title = "A staff account with this user name exists"


class StaffNotFound(NotFound):
    code = "staff_not_found"
    title = "No such staff account"


# --- protocols ----------------------------------------------------------------------------


class StaffAuthService(Protocol):
    """Two-factor staff login (password + TOTP), server-side sessions, account upkeep."""

    def create_staff(
        self, username: str, display_name: str, municipality_code: str, role: StaffRole,
        password: str, totp_secret: str | None = None,
    ) -> str:
        """Create an account; return the TOTP secret to enrol in an authenticator app."""
        ...

    def login(self, username: str, password: str, totp_code: str) -> str:
        """Return a session token, or raise LoginFailed without saying which factor failed
        (nor whether the account exists or is throttled)."""
        ...

    def authenticate(self, token: str) -> StaffPrincipal: ...

    def logout(self, token: str) -> None: ...

    def find_staff(self, username: str) -> StaffPrincipal | None:
        """The account's principal (no login; for seeding and administration)."""
        ...

    def unlock(self, username: str, actor: str) -> None:
        """End a login throttle and reset the failure count (audited)."""
        ...

    def staff_names(self, staff_ids: Collection[int]) -> dict[int, str]:
        """Display names by staff id (for the 処理者 of a history; unknown ids are left out)."""
        ...

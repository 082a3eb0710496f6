"""The staff sign-in JSON API: the session cookie's attributes."""

from __future__ import annotations

import pyotp
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from mynumber.app import build_container, create_app
from mynumber.auth.interfaces import StaffRole
from mynumber.auth.services import StaffAuthImpl
from mynumber.settings import Settings
from tests.conftest import SHINJUKU, STAFF_PASSWORD


@pytest.mark.parametrize(("public_url", "secure"), [
    ("https://mynumber.example.jp", True), ("http://127.0.0.1:8000", False)])
def test_the_staff_cookie_is_secure_under_https(settings: Settings, public_url: str,
                                                secure: bool) -> None:
    container = build_container(settings.model_copy(update={"public_url": public_url}))
    assert isinstance(container.staff_auth, StaffAuthImpl)
    container.staff_auth.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    secret = pyotp.random_base32()
    container.staff_auth.create_staff("clerk", "clerk", SHINJUKU, StaffRole.CLERK,
                                      STAFF_PASSWORD, totp_secret=secret)
    with TestClient(create_app(container=container)) as client:
        response = client.post("/api/v1/registry/staff/login", json={
            "username": "clerk", "password": STAFF_PASSWORD,
            "totp_code": pyotp.TOTP(secret).now()})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert cookie.startswith("mn_staff=")
    assert "httponly" in attributes and "samesite=strict" in attributes
    assert ("secure" in attributes) is secure

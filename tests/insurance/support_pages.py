"""What the page tests of オンライン資格確認 share (reception, insurer, resident): the app of
the ``container`` fixture in a TestClient, staff signed in through the kernel's staff login
(password + TOTP), a terminal registered with its own key and operated by named staff, a
resident with a real card (registry, card, JPKI; the chip in the card store, so the virtual
reader offers it), linked at an insurer on all four items and registered for insurance use,
and the checks every page must pass: no enum value, error code or English detail on a
Japanese page.

Everything runs through the container's own services and the app's own pages.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.errors import DomainError
from mynumber.insurance import interfaces as insurance_interfaces
from mynumber.insurance.interfaces import Qualification
from tests.conftest import SHINJUKU
from tests.insurance.support_api import (
    CLINIC,
    Holder,
    Reception,
    clinical_lines,
    holder,
    linked,
    reception,
    register_insurers,
)
from tests.web.test_counter import Counter, staff_account

__all__ = ["CLINIC", "Desk", "Holder", "Patient", "Reception", "assert_plain_japanese",
           "desk", "holder", "page_client", "patient", "signed_in", "text_of", "visible"]

#: Every value of the context's enums: none may appear as a word on a Japanese page.
ENUM_VALUES = sorted({member.value for obj in vars(insurance_interfaces).values()
                      if isinstance(obj, type) and issubclass(obj, StrEnum)
                      and obj is not StrEnum for member in obj}, key=len, reverse=True)
#: Every error code of the context (and the pages' own).
ERROR_CODES = sorted({obj.code for obj in vars(insurance_interfaces).values()
                      if isinstance(obj, type) and issubclass(obj, DomainError)
                      and obj.__module__ == insurance_interfaces.__name__}
                     | {"insurance_terminal_not_yours", "insurance_no_insurer"})
SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")
ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T|\+00:00|UTC")


@pytest.fixture
def page_client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as client:
        yield client


def visible(page: str) -> str:
    """The text a person reads: no tags, attributes, scripts, or the CLI's command line."""
    page = re.sub(r"<(script|style|pre)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<[^>]+>", " ", page)
    return html.unescape(page)


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", visible(page))


def assert_plain_japanese(page: str, *, extra: tuple[str, ...] = ()) -> None:
    """A Japanese page shows words only: no enum value, error code, snake_case machine word,
    UTC timestamp or raw JSON; ``extra``: English details that must not show either."""
    shown = visible(page)
    for code in ERROR_CODES:
        assert code not in shown, code
    words = set(re.findall(r"[A-Za-z_]+", shown))
    leaked = [v for v in ENUM_VALUES if v in words]
    assert not leaked, leaked
    assert not SNAKE.search(shown), SNAKE.search(shown)
    assert not ISO_MOMENT.search(shown), ISO_MOMENT.search(shown)
    assert '{"' not in shown
    for detail in extra:
        assert detail not in shown, detail


def signed_in(client: TestClient, container: Container, username: str, *,
              municipality: str = SHINJUKU, role: StaffRole = StaffRole.CLERK
              ) -> tuple[Counter, StaffPrincipal]:
    """A browser signed in with the kernel's staff login (password and one-time code)."""
    secret, principal = staff_account(container, username, municipality, role)
    browser = Counter(client)
    browser.login(username, secret)
    return browser, principal


@dataclass
class Desk:
    """A reception: a terminal and the member of staff who operates it, signed in."""

    browser: Counter
    staff: StaffPrincipal
    reception: Reception

    @property
    def base(self) -> str:
        return f"/clinic/terminals/{self.reception.id}"


def desk(client: TestClient, container: Container, username: str = "reception-1",
         clinic: tuple[str, str] = CLINIC) -> Desk:
    browser, staff = signed_in(client, container, username)
    terminal = reception(container, clinic)
    container.eligibility.set_terminal_operators(terminal.id, [username], "operator:test")
    return Desk(browser, staff, terminal)


@dataclass
class Patient:
    card: Holder
    qualification: Qualification


def patient(container: Container, clerk: StaffPrincipal, *, activate: bool = True,
            insurers: bool = True, **overrides: object) -> Patient:
    """A 新宿区 resident with a card, linked at 協会けんぽ on all four items (with synthetic
    claims lines), registered for insurance use unless ``activate`` is False."""
    if insurers:
        register_insurers(container)
    card = holder(container, clerk, **overrides)
    qualification = linked(container, card.resident)
    clinical_lines(container, card.resident)
    if activate:
        container.eligibility.activate_for_resident(card.resident.id, card.serial)
    return Patient(card, qualification)


HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"')


def hidden(page: Any, form_id: str | None = None) -> dict[str, str]:
    """The hidden inputs of the page (of the form ``form_id``), as a browser would send them."""
    text = page.text
    if form_id is not None:
        found = re.search(rf'<form[^>]*id="{form_id}".*?</form>', text, re.S)
        assert found, form_id
        text = found.group(0)
    return {name: html.unescape(value) for name, value in HIDDEN.findall(text)
            if name != "csrf_token"}

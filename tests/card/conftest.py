"""Card fixtures: a numbered adult resident of 新宿区 and a clerk ready to issue."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.interfaces import IdentityCheck, IssuedPins
from mynumber.registry.interfaces import ResidentRecord
from tests.conftest import new_resident

PINS = IssuedPins("ABC123", "1234", "5678", "2468")


@dataclass
class Holder:
    resident: ResidentRecord
    number: str

    def check(self, *documents: str) -> IdentityCheck:
        return IdentityCheck(self.number, "notification_letter",
                             documents or ("drivers_license",))


def make_holder(container: Container, clerk: StaffPrincipal, **overrides: object) -> Holder:
    details = new_resident(**overrides)
    resident = container.registry.register_birth(clerk, details, details.birth_date)
    number = container.registry.reveal_number(clerk, resident.id, "test")
    return Holder(resident, number)


@pytest.fixture
def holder(container: Container, clerk: StaffPrincipal) -> Holder:
    return make_holder(container, clerk)

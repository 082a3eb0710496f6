"""国税庁 (`national_tax_agency`) asks 住基ネット by 住民票コード under its listed use
(`national-tax`): answered, recorded, and shown to the resident. Its row of the permitted-use
table points at a real agency of the network directory."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.juki import schemas as s
from mynumber.juki.interfaces import QueryKind, QueryOutcome, UseNotPermitted
from mynumber.juki.services import load_permitted_uses
from mynumber.network.legal_table import national_agencies
from tests.conftest import new_resident
from tests.juki.conftest import Feed
from tests.juki.test_api import BY_CODE, key, signed

NTA = "national_tax_agency"
USE = "national-tax"


def test_every_kind_of_the_permitted_use_table_has_an_agency_of_the_directory(
        container: Container) -> None:
    kinds = {a.kind for a in container.network.agencies()}
    assert {u.agency_kind for u in load_permitted_uses()} <= kinds
    (use,) = [u for u in load_permitted_uses() if u.agency_kind == NTA]
    assert use.use_id == USE
    assert NTA in {a.agency_id for a in national_agencies()}


def test_national_tax_agency_asks_by_resident_code_and_the_resident_sees_it(
        container: Container, feed: Feed, clerk: StaffPrincipal) -> None:
    details = new_resident()
    person = container.registry.register_birth(clerk, details, details.birth_date)
    feed.deliver()
    juki = container.juki
    result = juki.by_code(NTA, USE, person.resident_code)
    assert result.outcome is QueryOutcome.ANSWERED
    assert result.identity is not None and result.identity.resident_code == person.resident_code
    # Only its own use: a pension use asked by 国税庁 is refused, and recorded too.
    with pytest.raises(UseNotPermitted):
        juki.by_code(NTA, "pension-benefits", person.resident_code)
    entries = juki.disclosure(person.id)
    assert [(e.agency_id, e.agency_name, e.kind, e.outcome) for e in entries] == [
        (NTA, "国税庁", QueryKind.BY_CODE, QueryOutcome.REFUSED),
        (NTA, "国税庁", QueryKind.BY_CODE, QueryOutcome.ANSWERED)]
    assert entries[1].purpose.startswith("国税の賦課・徴収")


def test_national_tax_agency_signs_its_query_with_its_own_keys(
        container: Container, feed: Feed, clerk: StaffPrincipal) -> None:
    details = new_resident()
    person = container.registry.register_birth(clerk, details, details.birth_date)
    feed.deliver()
    client = TestClient(create_app(container=container))
    answer = client.post(BY_CODE, json=signed(
        s.BY_CODE_KIND, key(container, NTA), agency_id=NTA, use_id=USE,
        resident_code=person.resident_code))
    assert answer.status_code == 200, answer.text
    assert answer.json()["identity"]["resident_code"] == person.resident_code
    assert [e.agency_name for e in container.juki.disclosure(person.id)] == ["国税庁"]

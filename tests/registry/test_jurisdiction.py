"""Refusals across municipalities leave an audit record; a look-up by number outside one's
municipality reads exactly as "not found"; a number never goes through the search."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.registry import models as m
from mynumber.registry.interfaces import (
    InvalidResidentData,
    OutsideJurisdiction,
    ResidentNotFound,
)
from tests.conftest import new_resident

REFUSED = "registry:jurisdiction:refused"
# Not issued to anyone in these tests (valid check digit).
UNISSUED = "123456789018"


def refusals(container: Container) -> list[Any]:
    with container.databases.unit_of_work("registry") as session:
        return list(session.scalars(select(m.AuditEvent).where(m.AuditEvent.tag == REFUSED)
                                    .order_by(m.AuditEvent.id)))


def born(container: Container, clerk: StaffPrincipal) -> int:
    record = container.registry.register_birth(clerk, new_resident(), dt.date(1990, 4, 1))
    return record.id


def test_refused_actions_across_municipalities_are_audited(
    container: Container, clerk: StaffPrincipal, shibuya_clerk: StaffPrincipal,
) -> None:
    resident_id = born(container, clerk)
    registry = container.registry
    with pytest.raises(OutsideJurisdiction):
        registry.get_resident(shibuya_clerk, resident_id, "確認")
    with pytest.raises(OutsideJurisdiction):
        registry.register_death(shibuya_clerk, resident_id, dt.date(2025, 1, 1))
    with pytest.raises(OutsideJurisdiction):  # registering into another municipality
        born(container, shibuya_clerk)
    events = refusals(container)
    assert [(e.actor, e.subject) for e in events] == [
        (shibuya_clerk.actor, f"resident:{resident_id}"),
        (shibuya_clerk.actor, f"resident:{resident_id}"),
        (shibuya_clerk.actor, "municipality:131041"),
    ]
    assert all(e.details == {"municipality": shibuya_clerk.municipality_code} for e in events)
    # The refused death rolled back: the resident is untouched.
    assert registry.get_resident(clerk, resident_id, "確認").status.value == "resident"


def test_lookup_by_number_elsewhere_reads_as_not_found_and_is_audited(
    container: Container, clerk: StaffPrincipal, shibuya_clerk: StaffPrincipal,
    supervisor: StaffPrincipal,
) -> None:
    registry = container.registry
    resident_id = born(container, clerk)
    number = registry.reveal_number(clerk, resident_id, "確認")
    with pytest.raises(ResidentNotFound) as unissued:
        registry.find_by_number(shibuya_clerk, UNISSUED, "照会")
    with pytest.raises(ResidentNotFound) as elsewhere:
        registry.find_by_number(shibuya_clerk, number, "照会")
    assert type(elsewhere.value).status == type(unissued.value).status == 404
    assert elsewhere.value.problem() == unissued.value.problem()
    (event,) = refusals(container)
    assert (event.actor, event.subject) == (shibuya_clerk.actor, f"resident:{resident_id}")
    assert number not in f"{event.subject} {event.reason} {event.details}"
    # A replaced number of another municipality's resident reads as not found too (409 at home).
    registry.reissue_number(supervisor, resident_id, "漏えい")
    with pytest.raises(ResidentNotFound) as replaced:
        registry.find_by_number(shibuya_clerk, number, "照会")
    assert replaced.value.problem() == unissued.value.problem()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def _token(container: Container, who: StaffPrincipal) -> dict[str, str]:
    """A session for an existing account, without the (slow) two-factor login."""
    from mynumber.auth import models as auth_models
    from mynumber.auth.services import session_token_hash

    token = "test-session-" + who.username
    with container.databases.unit_of_work("auth") as session:
        session.add(auth_models.StaffSession(token_hash=session_token_hash(token),
                                             staff_id=who.id))
    return {"Authorization": f"Bearer {token}"}


def test_lookup_by_number_elsewhere_answers_like_not_found_over_http(
    client: TestClient, container: Container, clerk: StaffPrincipal,
    shibuya_clerk: StaffPrincipal,
) -> None:
    resident_id = born(container, clerk)
    number = container.registry.reveal_number(clerk, resident_id, "確認")
    shibuya = _token(container, shibuya_clerk)
    url = "/api/v1/registry/residents/lookup-by-number"
    elsewhere = client.post(url, json={"individual_number": number, "reason": "照会"},
                            headers=shibuya)
    unissued = client.post(url, json={"individual_number": UNISSUED, "reason": "照会"},
                           headers=shibuya)
    assert elsewhere.status_code == unissued.status_code == 404
    assert elsewhere.json() == unissued.json()
    assert number not in elsewhere.text


NUMBER_LIKE = [
    "1234 5678 9012", "1234\u30005678\u30009012", "\uff11\uff12\uff13\uff14\uff15\uff16"
    "\uff17\uff18\uff19\uff10\uff11\uff12", "1234\uff0d5678\uff0d9012", "1234\u20105678\u20109012",
    "1234\u22125678\u22129012", "1234\u30fc5678\u30fc9012", "\u30001234-5678-9012\u3000",
]


@pytest.mark.parametrize("query", NUMBER_LIKE)
def test_search_refuses_a_number_however_it_is_typed(
    container: Container, clerk: StaffPrincipal, query: str
) -> None:
    with pytest.raises(InvalidResidentData) as refused:
        container.registry.search(clerk, query)
    assert refused.value.field == "q"
    assert "look-up by individual number" in refused.value.detail


def test_search_over_http_refuses_a_spaced_number_without_echoing_it(
    client: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    query = "6214\u30009832\u30000257"
    response = client.get("/api/v1/registry/residents", params={"q": query},
                          headers=_token(container, clerk))
    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["field"]) == ("invalid_resident_data", "q")
    assert "lookup-by-number" in body["detail"]
    assert "6214" not in response.text


def test_a_resident_code_in_full_width_digits_is_found(
    container: Container, clerk: StaffPrincipal,
) -> None:
    record = container.registry.register_birth(clerk, new_resident(), dt.date(1990, 4, 1))
    wide = "".join(chr(ord(c) + 0xFEE0) for c in record.resident_code)
    assert [r.id for r in container.registry.search(clerk, wide)] == [record.id]

"""The agencies' back office (/agencies/v1/persons, /agencies/v1/copies) at the datetime edge:
a ``requested_at`` of year 1 or 9999 (out of range once converted to UTC, so no signature can
even be computed over it) is refused as ``stale_request`` before the signature is checked, a
problem document and never an internal error, and nothing is written (the nonce included)."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mynumber.agencies import api as agencies_api
from mynumber.agencies.interfaces import PersonNotEnrolled
from mynumber.app import Container
from tests.agencies.test_operations_api import CITY, COPIES, PERSONS, problem
from tests.agencies.test_operations_api import app as app  # a fixture
from tests.agencies.test_operations_api import number as number  # a fixture

EDGES = ["0001-01-01T00:00:00+09:00", "9999-12-31T23:59:59-09:00",
         "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00"]


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _unsigned(requested_at: str, **fields: Any) -> dict[str, Any]:
    return {"agency_id": CITY, "requested_at": requested_at,
            "nonce": secrets.token_urlsafe(16),
            "signature": base64.b64encode(b"x" * 64).decode(), **fields}


@pytest.mark.parametrize("requested_at", EDGES)
def test_an_enrolment_at_the_datetime_edge_is_stale(
        client: TestClient, container: Container, number: str, requested_at: str) -> None:
    response = client.post(PERSONS, json=_unsigned(
        requested_at, address_number="A0001", individual_number=number))
    body = problem(response, 403, "stale_request")
    assert body["field"] == "requested_at" and number not in response.text
    with pytest.raises(PersonNotEnrolled):
        container.agencies.agency_code(CITY, "A0001")


@pytest.mark.parametrize("requested_at", EDGES)
def test_a_copy_at_the_datetime_edge_is_stale(
        client: TestClient, requested_at: str) -> None:
    response = client.post(COPIES, json=_unsigned(
        requested_at, address_number="A0001", item_code="local_tax", payload={"x": 1}))
    problem(response, 403, "stale_request")


def test_the_nonce_of_a_stale_request_is_not_spent(
        client: TestClient, number: str) -> None:
    body = _unsigned(EDGES[0], address_number="A0001", individual_number=number)
    problem(client.post(PERSONS, json=body), 403, "stale_request")
    assert (CITY, body["nonce"]) not in agencies_api.NONCES._seen


def test_freshness_is_checked_without_overflow_at_either_end() -> None:
    for moment in (dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=14))),
                   dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-14)))):
        with pytest.raises(agencies_api.StaleRequest):
            agencies_api.check_fresh(moment)

"""やりとり履歴 shows a record the signed log does not vouch for as 検証できません (issue 12,
part 5): on the page and in the JSON API, never the edited data as fact."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.network import models as nm
from mynumber.network.interfaces import Outcome
from mynumber.portal.interfaces import SESSION_COOKIE
from tests.portal.conftest import CITY, MHLW, POLICE, CardHolder, hold, login, resident_record

API = "/api/v1/portal"


@pytest.fixture
def police_serial(container: Container, card_holder: CardHolder) -> Iterator[str]:
    """A criminal-investigation query about the holder, made 400 days ago (past the 365-day
    deferral) with the clocks moved back, as the demo seeder does."""
    c, number = container, card_holder.number
    hold(c, number, CITY, "resident_record", resident_record(card_holder), "C-1")
    c.agencies.ensure_registered(POLICE)
    c.agencies.enrol_person(POLICE, "P-1", number)
    holders: list[Any] = [c.network, c.agencies, c.agencies_server]
    saved = [h.clock for h in holders]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    for holder in holders:
        holder.clock = lambda: past
    try:
        result = c.agencies.query(POLICE, "P-1", "extra-criminal-investigation", CITY,
                                  "resident_record")
    finally:
        for holder, clock in zip(holders, saved, strict=True):
            holder.clock = clock
    assert result.outcome is Outcome.PROVIDED
    while c.network_log.integrate():
        pass
    yield result.serial


def _row(page: str, serial: str) -> str:
    found = re.search(rf'<tr data-serial="{re.escape(serial)}".*?</tr>', page, re.S)
    assert found, page
    return html.unescape(found.group(0))


def test_a_tampered_police_record_shows_as_unverifiable_on_the_page_and_in_the_api(
        container: Container, clerk: StaffPrincipal, card_holder: CardHolder,
        police_serial: str) -> None:
    c = container
    session = login(c, card_holder)
    client = TestClient(create_app(container=c))
    client.cookies.set(SESSION_COOKIE, session.token)
    police_name = c.network.agency(POLICE).name
    mhlw_name = c.network.agency(MHLW).name

    before = _row(client.get("/portal/history").text, police_serial)
    assert police_name in before and "検証できません" not in before

    with c.databases.unit_of_work("network") as tx:
        tx.execute(update(nm.Exchange).where(nm.Exchange.serial == police_serial)
                   .values(requester_id=MHLW))

    page = client.get("/portal/history")
    assert page.status_code == 200
    row = _row(page.text, police_serial)
    assert "検証できません" in row and 'data-verified="false"' in row
    # Neither the edited requester nor the original is shown as the record's content.
    assert mhlw_name not in row and police_name not in row
    assert "unverifiable" not in re.sub(r'class="[^"]*"', "", row)  # no raw codes on the page
    english = client.get("/portal/history?lang=en")
    assert "Cannot be verified" in _row(english.text, police_serial)

    api = client.get(f"{API}/me/history", headers={"Authorization": f"Bearer {session.token}"})
    assert api.status_code == 200, api.text
    entry = next(e for e in api.json() if e["record"]["serial"] == police_serial)
    assert entry["record"]["verified"] is False
    assert entry["verification_ja"].startswith("検証できません")
    assert entry["verification_en"].startswith("Cannot be verified")

    verify = client.post(f"{API}/me/history/{police_serial}/verify",
                         headers={"Authorization": f"Bearer {session.token}"})
    assert verify.status_code == 200, verify.text
    assert verify.json()["verified"] is False

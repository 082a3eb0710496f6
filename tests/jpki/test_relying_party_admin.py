"""Issue 10: one admin call retired the portal's own relying party (card login stopped for
everyone) and nothing could reactivate a retired party. Now the system's own party refuses
retirement over the admin API, and any retirement can be undone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mynumber.app import Container, build_container, create_app
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.jpki import models as m
from mynumber.jpki.interfaces import CertificateKind, RelyingParty, SystemRelyingParty
from mynumber.settings import Settings
from tests.jpki.test_api import _login
from tests.portal.conftest import issue_card_holder, login

BASE = "/api/v1/jpki/relying-parties"
PROBLEM = "application/problem+json"


def _events(container: Container, tag: str, relying_party_id: int) -> list[m.AuditEvent]:
    with container.databases.unit_of_work("jpki") as session:
        rows = session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.tag == tag,
            m.AuditEvent.subject == f"relying_party:{relying_party_id}",
        ).order_by(m.AuditEvent.id)).all()
        session.expunge_all()
        return list(rows)


def test_the_portals_relying_party_cannot_be_retired_over_the_admin_api(
    container: Container, clerk: StaffPrincipal,
) -> None:
    holder = issue_card_holder(container, clerk)
    assert login(container, holder).account_id  # the portal registered itself on first use
    portal_rp = container.portal.relying_party_id()
    client = TestClient(create_app(container=container))
    admin = _login(container, "jpki-admin", StaffRole.ADMIN)

    refused = client.post(f"{BASE}/{portal_rp}/retire", headers=admin)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["code"] == "system_relying_party"
    assert "Traceback" not in refused.text
    # Nothing changed ...
    shown = client.get(f"{BASE}/{portal_rp}", headers=admin).json()
    assert shown["active"] is True and shown["system"] is True
    assert _events(container, "jpki:relying_party:retire", portal_rp) == []
    # ... but the attempt is on record, with the administrator who tried.
    attempts = _events(container, "jpki:relying_party:retire_refused", portal_rp)
    assert len(attempts) == 1 and attempts[0].actor.startswith("staff:")
    assert attempts[0].actor != "staff:0"
    # Card login to the portal still works for everyone.
    assert login(container, holder).account_id
    assert login(container, issue_card_holder(container, clerk, given_name="花子")).account_id


def test_the_portal_still_retires_its_own_duplicate_after_losing_the_registration_race(
    container: Container, settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two processes register the portal at once; the loser retires the party it registered
    (a system party) and adopts the winner's. The refusal above must not stop that."""
    other = build_container(settings)  # a second process on the same databases
    try:
        register = container.jpki.register_relying_party
        seen: list[RelyingParty] = []

        def racing(name: str, kinds: tuple[CertificateKind, ...], *,
                   system: bool = False) -> RelyingParty:
            party = register(name, kinds, system=system)
            seen.append(party)
            other.portal.relying_party_id()  # the other process records its party first
            return party

        monkeypatch.setattr(container.jpki, "register_relying_party", racing)
        winner = container.portal.relying_party_id()
        assert winner == other.portal.relying_party_id()
        (duplicate,) = seen
        assert duplicate.system and duplicate.id != winner
        assert container.jpki.find_relying_party(duplicate.id).active is False
        assert container.jpki.find_relying_party(winner).active is True
        # Without the owner's explicit allow_system, the service refuses too.
        with pytest.raises(SystemRelyingParty):
            container.jpki.retire_relying_party(winner)
        assert container.jpki.find_relying_party(winner).active is True
    finally:
        other.close()


def test_a_retired_relying_party_can_be_reactivated_and_its_key_works_again(
    container: Container,
) -> None:
    client = TestClient(create_app(container=container))
    admin = _login(container, "jpki-admin", StaffRole.ADMIN)
    created = client.post(BASE, json={"name": "bank", "kinds": ["auth"]}, headers=admin)
    assert created.status_code == 201, created.text
    party_id = created.json()["relying_party"]["id"]
    assert created.json()["relying_party"]["system"] is False
    rp = {"X-Relying-Party-Key": created.json()["api_key"]}
    assert client.post("/api/v1/jpki/user-challenges", headers=rp).status_code == 201

    assert client.post(f"{BASE}/{party_id}/retire", headers=admin).status_code == 204
    assert client.post("/api/v1/jpki/user-challenges", headers=rp).status_code == 403

    back = client.post(f"{BASE}/{party_id}/reactivate", headers=admin)
    assert back.status_code == 204, back.text
    assert client.get(f"{BASE}/{party_id}", headers=admin).json()["active"] is True
    assert client.post("/api/v1/jpki/user-challenges", headers=rp).status_code == 201
    with container.databases.unit_of_work("jpki") as session:
        row = session.get(m.RelyingParty, party_id)
        assert row is not None and row.retired_at is None
    # Idempotent: a repeated request succeeds and changes nothing.
    assert client.post(f"{BASE}/{party_id}/reactivate", headers=admin).status_code == 204
    events = _events(container, "jpki:relying_party:reactivate", party_id)
    assert [e.reason for e in events] == [None, "already active"]
    assert all(e.actor.startswith("staff:") and e.actor != "staff:0" for e in events)

    unknown = client.post(f"{BASE}/999999/reactivate", headers=admin)
    assert unknown.status_code == 404 and unknown.json()["code"] == "relying_party_not_found"
    assert unknown.headers["content-type"].startswith(PROBLEM)


def test_reactivating_a_relying_party_needs_an_administrator(container: Container) -> None:
    client = TestClient(create_app(container=container))
    admin = _login(container, "jpki-admin", StaffRole.ADMIN)
    clerk = _login(container, "jpki-clerk", StaffRole.CLERK)
    party = container.jpki.register_relying_party("bank", (CertificateKind.AUTH,))
    container.jpki.retire_relying_party(party.id)

    assert client.post(f"{BASE}/{party.id}/reactivate").status_code == 401
    refused = client.post(f"{BASE}/{party.id}/reactivate", headers=clerk)
    assert refused.status_code == 403 and refused.json()["code"] == "role_required"
    assert container.jpki.find_relying_party(party.id).active is False
    assert _events(container, "jpki:relying_party:reactivate", party.id) == []
    assert client.post(f"{BASE}/{party.id}/reactivate", headers=admin).status_code == 204
    assert container.jpki.find_relying_party(party.id).active is True


def test_concurrent_reactivations_change_the_party_once(container: Container) -> None:
    """The state change is one conditional UPDATE: of many parallel requests exactly one
    reactivates, the others find it active (and are recorded as such)."""
    party = container.jpki.register_relying_party("bank", (CertificateKind.AUTH,))
    container.jpki.retire_relying_party(party.id)
    threads = 8
    barrier = threading.Barrier(threads)

    def reactivate(i: int) -> None:
        barrier.wait()
        container.jpki.reactivate_relying_party(party.id, f"staff:{i + 1}")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(reactivate, range(threads)))
    assert container.jpki.find_relying_party(party.id).active is True
    reasons = [e.reason for e in _events(container, "jpki:relying_party:reactivate", party.id)]
    assert len(reasons) == threads and reasons.count(None) == 1

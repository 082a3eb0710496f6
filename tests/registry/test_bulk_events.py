"""A bulk import publishes one event per resident in its own transaction (nothing lost in a
batch): the fast path (COPY on PostgreSQL, executemany on SQLite) writes the outbox too."""

from __future__ import annotations

from mynumber.app import Container
from mynumber.registry.bulk import BulkResident, store_residents
from mynumber.registry.interfaces import LifeEventKind, RegistryChange
from tests.conftest import new_resident


def test_a_bulk_import_publishes_every_resident(container: Container) -> None:
    items = [BulkResident(new_resident(given_name=f"太郎{i}"), household_key="h1")
             for i in range(3)]
    with container.databases.unit_of_work("registry") as session:
        ids = store_residents(container.registry, session, items, "system")
    outbox = container.registry.outbox
    outbox.sequence()
    changes = [RegistryChange.of(e.payload) for e in outbox.read(0, 100)]
    assert [c.resident_id for c in changes] == ids
    assert {c.kind for c in changes} == {LifeEventKind.IMPORT}
    records = container.registry.residents_by_ids(ids)
    assert [c.resident_code for c in changes] == [records[i].resident_code for i in ids]
    assert len({c.household_id for c in changes}) == 1 and changes[0].household_id is not None
    assert [e.type for e in outbox.read(0, 100)] == ["registry.resident.import"] * 3

"""No table of the network core or of any intermediate server holds a 個人番号 of any seeded
resident, after seeding a population with its whole exchange history."""

from __future__ import annotations

from sqlalchemy import inspect, text

from mynumber.agencies.seed import seed_exchanges
from mynumber.app import Container
from mynumber.auth.interfaces import StaffRole
from mynumber.registry.seed import current_residents, run_seed
from tests.conftest import SHINJUKU, make_staff


def _dump(container: Container, context: str) -> str:
    parts = []
    with container.databases.unit_of_work(context) as session:
        for table in inspect(session.connection()).get_table_names():
            if table == "alembic_version":
                continue
            for row in session.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        parts.append(bytes(value).decode("latin-1"))
                    elif value is not None:
                        parts.append(str(value))
    return "\n".join(parts)


def test_no_network_or_agency_table_contains_a_seeded_residents_number(container: Container):
    run_seed(container, 300)
    residents = current_residents(container.databases)
    result = seed_exchanges(container, residents, exchanges=200)
    assert result.exchanges >= 200 and result.enrolments > len(residents)
    # Issue 12: the seeded agencies all have a 別表第一 use, and the log vouches for every
    # seeded record (restricted and declined ones included).
    assert result.restricted >= 1 and result.declined >= 1
    records = container.network.verify_records()
    assert records.ok, records.mismatches[:5]
    assert records.exchanges_checked == records.entries_checked == result.log_size
    clerk = make_staff(container, "scan-supervisor", SHINJUKU, StaffRole.SUPERVISOR)
    numbers = set()
    for r in residents:
        try:
            numbers.add(container.registry.reveal_number(clerk, r.id, "privacy scan"))
        except Exception:  # outside the clerk's jurisdiction: reveal through the system actor
            continue
    assert len(numbers) >= 20
    for context in ("network", "agencies"):
        dump = _dump(container, context)
        assert len(dump) > 10_000  # the tables really hold the seeded history
        leaked = [n for n in numbers if n in dump]
        assert leaked == [], f"{context} holds {len(leaked)} individual numbers"

"""The accounts context's own events, delivered by its own dispatcher (the container's
second): every registration change is published in its transaction; デジタル庁 enrols each
registrant so agencies' network look-ups find the account (once, however often the event is
delivered); a bank merger sends the resident exactly one お知らせ; `mynumber events deliver`
drains both outboxes. Real registry, card, portal login, network codes and portal notices."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from mynumber.accounts.events import (
    CODES_SUBSCRIBER,
    NOTICE_KIND,
    NOTICES_SUBSCRIBER,
)
from mynumber.accounts.interfaces import (
    CHANGED_EVENT,
    DELETED_EVENT,
    DIGITAL_AGENCY,
    MIGRATED_EVENT,
    PUBLIC_FUND_ACCOUNT_ITEM,
    REGISTERED_EVENT,
    HolderNameMismatch,
    Route,
)
from mynumber.accounts.services import AccountsServiceImpl
from mynumber.agencies import models as agencies_models
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.cli import app
from mynumber.kernel.events import Dispatcher, Event
from mynumber.network.interfaces import Outcome
from mynumber.registry import models as registry_models
from mynumber.settings import Settings
from tests.accounts.conftest import NOW, PENSION, TAX, TODAY, Feed, Person, account, card
from tests.conftest import cli_env
from tests.portal.conftest import CITY, CardHolder, issue_card_holder, login

runner = CliRunner()
CHILD_ALLOWANCE = "extra-public-fund-child-allowance"


@pytest.fixture
def agencies(container: Container) -> Container:
    for agency in (CITY, DIGITAL_AGENCY):
        container.agencies.ensure_registered(agency)
    return container


def _dispatcher(c: Container) -> Dispatcher:
    return c.dispatcher("accounts")


def _events(accounts: AccountsServiceImpl) -> list[Event]:
    accounts.outbox.sequence()
    return accounts.outbox.read(0, 1000)


def _enrolment_rows(c: Container) -> tuple[int, int]:
    """デジタル庁's enrolled persons and the 取得番号 issued to it (what an enrolment writes)."""
    with c.databases.unit_of_work("agencies") as session:
        persons = session.scalar(select(func.count()).select_from(agencies_models.Person)
                                 .where(agencies_models.Person.agency_id == DIGITAL_AGENCY))
    with c.databases.unit_of_work("registry") as session:
        grants = session.scalar(select(func.count()).select_from(
            registry_models.AcquisitionNumber))
    return int(persons or 0), int(grants or 0)


def _ask(c: Container, holder: CardHolder) -> Outcome:
    address = f"city-{holder.resident.id:06d}"
    c.agencies.enrol_person(CITY, address, holder.number)
    return c.agencies.query(CITY, address, CHILD_ALLOWANCE, DIGITAL_AGENCY,
                            PUBLIC_FUND_ACCOUNT_ITEM).outcome


def test_the_container_runs_a_second_dispatcher_for_the_accounts_outbox(
        container: Container) -> None:
    from mynumber.app import dispatcher_name

    assert [dispatcher_name(d) for d in container.dispatchers] == ["registry", "accounts"]
    assert container.dispatchers[0] is container.events  # the registry's, as before
    accounts = _dispatcher(container)
    assert accounts.outbox is container.accounts.outbox
    assert [s.name for s in accounts.subscribers] == [CODES_SUBSCRIBER, NOTICES_SUBSCRIBER]


def test_every_change_is_published_in_its_transaction_without_the_account_number(
        container: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl,
        person: Person, feed: Feed) -> None:
    portal, bank, tax, pension = person(), person(), person(), person()
    accounts.register(portal.id, account(), Route.PORTAL, authentication=card(portal.id))
    accounts.register(bank.id, account(), Route.BANK, authentication=card(bank.id),
                      actor="bank:8001")
    accounts.register(tax.id, account(), Route.TAX_RETURN, actor=TAX)
    accounts.change(portal.id, account(branch="102"), Route.PORTAL,
                    authentication=card(portal.id))
    accounts.delete(bank.id, Route.PORTAL, authentication=card(bank.id))
    accounts.propose_pension(pension.id, account(), TODAY - dt.timedelta(days=50),
                             actor=PENSION)
    assert accounts.finalize_pensions(TODAY).registered == [pension.id]
    # A refused registration (a relative's account) rolls back: no event.
    with pytest.raises(HolderNameMismatch):
        accounts.register(person().id, account("ﾔﾏﾀﾞ ﾊﾅｺ"), Route.TAX_RETURN, actor=TAX)
    feed.deliver()  # the births (nothing for this context)
    container.registry.register_death(clerk, tax.id, TODAY)
    feed.deliver()  # the death deletes the registration

    seen = [(e.type, e.payload["resident_id"], e.payload["route"]) for e in _events(accounts)]
    assert seen == [
        (REGISTERED_EVENT, portal.id, "portal"), (REGISTERED_EVENT, bank.id, "bank"),
        (REGISTERED_EVENT, tax.id, "tax_return"), (CHANGED_EVENT, portal.id, "portal"),
        (DELETED_EVENT, bank.id, "bank"), (REGISTERED_EVENT, pension.id, "pension"),
        (DELETED_EVENT, tax.id, "tax_return"),
    ]
    for event in _events(accounts):
        assert event.subject == f"resident:{event.payload['resident_id']}"
        assert "1234567" not in str(event.payload)  # never the account number
        assert "account_number" not in event.payload
    deleted = [e.payload for e in _events(accounts) if e.type == DELETED_EVENT]
    assert [p["reason"] for p in deleted] == ["by_portal", "death"]
    changed = next(e.payload for e in _events(accounts) if e.type == CHANGED_EVENT)
    assert (changed["bank_code"], changed["branch_code"]) == ("8001", "102")


def test_registering_and_delivering_lets_a_permitted_agency_find_the_account(
        agencies: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl) -> None:
    c = agencies
    holder = issue_card_holder(c, clerk)
    rid = holder.resident.id
    accounts.register(rid, account(), Route.PORTAL, authentication=card(rid, at=NOW))
    # Nobody called enrol: before delivery デジタル庁 holds no code for the person.
    assert _ask(c, holder) is Outcome.NOT_HELD

    assert _dispatcher(c).drain() >= 1
    assert _ask(c, holder) is Outcome.PROVIDED
    assert not [s for s in _dispatcher(c).status() if s.last_error]


def test_delivering_twice_changes_nothing(
        agencies: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl) -> None:
    c = agencies
    holder = issue_card_holder(c, clerk)
    rid = holder.resident.id
    accounts.register(rid, account(), Route.PORTAL, authentication=card(rid, at=NOW))
    _dispatcher(c).drain()
    code = c.agencies.agency_code(DIGITAL_AGENCY, f"pfa-{rid}")
    after_first = _enrolment_rows(c)

    # At least once: the same batch again through the wired handler, and the checkpoint put
    # back (a crash before it moved) so the dispatcher delivers everything a second time.
    wired = next(s for s in _dispatcher(c).subscribers if s.name == CODES_SUBSCRIBER)
    wired.handle([e for e in _events(accounts) if e.type == REGISTERED_EVENT])
    cp = accounts.outbox.checkpoints
    with c.databases.engine("accounts").begin() as conn:
        conn.execute(update(cp).values(position=0, lease_owner=None, lease_until=None))
    assert _dispatcher(c).drain() >= 1

    assert _enrolment_rows(c) == after_first  # no second 取得番号, no second enrolment
    assert c.agencies.agency_code(DIGITAL_AGENCY, f"pfa-{rid}") == code
    assert _ask(c, holder) is Outcome.PROVIDED


def test_a_merger_gives_exactly_one_notice(
        agencies: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl) -> None:
    c = agencies
    holder = issue_card_holder(c, clerk)
    rid = holder.resident.id
    at = dt.datetime(2018, 6, 1, 3, tzinfo=dt.UTC)
    accounts.clock = lambda: at
    accounts.register(rid, account(bank="8011", branch="101"), Route.TAX_RETURN, actor=TAX)
    today = dt.date(2025, 1, 6)
    accounts.clock = lambda: dt.datetime.combine(today, dt.time(3), dt.UTC)
    assert [m.resident_id for m in accounts.apply_mergers(today).moved] == [rid]

    _dispatcher(c).drain()
    _dispatcher(c).drain()
    wired = next(s for s in _dispatcher(c).subscribers if s.name == NOTICES_SUBSCRIBER)
    wired.handle([e for e in _events(accounts) if e.type == MIGRATED_EVENT])  # again

    notices = [n for n in c.portal.notices(login(c, holder)) if n.kind == NOTICE_KIND]
    assert len(notices) == 1
    [notice] = notices
    assert notice.title == "公金受取口座の金融機関・支店の表示を変更しました"
    assert "8011" in notice.body and "8013" in notice.body and "501" in notice.body
    assert "1234567" not in notice.body  # never the account number
    assert notice.sender_id == DIGITAL_AGENCY
    assert not [s for s in _dispatcher(c).status() if s.last_error]


def test_events_deliver_drains_both_outboxes(
        agencies: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl,
        settings: Settings) -> None:
    c = agencies
    holder = issue_card_holder(c, clerk)
    rid = holder.resident.id
    accounts.register(rid, account(), Route.PORTAL, authentication=card(rid, at=NOW))

    shown = runner.invoke(app, ["events", "deliver"], env=cli_env(settings))

    assert shown.exit_code == 0, shown.output
    assert "registry: delivered" in shown.output and "accounts: delivered" in shown.output
    for dispatcher in c.dispatchers:
        assert all(s.pending == 0 for s in dispatcher.status()), dispatcher.outbox.context
    # デジタル庁 enrolled the registrant (the accounts outbox was delivered).
    assert c.agencies.agency_code(DIGITAL_AGENCY, f"pfa-{rid}")
    status = runner.invoke(app, ["events", "status"], env=cli_env(settings))
    assert status.exit_code == 0, status.output
    assert "accounts digital_agency_codes: position" in status.output
    assert "registry jpki.certificates: position" in status.output


def test_the_serving_process_delivers_the_accounts_outbox_in_the_background(
        agencies: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl,
        settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from mynumber.web.assemble import assemble

    c = agencies
    c.settings = settings.model_copy(update={"event_dispatcher": True})
    holder = issue_card_holder(c, clerk)
    rid = holder.resident.id
    with TestClient(assemble(c)):
        assert all(d._thread is not None for d in c.dispatchers)  # both started
        accounts.register(rid, account(), Route.PORTAL, authentication=card(rid, at=NOW))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(s.name == CODES_SUBSCRIBER and s.pending == 0 and s.delivered
                   for s in _dispatcher(c).status()):
                break
            time.sleep(0.1)
        assert c.agencies.agency_code(DIGITAL_AGENCY, f"pfa-{rid}")
    assert all(d._thread is None for d in c.dispatchers)  # both stopped


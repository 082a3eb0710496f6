"""Agencies look a person's 公金受取口座 up through the network: デジタル庁 answers from the
accounts context, the core records the exchange (the resident sees it in やりとり履歴), the
legal table decides who may ask, each agency has a token bucket, and bursts of misses are
flagged as scanning. Real registry, card, portal login, agency codes, signatures and log."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter

import pytest
from typer.testing import CliRunner

from mynumber.accounts.interfaces import DIGITAL_AGENCY, PUBLIC_FUND_ACCOUNT_ITEM
from mynumber.accounts.provision import AccountProvisionServer
from mynumber.accounts.services import AccountsServiceImpl
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.cli import app
from mynumber.kernel.retry import InfrastructureUnavailable
from mynumber.network.interfaces import Outcome, RefusalReason
from mynumber.settings import Settings
from tests.accounts.conftest import NOW, account, card
from tests.conftest import cli_env
from tests.portal.conftest import CITY, CardHolder, issue_card_holder, login

runner = CliRunner()

CHILD_ALLOWANCE = "extra-public-fund-child-allowance"
PENSION = "japan_pension_service"
PENSION_TASK = "extra-public-fund-pension"
MHLW = "mhlw"  # 厚生労働大臣: no legal-table row for public_fund_account
HEALTH_TASK = "bekkyo2-1"


@pytest.fixture
def agencies(container: Container) -> Container:
    for agency in (CITY, PENSION, MHLW, DIGITAL_AGENCY):
        container.agencies.ensure_registered(agency)
    return container


def _holder(container: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl,
            *, registered: bool = True, **names: object) -> CardHolder:
    holder = issue_card_holder(container, clerk, **names)
    rid = holder.resident.id
    if registered:
        accounts.register(rid, account(), "portal", authentication=card(rid, at=NOW))
        # デジタル庁 obtains its code for the registrant from the card authentication.
        container.accounts_provision.enrol(rid, f"jpki:certificate:serial-{rid}")
    return holder


def _enrol(container: Container, agency: str, holder: CardHolder) -> str:
    address = f"{agency[:8]}-{holder.resident.id:06d}"
    container.agencies.enrol_person(agency, address, holder.number)
    return address


def test_a_permitted_agency_gets_the_account_and_the_resident_sees_the_exchange(
    agencies: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl,
) -> None:
    c = agencies
    holder = _holder(c, clerk, accounts)
    address = _enrol(c, CITY, holder)

    result = c.agencies.query(CITY, address, CHILD_ALLOWANCE, DIGITAL_AGENCY,
                              PUBLIC_FUND_ACCOUNT_ITEM)

    assert result.outcome is Outcome.PROVIDED
    assert result.data == {"bank_code": "8001", "branch_code": "101",
                           "deposit_type": "ordinary", "account_number": "1234567",
                           "holder_name": "ﾔﾏﾀﾞ ﾀﾛｳ", "name_check": "ok"}
    # The pension service may ask too, under its own task.
    pension = c.agencies.query(PENSION, _enrol(c, PENSION, holder), PENSION_TASK,
                               DIGITAL_AGENCY, PUBLIC_FUND_ACCOUNT_ITEM)
    assert pension.outcome is Outcome.PROVIDED and pension.data is not None
    # やりとり履歴, through the portal as the resident sees it.
    c.network_log.integrate()
    history = {e.record.serial: e.record for e in c.portal.history(login(c, holder))}
    for serial, requester in ((result.serial, CITY), (pension.serial, PENSION)):
        record = history[serial]
        assert record.requester_id == requester and record.provider_id == DIGITAL_AGENCY
        assert record.item_code == PUBLIC_FUND_ACCOUNT_ITEM
        assert record.item_label == "公金受取口座情報" and record.outcome is Outcome.PROVIDED
        assert record.verified


def test_an_agency_without_a_legal_table_row_is_refused_and_learns_nothing(
    agencies: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl,
) -> None:
    c = agencies
    holder = _holder(c, clerk, accounts)
    address = _enrol(c, MHLW, holder)

    refused = c.agencies.query(MHLW, address, HEALTH_TASK, DIGITAL_AGENCY,
                               PUBLIC_FUND_ACCOUNT_ITEM)
    # A permitted requester asking under a task the table does not give it is refused too.
    city = c.agencies.query(CITY, _enrol(c, CITY, holder), PENSION_TASK, DIGITAL_AGENCY,
                            PUBLIC_FUND_ACCOUNT_ITEM)

    for result in (refused, city):
        assert result.outcome is Outcome.REFUSED
        assert result.reason is RefusalReason.NOT_IN_LEGAL_TABLE and result.data is None
    # The refusal is an exchange like any other: the resident sees it.
    c.network_log.integrate()
    shown = {e.record.serial: e.record for e in c.portal.history(login(c, holder))}
    assert shown[refused.serial].outcome is Outcome.REFUSED


def test_a_person_without_an_account_is_not_held(
    agencies: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl,
) -> None:
    c = agencies
    holder = _holder(c, clerk, accounts, registered=False)
    result = c.agencies.query(CITY, _enrol(c, CITY, holder), CHILD_ALLOWANCE, DIGITAL_AGENCY,
                              PUBLIC_FUND_ACCOUNT_ITEM)
    assert result.outcome is Outcome.NOT_HELD and result.data is None


def _limited(c: Container, *, burst: int, rate: float = 1e-9,
             miss_threshold: int = 1_000) -> AccountProvisionServer:
    """The wired server with a tighter bucket (the same object the core routes to)."""
    server = c.accounts_provision
    fresh = AccountProvisionServer(
        c.databases, c.accounts, server.codes, c.network.core_public_key(),
        server._signer, rate=rate, burst=burst, miss_threshold=miss_threshold,
        miss_window=dt.timedelta(minutes=10))
    server.buckets = fresh.buckets
    server.miss_threshold = miss_threshold
    return server


def test_the_rate_limit_holds_under_parallel_requests(
    agencies: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl,
) -> None:
    c = agencies
    holder = _holder(c, clerk, accounts)
    address = _enrol(c, CITY, holder)
    pension_address = _enrol(c, PENSION, holder)
    _limited(c, burst=5)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(12)

    def ask() -> None:
        start.wait()
        try:
            result = c.agencies.query(CITY, address, CHILD_ALLOWANCE, DIGITAL_AGENCY,
                                      PUBLIC_FUND_ACCOUNT_ITEM)
            seen = result.outcome.value
        except InfrastructureUnavailable:
            seen = "limited"
        with lock:
            outcomes[seen] += 1

    threads = [threading.Thread(target=ask) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes == Counter({"provided": 5, "limited": 7})
    # Buckets are per agency: the pension service still has its own.
    other = c.agencies.query(PENSION, pension_address, PENSION_TASK, DIGITAL_AGENCY,
                             PUBLIC_FUND_ACCOUNT_ITEM)
    assert other.outcome is Outcome.PROVIDED
    # A limited look-up disclosed nothing and is no exchange: the resident sees the five.
    c.network_log.integrate()
    shown = [e.record for e in c.portal.history(login(c, holder))
             if e.record.requester_id == CITY and e.record.provider_id == DIGITAL_AGENCY]
    assert len(shown) == 5


def test_a_burst_of_misses_is_flagged_as_scanning(
    agencies: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl,
    settings: Settings,
) -> None:
    c = agencies
    server = _limited(c, burst=100, miss_threshold=3)
    registered = _holder(c, clerk, accounts)
    hit_address = _enrol(c, CITY, registered)
    strangers = [_holder(c, clerk, accounts, registered=False,
                         birth_date=dt.date(1960, 1, 1) + dt.timedelta(days=i))
                 for i in range(5)]
    addresses = [_enrol(c, CITY, s) for s in strangers]
    # Hits never count; three misses are within the threshold.
    for address in [hit_address, *addresses[:3], hit_address]:
        c.agencies.query(CITY, address, CHILD_ALLOWANCE, DIGITAL_AGENCY,
                         PUBLIC_FUND_ACCOUNT_ITEM)
    assert server.scanning_alerts() == []

    def ask(address: str) -> None:
        c.agencies.query(CITY, address, CHILD_ALLOWANCE, DIGITAL_AGENCY,
                         PUBLIC_FUND_ACCOUNT_ITEM)

    threads = [threading.Thread(target=ask, args=(a,)) for a in addresses[3:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    [alert] = server.scanning_alerts()  # flagged once per window, under parallel misses
    assert alert.agency_id == CITY and alert.misses >= 4 and alert.threshold == 3
    assert server.scanning_alerts(PENSION) == []
    # Operators see it with `mynumber accounts scanning` (exit status 1 when any is listed).
    shown = runner.invoke(app, ["accounts", "scanning", "--agency", CITY], env=cli_env(settings))
    assert shown.exit_code == 1, shown.output
    [listed] = json.loads(shown.stdout)
    assert listed["agency_id"] == CITY and listed["misses"] == alert.misses

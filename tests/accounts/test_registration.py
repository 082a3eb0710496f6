"""Registration, change and deletion by route: the holder-name check on every route, the
binding to the card authentication, and validation of the account."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from mynumber.accounts.interfaces import (
    AgencyActorRequired,
    AlreadyRegistered,
    CardAuthenticationOtherPerson,
    CardAuthenticationRequired,
    CardAuthenticationStale,
    CardAuthenticationUsed,
    DepositType,
    HolderNameMismatch,
    InvalidAccount,
    NameCheck,
    NotRegistered,
    Route,
    RouteNotPermitted,
    UnknownBranchCode,
)
from mynumber.accounts.services import AccountsServiceImpl
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.errors import DomainError
from tests.accounts.conftest import NOW, TAX, TODAY, Person, account, card


def test_portal_registration_is_stored_bound_to_the_card_authentication(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    auth = card(taro.id)
    made = accounts.register(taro.id, account("ヤマダ　タロウ"), Route.PORTAL, authentication=auth)
    assert made.holder_name == "ﾔﾏﾀﾞ ﾀﾛｳ" and made.deposit_type is DepositType.ORDINARY
    assert made.authentication_id == auth.authentication_id
    assert made.certificate_serial == auth.certificate_serial
    assert made.route is Route.PORTAL and made.known_on == TODAY
    assert made.actor == f"resident:{taro.id}" and made.name_check is NameCheck.OK
    assert accounts.registration(taro.id) == made
    assert [h.action for h in accounts.history(taro.id)] == ["registered"]


@pytest.mark.parametrize("route", [Route.PORTAL, Route.BANK, Route.TAX_RETURN])
@pytest.mark.parametrize(("holder", "reason"), [
    ("ﾔﾏﾀﾞ ﾊﾅｺ", "given_name_differs"),  # a family member's account
    ("ｽｽﾞｷ ｲﾁﾛｳ", "different_person"),
])
def test_an_account_in_another_name_is_refused_on_every_route_and_nothing_is_stored(
        accounts: AccountsServiceImpl, person: Person, route: Route, holder: str,
        reason: str) -> None:
    taro = person()
    with pytest.raises(HolderNameMismatch) as caught:
        accounts.register(taro.id, account(holder), route,
                          authentication=card(taro.id) if route.needs_card else None,
                          actor=TAX if route is Route.TAX_RETURN else "bank:8001")
    assert caught.value.code == "accounts_holder_name_mismatch"
    assert caught.value.extra["reason"] == reason
    assert caught.value.problem()["reason"] == reason
    assert accounts.registration(taro.id) is None and accounts.history(taro.id) == []


def test_a_change_to_a_relatives_account_is_refused_and_the_old_one_kept(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    before = accounts.register(taro.id, account(), Route.TAX_RETURN, actor=TAX)
    with pytest.raises(HolderNameMismatch):
        accounts.change(taro.id, account("ﾔﾏﾀﾞ ﾊﾅｺ", number="7654321"), Route.PORTAL,
                        authentication=card(taro.id))
    assert accounts.registration(taro.id) == before


def test_a_used_card_authentication_cannot_make_another_change(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    auth = card(taro.id)
    accounts.register(taro.id, account(), Route.PORTAL, authentication=auth)
    accounts.delete(taro.id, Route.PORTAL, authentication=card(taro.id))
    with pytest.raises(CardAuthenticationUsed):
        accounts.register(taro.id, account(), Route.PORTAL, authentication=auth)
    assert accounts.registration(taro.id) is None
    fresh = card(taro.id)
    accounts.register(taro.id, account(), Route.BANK, authentication=fresh, actor="bank:8001")
    with pytest.raises(CardAuthenticationUsed):
        accounts.change(taro.id, account(number="7654321"), Route.PORTAL, authentication=fresh)


def test_the_previous_persons_session_cannot_register_for_the_next_person(
        accounts: AccountsServiceImpl, person: Person) -> None:
    """The 2023 support terminal: the session still held the previous person's
    authentication when the next person registered."""
    first, second = person(), person("鈴木", "一郎", "スズキ", "イチロウ")
    left_open = card(first.id)
    with pytest.raises(CardAuthenticationOtherPerson):
        accounts.register(second.id, account("ｽｽﾞｷ ｲﾁﾛｳ"), Route.PORTAL,
                          authentication=left_open)
    assert accounts.registration(second.id) is None


@pytest.mark.parametrize("age", [dt.timedelta(minutes=5, seconds=1), dt.timedelta(hours=3),
                                 -dt.timedelta(minutes=2)])
def test_a_stale_or_future_card_authentication_is_refused(
        accounts: AccountsServiceImpl, person: Person, age: dt.timedelta) -> None:
    taro = person()
    with pytest.raises(CardAuthenticationStale):
        accounts.register(taro.id, account(), Route.PORTAL, authentication=card(
            taro.id, at=NOW - age))
    assert accounts.registration(taro.id) is None


def test_an_authentication_just_under_five_minutes_old_is_accepted(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    accounts.register(taro.id, account(), Route.PORTAL,
                      authentication=card(taro.id, at=NOW - dt.timedelta(minutes=4, seconds=59)))


@pytest.mark.parametrize("route", [Route.PORTAL, Route.BANK])
def test_card_routes_need_a_card_authentication(accounts: AccountsServiceImpl, person: Person,
                                                route: Route) -> None:
    taro = person()
    with pytest.raises(CardAuthenticationRequired):
        accounts.register(taro.id, account(), route, actor="bank:8001")


def test_agency_routes_need_an_agency_and_the_pension_route_proposes_only(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    with pytest.raises(AgencyActorRequired):
        accounts.register(taro.id, account(), Route.TAX_RETURN)
    with pytest.raises(RouteNotPermitted):
        accounts.register(taro.id, account(), Route.PENSION, actor="agency:x")
    made = accounts.register(taro.id, account(), Route.TAX_RETURN, actor=TAX)
    assert made.actor == TAX and made.authentication_id is None


def test_one_registration_per_person_changes_and_deletion_keep_history(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    accounts.register(taro.id, account(), Route.PORTAL, authentication=card(taro.id))
    with pytest.raises(AlreadyRegistered):
        accounts.register(taro.id, account(number="7654321"), Route.TAX_RETURN, actor=TAX)
    changed = accounts.change(taro.id, account(bank="8005", branch="101", number="0000042",
                                               deposit="普通"), Route.TAX_RETURN, actor=TAX)
    assert (changed.bank_code, changed.account_number, changed.route) == (
        "8005", "0000042", Route.TAX_RETURN)
    accounts.delete(taro.id, Route.PORTAL, authentication=card(taro.id))
    assert accounts.registration(taro.id) is None
    history = accounts.history(taro.id)
    assert [(h.action, h.bank_code, h.account_number) for h in history] == [
        ("registered", "8001", "1234567"), ("changed", "8005", "0000042"),
        ("deleted", "8005", "0000042")]
    with pytest.raises(NotRegistered):
        accounts.change(taro.id, account(), Route.TAX_RETURN, actor=TAX)
    with pytest.raises(NotRegistered):
        accounts.delete(taro.id, Route.TAX_RETURN, actor=TAX)


@pytest.mark.parametrize(("changes", "error", "field"), [
    ({"number": "123456"}, InvalidAccount, "account_number"),
    ({"number": "12345678"}, InvalidAccount, "account_number"),
    ({"number": "12345a7"}, InvalidAccount, "account_number"),
    ({"bank": "801"}, InvalidAccount, "bank_code"),
    ({"branch": "1a1"}, InvalidAccount, "branch_code"),
    ({"deposit": "checking"}, InvalidAccount, "deposit_type"),
    ({"bank": "9999"}, UnknownBranchCode, "bank_code"),
    ({"bank": "8002"}, UnknownBranchCode, "bank_code"),  # merged away in 2021
    ({"branch": "999"}, UnknownBranchCode, "branch_code"),
    ({"holder": "山田 太郎"}, InvalidAccount, "holder_name"),
    ({"holder": ""}, InvalidAccount, "holder_name"),
])
def test_invalid_accounts_are_refused_naming_the_field(
        accounts: AccountsServiceImpl, person: Person, changes: dict[str, str],
        error: type[DomainError], field: str) -> None:
    taro = person()
    with pytest.raises(error) as caught:
        accounts.register(taro.id, account(**changes), Route.TAX_RETURN, actor=TAX)
    assert caught.value.field == field
    assert "山田" not in caught.value.detail
    assert accounts.registration(taro.id) is None


def test_a_superseded_branch_is_refused_with_the_codes_in_use_now(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    with pytest.raises(UnknownBranchCode) as caught:
        accounts.register(taro.id, account(bank="8004", branch="101"), Route.TAX_RETURN,
                          actor=TAX)
    assert caught.value.field == "bank_code"
    with pytest.raises(UnknownBranchCode) as closed:
        accounts.register(taro.id, account(bank="8012", branch="101"), Route.TAX_RETURN,
                          actor=TAX)
    assert closed.value.field == "bank_code"


def test_full_width_digits_and_deposit_names_are_normalised(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    made = accounts.register(taro.id, account("やまだ たろう", bank="８００１", branch="１０１",
                                              number="０１２３４５６", deposit="貯蓄"),
                             Route.TAX_RETURN, actor=TAX)
    assert (made.bank_code, made.branch_code, made.account_number) == ("8001", "101", "0123456")
    assert made.deposit_type is DepositType.SAVINGS and made.holder_name == "ﾔﾏﾀﾞ ﾀﾛｳ"


def test_a_deceased_registrant_is_refused(accounts: AccountsServiceImpl, person: Person,
                                          container: Container, clerk: StaffPrincipal) -> None:
    taro = person()
    container.registry.register_death(clerk, taro.id, TODAY)
    with pytest.raises(DomainError) as caught:
        accounts.register(taro.id, account(), Route.TAX_RETURN, actor=TAX)
    assert caught.value.code == "accounts_registrant_unavailable"


def test_two_parallel_requests_with_one_authentication_exactly_one_succeeds(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    auth = card(taro.id)
    start = threading.Barrier(2)
    outcomes: list[object] = []
    lock = threading.Lock()

    def attempt(number: str) -> None:
        start.wait()
        try:
            result: object = accounts.register(taro.id, account(number=number), Route.PORTAL,
                                               authentication=auth)
        except DomainError as exc:
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in ("1111111", "2222222")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(outcomes) == 2 and len(errors) == 1
    assert isinstance(errors[0], CardAuthenticationUsed)
    assert len(accounts.history(taro.id)) == 1


def test_refusals_leave_an_audit_trace_without_the_account(
        accounts: AccountsServiceImpl, person: Person, container: Container) -> None:
    from sqlalchemy import select

    from mynumber.accounts import models as m

    taro = person()
    with pytest.raises(HolderNameMismatch):
        accounts.register(taro.id, account("ﾔﾏﾀﾞ ﾊﾅｺ"), Route.PORTAL, authentication=card(taro.id))
    with container.databases.unit_of_work("accounts") as session:
        events = session.scalars(select(m.AuditEvent)).all()
        assert [(e.tag, e.reason, e.details) for e in events] == [
            ("accounts:registration:register_refused", "accounts_holder_name_mismatch",
             {"holder_name_reason": "given_name_differs"})]
        assert session.scalars(select(m.UsedAuthentication)).all() == []

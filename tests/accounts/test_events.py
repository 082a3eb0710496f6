"""What the registry's events change: a name change flags the registration for re-check when
the holder name no longer matches; a death deletes it, with history."""

from __future__ import annotations

from mynumber.accounts.events import TYPES, handler
from mynumber.accounts.interfaces import SUBSCRIBER, NameCheck, Route
from mynumber.accounts.services import AccountsServiceImpl
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from tests.accounts.conftest import TAX, TODAY, Feed, Person, account, card


def test_a_name_change_flags_the_registration_for_recheck(
        container: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl,
        person: Person, feed: Feed) -> None:
    hanako = person("山田", "花子", "ヤマダ", "ハナコ")
    other = person("鈴木", "一郎", "スズキ", "イチロウ")
    accounts.register(hanako.id, account("ﾔﾏﾀﾞ ﾊﾅｺ"), Route.PORTAL,
                      authentication=card(hanako.id))
    accounts.register(other.id, account("ｽｽﾞｷ ｲﾁﾛｳ", number="7654321"), Route.TAX_RETURN,
                      actor=TAX)
    feed.deliver()  # the births
    container.registry.change_name(clerk, hanako.id, "佐藤", "花子", "サトウ", "ハナコ", TODAY)
    feed.deliver()
    flagged = accounts.registration(hanako.id)
    assert flagged is not None and flagged.name_check is NameCheck.RECHECK
    assert flagged.name_check_reason == "family_name_differs"
    assert accounts.audit_report().rechecks == [(hanako.id, "family_name_differs")]
    assert [h.action for h in accounts.history(hanako.id)] == ["registered", "flagged"]
    unchanged = accounts.registration(other.id)
    assert unchanged is not None and unchanged.name_check is NameCheck.OK

    # Delivered again (at least once): nothing more is written.
    handler(accounts, container.registry)(container.registry.outbox.read(0, 100))
    assert [h.action for h in accounts.history(hanako.id)] == ["registered", "flagged"]
    # The bank's name changed too: the new registration matches.
    accounts.change(hanako.id, account("ｻﾄｳ ﾊﾅｺ"), Route.PORTAL, authentication=card(hanako.id))
    assert accounts.audit_report().rechecks == []


def test_a_death_deletes_the_registration_with_history(
        container: Container, clerk: StaffPrincipal, accounts: AccountsServiceImpl,
        person: Person, feed: Feed) -> None:
    taro = person()
    accounts.register(taro.id, account(), Route.TAX_RETURN, actor=TAX)
    container.registry.register_death(clerk, taro.id, TODAY)
    feed.deliver()
    assert accounts.registration(taro.id) is None
    history = accounts.history(taro.id)
    assert [(h.action, h.reason, h.account_number) for h in history] == [
        ("registered", None, "1234567"), ("deleted", "death", "1234567")]
    feed.deliver()
    assert len(accounts.history(taro.id)) == 2


def test_the_app_delivers_registry_events_to_this_context(container: Container) -> None:
    [wired] = [s for s in container.events.subscribers if s.name == SUBSCRIBER]
    assert wired.types == TYPES

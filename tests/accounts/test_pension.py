"""年金受給者の特例: without a 不同意 within 45 days the pension account is registered, once;
accounts not in the person's name, under a 旧氏, or whose first transfer bounced are not."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from mynumber.accounts.interfaces import (
    AlreadyRegistered,
    ProposalClosed,
    ProposalNotFound,
    ProposalState,
    Route,
)
from mynumber.accounts.services import AccountsServiceImpl
from tests.accounts.conftest import PENSION, TAX, Person, account

PROPOSED = dt.date(2025, 4, 1)
DEADLINE = PROPOSED + dt.timedelta(days=45)


def test_a_proposal_without_objection_is_registered_after_its_deadline(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    proposal = accounts.propose_pension(taro.id, account(), PROPOSED, actor=PENSION)
    assert proposal.state is ProposalState.PENDING and proposal.deadline == DEADLINE
    assert accounts.finalize_pensions(DEADLINE).registered == []  # the last day to object
    assert accounts.registration(taro.id) is None
    done = accounts.finalize_pensions(DEADLINE + dt.timedelta(days=1))
    assert done.registered == [taro.id] and done.skipped == []
    made = accounts.registration(taro.id)
    assert made is not None and made.route is Route.PENSION and made.actor == PENSION
    assert [(h.action, h.reason) for h in accounts.history(taro.id)] == [
        ("registered", "pension_no_objection")]
    assert accounts.finalize_pensions(DEADLINE + dt.timedelta(days=2)).registered == []


def test_an_objection_within_the_period_keeps_the_account_unregistered(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    accounts.propose_pension(taro.id, account(), PROPOSED, actor=PENSION)
    objected = accounts.object_pension(taro.id, DEADLINE)
    assert objected.state is ProposalState.OBJECTED and objected.objected_at is not None
    assert accounts.finalize_pensions(DEADLINE + dt.timedelta(days=1)).registered == []
    assert accounts.registration(taro.id) is None
    with pytest.raises(ProposalNotFound):
        accounts.object_pension(taro.id, DEADLINE)


def test_an_objection_after_the_deadline_is_refused(accounts: AccountsServiceImpl,
                                                    person: Person) -> None:
    taro = person()
    accounts.propose_pension(taro.id, account(), PROPOSED, actor=PENSION)
    with pytest.raises(ProposalClosed):
        accounts.object_pension(taro.id, DEADLINE + dt.timedelta(days=1))


@pytest.mark.parametrize(("holder", "flags", "reason"), [
    ("ﾔﾏﾀﾞ ﾊﾅｺ", {}, "holder_name_given_name_differs"),  # the spouse's account
    ("ｻﾄｳ ﾀﾛｳ", {}, "holder_name_family_name_differs"),
    ("ﾔﾏﾀﾞ ﾀﾛｳ", {"former_name": True}, "former_name"),
    ("ﾔﾏﾀﾞ ﾀﾛｳ", {"first_transfer_bounced": True}, "first_transfer_bounced"),
])
def test_excluded_proposals_are_skipped_with_a_recorded_reason(
        accounts: AccountsServiceImpl, person: Person, holder: str, flags: dict[str, bool],
        reason: str) -> None:
    taro = person()
    accounts.propose_pension(taro.id, account(holder), PROPOSED, actor=PENSION, **flags)
    done = accounts.finalize_pensions(DEADLINE + dt.timedelta(days=1))
    assert done.registered == [] and done.skipped == [(taro.id, reason)]
    assert accounts.registration(taro.id) is None and accounts.history(taro.id) == []
    [proposal] = accounts.proposals(taro.id)
    assert proposal.state is ProposalState.SKIPPED and proposal.skip_reason == reason


def test_a_bounced_first_transfer_reported_later_is_skipped(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    accounts.propose_pension(taro.id, account(), PROPOSED, actor=PENSION)
    accounts.mark_bounced(taro.id)
    done = accounts.finalize_pensions(DEADLINE + dt.timedelta(days=1))
    assert done.skipped == [(taro.id, "first_transfer_bounced")]


def test_a_person_who_registered_meanwhile_keeps_their_own_account(
        accounts: AccountsServiceImpl, person: Person) -> None:
    taro = person()
    accounts.propose_pension(taro.id, account(), PROPOSED, actor=PENSION)
    own = accounts.register(taro.id, account(number="7654321"), Route.TAX_RETURN, actor=TAX)
    done = accounts.finalize_pensions(DEADLINE + dt.timedelta(days=1))
    assert done.skipped == [(taro.id, "already_registered")]
    assert accounts.registration(taro.id) == own
    with pytest.raises(AlreadyRegistered):
        accounts.propose_pension(taro.id, account(), DEADLINE, actor=PENSION)


def test_two_overlapping_runs_finalise_each_proposal_exactly_once(
        accounts: AccountsServiceImpl, person: Person) -> None:
    people = [person() for _ in range(12)]
    for p in people:
        accounts.propose_pension(p.id, account(number=f"{p.id:07d}"), PROPOSED, actor=PENSION)
    start = threading.Barrier(2)
    results: list[list[int]] = []
    skipped: list[tuple[int, str]] = []
    failures: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            done = accounts.finalize_pensions(DEADLINE + dt.timedelta(days=1))
            results.append(done.registered)
            skipped.extend(done.skipped)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    assert sorted(results[0] + results[1]) == sorted(p.id for p in people)
    assert not set(results[0]) & set(results[1])
    assert skipped == []  # the second run never saw a proposal the first one had taken
    for p in people:
        assert [h.action for h in accounts.history(p.id)] == ["registered"]
        assert [q.state for q in accounts.proposals(p.id)] == [ProposalState.REGISTERED]

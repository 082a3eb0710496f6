"""The portal service against the real contexts: card login (JPKI verification, revocation,
one-use challenges), sessions on shared terminals, わたしの情報 through the network, やりとり履歴
and its independent inclusion check, お知らせ, the 児童手当 現況届 with and without the number,
proxies."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from mynumber.agencies.interfaces import QueryResult
from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.chip import WrongPin
from mynumber.network.interfaces import (
    ExchangeQuery,
    IndividualNumberInAnswer,
    NotPermitted,
    Outcome,
)
from mynumber.portal import merkle
from mynumber.portal.interfaces import (
    PORTAL_AGENCY,
    SELF_INFORMATION_TASK,
    ChildAllowanceForm,
    LoginFailed,
    NotAProxy,
    NoticeAlreadyAnswered,
    NoticeNotFound,
    NoticeState,
    PortalError,
    ProxyKind,
    RecordNotFound,
    SessionExpired,
    UnknownScope,
)
from tests.conftest import new_resident
from tests.portal.conftest import (
    AUTH_PIN,
    CITY,
    KYOKAI,
    MHLW,
    POLICE,
    CardHolder,
    documents,
    hold,
    issue_card_holder,
    login,
    resident_record,
)

#: A 現況届 names at least one child.
CHILD = {"name": "鈴木 花子", "birth_date": "2018-05-05"}


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


def _account_row(container: Container, account_id: int) -> dict[str, object]:
    with container.databases.unit_of_work("portal") as session:
        row = session.execute(text("SELECT * FROM accounts WHERE id = :i"),
                              {"i": account_id}).mappings().one()
        return dict(row)


def _ward(container: Container, clerk: StaffPrincipal) -> int:
    """An adult ward without a card."""
    details = new_resident(given_name="花子", given_name_kana="ハナコ",
                           birth_date=dt.date(1940, 5, 5))
    return container.registry.register_birth(clerk, details, details.birth_date).id


# --- login ----------------------------------------------------------------------------------------


def test_login_links_an_account_by_pairwise_id_only(container: Container,
                                                     card_holder: CardHolder) -> None:
    first = login(container, card_holder)
    assert container.portal.session(first.token).account_id == first.account_id
    assert first.acting_for == first.account_id and first.proxy_kind is None
    row = _account_row(container, first.account_id)
    rp = container.portal.relying_party_id()
    assert card_holder.record.auth_serial is not None
    assert row["subject"] == container.jpki.pairwise_id(rp, card_holder.record.auth_serial)
    assert str(row["address_number"]).startswith("P") and row["municipality_code"] == "131041"
    assert container.agencies.agency_code(PORTAL_AGENCY, str(row["address_number"])) == \
        row["agency_code"]
    # The next login finds the same account; nothing holds the serial or the number.
    second = login(container, card_holder)
    assert second.account_id == first.account_id and second.token != first.token
    dump = _dump(container, "portal")
    assert card_holder.number not in dump
    assert str(card_holder.record.auth_serial) not in dump


def test_wrong_pin_counts_down_on_the_card_and_the_challenge_stays_unused(
    container: Container, card_holder: CardHolder,
) -> None:
    challenge = container.portal.begin_login()
    before = card_holder.chip.remaining_tries("user_auth")
    with pytest.raises(WrongPin):
        card_holder.chip.sign("auth", "0000", challenge.challenge)
    assert card_holder.chip.remaining_tries("user_auth") == before - 1
    signature = card_holder.chip.sign("auth", AUTH_PIN, challenge.challenge)
    session = container.portal.complete_login(challenge.challenge_id, signature,
                                              card_holder.chip.certificate("auth").decode())
    assert container.portal.session(session.token).account_id == session.account_id


def test_a_suspended_card_is_refused_at_once(container: Container, clerk: StaffPrincipal,
                                             card_holder: CardHolder) -> None:
    login(container, card_holder)  # good before: the status is not cached
    container.card.suspend(clerk, card_holder.card_id)
    with pytest.raises(LoginFailed) as refused:
        login(container, card_holder)
    assert refused.value.extra["reason"] == "revoked"
    with container.databases.unit_of_work("portal") as session:
        reasons = session.execute(text(
            "SELECT reason FROM audit_events WHERE tag = 'portal:login:refused'")).scalars().all()
    assert reasons == ["revoked"]


def test_a_new_holder_with_a_suspended_card_is_not_linked(container: Container,
                                                          clerk: StaffPrincipal,
                                                          card_holder: CardHolder) -> None:
    container.card.suspend(clerk, card_holder.card_id)
    with pytest.raises(LoginFailed) as refused:
        login(container, card_holder)
    assert refused.value.extra["reason"] == "revoked"
    with container.databases.unit_of_work("portal") as session:
        assert session.execute(text("SELECT count(*) FROM accounts")).scalar() == 0


def test_a_challenge_is_used_once_even_when_the_login_fails(
    container: Container, card_holder: CardHolder,
) -> None:
    challenge = container.portal.begin_login()
    certificate = card_holder.chip.certificate("auth").decode()
    wrong = card_holder.chip.sign("auth", AUTH_PIN, b"another challenge")
    with pytest.raises(LoginFailed) as bad:
        container.portal.complete_login(challenge.challenge_id, wrong, certificate)
    assert bad.value.extra["reason"] == "bad_signature"
    good = card_holder.chip.sign("auth", AUTH_PIN, challenge.challenge)
    with pytest.raises(LoginFailed) as reused:
        container.portal.complete_login(challenge.challenge_id, good, certificate)
    assert reused.value.extra["reason"] == "challenge_used"
    with pytest.raises(LoginFailed) as unknown:
        container.portal.complete_login("no-such-challenge", good, certificate)
    assert unknown.value.extra["reason"] == "unknown_challenge"


def test_an_expired_challenge_is_refused(container: Container,
                                         card_holder: CardHolder) -> None:
    portal = container.portal
    challenge = portal.begin_login()
    assert len(challenge.challenge) == 32
    signature = card_holder.chip.sign("auth", AUTH_PIN, challenge.challenge)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    portal.clock = lambda: later
    with pytest.raises(LoginFailed) as expired:
        portal.complete_login(challenge.challenge_id, signature,
                              card_holder.chip.certificate("auth").decode())
    assert expired.value.extra["reason"] == "challenge_expired"


def test_a_signing_certificate_is_no_login(container: Container,
                                           card_holder: CardHolder) -> None:
    challenge = container.portal.begin_login()
    signature = card_holder.chip.sign("signing", "ABC123", challenge.challenge)
    with pytest.raises(LoginFailed) as refused:
        container.portal.complete_login(
            challenge.challenge_id, signature,
            card_holder.chip.certificate("signing", "ABC123").decode())
    # Its issuer is not among the auth trust anchors the portal was configured with.
    assert refused.value.extra["reason"] in {"wrong_kind", "untrusted_chain"}


# --- sessions -------------------------------------------------------------------------------------


def test_a_new_login_ends_the_previous_session_and_inherits_nothing(
    container: Container, clerk: StaffPrincipal, card_holder: CardHolder,
) -> None:
    portal = container.portal
    ward = _ward(container, clerk)
    proxy = portal.register_proxy(clerk.actor, ward, card_holder.resident.id,
                                  ProxyKind.ADULT_GUARDIAN)
    first = login(container, card_holder)
    acting = portal.act_for(first.token, proxy.principal_account_id)
    assert acting.acting_for == proxy.principal_account_id
    assert portal.session(first.token).acting_for == proxy.principal_account_id
    second = login(container, card_holder, previous_token=first.token)
    with pytest.raises(SessionExpired):
        portal.session(first.token)
    fresh = portal.session(second.token)
    assert fresh.acting_for == fresh.account_id and fresh.proxy_kind is None
    assert fresh.csrf_token != first.csrf_token and fresh.session_id != first.session_id
    # Even a failed login ends the terminal's previous session first.
    challenge = portal.begin_login()
    with pytest.raises(LoginFailed):
        portal.complete_login(challenge.challenge_id, b"x" * 256,
                              card_holder.chip.certificate("auth").decode(),
                              previous_token=second.token)
    with pytest.raises(SessionExpired):
        portal.session(second.token)


def test_idle_and_absolute_timeouts_end_sessions(container: Container,
                                                 card_holder: CardHolder) -> None:
    portal = container.portal
    start = dt.datetime.now(dt.UTC)
    now = [start]
    portal.clock = lambda: now[0]
    session = login(container, card_holder)
    assert session.expires_at == start + dt.timedelta(minutes=30)
    # Each use within 10 minutes keeps it alive, up to the absolute 30 minutes.
    for minutes in (9, 18, 27):
        now[0] = start + dt.timedelta(minutes=minutes)
        assert portal.session(session.token).idle_until <= session.expires_at
    now[0] = start + dt.timedelta(minutes=30)
    with pytest.raises(SessionExpired) as absolute:
        portal.session(session.token)
    assert absolute.value.extra["reason"] == "expired"
    idle = login(container, card_holder)
    now[0] += dt.timedelta(minutes=10)
    with pytest.raises(SessionExpired) as ended:
        portal.session(idle.token)
    assert ended.value.extra["reason"] == "idle"
    with pytest.raises(SessionExpired):  # and it stays ended
        portal.session(idle.token)


def test_logout_ends_the_session(container: Container, card_holder: CardHolder) -> None:
    session = login(container, card_holder)
    container.portal.logout(session.token)
    with pytest.raises(SessionExpired):
        container.portal.session(session.token)
    with pytest.raises(SessionExpired):
        container.portal.session("not-a-token")


# --- わたしの情報 and やりとり履歴 ----------------------------------------------------------------


def test_my_information_is_fetched_through_the_network_with_the_portals_code(
    container: Container, card_holder: CardHolder,
) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    hold(container, card_holder.number, KYOKAI, "medical_insurance",
         {"insurer": "全国健康保険協会", "status": "insured"}, "K-1")
    session = login(container, card_holder)
    basic = container.portal.my_information(session, "basic_four")
    assert basic.outcome == "provided" and basic.provider_id == CITY
    assert set(basic.data or {}) == {"name", "name_kana", "birth_date", "sex", "address"}
    insurance = container.portal.my_information(session, "medical_insurance")
    assert insurance.provider_id == KYOKAI and (insurance.data or {})["status"] == "insured"
    container.agencies.ensure_registered("japan_pension_service")
    pension = container.portal.my_information(session, "pension")
    assert pension.outcome == "not_held" and pension.data is None
    with pytest.raises(UnknownScope):
        container.portal.my_information(session, "everything")
    history = container.portal.history(session)
    serials = {e.record.serial: e.record for e in history}
    for result in (basic, insurance, pension):
        record = serials[result.serial]
        assert record.requester_id == PORTAL_AGENCY
        assert record.task_id == SELF_INFORMATION_TASK
    assert container.portal.account(session.account_id).display_name == \
        card_holder.resident.name
    actions = [a.action for a in container.portal.activities(session)]
    assert actions.count("view_information") == 3
    for context in ("portal",):
        assert card_holder.number not in _dump(container, context)


def test_history_records_verify_against_the_signed_head(container: Container,
                                                        card_holder: CardHolder) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    session = login(container, card_holder)
    results = [container.portal.my_information(session, "basic_four") for _ in range(3)]
    pending = container.portal.verify_record(session, results[0].serial)
    assert not pending.verified and "not yet integrated" in pending.reason
    container.network_log.integrate()
    for result in results:
        verdict = container.portal.verify_record(session, result.serial)
        assert verdict.verified, verdict.reason
        assert verdict.leaf_index is not None and verdict.tree_size >= 3
        assert verdict.root_hash == container.network_log.latest_head().root_hash.hex()
    with pytest.raises(RecordNotFound):
        container.portal.verify_record(session, "0" * 32)
    with pytest.raises(RecordNotFound):
        container.portal.verify_record(session, "../../etc")


class _Tampered:
    """The real log, with one thing changed."""

    def __init__(self, log: object, **changes: object) -> None:
        self._log = log
        self._changes = changes
        self.public_key = getattr(log, "public_key")
        self.key_name = getattr(log, "key_name")

    def latest_head(self):  # type: ignore[no-untyped-def]
        head = self._log.latest_head()  # type: ignore[attr-defined]
        if "root" in self._changes:
            return dataclasses.replace(head, root_hash=self._changes["root"])
        if "checkpoint" in self._changes:
            return dataclasses.replace(head, checkpoint=self._changes["checkpoint"](head))
        return head

    def inclusion_proof(self, index, tree_size=None):  # type: ignore[no-untyped-def]
        proof = self._log.inclusion_proof(index, tree_size)  # type: ignore[attr-defined]
        if "path" in self._changes:
            return dataclasses.replace(proof, path=self._changes["path"](proof.path))
        return proof

    def entries(self, start, end):  # type: ignore[no-untyped-def]
        entries = self._log.entries(start, end)  # type: ignore[attr-defined]
        if "entry" in self._changes:
            return [dataclasses.replace(e, entry=self._changes["entry"](e.entry))
                    for e in entries]
        return entries


def test_verification_detects_a_tampered_entry_proof_root_or_checkpoint(
    container: Container, card_holder: CardHolder,
) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    session = login(container, card_holder)
    serials = [container.portal.my_information(session, "basic_four").serial
               for _ in range(5)]
    container.network_log.integrate()
    real = container.network_log
    serial = serials[2]
    assert container.portal.verify_record(session, serial).verified

    def later_time(entry: bytes) -> bytes:
        fields = json.loads(entry)
        fields["time"] = "2000-01-01T00:00:00+00:00"
        return json.dumps(fields, ensure_ascii=False, sort_keys=True,
                          separators=(",", ":")).encode()

    def forged_path(path: tuple[bytes, ...]) -> tuple[bytes, ...]:
        return (bytes(32), *path[1:])

    def resigned(head):  # type: ignore[no-untyped-def]
        lines = head.checkpoint.split("\n")
        lines[-2] = lines[-2][:-8] + ("AAAAAAA=" if not lines[-2].endswith("AAAAAAA=")
                                      else "BBBBBBB=")
        return "\n".join(lines)

    cases = {
        "entry": later_time,
        "path": forged_path,
        "root": bytes(32),
        "checkpoint": resigned,
    }
    for name, change in cases.items():
        container.portal.access_log = _Tampered(real, **{name: change})
        verdict = container.portal.verify_record(session, serial)
        assert not verdict.verified, name
        assert verdict.reason, name
    container.portal.access_log = real
    assert container.portal.verify_record(session, serial).verified


def test_merkle_check_agrees_with_the_log_for_every_position(container: Container,
                                                           card_holder: CardHolder) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    session = login(container, card_holder)
    for _ in range(7):
        container.portal.my_information(session, "basic_four")
    container.network_log.integrate()
    head = container.network_log.latest_head()
    for index in range(head.size):
        entry = container.network_log.entries(index, index + 1)[0].entry
        proof = container.network_log.inclusion_proof(index, head.size)
        assert merkle.verify_inclusion(entry, index, head.size, proof.path, head.root_hash)
        assert not merkle.verify_inclusion(entry + b" ", index, head.size, proof.path,
                                           head.root_hash)
        if head.size > 1:
            assert not merkle.verify_inclusion(entry, (index + 1) % head.size, head.size,
                                               proof.path, head.root_hash)
    assert merkle.checkpoint_matches(head.checkpoint, container.network_log.key_name,
                                     container.network_log.public_key, head.size,
                                     head.root_hash)
    assert not merkle.checkpoint_matches(head.checkpoint, container.network_log.key_name,
                                         bytes(32), head.size, head.root_hash)


def test_a_restricted_record_appears_only_after_its_deferral(
    container: Container, card_holder: CardHolder,
) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    container.agencies.ensure_registered(POLICE)
    container.agencies.enrol_person(POLICE, "police-1", card_holder.number)
    investigation = container.agencies.query(POLICE, "police-1",
                                             "extra-criminal-investigation", CITY,
                                             "resident_record")
    assert investigation.outcome is Outcome.PROVIDED
    session = login(container, card_holder)
    assert investigation.serial not in {e.record.serial
                                        for e in container.portal.history(session)}
    days = container.settings.restricted_disclosure_days
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=days + 1)
    container.network.clock = lambda: later
    shown = {e.record.serial: e.record for e in container.portal.history(session)}
    assert investigation.serial in shown and shown[investigation.serial].restricted


# --- お知らせ and the 現況届 ----------------------------------------------------------------------


def _household(container: Container, clerk: StaffPrincipal) -> tuple[CardHolder, list[str]]:
    """A 世帯主 with two children under 18 and one adult child, and what the city holds."""
    parent = issue_card_holder(container, clerk, family_name="鈴木", family_name_kana="スズキ",
                               given_name="一郎", given_name_kana="イチロウ",
                               birth_date=dt.date(1985, 6, 1))
    today = dt.date.today()
    children = []
    for given, kana, born in (("二郎", "ジロウ", today.replace(year=today.year - 8)),
                              ("三子", "ミツコ", today.replace(year=today.year - 2)),
                              ("長男", "チョウナン", dt.date(today.year - 20, 1, 1))):
        child = container.registry.register_birth(clerk, new_resident(
            family_name="鈴木", family_name_kana="スズキ", given_name=given,
            given_name_kana=kana, birth_date=born,
            household_id=parent.resident.household_id, relationship="子"), born)
        children.append(child)
    household = [{"name": c.name, "birth_date": c.birth_date.isoformat(), "relationship": "子"}
                 for c in children]
    hold(container, parent.number, CITY, "resident_record", resident_record(parent, household),
         "C-10")
    container.agencies.put_copy(CITY, "C-10", "local_tax", {
        "fiscal_year": today.year - 1, "taxable_income": 4_200_000, "municipal_tax": 420_000,
        "exempt": False})
    container.agencies.put_copy(CITY, "C-10", "child_allowance", {
        "status": "receiving", "children": 2, "monthly_amount": 25_000})
    hold(container, parent.number, KYOKAI, "medical_insurance",
         {"insurer": "全国健康保険協会", "status": "insured"}, "K-10")
    return parent, [c.name for c in children[:2]]


def _notice(container: Container, address_number: str = "C-10") -> int:
    code = container.agencies.agency_code(CITY, address_number)
    notice = container.portal.send_notice(CITY, code, "child_allowance_status_report",
                                          "児童手当 現況届のお願い", "現況届を提出してください。")
    return notice.notice_id


def test_a_notice_waits_for_the_account_and_is_read_and_answered(
    container: Container, clerk: StaffPrincipal,
) -> None:
    parent, _ = _household(container, clerk)
    notice_id = _notice(container)  # before the resident ever logged in
    session = login(container, parent)
    [notice] = container.portal.notices(session)
    assert notice.notice_id == notice_id and notice.state is NoticeState.UNREAD
    assert notice.sender_id == CITY and notice.sender_name
    read = container.portal.read_notice(session, notice_id)
    assert read.state is NoticeState.READ and read.read_at is not None
    other = issue_card_holder(container, clerk)
    with pytest.raises(NoticeNotFound):  # someone else's notice
        container.portal.read_notice(login(container, other), notice_id)
    with pytest.raises(NotPermitted) as unknown:  # an agency code nobody has
        container.portal.send_notice(CITY, "X" * 26, "information", "t", "b")
    assert unknown.value.status == 403 and unknown.value.field == "subject_code"
    with pytest.raises(PortalError):
        container.portal.send_notice(CITY, "abc", "Bad Kind!", "t", "b")


def test_child_allowance_with_the_number_is_filled_from_the_network(
    container: Container, clerk: StaffPrincipal,
) -> None:
    parent, under_18 = _household(container, clerk)
    notice_id = _notice(container)
    session = login(container, parent)
    form = container.portal.child_allowance_form(session, notice_id, use_number=True)
    assert form.applicant_name == parent.resident.name
    assert form.address == parent.resident.address
    assert form.taxable_income == 4_200_000 and form.insurance_status == "insured"
    assert sorted(c["name"] for c in form.children) == sorted(under_18)
    assert len(form.prefilled_serials) == 4
    history = {e.record.serial for e in container.portal.history(session)}
    assert set(form.prefilled_serials) <= history
    application = container.portal.submit_child_allowance(session, notice_id, True, form, [])
    assert application.uses_number and application.state.value == "submitted"
    assert application.agency_id == CITY and application.declined_serial is None
    assert application.data["children"] and application.by_proxy is None
    [notice] = container.portal.notices(session)
    assert notice.state is NoticeState.ANSWERED
    assert notice.application_id == application.application_id
    with pytest.raises(NoticeAlreadyAnswered):
        container.portal.submit_child_allowance(session, notice_id, True, form, [])
    assert [a.application_id for a in container.portal.applications(session)] == \
        [application.application_id]


def test_child_allowance_without_the_number_needs_documents_and_links_nobody(
    container: Container, clerk: StaffPrincipal,
) -> None:
    parent, _ = _household(container, clerk)
    notice_id = _notice(container)
    session = login(container, parent)
    history_before = {e.record.serial for e in container.portal.history(session)}
    blank = container.portal.child_allowance_form(session, notice_id, use_number=False)
    assert blank == ChildAllowanceForm("", "", None, None, (), ())
    assert {e.record.serial for e in container.portal.history(session)} == history_before
    filled = dataclasses.replace(blank, applicant_name="鈴木 一郎", address="東京都新宿区",
                                 children=({"name": "鈴木 二郎", "birth_date": "2018-01-01"},))
    with pytest.raises(PortalError) as missing:
        container.portal.submit_child_allowance(session, notice_id, False, filled, [])
    assert missing.value.field == "document_tax_certificate"
    application = container.portal.submit_child_allowance(
        session, notice_id, False, filled, documents())
    assert not application.uses_number and application.state.value == "submitted"
    kinds = ["tax_certificate", "health_insurance_copy", "child_resident_record"]
    assert list(application.documents) == kinds
    assert [a.filename for a in application.attachments] == \
        ["課税証明書.pdf", "hoken.png", "juminhyo.jpg"]
    assert application.declined_serial is not None
    # The core recorded a declined linkage about nobody: it is not in the person's history.
    container.network_log.integrate()
    index = container.network_log.index_of(application.declined_serial)
    assert index is not None
    entry = json.loads(container.network_log.entries(index, index + 1)[0].entry)
    assert entry["outcome"] == Outcome.DECLINED.value and entry["requester"] == CITY
    assert entry["documents"] == kinds
    assert {e.record.serial for e in container.portal.history(session)} == history_before
    assert container.portal.notices(session)[0].state is NoticeState.ANSWERED


# --- proxies --------------------------------------------------------------------------------------


def test_a_guardian_acts_for_the_ward_and_every_action_says_so(
    container: Container, clerk: StaffPrincipal, card_holder: CardHolder,
) -> None:
    portal = container.portal
    ward_id = _ward(container, clerk)
    ward_number = container.registry.reveal_number(clerk, ward_id, "test")
    proxy = portal.register_proxy(clerk.actor, ward_id, card_holder.resident.id,
                                  ProxyKind.ADULT_GUARDIAN, principal_name="山田 花子")
    assert proxy.registered_by == clerk.actor and proxy.principal_name == "山田 花子"
    # The ward's account is the one the ward's own card would log into (same pairwise id),
    # enrolled at the portal agency; the ward's city holds its records under the same person.
    ward_account = _account_row(container, proxy.principal_account_id)
    hold(container, ward_number, CITY, "resident_record",
         {"name": "山田 花子", "household": []}, "C-W")
    session = login(container, card_holder)
    assert [p.principal_account_id for p in portal.principals(session)] == \
        [proxy.principal_account_id]
    acting = portal.act_for(session.token, proxy.principal_account_id)
    assert acting.proxy_kind is ProxyKind.ADULT_GUARDIAN
    info = portal.my_information(acting, "basic_four")
    assert (info.data or {})["name"] == "山田 花子"
    history = portal.history(acting)
    by_serial = {e.record.serial: e for e in history}
    assert by_serial[info.serial].by_proxy == "adult_guardian"
    notices_code = container.agencies.agency_code(CITY, "C-W")
    portal.send_notice(CITY, notices_code, "information", "お知らせ", "本文")
    [notice] = portal.notices(acting)
    portal.read_notice(acting, notice.notice_id)
    ward_activities = portal.activities(acting)
    by_proxy = [a for a in ward_activities if a.actor_account_id == session.account_id]
    assert {a.action for a in by_proxy} >= {"act_for", "view_information", "view_history",
                                            "read_notice"}
    assert all(a.proxy_kind is ProxyKind.ADULT_GUARDIAN for a in by_proxy)
    assert all(a.subject_account_id == proxy.principal_account_id for a in by_proxy)
    # The guardian's own data is not the ward's.
    back = portal.act_for(session.token, None)
    assert back.acting_for == session.account_id and portal.notices(back) == []
    assert ward_account["address_number"] != _account_row(container, session.account_id)[
        "address_number"]
    assert ward_number not in _dump(container, "portal")


def test_only_a_live_proxy_may_act_for_someone(
    container: Container, clerk: StaffPrincipal, card_holder: CardHolder,
) -> None:
    portal = container.portal
    ward_id = _ward(container, clerk)
    stranger = issue_card_holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    proxy = portal.register_proxy(clerk.actor, ward_id, card_holder.resident.id,
                                  ProxyKind.ADULT_GUARDIAN)
    other = login(container, stranger)
    with pytest.raises(NotAProxy):
        portal.act_for(other.token, proxy.principal_account_id)
    guardian = login(container, card_holder)
    acting = portal.act_for(guardian.token, proxy.principal_account_id)
    portal.revoke_proxy(clerk.actor, proxy.proxy_id)
    with pytest.raises(NotAProxy):  # the old session value no longer acts for the ward
        portal.history(acting)
    assert portal.session(guardian.token).acting_for == guardian.account_id
    with pytest.raises(NotAProxy):
        portal.act_for(guardian.token, proxy.principal_account_id)
    assert portal.principals(guardian) == []
    with pytest.raises(PortalError):
        portal.register_proxy(clerk.actor, ward_id, ward_id, ProxyKind.ADULT_GUARDIAN)


def test_a_forged_session_value_cannot_act_for_a_stranger(
    container: Container, clerk: StaffPrincipal, card_holder: CardHolder,
) -> None:
    other = issue_card_holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    mine = login(container, card_holder)
    theirs = login(container, other)
    forged = dataclasses.replace(mine, acting_for=theirs.account_id)
    with pytest.raises(NotAProxy):
        container.portal.notices(forged)


def test_a_proxy_registration_meets_a_later_card_login(
    container: Container, clerk: StaffPrincipal, card_holder: CardHolder,
) -> None:
    guardian = issue_card_holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    proxy = container.portal.register_proxy(clerk.actor, card_holder.resident.id,
                                            guardian.resident.id,
                                            ProxyKind.LEGAL_REPRESENTATIVE)
    assert login(container, card_holder).account_id == proxy.principal_account_id
    assert login(container, guardian).account_id == proxy.proxy_account_id


# --- the self-information API's side --------------------------------------------------------------


def test_fetch_for_client_goes_through_the_network_and_is_recorded(
    container: Container, card_holder: CardHolder,
) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    session = login(container, card_holder)
    result = container.portal.fetch_for_client(session.account_id, "basic_four", "client-1",
                                               "家計簿アプリ")
    assert result.outcome == "provided" and (result.data or {})["name"]
    [release] = [a for a in container.portal.activities(session) if a.action == "release"]
    assert "家計簿アプリ" in release.detail
    assert result.serial in {e.record.serial for e in container.portal.history(session)}
    with pytest.raises(UnknownScope):
        container.portal.fetch_for_client(session.account_id, "nope", "client-1", "x")


# --- the demo seed --------------------------------------------------------------------------------


def test_the_demo_seed_gives_cards_a_notice_a_guardian_and_history(
    container: Container,
) -> None:
    from mynumber.portal.seed import seed_portal_demo

    result = seed_portal_demo(container)
    assert not result.skipped and len(result.cards) == 3 and result.exchanges >= 2
    parent_card, guardian_card, ward_card = result.cards
    chips = {c.card_id: container.card.open_card(c.card_id) for c in result.cards}

    def card_login(card_id: str):  # type: ignore[no-untyped-def]
        challenge = container.portal.begin_login()
        chip = chips[card_id]
        return container.portal.complete_login(
            challenge.challenge_id, chip.sign("auth", "1234", challenge.challenge),
            chip.certificate("auth").decode())

    parent = card_login(parent_card.card_id)
    [notice] = container.portal.notices(parent)
    assert notice.state is NoticeState.UNREAD and notice.kind == "child_allowance_status_report"
    form = container.portal.child_allowance_form(parent, notice.notice_id, use_number=True)
    assert len(form.children) == 2 and form.taxable_income == 3_850_000
    assert form.insurance_status == "insured"
    guardian = card_login(guardian_card.card_id)
    [principal] = container.portal.principals(guardian)
    assert principal.kind is ProxyKind.ADULT_GUARDIAN and principal.principal_name
    acting = container.portal.act_for(guardian.token, principal.principal_account_id)
    history = container.portal.history(acting)
    assert len(history) >= result.exchanges
    assert container.portal.verify_record(acting, history[0].record.serial).verified
    assert card_login(ward_card.card_id).account_id == principal.principal_account_id
    again = seed_portal_demo(container)
    assert again.skipped and [c.card_id for c in again.cards] == \
        [c.card_id for c in result.cards]


# --- review fixes ---------------------------------------------------------------------------------


def _grant(container: Container, principal: int, actor: int, kind: str | None,
           client_id: str = "client-1") -> int:
    """A consent row as the OIDC side writes it (a proxy consenting for the principal when
    ``actor`` differs), with one live access token under it."""
    from mynumber.portal.oauth_models import AccessToken, Grant

    with container.databases.unit_of_work("portal") as session:
        grant = Grant(account_id=principal, actor_account_id=actor, proxy_kind=kind,
                      client_id=client_id, scopes="basic_four")
        session.add(grant)
        session.flush()
        now = dt.datetime.now(dt.UTC)
        session.add(AccessToken(token_hash=f"{grant.id:064d}", grant_id=grant.id,
                                client_id=client_id, account_id=principal, scope="basic_four",
                                code_hash="c" * 64, issued_at=now,
                                expires_at=now + dt.timedelta(minutes=10)))
        return grant.id


def _grant_revoked(container: Container, grant_id: int) -> tuple[bool, bool]:
    with container.databases.unit_of_work("portal") as session:
        grant = session.execute(text("SELECT revoked_at FROM oidc_grants WHERE id = :i"),
                                {"i": grant_id}).scalar()
        token = session.execute(text(
            "SELECT revoked_at FROM oidc_access_tokens WHERE grant_id = :i"),
            {"i": grant_id}).scalar()
    return grant is not None, token is not None


def test_revoking_a_proxy_revokes_the_grants_it_gave_for_the_principal(
    container: Container, clerk: StaffPrincipal, card_holder: CardHolder,
) -> None:
    portal = container.portal
    ward_id = _ward(container, clerk)
    proxy = portal.register_proxy(clerk.actor, ward_id, card_holder.resident.id,
                                  ProxyKind.ADULT_GUARDIAN)
    principal, guardian = proxy.principal_account_id, proxy.proxy_account_id
    by_proxy = _grant(container, principal, guardian, "adult_guardian")
    own = _grant(container, principal, principal, None)  # the principal's own consent
    guardians_own = _grant(container, guardian, guardian, None)
    portal.revoke_proxy(clerk.actor, proxy.proxy_id)
    assert _grant_revoked(container, by_proxy) == (True, True)
    assert _grant_revoked(container, own) == (False, False)
    assert _grant_revoked(container, guardians_own) == (False, False)


def test_an_expired_proxy_relation_ends_its_grants_at_the_recheck(
    container: Container, clerk: StaffPrincipal, card_holder: CardHolder,
) -> None:
    portal = container.portal
    ward_id = _ward(container, clerk)
    today = dt.datetime.now(dt.UTC)
    proxy = portal.register_proxy(clerk.actor, ward_id, card_holder.resident.id,
                                  ProxyKind.ADULT_GUARDIAN, valid_until=today.date())
    session = portal.act_for(login(container, card_holder).token, proxy.principal_account_id)
    assert portal.acting_subject(session) == (proxy.principal_account_id,
                                              ProxyKind.ADULT_GUARDIAN)
    first = _grant(container, proxy.principal_account_id, proxy.proxy_account_id,
                   "adult_guardian")
    second = _grant(container, proxy.principal_account_id, proxy.proxy_account_id,
                    "adult_guardian", client_id="client-2")
    later = today + dt.timedelta(days=1)
    portal.clock = lambda: later
    with pytest.raises(NotAProxy):  # the re-check on the next action (the session aside)
        portal.history(session)
    assert _grant_revoked(container, first) == (True, True)
    assert _grant_revoked(container, second) == (True, True)
    # The sweep applies the same rule without anyone acting.
    third = _grant(container, proxy.principal_account_id, proxy.proxy_account_id,
                   "adult_guardian", client_id="client-3")
    assert portal.expire_proxies() == 1
    assert _grant_revoked(container, third) == (True, True)
    assert portal.expire_proxies() == 0


def test_acting_subject_and_record_activity_recheck_the_session(
    container: Container, clerk: StaffPrincipal, card_holder: CardHolder,
) -> None:
    portal = container.portal
    ward_id = _ward(container, clerk)
    proxy = portal.register_proxy(clerk.actor, ward_id, card_holder.resident.id,
                                  ProxyKind.LEGAL_REPRESENTATIVE)
    own = login(container, card_holder)
    assert portal.acting_subject(own) == (own.account_id, None)
    acting = portal.act_for(own.token, proxy.principal_account_id)
    assert portal.acting_subject(acting) == (proxy.principal_account_id,
                                             ProxyKind.LEGAL_REPRESENTATIVE)
    portal.record_activity(acting, "consent", "家計簿アプリ: basic_four")
    [consent] = [a for a in portal.activities(acting) if a.action == "consent"]
    assert consent.actor_account_id == own.account_id
    assert consent.subject_account_id == proxy.principal_account_id
    assert consent.proxy_kind is ProxyKind.LEGAL_REPRESENTATIVE
    assert consent.detail == "家計簿アプリ: basic_four"
    with pytest.raises(PortalError):
        portal.record_activity(acting, "Not An Action!")
    portal.revoke_proxy(clerk.actor, proxy.proxy_id)
    with pytest.raises(NotAProxy):
        portal.acting_subject(acting)
    with pytest.raises(NotAProxy):
        portal.record_activity(acting, "consent")
    portal.logout(own.token)
    with pytest.raises(SessionExpired):
        portal.acting_subject(own)


def test_a_double_submission_records_one_application_and_one_declined_linkage(
    container: Container, clerk: StaffPrincipal, monkeypatch: pytest.MonkeyPatch,
) -> None:
    parent, _ = _household(container, clerk)
    notice_id = _notice(container)
    session = login(container, parent)
    portal = container.portal
    form = dataclasses.replace(portal.child_allowance_form(session, notice_id, False),
                               applicant_name="鈴木 一郎", children=(CHILD,))
    real = container.agencies.record_declined
    recorded: list[str] = []
    second: list[BaseException] = []
    raced: list[bool] = []

    def racing(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not raced:  # the other tab submits while this one is in flight
            raced.append(True)
            try:
                portal.submit_child_allowance(session, notice_id, False, form, documents())
            except NoticeAlreadyAnswered as exc:
                second.append(exc)
        result = real(*args, **kwargs)
        recorded.append(result.serial)
        return result

    monkeypatch.setattr(container.agencies, "record_declined", racing)
    application = portal.submit_child_allowance(session, notice_id, False, form,
                                                documents())
    assert len(second) == 1
    assert recorded == [application.declined_serial]
    assert [a.application_id for a in portal.applications(session)] == \
        [application.application_id]
    # The database refuses a second application for the notice as well.
    with pytest.raises(IntegrityError):
        with container.databases.unit_of_work("portal") as tx:
            tx.execute(text(
                "INSERT INTO applications (account_id, actor_account_id, notice_id, kind, "
                "agency_id, state, application_ref, uses_number, documents, data, "
                "submitted_at) VALUES (1, 1, :n, 'k', 'a', 'submitted', 'MP-x', false, "
                "'[]', '{}', :at)"), {"n": notice_id, "at": dt.datetime.now(dt.UTC)})


def test_a_failed_declined_record_leaves_the_notice_open(
    container: Container, clerk: StaffPrincipal, monkeypatch: pytest.MonkeyPatch,
) -> None:
    parent, _ = _household(container, clerk)
    notice_id = _notice(container)
    session = login(container, parent)
    portal = container.portal
    form = ChildAllowanceForm("鈴木 一郎", "東京都新宿区", None, None, (CHILD,), ())
    real = container.agencies.record_declined

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the network is down")

    monkeypatch.setattr(container.agencies, "record_declined", failing)
    with pytest.raises(RuntimeError):
        portal.submit_child_allowance(session, notice_id, False, form, documents())
    [notice] = portal.notices(session)
    assert notice.state is not NoticeState.ANSWERED and notice.answered_at is None
    assert portal.applications(session) == []
    monkeypatch.setattr(container.agencies, "record_declined", real)
    application = portal.submit_child_allowance(session, notice_id, False, form, documents())
    assert portal.notices(session)[0].application_id == application.application_id


def test_a_bad_proxy_resident_creates_no_account(
    container: Container, clerk: StaffPrincipal,
) -> None:
    from mynumber.registry.interfaces import ResidentNotFound

    ward_id = _ward(container, clerk)
    with pytest.raises(ResidentNotFound):
        container.portal.register_proxy(clerk.actor, ward_id, 987654321,
                                        ProxyKind.ADULT_GUARDIAN)
    with container.databases.unit_of_work("portal") as session:
        assert session.execute(text("SELECT count(*) FROM accounts")).scalar() == 0
        assert session.execute(text("SELECT count(*) FROM proxies")).scalar() == 0


def test_a_log_without_a_public_key_verifies_nothing(container: Container,
                                                      card_holder: CardHolder) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    session = login(container, card_holder)
    serial = container.portal.my_information(session, "basic_four").serial
    container.network_log.integrate()
    real = container.network_log

    class Keyless:
        def latest_head(self):  # type: ignore[no-untyped-def]
            return real.latest_head()

        def inclusion_proof(self, index, tree_size=None):  # type: ignore[no-untyped-def]
            return real.inclusion_proof(index, tree_size)

        def entries(self, start, end):  # type: ignore[no-untyped-def]
            return real.entries(start, end)

    container.portal.access_log = Keyless()
    verdict = container.portal.verify_record(session, serial)
    assert not verdict.verified
    assert verdict.reason == "no log key to check the signed tree head"
    container.portal.access_log = real
    assert container.portal.verify_record(session, serial).verified


def test_a_counter_registration_refreshes_a_moved_accounts_municipality(
    container: Container, clerk: StaffPrincipal, card_holder: CardHolder,
) -> None:
    from mynumber.auth.interfaces import StaffRole
    from tests.conftest import SHIBUYA, make_staff

    portal = container.portal
    ward = container.registry.get_resident(clerk, _ward(container, clerk), "test")
    proxy = portal.register_proxy(clerk.actor, ward.id, card_holder.resident.id,
                                  ProxyKind.ADULT_GUARDIAN)
    assert portal.account(proxy.principal_account_id).municipality_code == "131041"
    shibuya = make_staff(container, "shibuya-clerk", SHIBUYA, StaffRole.CLERK)
    moved_on = dt.date.today()
    container.registry.register_move_out(clerk, ward.id, SHIBUYA, moved_on)
    moved = container.registry.register_move_in(
        shibuya, new_resident(given_name="花子", given_name_kana="ハナコ",
                              birth_date=ward.birth_date, municipality_code=SHIBUYA,
                              address="東京都渋谷区宇田川町1番1号", postal_code="1508010"),
        moved_on, resident_code=ward.resident_code)
    other = issue_card_holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    again = portal.register_proxy(shibuya.actor, moved.id, other.resident.id,
                                  ProxyKind.ADULT_GUARDIAN)
    assert again.principal_account_id == proxy.principal_account_id
    assert portal.account(proxy.principal_account_id).municipality_code == SHIBUYA


# --- issue 10: a revoked card ends its sessions; no forged record; no 個人番号 carried ----------


def test_reporting_the_card_lost_ends_the_session_it_opened(container: Container,
                                                            clerk: StaffPrincipal,
                                                            card_holder: CardHolder) -> None:
    session = login(container, card_holder)
    other = issue_card_holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    other_session = login(container, other)
    container.portal.session(session.token)  # live
    r = card_holder.resident
    container.card.report_lost(card_holder.card_id, r.name_kana, r.birth_date)
    with pytest.raises(SessionExpired) as ended:
        container.portal.session(session.token)
    assert ended.value.extra["reason"] == "card_revoked"
    with pytest.raises(SessionExpired):  # the end is stored, not re-decided
        container.portal.session(session.token)
    with pytest.raises(SessionExpired):
        container.portal.acting_subject(session)
    # Another card's session is untouched, and the lost card cannot log in again.
    assert container.portal.session(other_session.token).account_id == other_session.account_id
    with pytest.raises(LoginFailed):
        login(container, card_holder)
    # The sessions table holds no serial (it is sealed under the bearer token).
    assert str(card_holder.record.auth_serial) not in _dump(container, "portal")


def test_a_forged_query_never_enters_the_history_and_every_shown_record_verifies(
        container: Container, card_holder: CardHolder) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    hold(container, card_holder.number, MHLW, "resident_record",
         resident_record(card_holder), "M-1")
    session = login(container, card_holder)
    mine = container.portal.my_information(session, "basic_four")
    code = container.agencies.agency_code(MHLW, "M-1")
    # An outsider who knows the ministry's code for the person, without the ministry's key:
    # signed with the city's key, with none, and under a name no agency has.
    query = ExchangeQuery(requester_id=MHLW, task_id="bekkyo2-1", provider_id=CITY,
                          item_code="local_tax", subject_code=code,
                          requested_at=dt.datetime.now(dt.UTC), nonce=secrets.token_urlsafe(16))
    city_key = container.agencies.keyring.keys(CITY).signing
    for forged in (dataclasses.replace(query, signature=city_key.sign(query.signed_bytes())),
                   query, dataclasses.replace(query, requester_id="mhlw-x")):
        assert container.network.exchange(forged).outcome is Outcome.REFUSED
    container.network_log.integrate()
    history = container.portal.history(session)
    assert [e.record.serial for e in history] == [mine.serial]
    for entry in history:
        verdict = container.portal.verify_record(session, entry.record.serial)
        assert verdict.verified, verdict.reason


def test_information_carrying_an_individual_number_is_withheld_everywhere(
        container: Container, card_holder: CardHolder) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    session = login(container, card_holder)
    real_query = container.portal.agencies.query

    def leaky(*args: object) -> QueryResult:
        result = real_query(*args)
        return dataclasses.replace(result, data={**(result.data or {}),
                                                 "note": f"番号 {card_holder.number}"})

    container.portal.agencies.query = leaky  # type: ignore[method-assign]
    try:
        with pytest.raises(IndividualNumberInAnswer) as caught:
            container.portal.my_information(session, "basic_four")
        assert card_holder.number not in str(caught.value.extra) + str(caught.value)
        with pytest.raises(IndividualNumberInAnswer):  # the OIDC release path
            container.portal.fetch_for_client(session.account_id, "basic_four", "client-1",
                                              "RP", grant_id=None)
    finally:
        del container.portal.agencies.query
    assert card_holder.number not in _dump(container, "portal")
    assert container.portal.my_information(session, "basic_four").data is not None


def test_a_notice_carrying_an_individual_number_is_refused(container: Container,
                                                           card_holder: CardHolder) -> None:
    hold(container, card_holder.number, CITY, "resident_record",
         resident_record(card_holder), "C-1")
    code = container.agencies.agency_code(CITY, "C-1")
    with pytest.raises(PortalError) as caught:
        container.portal.send_notice(CITY, code, "general", "お知らせ",
                                     f"あなたの番号は {card_holder.number} です")
    assert caught.value.code == "individual_number_in_notice"
    assert card_holder.number not in _dump(container, "portal")

"""Demo data for the portal (embedded mode only; ``mynumber seed`` runs it after the network
seed): three residents of 新宿区 with virtual cards whose chips are held in the card store
(user-authentication PIN 1234, the PINs ``mynumber card issue-test`` prints), so the embedded
card reader can log them in:

* a 世帯主 with two children under 18 in the same household; the ward office holds their
  住民票関係情報, 地方税 and 児童手当 副本, 協会けんぽ the parent's 医療保険, and the parent has an
  unread お知らせ from the ward: 児童手当 現況届 (answer it with or without the number);
* an adult guardian (成年後見人) registered at the counter for
* the ward (被後見人), an elderly resident with pension and long-term-care records and a few
  exchanges about them in やりとり履歴 (ministries and insurers asking under the legal table).

Everything goes through the real services: counter staff (a dedicated demo account) register
the people and issue the cards with an identity check, agencies enrol the residents the way
the network seed does, the exchanges are real exchanges. Idempotent: a marker in
``portal_settings`` remembers the demo and a second run does nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import pyotp

from mynumber.agencies.interfaces import KYOKAI, MHLW, PENSION, resident_record_copy
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.card.interfaces import IdentityCheck, IssuedPins
from mynumber.network.interfaces import mayor_lookup
from mynumber.portal import models as m
from mynumber.portal.interfaces import ProxyKind
from mynumber.registry.interfaces import NewResident, Sex
from mynumber.settings import Mode

MARKER = "demo_seed"
SHINJUKU = "131041"
PINS = IssuedPins("ABC123", "1234", "5678", "2468")
ADDRESS = "東京都新宿区西新宿二丁目8番1号"
ROLES = ("parent (世帯主)", "guardian (成年後見人)", "ward (被後見人)")


@dataclass(frozen=True)
class DemoCard:
    role: str
    name: str
    resident_id: int
    card_id: str


@dataclass
class PortalDemoResult:
    skipped: bool = False
    cards: list[DemoCard] = field(default_factory=list)
    exchanges: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = [f"portal demo: {c.role} {c.name} (resident #{c.resident_id}) card "
               f"{c.card_id}".replace("  ", " ") for c in self.cards]
        out.append(f"demo card PINs (not secret): user-auth {PINS.user_auth_pin}, signing "
                   f"password {PINS.signing_password}, residence {PINS.residence_pin}, "
                   f"card-info {PINS.card_info_pin}")
        if self.cards:
            parent, guardian, ward = self.cards[0], self.cards[1], self.cards[2]
            out.append(
                f"try: log in to /portal with card {parent.card_id} and answer the 児童手当 "
                f"現況届 (with or without the number); log in with {guardian.card_id} and act "
                f"for the ward (成年後見人) to see the ward's やりとり履歴 and verify a record; "
                f"the ward's own card {ward.card_id} opens the same account")
        return out


def _counter_staff(container: Any) -> StaffPrincipal:
    """A dedicated 新宿区 counter account for the demo (its own TOTP, logged out at once)."""
    username = f"portal-demo-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(24)
    secret = container.staff_auth.create_staff(username, "デモ 窓口（マイナポータル）",
                                               SHINJUKU, StaffRole.CLERK, password)
    token = container.staff_auth.login(username, password, pyotp.TOTP(secret).now())
    try:
        staff: StaffPrincipal = container.staff_auth.authenticate(token)
    finally:
        container.staff_auth.logout(token)
    return staff


def _person(family: str, given: str, family_kana: str, given_kana: str, born: dt.date,
            sex: Sex, household_id: int | None = None,
            relationship: str = "世帯主") -> NewResident:
    return NewResident(family_name=family, given_name=given, family_name_kana=family_kana,
                       given_name_kana=given_kana, birth_date=born, sex=sex,
                       municipality_code=SHINJUKU, address=ADDRESS, postal_code="1638001",
                       household_id=household_id, relationship=relationship)


def _years_ago(today: dt.date, years: int) -> dt.date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def _task(table: Any, requester_kind: str, provider_kind: str, item: str) -> str | None:
    for task in table.tasks():
        if not task.task_id.startswith("extra-") and table.find(
                requester_kind, task.task_id, provider_kind, item) is not None:
            return str(task.task_id)
    return None


def seed_portal_demo(container: Any) -> PortalDemoResult:
    if container.settings.mode is not Mode.EMBEDDED:
        raise RuntimeError("the portal demo is for the embedded mode only")
    started = time.perf_counter()
    with container.databases.unit_of_work("portal") as session:
        marker = session.get(m.PortalSetting, MARKER)
        if marker is not None:
            return PortalDemoResult(skipped=True, cards=[
                DemoCard(role, "", int(rid), str(card_id))
                for role, (rid, card_id) in zip(ROLES, json.loads(marker.value), strict=True)])
    today = dt.date.today()
    staff = _counter_staff(container)
    registry, agencies, network, portal = (container.registry, container.agencies,
                                           container.network, container.portal)

    # -- the people (registered at the counter) -----------------------------------------------
    parent = registry.register_birth(staff, _person(
        "高橋", "美咲", "タカハシ", "ミサキ", dt.date(1987, 7, 14), Sex.FEMALE),
        dt.date(1987, 7, 14))
    children = [
        registry.register_birth(staff, _person(
            "高橋", given, "タカハシ", kana, born, sex, parent.household_id, "子"), born)
        for given, kana, born, sex in (
            ("陽向", "ヒナタ", _years_ago(today, 9), Sex.MALE),
            ("結衣", "ユイ", _years_ago(today, 2), Sex.FEMALE))
    ]
    guardian = registry.register_birth(staff, _person(
        "佐藤", "健一", "サトウ", "ケンイチ", dt.date(1968, 3, 3), Sex.MALE), dt.date(1968, 3, 3))
    ward = registry.register_birth(staff, _person(
        "佐藤", "ミヨ", "サトウ", "ミヨ", dt.date(1936, 11, 20), Sex.FEMALE),
        dt.date(1936, 11, 20))

    result = PortalDemoResult()
    for role, person in zip(ROLES, (parent, guardian, ward), strict=True):
        number = registry.reveal_number(staff, person.id, "デモ: 個人番号カード交付")
        application = container.card.apply(staff, person.id)
        record, _chip = container.card.issue(
            staff, application.application_id,
            IdentityCheck(number, "notification_letter", ("drivers_license",)), PINS)
        result.cards.append(DemoCard(role, person.name, person.id, record.card_id))

    # -- what the agencies hold ---------------------------------------------------------------
    directory = network.agencies()
    city = mayor_lookup(directory)(SHINJUKU)
    if city is None:
        raise RuntimeError("the network directory has no mayor agency for 新宿区")
    kinds = {a.agency_id: a.kind for a in directory}
    household = [parent, *children]
    numbers: dict[str, dict[int, str]] = {}

    def know(agency: str, person: Any) -> str:
        address_number = f"DEMO{person.id:010d}"
        numbers.setdefault(agency, {})[person.id] = address_number
        return address_number

    copies: list[tuple[str, Any, str, dict[str, Any]]] = [
        (city, parent, "resident_record", resident_record_copy(parent, household)),
        (city, parent, "local_tax", {
            "fiscal_year": today.year - 1, "taxable_income": 3_850_000,
            "municipal_tax": 385_000, "exempt": False}),
        (city, parent, "child_allowance", {
            "status": "receiving", "children": 2, "monthly_amount": 25_000}),
        (KYOKAI, parent, "medical_insurance", {
            "insurer": "全国健康保険協会", "status": "insured",
            "standard_monthly_remuneration": 360_000}),
        *((city, c, "resident_record", resident_record_copy(c, household))
          for c in children),
        (city, guardian, "resident_record", resident_record_copy(guardian, [])),
        (city, ward, "resident_record", resident_record_copy(ward, [])),
        (city, ward, "long_term_care", {"certified_level": "care_2"}),
        (PENSION, ward, "pension", {"kind": "old_age_basic_pension",
                                    "annual_amount": 780_000}),
    ]
    for agency, person, _item, _payload in copies:
        know(agency, person)
    history_plan = [(MHLW, city, "resident_record"), (MHLW, PENSION, "pension"),
                    (KYOKAI, city, "resident_record"), (KYOKAI, PENSION, "pension")]
    table = network.legal_table()
    planned = []
    for requester, provider, item in history_plan:
        task = _task(table, kinds[requester], kinds[provider], item)
        if task is not None:
            planned.append((requester, task, provider, item))
            know(requester, ward)
    for agency, wanted in numbers.items():
        agencies.ensure_registered(agency)
        agencies.enrol_known_residents(agency, wanted)
    for agency, person, item, payload in copies:
        agencies.put_copy(agency, numbers[agency][person.id], item, payload)
    for requester, task, provider, item in planned:
        agencies.query(requester, numbers[requester][ward.id], task, provider, item)
        result.exchanges += 1

    # -- the portal: a guardian registered at the counter, notices ----------------------------
    portal.register_proxy(staff.actor, ward.id, guardian.id, ProxyKind.ADULT_GUARDIAN,
                          principal_name=ward.name)
    portal.send_notice(
        city, agencies.agency_code(city, numbers[city][parent.id]),
        "child_allowance_status_report", "児童手当 現況届の提出のお願い",
        "児童手当を引き続き受給するため、現況届を提出してください。\n"
        "マイナンバーを利用すると、所得・世帯・健康保険の情報は自動で入力されます。"
        "利用しない場合は、課税証明書と健康保険証の写しを添付してください。")
    portal.send_notice(
        PENSION, agencies.agency_code(PENSION, numbers[PENSION][ward.id]), "information",
        "年金振込通知書", "今年度の年金振込額のお知らせです。")
    while container.network_log.integrate() > 0:
        pass
    with container.databases.unit_of_work("portal") as session:
        session.add(m.PortalSetting(key=MARKER, value=json.dumps(
            [[c.resident_id, c.card_id] for c in result.cards])))
    result.seconds = time.perf_counter() - started
    return result

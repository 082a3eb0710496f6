"""The municipal counter's 公金受取口座 page: a clerk of the resident's municipality sees the
account (masked, bank and branch names, route, name check, history) after giving a reason;
each view is audited in the accounts context; another municipality's clerk sees nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mynumber.accounts import models as m
from mynumber.accounts.interfaces import Route
from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from tests.accounts.conftest import TAX, account, card
from tests.conftest import SHIBUYA
from tests.web.test_counter import logged_in, resident

REASON = {"reason_kind": "certificate", "reason_text": "児童手当の口座確認"}


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def _reads(container: Container, resident_id: int) -> list[m.AuditEvent]:
    with container.databases.unit_of_work("accounts") as session:
        return list(session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.tag == "accounts:registration:counter_read",
            m.AuditEvent.subject == f"resident:{resident_id}")))


def test_a_clerk_sees_the_account_after_giving_a_reason_and_the_view_is_audited(
        container: Container, client: TestClient) -> None:
    counter, clerk = logged_in(client, container)
    person = resident(container, clerk, family_name_kana="ヤマダ", given_name_kana="タロウ")
    accounts = container.accounts
    accounts.register(person.id, account(), Route.BANK, authentication=card(
        person.id, at=accounts.clock()), actor="bank:8001:bc_0123456789abcdef")
    accounts.change(person.id, account(number="7654321"), Route.TAX_RETURN, actor=TAX)

    record = counter.get(f"/counter/residents/{person.id}")
    assert record.status_code == 200 and 'id="accounts-link"' not in record.text  # a form first
    form = counter.get(f"/counter/accounts/{person.id}")
    assert form.status_code == 200 and "閲覧理由" in form.text
    assert _reads(container, person.id) == []  # the form reads nothing

    missing = counter.post(f"/counter/accounts/{person.id}", {"reason_kind": "other"})
    assert missing.status_code == 422 and _reads(container, person.id) == []

    page = counter.post(f"/counter/accounts/{person.id}", REASON)
    assert page.status_code == 200, page.text
    assert "***4321" in page.text and "7654321" not in page.text and "1234567" not in page.text
    assert "みらい銀行" in page.text and "駅前支店" in page.text
    assert "確定申告" in page.text and "金融機関の窓口・アプリ" in page.text  # route, history
    history = re.search(r'<table[^>]*id="account-history"[^>]*>(.*?)</table>', page.text, re.S)
    assert history and "登録" in history.group(1) and "変更" in history.group(1)
    assert "***4567" in history.group(1)
    assert "児童手当の口座確認" in page.text  # the reason, on the page as recorded
    reads = _reads(container, person.id)
    assert len(reads) == 1 and reads[0].actor == clerk.actor
    assert reads[0].reason is not None and "児童手当の口座確認" in reads[0].reason
    for code in ("tax_return", "ordinary", "recheck", "bank:8001"):
        assert code not in page.text, code  # no codes or enum values on the page

    english = counter.post(f"/counter/accounts/{person.id}?lang=en", REASON)
    assert "Public-fund account" in english.text and "Income-tax return" in english.text
    assert len(_reads(container, person.id)) == 2  # every view


def test_the_record_page_links_to_the_account_and_a_person_without_one(
        container: Container, client: TestClient) -> None:
    counter, clerk = logged_in(client, container)
    person = resident(container, clerk)
    record = counter.open_record(person.id)
    assert f'href="/counter/accounts/{person.id}"' in record.text
    counter.get(f"/counter/accounts/{person.id}")
    page = counter.post(f"/counter/accounts/{person.id}", REASON)
    assert page.status_code == 200 and 'id="no-registration"' in page.text
    assert len(_reads(container, person.id)) == 1


def test_another_municipalitys_clerk_sees_nothing(
        container: Container, client: TestClient, clerk: StaffPrincipal) -> None:
    person = resident(container, clerk)
    container.accounts.register(person.id, account(), Route.TAX_RETURN, actor=TAX)
    counter, _ = logged_in(client, container, "shibuya", SHIBUYA)
    counter.get(f"/counter/accounts/{person.id}")
    refused = counter.post(f"/counter/accounts/{person.id}", REASON)
    assert refused.status_code == 403, refused.text
    assert "***4567" not in refused.text
    assert _reads(container, person.id) == []

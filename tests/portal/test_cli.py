"""`mynumber portal …`: login and history with a card file, in-process and over HTTP; proxy
registration and notices as the CLI's system staff."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.chip import VirtualCard
from mynumber.cli import app
from mynumber.cli import portal as portal_cli
from mynumber.settings import Settings
from tests.conftest import cli_env, new_resident
from tests.portal.conftest import AUTH_PIN, CITY, CardHolder, hold, resident_record

runner = CliRunner()


_env = cli_env


def run(settings: Settings, *args: str) -> Result:
    return runner.invoke(app, ["portal", *args], env=_env(settings))


@pytest.fixture
def card_file(card_holder: CardHolder, tmp_path: Path) -> Path:
    path = tmp_path / "card" / "card.json"
    path.parent.mkdir()
    card_holder.chip.save(path)
    return path


class _NoLifespan:
    """A TestClient used as ``with client:`` without running the app's lifespan (which would
    close the test's container)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def __enter__(self) -> TestClient:
        return self.client

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def over_http(container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    client = TestClient(create_app(container=container))
    monkeypatch.setattr(portal_cli, "_http_client", lambda url: _NoLifespan(client))


def test_login_in_process_prints_a_live_session_token(settings: Settings, container: Container,
                                                      card_file: Path) -> None:
    result = run(settings, "login", "--card", str(card_file), "--pin", AUTH_PIN)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    session = container.portal.session(token)
    assert session.acting_for == session.account_id


def test_a_wrong_pin_counts_down_on_the_card_file(settings: Settings, container: Container,
                                                  card_file: Path) -> None:
    before = VirtualCard.load(card_file).remaining_tries("user_auth")
    result = run(settings, "login", "--card", str(card_file), "--pin", "0000")
    assert result.exit_code == 1
    assert VirtualCard.load(card_file).remaining_tries("user_auth") == before - 1


def test_login_over_http(settings: Settings, container: Container, card_file: Path,
                         over_http: None) -> None:
    result = run(settings, "login", "--card", str(card_file), "--pin", AUTH_PIN,
                 "--url", "http://portal.test")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert container.portal.session(token).account_id > 0


def _some_history(container: Container, holder: CardHolder, card_file: Path) -> list[str]:
    hold(container, holder.number, CITY, "resident_record", resident_record(holder), "C-1")
    from tests.portal.conftest import login

    session = login(container, holder)
    serials = [container.portal.my_information(session, "basic_four").serial for _ in range(2)]
    container.portal.logout(session.token)
    holder.chip.save(card_file)  # the fixture's chip signed: keep the file in step
    return serials


def test_history_with_verification_in_process(settings: Settings, container: Container,
                                              card_holder: CardHolder, card_file: Path) -> None:
    serials = _some_history(container, card_holder, card_file)
    result = run(settings, "history", "--card", str(card_file), "--pin", AUTH_PIN, "--verify")
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
    assert lines[0][0] == "serial" and lines[0][-1] == "inclusion"
    shown = {cells[0]: cells for cells in lines[1:]}
    for serial in serials:
        assert shown[serial][-1] == "verified"
        assert shown[serial][2] == "マイナポータル（デジタル庁）"
    # The CLI logged out: every session of the account has ended.
    with container.databases.unit_of_work("portal") as session:
        from sqlalchemy import text

        assert session.execute(text(
            "SELECT count(*) FROM portal_sessions WHERE ended_at IS NULL")).scalar() == 0


def test_history_over_http(settings: Settings, container: Container, card_holder: CardHolder,
                           card_file: Path, over_http: None) -> None:
    serials = _some_history(container, card_holder, card_file)
    container.network_log.integrate()
    result = run(settings, "history", "--card", str(card_file), "--pin", AUTH_PIN, "--verify",
                 "--url", "http://portal.test")
    assert result.exit_code == 0, result.output
    verified = [line.split("\t")[0] for line in result.stdout.splitlines()
                if line.endswith("\tverified")]
    assert set(serials) <= set(verified)


def test_proxy_register_and_notice_send(settings: Settings, container: Container,
                                        clerk: StaffPrincipal, card_holder: CardHolder) -> None:
    details = new_resident(given_name="花子")
    ward = container.registry.register_birth(clerk, details, details.birth_date)
    result = run(settings, "proxy", "register", "--principal", str(ward.id), "--proxy",
                 str(card_holder.resident.id), "--kind", "adult_guardian")
    assert result.exit_code == 0, result.output
    from tests.portal.conftest import login

    session = login(container, card_holder)
    [principal] = container.portal.principals(session)
    assert principal.principal_name == ward.name
    assert run(settings, "proxy", "register", "--principal", str(ward.id), "--proxy",
               str(card_holder.resident.id), "--kind", "friend").exit_code == 2
    hold(container, card_holder.number, CITY, "resident_record", resident_record(card_holder),
         "C-1")
    result = run(settings, "notice", "send", "--agency", CITY, "--address-number", "C-1",
                 "--kind", "information", "--title", "お知らせ", "--body", "本文です")
    assert result.exit_code == 0, result.output
    assert [n.title for n in container.portal.notices(session)] == ["お知らせ"]
    result = run(settings, "proxy", "revoke", str(principal.proxy_id))
    assert result.exit_code == 0, result.output
    assert container.portal.principals(session) == []

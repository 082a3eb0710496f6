"""`mynumber network …`: the directory of agencies from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from mynumber.app import Container, build_container
from mynumber.cli import app
from mynumber.network import models as nm
from mynumber.network.interfaces import AgencyStatus
from mynumber.settings import Settings
from tests.conftest import cli_env

runner = CliRunner()
CITY = "municipality-131041"  # 新宿区長


_env = cli_env


@pytest.fixture
def fresh(settings: Settings) -> Iterator[Callable[[], Container]]:
    """A container built after the command ran (no cached directory)."""
    containers: list[Container] = []

    def build() -> Container:
        containers.append(build_container(settings))
        return containers[-1]

    yield build
    for built in containers:
        built.close()


def run(settings: Settings, *args: str) -> Result:
    return runner.invoke(app, ["network", *args], env=_env(settings))


def test_agencies_lists_one_kind(settings: Settings) -> None:
    result = run(settings, "agencies", "--kind", "special_ward_mayor")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 23  # the 23 special wards of Tokyo
    city = next(line for line in lines if line.startswith(CITY + "\t"))
    assert city.split("\t") == [CITY, "special_ward_mayor", "active", "no-keys", "in-process",
                                "東京都新宿区長"]


def test_agencies_as_json(settings: Settings) -> None:
    result = run(settings, "agencies", "--kind", "mhlw_minister", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["agency_id"] for r in rows] == ["mhlw"]
    assert rows[0]["status"] == "active" and rows[0]["endpoint"] is None


def test_agencies_of_an_unknown_kind_is_an_error(settings: Settings) -> None:
    result = run(settings, "agencies", "--kind", "no_such_kind")
    assert result.exit_code == 1
    assert "unknown agency kind" in result.output


def test_sync_on_a_synced_directory_adds_nothing(settings: Settings) -> None:
    result = run(settings, "sync")
    assert result.exit_code == 0, result.output
    assert "agencies added to the network directory: 0" in result.output


def test_register_keys_registers_the_keyrings_public_keys(
    settings: Settings, fresh: Callable[[], Container]
) -> None:
    result = run(settings, "register-keys", CITY)
    assert result.exit_code == 0, result.output
    container = fresh()
    keys = container.agencies.keyring.keys(CITY)
    record = container.network.agency(CITY)
    assert record.signing_key == keys.signing_public
    assert record.encryption_key == keys.encryption_public
    assert keys.signing_public.hex() in result.stdout.replace("\n", "")
    listed = run(settings, "agencies", "--kind", "special_ward_mayor").stdout
    assert f"{CITY}\tspecial_ward_mayor\tactive\tkeys\t" in listed
    # Idempotent.
    assert run(settings, "register-keys", CITY).exit_code == 0


def test_register_keys_of_an_unknown_agency_fails(settings: Settings) -> None:
    result = run(settings, "register-keys", "no-such-agency")
    assert result.exit_code == 1
    assert "no agency" in result.output.lower() or "unknown" in result.output.lower()


def test_set_endpoint_and_clear(
    settings: Settings, fresh: Callable[[], Container]
) -> None:
    result = run(settings, "set-endpoint", CITY, "https://chukan.example.lg.jp")
    assert result.exit_code == 0, result.output
    assert fresh().network.agency(CITY).endpoint == "https://chukan.example.lg.jp"
    result = run(settings, "set-endpoint", CITY, "--clear")
    assert result.exit_code == 0, result.output
    assert "in-process" in result.output
    assert fresh().network.agency(CITY).endpoint is None


@pytest.mark.parametrize("args", [[CITY], [CITY, "https://x.example", "--clear"]])
def test_set_endpoint_needs_exactly_one_of_url_and_clear(settings: Settings,
                                                        args: list[str]) -> None:
    result = run(settings, "set-endpoint", *args)
    assert result.exit_code == 2
    assert "either a URL or --clear" in result.output


def test_set_endpoint_refuses_a_non_http_url(
    settings: Settings, fresh: Callable[[], Container]
) -> None:
    result = run(settings, "set-endpoint", CITY, "ftp://chukan.example.lg.jp")
    assert result.exit_code == 1
    assert "http(s) URL" in result.output
    assert fresh().network.agency(CITY).endpoint is None


def test_set_status_suspends_and_reactivates_with_an_audited_reason(
    settings: Settings, fresh: Callable[[], Container]
) -> None:
    result = run(settings, "set-status", CITY, "suspended", "--reason", "security incident")
    assert result.exit_code == 0, result.output
    container = fresh()
    assert container.network.agency(CITY).status is AgencyStatus.SUSPENDED
    with container.databases.unit_of_work("network") as session:
        events = session.execute(select(nm.AuditEvent.actor, nm.AuditEvent.reason).where(
            nm.AuditEvent.tag == "network:agency:status")).all()
    assert len(events) == 1
    assert events[0].actor.startswith("operator") and events[0].reason == "security incident"
    result = run(settings, "set-status", CITY, "active", "--reason", "resolved")
    assert result.exit_code == 0, result.output
    assert fresh().network.agency(CITY).status is AgencyStatus.ACTIVE


def test_set_status_rejects_an_unknown_status_and_an_empty_reason(settings: Settings) -> None:
    bad = run(settings, "set-status", CITY, "closed", "--reason", "x")
    assert bad.exit_code == 2 and "active or suspended" in bad.output
    empty = run(settings, "set-status", CITY, "suspended", "--reason", "  ")
    assert empty.exit_code == 1 and "reason" in empty.output

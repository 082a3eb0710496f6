"""`mynumber agencies enrol / put-copy` and `mynumber network register-keys --public-keys`:
onboarding an agency and giving it persons and 副本 from the operator's console."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mynumber.agencies.interfaces import CopyNotFound
from mynumber.agencies.keyring import AgencyKeys, public_keys_document
from mynumber.app import Container, build_container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.cli import app
from mynumber.settings import Settings
from tests.conftest import cli_env, new_resident

runner = CliRunner()
CITY = "municipality-131041"  # 新宿区長


_env = cli_env


def run(settings: Settings, *args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), env=_env(settings), input=input)


def _fresh(settings: Settings) -> Container:
    return build_container(settings)


@pytest.fixture
def number(container: Container, clerk: StaffPrincipal) -> str:
    resident = container.registry.register_move_in(clerk, new_resident(), dt.date.today())
    return container.registry.numbering.individual_number(resident.resident_code)


def _flat(result: Result) -> str:
    return " ".join(result.output.split())


def test_enrol_reads_the_number_from_stdin_and_never_prints_it(
        settings: Settings, number: str) -> None:
    result = run(settings, "agencies", "enrol", CITY, "A0001", input=number + "\n")
    assert result.exit_code == 0, result.output
    assert number not in result.output
    assert "enrolled A0001" in _flat(result)
    fresh = _fresh(settings)
    try:
        assert fresh.agencies.agency_code(CITY, "A0001")
    finally:
        fresh.close()
    again = run(settings, "agencies", "enrol", CITY, "A0001", "--json", input=number + "\n")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == {"agency_id": CITY, "address_number": "A0001",
                                        "already_enrolled": True}


def test_enrol_from_a_file(settings: Settings, number: str, tmp_path: Path) -> None:
    file = tmp_path / "number.txt"
    file.write_text(number + "\n")
    result = run(settings, "agencies", "enrol", CITY, "A0002", "--number-file", str(file))
    assert result.exit_code == 0, result.output
    assert number not in result.output


def test_enrol_without_a_number_is_a_usage_error(settings: Settings) -> None:
    result = run(settings, "agencies", "enrol", CITY, "A0003", input="")
    assert result.exit_code == 2
    assert "no individual number given" in _flat(result)


def test_enrol_of_an_unknown_number_names_the_error_not_the_number(settings: Settings) -> None:
    unknown = "123456789018"  # valid check digit, nobody's number here
    result = run(settings, "agencies", "enrol", CITY, "A0004", input=unknown + "\n")
    assert result.exit_code == 1
    assert unknown not in result.output and "resident_not_found" in result.output


def test_put_copy_stores_and_versions_the_copy(settings: Settings, number: str,
                                               tmp_path: Path) -> None:
    assert run(settings, "agencies", "enrol", CITY, "A0001", input=number).exit_code == 0
    file = tmp_path / "copy.json"
    file.write_text(json.dumps({"fiscal_year": 2025, "taxable_income": 3_100_000}))
    first = run(settings, "agencies", "put-copy", CITY, "A0001", "local_tax", "--json",
                str(file))
    assert first.exit_code == 0, first.output
    assert "version 1" in _flat(first)
    second = run(settings, "agencies", "put-copy", CITY, "A0001", "local_tax", "--json", "-",
                 input=json.dumps({"fiscal_year": 2025, "taxable_income": 3_200_000}))
    assert second.exit_code == 0, second.output
    assert "version 2" in _flat(second)
    fresh = _fresh(settings)
    try:
        copy = fresh.agencies.copy(CITY, "A0001", "local_tax")
    finally:
        fresh.close()
    assert copy.version == 2 and copy.payload["taxable_income"] == 3_200_000


def test_put_copy_refuses_a_copy_carrying_an_individual_number(
        settings: Settings, number: str) -> None:
    assert run(settings, "agencies", "enrol", CITY, "A0001", input=number).exit_code == 0
    result = run(settings, "agencies", "put-copy", CITY, "A0001", "local_tax", "--json", "-",
                 input=json.dumps({"note": f"number {number}"}))
    assert result.exit_code == 1
    assert "individual_number_in_copy" in result.output and number not in result.output
    fresh = _fresh(settings)
    try:
        with pytest.raises(CopyNotFound):
            fresh.agencies.copy(CITY, "A0001", "local_tax")
    finally:
        fresh.close()


def test_put_copy_refuses_unknown_items_bad_json_and_unknown_persons(
        settings: Settings, number: str) -> None:
    assert run(settings, "agencies", "enrol", CITY, "A0001", input=number).exit_code == 0
    unknown_item = run(settings, "agencies", "put-copy", CITY, "A0001", "no_such_item",
                       "--json", "-", input="{}")
    assert unknown_item.exit_code == 1 and "legal table" in _flat(unknown_item)
    not_json = run(settings, "agencies", "put-copy", CITY, "A0001", "local_tax", "--json", "-",
                   input="{secret")
    assert not_json.exit_code == 2 and "secret" not in not_json.output
    nobody = run(settings, "agencies", "put-copy", CITY, "Z9999", "local_tax", "--json", "-",
                 input="{}")
    assert nobody.exit_code == 1 and "person_not_enrolled" in nobody.output


# --- register-keys --public-keys ------------------------------------------------------------


def _exported(tmp_path: Path, agency_id: str) -> tuple[AgencyKeys, Path]:
    keys = AgencyKeys.from_raw(agency_id, secrets.token_bytes(32), secrets.token_bytes(32))
    file = tmp_path / f"{agency_id}.pub.json"
    file.write_text(json.dumps(public_keys_document(keys)))
    return keys, file


def test_register_keys_from_the_agencys_exported_file(settings: Settings,
                                                      tmp_path: Path) -> None:
    keys, file = _exported(tmp_path, CITY)
    result = run(settings, "network", "register-keys", CITY, "--public-keys", str(file))
    assert result.exit_code == 0, result.output
    assert "registered" in _flat(result) and keys.signing_public.hex() in _flat(result)
    fresh = _fresh(settings)
    try:
        record = fresh.network.agency(CITY)
    finally:
        fresh.close()
    assert record.signing_key == keys.signing_public
    assert record.encryption_key == keys.encryption_public
    (tmp_path / "rotated").mkdir()
    _, file2 = _exported(tmp_path / "rotated", CITY)
    result = run(settings, "network", "register-keys", CITY, "--public-keys", str(file2))
    assert result.exit_code == 0 and "replaced the previous keys" in _flat(result)


def test_register_keys_refuses_another_agencys_file(settings: Settings,
                                                    tmp_path: Path) -> None:
    _, file = _exported(tmp_path, "mhlw")
    result = run(settings, "network", "register-keys", CITY, "--public-keys", str(file))
    assert result.exit_code == 2
    assert "mhlw" in result.output
    fresh = _fresh(settings)
    try:
        assert fresh.network.agency(CITY).signing_key is None
    finally:
        fresh.close()


def test_production_registers_keys_only_from_a_file(tmp_path: Path) -> None:
    env = {"MYNUMBER_MODE": "production", "MYNUMBER_KEY_DIR": str(tmp_path / "keys"),
           "MYNUMBER_DATA_DIR": str(tmp_path / "data"),
           "MYNUMBER_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    result = runner.invoke(app, ["network", "register-keys", CITY], env=env)
    assert result.exit_code == 2
    assert "--public-keys" in result.output and not (tmp_path / "keys").exists()



def test_enrol_prints_the_agency_code_only_when_asked(settings: Settings, number: str) -> None:
    first = run(settings, "agencies", "enrol", CITY, "A0009", "--json", "--print-code",
                input=number + "\n")
    assert first.exit_code == 0, first.output
    fresh = _fresh(settings)
    try:
        code = fresh.agencies.agency_code(CITY, "A0009")
    finally:
        fresh.close()
    assert json.loads(first.stdout)["agency_code"] == code
    assert number not in first.output
    again = run(settings, "agencies", "enrol", CITY, "A0009", "--print-code",
                input=number + "\n")
    assert again.exit_code == 0 and code in again.output and "already enrolled" in _flat(again)
    plain = run(settings, "agencies", "enrol", CITY, "A0009", "--json", input=number + "\n")
    assert code not in plain.output and "agency_code" not in plain.output

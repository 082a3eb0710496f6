"""`mynumber card …`: a test card whose certificates OpenSSL accepts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mynumber.cli import app
from mynumber.settings import Settings
from tests.test_cli import _env

runner = CliRunner()


def test_issue_test_card_sign_auth_report(settings: Settings, tmp_path: Path) -> None:
    env = _env(settings)
    out = tmp_path / "card"
    result = runner.invoke(app, ["card", "issue-test", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "ABC123" in result.output and "2468" in result.output
    for name in ("card.json", "signing-cert.pem", "auth-cert.pem", "ca-chain.pem"):
        assert (out / name).is_file()
    assert (out / "card.json").stat().st_mode & 0o777 == 0o600
    chain = (out / "ca-chain.pem").read_text()
    assert chain.count("BEGIN CERTIFICATE") >= 2
    if shutil.which("openssl"):
        for cert in ("signing-cert.pem", "auth-cert.pem"):
            check = subprocess.run(
                ["openssl", "verify", "-CAfile", str(out / "ca-chain.pem"), str(out / cert)],
                capture_output=True, text=True, check=False)
            assert check.returncode == 0, check.stdout + check.stderr
            assert check.stdout.strip().endswith("OK")

    document = tmp_path / "doc.txt"
    document.write_text("hello")
    signed = runner.invoke(app, ["card", "sign", "--card", str(out / "card.json"),
                                 "--password", "ABC123", str(document)], env=env)
    assert signed.exit_code == 0, signed.output
    assert (tmp_path / "doc.txt.sig").stat().st_size == 256
    wrong = runner.invoke(app, ["card", "sign", "--card", str(out / "card.json"),
                                "--password", "WRONG1", str(document)], env=env)
    assert wrong.exit_code == 1 and "4 tries remaining" in wrong.output
    auth = runner.invoke(app, ["card", "auth", "--card", str(out / "card.json"), "--pin", "1234",
                               "--challenge", "00ff" * 16], env=env)
    assert auth.exit_code == 0, auth.output
    assert len(auth.stdout.strip()) == 512
    lost = runner.invoke(app, ["card", "report-lost", "--card", str(out / "card.json")], env=env)
    assert lost.exit_code == 0, lost.output
    assert "suspended" in lost.output and "2 certificate" in lost.output


@pytest.mark.parametrize("challenge", ["zz"])
def test_auth_refuses_bad_hex(settings: Settings, tmp_path: Path, challenge: str) -> None:
    result = runner.invoke(app, ["card", "auth", "--card", str(tmp_path / "none.json"),
                                 "--pin", "1234", "--challenge", challenge], env=_env(settings))
    assert result.exit_code == 1


def test_renew_certificates_after_a_move(settings: Settings, tmp_path: Path) -> None:
    import datetime as dt

    from cryptography import x509

    from mynumber.app import build_container
    from mynumber.jpki.services import _basic_items
    from mynumber.registry.interfaces import SYSTEM

    env = _env(settings)
    out = tmp_path / "card"
    assert runner.invoke(app, ["card", "issue-test", "--out", str(out)], env=env).exit_code == 0
    before = (out / "signing-cert.pem").read_text()
    auth_before = (out / "auth-cert.pem").read_text()
    early = runner.invoke(app, ["card", "renew-certificates", "--card", str(out / "card.json")],
                          env=env)
    assert early.exit_code == 1 and "renewal opens on" in early.output, early.output
    serial = x509.load_pem_x509_certificate(before.encode()).serial_number
    container = build_container(settings)
    try:
        resident_id = container.jpki.certificate(serial).resident_id
        container.registry.change_address(SYSTEM, resident_id, "東京都新宿区西新宿一丁目1番1号",
                                          "1600023", dt.date.today())
    finally:
        container.close()
    result = runner.invoke(app, ["card", "renew-certificates", "--card", str(out / "card.json"),
                                 "--signing-password", "MOVED1"], env=env)
    assert result.exit_code == 0, result.output
    assert f"serial {serial} ->" in result.output
    after = (out / "signing-cert.pem").read_text()
    assert after != before and (out / "auth-cert.pem").read_text() == auth_before
    assert _basic_items(after)["address"] == "東京都新宿区西新宿一丁目1番1号"
    if shutil.which("openssl"):
        check = subprocess.run(["openssl", "verify", "-CAfile", str(out / "ca-chain.pem"),
                                str(out / "signing-cert.pem")],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    document = tmp_path / "doc.txt"
    document.write_text("moved")
    signed = runner.invoke(app, ["card", "sign", "--card", str(out / "card.json"),
                                 "--password", "MOVED1", str(document)], env=env)
    assert signed.exit_code == 0, signed.output

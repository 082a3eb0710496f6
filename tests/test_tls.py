"""The infrastructure CA (mynumber.tls) and `mynumber tls …`."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from mynumber import tls
from mynumber.cli import app

runner = CliRunner()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_init_ca_creates_a_p256_ca_with_a_private_key_file(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    assert tls.init_ca(directory) is True
    assert _mode(directory) == 0o700 and _mode(directory / "ca-key.pem") == 0o600
    cert, key = tls.load_ca(directory)
    assert isinstance(key.curve, ec.SECP256R1)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    # A second call keeps the existing CA.
    before = (directory / "ca.pem").read_bytes()
    assert tls.init_ca(directory) is False
    assert (directory / "ca.pem").read_bytes() == before


def test_a_half_present_ca_is_an_error(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    tls.init_ca(directory)
    (directory / "ca-key.pem").unlink()
    with pytest.raises(tls.TlsError, match="only part of a CA"):
        tls.init_ca(directory)


def test_a_readable_ca_key_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    tls.init_ca(directory)
    (directory / "ca-key.pem").chmod(0o644)
    with pytest.raises(tls.TlsError, match="0600"):
        tls.issue(directory, "core", tmp_path / "core")


def test_issue_writes_a_server_and_client_certificate(tmp_path: Path) -> None:
    ca_dir, out = tmp_path / "ca", tmp_path / "core"
    tls.init_ca(ca_dir)
    issued = tls.issue(ca_dir, "core", out, dns=["localhost", "core.internal"],
                       ips=["127.0.0.1", "::1"])
    assert _mode(out / "key.pem") == 0o600
    assert (out / "ca.pem").read_bytes() == (ca_dir / "ca.pem").read_bytes()
    cert, ca = _cert(out / "cert.pem"), _cert(ca_dir / "ca.pem")
    cert.verify_directly_issued_by(ca)
    assert cert.serial_number == issued.serial
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "core"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "core.internal"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    # The files work as an ssl client context, and for uvicorn.
    tls.client_context(out)
    assert tls.uvicorn_options(out)["ssl_cert_reqs"] == 2  # ssl.CERT_REQUIRED


def test_issue_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    ca_dir, out = tmp_path / "ca", tmp_path / "core"
    tls.init_ca(ca_dir)
    first = tls.issue(ca_dir, "core", out)
    with pytest.raises(tls.TlsError, match="already holds"):
        tls.issue(ca_dir, "core", out)
    second = tls.issue(ca_dir, "core", out, overwrite=True)
    assert second.serial != first.serial and _mode(out / "key.pem") == 0o600


@pytest.mark.parametrize(("name", "ips", "message"), [
    ("bad name", (), "service name"),
    ("core", ("300.1.1.1",), "does not appear to be an IPv4 or IPv6 address"),
])
def test_issue_rejects_bad_input(tmp_path: Path, name: str, ips: tuple[str, ...],
                                 message: str) -> None:
    tls.init_ca(tmp_path / "ca")
    with pytest.raises(tls.TlsError, match=message):
        tls.issue(tmp_path / "ca", name, tmp_path / "out", ips=ips)


def test_issue_without_a_ca_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(tls.TlsError, match="init-ca"):
        tls.issue(tmp_path / "nothing", "core", tmp_path / "out")


def test_service_files_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(tls.TlsError, match=r"ca\.pem, cert\.pem, key\.pem"):
        tls.uvicorn_options(tmp_path)


def test_cli_init_ca_and_issue(tmp_path: Path) -> None:
    env = {"MYNUMBER_DATA_DIR": str(tmp_path / "data"), "MYNUMBER_KEY_DIR": str(tmp_path / "keys")}
    result = runner.invoke(app, ["tls", "init-ca"], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "keys" / "tls-ca" / "ca-key.pem").exists()
    assert "HSM" in result.output  # the limitation is stated
    again = runner.invoke(app, ["tls", "init-ca"], env=env)
    assert again.exit_code == 0 and "kept" in again.output
    out = tmp_path / "svc"
    result = runner.invoke(app, ["tls", "issue", "intermediate", "--out", str(out),
                                 "--dns", "localhost", "--ip", "127.0.0.1"], env=env)
    assert result.exit_code == 0, result.output
    san = _cert(out / "cert.pem").extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    refused = runner.invoke(app, ["tls", "issue", "intermediate", "--out", str(out)], env=env)
    assert refused.exit_code == 1 and "--force" in refused.output
    forced = runner.invoke(app, ["tls", "issue", "intermediate", "--out", str(out), "--force"],
                           env=env)
    assert forced.exit_code == 0, forced.output


def test_serve_rejects_an_unknown_role_and_a_tls_dir_without_certificates(
        tmp_path: Path) -> None:
    env = {"MYNUMBER_DATA_DIR": str(tmp_path / "data")}
    bad_role = runner.invoke(app, ["serve", "--role", "everything"], env=env)
    assert bad_role.exit_code == 2 and "unknown role" in bad_role.output
    no_certs = runner.invoke(app, ["serve"], env={**env, "MYNUMBER_TLS_DIR": str(tmp_path)})
    assert no_certs.exit_code == 1, no_certs.output
    assert "MYNUMBER_TLS_DIR" in no_certs.output and "cert.pem" in no_certs.output
    # The old option is gone (one TLS setting per listener): it says what to set instead.
    old_option = runner.invoke(app, ["serve", "--tls-dir", str(tmp_path)], env=env)
    assert old_option.exit_code == 1 and "MYNUMBER_TLS_DIR" in old_option.output

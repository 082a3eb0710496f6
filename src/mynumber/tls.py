"""The project's own infrastructure CA for service-to-service mutual TLS.

In a production deployment the network core and each intermediate server (中間サーバー) run as
separate services; they talk HTTPS and each side presents a certificate from this CA (the core
as a client to the intermediate servers, agencies as clients to the core). This CA is for
transport only: it has nothing to do with the JPKI CAs (``mynumber.jpki``) that certify
residents, and it is not what authorises a query — the Ed25519 signatures of the agencies and
of the core do that (docs/network.md). Mutual TLS keeps strangers off the ports.

Layout (all PEM):

- the CA: ``KEY_DIR/tls-ca/ca.pem`` (certificate) and ``ca-key.pem`` (private key, 0600) in a
  0700 directory. **Limitation:** the CA key is a software key file. Production should keep it
  on the HSM (PKCS#11) like the JPKI CA keys; that is not implemented yet (docs/deployment.md).
- one directory per service: ``ca.pem`` (the CA certificate, to check the peer), ``cert.pem``
  (the service's certificate) and ``key.pem`` (its private key, 0600). Point
  ``MYNUMBER_TLS_DIR`` at such a directory: it is the infrastructure listener's server
  certificate and client-certificate check, and the certificate the core presents to the
  intermediate servers (one setting, both directions).

The public listener (portal, OIDC, CRL/OCSP, the log's auditor API) is server-authenticated
only: ``MYNUMBER_PUBLIC_TLS_DIR`` holds its ``cert.pem`` (the chain, leaf first) and ``key.pem``,
normally from a public CA, not from this one (:func:`public_uvicorn_options`).

Keys are ECDSA P-256, signatures ECDSA-SHA256. Service certificates carry both serverAuth and
clientAuth, so one directory serves a service in both roles.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DIRNAME = "tls-ca"
CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CERT = "cert.pem"
KEY = "key.pem"
CA_DAYS = 3650
CERT_DAYS = 397  # the CA/Browser Forum ceiling; services are re-issued well before
ORGANIZATION = "mynumber"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock differences between hosts


class TlsError(ValueError):
    """The CA or a certificate request cannot be used (missing, exists, bad input)."""


@dataclass(frozen=True)
class Issued:
    directory: Path
    ca: Path
    cert: Path
    key: Path
    serial: int
    not_after: dt.datetime


def ca_directory(key_dir: Path) -> Path:
    """Where the infrastructure CA lives: ``KEY_DIR/tls-ca``."""
    return key_dir / CA_DIRNAME


def _write_private(path: Path, data: bytes, *, overwrite: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def init_ca(directory: Path, *, common_name: str = "mynumber infrastructure CA",
            days: int = CA_DAYS) -> bool:
    """Create the CA in ``directory`` (0700) unless it exists; True when created.

    A half-created CA (one of the two files missing) is an error, never silently replaced."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and key_path.exists():
        load_ca(directory)  # fail loudly if what is there is unusable
        return False
    if cert_path.exists() or key_path.exists():
        raise TlsError(f"{directory} holds only part of a CA; remove it or restore the other file")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key), overwrite=False)
    cert_path.write_bytes(_cert_pem(cert))
    return True


def load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not cert_path.exists() or not key_path.exists():
        raise TlsError(f"no CA in {directory}; run `mynumber tls init-ca` first")
    if key_path.stat().st_mode & 0o077:
        raise TlsError(f"{key_path} is readable by others; it must be mode 0600")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{key_path} is not an EC key")
    if key.public_key() != cert.public_key():
        raise TlsError(f"{key_path} does not belong to {cert_path}")
    return cert, key


def issue(
    ca_dir: Path,
    name: str,
    out: Path,
    *,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    days: int = CERT_DAYS,
    overwrite: bool = False,
) -> Issued:
    """Issue a server+client certificate for the service ``name`` into ``out``.

    ``dns`` and ``ips`` become the subjectAltName (what clients check the server against);
    with neither, the name itself is used as a DNS name. Refuses to replace an existing
    ``cert.pem``/``key.pem`` unless ``overwrite``."""
    if not NAME.match(name):
        raise TlsError("the service name must be 1-64 letters, digits, '.', '_' or '-'")
    if not 1 <= days <= 3650:
        raise TlsError("days must be between 1 and 3650")
    try:
        addresses = [ipaddress.ip_address(ip) for ip in ips]
    except ValueError as exc:
        raise TlsError(str(exc)) from None
    dns_names = list(dns) or ([] if addresses else [name])
    for host in dns_names:
        if not host or any(c.isspace() for c in host):
            raise TlsError(f"not a DNS name: {host!r}")
    ca_cert, ca_key = load_ca(ca_dir)
    cert_path, key_path = out / CERT, out / KEY
    if not overwrite and (cert_path.exists() or key_path.exists()):
        raise TlsError(f"{out} already holds a certificate; pass overwrite (--force) to replace")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    san: list[x509.GeneralName] = [x509.DNSName(h) for h in dns_names]
    san += [x509.IPAddress(a) for a in addresses]
    serial = x509.random_serial_number()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    _write_private(key_path, _key_pem(key), overwrite=overwrite)
    cert_path.write_bytes(_cert_pem(cert))
    (out / CA_CERT).write_bytes(_cert_pem(ca_cert))
    return Issued(out, out / CA_CERT, cert_path, key_path, serial, not_after)


def service_files(tls_dir: Path) -> tuple[Path, Path, Path]:
    """``(ca.pem, cert.pem, key.pem)`` of a service directory; all must exist."""
    files = (tls_dir / CA_CERT, tls_dir / CERT, tls_dir / KEY)
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise TlsError(f"{tls_dir} lacks {', '.join(missing)} (see `mynumber tls issue`)")
    return files


def uvicorn_options(tls_dir: Path) -> dict[str, Any]:
    """uvicorn settings for HTTPS that *requires* a client certificate from the CA."""
    ca, cert, key = service_files(tls_dir)
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key), "ssl_ca_certs": str(ca),
            "ssl_cert_reqs": ssl.CERT_REQUIRED}


def public_files(tls_dir: Path) -> tuple[Path, Path]:
    """``(cert.pem, key.pem)`` of the public listener's directory; both must exist."""
    files = (tls_dir / CERT, tls_dir / KEY)
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise TlsError(f"{tls_dir} lacks {', '.join(missing)} (the public listener's "
                       "certificate chain and private key)")
    return files


def public_uvicorn_options(tls_dir: Path) -> dict[str, Any]:
    """uvicorn settings for server-authenticated HTTPS: no client certificate is asked for."""
    cert, key = public_files(tls_dir)
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key),
            "ssl_cert_reqs": ssl.CERT_NONE}


def check_usable(tls_dir: Path, *, mutual: bool, now: dt.datetime | None = None) -> None:
    """Raise :class:`TlsError` unless the directory's certificate is in its validity period
    and its key belongs to it (and, for ``mutual``, the CA certificate is there and parses).
    What a readiness check asks of a listener's TLS settings."""
    if mutual:
        ca_path, cert_path, key_path = service_files(tls_dir)
        try:
            x509.load_pem_x509_certificate(ca_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise TlsError(f"{ca_path} is not a PEM certificate") from exc
    else:
        cert_path, key_path = public_files(tls_dir)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TlsError(f"{cert_path} or {key_path} cannot be read: {exc}") from exc
    if key.public_key() != cert.public_key():
        raise TlsError(f"{key_path} does not belong to {cert_path}")
    moment = now or _now()
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise TlsError(f"{cert_path} is not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d}"
                       f" to {cert.not_valid_after_utc:%Y-%m-%d})")


def client_context(tls_dir: Path) -> ssl.SSLContext:
    """A client context presenting this service's certificate and trusting only the CA."""
    ca, cert, key = service_files(tls_dir)
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context

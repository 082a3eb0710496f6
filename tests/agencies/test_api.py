"""The intermediate server's HTTP face, and the core's HTTP client for it."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from mynumber import envelope
from mynumber.agencies import api as agencies_api
from mynumber.agencies.interfaces import IndividualNumberInCopy, IntermediateServerUnavailable
from mynumber.agencies.models import Copy
from mynumber.agencies.schemas import RoutedQueryIn
from mynumber.agencies.transport import HttpIntermediateServer, RemoteRefusal
from mynumber.app import create_app
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.network.interfaces import RoutedQuery
from mynumber.web import problems
from tests.agencies.conftest import CITY, ITEM, PENSION, TASK, Setup, register_resident

URL = "/agencies/v1/routed-queries"


@pytest.fixture
def app(setup: Setup) -> FastAPI:
    setup.container.agencies_server = setup.server  # type: ignore[attr-defined]
    app = create_app(container=setup.container)
    if not any(getattr(r, "path", None) == URL for r in app.routes):  # until the lead wires it
        app.include_router(agencies_api.router)
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def code(setup: Setup, clerk: StaffPrincipal) -> str:
    _, number = register_resident(setup, clerk)
    code = setup.agencies.enrol_person(CITY, "A0001", number)
    setup.agencies.put_copy(CITY, "A0001", ITEM, {"income": 42})
    return code


def routed(setup: Setup, subject: str, recipient: x25519.X25519PrivateKey,
           signer: ed25519.Ed25519PrivateKey | None = None) -> RoutedQuery:
    query = RoutedQuery(serial="S000000000001", requester_id=PENSION, task_id=TASK,
                        provider_id=CITY, item_code=ITEM, subject_code=subject,
                        requester_encryption_key=envelope.raw_public(recipient.public_key()),
                        routed_at=dt.datetime.now(dt.UTC))
    key = signer or setup.network.core_key
    return dataclasses.replace(query, signature=key.sign(query.signed_bytes()))


def test_route_answers_with_a_sealed_envelope(client: TestClient, setup: Setup,
                                              code: str) -> None:
    recipient = x25519.X25519PrivateKey.generate()
    response = client.post(URL, json=RoutedQueryIn.from_query(routed(setup, code, recipient)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["serial"] == "S000000000001" and body["held"] is True
    opened = envelope.open_sealed(base64.b64decode(body["sealed"]), recipient,
                                  setup.keyring.keys(CITY).signing_public,
                                  envelope.info_for("S000000000001"))
    assert opened["data"] == {"income": 42}
    missing = client.post(URL, json=RoutedQueryIn.from_query(routed(setup, "NOPE", recipient)))
    assert missing.status_code == 200 and missing.json() == {
        "serial": "S000000000001", "held": False, "sealed": None}


def test_route_refuses_bad_input(client: TestClient, setup: Setup, code: str) -> None:
    recipient = x25519.X25519PrivateKey.generate()
    forged = RoutedQueryIn.from_query(
        routed(setup, code, recipient, signer=ed25519.Ed25519PrivateKey.generate()))
    response = client.post(URL, json=forged)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "routed_query_rejected"
    good = RoutedQueryIn.from_query(routed(setup, code, recipient))
    for broken in ({**good, "signature": "not base64"},
                   {**good, "requester_encryption_key": base64.b64encode(b"x" * 31).decode()},
                   {**good, "routed_at": "2026-11-23T10:00:00"},  # no offset
                   {**good, "extra": 1},
                   {k: v for k, v in good.items() if k != "serial"}):
        response = client.post(URL, json=broken)
        assert response.status_code == 422, broken
        assert response.json()["code"] == "invalid_input"
    other = {**good, "provider_id": "unknown-agency"}
    assert client.post(URL, json=other).status_code == 403  # signature covers the provider


def test_route_is_in_the_openapi(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][URL]["post"]
    assert operation["tags"] == ["agencies"]
    assert {"200", "403", "422", "503"} <= set(operation["responses"])


def test_route_without_a_server_is_unavailable() -> None:
    bare = FastAPI()
    problems.install(bare)
    bare.include_router(agencies_api.router)
    with TestClient(bare) as client:
        body = {"serial": "S1", "requester_id": "a", "task_id": "t", "provider_id": "b",
                "item_code": "i", "subject_code": "c",
                "requester_encryption_key": base64.b64encode(bytes(32)).decode(),
                "routed_at": "2026-11-23T10:00:00+00:00",
                "signature": base64.b64encode(bytes(64)).decode()}
        response = client.post(URL, json=body)
    assert response.status_code == 503
    assert response.json()["code"] == "intermediate_server_unavailable"


def test_http_intermediate_server_against_the_route(client: TestClient, setup: Setup,
                                                    code: str) -> None:
    remote = HttpIntermediateServer("http://testserver", client=client)
    recipient = x25519.X25519PrivateKey.generate()
    answer = remote.answer(routed(setup, code, recipient))
    assert answer.held and answer.sealed is not None
    opened = envelope.open_sealed(answer.sealed, recipient,
                                  setup.keyring.keys(CITY).signing_public,
                                  envelope.info_for(answer.serial))
    assert opened["data"] == {"income": 42}
    assert remote.answer(routed(setup, "NOPE", recipient)).held is False
    with pytest.raises(RemoteRefusal) as caught:
        remote.answer(routed(setup, code, recipient, signer=ed25519.Ed25519PrivateKey.generate()))
    assert caught.value.extra["remote_code"] == "routed_query_rejected"


def test_query_end_to_end_over_http(client: TestClient, setup: Setup,
                                    clerk: StaffPrincipal) -> None:
    """The fake core reaches the provider only through HttpIntermediateServer."""
    setup.network.servers[CITY] = HttpIntermediateServer("http://testserver", client=client)
    _, number = register_resident(setup, clerk)
    setup.agencies.enrol_person(CITY, "A0001", number)
    setup.agencies.enrol_person(PENSION, "P-1", number)
    setup.agencies.put_copy(CITY, "A0001", ITEM, {"income": 42})
    setup.network.permitted.add((PENSION, TASK, CITY, ITEM))
    result = setup.agencies.query(PENSION, "P-1", TASK, CITY, ITEM)
    assert result.data == {"income": 42}
    assert setup.server is not setup.network.servers[CITY]


def test_http_intermediate_server_unreachable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with HttpIntermediateServer(f"http://127.0.0.1:{port}", timeout=2) as remote:
        query = RoutedQuery("S1", "a", "t", "b", "i", "c", bytes(32),
                            dt.datetime.now(dt.UTC), bytes(64))
        with pytest.raises(IntermediateServerUnavailable):
            remote.answer(query)


# --- over a real socket with mutual TLS ------------------------------------------------------


def _certificate(name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
                 *, ca: bool = False, ip: str | None = None
                 ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(path: Path, cert: x509.Certificate,
           key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_http_intermediate_server_over_mutual_tls(app: FastAPI, setup: Setup, code: str,
                                                  tmp_path: Path) -> None:
    ca_cert, ca_key = _certificate("test network CA", None, ca=True)
    ca_path, _ = _write(tmp_path / "ca", ca_cert, ca_key)
    server_cert, server_key = _certificate("intermediate server", (ca_cert.subject, ca_key),
                                           ip="127.0.0.1")
    server_paths = _write(tmp_path / "server", server_cert, server_key)
    client_paths = _write(tmp_path / "core", *_certificate("network core",
                                                           (ca_cert.subject, ca_key)))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
        ssl_certfile=str(server_paths[0]), ssl_keyfile=str(server_paths[1]),
        ssl_ca_certs=str(ca_path), ssl_cert_reqs=ssl.CERT_REQUIRED))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        recipient = x25519.X25519PrivateKey.generate()
        with HttpIntermediateServer(f"https://127.0.0.1:{port}", client_cert=client_paths[0],
                                    client_key=client_paths[1], ca_bundle=ca_path) as remote:
            answer = remote.answer(routed(setup, code, recipient))
        assert answer.held and answer.sealed is not None
        assert envelope.open_sealed(answer.sealed, recipient,
                                    setup.keyring.keys(CITY).signing_public,
                                    envelope.info_for(answer.serial))["data"] == {"income": 42}
        # Without a client certificate the TLS handshake fails: the server is unreachable.
        with HttpIntermediateServer(f"https://127.0.0.1:{port}", ca_bundle=ca_path) as stranger, \
                pytest.raises(IntermediateServerUnavailable):
            stranger.answer(routed(setup, code, recipient))
        # A server certificate from another CA is not trusted.
        with HttpIntermediateServer(f"https://127.0.0.1:{port}", client_cert=client_paths[0],
                                    client_key=client_paths[1]) as untrusting, \
                pytest.raises(IntermediateServerUnavailable):
            untrusting.answer(routed(setup, code, recipient))
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_route_withholds_a_copy_carrying_an_individual_number(
        client: TestClient, setup: Setup, code: str) -> None:
    number = "123456789018"  # synthetic, valid check digit
    with setup.container.databases.unit_of_work("agencies") as session:
        session.execute(update(Copy).where(Copy.agency_id == CITY)
                        .values(payload={"income": 42, "memo": number}))
    recipient = x25519.X25519PrivateKey.generate()
    response = client.post(URL, json=RoutedQueryIn.from_query(routed(setup, code, recipient)))
    assert response.status_code == 422
    assert response.json()["code"] == "individual_number_in_copy"
    assert number not in response.text
    # The core's HTTP client turns it back into the same error (the core records the reason).
    remote = HttpIntermediateServer("http://testserver", client=client)
    with pytest.raises(IndividualNumberInCopy):
        remote.answer(routed(setup, code, recipient))

"""Medical institutions' terminals: registration with their own certificate, signed requests
(fresh, signed, certificate valid, nonce once in the database), suspension, and the staff
who operate a terminal from the reception pages (set, audited, matched by the whole name)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from mynumber.app import Container
from mynumber.db import utcnow
from mynumber.insurance import models as m
from mynumber.insurance.eligibility import (
    MAX_OPERATORS,
    OPERATOR_NAME_MAX,
    EligibilityServiceImpl,
)
from mynumber.insurance.interfaces import (
    InvalidInsuranceInput,
    Terminal,
    TerminalNotFound,
    TerminalRefused,
    TerminalStatus,
)
from tests.insurance.support_eligibility import (
    CLINIC,
    in_parallel,
    make_service,
    register,
    rows,
    signed,
    terminal_key,
)


@pytest.fixture
def service(container: Container) -> EligibilityServiceImpl:
    return make_service(container)


def _refused(reason: str, call: object) -> None:
    with pytest.raises(TerminalRefused) as refused:
        call()  # type: ignore[operator]
    assert refused.value.extra["reason"] == reason, refused.value.detail


def _certificate(key: object, sign_with: object, algorithm: object = None) -> str:
    now = utcnow()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "terminal")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key).serial_number(x509.random_serial_number())  # type: ignore[arg-type]
                   .not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=30))
                   .sign(sign_with, algorithm))  # type: ignore[arg-type]
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


# --- registration ------------------------------------------------------------------------------


@pytest.mark.parametrize("ecdsa", [False, True])
def test_a_terminal_is_registered_with_its_certificate(
        container: Container, service: EligibilityServiceImpl, ecdsa: bool) -> None:
    terminal, key = register(service, ecdsa=ecdsa)
    assert terminal.id.startswith("trm_") and terminal.status is TerminalStatus.ACTIVE
    assert (terminal.institution_code, terminal.institution_name) == CLINIC
    assert service.terminal(terminal.id) == terminal
    row = rows(container.databases, m.TerminalRow, id=terminal.id)[0]
    loaded = x509.load_pem_x509_certificate(key.pem.encode())
    assert row.not_after == loaded.not_valid_after_utc
    assert row.public_key == loaded.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert [e.actor for e in rows(container.databases, m.AuditEvent,
                                  tag="insurance:terminal:register")] == ["admin:test"]
    assert signed(terminal, key).send(service) == terminal


def test_registration_refuses_what_is_not_a_terminal_certificate(
        service: EligibilityServiceImpl) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p384 = ec.generate_private_key(ec.SECP384R1())
    now = utcnow()
    bad = {
        "rsa": _certificate(rsa_key.public_key(), rsa_key, hashes.SHA256()),
        "p384": _certificate(p384.public_key(), p384, hashes.SHA384()),
        "expired": terminal_key(not_before=now - dt.timedelta(days=30),
                                not_after=now - dt.timedelta(days=1)).pem,
        "future": terminal_key(not_before=now + dt.timedelta(days=1)).pem,
        "garbage": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    }
    for name, pem in bad.items():
        with pytest.raises(InvalidInsuranceInput) as refused:
            service.register_terminal(*CLINIC, pem, "admin:test")
        assert refused.value.field == "certificate_pem", name
    good = terminal_key().pem
    for code, name in (("131234567", "x"), ("13123456789", "x"), ("131234567a", "x"),
                       (CLINIC[0], ""), (CLINIC[0], "a\x00b"), (CLINIC[0], "x" * 121)):
        with pytest.raises(InvalidInsuranceInput):
            service.register_terminal(code, name, good, "admin:test")
    assert service.terminals() == []


def test_unknown_and_suspended_terminals_are_one_answer(
        service: EligibilityServiceImpl) -> None:
    terminal, key = register(service)
    for unknown in ("trm_0000000000000000", "nope", ""):
        with pytest.raises(TerminalNotFound):
            service.authenticate_terminal(unknown, "eligibility-check", {}, b"x" * 64,
                                          "n" * 24, utcnow())
    service.set_terminal_status(terminal.id, TerminalStatus.SUSPENDED, "admin:test")
    assert service.terminal(terminal.id).status is TerminalStatus.SUSPENDED
    request = signed(terminal, key)
    with pytest.raises(TerminalNotFound):
        request.send(service)
    service.set_terminal_status(terminal.id, TerminalStatus.ACTIVE, "admin:test")
    assert request.send(service).id == terminal.id  # the refused request did not spend it
    with pytest.raises(TerminalNotFound):
        service.terminal("trm_0000000000000000")
    assert service.terminals(CLINIC[0]) == [service.terminal(terminal.id)]
    assert service.terminals("1300000000") == []


# --- signed requests ---------------------------------------------------------------------------


def test_stale_requests_are_refused(service: EligibilityServiceImpl) -> None:
    terminal, key = register(service)
    now = utcnow()
    for offset in (dt.timedelta(minutes=-6), dt.timedelta(minutes=6)):
        _refused("stale", lambda: signed(terminal, key, requested_at=now + offset).send(service))
    naive = dt.datetime.now()
    _refused("stale", lambda: service.authenticate_terminal(
        terminal.id, "eligibility-check", {}, b"x", "n" * 24, naive))
    _refused("stale", lambda: service.authenticate_terminal(
        terminal.id, "eligibility-check", {}, b"x", "n" * 24, dt.datetime.min.replace(
            tzinfo=dt.UTC)))
    assert signed(terminal, key, requested_at=now - dt.timedelta(minutes=4)).send(service)


def test_a_request_after_the_terminal_certificate_expired_is_refused(
        container: Container, service: EligibilityServiceImpl) -> None:
    terminal, key = register(service)
    not_after = rows(container.databases, m.TerminalRow, id=terminal.id)[0].not_after
    later = not_after + dt.timedelta(minutes=1)
    service.clock = lambda: later
    _refused("certificate_expired", lambda: signed(terminal, key, requested_at=later).send(service))


def test_bad_signatures_are_refused_and_do_not_spend_the_nonce(
        service: EligibilityServiceImpl) -> None:
    terminal, key = register(service)
    other_terminal, other_key = register(service, ecdsa=True)
    request = signed(terminal, key, "eligibility-check", {"challenge_id": "abc"})
    tampered = [
        # another field value than the one signed
        lambda: service.authenticate_terminal(terminal.id, request.kind,
                                              {"challenge_id": "abd"}, request.signature,
                                              request.nonce, request.requested_at),
        # another kind of request
        lambda: service.authenticate_terminal(terminal.id, "consent", request.fields,
                                              request.signature, request.nonce,
                                              request.requested_at),
        # another nonce or time than the ones signed
        lambda: service.authenticate_terminal(terminal.id, request.kind, request.fields,
                                              request.signature, "m" * 24,
                                              request.requested_at),
        lambda: service.authenticate_terminal(terminal.id, request.kind, request.fields,
                                              request.signature, request.nonce,
                                              request.requested_at + dt.timedelta(seconds=1)),
        # signed by another terminal's key, or presented as another terminal's
        lambda: service.authenticate_terminal(terminal.id, request.kind, request.fields,
                                              other_key.sign(b"x"), request.nonce,
                                              request.requested_at),
        lambda: service.authenticate_terminal(other_terminal.id, request.kind,
                                              request.fields, request.signature,
                                              request.nonce, request.requested_at),
        lambda: service.authenticate_terminal(terminal.id, request.kind, request.fields,
                                              b"", request.nonce, request.requested_at),
    ]
    for fields in (None, [1, 2], {"blob": b"\x00"}, {"nested": {1, 2}}):
        tampered.append(lambda fields=fields: service.authenticate_terminal(
            terminal.id, request.kind, fields, request.signature, request.nonce,  # type: ignore[arg-type]
            request.requested_at))
    for call in tampered:
        _refused("bad_signature", call)
    _refused("malformed_nonce", lambda: service.authenticate_terminal(
        terminal.id, request.kind, request.fields, request.signature, "short",
        request.requested_at))
    assert request.send(service) == terminal
    assert signed(other_terminal, other_key).send(service) == other_terminal


def test_a_nonce_is_accepted_once_per_terminal(
        container: Container, service: EligibilityServiceImpl) -> None:
    terminal, key = register(service)
    other, other_key = register(service)
    nonce = "the-same-nonce-0123456789"
    signed(terminal, key, nonce=nonce).send(service)
    _refused("replayed", lambda: signed(terminal, key, nonce=nonce).send(service))
    signed(other, other_key, nonce=nonce).send(service)  # another issuer's own
    issuers = sorted(row.issuer for row in rows(container.databases, m.RequestNonce,
                                                nonce=nonce))
    assert issuers == sorted([f"terminal:{terminal.id}", f"terminal:{other.id}"])


def test_a_replay_in_parallel_is_accepted_once(service: EligibilityServiceImpl) -> None:
    terminal, key = register(service)
    request = signed(terminal, key)
    outcomes = in_parallel(8, lambda _: request.send(service))
    accepted = [o for o in outcomes if isinstance(o, Terminal)]
    replayed = [o for o in outcomes if isinstance(o, TerminalRefused)]
    assert len(accepted) == 1 and len(replayed) == 7, outcomes
    assert {r.extra["reason"] for r in replayed} == {"replayed"}


# --- operators ---------------------------------------------------------------------------------


def test_operators_are_set_deduplicated_sorted_and_audited(
        container: Container, service: EligibilityServiceImpl) -> None:
    terminal, key = register(service)
    assert terminal.operators == ()
    named = service.set_terminal_operators(terminal.id, ["clinic-sato", "clinic-ito",
                                                         "clinic-sato", "山田"], "admin:test")
    assert named.operators == ("clinic-ito", "clinic-sato", "山田")
    assert service.terminal(terminal.id) == named
    assert service.terminals() == [named]
    assert signed(terminal, key).send(service).operators == named.operators  # the hot path
    assert rows(container.databases, m.TerminalRow, id=terminal.id)[0].operators == (
        "clinic-ito clinic-sato 山田")
    cleared = service.set_terminal_operators(terminal.id, [], "operator:cli")
    assert cleared.operators == () and service.terminals_for_operator("clinic-ito") == []
    events = rows(container.databases, m.AuditEvent, tag="insurance:terminal:operators")
    assert [(e.actor, e.subject, e.details["operators"]) for e in events] == [
        ("admin:test", f"terminal:{terminal.id}", ["clinic-ito", "clinic-sato", "山田"]),
        ("operator:cli", f"terminal:{terminal.id}", []),
    ]


def test_operator_names_take_the_staff_sign_in_form(
        container: Container, service: EligibilityServiceImpl) -> None:
    from mynumber.auth.services import USERNAME_MAX

    assert OPERATOR_NAME_MAX == USERNAME_MAX  # the staff sign-in's own limit
    terminal, _ = register(service)
    service.set_terminal_operators(terminal.id, ["kept"], "admin:test")
    longest = [f"{i:02d}" + "x" * (OPERATOR_NAME_MAX - 2) for i in range(9)]
    refused: list[object] = [
        ["bad name"], [""], ["x" * (OPERATOR_NAME_MAX + 1)], ["a\tb"], ["a\x00b"],
        ["山田\u3000太郎"], [None], [b"bytes"],
        "kept",  # one name, not a list of them
        [f"user{i}" for i in range(MAX_OPERATORS + 1)],
        [*longest, "y" * OPERATOR_NAME_MAX],  # 10 of 40: more than the column holds
    ]
    for names in refused:
        with pytest.raises(InvalidInsuranceInput) as error:
            service.set_terminal_operators(terminal.id, names, "admin:test")  # type: ignore[arg-type]
        assert error.value.field == "operators", names
        assert "bad name" not in error.value.detail  # the value is never echoed
    with pytest.raises(InvalidInsuranceInput):
        service.set_terminal_operators(terminal.id, ["ok"], "")
    with pytest.raises(TerminalNotFound):
        service.set_terminal_operators("trm_0000000000000000", ["ok"], "admin:test")
    with pytest.raises(TerminalNotFound):
        service.set_terminal_operators("nope", ["ok"], "admin:test")
    assert service.terminal(terminal.id).operators == ("kept",)
    assert len(rows(container.databases, m.AuditEvent,
                    tag="insurance:terminal:operators")) == 1
    # The limits themselves are accepted.
    most = [f"user{i}" for i in range(MAX_OPERATORS)] + ["user0"]
    assert len(service.set_terminal_operators(terminal.id, most, "admin:test").operators) == 20
    assert service.set_terminal_operators(terminal.id, longest, "admin:test").operators == (
        tuple(longest))


def test_an_operator_is_matched_by_the_whole_name(service: EligibilityServiceImpl) -> None:
    abc, _ = register(service)
    ab, _ = register(service)
    upper, _ = register(service)
    later, _ = register(service)
    service.set_terminal_operators(abc.id, ["abc", "xab"], "admin:test")
    service.set_terminal_operators(ab.id, ["ab", "zz"], "admin:test")
    service.set_terminal_operators(upper.id, ["AB"], "admin:test")
    service.set_terminal_operators(later.id, ["ab"], "admin:test")

    def ids(username: str) -> list[str]:
        return [t.id for t in service.terminals_for_operator(username)]

    assert ids("ab") == [ab.id, later.id]  # oldest first; not the terminal of "abc"/"xab"
    assert ids("abc") == [abc.id] and ids("AB") == [upper.id] and ids("zz") == [ab.id]
    for nobody in ("a", "b", "bc", "Ab", "a_c", "a%", "ab zz", "ab\tzz", "", "x" * 41):
        assert ids(nobody) == [], nobody
    assert service.terminals_for_operator(None) == []  # type: ignore[arg-type]


def test_a_suspended_terminal_keeps_its_operators_and_is_listed_only_when_asked(
        service: EligibilityServiceImpl) -> None:
    terminal, _ = register(service)
    service.set_terminal_status(terminal.id, TerminalStatus.SUSPENDED, "admin:test")
    suspended = service.set_terminal_operators(terminal.id, ["clinic-ito"], "admin:test")
    assert suspended.status is TerminalStatus.SUSPENDED
    assert suspended.operators == ("clinic-ito",)
    assert service.terminals_for_operator("clinic-ito") == []
    assert service.terminals_for_operator("clinic-ito", include_suspended=True) == [suspended]
    active = service.set_terminal_status(terminal.id, TerminalStatus.ACTIVE, "admin:test")
    assert active.operators == ("clinic-ito",)
    assert service.terminals_for_operator("clinic-ito") == [active]

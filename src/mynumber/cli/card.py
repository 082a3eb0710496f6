"""`mynumber card …`: virtual test cards for relying-party developers.

``issue-test`` mints a synthetic adult resident (registered as a birth by the system), receives
a card application and issues a virtual card at a synthetic counter (a staff account
``test-card-issuer`` of the municipality, created on first use, records the identity
verification). It writes DIR/card.json (the virtual chip: keep it private, mode 0600),
DIR/signing-cert.pem, DIR/auth-cert.pem and DIR/ca-chain.pem (the issuing CAs of both
certificates first, the root last), and PRINTS THE FOUR PINs it set: a test card's PINs are
not secret. The defaults (ABC123 / 1234 / 5678 / 2468) can be replaced with the options.
Failed PIN entries in ``sign`` and ``auth`` are audited in the card database of the
environment (MYNUMBER_DATA_DIR / MYNUMBER_DATABASE_URL).

``issue-test`` is a test tool: with MYNUMBER_MODE=production it refuses (exit code 2) before it
opens a database or reads a key, since it would write a synthetic resident and staff account
into the registry, record an identity verification that never happened and have the CA issue
certificates protected by published PINs.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynumber.cli.common import CliGroup, console, container_from_env, fail, refuse_in_production

app = typer.Typer(help="My Number Card: virtual test cards.", no_args_is_help=True,
                  cls=CliGroup)

TEST_ISSUER = "test-card-issuer"
CardOpt = Annotated[Path, typer.Option("--card", help="the virtual card file (card.json)")]


def _verify(cert_pem: bytes, signature: bytes, data: bytes) -> None:
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


@app.command("issue-test")
def issue_test(
    out: Annotated[Path, typer.Option(help="directory for card.json and the certificates")],
    municipality: Annotated[str, typer.Option(help="municipality code")] = "131041",
    signing_password: Annotated[str, typer.Option(help="6-16 A-Z0-9")] = "ABC123",  # noqa: S107 - a test card
    user_auth_pin: Annotated[str, typer.Option(help="4 digits")] = "1234",
    residence_pin: Annotated[str, typer.Option(help="4 digits")] = "5678",
    card_info_pin: Annotated[str, typer.Option(help="4 digits")] = "2468",
) -> None:
    """Mint a synthetic test resident with an issued virtual card; print its PINs
    (embedded mode only: production mode refuses it)."""
    refuse_in_production("`mynumber card issue-test`", "Cards are issued at the counter "
                         "(窓口) after a real identity verification.")
    from mynumber.auth.interfaces import StaffPrincipal, StaffRole
    from mynumber.card.interfaces import IdentityCheck, IssuedPins
    from mynumber.errors import DomainError
    from mynumber.jpki.interfaces import CertificateKind
    from mynumber.registry.interfaces import SYSTEM, NewResident, Sex

    container = container_from_env()
    pins = IssuedPins(signing_password, user_auth_pin, residence_pin, card_info_pin)
    try:
        found = container.staff_auth.find_staff(TEST_ISSUER)
        if found is None:
            container.staff_auth.create_staff(TEST_ISSUER, "test card issuer", municipality,
                                              StaffRole.CLERK, secrets.token_urlsafe(24))
            found = container.staff_auth.find_staff(TEST_ISSUER)
        assert found is not None
        clerk = StaffPrincipal(found.id, TEST_ISSUER, "test card issuer", municipality,
                               StaffRole.CLERK)
        birth = dt.date(1985, 1, 1) + dt.timedelta(days=secrets.randbelow(365 * 15))
        resident = container.registry.register_birth(SYSTEM, NewResident(
            family_name="試験", given_name="太郎", family_name_kana="シケン",
            given_name_kana="タロウ", birth_date=birth, sex=Sex.MALE,
            municipality_code=municipality, address="東京都新宿区西新宿二丁目8番1号",
        ), birth)
        number = container.registry.reveal_number(clerk, resident.id, "テストカード発行")
        application = container.card.apply(clerk, resident.id)
        record, card = container.card.issue(
            clerk, application.application_id,
            IdentityCheck(number, "notification_letter", ("drivers_license",)), pins)
        out.mkdir(parents=True, exist_ok=True)
        card.save(out / "card.json")
        (out / "signing-cert.pem").write_bytes(card.certificate("signing", signing_password))
        (out / "auth-cert.pem").write_bytes(card.certificate("auth"))
        chains = [container.jpki.ca_chain_pem(k)
                  for k in (CertificateKind.SIGNING, CertificateKind.AUTH)]
        blocks: list[str] = []
        for chain in chains:
            for block in chain.split("-----END CERTIFICATE-----"):
                block = block.strip()
                if block:
                    pem = block + "\n-----END CERTIFICATE-----\n"
                    if pem not in blocks:
                        blocks.append(pem)
        # issuing CAs first (each chain lists its issuing CA before the shared root), root last
        root = chains[0].strip().split("-----END CERTIFICATE-----")[-2].strip() \
            + "\n-----END CERTIFICATE-----\n"
        ordered = [b for b in blocks if b != root] + [root]
        (out / "ca-chain.pem").write_text("".join(ordered))
    except DomainError as exc:
        fail(exc.detail)
    finally:
        container.close()
    console.print(f"test card {record.card_id} for resident #{resident.id} "
                  f"(application {application.application_id}), valid to {record.expires_on}")
    console.print(f"wrote {out}/card.json, signing-cert.pem, auth-cert.pem, ca-chain.pem")
    console.print("TEST PINs (not secret): "
                  f"signing password {signing_password}, user-auth PIN {user_auth_pin}, "
                  f"residence PIN {residence_pin}, card-info PIN {card_info_pin}")


def _open(card_path: Path):  # type: ignore[no-untyped-def]
    from mynumber.card.chip import CardFileError, VirtualCard

    container = container_from_env()
    try:
        return container, VirtualCard.load(card_path,
                                           on_failed_pin=container.card.record_failed_pin)
    except CardFileError as exc:
        container.close()
        fail(str(exc))


def _sign(card_path: Path, slot: str, pin: str, data: bytes) -> tuple[bytes, bytes]:
    from mynumber.card.chip import CardError

    container, card = _open(card_path)
    try:
        signature = card.sign(slot, pin, data)
        card.save(card_path)
        cert = card.certificate(slot, pin if slot == "signing" else None)
        _verify(cert, signature, data)
        return signature, cert
    except CardError as exc:
        card.save(card_path)  # the counter moved: keep it, as the chip would
        fail(str(exc))
    except InvalidSignature:
        fail("the signature does not verify against the card's certificate")
    finally:
        container.close()


@app.command("sign")
def sign(
    card: CardOpt,
    password: Annotated[str, typer.Option(help="the signing password")],
    file: Annotated[Path, typer.Argument(help="file to sign")],
    out: Annotated[Path | None, typer.Option(help="signature file (default FILE.sig)")] = None,
) -> None:
    """Sign FILE with the card's signing key (RSASSA-PKCS1-v1_5, SHA-256) and verify it."""
    if not file.is_file():
        fail(f"no such file: {file}")
    signature, _ = _sign(card, "signing", password, file.read_bytes())
    target = out or file.with_name(file.name + ".sig")
    target.write_bytes(signature)
    console.print(f"wrote {target} (verified with signing-cert)")


@app.command("auth")
def auth(
    card: CardOpt,
    pin: Annotated[str, typer.Option(help="the user-authentication PIN")],
    challenge: Annotated[str, typer.Option(help="challenge as hex")],
) -> None:
    """Sign a challenge with the user-authentication key; print the signature as hex."""
    try:
        data = bytes.fromhex(challenge)
    except ValueError:
        fail("the challenge must be hexadecimal")
    signature, _ = _sign(card, "auth", pin, data)
    print(signature.hex())


@app.command("report-lost")
def report_lost(card: CardOpt) -> None:
    """Report the card lost: suspend it and revoke both certificates."""
    from mynumber.errors import DomainError
    from mynumber.registry.interfaces import SYSTEM

    container, chip = _open(card)
    try:
        report = container.card.suspend(SYSTEM, chip.card_id)
    except DomainError as exc:
        fail(exc.detail)
    finally:
        container.close()
    console.print(f"card {report.card_id} {report.state.value}; "
                  f"{len(report.revoked_serials)} certificate(s) revoked")


@app.command("renew-certificates")
def renew_certificates(
    card: CardOpt,
    signing_password: Annotated[str, typer.Option(
        help="signing password of the new signing certificate (6-16 A-Z0-9)")] = "ABC123",  # noqa: S107 - a test card
    user_auth_pin: Annotated[str, typer.Option(
        help="user-authentication PIN of a new auth certificate (4 digits)")] = "1234",
    card_info_pin: Annotated[str, typer.Option(
        help="card-information PIN: the 個人番号 is read from the card")] = "2468",
) -> None:
    """New certificates on the test card after its resident's four items changed (a move, a
    name change), when the holder turned 15 or from 3 months before the certificates expire;
    rewrites card.json and the PEM files beside it (embedded mode only)."""
    refuse_in_production("`mynumber card renew-certificates`", "Certificates are renewed at "
                         "the counter (窓口) after a real identity verification.")
    from mynumber.card.chip import CardError
    from mynumber.card.interfaces import IdentityCheck
    from mynumber.errors import DomainError
    from mynumber.registry.interfaces import SYSTEM

    container, chip = _open(card)
    try:
        try:
            info = chip.read_card_info(card_info_pin)
        except CardError as exc:
            chip.save(card)  # the counter moved: keep it, as the chip would
            fail(f"{exc}; give the card-information PIN with --card-info-pin")
        # 本人確認 with the card itself: a photo ID that also confirms the number.
        check = IdentityCheck(info.individual_number, "individual_number_card",
                              ("individual_number_card",))
        result = container.card.renew_certificates(
            SYSTEM, chip.card_id, check, signing_password=signing_password,
            user_auth_pin=user_auth_pin, chip=chip)
        chip.save(card)
    except DomainError as exc:
        fail(exc.detail)
    finally:
        container.close()
    directory = card.parent
    files = {"signing": "signing-cert.pem", "auth": "auth-cert.pem"}
    for kind, pem in result.issued.items():
        (directory / files[kind]).write_text(pem)
    console.print(f"card {result.card.card_id}: new "
                  + ", ".join(f"{k} certificate (serial {s})" for k, s in (
                      ("signing", result.card.signing_serial), ("auth", result.card.auth_serial))
                      if k in result.issued))
    for old, new in result.links.items():
        console.print(f"serial {old} -> {new} (linked for relying parties)")
    console.print("wrote " + ", ".join(f"{directory}/{files[k]}" for k in result.issued))

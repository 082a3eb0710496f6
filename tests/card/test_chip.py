"""The virtual My Number Card chip behaves like the real one (PINs, counters, keys, files)."""

from __future__ import annotations

import datetime
import doctest
import inspect
import json
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from mynumber.card import chip
from mynumber.card.chip import (
    CardFileError,
    CardInfo,
    CertificateMismatch,
    FailedPinEvent,
    NoSuchKey,
    PinFormatError,
    PinKind,
    PinLocked,
    ResetNotAuthorized,
    VirtualCard,
    WrongPin,
)
from mynumber.codes.exceptions import ValidationError

NUMBER = "621498320257"
PINS = {
    PinKind.SIGNING: "SIGN2026",
    PinKind.USER_AUTH: "1234",
    PinKind.RESIDENCE: "5678",
    PinKind.CARD_INFO: "2468",
}
WRONG = {
    PinKind.SIGNING: "WRONG999",
    PinKind.USER_AUTH: "4321",
    PinKind.RESIDENCE: "8765",
    PinKind.CARD_INFO: "8642",
}
TRIES = {PinKind.SIGNING: 5, PinKind.USER_AUTH: 3, PinKind.RESIDENCE: 3, PinKind.CARD_INFO: 3}
PRIVATE_PEM_MARKERS = (b"BEGIN RSA PRIVATE KEY", b"BEGIN PRIVATE KEY", b"PRIVATE KEY-----")


def _issue(**kwargs: object) -> VirtualCard:
    return VirtualCard.issue(
        individual_number=NUMBER,
        name="番号 花子",
        address="東京都新宿区西新宿2-8-1",
        date_of_birth=datetime.date(1990, 4, 1),
        sex="女",
        signing_password=PINS[PinKind.SIGNING],
        user_auth_pin=PINS[PinKind.USER_AUTH],
        residence_pin=PINS[PinKind.RESIDENCE],
        card_info_pin=PINS[PinKind.CARD_INFO],
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def card() -> VirtualCard:
    return _issue()


@pytest.fixture(scope="module")
def keyed_card_factory() -> Iterator[Callable[[], VirtualCard]]:
    """Cards with both key pairs and certificates, saved once (RSA generation is slow)."""
    import tempfile

    base = _issue()
    for slot in ("signing", "auth"):
        base.generate_key(slot)
        base.install_certificate(slot, _certificate_for(base.public_key(slot), slot))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "card.json"
        base.save(path)
        yield lambda: VirtualCard.load(path)


_CA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate_for(public_key: rsa.RSAPublicKey, cn: str) -> bytes:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test JPKI CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(_CA_KEY, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _verify(public_key: rsa.RSAPublicKey, signature: bytes, data: bytes) -> None:
    public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def _allow(card_id: str, kind: PinKind) -> bool:
    return True


# --------------------------------------------------------------------------- doctests


def test_module_doctests() -> None:
    result = doctest.testmod(chip, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
    assert result.attempted > 0


# --------------------------------------------------------------------------- PIN format


@pytest.mark.parametrize(
    "pin",
    ["ABC12", "A" * 17, "abc123", "ABC-123", "ABC 123", "ＡＢＣ１２３", "ABCÄ12", "", "123456\n"],
)
def test_signing_password_format_rejected(card: VirtualCard, pin: str) -> None:
    with pytest.raises(PinFormatError) as exc_info:
        card.verify_pin(PinKind.SIGNING, pin)
    message = str(exc_info.value)
    assert "6 to 16" in message and "upper-case" in message
    if pin:
        assert pin not in message
    assert card.remaining_tries(PinKind.SIGNING) == 5  # a malformed entry costs no try


@pytest.mark.parametrize("pin", ["ABCDEF", "123456", "A1B2C3D4E5F6G7H8", "SIGN2026"])
def test_signing_password_format_accepted(pin: str) -> None:
    card = VirtualCard.issue(
        individual_number=NUMBER,
        name="x",
        address="y",
        date_of_birth=datetime.date(2000, 1, 1),
        sex="男",
        signing_password=pin,
        user_auth_pin="0000",
        residence_pin="0000",
        card_info_pin="0000",
    )
    card.verify_pin(PinKind.SIGNING, pin)


@pytest.mark.parametrize("kind", [PinKind.USER_AUTH, PinKind.RESIDENCE, PinKind.CARD_INFO])
@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "ABCD", "１２３４", "12 4", "٠١٢٣", ""])
def test_four_digit_pin_format_rejected(card: VirtualCard, kind: PinKind, pin: str) -> None:
    with pytest.raises(PinFormatError) as exc_info:
        card.verify_pin(kind, pin)
    assert "4 digits" in str(exc_info.value)
    assert card.remaining_tries(kind) == 3


def test_issue_rejects_bad_pins_and_bad_number() -> None:
    with pytest.raises(PinFormatError):
        _issue_with(user_auth_pin="12345")
    with pytest.raises(PinFormatError):
        _issue_with(signing_password="short")
    with pytest.raises(ValidationError):
        _issue_with(individual_number="123456789019")


def _issue_with(**overrides: str) -> VirtualCard:
    args: dict[str, object] = {
        "individual_number": NUMBER,
        "name": "x",
        "address": "y",
        "date_of_birth": datetime.date(2000, 1, 1),
        "sex": "男",
        "signing_password": "ABCDEF",
        "user_auth_pin": "0000",
        "residence_pin": "0000",
        "card_info_pin": "0000",
    }
    args.update(overrides)
    return VirtualCard.issue(**args)  # type: ignore[arg-type]


def test_pin_kind_accepts_strings_and_rejects_unknown(card: VirtualCard) -> None:
    card.verify_pin("user_auth", "1234")
    with pytest.raises(NoSuchKey):
        card.verify_pin("nope", "1234")


# --------------------------------------------------------------------------- counters


@pytest.mark.parametrize("kind", list(PinKind))
def test_tries_then_locked_even_for_right_pin(card: VirtualCard, kind: PinKind) -> None:
    tries = TRIES[kind]
    for expected in range(tries - 1, -1, -1):
        with pytest.raises(WrongPin) as exc_info:
            card.verify_pin(kind, WRONG[kind])
        assert exc_info.value.remaining == expected
        assert card.remaining_tries(kind) == expected
    assert card.is_locked(kind)
    with pytest.raises(PinLocked):
        card.verify_pin(kind, PINS[kind])
    with pytest.raises(PinLocked):
        card.verify_pin(kind, WRONG[kind])
    # The other PINs are unaffected.
    for other in PinKind:
        if other is not kind:
            assert card.remaining_tries(other) == TRIES[other]
            card.verify_pin(other, PINS[other])


def test_locked_pin_refused_without_comparison(
    card: VirtualCard, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        with pytest.raises(WrongPin):
            card.verify_pin(PinKind.USER_AUTH, "0000")
    calls: list[object] = []

    def spy(*args: object) -> bytes:
        calls.append(args)
        return b""

    monkeypatch.setattr(card, "_hash_pin", spy)
    with pytest.raises(PinLocked):
        card.verify_pin(PinKind.USER_AUTH, "1234")
    assert calls == []


@pytest.mark.parametrize("kind", list(PinKind))
def test_correct_entry_resets_counter(card: VirtualCard, kind: PinKind) -> None:
    for _ in range(TRIES[kind] - 1):
        with pytest.raises(WrongPin):
            card.verify_pin(kind, WRONG[kind])
    assert card.remaining_tries(kind) == 1
    card.verify_pin(kind, PINS[kind])
    assert card.remaining_tries(kind) == TRIES[kind]


def test_locked_pin_blocks_the_operations_it_protects(
    keyed_card_factory: Callable[[], VirtualCard],
) -> None:
    card = keyed_card_factory()
    for _ in range(3):
        with pytest.raises(WrongPin):
            card.sign("auth", "0000", b"x")
    with pytest.raises(PinLocked):
        card.sign("auth", "1234", b"x")
    for _ in range(3):
        with pytest.raises(WrongPin):
            card.read_card_info("0000")
    with pytest.raises(PinLocked):
        card.read_card_info("2468")
    # Signing slot is independent.
    card.sign("signing", "SIGN2026", b"x")


def test_counter_reset_requires_authorization(card: VirtualCard) -> None:
    for _ in range(3):
        with pytest.raises(WrongPin):
            card.verify_pin(PinKind.USER_AUTH, "0000")
    seen: list[tuple[str, PinKind]] = []

    def deny(card_id: str, kind: PinKind) -> bool:
        seen.append((card_id, kind))
        return False

    for bad in (deny, lambda c, k: 1, lambda c, k: "yes", None, True):
        with pytest.raises(ResetNotAuthorized):
            card.counter_reset(PinKind.USER_AUTH, "9999", bad)  # type: ignore[arg-type]
    assert seen == [(card.card_id, PinKind.USER_AUTH)]
    assert card.is_locked(PinKind.USER_AUTH)

    card.counter_reset(PinKind.USER_AUTH, "9999", _allow)
    assert card.remaining_tries(PinKind.USER_AUTH) == 3
    with pytest.raises(WrongPin):
        card.verify_pin(PinKind.USER_AUTH, "1234")  # the old PIN no longer works
    card.verify_pin(PinKind.USER_AUTH, "9999")


def test_counter_reset_checks_new_pin_format(card: VirtualCard) -> None:
    with pytest.raises(PinFormatError):
        card.counter_reset(PinKind.SIGNING, "lower", _allow)
    card.counter_reset(PinKind.SIGNING, "NEWPASS1", _allow)
    card.verify_pin(PinKind.SIGNING, "NEWPASS1")


def test_change_pin(card: VirtualCard) -> None:
    with pytest.raises(WrongPin):
        card.change_pin(PinKind.RESIDENCE, "0000", "1111")
    assert card.remaining_tries(PinKind.RESIDENCE) == 2
    card.change_pin(PinKind.RESIDENCE, "5678", "1111")
    card.verify_pin(PinKind.RESIDENCE, "1111")
    with pytest.raises(PinFormatError):
        card.change_pin(PinKind.RESIDENCE, "1111", "11111")


# --------------------------------------------------------------------------- failure events


def test_on_failed_pin_called_for_each_failure() -> None:
    events: list[FailedPinEvent] = []
    card = _issue(on_failed_pin=events.append)
    card.verify_pin(PinKind.CARD_INFO, "2468")
    with pytest.raises(PinFormatError):
        card.verify_pin(PinKind.CARD_INFO, "12")  # never reached the chip: no event
    assert events == []
    for _ in range(3):
        with pytest.raises(WrongPin):
            card.verify_pin(PinKind.CARD_INFO, "0000")
    with pytest.raises(PinLocked):
        card.read_card_info("2468")
    with pytest.raises(WrongPin):
        card.verify_pin(PinKind.SIGNING, "WRONGPW")
    assert [(e.pin_kind, e.remaining, e.was_locked) for e in events] == [
        (PinKind.CARD_INFO, 2, False),
        (PinKind.CARD_INFO, 1, False),
        (PinKind.CARD_INFO, 0, False),
        (PinKind.CARD_INFO, 0, True),
        (PinKind.SIGNING, 4, False),
    ]
    assert all(e.card_id == card.card_id for e in events)
    for e in events:  # the event never carries a PIN
        assert "0000" not in repr(e) and "2468" not in repr(e)


def test_callback_failure_propagates_but_counter_already_counted() -> None:
    def broken(event: FailedPinEvent) -> None:
        raise RuntimeError("audit store down")

    card = _issue(on_failed_pin=broken)
    with pytest.raises(RuntimeError):
        card.verify_pin(PinKind.USER_AUTH, "0000")
    assert card.remaining_tries(PinKind.USER_AUTH) == 2


# --------------------------------------------------------------------------- keys


def test_sign_verifies_with_public_key(keyed_card_factory: Callable[[], VirtualCard]) -> None:
    card = keyed_card_factory()
    data = "電子申請 2026-11-23".encode()
    for slot, pin in (("signing", "SIGN2026"), ("auth", "1234")):
        signature = card.sign(slot, pin, data)
        public = card.public_key(slot)
        assert public.key_size == 2048
        _verify(public, signature, data)
        with pytest.raises(InvalidSignature):
            _verify(public, signature, data + b"!")
    with pytest.raises(InvalidSignature):  # the two slots hold different keys
        _verify(card.public_key("auth"), card.sign("signing", "SIGN2026", data), data)


def test_sign_requires_the_slots_own_pin(keyed_card_factory: Callable[[], VirtualCard]) -> None:
    card = keyed_card_factory()
    with pytest.raises(PinFormatError):
        card.sign("signing", "1234", b"x")  # the user-auth PIN is not a signing password
    with pytest.raises(WrongPin):
        card.sign("signing", "ABCDEF", b"x")
    with pytest.raises(PinFormatError):
        card.sign("auth", "SIGN2026", b"x")
    with pytest.raises(WrongPin):
        card.sign("auth", "2468", b"x")  # the card-info PIN does not unlock the auth key


def test_no_key_yet(card: VirtualCard) -> None:
    with pytest.raises(NoSuchKey):
        card.public_key("auth")
    with pytest.raises(NoSuchKey):
        card.sign("auth", "1234", b"x")
    with pytest.raises(NoSuchKey):
        card.certificate("auth")
    with pytest.raises(NoSuchKey):
        card.generate_key("encryption")
    assert card.remaining_tries(PinKind.USER_AUTH) == 3  # no PIN consumed


def test_certificates(keyed_card_factory: Callable[[], VirtualCard]) -> None:
    card = keyed_card_factory()
    auth_pem = card.certificate("auth")  # freely readable
    cert = x509.load_pem_x509_certificate(auth_pem)
    assert cert.public_key().public_numbers() == card.public_key("auth").public_numbers()  # type: ignore[union-attr]
    with pytest.raises(PinFormatError):
        card.certificate("signing")  # carries the 基本4情報: password needed
    with pytest.raises(WrongPin):
        card.certificate("signing", "WRONGPW")
    signing = x509.load_pem_x509_certificate(card.certificate("signing", "SIGN2026"))
    assert signing.public_key().public_numbers() == card.public_key("signing").public_numbers()  # type: ignore[union-attr]


def test_install_certificate_must_match_key(
    keyed_card_factory: Callable[[], VirtualCard],
) -> None:
    card = keyed_card_factory()
    with pytest.raises(CertificateMismatch):
        card.install_certificate("auth", _certificate_for(card.public_key("signing"), "x"))
    with pytest.raises(CertificateMismatch):
        card.install_certificate("auth", b"not a certificate")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(CertificateMismatch):
        card.install_certificate("auth", _certificate_for(other.public_key(), "x"))


def test_regenerating_a_key_drops_its_certificate(
    keyed_card_factory: Callable[[], VirtualCard],
) -> None:
    card = keyed_card_factory()
    old = card.public_key("auth").public_numbers()
    new = card.generate_key("auth")
    assert new.public_numbers() != old
    with pytest.raises(NoSuchKey):
        card.certificate("auth")


PUBLIC_API = {
    "card_id",
    "certificate",
    "change_pin",
    "counter_reset",
    "counter_update_card_info",
    "generate_key",
    "install_certificate",
    "is_locked",
    "issue",
    "load",
    "on_failed_pin",
    "public_key",
    "read_card_info",
    "remaining_tries",
    "save",
    "sign",
    "verify_pin",
}


def test_public_api_exposes_no_private_key(
    keyed_card_factory: Callable[[], VirtualCard],
) -> None:
    card = keyed_card_factory()
    public = {name for name in dir(card) if not name.startswith("_")}
    # A new public member must be reviewed for key exposure and added here deliberately.
    assert public == PUBLIC_API
    for name in public:
        value = getattr(card, name)
        assert not isinstance(value, rsa.RSAPrivateKey), name
    results: list[object] = [
        card.card_id,
        card.public_key("signing"),
        card.public_key("auth"),
        card.generate_key("auth"),
        card.sign("auth", "1234", b"x"),
        card.certificate("signing", "SIGN2026"),
        card.read_card_info("2468"),
        repr(card),
    ]
    for result in results:
        assert not isinstance(result, rsa.RSAPrivateKey)
        if isinstance(result, bytes | str):
            blob = result.encode() if isinstance(result, str) else result
            assert not any(marker in blob for marker in PRIVATE_PEM_MARKERS)
    # Return annotations name only public types.
    for name in ("public_key", "generate_key", "sign", "certificate", "read_card_info"):
        annotation = str(inspect.signature(getattr(card, name)).return_annotation)
        assert "Private" not in annotation


def test_card_cannot_be_pickled_or_copied(card: VirtualCard) -> None:
    import copy
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(card)
    with pytest.raises(TypeError):
        copy.deepcopy(card)


# --------------------------------------------------------------------------- card-face AP


def test_card_info_only_with_card_info_pin(card: VirtualCard) -> None:
    for other in (PinKind.USER_AUTH, PinKind.RESIDENCE):
        with pytest.raises(WrongPin):
            card.read_card_info(PINS[other])
    with pytest.raises(PinFormatError):
        card.read_card_info(PINS[PinKind.SIGNING])
    info = card.read_card_info("2468")
    assert isinstance(info, CardInfo)
    assert info.individual_number == NUMBER
    assert info.name == "番号 花子"
    assert info.address == "東京都新宿区西新宿2-8-1"
    assert info.date_of_birth == datetime.date(1990, 4, 1)
    assert info.sex == "女"
    assert NUMBER not in repr(info)
    assert NUMBER not in repr(card)


# --------------------------------------------------------------------------- persistence


def test_save_load_round_trip(
    tmp_path: Path, keyed_card_factory: Callable[[], VirtualCard]
) -> None:
    card = keyed_card_factory()
    for _ in range(3):
        with pytest.raises(WrongPin):
            card.verify_pin(PinKind.RESIDENCE, "0000")
    with pytest.raises(WrongPin):
        card.verify_pin(PinKind.SIGNING, "WRONGPW")
    path = tmp_path / "card.json"
    card.save(path)

    events: list[FailedPinEvent] = []
    loaded = VirtualCard.load(path, on_failed_pin=events.append)
    assert loaded.card_id == card.card_id
    assert loaded.is_locked(PinKind.RESIDENCE)
    with pytest.raises(PinLocked):
        loaded.verify_pin(PinKind.RESIDENCE, "5678")  # still locked after reload
    assert events and events[-1].was_locked
    assert loaded.remaining_tries(PinKind.SIGNING) == 4
    assert loaded.remaining_tries(PinKind.USER_AUTH) == 3
    for slot, pin in (("signing", "SIGN2026"), ("auth", "1234")):
        assert loaded.public_key(slot).public_numbers() == card.public_key(slot).public_numbers()
        _verify(card.public_key(slot), loaded.sign(slot, pin, b"data"), b"data")
    assert loaded.certificate("auth") == card.certificate("auth")
    assert loaded.read_card_info("2468") == card.read_card_info("2468")


def test_saved_file_has_no_plaintext_secrets(
    tmp_path: Path, keyed_card_factory: Callable[[], VirtualCard]
) -> None:
    card = keyed_card_factory()
    path = tmp_path / "card.json"
    card.save(path)
    raw = path.read_bytes()
    for marker in PRIVATE_PEM_MARKERS:
        assert marker not in raw
    for secret in (NUMBER, "番号 花子", "SIGN2026", "BEGIN CERTIFICATE", "新宿"):
        assert secret.encode() not in raw
    doc = json.loads(raw)
    assert doc["format"] == chip.FILE_FORMAT
    assert "NOT A SECURE ELEMENT" in doc["warning"]
    assert doc["card_key"]["protection"] == "none"
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]  # no temp file left


def test_storage_key(tmp_path: Path, card: VirtualCard) -> None:
    key = os.urandom(32)
    path = tmp_path / "card.json"
    card.save(path, storage_key=key)
    doc = json.loads(path.read_text())
    assert doc["card_key"]["protection"] == "storage-key"
    assert "key" not in doc["card_key"]
    with pytest.raises(CardFileError):
        VirtualCard.load(path)
    with pytest.raises(CardFileError):
        VirtualCard.load(path, storage_key=os.urandom(32))
    with pytest.raises(CardFileError):
        VirtualCard.load(path, storage_key=b"short")
    loaded = VirtualCard.load(path, storage_key=key)
    assert loaded.read_card_info("2468").individual_number == NUMBER


def test_tampered_or_junk_file_rejected(tmp_path: Path, card: VirtualCard) -> None:
    path = tmp_path / "card.json"
    card.save(path)
    doc = json.loads(path.read_text())
    doc["card_id"] = "OTHERCARD"  # header is authenticated
    path.write_text(json.dumps(doc))
    with pytest.raises(CardFileError):
        VirtualCard.load(path)
    for junk in ("", "{}", "[]", '{"format": "mynumber.virtual-card", "version": 1}', "null"):
        path.write_text(junk)
        with pytest.raises(CardFileError):
            VirtualCard.load(path)
    with pytest.raises(CardFileError):
        VirtualCard.load(tmp_path / "missing.json")


def test_pin_hashes_are_salted_per_card(tmp_path: Path) -> None:
    """Two cards with the same PINs store different PIN hashes (per-card salt)."""
    a, b = _issue(), _issue()
    assert a._pins[PinKind.USER_AUTH].digest != b._pins[PinKind.USER_AUTH].digest
    assert a._pins[PinKind.USER_AUTH].digest != b"1234"

"""The RSA signing-key providers of mynumber.keys: software (encrypted PEM files) and PKCS#11
(SoftHSM2).

Every behavioural test runs against both providers. The PKCS#11 ones need SoftHSM2; without it
they are skipped. One throwaway SoftHSM2 token is made per test session (the library reads
``SOFTHSM2_CONF`` once, when it is first loaded), and each test uses its own key labels.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11e

from mynumber.keys import (
    KeyExistsError,
    KeyProviderError,
    Pkcs11KeyProvider,
    PublicKeyHandle,
    SigningKeyProvider,
    SoftwareKeyProvider,
    UnknownKeyError,
)

SOFTHSM_MISSING = (
    "SoftHSM2 is not installed, so the PKCS#11 key-provider tests are skipped; "
    "install it with `sudo apt-get install softhsm2`, or run `make test` as root"
)
PASSPHRASE = b"a production passphrase from the settings"
TOKEN_LABEL = "test"
_SHARED_CONF = "MYNUMBER_TEST_SOFTHSM2_CONF"
USER_PIN = "1234"
SO_PIN = "5678"


def _softhsm_library() -> str | None:
    candidates = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    if shutil.which("dpkg"):
        listing = subprocess.run(
            ["dpkg", "-L", "softhsm2", "libsofthsm2"], capture_output=True, text=True
        ).stdout
        candidates += [line for line in listing.splitlines() if line.endswith("/libsofthsm2.so")]
    return next((path for path in candidates if os.path.exists(path)), None)


@dataclass(frozen=True)
class SoftHSM:
    library: str
    conf: Path
    token_label: str = TOKEN_LABEL
    user_pin: str = USER_PIN


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHSM]:
    """A throwaway SoftHSM2 token in a temporary directory, for the whole session.

    Other test modules import this fixture; with --import-mode=importlib each import may be
    its own fixture instance. The library reads SOFTHSM2_CONF once per process, so every
    instance must use the first token made (a second token would be invisible to this
    process but seen by child processes): it is shared through the environment."""
    library = _softhsm_library()
    if library is None or shutil.which("softhsm2-util") is None:
        pytest.skip(SOFTHSM_MISSING)
    shared = os.environ.get(_SHARED_CONF)
    if shared:
        yield SoftHSM(library, Path(shared))
        return
    base = tmp_path_factory.mktemp("softhsm")
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                TOKEN_LABEL,
                "--pin",
                USER_PIN,
                "--so-pin",
                SO_PIN,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        os.environ[_SHARED_CONF] = str(conf)
        yield SoftHSM(library, conf)
    finally:
        os.environ.pop(_SHARED_CONF, None)
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


@dataclass
class Setup:
    """How to make (more) instances of the provider under test, here and in a new process."""

    kind: str
    make: Callable[[], SigningKeyProvider]
    spec: dict[str, str]


@pytest.fixture(params=["software", "pkcs11"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Setup:
    if request.param == "software":
        directory = tmp_path / "jpki-keys"
        return Setup(
            "software",
            lambda: SoftwareKeyProvider(directory, development=True),
            {"kind": "software", "directory": str(directory)},
        )
    hsm: SoftHSM = request.getfixturevalue("softhsm")
    return Setup(
        "pkcs11",
        lambda: Pkcs11KeyProvider(hsm.library, hsm.token_label, hsm.user_pin, development=True),
        {"kind": "pkcs11", "library": hsm.library, "token": hsm.token_label, "pin": hsm.user_pin},
    )


@pytest.fixture
def provider(setup: Setup) -> SigningKeyProvider:
    return setup.make()


@pytest.fixture
def label() -> str:
    return f"ca-{uuid.uuid4().hex[:12]}"


def _verify(public: rsa.RSAPublicKey, signature: bytes, data: bytes) -> None:
    public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def _openssl_verify(
    tmp_path: Path, public: rsa.RSAPublicKey, signature: bytes, data: bytes
) -> subprocess.CompletedProcess[str]:
    pub = tmp_path / "pub.pem"
    pub.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "sig.bin").write_bytes(signature)
    (tmp_path / "data.bin").write_bytes(data)
    return subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(pub),
            "-signature",
            str(tmp_path / "sig.bin"),
            str(tmp_path / "data.bin"),
        ],
        capture_output=True,
        text=True,
    )


# ---------------------------------------------------------------------------------------------
# Both providers


def test_generate_returns_public_key_and_label(provider: SigningKeyProvider, label: str) -> None:
    assert not provider.has_key(label)
    handle = provider.generate_rsa(label)
    assert isinstance(handle, PublicKeyHandle)
    assert handle.label == label
    assert isinstance(handle.public_key, rsa.RSAPublicKey)
    assert handle.public_key.key_size == 2048
    assert handle.public_key.public_numbers().e == 65537
    assert provider.has_key(label)
    assert provider.public_key(label).public_numbers() == handle.public_key.public_numbers()


def test_sign_verifies_with_cryptography(provider: SigningKeyProvider, label: str) -> None:
    public = provider.generate_rsa(label).public_key
    data = "署名対象 tbsCertificate".encode() * 50
    signature = provider.sign(label, data, "sha256")
    assert len(signature) == 256
    _verify(public, signature, data)
    # RSASSA-PKCS1-v1_5 is deterministic.
    assert provider.sign(label, data, "sha256") == signature
    with pytest.raises(InvalidSignature):
        _verify(public, signature, data + b"x")


def test_sign_verifies_with_openssl(
    provider: SigningKeyProvider, label: str, tmp_path: Path
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    public = provider.generate_rsa(label).public_key
    data = os.urandom(1000)
    signature = provider.sign(label, data, "sha256")
    good = _openssl_verify(tmp_path, public, signature, data)
    assert good.returncode == 0, good.stderr
    assert "Verified OK" in good.stdout
    bad = _openssl_verify(tmp_path, public, signature, data[:-1] + bytes([data[-1] ^ 1]))
    assert bad.returncode != 0


def test_larger_key(provider: SigningKeyProvider, label: str) -> None:
    public = provider.generate_rsa(label, bits=3072).public_key
    assert public.key_size == 3072
    _verify(public, provider.sign(label, b"abc", "sha256"), b"abc")


def test_no_method_returns_private_key_material(provider: SigningKeyProvider, label: str) -> None:
    handle = provider.generate_rsa(label)
    results = [
        handle,
        handle.public_key,
        provider.public_key(label),
        provider.sign(label, b"x", "sha256"),
        provider.has_key(label),
    ]
    assert not any(isinstance(r, rsa.RSAPrivateKey) for r in results)
    public_api = {name for name in dir(provider) if not name.startswith("_")}
    assert not any("private" in name or "export" in name for name in public_api)
    assert "1234" not in repr(provider)


def test_keys_persist_across_instances(setup: Setup, label: str) -> None:
    first = setup.make()
    public = first.generate_rsa(label).public_key
    signature = first.sign(label, b"persist", "sha256")
    second = setup.make()
    assert second.has_key(label)
    assert second.public_key(label).public_numbers() == public.public_numbers()
    assert second.sign(label, b"persist", "sha256") == signature


def test_keys_persist_into_a_new_process(setup: Setup, label: str) -> None:
    """A fresh process (fresh library load, new login) finds the key and signs identically."""
    first = setup.make()
    public = first.generate_rsa(label).public_key
    script = (
        "import json, sys\n"
        "from mynumber.keys import Pkcs11KeyProvider, SoftwareKeyProvider\n"
        "from pathlib import Path\n"
        "spec, label = json.loads(sys.argv[1]), sys.argv[2]\n"
        "p = (SoftwareKeyProvider(Path(spec['directory']), development=True)\n"
        "     if spec['kind'] == 'software'\n"
        "     else Pkcs11KeyProvider(spec['library'], spec['token'], spec['pin'],\n"
        "                            development=True))\n"
        "assert p.has_key(label)\n"
        "sys.stdout.write(p.sign(label, b'new process', 'sha256').hex())\n"
    )
    import json

    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(setup.spec), label],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    _verify(public, bytes.fromhex(done.stdout), b"new process")


def test_unknown_label_is_a_clear_error(provider: SigningKeyProvider) -> None:
    assert provider.has_key("no-such-key") is False
    with pytest.raises(UnknownKeyError, match="no-such-key"):
        provider.public_key("no-such-key")
    with pytest.raises(UnknownKeyError, match="no-such-key"):
        provider.sign("no-such-key", b"data", "sha256")
    assert issubclass(UnknownKeyError, LookupError)


def test_existing_label_is_never_overwritten(provider: SigningKeyProvider, label: str) -> None:
    public = provider.generate_rsa(label).public_key
    with pytest.raises(KeyExistsError, match=label):
        provider.generate_rsa(label)
    assert provider.public_key(label).public_numbers() == public.public_numbers()


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "a/b", ".hidden", "x" * 65, "ラベル"])
def test_bad_labels_are_refused(provider: SigningKeyProvider, bad: str) -> None:
    with pytest.raises(KeyProviderError, match="bad key label"):
        provider.generate_rsa(bad)
    with pytest.raises(KeyProviderError, match="bad key label"):
        provider.has_key(bad)


def test_weak_sizes_and_other_algorithms_are_refused(
    provider: SigningKeyProvider, label: str
) -> None:
    with pytest.raises(KeyProviderError, match="1024"):
        provider.generate_rsa(label, bits=1024)
    assert not provider.has_key(label)
    provider.generate_rsa(label)
    with pytest.raises(KeyProviderError, match="sha1"):
        provider.sign(label, b"x", "sha1")  # type: ignore[arg-type]


def test_concurrent_signing(setup: Setup, label: str) -> None:
    providers = [setup.make(), setup.make()]
    public = providers[0].generate_rsa(label).public_key
    messages = [f"message {i}".encode() for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        signatures = list(
            pool.map(
                lambda ix: providers[ix[0] % 2].sign(label, ix[1], "sha256"), enumerate(messages)
            )
        )
    for message, signature in zip(messages, signatures, strict=True):
        _verify(public, signature, message)


# ---------------------------------------------------------------------------------------------
# PKCS#11 specifics


def test_pkcs11_private_key_is_sensitive_and_not_extractable(softhsm: SoftHSM, label: str) -> None:
    provider = Pkcs11KeyProvider(softhsm.library, softhsm.token_label, softhsm.user_pin,
                                 development=True)
    provider.generate_rsa(label)
    token = pkcs11.lib(softhsm.library).get_token(token_label=softhsm.token_label)
    # The provider's login is the process's login, so a plain session sees the private objects.
    with token.open() as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        assert key[Attribute.TOKEN] is True
        assert key[Attribute.PRIVATE] is True
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.ALWAYS_SENSITIVE] is True
        assert key[Attribute.NEVER_EXTRACTABLE] is True
        assert key[Attribute.SIGN] is True
        assert key[Attribute.DECRYPT] is False
        assert key[Attribute.ID]
        for secret in (
            Attribute.PRIVATE_EXPONENT,
            Attribute.PRIME_1,
            Attribute.PRIME_2,
            Attribute.COEFFICIENT,
        ):
            with pytest.raises(p11e.AttributeSensitive):
                key[secret]
        with pytest.raises((p11e.AttributeSensitive, p11e.AttributeTypeInvalid)):
            key[Attribute.VALUE]
        with pytest.raises(p11e.PKCS11Error):  # SENSITIVE can never be turned off
            key[Attribute.SENSITIVE] = False
        public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        assert public[Attribute.ID] == key[Attribute.ID]


def test_pkcs11_unknown_token_and_wrong_pin(softhsm: SoftHSM, label: str) -> None:
    with pytest.raises(KeyProviderError, match="no PKCS#11 token labelled 'nope'"):
        Pkcs11KeyProvider(softhsm.library, "nope", softhsm.user_pin,
                          development=False).has_key(label)
    with pytest.raises(KeyProviderError, match="cannot load the PKCS#11 library"):
        Pkcs11KeyProvider("/nonexistent/libp11.so", "t", "1", development=False).has_key(label)
    # Login is per process: check a wrong PIN in a fresh one.
    script = (
        "import sys\n"
        "from mynumber.keys import KeyProviderError, Pkcs11KeyProvider\n"
        "try:\n"
        "    Pkcs11KeyProvider(sys.argv[1], sys.argv[2], '0000', development=False).has_key('x')\n"
        "except KeyProviderError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, softhsm.library, softhsm.token_label],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    assert "wrong PIN" in done.stdout
    assert "0000" not in done.stdout


def test_pkcs11_nothing_opened_before_use() -> None:
    provider = Pkcs11KeyProvider("/nonexistent/libp11.so", "lazy", "1",
                                 development=False)  # no error yet
    assert provider.is_development is False
    with pytest.raises(KeyProviderError):
        provider.has_key("x")


# ---------------------------------------------------------------------------------------------
# Software specifics


def test_software_files_are_encrypted_and_owner_only(tmp_path: Path, label: str) -> None:
    directory = tmp_path / "keys"
    provider = SoftwareKeyProvider(directory, development=True)
    assert provider.is_development
    provider.generate_rsa(label)
    key_file = directory / f"{label}.key.pem"
    passphrase = directory / "passphrase"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    pem = key_file.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):  # needs the passphrase
        serialization.load_pem_private_key(pem, password=None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, password=b"wrong")
    # Only temporary files never survive; no stray plaintext copies.
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["passphrase", f"{label}.key.pem", f"{label}.meta.json"]
    )


def test_software_refuses_readable_files(tmp_path: Path, label: str) -> None:
    # Production refuses; the embedded mode only warns (tests/keys/test_rules.py).
    directory = tmp_path / "keys"
    production = SoftwareKeyProvider(directory, development=False, passphrase=PASSPHRASE)
    with production.provisioning():
        production.generate_rsa(label)
    os.chmod(directory / f"{label}.key.pem", 0o644)
    with pytest.raises(KeyProviderError, match="accessible to other users"):
        SoftwareKeyProvider(directory, development=False, passphrase=PASSPHRASE).sign(
            label, b"x", "sha256")


def test_software_production_mode_refuses_development_keys(tmp_path: Path, label: str) -> None:
    directory = tmp_path / "keys"
    SoftwareKeyProvider(directory, development=True).generate_rsa(label)
    production = SoftwareKeyProvider(directory, development=False, passphrase=PASSPHRASE)
    assert not production.is_development
    assert production.has_key(label)
    with pytest.raises(KeyProviderError, match="development key"):
        production.sign(label, b"x", "sha256")
    # A key provisioned in production mode is usable there.
    with production.provisioning():
        production.generate_rsa(f"{label}-prod")
    fresh = SoftwareKeyProvider(directory, development=False, passphrase=PASSPHRASE)
    _verify(fresh.public_key(f"{label}-prod"), fresh.sign(f"{label}-prod", b"x", "sha256"), b"x")

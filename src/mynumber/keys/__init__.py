"""Keys: where every secret key of the system comes from. Every context uses this package.

* :mod:`mynumber.keys.errors` -- the errors and the one development-vs-production rule:
  the embedded mode creates development keys on first use and marks them; production mode
  never creates a key implicitly (a missing key names the command that provisions it) and
  refuses a key marked development or carrying no marker.
* :mod:`mynumber.keys.files` -- the one owner-only writer and reader (0700 directories, 0600
  files; a key others can read is refused in production and warned about in embedded mode).
* :mod:`mynumber.keys.symmetric` -- symmetric keys by purpose (:class:`FileKeyProvider`) and
  the agency-code block cipher in software.
* :mod:`mynumber.keys.signing` -- RSA signing-key providers (software, PKCS#11) for the CAs.
* :mod:`mynumber.keys.pkcs11` -- the shared PKCS#11 token session and the token-held
  agency-code cipher.

Production keys are provisioned with ``mynumber keys init --production`` (symmetric keys, the
token's agency-code key), ``mynumber keys init-ca`` (the JPKI CA hierarchy, after
``mynumber db upgrade``) and ``mynumber keys agency <id>`` (an agency's own keys, on its
intermediate server); see docs/deployment.md.
"""

from __future__ import annotations

from mynumber.keys.errors import (
    PROVISION_COMMAND,
    DevelopmentKeyRefused,
    KeyError_,
    KeyExistsError,
    KeyNotProvisioned,
    KeyProviderError,
    UnknownKeyError,
    check_marker,
    is_development_marker,
    not_provisioned,
)
from mynumber.keys.files import (
    KeyFileError,
    check_private,
    ensure_private_dir,
    read_secret_file,
    write_owner_only,
)
from mynumber.keys.pkcs11 import Pkcs11BlockCipher, TokenSession, shared_session
from mynumber.keys.signing import (
    CA_PROVISION_COMMAND,
    Pkcs11KeyProvider,
    PublicKeyHandle,
    SigningAlgorithm,
    SigningKeyProvider,
    SoftwareKeyProvider,
)
from mynumber.keys.symmetric import (
    BlockCipher,
    FileKeyProvider,
    KeyProvider,
    SoftwareBlockCipher,
)

__all__ = [
    "CA_PROVISION_COMMAND",
    "PROVISION_COMMAND",
    "BlockCipher",
    "DevelopmentKeyRefused",
    "FileKeyProvider",
    "KeyError_",
    "KeyExistsError",
    "KeyFileError",
    "KeyNotProvisioned",
    "KeyProvider",
    "KeyProviderError",
    "Pkcs11BlockCipher",
    "Pkcs11KeyProvider",
    "PublicKeyHandle",
    "SigningAlgorithm",
    "SigningKeyProvider",
    "SoftwareBlockCipher",
    "SoftwareKeyProvider",
    "TokenSession",
    "UnknownKeyError",
    "check_marker",
    "check_private",
    "ensure_private_dir",
    "is_development_marker",
    "not_provisioned",
    "read_secret_file",
    "shared_session",
    "write_owner_only",
]

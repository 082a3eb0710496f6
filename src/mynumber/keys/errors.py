"""The errors of :mod:`mynumber.keys`, and the one development-vs-production rule.

The rule, for every kind of key (symmetric key files, RSA signing keys in software or on a
PKCS#11 token, agency key files, the OIDC signing key):

* embedded mode: a missing key is created on first use and marked ``"development": true``;
* production mode: nothing is created implicitly (a missing key is an error that names the
  command provisioning it), and a key is accepted only when it is marked
  ``"development": false``. An unmarked key counts as a development key: a file whose origin
  is unknown must not become a production secret by accident.
"""

from __future__ import annotations

#: The command that provisions every production key of the core (see docs/deployment.md).
PROVISION_COMMAND = "mynumber keys init --production"


class KeyError_(RuntimeError):
    """A key is missing or unacceptable for the configured mode."""


class KeyProviderError(KeyError_):
    """A key or its provider is missing, misconfigured or unusable."""


class UnknownKeyError(KeyProviderError, LookupError):
    """No key with this label in the provider."""


class KeyExistsError(KeyProviderError):
    """A key with this label already exists; keys are never overwritten."""


class KeyNotProvisioned(KeyProviderError):
    """Production mode met a missing key: keys are provisioned explicitly, never on first use."""


class DevelopmentKeyRefused(KeyProviderError):
    """Production mode met a key marked development, or a key with no marker at all."""


def is_development_marker(marker: object) -> bool:
    """Whether a key's ``development`` marker makes it a development key.

    Only an explicit ``False`` makes a production key; ``True``, ``None`` or no marker at all
    count as development (unknown origin is treated as the weaker case)."""
    return marker is not False


def check_marker(marker: object, *, development: bool, what: str) -> bool:
    """Apply the rule to one key's marker: refuse a development (or unmarked) key in production.

    Returns whether the key is a development key."""
    is_development = is_development_marker(marker)
    if is_development and not development:
        raise DevelopmentKeyRefused(
            f"{what} is a development key (or carries no production marker); production mode "
            f"refuses it: provision a production key with `{PROVISION_COMMAND}`"
        )
    return is_development


def not_provisioned(
    what: str, where: object, command: str = PROVISION_COMMAND
) -> KeyNotProvisioned:
    """The error for a key production mode needs and does not find (it never creates one)."""
    return KeyNotProvisioned(
        f"{what} is not provisioned in {where}; production mode never creates keys "
        f"implicitly: run `{command}`"
    )

"""Exceptions raised by the validators in :mod:`mynumber.codes`.

Every exception is a :class:`ValueError` (so callers that only know the standard library still
catch it) with a stable machine-readable ``code`` and a human message that names the problem.

Messages NEVER include the checked value: the value may be a 個人番号, and exception messages
routinely end up in logs, tracebacks and HTTP responses.

>>> from mynumber.codes import exceptions, individual_number
>>> try:
...     individual_number.validate("123456789019")
... except exceptions.ValidationError as exc:
...     print(exc.code, "|", exc)
invalid_checksum | individual number has an invalid check digit
"""

from __future__ import annotations

__all__ = [
    "InvalidChecksum",
    "InvalidComponent",
    "InvalidFormat",
    "InvalidLength",
    "ValidationError",
]


class ValidationError(ValueError):
    """Base class: the value is not a valid instance of the format."""

    #: Stable identifier for programmatic handling; never changes between releases.
    code: str = "invalid"
    #: Used when the raiser gives no message of its own.
    default_message: str = "the value is not valid"

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InvalidFormat(ValidationError):
    """The value contains characters that are not allowed (or is not a string at all)."""

    code = "invalid_format"
    default_message = "the value contains invalid characters"


class InvalidLength(ValidationError):
    """The value has the wrong number of characters."""

    code = "invalid_length"
    default_message = "the value has an invalid length"


class InvalidChecksum(ValidationError):
    """The check digit does not match the other digits."""

    code = "invalid_checksum"
    default_message = "the value has an invalid check digit"


class InvalidComponent(ValidationError):
    """A part of the value (a prefix, a range, a date...) is not valid."""

    code = "invalid_component"
    default_message = "a component of the value is not valid"

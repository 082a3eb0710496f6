"""Reading HTML forms, shared by every context's pages: values, dates, numbers, what a failed
form shows again, and the description of a form's inputs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from mynumber.errors import InvalidInput
from mynumber.kernel.csrf import CSRF_FIELD

# Never shown again in a form that failed: secrets, and anything that may be a 個人番号.
SENSITIVE_FIELDS = frozenset({"individual_number", "password", "totp_code", "pin"})
MULTI_FIELDS = frozenset({"identity_documents"})


@dataclass(frozen=True)
class FormField:
    """One input of a form; its label is the i18n key ``field.<name>``."""

    name: str
    # text | date | select | checkboxes | number | password (digits: a PIN, a number) |
    # secret (letters and digits: the signing password)
    kind: str = "text"
    required: bool = False
    options: tuple[str, ...] = ()  # values; labels are ``<option_prefix>.<value>``
    option_prefix: str = ""
    maxlength: int = 200
    hint: bool = False  # show the ``hint.<name>`` text under the input


def value(form: FormData | Mapping[str, Any], name: str, limit: int | None = None) -> str:
    """The stripped text of ``name`` ("" when absent or a file); longer than ``limit``: refused."""
    found = form.get(name)
    if not isinstance(found, str):
        return ""
    found = found.strip()
    if limit is not None and len(found) > limit:
        raise InvalidInput(f"{name} is too long", field=name)
    return found


def date(form: FormData | Mapping[str, Any], name: str) -> dt.date:
    text = value(form, name)
    if not text:
        raise InvalidInput(f"{name} is required", field=name)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a date (YYYY-MM-DD)", field=name) from None


def optional_int(form: FormData | Mapping[str, Any], name: str) -> int | None:
    text = value(form, name)
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise InvalidInput(f"{name} must be a number", field=name)
    return int(text)


def kept_values(form: FormData, error_field: str | None = None, *,
                sensitive: Collection[str] = SENSITIVE_FIELDS,
                multi: Collection[str] = MULTI_FIELDS) -> dict[str, Any]:
    """What a failed form shows again: everything but secrets and the field in error."""
    kept: dict[str, Any] = {}
    for name in form:
        if name in sensitive or name == CSRF_FIELD or name == error_field:
            continue
        values = [v for v in form.getlist(name) if isinstance(v, str)]
        kept[name] = values if name in multi else (values[0] if values else "")
    return kept


def municipality_label(rows: Mapping[str, Mapping[str, str]], code: str | None) -> str:
    if not code:
        return ""
    row = rows.get(code)
    return f"{row['prefecture']}{row['name']} ({code})" if row else code

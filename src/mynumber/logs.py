"""Logging that cannot leak a 個人番号: a filter redacts any 12-digit run that passes the
individual-number check digit, and access logs drop query strings."""

from __future__ import annotations

import logging
import re

from mynumber.codes import individual_number

_TWELVE = re.compile(r"(?<!\d)(\d{4}[ -]?\d{4}[ -]?\d{4})(?!\d)")


def redact(text: str) -> str:
    def _sub(match: re.Match[str]) -> str:
        return "[個人番号]" if individual_number.is_valid(match.group(1)) else match.group(1)

    return _TWELVE.sub(_sub, text)


class RedactNumbers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class DropQueryStrings(logging.Filter):
    """uvicorn's access log puts the request line in args; keep the path, drop the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            if isinstance(args[2], str) and "?" in args[2]:
                args[2] = args[2].split("?", 1)[0] + "?…"
                record.args = tuple(args)
        return True


def configure(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactNumbers())
    access = logging.getLogger("uvicorn.access")
    access.addFilter(DropQueryStrings())
    access.addFilter(RedactNumbers())
    logging.getLogger("uvicorn.error").addFilter(RedactNumbers())

"""Bulk export of residents in the import format (docs/import-format.md), never a 個人番号.

The export streams the residents in id order, writes a temporary file next to the target
(owner-only permissions: it is personal data) and renames it into place only when complete,
so a file under the target name is always a whole export. The export is audited
(``registry:residents:export``) in the transaction that read the rows.

Only current residents (status ``resident``) are exported: the format has no field for a
moved-out or deceased record (除票). ``resident_code`` and ``number_generation`` are written, so
importing the file under the same keys gives every resident the same 個人番号 again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mynumber import audit
from mynumber.codes import local_government_code
from mynumber.codes.exceptions import ValidationError
from mynumber.errors import InvalidInput
from mynumber.registry import models as m
from mynumber.registry.importer import FIELDS, Format, detect_format
from mynumber.registry.interfaces import UnknownMunicipality
from mynumber.registry.services import RegistryServiceImpl

CONTEXT = "registry"
_CHUNK = 5000
# Control characters cannot be carried by a line-based format: they become spaces.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class ExportError(InvalidInput):
    code = "export_error"
    title = "Cannot export"


@dataclass(frozen=True)
class ExportResult:
    exported: int
    file: str
    format: str
    municipality: str | None
    file_sha256: str
    # values whose control characters (line breaks, tabs) were replaced by spaces
    replaced_control_characters: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "exported": self.exported, "file": self.file, "format": self.format,
            "municipality": self.municipality, "file_sha256": self.file_sha256,
            "replaced_control_characters": self.replaced_control_characters,
        }


_COLUMNS = (
    m.Resident.household_id, m.Resident.family_name, m.Resident.given_name,
    m.Resident.family_name_kana, m.Resident.given_name_kana, m.Resident.birth_date,
    m.Resident.sex, m.Resident.municipality_code, m.Resident.address, m.Resident.postal_code,
    m.Resident.relationship, m.Resident.nationality, m.Resident.residence_status,
    m.Resident.resident_code, m.Resident.number_generation,
)


def export_residents(
    registry: RegistryServiceImpl, path: Path, *, file_format: str | None = None,
    municipality: str | None = None, actor: str = "system:export",
    on_progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write current residents (all, or one municipality's) to ``path``."""
    path = Path(path)
    fmt = _format(path, file_format)
    code = _municipality_code(municipality)
    if path.is_dir():
        raise ExportError("the target is a directory", field="file")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ExportError("the target's directory does not exist", field="file")

    databases = registry.databases
    with databases.unit_of_work(CONTEXT) as session:
        if code is not None and session.get(m.Municipality, code) is None:
            raise UnknownMunicipality("no municipality has this code", field="municipality")
        where = [m.Resident.status == "resident"]
        if code is not None:
            where.append(m.Resident.municipality_code == code)
        total = session.scalar(select(func.count()).select_from(m.Resident).where(*where)) or 0
        stmt = (select(*_COLUMNS).where(*where).order_by(m.Resident.id)
                .execution_options(yield_per=_CHUNK))
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                        dir=directory)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                writer = _Writer(fmt)
                header = writer.header()
                digest.update(header.encode("utf-8"))
                handle.write(header)
                for rows in session.execute(stmt).partitions(_CHUNK):
                    data = writer.rows(rows)
                    digest.update(data.encode("utf-8"))
                    handle.write(data)
                    if on_progress is not None:
                        on_progress(writer.count, total)
                handle.flush()
                os.fsync(handle.fileno())
            audit.record(
                session, m.AuditEvent, "registry:residents:export", actor=actor,
                subject=f"municipality:{code}" if code else "residents",
                count=writer.count, format=fmt, file=path.name[:100],
                file_sha256=digest.hexdigest(),
            )
            session.flush()
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return ExportResult(writer.count, str(path), fmt, code, digest.hexdigest(), writer.replaced)


def _format(path: Path, given: str | None) -> Format:
    try:
        return detect_format(path, given)
    except InvalidInput as exc:
        raise ExportError(exc.detail, field="format") from None


def _municipality_code(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return local_government_code.validate(value)
    except ValidationError as exc:
        raise ExportError(f"municipality: {exc}", field="municipality") from None


class _Writer:
    """Rows -> text in the import format."""

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt
        self.count = 0
        self.replaced = 0

    def header(self) -> str:
        return ",".join(FIELDS) + "\n" if self.fmt == "csv" else ""

    def _clean(self, value: str) -> str:
        if _CONTROL.search(value):
            self.replaced += 1
            return _CONTROL.sub(" ", value)
        return value

    def _values(self, row: Any) -> list[str]:
        (household_id, family, given, family_kana, given_kana, birth, sex, muni, address,
         postal, relationship, nationality, status, code, generation) = row
        clean = self._clean
        return [
            "" if household_id is None else f"H{household_id}", clean(family), clean(given),
            clean(family_kana), clean(given_kana), birth.isoformat(), sex, muni,
            clean(address), clean(postal), clean(relationship), clean(nationality),
            clean(status), code, "" if generation is None else str(generation), "", "",
        ]

    def rows(self, rows: Any) -> str:
        out = io.StringIO()
        if self.fmt == "csv":
            writer = csv.writer(out, lineterminator="\n")
            for row in rows:
                writer.writerow(self._values(row))
                self.count += 1
        else:
            for row in rows:
                values = self._values(row)
                out.write(json.dumps(
                    {k: v for k, v in zip(FIELDS, values, strict=True) if v != ""},
                    ensure_ascii=False,
                ) + "\n")
                self.count += 1
        return out.getvalue()

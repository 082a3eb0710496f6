"""番号法 別表第一 as data: which agency kind may use the 個人番号 for which task.

Read from ``data/number_use.csv`` (see data/README.md). Only an agency whose kind has a use
here obtains a 機関別符号 for a person, and the core routes no query from or to an agency
without one. Loading is strict, like the legal table: an unknown kind or task, a title that
does not match the legal table's, a duplicate row, a requester of the legal table whose task is
not listed as a use of its kind, or a provider kind without any use stops the load with
``LegalTableDataError``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from mynumber.network.interfaces import LegalTable, NumberUse
from mynumber.network.legal_table import (
    WILDCARD,
    LegalTableDataError,
    _read_data,
    _rows,
    load_legal_table,
)

__all__ = ["NumberUseTable", "load_number_use", "parse_number_use"]

COLUMNS = ["kind", "task_id", "title", "basis", "derived_from", "note"]
# Where a row comes from (the README explains each).
DERIVATIONS = frozenset({"bekkyo2_requester", "delegated", "additional_provision",
                         "resident_register"})
# Uses outside the legal table's tasks carry their own ids.
OWN_TASK = re.compile(r"juki-[a-z0-9-]+")


class NumberUseTable:
    """The parsed, validated number-use table. Immutable."""

    def __init__(self, uses: Sequence[NumberUse]) -> None:
        self._uses = tuple(uses)
        by_kind: dict[str, list[NumberUse]] = {}
        for use in self._uses:
            by_kind.setdefault(use.kind, []).append(use)
        self._by_kind = {kind: tuple(found) for kind, found in by_kind.items()}

    def uses(self, kind: str | None = None) -> tuple[NumberUse, ...]:
        if kind is None:
            return self._uses
        return self._by_kind.get(kind, ())

    def permits(self, kind: str) -> bool:
        """Whether an agency of this kind may use the 個人番号 (and so hold 機関別符号)."""
        return kind in self._by_kind

    def kinds(self) -> frozenset[str]:
        return frozenset(self._by_kind)

    def without(self, kind: str) -> NumberUseTable:
        """The same table with every use of ``kind`` removed (an amendment that ends a use)."""
        return NumberUseTable([u for u in self._uses if u.kind != kind])


def parse_number_use(text: str, table: LegalTable) -> NumberUseTable:
    kinds = table.agency_kinds()
    tasks = {t.task_id: t for t in table.tasks()}
    uses: list[NumberUse] = []
    seen: set[tuple[str, str]] = set()
    for line_no, row in enumerate(_rows(text, COLUMNS, "number_use.csv"), start=2):
        where = f"number_use.csv:{line_no}"
        kind, task_id = row["kind"], row["task_id"]
        if kind not in kinds:
            raise LegalTableDataError(f"{where}: unknown agency kind {kind!r}")
        if task_id in tasks:
            if row["title"] != tasks[task_id].title:
                raise LegalTableDataError(f"{where}: title differs from the legal table's")
        elif not OWN_TASK.fullmatch(task_id):
            raise LegalTableDataError(f"{where}: task {task_id!r} is neither a task of the "
                                      "legal table nor a juki-... use")
        if not row["title"].strip() or not row["basis"].strip():
            raise LegalTableDataError(f"{where}: title and basis are required")
        if row["derived_from"] not in DERIVATIONS:
            raise LegalTableDataError(f"{where}: derived_from must be one of "
                                      f"{sorted(DERIVATIONS)}")
        if (kind, task_id) in seen:
            raise LegalTableDataError(f"{where}: duplicate use {kind} {task_id}")
        seen.add((kind, task_id))
        uses.append(NumberUse(kind=kind, task_id=task_id, title=row["title"],
                              basis=row["basis"], derived_from=row["derived_from"]))
    # Every requester of the legal table asks for its own task: that task is a use of its kind.
    for provision in table.provisions():
        for kind in provision.requester_kinds - {WILDCARD}:
            if (kind, provision.task_id) not in seen:
                raise LegalTableDataError(
                    f"number_use.csv: {kind} asks under {provision.provision_id} but has no "
                    f"use for {provision.task_id}")
        # A provider holds what it provides for a use of its own (番号法第19条第8号).
        for kind in provision.provider_kinds - {WILDCARD}:
            if not any(k == kind for k, _ in seen):
                raise LegalTableDataError(
                    f"number_use.csv: {kind} provides under {provision.provision_id} but has "
                    "no use")
    return NumberUseTable(uses)


@cache
def load_number_use() -> NumberUseTable:
    """The table shipped with the package (read once; it is immutable)."""
    return parse_number_use(_read_data("number_use.csv"), load_legal_table())

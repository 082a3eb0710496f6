"""番号法 別表第一 as data: which agency kind may use the 個人番号 for which task.

Read from ``data/number_use.csv`` (see data/README.md). Only an agency whose kind has a use
here obtains a 機関別符号 for a person, and the core routes no query from or to an agency
without one. Loading is strict, like the legal table: an unknown kind or task, a title that
does not match the legal table's, a duplicate row, a requester of the legal table whose task is
not listed as a use of its kind, or a provider kind without any use stops the load with
``LegalTableDataError``.

A use that no 別表第二 task covers (国税庁長官's, for one) is taken from the statute's own
別表第一, shipped byte for byte as ``data/bekkyo1.csv``: its task id is ``bekkyo1-<item>``,
its title the item's 事務 verbatim, and the item must name the kind's label among its 者. An item
the table does not have (or a deleted one) stops the load too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from mynumber.network.interfaces import LegalTable, NumberUse
from mynumber.network.legal_table import (
    DELETED,
    ITEM_NO,
    TERM_SEPARATOR,
    WILDCARD,
    LegalTableDataError,
    _read_data,
    _rows,
    load_legal_table,
)

__all__ = [
    "Bekkyo1Item",
    "NumberUseTable",
    "load_bekkyo1",
    "load_number_use",
    "parse_bekkyo1",
    "parse_number_use",
]

COLUMNS = ["kind", "task_id", "title", "basis", "derived_from", "note"]
# Where a row comes from (the README explains each).
DERIVATIONS = frozenset({"bekkyo2_requester", "delegated", "additional_provision",
                         "resident_register", "bekkyo1_item", "public_fund_account_act"})
# Uses outside the legal table's tasks carry their own ids: 住民基本台帳 (juki-...) and the
# 公金受取口座 registry デジタル庁 keeps under 公金受取口座登録法 (accounts-...).
OWN_TASK = re.compile(r"(?:juki|accounts)-[a-z0-9-]+")
# A use read from an item of 別表第一 itself: "bekkyo1-38", "bekkyo1-36-2" (三十六の二).
BEKKYO1_TASK = re.compile(r"bekkyo1-([0-9]+(?:-[0-9]+)?)")
BEKKYO1_COLUMNS = ["item", "user", "task", "source"]


@dataclass(frozen=True)
class Bekkyo1Item:
    """One item (項) of 番号法 別表第一 as the statute words it (data/bekkyo1.csv)."""

    item_no: str  # "38", "36-2"
    user: str  # 者, verbatim (with its 「以下…という。」 definitions)
    task: str  # 事務, verbatim

    @property
    def reference(self) -> str:
        """"36-2" -> "番号法別表第一 第36の2項"."""
        return "番号法別表第一 第" + self.item_no.replace("-", "の") + "項"

    @property
    def deleted(self) -> bool:
        return self.task == DELETED

    def names(self, label: str) -> bool:
        """Whether the 者 column names a body by exactly this label (e.g. 国税庁長官). A defined
        group (都道府県知事等, 共済組合等) is not resolved: a use for it needs its own reading."""
        return label in TERM_SEPARATOR.split(self.user)


def parse_bekkyo1(text: str) -> dict[str, Bekkyo1Item]:
    """別表第一 from its CSV text, by item number; strict about the shape."""
    items: dict[str, Bekkyo1Item] = {}
    for line_no, row in enumerate(_rows(text, BEKKYO1_COLUMNS, "bekkyo1.csv"), start=2):
        where = f"bekkyo1.csv:{line_no}"
        item_no = row["item"]
        if not ITEM_NO.fullmatch(item_no) or item_no in items:
            raise LegalTableDataError(f"{where}: bad or duplicate item {item_no!r}")
        if not row["task"].strip() or (row["task"] != DELETED and not row["user"].strip()):
            raise LegalTableDataError(f"{where}: an item has a user and a task (or is 削除)")
        items[item_no] = Bekkyo1Item(item_no=item_no, user=row["user"], task=row["task"])
    return items


@cache
def load_bekkyo1() -> Mapping[str, Bekkyo1Item]:
    """The 別表第一 shipped with the package (2015, byte-identical to the design source);
    read once, read-only."""
    return MappingProxyType(parse_bekkyo1(_read_data("bekkyo1.csv")))


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


def parse_number_use(text: str, table: LegalTable,
                     bekkyo1: Mapping[str, Bekkyo1Item] | None = None) -> NumberUseTable:
    """Build the table from ``text``, checked against ``table`` (別表第二 and the extra
    provisions) and ``bekkyo1`` (別表第一; the shipped one when not given)."""
    kinds = table.agency_kinds()
    statute = load_bekkyo1() if bekkyo1 is None else bekkyo1
    tasks = {t.task_id: t for t in table.tasks()}
    uses: list[NumberUse] = []
    seen: set[tuple[str, str]] = set()
    for line_no, row in enumerate(_rows(text, COLUMNS, "number_use.csv"), start=2):
        where = f"number_use.csv:{line_no}"
        kind, task_id = row["kind"], row["task_id"]
        if kind not in kinds:
            raise LegalTableDataError(f"{where}: unknown agency kind {kind!r}")
        item_match = BEKKYO1_TASK.fullmatch(task_id)
        if task_id in tasks:
            if row["title"] != tasks[task_id].title:
                raise LegalTableDataError(f"{where}: title differs from the legal table's")
        elif item_match is not None:
            _check_bekkyo1_use(where, statute.get(item_match.group(1)), task_id, row["title"],
                               kind, kinds[kind])
        elif not OWN_TASK.fullmatch(task_id):
            raise LegalTableDataError(f"{where}: task {task_id!r} is neither a task of the "
                                      "legal table, a bekkyo1-<item> of 別表第一, nor a "
                                      "juki-... or accounts-... use")
        if not row["title"].strip() or not row["basis"].strip():
            raise LegalTableDataError(f"{where}: title and basis are required")
        if row["derived_from"] not in DERIVATIONS:
            raise LegalTableDataError(f"{where}: derived_from must be one of "
                                      f"{sorted(DERIVATIONS)}")
        if (item_match is not None) != (row["derived_from"] == "bekkyo1_item"):
            raise LegalTableDataError(f"{where}: a bekkyo1-<item> task is derived_from "
                                      "bekkyo1_item, and only such a task")
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


def _check_bekkyo1_use(where: str, item: Bekkyo1Item | None, task_id: str, title: str,
                       kind: str, label: str) -> None:
    if item is None or item.deleted:
        raise LegalTableDataError(f"{where}: task {task_id!r}: no such item of 別表第一 "
                                  "(bekkyo1.csv)")
    if title != item.task:
        raise LegalTableDataError(f"{where}: title differs from {item.reference}'s 事務")
    if not item.names(label):
        raise LegalTableDataError(f"{where}: {item.reference} names {item.user!r}, not "
                                  f"{label} ({kind})")


@cache
def load_number_use() -> NumberUseTable:
    """The table shipped with the package (read once; it is immutable)."""
    return parse_number_use(_read_data("number_use.csv"), load_legal_table())

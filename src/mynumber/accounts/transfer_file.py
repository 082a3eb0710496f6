"""A streaming writer for the 全銀協 総合振込 file (the bulk-transfer file banks accept).

The file is a sequence of fixed 120-byte records, each followed by CR LF, in JIS X 0201
(written with the ``cp932`` codec: half-width kana are one byte each, and so is every
character of :data:`~mynumber.accounts.zengin.ZENGIN_NAME_CHARACTERS`).  Numeric fields (N)
are right-aligned and zero-filled, text fields (C) left-aligned and space-filled.

Header record (データ区分 ``1``), one per group::

    pos  len  field
      1    1  データ区分            "1"
      2    2  種別コード            "21" (総合振込)
      4    1  コード区分            "0" (JIS)
      5   10  振込依頼人コード      N  the requester code the bank assigned
     15   40  振込依頼人名          C
     55    4  振込指定日            N  MMDD
     59    4  仕向銀行番号          N
     63   15  仕向銀行名            C
     78    3  仕向支店番号          N
     81   15  仕向支店名            C
     96    1  預金種目(依頼人)      N  1 普通, 2 当座
     97    7  口座番号(依頼人)      N
    104   17  ダミー                C  spaces

Data record (``2``), one per transfer::

      1    1  データ区分            "2"
      2    4  被仕向銀行番号        N
      6   15  被仕向銀行名          C
     21    3  被仕向支店番号        N
     24   15  被仕向支店名          C
     39    4  手形交換所番号        N  "0000" (not used)
     43    1  預金種目              N  1 普通, 2 当座, 4 貯蓄
     44    7  口座番号              N
     51   30  受取人名              C
     81   10  振込金額              N
     91    1  新規コード            N  0 その他, 1 第1回振込分, 2 変更分
     92   10  顧客コード1           N  (or, with 識別表示 "Y", 92-111 are EDI情報 C(20))
    102   10  顧客コード2           N
    112    1  振込指定区分          N  7 テレ振込 (電信), 8 文書振込
    113    1  識別表示              C  "Y" when 92-111 carry EDI情報, else space
    114    7  ダミー                C  spaces

Trailer record (``8``): 合計件数 N(6) at 2, 合計金額 N(12) at 8, ダミー C(101) at 20.
End record (``9``): ダミー C(119) at 2.

A file holds at most 999,999 transfers per header/trailer group (the trailer's count has six
digits) and a total below 10**12 yen.  A larger run continues in a new group: the writer
writes trailer, then a new header, and one end record closes the file (the マルチファイル形式
of the 持込規格).  A run of a million recipients is therefore two groups in one file.

Sources (reference; no text copied):

* 全銀協制定ファイルフォーマット【総合振込】 (a bank's copy of the 全銀協 layout, with the N/C
  padding rules and CRLF): https://expydoc.com/doc/11700435/
* 全銀フォーマット(全銀協規定フォーマット)の仕様を完全解説:
  https://qiita.com/toruca/items/75e4b981933660842af8 (positions of the header record)
* 全銀フォーマットについて: https://zenn.dev/k_omo/articles/dfd3b61f205f2e (record kinds and a
  sample file)
* 総合振込 (全銀形式) ファイルレイアウト: https://happylibus.com/doc/455113/ (新規コード,
  振込指定区分 7/8 and 識別表示)
* 持込規格: https://expydoc.com/doc/8010391/ (column positions; multi-group files)
* 給与・賞与振込 振込先登録フォーマット (全銀協規定形式), whose data record has the same
  fields: https://expydoc.com/doc/8561048/

>>> import io
>>> from datetime import date
>>> out = io.BytesIO()
>>> requester = Requester(code="1234567890", name="ﾃﾞｼﾞﾀﾙﾁﾖｳ", bank_code="8001",
...     bank_name="ﾐﾗｲ", branch_code="001", branch_name="ﾎﾝﾃﾝ",
...     deposit_type=DepositType.CURRENT, account_number="0000001")
>>> summary = write_transfer_file(out, requester, date(2025, 4, 1), [Transfer(
...     bank_code="8002", bank_name="ﾋｶﾘ", branch_code="101", branch_name="ｴｷﾏｴ",
...     deposit_type=DepositType.ORDINARY, account_number="1234567",
...     recipient_name="ﾔﾏﾀﾞ ﾀﾛｳ", amount=100000)])
>>> summary.count, summary.total, summary.groups
(1, 100000, 1)
>>> data = out.getvalue()
>>> len(data) == 4 * 122, data[122:123], data[122 + 50:122 + 58].decode("cp932")
(True, b'2', 'ﾔﾏﾀﾞ ﾀﾛｳ')
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from typing import Protocol

from mynumber.accounts.zengin import NotZenginError, require_zengin
from mynumber.codes.exceptions import InvalidComponent, InvalidFormat, ValidationError

__all__ = [
    "MAX_AMOUNT",
    "MAX_GROUP_COUNT",
    "RECORD_LENGTH",
    "BinaryWriter",
    "DepositType",
    "InvalidTransfer",
    "NewCode",
    "Requester",
    "Transfer",
    "TransferFileSummary",
    "TransferFileWriter",
    "TransferKind",
    "validate_transfer",
    "write_transfer_file",
]

#: Bytes in a record, without the CR LF that follows it.
RECORD_LENGTH = 120
#: The largest amount of one transfer: 振込金額 is N(10).
MAX_AMOUNT = 9_999_999_999
#: Transfers in one header/trailer group: 合計件数 is N(6).
MAX_GROUP_COUNT = 999_999
#: The largest group total: 合計金額 is N(12).
MAX_GROUP_TOTAL = 999_999_999_999

_CRLF = b"\r\n"
_ENCODING = "cp932"


class BinaryWriter(Protocol):
    """Where the file goes: an open binary file, a BytesIO, a socket writer... Only
    ``write`` is called; buffering is the caller's (``open(path, "wb")`` buffers)."""

    def write(self, data: bytes, /) -> object: ...


class DepositType(IntEnum):
    """預金種目 as the file codes it."""

    ORDINARY = 1  # 普通預金
    CURRENT = 2  # 当座預金
    SAVINGS = 4  # 貯蓄預金


class NewCode(IntEnum):
    """新規コード: whether the bank should treat the payee as new or changed."""

    OTHER = 0
    FIRST_TRANSFER = 1  # 第1回振込分
    CHANGED = 2  # 変更分


class TransferKind(IntEnum):
    """振込指定区分."""

    TELEGRAPHIC = 7  # テレ振込 (電信扱)
    DOCUMENT = 8  # 文書振込 (文書扱)


class InvalidTransfer(ValidationError):
    """A field of a record cannot be written.  ``field`` names it and ``record`` is the
    1-based number of the transfer (0 for the header); the message never contains the value
    (names and account numbers are personal data)."""

    code = "invalid_transfer"
    default_message = "a transfer record is not valid"

    def __init__(self, field: str, problem: str, record: int = 0) -> None:
        where = "header" if record == 0 else f"transfer {record}"
        super().__init__(f"{where}: {field} {problem}")
        self.field = field
        self.record = record


@dataclass(frozen=True, slots=True)
class Requester:
    """振込依頼人: the paying agency's contract with its bank (the header record)."""

    code: str  # 振込依頼人コード (委託者コード), up to 10 digits
    name: str  # 振込依頼人名, 全銀 characters, up to 40
    bank_code: str
    bank_name: str
    branch_code: str
    branch_name: str
    deposit_type: DepositType
    account_number: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """One payment: a data record.  Names must already be in the 全銀 set
    (:func:`~mynumber.accounts.zengin.to_zengin_kana`); they are not converted here."""

    bank_code: str
    bank_name: str
    branch_code: str
    branch_name: str
    deposit_type: DepositType
    account_number: str
    recipient_name: str
    amount: int
    customer_code_1: str = ""  # up to 10 digits, or empty
    customer_code_2: str = ""
    edi_info: str = ""  # up to 20 全銀 characters; excludes the customer codes
    new_code: NewCode = NewCode.OTHER
    kind: TransferKind = TransferKind.TELEGRAPHIC


@dataclass(frozen=True, slots=True)
class TransferFileSummary:
    """What was written: transfers, their total in yen, header/trailer groups."""

    count: int
    total: int
    groups: int


_DIGITS = re.compile(r"[0-9]+")


def _digits(value: object, width: int, field: str, record: int, *, exact: bool) -> str:
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise InvalidTransfer(field, "must be digits", record)
    if exact and len(value) != width:
        raise InvalidTransfer(field, f"must be {width} digits", record)
    if len(value) > width:
        raise InvalidTransfer(field, f"must be at most {width} digits", record)
    return value.rjust(width, "0")


def _text(value: object, width: int, field: str, record: int, *, required: bool) -> str:
    if not isinstance(value, str):
        raise InvalidTransfer(field, "must be a string", record)
    try:
        require_zengin(value, field)
    except NotZenginError:
        raise InvalidTransfer(
            field, "contains characters outside the 全銀 character set", record
        ) from None
    if required and not value.strip():
        raise InvalidTransfer(field, "is required", record)
    # Names longer than the field are cut at its width, as banks do with 受取人名 (the
    # receiving bank compares the part it gets); every 全銀 character is one byte.
    return value[:width].ljust(width)


def _deposit_type(value: object, allowed: frozenset[int], field: str, record: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise InvalidTransfer(field, "is not an allowed deposit type", record)
    return str(int(value))


_DATA_DEPOSIT_TYPES = frozenset({DepositType.ORDINARY, DepositType.CURRENT, DepositType.SAVINGS})
_REQUESTER_DEPOSIT_TYPES = frozenset({DepositType.ORDINARY, DepositType.CURRENT})
_NEW_CODES = frozenset(NewCode)
_TRANSFER_KINDS = frozenset(TransferKind)


def _header(requester: Requester, transfer_date: date) -> bytes:
    if not isinstance(transfer_date, date):
        raise InvalidTransfer("transfer_date", "must be a date")
    r = requester
    record = "".join(
        (
            "1",
            "21",
            "0",
            _digits(r.code, 10, "requester code", 0, exact=False),
            _text(r.name, 40, "requester name", 0, required=True),
            f"{transfer_date.month:02d}{transfer_date.day:02d}",
            _digits(r.bank_code, 4, "bank code", 0, exact=True),
            _text(r.bank_name, 15, "bank name", 0, required=False),
            _digits(r.branch_code, 3, "branch code", 0, exact=True),
            _text(r.branch_name, 15, "branch name", 0, required=False),
            _deposit_type(r.deposit_type, _REQUESTER_DEPOSIT_TYPES, "deposit type", 0),
            _digits(r.account_number, 7, "account number", 0, exact=True),
            " " * 17,
        )
    )
    return _encode(record)


def _amount(value: object, record: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTransfer("amount", "must be an integer number of yen", record)
    if not 1 <= value <= MAX_AMOUNT:
        raise InvalidTransfer("amount", f"must be between 1 and {MAX_AMOUNT:,} yen", record)
    return value


def _customer_part(t: Transfer, record: int) -> tuple[str, str]:
    """Columns 92-111 and the 識別表示 at 113."""
    if t.edi_info:
        if t.customer_code_1 or t.customer_code_2:
            raise InvalidTransfer("edi_info", "cannot be combined with customer codes", record)
        if len(t.edi_info) > 20:
            raise InvalidTransfer("edi_info", "must be at most 20 characters", record)
        return _text(t.edi_info, 20, "edi_info", record, required=True), "Y"
    codes = "".join(
        _digits(code, 10, name, record, exact=False) if code else " " * 10
        for name, code in (
            ("customer code 1", t.customer_code_1),
            ("customer code 2", t.customer_code_2),
        )
    )
    return codes, " "


def _data(t: Transfer, record: int) -> tuple[bytes, int]:
    amount = _amount(t.amount, record)
    if isinstance(t.new_code, bool) or t.new_code not in _NEW_CODES:
        raise InvalidTransfer("new code", "is not 0, 1 or 2", record)
    if isinstance(t.kind, bool) or t.kind not in _TRANSFER_KINDS:
        raise InvalidTransfer("transfer kind", "is not 7 or 8", record)
    customer, marker = _customer_part(t, record)
    line = "".join(
        (
            "2",
            _digits(t.bank_code, 4, "bank code", record, exact=True),
            _text(t.bank_name, 15, "bank name", record, required=False),
            _digits(t.branch_code, 3, "branch code", record, exact=True),
            _text(t.branch_name, 15, "branch name", record, required=False),
            "0000",
            _deposit_type(t.deposit_type, _DATA_DEPOSIT_TYPES, "deposit type", record),
            _digits(t.account_number, 7, "account number", record, exact=True),
            _text(t.recipient_name, 30, "recipient name", record, required=True),
            f"{amount:010d}",
            str(int(t.new_code)),
            customer,
            str(int(t.kind)),
            marker,
            " " * 7,
        )
    )
    return _encode(line), amount


def _encode(record: str) -> bytes:
    data = record.encode(_ENCODING)
    # Every field was checked to be single-byte 全銀 characters; a wrong length here is a
    # programming error, not bad input.
    if len(data) != RECORD_LENGTH:  # pragma: no cover
        raise AssertionError(f"record of {len(data)} bytes")
    return data + _CRLF


def validate_transfer(transfer: Transfer, record: int = 1) -> None:
    """Raise :class:`InvalidTransfer` if ``transfer`` cannot be written (nothing is written).

    A payout run calls this for every recipient before it opens the file, so that a bad
    record does not leave a half-written file behind.
    """
    _data(transfer, record)


class TransferFileWriter:
    """Writes a 総合振込 file record by record to a binary file object.

    Memory does not grow with the number of transfers: each record goes to ``out`` as it is
    added.  Call :meth:`close` (or use the writer as a context manager) to write the last
    trailer and the end record; :meth:`close` returns the summary.  ``max_group_count``
    starts a new header/trailer group earlier than the format's limit (some banks accept
    fewer transfers per group).  An invalid transfer
    raises :class:`InvalidTransfer` before any byte of its record is written, but earlier
    records are already in ``out``: validate first (:func:`validate_transfer`) or write to a
    temporary file that is discarded on error.
    """

    def __init__(
        self,
        out: BinaryWriter,
        requester: Requester,
        transfer_date: date,
        *,
        max_group_count: int = MAX_GROUP_COUNT,
    ) -> None:
        if not 1 <= max_group_count <= MAX_GROUP_COUNT:
            raise InvalidComponent(f"max_group_count must be between 1 and {MAX_GROUP_COUNT}")
        self._max_group_count = max_group_count
        self._out = out
        self._header = _header(requester, transfer_date)  # validated once, reused per group
        self._count = 0  # in the current group
        self._total = 0
        self._all_count = 0
        self._all_total = 0
        self._groups = 0
        self._closed = False

    def __enter__(self) -> TransferFileWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()

    def add(self, transfer: Transfer) -> None:
        if self._closed:
            raise InvalidComponent("the transfer file is already closed")
        record, amount = _data(transfer, self._all_count + 1)
        if self._groups and (
            self._count == self._max_group_count or self._total + amount > MAX_GROUP_TOTAL
        ):
            self._out.write(self._trailer())
            self._count = self._total = 0
            self._groups += 1
            self._out.write(self._header)
        elif not self._groups:
            self._groups = 1
            self._out.write(self._header)
        self._out.write(record)
        self._count += 1
        self._total += amount
        self._all_count += 1
        self._all_total += amount

    def _trailer(self) -> bytes:
        return _encode(f"8{self._count:06d}{self._total:012d}" + " " * 101)

    def close(self) -> TransferFileSummary:
        """Write the trailer and end records; an empty run writes nothing and is refused."""
        if self._closed:
            return self.summary
        if not self._groups:
            raise InvalidFormat("a transfer file needs at least one transfer")
        self._out.write(self._trailer())
        self._out.write(_encode("9" + " " * 119))
        self._closed = True
        return self.summary

    @property
    def summary(self) -> TransferFileSummary:
        return TransferFileSummary(self._all_count, self._all_total, self._groups)


def write_transfer_file(
    out: BinaryWriter, requester: Requester, transfer_date: date, transfers: Iterable[Transfer]
) -> TransferFileSummary:
    """Write a whole 総合振込 file from an iterable (consumed lazily) and return its summary."""
    writer = TransferFileWriter(out, requester, transfer_date)
    for transfer in transfers:
        writer.add(transfer)
    return writer.close()

"""The 全銀協 総合振込 file: written by the module, read back by an independent reader.

The reader below slices the raw bytes at the positions of the 全銀協 layout (1-based column,
length), written out here from the specification, not taken from the writer.
"""

from __future__ import annotations

import doctest
import io
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from mynumber.accounts import transfer_file
from mynumber.accounts.transfer_file import (
    DepositType,
    InvalidTransfer,
    NewCode,
    Requester,
    Transfer,
    TransferFileWriter,
    TransferKind,
    validate_transfer,
    write_transfer_file,
)

# -- the independent reader ---------------------------------------------------------------

# (name, 1-based start column, length) per record kind, from the 全銀協 総合振込 layout.
HEADER = [
    ("data_kind", 1, 1), ("type_code", 2, 2), ("code_kind", 4, 1), ("requester_code", 5, 10),
    ("requester_name", 15, 40), ("transfer_date", 55, 4), ("bank_code", 59, 4),
    ("bank_name", 63, 15), ("branch_code", 78, 3), ("branch_name", 81, 15),
    ("deposit_type", 96, 1), ("account_number", 97, 7), ("dummy", 104, 17),
]  # fmt: skip
DATA = [
    ("data_kind", 1, 1), ("bank_code", 2, 4), ("bank_name", 6, 15), ("branch_code", 21, 3),
    ("branch_name", 24, 15), ("clearing_house", 39, 4), ("deposit_type", 43, 1),
    ("account_number", 44, 7), ("recipient_name", 51, 30), ("amount", 81, 10),
    ("new_code", 91, 1), ("customer_code_1", 92, 10), ("customer_code_2", 102, 10),
    ("transfer_kind", 112, 1), ("edi_marker", 113, 1), ("dummy", 114, 7),
]  # fmt: skip
TRAILER = [("data_kind", 1, 1), ("count", 2, 6), ("total", 8, 12), ("dummy", 20, 101)]
END = [("data_kind", 1, 1), ("dummy", 2, 119)]
LAYOUTS = {b"1": HEADER, b"2": DATA, b"8": TRAILER, b"9": END}


def test_the_layouts_cover_120_bytes_without_gaps() -> None:
    for layout in LAYOUTS.values():
        position = 1
        for _, start, length in layout:
            assert start == position
            position += length
        assert position == 121


def read_records(data: bytes) -> Iterator[dict[str, str]]:
    """Split the file into 120-byte records + CRLF and each record into its fields."""
    assert len(data) % 122 == 0, "every record is 120 bytes followed by CR LF"
    for offset in range(0, len(data), 122):
        record, line_end = data[offset : offset + 120], data[offset + 120 : offset + 122]
        assert line_end == b"\r\n"
        assert b"\r" not in record and b"\n" not in record
        layout = LAYOUTS[record[:1]]
        yield {name: record[start - 1 : start - 1 + length].decode("cp932")
               for name, start, length in layout}  # fmt: skip


# -- fixtures -------------------------------------------------------------------------------

REQUESTER = Requester(
    code="123456",
    name="ﾃﾞｼﾞﾀﾙﾁﾖｳ(ｺｳｷﾝｷﾕｳﾌ)",
    bank_code="8001",
    bank_name="ﾐﾗｲ",
    branch_code="001",
    branch_name="ﾎﾝﾃﾝ",
    deposit_type=DepositType.CURRENT,
    account_number="0012345",
)


def transfer(**changes: Any) -> Transfer:
    base = Transfer(
        bank_code="8013",
        bank_name="ﾋｶﾘｱｵﾊﾞ",
        branch_code="501",
        branch_name="ｳﾒｶﾞｵｶ",
        deposit_type=DepositType.ORDINARY,
        account_number="7654321",
        recipient_name="ﾔﾏﾀﾞ ｷﾖｳｺ",
        amount=100_000,
    )
    return replace(base, **changes)


def write(transfers: list[Transfer], **kwargs: Any) -> bytes:
    out = io.BytesIO()
    with TransferFileWriter(out, REQUESTER, date(2025, 3, 7), **kwargs) as writer:
        for t in transfers:
            writer.add(t)
    return out.getvalue()


def test_doctests() -> None:
    assert doctest.testmod(transfer_file, optionflags=doctest.ELLIPSIS).failed == 0


# -- the file parses back field by field ----------------------------------------------------


def test_file_parses_back_field_by_field() -> None:
    transfers = [
        transfer(),
        transfer(
            bank_code="8005", bank_name="ｿﾖｶｾﾞ", branch_code="007", branch_name="",
            deposit_type=DepositType.CURRENT, account_number="0000001",
            recipient_name="ｳﾞｲｸﾄﾙ ｼﾞﾖ-ｼﾞ", amount=9_999_999_999,
            customer_code_1="42", customer_code_2="1234567890",
            new_code=NewCode.FIRST_TRANSFER, kind=TransferKind.DOCUMENT,
        ),
        transfer(deposit_type=DepositType.SAVINGS, amount=1, edi_info="ｷﾕｳﾌｷﾝ 2025-03"),
    ]  # fmt: skip
    header, d1, d2, d3, trailer, end = read_records(write(transfers))

    assert header == {
        "data_kind": "1",
        "type_code": "21",
        "code_kind": "0",
        "requester_code": "0000123456",
        "requester_name": "ﾃﾞｼﾞﾀﾙﾁﾖｳ(ｺｳｷﾝｷﾕｳﾌ)".ljust(40),
        "transfer_date": "0307",
        "bank_code": "8001",
        "bank_name": "ﾐﾗｲ".ljust(15),
        "branch_code": "001",
        "branch_name": "ﾎﾝﾃﾝ".ljust(15),
        "deposit_type": "2",
        "account_number": "0012345",
        "dummy": " " * 17,
    }
    assert d1 == {
        "data_kind": "2",
        "bank_code": "8013",
        "bank_name": "ﾋｶﾘｱｵﾊﾞ".ljust(15),
        "branch_code": "501",
        "branch_name": "ｳﾒｶﾞｵｶ".ljust(15),
        "clearing_house": "0000",
        "deposit_type": "1",
        "account_number": "7654321",
        "recipient_name": "ﾔﾏﾀﾞ ｷﾖｳｺ".ljust(30),
        "amount": "0000100000",
        "new_code": "0",
        "customer_code_1": " " * 10,
        "customer_code_2": " " * 10,
        "transfer_kind": "7",
        "edi_marker": " ",
        "dummy": " " * 7,
    }
    assert (d2["bank_code"], d2["branch_code"], d2["branch_name"]) == ("8005", "007", " " * 15)
    assert (d2["deposit_type"], d2["account_number"]) == ("2", "0000001")
    assert d2["recipient_name"] == "ｳﾞｲｸﾄﾙ ｼﾞﾖ-ｼﾞ".ljust(30)
    assert d2["amount"] == "9999999999"
    assert (d2["new_code"], d2["customer_code_1"], d2["customer_code_2"]) == (
        "1", "0000000042", "1234567890",
    )  # fmt: skip
    assert (d2["transfer_kind"], d2["edi_marker"]) == ("8", " ")
    # With 識別表示 "Y", columns 92-111 are one EDI field of 20 characters.
    assert d3["deposit_type"] == "4"
    assert d3["amount"] == "0000000001"
    assert d3["edi_marker"] == "Y"
    assert (d3["customer_code_1"] + d3["customer_code_2"]) == "ｷﾕｳﾌｷﾝ 2025-03".ljust(20)

    assert trailer == {
        "data_kind": "8",
        "count": "000003",
        "total": f"{100_000 + 9_999_999_999 + 1:012d}",
        "dummy": " " * 101,
    }
    assert end == {"data_kind": "9", "dummy": " " * 119}


def test_trailer_totals_match_the_data_records() -> None:
    amounts = [1, 250, 60_000, 1_000_000, 123_456_789]
    records = list(read_records(write([transfer(amount=a) for a in amounts])))
    data = [r for r in records if r["data_kind"] == "2"]
    (trailer,) = [r for r in records if r["data_kind"] == "8"]
    assert int(trailer["count"]) == len(data) == len(amounts)
    assert int(trailer["total"]) == sum(int(r["amount"]) for r in data) == sum(amounts)


def test_every_record_is_120_bytes_and_crlf() -> None:
    data = write([transfer(recipient_name="ｱ" * 30), transfer(recipient_name="ﾊﾟ" * 15)])
    lines = data.split(b"\r\n")
    assert lines[-1] == b""
    assert [len(line) for line in lines[:-1]] == [120] * 5
    assert [line[:1] for line in lines[:-1]] == [b"1", b"2", b"2", b"8", b"9"]


def test_summary_reports_count_and_total() -> None:
    out = io.BytesIO()
    summary = write_transfer_file(
        out, REQUESTER, date(2025, 1, 1), (transfer(amount=a) for a in (10, 20, 30))
    )
    assert (summary.count, summary.total, summary.groups) == (3, 60, 1)


def test_a_long_name_is_cut_at_the_field_width() -> None:
    (_, d, _, _) = read_records(write([transfer(recipient_name="ｱｲｳｴｵ" * 7)]))
    assert d["recipient_name"] == ("ｱｲｳｴｵ" * 7)[:30]


def test_groups_split_when_the_count_limit_is_reached() -> None:
    records = list(read_records(write([transfer(amount=a) for a in range(1, 8)],
                                      max_group_count=3)))  # fmt: skip
    kinds = "".join(r["data_kind"] for r in records)
    assert kinds == "12228122281289"
    trailers = [r for r in records if r["data_kind"] == "8"]
    assert [(int(t["count"]), int(t["total"])) for t in trailers] == [(3, 6), (3, 15), (1, 7)]


class Sink(io.RawIOBase):
    """Counts bytes and keeps only the trailers: the file itself is never held."""

    def __init__(self) -> None:
        self.size = 0
        self.kinds: dict[bytes, int] = {}
        self.trailers: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.size += len(data)
        kind = data[:1]
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if kind == b"8":
            self.trailers.append(data)
        return len(data)


def _peak_memory(n: int) -> int:
    tracemalloc.start()
    try:
        one = transfer()
        write_transfer_file(Sink(), REQUESTER, date(2025, 6, 1), (one for _ in range(n)))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_transfers() -> None:
    small, large = _peak_memory(1_000), _peak_memory(20_000)
    assert large < small + 20_000  # bytes; a kept record would cost 20,000 x 122 bytes


def test_the_default_group_is_as_large_as_the_trailer_count_field_allows() -> None:
    # 合計件数 has six digits: the 1,000,000th transfer starts a second group (a million
    # recipients are written by `mynumber bench payout`; here the limit itself).
    from mynumber.accounts.transfer_file import MAX_GROUP_COUNT, MAX_GROUP_TOTAL

    assert MAX_GROUP_COUNT == 10**6 - 1 and MAX_GROUP_TOTAL == 10**12 - 1


# -- refused input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"account_number": "123456"}, "account number"),
        ({"account_number": "12345678"}, "account number"),
        ({"account_number": "12345a7"}, "account number"),
        ({"bank_code": "801"}, "bank code"),
        ({"branch_code": "1234"}, "branch code"),
        ({"deposit_type": 3}, "deposit type"),
        ({"deposit_type": 9}, "deposit type"),
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 10_000_000_000}, "amount"),
        ({"amount": 100.0}, "amount"),
        ({"amount": True}, "amount"),
        ({"recipient_name": "ヤマダ キョウコ"}, "recipient name"),  # not converted
        ({"recipient_name": "ﾔﾏﾀﾞ ｷｮｳｺ"}, "recipient name"),  # small kana
        ({"recipient_name": "山田"}, "recipient name"),
        ({"recipient_name": "ﾔﾏﾀﾞ,ﾀﾛｳ"}, "recipient name"),
        ({"recipient_name": "   "}, "recipient name"),
        ({"bank_name": "ﾋｶﾘｰ"}, "bank name"),
        ({"customer_code_1": "ABC"}, "customer code 1"),
        ({"edi_info": "ｱ" * 21}, "edi_info"),
        ({"edi_info": "ｱ", "customer_code_1": "1"}, "edi_info"),
        ({"new_code": 5}, "new code"),
        ({"kind": 1}, "transfer kind"),
    ],
)
def test_invalid_transfers_are_refused_before_writing(changes: dict[str, Any], field: str) -> None:
    bad = transfer(**changes)
    with pytest.raises(InvalidTransfer) as info:
        validate_transfer(bad)
    assert info.value.field == field
    assert info.value.code == "invalid_transfer"
    out = io.BytesIO()
    writer = TransferFileWriter(out, REQUESTER, date(2025, 3, 7))
    writer.add(transfer())
    before = out.getvalue()
    with pytest.raises(InvalidTransfer) as info:
        writer.add(bad)
    assert info.value.record == 2
    assert out.getvalue() == before  # nothing of the bad record was written


def test_error_messages_do_not_contain_the_value() -> None:
    with pytest.raises(InvalidTransfer) as info:
        validate_transfer(transfer(recipient_name="ﾔﾏﾀﾞ,ﾀﾛｳ", account_number="98765432"))
    assert "ﾔﾏﾀﾞ" not in str(info.value) and "98765432" not in str(info.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"code": "12345678901"},
        {"name": ""},
        {"name": "デジタル庁"},
        {"deposit_type": DepositType.SAVINGS},
        {"account_number": "1"},
    ],
)
def test_invalid_requester_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidTransfer) as info:
        TransferFileWriter(io.BytesIO(), replace(REQUESTER, **changes), date(2025, 1, 1))
    assert info.value.record == 0


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one transfer"):
        write_transfer_file(io.BytesIO(), REQUESTER, date(2025, 1, 1), [])

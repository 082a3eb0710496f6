"""Times and dates as people in Japan read them (issue 13): JST, Japanese dates, 和暦."""

from __future__ import annotations

import datetime as dt

import pytest

from mynumber.kernel.localtime import amount, in_japan, local_date, local_time, wareki

UTC = dt.UTC


def test_a_utc_moment_late_in_the_day_is_the_next_day_in_japan() -> None:
    moment = dt.datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
    assert local_time(moment, "ja") == "2027年1月1日 00:30"
    assert local_time(moment, "en") == "2027-01-01 00:30 JST"
    assert local_date(moment, "ja") == "2027年1月1日"
    assert local_time(moment, "ja", seconds=True) == "2027年1月1日 00:30:00"


def test_a_naive_moment_is_taken_as_utc_as_stored() -> None:
    assert in_japan(dt.datetime(2026, 1, 1, 0, 0)).hour == 9


@pytest.mark.parametrize(("day", "expected"), [
    (dt.date(2019, 4, 30), "平成31年4月30日"),
    (dt.date(2019, 5, 1), "令和元年5月1日"),
    (dt.date(2026, 12, 7), "令和8年12月7日"),
    (dt.date(1989, 1, 7), "昭和64年1月7日"),
    (dt.date(1989, 1, 8), "平成元年1月8日"),
    (dt.date(1926, 12, 25), "昭和元年12月25日"),
    (dt.date(1912, 7, 30), "大正元年7月30日"),
])
def test_era_boundaries(day: dt.date, expected: str) -> None:
    assert wareki(day) == expected


def test_dates_for_pages() -> None:
    assert local_date(dt.date(1990, 4, 1), "ja", era=True) == "平成2年4月1日（1990年）"
    assert local_date(dt.date(1990, 4, 1), "ja") == "1990年4月1日"
    assert local_date(dt.date(1990, 4, 1), "en", era=True) == "1990-04-01"
    assert local_date(None) == local_time(None) == amount(None) == "—"


def test_amounts_are_grouped() -> None:
    assert amount(3850000) == "3,850,000"
    assert amount(0) == "0"

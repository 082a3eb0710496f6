"""Times and dates as people in Japan read them.

Stored times are UTC (``db.UTCDateTime``); a page shows them in Japan time (JST, UTC+9, no
daylight saving). Japanese pages write dates the Japanese way (2026年12月7日), with the era
(和暦) beside the Western year where official documents use it (a birth date on a 住民票: 平成2年
4月1日); English pages write ISO dates and mark times JST. The templates use these through the
filters ``local_time``, ``local_date`` and ``amount`` (web/templating.py); views that build
strings use the functions.

>>> import datetime as dt
>>> local_time(dt.datetime(2026, 12, 6, 23, 30, tzinfo=dt.timezone.utc), "ja")
'2026年12月7日 08:30'
>>> local_time(dt.datetime(2026, 12, 6, 23, 30, tzinfo=dt.timezone.utc), "en")
'2026-12-07 08:30 JST'
>>> local_date(dt.date(1990, 4, 1), "ja", era=True)
'平成2年4月1日（1990年）'
>>> wareki(dt.date(2019, 5, 1))
'令和元年5月1日'
>>> amount(3850000, "ja")
'3,850,000'
"""

from __future__ import annotations

import datetime as dt

__all__ = ["JST", "amount", "in_japan", "local_date", "local_time", "wareki"]

#: Japan Standard Time (Japan has no daylight saving time).
JST = dt.timezone(dt.timedelta(hours=9), "JST")

# 元号 and their first days (明治 from its adoption of the solar calendar).
_ERAS: tuple[tuple[dt.date, str], ...] = (
    (dt.date(2019, 5, 1), "令和"),
    (dt.date(1989, 1, 8), "平成"),
    (dt.date(1926, 12, 25), "昭和"),
    (dt.date(1912, 7, 30), "大正"),
    (dt.date(1873, 1, 1), "明治"),
)


def in_japan(moment: dt.datetime) -> dt.datetime:
    """The moment in JST (a naive value is taken as UTC, as stored)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(JST)


def wareki(day: dt.date) -> str:
    """The date in the Japanese era (令和8年12月7日; the first year is 元年). Before 明治 6
    (the solar calendar) the Western year is given."""
    for start, name in _ERAS:
        if day >= start:
            year = day.year - start.year + 1
            return f"{name}{'元' if year == 1 else year}年{day.month}月{day.day}日"
    return f"{day.year}年{day.month}月{day.day}日"


def local_date(day: dt.date | dt.datetime | None, lang: str = "ja", *,
               era: bool = False) -> str:
    """A date for a page: 2026年12月7日 (with ``era``: 令和8年12月7日（2026年）) in Japanese,
    2026-12-07 otherwise. A datetime is first taken to JST. None gives an em dash."""
    if day is None:
        return "—"
    if isinstance(day, dt.datetime):
        day = in_japan(day).date()
    if lang != "ja":
        return day.isoformat()
    if era:
        return f"{wareki(day)}（{day.year}年）"
    return f"{day.year}年{day.month}月{day.day}日"


def local_time(moment: dt.datetime | None, lang: str = "ja", *, seconds: bool = False) -> str:
    """A moment for a page, in JST: 2026年12月7日 08:30 in Japanese, 2026-12-07 08:30 JST
    otherwise. None gives an em dash."""
    if moment is None:
        return "—"
    local = in_japan(moment)
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    if lang != "ja":
        return f"{local.date().isoformat()} {clock} JST"
    return f"{local.year}年{local.month}月{local.day}日 {clock}"


def amount(value: int | float | None, lang: str = "ja") -> str:
    """A number of yen or a count with digit grouping (3,850,000)."""
    if value is None:
        return "—"
    return f"{value:,}"

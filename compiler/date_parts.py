"""Date parts: a time dimension read as a number that repeats (weekday, month of the year, hour of day).

`metric_time.dow`, `order.ordered_at.month_of_year`, ... group or filter by where a moment falls in
a cycle rather than by which period it is. The names follow MetricFlow's date parts (`dow`, `doy`)
and Looker's timeframes (`day_of_week`, `week_of_year`, `hour_of_day`); every part is a whole
number, computed on the time after the request's time zone is applied:

    dow              ISO day of the week, 1 = Monday ... 7 = Sunday (whatever `calendar.week_start` is)
    dom              day of the month, 1..31
    doy              day of the year, 1..366
    week_of_year     ISO week number, 1..53 (weeks start on Monday; week 1 holds the year's first Thursday)
    month_of_year    1..12
    quarter_of_year  1..4 (calendar quarters)
    hour_of_day      0..23

Each part is a typed sqlglot node (exp.DayOfWeekIso, exp.WeekOfYear, ...) so every dialect writes its
own function; render/dialects.py rewrites the few sqlglot does not write right (PostgreSQL, Spark).
"""

from __future__ import annotations

from sqlglot import exp

PARTS: dict[str, str] = {
    "dow": "ISO day of the week, 1 = Monday ... 7 = Sunday",
    "dom": "day of the month, 1..31",
    "doy": "day of the year, 1..366",
    "week_of_year": "ISO week of the year, 1..53",
    "month_of_year": "month of the year, 1..12",
    "quarter_of_year": "quarter of the year, 1..4",
    "hour_of_day": "hour of the day, 0..23",
}

# other spellings people bring from Looker, MetricFlow or SQL -> the part
ALIASES: dict[str, str] = {
    "day_of_week": "dow", "isodow": "dow", "day_of_month": "dom", "day_of_year": "doy",
    "iso_week": "week_of_year", "month_num": "month_of_year", "hour_of_day": "hour_of_day",
}

_NODES = {
    "dow": exp.DayOfWeekIso,
    "dom": exp.DayOfMonth,
    "doy": exp.DayOfYear,
    "week_of_year": exp.WeekOfYear,
    "month_of_year": exp.Month,
    "quarter_of_year": exp.Quarter,
    "hour_of_day": exp.Hour,
}


def part_of(name: str) -> str | None:
    """The part a name (or one of its aliases) stands for; None when it names no part."""
    return name if name in PARTS else ALIASES.get(name)


def names() -> list[str]:
    return list(PARTS)


def extract(expr: exp.Expression, part: str) -> exp.Expression:
    """The part of a (zone-shifted) time expression, as a typed node."""
    return _NODES[part](this=expr)

"""Time on the calendar: grains (with week start and fiscal year), time zones, windows.

SQL side: `time_expr` truncates a time dimension to a grain after shifting stored UTC times into
the request's zone. Python side: `shift` and `period_start` move the request's range bounds, so
offsets and windows read exactly the rows they need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlglot import exp

from .errors import QueryError, did_you_mean

GRAIN_ORDER = {"second": -2, "minute": -1, "hour": 0, "day": 1, "week": 2, "month": 3, "quarter": 4, "fiscal_quarter": 4,
               "year": 5, "fiscal_year": 5}
CLOCK_GRAINS = ("second", "minute", "hour")  # periods shorter than a day: TIMESTAMPs, not DATEs
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class TimeContext:
    timezone: str | None = None  # None or UTC: times as stored
    week_start: int = 0  # 0 = Monday
    fiscal_start: int = 1  # first month of the fiscal year
    dates: frozenset = frozenset()  # refs of time dimensions the warehouse stores as DATE (never shifted)


@dataclass(frozen=True)
class Window:
    count: int
    unit: str  # day | week | month | quarter | year

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'s' if self.count != 1 else ''}"

    def as_months(self) -> int | None:
        return {"month": 1, "quarter": 3, "year": 12}.get(self.unit, 0) * self.count or None

    def as_days(self) -> int | None:
        return {"day": 1, "week": 7}.get(self.unit, 0) * self.count or None


def parse_window(text: str) -> Window:
    match = re.fullmatch(r"\s*(\d+)\s+(day|week|month|quarter|year)s?\s*", str(text))
    if not match:
        raise QueryError(f"window {text!r} is not a count and a unit", hint="e.g. 28 days, 1 month, 1 year")
    return Window(int(match.group(1)), match.group(2))


def check_timezone(name: str | None) -> str | None:
    if name is None or name in ("", "UTC", "Etc/UTC"):
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise QueryError(f"unknown time zone {name!r}",
                         hint=did_you_mean(name, available_timezones()) + " (IANA names such as Europe/Berlin)") from None
    return name


# --- SQL -------------------------------------------------------------------------------------------


def _n(value: int) -> exp.Literal:
    return exp.Literal.number(value)


def add(expr: exp.Expression, count: int, unit: str) -> exp.Expression:
    node = exp.DateAdd if count >= 0 else exp.DateSub
    return node(this=expr, expression=_n(abs(count)), unit=exp.var(unit.upper()))


def _trunc(expr: exp.Expression, unit: str) -> exp.Expression:
    return exp.TimestampTrunc(this=expr, unit=exp.var(unit.upper()))


def in_zone(expr: exp.Expression, stored_as: str, ctx: TimeContext, ref: str | None = None) -> exp.Expression:
    """A stored UTC timestamp as wall-clock time in the request's zone; dates stay as they are
    (declared `stored_as: date`, or `ref` known from the warehouse to be a DATE column)."""
    if not ctx.timezone or stored_as == "date" or ref in ctx.dates:
        return expr
    shifted = exp.ConvertTimezone(source_tz=exp.Literal.string("UTC"), target_tz=exp.Literal.string(ctx.timezone),
                                  timestamp=expr)
    return exp.cast(shifted, exp.DataType.Type.TIMESTAMP)


def truncate(expr: exp.Expression, grain: str, ctx: TimeContext) -> exp.Expression:
    """The start of the period holding `expr`: a DATE (a TIMESTAMP for hours, minutes and seconds)."""
    if grain in CLOCK_GRAINS:
        return exp.cast(_trunc(expr, grain), exp.DataType.Type.TIMESTAMP)
    if grain == "week" and ctx.week_start:
        # weeks from another weekday: shift so that day falls on Monday, truncate, shift back
        start = add(_trunc(add(expr, -ctx.week_start, "day"), "week"), ctx.week_start, "day")
    elif grain in ("fiscal_quarter", "fiscal_year") and ctx.fiscal_start != 1:
        months = ctx.fiscal_start - 1
        start = add(_trunc(add(expr, -months, "month"), "quarter" if grain == "fiscal_quarter" else "year"), months, "month")
    else:
        start = _trunc(expr, {"fiscal_quarter": "quarter", "fiscal_year": "year"}.get(grain, grain))
    return exp.cast(start, exp.DataType.Type.DATE)


# --- Python: moving range bounds --------------------------------------------------------------------


def _to_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = index // 12, index % 12 + 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (following - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def shift(value: str, window: Window, sign: int = 1) -> str:
    """`value` (an ISO timestamp) moved by the window; month ends clamp (Mar 31 - 1 month = Feb 28/29)."""
    moment = _to_datetime(value)
    months = window.as_months()
    moment = _add_months(moment, sign * months) if months else moment + timedelta(days=sign * window.as_days())
    return moment.isoformat(sep=" ")


def period_start(value: str, grain: str, ctx: TimeContext) -> str:
    """The start of the period (at `grain`) holding the ISO timestamp `value`."""
    moment = _to_datetime(value)
    day = moment.date()
    if grain in CLOCK_GRAINS:
        keep = {"second": {"microsecond": 0}, "minute": {"second": 0, "microsecond": 0},
                "hour": {"minute": 0, "second": 0, "microsecond": 0}}[grain]
        return moment.replace(**keep).isoformat(sep=" ")
    if grain == "day":
        start = day
    elif grain == "week":
        start = day - timedelta(days=(day.weekday() - ctx.week_start) % 7)
    elif grain == "month":
        start = day.replace(day=1)
    elif grain in ("quarter", "year", "fiscal_quarter", "fiscal_year"):
        first = ctx.fiscal_start if grain.startswith("fiscal") else 1
        span = 3 if grain.endswith("quarter") else 12
        months_since = (day.year * 12 + day.month - first) % span
        start = _add_months(datetime(day.year, day.month, 1), -months_since).date()
    else:
        raise AssertionError(grain)
    return datetime(start.year, start.month, start.day).isoformat(sep=" ")


def next_period(value: str, grain: str, ctx: TimeContext) -> str:
    """The start of the period after the one holding `value`."""
    start = _to_datetime(period_start(value, grain, ctx))
    if grain in CLOCK_GRAINS:
        following = start + timedelta(**{f"{grain}s": 1})
    elif grain == "day":
        following = start + timedelta(days=1)
    elif grain == "week":
        following = start + timedelta(days=7)
    else:
        following = _add_months(start, {"month": 1, "quarter": 3, "fiscal_quarter": 3}.get(grain, 12))
    return following.isoformat(sep=" ")


# which grains line up with which to-date periods: a to-date value read at a grain is the value
# as of each period's last day, so every period must end inside one to-date period
_FITS = {
    "week": {"second", "minute", "hour", "day", "week"},
    "month": {"second", "minute", "hour", "day", "week", "month"},
    "quarter": {"second", "minute", "hour", "day", "week", "month", "quarter"},
    "year": {"second", "minute", "hour", "day", "week", "month", "quarter", "year"},
    "fiscal_quarter": {"second", "minute", "hour", "day", "week", "month", "fiscal_quarter"},
    "fiscal_year": {"second", "minute", "hour", "day", "week", "month", "fiscal_quarter", "fiscal_year"},
}


def fits_to_date(grain: str, to_date: str, ctx: TimeContext) -> bool:
    """Whether periods of `grain` never span two `to_date` periods (fiscal grains by the fiscal start)."""
    fits = set(_FITS[to_date])
    aligned_quarters = (ctx.fiscal_start - 1) % 3 == 0
    if to_date in ("quarter", "year") and aligned_quarters:
        fits.add("fiscal_quarter")
    if to_date == "year" and ctx.fiscal_start == 1:
        fits.add("fiscal_year")
    if to_date.startswith("fiscal") and aligned_quarters:
        fits.add("quarter")
    if to_date == "fiscal_year" and ctx.fiscal_start == 1:
        fits.add("year")
    return grain in fits

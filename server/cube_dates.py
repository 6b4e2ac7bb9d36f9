"""Cube's date ranges as [start, end) instants, read the way Cube's own date parser reads them.

    date_range("last 7 days", "dateRange", now=datetime(2025, 3, 12, 15, 30))
    -> (2025-03-05 00:00, 2025-03-12 00:00)

- `[from, to]`: ISO dates or timestamps, `to` inclusive (a bare date is its whole day);
- `today`, `yesterday`, `tomorrow`; `this|last|next <unit>`; `last|next N <unit>s` (N whole units
  before or after the current one); units second, minute, hour, day, week (ISO, Monday), month,
  quarter, year;
- `from <point> to <point>` with points `now`, `today`, `yesterday`, `tomorrow`, an ISO date or
  timestamp, `N <unit>s ago`, `N <unit>s from now` / `in N <unit>s`: the start snaps to the start of
  the finest unit named (second, minute or hour, else day) and the end to its end, as in Cube
  ("from 7 days ago to now" is 7 whole days before today plus today).

Every instant is naive and local to the query's time zone (`now` is taken in that zone).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from canon.compiler.errors import FilterError, Location

UNITS = ("second", "minute", "hour", "day", "week", "month", "quarter", "year")
_FIXED = {"second": timedelta(seconds=1), "minute": timedelta(minutes=1), "hour": timedelta(hours=1),
          "day": timedelta(days=1), "week": timedelta(weeks=1)}
_UNIT = "(second|minute|hour|day|week|month|quarter|year)"
HINT = ("write [from, to], today, yesterday, tomorrow, this|last|next <unit>, last|next N <unit>s, or "
        "'from <point> to <point>' (points: now, today, an ISO date, N <unit>s ago); units: " + ", ".join(UNITS))


def _fail(path: str, message: str, hint: str | None = None):
    raise FilterError(message, location=Location(path=path), hint=hint)


def start_of(unit: str, moment: datetime) -> datetime:
    if unit in ("second", "minute", "hour"):
        keep = {"second": {"microsecond": 0}, "minute": {"second": 0, "microsecond": 0},
                "hour": {"minute": 0, "second": 0, "microsecond": 0}}[unit]
        return moment.replace(**keep)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday, as in Cube
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    return day.replace(month=1, day=1)


def add(unit: str, moment: datetime, n: int) -> datetime:
    """`moment` moved by n units (months clamp to the month's last day, as moment.js does)."""
    if unit in _FIXED:
        return moment + n * _FIXED[unit]
    months = {"month": 1, "quarter": 3, "year": 12}[unit] * n
    index = moment.year * 12 + moment.month - 1 + months
    year, month = index // 12, index % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last))


def _period(unit: str, moment: datetime) -> tuple[datetime, datetime]:
    start = start_of(unit, moment)
    return start, add(unit, start, 1)


def parse_instant(value, path: str, *, after: bool = False) -> datetime:
    """An ISO date or timestamp; with `after`, the first instant after it (a date: the next midnight)."""
    text = str(value).strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day)
            return start + timedelta(days=1) if after else start
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        _fail(path, f"{text!r} is not a date or timestamp", "write an ISO date such as 2025-01-31 or 2025-01-31T12:00:00")
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    # Cube sends inclusive ends such as 23:59:59.999: the next instant is the exclusive bound
    return moment + timedelta(milliseconds=1) if after else moment


def _point(text: str, now: datetime, path: str) -> datetime | None:
    """One point in time of a `from ... to ...` phrase, or None."""
    if text == "now":
        return now
    days = {"today": 0, "yesterday": -1, "tomorrow": 1}
    if text in days:
        return now + timedelta(days=days[text])
    match = re.fullmatch(rf"(\d{{1,5}}) {_UNIT}s? ago", text)
    if match:
        return add(match[2], now, -int(match[1]))
    match = re.fullmatch(rf"(?:in (\d{{1,5}}) {_UNIT}s?|(\d{{1,5}}) {_UNIT}s? from now)", text)
    if match:
        n, unit = (match[1], match[2]) if match[1] else (match[3], match[4])
        return add(unit, now, int(n))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}([ t]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?", text):
        return parse_instant(text.upper().replace(" ", "T") if len(text) > 10 else text, path)
    return None


def date_range(value, path: str, *, today: date | None = None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """`_date_range`, with a range past the calendar (year 1 to 9999: `next 99999 years`) a 400."""
    try:
        return _date_range(value, path, today=today, now=now)
    except (OverflowError, ValueError):  # date arithmetic out of range (a bad date text fails inside)
        _fail(path, f"the date range {str(value)[:80]!r} falls outside the calendar (years 1 to 9999)", HINT)


def _date_range(value, path: str, *, today: date | None = None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """Cube's dateRange as [start, end) with an exclusive end. `now` (naive, local) defaults to the
    start of `today`, which defaults to today in UTC."""
    if now is None:
        day = today or datetime.now(timezone.utc).date()
        now = datetime(day.year, day.month, day.day)
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            _fail(path, "a date range is [from, to] or a phrase such as 'last 7 days'")
        start, end = parse_instant(value[0], path), parse_instant(value[1], path, after=True)
        if end <= start:
            _fail(path, f"the date range ends ({value[1]}) before it starts ({value[0]})")
        return start, end
    if not isinstance(value, str):
        _fail(path, f"{value!r} is not a date range", HINT)
    text = " ".join(value.lower().split())
    if text in ("today", "yesterday", "tomorrow"):
        return _period("day", _point(text, now, path))
    match = re.fullmatch(rf"(this|last|next) {_UNIT}", text)
    if match:
        return _period(match[2], add(match[2], now, {"this": 0, "last": -1, "next": 1}[match[1]]))
    match = re.fullmatch(rf"(last|next) (\d{{1,5}}) {_UNIT}s?", text)
    if match:
        n, unit = int(match[2]), match[3]
        current = start_of(unit, now)
        if match[1] == "last":  # the n whole periods before the current one, as Cube does
            return add(unit, current, -n), current
        return add(unit, current, 1), add(unit, current, n + 1)
    match = re.fullmatch(r"from (.+) to (.+)", text)
    if match:
        first, last = _point(match[1].strip(), now, path), _point(match[2].strip(), now, path)
        if first is None or last is None:
            _fail(path, f"{value!r}: cannot read '{match[1] if first is None else match[2]}' as a point in time", HINT)
        unit = next((u for u in ("second", "minute", "hour") if u in text), "day")
        start, end = start_of(unit, first), add(unit, start_of(unit, last), 1)
        if end <= start:
            _fail(path, f"the date range {value!r} ends before it starts")
        return start, end
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date_range([text, text], path, now=now)
    _fail(path, f"{value!r} is not a date range I understand", HINT)


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]

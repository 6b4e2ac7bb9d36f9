"""Relative time ranges ("last 7 days", "this month", ...) -> (start, end) dates.

Pure: `today` is passed in, so tests and reports are deterministic (the server takes it from
the project's `calendar.now` setting, $CANON_NOW, or the clock). Ranges are inclusive of both
ends, in whole days: "last 7 days" is the seven days ending today.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from .errors import QueryError

RELATIVE_RANGES = (
    "today", "yesterday", "last N days", "last N weeks", "last N months", "this week", "last week",
    "this month", "last month", "this quarter", "last quarter", "this year", "last year",
    "month to date", "quarter to date", "year to date", "last N complete days", "last N complete weeks",
    "last N complete months", "last N complete quarters", "last N complete years",
)


_PHRASES = ("today", "yesterday", "this week", "last week", "this month", "last month", "this quarter", "last quarter",
            "this year", "last year", "month to date", "quarter to date", "year to date")


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def relative_range(text: str, today: date, *, week_start: int = 0, fiscal_year_start_month: int = 1) -> tuple[date, date]:
    """The inclusive (first day, last day) a phrase names. week_start: 0 = Monday ... 6 = Sunday."""
    phrase = " ".join(str(text).lower().replace("-", " ").split())
    week = today - timedelta(days=(today.weekday() - week_start) % 7)
    match = re.fullmatch(r"(?:last|past) (\d{1,4}) complete (day|week|month|quarter|year)s?", phrase)
    if match:
        return _complete(text, int(match.group(1)), match.group(2), today, week)
    match = re.fullmatch(r"(?:last|past) (\d{1,4}) (day|week|month)s?", phrase)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        if n < 1:
            raise QueryError(f"time range {text!r}: the count must be at least 1")
        if unit == "day":
            return today - timedelta(days=n - 1), today
        if unit == "week":
            return today - timedelta(days=7 * n - 1), today
        return _shift_day(today, -n) + timedelta(days=1), today  # e.g. last 1 month on Mar 15: Feb 16..Mar 15
    if phrase not in _PHRASES:
        from .errors import did_you_mean

        raise QueryError(f"unknown time range {text!r}", hint=did_you_mean(phrase, RELATIVE_RANGES) +
                         "; or give explicit dates (2025-01-01 to 2025-03-31)")
    table = {
        "today": (today, today),
        "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
        "this week": (week, week + timedelta(days=6)),
        "last week": (week - timedelta(days=7), week - timedelta(days=1)),
        "this month": (_month_start(today), _add_months(_month_start(today), 1) - timedelta(days=1)),
        "last month": (_add_months(_month_start(today), -1), _month_start(today) - timedelta(days=1)),
        "this quarter": (_quarter_start(today), _add_months(_quarter_start(today), 3) - timedelta(days=1)),
        "last quarter": (_add_months(_quarter_start(today), -3), _quarter_start(today) - timedelta(days=1)),
        "this year": (date(today.year, 1, 1), date(today.year, 12, 31)),
        "last year": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
        "month to date": (_month_start(today), today),
        "quarter to date": (_quarter_start(today), today),
        "year to date": (date(today.year, 1, 1), today),
    }
    if phrase in table:
        return table[phrase]
    from .errors import did_you_mean

    raise QueryError(f"unknown time range {text!r}", hint=did_you_mean(phrase, RELATIVE_RANGES) +
                     "; or give explicit dates (2025-01-01 to 2025-03-31)")


def _complete(text: str, n: int, unit: str, today: date, week: date) -> tuple[date, date]:
    """Looker's "last N complete weeks": the N whole periods before the one holding today."""
    if n < 1:
        raise QueryError(f"time range {text!r}: the count must be at least 1")
    if unit == "day":
        return today - timedelta(days=n), today - timedelta(days=1)
    if unit == "week":
        return week - timedelta(days=7 * n), week - timedelta(days=1)
    span = {"month": 1, "quarter": 3, "year": 12}[unit]
    current = {"month": _month_start(today), "quarter": _quarter_start(today), "year": date(today.year, 1, 1)}[unit]
    return _add_months(current, -span * n), current - timedelta(days=1)


def _shift_day(day: date, months: int) -> date:
    """The same day of the month `months` away, clamped to that month's length."""
    first = _add_months(day.replace(day=1), months)
    following = _add_months(first, 1)
    return first.replace(day=min(day.day, (following - timedelta(days=1)).day))


def is_relative(text: str) -> bool:
    return bool(text) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", str(text).strip())

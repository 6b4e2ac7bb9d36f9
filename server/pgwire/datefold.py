"""Date and time constants as BI tools write them, folded to literals with PostgreSQL's semantics.

Superset writes `TO_DATE('2025-01-01', 'YYYY-MM-DD')` and `TO_TIMESTAMP('… 00:00:00.000000',
'YYYY-MM-DD HH24:MI:SS.US')`, Metabase `DATE_TRUNC('month', NOW() + INTERVAL '-3 month')`, others
`CURRENT_DATE - 7` or `NOW() - INTERVAL '1 day'`. Each constant subtree (no column in it) is computed
here in Python and replaced by a `CAST('…' AS DATE|TIMESTAMP)` literal, so the compiler's filter
allow-list sees only literals and "now" is the project's today (canon.yml `calendar.now`, as the
compiler's relative time ranges count from it), not the warehouse's clock.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from sqlglot import exp

from .errors import INVALID_PARAMETER_VALUE, PgError
from .types import parse_date, parse_timestamp

_UNITS = {  # interval unit -> (months, days, seconds) per 1
    "year": (12, 0, 0), "years": (12, 0, 0), "y": (12, 0, 0), "yr": (12, 0, 0), "yrs": (12, 0, 0),
    "quarter": (3, 0, 0), "quarters": (3, 0, 0),
    "month": (1, 0, 0), "months": (1, 0, 0), "mon": (1, 0, 0), "mons": (1, 0, 0),
    "week": (0, 7, 0), "weeks": (0, 7, 0), "w": (0, 7, 0),
    "day": (0, 1, 0), "days": (0, 1, 0), "d": (0, 1, 0),
    "hour": (0, 0, 3600), "hours": (0, 0, 3600), "h": (0, 0, 3600), "hr": (0, 0, 3600), "hrs": (0, 0, 3600),
    "minute": (0, 0, 60), "minutes": (0, 0, 60), "min": (0, 0, 60), "mins": (0, 0, 60), "m": (0, 0, 60),
    "second": (0, 0, 1), "seconds": (0, 0, 1), "sec": (0, 0, 1), "secs": (0, 0, 1), "s": (0, 0, 1),
}
_TRUNC = ("microseconds", "milliseconds", "second", "minute", "hour", "day", "week", "month", "quarter", "year",
          "decade", "century", "millennium")


class Interval:
    """PostgreSQL's interval: months, days and seconds kept apart (a month is not 30 days)."""

    def __init__(self, months: int = 0, days: int = 0, seconds: float = 0.0):
        self.months, self.days, self.seconds = months, days, seconds

    def scaled(self, factor: int) -> "Interval":
        return Interval(self.months * factor, self.days * factor, self.seconds * factor)


def resolve_now(setting: str | None) -> datetime:
    """'Now' for a session: canon.yml `calendar.now` (a date means its midnight), else the clock (UTC)."""
    if setting:
        try:
            return datetime.fromisoformat(str(setting)).replace(tzinfo=None)
        except ValueError:
            pass
    return datetime.utcnow().replace(microsecond=0)


def fold_dates(tree: exp.Expression, now: datetime) -> exp.Expression:
    """Replace every constant date/time subtree by a literal. Subtrees over columns are left alone."""
    folder = _Folder(now)

    def swap(node):
        if not isinstance(node, _FOLDABLE):
            return node
        value = folder.value(node)
        return to_literal(value) if isinstance(value, date) else node  # dates only: other constants stay

    return tree.transform(swap)


def to_literal(value: date | datetime) -> exp.Expression:
    if isinstance(value, datetime):
        text = value.isoformat(sep=" ")
        return exp.cast(exp.Literal.string(text), exp.DataType.Type.TIMESTAMP)
    return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)


_FOLDABLE = (exp.StrToDate, exp.StrToTime, exp.CurrentDate, exp.CurrentTimestamp, exp.Add, exp.Sub,
             exp.TimestampTrunc, exp.DateTrunc, exp.Anonymous, exp.Cast, exp.Paren)


class _Folder:
    def __init__(self, now: datetime):
        self.now = now

    def value(self, node: exp.Expression):
        """The constant value of a node (date, datetime, Interval, int, str), or None if not constant."""
        if isinstance(node, exp.Paren):
            return self.value(node.this)
        if isinstance(node, exp.Literal):
            return node.name if node.is_string else _number(node.name)
        if isinstance(node, exp.Neg):
            inner = self.value(node.this)
            return -inner if isinstance(inner, (int, float)) else None
        if isinstance(node, exp.CurrentDate):
            return self.now.date()
        if isinstance(node, exp.CurrentTimestamp):
            return self.now
        if isinstance(node, exp.Anonymous) and node.name.lower() in ("now", "transaction_timestamp",
                                                                     "statement_timestamp", "clock_timestamp") \
                and not node.expressions:
            return self.now
        if isinstance(node, exp.Interval):
            return _interval(node)
        if isinstance(node, (exp.StrToDate, exp.StrToTime)):
            text, fmt = self.value(node.this), self.value(node.args.get("format"))
            if not isinstance(text, str) or not isinstance(fmt, str):
                return None
            try:
                parsed = datetime.strptime(text.strip(), fmt)
            except ValueError:
                raise PgError("22007", f"invalid value {text!r} for the format of {node.sql('postgres')[:80]}",
                              hint="TO_DATE('2025-01-31', 'YYYY-MM-DD') / TO_TIMESTAMP('2025-01-31 00:00:00', "
                                   "'YYYY-MM-DD HH24:MI:SS')") from None
            return parsed.date() if isinstance(node, exp.StrToDate) else parsed
        if isinstance(node, exp.Cast):
            inner = self.value(node.this)
            kind = node.to.this if node.to is not None else None
            if kind == exp.DataType.Type.DATE:
                if isinstance(inner, datetime):
                    return inner.date()
                if isinstance(inner, date):
                    return inner
                if isinstance(inner, str):
                    return _special(inner, self.now, as_date=True)
            if kind in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMPNTZ):
                if isinstance(inner, datetime):
                    return inner
                if isinstance(inner, date):
                    return datetime(inner.year, inner.month, inner.day)
                if isinstance(inner, str):
                    return _special(inner, self.now, as_date=False)
            if kind == exp.DataType.Type.INTERVAL and isinstance(inner, str):
                return _parse_interval(inner)
            return None
        if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
            unit = node.args.get("unit")
            inner = self.value(node.this)
            if unit is None or not isinstance(inner, date):
                return None
            return truncate(inner, unit.name.lower())
        if isinstance(node, (exp.Add, exp.Sub)):
            left, right = self.value(node.this), self.value(node.expression)
            if left is None or right is None:
                return None
            sign = 1 if isinstance(node, exp.Add) else -1
            if isinstance(right, Interval) and isinstance(left, date):
                return shift(left, right.scaled(sign))
            if isinstance(left, Interval) and isinstance(right, date) and sign == 1:
                return shift(right, left)
            if isinstance(left, date) and not isinstance(left, datetime) and isinstance(right, int):
                return left + timedelta(days=sign * right)  # date ± integer: days, still a date
            return None
        return None


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        return float(text)


def _special(text: str, now: datetime, *, as_date: bool):
    """'now', 'today', 'yesterday', 'tomorrow' as PostgreSQL reads them in a date/timestamp literal;
    other text is left to the compiler (None)."""
    word = text.strip().lower()
    today = datetime(now.year, now.month, now.day)
    found = {"now": now, "today": today, "yesterday": today - timedelta(days=1),
             "tomorrow": today + timedelta(days=1)}.get(word)
    if found is None:
        try:  # every ISO form date_in/timestamp_in read ('2025-01-01 +00', '…T00:00:00.000Z'), normalized
            return parse_date(text) if as_date else parse_timestamp(text, with_zone=True)
        except ValueError:
            return None
    return found.date() if as_date else found


def _interval(node: exp.Interval) -> Interval | None:
    value = node.this
    unit = node.args.get("unit")
    text = value.name if isinstance(value, exp.Literal) else None
    if text is None:
        return None
    if unit is not None:
        text = f"{text} {unit.name}"
    return _parse_interval(text)


def _parse_interval(text: str) -> Interval:
    """'-3 month', '1 day 2 hours', '2 weeks', '01:30:00' -> Interval."""
    words = text.replace(",", " ").lower().split()
    months = days = 0
    seconds = 0.0
    i = 0
    try:
        while i < len(words):
            word = words[i]
            if ":" in word:  # [-]HH:MM[:SS]
                sign = -1 if word.startswith("-") else 1
                parts = [float(p) for p in word.lstrip("+-").split(":")]
                seconds += sign * (parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0))
                i += 1
                continue
            amount = float(word)
            unit = words[i + 1] if i + 1 < len(words) else "second"
            if unit not in _UNITS:
                raise ValueError(unit)
            per_month, per_day, per_second = _UNITS[unit]
            if per_month and amount != int(amount):
                raise ValueError(word)
            months += int(amount) * per_month
            days_float = amount * per_day
            days += int(days_float)
            seconds += (days_float - int(days_float)) * 86400 + amount * per_second
            i += 2
    except (ValueError, IndexError):
        raise PgError("22007", f'invalid input syntax for type interval: "{text}"',
                      hint="write e.g. INTERVAL '-3 month' or INTERVAL '7 days'") from None
    return Interval(months, days, seconds)


def _add_months(day: date, months: int) -> date:
    """PostgreSQL's month arithmetic: the day clamps to the target month's last day (Jan 31 + 1 month =
    Feb 28/29)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return day.replace(year=year, month=month + 1, day=min(day.day, last))


def shift(value: date, interval: Interval) -> datetime:
    """date/timestamp + interval -> timestamp (PostgreSQL: date + interval is a timestamp)."""
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    moment = datetime.combine(_add_months(moment.date(), interval.months), moment.time())
    return moment + timedelta(days=interval.days, seconds=interval.seconds)


def truncate(value: date, unit: str) -> date:
    """DATE_TRUNC(unit, value) with PostgreSQL's units (weeks start on Monday, ISO)."""
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    if unit not in _TRUNC:
        raise PgError(INVALID_PARAMETER_VALUE, f'unit "{unit}" not recognized for DATE_TRUNC',
                      hint="units: " + ", ".join(_TRUNC))
    if unit in ("microseconds", "milliseconds"):
        result = moment
    elif unit == "second":
        result = moment.replace(microsecond=0)
    elif unit == "minute":
        result = moment.replace(second=0, microsecond=0)
    elif unit == "hour":
        result = moment.replace(minute=0, second=0, microsecond=0)
    else:
        day = moment.date()
        if unit == "week":
            day -= timedelta(days=day.weekday())
        elif unit == "month":
            day = day.replace(day=1)
        elif unit == "quarter":
            day = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        elif unit == "year":
            day = date(day.year, 1, 1)
        elif unit == "decade":
            day = date(day.year - day.year % 10, 1, 1)
        elif unit == "century":
            day = date((day.year - 1) // 100 * 100 + 1, 1, 1)
        elif unit == "millennium":
            day = date((day.year - 1) // 1000 * 1000 + 1, 1, 1)
        result = datetime(day.year, day.month, day.day)
    return result  # DATE_TRUNC returns a timestamp, also for a date argument

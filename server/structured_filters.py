"""Structured filters ({member, operator, values}, Cube's operator names, nested and/or) and Cube date
ranges ("last 7 days", [from, to]) as sqlglot condition trees: every value becomes a literal, never SQL
text. Shared by POST /v1/query `filters` and the Cube REST API."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from sqlglot import exp

from canon.compiler.errors import FilterError, Location, did_you_mean
from canon.compiler.refs import SIDES, parse_ref

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- structured filters (shared with POST /v1/query `filters`) -----------------------------------------


def _fail(path: str, message: str, hint: str | None = None):
    raise FilterError(message, location=Location(path=path), hint=hint)


def column_for(ref: str, path: str) -> exp.Column:
    parts = ref.split(".") if isinstance(ref, str) else []
    if not parts or len(parts) > 4 or not all(IDENT.match(p) for p in parts):
        _fail(path, f"{ref!r} is not a dimension reference", "write <model>.<dimension>[.<grain>] or metric_time")
    ids = [exp.Identifier(this=p, quoted=True) for p in parts]
    names = ("this", "table", "db", "catalog")
    return exp.Column(**{names[i]: ident for i, ident in enumerate(reversed(ids))})


def _dimension_type(catalog, ref: str) -> str:
    head = ref.split(".")[0]
    item_model = None
    if head in SIDES:
        item_model = next((a.item_model for a in catalog.affinities.values()), None)
    dimref = parse_ref(catalog, ref, item_model=item_model)  # unknown names: UnknownNameError with did-you-mean
    return dimref.type


def _literal(value, kind: str, path: str) -> exp.Expression:
    if value is None:
        _fail(path, "null is not a value to compare with", "use the operators set / notSet for missing values")
    if kind == "number":
        if isinstance(value, bool):
            _fail(path, f"{value!r} is not a number")
        if isinstance(value, (int, float)):
            return exp.Literal.number(repr(value) if isinstance(value, float) else value)
        try:
            number = float(str(value))
        except ValueError:
            _fail(path, f"{value!r} is not a number")
        if number != number or number in (float("inf"), float("-inf")):
            _fail(path, f"{value!r} is not a finite number")
        text = str(value).strip()
        return exp.Literal.number(text if re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text) else repr(number))
    if kind == "boolean":
        if isinstance(value, bool):
            return exp.Boolean(this=value)
        if str(value).lower() in ("true", "false", "1", "0"):
            return exp.Boolean(this=str(value).lower() in ("true", "1"))
        _fail(path, f"{value!r} is not true or false")
    if kind == "time":
        return _timestamp(parse_instant(value, path))
    return exp.Literal.string(str(value))


def _timestamp(moment: datetime) -> exp.Expression:
    """A typed literal: a DATE at midnight, else a TIMESTAMP (both compare with either column type)."""
    if moment.time() == datetime.min.time():
        return exp.Cast(this=exp.Literal.string(moment.strftime("%Y-%m-%d")), to=exp.DataType(this=exp.DataType.Type.DATE))
    text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return exp.Cast(this=exp.Literal.string(text), to=exp.DataType(this=exp.DataType.Type.TIMESTAMP))


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


def any_of(conditions: list[exp.Expression]) -> exp.Expression:
    result = conditions[0]
    for c in conditions[1:]:
        result = exp.Or(this=result, expression=c)
    return exp.Paren(this=result) if len(conditions) > 1 else result


def all_of(conditions: list[exp.Expression]) -> exp.Expression:
    result = conditions[0]
    for c in conditions[1:]:
        result = exp.And(this=result, expression=c)
    return exp.Paren(this=result) if len(conditions) > 1 else result


def _like(column, value: str, pattern: str) -> exp.Expression:
    return exp.ILike(this=column.copy(), expression=exp.Literal.string(pattern.replace("{}", value)))


def filter_condition(catalog, ref: str, op: str, values: list, *, path: str = "filters",
                     today: date | None = None) -> exp.Expression:
    """One Cube-style filter as a sqlglot condition over a Canon dimension reference."""
    column = column_for(ref, f"{path}.member")
    kind = _dimension_type(catalog, ref)
    values = list(values or [])
    vpath = f"{path}.values"

    def need(n_min: int):
        if len(values) < n_min:
            _fail(vpath, f"operator {op} needs {'a value' if n_min == 1 else f'{n_min} values'}")

    if op in ("set", "notSet"):
        node = exp.Is(this=column, expression=exp.Null())
        return exp.Not(this=node) if op == "set" else node
    if op in ("equals", "notEquals"):
        need(1)
        literals = [_literal(v, kind, vpath) for v in values]
        node = (exp.EQ(this=column, expression=literals[0]) if len(literals) == 1
                else exp.In(this=column, expressions=literals))
        if op == "equals":
            return node
        return exp.Paren(this=exp.Or(this=exp.Not(this=node), expression=exp.Is(this=column.copy(), expression=exp.Null())))
    patterns = {"contains": "%{}%", "notContains": "%{}%", "startsWith": "{}%", "notStartsWith": "{}%",
                "endsWith": "%{}", "notEndsWith": "%{}"}
    if op in patterns:
        need(1)
        if kind != "string" and kind != "categorical":
            _fail(f"{path}.operator", f"operator {op} applies to text dimensions, and {ref} is {kind}",
                  "use equals, gt, lt, inDateRange ... instead")
        likes = [_like(column, str(v), patterns[op]) for v in values]
        if op.startswith("not"):
            negated = all_of([exp.Not(this=like) for like in likes])
            return exp.Paren(this=exp.Or(this=negated, expression=exp.Is(this=column.copy(), expression=exp.Null())))
        return any_of(likes)
    comparisons = {"gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE,
                   "beforeDate": exp.LT, "beforeOrOnDate": exp.LT, "afterDate": exp.GTE, "afterOrOnDate": exp.GTE}
    if op in comparisons:
        need(1)
        if op.endswith("Date"):
            if kind != "time":
                _fail(f"{path}.operator", f"operator {op} applies to time dimensions, and {ref} is {kind}")
            bound = parse_instant(values[0], vpath, after=op in ("beforeOrOnDate", "afterDate"))
            return comparisons[op](this=column, expression=_timestamp(bound))
        return comparisons[op](this=column, expression=_literal(values[0], kind, vpath))
    if op in ("inDateRange", "notInDateRange"):
        if kind != "time":
            _fail(f"{path}.operator", f"operator {op} applies to time dimensions, and {ref} is {kind}")
        inside = range_condition(column, *date_range(values if len(values) != 1 else values[0], vpath, today=today))
        return exp.Paren(this=inside) if op == "inDateRange" else exp.Not(this=exp.Paren(this=inside))
    _fail(f"{path}.operator", f"unknown filter operator {op!r}",
          did_you_mean(str(op), list(patterns) + list(comparisons) + ["equals", "notEquals", "set", "notSet",
                                                                       "inDateRange", "notInDateRange"]))


# --- date ranges ---------------------------------------------------------------------------------------------

UNITS = ("day", "week", "month", "quarter", "year")


def range_condition(column: exp.Column, start: datetime, end: datetime) -> exp.Expression:
    """start <= column < end."""
    return exp.And(this=exp.GTE(this=column, expression=_timestamp(start)),
                   expression=exp.LT(this=column.copy(), expression=_timestamp(end)))


def _start_of(unit: str, day: date) -> date:
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday, as in Cube
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def _add(unit: str, day: date, n: int) -> date:
    if unit == "day":
        return day + timedelta(days=n)
    if unit == "week":
        return day + timedelta(weeks=n)
    months = {"month": 1, "quarter": 3, "year": 12}[unit] * n
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)  # callers pass period starts


def _span(first: date, last_exclusive: date) -> tuple[datetime, datetime]:
    return datetime(first.year, first.month, first.day), datetime(last_exclusive.year, last_exclusive.month, last_exclusive.day)


def date_range(value, path: str, *, today: date | None = None) -> tuple[datetime, datetime]:
    """Cube's dateRange — [from, to] with `to` inclusive, or a phrase such as 'last 7 days' — as
    [start, end) with an exclusive end."""
    today = today or datetime.now(timezone.utc).date()
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            _fail(path, "a date range is [from, to] or a phrase such as 'last 7 days'")
        start, end = parse_instant(value[0], path), parse_instant(value[1], path, after=True)
        if end <= start:
            _fail(path, f"the date range ends ({value[1]}) before it starts ({value[0]})")
        return start, end
    if not isinstance(value, str):
        _fail(path, f"{value!r} is not a date range", "write [from, to] or a phrase such as 'last 7 days'")
    text = " ".join(value.lower().split())
    if text in ("today", "yesterday", "tomorrow"):
        day = today + timedelta(days={"today": 0, "yesterday": -1, "tomorrow": 1}[text])
        return _span(day, day + timedelta(days=1))
    match = re.fullmatch(r"(this|last|next) (day|week|month|quarter|year)", text)
    if match:
        unit = match[2]
        start = _add(unit, _start_of(unit, today), {"this": 0, "last": -1, "next": 1}[match[1]])
        return _span(start, _add(unit, start, 1))
    match = re.fullmatch(r"(last|next) (\d{1,5}) (day|week|month|quarter|year)s?", text)
    if match:
        n, unit = int(match[2]), match[3]
        current = _start_of(unit, today)
        if match[1] == "last":  # the n whole periods before the current one, as Cube does
            return _span(_add(unit, current, -n), current)
        return _span(_add(unit, current, 1), _add(unit, current, n + 1))
    match = re.fullmatch(r"from (.+) to (.+)", text)
    if match:
        return date_range([match[1], match[2]], path, today=today)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date_range([text, text], path, today=today)
    _fail(path, f"{value!r} is not a date range I understand",
          "write [from, to], today, yesterday, this|last|next day|week|month|quarter|year, "
          "last N days|weeks|months|quarters|years, or 'from 2025-01-01 to 2025-01-31'")


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]

"""Structured filters ({member, operator, values}, Cube's operator names, nested and/or) as sqlglot
condition trees: every value becomes a literal, never SQL text. Shared by POST /v1/query `filters`
and the Cube REST API (which also filters on measures: `metric_condition`, applied as HAVING).

Cube's semantics where Cube defines them:
- `equals`/`in` with several values is IN; a null among the values also matches missing values;
  `notEquals`/`notIn` also keeps missing values unless null is among the values;
- `onTheDate` is the whole day (or the range a relative phrase names);
- `beforeDate`/`beforeOrOnDate`/`afterDate`/`afterOrOnDate` compare with the instant given — a bare
  date is the start of that day (so `beforeOrOnDate 2025-01-01` keeps nothing of the 1st after
  midnight, as in Cube); a relative phrase (`last year`) gives its start to beforeDate/afterOrOnDate
  and its last millisecond to beforeOrOnDate/afterDate.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlglot import exp

from canon.compiler.errors import FilterError, Location, did_you_mean
from canon.compiler.refs import SIDES, parse_ref

from .cube_dates import date_range, parse_instant  # date_range: re-exported for callers of the filters

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TEXT_PATTERNS = {"contains": "%{}%", "notContains": "%{}%", "startsWith": "{}%", "notStartsWith": "{}%",
                 "endsWith": "%{}", "notEndsWith": "%{}"}
COMPARISONS = {"gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}
DATE_COMPARISONS = {"beforeDate": exp.LT, "beforeOrOnDate": exp.LTE, "afterDate": exp.GT, "afterOrOnDate": exp.GTE}
OPERATORS = (["equals", "notEquals", "in", "notIn", "set", "notSet", "inDateRange", "notInDateRange", "onTheDate"]
             + list(TEXT_PATTERNS) + list(COMPARISONS) + list(DATE_COMPARISONS))
MEASURE_OPERATORS = ("equals", "notEquals", "in", "notIn", "gt", "gte", "lt", "lte", "set", "notSet", "measureFilter")


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
    # unknown names: UnknownNameError with did-you-mean; cohort.periods_since is typed here, checked by the compiler
    dimref = parse_ref(catalog, ref, item_model=item_model, cohort=True)
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


def _is_null(column) -> exp.Expression:
    return exp.Is(this=column.copy(), expression=exp.Null())


def _like(column, value: str, pattern: str) -> exp.Expression:
    return exp.ILike(this=column.copy(), expression=exp.Literal.string(pattern.replace("{}", value)))


def _need(values: list, op: str, vpath: str, n_min: int = 1):
    if len(values) < n_min:
        _fail(vpath, f"operator {op} needs {'a value' if n_min == 1 else f'{n_min} values'}")


def _membership(column, op: str, values: list, kind: str, vpath: str) -> exp.Expression:
    """equals / in / notEquals / notIn, with Cube's handling of null among the values."""
    _need(values, op, vpath)
    with_null = any(v is None for v in values)
    literals = [_literal(v, kind, f"{vpath}[{i}]") for i, v in enumerate(values) if v is not None]
    positive = op in ("equals", "in")
    if not literals:
        return _is_null(column) if positive else exp.Not(this=_is_null(column))
    node = (exp.EQ(this=column.copy(), expression=literals[0]) if len(literals) == 1
            else exp.In(this=column.copy(), expressions=literals))
    if positive:
        return exp.Paren(this=exp.Or(this=node, expression=_is_null(column))) if with_null else node
    if with_null:  # not any of the values, and not missing
        return exp.Paren(this=exp.And(this=exp.Not(this=node), expression=exp.Not(this=_is_null(column))))
    return exp.Paren(this=exp.Or(this=exp.Not(this=node), expression=_is_null(column)))


def _date_bound(value, op: str, vpath: str, today: date | None, now: datetime | None) -> datetime:
    """The instant a date comparison compares with: the value itself (a bare date is its midnight) or,
    for a relative phrase, its first instant or its last millisecond."""
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ].*)?", text):
        return parse_instant(text, vpath)
    start, end = date_range(text, vpath, today=today, now=now)
    return start if op in ("beforeDate", "afterOrOnDate") else end - timedelta(milliseconds=1)


def filter_condition(catalog, ref: str, op: str, values: list, *, path: str = "filters",
                     today: date | None = None, now: datetime | None = None) -> exp.Expression:
    """One Cube-style filter as a sqlglot condition over a Canon dimension reference."""
    column = column_for(ref, f"{path}.member")
    kind = _dimension_type(catalog, ref)
    values = list(values or [])
    vpath = f"{path}.values"

    if op in ("set", "notSet"):
        node = _is_null(column)
        return exp.Not(this=node) if op == "set" else node
    if op in ("equals", "notEquals", "in", "notIn"):
        return _membership(column, op, values, kind, vpath)
    if op in TEXT_PATTERNS:
        _need(values, op, vpath)
        if kind != "string" and kind != "categorical":
            _fail(f"{path}.operator", f"operator {op} applies to text dimensions, and {ref} is {kind}",
                  "use equals, gt, lt, inDateRange ... instead")
        likes = [_like(column, str(v), TEXT_PATTERNS[op]) for v in values]
        if op.startswith("not"):
            negated = all_of([exp.Not(this=like) for like in likes])
            return exp.Paren(this=exp.Or(this=negated, expression=_is_null(column)))
        return any_of(likes)
    if op in COMPARISONS:
        _need(values, op, vpath)
        return COMPARISONS[op](this=column, expression=_literal(values[0], kind, vpath))
    if op in DATE_COMPARISONS or op in ("inDateRange", "notInDateRange", "onTheDate"):
        if kind != "time":
            _fail(f"{path}.operator", f"operator {op} applies to time dimensions, and {ref} is {kind}")
        _need(values, op, vpath)
        if op in DATE_COMPARISONS:
            bound = _date_bound(values[0], op, vpath, today, now)
            return DATE_COMPARISONS[op](this=column, expression=_timestamp(bound))
        if op == "onTheDate":
            value = values[0]
            span = date_range([value, value] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)) else value,
                              vpath, today=today, now=now)
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}T.*", str(value)):  # a timestamp: its whole day
                day = span[0].replace(hour=0, minute=0, second=0, microsecond=0)
                span = (day, day + timedelta(days=1))
            return exp.Paren(this=range_condition(column, *span))
        inside = range_condition(column, *date_range(values if len(values) != 1 else values[0], vpath,
                                                     today=today, now=now))
        return exp.Paren(this=inside) if op == "inDateRange" else exp.Not(this=exp.Paren(this=inside))
    _fail(f"{path}.operator", f"unknown filter operator {op!r}", did_you_mean(str(op), OPERATORS))


def metric_condition(metric: str, op: str, values: list, *, path: str = "filters") -> exp.Expression | None:
    """A Cube filter on a measure, over the metric's output column (the compiler applies it as HAVING,
    after aggregation). `measureFilter` (the JS client's drillDown) keeps the rows the metric has a
    value for: Canon's metric filters are already part of the metric."""
    if op not in MEASURE_OPERATORS:
        _fail(f"{path}.operator", f"operator {op!r} does not apply to measures", did_you_mean(str(op), MEASURE_OPERATORS))
    column = column_for(metric, f"{path}.member")
    values = list(values or [])
    vpath = f"{path}.values"
    if op in ("set", "measureFilter"):
        return exp.Not(this=_is_null(column))
    if op == "notSet":
        return _is_null(column)
    if op in ("equals", "notEquals", "in", "notIn"):
        return _membership(column, op, values, "number", vpath)
    _need(values, op, vpath)
    return COMPARISONS[op](this=column, expression=_literal(values[0], "number", vpath))


def range_condition(column: exp.Column, start: datetime, end: datetime) -> exp.Expression:
    """start <= column < end."""
    return exp.And(this=exp.GTE(this=column, expression=_timestamp(start)),
                   expression=exp.LT(this=column.copy(), expression=_timestamp(end)))

"""Per-dialect adjustments sqlglot cannot make on its own, applied to the finished tree.

- BigQuery truncates weeks to Sunday unless told `WEEK(MONDAY)`.
- ClickHouse fills unmatched outer-join columns with defaults unless `join_use_nulls = 1`.
- Exact medians and percentiles: ClickHouse's `median` is approximate and `quantileExact` picks an
  element instead of interpolating, so `quantileExactInclusive(p)(toFloat64(x))` (PERCENTILE_CONT's
  linear interpolation; it takes no DECIMAL); BigQuery (analytic only) and Trino (approximate only)
  have no exact aggregate: refuse rather than return a different number.
- Spark's `DATE_ADD(ts, n)` and `ADD_MONTHS(ts, n)` return a DATE, dropping the time of day of a
  timestamp (a 14-day conversion window would end at midnight), so date arithmetic becomes
  `x + INTERVAL 'n' DAY`, which keeps a timestamp a timestamp and a date a date.
- ClickHouse's `AT TIME ZONE` (and `toTimeZone`) only relabels a DateTime: comparisons and arithmetic
  still see the UTC instant, so a range on local time would be applied in UTC. Converting a stored UTC
  time to local wall-clock time shifts the value itself: `ts + toIntervalSecond(timeZoneOffset(
  toTimeZone(ts, zone)))`, the zone's offset at that instant (daylight saving included).
- ClickHouse names an unaliased qualified column `t.c`, not `c`, in the branches of a UNION (which
  takes its first branch's names), so such projections there get an explicit alias `t.c AS c`.
- The generated time spine (render/spine.py, 73,414 days) cannot be written for ClickHouse (no
  GENERATE_DATE_ARRAY) nor Trino (SEQUENCE stops at 10,000 entries): refuse, and name the setting.
- Spark and ClickHouse divide DECIMALs into DECIMALs (Spark keeps 6 decimal places, ClickHouse the
  dividend's scale), where DuckDB and PostgreSQL keep full precision: a quotient with no DOUBLE
  operand gets its dividend cast to DOUBLE.
"""

from __future__ import annotations

from typing import Callable

from sqlglot import exp

from ..errors import UnsupportedError


def adapt(tree: exp.Expression, dialect: str) -> exp.Expression:
    """Apply the dialect's rewrites, in order, to a finished tree (changed in place)."""
    for transform in TRANSFORMS.get(dialect, ()):
        tree = transform(tree)
    return tree


def _join_use_nulls(tree: exp.Expression) -> exp.Expression:
    """ClickHouse: outer joins must yield NULL, not the type's default (0, ''), for unmatched groups."""
    tree.set("settings", [exp.EQ(this=exp.var("join_use_nulls"), expression=exp.Literal.number(1))])
    return tree


def _monday_weeks(tree: exp.Expression) -> exp.Expression:
    for node in tree.find_all(exp.TimestampTrunc):
        unit = node.args.get("unit")
        if isinstance(unit, exp.Var) and unit.name.upper() == "WEEK":
            node.set("unit", exp.WeekStart(this=exp.var("MONDAY")))
    return tree


def _exact_percentiles(tree: exp.Expression):
    """Median and PERCENTILE_CONT nodes, the aggregates no engine may approximate."""
    return [node for node in tree.find_all(exp.Median, exp.WithinGroup)
            if not isinstance(node, exp.WithinGroup) or isinstance(node.this, exp.PercentileCont)]


def _refuse_exact_percentiles(dialect: str):
    def refuse(tree: exp.Expression) -> exp.Expression:
        if _exact_percentiles(tree):
            raise UnsupportedError(
                f"{dialect} has no exact median or percentile aggregate",
                hint="query this metric on another warehouse, or define an approximate measure explicitly")
        return tree
    return refuse


def _refuse_generated_spine(dialect: str):
    def refuse(tree: exp.Expression) -> exp.Expression:
        if tree.find(exp.GenerateDateArray):
            raise UnsupportedError(f"{dialect} cannot generate the time spine this query needs",
                                   hint="add `time_spine: {table: TABLE, column: COLUMN}` (a table with one row per "
                                        "day) to canon.yml")
        return tree
    return refuse


def _quantile_exact_inclusive(tree: exp.Expression) -> exp.Expression:
    for node in _exact_percentiles(tree):
        if isinstance(node, exp.Median):
            fraction, value = exp.Literal.number(0.5), node.this
        else:
            fraction, value = node.this.this, node.expression.expressions[0].this
        node.replace(exp.ParameterizedAgg(this="quantileExactInclusive", expressions=[fraction.copy()],
                                          params=[value.copy() if _is_double(value)
                                                  else exp.cast(value.copy(), exp.DataType.Type.DOUBLE)]))
    return tree


def _spark_date_arithmetic(tree: exp.Expression) -> exp.Expression:
    for node in list(tree.find_all(exp.DateAdd, exp.DateSub)):
        shifted = _interval_arithmetic(node)
        if shifted is not None:
            node.replace(shifted)
    return tree


def _alias_union_columns(tree: exp.Expression) -> exp.Expression:
    for select in tree.find_all(exp.Select):
        if not isinstance(select.parent, exp.SetOperation):
            continue  # elsewhere ClickHouse resolves `c` from `t.c` by itself
        for i, projection in enumerate(select.expressions):
            if isinstance(projection, exp.Column) and projection.table:
                select.expressions[i] = exp.alias_(projection, projection.this.copy(), copy=False)
    return tree


def _clickhouse_local_times(tree: exp.Expression) -> exp.Expression:
    for node in list(tree.find_all(exp.ConvertTimezone)):
        source = node.args.get("source_tz")
        if source is None or (isinstance(source, exp.Literal) and source.name.upper() in ("UTC", "ETC/UTC")):
            node.replace(_clickhouse_from_utc(node.args["timestamp"], node.args["target_tz"]))
    return tree


def _double_quotients(tree: exp.Expression) -> exp.Expression:
    for node in list(tree.find_all(exp.Div)):
        if node.args.get("typed") or _is_double(node.this) or _is_double(node.expression):
            continue  # integer division asked for, or already a DOUBLE quotient
        node.set("this", exp.cast(node.this, exp.DataType.Type.DOUBLE))
    return tree


# PostgreSQL has no DAYOFWEEK_ISO / DAY_OF_MONTH / WEEK_OF_YEAR / QUARTER functions (sqlglot writes
# them as such): EXTRACT's ISO fields instead, as integers (EXTRACT returns numeric there)
_POSTGRES_PARTS = {exp.DayOfWeekIso: "ISODOW", exp.DayOfMonth: "DAY", exp.DayOfYear: "DOY", exp.WeekOfYear: "WEEK",
                   exp.Quarter: "QUARTER", exp.Month: "MONTH", exp.Hour: "HOUR"}


def _postgres_date_parts(tree: exp.Expression) -> exp.Expression:
    for node in list(tree.find_all(*_POSTGRES_PARTS)):
        if type(node) in _POSTGRES_PARTS:  # not a subclass sqlglot writes its own way
            field = exp.var(_POSTGRES_PARTS[type(node)])
            node.replace(exp.cast(exp.Extract(this=field, expression=node.this.copy()), exp.DataType.Type.INT))
    return tree


def _spark_iso_weekday(tree: exp.Expression) -> exp.Expression:
    """sqlglot writes Spark's ISO weekday as (DAYOFWEEK(t) % 7) + 1, but DAYOFWEEK counts from Sunday = 1:
    WEEKDAY (0 = Monday) + 1 instead."""
    for node in list(tree.find_all(exp.DayOfWeekIso)):
        node.replace(exp.paren(exp.Add(this=exp.Anonymous(this="WEEKDAY", expressions=[node.this.copy()]),
                                       expression=exp.Literal.number(1)), copy=False))
    return tree


# dialect -> its rewrites, applied in this order (dialects not listed need none)
TRANSFORMS: dict[str, tuple[Callable[[exp.Expression], exp.Expression], ...]] = {
    "bigquery": (_monday_weeks, _refuse_exact_percentiles("bigquery")),
    "trino": (_refuse_exact_percentiles("trino"), _refuse_generated_spine("trino")),
    "spark": (_spark_date_arithmetic, _double_quotients, _spark_iso_weekday),
    "postgres": (_postgres_date_parts,),
    "clickhouse": (_join_use_nulls, _quantile_exact_inclusive, _alias_union_columns, _clickhouse_local_times,
                   _double_quotients, _refuse_generated_spine("clickhouse")),
}


# units Spark's interval literals take as they are, and the ones spelled as a multiple of another
_INTERVAL_UNITS = {"YEAR": ("YEAR", 1), "QUARTER": ("MONTH", 3), "MONTH": ("MONTH", 1), "WEEK": ("DAY", 7),
                   "DAY": ("DAY", 1), "HOUR": ("HOUR", 1), "MINUTE": ("MINUTE", 1), "SECOND": ("SECOND", 1)}


def _interval_arithmetic(node: exp.DateAdd | exp.DateSub) -> exp.Expression | None:
    """`x + INTERVAL 'n' UNIT` (or `-`) for a DATE_ADD / DATE_SUB node; None when the unit is unknown."""
    unit = node.args.get("unit")
    unit_name = unit.name.upper() if isinstance(unit, (exp.Var, exp.Identifier, exp.Literal)) else "DAY"
    if unit_name not in _INTERVAL_UNITS:
        return None
    spark_unit, factor = _INTERVAL_UNITS[unit_name]
    amount = node.expression
    if isinstance(amount, exp.Literal) and not amount.is_string and amount.is_int:
        interval = exp.Interval(this=exp.Literal.string(str(int(amount.name) * factor)), unit=exp.var(spark_unit))
    else:  # a computed amount: n times a one-unit interval
        interval = exp.Mul(this=exp.paren(amount.copy(), copy=False),
                           expression=exp.Interval(this=exp.Literal.string(str(factor)), unit=exp.var(spark_unit)))
    operator = exp.Add if isinstance(node, exp.DateAdd) else exp.Sub
    return operator(this=node.this.copy(), expression=interval)


def _clickhouse_from_utc(timestamp: exp.Expression, zone: exp.Expression) -> exp.Expression:
    """The wall-clock time in `zone` of a UTC `timestamp`, as a value (not a relabelled instant)."""
    local = exp.Anonymous(this="toTimeZone", expressions=[timestamp.copy(), zone.copy()])
    offset = exp.Anonymous(this="timeZoneOffset", expressions=[local])
    return exp.paren(exp.Add(this=timestamp.copy(), expression=exp.Anonymous(this="toIntervalSecond", expressions=[offset])),
                     copy=False)


def _is_double(node: exp.Expression) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, exp.Cast) and node.to.this in (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT)

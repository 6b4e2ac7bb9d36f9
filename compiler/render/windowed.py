"""A cumulative node as one window function over its days, where that gives the range join's numbers.

The range join (render/cumulative.py) pairs each period with every daily row of its window. When the
daily values re-aggregate (sum, count, min, max of plain measures: no `per`, no semi-additive) and the
node has no dimension besides the time (one row per period), the same numbers come from one sorted
pass: stack the daily rows and, per period, one row at the period's last day (`_canon_end`), then
aggregate over a frame that ends at that day:

    window of N days : RANGE BETWEEN N-1 PRECEDING AND CURRENT ROW over the day's number since
                       1970-01-01 (an integer: every engine takes a numeric RANGE offset, BigQuery
                       and ClickHouse no interval one), i.e. the days in (end - N days, end]
    to date          : PARTITION BY the day's to-date period, from its first row to the current one
    all time         : every row up to the current one

A RANGE frame counts days, not rows, so a spine that skips days or days without data change
nothing; daily rows on days the spine lacks still count, as in the join. A period whose frame
holds no daily row is dropped (the join is INNER), and a sum over days whose values are all NULL
stays NULL. Windows in months, quarters or years (calendar arithmetic, clamped month ends) and
every other case keep the range join; so do other dimensions, where the window form would need
every period crossed with every group (a cost the compiler cannot bound without the data).
"""

from __future__ import annotations

from sqlglot import exp

from ..calendar import truncate
from ..plan import AggregateNode
from .build import alias, col, select, subquery, table

REAGGREGATE = {"sum": exp.Sum, "count": exp.Sum, "min": exp.Min, "max": exp.Max}
DAY, END, PERIOD, ROW, ROWS = "_canon_day", "_canon_end", "_canon_period", "_canon_row", "_canon_rows"
EPOCH = "1970-01-01"


def windowable(node: AggregateNode) -> bool:
    spec = node.cumulative
    plain = all(i.measure.agg in REAGGREGATE and i.measure.per is None and i.measure.non_additive is None
                for i in node.measures)
    return not node.dims and plain and (spec.window is None or spec.window.as_days() is not None)


def render_windowed(node: AggregateNode, resolved, daily_name: str, buckets_name: str) -> exp.Select:
    """The node's rows from its daily CTE (`_canon_day`, one column per measure) and its periods CTE
    (the time alias, `_canon_end`)."""
    time_alias, _ = node.time
    spec = node.cumulative
    values = [i.alias for i in node.measures]
    data = select([col(DAY), alias(exp.Null(), PERIOD), alias(exp.Literal.number(1), ROW)] + [col(v) for v in values],
                  table(daily_name), where=[exp.Not(this=exp.Is(this=col(DAY), expression=exp.Null()))])
    ends = select([alias(col(END), DAY), alias(col(time_alias), PERIOD), alias(exp.Null(), ROW)]
                  + [alias(exp.Null(), v) for v in values], table(buckets_name))
    rows = exp.union(data, ends, distinct=False, copy=False)

    day = col(DAY)
    # a number, also for the unbounded frames: BigQuery takes a RANGE frame over numbers only
    order = exp.DateDiff(this=day, expression=exp.cast(exp.Literal.string(EPOCH), exp.DataType.Type.DATE),
                         unit=exp.var("DAY"))
    partition: list[exp.Expression] = []
    if spec.window is not None:
        frame = exp.WindowSpec(kind="RANGE", start=exp.Literal.number(spec.window.as_days() - 1),
                               start_side="PRECEDING", end="CURRENT ROW")
    else:
        frame = exp.WindowSpec(kind="RANGE", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
        if spec.grain_to_date is not None:  # day >= start of end's period and day <= end: the same period
            partition = [truncate(day.copy(), spec.grain_to_date, resolved.time)]

    def over(agg: exp.Expression) -> exp.Window:
        # no key is NULL (days without a day are left out above); NULLS FIRST is BigQuery's own order,
        # which it cannot be told in a RANGE frame
        return exp.Window(this=agg, partition_by=[p.copy() for p in partition] or None,
                          order=exp.Order(expressions=[exp.Ordered(this=order.copy(), nulls_first=True)]),
                          spec=frame.copy())

    aggregates = {i.alias: REAGGREGATE[i.measure.agg] for i in node.measures}
    framed = select([col(PERIOD), alias(over(exp.Count(this=col(ROW))), ROWS)]
                    + [alias(over(aggregates[v](this=col(v))), v) for v in values],
                    subquery(rows, "_canon_days"))
    return select([alias(col(PERIOD), time_alias)] + [col(v) for v in values], subquery(framed, "_canon_framed"),
                  where=[exp.Not(this=exp.Is(this=col(PERIOD), expression=exp.Null())),
                         exp.GT(this=col(ROWS), expression=exp.Literal.number(0))])

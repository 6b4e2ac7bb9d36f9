"""Cumulative nodes -> CTEs: each period's value over a trailing window or from the period start.

    daily   : the measure per day (and dimension) — or the raw rows when the aggregation cannot be
              re-aggregated (count_distinct, avg, median ...)
    buckets : the requested periods from the time spine, each with its last day in scope
    result  : per bucket, the rows whose day lies in (last day - window, last day],
              [start of the to-date period, last day], or (all time) up to the last day, aggregated again:
              a window function over the days where that is exact (render/windowed.py), else a range join
"""

from __future__ import annotations

from sqlglot import exp

from ..calendar import add, period_start, truncate
from ..catalog import Catalog
from ..plan import AggregateNode, timestamp
from .aggregate import agg_expr, aggregate
from .joins import joins_for
from .build import alias, col, join, select, table
from .spine import spine_source
from .windowed import REAGGREGATE, render_windowed, windowable

DAY, END = "_canon_day", "_canon_end"


def render_cumulative(catalog: Catalog, node: AggregateNode, resolved) -> list[tuple[str, exp.Expression]]:
    time_alias, grain = node.time
    spec = node.cumulative
    daily_name, buckets_name = f"{node.name}_daily", f"{node.name}_periods"
    additive = all(i.measure.agg in REAGGREGATE for i in node.measures)
    dims = [alias(e.copy(), a) for a, e in node.dims]
    if additive:
        daily = select([alias(node.day.copy(), DAY)] + dims + [alias(aggregate(i.measure), i.alias) for i in node.measures],
                       node.model.source.copy(), joins=joins_for(catalog, node.joins, node.conditions),
                       where=[c.copy() for c in node.conditions],
                       group=[node.day.copy()] + [e.copy() for _, e in node.dims])
        values = [alias(REAGGREGATE[i.measure.agg](this=col(i.alias, "d")), i.alias) for i in node.measures]
    else:
        daily = select([alias(node.day.copy(), DAY)] + dims
                       + [alias(i.measure.expr.copy(), f"_m_{i.alias}") for i in node.measures if i.measure.expr is not None],
                       node.model.source.copy(), joins=joins_for(catalog, node.joins, node.conditions),
                       where=[c.copy() for c in node.conditions])
        values = [alias(agg_expr(i.measure.agg, col(f"_m_{i.alias}", "d") if i.measure.expr is not None else None,
                                 i.measure.definition.percentile), i.alias) for i in node.measures]

    spine, day = spine_source(catalog)
    if resolved.start or resolved.end:
        first = period_start(resolved.start, "day", resolved.time) if resolved.start else None  # the day holding it
        bounds = ([exp.GTE(this=day.copy(), expression=timestamp(first))] if resolved.start else []) + \
                 ([exp.LT(this=day.copy(), expression=timestamp(resolved.end))] if resolved.end else [])
    else:
        bounds = []
    first_day = exp.Subquery(this=select([exp.Min(this=col(DAY))], table(daily_name)))
    last_day = exp.Subquery(this=select([exp.Max(this=col(DAY))], table(daily_name)))
    if not resolved.start:
        bounds.append(exp.GTE(this=day.copy(), expression=first_day))
    if not resolved.end:
        bounds.append(exp.LTE(this=day.copy(), expression=last_day))
    period = truncate(day.copy(), grain, resolved.time)
    buckets = select([alias(period, time_alias), alias(exp.Max(this=day.copy()), END)],
                     spine, where=bounds, group=[period.copy()])

    if windowable(node):  # one sorted pass instead of a range join
        return [(daily_name, daily), (buckets_name, buckets),
                (node.name, render_windowed(node, resolved, daily_name, buckets_name))]
    end = col(END, "b")
    within = exp.LTE(this=col(DAY, "d"), expression=end)
    if spec.window is not None:
        since = exp.GT(this=col(DAY, "d"), expression=add(end.copy(), -spec.window.count, spec.window.unit))
    elif spec.grain_to_date is not None:
        since = exp.GTE(this=col(DAY, "d"), expression=truncate(end.copy(), spec.grain_to_date, resolved.time))
    else:  # all time: every day up to the period's last
        since = None
    if since is not None:
        within = exp.And(this=within, expression=since)
    result = select([alias(col(time_alias, "b"), time_alias)] + [alias(col(a, "d"), a) for a, _ in node.dims] + values,
                    table(buckets_name, "b"), joins=[join(table(daily_name, "d"), within, side="INNER")],
                    group=[col(time_alias, "b")] + [col(a, "d") for a, _ in node.dims])
    return [(daily_name, daily), (buckets_name, buckets), (node.name, result)]

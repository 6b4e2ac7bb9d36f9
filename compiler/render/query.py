"""Plan -> the final SELECT.

One plain measure source: a single grouped SELECT computing the metrics over its aggregates.
Otherwise one CTE (or a few) per node, combined over the union of their dimension values with
NULL-safe equality, so a group present in one source only is kept. A node shifted in time (the
previous month's revenue) joins on its period moved by the offset; with `join_to_timespine` the
periods come from the time spine, so empty periods appear. HAVING conditions, ordering and limit
apply to the combined rows.
"""

from __future__ import annotations

from sqlglot import exp

from ..calendar import add, period_start, truncate
from ..catalog import Catalog
from ..plan import AggregateNode, ConversionNode, Plan, timestamp
from .affinity import render_affinity
from .aggregate import render_aggregate
from .build import alias, col, join, select, subquery, table
from .cohort import render_cohort
from .conversion import render_conversion
from .cumulative import render_cumulative
from .spine import spine_source
from ..time_shift import one_to_one

SPINE = "_canon_groups"
DATA = "_canon_data_groups"
RESULT = "_canon_result"


def render_plan(catalog: Catalog, plan: Plan) -> exp.Select:
    resolved = plan.resolved
    finish = _finish(resolved)
    inner = {} if resolved.having is not None else finish
    if plan.affinity is not None:
        query = render_affinity(catalog, plan.affinity, resolved, **inner)
    elif plan.cohort is not None:
        query = render_cohort(catalog, plan.cohort, resolved, **inner)
    elif _single(plan):
        query = render_aggregate(catalog, plan.nodes[0], resolved.outputs, **inner)
    else:
        query = _combine(catalog, plan, inner)
    if resolved.having is None:
        return query
    return select([exp.Star()], subquery(query, RESULT), where=[resolved.having.copy()], **finish)


def _single(plan: Plan) -> bool:
    node = plan.nodes[0]
    return (len(plan.nodes) == 1 and isinstance(node, AggregateNode) and node.offset is None
            and node.cumulative is None and not plan.resolved.fill_time)


def _node_ctes(catalog: Catalog, node, resolved, done: dict) -> list[tuple[str, exp.Expression]]:
    if isinstance(node, ConversionNode):
        return render_conversion(catalog, node)
    if node.cumulative is not None:
        return render_cumulative(catalog, node, resolved)
    query = render_aggregate(catalog, node)
    # the same aggregate under other names (revenue and last month's revenue over the same rows):
    # read the first one's rows, so that no engine computes it twice
    earlier = done.setdefault((node.model.name, tuple(i.measure.ref for i in node.measures)), [])
    for other, other_query in earlier:
        if _shape(query, node) == _shape(other_query, other):
            return [(node.name, select([col(a) for a, _ in node.dims]
                                       + [alias(col(theirs.alias), mine.alias)
                                          for theirs, mine in zip(other.measures, node.measures)], table(other.name)))]
    earlier.append((node, query))
    return [(node.name, query)]


def _shape(query: exp.Select, node: AggregateNode) -> exp.Select:
    """The query without the names of its values."""
    values = {i.alias for i in node.measures}
    shape = query.copy()
    for e in shape.expressions:
        if e.alias in values:
            e.replace(e.this)
    return shape


def _values_of(node) -> list[str]:
    if isinstance(node, ConversionNode):
        return [node.input.base_alias, node.input.conversion_alias]
    return [i.alias for i in node.measures]


def _combine(catalog: Catalog, plan: Plan, finish: dict) -> exp.Select:
    resolved, nodes = plan.resolved, plan.nodes
    dims = [d.alias for d in resolved.dims]
    time = resolved.time_dim
    ctes: list[tuple[str, exp.Expression]] = []
    done: dict[tuple, list] = {}
    for node in nodes:
        ctes += _node_ctes(catalog, node, resolved, done)
    home = {value: node.name for node in nodes for value in _values_of(node)}
    where: list[exp.Expression] = []
    if dims and not resolved.fill_time and not any(_shifted(n) for n in nodes):
        if len(nodes) == 1:  # one source (a cumulative or conversion node): its rows are its groups already
            if time is not None and (resolved.start or resolved.end) and _moves(nodes[0]):
                where = _trim(col(time.alias, nodes[0].name), resolved, time.grain or "day")
            return _finish_combine(resolved, dims, ctes, home, nodes[0].name, [], where, finish)
        # stack the sources and group: GROUP BY matches NULL groups and hashes on every engine,
        # where a NULL-safe join cannot be hashed (PostgreSQL falls back to nested loops)
        values = [v for node in nodes for v in _values_of(node)]
        stacked = [select([col(a) for a in dims]
                          + [col(v) if v in _values_of(node) else alias(exp.Null(), v) for v in values],
                          table(node.name)) for node in nodes]
        if len(nodes) > 2:
            # PostgreSQL types a UNION pairwise from the left, and two NULL columns become text; a
            # first branch without rows gives every column the type of the source that owns it
            owner = {v: node.name for node in nodes for v in _values_of(node)}
            typing = select([col(a, nodes[0].name) for a in dims] + [col(v, owner[v]) for v in values],
                            table(nodes[0].name), joins=[join(table(node.name)) for node in nodes[1:]],
                            where=[exp.EQ(this=exp.Literal.number(1), expression=exp.Literal.number(0))])
            stacked.insert(0, typing)
        ctes.append((SPINE, select([col(a) for a in dims] + [alias(exp.Max(this=col(v)), v) for v in values],
                                   subquery(exp.union(*stacked, distinct=False, copy=False) if len(stacked) > 1
                                            else stacked[0], "_canon_stacked"),
                                   group=[col(a) for a in dims])))
        home = {v: SPINE for v in values}
        if time is not None and (resolved.start or resolved.end) and any(_moves(n) for n in nodes):
            where = _trim(col(time.alias, SPINE), resolved, time.grain or "day")
        return _finish_combine(resolved, dims, ctes, home, SPINE, [], where, finish)
    pair = _over_time(nodes, dims, time, resolved)
    if pair is not None:
        ctes.append((SPINE, _full_join(pair, resolved, home)))
        home = {v: SPINE for v in home}
        if (resolved.start or resolved.end) and any(_moves(n) for n in nodes):
            where = _trim(col(time.alias, SPINE), resolved, time.grain or "day")
        where = where + _until_data_ends(nodes, col(time.alias, SPINE), time.alias)
        return _finish_combine(resolved, dims, ctes, home, SPINE, [], where, finish)
    if dims:
        parts = [_labels(catalog, node, dims, resolved) for node in nodes]
        data = exp.union(*parts, distinct=True, copy=False) if len(parts) > 1 else parts[0]
        if resolved.fill_time and time is not None:
            ctes.append((DATA, data))
            ctes.append((SPINE, _time_spine(catalog, resolved, dims, time.alias)))
        else:
            ctes.append((SPINE, data))
        base = SPINE
        joins = [join(table(node.name), _match(node, dims, resolved)) for node in nodes]
        if time is not None and (resolved.start or resolved.end) and any(_moves(n) for n in nodes):
            where = _trim(col(time.alias, SPINE), resolved, time.grain or "day")
        if time is not None:
            where = where + _until_data_ends(nodes, col(time.alias, SPINE), time.alias)
    else:  # one row per source: cross join them
        base = nodes[0].name
        joins = [join(table(node.name)) for node in nodes[1:]]
    return _finish_combine(resolved, dims, ctes, home, base, joins, where, finish)


def _over_time(nodes, dims: list[str], time, resolved):
    """Period over period by time alone (revenue and last month's revenue by month), the offset moving
    whole periods one to one: (current, earlier) nodes, else None."""
    if time is None or dims != [time.alias] or resolved.fill_time or len(nodes) != 2:
        return None
    current = [n for n in nodes if isinstance(n, AggregateNode) and n.offset is None and n.cumulative is None]
    earlier = [n for n in nodes if _lagged(n) and n.cumulative is None and n.time and n.time[0] == time.alias
               and one_to_one(n.time[1], n.offset)]
    return (current[0], earlier[0]) if len(current) == 1 and len(earlier) == 1 else None


def _full_join(pair, resolved, home: dict) -> exp.Select:
    """The two aggregates as one FULL JOIN, each period beside the one an offset earlier: the hand-written
    shape (no union of periods, no NULL-safe joins, which PostgreSQL cannot hash or merge). A NULL period
    has no row either way: the rows end with the data's last period (`_until_data_ends`)."""
    current, earlier = pair
    time_alias, grain = earlier.time
    offset = earlier.offset
    now, then = col(time_alias, current.name), col(time_alias, earlier.name)
    period = exp.Coalesce(this=now, expressions=[truncate(add(then, offset.count, offset.unit), grain, resolved.time)])
    on = exp.EQ(this=then.copy(), expression=truncate(add(now.copy(), -offset.count, offset.unit), grain, resolved.time))
    return select([alias(period, time_alias)] + [alias(col(v, node), v) for v, node in home.items()],
                  table(current.name), joins=[join(table(earlier.name), on, side="FULL")])


def _finish_combine(resolved, dims, ctes, home, base, joins, where, finish) -> exp.Select:
    values = [alias(col(a, base), a) for a in dims]
    for name, expr in resolved.outputs:
        values.append(alias(expr.transform(lambda n: col(n.name, home[n.name]) if isinstance(n, exp.Column) else n), name))
    return select(values, table(base), joins=joins, where=where, ctes=ctes, **finish)


def _moves(node) -> bool:
    return isinstance(node, AggregateNode) and (node.offset is not None or node.cumulative is not None)


def _shifted(node) -> bool:
    return isinstance(node, AggregateNode) and node.offset is not None


def _lagged(node) -> bool:
    """A shifted node whose periods are still its own (moved ones carry the periods they count for)."""
    return _shifted(node) and not node.moved


def _labels(catalog: Catalog, node, dims: list[str], resolved) -> exp.Select:
    """The groups a node contributes to the combined rows. A node shifted in time contributes every
    period P whose source period (P - offset) it has: taken from the time spine (configured or
    generated), so that clamped days (Mar 30 and 31 both read Feb 29) and weeks get their rows. Where the
    offset maps periods one to one (a month at month grain) those are its own periods moved forward."""
    shifted = isinstance(node, AggregateNode) and node.offset is not None and node.time is not None and not node.moved
    if not shifted or one_to_one(node.time[1], node.offset):
        return select([_label(a, node, resolved) for a in dims], table(node.name), distinct=True)
    time_alias, grain = node.time
    spine, day = spine_source(catalog)
    periods = select([alias(truncate(day, grain, resolved.time), "_canon_p")], spine, distinct=True)
    source = truncate(add(col("_canon_p", "s"), -node.offset.count, node.offset.unit), grain, resolved.time)
    values = [alias(col("_canon_p", "s"), a) if a == time_alias else alias(col(a, "n"), a) for a in dims]
    return select(values, subquery(periods, "s"),
                  joins=[join(table(node.name, "n"), exp.EQ(this=col(time_alias, "n"), expression=source), side="INNER")],
                  distinct=True)


def _label(dim_alias: str, node, resolved) -> exp.Expression:
    """A node's value for a dimension, as the combined rows see it: shifted periods move forward."""
    value = col(dim_alias)
    if _lagged(node) and node.time and node.time[0] == dim_alias:
        moved = truncate(add(value, node.offset.count, node.offset.unit), node.time[1], resolved.time)
        return alias(moved, dim_alias)
    return value


def _match(node, dims: list[str], resolved) -> exp.Expression:
    conditions = []
    for a in dims:
        mine = col(a, node.name)
        if _lagged(node) and node.time and node.time[0] == a:
            # the row for period P reads the node's period (P - offset)
            earlier = truncate(add(col(a, SPINE), -node.offset.count, node.offset.unit), node.time[1], resolved.time)
            conditions.append(exp.EQ(this=mine, expression=earlier))
        else:
            conditions.append(exp.NullSafeEQ(this=col(a, SPINE), expression=mine))
    return exp.and_(*conditions)


def _until_data_ends(nodes, period: exp.Expression, time_alias: str) -> list[exp.Expression]:
    """Period over period: no rows after the last period in which an unshifted measure has data (a year
    of data and a year-over-year metric would otherwise end in twelve months of earlier values alone).
    A query of shifted values only (revenue_prev_month) keeps the periods after the data: they are its answer."""
    if not any(_shifted(n) for n in nodes):
        return []
    ends = [exp.LTE(this=period.copy(), expression=exp.Subquery(this=select([exp.Max(this=col(time_alias))], table(n.name))))
            for n in nodes if not _shifted(n)]
    if not ends:
        return []
    return [ends[0] if len(ends) == 1 else exp.paren(exp.or_(*ends), copy=False)]


def _trim(period: exp.Expression, resolved, grain: str) -> list[exp.Expression]:
    """Offsets and windows read beyond the range; the output keeps the requested periods only."""
    bounds = []
    if resolved.start:
        first = period_start(resolved.start, grain, resolved.time)
        bounds.append(exp.GTE(this=period, expression=exp.cast(exp.Literal.string(first[:10]), exp.DataType.Type.DATE)))
    if resolved.end:
        bounds.append(exp.LT(this=period.copy(), expression=timestamp(resolved.end)))
    return bounds


def _time_spine(catalog: Catalog, resolved, dims: list[str], time_alias: str) -> exp.Select:
    """Every period of the range (or of the data) from the time spine, times the other groups."""
    spine, day = spine_source(catalog)
    grain = resolved.time_dim.grain or "day"
    bounds = []
    if resolved.start:  # spine rows are days: the day holding the start counts
        bounds.append(exp.GTE(this=day.copy(), expression=timestamp(period_start(resolved.start, "day", resolved.time))))
    else:
        bounds.append(exp.GTE(this=day.copy(), expression=exp.Subquery(this=select([exp.Min(this=col(time_alias))], table(DATA)))))
    if resolved.end:
        bounds.append(exp.LT(this=day.copy(), expression=timestamp(resolved.end)))
    else:
        bounds.append(exp.LTE(this=day.copy(), expression=exp.Subquery(this=select([exp.Max(this=col(time_alias))], table(DATA)))))
    periods = select([alias(truncate(day.copy(), grain, resolved.time), time_alias)],
                     spine, where=bounds, distinct=True)
    others = [a for a in dims if a != time_alias]
    if not others:
        return select([col(a) for a in dims], subquery(periods, "_canon_periods"))
    groups = select([col(a) for a in others], table(DATA), distinct=True)
    return select([col(time_alias, "_canon_periods")] + [col(a, "_canon_other") for a in others],
                  subquery(periods, "_canon_periods"), joins=[join(subquery(groups, "_canon_other"))])


def _finish(resolved) -> dict:
    request = resolved.request
    # the requested dimensions break ties, so a LIMIT returns the same rows on every engine
    named = {alias for alias, _ in resolved.order}
    order = resolved.order + tuple((d.alias, False) for d in resolved.dims if d.alias not in named)
    return {
        "order": [exp.Ordered(this=col(a), desc=desc, nulls_first=False) for a, desc in order],
        "limit": request.limit,
        "offset": request.offset,
    }

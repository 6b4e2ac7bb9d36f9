"""CohortNode -> one SELECT over CTEs: first events, members, activity, the member × period grid.

    first     each entity's first cohort event (over all of history)
    members   one row per entity: its cohort period, its dimensions; filtered by the request
    a<i>      the activity events: entity, period (and value)
    periods   the periods that have activity: the observable ones
    pairs     each member × each observable period from its cohort on, with periods since (k)
    per_a<i>  each member's activity per k: events and value
    grid      pairs + per_a<i>: active in k, value and events summed over 0..k (a window per member)
then the metrics per group of the grid. Without periods since, the grid is one row per member with
its activity to date.
"""

from __future__ import annotations

from sqlglot import exp

from ..catalog import Catalog
from ..cohort import ENTITY, FIRST, K, TIME, CohortNode, CohortOutput, EventSource
from .build import alias, col, join, select, table
from .joins import join_condition, joins_for

PERIOD, COHORT, VALUE, EVENTS = "_canon_period", "_canon_cohort", "_canon_value", "_canon_events"
ACTIVE, SUMMED, COUNTED = "_canon_active_", "_canon_value_", "_canon_events_"  # + activity key
MONTHS = {"month": 1, "quarter": 3, "fiscal_quarter": 3, "year": 12, "fiscal_year": 12}


def render_cohort(catalog: Catalog, node: CohortNode, resolved, *, order=(), limit=None, offset=None) -> exp.Select:
    n = node.name
    first, members, periods, pairs = f"{n}_first", f"{n}_members", f"{n}_periods", f"{n}_pairs"
    ctes = [(first, _first(catalog, node.first)), (members, _members(catalog, node, first))]
    ctes += [(f"{n}_{key}", _activity(catalog, source)) for key, source in node.activities]
    dims = [a for a, _ in node.dims]
    by_k = node.periods is not None
    if by_k:
        ctes.append((periods, _periods([f"{n}_{key}" for key, _ in node.activities])))
        within = exp.GTE(this=col(PERIOD, "p"), expression=col(COHORT, "m"))
        ctes.append((pairs, select([col(ENTITY, "m")] + [col(a, "m") for a in dims]
                                   + [alias(periods_between(col(COHORT, "m"), col(PERIOD, "p"), node.grain), K)],
                                   table(members, "m"), joins=[join(table(periods, "p"), within, side="INNER")])))
    base = pairs if by_k else members
    values, joins = [], []
    for key, source in node.activities:
        per = f"{n}_per_{key}"
        ctes.append((per, _per_member(node, members, f"{n}_{key}", source, by_k)))
        on = [exp.EQ(this=col(ENTITY, key), expression=col(ENTITY, "g"))]
        if by_k:
            on.append(exp.EQ(this=col(K, key), expression=col(K, "g")))
        joins.append(join(table(per, key), exp.and_(*on)))
        values += _grid_values(key, source, by_k)
    grid = f"{n}_grid"
    ctes.append((grid, select([col(ENTITY, "g")] + [col(a, "g") for a in dims] + ([col(K, "g")] if by_k else [])
                              + values, table(base, "g"), joins=joins)))
    groups = [col(a) for a in dims] + ([col(K)] if by_k else [])
    # the requested dimensions in their order: periods since is the grid's k
    outputs = [alias(col(K if ref.alias == node.periods else ref.alias), ref.alias) for ref in resolved.dims]
    outputs += [alias(_metric(output), output.name) for output in node.outputs]
    return select(outputs, table(grid), where=[c.copy() for c in node.grid_conditions], group=groups, ctes=ctes,
                  order=order, limit=limit, offset=offset)


def _first(catalog: Catalog, source: EventSource) -> exp.Select:
    conditions = list(source.conditions) + [exp.Not(this=exp.Is(this=source.entity.copy(), expression=exp.Null()))]
    return select([alias(source.entity.copy(), ENTITY), alias(exp.Min(this=source.time.copy()), TIME)],
                  source.model.source.copy(), joins=joins_for(catalog, source.joins, conditions),
                  where=[c.copy() for c in conditions], group=[source.entity.copy()])


def _members(catalog: Catalog, node: CohortNode, first: str) -> exp.Select:
    joins = []
    if node.joins_entity:
        # LEFT joins all: a member whose entity row (or a row it points to) is missing stays, grouped under NULL
        key = node.entity.primary.expr.copy()
        joins.append(join(node.entity.source.copy(), exp.EQ(this=key, expression=col(ENTITY, FIRST))))
        joins += [join(catalog.models[e.target].source.copy(), join_condition(catalog, e)) for e in node.member_joins]
    return select([col(ENTITY, FIRST), alias(node.cohort.copy(), COHORT)] + [alias(e.copy(), a) for a, e in node.dims],
                  table(first, FIRST), joins=joins, where=[c.copy() for c in node.member_conditions])


def _activity(catalog: Catalog, source: EventSource) -> exp.Select:
    values = [alias(source.entity.copy(), ENTITY), alias(source.period.copy(), PERIOD)]
    if source.value is not None:
        values.append(alias(source.value.copy(), VALUE))
    return select(values, source.model.source.copy(), joins=joins_for(catalog, source.joins, source.conditions),
                  where=[c.copy() for c in source.conditions])


def _periods(activities: list[str]) -> exp.Expression:
    parts = [select([col(PERIOD)], table(name), distinct=True) for name in activities]
    return exp.union(*parts, distinct=True, copy=False) if len(parts) > 1 else parts[0]


def _per_member(node: CohortNode, members: str, activity: str, source: EventSource, by_k: bool) -> exp.Select:
    """Each member's events (and value) per period since its cohort start, or to date."""
    on = exp.and_(exp.EQ(this=col(ENTITY, "a"), expression=col(ENTITY, "m")),
                  exp.GTE(this=col(PERIOD, "a"), expression=col(COHORT, "m")))
    keys = [col(ENTITY, "a")]
    values = [col(ENTITY, "a")]
    if by_k:
        k = periods_between(col(COHORT, "m"), col(PERIOD, "a"), node.grain)
        keys.append(k)
        values.append(alias(k.copy(), K))
    values.append(alias(exp.Count(this=exp.Star()), EVENTS))
    if source.value is not None:
        values.append(alias(exp.Sum(this=col(VALUE, "a")), VALUE))
    return select(values, table(activity, "a"), joins=[join(table(members, "m"), on, side="INNER")], group=keys)


def _grid_values(key: str, source: EventSource, by_k: bool) -> list[exp.Expression]:
    """Per member (and k): active in k; value and events to k (a running sum over k), or to date."""
    def running(column: str) -> exp.Expression:
        value = exp.Coalesce(this=col(column, key), expressions=[exp.Literal.number(0)])
        if not by_k:
            return value
        return exp.Window(this=exp.Sum(this=value), partition_by=[col(ENTITY, "g")],
                          order=exp.Order(expressions=[exp.Ordered(this=col(K, "g"), nulls_first=True)]),
                          spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"))

    values = [alias(running(EVENTS), COUNTED + key)]
    if by_k:
        active = exp.Case(ifs=[exp.If(this=exp.GT(this=col(EVENTS, key), expression=exp.Literal.number(0)),
                                      true=exp.Literal.number(1))], default=exp.Literal.number(0))
        values.append(alias(active, ACTIVE + key))
    if source.value is not None:
        values.append(alias(running(VALUE), SUMMED + key))
    return values


def _metric(output: CohortOutput) -> exp.Expression:
    key = output.activity
    size = exp.Count(this=exp.Star())
    if output.calculation == "cohort_size":
        return size
    if output.calculation == "active":
        return exp.Sum(this=col(ACTIVE + key))
    if output.calculation == "retention":
        part = exp.Sum(this=col(ACTIVE + key))
    elif output.calculation == "cumulative_value":
        part = exp.Sum(this=col(SUMMED + key))
    else:  # repeat_rate: two or more events by k
        part = exp.Sum(this=exp.Case(ifs=[exp.If(this=exp.GTE(this=col(COUNTED + key), expression=exp.Literal.number(2)),
                                                 true=exp.Literal.number(1))], default=exp.Literal.number(0)))
    return exp.Div(this=exp.cast(part, exp.DataType.Type.DOUBLE), expression=size)


def periods_between(start: exp.Expression, end: exp.Expression, grain: str) -> exp.Expression:
    """Whole periods from the period starting `start` to the one starting `end` (both DATEs at `grain`):
    day differences for days and weeks, month arithmetic for months and longer (fiscal ones too)."""
    if grain in ("day", "week"):
        days = exp.DateDiff(this=end, expression=start, unit=exp.var("DAY"))
        count = days if grain == "day" else exp.IntDiv(this=days, expression=exp.Literal.number(7))
    else:
        years = exp.Sub(this=exp.Year(this=end), expression=exp.Year(this=start.copy()))
        months = exp.Add(this=exp.Mul(this=exp.Paren(this=years), expression=exp.Literal.number(12)),
                         expression=exp.Sub(this=exp.Month(this=end.copy()), expression=exp.Month(this=start.copy())))
        span = MONTHS[grain]
        count = months if span == 1 else exp.IntDiv(this=exp.Paren(this=months), expression=exp.Literal.number(span))
    return exp.cast(count, exp.DataType.Type.INT)

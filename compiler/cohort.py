"""Cohort metrics: resolve and plan a request for them (render/cohort.py writes the SQL).

A cohort metric groups the entities (customers) by the period of their first `cohort` event (their
first completed order): that period is the entity's cohort, and `metric_time` means it in a cohort
query. `cohort.periods_since` is the number of periods from a member's cohort period to a period of
its `activity` events (0 is the cohort period itself), counted at the cohort grain: the grain of
metric_time in the request, else the metric's `grain`.

Per group (cohort period, periods since, the entity's own dimensions) a cohort metric computes
- cohort_size: the members whose k-th period is observable (the activity has data in it), so a
  cohort's rows end where the data ends and a rate by periods since never counts members whose
  k-th period has not come yet;
- active: the members with an activity event in their k-th period;
- retention: active / cohort_size;
- cumulative_value: the activity's measure (a sum or count) summed over each member's periods
  0..k, per member (lifetime value to period k);
- repeat_rate: the share of members with two or more activity events by their k-th period.
Without cohort.periods_since the values are to date (every activity event from the cohort period
on); retention and active need it. Each entity's first event is taken over all of history; the
request's time range and `metric_time` filters choose cohorts, never the activity they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from . import model as m
from .calendar import TimeContext, in_zone, truncate
from .catalog import Catalog, DimensionInfo, Edge, ModelInfo
from .errors import FilterError, QueryError, UnknownNameError, did_you_mean
from .refs import COHORT, METRIC_TIME, DimRef, parse_ref, split_measure_ref
from .request import QueryRequest
from .sqlexpr import SOURCE_DIALECT, ParsedFilter, column_ref, parse_filter

PERIODS_SINCE = "periods_since"
GRAINS = ("day", "week", "month", "quarter", "fiscal_quarter", "year", "fiscal_year")
NEEDS_PERIODS = ("retention", "active")  # defined per period since the cohort start
ADDITIVE = ("sum", "count")  # activity measures a member's value can be summed from
# columns of the CTEs render/cohort.py writes; the plan binds metric_time to FIRST's TIME
ENTITY, TIME, FIRST, K = "_canon_entity", "_canon_time", "_canon_f", "_canon_k"


@dataclass(frozen=True)
class CohortInput:
    """The cohort metrics of a request: one cohort definition, periods at one grain."""

    entity: str
    cohort: str  # the simple metric whose first event per entity starts its cohort
    grain: str
    metrics: tuple[m.CohortMetric, ...]
    periods: str | None  # the output alias of cohort.periods_since, when grouped by it


@dataclass(frozen=True)
class EventSource:
    """The rows of one simple metric as events of the entity."""

    metric: str
    model: ModelInfo
    joins: tuple[Edge, ...]
    conditions: tuple[exp.Expression, ...]
    entity: exp.Expression  # the entity's key on the model or on a model it joins to
    time: exp.Expression  # the model's default time, as stored
    time_dim: DimensionInfo
    period: exp.Expression | None = None  # activity: the period (in the request's zone) of each row
    value: exp.Expression | None = None  # activity: each row's part of the measure (sum, count)


@dataclass(frozen=True)
class CohortOutput:
    name: str
    calculation: str
    activity: str  # key of its activity source in CohortNode.activities


@dataclass(frozen=True)
class CohortNode:
    name: str
    first: EventSource
    activities: tuple[tuple[str, EventSource], ...]
    entity: ModelInfo  # the model where the entity is primary: its dimensions describe members
    member_joins: tuple[Edge, ...]  # from the entity model, for the members' dimensions and filters
    joins_entity: bool  # members need the entity model's row (a dimension or filter names it)
    cohort: exp.Expression  # a member's cohort period, over FIRST's TIME
    dims: tuple[tuple[str, exp.Expression], ...]  # (alias, expression) without periods since
    member_conditions: tuple[exp.Expression, ...]
    grid_conditions: tuple[exp.Expression, ...]  # on periods since, over the grid's column
    grain: str
    periods: str | None
    outputs: tuple[CohortOutput, ...]


def cohort_names(catalog: Catalog) -> list[str]:
    return sorted(n for n, x in catalog.metrics.items() if isinstance(x, m.CohortMetric))


def cohort_ref(catalog: Catalog, ref: str, asked: bool) -> DimRef:
    """`cohort.periods_since`: a dimension of cohort metrics only."""
    if not asked:
        names = cohort_names(catalog)
        raise QueryError(f"'{ref}' counts periods since a cohort's start: it applies only to cohort metrics",
                         hint=f"query it with a cohort metric: {', '.join(names)}" if names
                         else "this catalog defines no cohort metric")
    if ref.split(".")[1:] != [PERIODS_SINCE]:
        raise UnknownNameError(f"unknown dimension '{ref}'",
                               hint=f"cohort metrics offer cohort.{PERIODS_SINCE} and metric_time.<grain> (the cohort "
                                    "period) besides their entity's dimensions")
    return DimRef(ref, COHORT, None, None)


def is_cohort_request(catalog: Catalog, names) -> bool:
    return any(isinstance(catalog.metrics[n], m.CohortMetric) for n in names)


# --- resolve -----------------------------------------------------------------------------------------


def resolve_cohort(catalog: Catalog, request: QueryRequest, names: tuple[str, ...]):
    from .resolve import (BoundFilter, ResolvedQuery, _check_limit, _having, _no_duplicates, _order_item, _range,
                          time_context)

    metrics = _same_cohort(catalog, names)
    _no_duplicates(request.dimensions, "dimension")
    dims = tuple(parse_ref(catalog, ref, cohort=True) for ref in request.dimensions)
    where = tuple(BoundFilter(*bound) for i, text in enumerate(request.where) for bound in _bind_filter(catalog, text, i))
    grain = _grain(metrics, dims)
    periods = next((d.alias for d in dims if d.kind == COHORT), None)
    if periods is None:
        need = [x.name for x in metrics if x.calculation in NEEDS_PERIODS]
        if need:
            raise QueryError(
                f"metric {', '.join(need)} is measured in each period since the cohort's start: "
                f"group by cohort.{PERIODS_SINCE}",
                hint=f"e.g. --by metric_time.{grain} --by cohort.{PERIODS_SINCE}; without it ask for a cohort "
                     "metric that is defined to date (cohort_size, cumulative_value, repeat_rate)")
        if any(COHORT in {r.kind for r in w.refs.values()} for w in where):
            raise QueryError(f"a filter on cohort.{PERIODS_SINCE} needs the rows per period since",
                             hint=f"group by cohort.{PERIODS_SINCE} too")
    if request.fill_gaps:
        raise QueryError("fill_gaps does not apply to cohort metrics: their rows are the periods each cohort has "
                         "data for", hint="leave fill_gaps out")
    aliases = {d.ref: d.alias for d in dims} | {n: n for n in names}
    order = tuple(_order_item(item, aliases) for item in request.order)
    having = _having(request.having, aliases)
    _check_limit(request)
    start, end = _range(catalog, request)
    time = time_context(catalog, request)
    cohort = CohortInput(metrics[0].entity, metrics[0].cohort, grain, metrics, periods)
    return ResolvedQuery(request, dims, where, tuple((n, exp.column(n)) for n in names), (), None, order, start,
                         end, (), having, time, False, cohort=cohort)


def _same_cohort(catalog: Catalog, names) -> tuple[m.CohortMetric, ...]:
    metrics = tuple(catalog.metrics[n] for n in names)
    others = [x.name for x in metrics if not isinstance(x, m.CohortMetric)]
    if others:
        mine = [x.name for x in metrics if isinstance(x, m.CohortMetric)]
        raise QueryError(f"cohort metrics ({', '.join(mine)}) group entities by their first event and cannot be "
                         f"combined with {', '.join(others)} in one query", hint="query them separately")
    first = metrics[0]
    for other in metrics[1:]:
        if (other.entity, other.cohort) != (first.entity, first.cohort):
            raise QueryError(
                f"cohort metrics {first.name} and {other.name} define different cohorts ({first.entity} by first "
                f"{first.cohort} vs {other.entity} by first {other.cohort})", hint="query them separately")
    return metrics


def _bind_filter(catalog: Catalog, where, index: int) -> list[tuple[ParsedFilter, dict]]:
    """A filter as its conjuncts, each on periods since (the grid) or on the members, never both."""
    field = "where" if index == 0 else f"where[{index}]"
    parsed = parse_filter(where, field=field)
    text = where if isinstance(where, str) else where.sql(SOURCE_DIALECT)
    refs = {ref: parse_ref(catalog, ref, cohort=True) for ref in parsed.refs}
    _no_time_parts(refs.values())
    if isinstance(parsed.condition, exp.Column) and refs[parsed.refs[0]].type != "boolean":
        raise FilterError(f"{field}: {text!r} is a {refs[parsed.refs[0]].type} dimension, not a condition",
                          hint=f"compare it with a value, e.g. {text} = 1")
    condition = parsed.condition
    bound = []
    for conjunct in condition.flatten() if isinstance(condition, exp.And) else [condition]:
        mine = {column_ref(c): refs[column_ref(c)] for c in conjunct.find_all(exp.Column)}
        if len({r.kind == COHORT for r in mine.values()}) > 1:
            raise FilterError(f"{field}: {conjunct.sql(SOURCE_DIALECT)!r} mixes cohort.{PERIODS_SINCE} with other "
                              "dimensions in one condition",
                              hint=f"give the condition on cohort.{PERIODS_SINCE} as a filter of its own (AND)")
        bound.append((ParsedFilter(conjunct, tuple(mine)), mine))
    return bound


def _no_time_parts(refs) -> None:
    """metric_time's date parts (weekday, ...) are bound to a model's own time; a cohort's is its start."""
    parts = [d.ref for d in refs if d.dimension is None and d.kind not in (METRIC_TIME, COHORT)]
    if parts:
        raise QueryError(f"'{parts[0]}': in a cohort query metric_time is the cohort period, which has no date parts",
                         hint="group or filter by metric_time.<grain>: " + ", ".join(GRAINS))


def _grain(metrics, dims) -> str:
    _no_time_parts(dims)
    asked = {d.grain for d in dims if d.kind == METRIC_TIME and d.grain}
    if len(asked) > 1:
        raise QueryError(f"cohorts are grouped by one metric_time grain, not {', '.join(sorted(asked))}",
                         hint="the grain sets the cohort period and the periods since; ask for one")
    if asked:
        grain = asked.pop()
    else:
        declared = sorted({x.grain for x in metrics})
        if len(declared) > 1:
            raise QueryError(f"cohort metrics {', '.join(x.name for x in metrics)} count periods in different grains "
                             f"({', '.join(declared)})", hint="group by metric_time.<grain> to choose one")
        grain = declared[0]
    if grain not in GRAINS:
        raise QueryError(f"cohort periods are days or longer: metric_time.{grain} cannot be a cohort period",
                         hint="grains: " + ", ".join(GRAINS))
    return grain


# --- plan --------------------------------------------------------------------------------------------


def plan_cohort(catalog: Catalog, resolved) -> CohortNode:
    from .plan import Scope

    item: CohortInput = resolved.cohort
    context = f"metric {', '.join(x.name for x in item.metrics)}"
    time = resolved.time
    first = events(catalog, catalog.metrics[item.cohort], item.entity, f"{context} (cohort events)", time)
    sources: dict[str, tuple[str, EventSource]] = {}
    outputs = []
    for metric in item.metrics:
        if metric.activity not in sources:
            source = events(catalog, catalog.metrics[metric.activity], item.entity, f"{context} (activity)", time,
                            item.grain)
            sources[metric.activity] = (f"a{len(sources)}", source)
        key, source = sources[metric.activity]
        if metric.calculation == "cumulative_value" and source.value is None:
            raise QueryError(f"metric '{metric.name}' sums its activity per member, and the measure of "
                             f"'{metric.activity}' is not a plain sum or count", hint="use an activity metric over "
                             "a measure with agg sum or count")
        outputs.append(CohortOutput(metric.name, metric.calculation, key))

    entity = catalog.model_for(item.entity)
    scope = Scope(catalog, entity, f"{context} (members)", time)
    stored = in_zone(exp.column(TIME, table=FIRST), first.time_dim.definition.stored_as, time, first.time_dim.ref)
    cohort = truncate(stored.copy(), item.grain, time)
    dims = []
    for ref in resolved.dims:
        if ref.kind == METRIC_TIME:
            dims.append((ref.alias, cohort.copy()))
        elif ref.kind != COHORT:
            dims.append((ref.alias, scope.group_expr(ref)))
    members, grid = [], []
    for bound in resolved.where:
        refs = bound.refs
        if any(r.kind == COHORT for r in refs.values()):
            grid.append(bound.parsed.condition.transform(
                lambda node: exp.column(K) if isinstance(node, exp.Column) else node))
            continue

        def bind(node, refs=refs):
            if not isinstance(node, exp.Column):
                return node
            ref = refs[column_ref(node)]
            if ref.kind == METRIC_TIME:
                return truncate(stored.copy(), ref.grain, time) if ref.grain else stored.copy()
            return scope.filter_expr(ref)
        members.append(bound.parsed.condition.transform(bind))
    if resolved.start:
        members.append(exp.GTE(this=stored.copy(), expression=_timestamp(resolved.start)))
    if resolved.end:
        members.append(exp.LT(this=stored.copy(), expression=_timestamp(resolved.end)))
    joins = scope.ordered_joins()
    fanout = [e for e in joins if e.fanout]
    if fanout:
        raise QueryError(f"{scope.context}: the join {fanout[0]} has many rows per {item.entity}, and each cohort "
                         f"member counts once", hint=f"group and filter by dimensions of {entity.name} and of the "
                                                     "models it points to")
    named = [c.table for e in [x for _, x in dims] + members for c in e.find_all(exp.Column)]
    return CohortNode("q_cohort", first, tuple(sources.values()), entity, joins,
                      bool(joins) or entity.name in named, cohort, tuple(dims), tuple(members), tuple(grid),
                      item.grain, item.periods, tuple(outputs))


def _timestamp(value: str) -> exp.Expression:
    return exp.cast(exp.Literal.string(value), exp.DataType.Type.TIMESTAMP)


def events(catalog: Catalog, metric: m.SimpleMetric, entity: str, context: str, time: TimeContext = TimeContext(),
           grain: str | None = None) -> EventSource:
    """A simple metric's rows as events of `entity`: its model, filter, key and time (raises
    QueryError when the entity is out of reach, or the rows have no time or would count twice)."""
    from .plan import Scope, _wrap, filter_refs

    measure = split_measure_ref(catalog, metric.measure)
    model = catalog.models[measure.model]
    scope = Scope(catalog, model, context, time)
    own = catalog.metric_filters.get(metric.name)
    conditions = [scope.bind(own.condition, filter_refs(catalog, own))] if own else []
    key = _entity_key(catalog, scope, entity)
    dim = model.default_time
    if dim is None:
        raise QueryError(f"{context}: model '{model.name}' of metric '{metric.name}' has no default_time",
                         hint="cohorts and periods are measured on each event model's default_time")
    scope.reach(dim.model)
    raw = _wrap(dim.expr.copy())
    joins = scope.ordered_joins()
    fanout = [e for e in joins if e.fanout]
    if fanout:
        raise QueryError(f"{context}: the filter of '{metric.name}' joins {fanout[0]}, which has many rows per row "
                         f"of '{model.name}'", hint="filter events on dimensions of their own model and the models "
                                                    "it points to")
    period = truncate(in_zone(raw.copy(), dim.definition.stored_as, time, dim.ref), grain, time) if grain else None
    return EventSource(metric.name, model, joins, tuple(conditions), key, raw, dim, period, _value(measure))


def _entity_key(catalog: Catalog, scope, entity: str) -> exp.Expression:
    """The entity's key on the event model, or on the nearest model it joins to that has it."""
    model = scope.model
    if entity in model.entities:
        return model.entities[entity].expr.copy()
    owner = catalog.entity_owner.get(entity)
    if owner is None:
        raise UnknownNameError(f"{scope.context}: unknown entity '{entity}'", hint=did_you_mean(entity, catalog.entity_owner))
    try:
        path = catalog.path(model.name, owner)
    except QueryError as error:
        raise QueryError(f"{scope.context}: the events of model '{model.name}' do not reach the entity '{entity}' "
                         f"({error.message})", hint=error.hint) from None
    target = next(catalog.models[e.target] for e in path if entity in catalog.models[e.target].entities)
    scope.reach(target.name)
    return target.entities[entity].expr.copy()


def _value(measure) -> exp.Expression | None:
    """Each row's part of an additive measure; None for others (medians, distinct counts, ...)."""
    if measure.per is not None or measure.non_additive is not None or measure.agg not in ADDITIVE:
        return None
    if measure.agg == "sum":
        return measure.expr.copy()
    if measure.expr is None:
        return exp.Literal.number(1)
    return exp.Case(ifs=[exp.If(this=exp.Not(this=exp.Is(this=measure.expr.copy(), expression=exp.Null())),
                                true=exp.Literal.number(1))], default=exp.Literal.number(0))


# --- validate ----------------------------------------------------------------------------------------


def check_definition(catalog: Catalog, metric: m.CohortMetric, role: str, simple: m.SimpleMetric) -> None:
    """Raises when the `role` (cohort or activity) metric cannot serve as the metric's events."""
    context = f"its {role} '{simple.name}'"
    source = events(catalog, simple, metric.entity, context, grain=metric.grain if role == "activity" else None)
    if role == "activity" and metric.calculation == "cumulative_value" and source.value is None:
        measure = split_measure_ref(catalog, simple.measure)
        raise QueryError(f"{context}: cumulative_value sums the activity's measure per member, and "
                         f"'{measure.ref}' (agg {measure.agg}) cannot be summed",
                         hint="point `activity` at a simple metric whose measure has agg sum or count")


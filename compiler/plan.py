"""Plan pass: ResolvedQuery -> Plan.

Measures are grouped by the model they aggregate, the filters they carry and how they move in
time (offset, cumulative window); each group becomes one AggregateNode that knows its join steps
and whether any of them fans out (then the measure is aggregated over distinct (primary key,
dimensions) rows, so nothing is counted twice). Conversion metrics become ConversionNodes,
affinity metrics one AffinityNode over the basket-line model.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from .calendar import TimeContext, Window, in_zone, next_period, period_start, shift, truncate
from .catalog import AffinityInfo, Catalog, DimensionInfo, Edge, ModelInfo, format_path
from .cohort import CohortNode
from .date_parts import extract
from .time_shift import aligned, moved_bounds, moved_period
from .errors import QueryError
from .hops import skip_hops
from .refs import METRIC_TIME, DimRef, parse_ref
from .metric_filters import MetricRef, bind as bind_metrics
from .roles import localize
from .scd import as_of
from .resolve import ConversionInput, Cumulative, MeasureInput, ResolvedQuery
from .sqlexpr import column_ref


@dataclass(frozen=True)
class AggregateNode:
    name: str
    model: ModelInfo
    measures: tuple[MeasureInput, ...]
    dims: tuple[tuple[str, exp.Expression], ...]  # (output alias, expression); cumulative: without the time
    conditions: tuple[exp.Expression, ...]
    joins: tuple[Edge, ...]  # in an order where each source is already joined
    fanout: bool
    offset: Window | None = None
    cumulative: Cumulative | None = None
    time: tuple[str, str] | None = None  # (alias, grain) of the requested metric_time
    day: exp.Expression | None = None  # cumulative: each row's day
    edge: tuple[exp.Expression, exp.Expression | None] | None = None  # non-additive: (row time, period)
    moved: bool = False  # offset not a whole number of periods: rows grouped by their period moved forward


@dataclass(frozen=True)
class ConversionNode:
    name: str
    input: ConversionInput
    base: ModelInfo
    base_joins: tuple[Edge, ...]
    dims: tuple[tuple[str, exp.Expression], ...]
    base_conditions: tuple[exp.Expression, ...]
    base_time: exp.Expression
    conversion: ModelInfo
    conversion_joins: tuple[Edge, ...]
    conversion_conditions: tuple[exp.Expression, ...]
    conversion_time: exp.Expression
    time: tuple[str, str] | None = None


@dataclass(frozen=True)
class AffinityNode:
    info: AffinityInfo
    bridge: ModelInfo
    joins: tuple[Edge, ...]
    groups: tuple[tuple[str, exp.Expression], ...]  # basket-level dimensions
    antecedent: tuple[tuple[str, exp.Expression], ...]
    consequent: tuple[tuple[str, exp.Expression], ...]
    conditions: tuple[exp.Expression, ...]  # narrow the basket lines in scope
    antecedent_condition: exp.Expression | None
    consequent_condition: exp.Expression | None
    same_level: bool  # both sides use the same dimensions: pairs need different values


@dataclass(frozen=True)
class Plan:
    resolved: ResolvedQuery
    nodes: tuple[AggregateNode | ConversionNode, ...]
    affinity: AffinityNode | None
    cohort: CohortNode | None = None  # compiler/cohort.py


class Scope:
    """The join tree grown from one source model while binding references."""

    def __init__(self, catalog: Catalog, model: ModelInfo, context: str, time: TimeContext = TimeContext()):
        self.catalog, self.model, self.context, self.time = catalog, model, context, time
        self.joins: dict[str, Edge] = {}
        self.used: set[str] = set()  # models whose columns are read (the others may be joined around)

    def reach(self, target: str) -> tuple[Edge, ...]:
        if target not in self.catalog.models and target in self.joins:
            return ()  # a named path's alias, joined by roles.localize
        self.used.add(target)
        try:
            path = self.catalog.path(self.model.name, target)
        except QueryError as error:
            raise QueryError(f"{self.context}: {error.message}", hint=error.hint) from None
        for edge in path:
            if edge.target not in self.joins:  # a model with validity ranges: the version at the row's time
                self.joins[edge.target] = as_of(self, edge)
        return path

    def dimension(self, dim: DimensionInfo, grain: str | None) -> exp.Expression:
        self.reach(dim.model)
        if dim.type != "time":
            return _wrap(dim.expr.copy())
        local = in_zone(dim.expr.copy(), dim.definition.stored_as, self.time, dim.ref)
        return truncate(local, grain, self.time) if grain else _wrap(local)

    def time_dimension(self, ref: str) -> DimensionInfo:
        dim = self.model.default_time
        if dim is None:
            raise QueryError(f"{self.context}: '{ref}' needs a time axis, and model '{self.model.name}' has no default_time",
                             hint="group by one of its own time dimensions, or give the model a default_time")
        return dim

    def date_part(self, ref: DimRef) -> exp.Expression:
        """A date part (weekday, month of the year, ...) of a time dimension, in the request's zone."""
        dim = ref.dimension or self.time_dimension(ref.ref)
        self.reach(dim.model)
        return extract(in_zone(dim.expr.copy(), dim.definition.stored_as, self.time, dim.ref), ref.part)

    def group_expr(self, ref: DimRef) -> exp.Expression:
        """A dimension as grouped by: time dimensions default to their day."""
        if ref.route:  # a named join path (compiler/roles.py)
            ref = localize(self, ref)
        if ref.part is not None:
            return self.date_part(ref)
        if ref.kind == METRIC_TIME:
            return self.dimension(self.time_dimension(ref.ref), ref.grain or "day")
        return self.dimension(ref.dimension, ref.grain or ("day" if ref.type == "time" else None))

    def filter_expr(self, ref: DimRef) -> exp.Expression:
        """A dimension as filtered on: time dimensions without a grain compare as stored (in the zone)."""
        if ref.route:
            ref = localize(self, ref)
        if ref.part is not None:
            return self.date_part(ref)
        if ref.kind == METRIC_TIME:
            return self.dimension(self.time_dimension(ref.ref), ref.grain)
        return self.dimension(ref.dimension, ref.grain)

    def bind(self, condition: exp.Expression, refs: dict[str, DimRef]) -> exp.Expression:
        def replace(node):
            if isinstance(node, exp.Column):
                return self.filter_expr(refs[column_ref(node)])
            return node
        if condition.find(MetricRef) is not None:  # metric(order_count, by=customer) >= 3
            return bind_metrics(self, condition, lambda part: part.transform(replace))
        return condition.transform(replace)

    def time_range(self, start: str | None, end: str | None) -> list[exp.Expression]:
        if start is None and end is None:
            return []
        column = self.filter_expr(DimRef(METRIC_TIME, METRIC_TIME, None, None))
        bounds = []
        if start is not None:
            bounds.append(exp.GTE(this=column, expression=timestamp(start)))
        if end is not None:
            bounds.append(exp.LT(this=column.copy(), expression=timestamp(end)))
        return bounds

    def ordered_joins(self) -> tuple[Edge, ...]:
        done, ordered = {self.model.name}, []
        pending = list(self.joins.values())
        while pending:
            edge = next(e for e in pending if e.source in done)
            pending.remove(edge)
            ordered.append(edge)
            done.add(edge.target)
        return skip_hops(self.catalog, ordered, self.used)


def timestamp(value: str) -> exp.Expression:
    return exp.cast(exp.Literal.string(value), exp.DataType.Type.TIMESTAMP)


def _wrap(tree: exp.Expression) -> exp.Expression:
    return tree if isinstance(tree, (exp.Column, exp.Cast, exp.Func, exp.Paren, exp.Literal)) else exp.Paren(this=tree)


def plan(catalog: Catalog, resolved: ResolvedQuery) -> Plan:
    if resolved.affinity is not None:
        return Plan(resolved, (), _plan_affinity(catalog, resolved))
    if resolved.cohort is not None:
        from .cohort import plan_cohort

        return Plan(resolved, (), None, plan_cohort(catalog, resolved))
    groups: dict[tuple, list[MeasureInput]] = {}
    for item in resolved.inputs:
        measure = item.measure
        key = (measure.model, tuple(id(f) for f in item.filters), item.offset, item.cumulative,
               measure.per.entity if measure.per else None, measure.ref if measure.non_additive else None)
        groups.setdefault(key, []).append(item)
    nodes: list = [_aggregate_node(catalog, resolved, f"q_{i}", items) for i, items in enumerate(groups.values())]
    nodes += [_conversion_node(catalog, resolved, f"q_{len(nodes) + i}", c) for i, c in enumerate(resolved.conversions)]
    return Plan(resolved, tuple(nodes), None)


def filter_refs(catalog: Catalog, parsed) -> dict[str, DimRef]:
    return {ref: parse_ref(catalog, ref) for ref in parsed.refs}


def _context(metrics, resolved: ResolvedQuery) -> str:
    asked = [d.ref for d in resolved.dims]
    text = f"metric {', '.join(sorted(set(metrics)))}" + (f" by {', '.join(asked)}" if asked else "")
    if resolved.request.where:
        text += " where " + " AND ".join(w if isinstance(w, str) else w.sql("duckdb") for w in resolved.request.where)
    return text


def _node_range(resolved: ResolvedQuery, item: MeasureInput) -> tuple[str | None, str | None]:
    """The rows a node must read: shifted back by an offset, widened back by a window."""
    start, end = resolved.start, resolved.end
    if item.offset is not None:
        # whole source periods: the first and last requested periods, each moved back by the offset
        grain = resolved.time_dim.grain or "day" if resolved.time_dim else "day"
        time = resolved.time
        if start:
            start = period_start(shift(period_start(start, grain, time), item.offset, -1), grain, time)
        if end:
            end = next_period(shift(end, item.offset, -1), grain, time)
        return start, end
    spec = item.cumulative
    if spec is not None and start:  # the rows each period's window reaches back to; all of them for all time
        start = (shift(start, spec.window, -1) if spec.window else
                 period_start(start, spec.grain_to_date, resolved.time) if spec.grain_to_date else None)
    return start, end


def _aggregate_node(catalog: Catalog, resolved: ResolvedQuery, name: str, items: list[MeasureInput]) -> AggregateNode:
    first = items[0]
    model = catalog.models[first.measure.model]
    scope = Scope(catalog, model, _context([i.metric for i in items], resolved), resolved.time)
    time_ref = resolved.time_dim
    dims = tuple((ref.alias, scope.group_expr(ref)) for ref in resolved.dims
                 if not (first.cumulative and ref.kind == METRIC_TIME))
    conditions = [scope.bind(f.condition, filter_refs(catalog, f)) for f in first.filters]
    conditions += [scope.bind(w.parsed.condition, w.refs) for w in resolved.where]
    moved = first.offset is not None and time_ref is not None and not aligned(time_ref.grain or "day", first.offset)
    if moved:  # the same days one offset earlier (compiler/time_shift.py)
        grain, local = time_ref.grain or "day", scope.filter_expr(DimRef(METRIC_TIME, METRIC_TIME, None, None))
        period = moved_period(local, grain, first.offset, resolved.time)
        dims = tuple((a, period.copy() if a == time_ref.alias else e) for a, e in dims)
        conditions += moved_bounds(local, period, resolved.start, resolved.end, grain, first.offset, resolved.time)
    else:
        conditions += scope.time_range(*_node_range(resolved, first))
    day = scope.group_expr(DimRef(METRIC_TIME, METRIC_TIME, None, "day")) if first.cumulative else None
    edge = None
    semi = first.measure.non_additive
    if semi is not None:
        period = scope.group_expr(time_ref) if time_ref else None
        edge = (scope.dimension(semi.time, None), period)
    joins = scope.ordered_joins()
    fanout = any(e.fanout for e in joins)
    if fanout and model.primary is None:
        path = format_path(joins_to(joins, next(e for e in joins if e.fanout).target))
        raise QueryError(
            f"{scope.context}: the join {path} has many rows per row of '{model.name}', "
            f"and '{model.name}' has no primary entity to count each of its rows once",
            hint=f"give '{model.name}' a primary entity, or group by dimensions reachable without fan-out")
    if fanout and (first.cumulative or semi or first.measure.per):
        raise QueryError(f"{scope.context}: this measure cannot be grouped across the fan-out join "
                         f"{', '.join(str(e) for e in joins if e.fanout)}",
                         hint="group by dimensions reachable without fan-out")
    time = (time_ref.alias, time_ref.grain or "day") if time_ref else None
    return AggregateNode(name, model, tuple(items), dims, tuple(conditions), joins, fanout,
                         first.offset, first.cumulative, time, day, edge, moved)


def _conversion_node(catalog: Catalog, resolved: ResolvedQuery, name: str, item: ConversionInput) -> ConversionNode:
    base_model = catalog.models[item.base.measure.model]
    conv_model = catalog.models[item.conversion.measure.model]
    base = Scope(catalog, base_model, _context([item.metric], resolved), resolved.time)
    dims = tuple((ref.alias, base.group_expr(ref)) for ref in resolved.dims)
    conditions = [base.bind(f.condition, filter_refs(catalog, f)) for f in item.base.filters]
    conditions += [base.bind(w.parsed.condition, w.refs) for w in resolved.where]
    conditions += base.time_range(resolved.start, resolved.end)
    base_time = _raw_time(base, base_model.default_time)
    conv = Scope(catalog, conv_model, f"metric {item.metric} (conversion events)")
    conv_conditions = [conv.bind(f.condition, filter_refs(catalog, f)) for f in item.conversion.filters]
    conv_time = _raw_time(conv, conv_model.default_time)
    # bounds on stored (UTC) times, a day wider than the base events' zone-shifted range; the
    # join on entity and window is exact, these only keep the scan small
    day = Window(1, "day")
    if resolved.start:
        conv_conditions.append(exp.GTE(this=conv_time.copy(), expression=timestamp(shift(resolved.start, day, -1))))
    if resolved.end:
        conv_conditions.append(exp.LT(this=conv_time.copy(),
                                      expression=timestamp(shift(shift(resolved.end, item.window), day))))
    time_ref = resolved.time_dim
    return ConversionNode(name, item, base_model, base.ordered_joins(), dims, tuple(conditions), base_time,
                          conv_model, conv.ordered_joins(), tuple(conv_conditions), conv_time,
                          (time_ref.alias, time_ref.grain or "day") if time_ref else None)


def joins_to(joins: tuple[Edge, ...], target: str) -> tuple[Edge, ...]:
    """The chain of join steps from the source model to `target`."""
    by_target = {e.target: e for e in joins}
    chain = []
    while target in by_target:
        edge = by_target[target]
        chain.append(edge)
        target = edge.source
    return tuple(reversed(chain))


def _raw_time(scope: Scope, dim: DimensionInfo) -> exp.Expression:
    """Windows between events are measured on stored times, whatever the display zone."""
    scope.reach(dim.model)
    return _wrap(dim.expr.copy())


# --- affinity ------------------------------------------------------------------------------------


def _plan_affinity(catalog: Catalog, resolved: ResolvedQuery) -> AffinityNode:
    info = resolved.affinity
    bridge = catalog.models[info.bridge]
    scope = Scope(catalog, bridge, f"metric {info.definition.name}", resolved.time)
    groups, ante, cons = [], [], []
    for ref in resolved.dims:
        if ref.kind in ("antecedent", "consequent"):
            (ante if ref.kind == "antecedent" else cons).append((ref.alias, scope.group_expr(ref)))
            continue
        if ref.kind == "dimension":
            path = catalog.path(info.basket_model, ref.dimension.model) if ref.dimension.model != info.basket_model else ()
            if any(e.fanout for e in path):
                raise QueryError(
                    f"metric {info.definition.name}: '{ref.ref}' is a dimension of the items, not of the baskets",
                    hint=f"group pairs by antecedent.{ref.dimension.name} / consequent.{ref.dimension.name}, "
                         f"or by a dimension of {info.basket_model} and its entities")
        groups.append((ref.alias, scope.group_expr(ref)))
    if not ante or not cons:
        choices = sorted(d.name for d in catalog.models[info.item_model].dimensions.values())
        raise QueryError(
            f"metric {info.definition.name} is computed per pair of items: group by both "
            f"antecedent.<dimension> and consequent.<dimension>",
            hint="e.g. --by antecedent.product_name --by consequent.product_name; dimensions: " + ", ".join(choices))
    conditions = [scope.bind(info.filter.condition, filter_refs(catalog, info.filter))] if info.filter else []
    sides: dict[str, list[exp.Expression]] = {"antecedent": [], "consequent": []}
    for bound in resolved.where:
        condition = bound.parsed.condition
        for conjunct in condition.flatten() if isinstance(condition, exp.And) else [condition]:
            kinds = {bound.refs[column_ref(c)].kind for c in conjunct.find_all(exp.Column)}
            if {"antecedent", "consequent"} <= kinds:
                raise QueryError("a filter condition may not compare the antecedent with the consequent",
                                 hint="filter each side on its own, e.g. antecedent.category = 'Phones'")
            side = next((k for k in ("antecedent", "consequent") if k in kinds), None)
            (sides[side] if side else conditions).append(scope.bind(conjunct, bound.refs))
    conditions += scope.time_range(resolved.start, resolved.end)
    same = [_side_key(r) for r in resolved.dims if r.kind == "antecedent"] == \
           [_side_key(r) for r in resolved.dims if r.kind == "consequent"]
    return AffinityNode(info, bridge, scope.ordered_joins(), tuple(groups), tuple(ante), tuple(cons),
                        tuple(conditions), _all(sides["antecedent"]), _all(sides["consequent"]), same)


def _side_key(ref: DimRef):
    return (ref.dimension.ref, ref.grain)


def _all(conditions: list[exp.Expression]) -> exp.Expression | None:
    return exp.and_(*conditions) if conditions else None

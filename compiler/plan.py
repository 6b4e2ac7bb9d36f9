"""Plan pass: ResolvedQuery -> Plan.

Measures are grouped by the model they aggregate and the filters they carry; each group becomes
one AggregateNode that knows its join steps and whether any of them fans out (then the measure is
aggregated over distinct (primary key, dimensions) rows, so nothing is counted twice). Affinity
metrics become one AffinityNode over the basket-line model.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from .catalog import AffinityInfo, Catalog, DimensionInfo, Edge, ModelInfo
from .errors import QueryError
from .refs import METRIC_TIME, DimRef, time_expr
from .resolve import BoundFilter, MeasureInput, ResolvedQuery
from .sqlexpr import column_ref


@dataclass(frozen=True)
class AggregateNode:
    name: str
    model: ModelInfo
    measures: tuple[MeasureInput, ...]
    dims: tuple[tuple[str, exp.Expression], ...]  # (output alias, expression)
    conditions: tuple[exp.Expression, ...]
    joins: tuple[Edge, ...]  # in an order where each source is already joined
    fanout: bool


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
    nodes: tuple[AggregateNode, ...]
    affinity: AffinityNode | None


class Scope:
    """The join tree grown from one source model while binding references."""

    def __init__(self, catalog: Catalog, model: ModelInfo, context: str):
        self.catalog, self.model, self.context = catalog, model, context
        self.joins: dict[str, Edge] = {}

    def reach(self, target: str) -> tuple[Edge, ...]:
        try:
            path = self.catalog.path(self.model.name, target)
        except QueryError as error:
            raise QueryError(f"{self.context}: {error.message}", hint=error.hint) from None
        for edge in path:
            self.joins.setdefault(edge.target, edge)
        return path

    def dimension(self, dim: DimensionInfo, grain: str | None) -> exp.Expression:
        self.reach(dim.model)
        return _wrap(time_expr(dim, grain) if dim.type == "time" else dim.expr.copy())

    def time_dimension(self, ref: str) -> DimensionInfo:
        dim = self.model.default_time
        if dim is None:
            raise QueryError(f"{self.context}: '{ref}' needs a time axis, and model '{self.model.name}' has no default_time",
                             hint="group by one of its own time dimensions, or give the model a default_time")
        return dim

    def group_expr(self, ref: DimRef) -> exp.Expression:
        """A dimension as grouped by: time dimensions default to their day."""
        if ref.kind == METRIC_TIME:
            return self.dimension(self.time_dimension(ref.ref), ref.grain or "day")
        return self.dimension(ref.dimension, ref.grain or ("day" if ref.type == "time" else None))

    def filter_expr(self, ref: DimRef) -> exp.Expression:
        """A dimension as filtered on: time dimensions without a grain compare as stored."""
        if ref.kind == METRIC_TIME:
            return self.dimension(self.time_dimension(ref.ref), ref.grain)
        return self.dimension(ref.dimension, ref.grain)

    def bind(self, condition: exp.Expression, refs: dict[str, DimRef]) -> exp.Expression:
        def replace(node):
            if isinstance(node, exp.Column):
                return self.filter_expr(refs[column_ref(node)])
            return node
        return condition.transform(replace)

    def time_range(self, start: str | None, end: str | None) -> list[exp.Expression]:
        if start is None and end is None:
            return []
        column = self.filter_expr(DimRef(METRIC_TIME, METRIC_TIME, None, None))
        bounds = []
        if start is not None:
            bounds.append(exp.GTE(this=column, expression=_timestamp(start)))
        if end is not None:
            bounds.append(exp.LT(this=column.copy(), expression=_timestamp(end)))
        return bounds

    def ordered_joins(self) -> tuple[Edge, ...]:
        done, ordered = {self.model.name}, []
        pending = list(self.joins.values())
        while pending:
            edge = next(e for e in pending if e.source in done)
            pending.remove(edge)
            ordered.append(edge)
            done.add(edge.target)
        return tuple(ordered)


def _timestamp(value: str) -> exp.Expression:
    return exp.cast(exp.Literal.string(value), exp.DataType.Type.TIMESTAMP)


def _wrap(tree: exp.Expression) -> exp.Expression:
    return tree if isinstance(tree, (exp.Column, exp.Cast, exp.Func, exp.Paren, exp.Literal)) else exp.Paren(this=tree)


def plan(catalog: Catalog, resolved: ResolvedQuery) -> Plan:
    if resolved.affinity is not None:
        return Plan(resolved, (), _plan_affinity(catalog, resolved))
    groups: dict[tuple, list[MeasureInput]] = {}
    for item in resolved.inputs:
        groups.setdefault((item.measure.model, tuple(id(f) for f in item.filters)), []).append(item)
    nodes = tuple(_aggregate_node(catalog, resolved, f"q_{i}", items) for i, items in enumerate(groups.values()))
    return Plan(resolved, nodes, None)


def _aggregate_node(catalog: Catalog, resolved: ResolvedQuery, name: str, items: list[MeasureInput]) -> AggregateNode:
    model = catalog.models[items[0].measure.model]
    scope = Scope(catalog, model, _context(items, resolved))
    dims = tuple((ref.alias, scope.group_expr(ref)) for ref in resolved.dims)
    conditions = [scope.bind(f.condition, _refs(catalog, f)) for f in items[0].filters]
    conditions += [scope.bind(w.parsed.condition, w.refs) for w in resolved.where]
    conditions += scope.time_range(resolved.start, resolved.end)
    joins = scope.ordered_joins()
    fanout = any(edge.fanout for edge in joins)
    if fanout and model.primary is None:
        path = ", ".join(str(e) for e in joins if e.fanout)
        raise QueryError(
            f"{scope.context}: the join {path} has many rows per row of '{model.name}', "
            f"and '{model.name}' has no primary entity to count each of its rows once",
            hint=f"give '{model.name}' a primary entity, or group by dimensions reachable without fan-out")
    return AggregateNode(name, model, tuple(items), dims, tuple(conditions), joins, fanout)


def _refs(catalog: Catalog, parsed) -> dict[str, DimRef]:
    from .refs import parse_ref
    return {ref: parse_ref(catalog, ref) for ref in parsed.refs}


def _context(items: list[MeasureInput], resolved: ResolvedQuery) -> str:
    metrics = sorted({i.metric for i in items})
    asked = [d.ref for d in resolved.dims]
    return f"metric {', '.join(metrics)}" + (f" by {', '.join(asked)}" if asked else "")


# --- affinity ------------------------------------------------------------------------------------


def _plan_affinity(catalog: Catalog, resolved: ResolvedQuery) -> AffinityNode:
    info = resolved.affinity
    bridge = catalog.models[info.bridge]
    scope = Scope(catalog, bridge, f"metric {info.definition.name}")
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
    conditions = [scope.bind(info.filter.condition, _refs(catalog, info.filter))] if info.filter else []
    sides: dict[str, list[exp.Expression]] = {"antecedent": [], "consequent": []}
    for bound in resolved.where:
        for conjunct in bound.parsed.condition.flatten() if isinstance(bound.parsed.condition, exp.And) else [bound.parsed.condition]:
            kinds = {bound.refs[column_ref(c)].kind for c in conjunct.find_all(exp.Column)}
            if {"antecedent", "consequent"} <= kinds:
                raise QueryError("a filter condition may not compare the antecedent with the consequent",
                                 hint="filter each side on its own, e.g. antecedent.category = 'Phones'")
            side = next((k for k in ("antecedent", "consequent") if k in kinds), None)
            bound_expr = scope.bind(conjunct, bound.refs)
            (sides[side] if side else conditions).append(bound_expr)
    conditions += scope.time_range(resolved.start, resolved.end)
    same = [_side_key(r) for r in resolved.dims if r.kind == "antecedent"] == \
           [_side_key(r) for r in resolved.dims if r.kind == "consequent"]
    return AffinityNode(info, bridge, scope.ordered_joins(), tuple(groups), tuple(ante), tuple(cons),
                        tuple(conditions), _all(sides["antecedent"]), _all(sides["consequent"]), same)


def _side_key(ref: DimRef):
    return (ref.dimension.ref, ref.grain)


def _all(conditions: list[exp.Expression]) -> exp.Expression | None:
    return exp.and_(*conditions) if conditions else None

"""AggregateNode -> SELECT: a measure source joined to its dimensions, filtered and aggregated.

Without fan-out, a plain grouped SELECT. With fan-out, the distinct (primary key, dimensions)
rows are computed first and the source joined to them, so every source row counts once per group.
Entity-level measures aggregate per entity first; semi-additive ones keep each period's last rows.
"""

from __future__ import annotations

from sqlglot import exp

from ..catalog import Catalog
from ..plan import AggregateNode
from .build import alias, col, join, select, subquery
from .joins import joins_for
from .labels import LabelJoin, label_join
from .pushdown import pushdown

KEY = "_canon_key"
KEYS = "_canon_keys"
GROUPED = "_canon_grouped"
ENTITY = "_canon_entity"


def agg_expr(agg: str, expr: exp.Expression | None, percentile: float | None = None) -> exp.Expression:
    if agg == "sum":
        return exp.Sum(this=expr)
    if agg == "count":
        return exp.Count(this=expr if expr is not None else exp.Star())
    if agg == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[expr]))
    if agg == "avg":
        return exp.Avg(this=expr)
    if agg == "min":
        return exp.Min(this=expr)
    if agg == "max":
        return exp.Max(this=expr)
    if agg == "median":  # on DOUBLE: DuckDB keeps a DECIMAL input's scale and cuts 1.505 to 1.50
        return exp.Median(this=exp.cast(expr, exp.DataType.Type.DOUBLE))
    if agg == "percentile":
        return exp.WithinGroup(this=exp.PercentileCont(this=exp.Literal.number(percentile)),
                               expression=exp.Order(expressions=[exp.Ordered(this=exp.cast(expr, exp.DataType.Type.DOUBLE))]))
    raise AssertionError(f"unhandled aggregation {agg}")


def aggregate(measure) -> exp.Expression:
    expr = measure.expr.copy() if measure.expr is not None else None
    return agg_expr(measure.agg, expr, measure.definition.percentile)


def _values(aggregates: dict[str, exp.Expression], outputs) -> list[exp.Expression]:
    """Measure columns, or (with `outputs`) the metrics computed over them in the same SELECT."""
    if outputs is None:
        return [alias(agg, name) for name, agg in aggregates.items()]
    return [alias(expr.transform(lambda n: aggregates[n.name].copy() if isinstance(n, exp.Column) else n), name)
            for name, expr in outputs]


def render_aggregate(catalog: Catalog, node: AggregateNode, outputs=None, **finish) -> exp.Select:
    if node.measures[0].measure.per is not None:
        return _render_per_entity(catalog, node, outputs, **finish)
    if node.edge is not None:
        return _render_semi_additive(catalog, node, outputs, **finish)
    labelled = None if node.fanout else label_join(catalog, node.model, node.joins, node.dims, node.conditions)
    if labelled is not None:
        return _render_labelled(catalog, node, labelled, outputs, **finish)
    values = _values({i.alias: aggregate(i.measure) for i in node.measures}, outputs)
    narrowed = None if node.fanout else pushdown(catalog, node)
    if narrowed is not None:
        dims = [(a, narrowed.dims.get(a, e)) for a, e in node.dims]
        return select(
            [alias(e.copy(), a) for a, e in dims] + values,
            node.model.source.copy(),
            joins=joins_for(catalog, node.joins, node.conditions, narrowed.sources),
            where=[c.copy() for c in node.conditions if not any(c is m for m in narrowed.moved)],
            group=[e.copy() for _, e in dims],
            **finish,
        )
    if not node.fanout:
        return select(
            [alias(e.copy(), a) for a, e in node.dims] + values,
            node.model.source.copy(),
            joins=joins_for(catalog, node.joins, node.conditions),
            where=[c.copy() for c in node.conditions],
            group=[e.copy() for _, e in node.dims],
            **finish,
        )
    # fan-out: aggregate over the distinct (key, dims) rows
    key_expr = node.model.primary.expr
    keys = select(
        [alias(key_expr.copy(), KEY)] + [alias(e.copy(), a) for a, e in node.dims],
        node.model.source.copy(),
        joins=joins_for(catalog, node.joins, node.conditions),
        where=[c.copy() for c in node.conditions],
        distinct=True,
    )
    return select(
        [alias(col(a, KEYS), a) for a, _ in node.dims] + values,
        node.model.source.copy(),
        joins=[join(subquery(keys, KEYS), exp.EQ(this=key_expr.copy(), expression=col(KEY, KEYS)), side="INNER")],
        group=[col(a, KEYS) for a, _ in node.dims],
        **finish,
    )


def _render_labelled(catalog: Catalog, node: AggregateNode, labelled: LabelJoin, outputs, **finish) -> exp.Select:
    """Group by the labels' key without their join, then join the labels' model to the groups."""
    others = [(a, e) for a, e in node.dims if a not in labelled.labels]
    grouped = select(
        [alias(e.copy(), a) for a, e in others] + [alias(labelled.key.copy(), KEY)]
        + [alias(aggregate(i.measure), i.alias) for i in node.measures],
        node.model.source.copy(),
        joins=joins_for(catalog, [e for e in node.joins if e is not labelled.edge], node.conditions),
        where=[c.copy() for c in node.conditions],
        group=[e.copy() for _, e in others] + [labelled.key.copy()],
    )
    target = catalog.models[labelled.edge.target]
    on = exp.EQ(this=target.entities[labelled.edge.entity].expr.copy(), expression=col(KEY, GROUPED))
    return select(
        [alias(e.copy() if a in labelled.labels else col(a, GROUPED), a) for a, e in node.dims]
        + _values({i.alias: col(i.alias, GROUPED) for i in node.measures}, outputs),
        subquery(grouped, GROUPED),
        joins=[join(target.source.copy(), on, side="INNER")],
        **finish,
    )


def _render_per_entity(catalog: Catalog, node: AggregateNode, outputs, **finish) -> exp.Select:
    """First `per.agg(per.expr)` per entity (and group), then the measure's agg over those values."""
    per = node.measures[0].measure.per
    inner_values = [alias(agg_expr(i.measure.per.agg, i.measure.per.expr.copy() if i.measure.per.expr else None),
                          f"_v_{i.alias}") for i in node.measures]
    inner = select(
        [alias(e.copy(), a) for a, e in node.dims] + [alias(per.key.copy(), ENTITY)] + inner_values,
        node.model.source.copy(),
        joins=joins_for(catalog, node.joins, node.conditions),
        where=[c.copy() for c in node.conditions],
        group=[e.copy() for _, e in node.dims] + [per.key.copy()],
    )
    aggregates = {}
    for i in node.measures:
        value = i.measure.expr.transform(lambda n: col(f"_v_{i.alias}") if isinstance(n, exp.Column) else n)
        aggregates[i.alias] = agg_expr(i.measure.agg, value, i.measure.definition.percentile)
    return select([alias(col(a), a) for a, _ in node.dims] + _values(aggregates, outputs),
                  subquery(inner, "_canon_per_entity"), group=[col(a) for a, _ in node.dims], **finish)


def _render_semi_additive(catalog: Catalog, node: AggregateNode, outputs, **finish) -> exp.Select:
    """Keep the rows at the last (or first) time of each period (per grouping entity), then aggregate."""
    row_time, period = node.edge
    semi = node.measures[0].measure.non_additive
    partition = ([period.copy()] if period is not None else []) + [g.copy() for g in semi.groupings]
    edge_fn = exp.Max if semi.window == "last" else exp.Min
    edge = exp.Window(this=edge_fn(this=row_time.copy()), partition_by=partition)
    rows = select(
        [alias(e.copy(), a) for a, e in node.dims]
        + [alias(i.measure.expr.copy(), f"_m_{i.alias}") for i in node.measures if i.measure.expr is not None]
        + [alias(row_time.copy(), "_canon_t"), alias(edge, "_canon_edge")],
        node.model.source.copy(),
        joins=joins_for(catalog, node.joins, node.conditions),
        where=[c.copy() for c in node.conditions],
    )
    aggregates = {i.alias: agg_expr(i.measure.agg, col(f"_m_{i.alias}") if i.measure.expr is not None else None,
                                    i.measure.definition.percentile) for i in node.measures}
    return select([alias(col(a), a) for a, _ in node.dims] + _values(aggregates, outputs),
                  subquery(rows, "_canon_rows"),
                  where=[exp.EQ(this=col("_canon_t"), expression=col("_canon_edge"))],
                  group=[col(a) for a, _ in node.dims], **finish)

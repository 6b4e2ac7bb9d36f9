"""AggregateNode -> SELECT: a measure source joined to its dimensions, filtered and aggregated.

Without fan-out, a plain grouped SELECT. With fan-out, the distinct (primary key, dimensions)
rows are computed first and the source joined to them, so every source row counts once per group.
"""

from __future__ import annotations

from sqlglot import exp

from ..catalog import Catalog, Edge
from ..plan import AggregateNode
from .build import alias, col, join, select, subquery

KEY = "_canon_key"
KEYS = "_canon_keys"


def join_condition(catalog: Catalog, edge: Edge) -> exp.Expression:
    left = catalog.models[edge.source].entities[edge.entity].expr.copy()
    right = catalog.models[edge.target].entities[edge.entity].expr.copy()
    return exp.EQ(this=left, expression=right)


def joins_for(catalog: Catalog, edges) -> list[exp.Join]:
    return [join(catalog.models[e.target].source.copy(), join_condition(catalog, e)) for e in edges]


def aggregate(measure) -> exp.Expression:
    expr = measure.expr.copy() if measure.expr is not None else None
    agg = measure.agg
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
    if agg == "median":
        return exp.Median(this=expr)
    if agg == "percentile":
        return exp.WithinGroup(
            this=exp.PercentileCont(this=exp.Literal.number(measure.definition.percentile)),
            expression=exp.Order(expressions=[exp.Ordered(this=expr)]))
    raise AssertionError(f"unhandled aggregation {agg}")


def render_aggregate(catalog: Catalog, node: AggregateNode, outputs=None, **finish) -> exp.Select:
    """The node's SELECT. With `outputs` (name -> expression over measure aliases), the metrics are
    computed in this same SELECT, over the aggregates; otherwise each measure is one column."""
    aggregates = {i.alias: aggregate(i.measure) for i in node.measures}
    if outputs is None:
        values = [alias(agg, name) for name, agg in aggregates.items()]
    else:
        values = [alias(expr.transform(lambda n: aggregates[n.name].copy() if isinstance(n, exp.Column) else n), name)
                  for name, expr in outputs]
    if not node.fanout:
        dims = [e.copy() for _, e in node.dims]
        return select(
            [alias(d, a) for d, (a, _) in zip(dims, node.dims)] + values,
            node.model.source.copy(),
            joins=joins_for(catalog, node.joins),
            where=[c.copy() for c in node.conditions],
            group=[e.copy() for _, e in node.dims],
            **finish,
        )
    # fan-out: aggregate over the distinct (key, dims) rows
    key_expr = node.model.primary.expr
    keys = select(
        [alias(key_expr.copy(), KEY)] + [alias(e.copy(), a) for a, e in node.dims],
        node.model.source.copy(),
        joins=joins_for(catalog, node.joins),
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

"""Plan -> the final SELECT.

One measure source: a single grouped SELECT computing the metrics over its aggregates. Several
(revenue and ad spend by month): one CTE per source, combined over the union of their dimension
values with NULL-safe equality, so a group present in one source only is kept.
"""

from __future__ import annotations

from sqlglot import exp

from ..catalog import Catalog
from ..plan import Plan
from .affinity import render_affinity
from .aggregate import render_aggregate
from .build import alias, col, join, null_safe_equal, select, table

SPINE = "_canon_groups"


def render_plan(catalog: Catalog, plan: Plan) -> exp.Select:
    resolved = plan.resolved
    finish = _finish(resolved)
    if plan.affinity is not None:
        return render_affinity(catalog, plan.affinity, resolved, **finish)
    if len(plan.nodes) == 1:
        return render_aggregate(catalog, plan.nodes[0], resolved.outputs, **finish)
    return _combine(catalog, plan, finish)


def _combine(catalog: Catalog, plan: Plan, finish: dict) -> exp.Select:
    resolved, nodes = plan.resolved, plan.nodes
    dim_aliases = [d.alias for d in resolved.dims]
    home = {i.alias: node.name for node in nodes for i in node.measures}
    ctes = [(node.name, render_aggregate(catalog, node)) for node in nodes]
    if dim_aliases:
        spine = exp.union(*(select([col(a) for a in dim_aliases], table(node.name)) for node in nodes),
                          distinct=True, copy=False)
        ctes.append((SPINE, spine))
        base = SPINE
        joins = [join(table(node.name), null_safe_equal([col(a, SPINE) for a in dim_aliases],
                                                         [col(a, node.name) for a in dim_aliases]))
                 for node in nodes]
    else:  # one row per source: cross join them
        base = nodes[0].name
        joins = [join(table(node.name)) for node in nodes[1:]]
    values = [alias(col(a, base), a) for a in dim_aliases]
    for name, expr in resolved.outputs:
        bound = expr.transform(lambda n: col(n.name, home[n.name]) if isinstance(n, exp.Column) else n)
        values.append(alias(bound, name))
    return select(values, table(base), joins=joins, ctes=ctes, **finish)


def _finish(resolved) -> dict:
    request = resolved.request
    order = resolved.order or tuple((d.alias, False) for d in resolved.dims)
    return {
        "order": [exp.Ordered(this=col(a), desc=desc, nulls_first=False) for a, desc in order],
        "limit": request.limit,
        "offset": request.offset,
    }

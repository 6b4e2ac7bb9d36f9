"""Narrow a joined model before the join: its filters and its grouped expressions computed on its own rows.

`revenue by metric_time.month` over order lines joined to completed orders may join the lines to
`(SELECT order_id, <month of ordered_at> AS month FROM orders WHERE status = 'completed')` and group
by that column, instead of truncating the time of every joined line. The rows are the same when the
joined model is a leaf step straight from the measure's model, its join is INNER anyway (a
null-rejecting condition or a declared relationship, render/joins.py), and every condition and
grouped expression that reads it reads only it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from ..catalog import Catalog
from .build import alias, col, select, subquery
from .joins import always_matches, null_rejected


@dataclass(frozen=True)
class Pushdown:
    sources: dict[str, exp.Expression]  # model -> its narrowed rows, under the model's alias
    dims: dict[str, exp.Expression]  # dimension alias -> the column that replaces its expression
    moved: tuple[exp.Expression, ...]  # the conditions now inside a narrowed source


def pushdown(catalog: Catalog, node) -> Pushdown | None:
    sources, dims, moved = {}, {}, []
    targets = {e.source for e in node.joins}
    leaves = [e for e in node.joins if e.source == node.model.name and e.target not in targets and not e.fanout
              and not e.routed]
    if not leaves:
        return None
    rejected = null_rejected(node.conditions)
    dim_tables = [(a, e, _tables(e)) for a, e in node.dims]
    condition_tables = [(c, _tables(c)) for c in node.conditions]
    for edge in leaves:
        target = edge.target
        key = catalog.models[target].entities[edge.entity].expr
        reads = [(a, e) for a, e, t in dim_tables if target in t]
        conditions = [c for c, t in condition_tables if target in t]
        inner = target in rejected or always_matches(catalog, edge)
        if not inner or not isinstance(key, exp.Column) or any(
                t != {target} for t in [t for _, _, t in dim_tables] + [t for _, t in condition_tables] if target in t):
            continue
        if not conditions and all(isinstance(e, exp.Column) for _, e in reads):
            continue  # nothing to narrow nor to compute beforehand
        if any(a == key.name for a, _ in reads):
            continue
        # the plan's expressions are this request's own and end up only here: no copies
        rows = select([exp.Alias(this=key.copy(), alias=key.this.copy())] + [alias(e, a) for a, e in reads],
                      catalog.models[target].source.copy(), where=conditions)
        sources[target] = subquery(rows, target)
        dims.update({a: col(a, target) for a, _ in reads})
        moved += conditions
    return Pushdown(sources, dims, tuple(moved)) if sources else None


def _tables(tree: exp.Expression) -> set[str]:
    return {c.table for c in tree.find_all(exp.Column)}

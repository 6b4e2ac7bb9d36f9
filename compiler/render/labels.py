"""Group by a key, attach its labels after.

`revenue by product.product_name` may group the line rows by `order_item.product_id` and join the
129 products to the grouped rows, instead of joining every line to its product and grouping by a
string. The rows are the same when
- the product join is a leaf step straight from the measure's model that always matches (declared by
  `not_null` + `relationships` tests, render/joins.py) and nothing but the grouped labels reads it;
- one grouped label is declared `unique` and `not_null` on the product model: then the product
  rows and the label values pair one to one, and every other label of the product follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from ..catalog import Catalog, Edge, ModelInfo, alias_id
from .joins import always_matches


@dataclass(frozen=True)
class LabelJoin:
    edge: Edge  # the step to the labels' model, left out of the grouped scan
    key: exp.Expression  # the measure model's key column for that step
    labels: frozenset[str]  # the dimension aliases read from the labels' model


def label_join(catalog: Catalog, model: ModelInfo, joins, dims, conditions) -> LabelJoin | None:
    """The one join whose labels can be attached after grouping, if any. `dims`: (alias, expression)."""
    sources = {e.source for e in joins}
    leaves = [e for e in joins if e.source == model.name and e.target not in sources and not e.fanout and not e.routed]
    if not leaves:
        return None
    dim_tables = [(a, _tables(e)) for a, e in dims]
    read = set().union(*(_tables(c) for c in conditions))
    for edge in leaves:
        target = catalog.models[edge.target]
        labels = {a for a, t in dim_tables if t == {edge.target}}
        if not labels or any(edge.target in t for a, t in dim_tables if a not in labels) or edge.target in read:
            continue
        if not all(isinstance(e, exp.Column) for a, e in dims if a in labels):
            continue
        names = {e.name for a, e in dims if a in labels}
        if not any(_unique_not_null(target, name) for name in names) or not always_matches(catalog, edge):
            continue
        return LabelJoin(edge, model.entities[edge.entity].expr, frozenset(labels))
    return None


def requalify(tree: exp.Expression, model: str, table_alias: str) -> exp.Expression:
    """`tree` reading `model`'s columns from `table_alias` instead."""
    return tree.transform(lambda n: exp.column(n.this.copy(), table=alias_id(table_alias))
                          if isinstance(n, exp.Column) and n.table == model else n)


def aliased(source: exp.Expression, table_alias: str) -> exp.Expression:
    """A model's source (table or subquery) under another alias, to join it twice."""
    source = source.copy()
    source.set("alias", exp.TableAlias(this=alias_id(table_alias)))
    return source


def _tables(tree: exp.Expression) -> set[str]:
    return {c.table for c in tree.find_all(exp.Column)}


def _unique_not_null(model: ModelInfo, column: str) -> bool:
    tests = [t for t in model.definition.tests if t.severity == "error"]
    return (any(t.type == "unique" and tuple(t.columns) == (column,) for t in tests)
            and any(t.type == "not_null" and t.column == column for t in tests))

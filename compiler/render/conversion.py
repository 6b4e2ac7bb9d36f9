"""ConversionNode -> CTEs: base events, conversion events, the base events that converted, counts.

A base event (a lead) converts when a conversion event (a meeting, an order) of the same entity
happens at or after it and within the window; each base event counts once, however many
conversion events follow it.
"""

from __future__ import annotations

from sqlglot import exp

from ..calendar import add
from ..catalog import Catalog
from ..plan import ConversionNode
from .joins import joins_for
from .build import alias, col, join, select, table

ID, ENTITY, TIME = "_canon_id", "_canon_entity", "_canon_time"


def render_conversion(catalog: Catalog, node: ConversionNode) -> list[tuple[str, exp.Expression]]:
    item = node.input
    base_name, events_name, converted_name = f"{node.name}_base", f"{node.name}_events", f"{node.name}_converted"
    base = select(
        [alias(node.base.primary.expr.copy(), ID), alias(node.base.entities[item.entity].expr.copy(), ENTITY),
         alias(node.base_time.copy(), TIME)] + [alias(e.copy(), a) for a, e in node.dims],
        node.base.source.copy(), joins=joins_for(catalog, node.base_joins, node.base_conditions),
        where=[c.copy() for c in node.base_conditions])
    events = select(
        [alias(node.conversion.entities[item.entity].expr.copy(), ENTITY), alias(node.conversion_time.copy(), TIME)],
        node.conversion.source.copy(), joins=joins_for(catalog, node.conversion_joins, node.conversion_conditions),
        where=[c.copy() for c in node.conversion_conditions])
    within = exp.and_(
        exp.EQ(this=col(ENTITY, "b"), expression=col(ENTITY, "c")),
        exp.GTE(this=col(TIME, "c"), expression=col(TIME, "b")),
        exp.LTE(this=col(TIME, "c"), expression=add(col(TIME, "b"), item.window.count, item.window.unit)),
    )
    converted = select([col(ID, "b")], table(base_name, "b"),
                       joins=[join(table(events_name, "c"), within, side="INNER")], distinct=True)
    dims = [a for a, _ in node.dims]
    result = select(
        [alias(col(a, "b"), a) for a in dims]
        + [alias(exp.Count(this=exp.Distinct(expressions=[col(ID, "b")])), item.base_alias),
           alias(exp.Count(this=exp.Distinct(expressions=[col(ID, "v")])), item.conversion_alias)],
        table(base_name, "b"),
        joins=[join(table(converted_name, "v"), exp.EQ(this=col(ID, "b"), expression=col(ID, "v")))],
        group=[col(a, "b") for a in dims])
    return [(base_name, base), (events_name, events), (converted_name, converted), (node.name, result)]

"""Slowly changing dimensions (type II): a model whose rows are valid over time ranges.

    semantic_model:
      name: customer_history
      table: customer_segment_history
      validity: {from: valid_from, to: valid_to}    # valid_from <= t < valid_to; NULL valid_to: still valid
      entities:
        - {name: customer_history, type: primary, expr: history_id}
        - {name: customer, type: unique, expr: customer_id}   # unique at any point in time

A query whose rows reach such a model joins each row to the version valid at the row's own time: the
time of the metric's measure (its model's `default_time`, the time metric_time is built on), so
`revenue by customer_history.segment` credits each order to the segment the customer had when the
order was placed. The time test sits in the join's ON clause: a row with no valid version keeps its
measure and groups under NULL, as any unmatched LEFT join does. The stored (UTC) times are compared,
whatever the request's time zone.
"""

from __future__ import annotations

from sqlglot import exp

from .catalog import Catalog, Edge, alias_id
from .errors import QueryError


def as_of(scope, edge: Edge, source: str | None = None, target: str | None = None) -> Edge:
    """`edge` itself, or (into a model with validity ranges) a step that matches the version valid at
    the scope's row time. `source`/`target`: the aliases of a named path's step (compiler/roles.py)."""
    from .roles import RoleEdge

    model = scope.catalog.models[edge.target]
    if getattr(model.definition, "validity", None) is None:  # catalogs pickled before `validity` existed
        return edge if source is None else RoleEdge(source, target, edge.entity, edge.fanout, base=edge)
    return RoleEdge(source or edge.source, target or edge.target, edge.entity, edge.fanout, base=edge,
                    at=row_time(scope, model.name))


def row_time(scope, history: str) -> exp.Expression:
    time = scope.model.default_time
    if time is None:
        raise QueryError(f"{scope.context}: '{history}' keeps a history of versions (validity), and the rows of "
                         f"'{scope.model.name}' have no time to pick one by",
                         hint=f"give '{scope.model.name}' a default_time, or group by dimensions of another model")
    if time.model != scope.model.name:
        scope.reach(time.model)
    return time.expr.copy()


def valid_at(catalog: Catalog, model: str, alias: str, at: exp.Expression) -> exp.Expression:
    """`alias.from <= at AND (alias.to IS NULL OR at < alias.to)`."""
    validity = catalog.models[model].definition.validity
    start = exp.Column(this=exp.to_identifier(validity.valid_from), table=alias_id(alias))
    end = exp.Column(this=exp.to_identifier(validity.valid_to), table=alias_id(alias))
    open_ended = exp.Is(this=end, expression=exp.Null())
    return exp.And(this=exp.LTE(this=start, expression=at.copy()),
                   expression=exp.Paren(this=exp.Or(this=open_ended,
                                                    expression=exp.LT(this=at.copy(), expression=end.copy()))))

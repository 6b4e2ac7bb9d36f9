"""Dimension-only requests: the combinations of dimension values that occur in the data.

A request without metrics (Cube's dimension-only query, MetricFlow's `--group-by` alone) lists the
distinct combinations of its dimensions, narrowed by its filters. They are read from one model, the
*base*: a referenced model from which every other referenced model is reached along many-to-one
joins, so each base row holds one real combination (a customer's country with the customer's
segment), or else the single other model that reaches them all (order lines pair an order's status
with a product's category). When several facts could relate the models (orders and leads both
reach customers and channels), which one counts is a metric's choice: the request is refused with
a hint to name a metric.

`ungrouped` (Cube's raw-rows query) keeps one output row per base row instead of the distinct
combinations. metric_time, time ranges and HAVING need a metric; they are refused with the way out.
"""

from __future__ import annotations

from sqlglot import exp

from .catalog import Catalog
from .errors import QueryError
from .plan import Scope
from .refs import DimRef, parse_ref
from .render.build import alias, col, select
from .render.joins import joins_for
from .request import QueryRequest
from .resolve import BoundFilter, _bind_filter, _check_limit, _no_duplicates, _order_item, time_context


def is_listing(request: QueryRequest) -> bool:
    if request.ungrouped and request.metrics:
        raise QueryError("ungrouped lists rows of dimensions, and metrics are aggregates",
                         hint="leave the metrics out of an ungrouped request, or drop ungrouped")
    return not request.metrics and bool(request.dimensions)


def listing_query(catalog: Catalog, request: QueryRequest) -> tuple[exp.Select, list[tuple[str, str]]]:
    """The SELECT of a dimension-only request and its (name as requested, type) columns."""
    _refuse_metric_parts(request)
    _no_duplicates(request.dimensions, "dimension")
    dims = tuple(parse_ref(catalog, ref) for ref in request.dimensions)
    where = tuple(_bind_filter(catalog, text, i, None) for i, text in enumerate(request.where))
    for ref in [*dims, *(r for f in where for r in f.refs.values())]:
        if ref.dimension is None:  # metric_time (and its date parts), cohort periods, affinity sides
            raise QueryError(f"'{ref.ref}' is defined by a metric, and the request names no metric",
                             hint="use a model's own dimension (e.g. order.ordered_at.month), or add a metric")
    _check_limit(request)
    aliases = {d.ref: d.alias for d in dims}
    order = tuple(_order_item(item, aliases) for item in request.order)
    time = time_context(catalog, request)
    scope = Scope(catalog, catalog.models[_base(catalog, dims, where)], "dimension-only request", time)
    values = [alias(scope.group_expr(d), d.alias) for d in dims]
    conditions = [scope.bind(f.parsed.condition, f.refs) for f in where]
    named = {a for a, _ in order}
    ordered = order + tuple((d.alias, False) for d in dims if d.alias not in named)
    tree = select(values, scope.model.source.copy(), joins=joins_for(catalog, scope.ordered_joins(), conditions),
                  where=conditions, group=[] if request.ungrouped else [exp.Literal.number(i + 1) for i in range(len(values))],
                  order=[exp.Ordered(this=col(a), desc=desc, nulls_first=False) for a, desc in ordered],
                  limit=request.limit, offset=request.offset)
    return tree, [(d.ref, d.type) for d in dims]


def _refuse_metric_parts(request: QueryRequest) -> None:
    needs = [name for name, given in (("having", request.having), ("time_range", request.time_range),
                                      ("start", request.start), ("end", request.end)) if given]
    if needs:
        raise QueryError(f"{needs[0]} applies to metric values or metric_time, and the request names no metric",
                         hint="add a metric, or filter a model's own time dimension in `where`")


def _base(catalog: Catalog, dims: tuple[DimRef, ...], where: tuple[BoundFilter, ...]) -> str:
    """The first referenced model that reaches every other one without fan-out; else the one other
    model that does (a bridge such as order lines pairs an order's status with a product's category)."""
    models = list(dict.fromkeys([d.dimension.model for d in dims]
                                + [r.dimension.model for f in where for r in f.refs.values()]))
    for base in models:
        if all(_reaches(catalog, base, other) for other in models):
            return base
    bridges = [name for name in catalog.models
               if name not in models and all(_reaches(catalog, name, other) for other in models)]
    if len(bridges) == 1:
        return bridges[0]
    which = (f"models {', '.join(sorted(bridges))} each relate them, differently" if bridges
             else "no model relates them along many-to-one joins")
    raise QueryError(f"the combinations of {', '.join(models)} depend on which facts relate them: {which}",
                     hint="add a metric: its facts say which combinations count")


def _reaches(catalog: Catalog, source: str, target: str) -> bool:
    if source == target:
        return True
    try:
        return not any(edge.fanout for edge in catalog.path(source, target))
    except QueryError:
        return False

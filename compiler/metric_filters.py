"""Filters on another metric: `metric(order_count, by=customer) >= 3` in a request's `where`.

"Buyers by segment among customers with 3 or more orders". The condition is evaluated per entity
(here: customer) on the metric aggregated at that entity's grain, and keeps the query's rows whose
entity key passes:

    <the row's customer key> IN (SELECT _canon_mf_key FROM (order_count by customer key) AS _canon_mf
                                 WHERE _canon_mf.order_count >= 3)

The inner metric is computed over all of its rows: the query's other filters and its time range do
not apply to it (the metric's own definition filter does). An entity without any row in the inner
metric reads the metric's `fill_nulls_with` value, else NULL, exactly as a LEFT JOIN would give it;
when the condition may be TRUE for that value, `OR NOT EXISTS (...)` keeps those entities too.

Accepted spellings (parsed by sqlexpr.check_filter, which calls `recognize`):
    metric(order_count, by=customer)       metric('order_count', customer)
    Metric('order_count', group_by=['customer'])   {{ Metric('order_count', group_by=['customer']) }}
The last two are MetricFlow's; one entity per metric.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from .errors import FilterError, Location, QueryError, UnknownNameError, did_you_mean

KEY = "_canon_mf_key"  # not "_canon_key": the fan-out renderer (render/aggregate.py) uses that one
INNER = "_canon_mf"
SYNTAX = "write metric(<metric>, by=<entity>) compared with a value, e.g. metric(order_count, by=customer) >= 3"


class MetricRef(exp.Expression, exp.Func):
    """A metric's value per entity, inside a filter: `this` the metric, `entity` the entity (identifiers)."""

    arg_types = {"this": True, "entity": True}
    _sql_names = ["METRIC"]

    @property
    def metric(self) -> str:
        return self.this.name

    @property
    def entity(self) -> str:
        return self.args["entity"].name


# --- syntax ------------------------------------------------------------------------------------


def recognize(tree: exp.Expression, field: str) -> exp.Expression:
    """`metric(...)` calls (and MetricFlow's `{{ Metric(...) }}`) -> MetricRef nodes; the rest untouched."""
    if not any(_is_call(node) for node in tree.walk()):
        return tree

    def convert(node):
        inner = _jinja_call(node)
        if inner is not None:
            return _metric_ref(inner, field)
        return _metric_ref(node, field) if _is_call(node) else node
    return tree.transform(convert, copy=False)


def _is_call(node) -> bool:
    return isinstance(node, exp.Anonymous) and str(node.this).lower() == "metric"


def _jinja_call(node):
    """`{{ X }}` parses as a struct holding a struct holding X."""
    if isinstance(node, exp.Struct) and len(node.expressions) == 1:
        middle = node.expressions[0]
        if isinstance(middle, exp.Struct) and len(middle.expressions) == 1 and _is_call(middle.expressions[0]):
            return middle.expressions[0]
    return None


def _metric_ref(call: exp.Anonymous, field: str) -> MetricRef:
    args = list(call.expressions)
    if len(args) != 2:
        raise FilterError(f"metric(...) takes a metric and an entity, got {len(args)} argument(s)",
                          location=Location(path=field), hint=SYNTAX)
    name = _name(args[0], field, "metric")
    entity = args[1]
    if isinstance(entity, (exp.EQ, exp.Kwarg)):
        keyword = entity.this.name.lower() if isinstance(entity.this, (exp.Column, exp.Var, exp.Identifier)) else ""
        if keyword not in ("by", "group_by"):
            raise FilterError(f"metric({name}, ...): unknown argument {entity.this.sql()!r}",
                              location=Location(path=field), hint=SYNTAX)
        entity = entity.expression
    if isinstance(entity, exp.Array):
        if len(entity.expressions) != 1:
            raise FilterError(f"metric({name}, ...): group by exactly one entity", location=Location(path=field),
                              hint="the metric is computed per entity, e.g. group_by=['customer']")
        entity = entity.expressions[0]
    return MetricRef(this=exp.to_identifier(name), entity=exp.to_identifier(_name(entity, field, "entity")))


def _name(node, field: str, what: str) -> str:
    if isinstance(node, exp.Column) and not node.table:
        return node.name
    if isinstance(node, exp.Literal) and node.is_string and node.this:
        return node.this
    raise FilterError(f"metric(...): {node.sql()[:60]!r} is not a {what} name", location=Location(path=field),
                      hint=SYNTAX)


def check_refs(catalog, condition: exp.Expression) -> None:
    """Unknown metrics and entities, found when the request is resolved (reachability: when planned)."""
    for ref in condition.find_all(MetricRef):
        if ref.metric not in catalog.metrics:
            raise UnknownNameError(f"where: metric({ref.metric}, by={ref.entity}): unknown metric '{ref.metric}'",
                                   hint=did_you_mean(ref.metric, catalog.metrics))
        if ref.metric in catalog.affinities:
            raise QueryError(f"where: metric({ref.metric}, ...): an affinity metric has a value per product "
                             "pair, not per entity", hint="filter on a simple, ratio or derived metric")
        if ref.entity not in catalog.entity_owner:
            raise UnknownNameError(f"where: metric({ref.metric}, by={ref.entity}): unknown entity '{ref.entity}'",
                                   hint=did_you_mean(ref.entity, catalog.entity_owner)
                                   + f" (entities: {', '.join(sorted(catalog.entity_owner))})")


def in_definition(parsed) -> None:
    """Definitions (metric and segment filters) may not filter on metrics: a metric would depend on
    itself through another, and every query of it would hide a second aggregation."""
    found = parsed.condition.find(MetricRef)
    if found is not None:
        raise FilterError(f"{found.sql()} filters on a metric, which only a query's where may do",
                          hint="define a dimension for it, or filter in the query")


# --- binding (plan pass) -------------------------------------------------------------------------


def bind(scope, condition: exp.Expression, plain) -> exp.Expression:
    """Each AND-ed condition that names metric(...) becomes a semi-join on the entity key; `plain`
    binds the others (dimension references)."""
    from .render.build import and_all

    condition = condition.unnest()
    parts = list(condition.flatten()) if isinstance(condition, exp.And) else [condition]
    return and_all([_semi_join(scope, part) if part.find(MetricRef) else plain(part) for part in parts])


def _semi_join(scope, condition: exp.Expression) -> exp.Expression:
    from .render.build import col, select, subquery

    catalog = scope.catalog
    text = condition.sql("duckdb")
    refs = list(condition.find_all(MetricRef))
    entities = {r.entity for r in refs}
    if len(entities) > 1:
        raise QueryError(f"where: {text!r} compares metrics of different entities ({', '.join(sorted(entities))})",
                         hint="write one condition per entity, joined with AND")
    if condition.find(exp.Column) is not None:
        raise QueryError(f"where: {text!r} mixes metric(...) with dimensions in one condition",
                         hint="write the metric condition on its own, joined to the others with AND")
    if isinstance(condition.unnest(), MetricRef):
        raise QueryError(f"where: {text!r} is a metric's value, not a condition", hint=SYNTAX)
    entity = entities.pop()
    names = list(dict.fromkeys(r.metric for r in refs))
    outer_key = _outer_key(scope, entity, names)
    values = _inner(catalog, names, entity)

    def value_of(node):
        return col(node.metric, INNER) if isinstance(node, MetricRef) else node
    passing = select([col(KEY, INNER)], subquery(values, INNER), where=[condition.copy().transform(value_of)])
    semi = exp.In(this=outer_key.copy(), query=exp.Subquery(this=passing))
    absent = _absent(catalog, condition)
    if absent is None:
        return semi
    missing = exp.Not(this=exp.Exists(this=select(
        [exp.Literal.number(1)], subquery(values.copy(), INNER),
        where=[exp.EQ(this=col(KEY, INNER), expression=outer_key.copy())])))
    extra = missing if absent is True else exp.And(this=exp.Paren(this=absent), expression=missing)
    return exp.Paren(this=exp.Or(this=semi, expression=extra))


def _absent(catalog, condition: exp.Expression):
    """The condition for an entity the inner metric has no row for: None when it is never TRUE,
    True when it always is, else the condition over the constant values (the engine folds it)."""
    from sqlglot.optimizer.simplify import simplify

    fills = {}
    for ref in condition.find_all(MetricRef):
        fill = getattr(catalog.metrics[ref.metric], "fill_nulls_with", None)
        fills[ref.metric] = exp.Null() if fill is None else exp.convert(int(fill) if float(fill).is_integer() else fill)
    if all(isinstance(v, exp.Null) for v in fills.values()) and _null_rejecting(condition):
        return None
    constant = condition.copy().transform(lambda n: fills[n.metric].copy() if isinstance(n, MetricRef) else n)
    folded = simplify(constant.copy())
    if isinstance(folded, exp.Boolean):
        return True if folded.this else None
    return constant


_STRICT = (exp.Literal, exp.Cast, exp.DataType, exp.Paren, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg,
           MetricRef, exp.Identifier, exp.Var)
_COMPARE = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between, exp.Like, exp.ILike)


def _null_rejecting(condition: exp.Expression) -> bool:
    """NULL metric values never make it TRUE: AND/OR/NOT over comparisons that each read a metric
    through NULL-propagating operators only."""
    node = condition.unnest()
    if isinstance(node, (exp.And, exp.Or)):
        return _null_rejecting(node.left) and _null_rejecting(node.right)
    if isinstance(node, exp.Not):
        return _null_rejecting(node.this)
    if not isinstance(node, _COMPARE) or node.find(MetricRef) is None:
        return False
    operand = node.this.unnest()
    return isinstance(operand, MetricRef) or all(isinstance(n, _STRICT) for n in operand.walk())


def _outer_key(scope, entity: str, names: list[str]) -> exp.Expression:
    """The entity's key on the query's rows: the model's own column when it has the entity, else the
    column of the last model on the join path that holds it (joined as far as that model)."""
    catalog = scope.catalog
    model = scope.model
    if entity in model.entities:
        return model.entities[entity].expr
    owner = catalog.entity_owner[entity]
    try:
        path = catalog.path(model.name, owner)
    except QueryError as error:
        reachable = _reachable_entities(catalog, model.name)
        raise QueryError(f"{scope.context}: metric({', '.join(names)}, by={entity}): {error.message}",
                         hint=f"entities reachable from {model.name}: {', '.join(reachable)}") from None
    for i, edge in enumerate(path):
        target = catalog.models[edge.target]
        if entity in target.entities:
            from .scd import as_of

            for step in path[:i + 1]:
                if step.target not in scope.joins:  # into a history: the version at the row's time
                    scope.joins[step.target] = as_of(scope, step)
            scope.used.add(target.name)
            return target.entities[entity].expr
    raise AssertionError("the owner of an entity holds it")


def _reachable_entities(catalog, model: str) -> list[str]:
    models = {model, *catalog.reachable(model)}
    return sorted(e for e, owner in catalog.entity_owner.items() if owner in models)


def _inner(catalog, names: list[str], entity: str) -> exp.Select:
    """The metrics grouped by the entity's key, as `_canon_mf_key` and one column per metric."""
    from . import model as m
    from .catalog import DimensionInfo
    from .plan import plan
    from .refs import DimRef
    from .render.query import render_plan
    from .request import QueryRequest
    from .resolve import resolve

    label = f"metric({', '.join(names)}, by={entity})"
    try:
        resolved = resolve(catalog, QueryRequest(metrics=tuple(names)))
    except QueryError as error:
        raise QueryError(f"where: {label}: {error.message}", hint=error.hint) from None
    if getattr(resolved, "cohort", None) is not None:
        raise QueryError(f"where: {label}: a cohort metric has a value per cohort and period, not per entity",
                         hint="filter on a simple, ratio or derived metric")
    if any(i.offset or i.cumulative for i in resolved.inputs):
        raise QueryError(f"where: {label}: the metric is defined over time (offset or window) and has no single "
                         "value per entity", hint="filter on the metric it is built from")
    sources = {i.measure.model for i in resolved.inputs} | {c.base.measure.model for c in resolved.conversions}
    owner = catalog.entity_owner[entity]
    home = next(iter(sources)) if len(sources) == 1 and entity in catalog.models[next(iter(sources))].entities else owner
    for source in sorted(sources) if home == owner else ():
        try:
            catalog.path(source, owner)
        except QueryError:
            choices = sorted(set.intersection(*[set(_reachable_entities(catalog, s)) for s in sources]))
            raise QueryError(f"where: {label}: entity '{entity}' cannot be reached from {source}, "
                             f"where the metric's rows are", hint=f"entities of this metric: {', '.join(choices)}") from None
    key_expr = catalog.models[home].entities[entity].expr
    dim = DimensionInfo(home, entity, "categorical", key_expr, m.Dimension(name=entity))
    resolved = replace(resolved, dims=(DimRef(KEY, "dimension", dim, None),), order=(), fill_time=False,
                       having=None)
    tree = render_plan(catalog, plan(catalog, resolved))
    tree.set("order", None)
    return tree

"""Roles of an entity: a dimension reference that names its join path.

`campaign.channel` on an order metric is the order's campaign: the shortest path. The campaign that
acquired the ordering customer is the same model reached another way, and the reference says so:

    customer.campaign.channel        order → customer → campaign (the customer's first campaign)
    order.campaign.channel           order → campaign (the same as campaign.channel)
    lead.customer.country_code       the customer a lead converted into
    lead.converted_customer.country_code   the same, by the key's `role:` (leads.yml)

The first name is a model or entity, reached from the query's rows by the shortest path as always;
each next name is one join step from the model reached so far: an entity it holds as a foreign or
unique key (to the model where that entity is primary; or the key's `role:`), or the name of a model joined back through
its key (a bridge, e.g. `order.order_item.product.category`). The rest is `dimension[.grain|.part]`.
A name that is a dimension of the model reached so far ends the path, so every existing reference
keeps its meaning. The models of a path are joined under their own aliases (`customer__campaign`),
so one query may hold the same model in two roles. When two equally short paths reach a model, the
plain reference stays an error that lists the paths to write instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlglot import exp

from .catalog import Catalog, Edge, alias_id
from .errors import QueryError, UnknownNameError, did_you_mean

SEPARATOR = "__"


@dataclass(frozen=True)
class RoleEdge(Edge):
    """A join step of a named path: `source` and `target` are aliases; `base` is the catalog's edge."""

    base: Edge = None
    at: exp.Expression | None = None  # into a model with validity ranges: the row time (compiler/scd.py)
    routed = True  # class attribute: render/labels.py and render/pushdown.py leave these joins as they are

    def source_sql(self, catalog: Catalog) -> exp.Expression:
        source = catalog.models[self.base.target].source.copy()
        source.set("alias", exp.TableAlias(this=alias_id(self.target)))
        return source

    def condition(self, catalog: Catalog) -> exp.Expression:
        left = requalify(catalog.models[self.base.source].entities[self.entity].expr, self.base.source, self.source)
        right = requalify(catalog.models[self.base.target].entities[self.entity].expr, self.base.target, self.target)
        on = exp.EQ(this=left, expression=right)
        if self.at is None:
            return on
        from .scd import valid_at

        return exp.And(this=on, expression=valid_at(catalog, self.base.target, self.target, self.at))


def requalify(tree: exp.Expression, model: str, alias: str) -> exp.Expression:
    """A copy of `tree` whose columns of `model` read the rows joined as `alias`."""
    tree = tree.copy()
    if model == alias:
        return tree
    for column in tree.find_all(exp.Column):
        if column.table == model:
            column.set("table", alias_id(alias))
    return tree


def steps_from(catalog: Catalog, model: str) -> dict[str, list[Edge]]:
    """The names a path may take from `model`: entity names (key steps) and model names (any step)."""
    found: dict[str, list[Edge]] = {}
    for edge in catalog.edges.get(model, ()):
        if _key_step(catalog, edge):
            found.setdefault(edge.entity, []).append(edge)
            role = _role(catalog, edge)
            if role:
                found.setdefault(role, []).append(edge)
        if edge.target != edge.entity or not _key_step(catalog, edge):
            found.setdefault(edge.target, []).append(edge)
    return found


def _role(catalog: Catalog, edge: Edge) -> str | None:
    """The entity's `role:` in the model that holds the key (lead's customer key: converted_customer)."""
    found = [e for e in catalog.models[edge.source].definition.entities if e.name == edge.entity]
    return getattr(found[0], "role", None) if found else None


def _key_step(catalog: Catalog, edge: Edge) -> bool:
    """A step along a key the source holds (foreign or unique), named by its entity."""
    return not edge.fanout and catalog.models[edge.source].entities[edge.entity].type != "primary"


def _step(catalog: Catalog, model: str, name: str, ref: str) -> Edge:
    choices = steps_from(catalog, model)
    edges = list(dict.fromkeys(choices.get(name, ())))
    if len(edges) == 1:
        return edges[0]
    if edges:
        raise QueryError(f"'{ref}': '{name}' names {len(edges)} join steps from {model}",
                         hint="name the step by its entity: " + ", ".join(sorted({e.entity for e in edges})))
    dims = sorted(catalog.models[model].dimensions)
    raise UnknownNameError(f"unknown dimension '{ref}': model '{model}' has no dimension or join step '{name}'",
                           hint=did_you_mean(name, list(choices) + dims)
                           + f" (join steps from {model}: {', '.join(sorted(choices)) or 'none'};"
                           + f" dimensions: {', '.join(dims)})")


def split(catalog: Catalog, ref: str, parts: list[str]) -> tuple[tuple[str, ...], list[str]] | None:
    """(route, rest) of a reference naming a join path, or None for a plain reference.
    `route` is the start model then each step's name; `rest` is `[dimension, grain?]`."""
    if len(parts) < 3:
        return None
    start = catalog.model_for(parts[0])
    if start is None or parts[1] in start.dimensions or catalog.extension_dimension(parts[0], parts[1]) is not None:
        return None
    if parts[1] not in steps_from(catalog, start.name):
        if len(parts) == 3 and _time_suffix(parts[2]):
            return None  # `<model>.<misspelt dimension>.<grain>`: the plain reference's own error applies
        _step(catalog, start.name, parts[1], ref)  # raises, listing the steps and dimensions
    model, route, i = start.name, [start.name], 1
    while i < len(parts) and parts[i] not in catalog.models[model].dimensions:
        model = _step(catalog, model, parts[i], ref).target
        route.append(parts[i])
        i += 1
    if i == len(parts):
        raise UnknownNameError(f"'{ref}' names a join path but no dimension",
                               hint=f"add one of {model}'s dimensions: {', '.join(sorted(catalog.models[model].dimensions))}")
    return tuple(route), [model] + parts[i:]


def _time_suffix(name: str) -> bool:
    from .date_parts import part_of
    from .model import GRAINS

    return name in GRAINS or bool(part_of(name))


def localize(scope, ref):
    """Join a routed reference's path into `scope` under aliases; the reference re-pointed at them."""
    from .scd import as_of

    catalog = scope.catalog
    scope.reach(ref.route[0])
    source, model = ref.route[0], ref.route[0]
    for i, name in enumerate(ref.route[1:], start=2):
        edge = _step(catalog, model, name, ref.ref)
        alias = SEPARATOR.join(ref.route[:i])
        if alias not in scope.joins:
            scope.joins[alias] = as_of(scope, edge, source, alias)
        source, model = alias, edge.target
    dim = ref.dimension
    local = replace(dim, model=source, expr=requalify(dim.expr, dim.model, source))
    return replace(ref, dimension=local, route=())


def path_text(catalog: Catalog, path: tuple[Edge, ...]) -> str:
    """A join path written as a reference prefix: `ticket.order.campaign`."""
    names = [path[0].source]
    for edge in path:
        names.append((_role(catalog, edge) or edge.entity) if _key_step(catalog, edge) else edge.target)
    return ".".join(names)

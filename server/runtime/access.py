"""Who may see what, decided in one place for every front end.

The runtime carries an `Identity` with every query. `AccessControl.grant(identity)` turns it into a
`Grant`: which policies of canon.yml's `access:` match, which members they deny, which row filters
they impose. Then:
- `apply_policies` checks a request (denied metric or dimension: AccessDeniedError, 403 / 42501) and
  adds the row filters to its `where` as condition trees with the claims as literals, so every metric
  is narrowed whether or not the query names the secured dimension; a metric whose rows cannot reach
  that dimension is refused (fail closed);
- `Grant.allows_metric` / `allows_dimension` tell catalog listings what to hide.

A user gets the union of what the matching policies allow (a member is hidden only if every matching
policy denies it) and the intersection of their row filters (all are ANDed). No `access:` section:
everyone sees everything, as before. A user no policy matches gets `access.default`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

from sqlglot import exp

from canon.compiler.catalog import Catalog, DimensionInfo
from canon.compiler.errors import AccessDeniedError, CanonError, UnknownNameError, did_you_mean
from canon.compiler.request import QueryRequest

from .policies import AccessConfig, glob_matches, row_filter_refs


@dataclass(frozen=True)
class Identity:
    user: str = "anonymous"
    via: str = "internal"  # cli | http | cube | pgwire | mcp | internal
    claims: dict = field(default_factory=dict, compare=False, hash=False)


ANONYMOUS = Identity()
SYSTEM = Identity("canon", "internal")
# Canon's own work, and the CLI: whoever runs it can read canon.yml and the warehouse anyway
UNRESTRICTED = ("internal", "cli")


@dataclass(frozen=True)
class RowFilter:
    policy: str
    condition: exp.Expression
    models: tuple[str, ...]  # the models its dimensions live on


@dataclass(frozen=True)
class Grant:
    """What one identity may see under one catalog."""

    open: bool = True  # no policies: everything, no row filters
    policies: tuple[str, ...] = ()  # the matching policies, by name
    denies: tuple[tuple[str, ...], ...] = ()  # each matching policy's deny patterns
    nothing: bool = False  # default deny and no policy matched
    row_filters: tuple[RowFilter, ...] = ()
    user: str = "anonymous"

    @property
    def key(self) -> tuple:
        """What listings depend on: equal keys see the same members."""
        return (self.open, self.nothing, self.denies)

    def _denied(self, names) -> bool:
        if self.open:
            return False
        if self.nothing:
            return True
        return _denied_by(self.denies, tuple(names))

    def allows_metric(self, catalog: Catalog, name: str) -> bool:
        """The metric and every metric it is built from are allowed."""
        if self.open:
            return True
        facts = catalog.facts.get(name)
        names = (name, *(facts.metrics if facts else ()))
        return not any(self._denied((n,)) for n in names)

    def allows_dimension(self, catalog: Catalog, dimension: DimensionInfo | str) -> bool:
        if self.open:
            return True
        if isinstance(dimension, str):
            return not self._denied((dimension,))
        return not self._denied(dimension_names(catalog, dimension))

    def visible_metrics(self, catalog: Catalog) -> list[str]:
        return [name for name in catalog.metrics if self.allows_metric(catalog, name)]

    def unnarrowable(self, catalog: Catalog, name: str) -> tuple[RowFilter, str, str] | None:
        """(row filter, model, unreachable model) when a row filter cannot reach the metric's rows."""
        facts = catalog.facts.get(name)
        for row_filter in self.row_filters:
            for model in (facts.grouped if facts else ()):
                missing = [t for t in row_filter.models if t != model and t not in catalog.reachable(model)]
                if missing:
                    return row_filter, model, missing[0]
        return None

    def queryable(self, catalog: Catalog, name: str) -> bool:
        """Allowed, and narrowable by every row filter: what listings offer to query."""
        return self.allows_metric(catalog, name) and (self.open or self.unnarrowable(catalog, name) is None)


@functools.lru_cache(maxsize=8192)
def _denied_by(denies: tuple[tuple[str, ...], ...], names: tuple[str, ...]) -> bool:
    """Denied when every matching policy denies one of the names (the union of what they allow)."""
    return bool(denies) and all(glob_matches(patterns, names) for patterns in denies)


def dimension_names(catalog: Catalog, dim: DimensionInfo) -> tuple[str, ...]:
    """Every name a dimension can be asked for by: its model's, and each entity the model is keyed on
    (`customer.rfm_segment` reaches the customer_rfm model), so a glob cannot be side-stepped."""
    model = catalog.models.get(dim.model)
    names = [dim.ref]
    if model is not None:
        names += [f"{e.name}.{dim.name}" for e in model.entities.values() if e.type in ("primary", "unique")]
    return tuple(dict.fromkeys(names))


class AccessControl:
    """canon.yml's `access:` section, evaluated per identity."""

    def __init__(self, config: AccessConfig = AccessConfig()):
        self.config = config

    @property
    def configured(self) -> bool:
        return self.config.configured

    def grant(self, identity: Identity, catalog: Catalog) -> Grant:
        if not self.config.configured or identity.via in UNRESTRICTED:
            return Grant(user=identity.user)
        claims = identity.claims or {}
        matching = self.config.matching(claims)
        if not matching:
            if self.config.default == "allow":
                return Grant(user=identity.user)
            return Grant(open=False, nothing=True, user=identity.user)
        filters = []
        for policy in matching:
            condition = policy.bound_filter(claims)
            if condition is not None:
                filters.append(RowFilter(policy.name, condition, _filter_models(catalog, condition, policy.name)))
        denies = tuple(policy.deny for policy in matching)
        if not any(denies) or not all(denies):
            denies = ()  # some matching policy denies nothing: the union allows everything
        return Grant(open=False, policies=tuple(p.name for p in matching), denies=denies,
                     row_filters=tuple(filters), user=identity.user)

    def check(self, catalog: Catalog) -> list[str]:
        """Problems of the policies against this catalog (unknown dimensions in row filters, deny
        entries that name nothing): shown at start and in status."""
        problems = []
        names = set(catalog.metrics) | {n for m in catalog.models.values() for d in m.dimensions.values()
                                        for n in dimension_names(catalog, d)}
        for policy in self.config.policies:
            if policy.row_filter is not None:
                try:
                    _filter_models(catalog, policy.row_filter, policy.name)
                except CanonError as error:
                    problems.append(f"access policy {policy.name!r}: {error.message}")
            for pattern in policy.deny:
                if not glob_matches((pattern,), names | {"metric_time"}):
                    problems.append(f"access policy {policy.name!r}: deny entry {pattern!r} matches no metric or dimension")
        return problems


def _filter_models(catalog: Catalog, condition: exp.Expression, policy: str) -> tuple[str, ...]:
    from canon.compiler.refs import parse_ref

    models = []
    for ref in row_filter_refs(condition):
        try:
            dim = parse_ref(catalog, ref)
        except CanonError as error:
            raise AccessDeniedError(f"access policy {policy!r}: its row filter names {ref!r}, which this catalog "
                                    f"does not have ({error.message})", hint="fix the policy in canon.yml") from None
        if dim.dimension is None:
            raise AccessDeniedError(f"access policy {policy!r}: a row filter must name model dimensions, not {ref!r}")
        models.append(dim.dimension.model)
    return tuple(dict.fromkeys(models))


# --- requests ------------------------------------------------------------------------------------------------


def apply_policies(catalog: Catalog, request: QueryRequest, grant: Grant) -> QueryRequest:
    """The request this grant may run: refused if it names a hidden member or a metric that the row
    filters cannot narrow; otherwise with the row filters added to `where`."""
    if grant.open:
        return request
    who = f"user {grant.user!r}"
    if grant.nothing:
        raise AccessDeniedError(f"no access policy lets {who} see anything",
                                hint="ask an administrator for a policy in canon.yml `access:` that matches you")
    for name in request.metrics:
        if name not in catalog.metrics:
            raise UnknownNameError(f"unknown metric '{name}'", hint=did_you_mean(name, grant.visible_metrics(catalog)))
        if not grant.allows_metric(catalog, name):
            raise AccessDeniedError(f"metric '{name}' is not available to {who}",
                                    hint=f"denied by the access policies {', '.join(grant.policies)}")
    _check_dimensions(catalog, request, grant, who)
    if not grant.row_filters:
        return request
    _no_metric_filters(request, grant, who)
    for name in request.metrics:
        found = grant.unnarrowable(catalog, name)
        if found is not None:
            row_filter, model, unreachable = found
            raise AccessDeniedError(
                f"metric '{name}' cannot be narrowed by the row filter of access policy "
                f"{row_filter.policy!r} ({model} does not reach {unreachable}), so it is not shown to {who}",
                hint="row filters fail closed: ask for a metric whose rows reach " + ", ".join(row_filter.models))
    return replace(request, where=tuple(request.where) + tuple(f.condition.copy() for f in grant.row_filters))


def _no_metric_filters(request: QueryRequest, grant: Grant, who: str) -> None:
    """A filter on a metric (`metric(order_count, by=customer) >= 3`, compiler/metric_filters.py)
    aggregates that metric over all its rows, which a row filter would not narrow: fail closed."""
    from canon.compiler.metric_filters import MetricRef
    from canon.compiler.sqlexpr import parse_filter

    for i, where in enumerate(request.where):
        found = parse_filter(where, field="where" if i == 0 else f"where[{i}]").condition.find(MetricRef)
        if found is not None:
            raise AccessDeniedError(f"{found.sql()} filters on a metric's value over all its rows, which the row "
                                    f"filters of {', '.join(grant.policies)} cannot narrow, so it is not available to {who}",
                                    hint="filter on dimensions instead, or ask for a policy without a row filter")


def _check_dimensions(catalog: Catalog, request: QueryRequest, grant: Grant, who: str) -> None:
    from canon.compiler.refs import parse_ref
    from canon.compiler.sqlexpr import parse_filter

    item_model = None
    affinity = next((catalog.affinities[n] for n in request.metrics if n in catalog.affinities), None)
    if affinity is not None:
        item_model = affinity.item_model
    refs = list(request.dimensions)
    for i, where in enumerate(request.where):
        refs += parse_filter(where, field="where" if i == 0 else f"where[{i}]").refs
    refs += [o.lstrip("-+") for o in request.order if o.lstrip("-+") not in catalog.metrics]
    visible_dims = None
    for ref in refs:
        try:
            dim = parse_ref(catalog, ref, item_model=item_model)
        except UnknownNameError as error:
            if visible_dims is None:
                visible_dims = [d.ref for m in catalog.models.values() for d in m.dimensions.values()
                                if grant.allows_dimension(catalog, d)]
            raise UnknownNameError(error.message.split(":")[0], hint=did_you_mean(ref, visible_dims)) from None
        except CanonError:
            continue  # not a dimension problem the policies decide; the compiler says what is wrong
        allowed = grant.allows_dimension(catalog, dim.dimension) if dim.dimension is not None else \
            grant.allows_dimension(catalog, "metric_time")
        if not allowed:
            raise AccessDeniedError(f"dimension '{ref}' is not available to {who}",
                                    hint=f"denied by the access policies {', '.join(grant.policies)}")


def row_filtered_values(catalog: Catalog, grant: Grant, ref: str, tree: exp.Select) -> exp.Select:
    """A dimension-values query under a grant: the dimension must be visible, and each row filter
    must live on the dimension's own model (its conditions are added to the query's WHERE)."""
    from canon.compiler.refs import parse_ref
    from canon.compiler.sqlexpr import column_ref

    from .visibility import dimension_allowed

    who = f"user {grant.user!r}"
    if grant.nothing or not dimension_allowed(catalog, grant, ref):
        raise AccessDeniedError(f"dimension '{ref}' is not available to {who}",
                                hint=f"denied by the access policies {', '.join(grant.policies) or '(none match)'}")
    model = parse_ref(catalog, ref).dimension.model
    for row_filter in grant.row_filters:
        if set(row_filter.models) != {model}:
            raise AccessDeniedError(
                f"the values of '{ref}' cannot be narrowed by the row filter of access policy {row_filter.policy!r}, "
                f"so they are not shown to {who}",
                hint="row filters fail closed; query a metric by this dimension instead")

        def bind(node):
            if isinstance(node, exp.Column):
                return parse_ref(catalog, column_ref(node)).dimension.expr.copy()
            return node

        condition = row_filter.condition.copy().transform(bind)
        where = tree.args.get("where")
        tree.set("where", exp.Where(this=exp.and_(where.this, condition) if where else condition))
    return tree

"""Questions about the catalog that APIs ask to help people build queries.

Pure functions over a built Catalog, no I/O:
- which dimension references a set of metrics can be grouped by (`dimensions_for`),
- which metrics and measures a metric is built from (`dependencies`),
- the query behind a filter picker: the distinct values of one dimension (`dimension_values_query`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from .catalog import Catalog, DimensionInfo
from .errors import QueryError, UnknownNameError, did_you_mean
from .model import GRAINS
from .refs import METRIC_TIME, SIDES, parse_ref, time_expr

MAX_VALUES = 10_000


@dataclass(frozen=True)
class DimensionEntry:
    ref: str
    type: str  # categorical | time | number | boolean
    label: str | None = None
    description: str | None = None
    grains: tuple[str, ...] = ()  # time dimensions: the grains it can be truncated to

    def to_dict(self) -> dict:
        body = {"ref": self.ref, "type": self.type, "label": self.label, "description": self.description}
        if self.type == "time":
            body["grains"] = list(self.grains)
        return body


def _check_metric(catalog: Catalog, name: str):
    metric = catalog.metrics.get(name)
    if metric is None:
        raise UnknownNameError(f"unknown metric '{name}'", hint=did_you_mean(str(name), catalog.metrics))
    return metric


def dependencies(catalog: Catalog, name: str) -> dict:
    """Every metric (transitively) and every measure that `name` is computed from."""
    _check_metric(catalog, name)
    facts = catalog.facts[name]
    return {"metrics": list(facts.metrics), "measures": list(facts.measures)}


def _grains(dim: DimensionInfo) -> tuple[str, ...]:
    finest = dim.definition.granularity
    return GRAINS[GRAINS.index(finest):] if finest in GRAINS else GRAINS


def _entry(dim: DimensionInfo, ref: str | None = None) -> DimensionEntry:
    d = dim.definition
    return DimensionEntry(ref or dim.ref, dim.type, d.label, d.description,
                          _grains(dim) if dim.type == "time" else ())


def _reachable_dims(catalog: Catalog, source: str, *, allow_fanout: bool | None = None) -> dict[str, DimensionEntry]:
    """Dimensions a measure of `source` can be grouped by without counting a row twice."""
    model = catalog.models[source]
    if allow_fanout is None:
        allow_fanout = model.primary is not None
    found: dict[str, DimensionEntry] = {}
    for target in catalog.models.values():
        try:
            path = catalog.path(source, target.name)
        except QueryError:
            continue  # unreachable or ambiguous: not a valid grouping
        if not allow_fanout and any(edge.fanout for edge in path):
            continue
        for dim in target.dimensions.values():
            found[dim.ref] = _entry(dim)
    return found


def _metric_dims(catalog: Catalog, name: str) -> dict[str, DimensionEntry]:
    if name in catalog.affinities:
        info = catalog.affinities[name]
        out = _reachable_dims(catalog, info.basket_model, allow_fanout=False)
        for dim in catalog.models[info.item_model].dimensions.values():
            for side in SIDES:
                ref = f"{side}.{dim.name}"
                out[ref] = _entry(dim, ref)
        return out
    sources = catalog.facts[name].grouped
    result: dict[str, DimensionEntry] | None = None
    for source in sorted(sources):
        dims = _reachable_dims(catalog, source)
        result = dims if result is None else {k: v for k, v in result.items() if k in dims}
    result = result or {}
    if sources and all(catalog.models[s].default_time is not None for s in sources):
        result[METRIC_TIME] = DimensionEntry(METRIC_TIME, "time", "Metric time",
                                             "The shared time axis: each metric's own default time.", GRAINS)
    if catalog.facts[name].type == "cohort":  # compiler/cohort.py
        result["cohort.periods_since"] = DimensionEntry(
            "cohort.periods_since", "number", "Periods since cohort start",
            "Periods from each member's cohort period (metric_time: its first event's period), at metric_time's grain.")
    return result


def dimensions_for(catalog: Catalog, metrics) -> list[DimensionEntry]:
    """Dimensions every one of `metrics` can be grouped by, sorted by reference."""
    names = list(metrics)
    if not names:
        raise QueryError("no metric given", hint=did_you_mean("", catalog.metrics))
    for name in names:
        _check_metric(catalog, name)
    affinity = [n for n in names if n in catalog.affinities]
    if affinity and len(affinity) != len(names):
        return []  # affinity metrics cannot be combined with others in one query
    common: dict[str, DimensionEntry] | None = None
    for name in names:
        dims = _metric_dims(catalog, name)
        common = dims if common is None else {k: v for k, v in common.items() if k in dims}
    return [common[k] for k in sorted(common or {})]


def dimension_values_query(catalog: Catalog, ref: str, *, limit: int = 1000) -> exp.Select:
    """SELECT DISTINCT the values of one dimension from its own model, ordered, at most `limit`.

    Values come from the dimension's model alone (no metric filter applies), so a picker for
    `order.status` shows every status, not only the ones some metric counts.
    """
    # MAX_VALUES + 1: a caller asks for one more value than it shows, to tell that the list was cut
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_VALUES + 1:
        raise QueryError(f"limit: {limit!r} must be a whole number from 1 to {MAX_VALUES:,}")
    head = ref.split(".")[0] if isinstance(ref, str) else ""
    if head == METRIC_TIME:
        raise QueryError(f"'{ref}' has no values of its own: it is each metric's default time",
                         hint="ask for the values of a model's time dimension, e.g. order.ordered_at.month")
    item_model = None
    if head in SIDES:
        parts = ref.split(".")
        candidates = [a.item_model for a in catalog.affinities.values()]
        if len(parts) >= 2:
            item_model = next((c for c in candidates if parts[1] == c or parts[1] in catalog.models[c].dimensions), None)
        if item_model is None:
            raise UnknownNameError(f"unknown dimension '{ref}'", hint="write antecedent.<item dimension>, e.g. antecedent.product_name")
    dimref = parse_ref(catalog, ref, item_model=item_model)
    dim = dimref.dimension
    model = catalog.models[dim.model]
    value = time_expr(dim, dimref.grain) if dim.type == "time" and dimref.grain else dim.expr.copy()
    column = exp.Identifier(this="value", quoted=True)
    select = exp.Select(
        expressions=[exp.Alias(this=value, alias=column)],
        distinct=exp.Distinct(),
    )
    select.set("from_", exp.From(this=model.source.copy()))
    select.set("where", exp.Where(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))))
    select.set("order", exp.Order(expressions=[exp.Ordered(this=exp.Column(this=column.copy()))]))
    select.set("limit", exp.Limit(expression=exp.Literal.number(limit)))
    return select

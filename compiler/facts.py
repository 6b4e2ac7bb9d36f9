"""Metric facts: what each metric is built from, resolved once when the catalog is built.

`build_facts` runs at the end of `validate.build_catalog`, on a catalog without errors, and
leaves one frozen `MetricFacts` per metric in `catalog.facts`. Lineage, introspection, governance
and the front ends read these instead of walking definitions themselves.

What differs between metric types sits in one table, `KINDS`: the metrics a type uses (and in
which role), the measures it aggregates itself, what its own definition reads, and the models its
rows are grouped from.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, NamedTuple

from sqlglot import exp

from . import model as m
from .catalog import Catalog, ModelInfo
from .errors import CanonError, Location
from .sqlexpr import ParsedFilter, parse_filter

ADDITIVE_AGGS = ("sum", "count")  # a sum of these over finer groups is the value of the whole


@dataclass(frozen=True)
class Input:
    """A metric used by another one: its role there and the filter it is taken under."""

    role: str  # the field naming it: numerator, denominator, metrics, metric, base, conversion
    metric: str
    filter: str | None = None
    alias: str | None = None  # the name a derived metric's expr uses for it


@dataclass(frozen=True)
class MetricFacts:
    name: str
    type: str
    inputs: tuple[Input, ...]  # direct input metrics, in definition order
    metrics: tuple[str, ...]  # every input metric, transitively
    measures: tuple[str, ...]  # every measure (model.measure) aggregated, transitively
    models: tuple[str, ...]  # models whose measures, dimensions or keys it names, nearest first
    grouped: tuple[str, ...]  # models whose rows are grouped: dimensions must reach each of them
    tables: tuple[str, ...]  # every warehouse table read, joins included, sorted
    agg: str | None  # natural aggregation: the measure's agg (simple metrics only)
    additive: bool  # summing its values over finer groups gives the value of the whole
    location: Location | None  # file:line of its definition


# --- per type ----------------------------------------------------------------------------------


def _use(role: str, item: str | m.MetricInput) -> Input:
    if isinstance(item, str):
        return Input(role, item)
    return Input(role, item.name, item.filter, item.alias)


Steps = tuple[list[tuple[str, str]], list[tuple[str, str]]]


def _simple_reads(catalog: Catalog, metric: m.SimpleMetric) -> Steps:
    """Its measure, the measure model's default time, its filter's dimensions (each joined from
    the measure's model)."""
    source = metric.measure.partition(".")[0]
    steps, joins = [("measure", source)], []
    time = catalog.models[source].default_time
    if time is not None:
        steps.append(("dimension", time.model))
        joins.append((source, time.model))
    for model in _filter_models(catalog, catalog.metric_filters.get(metric.name)):
        steps.append(("dimension", model))
        joins.append((source, model))
    return steps, joins


def _affinity_reads(catalog: Catalog, metric: m.AffinityMetric) -> Steps:
    info = catalog.affinities.get(metric.name)
    if info is None:
        return [], []
    steps = [("model", info.bridge), ("model", info.basket_model), ("model", info.item_model)]
    joins = []
    for model in _filter_models(catalog, info.filter):
        steps.append(("dimension", model))
        joins.append((info.bridge, model))
    return steps, joins


def _owner(catalog: Catalog, entity: str) -> tuple[str, ...]:
    """The model where `entity` is primary (none for an unknown entity, which validation reports)."""
    owner = catalog.entity_owner.get(entity)
    return (owner,) if owner else ()


class Kind(NamedTuple):
    inputs: Callable[[object], tuple[Input, ...]]  # the metrics it uses, in their roles
    measures: Callable[[object], tuple[str, ...]] = lambda x: ()  # measures it aggregates itself
    # what its own definition names: ('measure' | 'dimension' | 'model', model) steps and joins
    reads: Callable[[Catalog, object], Steps] = lambda catalog, x: ([], [])
    # the models its rows are grouped from; `via(inputs)` gives those of input metrics
    grouped: Callable[[Catalog, object, Callable], tuple[str, ...]] = lambda catalog, x, via: via(inputs_of(x))


KINDS: dict[type, Kind] = {
    m.SimpleMetric: Kind(lambda x: (), lambda x: (x.measure,), _simple_reads,
                         lambda catalog, x, via: (x.measure.partition(".")[0],)),
    m.RatioMetric: Kind(lambda x: (_use("numerator", x.numerator), _use("denominator", x.denominator))),
    m.DerivedMetric: Kind(lambda x: tuple(_use("metrics", i) for i in x.metrics)),
    m.CumulativeMetric: Kind(lambda x: (Input("metric", x.metric),)),
    # grouped by the base events' dimensions only
    m.ConversionMetric: Kind(lambda x: (Input("base", x.base), Input("conversion", x.conversion)),
                             grouped=lambda catalog, x, via: via(inputs_of(x)[:1])),
    # members are described by the entity's model: its dimensions group them
    m.CohortMetric: Kind(lambda x: (Input("cohort", x.cohort), Input("activity", x.activity)),
                         reads=lambda catalog, x: ([("model", m) for m in _owner(catalog, x.entity)], []),
                         grouped=lambda catalog, x, via: _owner(catalog, x.entity)),
    m.AffinityMetric: Kind(lambda x: (), reads=_affinity_reads,
                           grouped=lambda catalog, x, via: (catalog.affinities[x.name].basket_model,)),
}


def inputs_of(metric) -> tuple[Input, ...]:
    """The metrics `metric` is computed from (safe on definitions not yet validated)."""
    return KINDS[type(metric)].inputs(metric)


# --- building ----------------------------------------------------------------------------------


def build_facts(catalog: Catalog) -> dict[str, MetricFacts]:
    inputs = {name: inputs_of(metric) for name, metric in catalog.metrics.items()}
    grouped: dict[str, tuple[str, ...]] = {}
    tables: dict[str, list[str]] = {}  # model -> its tables, filled as models are met
    return {name: _facts(catalog, name, inputs, grouped, tables) for name in catalog.metrics}


def _facts(catalog: Catalog, name: str, inputs: dict, grouped: dict, tables: dict) -> MetricFacts:
    metric = catalog.metrics[name]
    metrics, measures = _transitive(catalog, name, inputs)
    agg, additive = None, False
    if isinstance(metric, m.SimpleMetric):  # one type's own question: how its measure aggregates
        info = _measure(catalog, metric.measure)
        agg = info.agg
        additive = agg in ADDITIVE_AGGS and info.per is None and info.non_additive is None
    models, read = _reads(catalog, name, inputs, tables)
    return MetricFacts(name, metric.type, inputs[name], metrics, measures, models,
                       _grouped(catalog, name, inputs, grouped), read, agg, additive, metric.location)


def _transitive(catalog: Catalog, name: str, inputs: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Input metrics and measures, depth first (the order `depends_on` has always listed them)."""
    metrics: list[str] = []
    measures: list[str] = []
    stack, seen = [name], {name}
    while stack:
        current = stack.pop()
        for ref in KINDS[type(catalog.metrics[current])].measures(catalog.metrics[current]):
            if ref not in measures:
                measures.append(ref)
        for use in inputs[current]:
            if use.metric not in seen and use.metric in catalog.metrics:
                seen.add(use.metric)
                metrics.append(use.metric)
                stack.append(use.metric)
    return tuple(metrics), tuple(measures)


def _grouped(catalog: Catalog, name: str, inputs: dict, memo: dict) -> tuple[str, ...]:
    if name not in memo:
        memo[name] = ()  # a cycle is a validation error; this only keeps a bug from looping
        metric = catalog.metrics[name]

        def via(uses) -> tuple[str, ...]:
            return tuple(dict.fromkeys(g for use in uses for g in _grouped(catalog, use.metric, inputs, memo)))

        memo[name] = KINDS[type(metric)].grouped(catalog, metric, via)
    return memo[name]


def _measure(catalog: Catalog, ref: str):
    model_name, _, measure_name = ref.partition(".")
    return catalog.models[model_name].measures[measure_name]


# --- models and tables read ----------------------------------------------------------------------


def _reads(catalog: Catalog, name: str, inputs: dict, tables: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Models named, breadth first through metric -> (metric | measure | dimension) -> model steps,
    so they come in the order lineage reaches them; tables of those models and of the joins between."""
    models: list[str] = []
    joined: set[str] = set()
    seen, queue = {("metric", name)}, deque([("metric", name)])
    while queue:
        kind, target = queue.popleft()
        if kind == "model":
            models.append(target)
            continue
        if kind == "metric":
            steps, joins = _metric_steps(catalog, target, inputs)
            joined.update(model for source, dest in joins for model in _path_models(catalog, source, dest))
        else:  # a measure or a dimension, named by its model
            steps = [("model", target)]
        for step in steps:
            if step not in seen:
                seen.add(step)
                queue.append(step)
    for model in (*models, *joined):
        if model not in tables:
            tables[model] = model_tables(catalog.models[model])
    return tuple(models), tuple(sorted({t for model in (*models, *joined) for t in tables[model]}))


def _metric_steps(catalog: Catalog, name: str, inputs: dict) -> Steps:
    """What a metric names next, in lineage's edge order: its own reads, then each input metric
    and its filter's dimensions; and the joins it makes (source model, target model)."""
    metric = catalog.metrics[name]
    steps, joins = KINDS[type(metric)].reads(catalog, metric)
    for use in inputs[name]:
        if use.metric in catalog.metrics and use.metric != name:
            steps.append(("metric", use.metric))
            if use.filter:
                parsed = catalog.input_filters.get((name, use.alias or use.metric))
                steps += [("dimension", model) for model in _filter_models(catalog, parsed or use.filter)]
    return steps, joins


def _filter_models(catalog: Catalog, parsed: ParsedFilter | str | None) -> list[str]:
    """The models of the dimensions a definition's filter names (unresolvable names are skipped:
    validation has reported them, or they are allowed to name nothing yet)."""
    from .refs import parse_ref

    if parsed is None:
        return []
    try:
        parsed = parse_filter(parsed, field="filter") if isinstance(parsed, str) else parsed
    except CanonError:
        return []
    found = []
    for ref in parsed.refs:
        try:
            dimref = parse_ref(catalog, ref, item_model=next(iter(catalog.models), None))
        except CanonError:
            continue
        if dimref.dimension is not None:
            found.append(dimref.dimension.model)
    return found


def _path_models(catalog: Catalog, source: str, target: str) -> set[str]:
    try:
        path = catalog.path(source, target)
    except CanonError:
        return set()
    return {model for edge in path for model in (edge.source, edge.target)}


def model_tables(model: ModelInfo) -> list[str]:
    """The warehouse tables a model reads: its `table`, or those its `sql` selects from."""
    if model.definition.table:
        return [model.definition.table]
    ctes = {cte.alias_or_name for cte in model.source.find_all(exp.CTE)}
    return list(dict.fromkeys(".".join(part.name for part in table.parts)
                              for table in model.source.find_all(exp.Table) if table.name not in ctes))

"""Resolve pass: (Catalog, QueryRequest) -> ResolvedQuery.

Binds every name in the request: metrics are expanded into the measures they aggregate (with the
filters that apply to each) and into output expressions over those measures; dimensions, filters,
ordering and time range are parsed and checked. Join paths are chosen later, per measure source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlglot import exp

from . import model as m
from .catalog import AffinityInfo, Catalog, MeasureInfo
from .errors import QueryError, UnknownNameError, did_you_mean
from .refs import DimRef, parse_ref, split_measure_ref
from .request import QueryRequest
from .sqlexpr import ParsedFilter, parse_filter

MAX_LIMIT = 1_000_000


@dataclass(frozen=True)
class MeasureInput:
    """One measure aggregated under a set of filters, named `alias` in the plan."""

    alias: str
    measure: MeasureInfo
    filters: tuple[ParsedFilter, ...]
    metric: str  # the metric that asked for it, for messages


@dataclass(frozen=True)
class BoundFilter:
    parsed: ParsedFilter
    refs: dict[str, DimRef]


@dataclass(frozen=True)
class ResolvedQuery:
    request: QueryRequest
    dims: tuple[DimRef, ...]
    where: tuple[BoundFilter, ...]
    outputs: tuple[tuple[str, exp.Expression], ...]  # metric name -> expression over input aliases
    inputs: tuple[MeasureInput, ...]
    affinity: AffinityInfo | None
    order: tuple[tuple[str, bool], ...]  # (output alias, descending)
    start: str | None
    end: str | None

    @property
    def columns(self) -> list[tuple[str, str]]:
        """(name as requested, type) of every output column, in order."""
        return [(d.ref, d.type) for d in self.dims] + [(name, "number") for name, _ in self.outputs]


def resolve(catalog: Catalog, request: QueryRequest) -> ResolvedQuery:
    names = _check_names(catalog, request)
    affinity = _affinity(catalog, names)
    item_model = affinity.item_model if affinity else None
    dims = tuple(parse_ref(catalog, ref, item_model=item_model) for ref in request.dimensions)
    _no_duplicates(request.dimensions, "dimension")
    where = tuple(_bind_filter(catalog, text, i, item_model) for i, text in enumerate(request.where))
    outputs, inputs = ((), ()) if affinity else _expand_metrics(catalog, names)
    if affinity:
        outputs = tuple((name, exp.column(name)) for name in names)
    aliases = {d.ref: d.alias for d in dims} | {name: name for name in names}
    order = tuple(_order_item(item, aliases) for item in request.order)
    _check_limit(request)
    start, end = _time_bound(request.start, "start", False), _time_bound(request.end, "end", True)
    return ResolvedQuery(request, dims, where, outputs, inputs, affinity, order, start, end)


def _check_names(catalog: Catalog, request: QueryRequest) -> tuple[str, ...]:
    if not request.metrics:
        raise QueryError("no metric requested", hint=did_you_mean("", catalog.metrics))
    for name in request.metrics:
        if name not in catalog.metrics:
            raise UnknownNameError(f"unknown metric '{name}'", hint=did_you_mean(str(name), catalog.metrics))
    _no_duplicates(request.metrics, "metric")
    return request.metrics


def _no_duplicates(values, what):
    seen = set()
    for value in values:
        if value in seen:
            raise QueryError(f"{what} '{value}' is requested twice", hint="ask for each once")
        seen.add(value)


def _affinity(catalog: Catalog, names) -> AffinityInfo | None:
    found = [catalog.affinities[n] for n in names if n in catalog.affinities]
    if not found:
        return None
    if len(found) != len(names):
        others = [n for n in names if n not in catalog.affinities]
        raise QueryError(
            f"affinity metrics ({', '.join(a.definition.name for a in found)}) are computed per product pair "
            f"and cannot be combined with {', '.join(others)} in one query",
            hint="query them separately")
    first = found[0]
    for other in found[1:]:
        same = (other.bridge, other.basket_model, other.item_model) == (first.bridge, first.basket_model, first.item_model)
        if not same or other.definition.filter != first.definition.filter:
            raise QueryError(
                f"affinity metrics {first.definition.name} and {other.definition.name} differ in basket, item or filter",
                hint="query them separately")
    return first


def _bind_filter(catalog: Catalog, text: str, index: int, item_model: str | None) -> BoundFilter:
    parsed = parse_filter(text, field="where" if index == 0 else f"where[{index}]")
    refs = {ref: parse_ref(catalog, ref, item_model=item_model) for ref in parsed.refs}
    return BoundFilter(parsed, refs)


def _expand_metrics(catalog: Catalog, names) -> tuple[tuple, tuple]:
    inputs: dict[tuple, MeasureInput] = {}
    taken: set[str] = set(names)

    def leaf(metric: m.SimpleMetric, extra: tuple[ParsedFilter, ...]) -> exp.Expression:
        measure = split_measure_ref(catalog, metric.measure)
        own = catalog.metric_filters.get(metric.name)
        filters = ((own,) if own else ()) + extra
        key = (measure.ref, tuple(id(f) for f in filters))
        found = inputs.get(key)
        if found is None:
            alias = metric.name if not extra and metric.name not in _used(inputs) else _fresh(metric.name, taken)
            taken.add(alias)
            found = inputs[key] = MeasureInput(alias, measure, filters, metric.name)
        return exp.column(found.alias)

    def expand(name: str, extra: tuple[ParsedFilter, ...]) -> exp.Expression:
        metric = catalog.metrics[name]
        if isinstance(metric, m.SimpleMetric):
            return leaf(metric, extra)
        if isinstance(metric, m.RatioMetric):
            num = expand_input(metric, metric.numerator, extra)
            den = expand_input(metric, metric.denominator, extra)
            return exp.Div(this=exp.cast(num, exp.DataType.Type.DOUBLE),
                           expression=exp.Nullif(this=den, expression=exp.Literal.number(0)))
        if isinstance(metric, m.DerivedMetric):
            values = {(i if isinstance(i, str) else (i.alias or i.name)): expand_input(metric, i, extra)
                      for i in metric.metrics}
            tree = catalog.derived_exprs[name].copy()
            return tree.transform(lambda node: exp.Paren(this=values[node.name].copy())
                                  if isinstance(node, exp.Column) else node)
        raise QueryError(f"metric '{name}' of type {metric.type} cannot be used inside another metric here")

    def expand_input(parent, inp, extra) -> exp.Expression:
        if isinstance(inp, str):
            return expand(inp, extra)
        own = catalog.input_filters.get((parent.name, inp.alias or inp.name))
        return expand(inp.name, extra + ((own,) if own else ()))

    outputs = tuple((name, expand(name, ())) for name in names)
    return outputs, tuple(inputs.values())


def _used(inputs) -> set[str]:
    return {i.alias for i in inputs.values()}


def _fresh(base: str, taken: set[str]) -> str:
    n = 1
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


def _order_item(item: str, aliases: dict[str, str]) -> tuple[str, bool]:
    if not isinstance(item, str) or not item.lstrip("-+"):
        raise QueryError("order: empty field", hint="write a requested metric or dimension, '-' for descending")
    desc = item.startswith("-")
    name = item.lstrip("-+")
    if name not in aliases:
        raise UnknownNameError(f"order: '{name}' is not among the requested metrics and dimensions",
                               hint=did_you_mean(name, aliases))
    return aliases[name], desc


def _check_limit(request: QueryRequest):
    for name in ("limit", "offset"):
        value = getattr(request, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "limit" else 0):
            raise QueryError(f"{name}: {value!r} must be a whole number{' of at least 1' if name == 'limit' else ' ≥ 0'}")
        if value > MAX_LIMIT:
            raise QueryError(f"{name}: {value} is above the maximum of {MAX_LIMIT:,}",
                             hint="narrow the query with filters or ask for fewer rows")


def _time_bound(value: str | None, name: str, is_end: bool) -> str | None:
    """An ISO date or timestamp; a date as `end` includes that whole day."""
    if value is None or value == "":
        return None
    text = str(value)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return (day + timedelta(days=1) if is_end else day).isoformat() + " 00:00:00"
        return datetime.fromisoformat(text).replace(tzinfo=None).isoformat(sep=" ")
    except ValueError:
        raise QueryError(f"{name}: {text!r} is not a date or timestamp",
                         hint="write an ISO date such as 2025-01-31 or a timestamp such as 2025-01-31T12:00:00") from None

"""Rollups: metrics pre-aggregated at a grain, and the matcher that answers a request from one exactly.

    layouts = plan_rollups(catalog, "duckdb")          # per rollup: its columns, leaves and fingerprint
    parts = build_parts(catalog, layouts["daily"], "duckdb", start, end)   # what fills its table
    routed = answer(catalog, request, layout, table, "duckdb")            # Routed, or why not (text)

A rollup stores *leaves*: the simple metrics it names, or the parts of its ratio and derived metrics.
Each leaf is filled by Canon's own plan for it at the rollup's grain (so the rollup means exactly what
the metric means), stored bare (its measure's aggregate, before `fill_nulls_with`), and the table
stacks them: one row per (leaf, group), `_canon_part` telling the leaf. A request is answered from
the rollup only when that is exact:
- every measure it aggregates is a leaf, without time offsets or windows;
- sums and counts (and min/max) re-aggregate over coarser groups; distinct counts, averages, medians,
  entity-level and semi-additive measures, and leaves whose dimensions fan the measure out, only at
  the rollup's own grain (each group is then one stored row);
- every dimension and filter names a rollup dimension (time ones at a grain the stored one rolls up
  to: day -> week/month/...; week only to itself);
- the time range starts and ends on boundaries of the rollup's time grain;
- no time zone, filled gaps or conversion metrics.
An affinity rollup stores the pair-level answer itself and answers only at its own item dimensions,
without filters or time range. Otherwise `answer` returns the reason, and the request runs raw.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime

from sqlglot import ErrorLevel, exp

from . import model as m
from .calendar import CLOCK_GRAINS, period_start, truncate
from .catalog import Catalog
from .errors import QueryError, UnknownNameError, did_you_mean
from .metric_filters import MetricRef
from .plan import AggregateNode, plan, timestamp
from .refs import METRIC_TIME, DimRef, parse_ref
from .render.build import alias, col, ident, select
from .render.dialects import adapt
from .render.query import _finish as finish_clauses
from .render.query import render_plan
from .request import QueryRequest
from .resolve import ResolvedQuery, resolve

SCHEMA = "canon_rollups"
PART = "_canon_part"
STATE_TABLE = "_canon_state"
ADDITIVE = {"sum": exp.Sum, "count": exp.Sum, "min": exp.Min, "max": exp.Max}
# a stored period rolls up to a coarser one only when each coarser period is a union of stored ones
ROLLS_UP = {
    "day": {"day", "week", "month", "quarter", "year", "fiscal_quarter", "fiscal_year"},
    "week": {"week"},
    "month": {"month", "quarter", "year", "fiscal_quarter", "fiscal_year"},
    "quarter": {"quarter", "year"},
    "year": {"year"},
}


@dataclass(frozen=True)
class Leaf:
    index: int
    metric: str
    column: str
    measure: str  # model.measure
    filters: tuple[int, ...]  # ids of the catalog's parsed filters, as resolve binds them
    agg: str  # how stored values combine: sum | count | min | max | exact (same grain only)


@dataclass(frozen=True)
class RollupDim:
    ref: str
    column: str
    key: tuple  # (kind, dimension ref) — the same dimension however it is written
    grain: str | None  # time dimensions: the stored period


@dataclass(frozen=True)
class RollupLayout:
    name: str
    definition: m.Rollup
    dims: tuple[RollupDim, ...]
    leaves: tuple[Leaf, ...]
    time: RollupDim | None  # the metric_time column, when the rollup has one
    fingerprint: str  # changes whenever what fills the table changes (definitions, dialect)

    @property
    def columns(self) -> list[str]:
        return [PART] + [d.column for d in self.dims] + [leaf.column for leaf in self.leaves]


def rollup_dimensions(rollup: m.Rollup) -> tuple[str, ...]:
    return tuple(rollup.dimensions) + ((f"{METRIC_TIME}.{rollup.time_grain}",) if rollup.time_grain else ())


def leaf_metrics(catalog: Catalog, rollup: m.Rollup) -> tuple[str, ...]:
    """The simple metrics a rollup stores: its simple metrics and the parts of its ratios and derived ones."""
    found: list[str] = []

    def visit(name: str, path: str):
        metric = catalog.metrics.get(name)
        if metric is None:
            raise UnknownNameError(f"rollup '{rollup.name}': unknown metric '{name}'",
                                   hint=did_you_mean(name, catalog.metrics))
        if isinstance(metric, m.SimpleMetric):
            if name not in found:
                found.append(name)
            return
        if isinstance(metric, (m.RatioMetric, m.DerivedMetric)):
            inputs = (metric.numerator, metric.denominator) if isinstance(metric, m.RatioMetric) else metric.metrics
            for item in inputs:
                if isinstance(item, m.MetricInput):
                    if item.filter or item.offset_window:
                        raise QueryError(f"rollup '{rollup.name}': metric '{path}' filters or shifts its input "
                                         f"'{item.name}', which a rollup cannot store",
                                         hint="leave it out; it is answered from the raw tables")
                    item = item.name
                visit(item, f"{path} → {item}")
            return
        raise QueryError(f"rollup '{rollup.name}': metric '{path}' is {metric.type}; a rollup stores simple metrics "
                         "and the parts of ratio and derived ones",
                         hint="leave it out; it is answered from the raw tables")

    for name in rollup.metrics:
        visit(name, name)
    return tuple(found)


def _dim_key(ref: DimRef) -> tuple:
    return (METRIC_TIME, None) if ref.kind == METRIC_TIME else (ref.kind, ref.dimension.ref)


def _is_time(ref: DimRef) -> bool:
    return ref.kind == METRIC_TIME or ref.type == "time"


def layout(catalog: Catalog, rollup: m.Rollup, dialect: str = "duckdb", *, fingerprint: bool = True) -> RollupLayout:
    """What a rollup stores and how each leaf combines; raises a CanonError naming what does not fit.
    The fingerprint compiles every leaf (validation, which only checks, leaves it out)."""
    if any(name in catalog.affinities for name in rollup.metrics):
        return _affinity_layout(catalog, rollup, dialect, fingerprint)
    refs = rollup_dimensions(rollup)
    dims = []
    for ref in refs:
        parsed = parse_ref(catalog, ref)
        if parsed.kind not in ("dimension", METRIC_TIME):
            raise QueryError(f"rollup '{rollup.name}': '{ref}' cannot be stored", hint="name <model>.<dimension>")
        grain = (parsed.grain or "day") if _is_time(parsed) else None
        if grain is not None and grain not in ROLLS_UP:
            raise QueryError(f"rollup '{rollup.name}': '{ref}' is stored at {grain}; rollups keep day or coarser",
                             hint="use day, week, month, quarter or year")
        dims.append(RollupDim(ref, parsed.alias, _dim_key(parsed), grain))
    keys = [d.key for d in dims]
    if len(set(keys)) != len(keys):
        raise QueryError(f"rollup '{rollup.name}': a dimension is listed twice", hint="list each dimension once")
    time = next((d for d in dims if d.key[0] == METRIC_TIME), None)
    if rollup.partition_by and (time is None or rollup.partition_by not in ROLLS_UP[time.grain]):
        raise QueryError(f"rollup '{rollup.name}': partition_by {rollup.partition_by} needs a time_grain that rolls up "
                         "to it", hint="e.g. time_grain: day with partition_by: month")
    leaves, digest = [], hashlib.sha256(repr((rollup.name, refs)).encode())
    for index, name in enumerate(leaf_metrics(catalog, rollup)):
        request = QueryRequest(metrics=(name,), dimensions=refs)
        resolved = resolve(catalog, request)
        node = plan(catalog, resolved).nodes[0]
        item = resolved.inputs[0]
        measure = item.measure
        combinable = (measure.agg in ADDITIVE and measure.per is None and measure.non_additive is None
                      and isinstance(node, AggregateNode) and not node.fanout)
        leaves.append(Leaf(index, name, f"v_{name}", measure.ref, tuple(id(f) for f in item.filters),
                           measure.agg if combinable else "exact"))
        if fingerprint:
            digest.update(leaf_query(catalog, refs, name, dialect).sql(dialect=dialect).encode())
    return RollupLayout(rollup.name, rollup, tuple(dims), tuple(leaves), time,
                        digest.hexdigest()[:16] if fingerprint else "")


def _affinity_layout(catalog: Catalog, rollup: m.Rollup, dialect: str, fingerprint: bool) -> RollupLayout:
    """An affinity rollup stores the pair-level answer itself (every pair, no order or limit): pairs do
    not re-aggregate (a basket holding two phones counts once for 'Phones'), so it answers only requests
    at exactly its item dimensions, without filters or time range; order, limit and HAVING apply on it."""
    if rollup.time_grain or rollup.partition_by:
        raise QueryError(f"rollup '{rollup.name}': affinity metrics are stored over all baskets, without time_grain "
                         "or partition_by", hint="leave time_grain and partition_by out")
    request = QueryRequest(metrics=tuple(rollup.metrics), dimensions=tuple(rollup.dimensions))
    try:
        resolved = resolve(catalog, request)
    except QueryError as error:
        raise QueryError(f"rollup '{rollup.name}': {error.message}", hint=error.hint) from None
    dims = tuple(RollupDim(d.ref, d.alias, _dim_key(d), d.grain) for d in resolved.dims)
    leaves = tuple(Leaf(0, name, f"v_{name}", f"affinity:{name}", (), "exact") for name in rollup.metrics)
    digest = hashlib.sha256(repr((rollup.name, rollup.dimensions)).encode())
    if fingerprint:
        digest.update(_affinity_query(catalog, rollup, dialect).sql(dialect=dialect).encode())
    return RollupLayout(rollup.name, rollup, dims, leaves, None, digest.hexdigest()[:16] if fingerprint else "")


def _affinity_query(catalog: Catalog, rollup: m.Rollup, dialect: str) -> exp.Select:
    from .compile import compile_request

    return compile_request(catalog, QueryRequest(metrics=tuple(rollup.metrics), dimensions=tuple(rollup.dimensions)),
                           dialect).tree


def is_affinity(lay: RollupLayout) -> bool:
    return lay.leaves[0].measure.startswith("affinity:")


def plan_rollups(catalog: Catalog, dialect: str = "duckdb") -> dict[str, RollupLayout]:
    """Every rollup's layout (the catalog validated them, so none fails here)."""
    return {name: layout(catalog, rollup, dialect) for name, rollup in sorted(catalog.rollups.items())}


def check_rollups(catalog: Catalog, problems) -> None:
    """Validation: each rollup's metrics and dimensions resolve and can be stored."""
    for name, rollup in catalog.rollups.items():
        problems.check(lambda: layout(catalog, rollup, fingerprint=False), rollup.location, "")


def leaf_query(catalog: Catalog, refs: tuple[str, ...], metric: str, dialect: str, start: str | None = None,
               end: str | None = None) -> exp.Select:
    """The query filling one leaf: the metric's measure aggregated at the rollup's grain, as the metric
    means it (filters, joins, fan-out handling), but bare: no `fill_nulls_with` (the request applies its
    own after re-aggregating) and no filled periods (a stored empty period would be a row)."""
    request = QueryRequest(metrics=(metric,), dimensions=refs, start=start, end=end, fill_gaps=False)
    resolved = resolve(catalog, request)
    bare = replace(resolved, outputs=((metric, exp.column(resolved.inputs[0].alias)),))
    return adapt(render_plan(catalog, plan(catalog, bare)), dialect)


# --- filling the table ---------------------------------------------------------------------------------


def rollup_table(name: str, suffix: str = "") -> exp.Table:
    return exp.Table(this=ident(name + suffix), db=ident(SCHEMA))


def build_parts(catalog: Catalog, lay: RollupLayout, dialect: str, start: str | None = None,
                end: str | None = None) -> list[tuple[Leaf, exp.Select]]:
    """Per leaf, the query that fills it (over [start, end) of metric_time when given); an affinity
    rollup is filled by one query holding all its metrics."""
    if is_affinity(lay):
        return [(lay.leaves[0], _affinity_query(catalog, lay.definition, dialect))]
    refs = tuple(d.ref for d in lay.dims)
    return [(leaf, leaf_query(catalog, refs, leaf.metric, dialect, start, end)) for leaf in lay.leaves]


def typed_empty(lay: RollupLayout, parts: list[tuple[Leaf, exp.Select]]) -> exp.Select:
    """A SELECT with the table's columns, typed as the parts produce them, and no rows (CREATE TABLE AS)."""
    sources = [exp.Subquery(this=tree.copy(), alias=exp.TableAlias(this=ident(f"p{leaf.index}"))) for leaf, tree in parts]
    first = f"p{parts[0][0].index}"
    values = [alias(exp.cast(exp.Literal.number(0), exp.DataType.Type.INT), PART)]
    values += [alias(col(d.column, first), d.column) for d in lay.dims]
    values += [alias(col(leaf.metric, f"p{leaf.index}"), leaf.column) for leaf in _stored(lay, parts)]
    query = select(values, sources[0], joins=[exp.Join(this=s, kind="CROSS") for s in sources[1:]],
                   where=[exp.EQ(this=exp.Literal.number(1), expression=exp.Literal.number(0))])
    query.set("limit", exp.Limit(expression=exp.Literal.number(0)))
    return query


def _stored(lay: RollupLayout, parts) -> list[Leaf]:
    """The leaves each part's query fills: its own, or every metric of an affinity rollup's one query."""
    return list(lay.leaves) if is_affinity(lay) else [leaf for leaf, _ in parts]


def insert_part(target: exp.Table, lay: RollupLayout, leaf: Leaf, tree: exp.Select) -> exp.Insert:
    filled = list(lay.leaves) if is_affinity(lay) else [leaf]
    columns = [PART] + [d.column for d in lay.dims] + [f.column for f in filled]
    values = [exp.Literal.number(leaf.index)] + [col(d.column, "p") for d in lay.dims] + [col(f.metric, "p") for f in filled]
    source = select(values, exp.Subquery(this=tree, alias=exp.TableAlias(this=ident("p"))))
    return exp.Insert(this=exp.Schema(this=target.copy(), expressions=[ident(c) for c in columns]), expression=source)


def time_bounds(lay: RollupLayout, start: str | None, end: str | None, table: str | None = None) -> list[exp.Expression]:
    column = col(lay.time.column, table)
    bounds = []
    if start:
        bounds.append(exp.GTE(this=column, expression=timestamp(start)))
    if end:
        bounds.append(exp.LT(this=column.copy(), expression=timestamp(end)))
    return bounds


# --- answering from it ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Routed:
    sql: str
    columns: list[tuple[str, str]]
    tree: exp.Select
    dialect: str


def answer(catalog: Catalog, request: QueryRequest, lay: RollupLayout, target: exp.Table,
           dialect: str) -> Routed | str:
    """The request as a query over the rollup's table when that is exact; otherwise why not."""
    if not request.metrics or getattr(request, "ungrouped", False):
        return "not a metric request"
    if request.timezone:
        return "a time zone shifts days the rollup stored in UTC"
    try:
        resolved = resolve(catalog, request)
    except Exception:  # noqa: BLE001 — a bad request fails on the raw path with its own message
        return "the request does not resolve"
    if resolved.affinity is not None or is_affinity(lay):
        return _answer_affinity(resolved, lay, target, dialect)
    reason = _unanswerable(resolved)
    if reason:
        return reason
    leaves = {(leaf.measure, leaf.filters): leaf for leaf in lay.leaves}
    used: dict[str, Leaf] = {}
    for item in resolved.inputs:
        leaf = leaves.get((item.measure.ref, tuple(id(f) for f in item.filters)))
        if leaf is None:
            return f"metric '{item.metric}' needs {item.measure.ref} as the rollup does not store it"
        used[item.alias] = leaf
    stored = {d.key: d for d in lay.dims}
    exact = {(_dim_key(d), (d.grain or "day") if _is_time(d) else None) for d in resolved.dims} == \
        {(d.key, d.grain) for d in lay.dims}
    for leaf in used.values():
        if leaf.agg == "exact" and not exact:
            return f"metric '{leaf.metric}' is exact only at the rollup's own grain ({', '.join(d.ref for d in lay.dims)})"
    groups = []
    for d in resolved.dims:
        value = _column(d, (d.grain or "day") if _is_time(d) else None, stored, resolved)
        if isinstance(value, str):
            return value
        groups.append((d.alias, value))
    where: list[exp.Expression] = [exp.In(this=col(PART), expressions=[exp.Literal.number(i) for i in
                                                                        sorted({leaf.index for leaf in used.values()})])]
    for bound in resolved.where:
        if bound.parsed.condition.find(MetricRef) is not None:
            return "a filter on another metric reads that metric's own rows, which no rollup keeps"
        values = {}
        for ref, parsed in bound.refs.items():
            if _is_time(parsed) and parsed.grain is None:
                return f"filter on '{ref}' compares exact times; the rollup keeps periods"
            value = _column(parsed, parsed.grain, stored, resolved)
            if isinstance(value, str):
                return value
            values[ref] = value
        from .sqlexpr import column_ref

        where.append(bound.parsed.condition.copy().transform(
            lambda n: values[column_ref(n)].copy() if isinstance(n, exp.Column) else n))
    if resolved.start or resolved.end:
        if lay.time is None:
            return "a time range needs metric_time in the rollup"
        for bound in (resolved.start, resolved.end):
            if bound and datetime.fromisoformat(period_start(bound, lay.time.grain, resolved.time)) != datetime.fromisoformat(bound):
                return f"the time range bound {bound} does not start a {lay.time.grain}, the rollup's grain"
        where += time_bounds(lay, resolved.start, resolved.end)
    aggregates = {name: _combine(leaf) for name, leaf in used.items()}
    outputs = [alias(expr.transform(lambda n: aggregates[n.name].copy() if isinstance(n, exp.Column) and n.name in aggregates
                                    else n), name) for name, expr in resolved.outputs]
    finish = finish_clauses(resolved)
    inner = {} if resolved.having is not None else finish
    query = select([alias(v, a) for a, v in groups] + outputs, target.copy(), where=where,
                   group=[v.copy() for _, v in groups], **inner)
    if resolved.having is not None:
        query = select([exp.Star()], exp.Subquery(this=query, alias=exp.TableAlias(this=ident("_canon_result"))),
                       where=[resolved.having.copy()], **finish)
    tree = adapt(query, dialect)
    sql = tree.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
    return Routed(sql, resolved.columns, tree, dialect)


def _answer_affinity(resolved: ResolvedQuery, lay: RollupLayout, target: exp.Table, dialect: str) -> Routed | str:
    """A request for product pairs from a rollup of the same pairs: each stored row is a row of the answer."""
    if resolved.affinity is None or not is_affinity(lay):
        return "affinity metrics and the others are stored apart"
    stored = {leaf.metric: leaf for leaf in lay.leaves}
    missing = [name for name, _ in resolved.outputs if name not in stored]
    if missing:
        return f"affinity metric '{missing[0]}' is not stored in the rollup"
    if {_dim_key(d) for d in resolved.dims} != {d.key for d in lay.dims} or \
            {(_dim_key(d), d.grain) for d in resolved.dims} != {(d.key, d.grain) for d in lay.dims}:
        return f"product pairs are exact only at the rollup's own dimensions ({', '.join(d.ref for d in lay.dims)})"
    if resolved.where or resolved.start or resolved.end:
        return "filters and time ranges change the baskets in scope; the rollup holds all of them"
    columns = {d.key: d.column for d in lay.dims}
    values = [alias(col(columns[_dim_key(d)]), d.alias) for d in resolved.dims]
    values += [alias(col(stored[name].column), name) for name, _ in resolved.outputs]
    finish = finish_clauses(resolved)
    query = select(values, target.copy(), **({} if resolved.having is not None else finish))
    if resolved.having is not None:
        query = select([exp.Star()], exp.Subquery(this=query, alias=exp.TableAlias(this=ident("_canon_result"))),
                       where=[resolved.having.copy()], **finish)
    tree = adapt(query, dialect)
    return Routed(tree.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE), resolved.columns, tree, dialect)


def _unanswerable(resolved: ResolvedQuery) -> str | None:
    if resolved.conversions:
        return "conversion metrics follow each entity over time"
    if resolved.fill_time:
        return "filled periods come from the time spine"
    moving = [i.metric for i in resolved.inputs if i.offset is not None or i.cumulative is not None]
    if moving:
        return f"metric '{moving[0]}' reads other periods (offset or window)"
    return None


def _column(ref: DimRef, grain: str | None, stored: dict, resolved: ResolvedQuery) -> exp.Expression | str:
    """A requested dimension (at `grain`) as an expression over the rollup's columns."""
    found = stored.get(_dim_key(ref))
    if found is None:
        return f"'{ref.ref}' is not a dimension of the rollup"
    if grain is None or grain == found.grain:
        return col(found.column)
    if grain in CLOCK_GRAINS or grain not in ROLLS_UP.get(found.grain, ()):
        return f"'{ref.ref}' is at {grain}, which the rollup's {found.grain} does not roll up to"
    return truncate(col(found.column), grain, resolved.time)


def _combine(leaf: Leaf) -> exp.Expression:
    if leaf.agg == "exact":  # one stored row per group: its value
        return exp.Max(this=col(leaf.column))
    value = ADDITIVE[leaf.agg](this=col(leaf.column))
    # a count re-summed stays a whole number (engines widen SUM of integers to numeric / int128)
    return exp.cast(value, exp.DataType.Type.BIGINT) if leaf.agg == "count" else value

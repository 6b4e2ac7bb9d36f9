"""`canon validate --warehouse`: every model checked against the live schema, each problem as file:line.

    problems = check_warehouse(catalog, runtime.run_sql)   # [ConfigError], empty when all is well

Per model, in order, stopping at the first thing that fails (later checks would only repeat it):
1. its table exists (information_schema), else "table 'x' is not in the warehouse — did you mean ...";
   a `sql:` model's query runs as `SELECT * FROM (query) LIMIT 0`, which also gives its columns;
2. every column an entity, dimension or measure names is one of the table's columns (did you mean);
3. one `SELECT <every expression> FROM <source> LIMIT 0` probe (measures inside their aggregate, so
   `sum(a_text_column)` fails here): the engine binds and type-checks without reading a row. When the
   probe fails, each expression is probed alone to name the one at fault, with the engine's message.
Then, when no model had a problem, each metric's own query is probed the same way (`LIMIT 0` around
its compiled SQL), which catches what only appears there (a missing time spine, a filter's types).
Everything sent is a sqlglot tree built from the validated catalog; nothing here parses SQL text.
"""

from __future__ import annotations

import difflib
from typing import Callable, Iterable

from sqlglot import exp

from canon.compiler.catalog import Catalog, ModelInfo
from canon.compiler.errors import CanonError, ConfigError, Location, WarehouseUnavailableError, did_you_mean

from .warehouse_schema import read_schema, table_names

Run = Callable[[exp.Expression], tuple[list[str], list[tuple]]]

AGGREGATES = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max, "count": exp.Count}


class Probe:
    """One expression to check: what it is (for the message), where it is written, its SQL."""

    def __init__(self, what: str, location: Location | None, expr: exp.Expression, aggregated: bool = False):
        self.what, self.location, self.expr, self.aggregated = what, location, expr, aggregated


def check_warehouse(catalog: Catalog, run: Run, dialect: str = "duckdb", *, metrics: bool = True) -> list[CanonError]:
    """Every problem found; `metrics=False` probes the models only (a server's start: fewer queries)."""
    tables = [m.definition.table for m in catalog.models.values() if m.definition.table]
    schema = read_schema(run, tables)
    problems: list[CanonError] = []
    for model in catalog.models.values():
        problems += _check_model(model, schema, run)
    if metrics and not problems:
        problems += _check_metrics(catalog, run, dialect)
    return problems


def _check_model(model: ModelInfo, schema, run: Run) -> list[CanonError]:
    sm = model.definition
    if sm.table:
        table = schema.find(sm.table)
        if table is None:
            return [ConfigError(f"semantic model '{sm.name}': table '{sm.table}' is not in the warehouse",
                                location=sm.location_of("table"), hint=did_you_mean(sm.table, table_names(run)))]
        columns = list(table.columns)
    else:
        try:
            columns, _ = run(exp.select(exp.Star()).from_(model.source.copy()).limit(0))
        except WarehouseUnavailableError:
            raise
        except CanonError as error:
            return [ConfigError(f"semantic model '{sm.name}': its sql fails on the warehouse: {error.message}",
                                location=sm.location_of("sql"), hint="run the query by hand and fix it")]
    problems, sound = _unknown_columns(model, list(_probes(model)), columns)
    return problems + _probe(model, sound, run)


def _probes(model: ModelInfo) -> Iterable[Probe]:
    sm = model.definition
    for entity, info in zip(sm.entities, (model.entities.get(e.name) for e in sm.entities)):
        if info is not None:
            yield Probe(f"entity '{entity.name}'", entity.location_of("expr"), info.expr)
    for dim in sm.dimensions:
        info = model.dimensions.get(dim.name)
        if info is not None:
            yield Probe(f"dimension '{dim.name}'", dim.location_of("expr"), info.expr)
    for measure in sm.measures:
        info = model.measures.get(measure.name)
        if info is None:
            continue
        where = measure.location_of("expr")
        if info.per is not None:  # an entity-level measure: its inner aggregate, per key
            if info.per.expr is not None:
                yield Probe(f"measure '{measure.name}'", where, info.per.expr)
            continue
        if info.expr is None:
            continue
        aggregate = AGGREGATES.get(info.agg)
        if aggregate is not None:
            yield Probe(f"measure '{measure.name}'", where, aggregate(this=info.expr.copy()), aggregated=True)
        elif info.agg == "count_distinct":
            yield Probe(f"measure '{measure.name}'", where,
                        exp.Count(this=exp.Distinct(expressions=[info.expr.copy()])), aggregated=True)
        else:  # median, percentile: the expression itself (their aggregates differ per engine)
            yield Probe(f"measure '{measure.name}'", where, info.expr)


def _unknown_columns(model: ModelInfo, probes: list[Probe], columns: list[str]) -> tuple[list, list[Probe]]:
    """Problems for columns the source does not have, and the probes that name none of them."""
    known = {c.lower(): c for c in columns}
    problems, sound = [], []
    for probe in probes:
        unknown = [c for c in probe.expr.find_all(exp.Column) if c.table == model.name and c.name.lower() not in known]
        if not unknown:
            sound.append(probe)
        for column in unknown:
            close = difflib.get_close_matches(column.name.lower(), known, n=3, cutoff=0.6)
            hint = ("did you mean " + " or ".join(repr(known[c]) for c in close) + "?") if close \
                else did_you_mean(column.name, columns)
            table = model.definition.table or "its sql"
            problems.append(ConfigError(f"{probe.what} of model '{model.name}': column '{column.name}' is not in "
                                        f"{table}", location=probe.location, hint=hint))
    return problems, sound


def _select(model: ModelInfo, probes: list[Probe]) -> exp.Select:
    projections = [exp.alias_(p.expr.copy(), f"_p{i}", quoted=True) for i, p in enumerate(probes)]
    return exp.select(*projections).from_(model.source.copy()).limit(0)


def _probe(model: ModelInfo, probes: list[Probe], run: Run) -> list[CanonError]:
    """All expressions in two queries (plain, aggregated); one by one only when one of them fails."""
    problems = []
    for group in ([p for p in probes if not p.aggregated], [p for p in probes if p.aggregated]):
        if not group or _fails(run, _select(model, group)) is None:
            continue
        for probe in group:
            error = _fails(run, _select(model, [probe]))
            if error is not None:
                problems.append(ConfigError(f"{probe.what} of model '{model.name}' fails on the warehouse: "
                                            f"{error.message}", location=probe.location,
                                            hint="fix the expression; it runs as SQL of this warehouse"))
    return problems


def _check_metrics(catalog: Catalog, run: Run, dialect: str) -> list[CanonError]:
    from canon.compiler.compile import compile_request
    from canon.compiler.request import QueryRequest

    problems = []
    for name, metric in catalog.metrics.items():
        try:
            tree = compile_request(catalog, QueryRequest(metrics=(name,)), dialect).tree
        except CanonError:
            continue  # a metric that needs more than its name (an affinity's dimensions): not probed alone
        error = _fails(run, exp.select(exp.Star()).from_(tree.subquery("_canon_probe", copy=True)).limit(0))
        if error is not None:
            problems.append(ConfigError(f"metric '{name}' fails on the warehouse: {error.message}",
                                        location=metric.location, hint="check its measure, filter and time spine"))
    return problems


def _fails(run: Run, tree: exp.Expression) -> CanonError | None:
    try:
        run(tree)
    except WarehouseUnavailableError:
        raise
    except CanonError as error:
        return error
    return None

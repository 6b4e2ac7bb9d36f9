"""Compile and run a request: the one path every API (CLI, HTTP, Cube, PostgreSQL wire) shares."""

from __future__ import annotations

import time

from compiler.catalog import Catalog
from compiler.compile import compile_request
from compiler.request import QueryRequest

from .results import QueryResult, column_type, json_value
from .warehouse import Warehouse


def run_query(catalog: Catalog, warehouse: Warehouse, request: QueryRequest) -> QueryResult:
    started = time.perf_counter()
    compiled = compile_request(catalog, request, warehouse.dialect)
    _, rows = warehouse.execute(compiled.sql)
    elapsed = (time.perf_counter() - started) * 1000
    columns = [{"name": name, "type": column_type(kind)} for name, kind in compiled.columns]
    return QueryResult(
        columns=columns,
        rows=[[json_value(v) for v in row] for row in rows],
        sql=compiled.sql,
        elapsed_ms=round(elapsed, 3),
        warnings=deprecation_warnings(catalog, request) or None,
    )


def deprecation_warnings(catalog: Catalog, request: QueryRequest) -> list[str]:
    warnings = []
    for name in request.metrics:
        metric = catalog.metrics.get(name)
        if metric is not None and metric.tier == "deprecated":
            text = f"metric '{name}' is deprecated"
            if metric.replaced_by:
                text += f"; use '{metric.replaced_by}' instead"
            if metric.sunset:
                text += f" (removed after {metric.sunset})"
            warnings.append(text)
    return warnings

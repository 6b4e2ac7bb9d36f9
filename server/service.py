"""Compile and run a request: the one path every API (CLI, HTTP, Cube, PostgreSQL wire) shares."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from canon.compiler.catalog import Catalog
from canon.compiler.compile import compile_request
from canon.compiler.request import QueryRequest

from .results import QueryResult, column_type, json_value
from .warehouse import Warehouse


class CompileCache:
    """Compiled SQL by (catalog version, request, dialect), for servers: dashboards repeat the same
    queries. A relative time range is cached only when "today" is pinned (the clock moves on)."""

    def __init__(self, size: int = 1024):
        self.size, self._entries, self._lock = size, OrderedDict(), threading.Lock()

    def compile(self, catalog: Catalog, request: QueryRequest, dialect: str):
        if request.time_range and not (request.today or catalog.settings.calendar.now):
            return compile_request(catalog, request, dialect)
        key = (catalog.version, request, dialect)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        compiled = compile_request(catalog, request, dialect)
        with self._lock:
            self._entries[key] = compiled
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return compiled


def run_query(catalog: Catalog, warehouse: Warehouse, request: QueryRequest, *, freshness=None,
              cache: CompileCache | None = None) -> QueryResult:
    """Compile for the warehouse's dialect, run, shape the result. `freshness` (a freshness report,
    see server.governance.freshness) adds a warning for each stale source the metrics read."""
    started = time.perf_counter()
    compiled = (cache.compile if cache else compile_request)(catalog, request, warehouse.dialect)
    _, rows = warehouse.execute(compiled.sql)
    elapsed = (time.perf_counter() - started) * 1000
    columns = [{"name": name, "type": column_type(kind)} for name, kind in compiled.columns]
    return QueryResult(
        columns=columns,
        rows=[[json_value(v) for v in row] for row in rows],
        sql=compiled.sql,
        elapsed_ms=round(elapsed, 3),
        warnings=(deprecation_warnings(catalog, request) + stale_source_warnings(catalog, request, freshness)) or None,
    )


def stale_source_warnings(catalog: Catalog, request: QueryRequest, freshness) -> list[str]:
    if not freshness:
        return []
    from .governance.freshness import freshness_warnings

    return freshness_warnings(catalog, freshness, request.metrics)


def freshness_now(catalog: Catalog):
    """The moment ages are measured from: the end of the project's pinned `calendar.now`, or the clock."""
    import datetime as dt

    pinned = catalog.settings.calendar.now
    if pinned:
        day = dt.date.fromisoformat(str(pinned)[:10])
        return dt.datetime.combine(day, dt.time(23, 59, 59))
    return None


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

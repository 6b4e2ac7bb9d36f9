"""The runtime: the one service every front end runs its queries through.

    runtime = Runtime.open(project, warehouse_url, background=True)   # servers: reload + freshness threads
    result = runtime.query(QueryRequest(metrics=("revenue",)), identity=Identity("ann", "http"))
    stream = runtime.stream(request, ticket=ticket)                     # rows in bounded batches (wire)
    names, rows = runtime.run_sql(tree)                                 # Canon-built SQL (values, tests)

It owns the catalog snapshot (hot reload), the compile cache, the warehouse, the guard rails (time and
row caps), source freshness (refreshed in the background), lineage (built once per catalog version)
and the identity every query carries. Front ends translate their protocol into a QueryRequest and the
result back; nothing else. Everything here blocks: async front ends call `await runtime.run(...)`,
which runs the work in the runtime's pool and stops the engine's query when the caller goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from sqlglot import exp

from canon.compiler.catalog import Catalog
from canon.compiler.compile import CompiledQuery
from canon.compiler.errors import (CanonError, QueryError, QueryTimeoutError, ResultTooLargeError, WarehouseUnavailableError)
from canon.compiler.request import QueryRequest

from ..results import QueryResult, column_type, json_value
from ..rollups.router import RollupRouter
from ..rollups.schedule import RollupSchedule, ScheduleSettings
from .exports import Exports
from ..warehouses.base import DEFAULT_BATCH_ROWS, QueryTicket
from .access import ANONYMOUS, AccessControl, Grant, Identity, apply_policies
from .activity import Activity
from .audit import AuditLog, AuditSettings
from .authn import Authenticator
from .compile_cache import CompileCache
from .freshness import FreshnessMonitor
from .limits import Limits
from .result_cache import CacheSettings, ResultCache, file_stamp, result_bytes
from .state import CatalogState, Reloader
from .time_notes import annotate as annotate_time

log = logging.getLogger("canon.runtime")

QUERY_WORKERS = 16
GRACE_S = 5.0  # how long past its cap a caller waits for an engine that does not stop by itself


@dataclass
class Prepared:
    """A request made ready to run: policies applied, caps set, SQL compiled, warnings known."""

    catalog: Catalog
    request: QueryRequest
    compiled: CompiledQuery
    row_cap: int | None  # None: internal callers, no cap
    timeout_s: float
    warnings: list[str]
    identity: Identity = ANONYMOUS
    grant: Grant = Grant()
    rollup: tuple[str, str] | None = None  # (name, build stamp) of the rollup that answers, if one does

    @property
    def columns(self) -> list[dict]:
        return [{"name": name, "type": column_type(kind)} for name, kind in self.compiled.columns]


class QueryStream:
    """The rows of one running query, in batches of raw engine values. Past the row cap it either
    stops with `truncated` set and a warning (`overflow="cut"`) or raises ResultTooLargeError."""

    def __init__(self, prepared: Prepared, stream, overflow: str):
        self.prepared, self._stream, self._overflow = prepared, stream, overflow
        self.rows_sent = 0
        self.truncated = False
        self.started = time.perf_counter()
        self.failure: BaseException | None = None
        self.on_close = None  # called once with the stream when it ends (the audit line)

    @property
    def columns(self) -> list[dict]:
        return self.prepared.columns

    @property
    def warnings(self) -> list[str]:
        return self.prepared.warnings

    def __iter__(self):
        cap = self.prepared.row_cap
        try:
            for batch in self._stream:
                if cap is not None and self.rows_sent + len(batch) > cap:
                    batch = batch[:cap - self.rows_sent]
                    if batch:
                        self.rows_sent += len(batch)
                        yield batch
                    self._over_cap(cap)
                    return
                self.rows_sent += len(batch)
                yield batch
        except Exception as error:  # not GeneratorExit: a reader that stops early is no failure
            self.failure = error
            raise
        finally:
            self.close()

    def _over_cap(self, cap: int) -> None:
        if self._overflow == "error":
            raise ResultTooLargeError(f"the result has more than {cap:,} rows, this server's row limit",
                                      hint="add filters, group by fewer dimensions or add a LIMIT; an operator can "
                                           "raise limits.max_rows in canon.yml")
        self.truncated = True
        self.prepared.warnings.append(f"the result has more than {cap:,} rows and was cut there; add filters or a limit")

    def close(self) -> None:
        self._stream.close()
        done, self.on_close = self.on_close, None
        if done is not None:
            done(self)


class Runtime:
    def __init__(self, state: CatalogState, warehouse_url: str, limits: Limits = Limits(), *,
                 reload_interval_s: float = 0, freshness_interval_s: float = 60.0):
        self.state = state
        self.project = state.project
        self.url = warehouse_url
        self.limits = limits
        self.compiled = CompileCache()
        self.results = ResultCache(CacheSettings(enabled=False))  # servers enable it from canon.yml (`secure`)
        self.activity = Activity()  # queries in flight: background builds wait for a quiet moment
        self.pool = ThreadPoolExecutor(max_workers=QUERY_WORKERS, thread_name_prefix="canon-query")
        self.last_error: str | None = None
        self._warehouse = None
        self._owns_warehouse = True
        self._open_lock = threading.Lock()
        self._lineage: tuple[str, object] | None = None
        self._typed: tuple[Catalog, Catalog] | None = None  # (catalog, it with the warehouse's column types)
        self._typed_lock = threading.Lock()
        self._closing = threading.Event()
        self._schema_check: threading.Thread | None = None  # the check of the catalog at a server's start
        self._reload_interval_s = reload_interval_s
        self._reloader: Reloader | None = None
        # who is asking and what they may see: set from canon.yml by `open` (a bare runtime is open)
        self.authn = Authenticator()
        self.access = AccessControl()
        self.audit = AuditLog(AuditSettings(None, False))
        self.freshness = FreshnessMonitor(lambda: self.catalog, self.internal, freshness_interval_s)
        self.rollups = RollupRouter(self.run_sql)  # which built rollups may answer (server/rollups/router.py)
        self.exports = Exports(self, self.project)  # saved-query exports and what they last did
        self.rollup_schedule = RollupSchedule(self, self.project)  # rollups refreshed on `refresh.every`

    @classmethod
    def open(cls, project=None, warehouse_url: str | None = None, *, query_timeout_s: float | None = None,
             max_rows: int | None = None, reload_interval_s: float = 0, cached_catalog: bool = False) -> "Runtime":
        """The runtime of a project (found as the CLI finds it) and its warehouse (flag, environment,
        canon.yml, demo). `cached_catalog` reads the validated catalog from .canon/ (one-shot CLI calls)."""
        from ..project import find_project, load_config, warehouse_url as resolve_warehouse

        root = find_project(project)
        state = CatalogState.load(root, cached=cached_catalog)
        config = load_config(root)
        limits = Limits.from_config(config, query_timeout_s=query_timeout_s, max_rows=max_rows)
        runtime = cls(state, resolve_warehouse(root, warehouse_url), limits, reload_interval_s=reload_interval_s)
        runtime.secure(config)
        runtime.rollup_schedule.settings = ScheduleSettings.from_config(config)
        return runtime

    def secure(self, config: dict) -> "Runtime":
        """Authentication, access policies and the audit log from canon.yml (and $CANON_API_SECRET)."""
        from .policies import AccessConfig

        self.authn = Authenticator.from_config(config, self.project)
        self.access = AccessControl(AccessConfig.from_config(config))
        cache = CacheSettings.from_config(config)
        if cache != self.results.settings:
            self.results = ResultCache(cache)
        audit = AuditSettings.from_config(config, self.project)
        if audit != self.audit.settings:
            self.audit.close()
            self.audit = AuditLog(audit)
        for problem in self.access.check(self.catalog):
            log.warning("%s", problem)
        self._secured = (self._config_stamp(), time.monotonic())
        return self

    def grant(self, identity: Identity, catalog: Catalog | None = None) -> Grant:
        """What this identity may see (listings hide what it may not)."""
        self._follow_config()
        return self.access.grant(identity, catalog or self.catalog)

    def _config_stamp(self):
        try:
            stat = (self.project / "canon.yml").stat()
            return stat.st_mtime_ns, stat.st_size, stat.st_ino
        except (OSError, TypeError):
            return None

    def _follow_config(self) -> None:
        """Edits to canon.yml's `access:`, `users:` and `audit:` apply without a restart (checked at
        most once a second); an edit that does not parse keeps the last good settings, loudly."""
        secured = getattr(self, "_secured", None)
        if secured is None or time.monotonic() - secured[1] < 1.0:
            return
        stamp = self._config_stamp()
        self._secured = (secured[0], time.monotonic())
        if stamp == secured[0]:
            return
        from ..project import load_config

        try:
            self.secure(load_config(self.project))
            log.warning("canon.yml changed: access policies, users and audit settings reloaded")
        except CanonError as error:
            self._secured = (stamp, time.monotonic())
            log.error("canon.yml changed but its security settings are invalid; keeping the previous ones: %s", error)

    @classmethod
    def over(cls, catalog: Catalog, warehouse, limits: Limits = Limits()) -> "Runtime":
        """A runtime over a catalog and an open warehouse (notebooks, tests, embedding): no project
        folder, no reload. The caller keeps owning the warehouse."""
        runtime = cls(CatalogState.fixed(catalog), warehouse.url, limits)
        runtime._warehouse = warehouse
        runtime._owns_warehouse = False
        return runtime

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> "Runtime":
        """Start the background work of a server: the catalog watcher and the freshness monitor."""
        if self._reload_interval_s:
            self._reloader = Reloader(self.state, self._reload_interval_s).start()
        self.freshness.start()
        self.rollups.start(lambda: self.catalog)
        if self.project is not None:
            self.exports.start()
            self.rollup_schedule.start()
        self._schema_check = threading.Thread(target=self.check_schema, name="canon-schema-check", daemon=True)
        self._schema_check.start()
        return self

    def check_schema(self) -> list[CanonError]:
        """The catalog's models against the warehouse (tables, columns, expressions), each problem logged
        as a warning (a server starts anyway); also learns the column types time zones need."""
        from ..validate_warehouse import check_warehouse

        def run(tree):  # stops between queries once the runtime closes
            if self._closing.is_set():
                raise WarehouseUnavailableError("the runtime closed")
            return self.run_sql(tree)

        try:
            problems = check_warehouse(self.catalog, run, self.sql_dialect, metrics=False)
            if not self._closing.is_set():
                self.typed()
        except CanonError as error:
            log.warning("the catalog was not checked against the warehouse: %s", error.message)
            return []
        for problem in problems:
            log.warning("warehouse check: %s", problem)
        return problems

    def close(self) -> None:
        self._closing.set()
        if self._schema_check is not None:
            self._schema_check.join(timeout=GRACE_S)
        if self._reloader is not None:
            self._reloader.stop()
        self.freshness.stop()
        self.rollups.stop()
        self.exports.stop()
        self.rollup_schedule.stop()
        self.audit.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self._warehouse is not None and self._owns_warehouse:
            try:
                self._warehouse.close()
            except Exception:  # noqa: BLE001 — closing must not fail a shutdown
                log.debug("closing the warehouse failed", exc_info=True)
            self._warehouse = None

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- what it holds --------------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The catalog now. Read it once per request: a reload mid-request cannot mix two versions."""
        return self.state.catalog

    def warehouse(self):
        """The warehouse, opened on first use (so one that is down now can come back)."""
        if self._warehouse is not None:
            return self._warehouse
        with self._open_lock:
            if self._warehouse is None:
                from ..warehouses import open_warehouse

                try:
                    self._warehouse = open_warehouse(self.url)
                    self.last_error = None
                except CanonError as error:
                    self.last_error = error.message
                    raise WarehouseUnavailableError(f"the warehouse is unavailable: {error.message}",
                                                    hint=error.hint) from None
                except Exception as error:  # noqa: BLE001 — a driver error is still "unavailable"
                    self.last_error = f"{type(error).__name__}: {error}"
                    raise WarehouseUnavailableError(f"the warehouse is unavailable: {self.last_error}") from None
        return self._warehouse

    @property
    def is_open(self) -> bool:
        return self._warehouse is not None

    @contextlib.contextmanager
    def writer(self):
        """A writing session for Canon's own writes (rollup refreshes, table exports): a connection of its
        own, or, for a DuckDB file this process has open, that file reopened for writing meanwhile
        (DuckDB refuses a second, read-write opening of a file in the process)."""
        from ..rollups.writer import Writer

        warehouse = self._warehouse
        if warehouse is not None and hasattr(warehouse, "writing"):
            with warehouse.writing() as connection:
                yield Writer.over(connection, warehouse.dialect, self.url)
            return
        with Writer(self.url) as writer:
            yield writer

    @property
    def dialect(self) -> str:
        return self.warehouse().dialect

    @property
    def sql_dialect(self) -> str:
        """The warehouse's SQL dialect, known from its URL without opening it."""
        return dialect_of_url(self.url)

    def typed(self, catalog: Catalog | None = None) -> Catalog:
        """The catalog with the warehouse's column types applied, learned once per catalog version, so
        time dimensions over DATE columns are never shifted by a request's time zone. A warehouse that
        cannot be read now leaves the declared `stored_as` in force (and is asked again next time)."""
        catalog = catalog or self.catalog
        known = self._typed
        if known is not None and known[0] is catalog:
            return known[1]
        with self._typed_lock:
            known = self._typed
            if known is not None and known[0] is catalog:
                return known[1]
            from canon.compiler.column_types import with_column_types

            from ..warehouse_schema import read_schema

            tables = [m.definition.table for m in catalog.models.values() if m.definition.table]
            tables += [t.name for m in catalog.models.values() if not m.definition.table
                       for t in m.source.find_all(exp.Table)]
            try:
                typed = with_column_types(catalog, read_schema(self.run_sql, tables).columns(), self.sql_dialect)
            except WarehouseUnavailableError as error:  # the query fails anyway; ask again next time
                log.debug("column types not read: %s", error.message)
                return catalog
            except CanonError as error:  # no information_schema: do not ask again for this catalog
                log.warning("column types not read from the warehouse (%s); time zones shift every time "
                            "dimension not declared `stored_as: date`", error.message)
                typed = catalog
            self._typed = (catalog, typed)
        return typed

    def lineage(self, catalog: Catalog | None = None):
        """The lineage graph of a catalog version, built once."""
        catalog = catalog or self.catalog
        current = self._lineage
        if current is None or current[0] != catalog.version or not catalog.version:
            from canon.compiler.lineage import build_lineage

            current = (catalog.version, build_lineage(catalog))
            self._lineage = current
        return current[1]

    # --- queries -----------------------------------------------------------------------------------------

    def authorize(self, request: QueryRequest, identity: Identity, catalog: Catalog | None = None) -> QueryRequest:
        """The request with this identity's access policies applied (refused, or row filters added)."""
        catalog = catalog or self.catalog
        return apply_policies(catalog, request, self.grant(identity, catalog))

    def dimension_values(self, ref: str, *, limit: int, identity: Identity = ANONYMOUS,
                         ticket: QueryTicket | None = None) -> tuple[list, str]:
        """The distinct values of a dimension (a picker's list) and the SQL that found them, narrowed
        by the identity's row filters. Values of a model the row filters do not live on are refused
        (fail closed): they cannot be narrowed without a metric to join through."""
        from canon.compiler.introspect import dimension_values_query

        catalog = self.catalog
        grant = self.grant(identity, catalog)
        tree = dimension_values_query(catalog, ref, limit=limit)
        if not grant.open:
            from .access import row_filtered_values

            tree = row_filtered_values(catalog, grant, ref, tree)
        _, rows = self.run_sql(tree, ticket=ticket)
        return rows, tree.sql(dialect=self.dialect)

    def prepare(self, request: QueryRequest, *, identity: Identity = ANONYMOUS, timeout_s: float | None = None,
                max_rows: int | None = None, capped: bool = True, catalog: Catalog | None = None,
                dialect: str | None = None) -> Prepared:
        """Policies, caps and the compiled SQL of a request, without running it. Bad requests fail here,
        before the warehouse is touched (so they are 4xx even while it is down)."""
        catalog = catalog or self.catalog
        grant = Grant()
        try:
            self.limits.check_request(request)  # shape limits, before anything parses the request
            grant = self.grant(identity, catalog)
            request = apply_policies(catalog, request, grant)
            cap = self.limits.rows_for(max_rows) if capped else None
            if cap is not None:
                request = self._capped(request, cap)
            timeout = self.limits.timeout_for(timeout_s)
            dialect = dialect or self.sql_dialect
            compiled = self.compiled.compile(self.typed(catalog) if request.timezone else catalog, request, dialect)
            compiled, rollup = self._route(catalog, request, compiled, dialect)
        except CanonError as error:
            if identity.via != "internal":
                self.audit.record(identity=identity, request=request, policies=grant.policies,
                                  outcome="denied" if error.http_status in (401, 403) else "error", error=error.message)
            raise
        warnings = deprecation_warnings(catalog, request) + self.freshness.warnings(catalog, request.metrics)
        return Prepared(catalog, request, compiled, cap, timeout, warnings, identity, grant, rollup)

    def _route(self, catalog: Catalog, request: QueryRequest, compiled: CompiledQuery, dialect: str):
        """The request over a rollup when one answers it exactly (and the caller did not ask for the raw
        tables with `use_rollups: false`); the policies' row filters are in `request` already."""
        if not catalog.rollups or request.extra.get("use_rollups", True) is False or dialect != self.sql_dialect:
            return compiled, None
        try:
            found = self.rollups.route(catalog, request, dialect)
        except Exception:  # noqa: BLE001 — a router bug must not fail a query the raw tables can answer
            log.exception("rollup routing failed; answering from the raw tables")
            return compiled, None
        if found is None:
            return compiled, None
        routed = found.routed
        return CompiledQuery(sql=routed.sql, columns=compiled.columns, tree=routed.tree, dialect=dialect), \
            (found.name, found.stamp)

    @staticmethod
    def _capped(request: QueryRequest, cap: int) -> QueryRequest:
        if request.limit is None:
            return replace(request, limit=cap + 1)  # one row more tells that the answer was cut
        if isinstance(request.limit, bool) or not isinstance(request.limit, int):
            raise QueryError(f"limit: {request.limit!r} must be a whole number")
        if request.limit > cap:
            raise QueryError(f"limit: {request.limit:,} is above this server's row limit of {cap:,}",
                             hint=f"ask for at most {cap:,} rows, and page with offset")
        return request

    def stream(self, request: QueryRequest | Prepared, *, ticket: QueryTicket | None = None,
               batch_rows: int = DEFAULT_BATCH_ROWS, overflow: str = "error", **options) -> QueryStream:
        """Start a query; its rows arrive in batches as the engine produces them."""
        prepared = request if isinstance(request, Prepared) else self.prepare(request, **options)
        try:
            rows = self.warehouse().stream(prepared.compiled.sql, timeout_s=prepared.timeout_s, ticket=ticket,
                                           batch_rows=batch_rows)
        except BaseException as error:
            self._audit(prepared, 0, 0.0, error)
            raise
        stream = QueryStream(prepared, rows, overflow)
        # a client's query (not the runtime's own background reads: the snapshot build, freshness
        # checks) is audited and holds back background work until the clients are quiet
        front = prepared.identity.via != "internal"
        if front:
            self.activity.begin()

        def closed(s: QueryStream) -> None:
            if front:
                self.activity.end()
                self._audit(s.prepared, s.rows_sent, time.perf_counter() - s.started, s.failure)
        stream.on_close = closed
        return stream

    def _audit(self, prepared: Prepared, rows: int, elapsed_s: float, failure: BaseException | None,
               cached: bool = False) -> None:
        if prepared.identity.via == "internal" or not self.audit.enabled:
            return
        outcome = "ok"
        if isinstance(failure, QueryTimeoutError):
            outcome = "timeout"
        elif failure is not None and type(failure).__name__ == "QueryCancelledError":
            outcome = "cancelled"
        elif failure is not None:
            outcome = "error"
        self.audit.record(identity=prepared.identity, request=prepared.request, policies=prepared.grant.policies,
                          sql=prepared.compiled.sql, rows=rows, elapsed_ms=round(elapsed_s * 1000, 3), outcome=outcome,
                          error=getattr(failure, "message", None) or (str(failure) if failure and outcome == "error" else None),
                          cached=cached)

    def query(self, request: QueryRequest | Prepared, *, ticket: QueryTicket | None = None, overflow: str = "cut",
              use_cache: bool = True, **options) -> QueryResult:
        """Run a request and collect its rows as JSON values; a recent identical query's answer comes
        from the result cache (`result.cached`), unless `use_cache` is false."""
        started = time.perf_counter()
        prepared = request if isinstance(request, Prepared) else self.prepare(request, **options)
        key = self._cache_key(prepared) if use_cache and overflow == "cut" and self.results.enabled else None
        if key is not None:
            hit = self.results.get(key)
            if hit is not None:
                columns, rows, truncated, cut_warning = hit
                rows = [list(row) for row in rows]  # callers may reshape their answer; the cached one stays
                warnings = prepared.warnings + ([cut_warning] if cut_warning else [])
                result = QueryResult(columns=[dict(c) for c in columns], rows=rows, sql=prepared.compiled.sql,
                                     elapsed_ms=round((time.perf_counter() - started) * 1000, 3), warnings=warnings or None)
                result.truncated, result.cached = truncated, True
                result.rollup = prepared.rollup[0] if prepared.rollup else None
                self._audit(prepared, len(rows), time.perf_counter() - started, None, cached=True)
                annotate_time(prepared, result, self.freshness)
                return result
        stream = self.stream(prepared, ticket=ticket, overflow=overflow)
        rows = [[json_value(v) for v in row] for batch in stream for row in batch]
        result = QueryResult(columns=stream.columns, rows=rows, sql=stream.prepared.compiled.sql,
                             elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
                             warnings=stream.warnings or None)
        result.truncated = stream.truncated
        result.rollup = prepared.rollup[0] if prepared.rollup else None
        if key is not None:
            cut_warning = stream.warnings[-1] if stream.truncated else None
            tables = {t for name in prepared.request.metrics if name in prepared.catalog.facts
                      for t in prepared.catalog.facts[name].tables}
            stored = (tuple(dict(c) for c in stream.columns), tuple(tuple(row) for row in rows))
            self.results.put(key, (*stored, stream.truncated, cut_warning), result_bytes(rows, stream.columns), tables)
        annotate_time(prepared, result, self.freshness)
        return result

    def _cache_key(self, prepared: Prepared) -> tuple:
        """The SQL (definitions, request and row filters in it), the warehouse, and the data version."""
        report = self.freshness.report(prepared.catalog) or ()
        models = {m for name in prepared.request.metrics if name in prepared.catalog.facts
                  for m in prepared.catalog.facts[name].models}
        watermarks = tuple(sorted((s.model, str(s.max_loaded_at)) for s in report if s.model in models))
        return prepared.compiled.sql, self.url, watermarks, file_stamp(self.url), prepared.rollup

    def count_rows(self, request: QueryRequest, *, catalog: Catalog | None = None, identity: Identity = ANONYMOUS,
                   ticket: QueryTicket | None = None) -> int:
        """How many rows a request has without limit and offset, counted by the engine (Cube's `total`)."""
        prepared = self.prepare(request, identity=identity, capped=False, catalog=catalog)
        tree = exp.select(exp.Count(this=exp.Star())).from_(prepared.compiled.tree.subquery("_canon_total", copy=True))
        _, rows = self.run_sql(tree, timeout_s=prepared.timeout_s, ticket=ticket)
        return int(rows[0][0])

    def run_sql(self, sql: str | exp.Expression, *, timeout_s: float | None = None,
                ticket: QueryTicket | None = None) -> tuple[list[str], list[tuple]]:
        """Run SQL that Canon built itself (dimension values, freshness, data tests, samples), under the
        same time cap. Never user text: callers pass sqlglot trees or SQL rendered from them."""
        warehouse = self.warehouse()
        text = sql.sql(dialect=warehouse.dialect) if isinstance(sql, exp.Expression) else sql
        return warehouse.execute(text, timeout_s=self.limits.timeout_for(timeout_s), ticket=ticket)

    @functools.cached_property
    def internal(self) -> "InternalRunner":
        return InternalRunner(self)

    def ping(self) -> dict:
        started = time.perf_counter()
        try:
            self.run_sql(exp.select(exp.Literal.number(1)), timeout_s=min(5.0, self.limits.max_query_timeout_s))
            return {"reachable": True, "dialect": self.dialect, "url": safe_url(self.url),
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
        except CanonError as error:
            return {"reachable": False, "url": safe_url(self.url), "error": error.message, "hint": error.hint}

    # --- for async front ends ------------------------------------------------------------------------------

    async def run(self, fn, *args, ticket: QueryTicket | None = None, timeout_s: float | None = None):
        """Run blocking work in the query pool. When the caller is cancelled (a client that went away),
        the ticket stops the engine's query; a caller never waits much past the time cap."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.pool, functools.partial(fn, *args))
        limit = (timeout_s or self.limits.max_query_timeout_s) + GRACE_S
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=limit)
        except asyncio.TimeoutError:
            if ticket is not None:
                ticket.cancel("timeout")
            raise QueryTimeoutError(f"the query ran longer than the {limit - GRACE_S:g} s limit") from None
        except asyncio.CancelledError:
            if ticket is not None:
                ticket.cancel("cancelled")
            raise


class InternalRunner:
    """The runtime seen as a warehouse, for Canon's own queries (freshness, data tests, diffs): the
    governance modules take anything with `dialect` and `execute(sql)`."""

    def __init__(self, runtime: Runtime):
        self._runtime = runtime

    @property
    def dialect(self) -> str:
        return self._runtime.dialect

    def execute(self, sql: str) -> tuple[list[str], list[tuple]]:
        return self._runtime.run_sql(sql)


def dialect_of_url(url: str) -> str:
    """The SQL dialect of a warehouse URL (see warehouses.open_warehouse)."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgres"
    if url.startswith("spark-local:"):
        return "spark"
    if url.startswith("chdb:"):
        return "clickhouse"
    return "duckdb"


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


def safe_url(url: str) -> str:
    """A warehouse URL without its password."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url

"""The HTTP API: FastAPI app factory, catalog and query endpoints, one error handler per kind.

    app = create_app(project_dir)            # uvicorn server.http_api:... or `canon serve`

The lifespan loads the catalog (kept on `app.state.catalog_state`, swapped atomically by the
reloader), opens the warehouse and starts the file watcher. Catalog endpoints are cheap and run on
the event loop; warehouse calls block, so they run in a dedicated thread pool with a per-query
timeout, and a slow query never holds up /v1/metrics.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlglot import exp
from starlette.exceptions import HTTPException as StarletteHTTPException

from canon.compiler import model as m
from canon.compiler.compile import DIALECTS, compile_request
from canon.compiler.errors import CanonError, QueryError, UnknownNameError, WarehouseError, did_you_mean
from canon.compiler.introspect import MAX_VALUES, dependencies, dimension_values_query, dimensions_for
from canon.compiler.request import QueryRequest

from . import http_models as hm
from .reload import CatalogState, Reloader, error_list
from .results import QueryResult, json_value
from .service import CompileCache, run_query

log = logging.getLogger("canon.http")

API_TITLE = "Canon"
QUERY_WORKERS = 16


class QueryTimeoutError(WarehouseError):
    code = "query_timeout"
    http_status = 504


# --- the warehouse, with a timeout per query ------------------------------------------------------


class QueryRunner:
    """Opens the warehouse lazily (so a warehouse that is down now can come back) and runs SQL with a
    timeout: DuckDB queries are interrupted from a timer; other warehouses get `timeout_s` when their
    `execute` accepts it, and otherwise the caller stops waiting."""

    def __init__(self, url: str, timeout_s: float):
        self.url = url
        self.timeout_s = timeout_s
        self._warehouse = None
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.pool = ThreadPoolExecutor(max_workers=QUERY_WORKERS, thread_name_prefix="canon-query")

    def warehouse(self):
        if self._warehouse is not None:
            return self._warehouse
        with self._lock:
            if self._warehouse is None:
                from .warehouse import open_warehouse

                try:
                    self._warehouse = open_warehouse(self.url)
                    self.last_error = None
                except CanonError as error:
                    self.last_error = str(error)
                    raise WarehouseError(f"the warehouse is unavailable: {error.message}", hint=error.hint) from None
                except Exception as error:  # noqa: BLE001 — a driver error is still "unavailable"
                    self.last_error = f"{type(error).__name__}: {error}"
                    raise WarehouseError(f"the warehouse is unavailable: {self.last_error}") from None
        return self._warehouse

    @property
    def is_open(self) -> bool:
        return self._warehouse is not None

    @property
    def dialect(self) -> str:
        return self.warehouse().dialect

    def execute(self, sql: str) -> tuple[list[str], list[tuple]]:
        warehouse = self.warehouse()
        connection = getattr(warehouse, "_connection", None)
        if warehouse.dialect == "duckdb" and connection is not None and hasattr(connection, "cursor"):
            return self._execute_duckdb(connection, sql)
        try:
            accepts_timeout = "timeout_s" in inspect.signature(warehouse.execute).parameters
        except (TypeError, ValueError):
            accepts_timeout = False
        if accepts_timeout:
            return warehouse.execute(sql, timeout_s=self.timeout_s)
        return warehouse.execute(sql)

    def _execute_duckdb(self, connection, sql: str):
        import duckdb

        cursor = connection.cursor()
        timer = threading.Timer(self.timeout_s, cursor.interrupt)
        timer.daemon = True
        timer.start()
        try:
            result = cursor.execute(sql)
            names = [d[0] for d in result.description]
            return names, result.fetchall()
        except duckdb.InterruptException:
            raise QueryTimeoutError(f"the query ran longer than the {self.timeout_s:g} s limit and was cancelled",
                                    hint="narrow it with filters or a time range, or ask the operator for a longer "
                                         "--query-timeout") from None
        except duckdb.Error as error:
            raise WarehouseError(f"the warehouse rejected the query: {str(error).splitlines()[0]}",
                                 hint="check that the warehouse has the tables the catalog names") from None
        finally:
            timer.cancel()
            cursor.close()

    async def run(self, fn, *args):
        """Run blocking warehouse work in the query pool; give up waiting after the timeout."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.pool, fn, *args)
        try:
            return await asyncio.wait_for(future, timeout=self.timeout_s + 5)
        except asyncio.TimeoutError:
            raise QueryTimeoutError(f"the query ran longer than the {self.timeout_s:g} s limit") from None

    def ping(self) -> dict:
        started = time.perf_counter()
        try:
            warehouse = self.warehouse()
            self.execute(exp.select(exp.Literal.number(1)).sql(dialect=warehouse.dialect))
            return {"reachable": True, "dialect": warehouse.dialect, "url": _safe_url(self.url),
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
        except CanonError as error:
            return {"reachable": False, "url": _safe_url(self.url), "error": error.message, "hint": error.hint}

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self._warehouse is not None:
            try:
                self._warehouse.close()
            except Exception:  # noqa: BLE001
                pass


class FreshnessCache:
    """The freshness report of the monitored sources, recomputed at most once per `ttl_s`: it takes
    one small query per source, so queries read the cached report for their stale-source warnings."""

    def __init__(self, runner: "QueryRunner", ttl_s: float = 60.0):
        self.runner, self.ttl_s = runner, ttl_s
        self._report, self._at, self._lock = None, 0.0, threading.Lock()

    def get(self, catalog) -> list | None:
        if not any(m.definition.freshness for m in catalog.models.values()):
            return None
        with self._lock:
            if self._report is None or time.monotonic() - self._at > self.ttl_s:
                from .governance.freshness import freshness_report
                from .service import freshness_now

                self._report = freshness_report(catalog, self.runner, now=freshness_now(catalog))
                self._at = time.monotonic()
            return self._report


def _safe_url(url: str) -> str:
    """A warehouse URL without its password."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


# --- queries ---------------------------------------------------------------------------------------


def as_tuple(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def build_request(catalog, body: hm.QueryBody) -> QueryRequest:
    from canon.compiler.sqlexpr import SOURCE_DIALECT

    from .structured_filters import filter_condition

    where = list(as_tuple(body.where))
    for i, f in enumerate(body.filters):
        condition = filter_condition(catalog, f.field, f.op, f.values, path=f"filters[{i}]")
        where.append(condition.sql(dialect=SOURCE_DIALECT))
    return QueryRequest(metrics=tuple(body.metrics), dimensions=tuple(body.dimensions), where=tuple(where),
                        order=as_tuple(body.order), limit=body.limit, offset=body.offset,
                        start=body.start, end=body.end, time_range=body.time_range, having=as_tuple(body.having),
                        timezone=body.timezone, today=body.today)


def check_limit(request: QueryRequest, max_rows: int) -> tuple[QueryRequest, bool]:
    """Refuse limits above the server's row limit; without a limit, fetch one row more to detect truncation."""
    if request.limit is not None:
        if not isinstance(request.limit, int) or isinstance(request.limit, bool):
            raise QueryError(f"limit: {request.limit!r} must be a whole number")
        if request.limit > max_rows:
            raise QueryError(f"limit: {request.limit:,} is above this server's row limit of {max_rows:,}",
                             location=None, hint=f"ask for at most {max_rows:,} rows, and page with offset")
        return request, False
    return replace(request, limit=max_rows + 1), True


def execute_request(app: FastAPI, catalog, request: QueryRequest) -> QueryResult:
    """Compile and run on the warehouse (blocking; call it in the query pool)."""
    runner: QueryRunner = app.state.runner
    max_rows = app.state.max_rows
    request, capped = check_limit(request, max_rows)
    result = run_query(catalog, runner, request, freshness=_freshness(app, catalog), cache=app.state.compiled)
    if capped and len(result.rows) > max_rows:
        result.rows = result.rows[:max_rows]
        result.warnings = (result.warnings or []) + [
            f"the result has more than {max_rows:,} rows and was cut there; add filters or a limit"]
        result.truncated = True
    return result


def _freshness(app: FastAPI, catalog) -> list | None:
    try:
        return app.state.freshness.get(catalog)
    except CanonError as error:  # a source that cannot be read is reported by /v1/status, not here
        log.warning("freshness check failed: %s", error)
        return None


def warning_header(warnings: list[str] | None) -> dict:
    """RFC 7234 `Warning: 299 canon "..."` headers for deprecated metrics and stale sources."""
    if not warnings:
        return {}
    text = ", ".join('299 canon "' + w.replace('"', "'").encode("latin-1", "replace").decode("latin-1") + '"'
                     for w in warnings)
    return {"Warning": text}


def result_body(result: QueryResult) -> dict:
    body = result.to_dict()
    if getattr(result, "truncated", False):
        body["truncated"] = True
    return body


def catalog_of(request: Request):
    """The catalog this request sees, read once: a reload mid-request cannot mix two versions."""
    return request.app.state.catalog_state.catalog


# --- endpoints --------------------------------------------------------------------------------------

router = APIRouter()
ERRORS = {400: {"model": hm.ErrorBody}, 404: {"model": hm.ErrorBody}, 422: {"model": hm.ErrorBody}}
QUERY_ERRORS = {**ERRORS, 503: {"model": hm.ErrorBody}, 504: {"model": hm.ErrorBody}}


def _summary(name: str, metric) -> dict:
    return {"name": name, "type": metric.type, "label": metric.label,
            "description": " ".join((metric.description or "").split()) or None,
            "owner": metric.owner, "tier": metric.tier, "tags": list(metric.tags)}


@router.get("/healthz", tags=["status"])
async def healthz():
    return {"status": "ok"}


@router.get("/v1/status", response_model=hm.StatusResponse, tags=["status"])
async def status(request: Request):
    app = request.app
    state: CatalogState = app.state.catalog_state
    warehouse = await asyncio.get_running_loop().run_in_executor(app.state.runner.pool, app.state.runner.ping)
    catalog = state.catalog
    freshness = []
    if warehouse["reachable"]:
        report = await asyncio.get_running_loop().run_in_executor(app.state.runner.pool, _freshness, app, catalog)
        freshness = [s.to_dict() for s in report or ()]
    return {
        "status": "ok" if warehouse["reachable"] and not state.errors else "degraded",
        "freshness": freshness,
        "catalog_version": catalog.version,
        "catalog_loaded_at": state.snapshot.loaded_at,
        "catalog": {"models": len(catalog.models), "metrics": len(catalog.metrics),
                    "saved_queries": len(catalog.saved_queries), "views": len(catalog.views),
                    "reloads": state.reloads},
        "load_errors": state.errors,
        "warehouse": warehouse,
        "project": str(state.project),
    }


@router.get("/v1/metrics", response_model=hm.MetricList, responses=ERRORS, tags=["catalog"])
async def list_metrics(
    request: Request,
    tag: Annotated[str | None, Query(max_length=100, description="Only metrics with this tag")] = None,
    tier: Annotated[m.Tier | None, Query(description="draft, verified, certified or deprecated")] = None,
    owner: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text search over name, label and description")] = None,
):
    catalog = catalog_of(request)
    words = (q or "").lower().split()
    found = []
    for name, metric in sorted(catalog.metrics.items()):
        if tag is not None and tag not in metric.tags:
            continue
        if tier is not None and metric.tier != tier:
            continue
        if owner is not None and metric.owner != owner:
            continue
        text = " ".join(filter(None, (name, metric.label, metric.description, " ".join(metric.tags)))).lower()
        if words and not all(w in text for w in words):
            continue
        found.append(_summary(name, metric))
    return {"metrics": found, "count": len(found), "catalog_version": catalog.version}


def _check_metric(catalog, name: str):
    if name not in catalog.metrics:
        raise UnknownNameError(f"unknown metric '{name}'", hint=did_you_mean(name, catalog.metrics))
    return catalog.metrics[name]


def _example(catalog, name: str, dims) -> dict | None:
    refs = [d.ref for d in dims]
    if name in catalog.affinities:
        item = catalog.models[catalog.affinities[name].item_model]
        pick = next((d for d in ("product_name", "category", "name") if d in item.dimensions), None)
        pick = pick or next(iter(item.dimensions), None)
        if pick is None:
            return None
        wanted = (f"antecedent.{pick}", f"consequent.{pick}")
        req = QueryRequest(metrics=(name,), dimensions=wanted, order=(f"-{name}",), limit=10)
    else:
        wanted = ("metric_time.month",) if "metric_time" in refs else ()
        req = QueryRequest(metrics=(name,), dimensions=wanted)
    try:
        compiled = compile_request(catalog, req, "duckdb", pretty=True)
    except CanonError:
        return None
    return {"request": {"metrics": list(req.metrics), "dimensions": list(req.dimensions),
                        **({"order": list(req.order), "limit": req.limit} if req.order else {})},
            "dialect": "duckdb", "sql": compiled.sql}


@router.get("/v1/metrics/{name}", response_model=hm.MetricDetail, responses=ERRORS, tags=["catalog"])
async def get_metric(request: Request, name: Annotated[str, PathParam(max_length=200)]):
    catalog = catalog_of(request)
    metric = _check_metric(catalog, name)
    dims = dimensions_for(catalog, [name])
    origin = catalog.origins.get(name)
    return {
        **_summary(name, metric),
        "definition": {**metric.model_dump(mode="json", exclude_none=True),
                       **({"source": str(origin)} if origin else {})},
        "dimensions": [d.to_dict() for d in dims],
        "depends_on": dependencies(catalog, name),
        "views": sorted(v.name for v in catalog.views.values() if name in v.metrics),
        "example": _example(catalog, name, dims),
    }


@router.get("/v1/metrics/{name}/lineage", responses=ERRORS, tags=["catalog"])
async def metric_lineage(request: Request, name: Annotated[str, PathParam(max_length=200)],
                         direction: Annotated[str, Query(pattern="^(down|up|both)$")] = "both",
                         format: Annotated[str, Query(pattern="^(json|mermaid|dot)$")] = "json"):
    """What the metric is built from (down to tables and columns) and what depends on it (up)."""
    from canon.compiler.lineage import build_lineage, lineage_json, render_dot, render_mermaid

    catalog = catalog_of(request)
    _check_metric(catalog, name)
    if format == "json":
        return lineage_json(catalog, name, direction)
    graph = build_lineage(catalog)
    render = render_mermaid if format == "mermaid" else render_dot
    return {"metric": name, "format": format,
            "text": render(graph, f"metric:{name}", "down" if direction == "both" else direction)}


@router.get("/v1/search", tags=["catalog"])
async def search_catalog(request: Request, q: Annotated[str, Query(min_length=1, max_length=200)],
                         limit: Annotated[int, Query(ge=1, le=200)] = 20):
    """Metrics, dimensions and glossary terms matching the words of `q` (name, label, synonym, tag, description)."""
    from canon.compiler.search import search

    return {"query": q, "results": [h.to_dict() for h in search(catalog_of(request), q, limit=limit)]}


@router.get("/v1/glossary", tags=["catalog"])
async def list_glossary(request: Request, q: Annotated[str | None, Query(max_length=200)] = None):
    """The business glossary, or the terms matching `q`."""
    from canon.compiler.search import search

    catalog = catalog_of(request)
    names = [h.name for h in search(catalog, q, limit=200) if h.kind == "term"] if q else sorted(catalog.glossary)
    return {"terms": [catalog.glossary[n].model_dump(mode="json") for n in names]}


@router.get("/v1/dimensions", response_model=hm.DimensionList, responses=ERRORS, tags=["catalog"])
async def list_dimensions(
    request: Request,
    metrics: Annotated[str, Query(min_length=1, max_length=2000, description="Comma-separated metric names")],
):
    catalog = catalog_of(request)
    names = [n.strip() for n in metrics.split(",") if n.strip()]
    for name in names:
        _check_metric(catalog, name)
    dims = dimensions_for(catalog, names)
    return {"metrics": names, "dimensions": [d.to_dict() for d in dims]}


@router.get("/v1/dimensions/{ref}/values", response_model=hm.ValuesResponse, responses=QUERY_ERRORS, tags=["catalog"])
async def dimension_values(
    request: Request,
    ref: Annotated[str, PathParam(max_length=200)],
    limit: Annotated[int, Query(ge=1, le=MAX_VALUES)] = 1000,
):
    app = request.app
    catalog = catalog_of(request)
    runner: QueryRunner = app.state.runner
    tree = dimension_values_query(catalog, ref, limit=limit + 1)

    def work():
        sql = tree.sql(dialect=runner.dialect)
        _, rows = runner.execute(sql)
        return sql, rows

    sql, rows = await runner.run(work)
    values = [json_value(r[0]) for r in rows[:limit]]
    return {"dimension": ref, "values": values, "sql": sql, "truncated": len(rows) > limit}


@router.post("/v1/query", response_model=hm.QueryResponse, response_model_exclude_none=True,
             responses=QUERY_ERRORS, tags=["query"])
async def query(request: Request, body: hm.QueryBody):
    app = request.app
    catalog = catalog_of(request)
    req = build_request(catalog, body)
    if not app.state.runner.is_open:  # bad requests are 4xx even while the warehouse is down
        compile_request(catalog, check_limit(req, app.state.max_rows)[0])
    result = await app.state.runner.run(execute_request, app, catalog, req)
    return JSONResponse(result_body(result), headers=warning_header(result.warnings))


@router.post("/v1/compile", response_model=hm.CompileResponse, responses=ERRORS, tags=["query"])
async def compile_endpoint(
    request: Request,
    body: hm.CompileBody,
    dialect: Annotated[str | None, Query(max_length=40, description="Overrides the body's dialect")] = None,
):
    catalog = catalog_of(request)
    chosen = dialect or body.dialect
    if chosen not in DIALECTS:
        raise CanonError(f"unknown dialect '{chosen}'", hint=did_you_mean(chosen, DIALECTS))
    compiled = compile_request(catalog, build_request(catalog, body), chosen, pretty=True)
    return {"sql": compiled.sql, "dialect": chosen,
            "columns": [{"name": n, "type": _column_type(t)} for n, t in compiled.columns]}


def _column_type(kind: str) -> str:
    from .results import column_type

    return column_type(kind)


# --- errors -------------------------------------------------------------------------------------------


def _error_response(request: Request, status: int, body: dict) -> JSONResponse:
    if request.url.path.startswith("/cubejs-api"):
        # Cube's clients read `error`
        body = {"error": body["message"] + (f" — {body['hint']}" if body.get("hint") else ""), **body}
    return JSONResponse(body, status_code=status)


def _loc(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    text = ""
    for p in parts:
        text += f"[{p}]" if p.isdigit() else (f".{p}" if text else p)
    return text or "body"


_VALIDATION_WORDING = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "json_invalid": "is not valid JSON",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "literal_error": "is not one of the valid choices",
    "greater_than_equal": "is too small",
    "less_than_equal": "is too large",
    "too_short": "is too short",
    "too_long": "is too long",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
}


async def validation_handler(request: Request, error: RequestValidationError):
    problems = []
    status = 422
    for e in error.errors():
        where = _loc(e.get("loc", ()))
        kind = e.get("type", "")
        if kind == "json_invalid":
            status = 400
            at = e.get("loc", ("body", "?"))[-1]
            error_text = (e.get("ctx") or {}).get("error", "malformed JSON")
            problems.append({"location": "body", "type": kind, "detail": str(error_text),
                             "message": f"the request body is not valid JSON (at character {at}: {error_text})"})
            continue
        wording = _VALIDATION_WORDING.get(kind, e.get("msg", "is invalid"))
        problems.append({"location": where, "type": kind, "message": f"{where}: {wording}",
                         "detail": e.get("msg")})
    first = problems[0] if problems else {"location": "body", "message": "invalid request", "detail": None}
    hint = first.get("detail")
    if first.get("type") == "extra_forbidden":
        hint = "valid fields: " + ", ".join(_fields_for(request))
    body = {"code": "invalid_json" if status == 400 else "invalid_request", "message": first["message"],
            "location": first["location"], "hint": hint, "errors": problems}
    return _error_response(request, status, body)


def _fields_for(request: Request) -> list[str]:
    path = request.url.path
    if path.endswith("/compile"):
        return list(hm.CompileBody.model_fields)
    if path.startswith("/v1/query"):
        return list(hm.QueryBody.model_fields)
    return []


async def canon_error_handler(request: Request, error: CanonError):
    status = error.http_status if 400 <= getattr(error, "http_status", 400) < 600 else 400
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, error)
    return _error_response(request, status, error.to_dict())


async def http_error_handler(request: Request, error: StarletteHTTPException):
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    message = error.detail if isinstance(error.detail, str) else str(error.detail)
    hint = "see /docs for the endpoints" if error.status_code in (404, 405) else None
    response = _error_response(request, error.status_code,
                               {"code": code, "message": f"{request.method} {request.url.path}: {message}",
                                "location": request.url.path, "hint": hint})
    for key, value in (error.headers or {}).items():
        response.headers[key] = value
    return response


async def internal_error_handler(request: Request, error: Exception):
    log.exception("internal error on %s %s", request.method, request.url.path)
    return _error_response(request, 500, {"code": "internal_error",
                                          "message": f"internal error: {type(error).__name__}",
                                          "location": request.url.path, "hint": "this is a bug in Canon; see the server log"})


# --- the app ---------------------------------------------------------------------------------------------


def create_app(project_dir, warehouse_url: str | None = None, *, query_timeout_s: float = 30,
               max_rows: int = 100_000, reload_interval_s: float = 1.0, build_demo_if_missing: bool = True,
               pg: tuple[str, int] | None = None) -> FastAPI:
    """`pg=(host, port)` also serves the views over the PostgreSQL wire protocol, on the same
    (hot-reloaded) catalog and warehouse."""
    from .project import demo_path, find_project, warehouse_url as resolve_warehouse

    project = find_project(project_dir)
    url = resolve_warehouse(project, warehouse_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = CatalogState.load(project)  # an invalid catalog at start is fatal: nothing to serve
        if build_demo_if_missing and Path(url) == demo_path(project) and not Path(url).exists():
            from .demo import build_demo

            log.warning("building the demo warehouse at %s (first start)", url)
            build_demo(Path(url))
        runner = QueryRunner(url, query_timeout_s)
        try:
            runner.warehouse()
        except WarehouseError as error:
            log.warning("%s — serving the catalog; queries answer 503 until it is reachable", error)
        app.state.catalog_state = state
        app.state.runner = runner
        app.state.max_rows = max_rows
        app.state.freshness = FreshnessCache(runner)
        app.state.compiled = CompileCache()
        reloader = Reloader(state, reload_interval_s).start() if reload_interval_s else None
        pg_server = _start_pg(project, pg, state, runner) if pg else None
        log.warning("Canon serving %s (catalog %s, %d metrics) on warehouse %s",
                    project, state.catalog.version, len(state.catalog.metrics), _safe_url(url))
        try:
            yield
        finally:
            if reloader:
                reloader.stop()
            if pg_server:
                pg_server.stop()
            runner.close()

    app = FastAPI(title=API_TITLE, version=_version(), lifespan=lifespan,
                  description="Canon: metrics defined once, the same numbers everywhere. "
                              "Catalog, query and Cube-compatible REST APIs.")
    app.add_middleware(JSONBodyMiddleware)
    app.add_exception_handler(CanonError, canon_error_handler)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)
    app.include_router(router)
    from .cube_api import router as cube_router

    app.include_router(cube_router)
    from .recommend.routes import install as install_recommendations; install_recommendations(app, project, url)  # noqa: E702
    return app


def _start_pg(project, pg: tuple[str, int], state: CatalogState, runner: QueryRunner):
    from .pgwire.server import credentials, start_pg_server
    from .project import load_config

    user, password = credentials(load_config(project))
    handle = start_pg_server(lambda: state.catalog, runner.warehouse(), pg[0], pg[1], user, password)
    log.warning("PostgreSQL wire protocol on %s:%d (user %s)", pg[0], handle.port, user)
    return handle


class JSONBodyMiddleware:
    """POST bodies are JSON whatever Content-Type a client sends (curl's default is a form)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            original = dict(scope["headers"]).get(b"content-type", b"")
            if b"json" not in original:
                scope = {**scope, "headers": headers + [(b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("canon-semantic")
    except Exception:  # noqa: BLE001
        return "0"


__all__ = ["create_app", "QueryRunner", "QueryTimeoutError", "build_request", "execute_request", "error_list"]

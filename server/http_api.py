"""The HTTP API: FastAPI app factory, catalog and query endpoints, one error handler per kind.

    app = create_app(project_dir)            # uvicorn server.http_api:... or `canon serve`

The lifespan opens the runtime (server/runtime: catalog with hot reload, warehouse, caps, caches,
freshness) on `app.state.runtime`; this module only turns HTTP into requests and results into JSON.
Catalog endpoints are cheap and run on the event loop; queries run in the runtime's pool under its
time cap, and a client that disconnects cancels its query in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from canon.compiler import model as m
from canon.compiler.compile import DIALECTS, compile_request
from canon.compiler.errors import CanonError, QueryCancelledError, WarehouseError, did_you_mean
from canon.compiler.introspect import MAX_VALUES, dependencies, dimensions_for
from canon.compiler.request import QueryRequest

from . import http_models as hm
from .arrow_answer import ARROW_STREAM, arrow_stream, wants_arrow
from .results import QueryResult, json_value
from .http_auth import identity_of
from .http_guard import without_paths
from .runtime import CatalogState, Runtime, safe_url
from .runtime import visibility as seen
from .warehouses.base import QueryTicket

log = logging.getLogger("canon.http")

API_TITLE = "Canon"
DISCONNECT_POLL_S = 0.25  # how often a running query checks that its client is still there


# --- queries ---------------------------------------------------------------------------------------


def as_tuple(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def build_request(catalog, body: hm.QueryBody) -> QueryRequest:
    """The body as a request. Structured filters become condition trees that reach the compiler as
    trees (checked there by the same allow-list as text filters)."""
    from .structured_filters import filter_condition

    where = list(as_tuple(body.where))
    for i, f in enumerate(body.filters):
        where.append(filter_condition(catalog, f.field, f.op, f.values, path=f"filters[{i}]"))
    for i, name in enumerate(body.segments):  # the catalog's reviewed filter, checked again by the compiler
        where.append(catalog.segment_filter(name, field=f"segments[{i}]").condition.copy())
    return QueryRequest(metrics=tuple(body.metrics), dimensions=tuple(body.dimensions), where=tuple(where),
                        order=as_tuple(body.order), limit=body.limit, offset=body.offset,
                        start=body.start, end=body.end, time_range=body.time_range, having=as_tuple(body.having),
                        timezone=body.timezone, today=body.today, fill_gaps=body.fill_gaps,
                        extra={} if getattr(body, "use_rollups", True) else {"use_rollups": False})


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


async def run_request(request: Request, req, *, via: str = "http", timeout_s: float | None = None,
                      work=None):
    """Run a query for an HTTP client through the runtime. Bad requests fail before the warehouse is
    touched; a client that disconnects stops the engine's query. `req` is a QueryRequest or a function
    that builds one; `work(prepared, ticket)` replaces the plain query (and may encode the answer)."""
    runtime = runtime_of(request)
    identity = identity_of(request)
    ticket = QueryTicket()

    def answer():
        # building, compiling, running and encoding in ONE trip to the pool: compiling is CPU work that
        # stays off the event loop, and each trip costs two thread wake-ups (~0.3 ms idle, a scheduler
        # time slice on a busy machine)
        prepared = runtime.prepare(req() if callable(req) else req, identity=identity, timeout_s=timeout_s)
        return runtime.query(prepared, ticket=ticket) if work is None else work(prepared, ticket)

    try:  # the wait's cap; an invalid timeout fails (and is audited) in prepare, under the server's cap
        cap = runtime.limits.timeout_for(timeout_s)
    except CanonError:
        cap = None
    job = asyncio.ensure_future(runtime.run(answer, ticket=ticket, timeout_s=cap))
    while True:
        done, _ = await asyncio.wait({job}, timeout=DISCONNECT_POLL_S)
        if done:
            return job.result()
        if await request.is_disconnected():
            ticket.cancel("cancelled")
            job.cancel()
            raise QueryCancelledError("the client went away; its query was cancelled")


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
    if getattr(result, "cached", False):
        body["cached"] = True  # answered from the result cache (server/runtime/result_cache.py)
    return body


def catalog_of(request: Request):
    """The catalog this request sees, read once: a reload mid-request cannot mix two versions."""
    return runtime_of(request).catalog


def grant_of(request: Request, catalog):
    """What the caller may see of this catalog (listings leave out the rest)."""
    return runtime_of(request).grant(identity_of(request), catalog)


# --- endpoints --------------------------------------------------------------------------------------

router = APIRouter()
ERRORS = {400: {"model": hm.ErrorBody}, 404: {"model": hm.ErrorBody}, 422: {"model": hm.ErrorBody}}
QUERY_ERRORS = {**ERRORS, 503: {"model": hm.ErrorBody}, 504: {"model": hm.ErrorBody}}


def _summary(name: str, metric) -> dict:
    return {"name": name, "type": metric.type, "label": metric.label,
            "description": " ".join((metric.description or "").split()) or None,
            "owner": metric.owner, "tier": metric.tier, "tags": list(metric.tags),
            "format": getattr(metric, "format", None)}


@router.get("/healthz", tags=["status"])
async def healthz():
    return {"status": "ok"}


@router.get("/v1/status", response_model=hm.StatusResponse, tags=["status"])
async def status(request: Request):
    runtime = runtime_of(request)
    state: CatalogState = runtime.state
    warehouse = await runtime.run(runtime.ping)
    catalog = state.catalog
    report = runtime.freshness.report(catalog)  # the background monitor's last report
    freshness = [s.to_dict() for s in report or ()]
    grant = grant_of(request, catalog)
    if not grant.open:  # only the sources of metrics this caller may query
        models = {m for name in grant.visible_metrics(catalog) if grant.queryable(catalog, name)
                  for m in catalog.facts[name].models}
        freshness = [f for f in freshness if f["model"] in models]
    exports = runtime.exports.status(catalog)
    if not grant.open:  # only exports of saved queries whose metrics this caller may query
        exports = [e for e in exports
                   if all(grant.queryable(catalog, n) for n in catalog.saved_queries[e["saved_query"]].metrics)]
    rollups = runtime.rollup_schedule.status(catalog)
    if not grant.open:  # only rollups whose metrics this caller may query
        rollups = [r for r in rollups if all(grant.queryable(catalog, n) for n in catalog.rollups[r["name"]].metrics)]
    answer = {
        "status": "ok" if warehouse["reachable"] and not state.errors else "degraded",
        "freshness": freshness,
        "exports": exports,
        "rollups": rollups,
        "catalog_version": catalog.version,
        "catalog_loaded_at": state.snapshot.loaded_at,
        "catalog": {"models": len(catalog.models), "metrics": len(catalog.metrics),
                    "saved_queries": len(catalog.saved_queries), "views": len(catalog.views),
                    "reloads": state.reloads, "checked_at": state.checked_at},
        "load_errors": state.errors,
        "warehouse": {k: v for k, v in warehouse.items() if k != "url"},
    }
    # no filesystem paths in a public answer (the project folder, a DuckDB file; the log has them)
    return without_paths(answer, _private_paths(runtime))


def _private_paths(runtime: Runtime) -> dict[str, str]:
    """The project folder and a file warehouse (DuckDB, chdb:, spark-local:), each as its public name."""
    from pathlib import Path as FilePath

    paths = {}
    if runtime.project is not None:
        for folder in {str(runtime.project), str(FilePath(runtime.project).resolve())}:
            paths[folder + "/"], paths[folder] = "", "."
    if "://" not in runtime.url:
        target = runtime.url.split(":", 1)[1] if runtime.url.split(":", 1)[0] in ("chdb", "spark-local") else runtime.url
        for file in {target, str(FilePath(target).resolve())}:
            paths[file] = FilePath(target).name
    return paths


@router.get("/v1/metrics", response_model=hm.MetricList, responses=ERRORS, tags=["catalog"])
async def list_metrics(
    request: Request,
    tag: Annotated[str | None, Query(max_length=100, description="Only metrics with this tag")] = None,
    tier: Annotated[m.Tier | None, Query(description="draft, verified, certified or deprecated")] = None,
    owner: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text search over name, label and description")] = None,
):
    catalog = catalog_of(request)
    grant = grant_of(request, catalog)
    words = (q or "").lower().split()
    found = []
    for name, metric in sorted(catalog.metrics.items()):
        if not grant.queryable(catalog, name):
            continue
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
    grant = grant_of(request, catalog)
    metric = seen.check_metric(catalog, grant, name)
    dims = seen.visible_dimensions(catalog, grant, dimensions_for(catalog, [name]))
    origin = metric.location
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
    from canon.compiler.lineage import lineage_json, render_dot, render_mermaid

    catalog = catalog_of(request)
    grant = grant_of(request, catalog)
    seen.check_metric(catalog, grant, name)
    if format == "json":
        return seen.prune_lineage(catalog, grant, lineage_json(catalog, name, direction))
    if not grant.open:
        direction = "down"  # a drawing cannot be pruned node by node: restricted users see what it reads
    graph = runtime_of(request).lineage(catalog)  # built once per catalog version
    render = render_mermaid if format == "mermaid" else render_dot
    return {"metric": name, "format": format,
            "text": render(graph, f"metric:{name}", "down" if direction == "both" else direction)}


@router.get("/v1/search", tags=["catalog"])
async def search_catalog(request: Request, q: Annotated[str, Query(min_length=1, max_length=200)],
                         limit: Annotated[int, Query(ge=1, le=200)] = 20):
    """Metrics, dimensions and glossary terms matching the words of `q` (name, label, synonym, tag, description)."""
    from canon.compiler.search import search

    catalog = catalog_of(request)
    hits = seen.visible_hits(catalog, grant_of(request, catalog), search(catalog, q, limit=limit))
    return {"query": q, "results": [h.to_dict() for h in hits]}


@router.get("/v1/glossary", tags=["catalog"])
async def list_glossary(request: Request, q: Annotated[str | None, Query(max_length=200)] = None):
    """The business glossary, or the terms matching `q`."""
    from canon.compiler.search import search

    catalog = catalog_of(request)
    grant = grant_of(request, catalog)
    names = [h.name for h in search(catalog, q, limit=200) if h.kind == "term"] if q else sorted(catalog.glossary)
    terms = [seen.visible_term(catalog, grant, catalog.glossary[n]) for n in names]
    return {"terms": [t for t in terms if t is not None]}


@router.get("/v1/dimensions", response_model=hm.DimensionList, responses=ERRORS, tags=["catalog"])
async def list_dimensions(
    request: Request,
    metrics: Annotated[str, Query(min_length=1, max_length=2000, description="Comma-separated metric names")],
):
    catalog = catalog_of(request)
    grant = grant_of(request, catalog)
    names = [n.strip() for n in metrics.split(",") if n.strip()]
    for name in names:
        seen.check_metric(catalog, grant, name)
    dims = seen.visible_dimensions(catalog, grant, dimensions_for(catalog, names))
    return {"metrics": names, "dimensions": [d.to_dict() for d in dims]}


@router.get("/v1/dimensions/{ref}/values", response_model=hm.ValuesResponse, responses=QUERY_ERRORS, tags=["catalog"])
async def dimension_values(
    request: Request,
    ref: Annotated[str, PathParam(max_length=200)],
    limit: Annotated[int, Query(ge=1, le=MAX_VALUES)] = 1000,
):
    runtime = runtime_of(request)
    identity = identity_of(request)
    ticket = QueryTicket()
    rows, sql = await runtime.run(lambda: runtime.dimension_values(ref, limit=limit + 1, identity=identity, ticket=ticket),
                                  ticket=ticket, timeout_s=runtime.limits.query_timeout_s)
    values = [json_value(r[0]) for r in rows[:limit]]
    return {"dimension": ref, "values": values, "sql": sql, "truncated": len(rows) > limit}


@router.post("/v1/query", response_model=hm.QueryResponse, response_model_exclude_none=True,
             responses=QUERY_ERRORS, tags=["query"])
async def query(request: Request, body: hm.QueryBody):
    catalog, runtime = catalog_of(request), runtime_of(request)
    arrow = wants_arrow(request.headers.get("accept"))  # notebooks and services: typed columns, no JSON

    def answer(prepared, ticket):  # in the pool: a large answer's encoding never holds up the event loop
        result = runtime.query(prepared, ticket=ticket)
        if arrow:
            flags = {k: True for k in ("truncated", "cached") if getattr(result, k, False)}
            return Response(arrow_stream(result, **flags), media_type=ARROW_STREAM,
                            headers=warning_header(result.warnings))
        return JSONResponse(result_body(result), headers=warning_header(result.warnings))

    # many structured values make building the request CPU work too: it runs in the same pool trip
    return await run_request(request, functools.partial(build_request, catalog, body), timeout_s=body.timeout_s,
                             work=answer)


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
    runtime = runtime_of(request)
    identity = identity_of(request)

    def work():  # CPU work: in the runtime's pool, off the event loop; the shape limits first
        wanted = build_request(catalog, body)
        runtime.limits.check_request(wanted)
        # the SQL shown is the SQL this caller would run: their row filters included
        typed = runtime.typed(catalog) if wanted.timezone else catalog  # DATE columns: never shifted
        return compile_request(typed, runtime.authorize(wanted, identity, catalog), chosen, pretty=True)

    compiled = await runtime.run(work)
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


def create_app(project_dir, warehouse_url: str | None = None, *, query_timeout_s: float | None = None,
               max_rows: int | None = None, reload_interval_s: float = 1.0, build_demo_if_missing: bool = True,
               pg: tuple[str, int] | None = None) -> FastAPI:
    """The HTTP (and Cube) API over one runtime. `pg=(host, port)` also serves the views over the
    PostgreSQL wire protocol on the same runtime. `query_timeout_s` / `max_rows` override canon.yml's
    `limits:`."""
    from .project import demo_path, find_project, warehouse_url as resolve_warehouse

    project = find_project(project_dir)
    url = resolve_warehouse(project, warehouse_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if build_demo_if_missing and Path(url) == demo_path(project) and not Path(url).exists():
            from .demo import build_demo

            log.warning("building the demo warehouse at %s (first start)", url)
            build_demo(Path(url))
        # an invalid catalog at start is fatal: nothing to serve. The validated catalog is read from
        # .canon/ when the definition files have not changed since it was cached (a faster start)
        runtime = Runtime.open(project, url, query_timeout_s=query_timeout_s, max_rows=max_rows,
                               reload_interval_s=reload_interval_s, cached_catalog=True)
        try:
            runtime.warehouse()
        except WarehouseError as error:
            log.warning("%s — serving the catalog; queries answer 503 until it is reachable", error)
        app.state.runtime = runtime
        runtime.start()
        pg_server = _start_pg(runtime, pg) if pg else None
        log.warning("Canon serving %s (catalog %s, %d metrics) on warehouse %s",
                    project, runtime.catalog.version, len(runtime.catalog.metrics), safe_url(url))
        # MCP over streamable HTTP, if installed: its SDK takes ~2 s of a core to import, so it is
        # mounted in the background once the server is quiet (or at the first /mcp request), and /mcp
        # answers 503 until then (the rest of the API serves at once, the first dashboard at full speed)
        app.state.mcp_wanted = asyncio.Event()
        _mcp_placeholder(app)
        mcp = asyncio.create_task(_serve_mcp(app)) if importlib.util.find_spec("mcp") is not None else None
        try:
            yield
        finally:
            if mcp is not None:
                mcp.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await mcp
            if pg_server:
                pg_server.stop()
            jobs = getattr(app.state, "cube_jobs", None)
            if jobs is not None:  # Cube queries still waiting for a poll stop in the engine
                jobs.cancel_all()
            runtime.close()

    app = FastAPI(title=API_TITLE, version=_version(), lifespan=lifespan,
                  description="Canon: metrics defined once, the same numbers everywhere. "
                              "Catalog, query and Cube-compatible REST APIs.")
    from .http_guard import install as install_guard; install_guard(app, project)  # noqa: E702 — body size, JSON (CSRF), Host
    from . import http_auth
    from .project import load_config

    http_auth.install(app, load_config(project))  # authentication inside, CORS around everything
    app.add_exception_handler(CanonError, canon_error_handler)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)
    app.include_router(router)
    from .http_saved import router as saved_router

    app.include_router(saved_router)
    from .cube_api import health_router as cube_health_router, router as cube_router

    app.include_router(cube_router)
    app.include_router(cube_health_router)  # Cube's /readyz and /livez
    from .recommend.routes import install as install_recommendations; install_recommendations(app, project, url)  # noqa: E702
    from .webapp.routes import install as install_webapp; install_webapp(app)  # noqa: E702 — the web app at /
    return app


MCP_MOUNT_QUIET_S = 2.0  # MCP is mounted once no query has run for this long after the start ...
MCP_MOUNT_WAIT_S = 60.0  # ... or this long after it, or at the first /mcp request


async def _serve_mcp(app: FastAPI) -> None:
    """Mount the MCP tools at /mcp (behind the same guard and authentication as every route, answering
    as the request's identity) and run their session manager until the server stops. A manager runs
    once, so each start builds its own and replaces the previous start's route."""
    started, wanted = time.monotonic(), app.state.mcp_wanted
    while not wanted.is_set() and time.monotonic() - started < MCP_MOUNT_WAIT_S \
            and not app.state.runtime.activity.is_quiet(MCP_MOUNT_QUIET_S, started):
        await asyncio.sleep(0.25)
    from .mcp_server import MCP_PATH, http_routes

    try:
        routes, sessions = await asyncio.to_thread(http_routes, lambda: app.state.runtime)
    except Exception:  # noqa: BLE001 — the rest of the API serves on; /mcp keeps answering 503
        log.exception("the MCP endpoint could not be mounted")
        return
    async with sessions.run():
        app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != MCP_PATH] + list(routes)
        await asyncio.Event().wait()  # until cancelled at shutdown


def _mcp_placeholder(app: FastAPI) -> None:
    """/mcp answers `mcp_starting` until this start's MCP routes are mounted."""
    from .mcp_server import MCP_PATH

    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != MCP_PATH]
    app.router.add_api_route(MCP_PATH, mcp_starting, methods=["GET", "POST", "DELETE"], include_in_schema=False)


async def mcp_starting(request: Request):
    """/mcp until the MCP tools are mounted (a second or two after start, or after the first /mcp
    request when queries keep the server busy), or when the extra is missing."""
    import importlib.util

    wanted = getattr(request.app.state, "mcp_wanted", None)
    if wanted is not None:
        wanted.set()  # mount now

    if importlib.util.find_spec("mcp") is None:
        return JSONResponse({"code": "not_found", "message": "the MCP endpoint needs the `mcp` package",
                             "hint": "pip install 'canon-semantic[mcp]'"}, status_code=404)
    return JSONResponse({"code": "starting", "message": "the MCP endpoint is starting", "hint": "retry in a second"},
                        status_code=503, headers={"Retry-After": "1"})


def _start_pg(runtime: Runtime, pg: tuple[str, int]):
    from .pgwire.server import credentials, start_pg_server
    from .project import load_config

    user, password = credentials(load_config(runtime.project))
    if not password:
        runtime.authn.check_bind(pg[0], "the PostgreSQL wire server")
    handle = start_pg_server(runtime, pg[0], pg[1], user, password)
    runtime.pg_port = handle.port  # the bound port (0 asks for a free one)
    log.warning("PostgreSQL wire protocol on %s:%d", pg[0], handle.port)
    return handle


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("canon-semantic")
    except Exception:  # noqa: BLE001
        return "0"


__all__ = ["create_app", "build_request", "run_request", "runtime_of", "catalog_of"]

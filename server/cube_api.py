"""Cube-compatible REST API: /cubejs-api/v1/load, /subscribe, /sql, /dry-run, /meta, and /readyz, /livez.

Thin: cube_meta shows the catalog as cubes, cube_query turns Cube queries into Canon requests,
cube_jobs keeps slow queries running between "Continue wait" polls; this module runs the requests
through the runtime and shapes Cube's answers (default rows, `compact`, `columnar`; the `multi`
envelope with `compareDateRange` and blending result sets; `total` counted in the warehouse).
Auth and CORS are the app's concern (the same dependency as the rest of the HTTP API).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from canon.compiler.errors import CanonError, Location, QueryError

from .cube_dates import iso_ms
from .cube_jobs import CONTINUE_WAIT, CubeJobs
from .cube_meta import schema_for
from .cube_query import BLENDING, COMPARE, Plan, Translated, pivot_query, plan
from .http_models import cube_openapi
from .http_auth import identity_of
from .runtime import Identity

router = APIRouter(prefix="/cubejs-api/v1", tags=["cube"])
health_router = APIRouter(tags=["status"])


# --- values --------------------------------------------------------------------------------------------------


def cube_value(value, kind: str):
    if value is None:
        return None
    if kind == "time":
        if isinstance(value, datetime):
            return iso_ms(value.replace(tzinfo=None))
        if isinstance(value, date):
            return f"{value.isoformat()}T00:00:00.000"
        text = str(value)
        if len(text) == 10:
            return f"{text}T00:00:00.000"
        try:
            return iso_ms(datetime.fromisoformat(text).replace(tzinfo=None))
        except ValueError:
            return text
    return value


def _rows(t: Translated, result) -> tuple[list[str], list[list]]:
    """(members, rows) in Cube's member names; a time dimension asked with a granularity is also
    reported under its plain name, as Cube does."""
    members = [key for _, keys, _ in t.outputs for key in keys]
    if result is None:
        return members, []
    index = {c["name"]: i for i, c in enumerate(result.columns)}
    rows = [[cube_value(row[index[col]], kind) for col, keys, kind in t.outputs for _ in keys] for row in result.rows]
    return members, rows


def shape_data(t: Translated, members: list[str], rows: list[list]) -> Any:
    if t.response_format == "compact":
        return {"members": members, "dataset": rows}
    if t.response_format == "columnar":
        return {"members": members, "columns": [[row[i] for row in rows] for i in range(len(members))]}
    return [dict(zip(members, row)) for row in rows]


def _extra_columns(p: Plan, t: Translated, members: list[str], rows: list[list]) -> None:
    """compareDateRange rows carry their range; blending rows their time under `time.<granularity>`."""
    if p.query_type == COMPARE:
        td = next(td for td in t.normalized["timeDimensions"] if td.get("dateRange"))
        members.append("compareDateRange")
        for row in rows:
            row.append(" - ".join(td["dateRange"]))
    elif p.query_type == BLENDING:
        td = next((td for td in t.normalized["timeDimensions"] if td.get("granularity")), None)
        if td is not None:
            source = members.index(f"{td['dimension']}.{td['granularity']}")
            members.append(f"time.{td['granularity']}")
            for row in rows:
                row.append(row[source])


# --- running -----------------------------------------------------------------------------------------------


def _runtime(request: Request):
    from .http_api import runtime_of

    return runtime_of(request)


def _jobs(request: Request) -> CubeJobs:
    jobs = getattr(request.app.state, "cube_jobs", None)
    if jobs is None:
        jobs = request.app.state.cube_jobs = CubeJobs.from_env()
    return jobs


async def _plan(request: Request, raw) -> Plan:
    runtime = _runtime(request)
    catalog = runtime.catalog
    schema = schema_for(request.app, catalog)
    # translating a large query is CPU work: in the runtime's pool, so it never holds up other clients
    return await runtime.run(lambda: plan(catalog, schema, raw, max_rows=runtime.limits.max_rows))


def _job_key(identity: Identity, p: Plan, kind: str) -> str:
    who = json.dumps([identity.user, identity.via, identity.claims], sort_keys=True, default=str)
    return f"{kind}|{who}|{p.key}"


def _work(runtime, p: Plan, identity: Identity, ticket):
    """Blocking: every result set of the plan (rows, and with `total` the row count of the whole
    result, counted by the engine), in order. Bad requests fail before any query runs."""
    catalog = runtime.catalog
    prepared = [runtime.prepare(t.request, identity=identity, catalog=catalog) for t in p.parts]
    out = []
    for t, ready in zip(p.parts, prepared):
        result = runtime.query(ready, ticket=ticket) if t.run else None
        total = None
        if t.total:
            total = runtime.count_rows(replace(t.request, limit=None, offset=None, order=()), catalog=catalog,
                                       identity=identity, ticket=ticket)
        out.append((result, total))
    return out


async def _load(request: Request, raw, query_type) -> JSONResponse:
    runtime = _runtime(request)
    p = await _plan(request, raw)
    identity = identity_of(request)
    timeout = runtime.limits.max_query_timeout_s * len(p.parts) * (2 if any(t.total for t in p.parts) else 1)

    async def start(ticket):
        return await runtime.run(lambda: _work(runtime, p, identity, ticket), ticket=ticket, timeout_s=timeout)

    outcome = await _jobs(request).poll(_job_key(identity, p, "load"), start)
    if outcome is CONTINUE_WAIT:
        return JSONResponse({"error": "Continue wait"})
    refreshed = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    results = []
    for t, (result, total) in zip(p.parts, outcome):
        members, rows = _rows(t, result)
        _extra_columns(p, t, members, rows)
        body = {
            "query": t.normalized,
            "data": shape_data(t, members, rows),
            "lastRefreshTime": refreshed,
            "annotation": t.annotation,
            "dataSource": "default",
            "dbType": runtime.sql_dialect,
            "extDbType": None,
            "external": False,
            "slowQuery": False,
            **({"total": total} if total is not None else {}),
            **({"warnings": result.warnings} if result is not None and result.warnings else {}),
        }
        results.append(body)
    if query_type == "multi" or len(p.parts) > 1:
        return JSONResponse({"queryType": p.query_type, "results": results, "pivotQuery": pivot_query(p),
                             "slowQuery": False})
    return JSONResponse(results[0])


# --- endpoints ---------------------------------------------------------------------------------------------


async def _body(request: Request) -> dict:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise QueryError(f"the request body is not valid JSON ({error})", location=Location(path="body")) from None
    if not isinstance(body, dict):
        raise QueryError("the request body must be a JSON object {\"query\": {...}}", location=Location(path="body"))
    return body


async def _params(request: Request) -> tuple[Any, str | None]:
    if request.method == "POST":
        body = await _body(request)
        return body.get("query"), body.get("queryType")
    raw = request.query_params.get("query")
    if raw:  # a body's nesting is checked by the HTTP guard; a ?query= is checked here, before it is parsed
        from .http_guard import check_json_depth, json_depth_limit

        check_json_depth(raw, json_depth_limit(request.app), "query")
    return raw, request.query_params.get("queryType")


@router.get("/load", summary="Cube /v1/load: run a query", openapi_extra=cube_openapi("get"))
@router.post("/load", summary="Cube /v1/load: run a query", openapi_extra=cube_openapi("post"))
async def load(request: Request):
    raw, query_type = await _params(request)
    return await _load(request, raw, query_type)


@router.get("/subscribe", summary="Cube /v1/subscribe over HTTP: the client polls, each poll answers as /load", openapi_extra=cube_openapi("get"))
@router.post("/subscribe", summary="Cube /v1/subscribe over HTTP: the client polls, each poll answers as /load", openapi_extra=cube_openapi("post"))
async def subscribe(request: Request):
    raw, query_type = await _params(request)
    return await _load(request, raw, query_type)


def _sql_body(t: Translated, compiled) -> dict:
    alias = {col.replace(".", "__"): keys[0] for col, keys, _ in t.outputs}
    return {"sql": {
        "sql": [compiled.sql, []],
        "status": "ok",
        "order": {o["id"]: "desc" if o["desc"] else "asc" for o in t.normalized["order"]},
        "aliasNameToMember": alias,
        "memberNames": [key for _, keys, _ in t.outputs for key in keys],
        "timeDimensionAlias": None,
        "timeDimensionField": None,
        "dataSource": "default",
        "external": False,
        "preAggregations": [],
        "rollupMatchResults": [],
        "canUseTransformedQuery": {"sortedDimensions": [], "sortedTimeDimensions": [], "measures": [],
                                   "leafMeasureAdditive": False, "allFiltersWithinSelectedDimensions": False,
                                   "isAdditive": False, "granularityHierarchies": {}, "hasMultipliedMeasures": False,
                                   "hasCumulativeMeasures": False, "windowGranularity": None, "filterDimensionsSingleValueEqual": None,
                                   "ownedDimensions": [], "ownedTimeDimensionsWithRollupGranularity": [],
                                   "ownedTimeDimensionsAsIs": []},
        "query": t.normalized,
        "dialect": compiled.dialect,
    }}


async def _prepared(request: Request, p: Plan):
    runtime = _runtime(request)
    identity = identity_of(request)
    catalog = runtime.catalog
    return await runtime.run(lambda: [runtime.prepare(t.request, identity=identity, catalog=catalog) for t in p.parts])


@router.get("/sql", summary="Cube /v1/sql: the SQL a query compiles to", openapi_extra=cube_openapi("get"))
@router.post("/sql", summary="Cube /v1/sql: the SQL a query compiles to", openapi_extra=cube_openapi("post"))
async def sql(request: Request):
    raw, _ = await _params(request)
    p = await _plan(request, raw)
    prepared = await _prepared(request, p)
    bodies = [_sql_body(t, ready.compiled) for t, ready in zip(p.parts, prepared)]
    return JSONResponse(bodies[0] if len(bodies) == 1 else bodies)


@router.get("/dry-run", summary="Cube /v1/dry-run: the normalized query, not run", openapi_extra=cube_openapi("get"))
@router.post("/dry-run", summary="Cube /v1/dry-run: the normalized query, not run", openapi_extra=cube_openapi("post"))
async def dry_run(request: Request):
    raw, _ = await _params(request)
    p = await _plan(request, raw)
    await _prepared(request, p)  # compiles: a query that cannot run fails here too
    return JSONResponse({
        "queryType": p.query_type,
        "normalizedQueries": [t.normalized for t in p.parts],
        "queryOrder": [{o["id"]: "desc" if o["desc"] else "asc" for o in t.normalized["order"]} for t in p.parts],
        "pivotQuery": pivot_query(p),
        "transformedQueries": [None for _ in p.parts],
    })


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() not in ("false", "0", "")


@router.get("/meta", summary="Cube /v1/meta: every cube, measure and dimension (?extended, ?onlyViews)")
async def meta(request: Request):
    from .http_api import catalog_of

    catalog = catalog_of(request)
    schema = schema_for(request.app, catalog)
    body = schema.meta(extended=_flag(request, "extended"), only_views=_flag(request, "onlyViews"))
    grant = _runtime(request).grant(identity_of(request), catalog)
    return JSONResponse(body if grant.open else _visible_meta(catalog, grant, schema, body))


def _visible_meta(catalog, grant, schema, body: dict) -> dict:
    """/meta without the members an access grant hides (and cubes left with no measure)."""
    from .runtime.visibility import dimension_allowed

    def shown(name: str) -> bool:
        member = schema.members.get(name)
        if member is None:
            return False
        if member.kind == "measure":
            return member.ref not in catalog.metrics or grant.queryable(catalog, member.ref)
        if member.kind == "segment":  # a segment shows when every dimension its filter names does
            return all(dimension_allowed(catalog, grant, ref) for ref in catalog.segments[member.ref].refs)
        return dimension_allowed(catalog, grant, member.ref.rsplit(".", 1)[0] if member.type == "time"
                                 and member.ref.count(".") > 1 else member.ref)

    cubes = []
    for cube in body.get("cubes", []):
        kept = {kind: [m for m in cube.get(kind, []) if shown(m["name"])] for kind in ("measures", "dimensions", "segments")
                if kind in cube}
        kept["measures"] = [{**m, "drillMembers": [d for d in m["drillMembers"] if shown(d)]} if m.get("drillMembers")
                            else m for m in kept.get("measures", [])]
        if kept.get("measures") or kept.get("dimensions"):  # a model's cube holds dimensions only
            cubes.append({**cube, **kept})
    return {**body, "cubes": cubes}


@health_router.get("/livez", summary="Cube's liveness probe")
async def livez():
    return {"health": "HEALTH"}


@health_router.get("/readyz", summary="Cube's readiness probe: 500 while the warehouse is unreachable")
async def readyz(request: Request):
    runtime = _runtime(request)
    try:
        status = await runtime.run(runtime.ping)
    except CanonError:
        status = {"reachable": False}
    if status.get("reachable"):
        return {"health": "HEALTH"}
    return JSONResponse({"health": "DOWN"}, status_code=500)

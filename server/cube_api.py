"""Cube-compatible REST API: /cubejs-api/v1/load, /meta and /sql over the Canon catalog.

The catalog appears to Cube clients as cubes:
- one cube per semantic model, holding its dimensions: `product.category`, `order.ordered_at`
  (so a Cube member is the Canon reference itself);
- one cube `metrics` holding every metric as a measure, plus `metrics.metric_time`;
- one view per Canon view (`sales.revenue`, `sales.product_category`, `sales.metric_time`);
- `antecedent` / `consequent` cubes with the item dimensions of affinity metrics.

Cube queries (measures, dimensions, timeDimensions with granularity and dateRange, nested and/or
filters with Cube's operators, order, limit, offset, timezone, total) become Canon requests; every
filter value becomes a sqlglot literal inside a condition tree, never SQL text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlglot import exp

from canon.compiler.calendar import check_timezone
from canon.compiler.errors import CanonError, Location, QueryError, UnknownNameError, did_you_mean
from canon.compiler.model import GRAINS
from canon.compiler.refs import METRIC_TIME, SIDES, parse_ref
from canon.compiler.request import QueryRequest

router = APIRouter(prefix="/cubejs-api/v1", tags=["cube"])

CUBE_DEFAULT_LIMIT = 10_000  # Cube's default row limit when a query gives none
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DIM_TYPES = {"categorical": "string", "number": "number", "time": "time", "boolean": "boolean"}
AGG_TYPES = {"sum": "sum", "count": "count", "count_distinct": "countDistinct", "avg": "avg", "min": "min", "max": "max"}
QUERY_KEYS = {"measures", "dimensions", "filters", "timeDimensions", "segments", "limit", "rowLimit", "offset",
              "order", "timezone", "renewQuery", "ungrouped", "responseFormat", "total", "queryType"}
CUBE_GRAINS = ("second", "minute", "hour", "day", "week", "month", "quarter", "year")


from .structured_filters import all_of, any_of, column_for, date_range, filter_condition, iso_ms, range_condition


# --- the catalog as cubes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str  # Cube member: "<cube>.<member>"
    ref: str  # Canon reference: a metric name or a dimension reference
    kind: str  # measure | dimension
    type: str  # number | string | time | boolean
    title: str
    short_title: str
    description: str | None = None
    agg: str = "number"


@dataclass
class CubeSchema:
    version: str
    cubes: list[dict] = field(default_factory=list)
    members: dict[str, Member] = field(default_factory=dict)


def _title(text: str) -> str:
    return " ".join(w.capitalize() for w in text.replace(".", " ").replace("_", " ").split())


def build_schema(catalog) -> CubeSchema:
    schema = CubeSchema(catalog.version)
    taken = set(catalog.models)

    def add_cube(name: str, title: str, description: str | None, kind: str, members: list[Member], meta: dict):
        for member in members:
            schema.members[member.name] = member
        schema.cubes.append({
            "name": name, "title": title, "description": description, "type": kind, "public": True,
            "isVisible": True, "connectedComponent": 1, "meta": meta,
            "measures": [_measure_meta(x) for x in members if x.kind == "measure"],
            "dimensions": [_dimension_meta(x) for x in members if x.kind == "dimension"],
            "segments": [], "hierarchies": [], "folders": [],
        })

    def dim_member(cube: str, member: str, ref: str, dim) -> Member:
        label = dim.definition.label or _title(dim.name)
        return Member(f"{cube}.{member}", ref, "dimension", DIM_TYPES.get(dim.type, "string"),
                      f"{_title(cube)} {label}", label, dim.definition.description)

    def metric_member(cube: str, name: str) -> Member:
        metric = catalog.metrics[name]
        label = metric.label or _title(name)
        agg = AGG_TYPES.get(catalog.facts[name].agg, "number")
        return Member(f"{cube}.{name}", name, "measure", "number", f"{_title(cube)} {label}", label,
                      " ".join((metric.description or "").split()) or None, agg)

    def time_member(cube: str) -> Member:
        return Member(f"{cube}.{METRIC_TIME}", METRIC_TIME, "dimension", "time", f"{_title(cube)} Metric Time",
                      "Metric Time", "Each metric's own default time (the shared time axis).")

    for model in catalog.models.values():
        d = model.definition
        add_cube(model.name, d.label or _title(model.name), d.description, "cube",
                 [dim_member(model.name, dim.name, dim.ref, dim) for dim in model.dimensions.values()],
                 {"canon": {"kind": "semantic_model", "owner": d.owner, "tier": d.tier}})

    metrics_cube = "metrics" if "metrics" not in taken else "canon_metrics"
    taken.add(metrics_cube)
    add_cube(metrics_cube, "Metrics", "Every metric of the Canon catalog, with the shared time axis.", "cube",
             [metric_member(metrics_cube, n) for n in sorted(catalog.metrics)] + [time_member(metrics_cube)],
             {"canon": {"kind": "metrics"}})

    if catalog.affinities:
        item_model = next(iter(catalog.affinities.values())).item_model
        for side in SIDES:
            if side in taken:
                continue
            taken.add(side)
            dims = catalog.models[item_model].dimensions.values()
            add_cube(side, _title(side), f"The {side} item of a pair, for affinity metrics (cross-sell).", "cube",
                     [dim_member(side, dim.name, f"{side}.{dim.name}", dim) for dim in dims],
                     {"canon": {"kind": "affinity_side", "item_model": item_model}})

    for view in catalog.views.values():
        if view.name in taken:
            continue
        taken.add(view.name)
        members = [metric_member(view.name, n) for n in view.metrics if n in catalog.metrics]
        for column in view.dimensions:
            ref = column if isinstance(column, str) else column.ref
            name = (None if isinstance(column, str) else column.name) or ref.replace(".", "_")
            if ref == METRIC_TIME:
                members.append(Member(f"{view.name}.{name}", METRIC_TIME, "dimension", "time",
                                      f"{_title(view.name)} Metric Time", "Metric Time",
                                      "Each metric's own default time (the shared time axis)."))
                continue
            try:
                dimref = parse_ref(catalog, ref)
            except CanonError:
                continue
            dim = dimref.dimension
            member = dim_member(view.name, name, ref, dim)
            members.append(member)
        add_cube(view.name, view.label or _title(view.name), view.description, "view", members,
                 {"canon": {"kind": "view", "owner": view.owner, "tier": view.tier}})
    return schema


def _measure_meta(member: Member) -> dict:
    return {"name": member.name, "title": member.title, "shortTitle": member.short_title,
            "description": member.description, "type": "number", "aggType": member.agg,
            "cumulative": False, "cumulativeTotal": False, "drillMembers": [],
            "drillMembersGrouped": {"measures": [], "dimensions": []}, "isVisible": True, "public": True,
            "meta": {"canon": {"metric": member.ref}}}


def _dimension_meta(member: Member) -> dict:
    return {"name": member.name, "title": member.title, "shortTitle": member.short_title,
            "description": member.description, "type": member.type, "suggestFilterValues": True,
            "isVisible": True, "public": True, "primaryKey": False,
            "meta": {"canon": {"dimension": member.ref}}}


def schema_for(app, catalog) -> CubeSchema:
    """The cube schema of this catalog version, built once per version."""
    cached = getattr(app.state, "cube_schema", None)
    if cached is not None and cached[0] is catalog:
        return cached[1]
    schema = build_schema(catalog)
    app.state.cube_schema = (catalog, schema)
    return schema


# --- Cube query -> Canon request -----------------------------------------------------------------------------


@dataclass
class Translated:
    request: QueryRequest
    normalized: dict
    outputs: list[tuple[str, list[str], str]]  # (Canon column, Cube keys, Cube type)
    annotation: dict
    total: bool
    compact: bool


def _member(schema: CubeSchema, name, path: str, kind: str | None = None) -> Member:
    if not isinstance(name, str):
        raise QueryError(f"{path}: {name!r} is not a member name", location=Location(path=path),
                         hint="write <cube>.<member>, e.g. metrics.revenue")
    member = schema.members.get(name)
    if member is None:
        choices = [n for n, x in schema.members.items() if kind is None or x.kind == kind]
        raise UnknownNameError(f"{path}: unknown member '{name}'", location=Location(path=path),
                               hint=did_you_mean(name, choices))
    if kind and member.kind != kind:
        raise QueryError(f"{path}: '{name}' is a {member.kind}, not a {kind}", location=Location(path=path),
                         hint=f"move it to {'measures' if member.kind == 'measure' else 'dimensions'}")
    return member


def _list(query: dict, key: str) -> list:
    value = query.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise QueryError(f"{key} must be a list", location=Location(path=key))
    return value


def _filter_tree(catalog, schema, node, path: str, today: date) -> exp.Expression:
    if not isinstance(node, dict):
        raise QueryError(f"{path}: a filter is an object", location=Location(path=path))
    for logical in ("and", "or"):
        if logical in node:
            items = node[logical]
            if set(node) != {logical} or not isinstance(items, list) or not items:
                raise QueryError(f"{path}: '{logical}' takes a non-empty list of filters and nothing beside it",
                                 location=Location(path=path))
            parts = [_filter_tree(catalog, schema, item, f"{path}.{logical}[{i}]", today) for i, item in enumerate(items)]
            return (all_of if logical == "and" else any_of)(parts) if len(parts) > 1 else parts[0]
    unknown = set(node) - {"member", "dimension", "operator", "values"}
    if unknown:
        raise QueryError(f"{path}: unknown field(s) {', '.join(sorted(map(str, unknown)))}",
                         location=Location(path=path), hint="a filter has member, operator and values")
    name = node.get("member", node.get("dimension"))
    member = _member(schema, name, f"{path}.member")
    if member.kind == "measure":
        raise QueryError(f"{path}: filters on measures ('{name}') are not supported",
                         location=Location(path=path), hint="filter on dimensions; order or limit by the measure")
    values = node.get("values", [])
    if not isinstance(values, list):
        raise QueryError(f"{path}.values must be a list", location=Location(path=f"{path}.values"))
    op = node.get("operator")
    if not isinstance(op, str):
        raise QueryError(f"{path}.operator is required", location=Location(path=f"{path}.operator"))
    return filter_condition(catalog, member.ref, op, values, path=path, today=today)


def _annotation_item(member: Member) -> dict:
    item = {"title": member.title, "shortTitle": member.short_title, "description": member.description,
            "type": member.type, "meta": {"canon": {"ref": member.ref}}}
    if member.kind == "measure":
        item.update({"drillMembers": [], "drillMembersGrouped": {"measures": [], "dimensions": []}})
    return item


def translate(catalog, schema: CubeSchema, query, *, max_rows: int, today: date | None = None) -> Translated:
    if not isinstance(query, dict):
        raise QueryError("the query must be a JSON object", hint="e.g. {\"measures\": [\"metrics.revenue\"]}")
    unknown = set(query) - QUERY_KEYS
    if unknown:
        name = sorted(map(str, unknown))[0]
        raise QueryError(f"unknown query field '{name}'", location=Location(path=name),
                         hint=did_you_mean(name, QUERY_KEYS))
    tz = query.get("timezone")
    if tz in (None, "UTC", "Etc/UTC", "GMT", "Z", "utc"):
        tz = None
    else:  # stored UTC times fall into this zone's days; date ranges are read in it too
        try:
            tz = check_timezone(tz if isinstance(tz, str) else repr(tz))
        except QueryError as error:
            raise QueryError(error.message, location=Location(path="timezone"), hint=error.hint) from None
    pinned = catalog.settings.calendar.now
    today = today or (date.fromisoformat(str(pinned)[:10]) if pinned else
                      datetime.now(ZoneInfo(tz) if tz else timezone.utc).date())
    if query.get("ungrouped"):
        raise QueryError("ungrouped queries are not supported: Canon returns metrics aggregated by dimensions",
                         location=Location(path="ungrouped"))
    segments = _list(query, "segments")
    if segments:
        raise UnknownNameError(f"segments: unknown segment {segments[0]!r}", location=Location(path="segments"),
                               hint="this catalog defines no segments; use filters instead")

    measures = [_member(schema, n, f"measures[{i}]", "measure") for i, n in enumerate(_list(query, "measures"))]
    dimensions = [_member(schema, n, f"dimensions[{i}]", "dimension") for i, n in enumerate(_list(query, "dimensions"))]
    outputs: list[tuple[str, list[str], str]] = []
    annotation = {"measures": {}, "dimensions": {}, "segments": {}, "timeDimensions": {}}
    dims: list[str] = []
    where: list[str] = []
    order_alias: dict[str, str] = {}
    for member in dimensions:
        dims.append(member.ref)
        outputs.append((member.ref, [member.name], member.type))
        annotation["dimensions"][member.name] = _annotation_item(member)
        order_alias[member.name] = member.ref

    normalized_tds = []
    for i, td in enumerate(_list(query, "timeDimensions")):
        path = f"timeDimensions[{i}]"
        if not isinstance(td, dict):
            raise QueryError(f"{path}: a time dimension is an object", location=Location(path=path))
        extra = set(td) - {"dimension", "granularity", "dateRange"}
        if extra:
            hint = ("compareDateRange is not supported; send one query per range" if "compareDateRange" in extra
                    else "a time dimension has dimension, granularity and dateRange")
            raise QueryError(f"{path}: unsupported field(s) {', '.join(sorted(map(str, extra)))}",
                             location=Location(path=path), hint=hint)
        member = _member(schema, td.get("dimension"), f"{path}.dimension", "dimension")
        if member.type != "time":
            raise QueryError(f"{path}: '{member.name}' is a {member.type} dimension, not a time dimension",
                             location=Location(path=path))
        entry = {"dimension": member.name}
        granularity = td.get("granularity")
        if granularity is not None:
            if granularity not in GRAINS:
                hint = (f"Canon's grains are {', '.join(GRAINS)}" if granularity in CUBE_GRAINS
                        else did_you_mean(str(granularity), GRAINS))
                raise QueryError(f"{path}.granularity: {granularity!r} is not supported", hint=hint,
                                 location=Location(path=f"{path}.granularity"))
            ref = f"{member.ref}.{granularity}"
            key = f"{member.name}.{granularity}"
            keys = [key] + ([member.name] if member.name not in {d.name for d in dimensions} else [])
            dims.append(ref)
            outputs.append((ref, keys, "time"))
            item = _annotation_item(member)
            annotation["timeDimensions"][key] = {**item, "granularity": {
                "name": granularity, "title": granularity.capitalize(), "interval": f"1 {granularity}",
                "type": "built-in"}}
            if len(keys) > 1:
                annotation["timeDimensions"][member.name] = item
            order_alias[key] = ref
            order_alias.setdefault(member.name, ref)
            entry["granularity"] = granularity
        if td.get("dateRange") is not None:
            start, end = date_range(td["dateRange"], f"{path}.dateRange", today=today)
            condition = range_condition(column_for(member.ref, path), start, end)
            where.append(condition)  # a condition tree: the compiler checks it, nothing is re-parsed
            entry["dateRange"] = [iso_ms(start), iso_ms(end - timedelta(milliseconds=1))]
        normalized_tds.append(entry)

    for member in measures:
        outputs.append((member.ref, [member.name], "number"))
        annotation["measures"][member.name] = _annotation_item(member)
        order_alias[member.name] = member.ref

    filters = _list(query, "filters")
    for i, node in enumerate(filters):
        where.append(_filter_tree(catalog, schema, node, f"filters[{i}]", today))

    order: list[str] = []
    raw_order = query.get("order")
    pairs: list = []
    if isinstance(raw_order, dict):
        pairs = list(raw_order.items())
    elif isinstance(raw_order, list):
        pairs = [tuple(p) if isinstance(p, (list, tuple)) else (None, None) for p in raw_order]
    elif raw_order is not None:
        raise QueryError("order must be an object {member: 'asc'|'desc'} or a list of [member, direction]",
                         location=Location(path="order"))
    normalized_order = []
    for i, pair in enumerate(pairs):
        if len(pair) != 2 or not isinstance(pair[0], str) or pair[1] not in ("asc", "desc"):
            raise QueryError(f"order[{i}]: write [member, 'asc' | 'desc']", location=Location(path=f"order[{i}]"))
        name, direction = pair
        if name not in order_alias:
            raise UnknownNameError(f"order[{i}]: '{name}' is not among the query's members",
                                   location=Location(path=f"order[{i}]"), hint=did_you_mean(name, order_alias))
        order.append(("-" if direction == "desc" else "") + order_alias[name])
        normalized_order.append({"id": name, "desc": direction == "desc"})

    limit = query.get("limit", query.get("rowLimit"))
    offset = query.get("offset")
    for key, value in (("limit", limit), ("offset", offset)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "limit" else 0)):
            raise QueryError(f"{key}: {value!r} must be a whole number{' of at least 1' if key == 'limit' else ' ≥ 0'}",
                             location=Location(path=key))
    if limit is None:
        limit = min(CUBE_DEFAULT_LIMIT, max_rows)
    if limit > max_rows:
        raise QueryError(f"limit: {limit:,} is above this server's row limit of {max_rows:,}",
                         location=Location(path="limit"), hint=f"ask for at most {max_rows:,} rows and page with offset")
    if not measures:
        raise QueryError("measures: a query needs at least one measure — Canon returns metrics by dimensions",
                         location=Location(path="measures"),
                         hint=did_you_mean("", [n for n, x in schema.members.items() if x.kind == "measure"]))
    request = QueryRequest(metrics=tuple(x.ref for x in measures), dimensions=tuple(dims), where=tuple(where),
                           order=tuple(order), limit=limit, offset=offset, timezone=tz)
    normalized = {
        "measures": [x.name for x in measures],
        "dimensions": [x.name for x in dimensions],
        "timeDimensions": normalized_tds,
        "segments": [],
        "filters": filters,
        "order": normalized_order,
        "limit": limit,
        **({"offset": offset} if offset is not None else {}),
        "timezone": tz or "UTC",
        "rowLimit": limit,
        "queryType": "regularQuery",
        **({"total": True} if query.get("total") else {}),
        **({"responseFormat": query["responseFormat"]} if query.get("responseFormat") else {}),
    }
    return Translated(request, normalized, outputs, annotation, bool(query.get("total")),
                      query.get("responseFormat") == "compact")


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
            return iso_ms(datetime.fromisoformat(text))
        except ValueError:
            return text
    return value


def _rows_to_data(t: Translated, result) -> Any:
    index = {c["name"]: i for i, c in enumerate(result.columns)}
    if t.compact:
        members = [key for _, keys, _ in t.outputs for key in keys]
        dataset = [[cube_value(row[index[col]], kind) for col, keys, kind in t.outputs for _ in keys]
                   for row in result.rows]
        return {"members": members, "dataset": dataset}
    data = []
    for row in result.rows:
        item = {}
        for col, keys, kind in t.outputs:
            value = cube_value(row[index[col]], kind)
            for key in keys:
                item[key] = value
        data.append(item)
    return data


# --- endpoints -----------------------------------------------------------------------------------------------


def _parse_query_param(raw) -> Any:
    if raw is None or raw == "" or raw == "undefined":
        raise QueryError("query param is required", location=Location(path="query"),
                         hint="send ?query=<JSON> or a POST body {\"query\": {...}}")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as error:
            raise QueryError(f"query: not valid JSON ({error})", location=Location(path="query")) from None
    if isinstance(raw, list):
        if len(raw) != 1:
            raise QueryError("query: Canon answers one query per request (data blending is not supported)",
                             location=Location(path="query"), hint="send the queries one at a time")
        raw = raw[0]
    return raw


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
    return request.query_params.get("query"), request.query_params.get("queryType")


def _translate(request: Request, raw) -> tuple[Any, Translated]:
    from .http_api import runtime_of

    runtime = runtime_of(request)
    catalog = runtime.catalog
    schema = schema_for(request.app, catalog)
    t = translate(catalog, schema, _parse_query_param(raw), max_rows=runtime.limits.max_rows)
    return catalog, t


def _with_total(runtime, t: Translated):
    """The query, and with `total` the number of rows without limit and offset (counted by the engine)."""

    def work(prepared, ticket):
        result = runtime.query(prepared, ticket=ticket)
        total = None
        if t.total:
            total = runtime.count_rows(replace(t.request, limit=None, offset=None, order=()),
                                       catalog=prepared.catalog, ticket=ticket)
        return result, total

    return work


@router.api_route("/load", methods=["GET", "POST"], summary="Cube /v1/load: run a query")
async def load(request: Request):
    from .http_api import run_request, runtime_of

    raw, query_type = await _params(request)
    catalog, t = _translate(request, raw)
    runtime = runtime_of(request)
    result, total = await run_request(request, t.request, via="cube", work=_with_total(runtime, t))
    body = {
        "query": t.normalized,
        "data": _rows_to_data(t, result),
        "lastRefreshTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "annotation": t.annotation,
        "dataSource": "default",
        "dbType": runtime.sql_dialect,
        "extDbType": None,
        "external": False,
        "slowQuery": False,
        **({"total": total} if total is not None else {}),
        **({"warnings": result.warnings} if result.warnings else {}),
    }
    if query_type == "multi":
        body = {"queryType": "regularQuery", "results": [body],
                "pivotQuery": {**t.normalized, "queryType": "regularQuery"}, "slowQuery": False}
    return JSONResponse(body)


@router.api_route("/sql", methods=["GET", "POST"], summary="Cube /v1/sql: the SQL a query compiles to")
async def sql(request: Request):
    raw, _ = await _params(request)
    catalog, t = _translate(request, raw)
    from .http_api import runtime_of

    compiled = runtime_of(request).prepare(t.request).compiled
    dialect = compiled.dialect
    alias = {}
    for col, keys, _ in t.outputs:
        alias[col.replace(".", "__")] = keys[0]
    return JSONResponse({"sql": {
        "sql": [compiled.sql, []],
        "status": "ok",
        "order": t.normalized["order"],
        "aliasNameToMember": alias,
        "timeDimensionAlias": None,
        "timeDimensionField": None,
        "dataSource": "default",
        "external": False,
        "preAggregations": [],
        "rollupMatchResults": [],
        "query": t.normalized,
        "dialect": dialect,
    }})


@router.get("/meta", summary="Cube /v1/meta: every cube, measure and dimension")
async def meta(request: Request):
    from .http_api import catalog_of

    schema = schema_for(request.app, catalog_of(request))
    return JSONResponse({"cubes": schema.cubes})

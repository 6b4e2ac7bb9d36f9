"""Cube queries -> Canon requests.

A Cube query (measures, dimensions, timeDimensions with granularity / dateRange / compareDateRange,
nested and/or filters on dimensions and measures, segments, order, limit, offset, timezone, total,
responseFormat) becomes one QueryRequest per result set: `compareDateRange` gives one per range, an
array of queries (data blending) one per query. Every filter value becomes a sqlglot literal inside a
condition tree, never SQL text; filters on measures become HAVING conditions over the metric.

Cube's defaults are kept: with no `order`, the first time dimension with a granularity ascending,
else the first measure descending, else the first dimension ascending; with no `limit`, 10,000 rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlglot import exp

from canon.compiler.calendar import check_timezone
from canon.compiler.errors import CanonError, Location, QueryError, did_you_mean
from canon.compiler.model import GRAINS
from canon.compiler.request import QueryRequest

from .cube_dates import date_range, iso_ms
from .cube_meta import CubeSchema, Member
from .structured_filters import all_of, any_of, column_for, filter_condition, metric_condition, range_condition

CUBE_DEFAULT_LIMIT = 10_000  # Cube's default row limit when a query gives none
QUERY_KEYS = {"measures", "dimensions", "filters", "timeDimensions", "segments", "limit", "rowLimit", "offset",
              "order", "timezone", "renewQuery", "ungrouped", "responseFormat", "total", "queryType"}
CUBE_GRAINS = ("second", "minute", "hour", "day", "week", "month", "quarter", "year")
RESPONSE_FORMATS = ("default", "compact", "columnar")
UTC_NAMES = (None, "UTC", "Etc/UTC", "GMT", "Z", "utc")
REGULAR, COMPARE, BLENDING = "regularQuery", "compareDateRangeQuery", "blendingQuery"


class MemberError(QueryError):
    """An unknown member: 400 with `did you mean`, as Cube answers (Canon's own API answers 404)."""

    code = "unknown_member"


@dataclass
class Translated:
    request: QueryRequest
    normalized: dict
    outputs: list[tuple[str, list[str], str]]  # (Canon column, Cube keys, Cube type)
    annotation: dict
    total: bool
    response_format: str = "default"
    run: bool = True  # limit 0: the query is checked, never run


@dataclass
class Plan:
    """What one /load request runs: one or more result sets."""

    query_type: str
    parts: list[Translated] = field(default_factory=list)

    @property
    def key(self) -> str:
        return json.dumps([self.query_type] + [t.normalized for t in self.parts], sort_keys=True, default=str)


def _path_error(path: str, message: str, hint: str | None = None) -> QueryError:
    return QueryError(f"{path}: {message}", location=Location(path=path), hint=hint)


def _list(query: dict, key: str) -> list:
    value = query.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise QueryError(f"{key} must be a list", location=Location(path=key))
    return value


def find_member(schema: CubeSchema, name, path: str, kind: str | None = None) -> Member:
    if not isinstance(name, str):
        raise _path_error(path, f"{name!r} is not a member name", "write <cube>.<member>, e.g. metrics.revenue")
    member = schema.members.get(name)
    if member is None:
        choices = [n for n, x in schema.members.items() if kind is None or x.kind == kind]
        raise MemberError(f"{path}: unknown member '{name}'", location=Location(path=path),
                          hint=did_you_mean(name, choices))
    if kind and member.kind != kind:
        raise _path_error(path, f"'{name}' is a {member.kind}, not a {kind}",
                          f"move it to {member.kind}s")
    return member


def _check_grain(granularity, path: str) -> str:
    if granularity not in GRAINS:
        hint = (f"Canon's time grains are {', '.join(GRAINS)}; second and minute grains are not supported"
                if granularity in CUBE_GRAINS else did_you_mean(str(granularity), GRAINS))
        raise _path_error(path, f"granularity {granularity!r} is not supported", hint)
    return granularity


@dataclass
class Context:
    catalog: Any
    schema: CubeSchema
    today: date
    now: datetime
    max_rows: int


def context(catalog, schema: CubeSchema, tz: str | None, *, max_rows: int, now: datetime | None = None) -> Context:
    """Relative dates count from the catalog's pinned `calendar.now`, else the clock, in the query's zone."""
    if now is None:
        pinned = catalog.settings.calendar.now
        if pinned:
            text = str(pinned)
            now = datetime.fromisoformat(text) if len(text) > 10 else datetime.fromisoformat(text[:10] + "T00:00:00")
            now = now.replace(tzinfo=None)
        else:
            now = datetime.now(ZoneInfo(tz) if tz else timezone.utc).replace(tzinfo=None)
    return Context(catalog, schema, now.date(), now, max_rows)


def read_timezone(query: dict) -> str | None:
    tz = query.get("timezone")
    if tz in UTC_NAMES:
        return None
    try:  # stored UTC times fall into this zone's days; date ranges are read in it too
        return check_timezone(tz if isinstance(tz, str) else repr(tz))
    except QueryError as error:
        raise QueryError(error.message, location=Location(path="timezone"), hint=error.hint) from None


# --- filters --------------------------------------------------------------------------------------------------


def _filter_tree(ctx: Context, node, path: str, having: list) -> exp.Expression | None:
    """A dimension condition (WHERE), or None when the node filtered on measures (added to `having`)."""
    if not isinstance(node, dict):
        raise _path_error(path, "a filter is an object")
    for logical in ("and", "or"):
        if logical in node:
            items = node[logical]
            if set(node) != {logical} or not isinstance(items, list) or not items:
                raise _path_error(path, f"'{logical}' takes a non-empty list of filters and nothing beside it")
            inner_having: list = []
            parts = [_filter_tree(ctx, item, f"{path}.{logical}[{i}]", inner_having) for i, item in enumerate(items)]
            if inner_having and any(p is not None for p in parts):
                raise _path_error(path, f"'{logical}' mixes filters on measures and on dimensions",
                                  "put measure filters and dimension filters in separate top-level filters")
            combine = all_of if logical == "and" else any_of
            if inner_having:
                refs = [ref for item_refs, _ in inner_having for ref in item_refs]
                conditions = [condition for _, condition in inner_having]
                having.append((refs, combine(conditions) if len(conditions) > 1 else conditions[0]))
                return None
            return combine(parts) if len(parts) > 1 else parts[0]
    unknown = set(node) - {"member", "dimension", "operator", "values"}
    if unknown:
        raise _path_error(path, f"unknown field(s) {', '.join(sorted(map(str, unknown)))}",
                          "a filter has member, operator and values")
    name = node.get("member", node.get("dimension"))
    member = find_member(ctx.schema, name, f"{path}.member")
    values = node.get("values", [])
    if values is None:
        values = []
    if not isinstance(values, list):
        raise _path_error(f"{path}.values", "must be a list")
    op = node.get("operator")
    if not isinstance(op, str):
        raise _path_error(f"{path}.operator", "is required")
    if member.kind == "measure":
        having.append(([member.ref], metric_condition(member.ref, op, values, path=path)))
        return None
    return filter_condition(ctx.catalog, member.ref, op, values, path=path, today=ctx.today, now=ctx.now)


def _annotation_item(member: Member) -> dict:
    item = {"title": member.title, "shortTitle": member.short_title, "description": member.description,
            "type": member.type, "meta": {"canon": {"ref": member.ref}}}
    if member.kind == "measure":
        item.update({"drillMembers": list(member.drill),
                     "drillMembersGrouped": {"measures": [], "dimensions": list(member.drill)}})
    return item


def _granularity_annotation(granularity: str) -> dict:
    return {"name": granularity, "title": granularity.capitalize(), "interval": f"1 {granularity}", "type": "built-in"}


# --- one query -----------------------------------------------------------------------------------------------


def translate(ctx: Context, query: dict, tz: str | None, *, date_override: tuple[int, Any] | None = None) -> Translated:
    """One Cube query (already checked to be an object) as a Canon request. `date_override` replaces
    the dateRange of timeDimensions[i] (one range of a compareDateRange)."""
    schema = ctx.schema
    ungrouped = query.get("ungrouped", False)
    if not isinstance(ungrouped, bool):
        raise QueryError(f"ungrouped: {ungrouped!r} must be true or false", location=Location(path="ungrouped"))
    if ungrouped and _list(query, "measures"):
        raise QueryError("ungrouped: Canon lists raw rows of dimensions only; a measure is an aggregate "
                         "(Cube would return its SQL expression per row)", location=Location(path="ungrouped"),
                         hint="leave the measures out of an ungrouped query, or drop ungrouped")
    response_format = query.get("responseFormat") or "default"
    if response_format not in RESPONSE_FORMATS:
        raise QueryError(f"responseFormat: {response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}",
                         location=Location(path="responseFormat"))
    segments = [find_member(schema, n, f"segments[{i}]", "segment") for i, n in enumerate(_list(query, "segments"))]
    measures = [find_member(schema, n, f"measures[{i}]", "measure") for i, n in enumerate(_list(query, "measures"))]
    outputs: list[tuple[str, list[str], str]] = []
    annotation = {"measures": {}, "dimensions": {}, "segments": {}, "timeDimensions": {}}
    dims: list[str] = []
    where: list = []
    order_alias: dict[str, str] = {}
    first_grain: str | None = None
    plain_dims: list[str] = []
    for i, member in enumerate(segments):  # the catalog's reviewed filter, checked again by the compiler
        where.append(ctx.catalog.segment_filter(member.ref, field=f"segments[{i}]").condition.copy())
        annotation["segments"][member.name] = {"title": member.title, "shortTitle": member.short_title,
                                               "description": member.description, "meta": {"canon": {"ref": member.ref}}}

    def add_time(member: Member, granularity: str, key: str, extra_keys: list[str]):
        nonlocal first_grain
        ref = f"{member.ref}.{granularity}"
        if ref in dims:
            return
        dims.append(ref)
        outputs.append((ref, [key] + extra_keys, "time"))
        item = _annotation_item(member)
        annotation["timeDimensions"][key] = {**item, "granularity": _granularity_annotation(granularity)}
        for extra in extra_keys:
            annotation["timeDimensions"][extra] = item
        order_alias[key] = ref
        order_alias.setdefault(member.name, ref)
        first_grain = first_grain or key

    for i, name in enumerate(_list(query, "dimensions")):
        path = f"dimensions[{i}]"
        member = schema.members.get(name) if isinstance(name, str) else None
        if member is None and isinstance(name, str) and name.count(".") == 2:
            # Cube also takes `cube.time.month` among the dimensions
            base, granularity = name.rsplit(".", 1)
            base_member = schema.members.get(base)
            if base_member is not None and base_member.type == "time":
                add_time(base_member, _check_grain(granularity, path), name, [])
                continue
        member = find_member(schema, name, path, "dimension")
        dims.append(member.ref)
        plain_dims.append(member.name)
        outputs.append((member.ref, [member.name], member.type))
        annotation["dimensions"][member.name] = _annotation_item(member)
        order_alias[member.name] = member.ref

    normalized_tds = []
    for i, td in enumerate(_list(query, "timeDimensions")):
        path = f"timeDimensions[{i}]"
        if not isinstance(td, dict):
            raise _path_error(path, "a time dimension is an object")
        extra = set(td) - {"dimension", "granularity", "dateRange", "compareDateRange"}
        if extra:
            raise _path_error(path, f"unknown field(s) {', '.join(sorted(map(str, extra)))}",
                              "a time dimension has dimension, granularity, dateRange or compareDateRange")
        member = find_member(schema, td.get("dimension"), f"{path}.dimension", "dimension")
        if member.type != "time":
            raise _path_error(path, f"'{member.name}' is a {member.type} dimension, not a time dimension")
        entry = {"dimension": member.name}
        granularity = td.get("granularity")
        if granularity is not None:
            granularity = _check_grain(granularity, f"{path}.granularity")
            key = f"{member.name}.{granularity}"
            add_time(member, granularity, key, [member.name] if member.name not in plain_dims else [])
            entry["granularity"] = granularity
        date_value = date_override[1] if date_override and date_override[0] == i else td.get("dateRange")
        if date_value is not None:
            start, end = date_range(date_value, f"{path}.dateRange", today=ctx.today, now=ctx.now)
            where.append(range_condition(column_for(member.ref, path), start, end))
            entry["dateRange"] = [iso_ms(start), iso_ms(end - timedelta(milliseconds=1))]
        normalized_tds.append(entry)

    for member in measures:
        outputs.append((member.ref, [member.name], "number"))
        annotation["measures"][member.name] = _annotation_item(member)
        order_alias[member.name] = member.ref

    filters = _list(query, "filters")
    having: list = []
    for i, node in enumerate(filters):
        condition = _filter_tree(ctx, node, f"filters[{i}]", having)
        if condition is not None:
            where.append(condition)
    metrics = [m.ref for m in measures]
    having_trees = []
    for refs, condition in having:
        for ref in refs:
            if ref not in metrics:  # filtered on but not asked for: computed, not returned (as in Cube)
                metrics.append(ref)
        having_trees.append(condition)
    if not metrics and not dims:
        raise QueryError("the query names no measure and no dimension", location=Location(path="measures"),
                         hint="add a measure, or dimensions to list the combinations of their values")

    order, normalized_order = _order(query, order_alias, first_grain, measures, plain_dims)
    limit, offset = _limit(query, ctx.max_rows)
    request = QueryRequest(metrics=tuple(metrics), dimensions=tuple(dims), where=tuple(where),
                           having=tuple(having_trees), order=tuple(order), limit=max(limit, 1), offset=offset,
                           timezone=tz, ungrouped=ungrouped)
    normalized = {
        "measures": [x.name for x in measures],
        "dimensions": [n for n in _list(query, "dimensions")],
        "timeDimensions": normalized_tds,
        "segments": [m.name for m in segments],
        "filters": filters,
        "order": normalized_order,
        "limit": limit,
        **({"offset": offset} if offset is not None else {}),
        "timezone": tz or "UTC",
        "rowLimit": limit,
        "queryType": REGULAR,
        **({"total": True} if query.get("total") else {}),
        **({"ungrouped": True} if ungrouped else {}),
        **({"responseFormat": response_format} if query.get("responseFormat") else {}),
    }
    return Translated(request, normalized, outputs, annotation, bool(query.get("total")), response_format,
                      run=limit > 0)


def _order(query: dict, order_alias: dict, first_grain, measures, plain_dims) -> tuple[list[str], list[dict]]:
    raw_order = query.get("order")
    if raw_order is None:  # Cube's default order
        default = ((first_grain, "asc") if first_grain else (measures[0].name, "desc") if measures
                   else (plain_dims[0], "asc") if plain_dims else None)
        pairs = [default] if default else []
    elif isinstance(raw_order, dict):
        pairs = list(raw_order.items())
    elif isinstance(raw_order, list):
        pairs = [tuple(p) if isinstance(p, (list, tuple)) else (None, None) for p in raw_order]
    else:
        raise QueryError("order must be an object {member: 'asc'|'desc'} or a list of [member, direction]",
                         location=Location(path="order"))
    order, normalized = [], []
    for i, pair in enumerate(pairs):
        if len(pair) != 2 or not isinstance(pair[0], str) or pair[1] not in ("asc", "desc"):
            raise _path_error(f"order[{i}]", "write [member, 'asc' | 'desc']")
        name, direction = pair
        if name not in order_alias:
            raise MemberError(f"order[{i}]: '{name}' is not among the query's members",
                              location=Location(path=f"order[{i}]"), hint=did_you_mean(name, order_alias))
        order.append(("-" if direction == "desc" else "") + order_alias[name])
        normalized.append({"id": name, "desc": direction == "desc"})
    return order, normalized


def _limit(query: dict, max_rows: int) -> tuple[int, int | None]:
    limit = query.get("limit", query.get("rowLimit"))
    offset = query.get("offset")
    for key, value in (("limit", limit), ("offset", offset)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise QueryError(f"{key}: {value!r} must be a whole number ≥ 0", location=Location(path=key))
    if limit is None:
        limit = min(CUBE_DEFAULT_LIMIT, max_rows)
    if limit > max_rows:
        raise QueryError(f"limit: {limit:,} is above this server's row limit of {max_rows:,}",
                         location=Location(path="limit"), hint=f"ask for at most {max_rows:,} rows and page with offset")
    return limit, offset


# --- a request: one query, an array (blending) or a compareDateRange --------------------------------------


def parse_query_param(raw) -> Any:
    if raw is None or raw == "" or raw == "undefined":
        raise QueryError("query param is required", location=Location(path="query"),
                         hint="send ?query=<JSON> or a POST body {\"query\": {...}}")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as error:
            raise QueryError(f"query: not valid JSON ({error})", location=Location(path="query")) from None
    return raw


MAX_QUERIES = 16  # result sets in one request (blending or compareDateRange)


def plan(catalog, schema: CubeSchema, raw, *, max_rows: int, now: datetime | None = None) -> Plan:
    raw = parse_query_param(raw)
    queries = raw if isinstance(raw, list) else [raw]
    if not queries or len(queries) > MAX_QUERIES:
        raise QueryError(f"query: send 1 to {MAX_QUERIES} queries", location=Location(path="query"))
    parts: list[Translated] = []
    compare = False
    for q, query in enumerate(queries):
        where = f"query[{q}]" if isinstance(raw, list) else "query"
        if not isinstance(query, dict):
            raise QueryError(f"{where}: the query must be a JSON object",
                             location=Location(path=where), hint="e.g. {\"measures\": [\"metrics.revenue\"]}")
        unknown = set(query) - QUERY_KEYS
        if unknown:
            name = sorted(map(str, unknown))[0]
            raise QueryError(f"unknown query field '{name}'", location=Location(path=name),
                             hint=did_you_mean(name, QUERY_KEYS))
        tz = read_timezone(query)
        ctx = context(catalog, schema, tz, max_rows=max_rows, now=now)
        ranges = [(i, td["compareDateRange"]) for i, td in enumerate(_list(query, "timeDimensions"))
                  if isinstance(td, dict) and td.get("compareDateRange") is not None]
        if not ranges:
            parts.append(translate(ctx, query, tz))
            continue
        if isinstance(raw, list) or len(ranges) > 1:
            raise QueryError("compareDateRange: one per request, on one time dimension and not inside a blending query",
                             location=Location(path="timeDimensions"))
        index, values = ranges[0]
        if not isinstance(values, list) or not values or len(values) > MAX_QUERIES:
            raise QueryError(f"timeDimensions[{index}].compareDateRange: a list of 1 to {MAX_QUERIES} date ranges",
                             location=Location(path=f"timeDimensions[{index}].compareDateRange"))
        if query["timeDimensions"][index].get("dateRange") is not None:
            raise QueryError(f"timeDimensions[{index}]: give dateRange or compareDateRange, not both",
                             location=Location(path=f"timeDimensions[{index}]"))
        compare = True
        for value in values:
            parts.append(translate(ctx, query, tz, date_override=(index, value)))
    kind = COMPARE if compare else BLENDING if isinstance(raw, list) and len(queries) > 1 else REGULAR
    return Plan(kind, parts)


def pivot_query(p: Plan) -> dict:
    """Cube's `pivotQuery`: the first query, with every query's measures for a blending query."""
    first = dict(p.parts[0].normalized)
    if p.query_type == BLENDING:
        first["measures"] = [m for t in p.parts for m in t.normalized["measures"]]
    if p.query_type == COMPARE:
        first["measures"] = list(first["measures"])
        first["dimensions"] = ["compareDateRange"] + list(first["dimensions"])
    return {**first, "queryType": p.query_type}


__all__ = ["CanonError", "Plan", "Translated", "plan", "pivot_query", "translate", "find_member", "MemberError"]

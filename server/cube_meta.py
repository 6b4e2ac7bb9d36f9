"""The Canon catalog seen as Cube's cubes and views, for /cubejs-api/v1/meta and for reading queries.

- one cube per semantic model, holding its dimensions: `product.category`, `order.ordered_at`
  (a Cube member is the Canon reference itself);
- one cube `metrics` holding every metric as a measure, plus `metrics.metric_time`;
- one view per Canon view (`sales.revenue`, `sales.product_category`, `sales.metric_time`), each
  member naming the cube member it stands for (`aliasMember`);
- `antecedent` / `consequent` cubes with the item dimensions of affinity metrics.
- a `cohort` cube with `cohort.periods_since`, for cohort metrics.

A measure's `drillMembers` are the descriptive dimensions of the model its metric is counted on, so
the JS client's `drillDown()` lists the groups behind a value (see cube_query: a dimension-only query
with a `measureFilter`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from canon.compiler.errors import CanonError
from canon.compiler.refs import METRIC_TIME, SIDES, parse_ref

DIM_TYPES = {"categorical": "string", "number": "number", "time": "time", "boolean": "boolean"}
AGG_TYPES = {"sum": "sum", "count": "count", "count_distinct": "countDistinct", "avg": "avg", "min": "min", "max": "max"}
MAX_DRILL_MEMBERS = 6


@dataclass(frozen=True)
class Member:
    name: str  # Cube member: "<cube>.<member>"
    ref: str  # Canon reference: a metric name or a dimension reference
    kind: str  # measure | dimension | segment
    type: str  # number | string | time | boolean
    title: str
    short_title: str
    description: str | None = None
    agg: str = "number"
    cumulative: bool = False
    drill: tuple[str, ...] = ()  # Cube members to drill a measure down to
    alias_of: str | None = None  # a view member: the cube member it stands for
    sql: str | None = None  # the definition (extended meta)
    format: str | None = None  # a metric's `format`: number, currency, percent


@dataclass
class CubeSchema:
    version: str
    cubes: list[dict] = field(default_factory=list)
    members: dict[str, Member] = field(default_factory=dict)

    def meta(self, *, extended: bool = False, only_views: bool = False) -> dict:
        cubes = [c for c in self.cubes if not only_views or c["type"] == "view"]
        if not extended:
            cubes = [{k: v for k, v in c.items() if k not in ("sql", "joins")} for c in cubes]
            cubes = [{**c, **{key: [_plain(x) for x in c[key]] for key in ("measures", "dimensions", "segments")}}
                     for c in cubes]
        return {"cubes": cubes}


def _plain(member: dict) -> dict:
    return {k: v for k, v in member.items() if k != "sql"}


def _title(text: str) -> str:
    return " ".join(w.capitalize() for w in text.replace(".", " ").replace("_", " ").split())


def build_schema(catalog) -> CubeSchema:
    schema = CubeSchema(catalog.version)
    taken = set(catalog.models)
    by_ref: dict[str, str] = {}  # Canon dimension reference -> its member in a model cube

    def add_cube(name: str, title: str, description: str | None, kind: str, members: list[Member], meta: dict,
                 sql: str | None = None):
        for member in members:
            schema.members[member.name] = member
        schema.cubes.append({
            "name": name, "title": title, "description": description, "type": kind, "public": True,
            "isVisible": True, "connectedComponent": 1, "meta": meta,
            "measures": [_measure_meta(x) for x in members if x.kind == "measure"],
            "dimensions": [_dimension_meta(x) for x in members if x.kind == "dimension"],
            "segments": [_segment_meta(x) for x in members if x.kind == "segment"],
            "hierarchies": [], "folders": [], "sql": sql, "joins": [],
        })

    def dim_member(cube: str, member: str, ref: str, dim, alias_of: str | None = None) -> Member:
        label = dim.definition.label or _title(dim.name)
        return Member(f"{cube}.{member}", ref, "dimension", DIM_TYPES.get(dim.type, "string"),
                      f"{_title(cube)} {label}", label, dim.definition.description, alias_of=alias_of,
                      sql=dim.definition.sql)

    def drill(name: str) -> tuple[str, ...]:
        if name in catalog.affinities:
            return ()
        for model in catalog.facts[name].models:  # the nearest model that has descriptive dimensions
            dims = [d for d in catalog.models[model].dimensions.values() if d.type in ("categorical", "boolean")]
            if dims:
                return tuple(by_ref[d.ref] for d in dims[:MAX_DRILL_MEMBERS] if d.ref in by_ref)
        return ()

    def metric_member(cube: str, name: str, alias_of: str | None = None) -> Member:
        metric = catalog.metrics[name]
        label = metric.label or _title(name)
        facts = catalog.facts[name]
        return Member(f"{cube}.{name}", name, "measure", "number", f"{_title(cube)} {label}", label,
                      " ".join((metric.description or "").split()) or None, AGG_TYPES.get(facts.agg, "number"),
                      cumulative=metric.type == "cumulative", drill=drill(name), alias_of=alias_of,
                      sql=getattr(metric, "measure", None) or getattr(metric, "expr", None),
                      format=getattr(metric, "format", None))

    def segment_member(cube: str, name: str, ref: str, alias_of: str | None = None) -> Member:
        model, segment = ref.split(".", 1)
        s = next(x for x in catalog.models[model].definition.segments if x.name == segment)
        label = s.label or _title(s.name)
        return Member(f"{cube}.{name}", ref, "segment", "boolean", f"{_title(cube)} {label}", label, s.description,
                      alias_of=alias_of, sql=s.filter)

    def time_member(cube: str, name: str = METRIC_TIME, alias_of: str | None = None) -> Member:
        return Member(f"{cube}.{name}", METRIC_TIME, "dimension", "time", f"{_title(cube)} Metric Time",
                      "Metric Time", "Each metric's own default time (the shared time axis).", alias_of=alias_of)

    for model in catalog.models.values():
        for dim in model.dimensions.values():
            by_ref[dim.ref] = f"{model.name}.{dim.name}"
    for model in catalog.models.values():
        d = model.definition
        segments = [segment_member(model.name, s.name, f"{model.name}.{s.name}")
                    for s in d.segments if f"{model.name}.{s.name}" in catalog.segments]
        add_cube(model.name, d.label or _title(model.name), d.description, "cube",
                 [dim_member(model.name, dim.name, dim.ref, dim) for dim in model.dimensions.values()] + segments,
                 {"canon": {"kind": "semantic_model", "owner": d.owner, "tier": d.tier}},
                 sql=d.sql or d.table)

    metrics_cube = "metrics" if "metrics" not in taken else "canon_metrics"
    taken.add(metrics_cube)
    by_ref[METRIC_TIME] = f"{metrics_cube}.{METRIC_TIME}"
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

    if "cohort" not in taken and any(metric.type == "cohort" for metric in catalog.metrics.values()):
        taken.add("cohort")  # cohort.periods_since of cohort metrics (compiler/cohort.py)
        add_cube("cohort", "Cohort", "Periods since each member's cohort start, for cohort metrics (retention).",
                 "cube", [Member("cohort.periods_since", "cohort.periods_since", "dimension", "number",
                                 "Cohort Periods Since", "Periods Since",
                                 "Periods from each member's cohort period (metric_time) at metric_time's grain.")],
                 {"canon": {"kind": "cohort"}})

    for view in catalog.views.values():
        if view.name in taken:
            continue
        taken.add(view.name)
        members = [metric_member(view.name, n, f"{metrics_cube}.{n}") for n in view.metrics if n in catalog.metrics]
        for column in view.dimensions:
            ref = column if isinstance(column, str) else column.ref
            name = (None if isinstance(column, str) else column.name) or ref.replace(".", "_")
            if ref == METRIC_TIME:
                members.append(time_member(view.name, name, by_ref[METRIC_TIME]))
                continue
            try:
                dimref = parse_ref(catalog, ref)
            except CanonError:
                continue
            members.append(dim_member(view.name, name, ref, dimref.dimension, by_ref.get(ref)))
        members += [segment_member(view.name, ref.split(".", 1)[1], ref, ref)
                    for ref in view.segments if ref in catalog.segments]
        add_cube(view.name, view.label or _title(view.name), view.description, "view", members,
                 {"canon": {"kind": "view", "owner": view.owner, "tier": view.tier}})
    return schema


def _measure_meta(member: Member) -> dict:
    return {"name": member.name, "title": member.title, "shortTitle": member.short_title,
            "description": member.description, "type": "number", "aggType": member.agg,
            "cumulative": member.cumulative, "cumulativeTotal": False, "drillMembers": list(member.drill),
            "drillMembersGrouped": {"measures": [], "dimensions": list(member.drill)}, "isVisible": True,
            "public": True, **({"aliasMember": member.alias_of} if member.alias_of else {}),
            **({"format": member.format} if member.format else {}),
            "meta": {"canon": {"metric": member.ref}}, "sql": member.sql}


def _dimension_meta(member: Member) -> dict:
    return {"name": member.name, "title": member.title, "shortTitle": member.short_title,
            "description": member.description, "type": member.type, "suggestFilterValues": True,
            "isVisible": True, "public": True, "primaryKey": False,
            **({"aliasMember": member.alias_of} if member.alias_of else {}),
            "meta": {"canon": {"dimension": member.ref}}, "sql": member.sql}


def _segment_meta(member: Member) -> dict:
    return {"name": member.name, "title": member.title, "shortTitle": member.short_title,
            "description": member.description, "isVisible": True, "public": True,
            **({"aliasMember": member.alias_of} if member.alias_of else {}),
            "meta": {"canon": {"segment": member.ref}}, "sql": member.sql}


def schema_for(app, catalog) -> CubeSchema:
    """The cube schema of this catalog version, built once per version."""
    cached = getattr(app.state, "cube_schema", None)
    if cached is not None and cached[0] is catalog:
        return cached[1]
    schema = build_schema(catalog)
    app.state.cube_schema = (catalog, schema)
    return schema

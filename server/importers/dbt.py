"""`canon import dbt DIR`: dbt semantic models and MetricFlow metrics and saved queries -> Canon.

Reads every YAML file under DIR: dbt's `semantic_models:` / `metrics:` / `saved_queries:` lists and
MetricFlow's one-object documents (`semantic_model:`, `metric:`, `saved_query:`). Mapping:
- a semantic model's `model: ref('x')` (or `node_relation`) is the table `x`; entities, dimensions
  and measures keep their names; `defaults.agg_time_dimension` is the model's `default_time`;
- a dimension of the form `cast(x as date)` is stored_as: date (a time zone never moves its day);
- metrics keep their names; a measure input becomes a simple metric; cumulative and conversion
  metrics get `<name>_base` / `<name>_conversion` simple metrics where no plain one exists;
- Jinja filters `{{ Dimension('customer__type') }}` become `customer.type`, `TimeDimension(x, grain)`
  `x.grain`; filters of a measure input and of the metric are joined with AND;
- a slowly changing dimension (a natural entity, `validity_params` on two time dimensions) becomes a
  model with `validity: {from, to}` keyed by that entity: facts meet the version valid at their time.
Anything else is reported, never guessed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sqlglot import exp, parse_one

from canon.compiler.errors import ConfigError

from .common import ImportResult, Unmapped, canon_name, compact, read_documents, source_files, where

AGGS = {"sum": "sum", "max": "max", "min": "min", "count": "count", "count_distinct": "count_distinct",
        "average": "avg", "avg": "avg", "median": "median", "percentile": "percentile", "sum_boolean": "sum"}
GRAINS = ("day", "week", "month", "quarter", "year", "hour", "minute", "second")
_JINJA = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.S)
_REF = re.compile(r"""ref\(\s*(?:['"][^'"]+['"]\s*,\s*)?['"]([^'"]+)['"]\s*(?:,[^)]*)?\)""")


def import_dbt(directory) -> ImportResult:
    root = Path(directory)
    result = ImportResult("dbt")
    models, metrics, saved = [], [], []
    for path in source_files(root):
        try:
            documents = read_documents(path)
        except ConfigError as error:  # one unreadable file is reported, the rest imported
            result.note(where(root, path, None), "file", error.message)
            continue
        for document in documents:
            if not isinstance(document, dict):
                continue
            for key, bucket, single in (("semantic_models", models, "semantic_model"), ("metrics", metrics, "metric"),
                                        ("saved_queries", saved, "saved_query")):
                items = document.get(key) or ([document[single]] if isinstance(document.get(single), dict) else [])
                bucket += [(path, item) for item in items if isinstance(item, dict)]
    state = _State(root, result)
    for path, model in models:
        try:
            state.model(path, model)
        except Unmapped as reason:
            result.note(where(root, path, model), f"semantic model {model.get('name')}", str(reason))
    state.index_metrics(metrics)
    for path, metric in metrics:
        try:
            state.metric(path, metric)
        except Unmapped as reason:
            result.note(where(root, path, metric), f"metric {metric.get('name')}", str(reason))
    for path, query in saved:
        try:
            state.saved_query(path, query)
        except Unmapped as reason:
            result.note(where(root, path, query), f"saved query {query.get('name')}", str(reason))
    result.metrics += state.extra_metrics
    _anchor_entities(result)
    return result


def _anchor_entities(result: ImportResult) -> None:
    """Canon joins a foreign entity to the model where it is primary. A dbt entity that is primary
    nowhere becomes a model of its own (the distinct keys of every model that has it) when a conversion
    metric needs it, else a plain dimension of each model that holds it."""
    primary = {e["name"] for m in result.models.values() for e in m.get("entities", ()) if e["type"] != "foreign"}
    needed = {m["entity"] for m in result.metrics if m.get("type") == "conversion"}
    holders: dict[str, list[tuple[str, str]]] = {}
    for name, model in result.models.items():
        for entity in [e for e in model.get("entities", ()) if e["type"] == "foreign" and e["name"] not in primary]:
            key = entity.get("expr", entity["name"])
            holders.setdefault(entity["name"], []).append((model["table"], key))
            if entity["name"] in needed:
                continue
            model["entities"] = [e for e in model["entities"] if e is not entity]
            if entity["name"] not in {d["name"] for d in model.get("dimensions", ())}:
                model.setdefault("dimensions", []).append(compact({"name": entity["name"], "expr": entity.get("expr")}))
            result.note(f"semantic model {name}", f"entity {entity['name']}", "primary in no imported model: imported "
                        "as a dimension (import or write the model it points to, then make it an entity again)",
                        dropped=False)
    for entity in sorted(needed & holders.keys()):
        alias = exp.to_identifier(entity, quoted=True)  # `user` and other entity names may be reserved words
        selects = [exp.select(exp.column(key).as_(alias)).from_(exp.to_table(table)) for table, key in holders[entity]]
        union = selects[0]
        for select in selects[1:]:
            union = exp.union(union, select, distinct=True)
        if len(selects) == 1:
            union = union.distinct()
        name = entity if entity not in result.models else f"{entity}_keys"
        result.models[name] = {"name": name, "sql": union.sql(), "description": f"Every {entity} key of the imported "
                               "models (created by the dbt import: Canon joins an entity to the model where it is primary).",
                               "entities": [{"name": entity, "type": "primary"}]}
        result.note(f"semantic model {name}", f"entity {entity}", "primary in no imported model: a model of its "
                    "distinct keys was created so conversion metrics can use it", dropped=False)


class _State:
    def __init__(self, root: Path, result: ImportResult):
        self.root, self.result = root, result
        self.measure_model: dict[str, str] = {}  # measure name -> model name
        self.entity_alias: dict[str, str] = {}  # primary_entity of a model without a primary key -> model
        self.plain: dict[str, str] = {}  # measure -> a metric that is just that measure, unfiltered
        self.names: set[str] = set()
        self.extra_metrics: list[dict] = []

    # --- semantic models -----------------------------------------------------------------------

    def model(self, path: Path, sm: dict) -> None:
        at = where(self.root, path, sm)
        name = canon_name(sm.get("name", ""))
        table = _table(sm)
        if table is None:
            self.result.note(at, f"semantic model {sm.get('name')}", "no `model: ref(...)` or `node_relation` to read a table from")
            return
        if table[1]:
            self.result.note(at, f"semantic model {name}", f"schema '{table[1]}' is a template; imported as the bare table "
                                                            f"'{table[0]}' (set the schema by hand)", dropped=False)
        document = {"name": name, "table": table[0], "description": _text(sm.get("description")),
                    "label": sm.get("label")}
        entities = []
        validity = _validity(sm)
        for entity in sm.get("entities") or ():
            kind = entity.get("type")
            if kind == "natural":
                if validity is None:
                    self.result.note(where(self.root, path, entity), f"entity {name}.{entity.get('name')}",
                                     "a natural key without validity_params dimensions has no Canon equivalent")
                    continue
                # one row per key at any point in time: with `validity`, Canon joins the version valid at
                # the fact's own time (compiler/scd.py), so the natural key serves as the primary entity
                kind = "primary"
            entities.append(compact({"name": canon_name(entity["name"]), "type": kind, "expr": _expr(entity.get("expr"))}))
        if validity is not None:
            document["validity"] = validity
        if sm.get("primary_entity") and not any(e["type"] == "primary" for e in entities):
            self.entity_alias[canon_name(sm["primary_entity"])] = name
        document["entities"] = entities
        document["dimensions"] = [self.dimension(path, name, d) for d in sm.get("dimensions") or ()]
        document["measures"] = [m for m in (self.measure(path, name, m) for m in sm.get("measures") or ()) if m]
        default_time = (sm.get("defaults") or {}).get("agg_time_dimension")
        document["default_time"] = canon_name(default_time) if default_time else None
        for key in ("config", "meta"):
            if sm.get(key):
                self.result.note(at, f"semantic model {name}: {key}", "not carried over")
        self.result.models[name] = compact(document)

    def dimension(self, path: Path, model: str, dim: dict) -> dict:
        kind = dim.get("type", "categorical")
        out = {"name": canon_name(dim["name"]), "type": "time" if kind == "time" else "categorical",
               "expr": _expr(dim.get("expr")), "label": dim.get("label"), "description": _text(dim.get("description"))}
        params = dim.get("type_params") or {}
        if kind == "time":
            grain = params.get("time_granularity")
            if grain and grain != "day":
                out["granularity"] = grain
            if out["expr"] and _is_date_cast(out["expr"]):
                out["stored_as"] = "date"
        if dim.get("is_partition"):
            self.result.note(where(self.root, path, dim), f"dimension {model}.{out['name']}",
                             "is_partition has no Canon meaning; ignored", dropped=False)
        return compact(out)

    def measure(self, path: Path, model: str, measure: dict) -> dict | None:
        at, name = where(self.root, path, measure), canon_name(measure["name"])
        agg = AGGS.get(str(measure.get("agg")))
        if agg is None:
            self.result.note(at, f"measure {model}.{name}", f"aggregation '{measure.get('agg')}' is not supported")
            return None
        expr = _expr(measure.get("expr"))
        if measure.get("agg") == "sum_boolean":
            expr = f"CAST({expr or measure['name']} AS INTEGER)"
        out = {"name": name, "agg": agg, "expr": expr, "label": measure.get("label"),
               "description": _text(measure.get("description"))}
        params = measure.get("agg_params") or {}
        if agg == "percentile":
            out["percentile"] = params.get("percentile")
            if params.get("use_approximate_percentile") or params.get("use_discrete_percentile"):
                self.result.note(at, f"measure {model}.{name}", "approximate/discrete percentile imported as the exact "
                                                                "continuous percentile", dropped=False)
        non_additive = measure.get("non_additive_dimension")
        if non_additive:
            out["non_additive"] = compact({"time": canon_name(non_additive["name"]),
                                           "window": "first" if non_additive.get("window_choice") == "min" else "last",
                                           "groupings": [canon_name(g) for g in non_additive.get("window_groupings") or ()]})
        if measure.get("agg_time_dimension"):
            self.result.note(at, f"measure {model}.{name}", "a measure's own agg_time_dimension is not supported; "
                                                            "it uses the model's default_time", dropped=False)
        self.measure_model[measure["name"]] = model
        if measure.get("create_metric"):
            self.extra_metrics.append({"name": name, "type": "simple", "measure": f"{model}.{name}"})
            self.names.add(name)
            self.plain.setdefault(measure["name"], name)
        return compact(out)

    # --- metrics -------------------------------------------------------------------------------

    def index_metrics(self, metrics) -> None:
        for _, metric in metrics:
            self.names.add(canon_name(metric.get("name", "")))
            params = metric.get("type_params") or {}
            if str(metric.get("type", "")).lower() == "simple" and not metric.get("filter") and isinstance(params.get("measure"), str):
                self.plain.setdefault(params["measure"], canon_name(metric["name"]))

    def metric(self, path: Path, metric: dict) -> None:
        kind, name = str(metric.get("type", "")).lower(), canon_name(metric["name"])  # MetricFlow writes SIMPLE too
        params = metric.get("type_params") or {}
        base = {"name": name, "type": kind, "label": metric.get("label"), "description": _text(metric.get("description"))}
        filters = _filters(metric.get("filter"))
        if kind == "simple":
            out = {**base, **self._measure_input(params.get("measure"), filters)}
        elif kind == "ratio":
            out = {**base, "numerator": self._metric_input(params.get("numerator"), filters),
                   "denominator": self._metric_input(params.get("denominator"), filters)}
        elif kind == "derived":
            out = {**base, "expr": str(params["expr"]).strip(),
                   "metrics": [self._metric_input(m, filters) for m in params.get("metrics") or ()]}
        elif kind == "cumulative":
            out = self._cumulative(path, metric, base, params, filters)
        elif kind == "conversion":
            out = self._conversion(path, metric, base, params, filters)
        else:
            raise Unmapped(f"metric type '{kind}' is not supported")
        for key in ("time_granularity", "config", "meta"):
            if metric.get(key):
                self.result.note(where(self.root, path, metric), f"metric {name}: {key}", "not carried over", dropped=False)
        self.result.metrics.append(compact(out))

    def _measure_input(self, measure, filters: list[str]) -> dict:
        if isinstance(measure, dict):
            filters = filters + _filters(measure.get("filter"))
            extras = {"fill_nulls_with": measure.get("fill_nulls_with"),
                      "join_to_timespine": measure.get("join_to_timespine") or None}
            measure = measure["name"]
        else:
            extras = {}
        model = self.measure_model.get(measure)
        if model is None:
            raise Unmapped(f"measure '{measure}' is not defined in any imported semantic model")
        return compact({"measure": f"{model}.{canon_name(measure)}", "filter": self._filter(filters, model), **extras})

    def _metric_input(self, value, filters: list[str]):
        if isinstance(value, str) and not filters:
            return canon_name(value)
        value = {"name": value} if isinstance(value, str) else value
        if value.get("offset_to_grain"):
            raise Unmapped(f"offset_to_grain on input '{value.get('name')}' is not supported (only offset_window)")
        own = filters + _filters(value.get("filter"))
        return compact({"name": canon_name(value["name"]), "filter": self._filter(own, None),
                        "alias": canon_name(value["alias"]) if value.get("alias") else None,
                        "offset_window": value.get("offset_window")})

    def _simple_for(self, measure, name: str, filters: list[str]) -> str:
        """The name of a simple metric over `measure`: an existing plain one, or a new `name`."""
        key = measure if isinstance(measure, str) else measure.get("name")
        if isinstance(measure, str) and not filters and key in self.plain:
            return self.plain[key]
        if isinstance(measure, str) and not filters and canon_name(key) not in self.names:
            name = canon_name(key)  # the plain metric of the measure, reused by later metrics
            self.plain[key] = name
        if name in self.names:
            raise Unmapped(f"needs a helper metric '{name}', but that name is taken")
        helper = {"name": name, "type": "simple", **self._measure_input(measure, filters),
                  "description": f"Created by the dbt import over the measure '{key}'."}
        self.names.add(name)
        self.extra_metrics.append(compact(helper))
        return name

    def _cumulative(self, path, metric, base, params, filters) -> dict:
        inner = params.get("cumulative_type_params") or {}
        window = inner.get("window", params.get("window"))
        grain_to_date = inner.get("grain_to_date", params.get("grain_to_date"))
        if inner.get("period_agg") not in (None, "first"):
            raise Unmapped(f"period_agg '{inner['period_agg']}' is not supported")
        if window is None and grain_to_date is None:
            window = _all_time_window()
        if params.get("metric"):
            inner_metric = canon_name(params["metric"]["name"] if isinstance(params["metric"], dict) else params["metric"])
        else:
            inner_metric = self._simple_for(params.get("measure"), f"{base['name']}_base", filters)
            filters = []
        if filters:
            raise Unmapped("a filter on a cumulative metric over another metric is not supported")
        return {**base, "metric": inner_metric, "window": window, "grain_to_date": grain_to_date}

    def _conversion(self, path, metric, base, params, filters) -> dict:
        inner = params.get("conversion_type_params") or params
        if inner.get("constant_properties"):
            raise Unmapped("constant_properties (conversions held to the same property) are not supported")
        if not inner.get("window"):
            raise Unmapped("a conversion without a window (any time later) is not supported; Canon needs `window`")
        if filters:
            raise Unmapped("a metric-level filter on a conversion metric is not supported")
        base_measure = inner["base_measure"] if isinstance(inner["base_measure"], str) else inner["base_measure"]["name"]
        base_model = self.result.models.get(self.measure_model.get(base_measure, ""), {})
        if not any(e["type"] == "primary" for e in base_model.get("entities", ())):
            raise Unmapped(f"Canon counts each base event once by its model's primary key, and "
                           f"'{base_model.get('name', base_measure)}' has none (MetricFlow's primary_entity names no "
                           "column): add a primary entity over a unique column, then re-import")
        self.result.note(where(self.root, path, metric), f"metric {base['name']}",
                         "Canon counts every base event followed by a conversion within the window; MetricFlow credits "
                         "each conversion to its closest base event only: the numbers differ when several base events "
                         "of one entity precede the same conversion", dropped=False)
        return {**base, "entity": canon_name(inner["entity"]),
                "base": self._simple_for(inner["base_measure"], f"{base['name']}_base", []),
                "conversion": self._simple_for(inner["conversion_measure"], f"{base['name']}_conversion", []),
                "window": inner["window"], "calculation": inner.get("calculation", "conversion_rate")}

    # --- saved queries -------------------------------------------------------------------------

    def saved_query(self, path: Path, query: dict) -> None:
        params = query.get("query_params") or {}
        dims = []
        for item in params.get("group_by") or ():
            call = _call(item)
            if call[0] == "Entity":
                self.result.note(where(self.root, path, query), f"saved query {query['name']}: group by {item}",
                                 "grouping by an entity is not supported; dropped", dropped=False)
                continue
            dims.append(self._reference(call, None))
        order = []
        for item in params.get("order_by") or ():
            text = str(item).strip()
            descending = text.endswith(".descending()") or text.startswith("-")
            text = text.removesuffix(".descending()").lstrip("-")
            ref = self._reference(_call(text), None) if "(" in text else self._name_reference(text)
            order.append(("-" if descending else "") + ref)
        if query.get("exports") or query.get("config"):
            self.result.note(where(self.root, path, query), f"saved query {query['name']}",
                             "exports and cache config are not carried over", dropped=False)
        self.result.saved_queries.append(compact({
            "name": canon_name(query["name"]), "label": query.get("label"), "description": _text(query.get("description")),
            "metrics": [canon_name(m) for m in params.get("metrics") or ()], "dimensions": dims,
            "where": self._filter(_filters(params.get("where")), None), "order": order, "limit": params.get("limit")}))

    # --- references ----------------------------------------------------------------------------

    def _filter(self, filters: list[str], model: str | None) -> str | None:
        if not filters:
            return None
        parts = [_JINJA.sub(lambda m: self._reference(_call(m.group(1)), model), text).strip() for text in filters]
        return " AND ".join(f"({p})" if len(parts) > 1 else p for p in parts)

    def _name_reference(self, text: str) -> str:
        """An order_by written as a query column: a metric, `metric_time__month`, `customer__type__day`."""
        parts = text.split("__")
        if len(parts) == 1:
            return canon_name(text)
        if parts[-1] in GRAINS:
            return self._reference(("TimeDimension", ["__".join(parts[:-1]), parts[-1]]), None)
        return self._reference(("Dimension", [text]), None)

    def _reference(self, call: tuple[str, list], model: str | None) -> str:
        kind, args = call
        if kind not in ("Dimension", "TimeDimension"):
            raise Unmapped(f"{kind}(...) in a filter or group by is not supported")
        path = str(args[0]).split("__")
        grain = args[1] if len(args) > 1 else None
        if path == ["metric_time"]:
            return f"metric_time.{grain or 'day'}"
        if len(path) == 1:
            if model is None:
                raise Unmapped(f"dimension '{args[0]}' names no entity")
            owner = model
        else:
            owner = canon_name(path[-2])
            owner = self.entity_alias.get(owner, owner)
        ref = f"{owner}.{canon_name(path[-1])}"
        return f"{ref}.{grain}" if grain else ref


def _validity(sm: dict) -> dict | None:
    """MetricFlow's SCD type II (`validity_params: {is_start, is_end}` on two time dimensions) as
    Canon's `validity: {from, to}` (columns, so each dimension must be a plain column)."""
    bounds = {}
    for dim in sm.get("dimensions") or ():
        params = (dim.get("type_params") or {}).get("validity_params") or {}
        column = _expr(dim.get("expr")) or dim["name"]
        for flag, key in (("is_start", "from"), ("is_end", "to")):
            if params.get(flag):
                if not re.fullmatch(r"[a-z][a-z0-9_]*", column):
                    raise Unmapped(f"the validity dimension '{dim['name']}' is an expression, not a column")
                bounds[key] = column
    return bounds if len(bounds) == 2 else None


def _all_time_window() -> str:
    """An all-time cumulative: `window: unbounded`, where this Canon's model accepts it."""
    from pydantic import ValidationError

    from canon.compiler.model import CumulativeMetric

    try:
        CumulativeMetric.model_validate({"type": "cumulative", "name": "x", "metric": "y", "window": "unbounded"})
    except ValidationError:
        raise Unmapped("an all-time cumulative (no window, no grain_to_date) has no Canon equivalent yet") from None
    return "unbounded"


def _table(sm: dict) -> tuple[str, str | None] | None:
    """(table, a templated schema that was dropped)."""
    ref = _REF.search(str(sm.get("model") or ""))
    if ref:
        return ref.group(1), None
    relation = sm.get("node_relation") or {}
    if relation.get("alias"):
        schema = relation.get("schema_name")
        if schema and not str(schema).startswith(("$", "{")):
            return f"{schema}.{relation['alias']}", None
        return relation["alias"], schema
    return None


def _call(text: str) -> tuple[str, list]:
    """`Dimension('a__b').grain('month')` -> ('TimeDimension', ['a__b', 'month'])."""
    try:
        node = ast.parse(str(text).strip(), mode="eval").body
    except SyntaxError:
        raise Unmapped(f"cannot read '{text}'") from None
    grain = None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "grain":
        grain = ast.literal_eval(node.args[0])
        node = node.func.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("descending",):
        node = node.func.value
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise Unmapped(f"cannot read '{text}'")
    args = [ast.literal_eval(a) for a in node.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    if kwargs.get("entity_path"):
        raise Unmapped(f"entity_path in '{text}' is not supported")
    if grain or kwargs.get("time_granularity_name") or kwargs.get("time_granularity"):
        args = [args[0], grain or kwargs.get("time_granularity_name") or kwargs.get("time_granularity")]
        return "TimeDimension", args
    return node.func.id, args


def _filters(value) -> list[str]:
    if not value:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _expr(value) -> str | None:
    return None if value is None else str(value).strip()


def _text(value) -> str | None:
    return " ".join(str(value).split()) if value else None


def _is_date_cast(text: str) -> bool:
    try:
        node = parse_one(text)
    except Exception:  # noqa: BLE001 — an expression sqlglot cannot read is simply not a date cast
        return False
    return isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.DATE

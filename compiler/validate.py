"""Validate pass: documents -> Catalog.

Runs small rules in order and collects every problem before raising once (`CatalogErrors`), each
as `file:line: what is wrong — what to do`. Structural checks are pydantic's; semantic ones
(references, reachability, cycles, duplicates) are here.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

from pydantic import BaseModel, ValidationError
from sqlglot import exp

from . import model as m
from .catalog import (AffinityInfo, Catalog, DimensionInfo, EntityInfo, MeasureInfo, ModelInfo,
                      NonAdditiveInfo, PerEntityInfo, alias_id, build_edges)
from .errors import CanonError, CatalogErrors, ConfigError, Location, did_you_mean
from .facts import build_facts, inputs_of
from .load import Document
from .sqlexpr import parse_definition_expr, parse_filter, parse_model_sql


class Problems:
    """Collects errors; `check` runs a rule and records the CanonError it raises."""

    def __init__(self):
        self.errors: list[CanonError] = []
        # names (models, entities, model.measure/dimension refs, metrics) whose definitions were
        # dropped for an error already reported: references to them are not reported again
        self.broken: set[str] = set()
        self.dropped: dict[str, set[tuple[str, int]]] = {}  # file -> (section, index) left out

    def raw_index(self, doc: Document, section: str, index: int) -> int:
        """The position in the file of the `index`-th definition kept from `section`."""
        dropped = self.dropped.get(doc.file, set())
        kept = [j for j in range(len(doc.data.get(section) or ())) if (section, j) not in dropped]
        return kept[index] if index < len(kept) else index

    def is_broken(self, *refs: str) -> bool:
        """Whether any reference points into a definition that already failed."""
        for ref in refs:
            parts = str(ref).split(".")
            if parts[0] in self.broken or ".".join(parts[:2]) in self.broken:
                return True
        return False

    def add(self, message: str, location: Location | None, hint: str | None = None):
        self.errors.append(ConfigError(message, location=location, hint=hint))

    def check(self, fn: Callable[[], Any], location: Location | None, prefix: str = "") -> Any:
        try:
            return fn()
        except CanonError as error:
            if error.location is None or not error.location.file:
                error = ConfigError(prefix + error.message, location=location, hint=error.hint)
            self.errors.append(error)
            return None


def build_catalog(documents: list[Document], read_errors: list[CanonError] = ()) -> Catalog:
    problems = Problems()
    problems.errors.extend(read_errors)
    for error in read_errors:
        problems.broken.update(getattr(error, "defined_names", ()))
    settings = _settings([d for d in documents if d.kind == "settings"], problems)
    documents = [d for d in documents if d.kind != "settings"]
    models_defs, metric_files = _parse_documents(documents, problems)
    catalog = Catalog(models={}, metrics={}, settings=settings)
    _build_models(models_defs, catalog, problems)
    catalog.edges, catalog.entity_owner = build_edges(catalog.models)
    _check_entities(catalog, problems)
    _resolve_default_times(catalog, problems)
    _check_segments(catalog, problems)
    _register_metrics(metric_files, catalog, problems)
    _check_metrics(catalog, problems)
    _check_cycles(catalog, problems)
    _check_glossary(catalog, problems)
    from .recommendations import check_recommendations  # the `recommendations:` block, if any

    catalog.recommendations = check_recommendations(catalog, [(f.recommendations, d.file) for f, d in metric_files
                                                              if f.recommendations is not None], problems)
    if not problems.errors:
        _check_saved_queries_and_views(catalog, problems)
    if not problems.errors:
        from .rollups import check_rollups

        check_rollups(catalog, problems)
    if problems.errors:
        raise CatalogErrors(problems.errors)
    catalog.facts = build_facts(catalog)
    catalog.version = _version(documents)
    return catalog


# --- structure ---------------------------------------------------------------------------------

_CLASS_FOR_KEY: dict[str, type[BaseModel]] = {
    "semantic_model": m.SemanticModel, "semantic_models": m.SemanticModel, "entities": m.Entity,
    "dimensions": m.Dimension, "measures": m.Measure, "deduplicate": m.Deduplicate,
    "saved_queries": m.SavedQuery, "exports": m.Export, "views": m.View, "numerator": m.MetricInput,
    "denominator": m.MetricInput, "glossary": m.GlossaryTerm, "segments": m.Segment,
    "recommendations": m.Recommendations, "items": m.RecommendItems, "customers": m.RecommendCustomers,
    "upsell": m.RecommendUpsell,
    "rollups": m.Rollup, "refresh": m.RollupRefresh,
}
_METRIC_CLASSES = {"simple": m.SimpleMetric, "ratio": m.RatioMetric, "derived": m.DerivedMetric,
                   "cumulative": m.CumulativeMetric, "conversion": m.ConversionMetric, "cohort": m.CohortMetric,
                   "affinity": m.AffinityMetric}


def _settings(documents: list[Document], problems: Problems) -> m.Settings:
    for doc in documents:
        data = doc.data if isinstance(doc.data, dict) else {}
        try:
            return m.Settings.model_validate(data)
        except ValidationError as error:
            for err in error.errors():
                _report_pydantic_error(err, doc, m.Settings, problems)
    return m.Settings()


def _parse_documents(documents, problems):
    models: list[tuple[m.SemanticModel, Document, tuple]] = []
    metric_files: list[tuple[m.MetricsFile, Document]] = []
    for doc in documents:
        if doc.data is None:
            continue
        expected = m.SemanticModelFile if doc.kind == "semantic_models" else m.MetricsFile
        if not isinstance(doc.data, dict):
            problems.add("the file must be a mapping", doc.location(()),
                         "start with `semantic_model:`" if doc.kind == "semantic_models"
                         else "start with `metrics:`, `saved_queries:` or `views:`")
            continue
        try:
            parsed = expected.model_validate(doc.data)
        except ValidationError as error:
            for err in error.errors():
                _report_pydantic_error(err, doc, expected, problems)
            parsed = _salvage(doc, expected, error.errors(), problems)
            if parsed is None:
                continue
        if doc.kind == "semantic_models":
            found = [(parsed.semantic_model, ("semantic_model",))] if parsed.semantic_model else []
            found += [(sm, ("semantic_models", problems.raw_index(doc, "semantic_models", i)))
                      for i, sm in enumerate(parsed.semantic_models)]
            for sm, path in found:
                _attach(sm, doc, path)
                models.append((sm, doc, path))
        else:
            for section in ("metrics", "saved_queries", "views", "glossary", "rollups"):
                for i, item in enumerate(getattr(parsed, section)):
                    _attach(item, doc, (section, problems.raw_index(doc, section, i)))
            if parsed.recommendations is not None:
                _attach(parsed.recommendations, doc, ("recommendations",))
            metric_files.append((parsed, doc))
    return models, metric_files


def _attach(obj: m.Frozen, doc: Document, path: tuple):
    """Give a definition, and each one nested in it, its place in the YAML file."""
    data = doc.data
    for segment in path:
        data = data[segment]  # the path of a parsed definition is in the data
    positions = doc.positions
    obj._source = m.Source(doc.file, positions[path], {key: positions[path + (key,)] for key in data})
    for key, raw in data.items():
        if not isinstance(raw, (dict, list)):
            continue  # a scalar holds no definition
        value = getattr(obj, key, None)
        if isinstance(value, m.Frozen):
            _attach(value, doc, path + (key,))
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if isinstance(item, m.Frozen):
                    _attach(item, doc, path + (key, i))


def _salvage(doc: Document, expected: type[BaseModel], errors: list[dict], problems: Problems):
    """Keep the definitions of a file that are fine; remember the names of the dropped ones, so
    that references to them do not add a second report of the same problem."""
    data = doc.data
    bad = {tuple(err["loc"][:2]) for err in errors}
    problems.dropped[doc.file] = {b for b in bad if len(b) == 2 and isinstance(b[1], int)}
    pruned = dict(data)
    for key, value in data.items():
        if key in ("semantic_model", "recommendations") and (key,) in {b[:1] for b in bad}:
            _mark_broken(value, problems)
            pruned[key] = None
        elif isinstance(value, list):
            keep = []
            for i, item in enumerate(value):
                if (key, i) in bad:
                    _mark_broken(item, problems)
                else:
                    keep.append(item)
            pruned[key] = keep
    try:
        return expected.model_validate(pruned)
    except ValidationError:
        return None


def _mark_broken(item, problems: Problems):
    if not isinstance(item, dict):
        return
    if isinstance(item.get("name"), str):
        problems.broken.add(item["name"])
    for entity in item.get("entities") or ():
        if isinstance(entity, dict) and entity.get("type") == "primary" and isinstance(entity.get("name"), str):
            problems.broken.add(entity["name"])


_ITEM_WORDS = {"metrics": "metric", "saved_queries": "saved query", "views": "view", "rollups": "rollup",
               "semantic_model": "semantic model", "semantic_models": "semantic model",
               "entities": "entity", "dimensions": "dimension", "measures": "measure"}


def _describe(path: list, data) -> str:
    """('semantic_model', 'measures', 0, 'agg') -> "agg of measure 'products' in semantic model 'product'"."""
    items: list[str] = []
    fields: list[str] = []
    section, node = None, data
    for segment in path:
        node = node[segment]  # the path holds only segments found in the data
        if isinstance(segment, int) or segment == "semantic_model":
            word = _ITEM_WORDS.get(section if isinstance(segment, int) else segment, "item")
            name = node.get("name") if isinstance(node, dict) else None
            items.append(f"{word} {name!r}" if isinstance(name, str)
                         else f"{word} #{segment + 1}" if isinstance(segment, int) else word)
            fields = []
        else:
            section = segment
            fields.append(str(segment))
    text = " in ".join(reversed(items))
    if fields:
        text = ".".join(fields) + (f" of {text}" if text else "")
    return text or "the file"


def _report_pydantic_error(err: dict, doc: Document, root: type[BaseModel], problems: Problems):
    """Map a pydantic error's `loc` onto the YAML positions; wording chosen by `err['type']`."""
    path, data, cls = [], doc.data, root
    for segment in err["loc"]:
        if isinstance(data, dict) and segment in data:
            key = segment
            cls = _CLASS_FOR_KEY.get(key, cls)
            data = data[segment]
            path.append(segment)
        elif isinstance(data, list) and isinstance(segment, int) and segment < len(data):
            data = data[segment]
            path.append(segment)
            if path and len(path) >= 2 and path[-2] == "metrics" and isinstance(data, dict):
                cls = _METRIC_CLASSES.get(data.get("type"), cls)
        # other segments are pydantic's (the union tag, a type name): not in the YAML
    kind, location = err["type"], doc.location(tuple(path))
    where = _describe(path, doc.data)
    field = str(err["loc"][-1]) if err["loc"] else ""
    if kind == "missing":
        problems.add(f"missing required field '{field}' in {where}", location,
                     f"add `{field}:`")
    elif kind == "extra_forbidden":
        valid = list(getattr(cls, "model_fields", {}))
        problems.add(f"unknown field '{field}' in {_describe(path[:-1], doc.data)}",
                     location, did_you_mean(field, valid))
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = err.get("ctx", {}).get("tag", "")
        problems.add(f"{where}: unknown type {tag!r}" if tag else
                     f"{where}: missing `type`", location,
                     "valid types: " + ", ".join(m.METRIC_TYPES))
    elif kind == "literal_error":
        problems.add(f"{where}: {err.get('input')!r} is not allowed", location,
                     f"expected {err.get('ctx', {}).get('expected')}")
    elif kind == "string_pattern_mismatch":
        problems.add(f"{where}: {err.get('input')!r} is not a valid name", location,
                     "names use lowercase letters, digits and underscores and start with a letter")
    elif kind == "value_error":
        problems.add(f"{where}: {err['ctx']['error']}" if "ctx" in err else f"{where}: {err['msg']}", location)
    else:
        problems.add(f"{where}: {err['msg']}", location)


# --- models ----------------------------------------------------------------------------------


def _qualify(tree: exp.Expression, model_name: str) -> exp.Expression:
    """Bind bare columns to the model's alias."""
    def bind(node):
        if isinstance(node, exp.Column) and not node.table:
            return exp.Column(this=node.this.copy(), table=alias_id(model_name))
        return node
    return tree.transform(bind)


def _build_models(defs, catalog: Catalog, problems: Problems):
    for sm, doc, base in defs:
        here = lambda *p, doc=doc, base=base: doc.location(base + p)  # noqa: E731
        if sm.name in catalog.models:
            first = catalog.models[sm.name].definition.location_of("name")
            problems.add(f"semantic model '{sm.name}' is defined twice", here("name"),
                         f"first defined at {first}; rename one")
            continue
        if sm.table:
            source: exp.Expression = exp.to_table(sm.table)
        else:
            query = problems.check(lambda: parse_model_sql(sm.sql, here("sql")), here("sql"))
            if query is None:
                _mark_broken(sm.model_dump(), problems)
                continue
            source = query.subquery()
        if sm.deduplicate:
            source = _deduplicated(source, sm.deduplicate)
        source = (exp.Subquery(this=source.this) if isinstance(source, exp.Subquery) else source.copy())
        source.set("alias", exp.TableAlias(this=alias_id(sm.name)))

        def parsed(text, what, path):
            tree = problems.check(lambda: parse_definition_expr(text, here(*path), what=what), here(*path))
            return _qualify(tree, sm.name) if tree is not None else None

        entities, dimensions, measures = {}, {}, {}
        for i, ent in enumerate(sm.entities):
            _unique_name(ent.name, entities, "entity", here("entities", i), problems)
            tree = parsed(ent.sql, f"entity {ent.name}", ("entities", i, "expr"))
            if tree is not None:
                entities[ent.name] = EntityInfo(ent.name, ent.type, tree)
        if sum(e.type == "primary" for e in sm.entities) > 1:
            problems.add(f"semantic model '{sm.name}' has more than one primary entity", here("entities"),
                         "keep one primary; mark the others unique or foreign")
        for i, dim in enumerate(sm.dimensions):
            _unique_name(dim.name, dimensions, "dimension", here("dimensions", i), problems)
            tree = parsed(dim.sql, f"dimension {dim.name}", ("dimensions", i))
            if tree is not None:
                dimensions[dim.name] = DimensionInfo(sm.name, dim.name, dim.type, tree, dim)
            else:
                problems.broken.add(f"{sm.name}.{dim.name}")
        for i, meas in enumerate(sm.measures):
            _unique_name(meas.name, measures, "measure", here("measures", i), problems)
            if meas.per is not None:
                info = _entity_level_measure(sm, meas, entities, here("measures", i), problems)
                if info is None:
                    problems.broken.add(f"{sm.name}.{meas.name}")
                else:
                    measures[meas.name] = info
                continue
            tree = None
            if meas.expr is not None or meas.agg != "count":
                tree = parsed(meas.expr or meas.name, f"measure {meas.name}", ("measures", i))
                if tree is None:
                    problems.broken.add(f"{sm.name}.{meas.name}")
                    continue
            semi = None
            if meas.non_additive is not None:
                semi = _non_additive(sm, meas, dimensions, entities, here("measures", i), problems)
                if semi is None:
                    continue
            measures[meas.name] = MeasureInfo(sm.name, meas.name, meas.agg, tree, meas, non_additive=semi)
        catalog.models[sm.name] = ModelInfo(sm, source, entities, dimensions, measures)


def _entity_level_measure(sm, meas, entities, location, problems: Problems):
    """An aggregate of per-entity aggregates; the outer expr sees the inner result as `value`."""
    per = meas.per
    if per.entity not in entities:
        problems.add(f"measure '{meas.name}': model '{sm.name}' has no entity '{per.entity}' to aggregate per",
                     location, did_you_mean(per.entity, entities))
        return None
    inner = None
    if per.expr is not None or per.agg != "count":
        inner = problems.check(lambda: parse_definition_expr(per.expr or meas.name, location,
                                                             what=f"measure {meas.name} per.expr"), location)
        if inner is None:
            return None
        inner = _qualify(inner, sm.name)
    outer = problems.check(lambda: parse_definition_expr(meas.expr or "value", location,
                                                         what=f"measure {meas.name} expr"), location)
    if outer is None:
        return None
    for column in outer.find_all(exp.Column):
        if column.table or column.name != "value":
            problems.add(f"measure '{meas.name}': its expr may only use `value`, the per-{per.entity} result",
                         location, f"found {column.sql()!r}")
            return None
    key = entities[per.entity].expr
    return MeasureInfo(sm.name, meas.name, meas.agg, outer, meas,
                       per=PerEntityInfo(per.entity, key, per.agg, inner))


def _non_additive(sm, meas, dimensions, entities, location, problems: Problems):
    rule = meas.non_additive
    dim = dimensions.get(rule.time)
    if dim is None or dim.type != "time":
        problems.add(f"measure '{meas.name}': non_additive.time '{rule.time}' is not a time dimension of '{sm.name}'",
                     location, did_you_mean(rule.time, [d for d, v in dimensions.items() if v.type == "time"]))
        return None
    groupings = []
    for name in rule.groupings:
        if name not in entities:
            problems.add(f"measure '{meas.name}': non_additive grouping '{name}' is not an entity of '{sm.name}'",
                         location, did_you_mean(name, entities))
            return None
        groupings.append(entities[name].expr)
    return NonAdditiveInfo(dim, rule.window, tuple(groupings))


def _deduplicated(source: exp.Expression, rule: m.Deduplicate) -> exp.Subquery:
    """Keep the latest row per key: ROW_NUMBER() over the key, newest first, = 1."""
    inner_source = source.copy() if isinstance(source, exp.Subquery) else source.copy()
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[exp.column(k) for k in rule.key],
        order=exp.Order(expressions=[exp.Ordered(this=exp.column(rule.latest_by), desc=True)]),
    )
    ranked = exp.select(exp.Star(), exp.alias_(rank, "_canon_rank")).from_(inner_source)
    latest = exp.select(exp.Star()).from_(ranked.subquery("_canon_ranked")).where(
        exp.EQ(this=exp.column("_canon_rank"), expression=exp.Literal.number(1)))
    return latest.subquery()


def _unique_name(name, seen: dict, what: str, location, problems: Problems):
    if name in seen:
        problems.add(f"{what} '{name}' is defined twice in this model", location, "rename one")


def _check_entities(catalog: Catalog, problems: Problems):
    for model in catalog.models.values():
        for i, ent in enumerate(model.definition.entities):
            if ent.type != "primary" and ent.name not in catalog.entity_owner and not problems.is_broken(ent.name):
                problems.add(
                    f"entity '{ent.name}' of model '{model.name}' is not the primary entity of any model",
                    ent.location or model.definition.location_of("name"),
                    did_you_mean(ent.name, catalog.entity_owner) + " (or add a model with it as primary)",
                )


def _check_segments(catalog: Catalog, problems: Problems):
    """A segment's name is new in its model and its filter names dimensions reachable from the model."""
    from .refs import check_filter_refs

    for model in catalog.models.values():
        taken = set(model.dimensions)
        for segment in model.definition.segments:
            at = segment.location_of("filter")
            if segment.name in taken:
                problems.add(f"segment '{segment.name}' of model '{model.name}' clashes with a dimension or segment "
                             "of the same name", segment.location_of("name"), "rename the segment")
                continue
            taken.add(segment.name)
            parsed = problems.check(lambda: parse_filter(segment.filter, field="filter"), at,
                                    f"segment '{model.name}.{segment.name}' filter: ")
            if parsed is not None and not problems.is_broken(*parsed.refs) and problems.check(
                    lambda: check_filter_refs(catalog, parsed, model.name), at,
                    f"segment '{model.name}.{segment.name}' filter: ") is not None:
                catalog.segments[f"{model.name}.{segment.name}"] = parsed


def _resolve_default_times(catalog: Catalog, problems: Problems):
    from .refs import resolve_dimension  # refs needs a catalog with its graph

    for name, model in list(catalog.models.items()):
        ref = model.definition.default_time
        if ref is None:
            continue
        where = model.definition.location_of("name")
        full = ref if "." in ref else f"{name}.{ref}"
        if problems.is_broken(full):
            continue
        dim = problems.check(lambda: resolve_dimension(catalog, full), where, "default_time: ")
        if dim is None:
            continue
        if dim.type != "time":
            problems.add(f"default_time '{ref}' of model '{name}' is a {dim.type} dimension, not time",
                         where, "point default_time at a dimension with type: time")
            continue
        if problems.check(lambda: _safe_path(catalog, name, dim.model), where, f"default_time '{ref}': ") is None:
            continue
        catalog.models[name] = ModelInfo(model.definition, model.source, model.entities,
                                         model.dimensions, model.measures, default_time=dim)


def _safe_path(catalog: Catalog, source: str, target: str):
    path = catalog.path(source, target)
    if any(edge.fanout for edge in path):
        steps = [path[0].source] + [edge.target for edge in path]
        raise ConfigError(f"the path {' → '.join(steps)} fans out; a time dimension must be one per row")
    return path


# --- metrics -----------------------------------------------------------------------------------


def _register_metrics(metric_files, catalog: Catalog, problems: Problems):
    for parsed, _ in metric_files:
        for section in ("metrics", "saved_queries", "views", "glossary", "rollups"):
            store = {"metrics": catalog.metrics, "saved_queries": catalog.saved_queries,
                     "views": catalog.views, "glossary": catalog.glossary, "rollups": catalog.rollups}[section]
            for item in getattr(parsed, section):
                if item.name in store:
                    what = {"glossary": "glossary term"}.get(section, section[:-1].replace('_', ' '))
                    problems.add(f"{what} '{item.name}' is defined twice", item.location,
                                 f"first defined at {store[item.name].location}; rename one")
                    continue
                store[item.name] = item


def _check_metrics(catalog: Catalog, problems: Problems):
    for metric in catalog.metrics.values():
        _METRIC_CHECKS[type(metric)](catalog, metric, problems)


def _check_simple(catalog: Catalog, metric: m.SimpleMetric, problems: Problems):
    from .refs import check_filter_refs, split_measure_ref

    name = metric.name
    if problems.is_broken(metric.measure):
        return
    measure = problems.check(lambda: split_measure_ref(catalog, metric.measure), metric.location_of("measure"),
                             f"metric '{name}': ")
    if metric.filter and measure is not None:
        at = metric.location_of("filter")
        parsed = problems.check(lambda: parse_filter(metric.filter, field="filter"), at, f"metric '{name}' filter: ")
        if parsed is not None and not problems.is_broken(*parsed.refs) and problems.check(
                lambda: check_filter_refs(catalog, parsed, measure.model), at, f"metric '{name}' filter: ") is not None:
            catalog.metric_filters[name] = parsed


def _check_inputs(catalog: Catalog, metric: m.RatioMetric | m.DerivedMetric, problems: Problems):
    """Ratio and derived metrics: each input names a metric; an input's filter parses."""
    name, where = metric.name, metric.location
    for use in inputs_of(metric):
        if use.metric not in catalog.metrics:
            if not problems.is_broken(use.metric):
                problems.add(f"metric '{name}' uses unknown metric '{use.metric}'", metric.location_of(use.role),
                             did_you_mean(use.metric, catalog.metrics))
        elif use.filter:
            parsed = problems.check(lambda: parse_filter(use.filter, field="filter"), where,
                                    f"metric '{name}' input '{use.metric}' filter: ")
            if parsed is not None:
                catalog.input_filters[(name, use.alias or use.metric)] = parsed


def _check_derived(catalog: Catalog, metric: m.DerivedMetric, problems: Problems):
    _check_inputs(catalog, metric, problems)
    _check_derived_expr(catalog, metric, metric.location, problems)


def _simple_input(catalog: Catalog, owner: str, name: str, role: str, where, problems: Problems):
    target = catalog.metrics.get(name)
    if target is None:
        problems.add(f"metric '{owner}' uses unknown metric '{name}' as its {role}", where,
                     did_you_mean(name, catalog.metrics))
        return None
    if not isinstance(target, m.SimpleMetric):
        problems.add(f"metric '{owner}': its {role} '{name}' must be a simple metric, not {target.type}", where,
                     "point it at a simple metric (a measure with an optional filter)")
        return None
    return target


def _check_cumulative(catalog: Catalog, metric: m.CumulativeMetric, problems: Problems):
    from .refs import split_measure_ref

    simple = _simple_input(catalog, metric.name, metric.metric, "metric", metric.location, problems)
    measure = simple and problems.check(lambda: split_measure_ref(catalog, simple.measure), metric.location,
                                        f"metric '{metric.name}': ")
    if measure is not None and measure.per is not None:  # a window would need each entity counted per window
        problems.add(f"metric '{metric.name}': '{metric.metric}' counts per {measure.per.entity} first "
                     f"(measure '{simple.measure}' has `per`), which a cumulative window cannot accumulate",
                     metric.location, f"accumulate a metric over a plain measure, or ask '{metric.metric}' with "
                                      "a time range instead")


def _check_conversion(catalog: Catalog, metric: m.ConversionMetric, problems: Problems):
    from .refs import split_measure_ref

    where = metric.location
    base = _simple_input(catalog, metric.name, metric.base, "base", where, problems)
    conversion = _simple_input(catalog, metric.name, metric.conversion, "conversion", where, problems)
    for role, simple in (("base", base), ("conversion", conversion)):
        if simple is None:
            continue
        measure = problems.check(lambda: split_measure_ref(catalog, simple.measure), where, f"metric '{metric.name}': ")
        if measure is None:
            continue
        model = catalog.models[measure.model]
        if metric.entity not in model.entities:
            problems.add(f"metric '{metric.name}': the {role} model '{model.name}' has no entity '{metric.entity}'",
                         where, "conversion needs an entity both events share; "
                         + did_you_mean(metric.entity, model.entities))
        if model.default_time is None:
            problems.add(f"metric '{metric.name}': the {role} model '{model.name}' has no default_time", where,
                         "conversion windows are measured on each model's default_time")
        if role == "base" and model.primary is None:
            problems.add(f"metric '{metric.name}': the base model '{model.name}' has no primary entity", where,
                         "each base event must be counted once: give the model a primary entity")


def _check_cohort(catalog: Catalog, metric: m.CohortMetric, problems: Problems):
    from .cohort import check_definition

    where = metric.location
    if metric.entity not in catalog.entity_owner:
        problems.add(f"metric '{metric.name}': unknown entity '{metric.entity}'", where,
                     "a cohort groups the entities that are some model's primary entity; "
                     + did_you_mean(metric.entity, catalog.entity_owner))
        return
    for role in ("cohort", "activity"):
        simple = _simple_input(catalog, metric.name, getattr(metric, role), role, where, problems)
        if simple is not None:
            problems.check(lambda: check_definition(catalog, metric, role, simple), where, f"metric '{metric.name}': ")


def _check_derived_expr(catalog, metric: m.DerivedMetric, where, problems: Problems):
    tree = problems.check(lambda: parse_definition_expr(metric.expr, where, what=f"metric '{metric.name}' expr"),
                          where)
    if tree is None:
        return
    names = {inp if isinstance(inp, str) else (inp.alias or inp.name) for inp in metric.metrics}
    for column in tree.find_all(exp.Column):
        if column.table or column.name not in names:
            problems.add(f"metric '{metric.name}': expr refers to '{column.sql()}', which is not one of its metrics",
                         where, f"list it under `metrics:`; declared: {', '.join(sorted(names))}")
    catalog.derived_exprs[metric.name] = tree


def _check_affinity(catalog: Catalog, metric: m.AffinityMetric, problems: Problems):
    from .refs import check_filter_refs

    where = metric.location
    basket = catalog.model_for(metric.basket)
    item = catalog.model_for(metric.item)
    for role, entity, found in (("basket", metric.basket, basket), ("item", metric.item, item)):
        if found is None and not problems.is_broken(entity):
            problems.add(f"metric '{metric.name}': unknown {role} entity '{entity}'", where,
                         did_you_mean(entity, catalog.entity_owner))
    if basket is None or item is None:
        return
    bridges = [mod.name for mod in catalog.models.values()
               if metric.basket in mod.entities and metric.item in mod.entities
               and mod.entities[metric.basket].type == "foreign" and mod.entities[metric.item].type == "foreign"]
    if len(bridges) != 1:
        problems.add(
            f"metric '{metric.name}': {'no' if not bridges else 'more than one'} model links baskets "
            f"('{metric.basket}') to items ('{metric.item}'){': ' + ', '.join(bridges) if bridges else ''}",
            where, "affinity needs exactly one model with both as foreign entities (one row per basket line)")
        return
    parsed = None
    if metric.filter:
        parsed = problems.check(lambda: parse_filter(metric.filter, field="filter"), where,
                                f"metric '{metric.name}' filter: ")
        if parsed is not None and (problems.is_broken(*parsed.refs) or problems.check(
                lambda: check_filter_refs(catalog, parsed, bridges[0]), where,
                f"metric '{metric.name}' filter: ") is None):
            return
    catalog.affinities[metric.name] = AffinityInfo(metric, bridges[0], basket.name, item.name, parsed)


_METRIC_CHECKS = {m.SimpleMetric: _check_simple, m.RatioMetric: _check_inputs, m.DerivedMetric: _check_derived,
                  m.CumulativeMetric: _check_cumulative, m.ConversionMetric: _check_conversion,
                  m.CohortMetric: _check_cohort,
                  m.AffinityMetric: _check_affinity}


def _check_cycles(catalog: Catalog, problems: Problems):
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, trail: list[str]):
        if state.get(name) == 2 or name not in catalog.metrics:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            problems.add(f"metrics form a cycle: {' -> '.join(cycle)}", catalog.metrics[name].location,
                         "a metric may not depend on itself, directly or through others")
            return
        state[name] = 1
        for use in inputs_of(catalog.metrics[name]):
            visit(use.metric, trail + [name])
        state[name] = 2

    for name in catalog.metrics:
        visit(name, [])


def _check_glossary(catalog: Catalog, problems: Problems):
    """A term's metrics and dimensions must exist: the glossary points readers at real numbers."""
    from .refs import parse_ref

    for name, entry in catalog.glossary.items():
        where = entry.location
        for metric in entry.metrics:
            if metric not in catalog.metrics:
                problems.add(f"glossary term '{name}' names unknown metric '{metric}'", where,
                             did_you_mean(metric, catalog.metrics))
        for ref in entry.dimensions:
            problems.check(lambda: parse_ref(catalog, ref), where, f"glossary term '{name}': ")


def _check_saved_queries_and_views(catalog: Catalog, problems: Problems):
    """Each saved query, and each (metric, dimension) of each view, must plan."""
    from .plan import plan
    from .request import QueryRequest
    from .resolve import resolve

    def compile_request(catalog, request):
        return plan(catalog, resolve(catalog, request))

    for name, sq in catalog.saved_queries.items():
        request = QueryRequest(metrics=sq.metrics, dimensions=sq.dimensions,
                               where=(sq.where,) if sq.where else (), order=sq.order, limit=sq.limit)
        problems.check(lambda: compile_request(catalog, request), sq.location,
                       f"saved query '{name}': ")
    seen: dict[str, str] = {}
    for name, sq in catalog.saved_queries.items():
        for export in sq.exports:  # export names are how `canon exports run NAME` and /v1/status say which
            if export.name in seen:
                problems.add(f"saved query '{name}': export '{export.name}' is also an export of saved query "
                             f"'{seen[export.name]}'", sq.location_of("exports"), "give each export its own name")
            seen[export.name] = name
    for name, view in catalog.views.items():
        where = view.location
        for segment in view.segments:
            if segment not in catalog.segments:
                problems.add(f"view '{name}': unknown segment '{segment}'", view.location_of("segments"),
                             did_you_mean(segment, catalog.segments) if catalog.segments else
                             "define it under `segments:` of its semantic model")
                continue
            condition = catalog.segments[segment].condition
            for metric in view.metrics:  # every metric of the view can be narrowed by the segment
                problems.check(lambda: compile_request(catalog, QueryRequest(metrics=(metric,), where=(condition,))),
                               view.location_of("segments"), f"view '{name}' segment '{segment}': ")
        for metric in view.metrics:
            for dim in view.dimensions:
                ref = dim if isinstance(dim, str) else dim.ref
                problems.check(lambda: compile_request(catalog, QueryRequest(metrics=(metric,), dimensions=(ref,))),
                               where, f"view '{name}': ")


def _version(documents: list[Document]) -> str:
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.file):
        digest.update(doc.file.encode())
        digest.update(repr(doc.data).encode())
    return digest.hexdigest()[:12]

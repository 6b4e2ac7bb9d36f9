"""Lineage: the catalog as a graph from metrics down to warehouse tables and columns, and back up.

Pure: Catalog in, `LineageGraph` out. Nodes are identified as `<kind>:<name>`:

    metric:cac  measure:ad_spend.spend  dimension:order.status  model:ad_spend
    table:ad_spend  column:ad_spend._etl_loaded_at  saved_query:x  view:sales

An edge `a -> b` reads "a is built from b" (role says how: numerator, measure, filter, time, join,
dedupe, expr, source, sql, ...). *Down* follows edges towards the tables; *up* follows them
backwards, to every metric, saved query and view that depends on a node (impact analysis).

Columns are found with sqlglot: measure, dimension and entity expressions are walked for Column
nodes; a model defined by `sql:` is qualified and each output column traced to its source table
column with `sqlglot.lineage`. Never by text matching.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterable

import sqlglot
from sqlglot import exp

from . import model as m
from .catalog import Catalog, ModelInfo
from .errors import CanonError, UnknownNameError, did_you_mean
from .facts import model_tables
from .sqlexpr import SOURCE_DIALECT

KINDS = ("metric", "measure", "dimension", "model", "table", "column", "saved_query", "view")
DIRECTIONS = ("down", "up", "both")


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    name: str
    label: str | None = None
    tier: str | None = None
    owner: str | None = None
    detail: str | None = None  # metric type, aggregation, dimension type...

    def to_dict(self) -> dict:
        return {k: v for k, v in (("id", self.id), ("kind", self.kind), ("name", self.name),
                                  ("label", self.label), ("tier", self.tier), ("owner", self.owner),
                                  ("detail", self.detail)) if v is not None}


@dataclass(frozen=True)
class LineageEdge:
    source: str  # the dependent
    target: str  # what it is built from
    role: str

    def to_dict(self) -> dict:
        return {"from": self.source, "to": self.target, "role": self.role}


@dataclass
class LineageGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)
    _down: dict[str, list[LineageEdge]] = field(default_factory=dict, repr=False)
    _up: dict[str, list[LineageEdge]] = field(default_factory=dict, repr=False)

    def add_node(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def add_edge(self, source: str, target: str, role: str) -> None:
        if source == target:
            return
        edge = LineageEdge(source, target, role)
        if edge in self._down.get(source, ()):
            return
        self.edges.append(edge)
        self._down.setdefault(source, []).append(edge)
        self._up.setdefault(target, []).append(edge)

    def uses(self, node_id: str) -> list[LineageEdge]:
        return list(self._down.get(node_id, ()))

    def used_by(self, node_id: str) -> list[LineageEdge]:
        return list(self._up.get(node_id, ()))

    def closure(self, node_id: str, direction: str) -> list[str]:
        """Every node reachable down (what it is built from) or up (what depends on it), nearest first."""
        step = self.uses if direction == "down" else self.used_by
        seen, order, queue = {node_id}, [], deque([node_id])
        while queue:
            current = queue.popleft()
            for edge in step(current):
                nxt = edge.target if direction == "down" else edge.source
                if nxt not in seen:
                    seen.add(nxt)
                    order.append(nxt)
                    queue.append(nxt)
        return order

    def dependents(self, node_id: str, kinds: Iterable[str] = ("metric", "saved_query", "view")) -> list[str]:
        kinds = set(kinds)
        return [n for n in self.closure(node_id, "up") if self.nodes[n].kind in kinds]

    def subgraph(self, root: str, direction: str) -> tuple[list[str], list[LineageEdge]]:
        keep = {root}
        for d in (("down", "up") if direction == "both" else (direction,)):
            keep.update(self.closure(root, d))
        if direction == "both":
            # only the two cones, not siblings reached by going up then down
            down, up = set(self.closure(root, "down")) | {root}, set(self.closure(root, "up")) | {root}
            edges = [e for e in self.edges if (e.source in down and e.target in down) or
                     (e.source in up and e.target in up)]
        else:
            edges = [e for e in self.edges if e.source in keep and e.target in keep]
        return [n for n in self.nodes if n in keep], edges


# --- building ----------------------------------------------------------------------------------


def build_lineage(catalog: Catalog) -> LineageGraph:
    graph = LineageGraph()
    columns = _ModelColumns(catalog)
    for model in catalog.models.values():
        _add_model(graph, catalog, model, columns)
    for name, metric in catalog.metrics.items():
        graph.add_node(Node(f"metric:{name}", "metric", name, metric.label, metric.tier, metric.owner,
                            metric.type))
    for name, metric in catalog.metrics.items():
        _add_metric(graph, catalog, name, metric, columns)
    for name, sq in catalog.saved_queries.items():
        sid = graph.add_node(Node(f"saved_query:{name}", "saved_query", name, sq.label, sq.tier, sq.owner))
        for metric in sq.metrics:
            graph.add_edge(sid, f"metric:{metric}", "metric")
        for ref in sq.dimensions:
            _add_dimension_ref(graph, catalog, sid, ref, "dimension")
        if sq.where:
            _add_filter(graph, catalog, sid, sq.where, "where", None, columns)
    for name, view in catalog.views.items():
        vid = graph.add_node(Node(f"view:{name}", "view", name, view.label, view.tier, view.owner))
        for metric in view.metrics:
            graph.add_edge(vid, f"metric:{metric}", "metric")
        for dim in view.dimensions:
            _add_dimension_ref(graph, catalog, vid, dim if isinstance(dim, str) else dim.ref, "dimension")
    return graph


class _ModelColumns:
    """Maps a model's output column to warehouse columns (`column:<table>.<col>` ids)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._parsed: dict[str, exp.Query | None] = {}

    def query(self, model: ModelInfo) -> exp.Query | None:
        if model.definition.sql is None:
            return None
        if model.name not in self._parsed:
            from sqlglot.optimizer.qualify import qualify

            try:
                tree = sqlglot.parse_one(model.definition.sql, dialect=SOURCE_DIALECT)
                tree = qualify(tree, dialect=SOURCE_DIALECT, validate_qualify_columns=False,
                               identify=False)
                _qualify_single_source(tree)
            except sqlglot.errors.SqlglotError:
                tree = None
            self._parsed[model.name] = tree
        return self._parsed[model.name]

    def columns(self, model: ModelInfo, name: str) -> list[str]:
        if model.definition.table:
            return [f"column:{model.definition.table}.{name}"]
        query = self.query(model)
        if query is None:
            return []
        from sqlglot.lineage import lineage as trace

        try:
            root = trace(name, query, None, dialect=SOURCE_DIALECT)
        except (sqlglot.errors.SqlglotError, ValueError, KeyError):
            return []
        found = []
        for node in root.walk():
            if isinstance(node.source, exp.Table) and not node.downstream:
                column = node.name.split(".")[-1]
                found.append(f"column:{_table_name(node.source)}.{column}")
        return list(dict.fromkeys(found))

    def sql_columns(self, model: ModelInfo) -> list[str]:
        """Every table column a `sql:` model reads (in SELECT, JOIN, WHERE, GROUP BY...)."""
        query = self.query(model)
        if query is None:
            return []
        from sqlglot.optimizer.scope import traverse_scope

        found = []
        for scope in traverse_scope(query):
            for column in scope.columns:
                source = scope.sources.get(column.table)
                if isinstance(source, exp.Table):
                    found.append(f"column:{_table_name(source)}.{column.name}")
        return list(dict.fromkeys(found))


def _qualify_single_source(tree: exp.Expression) -> None:
    """Without a schema, qualify leaves `SELECT customer_id FROM orders` unqualified; a column of a
    SELECT that reads one source can only be that source's (SQL models often write them so)."""
    from sqlglot.optimizer.scope import traverse_scope

    for scope in traverse_scope(tree):
        if len(scope.sources) != 1:
            continue
        (name,) = scope.sources
        outputs = {s.alias_or_name for s in scope.expression.selects} if isinstance(scope.expression, exp.Select) else set()
        for column in scope.columns:
            # a bare name that is one of this SELECT's own output aliases (ORDER BY n) stays as it is
            if not column.table and not (column.name in outputs and column.find_ancestor(exp.Order)):
                column.set("table", exp.to_identifier(name))


def _table_name(table: exp.Table) -> str:
    return ".".join(part.name for part in table.parts)


def _expr_columns(columns: _ModelColumns, model: ModelInfo, tree: exp.Expression | None) -> list[str]:
    if tree is None:
        return []
    found = []
    for column in tree.find_all(exp.Column):
        found += columns.columns(model, column.name)
    return list(dict.fromkeys(found))


def _add_column(graph: LineageGraph, column_id: str) -> str:
    table, _, col = column_id[len("column:"):].rpartition(".")
    graph.add_node(Node(column_id, "column", f"{table}.{col}"))
    table_id = graph.add_node(Node(f"table:{table}", "table", table))
    graph.add_edge(column_id, table_id, "in")
    return column_id


def _add_model(graph: LineageGraph, catalog: Catalog, model: ModelInfo, columns: _ModelColumns):
    d = model.definition
    mid = graph.add_node(Node(f"model:{model.name}", "model", model.name, d.label, d.tier, d.owner,
                              "table" if d.table else "sql"))
    for table in model_tables(model):
        graph.add_node(Node(f"table:{table}", "table", table))
        graph.add_edge(mid, f"table:{table}", "source")
    for column_id in columns.sql_columns(model):
        graph.add_edge(mid, _add_column(graph, column_id), "sql")
    if d.deduplicate:
        for key in (*d.deduplicate.key, d.deduplicate.latest_by):
            for column_id in columns.columns(model, key):
                role = "dedupe latest_by" if key == d.deduplicate.latest_by else "dedupe key"
                graph.add_edge(mid, _add_column(graph, column_id), role)
    for entity in model.entities.values():
        for column_id in _expr_columns(columns, model, entity.expr):
            graph.add_edge(mid, _add_column(graph, column_id), f"entity {entity.name}")
    for dim in model.dimensions.values():
        did = graph.add_node(Node(f"dimension:{dim.ref}", "dimension", dim.ref, dim.definition.label, None, None,
                                  dim.type))
        graph.add_edge(did, mid, "model")
        for column_id in _expr_columns(columns, model, dim.expr):
            graph.add_edge(did, _add_column(graph, column_id), "expr")
    for measure in model.measures.values():
        msid = graph.add_node(Node(f"measure:{measure.ref}", "measure", measure.ref, measure.definition.label,
                                   None, None, measure.agg))
        graph.add_edge(msid, mid, "model")
        for column_id in _expr_columns(columns, model, measure.expr):
            graph.add_edge(msid, _add_column(graph, column_id), "expr")


def _add_join(graph: LineageGraph, catalog: Catalog, owner: str, source_model: str, target_model: str,
              columns: _ModelColumns):
    """The entity columns of every step of the join path from `source_model` to `target_model`."""
    try:
        path = catalog.path(source_model, target_model)
    except CanonError:
        return
    for step in path:
        role = f"join {step.source}→{step.target} on {step.entity}"
        for model_name in (step.source, step.target):
            model = catalog.models[model_name]
            entity = model.entities.get(step.entity)
            if entity is not None:
                for column_id in _expr_columns(columns, model, entity.expr):
                    graph.add_edge(owner, _add_column(graph, column_id), role)


def _add_dimension_ref(graph: LineageGraph, catalog: Catalog, owner: str, ref: str, role: str,
                       source_model: str | None = None, columns: _ModelColumns | None = None):
    from .refs import parse_ref

    try:
        dimref = parse_ref(catalog, ref, item_model=_any_model(catalog))
    except CanonError:
        return
    if dimref.dimension is None:
        return
    graph.add_edge(owner, f"dimension:{dimref.dimension.ref}", role)
    if source_model and columns and dimref.dimension.model != source_model:
        _add_join(graph, catalog, owner, source_model, dimref.dimension.model, columns)


def _any_model(catalog: Catalog) -> str | None:
    return next(iter(catalog.models), None)


def _add_filter(graph, catalog, owner, text, role, source_model, columns):
    from .sqlexpr import parse_filter

    try:
        parsed = parse_filter(text, field=role)
    except CanonError:
        return
    for ref in parsed.refs:
        _add_dimension_ref(graph, catalog, owner, ref, role, source_model, columns)


def _add_measure_use(graph, catalog, owner: str, ref: str, role: str, columns: _ModelColumns) -> str | None:
    model_name, _, measure_name = ref.partition(".")
    model = catalog.models.get(model_name)
    if model is None or measure_name not in model.measures:
        return None
    graph.add_edge(owner, f"measure:{ref}", role)
    if model.default_time is not None:
        graph.add_edge(owner, f"dimension:{model.default_time.ref}", "time")
        if model.default_time.model != model.name:
            _add_join(graph, catalog, owner, model.name, model.default_time.model, columns)
    return model.name


def _add_simple(graph: LineageGraph, catalog: Catalog, name: str, metric, columns: _ModelColumns):
    mid = f"metric:{name}"
    source = _add_measure_use(graph, catalog, mid, metric.measure, "measure", columns)
    if metric.filter:
        _add_filter(graph, catalog, mid, metric.filter, "filter", source, columns)


def _add_affinity(graph: LineageGraph, catalog: Catalog, name: str, metric, columns: _ModelColumns):
    mid = f"metric:{name}"
    info = catalog.affinities.get(name)
    if info is None:
        return
    graph.add_edge(mid, f"model:{info.bridge}", "baskets × items")
    graph.add_edge(mid, f"model:{info.basket_model}", f"basket {metric.basket}")
    graph.add_edge(mid, f"model:{info.item_model}", f"item {metric.item}")
    bridge = catalog.models[info.bridge]
    for entity_name in (metric.basket, metric.item):
        for column_id in _expr_columns(columns, bridge, bridge.entities[entity_name].expr):
            graph.add_edge(mid, _add_column(graph, column_id), f"{entity_name} key")
    if metric.filter:
        _add_filter(graph, catalog, mid, metric.filter, "filter", info.bridge, columns)


def _add_inputs(graph: LineageGraph, catalog: Catalog, name: str, metric, columns: _ModelColumns):
    """Metrics built from other metrics: an edge to each input in its role, and its filter's dimensions."""
    mid = f"metric:{name}"
    uses = catalog.facts[name].inputs
    for use in uses:
        # a list of several metrics names each edge in the singular, as lineage always has
        role = "metric" if use.role == "metrics" and len(uses) > 1 else use.role
        if use.metric in catalog.metrics and use.metric != name:
            graph.add_edge(mid, f"metric:{use.metric}", role)
            if use.filter:
                _add_filter(graph, catalog, mid, use.filter, f"{role} filter", None, columns)


def _add_cohort(graph: LineageGraph, catalog: Catalog, name: str, metric, columns: _ModelColumns):
    """Its cohort and activity metrics, and the entity's model (its key and dimensions describe members)."""
    _add_inputs(graph, catalog, name, metric, columns)
    model = catalog.models[catalog.entity_owner[metric.entity]]
    graph.add_edge(f"metric:{name}", f"model:{model.name}", f"entity {metric.entity}")
    for column_id in _expr_columns(columns, model, model.entities[metric.entity].expr):
        graph.add_edge(f"metric:{name}", _add_column(graph, column_id), f"{metric.entity} key")


_METRIC_EDGES = {m.SimpleMetric: _add_simple, m.AffinityMetric: _add_affinity, m.RatioMetric: _add_inputs,
                 m.DerivedMetric: _add_inputs, m.CumulativeMetric: _add_inputs, m.ConversionMetric: _add_inputs,
                 m.CohortMetric: _add_cohort}


def _add_metric(graph: LineageGraph, catalog: Catalog, name: str, metric, columns: _ModelColumns):
    _METRIC_EDGES[type(metric)](graph, catalog, name, metric, columns)


# --- naming a node -----------------------------------------------------------------------------


def resolve_node(graph: LineageGraph, name: str) -> str:
    """A node id from what a user types: `cac`, `orders.status`, `order.status`, `metric:cac`, `ad_spend`."""
    if name in graph.nodes:
        return name
    for kind in ("metric", "saved_query", "view", "model", "measure", "dimension", "column", "table"):
        candidate = f"{kind}:{name}"
        if candidate in graph.nodes:
            return candidate
    names = sorted({n.split(":", 1)[1] for n in graph.nodes})
    raise UnknownNameError(f"nothing named '{name}' in the lineage graph",
                           hint=did_you_mean(name, names) + " — name a metric, model.measure, "
                                "model.dimension, table or table.column")


# --- rendering ---------------------------------------------------------------------------------


def tree(graph: LineageGraph, root: str, direction: str = "down", *, max_depth: int = 12) -> dict:
    """A nested tree; a node met twice is expanded once and then marked `seen`."""
    expanded: set[str] = set()

    def build(node_id: str, role: str | None, depth: int) -> dict:
        node = graph.nodes[node_id].to_dict()
        if role:
            node["role"] = role
        edges = graph.uses(node_id) if direction == "down" else graph.used_by(node_id)
        if node_id in expanded and edges:
            node["seen"] = True
            return node
        expanded.add(node_id)
        if depth < max_depth and edges:
            node["children"] = [build(e.target if direction == "down" else e.source, e.role, depth + 1)
                                for e in _ordered(graph, edges, direction)]
        return node

    return build(root, None, 0)


_KIND_ORDER = {k: i for i, k in enumerate(("metric", "measure", "dimension", "model", "table", "column",
                                           "saved_query", "view"))}


def _ordered(graph, edges, direction):
    key_of = (lambda e: e.target) if direction == "down" else (lambda e: e.source)
    return sorted(edges, key=lambda e: (_KIND_ORDER.get(graph.nodes[key_of(e)].kind, 9), key_of(e)))


def describe(node: dict) -> str:
    text = f"{node['kind'].replace('_', ' ')} {node['name']}"
    extras = [x for x in (node.get("detail"), node.get("tier"), node.get("owner")) if x]
    if node.get("label") and node["kind"] in ("metric", "model", "view", "saved_query"):
        text += f" “{node['label']}”"
    if extras and node["kind"] in ("metric", "model", "view", "saved_query", "measure"):
        text += f" ({', '.join(extras)})"
    return text


def render_text(root: dict, direction: str = "down") -> str:
    arrow = "←" if direction == "down" else "→"
    lines = [describe(root)]

    def walk(node: dict, prefix: str):
        children = node.get("children", [])
        for i, child in enumerate(children):
            last = i == len(children) - 1
            role = f"[{child['role']}] " if child.get("role") else ""
            seen = " …" if child.get("seen") else ""
            lines.append(f"{prefix}{'└── ' if last else '├── '}{arrow} {role}{describe(child)}{seen}")
            walk(child, prefix + ("    " if last else "│   "))

    walk(root, "")
    return "\n".join(lines)


def render_mermaid(graph: LineageGraph, root: str, direction: str = "down") -> str:
    nodes, edges = graph.subgraph(root, direction)
    ids = {n: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["flowchart RL"]
    for n in nodes:
        node = graph.nodes[n]
        text = f"{node.kind}: {node.name}".replace('"', "'")
        shape = ("[(", ")]") if node.kind == "table" else ("([", "])") if node.kind == "metric" else ("[", "]")
        lines.append(f'  {ids[n]}{shape[0]}"{text}"{shape[1]}')
    for e in edges:
        role = e.role.replace('"', "'").replace("|", "/")
        lines.append(f'  {ids[e.target]} -->|"{role}"| {ids[e.source]}')
    lines.append(f"  style {ids[root]} stroke-width:3px")
    return "\n".join(lines)


def render_dot(graph: LineageGraph, root: str, direction: str = "down") -> str:
    nodes, edges = graph.subgraph(root, direction)
    shapes = {"metric": "ellipse", "table": "cylinder", "column": "note", "model": "box3d"}

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph lineage {", "  rankdir=LR;", "  node [fontname=Helvetica, fontsize=10];"]
    for n in nodes:
        node = graph.nodes[n]
        attrs = f"label={q(node.kind + ': ' + node.name)}, shape={shapes.get(node.kind, 'box')}"
        if n == root:
            attrs += ", penwidth=3"
        lines.append(f"  {q(n)} [{attrs}];")
    for e in edges:
        lines.append(f"  {q(e.target)} -> {q(e.source)} [label={q(e.role)}];")
    lines.append("}")
    return "\n".join(lines)


def impact(graph: LineageGraph, node_id: str) -> dict[str, list[str]]:
    """Every metric, saved query and view that depends on `node_id`, by kind."""
    found: dict[str, list[str]] = {"metrics": [], "saved_queries": [], "views": []}
    for dep in graph.dependents(node_id):
        node = graph.nodes[dep]
        found[{"metric": "metrics", "saved_query": "saved_queries", "view": "views"}[node.kind]].append(node.name)
    return {k: sorted(v) for k, v in found.items()}


def sources(graph: LineageGraph, node_id: str) -> dict[str, list[str]]:
    """The tables and columns a node is built from."""
    down = graph.closure(node_id, "down")
    return {"tables": sorted(graph.nodes[n].name for n in down if graph.nodes[n].kind == "table"),
            "columns": sorted(graph.nodes[n].name for n in down if graph.nodes[n].kind == "column")}


def lineage_json(catalog: Catalog, name: str, direction: str = "both", *, graph: LineageGraph | None = None) -> dict:
    """What `GET /v1/metrics/{name}/lineage` answers: the node, its trees down and up, a flat graph,
    the tables and columns it reads and everything that depends on it."""
    if direction not in DIRECTIONS:
        raise UnknownNameError(f"unknown direction '{direction}'", hint=did_you_mean(direction, DIRECTIONS))
    graph = graph or build_lineage(catalog)
    root = resolve_node(graph, name)
    nodes, edges = graph.subgraph(root, direction)
    result = {"root": graph.nodes[root].to_dict(),
              "nodes": [graph.nodes[n].to_dict() for n in nodes],
              "edges": [e.to_dict() for e in edges],
              **sources(graph, root),
              "impact": impact(graph, root)}
    if direction in ("down", "both"):
        result["down"] = tree(graph, root, "down")
    if direction in ("up", "both"):
        result["up"] = tree(graph, root, "up")
    return result

"""The resolved catalog: models with parsed, qualified expressions, and the entity join graph.

Built once by `validate.build_catalog`; read-only afterwards. Every expression is parsed at build
time and qualified with its model's alias (the model name), so rendering only copies nodes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

from sqlglot import exp

from .errors import QueryError
from .model import (AffinityMetric, Dimension, GlossaryTerm, Measure, Rollup, SavedQuery, SemanticModel,
                    Settings, View)
from .sqlexpr import ParsedFilter

if TYPE_CHECKING:
    from .facts import MetricFacts


def alias_id(name: str) -> exp.Identifier:
    """Aliases are always quoted: model names such as `order` are reserved words."""
    return exp.to_identifier(name, quoted=True)


@dataclass(frozen=True)
class DimensionInfo:
    model: str
    name: str
    type: str  # categorical | time | number | boolean
    expr: exp.Expression
    definition: Dimension

    @property
    def ref(self) -> str:
        return f"{self.model}.{self.name}"


@dataclass(frozen=True)
class PerEntityInfo:
    """The inner step of an entity-level measure: `agg(expr)` per `entity` key."""

    entity: str
    key: exp.Expression
    agg: str
    expr: exp.Expression | None


@dataclass(frozen=True)
class NonAdditiveInfo:
    time: "DimensionInfo"
    window: str  # last | first
    groupings: tuple[exp.Expression, ...]


@dataclass(frozen=True)
class MeasureInfo:
    model: str
    name: str
    agg: str
    expr: exp.Expression | None  # None: count rows
    definition: Measure
    per: PerEntityInfo | None = None
    non_additive: NonAdditiveInfo | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}.{self.name}"


@dataclass(frozen=True)
class EntityInfo:
    name: str
    type: str  # primary | unique | foreign
    expr: exp.Expression


@dataclass(frozen=True)
class ModelInfo:
    definition: SemanticModel
    source: exp.Expression  # a Table or Subquery, aliased with the model name
    entities: Mapping[str, EntityInfo]
    dimensions: Mapping[str, DimensionInfo]
    measures: Mapping[str, MeasureInfo]
    default_time: DimensionInfo | None = None

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def primary(self) -> EntityInfo | None:
        return next((e for e in self.entities.values() if e.type == "primary"), None)


@dataclass(frozen=True)
class Edge:
    """One join step: `source` joins `target` on `entity`; `fanout` when target has many rows per key."""

    source: str
    target: str
    entity: str
    fanout: bool
    routed = False  # a step of a named join path, between aliases (compiler/roles.py RoleEdge)

    def __str__(self) -> str:
        return f"{self.source} {'←' if self.fanout else '→'} {self.target}"


@dataclass(frozen=True)
class AffinityInfo:
    definition: AffinityMetric
    bridge: str  # the model holding one row per (basket, item) line
    basket_model: str
    item_model: str
    filter: ParsedFilter | None


@dataclass
class Catalog:
    models: dict[str, ModelInfo]
    metrics: dict[str, object]  # name -> metric definition (model.Metric)
    saved_queries: dict[str, SavedQuery] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    glossary: dict[str, GlossaryTerm] = field(default_factory=dict)
    metric_filters: dict[str, ParsedFilter] = field(default_factory=dict)
    input_filters: dict[tuple[str, str], ParsedFilter] = field(default_factory=dict)
    derived_exprs: dict[str, exp.Expression] = field(default_factory=dict)
    affinities: dict[str, AffinityInfo] = field(default_factory=dict)
    segments: dict[str, ParsedFilter] = field(default_factory=dict)  # '<model>.<segment>' -> its filter
    rollups: dict[str, "Rollup"] = field(default_factory=dict)  # pre-aggregations (compiler/rollups.py)
    facts: dict[str, "MetricFacts"] = field(default_factory=dict)  # name -> what it is built from
    entity_owner: dict[str, str] = field(default_factory=dict)
    edges: dict[str, list[Edge]] = field(default_factory=dict)
    version: str = ""
    # time dimensions the warehouse stores as DATE, learned by the runtime (column_types.py); a class
    # default, so catalogs pickled before this field existed read it as empty
    stored_dates: frozenset = frozenset()
    settings: Settings = field(default_factory=Settings)
    # the `recommendations:` block (compiler/recommendations.py checks it); a class default, so catalogs
    # pickled before this field existed read it as absent
    recommendations: object | None = None
    _paths: dict[str, dict[str, tuple[tuple[Edge, ...], ...]]] = field(default_factory=dict, repr=False)

    # --- names ---------------------------------------------------------------------------

    def model_for(self, qualifier: str) -> ModelInfo | None:
        """A model by its own name or by the entity it has as primary key."""
        if qualifier in self.models:
            return self.models[qualifier]
        owner = self.entity_owner.get(qualifier)
        return self.models.get(owner) if owner else None

    def extension_dimension(self, entity: str, name: str) -> DimensionInfo | None:
        """A dimension of a model keyed one-to-one on `entity` (a `unique` entity there), so that
        `customer.rfm_segment` reaches the customer_rfm model's rfm_segment."""
        found = [m.dimensions[name] for m in self.models.values()
                 if name in m.dimensions and entity in m.entities and m.entities[entity].type == "unique"]
        return found[0] if len(found) == 1 else None

    def qualifiers(self) -> set[str]:
        return set(self.models) | set(self.entity_owner)

    def segment_filter(self, name: str, *, field: str = "segments") -> ParsedFilter:
        """A segment ('<model>.<segment>') as its reviewed filter, which a request adds to `where`."""
        from .errors import Location, UnknownNameError, did_you_mean

        found = self.segments.get(name) if isinstance(name, str) else None
        if found is None:
            hint = did_you_mean(str(name), self.segments) if self.segments else "this catalog defines no segments"
            raise UnknownNameError(f"{field}: unknown segment {name!r}", location=Location(path=field), hint=hint)
        return found

    def all_dimension_refs(self) -> list[str]:
        return sorted(d.ref for m in self.models.values() for d in m.dimensions.values())

    # --- join graph ----------------------------------------------------------------------

    def path(self, source: str, target: str) -> tuple[Edge, ...]:
        """The shortest join path from `source` to `target`; ambiguity and absence are errors."""
        if source == target:
            return ()
        candidates = self._shortest_paths(source).get(target)
        if not candidates:
            raise QueryError(
                f"{target} cannot be reached from {source}",
                hint=f"no chain of entities links them; models reachable from {source}: "
                     + ", ".join(sorted(self._shortest_paths(source)))
                     + " (to reach the many side of a join, its model must say `bridge: true`)",
            )
        if len(candidates) > 1:
            from .roles import path_text

            shown = "; ".join(format_path(path) for path in candidates)
            raise QueryError(
                f"ambiguous join path from {source} to {target}: {shown}",
                hint="name the path in the reference: " + " or ".join(f"{path_text(self, p)}.<dimension>" for p in candidates)
                     + "; or give the entities distinct names, or remove one of the links",
            )
        return candidates[0]

    def reachable(self, source: str) -> list[str]:
        """Models reachable from `source` by exactly one shortest path, nearest first."""
        found = self._shortest_paths(source)
        return [m for m in found if len(found[m]) == 1]

    def _shortest_paths(self, source: str) -> dict[str, tuple[tuple[Edge, ...], ...]]:
        cached = self._paths.get(source)
        if cached is not None:
            return cached
        paths: dict[str, list[tuple[Edge, ...]]] = {source: [()]}
        depth = {source: 0}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            for edge in self.edges.get(node, ()):
                nxt = edge.target
                if nxt not in depth:
                    depth[nxt] = depth[node] + 1
                    paths[nxt] = []
                    queue.append(nxt)
                if depth[nxt] == depth[node] + 1:
                    # keep at most two paths per target: enough to know and show an ambiguity
                    for p in paths[node]:
                        if len(paths[nxt]) < 2:
                            paths[nxt].append(p + (edge,))
        result = {m: tuple(p) for m, p in paths.items() if m != source}
        self._paths[source] = result
        return result


def format_path(path: tuple[Edge, ...]) -> str:
    """`lead → campaign ← order ← order_item → product`: ← marks a step to the many side."""
    if not path:
        return ""
    return path[0].source + "".join(f" {'←' if e.fanout else '→'} {e.target}" for e in path)


def build_edges(models: Mapping[str, ModelInfo]) -> tuple[dict[str, list[Edge]], dict[str, str]]:
    """Edges of the entity graph; a foreign or unique key meets the model where it is primary."""
    owner: dict[str, str] = {}
    for model in models.values():
        for entity in model.entities.values():
            if entity.type == "primary":
                owner[entity.name] = model.name
    edges: dict[str, list[Edge]] = {name: [] for name in models}
    for model in models.values():
        for entity in model.entities.values():
            target = owner.get(entity.name)
            if target is None or target == model.name:
                continue
            # model -> owner is safe (owner has one row per key); back is a fan-out unless unique,
            # and a fan-out step is taken only into a model declared as a bridge
            edges[model.name].append(Edge(model.name, target, entity.name, fanout=False))
            fanout = entity.type == "foreign"
            if not fanout or model.definition.bridge:
                edges[target].append(Edge(target, model.name, entity.name, fanout=fanout))
    return edges, owner

"""Join steps as SQL: LEFT by default, INNER where every row is sure to match or must match anyway.

A model's join is LEFT so that a row without a match keeps its measure (grouped under NULL). It is
INNER, with the same rows, when
- a conjunct of the same SELECT's WHERE is null-rejecting on that model's columns (e.g. `"order".status
  = 'completed'`): a row without a match fails the WHERE anyway (so do the joins on the path to it);
- the join's key is declared to always match: the joining model carries `not_null` and
  `relationships` data tests (severity error, run by `canon test`) on the key column, and the row it
  joins from is itself always there. Data that breaks a declared test loses its rows here.
INNER joins let the engine reorder and filter first (DuckDB also groups their output much faster).
They come first (they are closed under "the step it joins from"), the LEFT ones after.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from sqlglot import exp

from ..catalog import Catalog, Edge
from ..hops import declared_related, key_tests
from .build import join

# node types that give NULL when any operand is NULL (and so keep a missing row's NULL)
_STRICT = (exp.Column, exp.Identifier, exp.Literal, exp.Cast, exp.TryCast, exp.DataType, exp.DataTypeParam,
           exp.Paren, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Neg, exp.DateTrunc, exp.TimestampTrunc, exp.AtTimeZone,
           exp.Interval, exp.Var)
# predicates that are not TRUE when an operand is NULL
_REJECTING = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between, exp.Like, exp.ILike)


def null_rejected(conditions: Iterable[exp.Expression]) -> set[str]:
    """The models (by alias) whose missing row makes some conjunct NULL or FALSE."""
    models: set[str] = set()
    for condition in conditions:
        for conjunct in condition.flatten() if isinstance(condition, exp.And) else (condition,):
            while isinstance(conjunct, (exp.Paren, exp.Not)):
                conjunct = conjunct.this
            if not isinstance(conjunct, _REJECTING):
                continue
            operands = [x for v in conjunct.args.values() for x in (v if isinstance(v, list) else [v])
                        if isinstance(x, exp.Expression)]
            if all(isinstance(node, _STRICT) for operand in operands for node in operand.walk()):
                models.update(c.table for c in conjunct.find_all(exp.Column) if c.table)
    return models


def joins_for(catalog: Catalog, edges: Sequence[Edge], where: Sequence[exp.Expression] = (),
              sources: dict[str, exp.Expression] | None = None) -> list[exp.Join]:
    """The joins for `edges`; `where`: the conditions on the joined rows; `sources`: a model's rows
    replaced (e.g. narrowed beforehand by those conditions, render/pushdown.py)."""
    inner: set[str] = set()
    by_target = {e.target: e for e in edges}
    for model in null_rejected(where):
        while model in by_target and model not in inner:  # the model and the steps that reach it
            inner.add(model)
            model = by_target[model].source
    base = {e.source for e in edges} - set(by_target)
    for edge in edges:  # in join order: a step's source is decided before the step
        reached = edge.source in base or edge.source in inner
        if edge.target not in inner and reached and always_matches(catalog, edge):
            inner.add(edge.target)
    ordered = [e for e in edges if e.target in inner] + [e for e in edges if e.target not in inner]
    sources = sources or {}
    return [join(sources.get(e.target) or _source(catalog, e), join_condition(catalog, e),
                 side="INNER" if e.target in inner else "LEFT") for e in ordered]


def _source(catalog: Catalog, edge: Edge) -> exp.Expression:
    # a step of a named join path reads its model under the path's alias (compiler/roles.py)
    return edge.source_sql(catalog) if edge.routed else catalog.models[edge.target].source.copy()


def always_matches(catalog: Catalog, edge: Edge) -> bool:
    """Declared by data tests: the key column is never NULL and always names a row of the target."""
    if getattr(edge, "at", None) is not None:
        return False  # a version valid at the row's time may be missing
    edge = getattr(edge, "base", None) or edge  # a named path's step: as its catalog edge
    if edge.fanout:
        return False
    tests = key_tests(catalog, edge)
    not_null = any(t.type == "not_null" for t in tests)
    related = declared_related(catalog, edge, tests)
    return not_null and related


def join_condition(catalog: Catalog, edge: Edge) -> exp.Expression:
    if edge.routed:
        return edge.condition(catalog)
    left = catalog.models[edge.source].entities[edge.entity].expr.copy()
    right = catalog.models[edge.target].entities[edge.entity].expr.copy()
    return exp.EQ(this=left, expression=right)

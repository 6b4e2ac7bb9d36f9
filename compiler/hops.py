"""Join hops that add nothing: `order → customer → customer_rfm` read as `order → customer_rfm`.

A step into a model is skipped when nothing of that model is read but the key that leads on, the
next step joins on the same entity, and the step's key is declared (`relationships` data test,
severity error) to name a row of it whenever it is not NULL: then the key it would pass on is the
key already in hand, NULL where it is NULL. Saves a join of the whole middle table (the customers
of every order) that hand-written SQL never makes.
"""

from __future__ import annotations

from typing import Sequence

from sqlglot import exp

from .catalog import Catalog, Edge


def declared_related(catalog: Catalog, edge: Edge, tests=None) -> bool:
    """The key column of `edge` is declared to name a row of its target when not NULL."""
    source, target = catalog.models[edge.source], catalog.models[edge.target]
    key = source.entities[edge.entity].expr
    if not isinstance(key, exp.Column):
        return False
    if tests is None:
        tests = key_tests(catalog, edge)
    target_key = target.entities[edge.entity].expr
    return any(t.type == "relationships" and catalog.model_for(t.to) is target
               and (t.field is None and target.primary is not None and target.primary.name == edge.entity
                    or isinstance(target_key, exp.Column) and t.field == target_key.name) for t in tests)


def key_tests(catalog: Catalog, edge: Edge) -> list:
    """The error-severity data tests on the column `edge` joins from."""
    key = catalog.models[edge.source].entities[edge.entity].expr
    name = key.name if isinstance(key, exp.Column) else None
    return [t for t in catalog.models[edge.source].definition.tests
            if t.severity == "error" and name is not None and getattr(t, "column", None) == name]


def skip_hops(catalog: Catalog, edges: Sequence[Edge], used: set[str]) -> tuple[Edge, ...]:
    """`edges` (in join order) with the pass-through steps into unused models joined around."""
    plain = [e for e in edges if type(e) is Edge]  # named paths and versioned steps keep every step
    if len(plain) != len(edges):
        return tuple(edges)
    result = list(edges)
    changed = True
    while changed:
        changed = False
        for first in result:
            middle = first.target
            onward = [e for e in result if e.source == middle]
            if middle in used or first.fanout or len(onward) != 1:
                continue
            second = onward[0]
            if second.fanout or second.entity != first.entity or not declared_related(catalog, first):
                continue
            owner = catalog.models[middle].entities.get(first.entity)
            if owner is None or owner.type != "primary":
                continue
            at = result.index(first)
            result.remove(second)
            result[at] = Edge(first.source, second.target, first.entity, fanout=False)
            changed = True
            break
    return tuple(result)

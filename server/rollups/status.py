"""`canon rollups status`: per declared rollup, whether it is built, when, how big, and whether it is
stale (its definitions changed, or its sources have rows newer than its last fill)."""

from __future__ import annotations

from canon.compiler.catalog import Catalog
from canon.compiler.errors import CanonError
from canon.compiler.rollups import plan_rollups

from .build import iso, sources
from .store import read_state


def status(catalog: Catalog, runner) -> list[dict]:
    """`runner` executes Canon-built trees (a Writer, or anything with `dialect` and `execute`)."""
    from ..governance.freshness import freshness_query

    layouts = plan_rollups(catalog, runner.dialect)
    try:
        built = read_state(runner)
    except CanonError:  # no state table: nothing built yet
        built = {}
    rows = []
    for name, lay in layouts.items():
        state = built.get(name)
        entry = {"name": name, "built": state is not None, "metrics": list(lay.definition.metrics),
                 "dimensions": [d.ref for d in lay.dims], "leaves": [leaf.metric for leaf in lay.leaves]}
        if state is None:
            entry.update(stale=True, why="never built")
            rows.append(entry)
            continue
        why = []
        if state.fingerprint != lay.fingerprint:
            why.append("definitions changed since the build")
        for model in sources(catalog, lay):
            value = runner.execute(freshness_query(catalog.models[model]))[0][0]
            now, then = (iso(value) if value is not None else None), state.watermarks.get(model)
            if now is not None and (then is None or now > then):
                why.append(f"{model} has rows loaded after {then}")
        entry.update(built_at=state.built_at, refreshed_at=state.refreshed_at, rows=state.rows, bytes=state.bytes,
                     stamp=state.stamp, stale=bool(why), why="; ".join(why) or None)
        rows.append(entry)
    return rows

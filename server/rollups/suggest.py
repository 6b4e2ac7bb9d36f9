"""`canon rollups suggest`: rollups proposed from the audit log.

Successful queries are grouped by shape (metrics, dimensions, the dimensions their filters name); each
shape that no declared rollup answers is proposed as a rollup storing those metrics at those
dimensions (time at the coarsest grain that every asked grain rolls up from; the audit log
keeps no time ranges, so a range that does not align with it is answered raw), ranked by the time it
took in total. Metrics a rollup cannot store (cumulative, conversion, affinity, filtered inputs) are
left out and named. The output is YAML to review and paste under `rollups:`.
"""

from __future__ import annotations

from dataclasses import dataclass

from canon.compiler import model as m
from canon.compiler.catalog import Catalog
from canon.compiler.errors import CanonError
from canon.compiler.refs import METRIC_TIME, parse_ref
from canon.compiler.request import QueryRequest
from canon.compiler.rollups import ROLLS_UP, Routed, answer, leaf_metrics, plan_rollups, rollup_table
from canon.compiler.sqlexpr import parse_filter

ORDER = ("day", "week", "month", "quarter", "year")


@dataclass
class Shape:
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...]
    queries: int = 0
    total_ms: float = 0.0


def shapes(entries) -> list[Shape]:
    found: dict[tuple, Shape] = {}
    for entry in entries:
        if entry.get("outcome") != "ok" or entry.get("cached") or not entry.get("metrics"):
            continue
        refs = list(entry.get("dimensions") or ())
        for text in entry.get("filters") or ():
            try:
                refs += [r for r in parse_filter(text, field="where").refs if r not in refs]
            except CanonError:
                continue
        key = (tuple(sorted(entry["metrics"])), tuple(sorted(set(refs))))
        shape = found.setdefault(key, Shape(*key))
        shape.queries += 1
        shape.total_ms += float(entry.get("elapsed_ms") or 0)
    return sorted(found.values(), key=lambda s: -s.total_ms)


def suggest(catalog: Catalog, entries, *, limit: int = 5, dialect: str = "duckdb") -> list[dict]:
    layouts = plan_rollups(catalog, dialect)
    proposals = []
    for shape in shapes(entries):
        request = QueryRequest(metrics=shape.metrics, dimensions=tuple(d for d in shape.dimensions))
        answered = next((name for name, lay in layouts.items()
                         if isinstance(answer(catalog, request, lay, rollup_table(name), dialect), Routed)), None)
        if answered:
            continue
        proposal = _proposal(catalog, shape)
        if proposal is not None:
            proposals.append(proposal)
        if len(proposals) >= limit:
            break
    return proposals


def _proposal(catalog: Catalog, shape: Shape) -> dict | None:
    storable, left_out = [], []
    for name in shape.metrics:
        try:
            leaf_metrics(catalog, m.Rollup(name="probe", metrics=(name,)))
            storable.append(name)
        except CanonError:
            left_out.append(name)
    if not storable:
        return None
    dims, grains = [], []
    for ref in shape.dimensions:
        try:
            parsed = parse_ref(catalog, ref)
        except CanonError:
            return None
        if parsed.kind == METRIC_TIME:
            grains.append(parsed.grain or "day")
        elif parsed.kind == "dimension" and parsed.type == "time":
            grain = parsed.grain or "day"
            dims.append(f"{parsed.dimension.ref}.{grain if grain in ROLLS_UP else 'day'}")
        elif parsed.kind == "dimension":
            dims.append(parsed.dimension.ref)
        else:
            return None
    grain = None
    if grains:  # the coarsest grain every asked grain rolls up from (the audit log has no time ranges)
        grain = next((g for g in reversed(ORDER) if all(x in ROLLS_UP[g] for x in grains)), "day")
    name = "_".join(shape.metrics[:2] + tuple(d.split(".")[-1] for d in dims[:2]))[:50]
    rollup = {"name": name.lower(), "metrics": storable, "dimensions": sorted(set(dims))}
    if grain:
        rollup.update(time_grain=grain, partition_by="month" if grain == "day" else None)
        if rollup["partition_by"] is None:
            del rollup["partition_by"]
    return {"rollup": rollup, "queries": shape.queries, "total_ms": round(shape.total_ms, 1),
            "left_out": left_out}

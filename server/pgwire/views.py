"""The catalog's views as PostgreSQL tables: column names, kinds and types BI tools see."""

from __future__ import annotations

from dataclasses import dataclass, field

from canon.compiler.catalog import Catalog

from . import types as t


@dataclass(frozen=True)
class ViewColumnInfo:
    name: str  # the column name clients see
    ref: str  # the dimension reference or the metric name
    kind: str  # dimension | metric
    oid: int
    description: str = ""
    time: bool = False


@dataclass(frozen=True)
class ViewTable:
    name: str
    description: str
    columns: tuple[ViewColumnInfo, ...]
    by_name: dict = field(default_factory=dict, compare=False, hash=False)

    def column(self, name: str) -> ViewColumnInfo | None:
        return self.by_name.get(name.lower())

    @property
    def metrics(self) -> list[ViewColumnInfo]:
        return [c for c in self.columns if c.kind == "metric"]

    def column_names(self) -> str:
        return ", ".join(c.name for c in self.columns)


def dimension_oid(catalog: Catalog, ref: str) -> tuple[int, bool]:
    """(type OID, is time) of a dimension reference as a result column."""
    parts = ref.split(".")
    if parts[0] == "metric_time":
        return t.DATE, True
    model = catalog.model_for(parts[0])
    dim = model.dimensions.get(parts[1]) if model is not None and len(parts) > 1 else None
    if dim is None:
        return t.TEXT, False
    if dim.type == "time":
        return (t.DATE if len(parts) == 3 else t.TIMESTAMP), True
    return t.KIND_OIDS.get(dim.type, t.TEXT), False


def view_tables(catalog: Catalog, grant=None) -> dict[str, ViewTable]:
    """The catalog's views as tables; under an access grant, without the columns it hides (a view left
    with no metric is not shown at all)."""
    tables = {}
    for name, view in sorted(catalog.views.items()):
        columns = []
        for item in view.dimensions:
            ref = item if isinstance(item, str) else item.ref
            if grant is not None and not _dimension_allowed(catalog, grant, ref):
                continue
            col = (None if isinstance(item, str) else item.name) or ref.replace(".", "_")
            oid, is_time = dimension_oid(catalog, ref)
            columns.append(ViewColumnInfo(col, ref, "dimension", oid, _dimension_description(catalog, ref), is_time))
        for metric in view.metrics:
            if grant is not None and not grant.queryable(catalog, metric):
                continue
            definition = catalog.metrics.get(metric)
            text = " ".join(((definition.label or "") + ". " if definition and definition.label else "").split()
                            + (definition.description or "").split()) if definition else ""
            columns.append(ViewColumnInfo(metric, metric, "metric", t.NUMERIC, text))
        if not any(c.kind == "metric" for c in columns):
            continue
        table = ViewTable(name, " ".join((view.description or view.label or "").split()), tuple(columns))
        table.by_name.update({c.name.lower(): c for c in columns})
        tables[name] = table
    return tables


def _dimension_description(catalog: Catalog, ref: str) -> str:
    if ref.startswith("metric_time"):
        return "The shared time axis: each metric on its own default time."
    parts = ref.split(".")
    model = catalog.model_for(parts[0])
    dim = model.dimensions.get(parts[1]) if model is not None and len(parts) > 1 else None
    return " ".join(((dim.definition.description or dim.definition.label or "") if dim else "").split())


def _dimension_allowed(catalog: Catalog, grant, ref: str) -> bool:
    if ref.split(".")[0] == "metric_time":
        return grant.allows_dimension(catalog, "metric_time")
    parts = ref.split(".")
    model = catalog.model_for(parts[0])
    dim = (model.dimensions.get(parts[1]) or catalog.extension_dimension(parts[0], parts[1])) \
        if model is not None and len(parts) > 1 else None
    return grant.allows_dimension(catalog, dim if dim is not None else ref)

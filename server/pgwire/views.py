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
    where: tuple[str, ...] = ()  # a saved query's reviewed filter: applies to every read of the table
    order: tuple[str, ...] = ()  # a saved query's order: used when the client gives no ORDER BY

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
    if model is None and ref == "cohort.periods_since":  # cohort metrics (compiler/cohort.py): a whole number
        return t.INT4, False
    dim = model.dimensions.get(parts[1]) if model is not None and len(parts) > 1 else None
    if dim is None:
        return t.TEXT, False
    if dim.type == "time":
        return (t.DATE if len(parts) == 3 else t.TIMESTAMP), True
    return t.KIND_OIDS.get(dim.type, t.TEXT), False


def view_tables(catalog: Catalog, grant=None) -> dict[str, ViewTable]:
    """The catalog's views, then its saved queries, as tables; under an access grant, without the
    columns it hides (a table left with no metric is not shown at all). A saved query's table has its
    dimensions and metrics as columns and its filter on every read; a view of the same name wins."""
    tables = {}
    for name, view in sorted(catalog.views.items()):
        table = _table(catalog, grant, name, view.description or view.label, view.dimensions, view.metrics)
        if table is not None:
            tables[name] = table
    for name, saved in sorted(catalog.saved_queries.items()):
        if name in tables:
            continue
        table = _table(catalog, grant, name, saved.description or saved.label, saved.dimensions, saved.metrics,
                       where=(saved.where,) if saved.where else (), order=tuple(saved.order))
        if table is not None:
            tables[name] = table
    return tables


def _table(catalog: Catalog, grant, name: str, description: str | None, dimensions, metrics, *,
           where: tuple[str, ...] = (), order: tuple[str, ...] = ()) -> ViewTable | None:
    columns = []
    for item in dimensions:
        ref = item if isinstance(item, str) else item.ref
        if grant is not None and not _dimension_allowed(catalog, grant, ref):
            continue
        col = (None if isinstance(item, str) else item.name) or ref.replace(".", "_")
        oid, is_time = dimension_oid(catalog, ref)
        columns.append(ViewColumnInfo(col, ref, "dimension", oid, _dimension_description(catalog, ref), is_time))
    for metric in metrics:
        if grant is not None and not grant.queryable(catalog, metric):
            continue
        definition = catalog.metrics.get(metric)
        text = " ".join(((definition.label or "") + ". " if definition and definition.label else "").split()
                        + (definition.description or "").split()) if definition else ""
        columns.append(ViewColumnInfo(metric, metric, "metric", t.NUMERIC, text))
    if not any(c.kind == "metric" for c in columns):
        return None
    table = ViewTable(name, " ".join((description or "").split()), tuple(columns), where=where, order=order)
    table.by_name.update({c.name.lower(): c for c in columns})
    return table


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

"""Column types from the warehouse, applied to a catalog: which time dimensions hold DATEs.

A time dimension over a DATE column holds calendar days, not UTC instants: a request's time zone
must never shift it (a purchase on 1997-01-01 stays in January in New York). A model may say
`stored_as: date`; otherwise the runtime reads the column types once from the warehouse and hands
them here as plain data, so this pass stays pure:

    columns = {"orders": {"ordered_on": "DATE", "paid_at": "TIMESTAMP"}}   # table -> column -> type
    catalog = with_column_types(catalog, columns, dialect="duckdb")

Each time dimension's expression is typed with sqlglot's `annotate_types` over its model's source,
so `ordered_on`, `CAST(paid_at AS DATE)` and a column of a `sql:` model's query are all recognised.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from .catalog import Catalog, ModelInfo, alias_id

Columns = Mapping[str, Mapping[str, str]]  # table name (lower case, as written in `table:`) -> column -> type


def with_column_types(catalog: Catalog, columns: Columns, dialect: str = "duckdb") -> Catalog:
    """The catalog (sharing everything) with `stored_dates` set from the warehouse's column types."""
    dates = date_dimensions(catalog, columns, dialect)
    return catalog if dates == catalog.stored_dates else replace(catalog, stored_dates=dates)


def date_dimensions(catalog: Catalog, columns: Columns, dialect: str = "duckdb") -> frozenset[str]:
    found = set()
    for model in catalog.models.values():
        times = [d for d in model.dimensions.values() if d.type == "time"]
        if not times:
            continue
        types = expression_types(model, [d.expr for d in times], columns, dialect)
        found.update(d.ref for d, kind in zip(times, types) if kind == exp.DataType.Type.DATE)
    return frozenset(found)


def expression_types(model: ModelInfo, exprs: list[exp.Expression], columns: Columns,
                     dialect: str = "duckdb") -> list[exp.DataType.Type | None]:
    """The types of expressions over a model's source (None where unknown)."""
    schema = _schema(model, columns)
    if schema is None:
        return [None] * len(exprs)
    probe = exp.select(*(exp.alias_(e.copy(), f"_c{i}", quoted=True) for i, e in enumerate(exprs)))
    source = model.source.copy()
    if isinstance(source, exp.Table):  # a table model: its columns under the model's alias
        source = exp.to_table(model.name, quoted=True)
        source.set("alias", exp.TableAlias(this=alias_id(model.name)))
    probe = probe.from_(source)
    try:
        if not isinstance(model.source, exp.Table):
            probe = qualify(probe, schema=schema, dialect=dialect, validate_qualify_columns=False)
        typed = annotate_types(probe, schema=schema, dialect=dialect)
    except (SqlglotError, KeyError, ValueError):  # an expression sqlglot cannot type: unknown, not an error
        return [None] * len(exprs)
    return [p.type.this if p.type is not None and p.type.this != exp.DataType.Type.UNKNOWN else None
            for p in typed.expressions]


def _schema(model: ModelInfo, columns: Columns) -> dict | None:
    """A one-level sqlglot schema (table -> column -> type) for the tables the model reads."""
    if isinstance(model.source, exp.Table):
        known = columns.get((model.definition.table or "").lower())
        return {model.name: _types(known)} if known else None
    schema = {}
    for table in model.source.find_all(exp.Table):
        known = columns.get(_table_key(table))
        if known is None:
            return None  # a table we know nothing of (or a CTE name): leave the model untyped
        schema[table.name] = _types(known)
    return schema or None


def _table_key(table: exp.Table) -> str:
    return ".".join(part.name for part in table.parts).lower()


def _types(known: Mapping[str, str]) -> dict[str, str]:
    """Column types sqlglot can parse; others (engine-specific spellings) are left unknown."""
    parsed = {}
    for name, kind in known.items():
        try:
            parsed[name] = exp.DataType.build(str(kind), dialect="postgres").sql()
        except (SqlglotError, ValueError):
            parsed[name] = "UNKNOWN"
    return parsed

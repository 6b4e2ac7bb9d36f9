"""What tables and columns the warehouse has, read from its `information_schema` (DuckDB, PostgreSQL).

    schema = read_schema(runtime.run_sql)     # Schema: tables, their columns and types, declared keys
    schema.columns()                           # {"orders": {...}, "main.orders": {...}}: table -> column -> type

One query for the columns (and, for `canon init`, one for the declared keys). Every table is listed
under its plain name (when that name is unambiguous, or the table is in the current schema) and its
qualified names, lower case, as a model's `table:` may write it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sqlglot import exp

from canon.compiler.errors import CanonError

SYSTEM_SCHEMAS = ("information_schema", "pg_catalog", "pg_toast")

Run = Callable[[exp.Expression], tuple[list[str], list[tuple]]]


@dataclass
class Table:
    catalog: str
    schema: str
    name: str
    current: bool  # in the connection's current schema: reachable by its plain name
    columns: dict[str, str] = field(default_factory=dict)  # column -> data type, in table order
    primary_key: tuple[str, ...] = ()
    foreign_keys: dict[str, str] = field(default_factory=dict)  # column -> referenced table

    @property
    def keys(self) -> list[str]:
        return [f"{self.catalog}.{self.schema}.{self.name}".lower(), f"{self.schema}.{self.name}".lower()]


@dataclass
class Schema:
    tables: list[Table]

    def columns(self) -> dict[str, dict[str, str]]:
        """table (plain and qualified names, lower case) -> column -> type, for compiler.column_types."""
        return {key: table.columns for key, table in self.by_name().items()}

    def by_name(self) -> dict[str, Table]:
        found: dict[str, Table] = {}
        plain: dict[str, list[Table]] = {}
        for table in self.tables:
            for key in table.keys:
                found[key] = table
            plain.setdefault(table.name.lower(), []).append(table)
        for name, tables in plain.items():
            current = [t for t in tables if t.current]
            chosen = current[0] if current else (tables[0] if len(tables) == 1 else None)
            if chosen is not None:
                found[name] = chosen
        return found

    def find(self, name: str) -> Table | None:
        return self.by_name().get(name.lower())

    def plain_names(self) -> list[str]:
        return sorted({t.name for t in self.tables})


def _columns_query(tables: list[str] | None) -> exp.Expression:
    col = lambda name: exp.column(name, table="c")  # noqa: E731
    query = (exp.select(col("table_catalog"), col("table_schema"), col("table_name"), col("column_name"),
                        col("data_type"),
                        exp.EQ(this=col("table_schema"), expression=exp.CurrentSchema()))
             .from_(exp.to_table("information_schema.columns").as_("c"))
             .where(exp.not_(col("table_schema").isin(*(exp.Literal.string(s) for s in SYSTEM_SCHEMAS))))
             .order_by(col("table_schema"), col("table_name"), col("ordinal_position")))
    if tables:  # plain names of the tables wanted (lower case): a literal list, never text in SQL
        query = query.where(exp.Lower(this=col("table_name")).isin(*(exp.Literal.string(t) for t in tables)))
    return query


def read_schema(run: Run, tables: list[str] | None = None, *, keys: bool = False) -> Schema:
    """The tables (all, or those whose plain names are in `tables`) with their columns; `keys` also
    reads declared primary and foreign keys (`canon init`)."""
    wanted = sorted({t.split(".")[-1].lower() for t in tables}) if tables is not None else None
    if wanted == []:
        return Schema([])
    _, rows = run(_columns_query(wanted))
    found: dict[tuple, Table] = {}
    for catalog, schema, name, column, kind, current in rows:
        table = found.setdefault((catalog, schema, name), Table(catalog, schema, name, bool(current)))
        table.columns[column] = str(kind)
    result = Schema(list(found.values()))
    if keys:
        _read_keys(run, result)
    return result


def table_names(run: Run) -> list[str]:
    """Every user table and view, by plain name (for "did you mean")."""
    col = lambda name: exp.column(name, table="t")  # noqa: E731
    _, rows = run(exp.select(col("table_name")).distinct()
                  .from_(exp.to_table("information_schema.tables").as_("t"))
                  .where(exp.not_(col("table_schema").isin(*(exp.Literal.string(s) for s in SYSTEM_SCHEMAS)))))
    return sorted(str(row[0]) for row in rows)


def _read_keys(run: Run, schema: Schema) -> None:
    """Declared primary and foreign keys, from information_schema's constraint views: a foreign key's
    referenced table is the table of the unique constraint its referential constraint points at."""
    tc, kcu, rc, tu = (exp.to_table(f"information_schema.{v}").as_(a) for v, a in
                       (("table_constraints", "tc"), ("key_column_usage", "kcu"), ("referential_constraints", "rc"),
                        ("table_constraints", "tu")))
    c = exp.column
    eq = lambda left, right: exp.EQ(this=left, expression=right)  # noqa: E731
    on = lambda left, right, schema="constraint_schema", name="constraint_name": exp.and_(  # noqa: E731
        eq(c(schema, table=left), c("constraint_schema", table=right)),
        eq(c(name, table=left), c("constraint_name", table=right)))
    query = (exp.select(c("table_schema", table="tc"), c("table_name", table="tc"), c("constraint_type", table="tc"),
                        c("column_name", table="kcu"), c("table_name", table="tu"))
             .from_(tc)
             .join(kcu, on=exp.and_(on("tc", "kcu"), eq(c("table_name", table="tc"), c("table_name", table="kcu"))))
             .join(rc, on=on("tc", "rc"), join_type="left")
             .join(tu, on=on("rc", "tu", "unique_constraint_schema", "unique_constraint_name"), join_type="left")
             .where(c("constraint_type", table="tc").isin(exp.Literal.string("PRIMARY KEY"),
                                                           exp.Literal.string("FOREIGN KEY")))
             .order_by(c("table_schema", table="tc"), c("table_name", table="tc"), c("ordinal_position", table="kcu")))
    try:
        _, rows = run(query)
    except CanonError:  # an engine without these views: keys are then guessed from names
        return
    tables = {(t.schema, t.name): t for t in schema.tables}
    for table_schema, table_name, kind, column, referenced in rows:
        table = tables.get((table_schema, table_name))
        if table is None:
            continue
        if kind == "PRIMARY KEY" and column not in table.primary_key:
            table.primary_key += (column,)
        elif kind == "FOREIGN KEY" and referenced:
            table.foreign_keys[column] = referenced

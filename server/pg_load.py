"""Load the demo warehouse (a DuckDB file built by server.demo) into PostgreSQL.

    counts = load_demo_into_postgres("/path/demo.duckdb", "postgresql://user@host:5432/db")

Every table of the DuckDB file (those of `server.demo.TABLES` first, then any other, such as the empty
`recommendation_feedback`) is created with the column types, NOT NULLs, primary keys and unique keys that
DuckDB's catalog reports (NUMERIC(12,2) money, TIMESTAMP, DATE, BIGINT ids, VARCHAR text) and filled with COPY: DuckDB streams each table
as Arrow record batches, Arrow writes them as CSV, psycopg sends the bytes through `COPY ... FROM STDIN`.
No DuckDB extension is needed.

A database that does not exist yet is created (when the user may). Everything else happens in one
transaction: existing demo tables are dropped and recreated, so readers see
either the old tables or the new ones, never a half-loaded warehouse. Keys are added after the rows are
in (a bulk index build is faster than row-by-row maintenance), and ANALYZE runs after the commit.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from canon.compiler.errors import WarehouseError

from .demo import TABLES

BATCH_ROWS = 100_000

# DuckDB column type -> PostgreSQL type (DECIMAL(p,s) is handled apart). A type missing here is reported.
_PG_TYPES = {
    "BIGINT": "BIGINT",
    "INTEGER": "INTEGER",
    "SMALLINT": "SMALLINT",
    "BOOLEAN": "BOOLEAN",
    "VARCHAR": "VARCHAR",
    "DOUBLE": "DOUBLE PRECISION",
    "FLOAT": "REAL",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
    "DATE": "DATE",
}


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    not_null: bool


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()


def pg_type(duck_type: str) -> str:
    duck_type = duck_type.upper().strip()
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", duck_type)
    if decimal:
        return f"NUMERIC({int(decimal[1])},{int(decimal[2])})"
    if duck_type in _PG_TYPES:
        return _PG_TYPES[duck_type]
    raise WarehouseError(f"no PostgreSQL type for the DuckDB column type {duck_type}")


def table_specs(source) -> list[TableSpec]:
    """Every table of the DuckDB file's main schema, demo tables first in their declared order."""
    columns: dict[str, list[Column]] = {}
    for table, name, data_type, nullable in source.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall():
        columns.setdefault(table, []).append(Column(name, pg_type(data_type), nullable == "NO"))
    keys: dict[str, tuple[str, ...]] = {}
    unique: dict[str, list[tuple[str, ...]]] = {}
    for table, kind, names in source.execute(
            "SELECT table_name, constraint_type, constraint_column_names FROM duckdb_constraints() "
            "WHERE schema_name = 'main' AND constraint_type IN ('PRIMARY KEY', 'UNIQUE') "
            "ORDER BY table_name, constraint_index").fetchall():
        if kind == "PRIMARY KEY":
            keys[table] = tuple(names)
        else:
            unique.setdefault(table, []).append(tuple(names))
    declared = [t for t, _ in TABLES]
    missing = [t for t in declared if t not in columns]
    if missing:
        raise WarehouseError(f"not a current demo warehouse: it has no table {', '.join(missing)}",
                             hint="rebuild it with `canon demo`")
    order = declared + sorted(t for t in columns if t not in declared)
    return [TableSpec(t, tuple(columns[t]), keys.get(t, ()), tuple(unique.get(t, ()))) for t in order]


def load_demo_into_postgres(duckdb_path: str | os.PathLike, url: str, *, batch_rows: int = BATCH_ROWS,
                            log: Callable[[str], None] | None = None) -> dict[str, int]:
    """Copy every demo table from the DuckDB file at `duckdb_path` into PostgreSQL at `url`.

    Replaces the tables if they exist. Returns {table: row count in PostgreSQL}."""
    import duckdb
    import psycopg

    from .warehouses.postgres import _connect_error, _describe_target, _first_line

    started = time.perf_counter()
    try:
        source = duckdb.connect(str(duckdb_path), read_only=True)
    except duckdb.Error as error:
        raise WarehouseError(f"cannot open the demo DuckDB file {duckdb_path}: {_first_line(error)}") from None
    try:
        specs = table_specs(source)
        from psycopg.conninfo import conninfo_to_dict

        where = _describe_target(conninfo_to_dict(url))
        try:
            target = _connect_creating_database(url, where)
        except psycopg.Error as error:
            raise _connect_error(where, error) from None
        try:
            counts = _load(source, target, specs, batch_rows, log)
            target.commit()
            target.autocommit = True
            for spec in specs:
                target.execute(psycopg.sql.SQL("ANALYZE {}").format(psycopg.sql.Identifier(spec.name)))
        except (psycopg.Error, duckdb.Error) as error:
            raise WarehouseError(f"loading the demo into PostgreSQL at {where} failed: {_first_line(error)}",
                                 hint="the previous tables, if any, are unchanged; the user needs CREATE on "
                                      "the schema and no views may depend on the demo tables") from None
        finally:
            target.close()
    finally:
        source.close()
    if log:
        log(f"loaded {sum(counts.values()):,} rows in {time.perf_counter() - started:.1f} s")
    return counts


def _connect_creating_database(url: str, where: str):
    """Connect to `url`; when its database does not exist, create it (through the `postgres` database)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        return psycopg.connect(url, autocommit=False, application_name="canon demo")
    except psycopg.OperationalError as error:
        params = conninfo_to_dict(url)
        name = params.get("dbname")
        if not name or f'database "{name}" does not exist' not in str(error) or name == "postgres":
            raise
        original = error
    try:
        with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True,
                             application_name="canon demo") as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        from .warehouses.postgres import _first_line

        raise WarehouseError(f"cannot connect to PostgreSQL at {where}: database \"{name}\" does not exist, "
                             f"and creating it failed: {_first_line(error)}",
                             hint=f"create it (e.g. `createdb {name}`) or use a user allowed to") from original
    return psycopg.connect(url, autocommit=False, application_name="canon demo")


def _load(source, target, specs: list[TableSpec], batch_rows: int, log) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    from psycopg import sql

    options = pa_csv.WriteOptions(include_header=False, batch_size=batch_rows)
    counts: dict[str, int] = {}
    with target.cursor() as cursor:
        # drop all first: one statement, one lock acquisition order
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
            sql.SQL(", ").join(sql.Identifier(spec.name) for spec in specs)))
        for spec in specs:
            table = sql.Identifier(spec.name)
            cursor.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(
                sql.SQL("{} {}{}").format(sql.Identifier(c.name), sql.SQL(c.pg_type),
                                          sql.SQL(" NOT NULL" if c.not_null else ""))
                for c in spec.columns)))
            names = [c.name for c in spec.columns]
            query = "SELECT " + ", ".join(_duck_ident(n) for n in names) + " FROM " + _duck_ident(spec.name)
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
                table, sql.SQL(", ").join(sql.Identifier(n) for n in names))
            with cursor.copy(copy_sql) as copy:
                for batch in source.sql(query).to_arrow_reader(batch_rows):
                    if batch.num_rows == 0:
                        continue
                    buffer = io.BytesIO()
                    pa_csv.write_csv(pa.Table.from_batches([batch]), buffer, options)
                    copy.write(buffer.getbuffer())
            # keys after the rows: one bulk index build instead of row-by-row maintenance
            if spec.primary_key:
                cursor.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                    table, sql.SQL(", ").join(sql.Identifier(n) for n in spec.primary_key)))
            for columns in spec.unique:
                cursor.execute(sql.SQL("ALTER TABLE {} ADD UNIQUE ({})").format(
                    table, sql.SQL(", ").join(sql.Identifier(n) for n in columns)))
            cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
            counts[spec.name] = cursor.fetchone()[0]
            expected = source.execute("SELECT count(*) FROM " + _duck_ident(spec.name)).fetchall()[0][0]
            if counts[spec.name] != expected:  # pragma: no cover - COPY either loads every row or fails
                raise WarehouseError(f"loaded {counts[spec.name]} rows into {spec.name}, expected {expected}")
            if log:
                log(f"{spec.name}: {counts[spec.name]:,} rows")
    return counts


def _duck_ident(name: str) -> str:
    """A quoted DuckDB identifier for a name of the fixed demo schema."""
    return '"' + name.replace('"', '""') + '"'

"""Export a DuckDB warehouse to a folder of parquet files, one `<table>.parquet` per table.

The folder is what the file-based engines read: `spark-local:<folder>` (server/warehouses/spark.py) and
`chdb:<folder>` (server/warehouses/chdb.py) register each file as a table of the same name.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

PARQUET_SUFFIX = ".parquet"


def export_parquet(duckdb_path: str | os.PathLike, folder: str | os.PathLike) -> dict[str, Path]:
    """Write every table of the DuckDB file at `duckdb_path` to `folder`/<table>.parquet. Returns {table: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        # the relational API names tables as values, never as SQL text
        tables = con.table("duckdb_tables").filter(duckdb.ColumnExpression("temporary") == duckdb.ConstantExpression(False))
        names = sorted(row[0] for row in tables.select("table_name").fetchall())
        for name in names:
            target = folder / f"{name}{PARQUET_SUFFIX}"
            con.table(name).write_parquet(str(target))
            written[name] = target
    return written


def parquet_tables(folder: str | os.PathLike) -> dict[str, Path]:
    """{table name: parquet file} for the `<table>.parquet` files directly in `folder`."""
    folder = Path(folder)
    return {p.name[: -len(PARQUET_SUFFIX)]: p for p in sorted(folder.iterdir())
            if p.is_file() and p.name.endswith(PARQUET_SUFFIX)}


def tables_at_url(url: str, prefix: str, engine: str) -> dict[str, Path]:
    """The parquet tables behind a `<prefix><folder>` warehouse URL; clear errors when there are none."""
    from canon.compiler.errors import WarehouseError

    if not url.startswith(prefix):
        raise WarehouseError(f"not a {engine} URL: {url}", hint=f"use {prefix}<folder of parquet files>")
    folder = Path(url[len(prefix):])
    if not folder.is_dir():
        raise WarehouseError(f"{engine} warehouse folder {folder} does not exist",
                             hint=f"use {prefix}<folder of parquet files>, one <table>.parquet per table")
    tables = parquet_tables(folder)
    if not tables:
        raise WarehouseError(f"no <table>.parquet files in {folder}",
                             hint="export a DuckDB warehouse with server.parquet_export.export_parquet")
    return tables

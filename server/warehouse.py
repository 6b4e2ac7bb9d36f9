"""Warehouses: run compiled SQL, return column names and rows.

DuckDB (a file path) is the embedded default; PostgreSQL (a postgresql:// URL) is external.
Each warehouse names its sqlglot dialect, so the compiler renders SQL it understands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from canon.compiler.errors import WarehouseError


class Warehouse(Protocol):
    dialect: str
    url: str

    def execute(self, sql: str) -> tuple[list[str], list[tuple]]: ...

    def close(self) -> None: ...


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def open_warehouse(url: str) -> Warehouse:
    if is_postgres_url(url):
        from .postgres import PostgresWarehouse

        return PostgresWarehouse(url, read_only=True)  # queries only read; feedback writes on its own connection
    if url.startswith("spark-local:"):  # a local-mode SparkSession over a folder of parquet files
        from .spark import SparkWarehouse

        return SparkWarehouse(url)
    if url.startswith("chdb:"):  # in-process ClickHouse (chDB) over a folder of parquet files
        from .clickhouse_local import ChdbWarehouse

        return ChdbWarehouse(url)
    return DuckDBWarehouse(url)


class DuckDBWarehouse:
    dialect = "duckdb"

    def __init__(self, path: str):
        self.url = str(path)
        if not Path(path).is_file():
            raise WarehouseError(f"warehouse {path} does not exist",
                                 hint="run `canon demo` to build the demo warehouse, or point --warehouse / "
                                      "CANON_WAREHOUSE at a DuckDB file or a postgresql:// URL")
        import duckdb

        try:
            self._connection = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as error:
            raise WarehouseError(f"cannot open DuckDB warehouse {path}: {error}") from None

    def execute(self, sql: str) -> tuple[list[str], list[tuple]]:
        import duckdb

        try:
            cursor = self._connection.cursor()  # one cursor per call: safe across threads
            try:
                result = cursor.execute(sql)
                names = [d[0] for d in result.description]
                return names, result.fetchall()
            finally:
                cursor.close()
        except duckdb.Error as error:
            raise WarehouseError(f"the warehouse rejected the query: {str(error).splitlines()[0]}",
                                 hint="check that the warehouse has the tables the catalog names") from None

    def close(self) -> None:
        self._connection.close()

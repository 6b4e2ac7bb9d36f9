"""Warehouses behind one protocol (base.py): DuckDB, PostgreSQL, Spark, ClickHouse (chDB).

    warehouse = open_warehouse(url)     # a DuckDB file, postgresql://..., spark-local:DIR or chdb:DIR
    stream = warehouse.stream(sql, timeout_s=30, ticket=ticket, batch_rows=10_000)
    names, rows = warehouse.execute(sql, timeout_s=30, ticket=ticket)

Each engine is its own module, imported only when its URL is opened (drivers stay unloaded).
"""

from __future__ import annotations

from .base import DEFAULT_BATCH_ROWS, QueryTicket, Stream, Warehouse, collect
from .postgres import is_postgres_url  # imports no driver: front ends may import it from .postgres too

__all__ = ["DEFAULT_BATCH_ROWS", "QueryTicket", "Stream", "Warehouse", "collect", "is_postgres_url",
           "open_warehouse"]


def open_warehouse(url: str) -> Warehouse:
    if is_postgres_url(url):
        from .postgres import PostgresWarehouse

        return PostgresWarehouse(url, read_only=True)  # queries only read; feedback writes on its own connection
    if url.startswith("spark-local:"):  # a local-mode SparkSession over a folder of parquet files
        from .spark import SparkWarehouse

        return SparkWarehouse(url)
    if url.startswith("chdb:"):  # in-process ClickHouse (chDB) over a folder of parquet files
        from .chdb import ChdbWarehouse

        return ChdbWarehouse(url)
    from .duckdb import DuckDBWarehouse

    return DuckDBWarehouse(url)

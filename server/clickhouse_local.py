"""ClickHouse, in process (chDB), as a warehouse: `chdb:<folder of parquet files>`.

`ChdbWarehouse(url)` opens an in-memory chDB session and loads each `<table>.parquet` of the folder
into a Memory table named `<table>`, so Canon's ClickHouse SQL runs on the real ClickHouse engine. The
session runs in UTC (stored times are naive UTC). Meant for tests and small data.

Needs `chdb` (pip install 'canon-semantic[test]').
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlglot import exp

from canon.compiler.errors import WarehouseError

from .parquet_export import tables_at_url

URL_PREFIX = "chdb:"


def is_chdb_url(url: str) -> bool:
    return url.startswith(URL_PREFIX)


def load_table_sql(table: str, parquet_path: str | Path) -> str:
    """CREATE TABLE <table> ENGINE=Memory AS SELECT * FROM file('<path>', Parquet), as a sqlglot tree."""
    source = exp.Table(this=exp.Anonymous(this="file", expressions=[exp.Literal.string(str(parquet_path)),
                                                                    exp.column("Parquet")]))
    create = exp.Create(this=exp.Table(this=exp.to_identifier(table, quoted=True)), kind="TABLE",
                        expression=exp.select(exp.Star()).from_(source),
                        properties=exp.Properties(expressions=[exp.EngineProperty(this=exp.to_identifier("Memory"))]))
    return create.sql(dialect="clickhouse")


def _set_sql(name: str, value: str) -> str:
    return exp.Set(expressions=[exp.SetItem(this=exp.EQ(this=exp.column(name), expression=exp.Literal.string(value)))]
                   ).sql(dialect="clickhouse")


class ChdbWarehouse:
    dialect = "clickhouse"

    def __init__(self, url: str):
        tables = tables_at_url(url, URL_PREFIX, "chDB")
        try:
            import chdb
        except ImportError:
            raise WarehouseError("ClickHouse (chDB) support needs chdb", hint="pip install 'chdb>=4,<5'") from None
        self.url = url
        self._lock = threading.Lock()  # one chDB connection, used by one query at a time
        self._connection = chdb.connect(":memory:")
        try:
            self._run(_set_sql("session_timezone", "UTC"))
            for name, path in tables.items():
                self._run(load_table_sql(name, path.resolve()))
        except Exception:
            self._connection.close()
            raise
        self.tables = sorted(tables)

    def _run(self, sql: str) -> tuple[list[str], list[tuple]]:
        with self._lock:
            cursor = self._connection.cursor()
            try:
                cursor.execute(sql)
                names = list(cursor.column_names() or [])
                rows = [tuple(row) for row in cursor.fetchall()] if names else []
            finally:
                cursor.close()
        return names, rows

    def execute(self, sql: str) -> tuple[list[str], list[tuple]]:
        try:
            return self._run(sql)
        except RuntimeError as error:  # chdb's ChdbError is a RuntimeError
            raise WarehouseError(f"the warehouse rejected the query: {_first_line(error)}",
                                 hint="check that the warehouse has the tables the catalog names") from None

    def close(self) -> None:
        self._connection.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

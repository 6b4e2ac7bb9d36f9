"""ClickHouse, in process (chDB), as a warehouse: `chdb:<folder of parquet files>`.

`ChdbWarehouse(url)` opens an in-memory chDB session and loads each `<table>.parquet` of the folder
into a Memory table named `<table>`, so Canon's ClickHouse SQL runs on the real ClickHouse engine. The
session runs in UTC (stored times are naive UTC). Meant for tests and small data.

One query runs at a time on the session (a lock; waiting for it ends with the query's cancel or
timeout). chDB's DB-API cursor parses the whole result before returning it, so the rows are held whole
and handed out in batches. chDB cannot interrupt a query from its own connection (a streaming result's
`cancel()` from another thread waits for the query to end, and a progress callback cannot abort it),
but a second connection to the same in-process server can `KILL QUERY`: every query carries a unique
marker comment, and a cancel or the timeout kills the query with that marker (QUERY_WAS_CANCELLED),
inside the engine. The session's `max_execution_time` is set to the query's timeout as well, so the
engine also stops it on its own (TIMEOUT_EXCEEDED).

Needs `chdb` (pip install 'canon-semantic[test]').
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from sqlglot import exp

from canon.compiler.errors import QueryCancelledError, WarehouseError

from ..parquet_export import tables_at_url
from .base import (DEFAULT_BATCH_ROWS, QueryTicket, RunningQuery, Stream, StreamingWarehouse, slice_batches,
                   timeout_error)

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


class ChdbWarehouse(StreamingWarehouse):
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
        self._control = None  # a second connection, to kill a running query (opened on first use)
        self._control_lock = threading.Lock()
        try:
            self._run(_set_sql("session_timezone", "UTC"))
            for name, path in tables.items():
                self._run(load_table_sql(name, path.resolve()))
        except Exception:
            self._connection.close()
            raise
        self.tables = sorted(tables)

    def _run(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Run one statement (the lock held by the caller); a new cursor each time: a cursor that saw an
        error misreads the next result."""
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql)
            names = list(cursor.column_names() or [])
            rows = [tuple(row) for row in cursor.fetchall()] if names else []
        finally:
            cursor.close()
        return names, rows

    def stream(self, sql: str, *, timeout_s: float | None = None, ticket: QueryTicket | None = None,
               batch_rows: int = DEFAULT_BATCH_ROWS) -> Stream:
        run = RunningQuery(ticket, timeout_s, batch_rows)
        marker = uuid.uuid4().hex

        def start():
            while not self._lock.acquire(timeout=0.05):  # another query runs: wait, while not stopped
                run.check()
            try:
                run.on_cancel(lambda: self._kill(marker), repeat_s=0.05)
                self._run(_set_sql("max_execution_time", f"{timeout_s:g}" if timeout_s else "0"))
                names, rows = self._run(f"/* canon-query {marker} */ {sql}")
            finally:
                self._lock.release()
            return names, slice_batches(rows, run.batch_rows)

        return run.stream(start, lambda error: _translate(error, timeout_s))

    def _kill(self, marker: str) -> None:
        """Kill the query carrying `marker` (from a second connection: the first is busy running it)."""
        import chdb

        with self._control_lock:
            if self._control is None:
                self._control = chdb.connect(":memory:")
            cursor = self._control.cursor()
            try:
                # the marker is our own hex uuid; split in two so that this KILL does not match itself
                cursor.execute(f"KILL QUERY WHERE position(query, concat('canon-query ', '{marker}')) > 0 ASYNC")
            finally:
                cursor.close()

    def close(self) -> None:
        with self._control_lock:
            if self._control is not None:
                self._control.close()
                self._control = None
        self._connection.close()


def _translate(error: Exception, timeout_s: float | None) -> Exception | None:
    if not isinstance(error, RuntimeError):  # chdb's ChdbError is a RuntimeError
        return None
    message = _first_line(error)
    if "TIMEOUT_EXCEEDED" in message:  # max_execution_time
        return timeout_error(timeout_s)
    if "QUERY_WAS_CANCELLED" in message:
        return QueryCancelledError(f"ClickHouse cancelled the query: {message}")
    return WarehouseError(f"the warehouse rejected the query: {message}",
                          hint="check that the warehouse has the tables the catalog names")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

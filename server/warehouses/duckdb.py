"""DuckDB (a file path) as a warehouse: the embedded default, opened read-only.

Each query runs on its own cursor (a DuckDB connection of its own over the shared database), so
queries in different threads do not wait for one another. The result streams: DuckDB's Python
`execute` leaves a streaming result and `fetchmany(batch_rows)` pulls it chunk by chunk, so memory
stays bounded (measured on 20M rows x 3 columns: fetchmany peaks at ~90 MB, fetchall at ~4.8 GB;
`to_arrow_reader` on a cursor materialises the result first, ~1.7 GB). A cancel or the timeout calls
`cursor.interrupt()`, which stops the query inside DuckDB, in `execute` or between fetches; an
interrupt landing before DuckDB has started the query is dropped, so it is repeated until the query
ends (base.RunningQuery).
"""

from __future__ import annotations

from pathlib import Path

from canon.compiler.errors import QueryCancelledError, WarehouseError, WarehouseUnavailableError

from .base import DEFAULT_BATCH_ROWS, QueryTicket, RunningQuery, Stream, StreamingWarehouse, fetch_batches

_MISSING_HINT = ("run `canon demo` to build the demo warehouse, or point --warehouse / "
                 "CANON_WAREHOUSE at a DuckDB file or a postgresql:// URL")


class DuckDBWarehouse(StreamingWarehouse):
    dialect = "duckdb"

    def __init__(self, path: str):
        self.url = str(path)
        if not Path(path).is_file():
            raise WarehouseUnavailableError(f"warehouse {path} does not exist", hint=_MISSING_HINT)
        import duckdb

        try:
            self._connection = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as error:
            raise WarehouseUnavailableError(f"cannot open DuckDB warehouse {path}: {error}") from None

    def stream(self, sql: str, *, timeout_s: float | None = None, ticket: QueryTicket | None = None,
               batch_rows: int = DEFAULT_BATCH_ROWS) -> Stream:
        run = RunningQuery(ticket, timeout_s, batch_rows)

        def start():
            cursor = self._connection.cursor()  # one cursor per query: safe across threads
            run.defer(cursor.close)
            run.on_cancel(cursor.interrupt, repeat_s=0.01)
            cursor.execute(sql)
            if cursor.description is None:  # a statement without a result
                return [], iter(())
            return [d[0] for d in cursor.description], fetch_batches(cursor.fetchmany, run.batch_rows)

        return run.stream(start, _translate)

    def close(self) -> None:
        self._connection.close()


def _translate(error: Exception) -> Exception | None:
    import duckdb

    if isinstance(error, duckdb.InterruptException):  # interrupted, not by this query's ticket
        return QueryCancelledError("the query was cancelled (interrupted)")
    if isinstance(error, duckdb.ConnectionException):  # the warehouse was closed
        return WarehouseUnavailableError(f"the DuckDB warehouse is not open: {_first_line(error)}")
    if isinstance(error, duckdb.Error):
        return WarehouseError(f"the warehouse rejected the query: {_first_line(error)}",
                              hint="check that the warehouse has the tables the catalog names")
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

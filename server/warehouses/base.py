"""The warehouse protocol: every engine runs SQL the same way, so the runtime can bound and stop it.

    ticket = QueryTicket()                       # one running query; cancel() from any thread
    stream = warehouse.stream(sql, timeout_s=30, ticket=ticket, batch_rows=10_000)
    stream.columns                               # column names, known before the first row
    for batch in stream: ...                     # lists of tuples, at most batch_rows each
    names, rows = warehouse.execute(sql, timeout_s=30)   # the same, collected

A timeout and a cancel both stop the query *inside the engine* (DuckDB interrupt, a PostgreSQL
cancel request plus a server-side statement_timeout, a Spark job-group cancel), not only the
waiting: afterwards the engine is idle. A timed-out query raises QueryTimeoutError (SQLSTATE 57014,
HTTP 504); a cancelled one QueryCancelledError (57014).
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator, Protocol

from canon.compiler.errors import QueryCancelledError, QueryTimeoutError, WarehouseError

DEFAULT_BATCH_ROWS = 10_000


class QueryTicket:
    """A handle on one running query. The engine registers how to stop it (`on_cancel`); `cancel()`
    may come from any thread (a CancelRequest, a client that went away, the time cap) and before,
    during or after the query; the first reason wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stoppers: list[Callable[[], None]] = []
        self.reason: str | None = None  # None, "cancelled" or "timeout"

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    def on_cancel(self, stop: Callable[[], None]) -> None:
        """Register how to stop the engine's query; called at once when already cancelled."""
        with self._lock:
            if self.reason is None:
                self._stoppers.append(stop)
                return
        _quietly(stop)

    def cancel(self, reason: str = "cancelled") -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            stoppers, self._stoppers = self._stoppers, []
        for stop in stoppers:
            _quietly(stop)

    def error(self, timeout_s: float | None = None) -> WarehouseError:
        """The error that ends a query stopped for `self.reason`."""
        if self.reason == "timeout":
            limit = f"the {timeout_s:g} s limit" if timeout_s else "its time limit"
            return QueryTimeoutError(f"the query ran longer than {limit} and was cancelled",
                                     hint="narrow it with filters or a time range, or ask for a longer timeout "
                                          "(`query_timeout_s` in canon.yml, or per request within the limit)")
        return QueryCancelledError("the query was cancelled (canceling statement due to user request)")


class Stream(Protocol):
    columns: list[str]

    def __iter__(self) -> Iterator[list[tuple]]: ...

    def close(self) -> None: ...


class Warehouse(Protocol):
    dialect: str
    url: str

    def stream(self, sql: str, *, timeout_s: float | None = None, ticket: QueryTicket | None = None,
               batch_rows: int = DEFAULT_BATCH_ROWS) -> Stream: ...

    def execute(self, sql: str, *, timeout_s: float | None = None,
                ticket: QueryTicket | None = None) -> tuple[list[str], list[tuple]]: ...

    def close(self) -> None: ...


def _quietly(stop: Callable[[], None]) -> None:
    try:
        stop()
    except Exception:  # noqa: BLE001 — a query that already ended cannot be stopped, and need not be
        pass

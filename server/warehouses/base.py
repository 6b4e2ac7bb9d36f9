"""The warehouse protocol: every engine runs SQL the same way, so the runtime can bound and stop it.

    ticket = QueryTicket()                       # one running query; cancel() from any thread
    stream = warehouse.stream(sql, timeout_s=30, ticket=ticket, batch_rows=10_000)
    stream.columns                               # column names, known before the first row
    for batch in stream: ...                     # lists of tuples, at most batch_rows each
    names, rows = warehouse.execute(sql, timeout_s=30)   # the same, collected

A timeout and a cancel both stop the query *inside the engine* (DuckDB interrupt, a PostgreSQL
cancel request plus a server-side statement_timeout, a Spark job-group cancel, a chDB KILL QUERY plus
max_execution_time), not only the waiting: afterwards the engine is idle. A timed-out query raises QueryTimeoutError (SQLSTATE 57014,
HTTP 504); a cancelled one QueryCancelledError (57014).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Protocol, Sequence

from canon.compiler.errors import CanonError, QueryCancelledError, QueryTimeoutError, WarehouseError

from .deadlines import after

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

    def on_cancel(self, stop: Callable[[], None]) -> Callable[[], None]:
        """Register how to stop the engine's query; called at once when already cancelled. Returns
        `forget`, which the engine MUST call when the query ends: a later cancel must never reach a
        connection that went back to a pool and runs someone else's query."""
        with self._lock:
            if self.reason is None:
                self._stoppers.append(stop)
                return lambda: self._forget(stop)
        _quietly(stop)
        return lambda: None

    def _forget(self, stop: Callable[[], None]) -> None:
        with self._lock:
            if stop in self._stoppers:
                self._stoppers.remove(stop)

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
            return timeout_error(timeout_s)
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


def timeout_error(timeout_s: float | None = None) -> QueryTimeoutError:
    """The error of a query stopped at its time limit (by our timer or by the engine's own timeout)."""
    limit = f"the {timeout_s:g} s limit" if timeout_s else "its time limit"
    return QueryTimeoutError(f"the query ran longer than {limit} and was cancelled",
                             hint="narrow it with filters or a time range, or ask for a longer timeout "
                                  "(`query_timeout_s` in canon.yml, or per request within the limit)")


# ------------------------------------------------------------------ what every engine shares
#
# An engine's `stream` is written as
#
#     run = RunningQuery(ticket, timeout_s, batch_rows)      # raises at once when already cancelled
#     def start():                                           # runs "in the engine": stops reach it
#         cursor = ...; run.defer(cursor.close)              # cleanups, run once when the query ends
#         run.on_cancel(cursor.interrupt, repeat_s=0.01)     # how a cancel or the timer stops it
#         cursor.execute(sql)
#         return column_names, fetch_batches(cursor.fetchmany, run.batch_rows)
#     return run.stream(start, translate)                    # translate: engine error -> CanonError
#
# and `execute` is `collect(stream(...))` for every engine (StreamingWarehouse).


class RunningQuery:
    """One query's life on an engine: its ticket (a new one when the caller gave none), the timer that
    cancels it with reason "timeout", the engine's stop, and the cleanups run once when it ends.

    A stop that lands before the engine has started the query is lost on every engine here (DuckDB's
    interrupt, a PostgreSQL cancel request and a Spark job-group cancel only reach a running query), so
    `on_cancel(stop, repeat_s=...)` repeats the stop while an engine call is in flight, until the query
    ends. After `close()` no stop reaches the engine any more: a connection back in a pool never gets a
    late cancel."""

    def __init__(self, ticket: QueryTicket | None, timeout_s: float | None,
                 batch_rows: int = DEFAULT_BATCH_ROWS):
        if not isinstance(batch_rows, int) or batch_rows < 1:
            raise ValueError(f"batch_rows must be a positive integer, got {batch_rows!r}")
        self.ticket = ticket if ticket is not None else QueryTicket()
        self.timeout_s = timeout_s
        self.batch_rows = batch_rows
        self.fired = False  # a stop reached the engine (a connection that saw one is best not reused)
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._busy = False  # an engine call is in flight
        self._cleanups: list[Callable[[], None]] = []
        self._forgets: list[Callable[[], None]] = []
        self._timer = None  # the time limit (deadlines.py: one watcher thread for every query)
        if timeout_s is not None and timeout_s <= 0:
            self.ticket.cancel("timeout")  # no time left
        self.check()
        if timeout_s is not None:
            ticket = self.ticket
            self._timer = after(timeout_s, lambda: ticket.cancel("timeout"))

    # ---------------------------------------------------------------- for the engine

    def defer(self, cleanup: Callable[[], None]) -> None:
        """Run `cleanup` when the query ends (last registered, first run; errors are swallowed)."""
        self._cleanups.append(cleanup)

    def on_cancel(self, stop: Callable[[], None], *, repeat_s: float | None = None) -> None:
        """Stop the engine's query when the ticket is cancelled (and raise the ticket's error if it
        already is); with `repeat_s`, stop again every `repeat_s` while an engine call is in flight,
        until the query ends."""

        def fire() -> None:
            with self._lock:
                if self._ended.is_set():
                    return
                self.fired = True
                _quietly(stop)
            if repeat_s:
                threading.Thread(target=self._repeat, args=(stop, repeat_s), daemon=True,
                                 name="canon-query-stop").start()

        self._forgets.append(self.ticket.on_cancel(fire))
        self.check()  # cancelled meanwhile: do not start the query at all

    def check(self) -> None:
        """Raise the ticket's error when the query was cancelled or timed out."""
        if self.ticket.cancelled:
            raise self.ticket.error(self.timeout_s)

    @contextmanager
    def engine(self):
        """Around a blocking engine call (execute, a fetch): repeated stops reach it, and a `close()`
        from another thread meanwhile becomes a cancel (the cleanups wait for the call to return)."""
        with self._lock:
            if self._ended.is_set():
                raise _Ended
            self._busy = True
        try:
            yield
        finally:
            with self._lock:
                self._busy = False

    def failure(self, error: Exception, translate: Callable[[Exception], Exception | None]) -> Exception:
        """The error to raise for `error`: the ticket's when the query was stopped (whatever the engine
        said), else the engine's translated."""
        if self.ticket.cancelled:
            return self.ticket.error(self.timeout_s)
        if isinstance(error, CanonError):
            return error
        return translate(error) or error

    def stream(self, start: Callable[[], tuple[Sequence[str], Iterator[list[tuple]]]],
               translate: Callable[[Exception], Exception | None]) -> "QueryStream":
        """Start the query (`start` returns the column names and an iterator of batches) and wrap it."""
        try:
            with self.engine():
                columns, batches = start()
            self.check()
        except Exception as error:
            failure = self.failure(error, translate)
            self.close()
            raise failure from None
        except BaseException:
            self.close()
            raise
        return QueryStream(self, columns, batches, translate)

    def close(self) -> None:
        """The query ended: stop the timer, forget the stop, run the cleanups (once). Called from another
        thread while an engine call is in flight, it cancels the ticket instead: the engine call fails,
        and its thread ends the query."""
        with self._lock:  # waits for a stop in flight: no stop runs after this (nor during the cleanups)
            if self._ended.is_set():
                return
            busy = self._busy
            if not busy:
                self._ended.set()
        if busy:
            self.ticket.cancel("cancelled")
            return
        if self._timer is not None:
            self._timer.cancel()
        for forget in self._forgets:
            forget()
        for cleanup in reversed(self._cleanups):
            _quietly(cleanup)

    def _repeat(self, stop: Callable[[], None], every_s: float) -> None:
        while not self._ended.wait(every_s):
            with self._lock:
                if self._ended.is_set():
                    return
                if self._busy:
                    _quietly(stop)


class _Ended(Exception):
    """An engine call on a query that has ended (closed from another thread)."""


class QueryStream:
    """The Stream every engine returns: `columns`, then batches (lists of at most batch_rows tuples);
    the ticket is checked before each batch; the query ends (cleanups run) when the batches run out,
    on an error, or on `close()`."""

    def __init__(self, run: RunningQuery, columns: Sequence[str], batches: Iterator[list[tuple]],
                 translate: Callable[[Exception], Exception | None]):
        self.columns = list(columns)
        self._run, self._batches, self._translate = run, iter(batches), translate
        self._done = False

    def __iter__(self) -> QueryStream:
        return self

    def __next__(self) -> list[tuple]:
        if self._done:
            raise StopIteration
        try:
            self._run.check()
            with self._run.engine():
                batch = next(self._batches)
            self._run.check()  # stopped meanwhile (a close from another thread): the batch is dropped
        except (StopIteration, _Ended):
            self.close()
            raise StopIteration from None
        except Exception as error:
            failure = self._run.failure(error, self._translate)
            self.close()
            raise failure from None
        except BaseException:
            self.close()
            raise
        return batch

    def close(self) -> None:
        self._done = True
        self._run.close()

    def __enter__(self) -> QueryStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fetch_batches(fetchmany: Callable[[int], Sequence[tuple]], batch_rows: int, *,
                  short_is_last: bool = False) -> Iterator[list[tuple]]:
    """Batches from a DB-API style `fetchmany` until it returns no rows (or, with `short_is_last`,
    fewer than asked: saves a round trip where a short fetch means the end, as a PostgreSQL FETCH)."""
    while True:
        rows = fetchmany(batch_rows)
        if not rows:
            return
        yield rows if isinstance(rows, list) else list(rows)
        if short_is_last and len(rows) < batch_rows:
            return


def slice_batches(rows: Sequence[tuple], batch_rows: int) -> Iterator[list[tuple]]:
    """Batches of a result the engine already holds whole."""
    for at in range(0, len(rows), batch_rows):
        yield list(rows[at:at + batch_rows])


def group_batches(rows: Iterable[tuple], batch_rows: int) -> Iterator[list[tuple]]:
    """Batches of a row iterator."""
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == batch_rows:
            yield batch
            batch = []
    if batch:
        yield batch


def collect(stream: Stream) -> tuple[list[str], list[tuple]]:
    """(column names, every row) of a stream, closed afterwards: what `execute` returns."""
    rows: list[tuple] = []
    try:
        for batch in stream:
            rows.extend(batch)
    finally:
        stream.close()
    return list(stream.columns), rows


class StreamingWarehouse:
    """`execute` for every engine: its own `stream`, collected."""

    def stream(self, sql: str, *, timeout_s: float | None = None, ticket: QueryTicket | None = None,
               batch_rows: int = DEFAULT_BATCH_ROWS) -> Stream:
        raise NotImplementedError

    def execute(self, sql: str, *, timeout_s: float | None = None,
                ticket: QueryTicket | None = None) -> tuple[list[str], list[tuple]]:
        return collect(self.stream(sql, timeout_s=timeout_s, ticket=ticket))

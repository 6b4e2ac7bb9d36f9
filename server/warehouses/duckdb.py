"""DuckDB (a file path) as a warehouse: the embedded default, opened read-only.

Each query runs on its own cursor (a DuckDB connection of its own over the shared database), so
queries in different threads do not wait for one another. The result streams: DuckDB's Python
`execute` leaves a streaming result and `fetchmany(batch_rows)` pulls it chunk by chunk, so memory
stays bounded (measured on 20M rows x 3 columns: fetchmany peaks at ~90 MB, fetchall at ~4.8 GB;
`to_arrow_reader` on a cursor materialises the result first, ~1.7 GB). A cancel or the timeout calls
`cursor.interrupt()`, which stops the query inside DuckDB, in `execute` or between fetches; an
interrupt landing before DuckDB has started the query is dropped, so it is repeated until the query
ends (base.RunningQuery).

The file is watched, not trusted: before each query its identity (device, inode, size, mtime) is
compared with the one that was opened. A replaced file (a new `canon demo`, a copy over it) is
reopened, so queries never read the old data; a deleted one makes every query (and so the status
ping) fail with WarehouseUnavailableError until a file is back. Reopening must first close the old
database: DuckDB keeps one instance per path in the process while any connection to it lives, and
would hand the old file back. So the queries still running on the old file are interrupted and fail
with a WarehouseUnavailableError saying to run them again.

Canon's own writes in a server (scheduled rollup refreshes, table exports) go through `writing()`: the
file is reopened read-write for the length of the write, and queries meanwhile run on that same
database (DuckDB's MVCC: they see the last commit, never half a refresh); afterwards it is reopened
read-only, so other processes may read the file again.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from canon.compiler.errors import QueryCancelledError, WarehouseError, WarehouseQueryError, WarehouseUnavailableError

from .base import DEFAULT_BATCH_ROWS, QueryTicket, RunningQuery, Stream, StreamingWarehouse, fetch_batches

_MISSING_HINT = ("run `canon demo` to build the demo warehouse, or point --warehouse / "
                 "CANON_WAREHOUSE at a DuckDB file or a postgresql:// URL")
CLOSE_WAIT_S = 5.0  # how long a reopen waits for interrupted queries to let go of the old file


@dataclass(eq=False)
class _Opened:
    """One opening of the file: its connection, the identity of the file it read, the cursors in use."""

    connection: object
    identity: tuple
    cursors: set = field(default_factory=set)
    retired: str | None = None  # why queries on it must stop (the file was replaced or deleted)
    writing: bool = False  # opened read-write by `writing()`: the file changes under it, by us


def _identity(path: str) -> tuple | None:
    """The file's identity; None when there is no file at `path`."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise WarehouseUnavailableError(f"cannot read the DuckDB warehouse file {path}: "
                                        f"{error.strerror or error}") from None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class DuckDBWarehouse(StreamingWarehouse):
    dialect = "duckdb"

    def __init__(self, path: str):
        self.url = str(path)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one `writing()` at a time in the process
        self._opened: _Opened | None = None
        self._closed = False
        identity = _identity(self.url)
        if identity is None or not Path(path).is_file():
            raise WarehouseUnavailableError(f"warehouse {path} does not exist", hint=_MISSING_HINT)
        self._opened = self._open(identity)

    def stream(self, sql: str, *, timeout_s: float | None = None, ticket: QueryTicket | None = None,
               batch_rows: int = DEFAULT_BATCH_ROWS) -> Stream:
        run = RunningQuery(ticket, timeout_s, batch_rows)
        held: dict = {}

        def start():
            opened, cursor = self._cursor()  # one cursor per query: safe across threads
            held["opened"] = opened
            run.defer(lambda: _release(opened, cursor))
            run.on_cancel(cursor.interrupt, repeat_s=0.01)
            cursor.execute(sql)
            if cursor.description is None:  # a statement without a result
                return [], iter(())
            return [d[0] for d in cursor.description], fetch_batches(cursor.fetchmany, run.batch_rows)

        def translate(error: Exception) -> Exception | None:
            opened = held.get("opened")
            if opened is not None and opened.retired:
                return WarehouseUnavailableError(f"{opened.retired} while the query ran", hint="run it again")
            return _translate(error)

        return run.stream(start, translate)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._opened is not None:
                try:
                    self._retire("the DuckDB warehouse was closed")
                except WarehouseUnavailableError:  # a query that would not stop: its connection dies with it
                    self._opened = None

    # ------------------------------------------------------------------ the file as it is now

    def _cursor(self) -> tuple[_Opened, object]:
        """A cursor over the file as it is on disk now (reopened when it was replaced)."""
        with self._lock:
            if self._closed:
                raise WarehouseUnavailableError("the DuckDB warehouse was closed")
            identity = _identity(self.url)
            if self._opened is not None and not self._opened.writing and self._opened.identity != identity:
                self._retire(f"the DuckDB warehouse file {self.url} was "
                             + ("deleted" if identity is None else "replaced"))
            if identity is None:
                raise WarehouseUnavailableError(f"the DuckDB warehouse file {self.url} is gone (deleted or moved)",
                                                hint="put the file back, or " + _MISSING_HINT)
            if self._opened is None:
                self._opened = self._open(identity)
            cursor = self._opened.connection.cursor()
            self._opened.cursors.add(cursor)
            return self._opened, cursor

    @contextmanager
    def writing(self):
        """A read-write connection to the file while the block runs (queries go on, on the same
        database). Fails with WarehouseUnavailableError when another process holds the file open."""
        with self._write_lock:
            opened = self._reopen_for_writing()
            cursor = opened.connection.cursor()
            try:
                yield cursor
            finally:
                _release(opened, cursor)
                with self._lock:  # back to read-only: the next query reopens the file as it is now
                    if self._opened is opened:
                        self._drain()
                        self._retire("the DuckDB warehouse was reopened read-only")

    def _reopen_for_writing(self) -> _Opened:
        import duckdb

        with self._lock:
            if self._closed:
                raise WarehouseUnavailableError("the DuckDB warehouse was closed")
            if self._opened is not None:
                self._drain()
                self._retire("the DuckDB warehouse was reopened for writing")
            try:
                self._opened = _Opened(duckdb.connect(self.url), (), writing=True)
            except duckdb.Error as error:
                raise WarehouseUnavailableError(f"cannot open DuckDB warehouse {self.url} for writing: "
                                                f"{_first_line(error)}",
                                                hint="another process holds the file open") from None
            return self._opened

    def _drain(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Let the queries running on the current opening finish (for up to `wait_s`) before it closes."""
        deadline = time.monotonic() + wait_s
        while self._opened.cursors and time.monotonic() < deadline:
            time.sleep(0.005)

    def _open(self, identity: tuple) -> _Opened:
        import duckdb

        try:
            return _Opened(duckdb.connect(self.url, read_only=True), identity)
        except duckdb.Error as error:
            raise WarehouseUnavailableError(f"cannot open DuckDB warehouse {self.url}: {_first_line(error)}") from None

    def _retire(self, reason: str) -> None:
        """Stop the queries on the current opening and close it (under the lock). Until its connection is
        closed the file cannot be reopened: then this raises, and the next query tries again."""
        import duckdb

        opened = self._opened
        opened.retired = opened.retired or reason
        deadline = time.monotonic() + CLOSE_WAIT_S
        while True:
            for cursor in list(opened.cursors):
                try:
                    cursor.interrupt()
                except duckdb.Error:
                    pass
            try:
                opened.connection.close()  # closes its idle cursors too
                break
            except duckdb.Error as error:  # a cursor is still inside a call: it ends at the interrupt
                if time.monotonic() > deadline:
                    raise WarehouseUnavailableError(f"{reason}; the queries still reading the old file did not "
                                                    f"stop: {_first_line(error)}", hint="try again") from None
                time.sleep(0.005)
        self._opened = None


def _release(opened: _Opened, cursor) -> None:
    opened.cursors.discard(cursor)
    try:
        cursor.close()
    except Exception:  # noqa: BLE001 — closed with its connection already
        pass


def _translate(error: Exception) -> Exception | None:
    import duckdb

    if isinstance(error, duckdb.InterruptException):  # interrupted, not by this query's ticket
        return QueryCancelledError("the query was cancelled (interrupted)")
    if isinstance(error, duckdb.ConnectionException):  # the warehouse was closed
        return WarehouseUnavailableError(f"the DuckDB warehouse is not open: {_first_line(error)}")
    for kinds, sqlstate in _user_errors():
        if isinstance(error, kinds):  # the request's values or types, not the warehouse: a 400
            return WarehouseQueryError(f"the warehouse rejected the query: {_first_line(error)}", sqlstate=sqlstate,
                                       hint="compare each dimension with a value of its own type "
                                            "(text with text, a number with a number, a date with a date)")
    if isinstance(error, duckdb.Error):
        return WarehouseError(f"the warehouse rejected the query: {_first_line(error)}",
                              hint="check that the warehouse has the tables the catalog names")
    return None


def _user_errors():
    """DuckDB's errors that a request causes (by class, most specific first) and their SQLSTATE."""
    import duckdb

    return ((duckdb.ConversionException, "22018"),  # invalid character value for cast
            (duckdb.OutOfRangeException, "22003"),  # numeric value out of range
            (duckdb.DataError, "22000"),  # other data exceptions (type mismatch of values)
            (duckdb.BinderException, "42804"),  # comparing unlike types, a cast the engine cannot bind
            (duckdb.InvalidInputException, "22023"))  # invalid parameter value


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

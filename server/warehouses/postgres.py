"""PostgreSQL as a warehouse (psycopg 3).

`PostgresWarehouse(url)` runs compiled SQL on a PostgreSQL server. It keeps a small pool of idle
connections so that the servers' worker threads do not pay a connection setup per query; each query
borrows one connection for its own use, so the warehouse is safe to share across threads.

Connections are lazy: constructing the warehouse does not touch the server (a server that is down makes
each query fail with a WarehouseUnavailableError saying why, which HTTP turns into a 503). `ping()`
checks reachability on demand.

A query (SELECT, WITH, VALUES, TABLE) runs as a server-side cursor in its own transaction: `DECLARE`,
then `FETCH batch_rows` per batch, so neither side holds more than one batch, and the column names are
known (from the portal's description) before the first row, even for an empty result. The transaction
carries the query's limits as local settings: `statement_timeout` (the query's timeout, applied by the
server to each statement) and `cursor_tuple_fraction = 1` (a cursor is read to its end: plan for the
whole result, not the first rows). A timeout or a cancel also sends a cancel request to the backend
(`cancel_safe`), so both stop the query in the server. A connection whose query saw a cancel is closed,
not pooled: a late cancel request can never reach the next query on it. Other statements (the
recommendation feedback loader's CREATE and INSERT) run on a plain cursor and commit before returning.

Every session runs in UTC (the server's TimeZone setting never shifts stored times) and, when
`statement_timeout_ms` is given, has a server-side statement timeout, reported as "query exceeded N ms".
With `read_only=True` sessions refuse writes (for query paths; the recommendation feedback loader writes
through `execute`, so it is not the default).
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any

from canon.compiler.errors import (QueryCancelledError, QueryTimeoutError, WarehouseError, WarehouseQueryError,
                                   WarehouseUnavailableError)

from .base import (DEFAULT_BATCH_ROWS, QueryTicket, RunningQuery, Stream, StreamingWarehouse, fetch_batches,
                   slice_batches, timeout_error)

DEFAULT_CONNECT_TIMEOUT_S = 5
DEFAULT_MAX_IDLE = 8
CANCEL_TIMEOUT_S = 5
CURSOR_NAME = "canon_stream"
_REPEAT_CANCEL_S = 0.05

_CONNECT_HINT = ("check that the server is running and reachable, and the host, port, user, password and "
                 "database in the URL (postgresql://user:password@host:port/database)")
_TIMEOUT_HINT = "narrow the request (fewer dimensions, a time range, a limit) or raise the query timeout"
# what a server-side cursor can run: DECLARE takes a SELECT, VALUES or TABLE (WITH ... SELECT included)
_QUERY_START = re.compile(r"(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*(select|with|values|table)\b", re.I | re.S)


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def redact(url: str) -> str:
    """The URL with any password replaced by ***, fit for messages and logs."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(url)
    except Exception:  # not parseable: show nothing that could hold a secret
        return "postgresql://…"
    if "password" not in params:
        return url
    if "://" in url:
        scheme, rest = url.split("://", 1)
        if "@" in rest.split("/", 1)[0]:
            userinfo, hostpart = rest.split("@", 1)
            user = userinfo.split(":", 1)[0]
            rest = f"{user}:***@{hostpart}"
        if "password=" in rest:  # password given as a query parameter
            head, _, query = rest.partition("?")
            query = "&".join("password=***" if p.startswith("password=") else p for p in query.split("&"))
            rest = f"{head}?{query}"
        return f"{scheme}://{rest}"
    params["password"] = "***"
    return make_conninfo(**params)


class PostgresWarehouse(StreamingWarehouse):
    dialect = "postgres"

    def __init__(self, url: str, *, statement_timeout_ms: int | None = None, read_only: bool = False,
                 connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S, max_idle: int = DEFAULT_MAX_IDLE):
        try:
            import psycopg  # noqa: F401 - fail early and clearly if the driver is missing
        except ImportError:  # pragma: no cover - psycopg is a dependency
            raise WarehouseError("PostgreSQL support needs psycopg",
                                 hint="pip install 'psycopg[binary]>=3.1'") from None
        from psycopg.conninfo import conninfo_to_dict

        if statement_timeout_ms is not None and (not isinstance(statement_timeout_ms, int) or statement_timeout_ms <= 0):
            raise ValueError(f"statement_timeout_ms must be a positive integer, got {statement_timeout_ms!r}")
        self.url = url
        self.statement_timeout_ms = statement_timeout_ms
        self.read_only = read_only
        try:
            params = conninfo_to_dict(url)
        except Exception as error:
            raise WarehouseError(f"malformed PostgreSQL URL {redact(url)}: {_first_line(error)}",
                                 hint="use postgresql://user:password@host:port/database") from None
        self._connect_kwargs: dict[str, Any] = {}
        if "connect_timeout" not in params:
            self._connect_kwargs["connect_timeout"] = max(1, round(connect_timeout_s))
        if "application_name" not in params:
            self._connect_kwargs["application_name"] = "canon"
        self._where = _describe_target(params)
        self._max_idle = max_idle
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ public

    def stream(self, sql: str, *, timeout_s: float | None = None, ticket: QueryTicket | None = None,
               batch_rows: int = DEFAULT_BATCH_ROWS) -> Stream:
        if "\x00" in sql:  # libpq ends the text at a NUL: the server would run a prefix of the query
            raise WarehouseQueryError("the query contains a NUL character (\\x00), which PostgreSQL text cannot hold",
                                      sqlstate="22021", hint="remove the NUL character from the filter's values")
        run = RunningQuery(ticket, timeout_s, batch_rows)
        local_ms = self._local_timeout_ms(timeout_s)
        held: dict[str, Any] = {}  # the connection and cursor of this query, once it has them

        def start():
            connection = held["connection"] = self._begin(local_ms)
            run.defer(lambda: self._end(connection, held.get("cursor"), stopped=run.fired))
            run.on_cancel(lambda: connection.cancel_safe(timeout=CANCEL_TIMEOUT_S), repeat_s=_REPEAT_CANCEL_S)
            # no parameters: psycopg sends the text as is (a '%' in a LIKE pattern stays a '%')
            if _QUERY_START.match(sql):
                cursor = held["cursor"] = connection.cursor(name=CURSOR_NAME)
                cursor.execute(sql)  # DECLARE, then the portal's description: the columns
                return [d.name for d in cursor.description], _read(connection, cursor, run.batch_rows)
            with connection.cursor() as cursor:  # a statement (a write, SHOW, EXPLAIN): run, then commit
                cursor.execute(sql)
                names = [d.name for d in cursor.description] if cursor.description else []
                rows = cursor.fetchall() if cursor.description else []
            connection.commit()
            return names, slice_batches(rows, run.batch_rows)

        return run.stream(start, lambda error: self._translate(error, held.get("connection"), timeout_s,
                                                                local_ms is not None))

    def ping(self) -> None:
        """Raise WarehouseError unless the server answers `SELECT 1`."""
        self.execute("SELECT 1")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            _quiet_close(connection)

    def __enter__(self) -> PostgresWarehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresWarehouse({redact(self.url)!r})"

    # ------------------------------------------------------------------ one query

    def _local_timeout_ms(self, timeout_s: float | None) -> int | None:
        """The statement_timeout to set for this query: its own timeout, when tighter than the session's."""
        if timeout_s is None or timeout_s <= 0:
            return None
        ms = max(1, math.ceil(timeout_s * 1000))
        return ms if not self.statement_timeout_ms or ms < self.statement_timeout_ms else None

    def _begin(self, local_ms: int | None):
        """A pooled (or new) connection in a fresh transaction carrying the query's settings."""
        import psycopg
        from psycopg import sql

        # one round trip (two statements, so the simple protocol: the value goes in as a quoted literal)
        setup = sql.SQL("BEGIN; SELECT set_config('cursor_tuple_fraction', '1', true)")
        if local_ms is not None:
            setup = sql.SQL("{}, set_config('statement_timeout', {}, true)").format(setup, sql.Literal(f"{local_ms}ms"))
        for attempt in range(2):
            connection, reused = self._acquire()
            try:
                connection.execute(setup)
                return connection
            except psycopg.OperationalError as error:
                broken = connection.closed or connection.broken
                self._end(connection, None, stopped=False)
                if broken and reused and attempt == 0:
                    continue  # a pooled connection went stale (server restart, idle kill): retry once on a new one
                if broken:
                    raise WarehouseUnavailableError(f"lost the connection to PostgreSQL at {self._where}: "
                                                    f"{_first_line(error)}", hint=_CONNECT_HINT) from None
                raise
            except BaseException:
                self._end(connection, None, stopped=False)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _end(self, connection, cursor, *, stopped: bool) -> None:
        """End the query's transaction (a query read to its end has committed already) and give the
        connection back to the pool, or close it when it is not clean or saw a cancel request."""
        from psycopg.pq import TransactionStatus

        if not stopped and not connection.closed and not connection.broken and \
                connection.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            try:
                connection.rollback()
            except Exception:  # noqa: BLE001 — then it is not clean, and is closed below
                pass
        if cursor is not None:
            try:
                cursor.close()  # after the transaction: the portal is gone, nothing is sent
            except Exception:  # noqa: BLE001
                pass
        if stopped:
            self._discard(connection)
        else:
            self._release(connection)

    def _translate(self, error: Exception, connection, timeout_s: float | None, local: bool) -> Exception | None:
        """A psycopg error as a Canon error (the ticket's own cancel and timeout are handled before)."""
        import psycopg

        if isinstance(error, psycopg.errors.QueryCanceled):
            if "statement timeout" in str(error):
                if local or not self.statement_timeout_ms:
                    return timeout_error(timeout_s if local else None)
                return QueryTimeoutError(f"query exceeded {self.statement_timeout_ms} ms (the statement timeout) "
                                         f"on PostgreSQL at {self._where}", hint=_TIMEOUT_HINT)
            return QueryCancelledError(f"PostgreSQL cancelled the query: {_first_line(error)}")
        if isinstance(error, psycopg.OperationalError) and connection is not None and \
                (connection.closed or connection.broken):
            return WarehouseUnavailableError(f"lost the connection to PostgreSQL at {self._where}: "
                                             f"{_first_line(error)}", hint=_CONNECT_HINT)
        sqlstate = getattr(error, "sqlstate", None) or ""
        if isinstance(error, psycopg.Error) and is_user_error(sqlstate):
            return WarehouseQueryError(f"the warehouse rejected the query: {_first_line(error)}", sqlstate=sqlstate,
                                       hint="compare each dimension with a value of its own type "
                                            "(text with text, a number with a number, a date with a date)")
        if isinstance(error, psycopg.Error):
            return WarehouseError(f"the warehouse rejected the query: {_first_line(error)}",
                                  hint=_query_hint(getattr(error, "sqlstate", None)))
        return None

    # ------------------------------------------------------------------ pool

    def _acquire(self):
        with self._lock:
            if self._closed:
                raise WarehouseUnavailableError("the PostgreSQL warehouse was closed")
            if self._idle:
                return self._idle.pop(), True
        return self._connect(), False

    def _release(self, connection) -> None:
        from psycopg.pq import TransactionStatus

        usable = (not connection.closed and not connection.broken
                  and connection.info.transaction_status == TransactionStatus.IDLE)
        if usable:
            with self._lock:
                if not self._closed and len(self._idle) < self._max_idle:
                    self._idle.append(connection)
                    return
        _quiet_close(connection)

    def _discard(self, connection) -> None:
        _quiet_close(connection)

    def _connect(self):
        import psycopg

        try:
            connection = psycopg.connect(self.url, autocommit=True, **self._connect_kwargs)
        except psycopg.Error as error:
            raise _connect_error(self._where, error) from None
        try:
            # parameters, not text: the settings reach the server as values
            if self.read_only:
                connection.execute("SELECT set_config('default_transaction_read_only', 'on', false)")
            # the warehouse stores naive UTC times: never let the server's TimeZone shift them
            connection.execute("SELECT set_config('TimeZone', 'UTC', false)")
            if self.statement_timeout_ms:
                connection.execute("SELECT set_config('statement_timeout', %s, false)",
                                   (f"{self.statement_timeout_ms}ms",))
        except psycopg.Error as error:
            _quiet_close(connection)
            raise WarehouseUnavailableError(f"cannot set up a session on PostgreSQL at {self._where}: "
                                            f"{_first_line(error)}", hint=_CONNECT_HINT) from None
        return connection


# ---------------------------------------------------------------------- helpers


def _describe_target(params: dict) -> str:
    host = params.get("host") or params.get("hostaddr") or "localhost (unix socket)"
    port = params.get("port") or "5432"
    where = f"{host}:{port}" if not str(host).startswith("/") else f"{host} (unix socket, port {port})"
    if params.get("dbname"):
        where += f"/{params['dbname']}"
    return where


def _read(connection, cursor, batch_rows: int):
    """The cursor's rows, FETCH by FETCH; the transaction commits when they run out."""
    yield from fetch_batches(cursor.fetchmany, batch_rows, short_is_last=True)
    connection.commit()


def _connect_error(where: str, error: Exception) -> WarehouseUnavailableError:
    text = " ".join(str(error).split())
    reason = _connect_reason(text)
    lower = text.lower()
    if "password authentication failed" in lower or "no password supplied" in lower or "pg_hba.conf" in lower:
        hint = "check the user and password in the URL, and that pg_hba.conf lets this client in"
    elif "does not exist" in lower and "database" in lower:
        hint = "create the database, or fix its name in the URL; `canon demo --target URL` loads the demo into it"
    elif "role" in lower and "does not exist" in lower:
        hint = "fix the user in the URL (postgresql://user:password@host:port/database)"
    elif "timeout" in lower or "timed out" in lower:
        hint = "the server did not answer in time: check the host, port and any firewall between"
    else:
        hint = _CONNECT_HINT
    return WarehouseUnavailableError(f"cannot connect to PostgreSQL at {where}: {reason}", hint=hint)


def _connect_reason(text: str) -> str:
    """The useful part of libpq's message: 'Connection refused', 'password authentication failed ...'."""
    # libpq: 'connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused Is ...'
    reason = text
    if "failed:" in reason:
        reason = reason.rsplit("failed:", 1)[1].strip()
    for tail in (" Is the server running", " Is the server"):
        if tail in reason:
            reason = reason.split(tail, 1)[0].strip()
    return reason.rstrip(".") or text


# class 42 errors that mean the catalog and the warehouse disagree (or the role lacks a grant): the
# operator's to fix, not the request's
_DEPLOYMENT_42 = {"42P01", "42703", "42501", "42P02", "42704"}


def is_user_error(sqlstate: str) -> bool:
    """A SQLSTATE the request caused: a data exception (class 22: a value that does not convert, a
    division by zero) or a rule it broke (class 42: comparing unlike types), not an outage."""
    return sqlstate.startswith("22") or (sqlstate.startswith("42") and sqlstate not in _DEPLOYMENT_42)


def _query_hint(sqlstate: str | None) -> str | None:
    if sqlstate in ("42P01", "42703", "3F000", "42883"):  # undefined table / column / schema / function
        return ("check that the warehouse has the tables and columns the catalog names "
                "(`canon demo --target URL` loads the demo)")
    if sqlstate == "25006":
        return "Canon opens read-only sessions: it never writes to the warehouse"
    if sqlstate and sqlstate.startswith("53"):
        return "the server is out of resources (memory, disk or connections): retry later or ask its admin"
    return None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _quiet_close(connection) -> None:
    try:
        connection.close()
    except Exception:
        pass

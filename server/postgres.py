"""PostgreSQL as a warehouse (psycopg 3).

`PostgresWarehouse(url)` runs compiled SQL on a PostgreSQL server and returns (names, rows). It keeps a
small pool of idle connections so that the HTTP server's worker threads do not pay a connection setup per
query; each call borrows one connection for its own use, so the warehouse is safe to share across threads.

Connections are lazy: constructing the warehouse does not touch the server (a server that is down makes
each query fail with a WarehouseError saying why, which the HTTP layer turns into a 503). `ping()` checks
reachability on demand.

Every session runs in UTC (the server's TimeZone setting never shifts
stored times) and, when `statement_timeout_ms` is given, has a server-side
statement timeout, reported as "query exceeded N ms". With `read_only=True` sessions refuse writes (for
query paths; the recommendation feedback loader writes through `execute`, so it is not the default).
"""

from __future__ import annotations

import threading
from typing import Any

from canon.compiler.errors import WarehouseError

DEFAULT_CONNECT_TIMEOUT_S = 5
DEFAULT_MAX_IDLE = 8

_CONNECT_HINT = ("check that the server is running and reachable, and the host, port, user, password and "
                 "database in the URL (postgresql://user:password@host:port/database)")


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


class PostgresWarehouse:
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

    def execute(self, sql: str) -> tuple[list[str], list[tuple]]:
        import psycopg

        for attempt in range(2):
            connection, reused = self._acquire()
            try:
                # no parameters: psycopg sends the text as is (a '%' in a LIKE pattern stays a '%')
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                    if cursor.description is None:
                        names, rows = [], []
                    else:
                        names = [d.name for d in cursor.description]
                        rows = cursor.fetchall()
            except psycopg.errors.QueryCanceled as error:
                self._release(connection)
                if self.statement_timeout_ms and "statement timeout" in str(error):
                    raise WarehouseError(f"query exceeded {self.statement_timeout_ms} ms (the statement timeout) "
                                         f"on PostgreSQL at {self._where}",
                                         hint="narrow the request (fewer dimensions, a time range, a limit) "
                                              "or raise the query timeout") from None
                raise WarehouseError(f"PostgreSQL cancelled the query: {_first_line(error)}") from None
            except psycopg.OperationalError as error:
                broken = connection.closed or connection.broken
                self._release(connection)
                if broken and reused and attempt == 0:
                    continue  # a pooled connection went stale (server restart, idle kill): retry once on a new one
                if broken:
                    raise WarehouseError(f"lost the connection to PostgreSQL at {self._where}: {_first_line(error)}",
                                         hint=_CONNECT_HINT) from None
                raise WarehouseError(f"the warehouse rejected the query: {_first_line(error)}",
                                     hint="check that the warehouse has the tables the catalog names") from None
            except psycopg.Error as error:
                self._release(connection)
                raise WarehouseError(f"the warehouse rejected the query: {_first_line(error)}",
                                     hint=_query_hint(getattr(error, "sqlstate", None))) from None
            except BaseException:
                self._discard(connection)
                raise
            self._release(connection)
            return names, rows
        raise AssertionError("unreachable")  # pragma: no cover

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

    # ------------------------------------------------------------------ pool

    def _acquire(self):
        with self._lock:
            if self._closed:
                raise WarehouseError("the PostgreSQL warehouse was closed")
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
            raise WarehouseError(f"cannot set up a session on PostgreSQL at {self._where}: {_first_line(error)}",
                                 hint=_CONNECT_HINT) from None
        return connection


# ---------------------------------------------------------------------- helpers


def _describe_target(params: dict) -> str:
    host = params.get("host") or params.get("hostaddr") or "localhost (unix socket)"
    port = params.get("port") or "5432"
    where = f"{host}:{port}" if not str(host).startswith("/") else f"{host} (unix socket, port {port})"
    if params.get("dbname"):
        where += f"/{params['dbname']}"
    return where


def _connect_error(where: str, error: Exception) -> WarehouseError:
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
    return WarehouseError(f"cannot connect to PostgreSQL at {where}: {reason}", hint=hint)


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

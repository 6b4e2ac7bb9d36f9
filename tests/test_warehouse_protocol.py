"""The warehouse protocol (server/warehouses/base.py), on DuckDB and on a real PostgreSQL server.

Raw SQL, no catalog: a timeout and a cancel stop the query *inside the engine* (afterwards DuckDB
answers at once; PostgreSQL's pg_stat_activity shows no active query of the warehouse), a ticket
cancelled before the start stops the query at once, `stream()` gives the columns first and batches of
at most batch_rows whose concatenation is `execute()`, a bad query is a WarehouseError with the engine's
first line, and the PostgreSQL pool serves on after a cancel. Spark and chDB: tests/test_engines.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import psycopg
import pytest

from canon.compiler.errors import (QueryCancelledError, QueryTimeoutError, WarehouseError, WarehouseQueryError,
                                   WarehouseUnavailableError)
from canon.server.warehouses import QueryTicket, open_warehouse
from canon.server.warehouses.base import RunningQuery, collect
from canon.server.warehouses.postgres import PostgresWarehouse

APP = "canon_protocol_test"  # the application_name of the PostgreSQL warehouse under test
CAP_S = 0.3  # the time cap of the long queries
FAST_S = 1.5  # a stopped query ends within this (the cap plus the engine's reaction, on a busy machine)
SAFETY_S = 10  # where a cancel is tested, a timeout too: a cancel that fails fails the test, never hangs it


@dataclass
class Engine:
    name: str
    warehouse: object
    long_sql: str  # runs for minutes unless stopped
    assert_idle: Callable[[], None]


def _duckdb_idle(warehouse) -> Callable[[], None]:
    def check() -> None:
        started = time.perf_counter()
        assert warehouse.execute("SELECT 42 AS answer") == (["answer"], [(42,)])
        # the stopped query no longer holds DuckDB's threads: a scan of 100M rows takes its usual time
        assert warehouse.execute("SELECT count(*) AS n FROM range(100000000)")[1] == [(100_000_000,)]
        assert time.perf_counter() - started < 1.0

    return check


def _postgres_idle(server_url: str) -> Callable[[], None]:
    def check() -> None:
        with psycopg.connect(server_url, autocommit=True, application_name="canon_protocol_checker") as admin:
            rows = admin.execute("SELECT pid, state, query FROM pg_stat_activity "
                                 "WHERE application_name = %s AND state <> 'idle'", (APP,)).fetchall()
        assert rows == [], f"the warehouse's backends are still busy: {rows}"

    return check


@pytest.fixture(scope="module")
def duck_engine(demo_path):
    warehouse = open_warehouse(str(demo_path))
    yield Engine("duckdb", warehouse, "SELECT count(*) FROM range(1000000000000)", _duckdb_idle(warehouse))
    warehouse.close()


@pytest.fixture(scope="module")
def pg_engine(pg_demo_url, pg_server_url):
    url = f"{pg_demo_url}{'&' if '?' in pg_demo_url else '?'}application_name={APP}"
    warehouse = PostgresWarehouse(url, read_only=True)  # as open_warehouse opens it, under a name of its own
    yield Engine("postgres", warehouse, "SELECT pg_sleep(30)", _postgres_idle(pg_server_url))
    warehouse.close()


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request):
    return request.getfixturevalue("duck_engine" if request.param == "duckdb" else "pg_engine")


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# ------------------------------------------------------------------------------ timeout and cancel


def test_a_query_past_its_timeout_is_stopped_in_the_engine(engine):
    def run():
        with pytest.raises(QueryTimeoutError) as info:
            engine.warehouse.execute(engine.long_sql, timeout_s=CAP_S)
        assert info.value.code == "query_timeout" and info.value.http_status == 504
        assert info.value.sqlstate == "57014" and "0.3 s limit" in info.value.message

    assert _timed(run) < FAST_S
    engine.assert_idle()


def test_a_cancel_from_another_thread_stops_the_query(engine):
    ticket = QueryTicket()
    timer = threading.Timer(CAP_S, ticket.cancel)
    timer.start()

    def run():
        with pytest.raises(QueryCancelledError) as info:
            engine.warehouse.execute(engine.long_sql, ticket=ticket, timeout_s=SAFETY_S)
        assert info.value.sqlstate == "57014"

    try:
        assert _timed(run) < FAST_S
    finally:
        timer.cancel()
    engine.assert_idle()


def test_a_ticket_cancelled_before_the_start_stops_the_query_at_once(engine):
    ticket = QueryTicket()
    ticket.cancel()

    def run():
        with pytest.raises(QueryCancelledError):
            engine.warehouse.stream(engine.long_sql, ticket=ticket, timeout_s=SAFETY_S)

    assert _timed(run) < 0.2
    with pytest.raises(QueryTimeoutError):  # no time left is a timeout, at once
        engine.warehouse.execute(engine.long_sql, timeout_s=0)
    engine.assert_idle()


def test_the_timeout_also_covers_the_reading_of_the_rows(engine):
    """A stream read slowly past its timeout ends with QueryTimeoutError, and the engine is free."""
    stream = engine.warehouse.stream("SELECT order_id FROM orders ORDER BY order_id", timeout_s=CAP_S, batch_rows=10)
    assert len(next(iter(stream))) == 10
    time.sleep(CAP_S + 0.2)
    with pytest.raises(QueryTimeoutError):
        next(iter(stream))
    engine.assert_idle()


def test_closing_a_stream_from_another_thread_stops_the_query(engine):
    """The runtime closes a stream when its client goes away, from another thread than the reader's."""
    if engine.name == "duckdb":  # 1M rows at once, then a scan that finds the next one only at its end
        sql = "SELECT i FROM range(1000000000000) AS t(i) WHERE i < 1000000 OR i = 999999999999"
    else:  # DECLARE returns at once; the FETCH sleeps
        sql = engine.long_sql
    stream = engine.warehouse.stream(sql, batch_rows=100_000, timeout_s=SAFETY_S)
    timer = threading.Timer(CAP_S, stream.close)
    timer.start()

    def run():
        with pytest.raises(QueryCancelledError):
            list(stream)

    try:
        assert _timed(run) < FAST_S
    finally:
        timer.cancel()
    engine.assert_idle()


# ------------------------------------------------------------------------------------- streaming


def test_stream_gives_columns_first_then_bounded_batches_that_make_execute(engine):
    sql = "SELECT order_id, status FROM orders ORDER BY order_id"
    stream = engine.warehouse.stream(sql, batch_rows=1000)
    assert stream.columns == ["order_id", "status"]  # before the first batch
    batches = list(stream)
    assert len(batches) > 3 and all(0 < len(batch) <= 1000 for batch in batches)
    assert all(isinstance(row, tuple) for batch in batches for row in batch)
    names, rows = engine.warehouse.execute(sql)
    assert names == stream.columns and [row for batch in batches for row in batch] == rows
    assert collect(engine.warehouse.stream(sql, batch_rows=997)) == (names, rows)
    engine.assert_idle()


def test_an_empty_result_has_its_columns_and_no_batches(engine):
    stream = engine.warehouse.stream("SELECT order_id, status FROM orders WHERE 1 = 0")
    assert stream.columns == ["order_id", "status"]
    assert list(stream) == []


def test_a_stream_closed_early_frees_the_engine(engine):
    with engine.warehouse.stream("SELECT order_id FROM orders", batch_rows=100) as stream:
        assert len(next(iter(stream))) == 100
    assert list(stream) == []  # closed: nothing more
    engine.assert_idle()
    assert engine.warehouse.execute("SELECT count(*) AS n FROM orders")[1][0][0] > 1000


def test_batch_rows_must_be_positive(engine):
    with pytest.raises(ValueError):
        engine.warehouse.stream("SELECT 1", batch_rows=0)


# ---------------------------------------------------------------------------------------- errors


def test_a_bad_query_is_a_warehouse_error_with_the_engines_first_line(engine):
    with pytest.raises(WarehouseError) as info:
        engine.warehouse.execute("SELECT no_such_column FROM orders")
    error = info.value
    # PostgreSQL: 42703, a catalog/warehouse mismatch (503). DuckDB reports it as a BinderException, the
    # class it also uses for comparing unlike types: a request error (400, server/warehouses/duckdb.py)
    expected = (WarehouseQueryError, "query_rejected") if engine.warehouse.dialect == "duckdb" else (WarehouseError, "warehouse_error")
    assert type(error) is expected[0] and error.code == expected[1]
    assert error.message.startswith("the warehouse rejected the query: ")
    assert "no_such_column" in error.message and "\n" not in error.message
    assert engine.warehouse.execute("SELECT 1 AS one")[1] == [(1,)]  # and it serves on


def test_a_missing_duckdb_file_is_unavailable(tmp_path):
    with pytest.raises(WarehouseUnavailableError, match="does not exist") as info:
        open_warehouse(str(tmp_path / "missing.duckdb"))
    assert info.value.sqlstate == "08006" and "canon demo" in info.value.hint


# ------------------------------------------------------------------------------------ PostgreSQL


@pytest.fixture()
def pg(pg_engine):
    return pg_engine.warehouse


def test_postgres_pool_serves_after_a_cancel_and_a_timeout(pg, pg_engine):
    ticket = QueryTicket()
    threading.Timer(0.2, ticket.cancel).start()
    with pytest.raises(QueryCancelledError):
        pg.execute("SELECT pg_sleep(30)", ticket=ticket, timeout_s=SAFETY_S)
    assert pg.execute("SELECT 1 AS one")[1] == [(1,)]
    with pytest.raises(QueryTimeoutError):
        pg.execute("SELECT pg_sleep(30)", timeout_s=0.2)
    assert pg.execute("SELECT 1 AS one")[1] == [(1,)]
    # every pooled connection is clean: out of any transaction, not cancelled by a late request
    from psycopg.pq import TransactionStatus

    assert all(c.info.transaction_status == TransactionStatus.IDLE for c in pg._idle)
    for _ in range(3):
        assert pg.execute("SELECT count(*) AS n FROM orders")[1][0][0] > 1000
    pg_engine.assert_idle()


def test_postgres_sets_the_timeout_on_the_server_for_the_query(pg):
    assert pg.execute("SELECT current_setting('statement_timeout') AS t", timeout_s=2.5)[1] == [("2500ms",)]
    # only for that query: the session's own setting is back afterwards
    assert pg.execute("SELECT current_setting('statement_timeout') AS t")[1] == [("0",)]


def test_postgres_writes_run_and_commit(pg_demo_url):
    with PostgresWarehouse(pg_demo_url) as writer:
        assert writer.execute("CREATE TABLE IF NOT EXISTS canon_protocol_scratch (x int)") == ([], [])
        assert writer.execute("INSERT INTO canon_protocol_scratch VALUES (1), (2) RETURNING x") == (["x"], [(1,), (2,)])
        assert writer.execute("SELECT count(*) AS n FROM canon_protocol_scratch") == (["n"], [(2,)])
        writer.execute("DROP TABLE canon_protocol_scratch")


def test_postgres_percent_signs_reach_the_server_as_written(pg):
    assert pg.execute("SELECT 'a%b' LIKE 'a%' AS matched")[1] == [(True,)]
    assert pg.execute("  -- a comment first\n(SELECT 1 AS one)")[1] == [(1,)]


# ------------------------------------------------------------------------------- the shared part


def test_a_stop_landing_before_the_engine_starts_is_repeated_until_it_lands():
    """DuckDB's interrupt, a PostgreSQL cancel request and a Spark job-group cancel are lost when they
    arrive before the query runs; RunningQuery repeats the stop while the engine call is in flight."""
    running, stopped = threading.Event(), threading.Event()

    def stop():
        if running.is_set():  # like the engines: a stop before the start does nothing
            stopped.set()

    run = RunningQuery(None, None)

    def start():
        run.on_cancel(stop, repeat_s=0.01)
        run.ticket.cancel()  # the cancel lands here, before the "engine" starts: lost
        running.set()
        if not stopped.wait(2):
            raise AssertionError("the stop was never repeated")
        raise RuntimeError("interrupted")

    started = time.perf_counter()
    with pytest.raises(QueryCancelledError):
        run.stream(start, lambda error: None)
    assert time.perf_counter() - started < 0.5

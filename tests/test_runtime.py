"""The runtime service, on DuckDB and PostgreSQL: the one path every front end's queries take.

Guard rails stop queries inside the engine (afterwards the engine is idle), row caps cut or refuse,
structured filters arrive as trees and meet the same allow-list as text, stale sources cost a query
nothing (no warehouse statement runs for freshness inside a request), and gap filling happens only
where it is asked for.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from sqlglot import exp

from canon.compiler.compile import load_catalog
from canon.compiler.errors import (ConfigError, FilterError, QueryCancelledError, QueryError, QueryTimeoutError,
                                   ResultTooLargeError)
from canon.compiler.request import QueryRequest
from canon.server.runtime import Limits, Runtime
from canon.server.warehouses.base import QueryTicket

ROOT = Path(__file__).resolve().parents[1]
STRESS = ROOT / "tests" / "fixtures" / "stress"


def stress_project(folder: Path) -> Path:
    """The demo project plus `stress_weight`, a metric over an endless cross join."""
    for part in ("semantic_models", "metrics"):
        shutil.copytree(ROOT / part, folder / part)
    shutil.copy(ROOT / "canon.yml", folder / "canon.yml")
    shutil.copy(STRESS / "stress_model.yml", folder / "semantic_models" / "stress.yml")
    shutil.copy(STRESS / "stress_metrics.yml", folder / "metrics" / "stress.yml")
    return folder


@pytest.fixture(scope="module")
def stress_catalog(tmp_path_factory):
    return load_catalog(stress_project(tmp_path_factory.mktemp("stress")))


def engine_is_idle(request, warehouse) -> bool:
    """No query of ours still runs in the engine: DuckDB answers a new query at once (it has two cores
    and the endless query would hold one for good, so we also check it answers fast); PostgreSQL's
    pg_stat_activity shows no active statement crossing order_items."""
    if warehouse.dialect == "postgres":
        import psycopg

        with psycopg.connect(request.getfixturevalue("pg_demo_url"), autocommit=True) as connection:
            for _ in range(40):
                active = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
                    # rows stream through a server-side cursor: while they are computed the active
                    # statement is the FETCH, not the DECLARE that holds the CROSS JOIN
                    "AND (query LIKE %s OR query LIKE %s)",
                    ("%CROSS JOIN order_items%", "%FETCH%canon_stream%")).fetchone()[0]
                if active == 0:
                    return True
                time.sleep(0.1)
        return False
    started = time.perf_counter()
    warehouse.execute("SELECT count(*) FROM orders")
    return time.perf_counter() - started < 1.0


# --- the query path -------------------------------------------------------------------------------------


def test_query_equals_hand_sql(catalog, warehouse):
    result = Runtime.over(catalog, warehouse).query(
        QueryRequest(metrics=("revenue",), dimensions=("product.category",), order=("product.category",)))
    _, want = warehouse.execute(
        "SELECT p.category, SUM(i.quantity * i.unit_price - i.discount_amount) FROM order_items i "
        "JOIN orders o ON o.order_id = i.order_id JOIN products p ON p.product_id = i.product_id "
        "WHERE o.status = 'completed' GROUP BY p.category ORDER BY p.category")
    assert [[r[0], round(r[1], 2)] for r in result.rows] == [[c, round(float(v), 2)] for c, v in want]
    assert result.columns == [{"name": "product.category", "type": "string"}, {"name": "revenue", "type": "number"}]


def test_filter_trees_meet_the_allow_list(catalog, warehouse):
    runtime = Runtime.over(catalog, warehouse)
    as_text = runtime.query(QueryRequest(metrics=("revenue",), where=("product.category = 'Audio'",)))
    tree = exp.EQ(this=exp.column("category", table="product"), expression=exp.Literal.string("Audio"))
    as_tree = runtime.query(QueryRequest(metrics=("revenue",), where=(tree,)))
    assert as_tree.rows == as_text.rows and as_text.rows[0][0] > 0
    hostile = exp.In(this=exp.column("category", table="product"),
                     query=exp.select("category").from_("products"))
    with pytest.raises(FilterError, match="subquery"):
        runtime.prepare(QueryRequest(metrics=("revenue",), where=(hostile,)))
    call = exp.Anonymous(this="read_csv", expressions=[exp.Literal.string("/etc/passwd")])
    with pytest.raises(FilterError, match="not allowed"):
        runtime.prepare(QueryRequest(metrics=("revenue",), where=(exp.EQ(this=call, expression=exp.Literal.number(1)),)))


# --- row caps -----------------------------------------------------------------------------------------------


def test_row_cap_cuts_with_a_warning_or_refuses(catalog, warehouse):
    runtime = Runtime.over(catalog, warehouse, Limits(max_rows=5))
    request = QueryRequest(metrics=("revenue",), dimensions=("product.product_name",))
    cut = runtime.query(request)
    assert len(cut.rows) == 5 and cut.truncated and "more than 5 rows" in cut.warnings[-1]
    with pytest.raises(ResultTooLargeError, match="more than 5 rows") as caught:
        list(runtime.stream(request, overflow="error"))
    assert caught.value.sqlstate == "54000"
    with pytest.raises(QueryError, match="above this server's row limit of 5"):
        runtime.prepare(QueryRequest(metrics=("revenue",), dimensions=("product.product_name",), limit=6))
    assert len(runtime.query(request, capped=False).rows) > 5  # Canon's own callers (the snapshot)
    assert len(runtime.query(request, max_rows=3).rows) == 3  # a request may ask for fewer


def test_limits_from_canon_yml():
    assert Limits.from_config({}) == Limits()
    limits = Limits.from_config({"limits": {"query_timeout_s": 5, "max_rows": 10}}, max_rows=20)
    assert (limits.query_timeout_s, limits.max_rows) == (5.0, 20)
    with pytest.raises(ConfigError, match="limits.max_row is not a known limit"):
        Limits.from_config({"limits": {"max_row": 1}})
    with pytest.raises(ConfigError, match="positive number"):
        Limits.from_config({"limits": {"query_timeout_s": -1}})
    with pytest.raises(QueryError, match="above this server's limit of 300 s"):
        Limits().timeout_for(301)


# --- gap filling only where asked ---------------------------------------------------------------------------


def _by_month_and_channel(warehouse) -> dict:
    _, rows = warehouse.execute(
        "SELECT CAST(DATE_TRUNC('month', ordered_at) AS DATE), sales_channel, COUNT(order_id) FROM orders "
        "WHERE status = 'completed' AND ordered_at >= '2024-01-01' AND ordered_at < '2024-04-01' GROUP BY 1, 2")
    return {(str(m)[:10], ch): n for m, ch, n in rows}


def test_no_dense_spine_unless_asked(catalog, warehouse):
    """order_count (join_to_timespine) by month and channel lists the groups that exist; with
    fill_gaps every (month, channel) pair; as a pure time series, every month."""
    runtime = Runtime.over(catalog, warehouse)
    base = dict(metrics=("order_count",), dimensions=("metric_time.month", "order.sales_channel"),
                start="2024-01-01", end="2024-03-31", where=("order.sales_channel = 'app'",))
    want = {k: v for k, v in _by_month_and_channel(warehouse).items() if k[1] == "app"}
    got = runtime.query(QueryRequest(**base)).rows
    assert {(r[0][:10], r[1]): r[2] for r in got} == want
    filled = runtime.query(QueryRequest(**base, fill_gaps=True)).rows
    assert {(r[0][:10], r[1]): r[2] for r in filled if r[2]} == want
    series = runtime.query(QueryRequest(metrics=("order_count",), dimensions=("metric_time.month",),
                                        start="2023-10-01", end="2024-02-29")).rows
    assert [r[0][:10] for r in series] == ["2023-10-01", "2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01"]
    assert series[0][1] == 0  # before the data: filled
    with pytest.raises(QueryError, match="fill_gaps lists every period of metric_time"):
        runtime.prepare(QueryRequest(metrics=("order_count",), dimensions=("order.sales_channel",), fill_gaps=True))


# --- time caps and cancels stop the engine ------------------------------------------------------------------


def test_time_cap_stops_the_query_in_the_engine(request, stress_catalog, warehouse):
    runtime = Runtime.over(stress_catalog, warehouse, Limits(query_timeout_s=0.5))
    started = time.perf_counter()
    with pytest.raises(QueryTimeoutError) as caught:
        runtime.query(QueryRequest(metrics=("stress_weight",)))
    assert time.perf_counter() - started < 5
    assert caught.value.sqlstate == "57014" and caught.value.http_status == 504
    assert engine_is_idle(request, warehouse)


def test_cancel_from_another_thread_stops_the_query(request, stress_catalog, warehouse):
    runtime = Runtime.over(stress_catalog, warehouse, Limits(query_timeout_s=60))
    ticket = QueryTicket()
    threading.Timer(0.5, ticket.cancel).start()
    started = time.perf_counter()
    with pytest.raises(QueryCancelledError):
        runtime.query(QueryRequest(metrics=("stress_weight",)), ticket=ticket)
    assert time.perf_counter() - started < 5
    assert engine_is_idle(request, warehouse)
    assert runtime.query(QueryRequest(metrics=("order_count",))).rows[0][0] > 0  # the warehouse still serves


# --- freshness costs a query nothing ------------------------------------------------------------------------


class CountingWarehouse:
    """A warehouse that counts the statements it is given."""

    def __init__(self, inner):
        self.inner, self.dialect, self.url, self.statements = inner, inner.dialect, inner.url, 0

    def stream(self, sql, **options):
        self.statements += 1
        return self.inner.stream(sql, **options)

    def execute(self, sql, **options):
        self.statements += 1
        return self.inner.execute(sql, **options)

    def close(self):
        pass


def test_queries_never_check_freshness_themselves(catalog, warehouse):
    counting = CountingWarehouse(warehouse)
    runtime = Runtime.over(catalog, counting)
    report = runtime.freshness.refresh()  # what the background monitor does
    assert report and counting.statements == len(report)
    counting.statements = 0
    request = QueryRequest(metrics=("ad_spend", "revenue"), dimensions=("metric_time.month",))
    for _ in range(3):
        runtime.query(request)
    assert counting.statements == 3

"""A LIMIT above the server's row cap over the wire (Superset's SQL Lab sends LIMIT SQL_MAX_ROW + 1):
it reads as no LIMIT, so a small answer comes back whole, and a large one still fails with 54000."""

from __future__ import annotations

import psycopg
import pytest

from canon.compiler.compile import load_catalog
from canon.compiler.request import QueryRequest
from canon.server.pgwire.row_cap import within_row_cap
from canon.server.pgwire.server import start_pg_server
from canon.server.runtime import Runtime
from canon.server.runtime.limits import Limits
from canon.server.warehouses.duckdb import DuckDBWarehouse
from tests.support.servers import ROOT, build_warehouse

CAP = 5
USER, PASSWORD = "analyst", "s3cret-pw"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    warehouse = DuckDBWarehouse(str(build_warehouse(tmp_path_factory.mktemp("cap") / "demo.duckdb", scale=0.2)))
    yield Runtime.over(load_catalog(ROOT), warehouse, Limits(max_rows=CAP))
    warehouse.close()


@pytest.fixture(scope="module")
def conn(runtime):
    handle = start_pg_server(runtime, port=0, user=USER, password=PASSWORD)
    with psycopg.connect(host="127.0.0.1", port=handle.port, user=USER, password=PASSWORD, dbname="canon",
                         autocommit=True, connect_timeout=10) as c:
        yield c
    handle.stop()


def test_within_row_cap_drops_only_a_limit_above_the_cap():
    request = QueryRequest(metrics=("revenue",), limit=CAP + 1)
    assert within_row_cap(request, CAP).limit is None
    assert within_row_cap(QueryRequest(metrics=("revenue",), limit=CAP), CAP).limit == CAP
    assert within_row_cap(request, None).limit == CAP + 1


def test_a_limit_above_the_cap_answers_a_small_result_whole(conn, runtime):
    want = runtime.query(QueryRequest(metrics=["order_count"], dimensions=["order.sales_channel"],
                                      order=["order.sales_channel"])).rows
    assert 0 < len(want) <= CAP
    got = conn.execute("SELECT order_sales_channel, COUNT(*) FROM sales GROUP BY order_sales_channel "
                       "ORDER BY 1 LIMIT 100001").fetchall()
    assert [(a, int(b)) for a, b in got] == [(a, int(b)) for a, b in want]


def test_a_limit_above_the_cap_on_a_large_result_fails_with_54000(conn):
    with pytest.raises(psycopg.Error) as info:
        conn.execute("SELECT product_product_name, SUM(revenue) FROM sales GROUP BY 1 LIMIT 100001").fetchall()
    assert info.value.sqlstate == "54000", info.value
    assert conn.execute("SELECT 1").fetchone() == (1,)

"""Real Apache Superset against `canon pg`, driven through Superset's REST API only.

Superset runs from its own cached venv (tests/bi_tools/superset/venv.py: it pins another sqlglot than
Canon). A failed install or start fails these tests; nothing here skips. Superset registers the database
over psycopg2, lists schemas and tables, makes a dataset on the `sales` view and answers chart data and
SQL Lab queries; every number is compared with hand-written SQL over the raw demo tables
(tests/support/oracle.py), on a second copy of the same demo warehouse.
"""

from __future__ import annotations

import time

import pytest

from canon.server.warehouses.duckdb import DuckDBWarehouse
from tests.bi_tools.superset import server as superset_server
from tests.bi_tools.superset.server import ApiError, SupersetApi
from tests.bi_tools.superset.venv import ensure
from tests.support.oracle import assert_same, oracle_rows
from tests.support.servers import ROOT, build_warehouse, start_pg

pytestmark = [pytest.mark.slow, pytest.mark.superset]

USER, PASSWORD = "superset", "superset-pw-1"
SCALE = 0.2
START, END = "2025-01-01", "2025-04-01"  # Superset's range: start inclusive, end exclusive
REVENUE = {"expressionType": "SIMPLE", "column": {"column_name": "revenue"}, "aggregate": "SUM",
           "label": "SUM(revenue)"}


@pytest.fixture(scope="module")
def oracle_warehouse(tmp_path_factory):
    wh = DuckDBWarehouse(str(build_warehouse(tmp_path_factory.mktemp("ss_oracle") / "demo.duckdb", scale=SCALE)))
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def canon_port(tmp_path_factory):
    path = build_warehouse(tmp_path_factory.mktemp("ss_canon") / "demo.duckdb", scale=SCALE)
    server = start_pg(ROOT, path, user=USER, password=PASSWORD)
    yield server.port
    server.stop()


@pytest.fixture(scope="module")
def superset(tmp_path_factory):
    started = time.monotonic()
    venv = ensure()  # raises (the test fails) when the install fails
    server = superset_server.start(venv, tmp_path_factory.mktemp("superset"))
    print(f"\nsuperset venv: {venv.timings or 'cached'}; ready in {time.monotonic() - started:.1f} s")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(superset):
    client = SupersetApi(superset.url).login()
    yield client
    client.close()


def uri(port: int) -> str:
    return f"postgresql+psycopg2://{USER}:{PASSWORD}@127.0.0.1:{port}/canon"


@pytest.fixture(scope="module")
def database(api, canon_port):
    body = api.post("/api/v1/database/", {"database_name": "canon", "sqlalchemy_uri": uri(canon_port),
                                          "expose_in_sqllab": True, "allow_run_async": False})
    return body["id"]


@pytest.fixture(scope="module")
def dataset(api, database):
    body = api.post("/api/v1/dataset/", {"database": database, "schema": "public", "table_name": "sales"})
    return body["id"]


def chart_data(api, dataset: int, **query) -> list[dict]:
    """POST /api/v1/chart/data with one query; its rows (list of dicts)."""
    return chart_result(api, dataset, **query)["data"]


def chart_result(api, dataset: int, **query) -> dict:
    """POST /api/v1/chart/data with one query; its result: `data` (rows) and `query` (the SQL Superset sent)."""
    payload = {"datasource": {"id": dataset, "type": "table"}, "force": True, "result_format": "json",
               "result_type": "full", "queries": [{"row_limit": 10000, **query}]}
    result = api.post("/api/v1/chart/data", payload)["result"]
    assert len(result) == 1, result
    return result[0]


def time_range_filter(column: str = "metric_time") -> dict:
    return {"col": column, "op": "TEMPORAL_RANGE", "val": f"{START} : {END}"}


def day(value) -> str:
    """A temporal value as Superset's JSON gives it (epoch milliseconds or ISO text) -> 'YYYY-MM-DD'."""
    if isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%d", time.gmtime(value / 1000))
    return str(value)[:10]


# --- the tests ---------------------------------------------------------------------------------------------

def test_test_connection_schemas_and_tables(api, canon_port, database):
    api.post("/api/v1/database/test_connection/", {"database_name": "canon probe", "sqlalchemy_uri": uri(canon_port)})
    schemas = api.get(f"/api/v1/database/{database}/schemas/")["result"]
    assert "public" in schemas, schemas
    tables = api.get(f"/api/v1/database/{database}/tables/", q="(schema_name:public)")["result"]
    names = {t["value"] for t in tables}
    assert {"sales", "marketing"} <= names, names


def test_dataset_columns_come_from_the_view(api, dataset):
    body = api.get(f"/api/v1/dataset/{dataset}")["result"]
    columns = {c["column_name"]: c for c in body["columns"]}
    assert {"metric_time", "product_category", "revenue", "order_count"} <= set(columns), sorted(columns)
    assert columns["metric_time"]["is_dttm"] is True
    assert "count" in {m["metric_name"] for m in body["metrics"]}  # Superset's default COUNT(*) metric


def test_metric_by_group_with_a_time_range(api, dataset, oracle_warehouse):
    result = chart_result(api, dataset, columns=["product_category"], metrics=[REVENUE],
                          filters=[time_range_filter()], orderby=[[REVENUE, False]])
    assert f"TO_DATE('{START}', 'YYYY-MM-DD')" in result["query"], result["query"]  # the shape that was a 400
    got = result["data"]
    want = oracle_rows(oracle_warehouse, ["revenue"], ["product.category"], start=START, end="2025-03-31")
    assert len(want) > 1
    assert_same([[r["product_category"], r["SUM(revenue)"]] for r in got], want, keys=1, rel=1e-6)
    assert [r["SUM(revenue)"] for r in got] == sorted((r["SUM(revenue)"] for r in got), reverse=True)


def test_count_star_metric(api, dataset, oracle_warehouse):
    got = chart_data(api, dataset, columns=["order_sales_channel"], metrics=["count"], filters=[time_range_filter()])
    want = oracle_rows(oracle_warehouse, ["order_count"], ["order.sales_channel"], start=START, end="2025-03-31")
    assert_same([[r["order_sales_channel"], r["count"]] for r in got], want, keys=1)


def test_time_grain_and_series_limit(api, dataset, oracle_warehouse):
    month = {"timeGrain": "P1M", "columnType": "BASE_AXIS", "sqlExpression": "metric_time", "label": "metric_time",
             "expressionType": "SQL"}
    got = chart_data(api, dataset, columns=[month, "product_category"], metrics=[REVENUE],
                     filters=[time_range_filter()], series_columns=["product_category"], series_limit=2,
                     series_limit_metric=REVENUE, orderby=[[REVENUE, False]])
    totals = oracle_rows(oracle_warehouse, ["revenue"], ["product.category"], start=START, end="2025-03-31")
    top = sorted(totals, key=lambda r: -r[1])[:2]
    names = ", ".join(f"'{r[0]}'" for r in top)
    want = oracle_rows(oracle_warehouse, ["revenue"], ["metric_time.month", "product.category"],
                       where=[f"p.category IN ({names})"], start=START, end="2025-03-31")
    assert {r["product_category"] for r in got} == {r[0] for r in top}
    assert_same([[day(r["metric_time"]), r["product_category"], r["SUM(revenue)"]] for r in got], want, keys=2,
                rel=1e-6)
    assert len(want) == 6  # three months, two series


def test_filter_and_week_grain(api, dataset, oracle_warehouse):
    week = {"timeGrain": "P1W", "columnType": "BASE_AXIS", "sqlExpression": "metric_time", "label": "metric_time",
            "expressionType": "SQL"}
    got = chart_data(api, dataset, columns=[week], metrics=[REVENUE, "count"], filters=[
        time_range_filter(), {"col": "order_sales_channel", "op": "IN", "val": ["web", "app"]}])
    want = oracle_rows(oracle_warehouse, ["revenue", "order_count"], ["metric_time.week"],
                       where=["o.sales_channel IN ('web', 'app')"], start=START, end="2025-03-31")
    assert len(want) > 10
    assert_same([[day(r["metric_time"]), r["SUM(revenue)"], r["count"]] for r in got], want, keys=1, rel=1e-6)


def test_table_chart_with_server_pagination(api, dataset, oracle_warehouse):
    query = {"columns": ["product_category", "customer_segment"], "metrics": [REVENUE],
             "orderby": [["product_category", True], ["customer_segment", True]]}
    page = chart_data(api, dataset, **query, row_limit=5, row_offset=5)
    count = chart_data(api, dataset, **query, is_rowcount=True)
    want = sorted(oracle_rows(oracle_warehouse, ["revenue"], ["product.category", "customer.segment"]),
                  key=lambda r: (r[0], r[1]))
    assert count == [{"rowcount": len(want)}]
    assert_same([[r["product_category"], r["customer_segment"], r["SUM(revenue)"]] for r in page], want[5:10],
                keys=2, rel=1e-6, ordered=True)


def test_sql_lab_execute(api, database, oracle_warehouse):
    sql = ("SELECT customer_country_code, SUM(revenue) AS revenue FROM sales "
           "WHERE metric_time >= '2025-01-01' AND metric_time < '2025-04-01' GROUP BY customer_country_code")
    body = api.post("/api/v1/sqllab/execute/", {"database_id": database, "sql": sql, "schema": "public",
                                                "runAsync": False, "client_id": "canon1"})
    assert body["status"] == "success", body
    want = oracle_rows(oracle_warehouse, ["revenue"], ["customer.country_code"], start=START, end="2025-03-31")
    assert_same([[r["customer_country_code"], r["revenue"]] for r in body["data"]], want, keys=1, rel=1e-6)


def test_a_metric_aggregated_against_its_definition_is_refused_with_the_supported_form(api, dataset):
    with pytest.raises(ApiError) as info:
        chart_data(api, dataset, columns=["product_category"], metrics=[
            {"expressionType": "SIMPLE", "column": {"column_name": "revenue"}, "aggregate": "MAX", "label": "m"}])
    assert "-> 400" in str(info.value) and "MEASURE(revenue)" in str(info.value)


def test_a_refused_query_is_a_clear_error_not_a_crash(api, database):
    with pytest.raises(ApiError) as info:
        api.post("/api/v1/sqllab/execute/", {"database_id": database, "sql": "SELECT no_such_column FROM sales",
                                             "schema": "public", "runAsync": False, "client_id": "canon2"})
    assert "no_such_column" in str(info.value)
    body = api.post("/api/v1/sqllab/execute/", {"database_id": database, "sql": "SELECT 1 AS one",
                                                "runAsync": False, "client_id": "canon3"})
    assert body["data"] == [{"one": 1}]  # the connection pool survived the error

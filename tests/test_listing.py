"""Dimension-only requests (issue 16): the combinations of dimension values that occur, equal to
hand-written SQL over the raw tables on DuckDB and PostgreSQL, through the runtime and through
Cube's /v1/load (dimension-only and `ungrouped` queries)."""

from __future__ import annotations

import json

import pytest

from canon.compiler.errors import CanonError
from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows, sql_rows

CASES = [
    # (request, hand SQL)
    (QueryRequest(metrics=(), dimensions=("customer.country_code", "customer.segment")),
     "SELECT DISTINCT country_code, segment FROM customers"),
    # a bridge relates order and product: categories that occur on completed orders
    (QueryRequest(metrics=(), dimensions=("product.category",), where=("order.status = 'completed'",)),
     "SELECT DISTINCT p.category FROM order_items oi JOIN products p ON p.product_id = oi.product_id "
     "JOIN orders o ON o.order_id = oi.order_id WHERE o.status = 'completed'"),
    (QueryRequest(metrics=(), dimensions=("order.status", "customer.country_code"),
                  where=("customer.segment = 'consumer'",)),
     "SELECT DISTINCT o.status, c.country_code FROM orders o LEFT JOIN customers c ON c.customer_id = o.customer_id "
     "WHERE c.segment = 'consumer'"),
    (QueryRequest(metrics=(), dimensions=("order.ordered_at.month",)),
     "SELECT DISTINCT CAST(DATE_TRUNC('month', ordered_at) AS DATE) FROM orders"),
]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_listing_equals_hand_sql(catalog, warehouse, index):
    request, hand = CASES[index]
    assert_same(canon_rows(catalog, warehouse, request), sql_rows(warehouse, hand))


def test_listing_order_limit_and_ungrouped(catalog, warehouse):
    request = QueryRequest(metrics=(), dimensions=("customer.country_code",), order=("-customer.country_code",), limit=2)
    want = sql_rows(warehouse, "SELECT DISTINCT country_code FROM customers ORDER BY 1 DESC LIMIT 2")
    assert canon_rows(catalog, warehouse, request) == [list(r) for r in want]
    raw = canon_rows(catalog, warehouse, QueryRequest(metrics=(), dimensions=("customer.segment",), ungrouped=True))
    assert_same(raw, sql_rows(warehouse, "SELECT segment FROM customers"))
    assert len(raw) > len({r[0] for r in raw})  # one row per customer, not the distinct segments


@pytest.mark.parametrize("request_, needle", [
    (QueryRequest(metrics=(), dimensions=("metric_time.month",)), "defined by a metric"),
    (QueryRequest(metrics=(), dimensions=("metric_time.dow",)), "defined by a metric"),
    (QueryRequest(metrics=(), dimensions=("order.status",), time_range="last 3 months"), "time_range"),
    (QueryRequest(metrics=(), dimensions=("order.status",), having=("order.status = 'x'",)), "having"),
    (QueryRequest(metrics=(), dimensions=("product.category", "customer.segment")), "depend on which facts"),
    (QueryRequest(metrics=("revenue",), dimensions=("order.status",), ungrouped=True), "ungrouped"),
    (QueryRequest(metrics=(), dimensions=("order.statuz",)), "order.status"),
])
def test_listing_refusals_name_the_way_out(catalog, request_, needle):
    from canon.compiler.compile import compile_request

    with pytest.raises(CanonError) as error:
        compile_request(catalog, request_)
    assert needle in f"{error.value.message} {error.value.hint}"


def test_cube_dimension_only_and_ungrouped(demo_path):
    """Through Cube's /v1/load: a dimension-only query lists the values (Cube's default order: the
    first dimension ascending), ungrouped keeps every row, ungrouped with a measure is refused."""
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app
    from canon.server.warehouses import open_warehouse
    from tests.support.project import ROOT

    warehouse = open_warehouse(str(demo_path))
    try:
        want = sql_rows(warehouse, "SELECT DISTINCT category FROM products ORDER BY 1")
        customers = sql_rows(warehouse, "SELECT COUNT(*) FROM customers")[0][0]
    finally:
        warehouse.close()
    with TestClient(create_app(ROOT, str(demo_path), reload_interval_s=0, max_rows=50000)) as client:
        body = client.post("/cubejs-api/v1/load", json={"query": {"dimensions": ["product.category"]}}).json()
        assert [r["product.category"] for r in body["data"]] == [r[0] for r in want]
        raw = client.post("/cubejs-api/v1/load", json={"query": {"dimensions": ["customer.segment"], "ungrouped": True,
                                                                 "limit": 50000}}).json()
        assert len(raw["data"]) == customers
        assert raw["query"]["ungrouped"] is True
        refused = client.post("/cubejs-api/v1/load", json={"query": {"measures": ["metrics.revenue"], "ungrouped": True}})
        assert refused.status_code == 400 and "ungrouped" in refused.json()["error"]


def test_http_and_cli_take_dimensions_alone(demo_path):
    """`POST /v1/query` with dimensions and no metrics, and `canon query --by` with no --metric, list the
    combinations; neither metrics nor dimensions is a 422 / a usage error naming both."""
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app
    from canon.server.warehouses import open_warehouse
    from tests.support.cli import canon
    from tests.support.project import ROOT

    warehouse = open_warehouse(str(demo_path))
    try:
        want = sql_rows(warehouse, "SELECT DISTINCT segment FROM customers")
    finally:
        warehouse.close()
    with TestClient(create_app(ROOT, str(demo_path), reload_interval_s=0)) as client:
        body = client.post("/v1/query", json={"dimensions": ["customer.segment"]}).json()
        assert body["columns"] == [{"name": "customer.segment", "type": "string"}]
        assert_same(body["rows"], want)
        empty = client.post("/v1/query", json={"metrics": []})
        assert empty.status_code == 422 and "dimensions alone" in empty.text
    listed = canon("query", "--by", "customer.segment", "--format", "json", warehouse=demo_path)
    assert listed.returncode == 0, listed.stderr
    assert_same(json.loads(listed.stdout)["rows"], want)
    nothing = canon("query", warehouse=demo_path)
    assert nothing.returncode != 0 and "--by DIM alone" in nothing.stderr

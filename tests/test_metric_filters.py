"""Filters on another metric (`metric(order_count, by=customer) >= 3`): oracle tests against hand SQL
over the raw demo tables on DuckDB and PostgreSQL, the MetricFlow spelling, and the errors."""

from __future__ import annotations

import pytest

from canon.compiler.compile import compile_request
from canon.compiler.errors import CanonError, FilterError, QueryError, UnknownNameError
from canon.compiler.refs import check_filter_refs
from canon.compiler.request import QueryRequest
from canon.compiler.sqlexpr import parse_filter
from tests.support.oracle import assert_same, canon_rows, sql_rows

# completed orders per customer, all time (order_count is `fill_nulls_with: 0`)
ORDERS_PER_CUSTOMER = ("(SELECT customer_id, COUNT(*) AS k FROM orders WHERE status = 'completed' "
                       "GROUP BY customer_id)")
REVENUE_PER_CUSTOMER = ("(SELECT o.customer_id, SUM(i.quantity * i.unit_price - i.discount_amount) AS v "
                        "FROM orders o JOIN order_items i ON i.order_id = o.order_id "
                        "WHERE o.status = 'completed' GROUP BY o.customer_id)")


def run(catalog, warehouse, metrics, dims, where, **extra):
    return canon_rows(catalog, warehouse, QueryRequest(metrics=tuple(metrics), dimensions=tuple(dims),
                                                       where=tuple(where), **extra))


@pytest.mark.parametrize("where", [
    "metric(order_count, by=customer) >= 3",
    "metric('order_count', customer) >= 3",
    "{{ Metric('order_count', group_by=['customer']) }} >= 3",  # MetricFlow's spelling
])
def test_buyers_by_segment_among_customers_with_three_orders(catalog, warehouse, where):
    canon = run(catalog, warehouse, ["buyer_count"], ["customer.segment"], [where])
    oracle = sql_rows(warehouse, f"""
        SELECT c.segment, COUNT(DISTINCT o.customer_id)
        FROM orders o LEFT JOIN customers c ON c.customer_id = o.customer_id
        LEFT JOIN {ORDERS_PER_CUSTOMER} n ON n.customer_id = o.customer_id
        WHERE o.status = 'completed' AND COALESCE(n.k, 0) >= 3
        GROUP BY c.segment""")
    assert_same(canon, oracle, keys=1)
    everyone = run(catalog, warehouse, ["buyer_count"], ["customer.segment"], [])
    assert sum(r[1] for r in canon) < sum(r[1] for r in everyone)  # the filter narrows


def test_with_time_range_and_other_filters_the_inner_metric_counts_all_time(catalog, warehouse):
    """The query's range and filters narrow its own rows; the inner order count is over all time."""
    canon = run(catalog, warehouse, ["revenue"], ["product.category"],
                ["metric(order_count, by=customer) >= 4", "order.sales_channel = 'web'"],
                start="2024-04-01", end="2024-09-30")
    oracle = sql_rows(warehouse, f"""
        SELECT p.category, SUM(i.quantity * i.unit_price - i.discount_amount)
        FROM order_items i JOIN orders o ON o.order_id = i.order_id
        LEFT JOIN products p ON p.product_id = i.product_id
        LEFT JOIN {ORDERS_PER_CUSTOMER} n ON n.customer_id = o.customer_id
        WHERE o.status = 'completed' AND o.sales_channel = 'web' AND COALESCE(n.k, 0) >= 4
          AND o.ordered_at >= TIMESTAMP '2024-04-01 00:00:00' AND o.ordered_at < TIMESTAMP '2024-10-01 00:00:00'
        GROUP BY p.category""")
    assert_same(canon, oracle, keys=1, rel=1e-9)


def test_entities_without_rows_read_the_fill_value(catalog, warehouse):
    """order_count fills 0: customers without a completed order pass `< 2` (the NOT EXISTS branch)."""
    canon = run(catalog, warehouse, ["customer_account_count"], ["customer.segment"],
                ["metric(order_count, by=customer) < 2"])
    oracle = sql_rows(warehouse, f"""
        SELECT c.segment, COUNT(c.customer_id)
        FROM customers c LEFT JOIN {ORDERS_PER_CUSTOMER} n ON n.customer_id = c.customer_id
        WHERE COALESCE(n.k, 0) < 2 GROUP BY c.segment""")
    assert_same(canon, oracle, keys=1)
    none = sql_rows(warehouse, f"SELECT COUNT(*) FROM customers c LEFT JOIN {ORDERS_PER_CUSTOMER} n "
                               "ON n.customer_id = c.customer_id WHERE n.k IS NULL")[0][0]
    assert none > 0  # the case is real on the demo data


@pytest.mark.parametrize("canon_where, oracle_where", [
    ("metric(revenue, by=customer) > 2000", "n.v > 2000"),           # no fill: absent customers drop out
    ("metric(revenue, by=customer) IS NULL", "n.v IS NULL"),         # ... or are the ones kept
    ("NOT (metric(revenue, by=customer) BETWEEN 100 AND 5000)", "NOT (n.v BETWEEN 100 AND 5000)"),
])
def test_metric_without_fill_reads_null_for_absent_entities(catalog, warehouse, canon_where, oracle_where):
    canon = run(catalog, warehouse, ["customer_account_count"], ["customer.country_code"], [canon_where])
    oracle = sql_rows(warehouse, f"""
        SELECT c.country_code, COUNT(c.customer_id)
        FROM customers c LEFT JOIN {REVENUE_PER_CUSTOMER} n ON n.customer_id = c.customer_id
        WHERE {oracle_where} GROUP BY c.country_code""")
    assert_same(canon, oracle, keys=1)


def test_by_product_through_the_order_lines(catalog, warehouse):
    """units_sold per product, as a filter on revenue by category and month."""
    canon = run(catalog, warehouse, ["revenue"], ["product.category", "metric_time.quarter"],
                ["metric(units_sold, by=product) >= 150"])
    oracle = sql_rows(warehouse, """
        SELECT p.category, CAST(DATE_TRUNC('quarter', o.ordered_at) AS DATE),
               SUM(i.quantity * i.unit_price - i.discount_amount)
        FROM order_items i JOIN orders o ON o.order_id = i.order_id
        LEFT JOIN products p ON p.product_id = i.product_id
        WHERE o.status = 'completed' AND i.product_id IN (
            SELECT i2.product_id FROM order_items i2 JOIN orders o2 ON o2.order_id = i2.order_id
            WHERE o2.status = 'completed' GROUP BY i2.product_id HAVING SUM(i2.quantity) >= 150)
        GROUP BY 1, 2""")
    assert oracle
    assert_same(canon, oracle, keys=2)


def test_inner_metric_across_a_fan_out(catalog, warehouse):
    """order_count per product counts orders through their lines (a fan-out inside the inner metric, and
    in the outer query grouped by category). Regression: both used the alias _canon_key and matched nothing."""
    canon = run(catalog, warehouse, ["order_count"], ["product.category"], ["metric(order_count, by=product) > 400"])
    oracle = sql_rows(warehouse, """
        SELECT p.category, COUNT(DISTINCT o.order_id)
        FROM orders o JOIN order_items i ON i.order_id = o.order_id JOIN products p ON p.product_id = i.product_id
        WHERE o.status = 'completed' AND i.product_id IN (
            SELECT i2.product_id FROM order_items i2 JOIN orders o2 ON o2.order_id = i2.order_id
            WHERE o2.status = 'completed' GROUP BY i2.product_id HAVING COUNT(DISTINCT o2.order_id) > 400)
        GROUP BY p.category""")
    assert oracle
    assert_same(canon, oracle, keys=1)


def test_two_metrics_of_one_entity_in_one_condition(catalog, warehouse):
    canon = run(catalog, warehouse, ["order_count"], ["order.sales_channel"],
                ["metric(revenue, by=customer) / metric(order_count, by=customer) > 400"])
    oracle = sql_rows(warehouse, f"""
        SELECT o.sales_channel, COUNT(o.order_id)
        FROM orders o LEFT JOIN {REVENUE_PER_CUSTOMER} r ON r.customer_id = o.customer_id
        LEFT JOIN {ORDERS_PER_CUSTOMER} n ON n.customer_id = o.customer_id
        WHERE o.status = 'completed' AND r.v / COALESCE(n.k, 0) > 400
        GROUP BY o.sales_channel""")
    assert_same(canon, oracle, keys=1)


# --- errors ---------------------------------------------------------------------------------------


def compile_where(catalog, where, metric="buyer_count"):
    return compile_request(catalog, QueryRequest(metrics=(metric,), dimensions=("customer.segment",), where=(where,)))


@pytest.mark.parametrize("where, error, words", [
    ("metric(order_cnt, by=customer) >= 3", UnknownNameError, ["unknown metric 'order_cnt'", "order_count"]),
    ("metric(order_count, by=custmer) >= 3", UnknownNameError, ["unknown entity 'custmer'", "customer"]),
    ("metric(ad_spend, by=customer) > 0", QueryError, ["cannot be reached", "campaign"]),
    ("metric(order_count) >= 3", FilterError, ["metric and an entity"]),
    ("metric(order_count, per=customer) >= 3", FilterError, ["unknown argument"]),
    ("Metric('order_count', group_by=['customer', 'product']) >= 3", FilterError, ["exactly one entity"]),
    ("metric(order_count, by=customer) >= 3 OR customer.segment = 'enterprise'", QueryError, ["on its own"]),
    ("metric(order_count, by=customer) > metric(units_sold, by=product)", QueryError, ["different entities"]),
    ("metric(cross_sell_score, by=product) > 0.1", QueryError, ["affinity"]),
    ("metric(revenue_mtd, by=customer) > 0", QueryError, ["metric_time"]),
])
def test_errors_name_the_offender_and_the_choices(catalog, where, error, words):
    with pytest.raises(error) as raised:
        compile_where(catalog, where)
    text = f"{raised.value.message} {raised.value.hint or ''}"
    assert all(w in text for w in words), text


def test_query_rows_must_reach_the_entity(catalog):
    with pytest.raises(QueryError) as raised:
        compile_request(catalog, QueryRequest(metrics=("ad_spend",), where=("metric(order_count, by=customer) >= 3",)))
    assert "cannot be reached" in raised.value.message and "campaign" in raised.value.hint


def test_definitions_may_not_filter_on_metrics(catalog):
    parsed = parse_filter("metric(order_count, by=customer) >= 3", field="filter")
    with pytest.raises(CanonError, match="only a query's where"):
        check_filter_refs(catalog, parsed, "order")


def test_no_sql_reaches_the_warehouse_through_the_call(catalog):
    for where in ["metric((SELECT 1), by=customer) > 0", "metric(order_count, by=(SELECT 1)) > 0",
                  "metric(order_count, by=customer.x) > 0"]:
        with pytest.raises(CanonError):
            compile_where(catalog, where)


# --- front ends -----------------------------------------------------------------------------------

WHERE = "metric(order_count, by=customer) >= 3"


@pytest.mark.slow  # a server app / subprocesses: seconds
def test_http_where_filters_on_a_metric_and_reports_bad_names(catalog, demo_path):
    from fastapi.testclient import TestClient

    from canon.server.http_api import create_app
    from canon.server.warehouses import open_warehouse
    from tests.support.project import ROOT

    wh = open_warehouse(str(demo_path))
    try:
        want = run(catalog, wh, ["buyer_count"], ["customer.segment"], [WHERE])
    finally:
        wh.close()
    with TestClient(create_app(ROOT, str(demo_path), reload_interval_s=0)) as client:
        body = client.post("/v1/query", json={"metrics": ["buyer_count"], "dimensions": ["customer.segment"],
                                              "where": WHERE}).json()
        assert body["rows"] == [list(r) for r in want], body
        bad = client.post("/v1/query", json={"metrics": ["buyer_count"], "where": "metric(order_cnt, by=customer) > 1"})
        assert bad.status_code == 404 and "order_count" in bad.json()["hint"], bad.text


@pytest.mark.slow  # a server app / subprocesses: seconds
def test_cli_where_filters_on_a_metric():
    import json

    from tests.support.cli import assert_clean_failure, canon, demo_warehouse

    result = canon("query", "--metric", "buyer_count", "--by", "customer.segment", "--where", WHERE,
                   "--format", "json", warehouse=demo_warehouse())
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    everyone = json.loads(canon("query", "--metric", "buyer_count", "--by", "customer.segment", "--format", "json",
                                warehouse=demo_warehouse()).stdout)["rows"]
    assert len(rows) == len(everyone) and all(0 < r[1] < e[1] for r, e in zip(rows, everyone))
    messages = assert_clean_failure(canon("query", "--metric", "buyer_count", "--where",
                                          "metric(order_count, by=custmer) >= 3", warehouse=demo_warehouse()))
    assert any("unknown entity 'custmer'" in m for m in messages), messages


def test_row_filtered_users_may_not_filter_on_metrics(catalog):
    """The inner metric is aggregated over all its rows, which a row filter would not narrow: fail closed."""
    from canon.compiler.errors import AccessDeniedError
    from canon.server.runtime.access import Grant, RowFilter, apply_policies

    condition = parse_filter("customer.country_code = 'DE'", field="row_filter").condition
    grant = Grant(open=False, policies=("country_managers",), row_filters=(RowFilter("country_managers", condition, ("customer",)),))
    plain = QueryRequest(metrics=("buyer_count",), where=("customer.segment = 'enterprise'",))
    assert len(apply_policies(catalog, plain, grant).where) == 2  # the row filter is added
    with pytest.raises(AccessDeniedError, match="country_managers"):
        apply_policies(catalog, QueryRequest(metrics=("buyer_count",), where=(WHERE,)), grant)
    open_grant = Grant()
    assert apply_policies(catalog, QueryRequest(metrics=("buyer_count",), where=(WHERE,)), open_grant).where == (WHERE,)

"""Slowly changing dimensions (type II): facts meet the version valid at their own time. Oracle tests
against hand SQL over the raw demo tables on DuckDB and PostgreSQL, and the demo history's shape."""

from __future__ import annotations

import pytest

from canon.compiler.compile import compile_request
from canon.compiler.errors import QueryError
from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows, sql_rows

AS_OF_ORDER = ("LEFT JOIN customer_segment_history h ON h.customer_id = o.customer_id "
               "AND h.valid_from <= o.ordered_at AND (h.valid_to IS NULL OR o.ordered_at < h.valid_to)")
LINE_REVENUE = "SUM(i.quantity * i.unit_price - i.discount_amount)"


def run(catalog, warehouse, metrics, dims, where=(), **extra):
    return canon_rows(catalog, warehouse, QueryRequest(metrics=tuple(metrics), dimensions=tuple(dims),
                                                       where=tuple(where), **extra))


def test_revenue_by_the_segment_at_the_time_of_the_order(catalog, warehouse):
    canon = run(catalog, warehouse, ["revenue"], ["customer_history.segment"])
    oracle = sql_rows(warehouse, f"""
        SELECT h.segment, {LINE_REVENUE}
        FROM order_items i JOIN orders o ON o.order_id = i.order_id {AS_OF_ORDER}
        WHERE o.status = 'completed' GROUP BY h.segment""")
    assert_same(canon, oracle, keys=1)
    today = run(catalog, warehouse, ["revenue"], ["customer.segment"])
    assert dict(map(tuple, canon)) != dict(map(tuple, today))  # history and today differ on the demo


def test_then_and_now_side_by_side_in_a_time_range(catalog, warehouse):
    """Orders by the segment when ordering and the segment today: who was upsold since."""
    canon = run(catalog, warehouse, ["order_count", "revenue"], ["customer_history.segment", "customer.segment"],
                start="2024-07-01", end="2025-06-30")
    bounds = "o.ordered_at >= TIMESTAMP '2024-07-01 00:00:00' AND o.ordered_at < TIMESTAMP '2025-07-01 00:00:00'"
    orders = {(r[0], r[1]): r[2] for r in sql_rows(warehouse, f"""
        SELECT h.segment, c.segment, COUNT(o.order_id) FROM orders o
        LEFT JOIN customers c ON c.customer_id = o.customer_id {AS_OF_ORDER}
        WHERE o.status = 'completed' AND {bounds} GROUP BY h.segment, c.segment""")}
    revenue = {(r[0], r[1]): r[2] for r in sql_rows(warehouse, f"""
        SELECT h.segment, c.segment, {LINE_REVENUE} FROM order_items i JOIN orders o ON o.order_id = i.order_id
        LEFT JOIN customers c ON c.customer_id = o.customer_id {AS_OF_ORDER}
        WHERE o.status = 'completed' AND {bounds} GROUP BY h.segment, c.segment""")}
    oracle = [(k[0], k[1], orders.get(k, 0), revenue.get(k)) for k in set(orders) | set(revenue)]
    assert_same(canon, oracle, keys=2)
    assert any(r[0] != r[1] for r in canon)


def test_filter_on_the_historical_segment_by_quarter(catalog, warehouse):
    canon = run(catalog, warehouse, ["revenue"], ["metric_time.quarter"],
                where=["customer_history.segment = 'enterprise'"])
    oracle = sql_rows(warehouse, f"""
        SELECT CAST(DATE_TRUNC('quarter', o.ordered_at) AS DATE), {LINE_REVENUE}
        FROM order_items i JOIN orders o ON o.order_id = i.order_id {AS_OF_ORDER}
        WHERE o.status = 'completed' AND h.segment = 'enterprise' GROUP BY 1""")
    assert_same(canon, oracle, keys=1)


def test_each_fact_uses_its_own_time(catalog, warehouse):
    """Leads meet the version valid when the lead was created: before the signup there is none (NULL)."""
    canon = run(catalog, warehouse, ["lead_count"], ["customer_history.segment"])
    oracle = sql_rows(warehouse, """
        SELECT h.segment, COUNT(l.lead_id) FROM leads l
        LEFT JOIN customer_segment_history h ON h.customer_id = l.converted_customer_id
          AND h.valid_from <= l.created_at AND (h.valid_to IS NULL OR l.created_at < h.valid_to)
        GROUP BY h.segment""")
    assert_same(canon, oracle, keys=1)
    assert any(r[0] is None for r in canon)


def test_a_named_path_into_the_history(catalog, warehouse):
    named = run(catalog, warehouse, ["revenue"], ["order.customer.customer_history.segment"])
    plain = run(catalog, warehouse, ["revenue"], ["customer_history.segment"])
    assert_same(named, plain, keys=1)


def test_rows_without_a_time_cannot_pick_a_version(catalog):
    with pytest.raises(QueryError) as raised:
        compile_request(catalog, QueryRequest(metrics=("catalog_product_count",),
                                              dimensions=("customer_history.segment",)))
    assert "default_time" in raised.value.hint and "customer_history" in raised.value.message


def test_demo_history_is_a_proper_type_two_table(warehouse):
    """One open version per customer, equal to today's segment; versions never overlap, so every order
    meets exactly one."""
    assert sql_rows(warehouse, """
        SELECT COUNT(*) FROM customers c LEFT JOIN customer_segment_history h
          ON h.customer_id = c.customer_id AND h.valid_to IS NULL
        WHERE h.segment IS NULL OR h.segment <> c.segment""")[0][0] == 0
    matched = sql_rows(warehouse, f"SELECT COUNT(*), COUNT(DISTINCT o.order_id), COUNT(h.history_id) FROM orders o {AS_OF_ORDER}")[0]
    orders = sql_rows(warehouse, "SELECT COUNT(*) FROM orders")[0][0]
    assert tuple(matched) == (orders, orders, orders)
    changed = sql_rows(warehouse, "SELECT COUNT(DISTINCT customer_id) FROM customer_segment_history WHERE valid_to IS NOT NULL")[0][0]
    assert changed > 0


@pytest.mark.slow  # the canon CLI as a subprocess
def test_cli_groups_by_history_and_by_a_named_path(catalog):
    """Both are plain references to every front end: the CLI's answer equals the runtime's."""
    import json

    from canon.server.warehouses import open_warehouse
    from tests.support.cli import canon, demo_warehouse

    dims = ("customer_history.segment", "customer.campaign.channel")
    result = canon("query", "--metric", "order_count", *[a for d in dims for a in ("--by", d)], "--format", "json",
                   warehouse=demo_warehouse())
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert [c["name"] for c in body["columns"]] == [*dims, "order_count"]
    wh = open_warehouse(str(demo_warehouse()))
    try:
        want = run(catalog, wh, ["order_count"], dims)
    finally:
        wh.close()
    assert_same(body["rows"], want, keys=2)

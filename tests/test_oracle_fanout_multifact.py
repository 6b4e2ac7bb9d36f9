"""Fan-out and multi-fact: the cases a naive join gets wrong, written out by hand.

* An order-level measure grouped or filtered by a dimension of its lines counts each order once
  per group (shipping once per category the order holds; orders holding a category; ...).
* Metrics from different facts (order lines, orders, spend, leads, acquisitions) are aggregated
  separately and combined with a full outer join on the dimensions, NULL keys matching.

Each test also shows that the naive single join WOULD give other numbers, so it proves something.
"""

from __future__ import annotations

import pytest

from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows, check, normalize, ratio, sql_rows

COMPLETED_LINES = """
    FROM order_items AS oi
    JOIN orders AS o ON o.order_id = oi.order_id
    JOIN products AS p ON p.product_id = oi.product_id
    WHERE o.status = 'completed'"""

RECONCILED_SPEND = """
    (SELECT a.campaign_id, a.spend_date, a.spend,
            ROW_NUMBER() OVER (PARTITION BY a.campaign_id, a.spend_date, a.country_code
                               ORDER BY a._etl_loaded_at DESC) AS rn
     FROM ad_spend AS a)"""


def differs(a_rows, b_rows, keys) -> bool:
    try:
        assert_same(a_rows, b_rows, keys=keys)
    except AssertionError:
        return True
    return False


def run(catalog, warehouse, metrics, dims=(), where=(), **kw):
    return canon_rows(catalog, warehouse, QueryRequest(metrics=tuple(metrics), dimensions=tuple(dims),
                                                       where=tuple(where), **kw))


# --- fan-out ---------------------------------------------------------------------------------------


def test_shipping_by_category_counts_each_order_once_per_category(catalog, warehouse):
    want = sql_rows(warehouse, """
        SELECT pairs.category, SUM(o.shipping_amount)
        FROM (SELECT DISTINCT oi.order_id, p.category""" + COMPLETED_LINES + """) AS pairs
        JOIN orders AS o ON o.order_id = pairs.order_id
        GROUP BY pairs.category""")
    naive = sql_rows(warehouse, "SELECT p.category, SUM(o.shipping_amount)" + COMPLETED_LINES + " GROUP BY p.category")
    assert differs(naive, want, keys=1)  # orders with two lines of a category would count twice
    assert_same(run(catalog, warehouse, ["shipping_total"], ["product.category"]), want, keys=1)


def test_shipping_by_product_and_in_total(catalog, warehouse):
    want = sql_rows(warehouse, """
        SELECT pairs.product_name, SUM(o.shipping_amount)
        FROM (SELECT DISTINCT oi.order_id, p.product_name""" + COMPLETED_LINES + """) AS pairs
        JOIN orders AS o ON o.order_id = pairs.order_id
        GROUP BY pairs.product_name""")
    assert_same(run(catalog, warehouse, ["shipping_total"], ["product.product_name"]), want, keys=1)
    # grouped by category, the sum exceeds the total (an order holds several categories); the total does not
    total = sql_rows(warehouse, "SELECT SUM(shipping_amount) FROM orders WHERE status = 'completed'")
    assert_same(run(catalog, warehouse, ["shipping_total"]), total)
    by_category = sum(r[1] for r in run(catalog, warehouse, ["shipping_total"], ["product.category"]))
    assert by_category > float(total[0][0])


def test_order_count_by_category_is_distinct_orders_holding_it(catalog, warehouse):
    want = sql_rows(warehouse, "SELECT p.category, COUNT(DISTINCT o.order_id)" + COMPLETED_LINES + " GROUP BY p.category")
    naive = sql_rows(warehouse, "SELECT p.category, COUNT(*)" + COMPLETED_LINES + " GROUP BY p.category")
    assert differs(naive, want, keys=1)
    assert_same(run(catalog, warehouse, ["order_count"], ["product.category"]), want, keys=1)


@pytest.mark.parametrize("category", ["Phones", "Coffee", "Laptops"])
def test_order_count_filtered_by_category_counts_orders_containing_it(catalog, warehouse, category):
    exists = f"""
        FROM orders AS o
        WHERE o.status = 'completed' AND EXISTS (
            SELECT 1 FROM order_items AS oi JOIN products AS p ON p.product_id = oi.product_id
            WHERE oi.order_id = o.order_id AND p.category = '{category}')"""
    want_total = sql_rows(warehouse, "SELECT COUNT(*), COUNT(DISTINCT o.customer_id), SUM(o.shipping_amount)" + exists)
    where = [f"product.category = '{category}'"]
    assert_same(run(catalog, warehouse, ["order_count", "buyer_count", "shipping_total"], where=where), want_total)
    want_monthly = sql_rows(warehouse, "SELECT CAST(DATE_TRUNC('month', o.ordered_at) AS DATE), COUNT(*)" + exists
                            + " GROUP BY CAST(DATE_TRUNC('month', o.ordered_at) AS DATE)")
    assert_same(run(catalog, warehouse, ["order_count"], ["metric_time.month"], where), want_monthly, keys=1)
    naive = sql_rows(warehouse, "SELECT COUNT(*)" + COMPLETED_LINES + f" AND p.category = '{category}'")
    assert naive[0][0] > want_total[0][0]  # lines, not orders


def test_aov_by_country_with_a_product_filter(catalog, warehouse):
    """Both inputs see the filter: revenue of Phones lines / completed orders that hold a phone."""
    revenue = dict(sql_rows(warehouse, """
        SELECT c.country_code, SUM(oi.quantity * oi.unit_price - oi.discount_amount)
        FROM order_items AS oi
        JOIN orders AS o ON o.order_id = oi.order_id
        JOIN products AS p ON p.product_id = oi.product_id
        JOIN customers AS c ON c.customer_id = o.customer_id
        WHERE o.status = 'completed' AND p.category = 'Phones'
        GROUP BY c.country_code"""))
    orders = dict(sql_rows(warehouse, """
        SELECT c.country_code, COUNT(*)
        FROM orders AS o JOIN customers AS c ON c.customer_id = o.customer_id
        WHERE o.status = 'completed' AND o.order_id IN (
            SELECT oi.order_id FROM order_items AS oi JOIN products AS p ON p.product_id = oi.product_id
            WHERE p.category = 'Phones')
        GROUP BY c.country_code"""))
    assert set(revenue) == set(orders) and len(orders) >= 5
    want = [[k, ratio(revenue[k], orders[k])] for k in orders]
    got = run(catalog, warehouse, ["aov"], ["customer.country_code"], ["product.category = 'Phones'"])
    assert_same(got, want, keys=1)
    # naive: average line value, or revenue over line count, is something else
    naive = sql_rows(warehouse, """
        SELECT c.country_code, AVG(oi.quantity * oi.unit_price - oi.discount_amount)
        FROM order_items AS oi JOIN orders AS o ON o.order_id = oi.order_id
        JOIN products AS p ON p.product_id = oi.product_id JOIN customers AS c ON c.customer_id = o.customer_id
        WHERE o.status = 'completed' AND p.category = 'Phones' GROUP BY c.country_code""")
    assert differs(naive, want, keys=1)


def test_buyers_and_purchase_frequency_by_category(catalog, warehouse):
    want = sql_rows(warehouse, """
        SELECT p.category, COUNT(DISTINCT o.order_id), COUNT(DISTINCT o.customer_id),
               CAST(COUNT(DISTINCT o.order_id) AS DOUBLE PRECISION) / COUNT(DISTINCT o.customer_id)""" +
                    COMPLETED_LINES + " GROUP BY p.category")
    got = run(catalog, warehouse, ["order_count", "buyer_count", "purchase_frequency"], ["product.category"])
    assert_same(got, want, keys=1)


def test_revenue_is_not_fanned_out_by_order_dimensions(catalog, warehouse):
    """A line measure grouped by dimensions of order and customer (many-to-one joins) is a plain sum."""
    want = sql_rows(warehouse, """
        SELECT c.segment, o.sales_channel, SUM(oi.quantity * oi.unit_price - oi.discount_amount), SUM(oi.quantity)
        FROM order_items AS oi JOIN orders AS o ON o.order_id = oi.order_id
        JOIN customers AS c ON c.customer_id = o.customer_id
        WHERE o.status = 'completed' GROUP BY c.segment, o.sales_channel""")
    got = run(catalog, warehouse, ["revenue", "units_sold"], ["customer.segment", "order.sales_channel"])
    assert_same(got, want, keys=2)


# --- multi-fact ----------------------------------------------------------------------------------------


def test_revenue_spend_and_leads_by_month(catalog, warehouse):
    """Three facts on three time columns, lined up on metric_time, full outer joined in SQL."""
    want = sql_rows(warehouse, """
        WITH r AS (
            SELECT CAST(DATE_TRUNC('month', o.ordered_at) AS DATE) AS m,
                   SUM(oi.quantity * oi.unit_price - oi.discount_amount) AS revenue
            FROM order_items AS oi JOIN orders AS o ON o.order_id = oi.order_id
            WHERE o.status = 'completed' GROUP BY CAST(DATE_TRUNC('month', o.ordered_at) AS DATE)),
        s AS (
            SELECT CAST(DATE_TRUNC('month', CAST(x.spend_date AS TIMESTAMP)) AS DATE) AS m, SUM(x.spend) AS spend
            FROM """ + RECONCILED_SPEND + """ AS x
            WHERE x.rn = 1 GROUP BY CAST(DATE_TRUNC('month', CAST(x.spend_date AS TIMESTAMP)) AS DATE)),
        l AS (
            SELECT CAST(DATE_TRUNC('month', created_at) AS DATE) AS m, COUNT(*) AS leads
            FROM leads GROUP BY CAST(DATE_TRUNC('month', created_at) AS DATE))
        SELECT COALESCE(r.m, s.m, l.m), r.revenue, s.spend, l.leads
        FROM r FULL OUTER JOIN s ON s.m = r.m
        FULL OUTER JOIN l ON l.m = COALESCE(r.m, s.m)""")
    assert len(want) == 24
    got = run(catalog, warehouse, ["revenue", "ad_spend", "lead_count"], ["metric_time.month"])
    assert_same(got, want, keys=1)
    # naive: joining the facts on the month before aggregating multiplies every sum
    naive = sql_rows(warehouse, """
        SELECT CAST(DATE_TRUNC('month', o.ordered_at) AS DATE), SUM(oi.quantity * oi.unit_price - oi.discount_amount)
        FROM order_items AS oi JOIN orders AS o ON o.order_id = oi.order_id
        JOIN leads AS l ON CAST(DATE_TRUNC('month', l.created_at) AS DATE) = CAST(DATE_TRUNC('month', o.ordered_at) AS DATE)
        WHERE o.status = 'completed' AND o.ordered_at < TIMESTAMP '2024-03-01 00:00:00'
        GROUP BY CAST(DATE_TRUNC('month', o.ordered_at) AS DATE)""")
    assert differs(naive, [r[:2] for r in want if r[0].isoformat() < "2024-03-01"], keys=1)


def test_multi_fact_keeps_groups_from_one_fact_only(catalog, warehouse):
    """By campaign.channel, unattributed revenue (NULL channel) exists only in the sales fact."""
    revenue = {normalize(k): v for k, v in sql_rows(warehouse, """
        SELECT cp.channel, SUM(oi.quantity * oi.unit_price - oi.discount_amount)
        FROM order_items AS oi JOIN orders AS o ON o.order_id = oi.order_id
        LEFT JOIN campaigns AS cp ON cp.campaign_id = o.campaign_id
        WHERE o.status = 'completed' GROUP BY cp.channel""")}
    spend = {normalize(k): v for k, v in sql_rows(warehouse, """
        SELECT cp.channel, SUM(x.spend) FROM """ + RECONCILED_SPEND + """ AS x
        JOIN campaigns AS cp ON cp.campaign_id = x.campaign_id WHERE x.rn = 1 GROUP BY cp.channel""")}
    assert None in revenue and None not in spend
    want = [[k, revenue.get(k), spend.get(k)] for k in set(revenue) | set(spend)]
    got = run(catalog, warehouse, ["revenue", "ad_spend"], ["campaign.channel"])
    assert_same(got, want, keys=1)
    null_row = [r for r in got if r[0] is None]
    assert len(null_row) == 1 and null_row[0][2] is None  # kept, with no spend


def test_multi_fact_without_dimensions_is_one_row(catalog, warehouse):
    got = run(catalog, warehouse, ["revenue", "ad_spend", "lead_count", "new_customers"])
    assert len(got) == 1
    check(catalog, warehouse, ["revenue", "ad_spend", "lead_count", "new_customers"])


def test_multi_fact_by_month_in_a_range(catalog, warehouse):
    check(catalog, warehouse, ["revenue", "ad_spend", "lead_count", "cac", "cost_per_order", "aov"],
          ["metric_time.month"], start="2025-02-01", end="2025-07-31")
    check(catalog, warehouse, ["revenue", "ad_spend", "meeting_count"], ["metric_time.week", "campaign.channel"],
          start="2025-05-01", end="2025-05-31")


def test_cac_and_cost_per_order_by_channel(catalog, warehouse):
    spend = dict(sql_rows(warehouse, """
        SELECT cp.channel, SUM(x.spend) FROM """ + RECONCILED_SPEND + """ AS x
        JOIN campaigns AS cp ON cp.campaign_id = x.campaign_id WHERE x.rn = 1 GROUP BY cp.channel"""))
    new = dict(sql_rows(warehouse, """
        SELECT cp.channel, COUNT(*)
        FROM customers AS c LEFT JOIN campaigns AS cp ON cp.campaign_id = c.first_campaign_id
        WHERE c.customer_id IN (SELECT customer_id FROM orders WHERE status = 'completed')
        GROUP BY cp.channel"""))
    attributed = dict(sql_rows(warehouse, """
        SELECT cp.channel, COUNT(*) FROM orders AS o JOIN campaigns AS cp ON cp.campaign_id = o.campaign_id
        WHERE o.status = 'completed' GROUP BY cp.channel"""))
    keys = set(spend) | set(new) | set(attributed)
    assert None in keys  # new customers with no first campaign: their own group, no spend
    want = [[k, ratio(spend.get(k), new.get(k)), ratio(spend.get(k), attributed.get(k))] for k in keys]
    got = run(catalog, warehouse, ["cac", "cost_per_order"], ["campaign.channel"])
    assert_same(got, want, keys=1)
    # naive: averaging each campaign's CAC (a ratio of aggregates aggregated again) is something else
    naive = sql_rows(warehouse, """
        SELECT cp.channel, AVG(CAST(sp.spend AS DOUBLE PRECISION) / nc.n)
        FROM (SELECT x.campaign_id, SUM(x.spend) AS spend FROM """ + RECONCILED_SPEND + """ AS x
              WHERE x.rn = 1 GROUP BY x.campaign_id) AS sp
        JOIN (SELECT c.first_campaign_id AS campaign_id, COUNT(*) AS n FROM customers AS c
              WHERE c.customer_id IN (SELECT customer_id FROM orders WHERE status = 'completed')
              GROUP BY c.first_campaign_id) AS nc ON nc.campaign_id = sp.campaign_id
        JOIN campaigns AS cp ON cp.campaign_id = sp.campaign_id
        GROUP BY cp.channel""")
    assert differs(naive, [[k, v] for k, v, _ in want if k is not None], keys=1)


def test_cac_and_cost_per_order_by_channel_and_quarter(catalog, warehouse):
    check(catalog, warehouse, ["cac", "cost_per_order", "cost_per_lead"], ["campaign.channel", "metric_time.quarter"])
    check(catalog, warehouse, ["cac", "cost_per_order"], ["campaign.funnel"],
          canon_where=["campaign.channel <> 'email'"], oracle_where=["cp.channel <> 'email'"])

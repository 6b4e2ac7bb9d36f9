"""Oracle tests for the sales KPIs: Canon against hand-written SQL over the raw demo tables.

Every sales metric is checked with no dimensions, with categorical dimensions of each joined
model (product, customer, order, campaign), multi-hop dimensions (customer.country_code from order
lines), every metric_time grain, filters and time ranges. The oracle SQL lives in tests/oracle.py.
"""

from __future__ import annotations

import pytest

from canon.compiler.request import QueryRequest
from tests.support.oracle import GRAINS, assert_same, canon_rows, check, metric_flags, oracle_rows, oracle_sql, scalar, sql_rows

SALES = ("revenue", "order_count", "buyer_count", "aov", "units_sold", "shipping_total",
         "purchase_frequency", "product_purchase_frequency")

DIM_SETS = [
    (),
    ("product.category",),
    ("customer.segment",),
    ("customer.country_code",),          # multi-hop from order lines: order_item -> order -> customer
    ("order.sales_channel",),
    ("campaign.channel",),               # the order's campaign; unattributed orders group under NULL
    *[(f"metric_time.{g}",) for g in GRAINS],
    ("product.tier", "customer.country_code"),
    ("product.product_name", "order.sales_channel"),
    ("metric_time.quarter", "product.category"),
]


def _id(dims):
    return "+".join(dims) or "total"


@pytest.mark.parametrize("dims", DIM_SETS, ids=_id)
@pytest.mark.parametrize("metric", SALES)
def test_metric_by_dimensions(catalog, warehouse, metric, dims):
    rows = check(catalog, warehouse, [metric], dims)
    assert rows and any(r[-1] is not None for r in rows)


FILTERS = [
    # (canon where, oracle where, dims)
    ("customer.segment = 'enterprise'", "c.segment = 'enterprise'", ("product.category",)),
    ("product.category = 'Phones'", "p.category = 'Phones'", ("customer.country_code",)),
    ("product.tier IN ('premium', 'mid') AND order.sales_channel <> 'web'",
     "p.tier IN ('premium', 'mid') AND o.sales_channel <> 'web'", ("metric_time.quarter",)),
    ("customer.country_code = 'DE' OR product.brand = 'Vertex'",
     "c.country_code = 'DE' OR p.brand = 'Vertex'", ("order.sales_channel",)),
]


@pytest.mark.parametrize("canon_where, oracle_where, dims", FILTERS, ids=[f[0] for f in FILTERS])
@pytest.mark.parametrize("metric", SALES)
def test_metric_with_filter(catalog, warehouse, metric, canon_where, oracle_where, dims):
    check(catalog, warehouse, [metric], dims, canon_where=[canon_where], oracle_where=[oracle_where])


RANGES = [
    ("2025-01-01", "2025-03-31", ("metric_time.week",)),   # a date end includes its whole day
    ("2024-02-29", "2024-02-29", ("metric_time.day",)),    # one (leap) day
    ("2024-06-15", None, ("product.category",)),
    (None, "2024-03-10", ("metric_time.month",)),
    ("2024-11-01T06:00:00", "2024-11-03T18:30:00", ("metric_time.day",)),  # timestamps: end exclusive
]


@pytest.mark.parametrize("start, end, dims", RANGES, ids=[f"{s}..{e}" for s, e, _ in RANGES])
@pytest.mark.parametrize("metric", SALES)
def test_metric_in_time_range(catalog, warehouse, metric, start, end, dims):
    check(catalog, warehouse, [metric], dims, start=start, end=end)


def test_time_spine_keeps_the_first_partial_day(catalog, warehouse):
    """Regression (found by this suite, since fixed): with join_to_timespine (order_count) and a start
    timestamp after midnight, the spine kept only days >= start and dropped the first day and its
    orders. Orders placed on 2024-11-01 after 06:00 are in range, so the day must appear."""
    request = QueryRequest(metrics=("order_count",), dimensions=("metric_time.day",),
                           start="2024-11-01T06:00:00", end="2024-11-02T00:00:00")
    want = sql_rows(warehouse, """
        SELECT CAST(o.ordered_at AS DATE), COUNT(*) FROM orders AS o
        WHERE o.status = 'completed' AND o.ordered_at >= TIMESTAMP '2024-11-01 06:00:00'
          AND o.ordered_at < TIMESTAMP '2024-11-02 00:00:00'
        GROUP BY CAST(o.ordered_at AS DATE)""")
    assert len(want) == 1 and want[0][1] > 0
    assert_same(canon_rows(catalog, warehouse, request), want, keys=1)


def test_all_sales_metrics_together(catalog, warehouse):
    check(catalog, warehouse, SALES, ("product.category", "metric_time.year"))
    check(catalog, warehouse, SALES, ("customer.segment",), canon_where=["product.category = 'Coffee'"],
          oracle_where=["p.category = 'Coffee'"], start="2025-01-01", end="2025-06-30")


@pytest.mark.slow  # every customer x category at scale 1, compared row by row
def test_customer_spend_by_category(catalog, warehouse):
    """Revenue by customer x product category, checked against a hand-written query."""
    dims = ("customer.customer_id", "product.category")
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=("revenue",), dimensions=dims))
    want = sql_rows(warehouse, """
        SELECT o.customer_id, p.category, SUM(oi.quantity * oi.unit_price - oi.discount_amount)
        FROM order_items AS oi
        JOIN orders AS o ON o.order_id = oi.order_id
        JOIN products AS p ON p.product_id = oi.product_id
        WHERE o.status = 'completed'
        GROUP BY o.customer_id, p.category""")
    assert len(want) > 5000
    assert_same(got, want, keys=2)


@pytest.mark.slow  # every customer x category at scale 1, compared row by row
def test_saved_query_customer_category_spend(catalog, warehouse):
    saved = catalog.saved_queries["customer_category_spend"]
    assert tuple(saved.metrics) == ("revenue",)
    assert tuple(saved.dimensions) == ("customer.customer_id", "product.category")
    request = QueryRequest(metrics=tuple(saved.metrics), dimensions=tuple(saved.dimensions),
                           where=tuple([saved.where] if isinstance(saved.where, str) else saved.where or ()),
                           order=tuple(saved.order or ()), limit=saved.limit)
    got = canon_rows(catalog, warehouse, request)
    want = oracle_rows(warehouse, ["revenue"], saved.dimensions)
    assert_same(got, want, keys=2)


def test_order_and_limit(catalog, warehouse):
    """Top 10 products by revenue: same rows in the same order."""
    request = QueryRequest(metrics=("revenue",), dimensions=("product.product_name",), order=("-revenue",), limit=10)
    got = canon_rows(catalog, warehouse, request)
    want = sql_rows(warehouse, """
        SELECT p.product_name, SUM(oi.quantity * oi.unit_price - oi.discount_amount) AS revenue
        FROM order_items AS oi
        JOIN orders AS o ON o.order_id = oi.order_id
        JOIN products AS p ON p.product_id = oi.product_id
        WHERE o.status = 'completed'
        GROUP BY p.product_name
        ORDER BY revenue DESC
        LIMIT 10""")
    assert_same(got, want, ordered=True)


def test_default_order_is_by_dimensions(catalog, warehouse):
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=("order_count",), dimensions=("metric_time.month",)))
    months = [r[0] for r in got]
    assert months == sorted(months) and len(months) == 24


def test_only_completed_orders_count(catalog, warehouse):
    """The status filter matters: all orders would give a different total."""
    completed = scalar(warehouse, "SELECT COUNT(*) FROM orders WHERE status = 'completed'")
    everything = scalar(warehouse, "SELECT COUNT(*) FROM orders")
    assert completed < everything
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=("order_count", "revenue")))
    assert got[0][0] == completed
    all_revenue = scalar(warehouse, "SELECT SUM(quantity * unit_price - discount_amount) FROM order_items")
    assert got[0][1] < float(all_revenue)


def test_hand_written_totals(catalog, warehouse):
    """The headline numbers from first principles, independently of the oracle's templates."""
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=SALES))[0]
    revenue = scalar(warehouse, """
        SELECT SUM(oi.quantity * oi.unit_price - oi.discount_amount) FROM order_items AS oi
        WHERE oi.order_id IN (SELECT order_id FROM orders WHERE status = 'completed')""")
    orders, buyers, shipping = sql_rows(warehouse, """
        SELECT COUNT(*), COUNT(DISTINCT customer_id), SUM(shipping_amount) FROM orders WHERE status = 'completed'""")[0]
    units, with_item = sql_rows(warehouse, """
        SELECT SUM(oi.quantity), COUNT(DISTINCT oi.order_id) FROM order_items AS oi
        JOIN orders AS o ON o.order_id = oi.order_id WHERE o.status = 'completed'""")[0]
    want = [revenue, orders, buyers, float(revenue) / orders, units, shipping, orders / buyers, with_item]
    assert_same([got], [want])


def test_oracle_sql_is_portable_shape():
    """The oracle never leans on DuckDB-only syntax (it must run unchanged on PostgreSQL)."""
    for metric in ("revenue", "order_count", "ad_spend", "new_customers", "lead_count"):
        sql = oracle_sql(metric, ("metric_time.month",), start="2025-01-01", end="2025-02-01").upper()
        for forbidden in ("GROUP BY ALL", "QUALIFY", "::", "EPOCH_MS", "STRFTIME"):
            assert forbidden not in sql


@pytest.mark.parametrize("metric", ["order_count", "revenue", "aov"])
def test_range_without_data(catalog, warehouse, metric):
    """Past the data: a metric filled along the time spine lists every period with its fill value
    (order_count: 0 per month); the others have no rows."""
    rows = check(catalog, warehouse, [metric], ("metric_time.month",), start="2026-01-01", end="2026-03-31",
                 nonempty=False)
    if metric_flags().get(metric, {}).get("join_to_timespine"):
        assert [r[0] for r in rows] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    else:
        assert rows == []

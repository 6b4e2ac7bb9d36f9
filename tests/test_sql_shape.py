"""The shape of the generated SQL where it matters for speed: INNER joins only where they are exact,
and a sub-result shared instead of computed twice. (The oracle tests prove the rows.)"""

from __future__ import annotations

import re

import pytest
import sqlglot

from canon.compiler.compile import compile_request
from canon.compiler.render.joins import null_rejected
from canon.compiler.request import QueryRequest
from tests.support.oracle import assert_same, canon_rows, sql_rows


def sql(catalog, metrics, dims=(), **kw) -> str:
    return compile_request(catalog, QueryRequest(metrics=metrics, dimensions=dims, **kw)).sql


def joins(text: str) -> list[tuple[str, str]]:
    return re.findall(r"(INNER|LEFT) JOIN (\w+) AS", text)


def test_filter_and_declared_relationship_make_joins_inner(catalog):
    # orders: the metric's filter rejects a missing order; products: order_items declares product_id
    # not_null and related to product (semantic_models/order_items.yml)
    text = sql(catalog, ("revenue",), ("product.category",))
    assert joins(text) == [("INNER", "products")]
    assert "INNER JOIN (SELECT \"order\".order_id AS order_id FROM orders AS \"order\" WHERE" in text


def test_joins_stay_left_without_a_guarantee(catalog):
    # orders.customer_id is related to customer but may be NULL: a NULL key keeps its order
    assert joins(sql(catalog, ("order_count",), ("customer.segment",))) == [("LEFT", "customers")]
    # a condition that a missing customer passes keeps the join LEFT
    assert joins(sql(catalog, ("order_count",), ("customer.segment",),
                     where=("customer.segment IS NULL OR customer.segment = 'enterprise'",))) == [("LEFT", "customers")]
    assert joins(sql(catalog, ("order_count",), ("customer.segment",),
                     where=("COALESCE(customer.segment, 'none') = 'none'",))) == [("LEFT", "customers")]


def test_a_null_rejecting_user_filter_makes_its_join_inner_and_first(catalog):
    text = sql(catalog, ("revenue",), ("product.category", "customer.segment"),
               where=("customer.segment = 'enterprise'",))
    assert joins(text) == [("INNER", "products"), ("INNER", "orders"), ("INNER", "customers")]
    text = sql(catalog, ("revenue",), ("customer.segment",), where=("product.category IS NULL",))
    assert ("LEFT", "customers") in joins(text)


def test_left_join_keeps_rows_without_a_match(catalog, warehouse):
    """Orders without a campaign (NULL campaign_id) would vanish under an INNER join."""
    request = QueryRequest(metrics=("order_count",), dimensions=("campaign.channel",),
                           where=("campaign.channel IS NULL OR campaign.channel <> 'email'",))
    assert ("LEFT", "campaigns") in joins(compile_request(catalog, request).sql)
    got = canon_rows(catalog, warehouse, request)
    want = sql_rows(warehouse, """
        SELECT c.channel, COUNT(*) FROM orders AS o LEFT JOIN campaigns AS c ON c.campaign_id = o.campaign_id
        WHERE o.status = 'completed' AND (c.channel IS NULL OR c.channel <> 'email') GROUP BY 1""")
    assert any(r[0] is None for r in want)
    assert_same(got, want, keys=1)


def test_period_over_period_reads_the_shared_aggregate_once(catalog):
    text = sql(catalog, ("revenue_mom_growth",), ("metric_time.month",))
    assert text.count("SUM(") == 1
    assert re.search(r'q_1 AS \(SELECT "metric_time__month", "revenue" AS "revenue_1" FROM q_0\)', text)
    # with a range the offset reads other months: its own aggregate
    ranged = sql(catalog, ("revenue_mom_growth",), ("metric_time.month",), start="2025-01-01", end="2025-06-30")
    assert ranged.count("SUM(") == 2


def test_grouped_by_key_with_labels_after(catalog, warehouse):
    """product_name is declared unique and not_null: group the lines by product_id, attach the names."""
    request = QueryRequest(metrics=("product_purchase_frequency", "revenue"),
                           dimensions=("product.product_name", "metric_time.year"))
    text = compile_request(catalog, request).sql
    grouped = text[text.index("FROM (SELECT"):text.index(') AS "_canon_grouped"')]
    assert '"order_item".product_id AS "_canon_key"' in grouped and "products" not in grouped
    got = canon_rows(catalog, warehouse, request)
    want = sql_rows(warehouse, """
        SELECT p.product_name, CAST(date_trunc('year', o.ordered_at) AS DATE), COUNT(DISTINCT i.order_id),
               SUM(i.quantity * i.unit_price - i.discount_amount)
        FROM order_items AS i JOIN orders AS o ON o.order_id = i.order_id JOIN products AS p ON p.product_id = i.product_id
        WHERE o.status = 'completed' GROUP BY 1, 2""")
    assert len(want) > 100
    assert_same(got, want, keys=2)


def test_labels_stay_in_the_scan_without_a_unique_label(catalog):
    # category is not unique: grouping by product_id would split a category's rows
    text = sql(catalog, ("product_purchase_frequency",), ("product.category",))
    assert "_canon_grouped" not in text and 'GROUP BY "product".category' in text


@pytest.mark.parametrize("condition, models", [
    ("a.x IN (1, 2)", {"a"}), ("a.x NOT IN (1)", {"a"}), ("a.x LIKE 'a%'", {"a"}),
    ("a.x BETWEEN 1 AND b.y", {"a", "b"}), ("CAST(a.t AS DATE) >= CAST('2024-01-01' AS DATE)", {"a"}),
    ("a.x + 1 > 2 AND b.y IS NULL", {"a"}),
    ("a.x IS NULL", set()), ("COALESCE(a.x, 1) = 1", set()), ("a.x = 1 OR b.y = 2", set()),
    ("(CASE WHEN a.x IS NULL THEN 1 END) = 1", set()), ("a.x IS DISTINCT FROM 1", set()),
])
def test_null_rejecting_conditions(condition, models):
    assert null_rejected([sqlglot.parse_one(condition)]) == models


def test_joined_model_is_narrowed_before_the_join(catalog):
    text = sql(catalog, ("revenue",), ("metric_time.month",))
    narrowed = text[text.index("INNER JOIN (SELECT"):text.index(') AS "order"')]
    assert "status = 'completed'" in narrowed and "DATE_TRUNC('MONTH'" in narrowed
    assert 'GROUP BY "order"."metric_time__month"' in text
    # the join is INNER (status = 'completed'): any condition on the orders alone moves in too
    moved = sql(catalog, ("revenue",), ("metric_time.month",),
                where=("order.sales_channel IS NULL OR order.sales_channel = 'web'",))
    assert "sales_channel IS NULL" in moved[moved.index("INNER JOIN (SELECT"):moved.index(') AS "order"')]
    # a condition that also reads the products stays outside, and so does the month
    kept = sql(catalog, ("revenue",), ("metric_time.month",),
               where=("order.sales_channel IS NULL OR product.category = 'Phones'",))
    assert "INNER JOIN (SELECT" not in kept


def test_a_pass_through_model_is_joined_around(catalog):
    # customer.rfm_segment lives on customer_rfm, keyed by the customer entity; orders.customer_id is
    # declared related to customer, so the customers table adds nothing but its key
    text = sql(catalog, ("revenue",), ("customer.rfm_segment",))
    assert "customers" not in text
    assert '"order".customer_id = "customer_rfm".customer_id' in text


@pytest.mark.parametrize("dims, where", [
    (("customer.rfm_segment", "customer.segment"), ()),  # a column of customers is read
    (("customer.rfm_segment",), ("customer.country_code = 'DE'",)),  # a filter (or row policy) reads it
])
def test_a_used_middle_model_stays_joined(catalog, dims, where):
    text = sql(catalog, ("revenue",), dims, where=where)
    assert "customers AS \"customer\"" in text and '"customer".customer_id = "customer_rfm".customer_id' in text


def test_the_hop_stays_without_a_declared_relationship(catalog):
    import dataclasses

    from canon.compiler.catalog import Catalog

    orders = catalog.models["order"]
    tests = tuple(t for t in orders.definition.tests if t.type != "relationships")
    changed = dataclasses.replace(orders, definition=orders.definition.model_copy(update={"tests": tests}))
    undeclared = Catalog(**{**{f.name: getattr(catalog, f.name) for f in dataclasses.fields(Catalog)},
                            "models": {**catalog.models, "order": changed}})
    assert "customers AS \"customer\"" in sql(undeclared, ("revenue",), ("customer.rfm_segment",))


@pytest.mark.parametrize("metric", ["revenue", "order_count"])
def test_joined_around_rows_equal_hand_sql(catalog, warehouse, metric):
    rfm = catalog.models["customer_rfm"].source.this.sql(dialect=warehouse.dialect)
    value = ("SUM(i.quantity * i.unit_price - i.discount_amount)" if metric == "revenue"
             else "COUNT(DISTINCT o.order_id)")
    want = sql_rows(warehouse, f"""
        SELECT r.rfm_segment, {value} FROM order_items AS i JOIN orders AS o ON o.order_id = i.order_id
        LEFT JOIN customers AS c ON c.customer_id = o.customer_id
        LEFT JOIN ({rfm}) AS r ON r.customer_id = c.customer_id
        WHERE o.status = 'completed' GROUP BY 1""")
    got = canon_rows(catalog, warehouse, QueryRequest(metrics=(metric,), dimensions=("customer.rfm_segment",)))
    assert len(want) > 3
    assert_same(got, want)


@pytest.mark.parametrize("metric, grain", [("revenue_mom_growth", "month"), ("revenue_yoy_growth", "quarter"),
                                           ("revenue_yoy_growth", "month"), ("revenue_yoy_growth", "year")])
def test_an_offset_of_whole_periods_moves_its_own_periods_forward(catalog, metric, grain):
    # a month at month grain maps periods one to one: the shifted periods come from the shifted values
    # themselves, not from a join of the time spine (PostgreSQL ran that join as an extra scan)
    assert "_canon_spine" not in sql(catalog, (metric,), (f"metric_time.{grain}",))


@pytest.mark.parametrize("metric, grain", [("revenue_mom_growth", "day"), ("revenue_yoy_growth", "day")])
def test_a_clamping_offset_still_reads_the_spine(catalog, metric, grain):
    # Mar 30 and Mar 31 both read Feb 29: the days an offset value lands in are not its own days moved
    assert "_canon_spine" in sql(catalog, (metric,), (f"metric_time.{grain}",))


def test_one_to_one_offsets():
    from canon.compiler.calendar import Window
    from canon.compiler.time_shift import one_to_one

    assert one_to_one("month", Window(1, "month")) and one_to_one("quarter", Window(1, "year"))
    assert one_to_one("day", Window(7, "day")) and one_to_one("week", Window(2, "week"))
    assert one_to_one("fiscal_quarter", Window(3, "month")) and one_to_one("hour", Window(1, "day"))
    assert not one_to_one("day", Window(1, "month"))  # clamps
    assert not one_to_one("hour", Window(1, "year"))  # clamps (Feb 29)
    assert not one_to_one("quarter", Window(1, "month")) and not one_to_one("month", Window(1, "week"))
    assert not one_to_one("week", Window(1, "month"))


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_period_over_period_by_time_is_one_full_join(catalog, dialect):
    # the hand-written shape: the aggregate beside itself one offset earlier; no union of periods and no
    # NULL-safe join (PostgreSQL can neither hash nor merge one, and JIT-compiled the extra plan nodes)
    text = compile_request(catalog, QueryRequest(metrics=("revenue_mom_growth",), dimensions=("metric_time.month",)),
                           dialect).sql
    assert "FULL JOIN" in text and "UNION" not in text and "IS NOT DISTINCT FROM" not in text
    # with another dimension the groups stay a union (a FULL JOIN cannot match NULL groups)
    other = sql(catalog, ("revenue_mom_growth",), ("metric_time.month", "product.category"))
    assert "FULL JOIN" not in other and "UNION" in other


def test_period_over_period_rows_equal_hand_sql(catalog, warehouse):
    hand = """
        WITH r AS (SELECT CAST(date_trunc('month', o.ordered_at) AS DATE) AS m,
                          SUM(i.quantity * i.unit_price - i.discount_amount) AS rev
                   FROM order_items AS i JOIN orders AS o ON o.order_id = i.order_id AND o.status = 'completed'
                   GROUP BY 1)
        SELECT COALESCE(r.m, CAST(p.m + INTERVAL '1 month' AS DATE)) AS m, r.rev, p.rev
        FROM r FULL JOIN r AS p ON p.m = CAST(r.m - INTERVAL '1 month' AS DATE)
        WHERE COALESCE(r.m, CAST(p.m + INTERVAL '1 month' AS DATE)) <= (SELECT MAX(m) FROM r)
        ORDER BY 1"""
    request = QueryRequest(metrics=("revenue", "revenue_prev_month"), dimensions=("metric_time.month",))
    assert "FULL JOIN" in compile_request(catalog, request, warehouse.dialect).sql
    assert_same(canon_rows(catalog, warehouse, request), sql_rows(warehouse, hand))

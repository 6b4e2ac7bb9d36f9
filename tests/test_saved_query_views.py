"""Saved queries as tables on the PostgreSQL wire (issue 18): a BI tool sees each saved query as a table
with its dimensions and metrics as columns; its reviewed filter applies to every read; its order applies
when the client gives none. Numbers equal hand-written SQL over the raw tables, and through psycopg."""

from __future__ import annotations

import psycopg
import pytest

from canon.server.pgwire.server import start_pg_server
from canon.server.runtime import Runtime
from canon.server.warehouses import open_warehouse
from tests.support.oracle import assert_same
from tests.support.project import copy_project, shared_demo

SAVED = """saved_queries:
  - name: coffee_spend_by_country
    description: Revenue of completed coffee lines by country.
    metrics: [revenue, order_count]
    dimensions: [customer.country_code]
    where: "product.category = 'Coffee'"
    order: [-revenue]
"""
HAND = ("SELECT c.country_code, SUM(oi.quantity * oi.unit_price - oi.discount_amount), COUNT(DISTINCT o.order_id) "
        "FROM order_items oi JOIN orders o ON o.order_id = oi.order_id JOIN products p ON p.product_id = oi.product_id "
        "JOIN customers c ON c.customer_id = o.customer_id WHERE o.status = 'completed' AND p.category = 'Coffee' {more}"
        "GROUP BY 1")


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("saved-views") / "project")
    (project / "metrics" / "saved_extra.yml").write_text(SAVED)
    runtime = Runtime.open(project, str(shared_demo()))
    handle = start_pg_server(runtime, "127.0.0.1", 0)
    try:
        with psycopg.connect(host="127.0.0.1", port=handle.port, user="analyst", dbname="canon",
                             autocommit=True) as connection:
            yield connection
    finally:
        handle.stop()
        runtime.close()


def hand(more: str = "") -> list:
    warehouse = open_warehouse(str(shared_demo()))
    try:
        return [list(r) for r in warehouse.execute(HAND.format(more=more))[1]]
    finally:
        warehouse.close()


def test_saved_query_is_a_table_with_its_filter(conn):
    tables = {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()}
    assert {"coffee_spend_by_country", "customer_category_spend", "sales"} <= tables
    columns = [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'coffee_spend_by_country' "
        "ORDER BY ordinal_position").fetchall()]
    assert columns == ["customer_country_code", "revenue", "order_count"]
    rows = conn.execute("SELECT * FROM coffee_spend_by_country").fetchall()
    assert_same([list(r) for r in rows], hand(), keys=1)
    revenues = [float(r[1]) for r in rows]
    assert revenues == sorted(revenues, reverse=True)  # the saved order, with no ORDER BY given


def test_client_filters_narrow_and_the_saved_filter_stays(conn):
    rows = conn.execute("SELECT customer_country_code, revenue, order_count FROM coffee_spend_by_country "
                        "WHERE customer_country_code IN ('DE', 'FR') ORDER BY customer_country_code").fetchall()
    assert_same([list(r) for r in rows], hand("AND c.country_code IN ('DE', 'FR') "), keys=1)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    # the whole-table total is still the coffee orders only (re-aggregated by Canon, not summed per country)
    total = conn.execute("SELECT SUM(order_count) FROM coffee_spend_by_country").fetchone()[0]
    want = open_warehouse(str(shared_demo()))
    try:
        coffee = want.execute("SELECT COUNT(DISTINCT o.order_id) FROM order_items oi JOIN orders o ON "
                              "o.order_id = oi.order_id JOIN products p ON p.product_id = oi.product_id "
                              "WHERE o.status = 'completed' AND p.category = 'Coffee'")[1][0][0]
    finally:
        want.close()
    assert int(total) == coffee

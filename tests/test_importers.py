"""`canon import cube|dbt`: public examples of each format, imported and run on a small DuckDB warehouse.

Fixtures (tests/fixtures/cube_examples, tests/fixtures/dbt_examples; sources in their README.md) are
the public definitions, unchanged. Each warehouse holds the tables those definitions expect; the
imported catalog's answers must equal hand-written SQL of the source definitions.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from canon.compiler.request import QueryRequest
from canon.server.cli import main
from canon.server.importers import import_cube, import_dbt
from canon.server.importers.cube_js import read_js_model
from canon.server.runtime import Runtime

FIXTURES = Path(__file__).parent / "fixtures"
CUBE = FIXTURES / "cube_examples"
DBT = FIXTURES / "dbt_examples"


def _rows(rows) -> list[tuple]:
    return sorted((tuple(str(v)[:10] if isinstance(v, (date, datetime, str)) or v is None else round(float(v), 6)
                         for v in row) for row in rows), key=repr)


def _import(kind: str, source: Path, out: Path, warehouse: Path) -> CliRunner:
    result = CliRunner().invoke(main, ["import", kind, str(source), "--out", str(out), "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output + result.stderr
    return result


def _insert(con, table: str, rows: list[tuple]) -> None:
    """Many rows at once through Arrow (executemany is slow in DuckDB)."""
    import pyarrow as pa

    con.register("batch", pa.table({f"c{i}": list(column) for i, column in enumerate(zip(*rows))}))
    con.execute(f"INSERT INTO {table} SELECT * FROM batch")
    con.unregister("batch")


def _check(project: Path, metrics, dimensions, hand_sql: str, **request) -> None:
    with Runtime.open(project) as runtime:
        got = runtime.query(QueryRequest(metrics=tuple(metrics), dimensions=tuple(dimensions), **request)).rows
        _, expected = runtime.run_sql(hand_sql)
    assert got and _rows(got) == _rows(expected)


# --- dbt: jaffle-sl-template ----------------------------------------------------------------------------


def _jaffle(path: Path) -> None:
    import duckdb

    rng = random.Random(7)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE customers (customer_id INTEGER, customer_name VARCHAR, customer_type VARCHAR, "
                    "first_ordered_at TIMESTAMP, last_ordered_at TIMESTAMP, count_lifetime_orders INTEGER, "
                    "lifetime_spend_pretax DECIMAL(10, 2), lifetime_spend DECIMAL(10, 2))")
        con.execute("CREATE TABLE orders (order_id INTEGER, customer_id INTEGER, location_id INTEGER, "
                    "order_total DECIMAL(10, 2), tax_paid DECIMAL(10, 2), ordered_at TIMESTAMP, is_food_order BOOLEAN, "
                    "is_drink_order BOOLEAN, order_cost DECIMAL(10, 2))")
        con.execute("CREATE TABLE order_items (order_item_id INTEGER, order_id INTEGER, product_id INTEGER, "
                    "ordered_at TIMESTAMP, product_price DECIMAL(10, 2), is_food_item INTEGER, is_drink_item INTEGER, "
                    "supply_cost DECIMAL(10, 2))")
        _insert(con, "customers", [
            (c, f"customer {c}", rng.choice(["new", "returning"]), datetime(2024, 1, 1) + timedelta(days=c),
             datetime(2024, 5, 1), rng.randint(1, 9), rng.randint(10, 900), rng.randint(10, 990)) for c in range(1, 31)])
        orders, items, item_id = [], [], 0
        for order_id in range(1, 201):
            at = datetime(2024, 1, 1, 23, 30) + timedelta(days=rng.randrange(120), hours=rng.choice([0, 1, 5]))
            lines = [(rng.randint(1, 8), round(rng.uniform(2, 15), 2)) for _ in range(rng.randint(1, 4))]
            food = [product <= 4 for product, _ in lines]
            for (product, price), is_food in zip(lines, food):
                item_id += 1
                items.append((item_id, order_id, product, at, price, int(is_food), int(not is_food), round(price / 3, 2)))
            subtotal = sum(price for _, price in lines)
            orders.append((order_id, rng.randint(1, 30), rng.randint(1, 4), round(subtotal * 1.1, 2),
                           round(subtotal * 0.1, 2), at, any(food), not all(food), round(subtotal / 3, 2)))
        _insert(con, "orders", orders)
        _insert(con, "order_items", items)


@pytest.fixture(scope="module")
def jaffle(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("jaffle")
    _jaffle(root / "jaffle.duckdb")
    _import("dbt", DBT / "jaffle_sl_template", root / "project", root / "jaffle.duckdb")
    return root / "project"


def test_dbt_simple_metrics_by_month_equal_hand_sql(jaffle):
    _check(jaffle, ["revenue", "order_total"], ["metric_time.month"], """
        WITH r AS (SELECT DATE_TRUNC('month', CAST(ordered_at AS DATE)) m, SUM(product_price) v FROM order_items GROUP BY 1),
             o AS (SELECT DATE_TRUNC('month', CAST(ordered_at AS DATE)) m, SUM(order_total) v FROM orders GROUP BY 1)
        SELECT CAST(r.m AS DATE), r.v, o.v FROM r FULL JOIN o ON r.m = o.m""")


def test_dbt_ratio_equals_hand_sql(jaffle):
    _check(jaffle, ["food_revenue_pct"], ["metric_time.month"], """
        SELECT CAST(DATE_TRUNC('month', CAST(ordered_at AS DATE)) AS DATE),
               CAST(SUM(CASE WHEN is_food_item = 1 THEN product_price ELSE 0 END) AS DOUBLE) / SUM(product_price)
        FROM order_items GROUP BY 1""")


def test_dbt_filtered_metrics_equal_hand_sql(jaffle):
    _check(jaffle, ["large_order", "food_orders", "orders"], [], """
        SELECT SUM(CASE WHEN order_total >= 20 THEN 1 END), SUM(CASE WHEN is_food_order THEN 1 END), COUNT(*) FROM orders""")


def test_dbt_filter_through_a_join_equals_hand_sql(jaffle):
    # new_customer: customers_with_orders (orders) filtered by customer__customer_type (customers)
    _check(jaffle, ["new_customer"], ["metric_time.month"], """
        SELECT CAST(DATE_TRUNC('month', CAST(o.ordered_at AS DATE)) AS DATE), COUNT(DISTINCT o.customer_id)
        FROM orders o JOIN customers c ON c.customer_id = o.customer_id WHERE c.customer_type = 'new' GROUP BY 1""")


def test_dbt_two_hop_join_equals_hand_sql(jaffle):
    # order_item -> order_id -> orders -> customer -> customers
    _check(jaffle, ["revenue"], ["customer.customer_type"], """
        SELECT c.customer_type, SUM(i.product_price) FROM order_items i
        LEFT JOIN orders o ON o.order_id = i.order_id LEFT JOIN customers c ON c.customer_id = o.customer_id GROUP BY 1""")


def test_dbt_derived_metric_over_two_models_equals_hand_sql(jaffle):
    _check(jaffle, ["order_gross_profit"], ["metric_time.month"], """
        WITH r AS (SELECT DATE_TRUNC('month', CAST(ordered_at AS DATE)) m, SUM(product_price) v FROM order_items GROUP BY 1),
             c AS (SELECT DATE_TRUNC('month', CAST(ordered_at AS DATE)) m, SUM(order_cost) v FROM orders GROUP BY 1)
        SELECT CAST(r.m AS DATE), r.v - c.v FROM r JOIN c ON r.m = c.m""")


def test_dbt_cumulative_window_equals_hand_sql(jaffle):
    # orders_last_7_days: order_count over the 7 days ending on each day (the generated time spine)
    _check(jaffle, ["orders_last_7_days"], ["metric_time.day"], """
        SELECT d, (SELECT COUNT(*) FROM orders WHERE CAST(ordered_at AS DATE) BETWEEN d - 6 AND d)
        FROM (SELECT CAST(range AS DATE) d FROM range(DATE '2024-02-01', DATE '2024-02-29', INTERVAL 1 DAY))""",
           start="2024-02-01", end="2024-02-28")


def test_dbt_all_time_cumulative_equals_hand_sql(jaffle):
    # cumulative_revenue: every order line's price up to each month's last day, from the first one on
    _check(jaffle, ["cumulative_revenue"], ["metric_time.month"], """
        WITH m AS (SELECT DISTINCT CAST(DATE_TRUNC('month', CAST(ordered_at AS DATE)) AS DATE) m FROM order_items)
        SELECT m.m, (SELECT SUM(product_price) FROM order_items
                     WHERE CAST(ordered_at AS DATE) < m.m + INTERVAL 1 MONTH) FROM m""")


def test_dbt_saved_query_runs_with_its_dimensions(jaffle):
    result = CliRunner().invoke(main, ["query", "--project", str(jaffle), "--saved-query", "weekly_revenue", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    rows = yaml.safe_load(result.stdout)["rows"]
    with Runtime.open(jaffle) as runtime:
        _, expected = runtime.run_sql("SELECT CAST(DATE_TRUNC('week', CAST(ordered_at AS DATE)) AS DATE), SUM(product_price) "
                                      "FROM order_items GROUP BY 1")
    assert _rows(rows) == _rows(expected)


def test_dbt_report_names_what_did_not_map(jaffle):
    report = (jaffle / "IMPORT_REPORT.md").read_text()
    metrics = {m["name"]: m for m in yaml.safe_load((jaffle / "metrics" / "dbt.yml").read_text())["metrics"]}
    # an all-time cumulative (no window, no grain_to_date) becomes `window: unbounded` over its measure
    assert metrics["cumulative_revenue"]["window"] == "unbounded"
    assert metrics["cumulative_revenue"]["metric"] == "cumulative_revenue_base"
    assert "all-time cumulative" not in report
    assert metrics["orders_last_7_days"]["window"] == "7 days" and metrics["orders_last_7_days"]["metric"] == "orders"
    assert "group by Entity('order_id')" in report
    sm = yaml.safe_load((jaffle / "semantic_models" / "orders.yml").read_text())["semantic_model"]
    assert sm["default_time"] == "ordered_at" and sm["table"] == "orders"
    ordered_at = next(d for d in sm["dimensions"] if d["name"] == "ordered_at")
    assert ordered_at["stored_as"] == "date"  # cast(ordered_at as DATE): no time zone moves its day
    # an entity primary nowhere (location) becomes a dimension, reported
    assert {"name": "location", "expr": "location_id"} in sm["dimensions"]
    assert "entity location — primary in no imported model" in report


def test_metricflow_fixture_conversions_are_reported_not_guessed():
    result = import_dbt(DBT / "metricflow_simple_manifest")
    report = result.report()
    assert sorted(result.models) == ["buys_source", "visits_source"]  # one-object documents, `---` separated
    assert "metric visit_buy_conversion_rate_7days — Canon counts each base event once by its model's primary key" in report
    assert "metric visit_buy_conversion_rate — a conversion without a window" in report
    assert "constant_properties" in report
    assert "schema '$source_schema' is a template" in report


def test_dbt_conversion_maps_when_the_base_model_has_a_key(tmp_path):
    (tmp_path / "m.yml").write_text("""
semantic_models:
  - name: visits
    model: ref('visits')
    defaults: {agg_time_dimension: ds}
    entities: [{name: visit, type: primary, expr: visit_id}, {name: user, type: foreign, expr: user_id}]
    dimensions: [{name: ds, type: time, type_params: {time_granularity: day}}]
    measures: [{name: visit_count, agg: sum, expr: 1}]
  - name: buys
    model: ref('buys')
    defaults: {agg_time_dimension: ds}
    entities: [{name: buy, type: primary, expr: buy_id}, {name: user, type: foreign, expr: user_id}]
    dimensions: [{name: ds, type: time, type_params: {time_granularity: day}}]
    measures: [{name: buy_count, agg: sum, expr: 1}]
metrics:
  - name: visit_to_buy
    type: conversion
    type_params:
      conversion_type_params: {entity: user, base_measure: visit_count, conversion_measure: buy_count, window: 7 days}
""")
    result = import_dbt(tmp_path)
    metric = next(m for m in result.metrics if m["name"] == "visit_to_buy")
    assert metric == {"name": "visit_to_buy", "type": "conversion", "entity": "user", "base": "visit_count",
                      "conversion": "buy_count", "window": "7 days", "calculation": "conversion_rate"}
    assert result.models["user"]["entities"] == [{"name": "user", "type": "primary"}]  # the anchor of `user`
    assert "closest base event" in result.report()  # the one semantic difference, said out loud
    # one visit per user, so MetricFlow's and Canon's conversion definitions agree on this data
    import duckdb

    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE TABLE visits AS SELECT i AS visit_id, i AS user_id, DATE '2024-03-01' + CAST(i % 20 AS INTEGER) AS ds "
                    "FROM range(1, 61) t(i)")
        con.execute("CREATE TABLE buys AS SELECT 100 + i AS buy_id, i AS user_id, DATE '2024-03-01' + CAST(i % 20 + i % 11 AS INTEGER) AS ds "
                    "FROM range(1, 61) t(i) WHERE i % 3 <> 0")
    _import("dbt", tmp_path, tmp_path / "project", tmp_path / "w.duckdb")
    _check(tmp_path / "project", ["visit_to_buy"], ["metric_time.month"], """
        SELECT CAST(DATE_TRUNC('month', v.ds) AS DATE),
               CAST(COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM buys b WHERE b.user_id = v.user_id
                                                   AND b.ds >= v.ds AND b.ds <= v.ds + 7)) AS DOUBLE) / COUNT(*)
        FROM visits v GROUP BY 1""")


# --- Cube: cubedevinc/ecommerce_demo (YAML) and cube-js/cube react-material-dashboard (JavaScript) ----------


def _ecommerce(path: Path) -> None:
    import duckdb

    rng = random.Random(11)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA ECOM_NEW")
        con.execute("CREATE SCHEMA ECOMMERCE")
        con.execute("CREATE TABLE ECOM_NEW.USERS (ID INTEGER, FIRST_NAME VARCHAR, LAST_NAME VARCHAR, EMAIL VARCHAR, "
                    "AGE INTEGER, GENDER VARCHAR, STREET_ADDRESS VARCHAR, CITY VARCHAR, STATE VARCHAR, COUNTRY VARCHAR, "
                    "POSTAL_CODE VARCHAR, LATITUDE DOUBLE, LONGITUDE DOUBLE, TRAFFIC_SOURCE VARCHAR, CREATED_AT TIMESTAMP)")
        con.execute("CREATE TABLE ECOM_NEW.PRODUCTS (ID INTEGER, BRAND VARCHAR, DEPARTMENT VARCHAR, SKU VARCHAR, "
                    "NAME VARCHAR, CATEGORY VARCHAR, COST DOUBLE, RETAIL_PRICE DOUBLE, DISTRIBUTION_CENTER_ID INTEGER)")
        con.execute("CREATE TABLE ECOM_NEW.ORDERS (ORDER_ID INTEGER, USER_ID INTEGER, STATUS VARCHAR, GENDER VARCHAR, "
                    "NUM_OF_ITEM INTEGER, RETURNED_AT VARCHAR, CREATED_AT TIMESTAMP, DELIVERED_AT TIMESTAMP, "
                    "SHIPPED_AT TIMESTAMP)")
        con.execute("CREATE TABLE ECOMMERCE.ORDER_ITEMS (ID INTEGER, ORDER_ID INTEGER, USER_ID INTEGER, PRODUCT_ID INTEGER, "
                    "INVENTORY_ITEM_ID INTEGER, STATUS VARCHAR, SALE_PRICE DOUBLE, CREATED_AT TIMESTAMP, "
                    "SHIPPED_AT TIMESTAMP, DELIVERED_AT TIMESTAMP, RETURNED_AT TIMESTAMP)")
        _insert(con, "ECOM_NEW.USERS", [
            (u, f"First{u % 7}", f"Last{u % 5}", f"u{u}@example.com", 20 + u % 40, rng.choice("FM"), "1 Road",
             rng.choice(["Oslo", "Lyon", "Porto"]), "S", rng.choice(["NO", "FR", "PT"]), "0000", 0.0, 0.0,
             rng.choice(["Search", "Email"]), datetime(2023, 1, 1) + timedelta(days=u)) for u in range(1, 41)])
        _insert(con, "ECOM_NEW.PRODUCTS", [
            (p, f"Brand{p % 3}", rng.choice(["Men", "Women"]), f"SKU{p}", f"Product {p}",
             rng.choice(["Jeans", "Tops", "Socks"]), 5.0 + p, 10.0 + 2 * p, 1) for p in range(1, 13)])
        orders, items, item_id = [], [], 0
        for order_id in range(1, 151):
            user, at = rng.randint(1, 40), datetime(2024, 2, 1) + timedelta(hours=rng.randrange(24 * 90))
            status = rng.choice(["Complete", "Shipped", "Cancelled", "Returned"])
            n = rng.randint(1, 4)
            orders.append((order_id, user, status, "F", n, None, at, None, at + timedelta(days=1)))
            for _ in range(n):
                item_id += 1
                delivered = at + timedelta(days=3) if rng.random() < 0.6 else None
                items.append((item_id, order_id, user, rng.randint(1, 12), item_id * 3, status,
                              round(rng.uniform(5, 80), 2), at, None, delivered, None))
        _insert(con, "ECOM_NEW.ORDERS", orders)
        _insert(con, "ECOMMERCE.ORDER_ITEMS", items)


@pytest.fixture(scope="module")
def ecommerce(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ecommerce")
    _ecommerce(root / "shop.duckdb")
    _import("cube", CUBE / "ecommerce_demo", root / "project", root / "shop.duckdb")
    return root / "project"


def test_cube_measures_through_joins_equal_hand_sql(ecommerce):
    _check(ecommerce, ["order_items_total_sale_price", "order_items_order_count", "order_items_count"],
           ["products.category", "users.country"], """
        SELECT p.CATEGORY, u.COUNTRY, SUM(i.SALE_PRICE), COUNT(DISTINCT i.ORDER_ID), COUNT(*)
        FROM ECOMMERCE.ORDER_ITEMS i LEFT JOIN ECOM_NEW.PRODUCTS p ON i.PRODUCT_ID = p.ID
        LEFT JOIN ECOM_NEW.USERS u ON i.USER_ID = u.ID GROUP BY 1, 2""")


def test_cube_dimension_built_from_dimensions_and_boolean_equal_hand_sql(ecommerce):
    _check(ecommerce, ["order_items_total_sale_price"], ["users.full_name", "order_items.is_delivered"], """
        SELECT CONCAT(u.FIRST_NAME, ' ', u.LAST_NAME), i.DELIVERED_AT IS NOT NULL, SUM(i.SALE_PRICE)
        FROM ECOMMERCE.ORDER_ITEMS i LEFT JOIN ECOM_NEW.USERS u ON i.USER_ID = u.ID GROUP BY 1, 2""")


def test_cube_count_by_time_and_joined_status_equal_hand_sql(ecommerce):
    _check(ecommerce, ["order_items_count"], ["orders.status", "metric_time.month"], """
        SELECT o.STATUS, CAST(DATE_TRUNC('month', i.CREATED_AT) AS DATE), COUNT(*) FROM ECOMMERCE.ORDER_ITEMS i
        LEFT JOIN ECOM_NEW.ORDERS o ON i.ORDER_ID = o.ORDER_ID GROUP BY 1, 2""")
    _check(ecommerce, ["orders_count"], ["orders.status"], "SELECT STATUS, COUNT(*) FROM ECOM_NEW.ORDERS GROUP BY 1")


def test_cube_report_and_view(ecommerce):
    report = (ecommerce / "IMPORT_REPORT.md").read_text()
    assert "measure order_items.revenue_share — multi-stage measures are not supported" in report
    assert "join order_items -> inventory_items — 'inventory_items' is not an imported cube" in report
    assert "pre_aggregations" in report
    view = yaml.safe_load((ecommerce / "metrics" / "cube.yml").read_text())["views"][0]
    assert view["name"] == "orders_transactions" and "order_items_total_sale_price" in view["metrics"]
    assert "users.city" in view["dimensions"]
    result = CliRunner().invoke(main, ["validate", "--project", str(ecommerce), "--warehouse"])
    assert result.exit_code == 0, result.stderr


def _dashboard(path: Path) -> None:
    import duckdb

    rng = random.Random(3)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA public")
        con.execute("CREATE TABLE public.users (id INTEGER, city VARCHAR, gender VARCHAR, company VARCHAR, "
                    "created_at TIMESTAMP)")
        con.execute("CREATE TABLE public.orders (id INTEGER, user_id INTEGER, number INTEGER, status VARCHAR, "
                    "created_at TIMESTAMP, completed_at TIMESTAMP, product_id INTEGER)")
        _insert(con, "public.users", [
            (u, rng.choice(["Austin", "Boston", "Chicago"]), rng.choice("fm"), f"Co{u % 4}", datetime(2023, 5, u))
            for u in range(1, 21)])
        _insert(con, "public.orders", [
            (o, rng.randint(1, 20), rng.randint(1, 9), rng.choice(["completed", "processing", "shipped"]),
             datetime(2024, 1, 1) + timedelta(hours=7 * o), None, rng.randint(1, 5)) for o in range(1, 121)])


def test_cube_javascript_model_equals_hand_sql(tmp_path):
    _dashboard(tmp_path / "dash.duckdb")
    _import("cube", CUBE / "react_material_dashboard", tmp_path / "project", tmp_path / "dash.duckdb")
    project = tmp_path / "project"
    # a `number` measure over two measures, one of them filtered, by a dimension of a joined cube
    _check(project, ["orders_percent_of_completed_orders", "orders_number"], ["users.city"], """
        SELECT u.city, COUNT(CASE WHEN o.status = 'completed' THEN o.id END) * 100 / COUNT(o.id), SUM(o.number)
        FROM public.orders o LEFT JOIN public.users u ON o.user_id = u.id GROUP BY 1""")
    _check(project, ["orders_orders_completed_count"], ["orders.created_at.month"], """
        SELECT CAST(DATE_TRUNC('month', created_at) AS DATE), COUNT(CASE WHEN status = 'completed' THEN id END)
        FROM public.orders GROUP BY 1""")
    report = (project / "IMPORT_REPORT.md").read_text()
    assert "createdAt -> created_at" in report and "cube Orders — renamed to 'orders'" in report


def test_cube_js_parser_reads_the_object_literal_subset(tmp_path):
    source = tmp_path / "A.js"
    source.write_text("// model\ncube(`A`, {\n  sqlTable: 'a', // trailing\n  measures: {n: {type: `count`, "
                      "drillMembers: [id, A.x]}},\n  dimensions: {id: {sql: `${CUBE}.id`, type: `number`, "
                      "primaryKey: true,},},\n});\ncube(`B`, { sql: () => `SELECT 1` });\n")
    [document] = read_js_model(source)
    [cube] = document["cubes"]
    assert cube == {"name": "A", "sqlTable": "a", "measures": {"n": {"type": "count", "drillMembers": ["id", "A.x"]}},
                    "dimensions": {"id": {"sql": "${CUBE}.id", "type": "number", "primaryKey": True}}}
    assert cube.line == 2
    assert document["_problems"] == ["A.js:7: cube(...) is not a plain object literal (unsupported JavaScript '(')"]
    result = import_cube(tmp_path)
    assert "A.js:7: cube — cube(...) is not a plain object literal" in result.report()


def test_cube_segments_and_refs_to_other_cubes_are_mapped_or_reported(tmp_path):
    (tmp_path / "m.yml").write_text("""
cubes:
  - name: orders
    sql_table: orders
    joins:
      - {name: users, sql: "{CUBE}.user_id = {users}.id", relationship: many_to_one}
    dimensions:
      - {name: id, sql: id, type: number, primary_key: true}
      - {name: status, sql: "{CUBE}.status", type: string}
      - {name: user_city, sql: "{users.city}", type: string}
    measures:
      - {name: completed, type: count, filters: [{sql: "{CUBE}.status = 'completed'"}]}
    segments:
      - {name: done, sql: "{CUBE}.status = 'completed'"}
      - {name: sf, sql: "{CUBE}.location = 'San Francisco'"}
  - name: users
    sql_table: users
    dimensions:
      - {name: id, sql: id, type: number, primary_key: true}
      - {name: city, sql: city, type: string}
""")
    result = import_cube(tmp_path)
    orders = result.models["orders"]
    assert orders["segments"] == [{"name": "done", "filter": "orders.status = 'completed'"}]
    assert {"name": "users", "type": "foreign", "expr": "user_id"} in orders["entities"]
    report = result.report()
    assert "segment orders.sf — column 'location' is not a dimension of orders" in report
    assert "dimension orders.user_city — refers to '{users.city}' of another cube" in report


def test_import_refuses_to_overwrite_without_force(tmp_path):
    args = ["import", "cube", str(CUBE / "react_material_dashboard"), "--out", str(tmp_path)]
    assert CliRunner().invoke(main, args).exit_code == 0
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "already exist" in again.stderr and "--force" in again.stderr
    assert CliRunner().invoke(main, [*args, "--force"]).exit_code == 0


def test_cube_quoted_table_becomes_a_query_over_it(tmp_path):
    (tmp_path / "m.yml").write_text('cubes:\n  - name: t\n    sql_table: \'"My Schema"."Line Items"\'\n'
                                    '    measures: [{name: n, type: count}]\n')
    assert import_cube(tmp_path).models["t"]["sql"] == 'SELECT * FROM "My Schema"."Line Items"'


def test_dbt_measure_and_saved_query_details(tmp_path):
    (tmp_path / "m.yml").write_text("""
semantic_models:
  - name: balances
    node_relation: {schema_name: finance, alias: daily_balances}
    defaults: {agg_time_dimension: ds}
    entities: [{name: account, type: primary, expr: account_id}]
    dimensions:
      - {name: ds, type: time, type_params: {time_granularity: day}}
      - {name: is_open, type: categorical}
    measures:
      - name: balance
        agg: sum
        non_additive_dimension: {name: ds, window_choice: max, window_groupings: [account]}
      - {name: open_accounts, agg: sum_boolean, expr: is_open, create_metric: true}
      - {name: p90_balance, agg: percentile, expr: balance, agg_params: {percentile: 0.9}}
metrics:
  - {name: total_balance, type: simple, type_params: {measure: balance}}
  - name: balance_mtd
    type: cumulative
    type_params: {measure: balance, cumulative_type_params: {grain_to_date: month}}
saved_queries:
  - name: open_by_month
    query_params:
      metrics: [open_accounts]
      group_by: ["TimeDimension('metric_time', 'month')", "Dimension('account__is_open')"]
      where: ["{{ Dimension('account__ds').grain('month') }} >= '2024-01-01'", "{{ Dimension('account__is_open') }}"]
      order_by: ["-metric_time__month"]
      limit: 10
""")
    result = import_dbt(tmp_path)
    model = result.models["balances"]
    assert model["table"] == "finance.daily_balances"
    measures = {m["name"]: m for m in model["measures"]}
    assert measures["balance"]["non_additive"] == {"time": "ds", "window": "last", "groupings": ["account"]}
    assert measures["open_accounts"] == {"name": "open_accounts", "agg": "sum", "expr": "CAST(is_open AS INTEGER)"}
    assert measures["p90_balance"]["percentile"] == 0.9
    metrics = {m["name"]: m for m in result.metrics}
    assert metrics["open_accounts"] == {"name": "open_accounts", "type": "simple", "measure": "balances.open_accounts"}
    assert metrics["balance_mtd"] == {"name": "balance_mtd", "type": "cumulative", "metric": "total_balance",
                                      "grain_to_date": "month"}
    [saved] = result.saved_queries
    assert saved == {"name": "open_by_month", "metrics": ["open_accounts"],
                     "dimensions": ["metric_time.month", "account.is_open"],
                     "where": "(account.ds.month >= '2024-01-01') AND (account.is_open)",
                     "order": ["-metric_time.month"], "limit": 10}


def test_metricflow_scd_fixture_joins_the_version_valid_at_each_booking(tmp_path):
    """MetricFlow's scd_manifest: a natural key with validity_params becomes Canon's `validity:`."""
    import duckdb

    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("""CREATE TABLE dim_listings AS SELECT * FROM (VALUES
            (1, DATE '2024-01-01', DATE '2024-02-01', 'US', true, 2, 10), (1, DATE '2024-02-01', NULL, 'US', false, 4, 10),
            (2, DATE '2024-01-01', NULL, 'FR', NULL, 3, 11), (3, DATE '2024-01-15', DATE '2024-03-01', 'FR', true, 1, 12))
            AS t(listing_id, active_from, active_to, country, is_lux, capacity, user_id)""")
        con.execute("""CREATE TABLE fct_bookings AS SELECT i AS booking_id, i % 3 + 1 AS listing_id, i % 5 AS guest_id,
            i % 2 AS host_id, DATE '2024-01-01' + CAST(i % 70 AS INTEGER) AS ds,
            DATE '2024-01-01' + CAST(i % 70 AS INTEGER) AS paid_at, i % 4 = 0 AS is_instant,
            CAST(i * 3 % 50 AS DOUBLE) AS booking_value FROM range(1, 201) AS t(i)""")
    _import("dbt", DBT / "metricflow_scd_manifest", tmp_path / "project", tmp_path / "w.duckdb")
    listings = yaml.safe_load((tmp_path / "project" / "semantic_models" / "listings.yml").read_text())["semantic_model"]
    assert listings["validity"] == {"from": "active_from", "to": "active_to"}
    _check(tmp_path / "project", ["family_bookings", "potentially_lux_bookings", "bookings"], ["listing.country"], """
        SELECT l.country, SUM(CASE WHEN l.capacity > 2 THEN 1 END), SUM(CASE WHEN l.is_lux OR l.is_lux IS NULL THEN 1 END),
               COUNT(*)
        FROM fct_bookings b LEFT JOIN dim_listings l ON l.listing_id = b.listing_id AND l.active_from <= b.ds
             AND (l.active_to IS NULL OR b.ds < l.active_to)
        GROUP BY 1""")


def test_an_unreadable_file_is_reported_and_the_rest_imported(tmp_path):
    (tmp_path / "ok.yml").write_text("cubes:\n  - name: a\n    sql_table: a\n    measures: [{name: n, type: count}]\n")
    (tmp_path / "templated.yml").write_text("cubes:\n{%- for name in ['x', 'y'] %}\n  - name: {{ name }}\n{% endfor %}\n")
    result = import_cube(tmp_path)
    assert list(result.models) == ["a"]
    assert "templated.yml: file — malformed YAML at line 2" in result.report()

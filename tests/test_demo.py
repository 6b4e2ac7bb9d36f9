"""Tests for the deterministic demo warehouse (server/demo.py)."""

from __future__ import annotations

import duckdb
import pytest

from canon.server.demo import build_demo

# The schema contract, written out independently of the generator.
EXPECTED_SCHEMA = {
    "customers": {
        "customer_id": "BIGINT", "signup_at": "TIMESTAMP", "country_code": "VARCHAR", "segment": "VARCHAR",
        "acquisition_channel": "VARCHAR", "first_campaign_id": "BIGINT",
    },
    "products": {
        "product_id": "BIGINT", "product_name": "VARCHAR", "category": "VARCHAR", "subcategory": "VARCHAR",
        "brand": "VARCHAR", "tier": "VARCHAR", "list_price": "DECIMAL(12,2)", "unit_cost": "DECIMAL(12,2)",
    },
    "orders": {
        "order_id": "BIGINT", "customer_id": "BIGINT", "ordered_at": "TIMESTAMP", "status": "VARCHAR",
        "sales_channel": "VARCHAR", "campaign_id": "BIGINT", "shipping_amount": "DECIMAL(12,2)",
    },
    "order_items": {
        "order_item_id": "BIGINT", "order_id": "BIGINT", "product_id": "BIGINT", "quantity": "INTEGER",
        "unit_price": "DECIMAL(12,2)", "discount_amount": "DECIMAL(12,2)",
    },
    "campaigns": {
        "campaign_id": "BIGINT", "campaign_name": "VARCHAR", "channel": "VARCHAR", "funnel": "VARCHAR",
        "country_code": "VARCHAR", "started_on": "DATE",
    },
    "ad_spend": {
        "campaign_id": "BIGINT", "spend_date": "DATE", "country_code": "VARCHAR", "spend": "DECIMAL(12,2)",
        "impressions": "BIGINT", "clicks": "BIGINT", "_etl_loaded_at": "TIMESTAMP",
    },
    "leads": {
        "lead_id": "BIGINT", "campaign_id": "BIGINT", "created_at": "TIMESTAMP", "country_code": "VARCHAR",
        "source": "VARCHAR", "meeting_at": "TIMESTAMP", "converted_customer_id": "BIGINT",
    },
    "time_spine": {"date_day": "DATE"},
    "customer_segment_history": {"history_id": "BIGINT", "customer_id": "BIGINT", "segment": "VARCHAR",
                                 "valid_from": "TIMESTAMP", "valid_to": "TIMESTAMP"},
}
PRIMARY_KEYS = {
    "customers": "customer_id", "products": "product_id", "orders": "order_id",
    "order_items": "order_item_id", "campaigns": "campaign_id", "leads": "lead_id", "time_spine": "date_day",
    "customer_segment_history": "history_id",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "warehouse.duckdb"
    counts = build_demo(path, scale=0.5, seed=7)
    return path, counts


@pytest.fixture(scope="module")
def con(built):
    connection = duckdb.connect(str(built[0]), read_only=True)
    yield connection
    connection.close()


def scalar(con, sql):
    return con.execute(sql).fetchone()[0]


def contents(path):
    with duckdb.connect(str(path), read_only=True) as c:
        return {t: c.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in EXPECTED_SCHEMA}  # test oracle


# -- API, determinism, atomic write -------------------------------------------


def test_counts_match_tables(built, con):
    _, counts = built
    assert set(counts) == set(EXPECTED_SCHEMA)
    for table, n in counts.items():
        assert scalar(con, f"SELECT count(*) FROM {table}") == n > 0


@pytest.mark.slow  # builds the demo three times
def test_same_seed_same_data_other_seed_differs(tmp_path):
    a = contents_of_build(tmp_path / "a.duckdb", seed=1)
    b = contents_of_build(tmp_path / "b.duckdb", seed=1)
    c = contents_of_build(tmp_path / "c.duckdb", seed=2)
    assert a == b
    assert a["orders"] != c["orders"] and a["ad_spend"] != c["ad_spend"]


def contents_of_build(path, seed):
    build_demo(path, scale=0.1, seed=seed)
    return contents(path)


def test_overwrites_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "nested" / "dir" / "demo.duckdb"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database")
    counts = build_demo(path, scale=0.05, seed=3)
    assert [p.name for p in path.parent.iterdir()] == ["demo.duckdb"]
    with duckdb.connect(str(path), read_only=True) as c:
        assert c.execute("SELECT count(*) FROM orders").fetchone()[0] == counts["orders"]


def test_rejects_non_positive_scale(tmp_path):
    with pytest.raises(ValueError):
        build_demo(tmp_path / "x.duckdb", scale=0)


# -- schema ---------------------------------------------------------------------


def test_schema(con):
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'main'"
    ).fetchall()
    actual: dict[str, dict[str, str]] = {}
    for table, column, dtype in rows:
        actual.setdefault(table, {})[column] = dtype
    # and the (empty) table recommendation feedback is loaded into, so its metrics answer from day one
    feedback = {"event_id": "VARCHAR", "customer_id": "BIGINT", "product_id": "BIGINT", "event": "VARCHAR",
                "recommendation_id": "VARCHAR", "occurred_at": "TIMESTAMP", "received_at": "TIMESTAMP"}
    assert actual == {**EXPECTED_SCHEMA, "recommendation_feedback": feedback}
    assert scalar(con, "SELECT count(*) FROM recommendation_feedback") == 0


# -- structure invariants ------------------------------------------------------------


@pytest.mark.parametrize("table", sorted(PRIMARY_KEYS))
def test_primary_keys_unique(con, table):
    pk = PRIMARY_KEYS[table]
    assert scalar(con, f"SELECT count(*) = count(DISTINCT {pk}) AND count({pk}) = count(*) FROM {table}")


@pytest.mark.parametrize(
    "child, column, parent, key",
    [
        ("order_items", "order_id", "orders", "order_id"),
        ("order_items", "product_id", "products", "product_id"),
        ("orders", "customer_id", "customers", "customer_id"),
        ("orders", "campaign_id", "campaigns", "campaign_id"),
        ("customers", "first_campaign_id", "campaigns", "campaign_id"),
        ("ad_spend", "campaign_id", "campaigns", "campaign_id"),
        ("leads", "campaign_id", "campaigns", "campaign_id"),
        ("leads", "converted_customer_id", "customers", "customer_id"),
    ],
)
def test_references_exist(con, child, column, parent, key):
    orphans = scalar(
        con,
        f"SELECT count(*) FROM {child} c WHERE c.{column} IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{key} = c.{column})",
    )
    assert orphans == 0


def test_no_order_before_signup(con):
    assert scalar(con, """
        SELECT count(*) FROM orders o JOIN customers c USING (customer_id) WHERE o.ordered_at < c.signup_at
    """) == 0


def test_time_range_and_every_month_has_orders(con):
    months = scalar(con, "SELECT count(DISTINCT date_trunc('month', ordered_at)) FROM orders")
    lo, hi = con.execute("SELECT min(ordered_at), max(ordered_at) FROM orders").fetchone()
    assert months == 24
    assert lo.year == 2024 and hi.year == 2025
    assert scalar(con, "SELECT min(signup_at) >= TIMESTAMP '2024-01-01' FROM customers")


def test_order_campaigns_started_by_order_date(con):
    assert scalar(con, """
        SELECT count(*) FROM orders o JOIN campaigns c USING (campaign_id) WHERE o.ordered_at < c.started_on
    """) == 0
    share = scalar(con, "SELECT avg(CASE WHEN campaign_id IS NULL THEN 0 ELSE 1 END) FROM orders")
    assert 0.3 < share < 0.5


def test_status_shares(con):
    shares = dict(con.execute(
        "SELECT status, count(*) / sum(count(*)) OVER () FROM orders GROUP BY status"
    ).fetchall())
    assert set(shares) == {"completed", "cancelled", "returned"}
    assert 0.80 < shares["completed"] < 0.90
    assert 0.07 < shares["cancelled"] < 0.13
    assert 0.03 < shares["returned"] < 0.07


def test_premium_priced_above_entry_within_category(con):
    assert scalar(con, "SELECT count(DISTINCT category) FROM products") >= 8
    violations = con.execute("""
        SELECT category FROM products GROUP BY category
        HAVING min(list_price) FILTER (WHERE tier = 'premium') <= max(list_price) FILTER (WHERE tier = 'mid')
            OR min(list_price) FILTER (WHERE tier = 'mid') <= max(list_price) FILTER (WHERE tier = 'entry')
            OR count(DISTINCT tier) <> 3
    """).fetchall()
    assert violations == []
    assert scalar(con, "SELECT count(*) FROM products WHERE NOT (0 < unit_cost AND unit_cost < list_price)") == 0


def test_baskets(con):
    lines = con.execute("""
        SELECT min(n), max(n), avg(n), max(n - distinct_products)
        FROM (SELECT order_id, count(*) AS n, count(DISTINCT product_id) AS distinct_products
              FROM order_items GROUP BY order_id)
    """).fetchone()
    assert lines[0] >= 1 and lines[1] <= 6 and 2.0 < lines[2] < 3.0
    assert lines[3] == 0, "duplicate product within an order"
    assert scalar(con, "SELECT count(*) FROM orders WHERE order_id NOT IN (SELECT order_id FROM order_items)") == 0
    assert scalar(con, """
        SELECT count(*) FROM order_items
        WHERE quantity < 1 OR discount_amount < 0 OR discount_amount >= quantity * unit_price
    """) == 0


def test_some_customers_never_order_and_repeat_buyers_exist(con):
    never = scalar(con, "SELECT count(*) FROM customers WHERE customer_id NOT IN (SELECT customer_id FROM orders)")
    repeat = scalar(con, "SELECT count(*) FROM (SELECT customer_id FROM orders GROUP BY 1 HAVING count(*) >= 5)")
    assert never > 0 and repeat > 0


def test_first_campaign_matches_acquisition_channel(con):
    assert scalar(con, """
        SELECT count(*) FROM customers c LEFT JOIN campaigns k ON k.campaign_id = c.first_campaign_id
        WHERE (c.acquisition_channel IN ('organic', 'referral')) <> (c.first_campaign_id IS NULL)
           OR (k.channel IS NOT NULL AND k.channel <> c.acquisition_channel)
    """) == 0


def test_strong_product_pair(con):
    best = scalar(con, """
        WITH lines AS (SELECT DISTINCT i.order_id, i.product_id FROM order_items i
                       JOIN orders o USING (order_id) WHERE o.status = 'completed'),
             n AS (SELECT count(DISTINCT order_id)::DOUBLE AS n FROM lines),
             single AS (SELECT product_id, count(*) AS c FROM lines GROUP BY 1),
             pairs AS (SELECT a.product_id AS x, b.product_id AS y, count(*) AS c FROM lines a
                       JOIN lines b ON a.order_id = b.order_id AND a.product_id < b.product_id GROUP BY 1, 2)
        SELECT max(p.c * n.n / (sx.c * sy.c)) FROM pairs p, n
        JOIN single sx ON sx.product_id = p.x JOIN single sy ON sy.product_id = p.y
        WHERE p.c >= 20
    """)
    assert best > 2


def test_leads(con):
    assert scalar(con, "SELECT count(*) FROM leads WHERE meeting_at <= created_at") == 0
    assert scalar(con, "SELECT count(*) FROM leads WHERE campaign_id IS NULL") == 0
    no_meeting = scalar(con, "SELECT avg(CASE WHEN meeting_at IS NULL THEN 1 ELSE 0 END) FROM leads")
    assert 0.4 <= no_meeting <= 0.6
    assert scalar(con, """
        SELECT count(*) FROM leads l JOIN customers c ON c.customer_id = l.converted_customer_id
        WHERE c.signup_at <= l.created_at
    """) == 0
    assert scalar(con, "SELECT count(*) FROM leads WHERE converted_customer_id IS NOT NULL") > 0
    assert scalar(con, """
        SELECT count(*) FROM leads WHERE meeting_at IS NULL AND converted_customer_id IS NOT NULL
    """) > 0


def test_ad_spend_values(con):
    assert scalar(con, """
        SELECT count(*) FROM ad_spend
        WHERE spend < 0 OR clicks < 0 OR clicks > impressions OR _etl_loaded_at <= spend_date + INTERVAL 1 DAY
    """) == 0
    assert scalar(con, """
        SELECT count(*) FROM ad_spend a JOIN campaigns c USING (campaign_id) WHERE a.spend_date < c.started_on
    """) == 0


def test_ad_spend_restatements(con):
    keys, restated, max_rows, ambiguous = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE n > 1), max(n), count(*) FILTER (WHERE n <> loads)
        FROM (SELECT campaign_id, spend_date, country_code, count(*) AS n,
                     count(DISTINCT _etl_loaded_at) AS loads
              FROM ad_spend GROUP BY ALL)
    """).fetchone()
    assert 0.02 < restated / keys < 0.10
    assert max_rows == 3
    assert ambiguous == 0
    differing = scalar(con, """
        SELECT count(*) FROM (SELECT campaign_id, spend_date, country_code FROM ad_spend GROUP BY ALL
                              HAVING count(DISTINCT (spend, impressions, clicks)) > 1)
    """)
    assert differing > 0.5 * restated


def test_time_spine_covers_the_data_with_every_day(con):
    """Rolling windows and gap filling need one row per day around the whole data range."""
    first, last, days = con.execute("SELECT MIN(date_day), MAX(date_day), COUNT(*) FROM time_spine").fetchone()
    lo, hi = con.execute("SELECT MIN(ordered_at), MAX(ordered_at) FROM orders").fetchone()
    assert first < lo.date() and hi.date() < last
    assert days == (last - first).days + 1

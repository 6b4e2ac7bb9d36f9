"""Canon's generated SQL against the tightest correct hand-written SQL, per KPI query.

    python bench/sql_vs_hand.py [--scale 20] [--path FILE] [--runs 5] [--only NAME ...]
                                [--postgres postgresql://...] [--no-duckdb]

Builds (or reuses) the demo warehouse at `--scale` (`canon demo --path FILE --scale N`), compiles
each KPI request with the compiler, checks that Canon's rows equal the hand query's rows, then runs
the two alternately (one warm-up each, then `--runs` pairs) on the same connection and prints the
median times and the ratio Canon/hand. With `--postgres URL` the same queries run on PostgreSQL
(a database already holding the demo, e.g. loaded with `canon demo --target URL --scale N`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from canon.compiler.compile import compile_request, load_catalog
from canon.compiler.request import QueryRequest

ROOT = Path(__file__).resolve().parents[1]

REVENUE = "i.quantity * i.unit_price - i.discount_amount"
COMPLETED = "JOIN orders AS o ON o.order_id = i.order_id AND o.status = 'completed'"
MONTH = "CAST(date_trunc('month', o.ordered_at) AS DATE)"

# name: (metrics, dimensions, hand SQL; {rfm} and {median:x} are filled per dialect)
CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "cross_sell_product_pair": (
        ("cross_sell_score",), ("antecedent.product_name", "consequent.product_name"), f"""
        WITH b AS (SELECT DISTINCT i.order_id, i.product_id FROM order_items AS i {COMPLETED}),
        n AS (SELECT product_id, COUNT(*) AS n FROM b GROUP BY product_id),
        pr AS (SELECT x.product_id AS a, y.product_id AS c, COUNT(*) AS n_ac
               FROM b AS x JOIN b AS y ON x.order_id = y.order_id AND x.product_id <> y.product_id GROUP BY 1, 2)
        SELECT pa.product_name, pc.product_name, CAST(pr.n_ac AS DOUBLE PRECISION) / n.n
        FROM pr JOIN n ON n.product_id = pr.a
        JOIN products AS pa ON pa.product_id = pr.a JOIN products AS pc ON pc.product_id = pr.c"""),
    "cross_sell_category_pair": (
        ("cross_sell_score",), ("antecedent.category", "consequent.category"), f"""
        WITH b AS (SELECT DISTINCT i.order_id, p.category FROM order_items AS i {COMPLETED}
                   JOIN products AS p ON p.product_id = i.product_id),
        n AS (SELECT category, COUNT(*) AS n FROM b GROUP BY category),
        pr AS (SELECT x.category AS a, y.category AS c, COUNT(*) AS n_ac
               FROM b AS x JOIN b AS y ON x.order_id = y.order_id AND x.category <> y.category GROUP BY 1, 2)
        SELECT pr.a, pr.c, CAST(pr.n_ac AS DOUBLE PRECISION) / n.n FROM pr JOIN n ON n.category = pr.a"""),
    "revenue_by_rfm_segment": (
        ("revenue",), ("customer.rfm_segment",), f"""
        SELECT r.rfm_segment, SUM({REVENUE}) FROM order_items AS i {COMPLETED}
        LEFT JOIN ({{rfm}}) AS r ON r.customer_id = o.customer_id GROUP BY 1"""),
    "product_purchase_frequency": (
        ("product_purchase_frequency",), ("product.product_name",), f"""
        SELECT p.product_name, c.n
        FROM (SELECT i.product_id, COUNT(DISTINCT i.order_id) AS n FROM order_items AS i {COMPLETED}
              GROUP BY i.product_id) AS c
        JOIN products AS p ON p.product_id = c.product_id"""),
    "cac_by_month_channel": (
        ("cac",), ("metric_time.month", "campaign.channel"), """
        WITH a AS (SELECT * FROM (SELECT campaign_id, spend_date, spend, ROW_NUMBER() OVER (
                     PARTITION BY campaign_id, spend_date, country_code ORDER BY _etl_loaded_at DESC) AS rk
                   FROM ad_spend) AS ranked WHERE rk = 1),
        s AS (SELECT CAST(date_trunc('month', a.spend_date) AS DATE) AS m, c.channel, SUM(a.spend) AS spend
              FROM a JOIN campaigns AS c ON c.campaign_id = a.campaign_id GROUP BY 1, 2),
        f AS (SELECT customer_id, MIN(ordered_at) AS first_at FROM orders WHERE status = 'completed'
              GROUP BY customer_id),
        n AS (SELECT CAST(date_trunc('month', f.first_at) AS DATE) AS m, c.channel, COUNT(*) AS n
              FROM f JOIN customers AS cu ON cu.customer_id = f.customer_id
              LEFT JOIN campaigns AS c ON c.campaign_id = cu.first_campaign_id GROUP BY 1, 2)
        SELECT m, channel, CAST(s.spend AS DOUBLE PRECISION) / NULLIF(n.n, 0)
        FROM s FULL JOIN n USING (m, channel)"""),
    "revenue_by_category": (
        ("revenue",), ("product.category",), f"""
        SELECT p.category, SUM({REVENUE}) FROM order_items AS i {COMPLETED}
        JOIN products AS p ON p.product_id = i.product_id GROUP BY 1"""),
    "revenue_and_shipping_by_month": (
        ("revenue", "shipping_total"), ("metric_time.month",), f"""
        WITH o AS (SELECT order_id, {MONTH} AS m, shipping_amount FROM orders AS o WHERE status = 'completed'),
        r AS (SELECT o.m, SUM({REVENUE}) AS rev FROM order_items AS i JOIN o ON o.order_id = i.order_id GROUP BY 1),
        s AS (SELECT m, SUM(shipping_amount) AS ship FROM o GROUP BY 1)
        SELECT s.m, r.rev, s.ship FROM s LEFT JOIN r ON r.m = s.m"""),
    "aov_by_month": (
        ("aov",), ("metric_time.month",), f"""
        WITH o AS (SELECT order_id, {MONTH} AS m FROM orders AS o WHERE status = 'completed'),
        r AS (SELECT o.m, SUM({REVENUE}) AS rev FROM order_items AS i JOIN o ON o.order_id = i.order_id GROUP BY 1),
        s AS (SELECT m, COUNT(*) AS n FROM o GROUP BY 1)
        SELECT s.m, CAST(r.rev AS DOUBLE PRECISION) / s.n FROM s LEFT JOIN r ON r.m = s.m"""),
    "median_order_value_by_month": (
        ("median_order_value",), ("metric_time.month",), f"""
        SELECT m, {{median:v}} FROM (SELECT {MONTH} AS m, SUM({REVENUE}) AS v
                                    FROM order_items AS i {COMPLETED} GROUP BY i.order_id, 1) AS per_order
        GROUP BY m"""),
    "revenue_rolling_28d_by_day": (
        ("revenue_rolling_28d",), ("metric_time.day",), f"""
        WITH d AS (SELECT CAST(date_trunc('day', o.ordered_at) AS DATE) AS day, SUM({REVENUE}) AS rev
                   FROM order_items AS i {COMPLETED} GROUP BY 1),
        s AS (SELECT date_day FROM time_spine
              WHERE date_day BETWEEN (SELECT MIN(day) FROM d) AND (SELECT MAX(day) FROM d))
        SELECT s.date_day, SUM(d.rev) OVER (ORDER BY s.date_day ROWS BETWEEN 27 PRECEDING AND CURRENT ROW)
        FROM s LEFT JOIN d ON d.day = s.date_day"""),
    "revenue_mom_growth_by_month": (
        ("revenue_mom_growth",), ("metric_time.month",), f"""
        WITH r AS (SELECT {MONTH} AS m, SUM({REVENUE}) AS rev FROM order_items AS i {COMPLETED} GROUP BY 1)
        SELECT COALESCE(r.m, CAST(p.m + INTERVAL '1 month' AS DATE)), r.rev / NULLIF(p.rev, 0) - 1
        FROM r FULL JOIN r AS p ON p.m = CAST(r.m - INTERVAL '1 month' AS DATE)
        WHERE COALESCE(r.m, CAST(p.m + INTERVAL '1 month' AS DATE)) <= (SELECT MAX(m) FROM r)"""),  # ends with the data
}


def hand_sql(template: str, catalog, dialect: str) -> str:
    rfm = catalog.models["customer_rfm"].source.this.sql(dialect=dialect)
    median = "MEDIAN(CAST(v AS DOUBLE))" if dialect == "duckdb" else \
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST(v AS DOUBLE PRECISION))"
    return template.replace("{rfm}", rfm).replace("{median:v}", median)


def normalise(rows) -> list[tuple]:
    def value(v):
        if isinstance(v, (float, decimal.Decimal)):
            return f"{float(v):.9g}"
        if isinstance(v, dt.datetime):
            return v.date().isoformat() if v.time() == dt.time() else v.isoformat()
        if isinstance(v, dt.date):
            return v.isoformat()
        return v
    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


class DuckDB:
    dialect = "duckdb"

    def __init__(self, path: Path):
        import duckdb
        self.con = duckdb.connect(str(path), read_only=True)

    def run(self, sql: str):
        return self.con.execute(sql).fetchall()


class Postgres:
    dialect = "postgres"

    def __init__(self, url: str):
        import psycopg
        self.con = psycopg.connect(url, autocommit=True)

    def run(self, sql: str):
        with self.con.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()


def timed(engine, sql: str) -> float:
    start = time.perf_counter()
    engine.run(sql)
    return time.perf_counter() - start


def measure(engine, catalog, names: list[str], runs: int) -> list[tuple[str, float, float]]:
    results = []
    for name in names:
        metrics, dims, template = CASES[name]
        canon = compile_request(catalog, QueryRequest(metrics=metrics, dimensions=dims), engine.dialect).sql
        hand = hand_sql(template, catalog, engine.dialect)
        mine, theirs = normalise(engine.run(canon)), normalise(engine.run(hand))  # also the warm-up
        if mine != theirs:
            diff = [r for r in mine if r not in theirs][:3], [r for r in theirs if r not in mine][:3]
            sys.exit(f"{engine.dialect} {name}: Canon and hand rows differ ({len(mine)} vs {len(theirs)} rows; "
                     f"only Canon: {diff[0]}; only hand: {diff[1]})")
        canon_t, hand_t = [], []
        for i in range(runs):  # alternate, and alternate who goes first
            pair = [(canon_t, canon), (hand_t, hand)]
            for samples, sql in pair if i % 2 == 0 else reversed(pair):
                samples.append(timed(engine, sql))
        results.append((name, statistics.median(canon_t), statistics.median(hand_t)))
        print(f"  {engine.dialect:8} {name:30} {results[-1][1] * 1000:9.1f} ms {results[-1][2] * 1000:9.1f} ms "
              f"{results[-1][1] / results[-1][2]:6.2f}x", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=20)
    parser.add_argument("--path", type=Path, help="demo DuckDB file (built when missing; default: a file per scale)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), help="run these queries only")
    parser.add_argument("--postgres", help="postgresql:// URL of a database holding the demo")
    parser.add_argument("--no-duckdb", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    catalog = load_catalog(ROOT)
    names = args.only or list(CASES)
    engines = []
    if not args.no_duckdb:
        path = args.path or ROOT / ".canon" / f"bench-demo-{args.scale:g}.duckdb"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "canon.server.cli", "demo", "--path", str(path),
                            "--scale", f"{args.scale:g}"], check=True, cwd=ROOT)
        engines.append(DuckDB(path))
    if args.postgres:
        engines.append(Postgres(args.postgres))
    print(f"{'engine':10} {'query':30} {'Canon':>12} {'hand':>12} {'ratio':>7}")
    table = [(engine.dialect, row) for engine in engines for row in measure(engine, catalog, names, args.runs)]
    worst = max(table, key=lambda t: t[1][1] / t[1][2])
    print(f"worst ratio: {worst[0]} {worst[1][0]} {worst[1][1] / worst[1][2]:.2f}x")


if __name__ == "__main__":
    main()
